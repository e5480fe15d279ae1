//! How much of a volume is unallocated, and how much of that still holds data: a volume
//! shredded, zero-filled or trimmed before capture shows next to none; one whose files
//! were merely deleted shows what they held.

use std::ops::Range;

use serde::Serialize;

use super::{Filesystem, FsError};
use crate::image::BlockSource;

/// Bytes read per request while looking for non-zero blocks.
const READ: usize = 1 << 20;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Unallocated {
    /// Bytes the filesystem's free-space maps mark free.
    pub bytes: u64,
    /// Of those, the bytes of blocks with a byte that is not zero.
    pub nonzero_bytes: u64,
}

/// Measures `fs`'s unallocated space on `volume` (the bytes it was opened from), looking
/// at `block` bytes at a time; `None` when the filesystem's reader does not know its free
/// space.
pub fn measure(
    fs: &dyn Filesystem,
    volume: &dyn BlockSource,
    block: u64,
) -> Option<Result<Unallocated, FsError>> {
    let ranges = match fs.unallocated()? {
        Ok(ranges) => ranges,
        Err(e) => return Some(Err(e)),
    };
    Some(count(&ranges, volume, block.clamp(512, READ as u64)))
}

fn count(
    ranges: &[Range<u64>],
    volume: &dyn BlockSource,
    block: u64,
) -> Result<Unallocated, FsError> {
    use rayon::prelude::*;
    let bytes = ranges
        .iter()
        .map(|r| r.end.saturating_sub(r.start))
        .fold(0u64, u64::saturating_add);
    // Pieces of at most READ bytes, read in parallel: a large volume's free space is
    // gigabytes. Free-space maps come from the disk: a range past the volume's end is
    // corruption, reported by the read, never a large allocation.
    let pieces: Vec<Range<u64>> = ranges
        .iter()
        .flat_map(|range| {
            let (start, end) = (range.start, range.end.max(range.start));
            (0..(end - start).div_ceil(READ as u64)).map(move |i| {
                let from = start + i * READ as u64;
                from..(from + READ as u64).min(end)
            })
        })
        .collect();
    let nonzero = pieces
        .par_iter()
        .map_init(
            || vec![0u8; READ],
            |buf, piece| -> Result<u64, FsError> {
                let len = (piece.end - piece.start) as usize;
                let chunk = buf.get_mut(..len).unwrap_or_default();
                volume
                    .read_exact_at(piece.start, chunk)
                    .map_err(|e| FsError::io("unallocated space".to_string(), piece.start, e))?;
                Ok(chunk
                    .chunks(block as usize)
                    .filter(|piece| piece.iter().any(|&b| b != 0))
                    .map(|piece| piece.len() as u64)
                    .sum())
            },
        )
        .collect::<Vec<_>>()
        .into_iter()
        // In order: the error named is the first piece's that failed, whichever thread.
        .sum::<Result<u64, FsError>>()?;
    Ok(Unallocated {
        bytes,
        nonzero_bytes: nonzero,
    })
}
