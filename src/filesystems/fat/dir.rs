//! Directory entries: 8.3 short entries, VFAT long-name runs, and DOS timestamps, decoded
//! from the 32-byte slots of one directory.

use super::{le16, le32};

/// Bytes in one directory slot.
pub(super) const SLOT: usize = 32;

const ATTR_READ_ONLY: u8 = 0x01;
const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_DIRECTORY: u8 = 0x10;
/// Read-only, hidden, system and volume together mark a long-name slot (under the 0x3F mask).
const ATTR_LONG_NAME: u8 = 0x0F;
const ATTR_LONG_NAME_MASK: u8 = 0x3F;

/// Windows NT's case bits (byte 0x0C): the 8.3 base or extension is shown in lower case.
const CASE_LOWER_BASE: u8 = 0x08;
const CASE_LOWER_EXT: u8 = 0x10;

/// A long name has at most 20 slots of 13 UTF-16 units (255 characters and a terminator).
const MAX_LONG_SLOTS: u8 = 20;
const UNITS_PER_SLOT: usize = 13;
/// Byte positions of a long-name slot's 13 UTF-16 units.
const UNIT_OFFSETS: [usize; UNITS_PER_SLOT] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// What one 32-byte slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Slot {
    /// First byte 0x00: this slot and all after it are unused.
    End,
    /// First byte 0xE5.
    Deleted,
    LongName,
    VolumeLabel,
    Short(ShortEntry),
}

impl Slot {
    /// Classifies a slot; `slot` shorter than 32 bytes reads as the end of the directory.
    pub fn parse(slot: &[u8]) -> Self {
        if slot.len() < SLOT {
            return Self::End;
        }
        let byte = |at: usize| slot.get(at).copied().unwrap_or(0);
        match byte(0) {
            0x00 => return Self::End,
            0xE5 => return Self::Deleted,
            _ => {}
        }
        let attributes = byte(11);
        if attributes & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME {
            return Self::LongName;
        }
        if attributes & ATTR_VOLUME_ID != 0 {
            return Self::VolumeLabel;
        }
        let mut name = [0u8; 11];
        for (at, out) in name.iter_mut().enumerate() {
            *out = byte(at);
        }
        Self::Short(ShortEntry {
            name,
            attributes,
            case_flags: byte(12),
            first_cluster_high: le16(slot, 20),
            time: le16(slot, 22),
            date: le16(slot, 24),
            first_cluster_low: le16(slot, 26),
            size: le32(slot, 28),
        })
    }
}

/// A short (8.3) directory entry: the one slot that describes a file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ShortEntry {
    pub name: [u8; 11],
    pub attributes: u8,
    pub case_flags: u8,
    pub first_cluster_high: u16,
    pub time: u16,
    pub date: u16,
    pub first_cluster_low: u16,
    pub size: u32,
}

impl ShortEntry {
    pub fn is_dir(&self) -> bool {
        self.attributes & ATTR_DIRECTORY != 0
    }

    pub fn is_read_only(&self) -> bool {
        self.attributes & ATTR_READ_ONLY != 0
    }

    /// The first cluster; the high half exists only on FAT32 (FAT12/16 used the field for
    /// OS/2 extended attributes, so Linux ignores it there and so do we).
    pub fn first_cluster(&self, fat32: bool) -> u32 {
        let high = if fat32 {
            u32::from(self.first_cluster_high)
        } else {
            0
        };
        high << 16 | u32::from(self.first_cluster_low)
    }

    /// `.` and `..`, which every subdirectory starts with.
    pub fn is_dot(&self) -> bool {
        &self.name == b".          " || &self.name == b"..         "
    }

    /// The checksum a long-name run stores for the short name it belongs to.
    pub fn checksum(&self) -> u8 {
        self.name
            .iter()
            .fold(0u8, |sum, &byte| sum.rotate_right(1).wrapping_add(byte))
    }

    /// The 8.3 name as UTF-8, with Windows NT's lower-case bits applied when `with_case`.
    /// Bytes above 0x7F are code page 437, Linux's default `codepage=`.
    pub fn display_name(&self, with_case: bool) -> Vec<u8> {
        let (base, ext) = self.name.split_at(8);
        let lower_base = with_case && self.case_flags & CASE_LOWER_BASE != 0;
        let lower_ext = with_case && self.case_flags & CASE_LOWER_EXT != 0;
        let mut out = String::with_capacity(24);
        for (at, &byte) in trim_spaces(base).iter().enumerate() {
            // 0xE5 marks a deleted slot, so a name really starting with it stores 0x05.
            let byte = if at == 0 && byte == 0x05 { 0xE5 } else { byte };
            out.push(short_name_char(byte, lower_base));
        }
        let ext = trim_spaces(ext);
        if !ext.is_empty() {
            out.push('.');
            for &byte in ext {
                out.push(short_name_char(byte, lower_ext));
            }
        }
        out.into_bytes()
    }
}

fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let len = bytes
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(0, |at| at + 1);
    bytes.get(..len).unwrap_or_default()
}

/// One 8.3 name byte as a character. A `/` or NUL could not be one path component, so
/// they read as U+FFFD. Lower-casing is Unicode's, as Windows NT applies the case bits
/// after decoding (Linux's code-page tables agree on every letter that has a case pair
/// within code page 437).
pub(super) fn short_name_char(byte: u8, lower: bool) -> char {
    let c = match byte {
        b'/' | 0 => return char::REPLACEMENT_CHARACTER,
        0x01..=0x7F => char::from(byte),
        _ => CP437_HIGH
            .get(usize::from(byte - 0x80))
            .copied()
            .unwrap_or(char::REPLACEMENT_CHARACTER),
    };
    if lower {
        let mut lowered = c.to_lowercase();
        match (lowered.next(), lowered.next()) {
            (Some(single), None) => single,
            _ => c,
        }
    } else {
        c
    }
}

/// Collects one VFAT long name: its slots come in reverse order (the last part first,
/// flagged 0x40), each carrying the checksum of the short entry that follows the run.
#[derive(Debug, Default)]
struct LongNameRun {
    units: Vec<u16>,
    checksum: u8,
    /// The sequence number the next slot must carry; 0 once the run is complete.
    expected: u8,
    active: bool,
}

impl LongNameRun {
    fn push(&mut self, slot: &[u8]) {
        let order = slot.first().copied().unwrap_or(0);
        let checksum = slot.get(13).copied().unwrap_or(0);
        let sequence = order & !0x40;
        if order & 0x40 != 0 {
            if sequence == 0 || sequence > MAX_LONG_SLOTS {
                self.reset();
                return;
            }
            self.active = true;
            self.checksum = checksum;
            self.expected = sequence;
            self.units.clear();
            self.units
                .resize(usize::from(sequence) * UNITS_PER_SLOT, 0xFFFF);
        } else if !self.active
            || self.expected == 0
            || sequence != self.expected
            || checksum != self.checksum
        {
            // A slot out of sequence, or from another run: the run is broken.
            self.reset();
            return;
        }
        let base = usize::from(sequence - 1) * UNITS_PER_SLOT;
        for (i, &at) in UNIT_OFFSETS.iter().enumerate() {
            if let Some(unit) = self.units.get_mut(base + i) {
                *unit = le16(slot, at);
            }
        }
        self.expected = sequence - 1;
    }

    /// The long name for `short` if a complete run with the right checksum precedes it;
    /// always leaves the run empty for the next entry.
    fn finish(&mut self, short: &ShortEntry) -> Option<Vec<u8>> {
        let complete = self.active && self.expected == 0 && self.checksum == short.checksum();
        let name = complete.then(|| {
            let len = self
                .units
                .iter()
                .position(|&u| u == 0)
                .unwrap_or(self.units.len());
            let units = self.units.get(..len).unwrap_or_default();
            String::from_utf16_lossy(units).into_bytes()
        });
        self.reset();
        name.filter(|name| is_component(name))
    }

    fn reset(&mut self) {
        self.active = false;
        self.expected = 0;
        self.units.clear();
    }
}

/// True for a name usable as one path component.
fn is_component(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.iter().any(|&b| b == b'/' || b == 0)
}

/// One file or directory found in a directory.
#[derive(Debug, Clone)]
pub(super) struct Found {
    /// The long name, or the 8.3 name with its case bits applied.
    pub name: Vec<u8>,
    /// The 8.3 name as stored (upper case), which Linux also accepts in lookups.
    pub short_name: Vec<u8>,
    /// Byte offset of the short entry within the volume: the node's id.
    pub offset: u64,
}

/// Decodes a directory's slots in on-disk order, fed one region at a time.
#[derive(Debug, Default)]
pub(super) struct Scanner {
    run: LongNameRun,
    ended: bool,
    found: Vec<Found>,
}

impl Scanner {
    /// Decodes the slots in `bytes`, which start at volume offset `offset`. Returns true
    /// once the end-of-directory slot has been seen; later calls then do nothing.
    pub fn feed(&mut self, bytes: &[u8], offset: u64) -> bool {
        let mut at = offset;
        for slot in bytes.chunks_exact(SLOT) {
            if self.ended {
                break;
            }
            match Slot::parse(slot) {
                Slot::End => self.ended = true,
                Slot::Deleted | Slot::VolumeLabel => self.run.reset(),
                Slot::LongName => self.run.push(slot),
                Slot::Short(entry) => {
                    let long = self.run.finish(&entry);
                    if !entry.is_dot() {
                        let name = long.unwrap_or_else(|| entry.display_name(true));
                        // A name that is empty (an all-space 8.3 name) names nothing, as in
                        // Linux's readdir.
                        if !name.is_empty() {
                            self.found.push(Found {
                                name,
                                short_name: entry.display_name(false),
                                offset: at,
                            });
                        }
                    }
                }
            }
            at = at.saturating_add(SLOT as u64);
        }
        self.ended
    }

    pub fn into_found(self) -> Vec<Found> {
        self.found
    }
}

/// Seconds since the epoch for a DOS date and time, computed as Linux's
/// `fat_time_fat2unix` does (with `tz=UTC`): the local time they record is taken as UTC,
/// out-of-range fields are clamped the same way, and the resolution is two seconds.
pub(super) fn dos_time_to_unix(time: u16, date: u16) -> i64 {
    /// Days before each month, indexed by the 4-bit month field (0 and 13-15 invalid).
    const DAYS_BEFORE_MONTH: [i64; 16] = [
        0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 0, 0, 0,
    ];
    /// Years since 1980 of 2100, which is not a leap year.
    const YEAR_2100: i64 = 120;
    /// Days from 1970-01-01 to 1980-01-01.
    const DAYS_1970_TO_1980: i64 = 365 * 10 + 2;

    let year = i64::from(date >> 9);
    let month = usize::from((date >> 5) & 0x0F).max(1);
    let day = i64::from(date & 0x1F).max(1) - 1;
    let mut leap_days = (year + 3) / 4;
    if year > YEAR_2100 {
        leap_days -= 1;
    }
    if year % 4 == 0 && year != YEAR_2100 && month > 2 {
        leap_days += 1;
    }
    let seconds = i64::from(time & 0x1F) * 2
        + i64::from((time >> 5) & 0x3F) * 60
        + i64::from(time >> 11) * 3600;
    let days = year * 365
        + leap_days
        + DAYS_BEFORE_MONTH.get(month).copied().unwrap_or(0)
        + day
        + DAYS_1970_TO_1980;
    days * 86_400 + seconds
}

/// Code page 437, bytes 0x80 to 0xFF.
const CP437_HIGH: [char; 128] = [
    '\u{00C7}', '\u{00FC}', '\u{00E9}', '\u{00E2}', '\u{00E4}', '\u{00E0}', '\u{00E5}', '\u{00E7}',
    '\u{00EA}', '\u{00EB}', '\u{00E8}', '\u{00EF}', '\u{00EE}', '\u{00EC}', '\u{00C4}', '\u{00C5}',
    '\u{00C9}', '\u{00E6}', '\u{00C6}', '\u{00F4}', '\u{00F6}', '\u{00F2}', '\u{00FB}', '\u{00F9}',
    '\u{00FF}', '\u{00D6}', '\u{00DC}', '\u{00A2}', '\u{00A3}', '\u{00A5}', '\u{20A7}', '\u{0192}',
    '\u{00E1}', '\u{00ED}', '\u{00F3}', '\u{00FA}', '\u{00F1}', '\u{00D1}', '\u{00AA}', '\u{00BA}',
    '\u{00BF}', '\u{2310}', '\u{00AC}', '\u{00BD}', '\u{00BC}', '\u{00A1}', '\u{00AB}', '\u{00BB}',
    '\u{2591}', '\u{2592}', '\u{2593}', '\u{2502}', '\u{2524}', '\u{2561}', '\u{2562}', '\u{2556}',
    '\u{2555}', '\u{2563}', '\u{2551}', '\u{2557}', '\u{255D}', '\u{255C}', '\u{255B}', '\u{2510}',
    '\u{2514}', '\u{2534}', '\u{252C}', '\u{251C}', '\u{2500}', '\u{253C}', '\u{255E}', '\u{255F}',
    '\u{255A}', '\u{2554}', '\u{2569}', '\u{2566}', '\u{2560}', '\u{2550}', '\u{256C}', '\u{2567}',
    '\u{2568}', '\u{2564}', '\u{2565}', '\u{2559}', '\u{2558}', '\u{2552}', '\u{2553}', '\u{256B}',
    '\u{256A}', '\u{2518}', '\u{250C}', '\u{2588}', '\u{2584}', '\u{258C}', '\u{2590}', '\u{2580}',
    '\u{03B1}', '\u{00DF}', '\u{0393}', '\u{03C0}', '\u{03A3}', '\u{03C3}', '\u{00B5}', '\u{03C4}',
    '\u{03A6}', '\u{0398}', '\u{03A9}', '\u{03B4}', '\u{221E}', '\u{03C6}', '\u{03B5}', '\u{2229}',
    '\u{2261}', '\u{00B1}', '\u{2265}', '\u{2264}', '\u{2320}', '\u{2321}', '\u{00F7}', '\u{2248}',
    '\u{00B0}', '\u{2219}', '\u{00B7}', '\u{221A}', '\u{207F}', '\u{00B2}', '\u{25A0}', '\u{00A0}',
];
