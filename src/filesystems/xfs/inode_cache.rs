//! Inode clusters kept in memory. XFS allocates inodes in chunks of 64 and a directory's
//! children usually share a few chunks, so one read of a 16 KiB cluster serves the next
//! 31 inodes (of 512 bytes) a walk asks for, instead of one small read each. Bounded and
//! shared by every thread; sharded so that workers rarely wait for one another.

use crate::image::CorruptKind;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::superblock::Superblock;
use super::{Disk, What};
use crate::filesystems::FsError;

/// Bytes read at once around an inode (XFS_INODE_BIG_CLUSTER_SIZE scaled to 512-byte
/// inodes), or one block when blocks are larger.
const CLUSTER_BYTES: u64 = 16 * 1024;
const SHARDS: usize = 16;
/// Clusters kept per shard: 16 × 64 × 16 KiB = 16 MiB at most.
const CLUSTERS_PER_SHARD: usize = 64;

#[derive(Default)]
struct Shard {
    clusters: HashMap<u64, Arc<[u8]>>,
    /// Insertion order, for first-in first-out eviction.
    order: VecDeque<u64>,
}

pub(super) struct InodeCache {
    cluster: u64,
    shards: Vec<Mutex<Shard>>,
}

impl InodeCache {
    pub(super) fn new(sb: &Superblock) -> Self {
        Self {
            cluster: CLUSTER_BYTES.max(sb.block_size),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    /// Hands the `inode_size` bytes of inode `ino` at volume offset `offset` to `parse`.
    pub(super) fn with_inode<T>(
        &self,
        disk: &Disk,
        sb: &Superblock,
        ino: u64,
        offset: u64,
        parse: impl FnOnce(&[u8]) -> Result<T, FsError>,
    ) -> Result<T, FsError> {
        let what = What::inode(ino);
        let index = offset / self.cluster;
        let start = index * self.cluster;
        let shard = self
            .shards
            .get(usize::try_from(index % SHARDS as u64).unwrap_or(0))
            .ok_or_else(|| {
                FsError::corrupt(
                    CorruptKind::Invalid,
                    what.to_string(),
                    offset,
                    "no cache shard",
                )
            })?;
        let cached = shard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clusters
            .get(&index)
            .cloned();
        let cluster = match cached {
            Some(cluster) => cluster,
            None => {
                let len = self.cluster.min(disk.source.len().saturating_sub(start));
                let Ok(bytes) = disk.read_vec(what, start, len) else {
                    // Let the inode's own read report the precise failure.
                    let raw = disk.read_vec(what, offset, sb.inode_size)?;
                    return parse(&raw);
                };
                let cluster: Arc<[u8]> = bytes.into();
                let mut guard = shard.lock().unwrap_or_else(|e| e.into_inner());
                if guard.clusters.len() >= CLUSTERS_PER_SHARD {
                    if let Some(oldest) = guard.order.pop_front() {
                        guard.clusters.remove(&oldest);
                    }
                }
                if guard.clusters.insert(index, Arc::clone(&cluster)).is_none() {
                    guard.order.push_back(index);
                }
                cluster
            }
        };
        let from = usize::try_from(offset - start).unwrap_or(usize::MAX);
        let to = from.saturating_add(usize::try_from(sb.inode_size).unwrap_or(usize::MAX));
        match cluster.get(from..to) {
            Some(raw) => parse(raw),
            None => {
                let raw = disk.read_vec(what, offset, sb.inode_size)?;
                parse(&raw)
            }
        }
    }
}
