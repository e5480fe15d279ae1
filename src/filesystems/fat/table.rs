//! The file allocation table: following one file's or directory's cluster chain, with
//! every link range-checked and loops detected.

use super::boot_sector::{FatType, Geometry};
use super::{le16, le32};
use crate::filesystems::FsError;
use crate::image::BlockSource;
use crate::image::CorruptKind;

const STRUCTURE: &str = "FAT";

/// Bytes of the table read at once: a chain's entries are usually adjacent, so one read
/// serves many links.
const WINDOW: u64 = 4096;

/// Where a chain stands.
#[derive(Debug, Clone, Copy)]
enum Position {
    /// Nothing yielded yet; `origin` is the byte offset of whatever named `cluster` (a
    /// directory entry, or the boot sector's root-cluster field).
    Start {
        cluster: u32,
        origin: u64,
    },
    /// `cluster` was the last one yielded.
    At(u32),
    Done,
}

/// A lazy walk along one cluster chain. Every cluster is yielded at most once: a chain that
/// comes back to a cluster it has visited is reported as corrupt rather than followed.
#[derive(Debug)]
pub(super) struct Chain<'a> {
    source: &'a dyn BlockSource,
    geometry: &'a Geometry,
    position: Position,
    first: u32,
    /// One bit per cluster of the volume, allocated only when a chain reaches a second
    /// cluster; its size is bounded by the cluster count, which `Geometry` clamps to what
    /// the source can hold.
    visited: Vec<u64>,
    window_start: u64,
    window: Vec<u8>,
}

impl<'a> Chain<'a> {
    pub fn new(
        source: &'a dyn BlockSource,
        geometry: &'a Geometry,
        first_cluster: u32,
        origin: u64,
    ) -> Self {
        Self {
            source,
            geometry,
            position: Position::Start {
                cluster: first_cluster,
                origin,
            },
            first: first_cluster,
            visited: Vec::new(),
            window_start: 0,
            window: Vec::new(),
        }
    }

    /// The next cluster of the chain, or `None` once the chain has ended.
    pub fn next_cluster(&mut self) -> Result<Option<u32>, FsError> {
        let cluster = match self.position {
            Position::Done => return Ok(None),
            Position::Start { cluster, origin } => {
                if !self.geometry.is_data_cluster(cluster) {
                    self.position = Position::Done;
                    return Err(FsError::corrupt(
                        CorruptKind::OutOfRange,
                        "FAT directory entry",
                        origin,
                        format!(
                            "first cluster {cluster} is outside the volume's clusters 2..{}",
                            self.geometry.cluster_end()
                        ),
                    ));
                }
                cluster
            }
            Position::At(current) => match self.link(current)? {
                Some(next) => next,
                None => {
                    self.position = Position::Done;
                    return Ok(None);
                }
            },
        };
        self.visit(cluster)?;
        self.position = Position::At(cluster);
        Ok(Some(cluster))
    }

    /// Advances and returns true when the next cluster immediately follows the current one
    /// on disk, so a reader can fetch both with one read; otherwise leaves the chain as is.
    pub fn next_if_adjacent(&mut self) -> Result<bool, FsError> {
        let Position::At(current) = self.position else {
            return Ok(false);
        };
        match self.link(current)? {
            Some(next) if Some(next) == current.checked_add(1) => {
                self.visit(next)?;
                self.position = Position::At(next);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The FAT entry of `cluster`: `Some(next)`, or `None` at the end of the chain.
    fn link(&mut self, cluster: u32) -> Result<Option<u32>, FsError> {
        let geometry = self.geometry;
        let (offset, width) = self.entry_position(cluster);
        let bytes = self.table_bytes(offset, width)?;
        let (raw, bad, end) = match geometry.fat_type {
            FatType::Fat12 => {
                let pair = le16(bytes, 0);
                // Two 12-bit entries share three bytes; an odd cluster has the high 12 bits.
                let raw = if cluster % 2 == 1 {
                    pair >> 4
                } else {
                    pair & 0x0FFF
                };
                (u32::from(raw), 0xFF7, 0xFF8)
            }
            FatType::Fat16 => (u32::from(le16(bytes, 0)), 0xFFF7, 0xFFF8),
            // The top four bits are reserved and must be ignored.
            FatType::Fat32 => (le32(bytes, 0) & 0x0FFF_FFFF, 0x0FFF_FFF7, 0x0FFF_FFF8),
        };
        if raw >= end {
            return Ok(None);
        }
        if raw == bad {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                STRUCTURE,
                offset,
                format!("cluster {cluster} is in a chain but marked bad"),
            ));
        }
        if raw == 0 {
            return Err(FsError::corrupt(
                CorruptKind::Invalid,
                STRUCTURE,
                offset,
                format!("cluster {cluster} is in a chain but marked free"),
            ));
        }
        if !geometry.is_data_cluster(raw) {
            return Err(FsError::corrupt(
                CorruptKind::OutOfRange,
                STRUCTURE,
                offset,
                format!(
                    "cluster {cluster} links to cluster {raw}, outside the volume's clusters 2..{}",
                    geometry.cluster_end()
                ),
            ));
        }
        Ok(Some(raw))
    }

    /// Byte offset and width of `cluster`'s FAT entry.
    fn entry_position(&self, cluster: u32) -> (u64, u64) {
        let index = u64::from(cluster);
        let (relative, width) = match self.geometry.fat_type {
            FatType::Fat12 => (index + index / 2, 2),
            FatType::Fat16 => (index * 2, 2),
            FatType::Fat32 => (index * 4, 4),
        };
        (self.geometry.fat_offset + relative, width)
    }

    /// Records `cluster` as part of the chain; an error if it already was.
    fn visit(&mut self, cluster: u32) -> Result<(), FsError> {
        let previous = match self.position {
            Position::At(previous) => previous,
            Position::Start { .. } | Position::Done => {
                self.first = cluster;
                return Ok(());
            }
        };
        if self.visited.is_empty() {
            let words = usize::try_from(self.geometry.cluster_end().div_ceil(64)).unwrap_or(0);
            self.visited = vec![0; words];
            set_bit(&mut self.visited, self.first);
        }
        if set_bit(&mut self.visited, cluster) {
            let (offset, _) = self.entry_position(previous);
            self.position = Position::Done;
            return Err(FsError::corrupt(
                CorruptKind::Loop,
                STRUCTURE,
                offset,
                format!(
                    "the chain starting at cluster {} loops: cluster {previous} links back to \
                     cluster {cluster}",
                    self.first
                ),
            ));
        }
        Ok(())
    }

    /// `width` bytes of the table at `offset`, through the window.
    fn table_bytes(&mut self, offset: u64, width: u64) -> Result<&[u8], FsError> {
        let inside = offset >= self.window_start
            && offset - self.window_start + width <= self.window.len() as u64;
        if !inside {
            let table_end = self.geometry.fat_offset + self.geometry.fat_len;
            let len = WINDOW.min(table_end.saturating_sub(offset));
            if len < width {
                return Err(FsError::corrupt(
                    CorruptKind::OutOfRange,
                    STRUCTURE,
                    offset,
                    "entry lies past the end of the FAT",
                ));
            }
            // `len` is at most WINDOW, so this allocation is small whatever the disk says.
            self.window.resize(usize::try_from(len).unwrap_or(0), 0);
            if let Err(e) = self.source.read_exact_at(offset, &mut self.window) {
                self.window.clear();
                return Err(FsError::io(STRUCTURE, offset, e));
            }
            self.window_start = offset;
        }
        let start = usize::try_from(offset - self.window_start).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(width).unwrap_or(usize::MAX));
        self.window.get(start..end).ok_or_else(|| {
            FsError::corrupt(
                CorruptKind::OutOfRange,
                STRUCTURE,
                offset,
                "entry lies past the end of the FAT",
            )
        })
    }
}

/// The largest table [`used_clusters`] reads: FAT32 volumes of up to 4 Mi clusters (16 GiB
/// at 4 KiB clusters; an ESP is far smaller). A larger claim leaves the count unknown
/// rather than costing seconds of reading for a progress estimate.
const MAX_COUNTED_TABLE: u64 = 16 << 20;

/// Bytes of the table read at once while counting: a multiple of 2 and 4, so FAT16 and
/// FAT32 entries never straddle two reads.
const COUNT_CHUNK: u64 = 64 * 1024;

/// How many data clusters the table marks as anything but free, read from the first
/// `cluster_end` entries only (as `Geometry` clamped them). `None` when the table is over
/// [`MAX_COUNTED_TABLE`] or a read fails: the count is an estimate's input, not a check.
pub(super) fn used_clusters(source: &dyn BlockSource, geometry: &Geometry) -> Option<u64> {
    let mut used = 0u64;
    for_each_data_entry(source, geometry, |_, raw| used += u64::from(raw != 0))?;
    Some(used)
}

/// The data clusters the table marks free, as runs `(first cluster, count)` in order;
/// `None` as for [`used_clusters`].
pub(super) fn free_runs(source: &dyn BlockSource, geometry: &Geometry) -> Option<Vec<(u32, u32)>> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for_each_data_entry(source, geometry, |cluster, raw| {
        if raw != 0 {
            return;
        }
        match runs.last_mut() {
            Some((first, count)) if first.saturating_add(*count) == cluster => *count += 1,
            _ => runs.push((cluster, 1)),
        }
    })?;
    Some(runs)
}

/// Calls `visit(cluster, entry)` for every data cluster's table entry (clusters 2 to
/// `cluster_end`), in order.
fn for_each_data_entry(
    source: &dyn BlockSource,
    geometry: &Geometry,
    mut visit: impl FnMut(u32, u32),
) -> Option<()> {
    let entries = geometry.cluster_end();
    let table_len = match geometry.fat_type {
        FatType::Fat12 => entries.checked_mul(3)?.div_ceil(2),
        FatType::Fat16 => entries.checked_mul(2)?,
        FatType::Fat32 => entries.checked_mul(4)?,
    }
    .min(geometry.fat_len);
    if table_len > MAX_COUNTED_TABLE {
        return None;
    }
    let mut chunk = Vec::new();
    let mut done = 0u64;
    let mut entry = |index: u64, raw: u32| {
        if index >= 2 && index < entries {
            if let Ok(cluster) = u32::try_from(index) {
                visit(cluster, raw);
            }
        }
    };
    while done < table_len {
        // FAT12 tables are at most 6 KiB (4084 clusters), so they are read in one go and
        // no 12-bit entry is split between reads.
        let len = (table_len - done).min(COUNT_CHUNK);
        chunk.resize(usize::try_from(len).ok()?, 0);
        source
            .read_exact_at(geometry.fat_offset.checked_add(done)?, &mut chunk)
            .ok()?;
        let first_entry = match geometry.fat_type {
            FatType::Fat12 => 0,
            FatType::Fat16 => done / 2,
            FatType::Fat32 => done / 4,
        };
        match geometry.fat_type {
            FatType::Fat12 => {
                for index in 0..entries {
                    let at = usize::try_from(index + index / 2).ok()?;
                    let Some(pair) = chunk.get(at..at + 2) else {
                        break;
                    };
                    let pair = le16(pair, 0);
                    let raw = if index % 2 == 1 {
                        pair >> 4
                    } else {
                        pair & 0x0FFF
                    };
                    entry(index, u32::from(raw));
                }
            }
            FatType::Fat16 => {
                for (i, bytes) in chunk.chunks_exact(2).enumerate() {
                    entry(first_entry + i as u64, u32::from(le16(bytes, 0)));
                }
            }
            FatType::Fat32 => {
                for (i, bytes) in chunk.chunks_exact(4).enumerate() {
                    entry(first_entry + i as u64, le32(bytes, 0) & 0x0FFF_FFFF);
                }
            }
        }
        done += len;
    }
    Some(())
}

/// Sets a bit and returns whether it was already set; bits past the end count as set, so an
/// unexpected cluster number ends the chain instead of being ignored.
fn set_bit(bits: &mut [u64], cluster: u32) -> bool {
    let index = cluster as usize;
    match bits.get_mut(index / 64) {
        Some(word) => {
            let mask = 1u64 << (index % 64);
            let was = *word & mask != 0;
            *word |= mask;
            was
        }
        None => true,
    }
}
