//! Which blocks hold a file: extents or the legacy block map behind one question, fed to
//! the shared block stream (`filesystems::stream`).

use super::block_map::BlockMap;
use super::extent::ExtentTree;
use super::inode::{DataLayout, Inode, I_BLOCK_OFFSET};
use super::superblock::Superblock;
use super::{Disk, What};
use crate::filesystems::stream::{BlockStream, FileBlocks, Run};
use crate::filesystems::FsError;
use crate::image::CorruptKind;

/// Either mapping scheme, behind one "which blocks back logical block N" question.
#[derive(Debug)]
pub(super) enum Mapper {
    Extents(ExtentTree),
    Blocks(BlockMap),
}

impl Mapper {
    /// A mapper for a block-based inode (`layout` is not `Inline`).
    pub(super) fn new(inode: &Inode, layout: DataLayout, sb: &Superblock) -> Result<Self, FsError> {
        let root_offset = inode.offset + I_BLOCK_OFFSET;
        match layout {
            DataLayout::Extents => Ok(Self::Extents(ExtentTree::new(
                inode.ino,
                inode.i_block,
                root_offset,
                sb.metadata_csum().then_some(inode.csum_seed),
            )?)),
            DataLayout::BlockMap => Ok(Self::Blocks(BlockMap::new(
                inode.ino,
                &inode.i_block,
                root_offset,
                sb,
            ))),
            DataLayout::Inline => Err(FsError::corrupt(
                CorruptKind::Invalid,
                What::inode(inode.ino).to_string(),
                inode.offset,
                "inline inode has no block mapping",
            )),
        }
    }

    /// A mapper for a directory's blocks: unwritten extents map to their blocks, as
    /// the kernel and e2fsck read them (e2fsck flags the extent and keeps the data).
    pub(super) fn for_directory(
        inode: &Inode,
        layout: DataLayout,
        sb: &Superblock,
    ) -> Result<Self, FsError> {
        let mut mapper = Self::new(inode, layout, sb)?;
        if let Self::Extents(tree) = &mut mapper {
            tree.read_unwritten();
        }
        Ok(mapper)
    }

    pub(super) fn map(
        &mut self,
        disk: &Disk,
        sb: &Superblock,
        logical: u64,
    ) -> Result<Run, FsError> {
        match self {
            Self::Extents(tree) => tree.map(disk, sb, logical),
            Self::Blocks(map) => map.map(disk, sb, logical),
        }
    }
}

/// One file's blocks, for the shared block stream.
pub(super) struct FileData<'a> {
    disk: &'a Disk,
    sb: &'a Superblock,
    ino: u64,
    /// Where the inode's block mapping (i_block) lies, for errors about it.
    map_offset: u64,
    mapper: Mapper,
}

impl<'a> FileData<'a> {
    /// Streams the `i_size` bytes of `inode` through `mapper`.
    pub(super) fn stream(
        disk: &'a Disk,
        sb: &'a Superblock,
        inode: &Inode,
        mapper: Mapper,
    ) -> BlockStream<Self> {
        let blocks = Self {
            disk,
            sb,
            ino: inode.ino,
            map_offset: inode.offset + I_BLOCK_OFFSET,
            mapper,
        };
        BlockStream::new(blocks, inode.i_size)
    }
}

impl FileBlocks for FileData<'_> {
    fn block_size(&self) -> u64 {
        self.sb.block_size
    }

    fn run(&mut self, logical: u64) -> Result<Run, FsError> {
        self.mapper.map(self.disk, self.sb, logical)
    }

    fn block_offset(&self, block: u64) -> Option<u64> {
        self.sb.block_offset(block)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        self.disk
            .read_at(What::of_inode("ext4 file data", self.ino), offset, buf)
    }

    fn mapping_error(&self, detail: String) -> FsError {
        FsError::corrupt(
            CorruptKind::Invalid,
            What::of_inode("ext4 file data", self.ino).to_string(),
            self.map_offset,
            detail,
        )
    }
}
