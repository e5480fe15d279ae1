//! The qcow2 header (versions 2 and 3) and its extensions, checked field by field against
//! the file length and named limits before anything is allocated or read from it.

use crate::image::CorruptKind;
use crate::image::{read_vec, BlockSource, ContainerError};
use std::borrow::Cow;

use super::be;

/// "QFI\xfb": the magic of qcow (version 1) and qcow2 alike.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";

/// Smallest and largest cluster_bits qemu creates or accepts (512 bytes to 2 MiB).
pub const MIN_CLUSTER_BITS: u32 = 9;
pub const MAX_CLUSTER_BITS: u32 = 21;

/// Most L1 entries amiscan loads: a 32 MiB table (qemu's QCOW_MAX_L1_SIZE), which with
/// 2 MiB clusters maps far more than any real disk.
pub const MAX_L1_ENTRIES: u64 = (32 << 20) / 8;

/// Largest refcount table qemu opens (QCOW_MAX_REFTABLE_SIZE, 8 MiB): amiscan never reads
/// the table, but refuses what qemu refuses, so that an image no hypervisor would boot is
/// not audited as if one did.
pub const MAX_REFCOUNT_TABLE_BYTES: u64 = 8 << 20;

/// The longest backing file name the format allows.
pub const MAX_BACKING_NAME: u32 = 1023;

/// Incompatible feature bits.
pub const INCOMPAT_DIRTY: u64 = 1 << 0;
pub const INCOMPAT_CORRUPT: u64 = 1 << 1;
pub const INCOMPAT_DATA_FILE: u64 = 1 << 2;
pub const INCOMPAT_COMPRESSION: u64 = 1 << 3;
pub const INCOMPAT_EXTL2: u64 = 1 << 4;
const INCOMPAT_KNOWN: u64 =
    INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

/// Header extension types.
const EXT_END: u32 = 0;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
const EXT_FEATURE_NAMES: u32 = 0x6803_f857;
const EXT_DATA_FILE: u32 = 0x4441_5441;

/// Length of the version 2 header, and of the version 3 header without compression_type.
const V2_HEADER_LEN: u32 = 72;
const V3_MIN_HEADER_LEN: u32 = 104;

/// How compressed clusters are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Raw deflate (no zlib header), qemu's default.
    Deflate,
    Zstd,
}

/// A checked header. Offsets and sizes here have been checked against the file length.
#[derive(Debug, Clone)]
pub struct Header {
    pub version: u32,
    pub cluster_bits: u32,
    pub size: u64,
    pub l1_table_offset: u64,
    /// L1 entries that map some part of the virtual disk (at most `l1_size`).
    pub l1_used: u64,
    pub nb_snapshots: u32,
    pub snapshots_offset: u64,
    pub compression: Compression,
    pub extended_l2: bool,
    /// (byte offset, name bytes) of the backing file name, if any.
    pub backing: Option<(u64, Vec<u8>)>,
    /// The backing file's format, from the backing format header extension.
    pub backing_format: Option<String>,
}

impl Header {
    /// log2 of the entries in one L2 table.
    pub fn l2_bits(&self) -> u32 {
        if self.extended_l2 {
            self.cluster_bits - 4
        } else {
            self.cluster_bits - 3
        }
    }

    /// "v2", "v3", "v3, zstd", "v3, extended L2"...
    pub fn subformat(&self) -> String {
        let mut out = format!("v{}", self.version);
        if self.compression == Compression::Zstd {
            out.push_str(", zstd");
        }
        if self.extended_l2 {
            out.push_str(", extended L2");
        }
        out
    }
}

/// Errors for one file.
pub struct Errors<'a> {
    pub name: &'a str,
}

impl Errors<'_> {
    pub fn corrupt(
        &self,
        kind: CorruptKind,
        structure: impl Into<Cow<'static, str>>,
        offset: u64,
        detail: impl Into<String>,
    ) -> ContainerError {
        ContainerError::corrupt(kind, self.name, structure, offset, detail)
    }

    pub fn unsupported(
        &self,
        feature: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> ContainerError {
        ContainerError::Unsupported {
            path: self.name.to_string(),
            feature: feature.into(),
            detail: detail.into(),
        }
    }

    pub fn io(&self, source: std::io::Error) -> ContainerError {
        ContainerError::Io {
            path: self.name.to_string(),
            source,
        }
    }
}

/// The raw fields, before any check.
struct Fields {
    backing_file_offset: u64,
    backing_file_size: u32,
    cluster_bits: u32,
    size: u64,
    crypt_method: u32,
    l1_size: u32,
    l1_table_offset: u64,
    refcount_table_offset: u64,
    refcount_table_clusters: u32,
    nb_snapshots: u32,
    snapshots_offset: u64,
    incompatible: u64,
    refcount_order: u32,
    header_length: u32,
    compression_type: u8,
}

/// What the header extensions say.
#[derive(Default)]
struct Extensions {
    backing_format: Option<String>,
    /// (type, bit, name) from the feature name table.
    feature_names: Vec<(u8, u8, String)>,
    data_file: Option<String>,
}

impl Extensions {
    fn incompatible_name(&self, bit: u32) -> Option<&str> {
        self.feature_names
            .iter()
            .find(|(kind, b, _)| *kind == 0 && u32::from(*b) == bit)
            .map(|(_, _, name)| name.as_str())
    }
}

/// Reads and checks the header of `file` (named `name` in errors).
pub fn parse(file: &dyn BlockSource, name: &str) -> Result<Header, ContainerError> {
    let err = Errors { name };
    let file_len = file.len();
    if file_len < u64::from(V2_HEADER_LEN) {
        return Err(err.corrupt(
            CorruptKind::Truncated,
            "qcow2 header",
            0,
            format!("the file is {file_len} bytes, shorter than the {V2_HEADER_LEN}-byte header"),
        ));
    }
    let fixed_len = file_len.min(u64::from(V3_MIN_HEADER_LEN) + 8);
    let head = read_vec(file, 0, fixed_len as usize).map_err(|e| err.io(e))?;
    let u32_at = |at: usize| be::u32_at(&head, at).unwrap_or(0);
    let u64_at = |at: usize| be::u64_at(&head, at).unwrap_or(0);
    if head.get(..4) != Some(&MAGIC[..]) {
        return Err(err.corrupt(CorruptKind::Magic, "qcow2 header", 0, "no QFI\\xfb magic"));
    }
    let version = u32_at(4);
    match version {
        2 | 3 => {}
        1 => return Err(err.unsupported(
            "qcow (version 1)",
            "only qcow2 (versions 2 and 3) is readable; convert with `qemu-img convert -O qcow2`",
        )),
        other => {
            return Err(err.unsupported(
                format!("qcow2 version {other}"),
                "only versions 2 and 3 are defined",
            ))
        }
    }
    let mut fields = Fields {
        backing_file_offset: u64_at(8),
        backing_file_size: u32_at(16),
        cluster_bits: u32_at(20),
        size: u64_at(24),
        crypt_method: u32_at(32),
        l1_size: u32_at(36),
        l1_table_offset: u64_at(40),
        refcount_table_offset: u64_at(48),
        refcount_table_clusters: u32_at(56),
        nb_snapshots: u32_at(60),
        snapshots_offset: u64_at(64),
        incompatible: 0,
        refcount_order: 4,
        header_length: V2_HEADER_LEN,
        compression_type: 0,
    };

    if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&fields.cluster_bits) {
        return Err(err.corrupt(
            CorruptKind::Invalid,
            "qcow2 header field cluster_bits",
            20,
            format!(
                "is {}; it must be {MIN_CLUSTER_BITS} to {MAX_CLUSTER_BITS} (512 bytes to 2 MiB)",
                fields.cluster_bits
            ),
        ));
    }
    let cluster_size = 1u64 << fields.cluster_bits;

    if version == 3 {
        if file_len < u64::from(V3_MIN_HEADER_LEN) {
            return Err(err.corrupt(
                CorruptKind::Truncated,
                "qcow2 header",
                0,
                format!(
                    "the file is {file_len} bytes, shorter than the {V3_MIN_HEADER_LEN}-byte \
                     version 3 header"
                ),
            ));
        }
        fields.incompatible = u64_at(72);
        fields.refcount_order = u32_at(96);
        fields.header_length = u32_at(100);
        if fields.header_length < V3_MIN_HEADER_LEN {
            return Err(err.corrupt(
                CorruptKind::Invalid,
                "qcow2 header field header_length",
                100,
                format!(
                    "is {}; a version 3 header is at least {V3_MIN_HEADER_LEN} bytes",
                    fields.header_length
                ),
            ));
        }
        if u64::from(fields.header_length) > cluster_size.min(file_len) {
            return Err(err.corrupt(
                CorruptKind::OutOfRange,
                "qcow2 header field header_length",
                100,
                format!(
                    "is {}, more than the {cluster_size}-byte cluster or the {file_len}-byte file",
                    fields.header_length
                ),
            ));
        }
        if fields.header_length > V3_MIN_HEADER_LEN {
            fields.compression_type = head.get(104).copied().unwrap_or(0);
        }
    }

    let extensions = read_extensions(file, &err, &fields, cluster_size)?;
    check_features(&err, &fields, &extensions)?;

    if fields.crypt_method != 0 {
        let kind = match fields.crypt_method {
            1 => "AES",
            2 => "LUKS",
            _ => "an unknown method",
        };
        return Err(err.unsupported(
            "encryption",
            format!(
                "the image is encrypted (crypt_method {}: {kind}); amiscan reads no encrypted images",
                fields.crypt_method
            ),
        ));
    }

    let compression = match (
        fields.compression_type,
        fields.incompatible & INCOMPAT_COMPRESSION != 0,
    ) {
        (0, false) => Compression::Deflate,
        (1, true) => Compression::Zstd,
        (0, true) => {
            return Err(err.corrupt(
                CorruptKind::Invalid,
                "qcow2 header field compression_type",
                104,
                "is 0 (deflate) but incompatible feature bit 3 (compression type) is set",
            ))
        }
        (1, false) => {
            return Err(err.corrupt(
                CorruptKind::Invalid,
                "qcow2 header field compression_type",
                104,
                "is 1 (zstd) but incompatible feature bit 3 (compression type) is not set",
            ))
        }
        (other, _) => {
            return Err(err.unsupported(
                format!("qcow2 compression type {other}"),
                "only 0 (deflate) and 1 (zstd) are defined",
            ))
        }
    };

    let extended_l2 = fields.incompatible & INCOMPAT_EXTL2 != 0;
    if extended_l2 && fields.cluster_bits < 14 {
        return Err(err.corrupt(
            CorruptKind::Invalid,
            "qcow2 header field cluster_bits",
            20,
            format!(
                "is {} with extended L2 entries, which need clusters of at least 16 KiB",
                fields.cluster_bits
            ),
        ));
    }

    if version == 3 && fields.refcount_order > 6 {
        return Err(err.corrupt(
            CorruptKind::Invalid,
            "qcow2 header field refcount_order",
            96,
            format!("is {}; at most 6 (64-bit refcounts)", fields.refcount_order),
        ));
    }
    // qemu refuses an image without a refcount table, or with one over its size limit.
    let refcount_table_len = u64::from(fields.refcount_table_clusters) * cluster_size;
    if refcount_table_len == 0 {
        return Err(err.corrupt(
            CorruptKind::Invalid,
            "qcow2 header field refcount_table_clusters",
            56,
            "is 0: the image has no reference count table",
        ));
    }
    if refcount_table_len > MAX_REFCOUNT_TABLE_BYTES {
        return Err(err.corrupt(
            CorruptKind::TooLarge,
            "qcow2 header field refcount_table_clusters",
            56,
            format!(
                "is {}: a {refcount_table_len}-byte reference count table, more than the \
                 {MAX_REFCOUNT_TABLE_BYTES} bytes qemu accepts",
                fields.refcount_table_clusters
            ),
        ));
    }
    check_table(
        &err,
        "qcow2 header field refcount_table_offset",
        48,
        fields.refcount_table_offset,
        Some(refcount_table_len),
        cluster_size,
        file_len,
    )?;

    // The L1 table: its size against the named limit and the file, before allocating.
    let l2_bits = if extended_l2 {
        fields.cluster_bits - 4
    } else {
        fields.cluster_bits - 3
    };
    let l1_size = u64::from(fields.l1_size);
    if l1_size > MAX_L1_ENTRIES {
        return Err(err.corrupt(
            CorruptKind::TooLarge,
            "qcow2 header field l1_size",
            36,
            format!(
                "claims {l1_size} L1 entries, more than amiscan's limit of {MAX_L1_ENTRIES} \
                 (a 32 MiB table)"
            ),
        ));
    }
    // Bytes one L1 entry maps: at most 2^21 * 2^18 = 2^39.
    let per_l1 = 1u64 << (fields.cluster_bits + l2_bits);
    let l1_used = fields.size.div_ceil(per_l1);
    if l1_used > l1_size {
        return Err(err.corrupt(
            CorruptKind::Invalid,
            "qcow2 header field l1_size",
            36,
            format!(
                "is {l1_size}, too small for the {}-byte virtual disk ({l1_used} entries needed)",
                fields.size
            ),
        ));
    }
    check_table(
        &err,
        "qcow2 header field l1_table_offset",
        40,
        fields.l1_table_offset,
        Some(l1_size * 8),
        cluster_size,
        file_len,
    )?;

    // Checked even when there are no snapshots: qemu refuses a misaligned offset whatever
    // the count, and the entries' own sizes are checked as they are read.
    check_table(
        &err,
        "qcow2 header field snapshots_offset",
        64,
        fields.snapshots_offset,
        Some(u64::from(fields.nb_snapshots > 0)),
        cluster_size,
        file_len,
    )?;

    let backing = read_backing_name(file, &err, &fields, cluster_size)?;

    Ok(Header {
        version,
        cluster_bits: fields.cluster_bits,
        size: fields.size,
        l1_table_offset: fields.l1_table_offset,
        l1_used,
        nb_snapshots: fields.nb_snapshots,
        snapshots_offset: fields.snapshots_offset,
        compression,
        extended_l2,
        backing,
        backing_format: extensions.backing_format,
    })
}

/// A table at `offset` of `len` bytes must be cluster-aligned (even when empty, as qemu's
/// qcow2_validate_table requires) and inside the file.
fn check_table(
    err: &Errors<'_>,
    structure: &'static str,
    field_at: u64,
    offset: u64,
    len: Option<u64>,
    cluster_size: u64,
    file_len: u64,
) -> Result<(), ContainerError> {
    let Some(len) = len else {
        return Err(err.corrupt(
            CorruptKind::TooLarge,
            structure,
            field_at,
            "the table's size overflows",
        ));
    };
    if !offset.is_multiple_of(cluster_size) {
        return Err(err.corrupt(
            CorruptKind::Invalid,
            structure,
            field_at,
            format!("is {offset}, not a multiple of the {cluster_size}-byte cluster"),
        ));
    }
    if len == 0 {
        return Ok(());
    }
    if offset.checked_add(len).is_none_or(|end| end > file_len) {
        return Err(err.corrupt(CorruptKind::OutOfRange,
            structure,
            field_at,
            format!(
                "is {offset}: the {len}-byte table there runs past the end of the {file_len}-byte file"
            ),
        ));
    }
    Ok(())
}

fn check_features(
    err: &Errors<'_>,
    fields: &Fields,
    extensions: &Extensions,
) -> Result<(), ContainerError> {
    let unknown = fields.incompatible & !INCOMPAT_KNOWN;
    if unknown != 0 {
        let bit = unknown.trailing_zeros();
        let named = extensions
            .incompatible_name(bit)
            .map(|n| format!(" ({n:?})"))
            .unwrap_or_default();
        return Err(err.unsupported(
            format!("qcow2 incompatible feature bit {bit}{named}"),
            "amiscan knows incompatible bits 0 to 4 only (dirty, corrupt, external data file, \
             compression type, extended L2 entries); reading on could return wrong bytes",
        ));
    }
    if fields.incompatible & INCOMPAT_CORRUPT != 0 {
        return Err(err.corrupt(
            CorruptKind::Invalid,
            "qcow2 header incompatible feature bit 1 (corrupt)",
            72,
            "qemu marked this image corrupt: its metadata is inconsistent; check and repair \
             a copy with `qemu-img check -r all` before auditing it",
        ));
    }
    if fields.incompatible & INCOMPAT_DATA_FILE != 0 {
        let named = extensions
            .data_file
            .as_deref()
            .map(|n| format!(" ({n:?})"))
            .unwrap_or_default();
        return Err(err.unsupported(
            "qcow2 external data file",
            format!(
                "the guest's data lives in a separate file{named} (incompatible feature bit 2); \
                 convert with `qemu-img convert -O qcow2` first"
            ),
        ));
    }
    // The dirty bit (lazy refcounts not yet flushed) only concerns refcounts, which reading
    // does not use.
    Ok(())
}

/// Parses the header extensions between the header and the backing file name (or the end
/// of the first cluster).
fn read_extensions(
    file: &dyn BlockSource,
    err: &Errors<'_>,
    fields: &Fields,
    cluster_size: u64,
) -> Result<Extensions, ContainerError> {
    let start = u64::from(fields.header_length);
    let mut end = cluster_size;
    if fields.backing_file_offset != 0 {
        if fields.backing_file_offset < start || fields.backing_file_offset > cluster_size {
            return Err(err.corrupt(
                CorruptKind::OutOfRange,
                "qcow2 header field backing_file_offset",
                8,
                format!(
                    "is {}; the backing file name must lie after the {start}-byte header, \
                     inside the first {cluster_size}-byte cluster",
                    fields.backing_file_offset
                ),
            ));
        }
        end = fields.backing_file_offset;
    }
    let end = end.min(file.len());
    let mut out = Extensions::default();
    if end <= start {
        return Ok(out);
    }
    // At most one cluster (2 MiB).
    let area = read_vec(file, start, (end - start) as usize).map_err(|e| err.io(e))?;
    let mut pos = 0usize;
    // Each extension takes at least 8 bytes, so this ends.
    while let (Some(kind), Some(len)) = (be::u32_at(&area, pos), be::u32_at(&area, pos + 4)) {
        let at = start + pos as u64;
        if kind == EXT_END {
            break;
        }
        let data_at = pos + 8;
        let data = data_at
            .checked_add(len as usize)
            .and_then(|data_end| area.get(data_at..data_end))
            .ok_or_else(|| {
                err.corrupt(
                    CorruptKind::OutOfRange,
                    format!("qcow2 header extension {kind:#010x}"),
                    at,
                    format!("its length {len} runs past the end of the header area at byte {end}"),
                )
            })?;
        match kind {
            EXT_BACKING_FORMAT => {
                out.backing_format = Some(String::from_utf8_lossy(data).into_owned());
            }
            EXT_DATA_FILE => {
                out.data_file = Some(String::from_utf8_lossy(data).into_owned());
            }
            EXT_FEATURE_NAMES => {
                for entry in data.chunks_exact(48) {
                    if let (Some(&kind), Some(&bit), Some(name)) =
                        (entry.first(), entry.get(1), entry.get(2..))
                    {
                        let name = name.split(|&b| b == 0).next().unwrap_or_default();
                        out.feature_names.push((
                            kind,
                            bit,
                            String::from_utf8_lossy(name).into_owned(),
                        ));
                    }
                }
            }
            _ => {}
        }
        // Padded to 8 bytes; cannot overflow (len < 2^32, pos < 2^21).
        pos = data_at + (len as usize).div_ceil(8) * 8;
    }
    Ok(out)
}

fn read_backing_name(
    file: &dyn BlockSource,
    err: &Errors<'_>,
    fields: &Fields,
    cluster_size: u64,
) -> Result<Option<(u64, Vec<u8>)>, ContainerError> {
    if fields.backing_file_offset == 0 || fields.backing_file_size == 0 {
        return Ok(None);
    }
    let offset = fields.backing_file_offset;
    let size = fields.backing_file_size;
    if size > MAX_BACKING_NAME {
        return Err(err.corrupt(
            CorruptKind::TooLarge,
            "qcow2 header field backing_file_size",
            16,
            format!("is {size}; a backing file name is at most {MAX_BACKING_NAME} bytes"),
        ));
    }
    let end = offset.checked_add(u64::from(size));
    if end.is_none_or(|end| end > cluster_size || end > file.len()) {
        return Err(err.corrupt(
            CorruptKind::OutOfRange,
            "qcow2 backing file name",
            offset,
            format!(
                "its {size} bytes run past the first cluster or the end of the {}-byte file",
                file.len()
            ),
        ));
    }
    let name = read_vec(file, offset, size as usize).map_err(|e| err.io(e))?;
    Ok(Some((offset, name)))
}
