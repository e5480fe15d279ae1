//! Streaming a regular file's contents from runs of blocks, for every block-mapped reader
//! (ext2/3/4, XFS): runs are asked for lazily, mapped runs are read in large chunks, and
//! holes and unwritten extents are produced as zeros without touching the disk.

use std::io::{self, Read};

use super::FsError;

/// Largest single positional read for file data.
pub(crate) const READ_CHUNK: usize = 256 * 1024;

/// A run of logical blocks starting at `logical`, backed by consecutive physical blocks
/// from `physical`, or reading as zeros (a hole, an unwritten extent) when `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub logical: u64,
    pub len: u64,
    pub physical: Option<u64>,
}

/// What a format supplies to stream one file: its block mapping and its disk.
pub(crate) trait FileBlocks {
    fn block_size(&self) -> u64;

    /// The run holding logical block `logical` (at least one block long).
    fn run(&mut self, logical: u64) -> Result<Run, FsError>;

    /// The byte offset of physical block `block` in the volume, if it has one.
    fn block_offset(&self, block: u64) -> Option<u64>;

    /// Fills `buf` from the volume at byte `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), FsError>;

    /// An error about this file's block mapping, at the mapping's on-disk location.
    fn mapping_error(&self, detail: String) -> FsError;
}

/// A regular file's `size` bytes as a `Read`.
pub(crate) struct BlockStream<B> {
    blocks: B,
    size: u64,
    pos: u64,
    run: Option<Run>,
    /// Bytes read ahead from the disk, starting at file offset `buf_start`.
    buf: Vec<u8>,
    buf_start: u64,
}

impl<B: FileBlocks> BlockStream<B> {
    pub(crate) fn new(blocks: B, size: u64) -> Self {
        Self {
            blocks,
            size,
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
        let run = self.blocks.run(logical)?;
        self.run = Some(run);
        Ok(run)
    }

    fn read_more(&mut self, out: &mut [u8]) -> Result<usize, FsError> {
        let bs = self.blocks.block_size().max(1);
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
            return Err(self.blocks.mapping_error(format!(
                "block mapping made no progress at byte {}",
                self.pos
            )));
        }
        let Some(first) = run.physical else {
            if let Some(dst) = out.get_mut(..want) {
                dst.fill(0);
            }
            self.pos += want as u64;
            return Ok(want);
        };
        let block = first.saturating_add(logical - run.logical);
        let disk_offset = self
            .blocks
            .block_offset(block)
            .and_then(|o| o.checked_add(self.pos % bs))
            .ok_or_else(|| {
                self.blocks
                    .mapping_error(format!("block {block} is past any volume"))
            })?;
        if want >= READ_CHUNK {
            if let Some(dst) = out.get_mut(..want) {
                self.blocks.read_at(disk_offset, dst)?;
            }
            self.pos += want as u64;
            return Ok(want);
        }
        let chunk = usize::try_from(avail).unwrap_or(usize::MAX).min(READ_CHUNK);
        self.buf.resize(chunk, 0);
        self.blocks.read_at(disk_offset, &mut self.buf)?;
        self.buf_start = self.pos;
        Ok(self.take_buffered(out))
    }
}

impl<B: FileBlocks> Read for BlockStream<B> {
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
