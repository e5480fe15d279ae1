//! Filesystems: one read-only trait over every on-disk format amiscan reads.
//!
//! Owns turning a volume's bytes into nodes (inodes, directory entries, file contents).
//! Knows nothing of partition tables (below) or of how volumes join into a guest tree (above).
//! Every implementation treats the volume as hostile: sizes and offsets read from disk are
//! checked before use, and a corrupt structure is an error naming it and its byte offset.

pub mod ext4;
pub mod fat;
pub mod residue;
pub(crate) mod stream;
#[cfg(all(feature = "test-support", not(test)))]
pub(crate) mod test_support;
pub mod unallocated;
pub mod xfs;

use std::borrow::Cow;
use std::fmt;
use std::io::Read;

use crate::image::{ContainerError, CorruptKind};

/// Identifies a node (inode, or a FAT directory-entry position) within one filesystem.
pub type NodeId = u64;

/// What kind of object a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl FileKind {
    /// The kind encoded in the top bits of a POSIX `st_mode`.
    pub fn from_mode(mode: u32) -> Option<Self> {
        Some(match mode & 0o170000 {
            0o100000 => Self::File,
            0o040000 => Self::Dir,
            0o120000 => Self::Symlink,
            0o020000 => Self::CharDevice,
            0o060000 => Self::BlockDevice,
            0o010000 => Self::Fifo,
            0o140000 => Self::Socket,
            _ => return None,
        })
    }

    /// The name used in JSON output and in `ls -l`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
            Self::Symlink => "symlink",
            Self::CharDevice => "char",
            Self::BlockDevice => "block",
            Self::Fifo => "fifo",
            Self::Socket => "socket",
        }
    }
}

/// A node's metadata, as `stat` would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub kind: FileKind,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub permissions: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Modification time, seconds since the epoch (may be negative).
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// The node's number within its filesystem (the inode number on ext4).
    pub inode: u64,
    pub nlink: u32,
    /// Device number for character and block devices, `None` otherwise.
    pub rdev: Option<(u32, u32)>,
}

/// One entry of a directory, excluding `.` and `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The raw name bytes; not necessarily UTF-8.
    pub name: Vec<u8>,
    pub node: NodeId,
}

/// Why a filesystem operation failed. Offsets are bytes from the start of the volume.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{structure} at byte {offset}: {detail}")]
    Corrupt {
        /// The structure's name; literal for most, numbered for inodes and groups.
        structure: Cow<'static, str>,
        offset: u64,
        kind: CorruptKind,
        detail: String,
    },
    #[error("unsupported {feature}")]
    Unsupported { feature: Cow<'static, str> },
    /// A read of the volume failed. When the image's container is corrupt beneath the
    /// volume, `source` carries its typed error (see `FsError::container`).
    #[error("read of {structure} at byte {offset} failed: {source}")]
    Io {
        structure: Cow<'static, str>,
        offset: u64,
        source: std::io::Error,
    },
    #[error("not a directory")]
    NotADirectory,
    #[error("not a symbolic link")]
    NotASymlink,
    #[error("not a regular file")]
    NotAFile,
}

impl FsError {
    pub fn corrupt(
        kind: CorruptKind,
        structure: impl Into<Cow<'static, str>>,
        offset: u64,
        detail: impl Into<String>,
    ) -> Self {
        Self::Corrupt {
            structure: structure.into(),
            offset,
            kind,
            detail: detail.into(),
        }
    }

    /// The kind of corruption: the filesystem's own, or the container's when a read
    /// failed because the image's tables beneath the volume are corrupt.
    pub fn corrupt_kind(&self) -> Option<CorruptKind> {
        match self {
            Self::Corrupt { kind, .. } => Some(*kind),
            _ => self.container().and_then(ContainerError::corrupt_kind),
        }
    }

    /// The container's error beneath a failed read, when the image file itself (not the
    /// filesystem) is what is corrupt.
    pub fn container(&self) -> Option<&ContainerError> {
        match self {
            Self::Io { source, .. } => ContainerError::beneath(source),
            _ => None,
        }
    }

    pub fn io(
        structure: impl Into<Cow<'static, str>>,
        offset: u64,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            structure: structure.into(),
            offset,
            source,
        }
    }

    /// The same error with its volume-relative offset turned into an offset on the
    /// image's disk.
    pub fn rebase(self, placement: &crate::image::Placement) -> Self {
        match self {
            Self::Corrupt {
                structure,
                offset,
                kind,
                detail,
            } => Self::Corrupt {
                structure,
                offset: placement.disk_offset(offset),
                kind,
                detail,
            },
            Self::Io {
                structure,
                offset,
                source,
            } => Self::Io {
                structure,
                offset: placement.disk_offset(offset),
                source,
            },
            other => other,
        }
    }

    /// The volume-relative byte offset the error concerns, if it has one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Self::Corrupt { offset, .. } | Self::Io { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

/// A zeroed buffer for `len` bytes to be read at `offset` from a volume of `volume`
/// bytes, refused before allocating if the range leaves the volume, so that a crafted
/// length cannot force a huge allocation.
pub(crate) fn zeroed_buffer(
    what: &dyn fmt::Display,
    offset: u64,
    len: u64,
    volume: u64,
) -> Result<Vec<u8>, FsError> {
    if offset.checked_add(len).is_none_or(|end| end > volume) {
        return Err(FsError::io(
            what.to_string(),
            offset,
            crate::image::past_end(offset, len, volume),
        ));
    }
    let len = usize::try_from(len).map_err(|_| {
        FsError::corrupt(
            CorruptKind::TooLarge,
            what.to_string(),
            offset,
            format!("{len} bytes do not fit in memory"),
        )
    })?;
    Ok(vec![0u8; len])
}

/// Streaming contents of one regular file.
pub type FileReader<'a> = Box<dyn Read + Send + 'a>;

/// What a filesystem's own counters say it holds. On-disk values, clamped: good for a
/// progress estimate, never for sizing an allocation or judging the guest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Nodes a walk should meet (directories, files, links), when the format counts them.
    pub nodes: Option<u64>,
    /// Bytes allocated to files, directories and metadata.
    pub bytes: Option<u64>,
}

/// What `inspect` shows of a filesystem's format beyond its type: enough to compare with
/// the format's own tools (xfs_info, dumpe2fs).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FsDetails {
    /// The format's version, where it has one (XFS 4 or 5).
    pub version: Option<u32>,
    pub block_size: u64,
    pub inode_size: u64,
    pub dir_block_size: u64,
    /// The sector size the filesystem was made for, where it records one (XFS).
    pub sector_size: Option<u64>,
    /// Allocation groups (XFS) or block groups (ext).
    pub allocation_groups: u64,
    /// Feature names as the format's tools spell them.
    pub features: Vec<String>,
    /// The journal or log: `clean`, `dirty` (not replayed), `replayed` (in memory, ext3/4),
    /// `external` or `none`.
    pub log: String,
    /// True when the filesystem has a realtime subvolume, which the image does not hold.
    pub realtime: bool,
}

/// A mounted, read-only filesystem. Implementations are `Send + Sync`: the parallel walk
/// shares one instance between all worker threads.
pub trait Filesystem: Send + Sync + fmt::Debug {
    /// The name blkid gives this filesystem type (ext2, ext3, ext4, vfat, ...).
    fn type_name(&self) -> &'static str;

    /// The root directory's node.
    fn root(&self) -> NodeId;

    fn metadata(&self, node: NodeId) -> Result<Metadata, FsError>;

    /// The entries of a directory, in on-disk order, without `.` and `..`.
    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>, FsError>;

    /// The target of a symbolic link, as raw bytes.
    fn read_link(&self, node: NodeId) -> Result<Vec<u8>, FsError>;

    /// A streaming reader over a regular file's contents (holes read as zeros).
    fn open(&self, node: NodeId) -> Result<FileReader<'_>, FsError>;

    /// What the filesystem's counters say it holds; unknown by default.
    fn usage(&self) -> Usage {
        Usage::default()
    }

    /// The byte ranges of the volume no file, directory or metadata holds, as the
    /// format's free-space maps say, in order; `None` when this reader does not know them.
    fn unallocated(&self) -> Option<Result<Vec<std::ops::Range<u64>>, FsError>> {
        None
    }

    /// The areas that may hold deleted data (free space, the journal), as byte ranges of
    /// the volume; `None` when this reader does not know them.
    fn residue_areas(&self) -> Option<Result<Vec<residue::Area>, FsError>> {
        None
    }

    /// Where this reader can tell, the path (from the volume's root) of the file that
    /// held the byte at each of `offsets` (volume offsets in free space) before it was
    /// deleted; one answer per offset, `None` where it cannot.
    fn former_paths(&self, offsets: &[u64]) -> Vec<Option<Vec<u8>>> {
        vec![None; offsets.len()]
    }

    /// The format's details, for `inspect`; none by default.
    fn details(&self) -> Option<FsDetails> {
        None
    }

    /// Why what this filesystem yields may be incomplete although it opened (a log that
    /// was not replayed, damaged group headers), if it may be.
    fn incomplete_reason(&self) -> Option<String> {
        None
    }

    /// How many checksum mismatches were let through under `ChecksumPolicy::Ignore`
    /// (always 0 when checksums are verified).
    fn ignored_checksums(&self) -> u64 {
        0
    }

    /// Looks up one name in a directory. The default scans `read_dir`.
    fn lookup(&self, dir: NodeId, name: &[u8]) -> Result<Option<NodeId>, FsError> {
        Ok(self
            .read_dir(dir)?
            .into_iter()
            .find(|entry| entry.name == name)
            .map(|entry| entry.node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_container_beneath_a_read_is_told_from_a_corrupt_filesystem() {
        let read = crate::image::corrupt_read(
            CorruptKind::Checksum,
            "d.vhdx",
            "VHDX BAT",
            4096,
            "no entry",
        );
        let e = FsError::io("ext4 inode 12", 8192, read);
        assert_eq!(
            e.to_string(),
            "read of ext4 inode 12 at byte 8192 failed: d.vhdx: VHDX BAT at byte 4096: no entry"
        );
        assert_eq!(e.corrupt_kind(), Some(CorruptKind::Checksum));
        assert!(e.container().is_some());
        let plain = FsError::io("ext4 inode 12", 8192, std::io::Error::other("gone"));
        assert_eq!(
            (plain.corrupt_kind(), plain.container().is_none()),
            (None, true)
        );
        let own = FsError::corrupt(CorruptKind::Magic, "ext4 superblock", 1080, "bad");
        assert_eq!(own.corrupt_kind(), Some(CorruptKind::Magic));
        assert!(own.container().is_none());
    }
}
