//! The XFS inode (`xfs_dinode`): the core fields, its CRC and identity on v5, and where
//! its data fork lies.

use super::superblock::Superblock;
use super::What;
use crate::bytes::{array, be16, be32, be64, le32};
use crate::crc32c;
use crate::filesystems::{FileKind, FsError, Metadata};
use crate::image::CorruptKind;

const XFS_DINODE_MAGIC: u16 = 0x494e;
/// Core sizes: versions 1 and 2 end at di_next_unlinked, version 3 at di_uuid.
const CORE_SIZE_V2: usize = 100;
const CORE_SIZE_V3: usize = 176;
const DI_CRC_OFFSET: usize = 100;

pub(super) const FORMAT_DEV: u8 = 0;
pub(super) const FORMAT_LOCAL: u8 = 1;
pub(super) const FORMAT_EXTENTS: u8 = 2;
pub(super) const FORMAT_BTREE: u8 = 3;

const DIFLAG_REALTIME: u16 = 0x0001;
const DIFLAG2_BIGTIME: u64 = 0x0008;
const DIFLAG2_NREXT64: u64 = 0x0010;
/// Seconds between the bigtime epoch (the most negative 32-bit time) and 1970.
const BIGTIME_EPOCH_OFFSET: i64 = 1 << 31;
const NSEC_PER_SEC: u64 = 1_000_000_000;

/// One inode, decoded and checked.
#[derive(Debug, Clone)]
pub(super) struct Inode {
    pub ino: u64,
    /// Byte offset of the inode in the volume.
    pub offset: u64,
    pub mode: u16,
    pub kind: FileKind,
    pub format: u8,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Data fork extent count as the inode records it.
    pub nextents: u64,
    pub realtime: bool,
    /// The data fork's bytes (the literal area up to the attribute fork).
    pub data_fork: Vec<u8>,
    /// Byte offset of the data fork in the volume.
    pub fork_offset: u64,
}

impl Inode {
    /// Decodes inode `ino` from `raw` (exactly one inode, read at `offset`).
    pub(super) fn parse(
        ino: u64,
        offset: u64,
        raw: &[u8],
        sb: &Superblock,
    ) -> Result<Self, FsError> {
        let what = What::inode(ino);
        let corrupt = |kind: CorruptKind, at: usize, detail: String| {
            FsError::corrupt(
                kind,
                what.to_string(),
                offset.saturating_add(at as u64),
                detail,
            )
        };
        if raw.len() as u64 != sb.inode_size {
            return Err(corrupt(
                CorruptKind::Truncated,
                0,
                format!("short inode of {} bytes", raw.len()),
            ));
        }
        if be16(raw, 0) != XFS_DINODE_MAGIC {
            return Err(corrupt(CorruptKind::Magic, 0, "bad magic (not IN)".into()));
        }
        let version = raw.get(4).copied().unwrap_or(0);
        let core_size = match (sb.is_v5(), version) {
            (true, 3) => CORE_SIZE_V3,
            (false, 1 | 2) => CORE_SIZE_V2,
            _ => {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    4,
                    format!(
                        "inode version {version} on a version {} filesystem",
                        sb.version
                    ),
                ))
            }
        };
        if version == 3 {
            let stored = le32(raw, DI_CRC_OFFSET);
            let computed = crc_with_hole(raw, DI_CRC_OFFSET);
            sb.checksums.check(stored == computed, || {
                corrupt(
                    CorruptKind::Checksum,
                    DI_CRC_OFFSET,
                    format!("CRC {stored:#010x} does not match the contents ({computed:#010x})"),
                )
            })?;
            let recorded = be64(raw, 152);
            if recorded != ino {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    152,
                    format!("records inode number {recorded}, not {ino}"),
                ));
            }
            if array::<16>(raw, 160) != Some(sb.meta_uuid) {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    160,
                    "belongs to another filesystem (UUID)".into(),
                ));
            }
        }
        let mode = be16(raw, 2);
        let kind = FileKind::from_mode(u32::from(mode)).ok_or_else(|| {
            corrupt(
                CorruptKind::Invalid,
                2,
                format!("mode {mode:#o} has no file type"),
            )
        })?;
        let format = raw.get(5).copied().unwrap_or(u8::MAX);
        let fits = match kind {
            FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo | FileKind::Socket => {
                format == FORMAT_DEV
            }
            FileKind::File => format == FORMAT_EXTENTS || format == FORMAT_BTREE,
            FileKind::Dir | FileKind::Symlink => {
                matches!(format, FORMAT_LOCAL | FORMAT_EXTENTS | FORMAT_BTREE)
            }
        };
        if !fits {
            return Err(corrupt(
                CorruptKind::Invalid,
                5,
                format!("data fork format {format} cannot hold a {}", kind.as_str()),
            ));
        }
        let size = be64(raw, 56);
        if size > i64::MAX as u64 {
            return Err(corrupt(
                CorruptKind::Invalid,
                56,
                format!("negative size {}", size as i64),
            ));
        }
        let flags2 = if version == 3 { be64(raw, 120) } else { 0 };
        let nextents = if flags2 & DIFLAG2_NREXT64 != 0 {
            if !sb.has_nrext64 {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    120,
                    "large extent counts without the nrext64 feature".into(),
                ));
            }
            be64(raw, 24)
        } else {
            u64::from(be32(raw, 76))
        };
        if flags2 & DIFLAG2_BIGTIME != 0 && !sb.has_bigtime {
            return Err(corrupt(
                CorruptKind::Invalid,
                120,
                "big timestamps without the bigtime feature".into(),
            ));
        }
        let (mtime, mtime_nsec) = timestamp(raw, 40, flags2 & DIFLAG2_BIGTIME != 0);
        let literal = raw.len() - core_size;
        let forkoff = usize::from(raw.get(82).copied().unwrap_or(0)) * 8;
        if forkoff > literal {
            return Err(corrupt(
                CorruptKind::OutOfRange,
                82,
                format!(
                    "attribute fork offset {forkoff} lies past the {literal}-byte literal area"
                ),
            ));
        }
        let data_fork_len = if forkoff == 0 { literal } else { forkoff };
        let data_fork = raw
            .get(core_size..core_size + data_fork_len)
            .unwrap_or(&[])
            .to_vec();
        let nlink = if version == 1 {
            u32::from(be16(raw, 6))
        } else {
            be32(raw, 16)
        };
        Ok(Self {
            ino,
            offset,
            mode,
            kind,
            format,
            uid: be32(raw, 8),
            gid: be32(raw, 12),
            nlink,
            size,
            mtime,
            mtime_nsec,
            nextents,
            realtime: be16(raw, 90) & DIFLAG_REALTIME != 0,
            data_fork,
            fork_offset: offset + core_size as u64,
        })
    }

    /// `major:minor` of a device node: XFS packs them as 14 and 18 bits of one word.
    pub(super) fn rdev(&self) -> Option<(u32, u32)> {
        matches!(self.kind, FileKind::CharDevice | FileKind::BlockDevice).then(|| {
            let dev = be32(&self.data_fork, 0);
            ((dev >> 18) & 0x3fff, dev & 0x3ffff)
        })
    }

    pub(super) fn metadata(&self) -> Metadata {
        Metadata {
            kind: self.kind,
            permissions: self.mode & 0o7777,
            uid: self.uid,
            gid: self.gid,
            size: self.size,
            mtime: self.mtime,
            mtime_nsec: self.mtime_nsec,
            inode: self.ino,
            nlink: self.nlink,
            rdev: self.rdev(),
        }
    }
}

/// A v5 timestamp: 32-bit seconds and nanoseconds, or with bigtime one 64-bit count of
/// nanoseconds since the most negative 32-bit time.
fn timestamp(raw: &[u8], at: usize, big: bool) -> (i64, u32) {
    if big {
        let ns = be64(raw, at);
        let seconds = i64::try_from(ns / NSEC_PER_SEC).unwrap_or(i64::MAX) - BIGTIME_EPOCH_OFFSET;
        (seconds, u32::try_from(ns % NSEC_PER_SEC).unwrap_or(0))
    } else {
        let seconds = i64::from(be32(raw, at) as i32);
        (seconds, be32(raw, at + 4).min(999_999_999))
    }
}

/// The CRC-32C of `block` with the four bytes at `hole` taken as zero, as XFS computes
/// the checksum of every v5 metadata block.
pub(super) fn crc_with_hole(block: &[u8], hole: usize) -> u32 {
    let head = block.get(..hole).unwrap_or(block);
    let tail = block.get(hole.saturating_add(4)..).unwrap_or(&[]);
    let crc = crc32c::update(!0, head);
    let crc = crc32c::update(crc, &[0; 4]);
    !crc32c::update(crc, tail)
}
