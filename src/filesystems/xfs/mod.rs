//! XFS (versions 4 and 5), read directly from the volume's bytes, addressed by inode number.
//!
//! Owns the filesystem-wide state (superblock, allocation group headers, log state, the
//! inode cluster cache) and the `Filesystem` operations; each on-disk structure is parsed
//! in its own submodule. Every v5 metadata block read is checked against its CRC, magic,
//! disk address, owner and filesystem UUID before it is used. Nothing here resolves paths.

mod ag;
mod bmap;
mod dir;
mod free_space;
mod inode;
mod inode_cache;
mod log;
mod reader;
mod superblock;

// They need mkfs and fsck tools: the integration binary runs them (tests/integration/readers.rs).
#[cfg(all(feature = "test-support", not(test)))]
#[doc(hidden)]
pub mod tests;

use crate::checksums::{ChecksumGuard, ChecksumPolicy};
use crate::image::CorruptKind;
use std::fmt;
use std::io::Cursor;
use std::sync::Arc;

use super::stream::READ_CHUNK;
use super::{
    DirEntry, FileKind, FileReader, Filesystem, FsDetails, FsError, Metadata, NodeId, Usage,
};
use crate::image::BlockSource;
use ag::{AgCounts, AgDamage};
use bmap::BlockMap;
use inode::{crc_with_hole, Inode, FORMAT_LOCAL};
use inode_cache::InodeCache;
use log::LogState;
use superblock::{Superblock, SB_CRC_OFFSET};

/// Largest directory data section this reader lists: the bound keeps a crafted block map
/// (extents pointing many times at the same blocks) from turning one read_dir into an
/// unbounded allocation. 2 GiB of data blocks hold tens of millions of entries.
const MAX_DIR_BYTES: u64 = 2 << 30;
/// XFS_SYMLINK_MAXLEN: the kernel never stores a longer symlink target.
const MAX_SYMLINK_LEN: u64 = 1024;
const SYMLINK_MAGIC: &[u8; 4] = b"XSLM";
/// The v5 remote symlink block header: magic, offset, bytes, crc, uuid, owner, blkno, lsn.
const SYMLINK_HEADER_V5: usize = 56;
const SYMLINK_CRC_OFFSET: usize = 12;
/// A 1 KiB target never needs more than three 512-byte blocks; a larger mapping is corrupt.
const MAX_SYMLINK_MAPPING: u64 = 64 * 1024;

/// Names a structure for error messages without formatting until an error happens.
#[derive(Debug, Clone, Copy)]
struct What {
    structure: &'static str,
    ino: Option<u64>,
    of_inode: bool,
}

impl What {
    fn fs(structure: &'static str) -> Self {
        Self {
            structure,
            ino: None,
            of_inode: false,
        }
    }

    fn inode(ino: u64) -> Self {
        Self {
            structure: "xfs inode",
            ino: Some(ino),
            of_inode: false,
        }
    }

    fn of_inode(structure: &'static str, ino: u64) -> Self {
        Self {
            structure,
            ino: Some(ino),
            of_inode: true,
        }
    }
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ino, self.of_inode) {
            (None, _) => f.write_str(self.structure),
            (Some(ino), false) => write!(f, "{} {ino}", self.structure),
            (Some(ino), true) => write!(f, "{} of inode {ino}", self.structure),
        }
    }
}

/// The volume's bytes, with reads checked against its length before anything is allocated.
#[derive(Debug)]
struct Disk {
    source: Arc<dyn BlockSource>,
}

impl Disk {
    fn read_at(&self, what: What, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        self.source
            .read_exact_at(offset, buf)
            .map_err(|e| FsError::io(what.to_string(), offset, e))
    }

    fn read_vec(&self, what: What, offset: u64, len: u64) -> Result<Vec<u8>, FsError> {
        let mut buf = super::zeroed_buffer(&what, offset, len, self.source.len())?;
        self.read_at(what, offset, &mut buf)?;
        Ok(buf)
    }
}

/// An XFS filesystem, shared read-only between threads.
pub struct XfsFs {
    disk: Disk,
    sb: Superblock,
    /// Per AG: its header counters, or why its headers cannot be trusted.
    ags: Vec<Result<AgCounts, AgDamage>>,
    log: LogState,
    inodes: InodeCache,
}

impl fmt::Debug for XfsFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XfsFs")
            .field("version", &self.sb.version)
            .field("block_size", &self.sb.block_size)
            .field("ag_count", &self.sb.ag_count)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl XfsFs {
    /// Reads and checks the superblock and every AG header, and finds the log's state.
    pub fn open(source: Arc<dyn BlockSource>) -> Result<Self, FsError> {
        Self::open_with(source, ChecksumPolicy::Verify)
    }

    /// Like `open`, with CRC mismatches refused or (for forensic reading) counted.
    pub fn open_with(
        source: Arc<dyn BlockSource>,
        policy: ChecksumPolicy,
    ) -> Result<Self, FsError> {
        let checksums = Arc::new(ChecksumGuard::new(policy));
        let what = What::fs("xfs superblock");
        let disk = Disk { source };
        let volume = disk.source.len();
        // The first sector holds the superblock; its size is only known after reading it.
        let head = disk.read_vec(what, 0, superblock::SB_DECODED_LEN as u64)?;
        // On v5 the CRC is checked before any field but the magic is believed, so that a
        // damaged sector is reported as damaged rather than as whatever its bits now claim.
        let sector_size = u64::from(crate::bytes::be16(&head, 102));
        let claims_v5 =
            head.get(..4) == Some(b"XFSB".as_slice()) && crate::bytes::be16(&head, 100) & 0xf == 5;
        if claims_v5 && sector_size.is_power_of_two() && (512..=32768).contains(&sector_size) {
            let sector = disk.read_vec(what, 0, sector_size)?;
            let stored = crate::bytes::le32(&sector, SB_CRC_OFFSET);
            let computed = crc_with_hole(&sector, SB_CRC_OFFSET);
            checksums.check(stored == computed, || {
                FsError::corrupt(
                    CorruptKind::Checksum,
                    what.to_string(),
                    SB_CRC_OFFSET as u64,
                    format!("CRC {stored:#010x} does not match the contents ({computed:#010x})"),
                )
            })?;
        }
        let mut sb = Superblock::parse(&head, volume)?;
        sb.checksums = checksums;
        let ags = (0..sb.ag_count)
            .map(|ag| ag::read(&disk, &sb, ag))
            .collect();
        let log = log::state(&disk, &sb);
        let inodes = InodeCache::new(&sb);
        Ok(Self {
            disk,
            sb,
            ags,
            log,
            inodes,
        })
    }

    /// Reads inode `ino`, checked; an inode of an AG whose headers are damaged is refused.
    fn inode(&self, ino: NodeId) -> Result<Inode, FsError> {
        let what = What::inode(ino);
        let offset = self.sb.ino_location(ino).ok_or_else(|| {
            FsError::corrupt(
                CorruptKind::OutOfRange,
                what.to_string(),
                0,
                format!("inode number {ino} lies outside the filesystem"),
            )
        })?;
        let ag = usize::try_from(self.sb.ino_ag(ino)).unwrap_or(usize::MAX);
        if let Some(Err(damage)) = self.ags.get(ag) {
            return Err(damage.error());
        }
        self.inodes
            .with_inode(&self.disk, &self.sb, ino, offset, |raw| {
                Inode::parse(ino, offset, raw, &self.sb)
            })
    }

    fn block_map(&self, inode: &Inode) -> Result<BlockMap, FsError> {
        if inode.realtime && self.sb.realtime_blocks > 0 {
            return Err(FsError::Unsupported {
                feature: "XFS realtime subvolume (file data lives on another device)".into(),
            });
        }
        BlockMap::read(&self.disk, &self.sb, inode)
    }

    fn read_block_dir(&self, inode: &Inode) -> Result<Vec<DirEntry>, FsError> {
        let sb = &self.sb;
        let map = self.block_map(inode)?;
        let dir_block = sb.dir_block_size();
        let fsbs_per_dir_block = 1u64 << sb.dir_block_log;
        let data_end = dir::LEAF_OFFSET >> sb.block_log;
        let what = What::of_inode("xfs directory block", inode.ino);
        let limit = MAX_DIR_BYTES.min(self.disk.source.len());
        let mut listed = 0u64;
        let mut entries = Vec::new();
        // A directory block may span extents: gather its filesystem blocks here.
        let mut pending: Vec<u8> = Vec::new();
        let mut pending_offset = 0u64;
        let mut next_logical = 0u64;
        for extent in map.extents() {
            if extent.logical >= data_end {
                break;
            }
            let end = (extent.logical + extent.len).min(data_end);
            let corrupt = |kind: CorruptKind, detail: String| {
                FsError::corrupt(kind, what.to_string(), inode.fork_offset, detail)
            };
            if extent.unwritten {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    "directory data in an unwritten extent".into(),
                ));
            }
            if !pending.is_empty() && extent.logical != next_logical {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    format!(
                        "directory block at logical block {} has a hole",
                        next_logical - pending.len() as u64 / sb.block_size
                    ),
                ));
            }
            if pending.is_empty() && extent.logical % fsbs_per_dir_block != 0 {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    format!(
                        "extent starts inside a directory block (logical block {})",
                        extent.logical
                    ),
                ));
            }
            let mut logical = extent.logical;
            while logical < end {
                let offset = sb
                    .fsb_offset(extent.start + (logical - extent.logical))
                    .ok_or_else(|| {
                        corrupt(
                            CorruptKind::OutOfRange,
                            "directory block outside the filesystem".into(),
                        )
                    })?;
                let whole_blocks = if pending.is_empty() {
                    ((end - logical) / fsbs_per_dir_block)
                        .min((READ_CHUNK as u64 / dir_block).max(1))
                } else {
                    0
                };
                if whole_blocks > 0 {
                    let bytes = whole_blocks * dir_block;
                    listed += bytes;
                    if listed > limit {
                        return Err(corrupt(
                            CorruptKind::TooLarge,
                            format!("directory data exceeds the {limit} bytes this reader lists"),
                        ));
                    }
                    let buf = self.disk.read_vec(what, offset, bytes)?;
                    for (i, block) in buf
                        .chunks_exact(usize::try_from(dir_block).unwrap_or(usize::MAX))
                        .enumerate()
                    {
                        let at = offset + i as u64 * dir_block;
                        dir::parse_data_block(block, at, inode.ino, sb, &mut entries)?;
                    }
                    logical += whole_blocks * fsbs_per_dir_block;
                    continue;
                }
                // Part of a directory block: take what this extent holds of it.
                if pending.is_empty() {
                    pending_offset = offset;
                }
                let missing = (dir_block - pending.len() as u64) / sb.block_size;
                let take = missing.min(end - logical);
                pending.extend(self.disk.read_vec(what, offset, take * sb.block_size)?);
                logical += take;
                if pending.len() as u64 == dir_block {
                    listed += dir_block;
                    if listed > limit {
                        return Err(corrupt(
                            CorruptKind::TooLarge,
                            format!("directory data exceeds the {limit} bytes this reader lists"),
                        ));
                    }
                    dir::parse_data_block(&pending, pending_offset, inode.ino, sb, &mut entries)?;
                    pending.clear();
                }
            }
            next_logical = end;
        }
        if !pending.is_empty() {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                what.to_string(),
                pending_offset,
                "the last directory block is incomplete",
            ));
        }
        Ok(entries)
    }

    /// A remote symlink target: on v5 each mapping of the target is one buffer with a
    /// header and a CRC over the whole mapping (as the kernel writes them), on v4 just
    /// the target's bytes.
    fn read_remote_symlink(&self, inode: &Inode) -> Result<Vec<u8>, FsError> {
        let sb = &self.sb;
        let what = What::of_inode("xfs symlink block", inode.ino);
        let map = self.block_map(inode)?;
        let corrupt = |kind: CorruptKind, detail: String| {
            FsError::corrupt(kind, what.to_string(), inode.fork_offset, detail)
        };
        let size = usize::try_from(inode.size).unwrap_or(usize::MAX);
        let mut target = Vec::new();
        let mut next_logical = 0u64;
        for extent in map.extents() {
            if target.len() >= size {
                break;
            }
            if extent.unwritten || extent.logical != next_logical {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    format!("logical block {next_logical} of the target is not mapped"),
                ));
            }
            let bytes = extent.len.saturating_mul(sb.block_size);
            if bytes > MAX_SYMLINK_MAPPING {
                return Err(corrupt(
                    CorruptKind::Invalid,
                    format!("a mapping of {bytes} bytes for a symlink target"),
                ));
            }
            let offset = sb.fsb_offset(extent.start).ok_or_else(|| {
                corrupt(
                    CorruptKind::OutOfRange,
                    "symlink block outside the filesystem".into(),
                )
            })?;
            let buffer = self.disk.read_vec(what, offset, bytes)?;
            let payload = if sb.is_v5() {
                check_symlink_block(&buffer, offset, inode.ino, target.len(), sb)?
            } else {
                buffer.as_slice()
            };
            target.extend(payload.iter().take(size - target.len()));
            next_logical += extent.len;
        }
        if target.len() < size {
            return Err(corrupt(
                CorruptKind::Truncated,
                format!(
                    "the target's blocks hold {} of its {size} bytes",
                    target.len()
                ),
            ));
        }
        Ok(target)
    }
}

/// Checks a v5 remote symlink buffer (one mapping) and returns the part of the target it
/// holds.
fn check_symlink_block<'b>(
    block: &'b [u8],
    offset: u64,
    ino: u64,
    done: usize,
    sb: &Superblock,
) -> Result<&'b [u8], FsError> {
    use crate::bytes::{array, be32, be64, le32};
    let what = What::of_inode("xfs symlink block", ino);
    let corrupt = |kind: CorruptKind, at: usize, detail: String| {
        FsError::corrupt(kind, what.to_string(), offset + at as u64, detail)
    };
    if block.get(..4) != Some(SYMLINK_MAGIC.as_slice()) {
        return Err(corrupt(CorruptKind::Magic, 0, "bad magic".into()));
    }
    let stored = le32(block, SYMLINK_CRC_OFFSET);
    let computed = crc_with_hole(block, SYMLINK_CRC_OFFSET);
    sb.checksums.check(stored == computed, || {
        corrupt(
            CorruptKind::Checksum,
            SYMLINK_CRC_OFFSET,
            format!("CRC {stored:#010x} does not match the contents ({computed:#010x})"),
        )
    })?;
    if array::<16>(block, 16) != Some(sb.meta_uuid) {
        return Err(corrupt(
            CorruptKind::Invalid,
            16,
            "belongs to another filesystem (UUID)".into(),
        ));
    }
    if be64(block, 32) != ino {
        return Err(corrupt(
            CorruptKind::Invalid,
            32,
            format!("belongs to inode {}", be64(block, 32)),
        ));
    }
    if be64(block, 40) != offset / 512 {
        return Err(corrupt(
            CorruptKind::Invalid,
            40,
            "records another block's address".into(),
        ));
    }
    let start = usize::try_from(be32(block, 4)).unwrap_or(usize::MAX);
    let bytes = usize::try_from(be32(block, 8)).unwrap_or(usize::MAX);
    if start != done {
        return Err(corrupt(
            CorruptKind::Invalid,
            4,
            format!("holds target bytes from {start}, not {done}"),
        ));
    }
    block
        .get(SYMLINK_HEADER_V5..SYMLINK_HEADER_V5.saturating_add(bytes))
        .filter(|payload| !payload.is_empty())
        .ok_or_else(|| {
            corrupt(
                CorruptKind::Invalid,
                8,
                format!("claims {bytes} bytes of target"),
            )
        })
}

impl Filesystem for XfsFs {
    fn type_name(&self) -> &'static str {
        "xfs"
    }

    fn root(&self) -> NodeId {
        self.sb.root_ino
    }

    fn metadata(&self, node: NodeId) -> Result<Metadata, FsError> {
        Ok(self.inode(node)?.metadata())
    }

    fn unallocated(&self) -> Option<Result<Vec<std::ops::Range<u64>>, FsError>> {
        Some(free_space::unallocated(self))
    }

    fn residue_areas(&self) -> Option<Result<Vec<crate::filesystems::residue::Area>, FsError>> {
        Some(free_space::residue_areas(self))
    }

    fn usage(&self) -> Usage {
        let (mut inodes, mut free_blocks) = (0u64, 0u64);
        for counts in self.ags.iter().flatten() {
            inodes += counts.inodes.saturating_sub(counts.free_inodes);
            free_blocks += counts.free_blocks;
        }
        let used = self
            .sb
            .data_blocks
            .saturating_sub(free_blocks)
            .saturating_sub(self.sb.log_blocks);
        Usage {
            // The realtime bitmap and summary inodes exist on every filesystem.
            nodes: Some(inodes.saturating_sub(2).max(1)),
            bytes: Some(
                used.saturating_mul(self.sb.block_size)
                    .min(self.disk.source.len()),
            ),
        }
    }

    fn details(&self) -> Option<FsDetails> {
        let sb = &self.sb;
        Some(FsDetails {
            version: Some(u32::from(sb.version)),
            block_size: sb.block_size,
            inode_size: sb.inode_size,
            dir_block_size: sb.dir_block_size(),
            sector_size: Some(sb.sector_size),
            allocation_groups: u64::from(sb.ag_count),
            features: sb.features().iter().map(|f| (*f).to_string()).collect(),
            log: self.log.name().to_string(),
            realtime: sb.realtime_blocks > 0,
        })
    }

    fn ignored_checksums(&self) -> u64 {
        self.sb.checksums.ignored()
    }

    fn incomplete_reason(&self) -> Option<String> {
        let damaged: Vec<String> = self
            .ags
            .iter()
            .filter_map(|ag| ag.as_ref().err())
            .map(|damage| damage.error().to_string())
            .collect();
        let log = match &self.log {
            LogState::Clean => None,
            LogState::Dirty(why) => Some(format!(
                "XFS log needs recovery ({why}); it was not replayed, so recent changes may be missing"
            )),
            LogState::External => Some(
                "XFS log is on an external device the image does not hold; whether it holds unreplayed changes is unknown".into(),
            ),
        };
        let parts: Vec<String> = log
            .into_iter()
            .chain(
                damaged
                    .into_iter()
                    .map(|d| format!("inodes of a damaged AG are not read: {d}")),
            )
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>, FsError> {
        let inode = self.inode(dir)?;
        if inode.kind != FileKind::Dir {
            return Err(FsError::NotADirectory);
        }
        if inode.format == FORMAT_LOCAL {
            let mut entries = Vec::new();
            dir::parse_shortform(
                &inode.data_fork,
                inode.size,
                inode.fork_offset,
                inode.ino,
                &self.sb,
                &mut entries,
            )?;
            return Ok(entries);
        }
        self.read_block_dir(&inode)
    }

    fn read_link(&self, node: NodeId) -> Result<Vec<u8>, FsError> {
        let inode = self.inode(node)?;
        if inode.kind != FileKind::Symlink {
            return Err(FsError::NotASymlink);
        }
        if inode.size == 0 || inode.size > MAX_SYMLINK_LEN {
            return Err(FsError::corrupt(
                CorruptKind::OutOfRange,
                What::inode(node).to_string(),
                inode.offset + 56,
                format!(
                    "symlink target length {} is outside 1..={MAX_SYMLINK_LEN}",
                    inode.size
                ),
            ));
        }
        if inode.format == FORMAT_LOCAL {
            let size = usize::try_from(inode.size).unwrap_or(usize::MAX);
            return inode
                .data_fork
                .get(..size)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    FsError::corrupt(
                        CorruptKind::OutOfRange,
                        What::inode(node).to_string(),
                        inode.offset + 56,
                        format!(
                            "inline target of {size} bytes does not fit in the {}-byte data fork",
                            inode.data_fork.len()
                        ),
                    )
                });
        }
        self.read_remote_symlink(&inode)
    }

    fn open(&self, node: NodeId) -> Result<FileReader<'_>, FsError> {
        let inode = self.inode(node)?;
        if inode.kind != FileKind::File {
            return Err(FsError::NotAFile);
        }
        if inode.size == 0 {
            return Ok(Box::new(Cursor::new(Vec::new())));
        }
        let map = self.block_map(&inode)?;
        Ok(Box::new(reader::FileData::stream(
            &self.disk, &self.sb, &inode, map,
        )))
    }
}
