//! VHDX containers (Hyper-V, Azure): fixed and dynamic disks.
//!
//! All fields are little-endian. The first 1 MiB is the header section: the file identifier
//! "vhdxfile" at 0, two 4 KiB headers ("head") at 64 KiB and 128 KiB, and two region
//! tables ("regi") at 192 KiB and 256 KiB, each protected by a CRC-32C. The current header
//! is the valid one with the higher sequence number; a header whose log GUID is not zero
//! has a log that must be replayed before the file is consistent, which is refused. The
//! region table locates the BAT and the metadata region; the metadata table ("metadata")
//! gives the block size, the virtual disk size and the sector sizes. The BAT holds one
//! 64-bit entry per payload block, with a sector bitmap entry after every `chunk ratio`
//! payload entries; a payload entry's low three bits are its state and bits 20..63 its
//! offset in MiB. Differencing disks (HasParent) are refused, naming their parent.
//!
//! Every offset is checked against the file's length before use, and every present block
//! is checked when the file is opened, which is how a truncated image is recognised.

use crate::bytes::{le16, le32, le64};
use crate::checksums::{ChecksumGuard, ChecksumPolicy};
use crate::image::CorruptKind;
use std::borrow::Cow;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{
    check_range, for_each_block, read_vec, BlockSource, ContainerError, ContainerInfo, Opened,
    RawImage,
};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const HEADER_AT: [u64; 2] = [64 * KIB, 128 * KIB];
const HEADER_LEN: u64 = 4 * KIB;
const REGION_TABLE_AT: [u64; 2] = [192 * KIB, 256 * KIB];
const REGION_TABLE_LEN: u64 = 64 * KIB;
/// The header section's fixed structures end here; regions must not begin inside them.
const HEADER_STRUCTURES_END: u64 = 320 * KIB;
const MAX_TABLE_ENTRIES: u64 = 2047;
const METADATA_TABLE_LEN: u64 = 64 * KIB;
const MIN_BLOCK_SIZE: u64 = MIB;
const MAX_BLOCK_SIZE: u64 = 256 * MIB;
const MAX_DISK_SIZE: u64 = 64 << 40;

type Guid = [u8; 16];

/// A GUID as VHDX stores it: the first three fields little-endian, the rest as written.
const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

const BAT_REGION: Guid = guid(
    0x2DC2_7766,
    0xF623,
    0x4200,
    [0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08],
);
const METADATA_REGION: Guid = guid(
    0x8B7C_A206,
    0x4790,
    0x4B9A,
    [0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E],
);
const FILE_PARAMETERS: Guid = guid(
    0xCAA1_6737,
    0xFA36,
    0x4D43,
    [0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B],
);
const VIRTUAL_DISK_SIZE: Guid = guid(
    0x2FA5_4224,
    0xCD1B,
    0x4876,
    [0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8],
);
const PAGE_83_DATA: Guid = guid(
    0xBECA_12AB,
    0xB2E6,
    0x4523,
    [0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46],
);
const LOGICAL_SECTOR_SIZE: Guid = guid(
    0x8141_BF1D,
    0xA96F,
    0x4709,
    [0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F],
);
const PHYSICAL_SECTOR_SIZE: Guid = guid(
    0xCDA3_48C7,
    0x445D,
    0x4471,
    [0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56],
);
const PARENT_LOCATOR: Guid = guid(
    0xA8D3_5F2D,
    0xB30B,
    0x454D,
    [0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C],
);

/// Payload block states (the low three bits of a BAT entry).
const PAYLOAD_NOT_PRESENT: u64 = 0;
const PAYLOAD_UNDEFINED: u64 = 1;
const PAYLOAD_ZERO: u64 = 2;
const PAYLOAD_UNMAPPED: u64 = 3;
/// UNMAPPED in version 0.95 of the specification; qemu reads it as zeros too.
const PAYLOAD_UNMAPPED_V095: u64 = 5;
const PAYLOAD_FULLY_PRESENT: u64 = 6;
const PAYLOAD_PARTIALLY_PRESENT: u64 = 7;

/// Opens a VHDX image read-only.
pub fn open(path: &Path) -> Result<Opened, ContainerError> {
    let name = path.display().to_string();
    let file = RawImage::open(path).map_err(|source| ContainerError::Io {
        path: name.clone(),
        source,
    })?;
    open_source(Arc::new(file), &name)
}

/// `open` under a checksum policy (see `open_source_with`).
pub fn open_with(path: &Path, policy: ChecksumPolicy) -> Result<Opened, ContainerError> {
    let name = path.display().to_string();
    let file = RawImage::open(path).map_err(|source| ContainerError::Io {
        path: name.clone(),
        source,
    })?;
    open_source_with(Arc::new(file), &name, policy)
}

/// Opens a VHDX held by any source (a file, or memory when fuzzing); `name` is the file
/// name errors give.
pub fn open_source(file: Arc<dyn BlockSource>, name: &str) -> Result<Opened, ContainerError> {
    parse(file, name, &ChecksumGuard::new(ChecksumPolicy::Verify))
}

/// `open_source` under a checksum policy. The image is read verifying every CRC-32C
/// first, so that a good copy of the header or region table is always preferred; only
/// when that fails on a checksum, and the policy is `Ignore`, is it read again letting
/// mismatching copies through, counted in `checksums_ignored`.
pub fn open_source_with(
    file: Arc<dyn BlockSource>,
    name: &str,
    policy: ChecksumPolicy,
) -> Result<Opened, ContainerError> {
    match open_source(Arc::clone(&file), name) {
        Err(e)
            if policy == ChecksumPolicy::Ignore
                && e.corrupt_kind() == Some(CorruptKind::Checksum) =>
        {
            let guard = ChecksumGuard::new(policy);
            let mut opened = parse(file, name, &guard)?;
            opened.info.checksums_ignored = guard.ignored();
            Ok(opened)
        }
        verified => verified,
    }
}

fn parse(
    file: Arc<dyn BlockSource>,
    name: &str,
    guard: &ChecksumGuard,
) -> Result<Opened, ContainerError> {
    let parser = Parser {
        file: file.as_ref(),
        name,
        guard,
    };
    parser.identifier()?;
    let header = parser.current_header()?;
    if header.log_guid != [0; 16] {
        return Err(ContainerError::Unsupported {
            path: name.to_string(),
            feature: "replaying a VHDX log".into(),
            detail: format!(
                "VHDX log needs replay (header {} at byte {} has log GUID {}): open it once \
                 in Hyper-V or run qemu-img check -r all on a copy",
                header.number,
                header.at,
                show_guid(&header.log_guid)
            ),
        });
    }
    let regions = parser.regions()?;
    let metadata = parser.metadata(&regions.metadata)?;
    let blocks = parser.payload_blocks(&regions.bat, &metadata)?;
    let subformat = if metadata.leave_blocks_allocated {
        "fixed"
    } else {
        "dynamic"
    };
    Ok(Opened {
        disk: Arc::new(VhdxDisk {
            file,
            name: name.to_string(),
            size: metadata.disk_size,
            block_size: metadata.block_size,
            blocks,
        }),
        info: ContainerInfo {
            subformat: Some(subformat.to_string()),
            ..ContainerInfo::default()
        },
    })
}

struct Header {
    /// 1 or 2.
    number: u8,
    at: u64,
    sequence: u64,
    log_guid: Guid,
}

/// A region table entry, checked to lie after the header section and inside the file.
#[derive(Debug, Clone, Copy)]
struct Region {
    offset: u64,
    length: u64,
    /// Where its entry lies, for error messages.
    entry_at: u64,
}

struct Regions {
    bat: Region,
    metadata: Region,
}

struct Metadata {
    block_size: u64,
    leave_blocks_allocated: bool,
    disk_size: u64,
    logical_sector_size: u64,
}

/// Reading the structures of one file.
struct Parser<'a> {
    file: &'a dyn BlockSource,
    name: &'a str,
    guard: &'a ChecksumGuard,
}

impl Parser<'_> {
    fn corrupt(
        &self,
        kind: CorruptKind,
        structure: impl Into<Cow<'static, str>>,
        at: u64,
        detail: String,
    ) -> ContainerError {
        ContainerError::corrupt(kind, self.name, structure, at, detail)
    }

    fn unsupported(&self, feature: String, detail: &str) -> ContainerError {
        ContainerError::Unsupported {
            path: self.name.to_string(),
            feature: feature.into(),
            detail: detail.to_string(),
        }
    }

    /// Reads `len` bytes that must lie inside the file; `structure` names them on failure.
    fn read(
        &self,
        structure: impl Into<Cow<'static, str>> + Clone,
        at: u64,
        len: u64,
    ) -> Result<Vec<u8>, ContainerError> {
        let file_len = self.file.len();
        if at.checked_add(len).is_none_or(|end| end > file_len) {
            return Err(self.corrupt(
                CorruptKind::OutOfRange,
                structure.clone(),
                at,
                format!("{len} bytes run past the end of the {file_len}-byte file"),
            ));
        }
        let len = usize::try_from(len).map_err(|_| {
            self.corrupt(
                CorruptKind::TooLarge,
                structure,
                at,
                format!("{len} bytes is too large"),
            )
        })?;
        read_vec(self.file, at, len).map_err(|source| ContainerError::Io {
            path: self.name.to_string(),
            source,
        })
    }

    fn identifier(&self) -> Result<(), ContainerError> {
        let bytes = self.read("VHDX file identifier", 0, 8)?;
        if bytes != b"vhdxfile" {
            return Err(self.corrupt(
                CorruptKind::Magic,
                "VHDX file identifier",
                0,
                "no \"vhdxfile\" signature".into(),
            ));
        }
        Ok(())
    }

    fn header(&self, number: u8, at: u64) -> Result<Header, CopyError> {
        let mut bytes = read_vec(self.file, at, HEADER_LEN as usize).map_err(CopyError::Read)?;
        if bytes.get(..4) != Some(b"head".as_slice()) {
            return Err(CopyError::Signature("head"));
        }
        verify_crc(&mut bytes, self.guard)?;
        let version = le16(&bytes, 66);
        if version != 1 {
            return Err(CopyError::Version(version));
        }
        Ok(Header {
            number,
            at,
            sequence: le64(&bytes, 8),
            log_guid: guid_at(&bytes, 48),
        })
    }

    /// The valid header with the higher sequence number.
    fn current_header(&self) -> Result<Header, ContainerError> {
        let [first, second] = HEADER_AT;
        match (self.header(1, first), self.header(2, second)) {
            (Ok(one), Ok(two)) => Ok(if two.sequence > one.sequence {
                two
            } else {
                one
            }),
            (Ok(one), Err(_)) => Ok(one),
            (Err(_), Ok(two)) => Ok(two),
            (Err(one), Err(two)) => Err(self.corrupt(
                one.kind_with(&two),
                "VHDX headers",
                first,
                format!(
                    "neither header is valid: header 1: {one}; header 2 (byte {second}): {two}"
                ),
            )),
        }
    }

    fn region_table(&self, at: u64) -> Result<Vec<(Guid, u64, u64, bool)>, CopyError> {
        let mut bytes =
            read_vec(self.file, at, REGION_TABLE_LEN as usize).map_err(CopyError::Read)?;
        if bytes.get(..4) != Some(b"regi".as_slice()) {
            return Err(CopyError::Signature("regi"));
        }
        verify_crc(&mut bytes, self.guard)?;
        let count = u64::from(le32(&bytes, 8));
        if count > MAX_TABLE_ENTRIES {
            return Err(CopyError::TooManyEntries(count));
        }
        Ok((0..count as usize)
            .map(|i| {
                let e = 16 + i * 32;
                (
                    guid_at(&bytes, e),
                    le64(&bytes, e + 16),
                    u64::from(le32(&bytes, e + 24)),
                    le32(&bytes, e + 28) & 1 != 0,
                )
            })
            .collect())
    }

    /// The BAT and metadata regions from the first valid region table.
    fn regions(&self) -> Result<Regions, ContainerError> {
        let [first, second] = REGION_TABLE_AT;
        let (table_at, entries) = match self.region_table(first) {
            Ok(entries) => (first, entries),
            Err(one) => match self.region_table(second) {
                Ok(entries) => (second, entries),
                Err(two) => {
                    return Err(self.corrupt(
                        one.kind_with(&two),
                        "VHDX region tables",
                        first,
                        format!(
                            "neither region table is valid: table 1: {one}; table 2 (byte \
                             {second}): {two}"
                        ),
                    ))
                }
            },
        };
        let mut bat = None;
        let mut metadata = None;
        for (index, (id, offset, length, required)) in entries.into_iter().enumerate() {
            let entry_at = table_at + 16 + index as u64 * 32;
            let structure = format!("VHDX region table entry {index}");
            let slot = if id == BAT_REGION {
                &mut bat
            } else if id == METADATA_REGION {
                &mut metadata
            } else if required {
                return Err(self.unsupported(
                    format!("the VHDX region {} (marked required)", show_guid(&id)),
                    "amiscan knows only the BAT and metadata regions",
                ));
            } else {
                continue;
            };
            if slot.is_some() {
                return Err(self.corrupt(
                    CorruptKind::Invalid,
                    structure,
                    entry_at,
                    format!("a second {} region", region_name(&id)),
                ));
            }
            if offset < HEADER_STRUCTURES_END || length == 0 {
                return Err(self.corrupt(
                    CorruptKind::OutOfRange,
                    structure,
                    entry_at,
                    format!(
                        "{} region at byte {offset}, {length} bytes: it must be non-empty and \
                         lie after the header section",
                        region_name(&id)
                    ),
                ));
            }
            *slot = Some(Region {
                offset,
                length,
                entry_at,
            });
        }
        match (bat, metadata) {
            (Some(bat), Some(metadata)) => Ok(Regions { bat, metadata }),
            (None, _) => Err(self.corrupt(
                CorruptKind::Invalid,
                "VHDX region table",
                table_at,
                "no BAT region".into(),
            )),
            (_, None) => Err(self.corrupt(
                CorruptKind::Invalid,
                "VHDX region table",
                table_at,
                "no metadata region".into(),
            )),
        }
    }

    fn metadata(&self, region: &Region) -> Result<Metadata, ContainerError> {
        let table_at = region.offset;
        let header = self.read("VHDX metadata table", table_at, 32)?;
        if header.get(..8) != Some(b"metadata".as_slice()) {
            return Err(self.corrupt(
                CorruptKind::Magic,
                "VHDX metadata table",
                table_at,
                "no \"metadata\" signature".into(),
            ));
        }
        let count = u64::from(le16(&header, 10));
        if count > MAX_TABLE_ENTRIES || region.length < METADATA_TABLE_LEN {
            return Err(self.corrupt(
                CorruptKind::Invalid,
                "VHDX metadata table",
                table_at,
                format!(
                    "{count} entries in a {}-byte region (at most {MAX_TABLE_ENTRIES} entries, \
                     and the region holds at least the 64 KiB table)",
                    region.length
                ),
            ));
        }
        let entries = self.read("VHDX metadata table", table_at + 32, count * 32)?;
        // (id, where the item lies, its declared length, its first bytes)
        let mut items: Vec<(Guid, u64, u64, Vec<u8>)> = Vec::new();
        for index in 0..count as usize {
            let e = index * 32;
            let entry_at = table_at + 32 + e as u64;
            let structure = format!("VHDX metadata entry {index}");
            let id = guid_at(&entries, e);
            let offset = u64::from(le32(&entries, e + 16));
            let length = u64::from(le32(&entries, e + 20));
            let required = le32(&entries, e + 24) & 4 != 0;
            let known = [
                FILE_PARAMETERS,
                VIRTUAL_DISK_SIZE,
                PAGE_83_DATA,
                LOGICAL_SECTOR_SIZE,
                PHYSICAL_SECTOR_SIZE,
                PARENT_LOCATOR,
            ]
            .contains(&id);
            if !known {
                if required {
                    return Err(self.unsupported(
                        format!(
                            "the VHDX metadata item {} (marked required)",
                            show_guid(&id)
                        ),
                        "amiscan knows only the items of a fixed or dynamic disk",
                    ));
                }
                continue;
            }
            if items.iter().any(|(seen, _, _, _)| *seen == id) {
                return Err(self.corrupt(
                    CorruptKind::Invalid,
                    structure,
                    entry_at,
                    format!("a second {} item", item_name(&id)),
                ));
            }
            let inside = length == 0
                || (offset >= METADATA_TABLE_LEN
                    && offset
                        .checked_add(length)
                        .is_some_and(|end| end <= region.length));
            if !inside {
                return Err(self.corrupt(
                    CorruptKind::OutOfRange,
                    structure,
                    entry_at,
                    format!(
                        "{} item at offset {offset}, {length} bytes, does not lie after the \
                         table inside the {}-byte metadata region",
                        item_name(&id),
                        region.length
                    ),
                ));
            }
            // The locator is read only to name the parent; the others are a few bytes.
            let wanted = if id == PARENT_LOCATOR {
                length.min(64 * KIB)
            } else {
                length.min(16)
            };
            let item_at = table_at + offset;
            let bytes = self.read(format!("VHDX {} item", item_name(&id)), item_at, wanted)?;
            items.push((id, item_at, length, bytes));
        }
        let item = |id: Guid, len: u64| -> Result<(u64, Vec<u8>), ContainerError> {
            match items.iter().find(|(seen, _, _, _)| *seen == id) {
                Some((_, at, length, bytes)) if *length == len => Ok((*at, bytes.clone())),
                Some((_, at, length, _)) => Err(self.corrupt(
                    CorruptKind::Invalid,
                    format!("VHDX {} item", item_name(&id)),
                    *at,
                    format!("{length} bytes (expected {len})"),
                )),
                None => Err(self.corrupt(
                    CorruptKind::Invalid,
                    "VHDX metadata table",
                    table_at,
                    format!("no {} item", item_name(&id)),
                )),
            }
        };

        let (params_at, params) = item(FILE_PARAMETERS, 8)?;
        let block_size = u64::from(le32(&params, 0));
        let flags = le32(&params, 4);
        if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size)
        {
            return Err(self.corrupt(
                CorruptKind::Invalid,
                "VHDX file parameters",
                params_at,
                format!("block size {block_size} is not a power of two from 1 MiB to 256 MiB"),
            ));
        }
        if flags & 2 != 0 {
            let parent = items
                .iter()
                .find(|(id, _, _, _)| *id == PARENT_LOCATOR)
                .map_or_else(
                    || "unknown".to_string(),
                    |(_, _, _, b)| parent_description(b),
                );
            return Err(self.unsupported(
                format!("VHDX differencing disk (parent {parent})"),
                "amiscan reads fixed and dynamic VHDX files only; merge the chain into one \
                 image first, e.g. `qemu-img convert -O vhdx CHILD.vhdx MERGED.vhdx` beside \
                 its parent",
            ));
        }
        let (size_at, size) = item(VIRTUAL_DISK_SIZE, 8)?;
        let disk_size = le64(&size, 0);
        if disk_size > MAX_DISK_SIZE {
            return Err(self.corrupt(
                CorruptKind::Invalid,
                "VHDX virtual disk size",
                size_at,
                format!("{disk_size} bytes is more than the format's 64 TiB"),
            ));
        }
        let (lss_at, lss) = item(LOGICAL_SECTOR_SIZE, 4)?;
        let logical_sector_size = u64::from(le32(&lss, 0));
        if logical_sector_size != 512 && logical_sector_size != 4096 {
            return Err(self.corrupt(
                CorruptKind::Invalid,
                "VHDX logical sector size",
                lss_at,
                format!("{logical_sector_size} (expected 512 or 4096)"),
            ));
        }
        if items
            .iter()
            .any(|(id, _, _, _)| *id == PHYSICAL_SECTOR_SIZE)
        {
            let (pss_at, pss) = item(PHYSICAL_SECTOR_SIZE, 4)?;
            let physical = le32(&pss, 0);
            if physical != 512 && physical != 4096 {
                return Err(self.corrupt(
                    CorruptKind::Invalid,
                    "VHDX physical sector size",
                    pss_at,
                    format!("{physical} (expected 512 or 4096)"),
                ));
            }
        }
        if items.iter().any(|(id, _, _, _)| *id == PAGE_83_DATA) {
            item(PAGE_83_DATA, 16)?;
        }
        Ok(Metadata {
            block_size,
            leave_blocks_allocated: flags & 1 != 0,
            disk_size,
            logical_sector_size,
        })
    }

    /// Each payload block's offset in the file, or 0 for a block that reads as zeros.
    fn payload_blocks(&self, bat: &Region, meta: &Metadata) -> Result<Vec<u64>, ContainerError> {
        let file_len = self.file.len();
        // At least 16: the block size is at most 2^28 and the sector size at least 2^9.
        let chunk_ratio = (1u64 << 23) * meta.logical_sector_size / meta.block_size;
        let blocks = meta.disk_size.div_ceil(meta.block_size);
        let entries = match blocks.checked_sub(1) {
            Some(last) => blocks + last / chunk_ratio,
            None => 0,
        };
        // At most 2^26 entries (64 TiB in 1 MiB blocks, plus bitmaps): no overflow.
        let bytes = entries * 8;
        if bytes > bat.length {
            return Err(self.corrupt(
                CorruptKind::Truncated,
                "VHDX region table entry for the BAT",
                bat.entry_at,
                format!(
                    "the BAT region of {} bytes is too small for the {entries} entries \
                     ({bytes} bytes) a {}-byte disk in {}-byte blocks needs",
                    bat.length, meta.disk_size, meta.block_size
                ),
            ));
        }
        let table = self.read("VHDX BAT", bat.offset, bytes)?;
        let mut offsets = Vec::with_capacity(blocks as usize);
        for block in 0..blocks {
            let index = block + block / chunk_ratio;
            let entry_at = bat.offset + index * 8;
            let entry = le64(&table, index as usize * 8);
            let state = entry & 7;
            let offset = (entry >> 20) * MIB;
            let structure = || format!("VHDX BAT entry {index}");
            match state {
                PAYLOAD_NOT_PRESENT
                | PAYLOAD_UNDEFINED
                | PAYLOAD_ZERO
                | PAYLOAD_UNMAPPED
                | PAYLOAD_UNMAPPED_V095 => offsets.push(0),
                PAYLOAD_FULLY_PRESENT => {
                    let first = block * meta.block_size;
                    let in_disk = meta.block_size.min(meta.disk_size - first);
                    let inside = offset >= MIB
                        && offset
                            .checked_add(in_disk)
                            .is_some_and(|end| end <= file_len);
                    if !inside {
                        return Err(self.corrupt(
                            CorruptKind::OutOfRange,
                            structure(),
                            entry_at,
                            format!(
                                "payload block {block} at byte {offset} ({in_disk} bytes) does \
                                 not lie between the header section and the end of the \
                                 {file_len}-byte file (truncated?)"
                            ),
                        ));
                    }
                    offsets.push(offset);
                }
                PAYLOAD_PARTIALLY_PRESENT => {
                    return Err(self.corrupt(
                        CorruptKind::Invalid,
                        structure(),
                        entry_at,
                        format!(
                            "payload block {block} is PARTIALLY_PRESENT, which only \
                             differencing disks use"
                        ),
                    ))
                }
                other => {
                    return Err(self.corrupt(
                        CorruptKind::Invalid,
                        structure(),
                        entry_at,
                        format!("payload block {block} has the invalid state {other}"),
                    ))
                }
            }
        }
        Ok(offsets)
    }
}

/// Why one copy of a structure the format keeps twice (the header, the region table) is
/// not valid; the other copy may still be.
#[derive(Debug, thiserror::Error)]
enum CopyError {
    #[error("{0}")]
    Read(io::Error),
    #[error("no \"{0}\" signature")]
    Signature(&'static str),
    #[error("CRC-32C {stored:#010x} does not match its bytes ({computed:#010x})")]
    Crc { stored: u32, computed: u32 },
    #[error("version {0} (expected 1)")]
    Version(u16),
    #[error("{0} entries (at most {MAX_TABLE_ENTRIES})")]
    TooManyEntries(u64),
}

impl CopyError {
    fn kind(&self) -> CorruptKind {
        match self {
            Self::Read(e) if e.kind() == io::ErrorKind::UnexpectedEof => CorruptKind::OutOfRange,
            Self::Read(_) => CorruptKind::Unreadable,
            Self::Signature(_) => CorruptKind::Magic,
            Self::Crc { .. } => CorruptKind::Checksum,
            Self::Version(_) => CorruptKind::Invalid,
            Self::TooManyEntries(_) => CorruptKind::TooLarge,
        }
    }

    /// The kind when both copies failed: theirs when they agree, else merely invalid.
    fn kind_with(&self, other: &Self) -> CorruptKind {
        if self.kind() == other.kind() {
            self.kind()
        } else {
            CorruptKind::Invalid
        }
    }
}

/// Checks a structure's CRC-32C, computed with its checksum field (bytes 4..8) zeroed.
fn verify_crc(bytes: &mut [u8], guard: &ChecksumGuard) -> Result<(), CopyError> {
    let stored = le32(bytes, 4);
    if let Some(field) = bytes.get_mut(4..8) {
        field.fill(0);
    }
    let computed = crc32c(bytes);
    guard.check(stored == computed, || CopyError::Crc { stored, computed })
}

fn region_name(id: &Guid) -> &'static str {
    if *id == BAT_REGION {
        "BAT"
    } else {
        "metadata"
    }
}

fn item_name(id: &Guid) -> &'static str {
    match *id {
        FILE_PARAMETERS => "file parameters",
        VIRTUAL_DISK_SIZE => "virtual disk size",
        PAGE_83_DATA => "page 83 data",
        LOGICAL_SECTOR_SIZE => "logical sector size",
        PHYSICAL_SECTOR_SIZE => "physical sector size",
        PARENT_LOCATOR => "parent locator",
        _ => "unknown",
    }
}

/// The parent paths a parent locator lists (UTF-16LE keys and values).
fn parent_description(locator: &[u8]) -> String {
    let count = usize::from(le16(locator, 18));
    let mut found = Vec::new();
    for index in 0..count.min(64) {
        let e = 20 + index * 12;
        let text = |offset: u32, length: u16| -> Option<String> {
            let start = usize::try_from(offset).ok()?;
            let raw = locator.get(start..start.checked_add(usize::from(length))?)?;
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|pair| <[u8; 2]>::try_from(pair).map_or(0, u16::from_le_bytes))
                .collect();
            Some(String::from_utf16_lossy(&units))
        };
        let key = text(le32(locator, e), le16(locator, e + 8));
        let value = text(le32(locator, e + 4), le16(locator, e + 10));
        if let (Some(key), Some(value)) = (key, value) {
            if matches!(
                key.as_str(),
                "relative_path" | "absolute_win32_path" | "volume_path"
            ) {
                found.push(format!("{key} {value:?}"));
            }
        }
    }
    if found.is_empty() {
        "unknown".to_string()
    } else {
        found.join(", ")
    }
}

/// VHDX GUIDs are shown in upper case, as Hyper-V shows them.
fn show_guid(id: &Guid) -> String {
    crate::bytes::mixed_endian_guid(id).to_uppercase()
}

fn guid_at(bytes: &[u8], at: usize) -> Guid {
    bytes
        .get(at..at + 16)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; 16])
}

/// CRC-32C, as VHDX checksums use it.
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    crate::crc32c::checksum(bytes)
}

// ---------------------------------------------------------------------------------------
// The disk.
// ---------------------------------------------------------------------------------------

/// A VHDX's virtual disk: payload blocks found through the BAT, zeros where none is present.
struct VhdxDisk {
    file: Arc<dyn BlockSource>,
    name: String,
    size: u64,
    block_size: u64,
    /// Each payload block's offset in the file (checked to lie inside it), 0 for zeros.
    blocks: Vec<u64>,
}

impl fmt::Debug for VhdxDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VhdxDisk")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("block_size", &self.block_size)
            .field("blocks", &self.blocks.len())
            .finish_non_exhaustive()
    }
}

impl BlockSource for VhdxDisk {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        for_each_block(offset, buf, self.block_size, |block, within, now| {
            let start = usize::try_from(block)
                .ok()
                .and_then(|b| self.blocks.get(b))
                .copied()
                .ok_or_else(|| {
                    super::corrupt_read(
                        CorruptKind::OutOfRange,
                        &self.name,
                        "VHDX BAT",
                        0,
                        format!("no entry for payload block {block}"),
                    )
                })?;
            if start == 0 {
                now.fill(0);
                return Ok(());
            }
            // Checked when the file was opened: the block lies inside the file.
            let at = start + within;
            self.file.read_exact_at(at, now).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "{}: VHDX payload block {block} at byte {at}: {e}",
                        self.name
                    ),
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_known_vectors() {
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
    }

    #[test]
    fn guids_are_stored_mixed_endian_and_shown_as_written() {
        assert_eq!(
            BAT_REGION[..8],
            [0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42]
        );
        assert_eq!(
            show_guid(&METADATA_REGION),
            "8B7CA206-4790-4B9A-B8FE-575F050F886E"
        );
    }

    #[test]
    fn parent_locator_paths_are_named() {
        let key: Vec<u8> = "relative_path"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let value: Vec<u8> = "..\\base.vhdx"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut locator = vec![0u8; 32];
        locator[18..20].copy_from_slice(&1u16.to_le_bytes());
        let key_at = locator.len() as u32;
        locator.extend(&key);
        let value_at = locator.len() as u32;
        locator.extend(&value);
        locator[20..24].copy_from_slice(&key_at.to_le_bytes());
        locator[24..28].copy_from_slice(&value_at.to_le_bytes());
        locator[28..30].copy_from_slice(&(key.len() as u16).to_le_bytes());
        locator[30..32].copy_from_slice(&(value.len() as u16).to_le_bytes());
        assert_eq!(
            parent_description(&locator),
            "relative_path \"..\\\\base.vhdx\""
        );
        assert_eq!(parent_description(&[0xff; 40]), "unknown");
    }
}
