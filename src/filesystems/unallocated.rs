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
    let mut total = Unallocated::default();
    let mut buf = vec![0u8; READ];
    for range in ranges {
        // Free-space maps come from the disk: a range past the volume's end is corruption,
        // reported by the read below, never a large allocation.
        total.bytes = total
            .bytes
            .saturating_add(range.end.saturating_sub(range.start));
        let mut at = range.start;
        while at < range.end {
            let len = (range.end - at).min(READ as u64);
            let Some(chunk) = buf.get_mut(..len as usize) else {
                break;
            };
            volume
                .read_exact_at(at, chunk)
                .map_err(|e| FsError::io("unallocated space".to_string(), at, e))?;
            for piece in chunk.chunks(block as usize) {
                if piece.iter().any(|&b| b != 0) {
                    total.nonzero_bytes += piece.len() as u64;
                }
            }
            at += len;
        }
    }
    Ok(total)
}
