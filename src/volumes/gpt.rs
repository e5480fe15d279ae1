//! GUID partition tables: both headers and both entry arrays read, checked and compared.
//!
//! A copy of the table (a header and the entry array it points to) is used when its
//! header CRC and its entry-array CRC both match: the primary at LBA 1 first, else the
//! backup, as Linux does. What the other copy says differently, and what the used header
//! places outside the disk or its own usable range, becomes a `TableProblem`. Entries are
//! decoded here, not by a crate, so that a checksum mismatch follows the caller's
//! `ChecksumPolicy` and every on-disk count and offset is checked before it is used.

use std::sync::{Arc, LazyLock};

use super::sanity::{ProblemKind, TableProblem};
use super::{PartitionEntry, TableError};
use crate::bytes::{array, le16, le32, le64};
use crate::checksums::ChecksumGuard;
use crate::image::{read_vec, BlockSource, CorruptKind};

/// Entry counts beyond this are not produced by any partitioning tool; refusing them keeps
/// a crafted header from making us read gigabytes of "entries".
const MAX_ENTRIES: u32 = 16_384;
const ENTRY_SIZE: u32 = 128;
/// The header fields the specification defines; a header may be longer, up to a sector.
const HEADER_MIN: u32 = 92;
const SIGNATURE: &[u8; 8] = b"EFI PART";

/// The sector size of a disk whose LBA 1 holds a GPT header, trying 512 then 4096. A read
/// that fails inside the disk is an error, never "no GPT".
pub fn detect_sector_size(disk: &dyn BlockSource) -> Result<Option<u64>, TableError> {
    for size in [512u64, 4096] {
        if size.saturating_add(8) > disk.len() {
            continue;
        }
        let mut signature = [0u8; 8];
        disk.read_exact_at(size, &mut signature).map_err(|e| {
            TableError::new(
                CorruptKind::Unreadable,
                "GPT header",
                size,
                format!("cannot be read: {e}"),
            )
        })?;
        if &signature == SIGNATURE {
            return Ok(Some(size));
        }
    }
    Ok(None)
}

/// A GPT disk's table as read.
pub struct GptTable {
    /// The entries of the copy used, in entry order.
    pub entries: Vec<PartitionEntry>,
    pub problems: Vec<TableProblem>,
    /// Entries the backup holds and the primary does not, when both copies are valid but
    /// differ: the caller looks at what they point to.
    pub backup_only: Vec<PartitionEntry>,
}

/// The fields of one header, bounds-checked but not yet trusted.
struct Header {
    /// Byte offset of the header on the disk.
    at: u64,
    stored_crc: u32,
    computed_crc: u32,
    my_lba: u64,
    alternate_lba: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: [u8; 16],
    entries_lba: u64,
    count: u32,
    entries_crc: u32,
}

/// One copy of the table: a header and the entry array it points to.
struct Copy {
    header: Header,
    entries: Vec<u8>,
    computed_entries_crc: u32,
    sector: u64,
}

impl Copy {
    fn header_ok(&self) -> bool {
        self.header.stored_crc == self.header.computed_crc
    }

    fn entries_ok(&self) -> bool {
        self.header.entries_crc == self.computed_entries_crc
    }

    fn valid(&self) -> bool {
        self.header_ok() && self.entries_ok()
    }

    fn entries_at(&self) -> u64 {
        self.header.entries_lba.saturating_mul(self.sector)
    }

    fn raw_entry(&self, index: u32) -> Option<&[u8]> {
        let start = usize::try_from(index)
            .ok()?
            .checked_mul(ENTRY_SIZE as usize)?;
        self.entries
            .get(start..start.checked_add(ENTRY_SIZE as usize)?)
    }

    /// What fails in this copy, for a message.
    fn faults(&self) -> String {
        let mut faults = Vec::new();
        if !self.header_ok() {
            faults.push(format!(
                "its header CRC32 is 0x{:08x}, the header's bytes give 0x{:08x}",
                self.header.stored_crc, self.header.computed_crc
            ));
        }
        if !self.entries_ok() {
            faults.push(format!(
                "its entry array at byte {} has CRC32 0x{:08x}, the header says 0x{:08x}",
                self.entries_at(),
                self.computed_entries_crc,
                self.header.entries_crc
            ));
        }
        faults.join("; ")
    }
}

/// What is at the place a header should be.
enum Found {
    /// No GPT signature there.
    Missing {
        at: u64,
    },
    /// A header that cannot be used at all (unreadable, out of range, unsupported).
    Damaged(TableError),
    Copy(Copy),
}

impl Found {
    fn describe(&self) -> String {
        match self {
            Self::Missing { at } => format!("no GPT header at byte {at}"),
            Self::Damaged(e) => e.to_string(),
            Self::Copy(c) => format!("the GPT header at byte {}: {}", c.header.at, c.faults()),
        }
    }
}

fn read_copy(disk: &dyn BlockSource, lba: u64, sector: u64) -> Found {
    let Some(at) = lba
        .checked_mul(sector)
        .filter(|at| at.saturating_add(sector) <= disk.len())
    else {
        return Found::Damaged(TableError::new(
            CorruptKind::OutOfRange,
            "GPT header",
            lba.saturating_mul(sector),
            format!(
                "LBA {lba} lies past the end of the {}-byte disk",
                disk.len()
            ),
        ));
    };
    let block = match read_vec(disk, at, usize::try_from(sector).unwrap_or(512)) {
        Ok(block) => block,
        Err(e) => {
            return Found::Damaged(TableError::new(
                CorruptKind::Unreadable,
                "GPT header",
                at,
                format!("cannot be read: {e}"),
            ))
        }
    };
    if array::<8>(&block, 0).as_ref() != Some(SIGNATURE) {
        return Found::Missing { at };
    }
    let header_size = le32(&block, 12);
    if header_size < HEADER_MIN || u64::from(header_size) > sector {
        return Found::Damaged(TableError::new(
            CorruptKind::Invalid,
            "GPT header",
            at,
            format!("header size {header_size} is not between {HEADER_MIN} and the {sector}-byte sector"),
        ));
    }
    let mut covered = block
        .get(..usize::try_from(header_size).unwrap_or(0))
        .unwrap_or_default()
        .to_vec();
    if let Some(crc_field) = covered.get_mut(16..20) {
        crc_field.fill(0);
    }
    let header = Header {
        at,
        stored_crc: le32(&block, 16),
        computed_crc: crc32(&covered),
        my_lba: le64(&block, 24),
        alternate_lba: le64(&block, 32),
        first_usable: le64(&block, 40),
        last_usable: le64(&block, 48),
        disk_guid: array(&block, 56).unwrap_or([0; 16]),
        entries_lba: le64(&block, 72),
        count: le32(&block, 80),
        entries_crc: le32(&block, 88),
    };
    let entry_size = le32(&block, 84);
    if entry_size != ENTRY_SIZE {
        return Found::Damaged(TableError::new(
            CorruptKind::Invalid,
            "GPT header",
            at,
            format!("partition entry size {entry_size} is not supported (only {ENTRY_SIZE})"),
        ));
    }
    if header.count > MAX_ENTRIES {
        return Found::Damaged(TableError::new(
            CorruptKind::TooLarge,
            "GPT header",
            at,
            format!(
                "claims {} partition entries, more than the {MAX_ENTRIES} amiscan accepts",
                header.count
            ),
        ));
    }
    // Bounded by MAX_ENTRIES above: at most 2 MiB.
    let array_len = u64::from(header.count) * u64::from(ENTRY_SIZE);
    let array_at = header.entries_lba.checked_mul(sector);
    let Some(array_at) = array_at.filter(|a| a.saturating_add(array_len) <= disk.len()) else {
        return Found::Damaged(TableError::new(
            CorruptKind::OutOfRange,
            "GPT header",
            at,
            format!(
                "partition entry array at LBA {} ({} entries) runs past the end of the {}-byte disk",
                header.entries_lba,
                header.count,
                disk.len()
            ),
        ));
    };
    let entries = match read_vec(disk, array_at, usize::try_from(array_len).unwrap_or(0)) {
        Ok(entries) => entries,
        Err(e) => {
            return Found::Damaged(TableError::new(
                CorruptKind::Unreadable,
                "GPT partition entry array",
                array_at,
                format!("cannot be read: {e}"),
            ))
        }
    };
    Found::Copy(Copy {
        computed_entries_crc: crc32(&entries),
        header,
        entries,
        sector,
    })
}

/// Reads the GPT of a disk with `sector`-byte logical blocks: the primary copy when it
/// passes its checks, else the backup; a table with no valid copy is refused unless
/// `guard` lets checksum mismatches through, and then reported as incomplete.
pub fn read(
    disk: &Arc<dyn BlockSource>,
    sector: u64,
    guard: &ChecksumGuard,
) -> Result<GptTable, TableError> {
    let disk = disk.as_ref();
    let last_lba = (disk.len() / sector).saturating_sub(1);
    let primary = read_copy(disk, 1, sector);
    // Only a header that passed its CRC is trusted to say where its backup is.
    let backup_lba = match &primary {
        Found::Copy(c) if c.header_ok() => c.header.alternate_lba,
        _ => last_lba,
    };
    let backup = read_copy(disk, backup_lba, sector);
    let mut problems = Vec::new();
    let (used, other) = match (primary, backup) {
        (Found::Copy(p), backup) if p.valid() => {
            problems.extend(backup_problems(&p, &backup, last_lba));
            (p, Some(backup))
        }
        (primary, Found::Copy(b)) if b.valid() => {
            problems.push(TableProblem::new(
                ProblemKind::GptPrimaryDamaged,
                sector,
                false,
                format!(
                    "primary GPT is damaged ({}); the backup at byte {}, which passes its checks, is used, as Linux does",
                    primary.describe(),
                    b.header.at
                ),
            ));
            (b, None)
        }
        (Found::Copy(p), backup) => {
            guard.check(false, || checksum_error(&p, &backup))?;
            problems.push(TableProblem::new(
                ProblemKind::ChecksumIgnored,
                p.header.at,
                true,
                format!(
                    "neither GPT copy passes its checks and checksums are ignored: the primary is used unverified ({}; backup: {})",
                    p.faults(),
                    backup.describe()
                ),
            ));
            (p, None)
        }
        (Found::Damaged(e), _) => return Err(e),
        (Found::Missing { at }, _) => {
            return Err(TableError::new(
                CorruptKind::Magic,
                "GPT header",
                at,
                "the signature is gone".to_string(),
            ))
        }
    };
    problems.extend(range_problems(&used, last_lba));

    let mut entries = Vec::new();
    for index in 0..used.header.count {
        let Some(entry) = decode_entry(&used, index, disk.len()) else {
            continue;
        };
        if entry.size == 0 {
            problems.push(TableProblem::new(
                ProblemKind::InvalidEntry,
                entry.entry_at,
                true,
                entry.problem.clone().unwrap_or_default(),
            ));
        } else if let Some(problem) = outside_usable(&used, &entry) {
            problems.push(problem);
        }
        entries.push(entry);
    }
    let backup_only = match other {
        Some(Found::Copy(b)) if b.valid() => (0..b.header.count)
            .filter(|i| used.raw_entry(*i) != b.raw_entry(*i))
            .filter_map(|i| decode_entry(&b, i, disk.len()))
            .filter(|e| e.size > 0)
            .collect(),
        _ => Vec::new(),
    };
    Ok(GptTable {
        entries,
        problems,
        backup_only,
    })
}

fn checksum_error(primary: &Copy, backup: &Found) -> TableError {
    let (structure, at) = if primary.header_ok() {
        ("GPT partition entry array", primary.entries_at())
    } else {
        ("GPT header", primary.header.at)
    };
    TableError::new(
        CorruptKind::Checksum,
        structure,
        at,
        format!(
            "checksum mismatch ({}), and the backup is no better ({})",
            primary.faults(),
            backup.describe()
        ),
    )
}

/// What is wrong with the backup when the primary is good. None of it hides data: the
/// primary is what Linux and amiscan read.
fn backup_problems(primary: &Copy, backup: &Found, last_lba: u64) -> Vec<TableProblem> {
    let note = |kind, at, message| TableProblem::new(kind, at, false, message);
    let b = match backup {
        Found::Copy(b) if b.valid() => b,
        Found::Copy(b) => {
            return vec![note(
                ProblemKind::GptBackupDamaged,
                b.header.at,
                format!("backup GPT fails its checks ({}); the primary is used", b.faults()),
            )]
        }
        Found::Missing { at } => {
            return vec![note(
                ProblemKind::GptBackupDamaged,
                *at,
                format!(
                    "no backup GPT header at LBA {} (byte {at}), where the primary says it is; the primary is used",
                    primary.header.alternate_lba
                ),
            )]
        }
        Found::Damaged(e) => {
            return vec![note(
                ProblemKind::GptBackupDamaged,
                e.offset,
                format!("backup GPT cannot be used ({e}); the primary is used"),
            )]
        }
    };
    let mut problems = Vec::new();
    if primary.header.alternate_lba != last_lba {
        problems.push(note(
            ProblemKind::GptRange,
            primary.header.at,
            format!(
                "the backup GPT header is at LBA {}, not at the disk's last LBA {last_lba} (the disk was resized after partitioning)",
                primary.header.alternate_lba
            ),
        ));
    }
    let (p, h) = (&primary.header, &b.header);
    let mut differ = Vec::new();
    let mut field = |name: &str, ours: String, theirs: String| {
        if ours != theirs {
            differ.push(format!("{name} {ours} (primary) vs {theirs} (backup)"));
        }
    };
    field(
        "own LBA of the other header",
        p.alternate_lba.to_string(),
        h.my_lba.to_string(),
    );
    field(
        "alternate LBA",
        p.my_lba.to_string(),
        h.alternate_lba.to_string(),
    );
    field(
        "first usable LBA",
        p.first_usable.to_string(),
        h.first_usable.to_string(),
    );
    field(
        "last usable LBA",
        p.last_usable.to_string(),
        h.last_usable.to_string(),
    );
    field(
        "disk GUID",
        crate::bytes::mixed_endian_guid(&p.disk_guid),
        crate::bytes::mixed_endian_guid(&h.disk_guid),
    );
    field("entry count", p.count.to_string(), h.count.to_string());
    field(
        "entry array CRC32",
        format!("0x{:08x}", p.entries_crc),
        format!("0x{:08x}", h.entries_crc),
    );
    if !differ.is_empty() {
        problems.push(note(
            ProblemKind::GptMismatch,
            h.at,
            format!(
                "primary and backup GPT headers disagree: {}; the primary is used",
                differ.join(", ")
            ),
        ));
    }
    let differing: Vec<String> = (0..p.count.max(h.count))
        .filter(|i| primary.raw_entry(*i) != b.raw_entry(*i))
        .map(|i| i.saturating_add(1).to_string())
        .collect();
    if !differing.is_empty() {
        problems.push(note(
            ProblemKind::GptMismatch,
            b.entries_at(),
            format!(
                "primary and backup GPT entry arrays differ in entr{} {}; the primary is used",
                if differing.len() == 1 { "y" } else { "ies" },
                differing.join(", ")
            ),
        ));
    }
    problems
}

/// The used header's own ranges: the usable range inside the disk, the entry array
/// outside the usable range.
fn range_problems(used: &Copy, last_lba: u64) -> Vec<TableProblem> {
    let h = &used.header;
    let mut problems = Vec::new();
    let mut note = |message: String| {
        problems.push(TableProblem::new(
            ProblemKind::GptRange,
            h.at,
            false,
            message,
        ));
    };
    if h.first_usable > h.last_usable {
        note(format!(
            "the GPT's usable range is empty: first usable LBA {} is after last usable LBA {}",
            h.first_usable, h.last_usable
        ));
    }
    if h.last_usable > last_lba {
        note(format!(
            "the GPT's usable range ends at LBA {}, past the disk's last LBA {last_lba}",
            h.last_usable
        ));
    }
    let array_sectors = (u64::from(h.count) * u64::from(ENTRY_SIZE)).div_ceil(used.sector);
    let array_last = h
        .entries_lba
        .saturating_add(array_sectors.saturating_sub(1));
    if array_sectors > 0 && h.entries_lba <= h.last_usable && array_last >= h.first_usable {
        note(format!(
            "the GPT entry array (LBA {}..={array_last}) lies inside the usable range (LBA {}..={}), where partitions may be written over it",
            h.entries_lba, h.first_usable, h.last_usable
        ));
    }
    problems
}

fn outside_usable(used: &Copy, entry: &PartitionEntry) -> Option<TableProblem> {
    let h = &used.header;
    let first = entry.offset / used.sector;
    let last = (entry.offset.saturating_add(entry.size) / used.sector).saturating_sub(1);
    (first < h.first_usable || last > h.last_usable).then(|| {
        TableProblem::new(
            ProblemKind::GptRange,
            entry.entry_at,
            false,
            format!(
                "partition {} (LBA {first}..={last}) lies outside the GPT's usable range (LBA {}..={})",
                entry.number, h.first_usable, h.last_usable
            ),
        )
    })
}

/// Entry `index` of a copy, or `None` when it is unused (a zero type GUID, as Linux reads
/// it).
fn decode_entry(copy: &Copy, index: u32, disk_len: u64) -> Option<PartitionEntry> {
    let raw = copy.raw_entry(index)?;
    let type_guid: [u8; 16] = array(raw, 0)?;
    if type_guid == [0; 16] {
        return None;
    }
    let part_guid: [u8; 16] = array(raw, 16)?;
    let first_lba = le64(raw, 32);
    let last_lba = le64(raw, 40);
    let number = index.saturating_add(1);
    let entry_at = copy
        .entries_at()
        .saturating_add(u64::from(index) * u64::from(ENTRY_SIZE));
    let units: Vec<u16> = (0..36)
        .map(|i| le16(raw, 56 + 2 * i))
        .take_while(|u| *u != 0)
        .collect();
    let name: String = char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    let sector = copy.sector;
    let start = first_lba.checked_mul(sector);
    let end = last_lba
        .checked_add(1)
        .and_then(|lba| lba.checked_mul(sector));
    let (offset, size, problem) = match (start, end) {
        (Some(start), Some(end)) if end > start && end <= disk_len => (start, end - start, None),
        (Some(start), Some(end)) if end > start => (
            start,
            end - start,
            Some(format!(
                "GPT entry {number} at byte {entry_at} ends at byte {end}, past the end of the {disk_len}-byte disk"
            )),
        ),
        _ => (
            0,
            0,
            Some(format!(
                "GPT entry {number} at byte {entry_at} has first LBA {first_lba} after last LBA {last_lba}"
            )),
        ),
    };
    Some(PartitionEntry {
        number,
        offset,
        size,
        entry_at,
        type_id: crate::bytes::mixed_endian_guid(&type_guid),
        name: (!name.is_empty()).then_some(name),
        part_uuid: Some(crate::bytes::mixed_endian_guid(&part_guid)),
        problem,
    })
}

/// The CRC-32 of GPT headers and entry arrays (IEEE 802.3, reflected, as zlib's).
fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: LazyLock<[u32; 256]> = LazyLock::new(|| {
        std::array::from_fn(|i| {
            (0..8).fold(u32::try_from(i).unwrap_or(0), |c, _| {
                if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                }
            })
        })
    });
    !bytes.iter().fold(!0u32, |crc, byte| {
        let slot = usize::from((crc as u8) ^ byte);
        TABLE.get(slot).copied().unwrap_or(0) ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::checksums::ChecksumPolicy;
    use crate::image::MemoryImage;

    const SECTORS: u64 = 2048;

    /// Writes header `at` (an LBA) with its CRCs over an entry array at `entries_lba`.
    fn write_header(disk: &mut [u8], at: u64, alternate: u64, entries_lba: u64) {
        let array_at = (entries_lba * 512) as usize;
        let array_crc = crc32(&disk[array_at..array_at + 128 * 128]);
        let h = (at * 512) as usize;
        disk[h..h + 8].copy_from_slice(SIGNATURE);
        disk[h + 8..h + 12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        disk[h + 12..h + 16].copy_from_slice(&92u32.to_le_bytes());
        disk[h + 16..h + 20].fill(0);
        disk[h + 24..h + 32].copy_from_slice(&at.to_le_bytes());
        disk[h + 32..h + 40].copy_from_slice(&alternate.to_le_bytes());
        disk[h + 40..h + 48].copy_from_slice(&34u64.to_le_bytes());
        disk[h + 48..h + 56].copy_from_slice(&(SECTORS - 34).to_le_bytes());
        disk[h + 56..h + 72].copy_from_slice(&[7; 16]);
        disk[h + 72..h + 80].copy_from_slice(&entries_lba.to_le_bytes());
        disk[h + 80..h + 84].copy_from_slice(&128u32.to_le_bytes());
        disk[h + 84..h + 88].copy_from_slice(&ENTRY_SIZE.to_le_bytes());
        disk[h + 88..h + 92].copy_from_slice(&array_crc.to_le_bytes());
        let crc = crc32(&disk[h..h + 92]);
        disk[h + 16..h + 20].copy_from_slice(&crc.to_le_bytes());
    }

    /// A 1 MiB disk with one partition (LBA 34..=1000) in both copies.
    fn disk() -> Vec<u8> {
        let mut disk = vec![0u8; (SECTORS * 512) as usize];
        for array_lba in [2, SECTORS - 33] {
            let e = (array_lba * 512) as usize;
            disk[e..e + 16].copy_from_slice(&[1; 16]);
            disk[e + 16..e + 32].copy_from_slice(&[2; 16]);
            disk[e + 32..e + 40].copy_from_slice(&34u64.to_le_bytes());
            disk[e + 40..e + 48].copy_from_slice(&1000u64.to_le_bytes());
        }
        write_header(&mut disk, 1, SECTORS - 1, 2);
        write_header(&mut disk, SECTORS - 1, 1, SECTORS - 33);
        disk
    }

    fn read_bytes(bytes: Vec<u8>) -> Result<GptTable, TableError> {
        let source: Arc<dyn BlockSource> = Arc::new(MemoryImage::new(bytes));
        read(&source, 512, &ChecksumGuard::new(ChecksumPolicy::Verify))
    }

    #[test]
    fn a_consistent_table_has_no_problems() {
        let table = read_bytes(disk()).unwrap();
        assert!(table.problems.is_empty(), "{:?}", table.problems);
        assert_eq!(table.entries.len(), 1);
        assert_eq!(table.entries[0].offset, 34 * 512);
        assert_eq!(table.entries[0].size, 967 * 512);
        assert_eq!(table.entries[0].entry_at, 1024);
    }

    #[test]
    fn hostile_headers_are_refused_naming_the_header() {
        // Each change is made to both copies, so neither can stand in for the other.
        let cases: [(usize, &[u8], CorruptKind); 4] = [
            (84, &256u32.to_le_bytes(), CorruptKind::Invalid),
            (80, &100_000u32.to_le_bytes(), CorruptKind::TooLarge),
            (12, &8192u32.to_le_bytes(), CorruptKind::Invalid),
            (72, &u64::MAX.to_le_bytes(), CorruptKind::OutOfRange),
        ];
        for (field, value, kind) in cases {
            let mut bytes = disk();
            for header in [512, ((SECTORS - 1) * 512) as usize] {
                bytes[header + field..header + field + value.len()].copy_from_slice(value);
            }
            let error = read_bytes(bytes).err().unwrap();
            assert_eq!(error.kind, kind, "field {field}: {error}");
            assert_eq!(error.offset, 512, "field {field}: {error}");
        }
    }

    #[test]
    fn a_backup_pointing_anywhere_is_a_note_not_a_loop() {
        let mut bytes = disk();
        // The primary says its backup is itself; then it says LBA u64::MAX.
        write_header(&mut bytes, 1, 1, 2);
        let table = read_bytes(bytes.clone()).unwrap();
        assert!(table
            .problems
            .iter()
            .all(|p| !p.incomplete && p.kind != ProblemKind::ChecksumIgnored));
        assert!(!table.problems.is_empty());
        write_header(&mut bytes, 1, u64::MAX, 2);
        let table = read_bytes(bytes).unwrap();
        assert_eq!(table.problems[0].kind, ProblemKind::GptBackupDamaged);
    }

    #[test]
    fn crc32_matches_known_vectors() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(&[0u8; 32]), 0x190A_55AD);
    }

    #[test]
    fn guids_are_shown_mixed_endian() {
        // The EFI system partition type as stored on disk.
        let esp = [
            0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
            0xc9, 0x3b,
        ];
        assert_eq!(
            crate::bytes::mixed_endian_guid(&esp),
            "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
        );
    }
}
