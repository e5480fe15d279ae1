//! Where a volume may still hold what its files no longer do: the space its free-space
//! maps mark free, and the journal or log, which keeps copies of blocks written through it.
//! A snapshot copies both with the rest of the volume; the residue pass reads them.

use std::ops::Range;

/// What a residue area is, for findings and docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AreaKind {
    /// Blocks the free-space maps mark free.
    Free,
    /// The blocks of the internal journal (log).
    Journal,
}

impl AreaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AreaKind::Free => "free space",
            AreaKind::Journal => "journal",
        }
    }
}

/// One area of a volume: its byte ranges within the volume, in order, adjacent ones
/// merged, no byte in two areas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Area {
    pub kind: AreaKind,
    pub ranges: Vec<Range<u64>>,
}

impl Area {
    pub fn bytes(&self) -> u64 {
        self.ranges
            .iter()
            .map(|r| r.end.saturating_sub(r.start))
            .fold(0, u64::saturating_add)
    }
}

/// Adds `range` to `ranges` (kept in order by the caller), merging it with the last one
/// when they touch.
pub fn push_merged(ranges: &mut Vec<Range<u64>>, range: Range<u64>) {
    if range.is_empty() {
        return;
    }
    match ranges.last_mut() {
        Some(last) if last.end == range.start => last.end = range.end,
        _ => ranges.push(range),
    }
}
