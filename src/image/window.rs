//! A byte range of another source: how a partition or volume is presented to a filesystem.

use std::io;
use std::sync::Arc;

use super::{check_range, BlockSource};

/// `len` bytes of `parent` starting at `start`; offsets are relative to `start`.
#[derive(Debug, Clone)]
pub struct Window {
    parent: Arc<dyn BlockSource>,
    start: u64,
    len: u64,
}

impl Window {
    /// A window that must lie inside the parent; returns `None` when it would not.
    pub fn new(parent: Arc<dyn BlockSource>, start: u64, len: u64) -> Option<Self> {
        let end = start.checked_add(len)?;
        (end <= parent.len()).then_some(Self { parent, start, len })
    }

    /// Where the window begins in the parent, for error messages that give image offsets.
    pub fn start(&self) -> u64 {
        self.start
    }
}

impl BlockSource for Window {
    fn len(&self) -> u64 {
        self.len
    }

    fn disk_offset(&self, offset: u64) -> Option<u64> {
        self.parent.disk_offset(self.start.checked_add(offset)?)
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len)?;
        // Cannot overflow: start + offset + len <= start + self.len <= parent.len().
        self.parent.read_exact_at(self.start + offset, buf)
    }
}
