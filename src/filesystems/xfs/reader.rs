//! Streaming file contents: the block map is walked run by run, mapped runs are read in
//! large chunks, and holes and unwritten extents are produced as zeros without touching
//! the disk.

use std::io::{self, Read};

use super::bmap::{BlockMap, Run};
use super::inode::Inode;
use super::superblock::Superblock;
use super::{Disk, What, READ_CHUNK};
use crate::filesystems::FsError;

/// A regular file's contents as a `Read`.
pub(super) struct FileData<'a> {
    disk: &'a Disk,
    sb: &'a Superblock,
    ino: u64,
    /// Where the inode's data fork lies, for errors about its mapping.
    map_offset: u64,
    map: BlockMap,
    size: u64,
    pos: u64,
    run: Option<Run>,
    /// Bytes read ahead from the disk, starting at file offset `buf_start`.
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'a> FileData<'a> {
    pub(super) fn new(disk: &'a Disk, sb: &'a Superblock, inode: &Inode, map: BlockMap) -> Self {
        Self {
            disk,
            sb,
            ino: inode.ino,
            map_offset: inode.fork_offset,
            map,
            size: inode.size,
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

    fn current_run(&mut self, logical: u64) -> Run {
        if let Some(run) = self.run {
            if run.logical <= logical && logical - run.logical < run.len {
                return run;
            }
        }
        let run = self.map.map(self.sb, logical);
        self.run = Some(run);
        run
    }

    fn read_more(&mut self, out: &mut [u8]) -> Result<usize, FsError> {
        let bs = self.sb.block_size;
        let logical = self.pos / bs;
        let run = self.current_run(logical);
        let run_end = run
            .logical
            .saturating_add(run.len)
            .saturating_mul(bs)
            .min(self.size);
        let avail = run_end.saturating_sub(self.pos);
        let want = usize::try_from(avail).unwrap_or(usize::MAX).min(out.len());
        if want == 0 {
            return Err(FsError::corrupt(
                What::of_inode("xfs file data", self.ino).to_string(),
                self.map_offset,
                format!("block map made no progress at byte {}", self.pos),
            ));
        }
        let Some(first) = run.block else {
            if let Some(dst) = out.get_mut(..want) {
                dst.fill(0);
            }
            self.pos += want as u64;
            return Ok(want);
        };
        let what = What::of_inode("xfs file data", self.ino);
        let disk_offset = (first + (logical - run.logical))
            .checked_mul(bs)
            .and_then(|o| o.checked_add(self.pos % bs))
            .ok_or_else(|| {
                FsError::corrupt(
                    what.to_string(),
                    self.map_offset,
                    "file data past any volume",
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
