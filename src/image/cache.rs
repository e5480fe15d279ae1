//! A small bounded cache shared by reader threads, for the containers' tables (qcow2 L2
//! slices, VMDK grain tables) and decompressed grains.
//!
//! Keys are spread over a few shards, each a short vector behind its own mutex; a lock is
//! held only to look an entry up or to insert one, never while reading or inflating.
//! Replacement is round-robin within a shard, which suits the mostly sequential reads of a
//! filesystem walk and keeps every operation O(entries per shard).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Most shards a cache is split into; two reader threads rarely meet on one.
const MAX_SHARDS: usize = 16;

pub(crate) struct ShardedCache<T: ?Sized> {
    shards: Box<[Mutex<Shard<T>>]>,
    per_shard: usize,
}

struct Shard<T: ?Sized> {
    entries: Vec<(u64, Arc<T>)>,
    /// The next entry to replace once the shard is full.
    hand: usize,
}

impl<T: ?Sized> ShardedCache<T> {
    /// A cache holding at most `capacity` entries (at least one per shard).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shard_count = capacity.clamp(1, MAX_SHARDS);
        let per_shard = capacity.div_ceil(shard_count);
        let shards = (0..shard_count)
            .map(|_| {
                Mutex::new(Shard {
                    entries: Vec::new(),
                    hand: 0,
                })
            })
            .collect();
        Self { shards, per_shard }
    }

    fn shard(&self, key: u64) -> Option<MutexGuard<'_, Shard<T>>> {
        // Consecutive keys land in different shards: parallel sequential readers spread.
        let index = usize::try_from(key % self.shards.len() as u64).ok()?;
        let shard = self.shards.get(index)?;
        // A panic while holding the lock cannot leave the vector inconsistent.
        Some(shard.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn get(&self, key: u64) -> Option<Arc<T>> {
        let shard = self.shard(key)?;
        shard
            .entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, value)| Arc::clone(value))
    }

    pub(crate) fn insert(&self, key: u64, value: Arc<T>) {
        let per_shard = self.per_shard;
        let Some(mut shard) = self.shard(key) else {
            return;
        };
        if shard.entries.iter().any(|(k, _)| *k == key) {
            return; // another thread got there first
        }
        if shard.entries.len() < per_shard {
            shard.entries.push((key, value));
            return;
        }
        let hand = shard.hand;
        if let Some(slot) = shard.entries.get_mut(hand) {
            *slot = (key, value);
        }
        shard.hand = (hand + 1) % per_shard.max(1);
    }
}

impl<T: ?Sized> fmt::Debug for ShardedCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedCache")
            .field("shards", &self.shards.len())
            .field("per_shard", &self.per_shard)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_capacity_and_replaces_round_robin() {
        let cache: ShardedCache<[u32]> = ShardedCache::new(4);
        for key in 0..100u64 {
            cache.insert(key, Arc::from(vec![key as u32]));
        }
        let held = (0..100u64).filter(|k| cache.get(*k).is_some()).count();
        assert!(held <= 4, "{held} entries held");
        assert_eq!(cache.get(99).as_deref(), Some(&[99u32][..]));
    }
}
