//! Block sources: "the bytes at this offset of that disk", whatever container holds them.
//!
//! Owns opening an image file read-only, detecting its container format by magic bytes,
//! and byte windows over a source (a partition is a window). Knows nothing of partition
//! tables or filesystems.

mod cache;
mod container;
mod corruption;
mod cursor;
pub mod disks;
mod memory;
pub mod qcow2;
mod raw;
mod shape;
mod stdin;
pub mod vdi;
pub mod vhd;
pub mod vhdx;
pub mod vmdk;
mod window;

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::checksums::ChecksumPolicy;
pub use container::{corrupt_read, ContainerError, ContainerInfo, Opened, Snapshot};
pub use corruption::CorruptKind;
pub use cursor::SourceCursor;
pub use memory::{MemoryImage, SparseMemory};
pub use raw::RawImage;
pub use shape::{not_disk_shaped, NotDiskShape};
pub use stdin::{StdinError, DEFAULT_STDIN_MAX, STDIN_ARGUMENT};
pub use window::Window;

/// A disk's bytes, read by position so that many threads can share one source.
///
/// Implementations never keep a shared cursor: `read_exact_at` takes `&self`.
pub trait BlockSource: Send + Sync + fmt::Debug {
    /// The virtual size of the disk in bytes.
    fn len(&self) -> u64;

    /// Fills `buf` from `offset`; an error if any byte lies past the end or cannot be read.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// True when the disk holds no bytes at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where byte `offset` of this source lies on the image's virtual disk: the same
    /// offset for the disk itself, shifted for a partition, mapped through its segments
    /// for a logical volume; `None` when no byte of the disk holds it.
    fn disk_offset(&self, offset: u64) -> Option<u64> {
        Some(offset)
    }
}

/// Turns offsets within a volume into offsets on the image's virtual disk, for errors
/// that name where on the image a structure lies.
#[derive(Debug, Clone, Default)]
pub struct Placement(Option<Arc<dyn BlockSource>>);

impl Placement {
    /// Offsets within `volume`'s bytes.
    pub fn of(volume: Arc<dyn BlockSource>) -> Self {
        Self(Some(volume))
    }

    /// The disk offset of volume byte `offset`; the offset itself when the volume is the
    /// disk, or when no disk byte holds it (past the end of a logical volume).
    pub fn disk_offset(&self, offset: u64) -> u64 {
        self.0
            .as_ref()
            .and_then(|volume| volume.disk_offset(offset))
            .unwrap_or(offset)
    }
}

/// Reads `len` bytes at `offset` into a new buffer, refusing ranges that leave the source
/// before allocating, so a crafted size cannot cause a huge allocation.
pub fn read_vec(source: &dyn BlockSource, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    check_range(offset, len, source.len())?;
    let mut buf = vec![0u8; len];
    source.read_exact_at(offset, &mut buf)?;
    Ok(buf)
}

/// Refuses a read of `len` bytes at `offset` from a disk of `size` bytes that would leave it.
pub fn check_range(offset: u64, len: usize, size: u64) -> io::Result<()> {
    let inside = offset
        .checked_add(len as u64)
        .is_some_and(|end| end <= size);
    if inside {
        Ok(())
    } else {
        Err(past_end(offset, len as u64, size))
    }
}

/// Splits a read at `offset` into pieces that each stay inside one `unit`-byte block (a
/// container's cluster, grain or block) and hands them over in order as
/// `(block number, offset within the block, piece)`.
pub fn for_each_block(
    offset: u64,
    buf: &mut [u8],
    unit: u64,
    mut piece: impl FnMut(u64, u64, &mut [u8]) -> io::Result<()>,
) -> io::Result<()> {
    if unit == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "zero block size",
        ));
    }
    let mut rest = buf;
    let mut position = offset;
    // Each turn consumes at least one byte, so this ends.
    while !rest.is_empty() {
        let within = position % unit;
        let take = usize::try_from(unit - within)
            .unwrap_or(usize::MAX)
            .min(rest.len());
        let (now, later) = rest.split_at_mut(take);
        piece(position / unit, within, now)?;
        rest = later;
        position = position.saturating_add(take as u64);
    }
    Ok(())
}

/// The error for a read that would leave the source.
pub fn past_end(offset: u64, len: u64, source_len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "read of {len} bytes at byte {offset} runs past the end of the {source_len}-byte disk"
        ),
    )
}

/// The container formats amiscan recognises and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerFormat {
    Raw,
    Qcow2,
    Vmdk,
    Vhd,
    Vhdx,
    Vdi,
}

impl fmt::Display for ContainerFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Raw => "raw",
            Self::Qcow2 => "qcow2",
            Self::Vmdk => "vmdk",
            Self::Vhd => "vhd",
            Self::Vhdx => "vhdx",
            Self::Vdi => "vdi",
        })
    }
}

/// An opened image: its container format and the virtual disk it presents.
#[derive(Debug, Clone)]
pub struct OpenedImage {
    pub format: ContainerFormat,
    pub disk: Arc<dyn BlockSource>,
    /// Bytes the image file occupies on the host (sparse regions excluded).
    pub allocated_size: Option<u64>,
    /// What the container says about itself (subformat, backing chain, snapshots).
    pub info: ContainerInfo,
}

/// Failure to open an image, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: cannot open: {source}")]
    Io { path: String, source: io::Error },
    /// A directory, FIFO, socket or character device: nothing to read as a disk.
    #[error("{path}: is a {kind}; amiscan reads image files and block devices")]
    NotAFile { path: String, kind: SpecialFile },
    #[error("{path}: is empty (0 bytes), not a disk image")]
    Empty { path: String },
    /// Nothing was recognised in it (no container, partition table or filesystem) and
    /// its shape rules out a disk whose contents are merely unknown.
    #[error("{path}: not a disk image: no container, partition table or filesystem recognised, and {shape}")]
    NotAnImage { path: String, shape: NotDiskShape },
    /// `-` was given and standard input could not be taken as an image.
    #[error("{path}: {source}")]
    Stdin { path: String, source: StdinError },
    /// A container amiscan does not read: named, never read as a raw disk.
    #[error("{path}: is a {format} image, a container amiscan does not read; convert it with `qemu-img convert -O raw` (or qcow2) and scan the result")]
    UnreadFormat { path: String, format: &'static str },
    #[error(transparent)]
    Container(#[from] ContainerError),
}

/// What a path names when it is neither a regular file nor a block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialFile {
    Directory,
    Fifo,
    Socket,
    CharacterDevice,
}

impl fmt::Display for SpecialFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Directory => "directory",
            Self::Fifo => "FIFO",
            Self::Socket => "socket",
            Self::CharacterDevice => "character device",
        })
    }
}

/// The kind of special file `meta` describes, `None` for a regular file or block device.
fn special_file(meta: &std::fs::Metadata) -> Option<SpecialFile> {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_dir() {
        Some(SpecialFile::Directory)
    } else if kind.is_fifo() {
        Some(SpecialFile::Fifo)
    } else if kind.is_socket() {
        Some(SpecialFile::Socket)
    } else if kind.is_char_device() {
        Some(SpecialFile::CharacterDevice)
    } else {
        None
    }
}

/// Opens the disk an image argument names: `-` is standard input, copied to a private
/// temporary file of at most `stdin_max` bytes that is removed once the image is open;
/// anything else is a path, opened as `open_image_with` does.
pub fn open_argument(
    path: &Path,
    policy: ChecksumPolicy,
    stdin_max: u64,
) -> Result<OpenedImage, OpenError> {
    if path.as_os_str() != STDIN_ARGUMENT {
        return open_image_with(path, policy);
    }
    let shown = path.display().to_string();
    let spool = stdin::spool(stdin_max).map_err(|source| OpenError::Stdin {
        path: shown.clone(),
        source,
    })?;
    // Every reader holds its files open from here on, so the copy's name can go (when
    // `spool` is dropped). Errors name `-`, not the copy, which no longer exists.
    open_image_with(spool.path(), policy).map_err(|e| match e {
        OpenError::Empty { .. } => OpenError::Empty { path: shown },
        OpenError::Io { source, .. } => OpenError::Io {
            path: shown,
            source,
        },
        other => other,
    })
}

/// Opens an image file read-only and detects its container by magic bytes, never by name.
///
/// A file with no known container magic is read as a raw disk: that is what raw images
/// and EBS snapshot dumps are. Every container checksum is verified.
pub fn open_image(path: &Path) -> Result<OpenedImage, OpenError> {
    open_image_with(path, ChecksumPolicy::Verify)
}

/// `open_image` under a checksum policy. The container checksums it governs: the VHD
/// footer and dynamic header checksums and the VHDX header and region table CRC-32Cs
/// (qcow2, VMDK and VDI carry none). Under `Ignore`, what was let through is counted in
/// `info.checksums_ignored`, which the caller must report as an incomplete reading.
/// Backing files of a qcow2 image are always verified.
pub fn open_image_with(path: &Path, policy: ChecksumPolicy) -> Result<OpenedImage, OpenError> {
    let shown = path.display().to_string();
    // Asked before opening: opening a FIFO blocks until something writes to it.
    let meta = std::fs::metadata(path).map_err(|source| OpenError::Io {
        path: shown.clone(),
        source,
    })?;
    if let Some(kind) = special_file(&meta) {
        return Err(OpenError::NotAFile { path: shown, kind });
    }
    let raw = RawImage::open(path).map_err(|source| OpenError::Io {
        path: shown.clone(),
        source,
    })?;
    if raw.is_empty() {
        return Err(OpenError::Empty { path: shown });
    }
    let allocated_size = raw.allocated_size();
    if let Some(format) = unread_container(&raw) {
        return Err(OpenError::UnreadFormat {
            path: shown,
            format,
        });
    }
    let detected = detect_container(&raw);
    let format = detected.map_or(ContainerFormat::Raw, |(format, _)| format);
    let opened = match detected {
        None | Some((ContainerFormat::Raw, _)) => Opened {
            disk: Arc::new(raw),
            info: ContainerInfo::default(),
        },
        Some((ContainerFormat::Qcow2, _)) => qcow2::open(path)?,
        Some((ContainerFormat::Vmdk, _)) => vmdk::open(path)?,
        Some((ContainerFormat::Vhd, footer_at)) => vhd::open_with(path, footer_at, policy)?,
        Some((ContainerFormat::Vhdx, _)) => vhdx::open_with(path, policy)?,
        Some((ContainerFormat::Vdi, _)) => vdi::open(path)?,
    };
    Ok(OpenedImage {
        format,
        disk: opened.disk,
        allocated_size: opened.info.allocated_size.or(allocated_size),
        info: opened.info,
    })
}

/// Looks for a container header; `None` means a raw disk.
/// Container formats amiscan does not read, by their magic (as qemu's block drivers
/// probe them): read as raw, their headers would pass for a disk with no partition table.
fn unread_container(source: &dyn BlockSource) -> Option<&'static str> {
    let mut head = [0u8; 0x44];
    let got = usize::try_from(source.len()).map_or(head.len(), |len| len.min(head.len()));
    let head = head.get_mut(..got)?;
    source.read_exact_at(0, head).ok()?;
    let starts = |magic: &[u8]| head.starts_with(magic);
    let format = if starts(b"QED\0") {
        "QED"
    } else if starts(b"WithoutFreeSpace") || starts(b"WithouFreSpacExt") {
        "Parallels"
    } else if starts(b"Bochs Virtual HD Image") {
        "Bochs"
    } else if starts(b"#!/bin/sh\n#V2.0 Format\n") {
        "cloop"
    } else if starts(b"COWD") {
        "VMware COWD (ESX sparse)"
    } else if udif_trailer(source) {
        "Apple DMG (UDIF)"
    } else {
        return None;
    };
    Some(format)
}

/// An Apple UDIF image ends in a 512-byte `koly` trailer.
fn udif_trailer(source: &dyn BlockSource) -> bool {
    let Some(at) = source.len().checked_sub(512) else {
        return false;
    };
    let mut magic = [0u8; 4];
    source.read_exact_at(at, &mut magic).is_ok() && &magic == b"koly"
}

fn detect_container(source: &dyn BlockSource) -> Option<(ContainerFormat, u64)> {
    let mut head = [0u8; 8];
    if source.read_exact_at(0, &mut head).is_err() {
        return None;
    }
    if head.starts_with(b"QFI\xfb") {
        return Some((ContainerFormat::Qcow2, 0));
    }
    if head.starts_with(b"KDMV") {
        return Some((ContainerFormat::Vmdk, 0));
    }
    if head.starts_with(b"# Disk D") {
        return Some((ContainerFormat::Vmdk, 0));
    }
    if head.starts_with(b"vhdxfile") {
        return Some((ContainerFormat::Vhdx, 0));
    }
    if head.starts_with(b"conectix") {
        return Some((ContainerFormat::Vhd, 0));
    }
    if vdi::has_signature(source) {
        return Some((ContainerFormat::Vdi, 0));
    }
    // A fixed VHD is a raw disk followed by a 512-byte footer.
    let len = source.len();
    if len >= 512 {
        let footer_at = len - 512;
        let mut footer = [0u8; 8];
        if source.read_exact_at(footer_at, &mut footer).is_ok() && &footer == b"conectix" {
            return Some((ContainerFormat::Vhd, footer_at));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_split_at_block_boundaries() {
        let mut buf = [0u8; 10];
        let mut pieces = Vec::new();
        for_each_block(3, &mut buf, 4, |block, within, piece| {
            pieces.push((block, within, piece.len()));
            piece.fill(block as u8 + 1);
            Ok(())
        })
        .unwrap();
        assert_eq!(pieces, [(0, 3, 1), (1, 0, 4), (2, 0, 4), (3, 0, 1)]);
        assert_eq!(buf, [1, 2, 2, 2, 2, 3, 3, 3, 3, 4]);
        assert!(for_each_block(0, &mut buf, 0, |_, _, _| Ok(())).is_err());
    }

    #[test]
    fn ranges_past_the_end_are_refused() {
        assert!(check_range(0, 10, 10).is_ok());
        assert!(check_range(1, 10, 10).is_err());
        assert!(check_range(u64::MAX, 1, u64::MAX).is_err());
    }
}
