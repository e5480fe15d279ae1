//! A logical volume's bytes: its segments mapped onto the physical volumes, linear or
//! striped, as one `BlockSource` that the filesystems above read like a partition.

use std::io;
use std::sync::Arc;

use crate::image::{past_end, BlockSource};

/// Where one segment's bytes lie.
#[derive(Debug, Clone)]
pub(crate) struct MappedSegment {
    /// Byte offset of the segment within the LV.
    pub start: u64,
    pub len: u64,
    /// Each stripe's PV and the byte offset of the stripe's first byte within it.
    pub stripes: Vec<(Arc<dyn BlockSource>, u64)>,
    /// Bytes per chunk across stripes (the whole segment for one stripe).
    pub chunk: u64,
}

#[derive(Debug)]
pub(crate) struct LvSource {
    len: u64,
    /// Sorted by `start`, contiguous from 0.
    segments: Vec<MappedSegment>,
}

impl LvSource {
    pub(crate) fn new(segments: Vec<MappedSegment>) -> Self {
        let len = segments.last().map_or(0, |s| s.start.saturating_add(s.len));
        Self { len, segments }
    }

    /// The stripe, and the offset within it, holding LV byte `offset` of `segment`, with
    /// how many bytes follow contiguously there.
    fn locate(segment: &MappedSegment, offset: u64) -> Option<(&Arc<dyn BlockSource>, u64, u64)> {
        let within = offset.checked_sub(segment.start)?;
        let count = segment.stripes.len() as u64;
        let chunk = segment.chunk.max(1);
        let index = within / chunk;
        let (pv, base) = segment
            .stripes
            .get(usize::try_from(index % count.max(1)).ok()?)?;
        let row = index / count.max(1);
        let at = base
            .checked_add(row.checked_mul(chunk)?)?
            .checked_add(within % chunk)?;
        let run = (chunk - within % chunk).min(segment.len.checked_sub(within)?);
        Some((pv, at, run))
    }
}

impl BlockSource for LvSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn disk_offset(&self, offset: u64) -> Option<u64> {
        let index = self
            .segments
            .partition_point(|s| s.start.saturating_add(s.len) <= offset);
        let (pv, at, _) = Self::locate(self.segments.get(index)?, offset)?;
        pv.disk_offset(at)
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        crate::image::check_range(offset, buf.len(), self.len)?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let index = self
                .segments
                .partition_point(|s| s.start.saturating_add(s.len) <= at);
            let (pv, pv_offset, run) =
                self.segments
                    .get(index)
                    .and_then(|s| Self::locate(s, at))
                    .ok_or_else(|| past_end(at, (buf.len() - done) as u64, self.len))?;
            let n = usize::try_from(run)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            let piece = buf
                .get_mut(done..done + n)
                .ok_or_else(|| past_end(at, n as u64, self.len))?;
            pv.read_exact_at(pv_offset, piece)?;
            done += n;
        }
        Ok(())
    }
}
