//! The hosted sparse extent header ("KDMV"), its footer copy in stream-optimized extents,
//! and the checks every field passes before it is used.

use crate::bytes::{le16, le32, le64};
use crate::image::CorruptKind;
use crate::image::{BlockSource, ContainerError};

pub(super) const SECTOR: u64 = 512;
pub(super) const MAGIC: &[u8; 4] = b"KDMV";
/// `gdOffset` of a stream-optimized extent whose grain directory follows the grains.
pub(super) const GD_AT_END: u64 = u64::MAX;

const FLAG_NEWLINE_TEST: u32 = 1;
const FLAG_ZEROED_GRAIN: u32 = 1 << 2;
/// singleEndLineChar, nonEndLineChar, doubleEndLineChar1 and 2, at byte 73.
const NEWLINE_TEST: [u8; 4] = *b"\n \r\n";
const FLAG_COMPRESSED: u32 = 1 << 16;
const FLAG_MARKERS: u32 = 1 << 17;
const COMPRESS_DEFLATE: u16 = 1;

/// Largest grain accepted: 16 MiB (VMware and QEMU write 64 KiB grains).
pub(super) const MAX_GRAIN_SECTORS: u64 = 32_768;
/// Largest grain table accepted: the format's 512 entries, the most qemu opens ("L2 table
/// size too big"); a larger one is no image a hypervisor would boot.
const MAX_GTES_PER_GT: u32 = 512;
/// Largest grain directory accepted: 4 Mi entries, 16 MiB, which with 64 KiB grains and
/// 512-entry tables maps 128 TiB.
pub(super) const MAX_GD_ENTRIES: u64 = 4 << 20;
/// Largest embedded descriptor accepted, in sectors (1 MiB).
pub(super) const MAX_DESCRIPTOR_SECTORS: u64 = 2048;

/// Marker types of stream-optimized extents (a marker with a zero `size`).
pub(super) fn marker_type_name(kind: u32) -> &'static str {
    match kind {
        0 => "end-of-stream",
        1 => "grain table",
        2 => "grain directory",
        3 => "footer",
        _ => "unknown",
    }
}

/// The header's fields as stored (little-endian, packed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RawHeader {
    pub magic: [u8; 4],
    pub version: u32,
    pub flags: u32,
    pub capacity: u64,
    pub grain_size: u64,
    pub descriptor_offset: u64,
    pub descriptor_size: u64,
    pub num_gtes_per_gt: u32,
    pub gd_offset: u64,
    /// overHead: sectors of metadata before the first grain.
    pub overhead: u64,
    pub newline_test: [u8; 4],
    pub compress_algorithm: u16,
}

impl RawHeader {
    pub(super) fn parse(bytes: &[u8; 512]) -> Self {
        let mut magic = [0u8; 4];
        if let Some(head) = bytes.get(..4) {
            magic.copy_from_slice(head);
        }
        let mut newline_test = [0u8; 4];
        if let Some(chars) = bytes.get(73..77) {
            newline_test.copy_from_slice(chars);
        }
        Self {
            magic,
            version: le32(bytes, 4),
            flags: le32(bytes, 8),
            capacity: le64(bytes, 12),
            grain_size: le64(bytes, 20),
            descriptor_offset: le64(bytes, 28),
            descriptor_size: le64(bytes, 36),
            num_gtes_per_gt: le32(bytes, 44),
            // 48: rgdOffset, the redundant directory, is never read.
            gd_offset: le64(bytes, 56),
            overhead: le64(bytes, 64),
            // 72: uncleanShutdown.
            newline_test,
            compress_algorithm: le16(bytes, 77),
        }
    }
}

/// A validated sparse header: every size fits the limits and every region the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    pub capacity_bytes: u64,
    pub grain_bytes: u64,
    pub gtes_per_gt: u32,
    /// Byte offset of the grain directory in the file.
    pub gd_at: u64,
    pub gd_entries: u64,
    pub zeroed_grain: bool,
    pub compressed: bool,
    /// Byte range of the embedded descriptor, when there is one.
    pub descriptor: Option<(u64, u64)>,
}

fn corrupt(kind: CorruptKind, path: &str, field: &str, at: u64, detail: String) -> ContainerError {
    ContainerError::corrupt(
        kind,
        path,
        format!("VMDK sparse header field {field}"),
        at,
        detail,
    )
}

fn unsupported(path: &str, feature: String, detail: String) -> ContainerError {
    ContainerError::Unsupported {
        path: path.to_string(),
        feature: feature.into(),
        detail,
    }
}

/// Whether `len` bytes at `at` lie inside a file of `file_len` bytes.
pub(super) fn inside(at: u64, len: u64, file_len: u64) -> bool {
    at.checked_add(len).is_some_and(|end| end <= file_len)
}

/// Reads and validates the header at byte 0 of `source` (and, for a stream-optimized
/// extent whose directory is at the end, the footer's copy of it).
pub(super) fn read_layout(source: &dyn BlockSource, path: &str) -> Result<Layout, ContainerError> {
    let file_len = source.len();
    let header = read_header_at(source, path, 0, "VMDK sparse header")?;
    if &header.magic != MAGIC {
        return Err(ContainerError::corrupt(
            CorruptKind::Magic,
            path,
            "VMDK sparse header",
            0,
            format!(
                "magic {:02x?} is not \"KDMV\": not a hosted sparse extent",
                header.magic
            ),
        ));
    }
    check_flags(&header, path)?;
    let header = if header.gd_offset == GD_AT_END {
        if header.flags & FLAG_MARKERS == 0 {
            return Err(corrupt(CorruptKind::Invalid,
                path,
                "gdOffset",
                56,
                "the grain directory is \"at the end\" (0xffffffffffffffff) but the extent has no markers".into(),
            ));
        }
        let footer = read_footer(source, path)?;
        check_flags(&footer, path)?;
        if footer.gd_offset == GD_AT_END {
            let at = file_len.saturating_sub(1024).saturating_add(56);
            return Err(ContainerError::corrupt(
                CorruptKind::Invalid,
                path,
                "VMDK footer header field gdOffset",
                at,
                "the footer's copy of the header does not locate the grain directory either",
            ));
        }
        // Like QEMU, the footer's copy replaces the header: it is the one written last.
        // The descriptor, though, is only ever described by the leading header.
        RawHeader {
            descriptor_offset: header.descriptor_offset,
            descriptor_size: header.descriptor_size,
            ..footer
        }
    } else {
        header
    };
    validate(&header, path, file_len)
}

fn read_header_at(
    source: &dyn BlockSource,
    path: &str,
    at: u64,
    what: &'static str,
) -> Result<RawHeader, ContainerError> {
    let file_len = source.len();
    if !inside(at, SECTOR, file_len) {
        return Err(ContainerError::corrupt(
            CorruptKind::Truncated,
            path,
            what,
            at,
            format!("the {file_len}-byte file is too short to hold it (512 bytes)"),
        ));
    }
    let mut bytes = [0u8; 512];
    source.read_exact_at(at, &mut bytes).map_err(|e| {
        ContainerError::corrupt(
            CorruptKind::Unreadable,
            path,
            what,
            at,
            format!("cannot read: {e}"),
        )
    })?;
    Ok(RawHeader::parse(&bytes))
}

fn check_flags(header: &RawHeader, path: &str) -> Result<(), ContainerError> {
    if !(1..=3).contains(&header.version) {
        return Err(unsupported(
            path,
            format!("VMDK sparse extent version {}", header.version),
            "versions 1, 2 and 3 are read".into(),
        ));
    }
    if header.flags & FLAG_NEWLINE_TEST != 0 && header.newline_test != NEWLINE_TEST {
        return Err(corrupt(CorruptKind::Invalid,
            path,
            "singleEndLineChar",
            73,
            format!(
                "the newline detection characters read {:02x?}, not 0a 20 0d 0a: the file was altered, as by a text-mode transfer",
                header.newline_test
            ),
        ));
    }
    let compressed = header.flags & FLAG_COMPRESSED != 0;
    let markers = header.flags & FLAG_MARKERS != 0;
    if compressed != markers {
        return Err(unsupported(
            path,
            format!("a VMDK sparse extent with flags {:#x}", header.flags),
            "compressed grains are read only with grain markers (stream-optimized), and markers only with compression".into(),
        ));
    }
    if compressed && header.compress_algorithm != COMPRESS_DEFLATE {
        return Err(unsupported(
            path,
            format!("VMDK compression algorithm {}", header.compress_algorithm),
            "only deflate (1) is defined".into(),
        ));
    }
    Ok(())
}

/// The footer of a stream-optimized extent: footer marker, header copy, end-of-stream
/// marker, the last three sectors of the file.
fn read_footer(source: &dyn BlockSource, path: &str) -> Result<RawHeader, ContainerError> {
    let file_len = source.len();
    let Some(at) = file_len.checked_sub(3 * SECTOR).filter(|at| *at >= SECTOR) else {
        return Err(ContainerError::corrupt(CorruptKind::Truncated,
            path,
            "VMDK footer",
            0,
            format!(
                "the {file_len}-byte file is too short to hold a header and a footer (2048 bytes): the stream was cut short"
            ),
        ));
    };
    let mut bytes = [0u8; 1536];
    source.read_exact_at(at, &mut bytes).map_err(|e| {
        ContainerError::corrupt(
            CorruptKind::Unreadable,
            path,
            "VMDK footer",
            at,
            format!("cannot read: {e}"),
        )
    })?;
    let (marker_size, marker_type) = (le32(&bytes, 8), le32(&bytes, 12));
    if marker_size != 0 || marker_type != 3 {
        return Err(ContainerError::corrupt(CorruptKind::Truncated,
            path,
            "VMDK footer marker",
            at,
            format!(
                "expected a footer marker (size 0, type 3), found size {marker_size} type {marker_type}: the stream was cut short or is corrupt"
            ),
        ));
    }
    let eos_at = at + 2 * SECTOR;
    let (eos_val, eos_size, eos_type) =
        (le64(&bytes, 1024), le32(&bytes, 1032), le32(&bytes, 1036));
    if eos_val != 0 || eos_size != 0 || eos_type != 0 {
        return Err(ContainerError::corrupt(CorruptKind::Invalid,
            path,
            "VMDK end-of-stream marker",
            eos_at,
            "the last sector of a stream-optimized extent must be an end-of-stream marker (all zeros)",
        ));
    }
    let mut header = [0u8; 512];
    if let Some(copy) = bytes.get(512..1024) {
        header.copy_from_slice(copy);
    }
    let footer = RawHeader::parse(&header);
    if &footer.magic != MAGIC {
        return Err(ContainerError::corrupt(
            CorruptKind::Magic,
            path,
            "VMDK footer header",
            at + SECTOR,
            format!("magic {:02x?} is not \"KDMV\"", footer.magic),
        ));
    }
    Ok(footer)
}

fn validate(header: &RawHeader, path: &str, file_len: u64) -> Result<Layout, ContainerError> {
    if header.grain_size == 0 || header.grain_size > MAX_GRAIN_SECTORS {
        return Err(corrupt(
            CorruptKind::OutOfRange,
            path,
            "grainSize",
            20,
            format!(
                "{} sectors is outside 1..={MAX_GRAIN_SECTORS}",
                header.grain_size
            ),
        ));
    }
    let grain_bytes = header.grain_size * SECTOR;
    let capacity_bytes = header
        .capacity
        .checked_mul(SECTOR)
        .filter(|bytes| *bytes > 0 && *bytes <= i64::MAX as u64)
        .ok_or_else(|| {
            corrupt(
                CorruptKind::Invalid,
                path,
                "capacity",
                12,
                format!("{} sectors is not a usable disk size", header.capacity),
            )
        })?;
    let gtes = header.num_gtes_per_gt;
    if gtes == 0 || gtes > MAX_GTES_PER_GT {
        return Err(corrupt(
            CorruptKind::OutOfRange,
            path,
            "numGTEsPerGT",
            44,
            format!("{gtes} entries per grain table is outside 1..={MAX_GTES_PER_GT}"),
        ));
    }
    // The grains start after this much metadata: a file shorter than that was cut short
    // (qemu refuses it as truncated).
    if header
        .overhead
        .checked_mul(SECTOR)
        .is_none_or(|bytes| bytes > file_len)
    {
        return Err(corrupt(
            CorruptKind::Truncated,
            path,
            "overHead",
            64,
            format!(
                "the grains start after {} sectors of metadata, past the end of the \
                 {file_len}-byte file",
                header.overhead
            ),
        ));
    }
    let grains = capacity_bytes.div_ceil(grain_bytes);
    let gd_entries = grains.div_ceil(u64::from(gtes));
    if gd_entries > MAX_GD_ENTRIES {
        return Err(corrupt(CorruptKind::TooLarge,
            path,
            "capacity",
            12,
            format!(
                "{} sectors in {}-sector grains need a {gd_entries}-entry grain directory (at most {MAX_GD_ENTRIES} are read)",
                header.capacity, header.grain_size
            ),
        ));
    }
    let gd_at = header.gd_offset.checked_mul(SECTOR);
    let gd_bytes = gd_entries * 4;
    let gd_at = gd_at
        .filter(|at| *at > 0 && inside(*at, gd_bytes, file_len))
        .ok_or_else(|| {
            corrupt(CorruptKind::OutOfRange,
                path,
                "gdOffset",
                56,
                format!(
                    "a {gd_bytes}-byte grain directory at sector {} does not lie inside the {file_len}-byte file",
                    header.gd_offset
                ),
            )
        })?;
    let descriptor = if header.descriptor_offset == 0 {
        None
    } else {
        let region = header
            .descriptor_offset
            .checked_mul(SECTOR)
            .zip(header.descriptor_size.checked_mul(SECTOR))
            .filter(|(at, len)| {
                header.descriptor_size <= MAX_DESCRIPTOR_SECTORS && inside(*at, *len, file_len)
            });
        match region {
            Some(region) => Some(region),
            None => {
                return Err(corrupt(CorruptKind::OutOfRange,
                    path,
                    "descriptorOffset",
                    28,
                    format!(
                        "a descriptor of {} sectors at sector {} does not lie inside the {file_len}-byte file (at most {MAX_DESCRIPTOR_SECTORS} sectors are read)",
                        header.descriptor_size, header.descriptor_offset
                    ),
                ))
            }
        }
    };
    Ok(Layout {
        capacity_bytes,
        grain_bytes,
        gtes_per_gt: gtes,
        gd_at,
        gd_entries,
        zeroed_grain: header.flags & FLAG_ZEROED_GRAIN != 0,
        compressed: header.flags & FLAG_COMPRESSED != 0,
        descriptor,
    })
}
