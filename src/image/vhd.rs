//! VHD containers (Virtual PC, Hyper-V, Azure, EC2 VM Import): fixed and dynamic disks.
//!
//! Every VHD ends with a 512-byte footer (cookie "conectix", big-endian fields, a
//! one's-complement byte-sum checksum). A fixed disk (type 2) is the virtual disk's bytes
//! followed by that footer. A dynamic disk (type 3) keeps a copy of the footer at byte 0, a
//! 1024-byte dynamic header ("cxsparse") at the footer's data offset, and a block allocation
//! table (BAT) of big-endian u32 sector numbers: each allocated block is a sector bitmap
//! followed by the block's data, and a sector whose bitmap bit is clear reads as zeros.
//! Differencing disks (type 4) are refused, naming their parent.
//!
//! Every on-disk number is checked before use: the BAT must lie inside the file (so its
//! size, and the memory it takes, is bounded by the file's), and every allocated block must
//! lie inside the file too, which is how a truncated image is recognised when it is opened.

use crate::bytes::{be32, be64};
use crate::checksums::{ChecksumGuard, ChecksumPolicy};
use crate::image::CorruptKind;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::{
    check_range, corrupt_read, for_each_block, read_vec, BlockSource, ContainerError,
    ContainerInfo, Opened, RawImage,
};

const SECTOR: u64 = 512;
const FOOTER_LEN: u64 = 512;
const DYNAMIC_HEADER_LEN: u64 = 1024;
const FOOTER_COOKIE: &[u8] = b"conectix";
const DYNAMIC_COOKIE: &[u8] = b"cxsparse";
/// A BAT entry for a block that was never written: it reads as zeros.
const UNALLOCATED: u32 = u32::MAX;
/// Block sizes accepted: powers of two in this range (2 MiB is what every tool writes).
const MIN_BLOCK_SIZE: u64 = SECTOR;
const MAX_BLOCK_SIZE: u64 = 256 << 20;

const TYPE_FIXED: u32 = 2;
const TYPE_DYNAMIC: u32 = 3;
const TYPE_DIFFERENCING: u32 = 4;

/// Opens a VHD image read-only. `footer_at` is where detection saw a footer cookie; both
/// the footer at the end and (for dynamic disks) its copy at byte 0 are examined anyway.
pub fn open(path: &Path, footer_at: u64) -> Result<Opened, ContainerError> {
    open_with(path, footer_at, ChecksumPolicy::Verify)
}

/// `open` under a checksum policy: with `Ignore`, a footer or dynamic header whose
/// checksum does not match is used anyway and counted in `checksums_ignored`.
pub fn open_with(
    path: &Path,
    footer_at: u64,
    policy: ChecksumPolicy,
) -> Result<Opened, ContainerError> {
    let _ = footer_at;
    let name = path.display().to_string();
    let file = RawImage::open(path).map_err(|source| ContainerError::Io {
        path: name.clone(),
        source,
    })?;
    open_source_with(Arc::new(file), &name, policy)
}

/// Opens a VHD held by any source (a file, or memory when fuzzing); `name` is the file
/// name errors give.
pub fn open_source(file: Arc<dyn BlockSource>, name: &str) -> Result<Opened, ContainerError> {
    open_source_with(file, name, ChecksumPolicy::Verify)
}

/// `open_source` under a checksum policy.
pub fn open_source_with(
    file: Arc<dyn BlockSource>,
    name: &str,
    policy: ChecksumPolicy,
) -> Result<Opened, ContainerError> {
    let guard = ChecksumGuard::new(policy);
    let footer = find_footer(file.as_ref(), name, &guard)?;
    let mut opened = match footer.disk_type {
        TYPE_FIXED => open_fixed(file, name, &footer)?,
        TYPE_DYNAMIC => open_dynamic(file, name, &footer, &guard)?,
        TYPE_DIFFERENCING => return Err(differencing(file.as_ref(), name, &footer, &guard)),
        other => {
            return Err(ContainerError::Unsupported {
                path: name.to_string(),
                feature: format!("VHD disk type {other}").into(),
                detail: "only fixed (2) and dynamic (3) disks are read".into(),
            })
        }
    };
    opened.info.checksums_ignored = guard.ignored();
    Ok(opened)
}

/// What the footer says.
#[derive(Debug, Clone)]
struct Footer {
    /// Where this copy lies in the file.
    at: u64,
    data_offset: u64,
    current_size: u64,
    disk_type: u32,
    creator_app: [u8; 4],
    /// Sectors the CHS geometry (cylinders × heads × sectors per track) describes.
    chs_sectors: u64,
}

/// The CHS geometry at its maximum (65535 cylinders, 16 heads, 255 sectors): a disk too
/// large for CHS, whose size only the footer's current size can give.
const MAX_CHS_SECTORS: u64 = 65535 * 16 * 255;

/// Creator applications whose disks are sized by the footer's current size (Hyper-V, its
/// Disk2vhd, XenServer, XenConverter, Azure, and qemu with `force_size`); every other
/// creator, Virtual PC ("vpc ") and qemu's default ("qemu") among them, sizes its disk by
/// the CHS geometry. The list is qemu's (block/vpc.c), so that amiscan reads the disk
/// qemu-img converts.
const CURRENT_SIZE_CREATORS: [&[u8; 4]; 6] =
    [b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0", b"wa\0\0"];

impl Footer {
    /// The virtual disk's size as the hypervisor that made it shows it to the guest, and,
    /// when the footer's two sizes disagree, which one was taken and what the other says.
    ///
    /// Virtual PC presents the CHS geometry's size, and its current size is often larger;
    /// Hyper-V and Azure present the current size. qemu follows the creator application
    /// (and the current size when the geometry is at its maximum); amiscan does the same,
    /// so that its virtual size is qemu-img's, and says so whenever the choice mattered.
    fn virtual_size(&self) -> (u64, Option<String>) {
        // No geometry at all: qemu would show an empty disk, which no guest saw; the
        // current size is the only size there is.
        let by_current_size = CURRENT_SIZE_CREATORS.contains(&&self.creator_app)
            || self.chs_sectors == MAX_CHS_SECTORS
            || self.chs_sectors == 0;
        let chs_size = self.chs_sectors * SECTOR;
        if by_current_size || chs_size == self.current_size {
            return (self.current_size, None);
        }
        let creator = String::from_utf8_lossy(&self.creator_app)
            .escape_debug()
            .to_string();
        let note = format!(
            "virtual size from the CHS geometry, as creator {creator:?} sizes disks; the \
             footer's current size says {} bytes",
            self.current_size
        );
        (chs_size, Some(note))
    }
}

/// The footer at the end of the file, or, when that one is damaged or missing, the copy a
/// dynamic disk keeps at byte 0.
fn find_footer(
    file: &dyn BlockSource,
    name: &str,
    guard: &ChecksumGuard,
) -> Result<Footer, ContainerError> {
    let len = file.len();
    let Some(end) = len.checked_sub(FOOTER_LEN) else {
        return Err(ContainerError::corrupt(
            CorruptKind::Truncated,
            name,
            "VHD footer",
            0,
            format!("the file is {len} bytes, shorter than the 512-byte footer"),
        ));
    };
    // The copy at byte 0 is tried under the verifying policy first: a good copy beats a
    // footer whose checksum is merely let through.
    let verify = ChecksumGuard::new(ChecksumPolicy::Verify);
    match read_footer(file, name, end, &verify) {
        Ok(footer) => Ok(footer),
        Err(end_error) => {
            if end > 0 {
                if let Ok(copy) = read_footer(file, name, 0, &verify) {
                    if matches!(copy.disk_type, TYPE_DYNAMIC | TYPE_DIFFERENCING) {
                        return Ok(copy);
                    }
                }
            }
            if guard.policy() == ChecksumPolicy::Ignore {
                return read_footer(file, name, end, guard);
            }
            Err(end_error)
        }
    }
}

fn read_footer(
    file: &dyn BlockSource,
    name: &str,
    at: u64,
    guard: &ChecksumGuard,
) -> Result<Footer, ContainerError> {
    let bytes = read_vec(file, at, FOOTER_LEN as usize).map_err(|e| io_error(name, e))?;
    let corrupt =
        |kind, detail: String| ContainerError::corrupt(kind, name, "VHD footer", at, detail);
    if bytes.get(..8) != Some(FOOTER_COOKIE) {
        return Err(corrupt(CorruptKind::Magic, "no \"conectix\" cookie".into()));
    }
    let stored = be32(&bytes, 64);
    let computed = checksum(&bytes, 64);
    guard.check(stored == computed, || {
        corrupt(
            CorruptKind::Checksum,
            format!("checksum {stored:#010x} does not match the footer's bytes ({computed:#010x})"),
        )
    })?;
    let version = be32(&bytes, 12);
    if version >> 16 != 1 {
        return Err(corrupt(
            CorruptKind::Invalid,
            format!("file format version {version:#010x} (expected 0x00010000)"),
        ));
    }
    let mut creator_app = [0u8; 4];
    if let Some(field) = bytes.get(28..32) {
        creator_app.copy_from_slice(field);
    }
    let cylinders = u64::from(u16::from_be_bytes([
        bytes.get(56).copied().unwrap_or(0),
        bytes.get(57).copied().unwrap_or(0),
    ]));
    let heads = u64::from(bytes.get(58).copied().unwrap_or(0));
    let sectors = u64::from(bytes.get(59).copied().unwrap_or(0));
    Ok(Footer {
        at,
        data_offset: be64(&bytes, 16),
        current_size: be64(&bytes, 48),
        disk_type: be32(&bytes, 60),
        creator_app,
        // At most 65535 × 255 × 255: no overflow.
        chs_sectors: cylinders * heads * sectors,
    })
}

fn open_fixed(
    file: Arc<dyn BlockSource>,
    name: &str,
    footer: &Footer,
) -> Result<Opened, ContainerError> {
    // Only the footer at the end can describe a fixed disk (see find_footer).
    let before_footer = footer.at;
    let (size, note) = footer.virtual_size();
    if size > before_footer {
        let (field, what) = match note {
            None => (48, "current size"),
            Some(_) => (56, "CHS geometry's size"),
        };
        return Err(ContainerError::corrupt(
            CorruptKind::OutOfRange,
            name,
            "VHD footer",
            footer.at.saturating_add(field),
            format!("{what} {size} bytes is more than the {before_footer} bytes before the footer"),
        ));
    }
    Ok(Opened {
        disk: Arc::new(FixedDisk {
            file,
            name: name.to_string(),
            len: size,
        }),
        info: info("fixed", note),
    })
}

/// The subformat, with the note on the virtual size when the footer's sizes disagree.
fn info(subformat: &str, size_note: Option<String>) -> ContainerInfo {
    let subformat = match size_note {
        Some(note) => format!("{subformat}; {note}"),
        None => subformat.to_string(),
    };
    ContainerInfo {
        subformat: Some(subformat),
        ..ContainerInfo::default()
    }
}

/// The parsed, checked dynamic header.
struct DynamicHeader {
    table_offset: u64,
    max_table_entries: u32,
    block_size: u64,
}

fn read_dynamic_header(
    file: &dyn BlockSource,
    name: &str,
    footer: &Footer,
    guard: &ChecksumGuard,
) -> Result<(DynamicHeader, Vec<u8>), ContainerError> {
    let at = footer.data_offset;
    let len = file.len();
    let inside = at >= FOOTER_LEN
        && at
            .checked_add(DYNAMIC_HEADER_LEN)
            .is_some_and(|end| end <= len);
    if !inside {
        return Err(ContainerError::corrupt(
            CorruptKind::OutOfRange,
            name,
            "VHD footer",
            footer.at.saturating_add(16),
            format!(
                "data offset {at}: the 1024-byte dynamic header would not lie inside the \
                 {len}-byte file after the footer copy"
            ),
        ));
    }
    let bytes = read_vec(file, at, DYNAMIC_HEADER_LEN as usize).map_err(|e| io_error(name, e))?;
    let corrupt = |kind, field: u64, detail: String| {
        ContainerError::corrupt(
            kind,
            name,
            "VHD dynamic header",
            at.saturating_add(field),
            detail,
        )
    };
    if bytes.get(..8) != Some(DYNAMIC_COOKIE) {
        return Err(corrupt(
            CorruptKind::Magic,
            0,
            "no \"cxsparse\" cookie".into(),
        ));
    }
    let stored = be32(&bytes, 36);
    let computed = checksum(&bytes, 36);
    guard.check(stored == computed, || {
        corrupt(
            CorruptKind::Checksum,
            36,
            format!("checksum {stored:#010x} does not match the header's bytes ({computed:#010x})"),
        )
    })?;
    let version = be32(&bytes, 24);
    if version >> 16 != 1 {
        return Err(corrupt(
            CorruptKind::Invalid,
            24,
            format!("header version {version:#010x} (expected 0x00010000)"),
        ));
    }
    let block_size = u64::from(be32(&bytes, 32));
    if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        return Err(corrupt(
            CorruptKind::Invalid,
            32,
            format!(
                "block size {block_size} is not a power of two from {MIN_BLOCK_SIZE} to \
                 {MAX_BLOCK_SIZE} bytes"
            ),
        ));
    }
    let header = DynamicHeader {
        table_offset: be64(&bytes, 16),
        max_table_entries: be32(&bytes, 28),
        block_size,
    };
    Ok((header, bytes))
}

fn open_dynamic(
    file: Arc<dyn BlockSource>,
    name: &str,
    footer: &Footer,
    guard: &ChecksumGuard,
) -> Result<Opened, ContainerError> {
    let (header, _) = read_dynamic_header(file.as_ref(), name, footer, guard)?;
    let len = file.len();
    let (size, size_note) = footer.virtual_size();
    let block_size = header.block_size;
    let blocks = size.div_ceil(block_size);
    if blocks > u64::from(header.max_table_entries) {
        return Err(ContainerError::corrupt(
            CorruptKind::Invalid,
            name,
            "VHD dynamic header",
            footer.data_offset.saturating_add(28),
            format!(
                "its BAT of {} entries of {block_size} bytes covers less than the disk's virtual \
                 size of {size} bytes",
                header.max_table_entries
            ),
        ));
    }
    let table = header.table_offset;
    // blocks <= u32::MAX, so this cannot overflow.
    let table_len = blocks.saturating_mul(4);
    if table.checked_add(table_len).is_none_or(|end| end > len) {
        return Err(ContainerError::corrupt(
            CorruptKind::OutOfRange,
            name,
            "VHD BAT",
            table,
            format!("{blocks} entries ({table_len} bytes) run past the end of the {len}-byte file"),
        ));
    }
    let table_bytes = usize::try_from(table_len).map_err(|_| {
        ContainerError::corrupt(
            CorruptKind::TooLarge,
            name,
            "VHD BAT",
            table,
            "too large for this machine",
        )
    })?;
    let raw_bat = read_vec(file.as_ref(), table, table_bytes).map_err(|e| io_error(name, e))?;
    let bat: Vec<u32> = raw_bat
        .chunks_exact(4)
        .map(|entry| be32(entry, 0))
        .collect();
    drop(raw_bat);

    let bitmap_len = (block_size / SECTOR).div_ceil(8).next_multiple_of(SECTOR);
    for (index, &entry) in bat.iter().enumerate() {
        if entry == UNALLOCATED {
            continue;
        }
        let first = (index as u64).saturating_mul(block_size);
        let in_disk = block_size.min(size.saturating_sub(first));
        let start = u64::from(entry) * SECTOR;
        let end = start
            .checked_add(bitmap_len)
            .and_then(|data| data.checked_add(in_disk));
        if end.is_none_or(|end| end > len) {
            return Err(ContainerError::corrupt(
                CorruptKind::OutOfRange,
                name,
                format!("VHD BAT entry {index}"),
                table.saturating_add(index as u64 * 4),
                format!(
                    "block {index} at byte {start} ({bitmap_len}-byte sector bitmap and \
                     {in_disk} bytes of data) runs past the end of the {len}-byte file \
                     (truncated?)"
                ),
            ));
        }
    }
    let bitmap_state = bat.iter().map(|_| AtomicU8::new(UNKNOWN)).collect();
    Ok(Opened {
        disk: Arc::new(DynamicDisk {
            file,
            name: name.to_string(),
            size,
            block_size,
            bitmap_len,
            table,
            bat,
            bitmap_state,
        }),
        info: info("dynamic", size_note),
    })
}

/// The refusal for a differencing disk, naming its parent as far as the header tells.
fn differencing(
    file: &dyn BlockSource,
    name: &str,
    footer: &Footer,
    guard: &ChecksumGuard,
) -> ContainerError {
    let parent = match read_dynamic_header(file, name, footer, guard) {
        Ok((_, header)) => parent_description(file, &header),
        Err(_) => "unknown: the dynamic header is unreadable".to_string(),
    };
    ContainerError::Unsupported {
        path: name.to_string(),
        feature: format!("VHD differencing disk (parent {parent})").into(),
        detail: "amiscan reads fixed and dynamic VHDs only; merge the chain into one image \
                 first, e.g. `qemu-img convert -O vpc CHILD.vhd MERGED.vhd` beside its parent"
            .into(),
    }
}

/// The parent's name (UTF-16BE in the header) and the paths of its W2ku/W2ru locators.
fn parent_description(file: &dyn BlockSource, header: &[u8]) -> String {
    let name = header
        .get(64..576)
        .map(|raw| utf16(raw, u16::from_be_bytes))
        .unwrap_or_default();
    let mut out = format!("{name:?}");
    for slot in 0..8usize {
        let at = 576 + slot * 24;
        let code = header.get(at..at + 4).unwrap_or_default();
        let kind = match code {
            b"W2ku" => "absolute path",
            b"W2ru" => "relative path",
            _ => continue,
        };
        let length = u64::from(be32(header, at + 8)).min(4096);
        let offset = be64(header, at + 16);
        let Ok(length) = usize::try_from(length) else {
            continue;
        };
        if let Ok(raw) = read_vec(file, offset, length) {
            out.push_str(&format!(", {kind} {:?}", utf16(&raw, u16::from_le_bytes)));
        }
    }
    out
}

/// UTF-16 text up to its first NUL, undecodable units replaced.
fn utf16(raw: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|pair| <[u8; 2]>::try_from(pair).map_or(0, unit))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

// ---------------------------------------------------------------------------------------
// The disks.
// ---------------------------------------------------------------------------------------

/// A fixed VHD: the first `len` bytes of the file.
#[derive(Debug)]
struct FixedDisk {
    file: Arc<dyn BlockSource>,
    name: String,
    len: u64,
}

impl BlockSource for FixedDisk {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len)?;
        self.file
            .read_exact_at(offset, buf)
            .map_err(|e| read_error(&self.name, "VHD fixed disk data", offset, &e))
    }
}

/// What a dynamic block's sector bitmap says, learnt on the block's first read.
const UNKNOWN: u8 = 0;
const ALL_SET: u8 = 1;
const ALL_CLEAR: u8 = 2;
const MIXED: u8 = 3;

/// A dynamic VHD: blocks found through the BAT, zeros where none is allocated.
struct DynamicDisk {
    file: Arc<dyn BlockSource>,
    name: String,
    size: u64,
    block_size: u64,
    /// Bytes of each block's sector bitmap, which precedes its data.
    bitmap_len: u64,
    /// Where the BAT lies, for error messages.
    table: u64,
    /// One entry per block of the virtual disk (only those; the table may be longer).
    bat: Vec<u32>,
    /// One of UNKNOWN, ALL_SET, ALL_CLEAR, MIXED per block: the common cases then cost no
    /// bitmap read after the first, and no lock is taken.
    bitmap_state: Vec<AtomicU8>,
}

impl fmt::Debug for DynamicDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicDisk")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("block_size", &self.block_size)
            .field("blocks", &self.bat.len())
            .finish_non_exhaustive()
    }
}

impl DynamicDisk {
    fn read_file(&self, at: u64, buf: &mut [u8], block: usize, what: &str) -> io::Result<()> {
        self.file
            .read_exact_at(at, buf)
            .map_err(|e| read_error(&self.name, &format!("VHD block {block} {what}"), at, &e))
    }

    /// The state of block `index`'s bitmap, reading the bitmap if it is not known yet.
    fn bitmap_state(&self, index: usize, block_start: u64) -> io::Result<u8> {
        let Some(slot) = self.bitmap_state.get(index) else {
            return Err(self.no_entry(index));
        };
        let known = slot.load(Ordering::Relaxed);
        if known != UNKNOWN {
            return Ok(known);
        }
        let sectors = self.block_size / SECTOR;
        let mut bitmap = vec![0u8; self.bitmap_len as usize];
        self.read_file(block_start, &mut bitmap, index, "sector bitmap")?;
        let whole = usize::try_from(sectors / 8).unwrap_or(usize::MAX);
        let (full, rest) = bitmap.split_at(whole.min(bitmap.len()));
        // Blocks of fewer than 8 sectors use only the high bits of the first byte.
        let tail_bits = (sectors % 8) as u32;
        let tail_mask = if tail_bits == 0 {
            0
        } else {
            0xffu8 << (8 - tail_bits)
        };
        let tail = rest.first().copied().unwrap_or(0) & tail_mask;
        let state = if full.iter().all(|&b| b == 0xff) && tail == tail_mask {
            ALL_SET
        } else if full.iter().all(|&b| b == 0) && tail == 0 {
            ALL_CLEAR
        } else {
            MIXED
        };
        slot.store(state, Ordering::Relaxed);
        Ok(state)
    }

    fn no_entry(&self, index: usize) -> io::Error {
        corrupt_read(
            CorruptKind::OutOfRange,
            &self.name,
            "VHD BAT",
            self.table,
            format!("no entry for block {index}"),
        )
    }

    /// Fills `buf` from `within` bytes into block `index`; the range lies inside the block.
    fn read_in_block(&self, index: usize, within: u64, buf: &mut [u8]) -> io::Result<()> {
        let entry = *self.bat.get(index).ok_or_else(|| self.no_entry(index))?;
        if entry == UNALLOCATED {
            buf.fill(0);
            return Ok(());
        }
        // Checked against the file's length when the image was opened.
        let block_start = u64::from(entry) * SECTOR;
        let data = block_start + self.bitmap_len;
        match self.bitmap_state(index, block_start)? {
            ALL_CLEAR => {
                buf.fill(0);
                Ok(())
            }
            MIXED => {
                self.read_file(data + within, buf, index, "data")?;
                self.clear_unwritten_sectors(index, block_start, within, buf)
            }
            _ => self.read_file(data + within, buf, index, "data"),
        }
    }

    /// Zeroes the parts of `buf` (at `within` in block `index`) whose sectors the bitmap
    /// marks as never written.
    fn clear_unwritten_sectors(
        &self,
        index: usize,
        block_start: u64,
        within: u64,
        buf: &mut [u8],
    ) -> io::Result<()> {
        let Some(last_byte) = (buf.len() as u64)
            .checked_sub(1)
            .and_then(|last| within.checked_add(last))
        else {
            return Ok(());
        };
        let first_sector = within / SECTOR;
        let last_sector = last_byte / SECTOR;
        let first_map_byte = first_sector / 8;
        let map_len = (last_sector / 8 - first_map_byte + 1) as usize;
        let mut map = vec![0u8; map_len];
        self.read_file(
            block_start + first_map_byte,
            &mut map,
            index,
            "sector bitmap",
        )?;
        for sector in first_sector..=last_sector {
            let byte = map
                .get((sector / 8 - first_map_byte) as usize)
                .copied()
                .unwrap_or(0);
            if byte & (0x80 >> (sector % 8)) != 0 {
                continue;
            }
            let from = (sector * SECTOR).max(within) - within;
            let to = ((sector + 1) * SECTOR).min(last_byte + 1) - within;
            if let Some(part) = buf.get_mut(from as usize..to as usize) {
                part.fill(0);
            }
        }
        Ok(())
    }
}

impl BlockSource for DynamicDisk {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        for_each_block(offset, buf, self.block_size, |block, within, now| {
            let index = usize::try_from(block).map_err(|_| self.no_entry(usize::MAX))?;
            self.read_in_block(index, within, now)
        })
    }
}

// ---------------------------------------------------------------------------------------
// Small helpers.
// ---------------------------------------------------------------------------------------

/// The VHD checksum: the one's complement of the sum of every byte except the 4-byte
/// checksum field at `field`.
fn checksum(bytes: &[u8], field: usize) -> u32 {
    let sum = bytes
        .iter()
        .enumerate()
        .filter(|(at, _)| !(field..field + 4).contains(at))
        .fold(0u32, |sum, (_, &b)| sum.wrapping_add(u32::from(b)));
    !sum
}

fn io_error(name: &str, source: io::Error) -> ContainerError {
    ContainerError::Io {
        path: name.to_string(),
        source,
    }
}

/// A failed read of the underlying file, naming the file, what was read and where.
fn read_error(name: &str, what: &str, at: u64, e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{name}: {what} at byte {at}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::MemoryImage;

    fn footer(disk_type: u32, data_offset: u64, size: u64) -> Vec<u8> {
        let mut f = vec![0u8; 512];
        f[..8].copy_from_slice(b"conectix");
        f[8..12].copy_from_slice(&2u32.to_be_bytes());
        f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        f[16..24].copy_from_slice(&data_offset.to_be_bytes());
        f[40..48].copy_from_slice(&size.to_be_bytes());
        f[48..56].copy_from_slice(&size.to_be_bytes());
        f[60..64].copy_from_slice(&disk_type.to_be_bytes());
        let sum = checksum(&f, 64);
        f[64..68].copy_from_slice(&sum.to_be_bytes());
        f
    }

    fn open_bytes(bytes: Vec<u8>) -> Result<Opened, ContainerError> {
        open_source(Arc::new(MemoryImage::new(bytes)), "t.vhd")
    }

    #[test]
    fn checksum_skips_its_field() {
        let f = footer(TYPE_FIXED, u64::MAX, 0);
        assert_eq!(be32(&f, 64), checksum(&f, 64));
        let mut g = f.clone();
        g[64] ^= 0xff;
        assert_eq!(checksum(&g, 64), checksum(&f, 64));
    }

    #[test]
    fn fixed_disk_is_the_bytes_before_the_footer() {
        let mut bytes: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        bytes.extend(footer(TYPE_FIXED, u64::MAX, 4096));
        let opened = open_bytes(bytes.clone()).unwrap();
        assert_eq!(opened.disk.len(), 4096);
        let mut buf = vec![0u8; 100];
        opened.disk.read_exact_at(4000, &mut buf[..96]).unwrap();
        assert_eq!(&buf[..96], &bytes[4000..4096]);
        assert!(opened.disk.read_exact_at(4000, &mut buf).is_err());
        assert_eq!(opened.info.subformat.as_deref(), Some("fixed"));
    }

    #[test]
    fn fixed_disk_larger_than_its_file_is_refused() {
        let mut bytes = vec![0u8; 1024];
        bytes.extend(footer(TYPE_FIXED, u64::MAX, 1025));
        let err = open_bytes(bytes).unwrap_err().to_string();
        assert!(err.contains("t.vhd: VHD footer at byte 1072"), "{err}");
    }

    #[test]
    fn tiny_and_garbage_files_are_refused() {
        for bytes in [
            vec![],
            vec![0u8; 100],
            vec![0u8; 4096],
            b"conectix".to_vec(),
        ] {
            assert!(open_bytes(bytes).is_err());
        }
    }

    #[test]
    fn fixed_disk_with_a_bad_footer_has_no_copy_to_fall_back_to() {
        let mut bytes = vec![0u8; 2048];
        bytes.extend(footer(TYPE_FIXED, u64::MAX, 2048));
        let at = bytes.len() - 500;
        bytes[at] ^= 1;
        let err = open_bytes(bytes).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }

    #[test]
    fn corruptions_are_told_apart_by_kind() {
        let kind = |bytes: Vec<u8>| open_bytes(bytes).unwrap_err().corrupt_kind();
        // A footer whose disk runs past the bytes before it.
        let mut larger = vec![0u8; 1024];
        larger.extend(footer(TYPE_FIXED, u64::MAX, 1025));
        assert_eq!(kind(larger), Some(CorruptKind::OutOfRange));
        // One flipped bit inside the footer's checksummed bytes.
        let mut flipped = vec![0u8; 2048];
        flipped.extend(footer(TYPE_FIXED, u64::MAX, 2048));
        let at = flipped.len() - 500;
        flipped[at] ^= 1;
        assert_eq!(kind(flipped), Some(CorruptKind::Checksum));
        // A disk type the format defines but amiscan does not read is not corruption.
        let mut other = vec![0u8; 512];
        other.extend(footer(5, u64::MAX, 512));
        let err = open_bytes(other).unwrap_err();
        assert!(matches!(err, ContainerError::Unsupported { .. }), "{err}");
        assert_eq!(err.corrupt_kind(), None);
    }

    #[test]
    fn other_disk_types_are_refused_by_number() {
        let mut bytes = vec![0u8; 512];
        bytes.extend(footer(5, u64::MAX, 512));
        let err = open_bytes(bytes).unwrap_err().to_string();
        assert!(err.contains("VHD disk type 5 is not supported"), "{err}");
    }
}
