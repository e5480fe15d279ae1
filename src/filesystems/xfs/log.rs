//! The state of the internal log: clean (its last record is an unmount record, so the
//! metadata on disk is complete) or needing recovery (an image taken from a running
//! system). Finds the log head as the kernel does at mount, from the cycle number that
//! stamps every 512-byte basic block, without replaying anything.

use super::superblock::Superblock;
use super::{Disk, What};
use crate::bytes::be32;

const BB: u64 = 512;
const RECORD_MAGIC: u32 = 0xfeed_babe;
/// XLOG_UNMOUNT_TRANS in an operation header's flags.
const UNMOUNT_TRANS: u8 = 0x20;
/// How far behind the head in-flight writes may leave holes, and how far back the last
/// record header may start: eight log buffers of at most 256 KiB (XLOG_TOTAL_REC_SHIFT).
const SCAN_WINDOW_BB: u64 = 8 * (256 * 1024) / BB;
/// v2 logs split a record header over one basic block per 32 KiB of log buffer.
const HEADER_CYCLE_SIZE: u64 = 32 * 1024;

/// What the log says about the metadata on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LogState {
    Clean,
    /// Committed changes may be in the log and not yet on disk.
    Dirty(Unclean),
    /// The log lives on another device, which the image does not hold.
    External,
}

impl LogState {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::Dirty(_) => "dirty",
            Self::External => "external",
        }
    }
}

/// Why the log cannot be shown clean.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Unclean {
    #[error("the log lies outside the filesystem")]
    Outside,
    #[error("the log is too small to hold a record")]
    TooSmall,
    /// A read of the log failed; the read's error, as it reads.
    #[error("{0}")]
    Unreadable(String),
    #[error("log cycle numbers {first} and {last} at its two ends do not follow each other")]
    Cycles { first: u32, last: u32 },
    #[error("the log ends in unfinished writes")]
    UnfinishedWrites,
    #[error("no log record header near the log head")]
    NoRecordHeader,
    #[error("the last log record does not end at the log head")]
    RecordNotAtHead,
    #[error("the last log record is not an unmount record")]
    NotUnmounted,
}

struct Log<'a> {
    disk: &'a Disk,
    start: u64,
}

impl Log<'_> {
    /// Reads `count` basic blocks from `first` (no wrap).
    fn read(&self, first: u64, count: u64) -> Result<Vec<u8>, Unclean> {
        let what = What::fs("xfs log");
        self.disk
            .read_vec(what, self.start + first * BB, count * BB)
            .map_err(|e| Unclean::Unreadable(e.to_string()))
    }

    /// The cycle number of basic block `bb`: its first word, or the header's h_cycle.
    fn cycle(&self, bb: u64) -> Result<u32, Unclean> {
        let sector = self.read(bb, 1)?;
        Ok(cycle_of(&sector))
    }
}

fn cycle_of(sector: &[u8]) -> u32 {
    if be32(sector, 0) == RECORD_MAGIC {
        be32(sector, 4)
    } else {
        be32(sector, 0)
    }
}

/// Decides whether the internal log is clean.
pub(super) fn state(disk: &Disk, sb: &Superblock) -> LogState {
    if sb.log_start == 0 {
        return LogState::External;
    }
    match find_clean(disk, sb) {
        Ok(()) => LogState::Clean,
        Err(reason) => LogState::Dirty(reason),
    }
}

fn find_clean(disk: &Disk, sb: &Superblock) -> Result<(), Unclean> {
    let start = sb.fsb_offset(sb.log_start).ok_or(Unclean::Outside)?;
    let bbs = sb.log_blocks.saturating_mul(sb.block_size) / BB;
    if bbs < 2 {
        return Err(Unclean::TooSmall);
    }
    let log = Log { disk, start };
    let first = log.cycle(0)?;
    let last = log.cycle(bbs - 1)?;
    // The head is where the cycle number drops: blocks before it were written in the
    // current pass, blocks after it in the previous one.
    let (head, current) = if first == last {
        (bbs, first)
    } else if first == last.wrapping_add(1) {
        let (mut low, mut high) = (0u64, bbs - 1);
        // Invariant: cycle(low) == first, cycle(high) == last; halves each pass.
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if log.cycle(mid)? == first {
                low = mid;
            } else {
                high = mid;
            }
        }
        (high, first)
    } else {
        return Err(Unclean::Cycles { first, last });
    };
    // In-flight log buffers complete out of order: a block of the previous pass shortly
    // before the head means writes were cut off.
    let window_start = head.saturating_sub(SCAN_WINDOW_BB);
    let window = log.read(window_start, head - window_start)?;
    let sectors: Vec<&[u8]> = window.chunks_exact(BB as usize).collect();
    if sectors.iter().any(|s| cycle_of(s) != current) {
        return Err(Unclean::UnfinishedWrites);
    }
    let Some((index, header)) = sectors
        .iter()
        .enumerate()
        .rev()
        .find(|(_, s)| be32(s, 0) == RECORD_MAGIC && be32(s, 4) == current)
    else {
        return Err(Unclean::NoRecordHeader);
    };
    let header_bb = window_start + index as u64;
    let version = be32(header, 8);
    let len = u64::from(be32(header, 12));
    let logops = be32(header, 40);
    let size = u64::from(be32(header, 320));
    let header_bbs = if version & 2 != 0 && size > HEADER_CYCLE_SIZE {
        size.div_ceil(HEADER_CYCLE_SIZE)
    } else {
        1
    };
    let data_bb = header_bb + header_bbs;
    if data_bb.saturating_add(len.div_ceil(BB)) != head {
        return Err(Unclean::RecordNotAtHead);
    }
    let op_flags = sectors
        .get(usize::try_from(data_bb - window_start).unwrap_or(usize::MAX))
        .and_then(|s| s.get(9).copied());
    if logops == 1 && op_flags.is_some_and(|f| f & UNMOUNT_TRANS != 0) {
        Ok(())
    } else {
        Err(Unclean::NotUnmounted)
    }
}
