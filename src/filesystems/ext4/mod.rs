//! ext2, ext3 and ext4, read directly from the volume's bytes, addressed by inode number.
//!
//! Owns the filesystem-wide state (superblock, group descriptors, journal overlay) and
//! the `Filesystem` operations; each on-disk structure is parsed in its own submodule.
//! Nothing here resolves paths: every operation starts from an inode number.

use crate::bytes::{le16, le32};
use crate::image::CorruptKind;
mod block_map;
mod checksum;
mod dir;
mod extent;
mod former;
mod free_space;
mod group_desc;
mod inode;
mod journal;
mod reader;
mod superblock;
mod xattr;

// They need mkfs and fsck tools: the integration binary runs them (tests/integration/readers.rs).
#[cfg(all(feature = "test-support", not(test)))]
#[doc(hidden)]
pub mod tests;

use std::fmt;
use std::io::Cursor;
use std::sync::Arc;

use super::{
    DirEntry, FileKind, FileReader, Filesystem, FsDetails, FsError, Metadata, NodeId, Usage,
};
use crate::checksums::{ChecksumGuard, ChecksumPolicy};
use crate::filesystems::stream::{Run, READ_CHUNK};
use crate::image::BlockSource;
use block_map::BlockMap;
use dir::DirFormat;
use group_desc::GroupDesc;
use inode::{DataLayout, Inode, EXT4_N_BLOCKS_BYTES, I_BLOCK_OFFSET};
use reader::{FileData, Mapper};
use superblock::{
    Superblock, INCOMPAT_FILETYPE, INCOMPAT_RECOVER, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE,
};

/// ext4 logical block numbers are 32 bits wide.
const MAX_LOGICAL_BLOCKS: u64 = 1 << 32;
/// Largest directory this reader lists. Without largedir the kernel's htree caps
/// directories near this size; the bound keeps a crafted i_size (or extents pointing many
/// times at the same blocks) from turning one read_dir into an unbounded allocation.
const MAX_DIR_BYTES: u64 = 1 << 30;
/// Runs (extents, holes, pointer runs) one directory listing may walk. Twice the 1 KiB
/// blocks of the largest directory listed: every block its own run, each with a hole
/// beside it. Bounds the work a crafted mapping (index nodes of empty leaves, pointer
/// blocks of zeros) can cause past a directory's i_size.
const MAX_DIR_RUNS: u64 = 2 * (MAX_DIR_BYTES / 1024);
/// Damaged block groups named one by one in the volume's incomplete reason; the rest
/// are counted, so a wrecked table does not make a reason of thousands of lines.
const MAX_GROUPS_NAMED: usize = 8;
/// PATH_MAX: the kernel never stores a longer symlink target.
const MAX_SYMLINK_LEN: u64 = 4096;
const ROOT_INO: u64 = 2;

/// Names a structure for error messages without formatting until an error happens.
#[derive(Debug, Clone, Copy)]
struct What {
    structure: &'static str,
    ino: u64,
    form: WhatForm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhatForm {
    /// A filesystem-wide structure: "ext4 superblock".
    Fs,
    /// An inode record itself: "ext4 inode 12".
    Inode,
    /// A structure belonging to an inode: "ext4 extent tree of inode 12".
    OfInode,
}

impl What {
    fn fs(structure: &'static str) -> Self {
        Self {
            structure,
            ino: 0,
            form: WhatForm::Fs,
        }
    }

    fn inode(ino: u64) -> Self {
        Self {
            structure: "ext4 inode",
            ino,
            form: WhatForm::Inode,
        }
    }

    fn of_inode(structure: &'static str, ino: u64) -> Self {
        Self {
            structure,
            ino,
            form: WhatForm::OfInode,
        }
    }
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.form {
            WhatForm::Fs => f.write_str(self.structure),
            WhatForm::Inode => write!(f, "{} {}", self.structure, self.ino),
            WhatForm::OfInode => write!(f, "{} of inode {}", self.structure, self.ino),
        }
    }
}

/// The volume, seen through the journal overlay when one was replayed, and the policy
/// every checksum read from it is held to.
#[derive(Debug)]
struct Disk {
    source: Arc<dyn BlockSource>,
    overlay: journal::Overlay,
    block_size: u64,
    guard: ChecksumGuard,
}

impl Disk {
    fn read_at(&self, what: What, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        self.source
            .read_exact_at(offset, buf)
            .map_err(|e| FsError::io(what.to_string(), offset, e))?;
        if self.overlay.is_empty() || buf.is_empty() {
            return Ok(());
        }
        let end = offset.saturating_add(buf.len() as u64);
        let first = offset / self.block_size;
        let last = (end - 1) / self.block_size;
        for (block, replacement) in self.overlay.range(first, last) {
            let block_start = block * self.block_size;
            let from = block_start.max(offset);
            let to = (block_start + self.block_size).min(end);
            let dst_start = usize::try_from(from - offset).unwrap_or(usize::MAX);
            let dst_end = usize::try_from(to - offset).unwrap_or(usize::MAX);
            if let Some(dst) = buf.get_mut(dst_start..dst_end) {
                let src = replacement.offset + (from - block_start);
                self.source
                    .read_exact_at(src, dst)
                    .map_err(|e| FsError::io(what.to_string(), src, e))?;
            }
            if replacement.escaped {
                for (i, magic) in journal::Replacement::MAGIC.iter().enumerate() {
                    let at = block_start + i as u64;
                    if (from..to).contains(&at) {
                        let index = usize::try_from(at - offset).unwrap_or(usize::MAX);
                        if let Some(byte) = buf.get_mut(index) {
                            *byte = *magic;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads `len` bytes into a new buffer, refusing before allocating if the range
    /// leaves the volume, so a crafted length cannot force a huge allocation.
    fn read_vec(&self, what: What, offset: u64, len: u64) -> Result<Vec<u8>, FsError> {
        let mut buf = super::zeroed_buffer(&what, offset, len, self.source.len())?;
        self.read_at(what, offset, &mut buf)?;
        Ok(buf)
    }
}

/// Inline data: the 60 bytes of i_block and the system.data value that continues them,
/// each with its byte offset in the volume.
struct InlineParts<'i> {
    head: &'i [u8],
    head_offset: u64,
    tail: &'i [u8],
    tail_offset: u64,
}

/// An ext2/3/4 filesystem, shared read-only between threads.
pub struct Ext4Fs {
    disk: Disk,
    sb: Superblock,
    groups: Vec<GroupDesc>,
    type_name: &'static str,
    /// Why a journal needing recovery was not replayed (its superblock failed its
    /// checksum), when that happened.
    unreplayed_journal: Option<String>,
}

impl fmt::Debug for Ext4Fs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ext4Fs")
            .field("type", &self.type_name)
            .field("block_size", &self.sb.block_size)
            .field("blocks", &self.sb.s_blocks_count)
            .field("inodes", &self.sb.s_inodes_count)
            .field("groups", &self.groups.len())
            .field("journal_blocks_replayed", &self.disk.overlay.len())
            .finish_non_exhaustive()
    }
}

impl Ext4Fs {
    /// Reads and checks the superblock and group descriptors, verifying every checksum;
    /// refuses features it cannot read faithfully.
    pub fn open(source: Arc<dyn BlockSource>) -> Result<Self, FsError> {
        Self::open_with(source, ChecksumPolicy::Verify)
    }

    /// `open` with a checksum policy: under `Ignore`, a structure whose checksum does not
    /// match is used anyway and counted (`ignored_checksums`).
    pub fn open_with(
        source: Arc<dyn BlockSource>,
        policy: ChecksumPolicy,
    ) -> Result<Self, FsError> {
        let what = What::fs("ext4 superblock");
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        source
            .read_exact_at(SUPERBLOCK_OFFSET, &mut raw)
            .map_err(|e| FsError::io(what.to_string(), SUPERBLOCK_OFFSET, e))?;
        let sb = Superblock::parse(&raw, source.len())?;
        let guard = ChecksumGuard::new(policy);
        checksum::superblock(&guard, &sb, &raw, SUPERBLOCK_OFFSET)?;
        sb.check_features()?;
        let disk = Disk {
            source,
            overlay: journal::Overlay::default(),
            block_size: sb.block_size,
            guard,
        };
        let groups = group_desc::read_table(&disk, &sb)?;
        let mut fs = Self {
            disk,
            type_name: sb.type_name(),
            sb,
            groups,
            unreplayed_journal: None,
        };
        if !fs.sb.has_incompat(INCOMPAT_RECOVER) {
            return Ok(fs);
        }
        // Unclean shutdown: committed transactions in the journal are newer than the
        // blocks they replace, superblock and descriptors included, so read everything
        // again through the replayed overlay.
        // A journal that cannot be replayed (a checksum, a feature, the log on another
        // device, a damaged journal inode) costs only the transactions in it: the volume
        // is read as it lies, as debugfs reads it, and is incomplete with the reason.
        let overlay = match journal::replay(&fs) {
            Ok(journal::Replay::Done(overlay)) => overlay,
            Ok(journal::Replay::Refused(why)) | Err(why) => {
                fs.unreplayed_journal = Some(why.to_string());
                return Ok(fs);
            }
        };
        if overlay.is_empty() {
            return Ok(fs);
        }
        let Self { mut disk, .. } = fs;
        disk.overlay = overlay;
        disk.read_at(what, SUPERBLOCK_OFFSET, &mut raw)?;
        let sb = Superblock::parse(&raw, disk.source.len())?;
        checksum::superblock(&disk.guard, &sb, &raw, SUPERBLOCK_OFFSET)?;
        sb.check_features()?;
        if sb.block_size != disk.block_size {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                what.to_string(),
                SUPERBLOCK_OFFSET + 0x18,
                "the journal's copy of the superblock changes the block size",
            ));
        }
        let groups = group_desc::read_table(&disk, &sb)?;
        Ok(Self {
            disk,
            type_name: sb.type_name(),
            sb,
            groups,
            unreplayed_journal: None,
        })
    }

    /// Reads inode `node` with one positional read of s_inode_size bytes.
    fn inode(&self, node: NodeId) -> Result<Inode, FsError> {
        let what = What::inode(node);
        if node == 0 || node > u64::from(self.sb.s_inodes_count) {
            return Err(FsError::corrupt(
                CorruptKind::OutOfRange,
                what.to_string(),
                SUPERBLOCK_OFFSET,
                format!(
                    "inode number {node} is outside 1..={}",
                    self.sb.s_inodes_count
                ),
            ));
        }
        let ipg = u64::from(self.sb.s_inodes_per_group);
        let group = (node - 1) / ipg;
        let index = (node - 1) % ipg;
        let desc = usize::try_from(group)
            .ok()
            .and_then(|g| self.groups.get(g))
            .ok_or_else(|| {
                FsError::corrupt(
                    CorruptKind::Invalid,
                    what.to_string(),
                    SUPERBLOCK_OFFSET,
                    format!("block group {group} does not exist"),
                )
            })?
            .usable(group, &what)?;
        let offset = self
            .sb
            .block_offset(desc.bg_inode_table)
            .and_then(|table| table.checked_add(index * self.sb.inode_size))
            .ok_or_else(|| {
                FsError::corrupt(
                    CorruptKind::OutOfRange,
                    what.to_string(),
                    SUPERBLOCK_OFFSET,
                    "inode table past any volume",
                )
            })?;
        if index >= u64::from(desc.first_unused_index) {
            return Err(FsError::corrupt(CorruptKind::Invalid,
                what.to_string(),
                offset,
                format!("inode is in the unused part of block group {group}'s inode table (never allocated)"),
            ));
        }
        let raw = self.disk.read_vec(what, offset, self.sb.inode_size)?;
        let mut inode = Inode::parse(node, offset, raw, &self.sb)?;
        inode.csum_seed = checksum::inode(
            &self.disk.guard,
            &self.sb,
            node,
            &inode.raw,
            inode.i_extra_isize,
            offset,
        )?;
        Ok(inode)
    }

    /// Refuses an i_size the inode's mapping scheme cannot address.
    fn check_size(&self, inode: &Inode, layout: DataLayout) -> Result<(), FsError> {
        let max_blocks = match layout {
            DataLayout::Inline => return Ok(()),
            DataLayout::Extents => MAX_LOGICAL_BLOCKS,
            DataLayout::BlockMap => BlockMap::max_blocks(&self.sb),
        };
        // e2fsck's bound: the last byte must lie in an addressable block.
        let max = max_blocks.saturating_mul(self.sb.block_size) - 1;
        if inode.i_size > max {
            return Err(FsError::corrupt(
                CorruptKind::OutOfRange,
                What::inode(inode.ino).to_string(),
                inode.offset + 0x4,
                format!(
                    "i_size {} exceeds the {max} bytes its block mapping can address",
                    inode.i_size
                ),
            ));
        }
        Ok(())
    }

    /// Refuses a file or directory whose i_size its storage cannot hold, at metadata time,
    /// so that listing, hashing and reading all report the same corruption (a size is what
    /// decides whether a walk reads a file at all).
    fn check_node_size(&self, inode: &Inode) -> Result<(), FsError> {
        match inode.layout(&self.sb)? {
            DataLayout::Inline => self.inline_data_len(inode).map(|_| ()),
            layout => self.check_size(inode, layout),
        }
    }

    /// An inline inode's i_block part and its system.data value.
    fn inline_parts<'i>(&self, inode: &'i Inode) -> Result<InlineParts<'i>, FsError> {
        let (area, area_offset) = inode.xattr_area();
        let (tail, tail_offset) = xattr::inline_data_tail(area, area_offset, inode.ino)?;
        Ok(InlineParts {
            head: &inode.i_block,
            head_offset: inode.offset + I_BLOCK_OFFSET,
            tail,
            tail_offset,
        })
    }

    /// The whole contents of an inline-data file or symlink (at most one inode's size).
    fn inline_data(&self, inode: &Inode) -> Result<Vec<u8>, FsError> {
        let InlineParts { head, tail, .. } = self.inline_parts(inode)?;
        let size = self.inline_data_len(inode)?;
        let mut data = Vec::with_capacity(size);
        data.extend(head.iter().chain(tail.iter()).take(size));
        Ok(data)
    }

    /// i_size of an inline inode, refused when i_block and system.data cannot hold it.
    fn inline_data_len(&self, inode: &Inode) -> Result<usize, FsError> {
        let InlineParts { head, tail, .. } = self.inline_parts(inode)?;
        let capacity = (head.len() + tail.len()) as u64;
        if inode.i_size > capacity {
            return Err(FsError::corrupt(
                CorruptKind::OutOfRange,
                What::of_inode("ext4 inline data", inode.ino).to_string(),
                inode.offset + 0x4,
                format!(
                    "i_size {} exceeds the {capacity} bytes of inline data",
                    inode.i_size
                ),
            ));
        }
        // Bounded by the capacity just checked, itself at most one inode.
        Ok(usize::try_from(inode.i_size).unwrap_or(0))
    }

    fn dir_format(&self) -> DirFormat {
        DirFormat {
            filetype: self.sb.has_incompat(INCOMPAT_FILETYPE),
            block_size: self.sb.block_size,
            inodes_count: self.sb.s_inodes_count,
        }
    }

    fn read_inline_dir(&self, inode: &Inode) -> Result<Vec<DirEntry>, FsError> {
        let InlineParts {
            head,
            head_offset,
            tail,
            tail_offset,
        } = self.inline_parts(inode)?;
        let format = self.dir_format();
        let mut entries = Vec::new();
        // i_block opens with the parent's inode number (the inline form of `..`).
        let regions = head.get(4..).unwrap_or(&[]);
        dir::parse_block(regions, head_offset + 4, inode.ino, format, &mut entries)?;
        if !tail.is_empty() {
            dir::parse_block(tail, tail_offset, inode.ino, format, &mut entries)?;
        }
        Ok(entries)
    }

    /// Lists a block-mapped directory: every mapped block, holes skipped, including
    /// blocks mapped past i_size. A hole is not the end of a directory, and e2fsck counts
    /// a directory's size up to its last mapped block (it repairs a shorter i_size), so
    /// entries after a hole or past a stale i_size are listed as debugfs lists them.
    fn read_block_dir(&self, inode: &Inode, layout: DataLayout) -> Result<Vec<DirEntry>, FsError> {
        let bs = self.sb.block_size;
        let limit = MAX_DIR_BYTES.min(self.disk.source.len());
        if inode.i_size > limit {
            return Err(FsError::corrupt(
                CorruptKind::TooLarge,
                What::inode(inode.ino).to_string(),
                inode.offset + 0x4,
                format!(
                    "directory i_size {} exceeds the {limit} bytes this reader lists",
                    inode.i_size
                ),
            ));
        }
        self.check_size(inode, layout)?;
        let address_space = match layout {
            DataLayout::BlockMap => BlockMap::max_blocks(&self.sb),
            _ => MAX_LOGICAL_BLOCKS,
        };
        let format = self.dir_format();
        let what = What::of_inode("ext4 directory block", inode.ino);
        let mut mapper = Mapper::for_directory(inode, layout, &self.sb)?;
        let chunk_blocks = (READ_CHUNK as u64 / bs).max(1);
        let mut entries = Vec::new();
        let mut buf = Vec::new();
        let mut logical = 0u64;
        let mut mapped_bytes = 0u64;
        let mut runs = 0u64;
        // Each pass consumes at least one block of the address space, and there are at
        // most MAX_DIR_RUNS passes.
        while logical < address_space {
            runs += 1;
            if runs > MAX_DIR_RUNS {
                return Err(FsError::corrupt(
                    CorruptKind::TooLarge,
                    what.to_string(),
                    inode.offset + I_BLOCK_OFFSET,
                    format!("directory mapping has more than {MAX_DIR_RUNS} runs"),
                ));
            }
            let run = mapper.map(&self.disk, &self.sb, logical)?;
            let count = run.len.clamp(1, address_space - logical);
            if let Some(first) = run.physical {
                mapped_bytes = mapped_bytes.saturating_add(count.saturating_mul(bs));
                if mapped_bytes > limit {
                    return Err(FsError::corrupt(
                        CorruptKind::TooLarge,
                        what.to_string(),
                        inode.offset + I_BLOCK_OFFSET,
                        format!("directory maps more than the {limit} bytes this reader lists"),
                    ));
                }
                let mut done = 0u64;
                while done < count {
                    let n = (count - done).min(chunk_blocks);
                    let offset = self.sb.block_offset(first + done).ok_or_else(|| {
                        FsError::corrupt(
                            CorruptKind::OutOfRange,
                            what.to_string(),
                            inode.offset + I_BLOCK_OFFSET,
                            "block past any volume",
                        )
                    })?;
                    buf.resize(usize::try_from(n * bs).unwrap_or(0), 0);
                    self.disk.read_at(what, offset, &mut buf)?;
                    for (i, block) in buf
                        .chunks_exact(usize::try_from(bs).unwrap_or(1))
                        .enumerate()
                    {
                        let block_offset = offset + i as u64 * bs;
                        if self.sb.metadata_csum() {
                            checksum::dir_block(
                                &self.disk.guard,
                                inode.ino,
                                inode.csum_seed,
                                block,
                                block_offset,
                                |raw| dir::rec_len_from_disk(raw, bs),
                            )?;
                        }
                        dir::parse_block(block, block_offset, inode.ino, format, &mut entries)?;
                    }
                    done += n;
                }
            }
            logical += count;
        }
        Ok(entries)
    }

    fn read_slow_symlink(&self, inode: &Inode, layout: DataLayout) -> Result<Vec<u8>, FsError> {
        let what = What::of_inode("ext4 symlink", inode.ino);
        if inode.i_size > self.sb.block_size {
            return Err(FsError::corrupt(
                CorruptKind::OutOfRange,
                what.to_string(),
                inode.offset + 0x4,
                format!("slow symlink size {} exceeds one block", inode.i_size),
            ));
        }
        let mut mapper = Mapper::new(inode, layout, &self.sb)?;
        let run = mapper.map(&self.disk, &self.sb, 0)?;
        let Some(block) = run.physical else {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                what.to_string(),
                inode.offset + I_BLOCK_OFFSET,
                "symlink has no data block",
            ));
        };
        let offset = self.sb.block_offset(block).ok_or_else(|| {
            FsError::corrupt(
                CorruptKind::OutOfRange,
                what.to_string(),
                inode.offset + I_BLOCK_OFFSET,
                "block past any volume",
            )
        })?;
        self.disk.read_vec(what, offset, inode.i_size)
    }
}

impl Filesystem for Ext4Fs {
    fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn root(&self) -> NodeId {
        ROOT_INO
    }

    fn metadata(&self, node: NodeId) -> Result<Metadata, FsError> {
        let inode = self.inode(node)?;
        let meta = inode.metadata()?;
        if matches!(meta.kind, FileKind::File | FileKind::Dir) {
            self.check_node_size(&inode)?;
        }
        Ok(meta)
    }

    fn usage(&self) -> Usage {
        let sb = &self.sb;
        let in_use = sb.s_inodes_count.saturating_sub(sb.s_free_inodes_count);
        // Inodes below s_first_ino are reserved and counted in use; of them only the root
        // (inode 2) is a node a walk meets.
        let reserved = sb.first_ino.saturating_sub(2);
        let used_blocks = sb.s_blocks_count.saturating_sub(sb.s_free_blocks_count);
        Usage {
            nodes: Some(u64::from(in_use.saturating_sub(reserved).max(1))),
            bytes: Some(
                used_blocks
                    .saturating_mul(sb.block_size)
                    .min(self.disk.source.len()),
            ),
        }
    }

    fn incomplete_reason(&self) -> Option<String> {
        let journal = self.unreplayed_journal.as_ref().map(|why| {
            format!("ext4 journal needs recovery but was not replayed ({why}), so recent changes may be missing")
        });
        let mut damaged = self
            .groups
            .iter()
            .enumerate()
            .filter_map(|(group, desc)| desc.damage().map(|d| (group, d)));
        let mut parts: Vec<String> = journal.into_iter().collect();
        parts.extend(damaged.by_ref().take(MAX_GROUPS_NAMED).map(
            |(group, (reason, offset))| {
                format!(
                    "ext4 block group {group}'s descriptor at byte {offset} is damaged ({reason}); its inodes are not read"
                )
            },
        ));
        let more = damaged.count();
        if more > 0 {
            parts.push(format!("{more} more block groups are damaged"));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn unallocated(&self) -> Option<Result<Vec<std::ops::Range<u64>>, FsError>> {
        Some(free_space::unallocated(self))
    }

    fn residue_areas(&self) -> Option<Result<Vec<crate::filesystems::residue::Area>, FsError>> {
        Some(free_space::residue_areas(self))
    }

    fn former_paths(&self, offsets: &[u64]) -> Vec<Option<Vec<u8>>> {
        former::former_paths(self, offsets)
    }

    fn details(&self) -> Option<FsDetails> {
        let sb = &self.sb;
        let log = if !sb.has_compat(superblock::COMPAT_HAS_JOURNAL) {
            "none"
        } else if self.unreplayed_journal.is_some() {
            "dirty"
        } else if !self.disk.overlay.is_empty() && self.disk.overlay.through_backup() {
            "replayed (the journal inode is unusable; found through the superblock's backup of it)"
        } else if !self.disk.overlay.is_empty() {
            "replayed"
        } else {
            "clean"
        };
        Some(FsDetails {
            version: None,
            block_size: sb.block_size,
            inode_size: sb.inode_size,
            dir_block_size: sb.block_size,
            sector_size: None,
            allocation_groups: u64::from(sb.group_count),
            features: sb.feature_names(),
            log: log.into(),
            realtime: false,
        })
    }

    fn ignored_checksums(&self) -> u64 {
        self.disk.guard.ignored()
    }

    fn read_dir(&self, dir: NodeId) -> Result<Vec<DirEntry>, FsError> {
        let inode = self.inode(dir)?;
        if inode.kind()? != FileKind::Dir {
            return Err(FsError::NotADirectory);
        }
        inode.check_readable()?;
        match inode.layout(&self.sb)? {
            DataLayout::Inline => self.read_inline_dir(&inode),
            layout => self.read_block_dir(&inode, layout),
        }
    }

    fn read_link(&self, node: NodeId) -> Result<Vec<u8>, FsError> {
        let inode = self.inode(node)?;
        if inode.kind()? != FileKind::Symlink {
            return Err(FsError::NotASymlink);
        }
        inode.check_readable()?;
        if inode.i_size > MAX_SYMLINK_LEN {
            return Err(FsError::corrupt(
                CorruptKind::TooLarge,
                What::of_inode("ext4 symlink", node).to_string(),
                inode.offset + 0x4,
                format!(
                    "target length {} exceeds PATH_MAX ({MAX_SYMLINK_LEN})",
                    inode.i_size
                ),
            ));
        }
        let layout = inode.layout(&self.sb)?;
        if layout == DataLayout::Inline {
            return self.inline_data(&inode);
        }
        if inode.is_fast_symlink(&self.sb) {
            let size = usize::try_from(inode.i_size).unwrap_or(usize::MAX);
            return inode.i_block.get(..size).map(<[u8]>::to_vec).ok_or_else(|| {
                FsError::corrupt(CorruptKind::OutOfRange,
                    What::of_inode("ext4 symlink", node).to_string(),
                    inode.offset + 0x4,
                    format!("fast symlink of {size} bytes does not fit in the {EXT4_N_BLOCKS_BYTES}-byte i_block"),
                )
            });
        }
        self.read_slow_symlink(&inode, layout)
    }

    fn open(&self, node: NodeId) -> Result<FileReader<'_>, FsError> {
        let inode = self.inode(node)?;
        if inode.kind()? != FileKind::File {
            return Err(FsError::NotAFile);
        }
        inode.check_readable()?;
        let layout = inode.layout(&self.sb)?;
        if layout == DataLayout::Inline {
            return Ok(Box::new(Cursor::new(self.inline_data(&inode)?)));
        }
        if inode.i_size == 0 {
            return Ok(Box::new(std::io::empty()));
        }
        self.check_size(&inode, layout)?;
        let mapper = Mapper::new(&inode, layout, &self.sb)?;
        Ok(Box::new(FileData::stream(
            &self.disk, &self.sb, &inode, mapper,
        )))
    }
}
