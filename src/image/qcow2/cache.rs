//! A bounded cache of L2 table slices shared by every reading thread.
//!
//! Sharded by key; a shard's mutex is held only to look up or insert an `Arc`, never
//! during I/O, so threads reading different parts of the disk rarely meet. Each shard
//! evicts its least recently used slice when full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Shards: more than any likely thread count, so contention stays low.
const SHARDS: usize = 16;

/// Total bytes of L2 entries kept, across shards.
pub const CACHE_BYTES: usize = 32 << 20;

#[derive(Debug, Default)]
struct Shard {
    tick: u64,
    slices: HashMap<u64, (Arc<[u64]>, u64)>,
}

#[derive(Debug)]
pub struct L2Cache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl L2Cache {
    /// A cache for slices of `slice_bytes` bytes each.
    pub fn new(slice_bytes: usize) -> Self {
        let slices = (CACHE_BYTES / slice_bytes.max(1)).max(SHARDS);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: slices / SHARDS,
        }
    }

    fn shard(&self, key: u64) -> Option<&Mutex<Shard>> {
        self.shards.get((key % SHARDS as u64) as usize)
    }

    pub fn get(&self, key: u64) -> Option<Arc<[u64]>> {
        let mut shard = self.shard(key)?.lock().ok()?;
        shard.tick += 1;
        let tick = shard.tick;
        let (slice, used) = shard.slices.get_mut(&key)?;
        *used = tick;
        Some(Arc::clone(slice))
    }

    pub fn insert(&self, key: u64, slice: Arc<[u64]>) {
        let Some(Ok(mut shard)) = self.shard(key).map(|s| s.lock()) else {
            return;
        };
        if shard.slices.len() >= self.per_shard && !shard.slices.contains_key(&key) {
            let oldest = shard
                .slices
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                shard.slices.remove(&oldest);
            }
        }
        shard.tick += 1;
        let tick = shard.tick;
        shard.slices.insert(key, (slice, tick));
    }
}
