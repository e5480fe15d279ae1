//! One file's blocks for the shared block stream (`filesystems::stream`): its block map
//! answers which disk blocks hold each logical block.

use super::bmap::BlockMap;
use super::inode::Inode;
use super::superblock::Superblock;
use super::{Disk, What};
use crate::filesystems::stream::{BlockStream, FileBlocks, Run};
use crate::filesystems::FsError;
use crate::image::CorruptKind;

pub(super) struct FileData<'a> {
    disk: &'a Disk,
    sb: &'a Superblock,
    ino: u64,
    /// Where the inode's data fork lies, for errors about its mapping.
    map_offset: u64,
    map: BlockMap,
}

impl<'a> FileData<'a> {
    /// Streams the `size` bytes of `inode` through its block map.
    pub(super) fn stream(
        disk: &'a Disk,
        sb: &'a Superblock,
        inode: &Inode,
        map: BlockMap,
    ) -> BlockStream<Self> {
        let blocks = Self {
            disk,
            sb,
            ino: inode.ino,
            map_offset: inode.fork_offset,
            map,
        };
        BlockStream::new(blocks, inode.size)
    }
}

impl FileBlocks for FileData<'_> {
    fn block_size(&self) -> u64 {
        self.sb.block_size
    }

    fn run(&mut self, logical: u64) -> Result<Run, FsError> {
        Ok(self.map.map(self.sb, logical))
    }

    fn block_offset(&self, block: u64) -> Option<u64> {
        block.checked_mul(self.sb.block_size)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), FsError> {
        self.disk
            .read_at(What::of_inode("xfs file data", self.ino), offset, buf)
    }

    fn mapping_error(&self, detail: String) -> FsError {
        FsError::corrupt(
            CorruptKind::Invalid,
            What::of_inode("xfs file data", self.ino).to_string(),
            self.map_offset,
            detail,
        )
    }
}
