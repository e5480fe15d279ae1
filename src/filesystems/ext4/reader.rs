//! Streaming file contents: logical blocks are mapped lazily, run by run, and mapped runs
//! are read in large chunks while holes and uninitialised extents are produced as zeros
//! without touching the disk.

use std::io::{self, Read};

use super::block_map::BlockMap;
use super::extent::ExtentTree;
use super::inode::{DataLayout, Inode, I_BLOCK_OFFSET};
use super::superblock::Superblock;
use super::{Disk, Run, What, READ_CHUNK};
use crate::filesystems::FsError;

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
            )?)),
            DataLayout::BlockMap => Ok(Self::Blocks(BlockMap::new(
                inode.ino,
                &inode.i_block,
                root_offset,
                sb,
            ))),
            DataLayout::Inline => Err(FsError::corrupt(
                What::inode(inode.ino).to_string(),
                inode.offset,
                "inline inode has no block mapping",
            )),
        }
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

/// A regular file's contents as a `Read`.
pub(super) struct FileData<'a> {
    disk: &'a Disk,
    sb: &'a Superblock,
    ino: u64,
    /// Where the inode's block mapping (i_block) lies, for errors about it.
    map_offset: u64,
    mapper: Mapper,
    size: u64,
    pos: u64,
    run: Option<Run>,
    /// Bytes read ahead from the disk, starting at file offset `buf_start`.
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'a> FileData<'a> {
    /// Streams the `size` bytes of `inode` through `mapper`.
    pub(super) fn new(disk: &'a Disk, sb: &'a Superblock, inode: &Inode, mapper: Mapper) -> Self {
        Self {
            disk,
            sb,
            ino: inode.ino,
            map_offset: inode.offset + I_BLOCK_OFFSET,
            mapper,
            size: inode.i_size,
            pos: 0,
            run: None,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// Serves `out` from the read-ahead buffer if it holds the current position.
    fn take_buffered(&mut self, out: &mut [u8]) -> usize {
        let Some(skip) = self.pos.checked_sub(self.buf_start) else {
            return 0;
        };
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        let Some(ahead) = self.buf.get(skip..) else {
            return 0;
        };
        let n = ahead.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), ahead.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n as u64;
        n
    }

    fn current_run(&mut self, logical: u64) -> Result<Run, FsError> {
        if let Some(run) = self.run {
            if run.logical <= logical && logical - run.logical < run.len {
                return Ok(run);
            }
        }
        let run = self.mapper.map(self.disk, self.sb, logical)?;
        self.run = Some(run);
        Ok(run)
    }

    fn read_more(&mut self, out: &mut [u8]) -> Result<usize, FsError> {
        let bs = self.sb.block_size;
        let logical = self.pos / bs;
        let run = self.current_run(logical)?;
        let run_end = run
            .logical
            .saturating_add(run.len)
            .saturating_mul(bs)
            .min(self.size);
        let avail = run_end.saturating_sub(self.pos);
        let want = usize::try_from(avail).unwrap_or(usize::MAX).min(out.len());
        if want == 0 {
            return Err(FsError::corrupt(
                What::of_inode("ext4 file data", self.ino).to_string(),
                self.map_offset,
                format!("block mapping made no progress at byte {}", self.pos),
            ));
        }
        let Some(first) = run.physical else {
            if let Some(dst) = out.get_mut(..want) {
                dst.fill(0);
            }
            self.pos += want as u64;
            return Ok(want);
        };
        let what = What::of_inode("ext4 file data", self.ino);
        let block = first + (logical - run.logical);
        let disk_offset = self
            .sb
            .block_offset(block)
            .and_then(|o| o.checked_add(self.pos % bs))
            .ok_or_else(|| {
                FsError::corrupt(
                    what.to_string(),
                    self.map_offset,
                    format!("block {block} is past any volume"),
                )
            })?;
        if want >= READ_CHUNK {
            if let Some(dst) = out.get_mut(..want) {
                self.disk.read_at(what, disk_offset, dst)?;
            }
            self.pos += want as u64;
            return Ok(want);
        }
        let chunk = usize::try_from(avail).unwrap_or(usize::MAX).min(READ_CHUNK);
        self.buf.resize(chunk, 0);
        self.disk.read_at(what, disk_offset, &mut self.buf)?;
        self.buf_start = self.pos;
        Ok(self.take_buffered(out))
    }
}

impl Read for FileData<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        let n = self.take_buffered(out);
        if n > 0 {
            return Ok(n);
        }
        self.read_more(out).map_err(io::Error::other)
    }
}
