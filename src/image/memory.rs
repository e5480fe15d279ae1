//! A disk held in memory: for fuzzing and tests, where the bytes come from a buffer.

use std::io;

use super::{past_end, BlockSource};

#[derive(Debug, Clone)]
pub struct MemoryImage {
    bytes: Vec<u8>,
}

impl MemoryImage {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }
}

impl BlockSource for MemoryImage {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let source = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .and_then(|range| self.bytes.get(range))
            .ok_or_else(|| past_end(offset, buf.len() as u64, self.len()))?;
        buf.copy_from_slice(source);
        Ok(())
    }
}

/// A large, mostly zero disk in memory: only the sectors written are stored. For fuzzing
/// filesystems whose smallest real volume is megabytes of zeros.
#[derive(Debug, Clone, Default)]
pub struct SparseMemory {
    len: u64,
    /// 512-byte sectors by number; absent sectors read as zeros.
    sectors: std::collections::BTreeMap<u64, [u8; SECTOR]>,
}

const SECTOR: usize = 512;

impl SparseMemory {
    pub fn new(len: u64) -> Self {
        Self {
            len,
            sectors: Default::default(),
        }
    }

    /// Stores `data` (at most one sector, zero-padded) as the sector at `offset`, which is
    /// rounded down to a sector boundary.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let mut sector = [0u8; SECTOR];
        for (dst, src) in sector.iter_mut().zip(data) {
            *dst = *src;
        }
        self.sectors.insert(offset / SECTOR as u64, sector);
    }
}

impl BlockSource for SparseMemory {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        super::check_range(offset, buf.len(), self.len)?;
        buf.fill(0);
        let end = offset + buf.len() as u64;
        let first = offset / SECTOR as u64;
        for (number, sector) in self.sectors.range(first..end.div_ceil(SECTOR as u64)) {
            let start = number * SECTOR as u64;
            let from = start.max(offset);
            let to = (start + SECTOR as u64).min(end);
            let dst = usize::try_from(from - offset).unwrap_or(usize::MAX);
            let src = usize::try_from(from - start).unwrap_or(usize::MAX);
            let n = usize::try_from(to - from).unwrap_or(0);
            if let (Some(dst), Some(src)) = (
                buf.get_mut(dst..dst.saturating_add(n)),
                sector.get(src..src.saturating_add(n)),
            ) {
                dst.copy_from_slice(src);
            }
        }
        Ok(())
    }
}
