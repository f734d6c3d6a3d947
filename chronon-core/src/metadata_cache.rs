//! The dataset-metadata cache every adapter keeps, written once: what a store has read about a
//! dataset (its [`DatasetProps`](crate::DatasetProps), a table handle, ...) reused for a while,
//! so a call does not cost a metadata round trip before its data.
//!
//! Two rules make it safe next to `create` and `drop`:
//! - only what a lookup found is cached; a missing dataset is asked for again every time, so a
//!   dataset another client creates is usable at once;
//! - a lookup takes a [`CacheTicket`] before it reads, and [`MetadataCache::insert`] ignores what
//!   it read if this client created or dropped any dataset since ([`MetadataCache::forget`]): a
//!   lookup racing a drop must not put the dropped dataset back.
//!
//! ```
//! use std::time::Duration;
//! use chronon_core::metadata_cache::{MetadataCache, DEFAULT_METADATA_CACHE_CAPACITY};
//! let cache = MetadataCache::new(Duration::from_secs(5), DEFAULT_METADATA_CACHE_CAPACITY);
//! let ticket = cache.ticket(); // before reading the backend's metadata
//! cache.insert(ticket, "PURCHASES", 42u32);
//! assert_eq!(cache.get("PURCHASES"), Some(42));
//! cache.forget("PURCHASES"); // this client dropped it
//! assert_eq!(cache.get("PURCHASES"), None);
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The one URL parameter that sets the cache's time to live, in milliseconds, in every adapter
/// (`0` turns caching off).
pub const METADATA_CACHE_TTL_PARAM: &str = "metadata_cache_ttl_ms";

/// The entries a cache holds unless an adapter says otherwise: far more datasets than a store
/// usually serves, small enough that a cache never grows without bound.
pub const DEFAULT_METADATA_CACHE_CAPACITY: usize = 10_000;

/// Fresh-for-a-while metadata by dataset name. `Send + Sync` when `V` is `Send`; share it
/// between the calls of one client.
#[derive(Debug)]
pub struct MetadataCache<V> {
    ttl: Duration,
    capacity: usize,
    state: Mutex<State<V>>,
}

#[derive(Debug)]
struct State<V> {
    /// Bumped by every `forget` and `clear`; tickets of an older epoch are void.
    epoch: u64,
    entries: HashMap<String, (V, Instant)>,
}

/// Proof of when a lookup began, taken with [`MetadataCache::ticket`] before reading the
/// backend's metadata and handed to [`MetadataCache::insert`] with what was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheTicket {
    epoch: u64,
}

impl<V: Clone> MetadataCache<V> {
    /// `ttl` zero disables caching; `capacity` bounds the entries (zero also disables). When an
    /// insert finds the cache full, expired entries go first; if none has expired, the stalest
    /// entry (the one inserted longest ago) goes, so the datasets in use stay cached.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        MetadataCache {
            ttl,
            capacity,
            state: Mutex::new(State {
                epoch: 0,
                entries: HashMap::new(),
            }),
        }
    }

    /// How long an entry is reused.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether anything is ever kept (`ttl` and `capacity` both non-zero).
    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    /// The number of entries held, fresh or not yet evicted.
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state, even after a panic in another thread held the lock (the map stays consistent:
    /// no code path panics half-way through an update).
    fn state(&self) -> MutexGuard<'_, State<V>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_fresh(&self, at: Instant, now: Instant) -> bool {
        now.duration_since(at) < self.ttl
    }

    /// A fresh entry, if any.
    pub fn get(&self, dataset: &str) -> Option<V> {
        let mut state = self.state();
        let (value, at) = state.entries.get(dataset)?;
        if self.is_fresh(*at, Instant::now()) {
            return Some(value.clone());
        }
        state.entries.remove(dataset);
        None
    }

    /// Take BEFORE starting a lookup of the backend's metadata.
    pub fn ticket(&self) -> CacheTicket {
        CacheTicket {
            epoch: self.state().epoch,
        }
    }

    /// Keeps `value` unless `forget`/`clear` happened after `ticket` was taken (a lookup that
    /// began before a drop/create of this client must not put back what it read before).
    pub fn insert(&self, ticket: CacheTicket, dataset: &str, value: V) {
        if !self.is_enabled() {
            return;
        }
        let mut state = self.state();
        if state.epoch != ticket.epoch {
            return;
        }
        let now = Instant::now();
        if !state.entries.contains_key(dataset) && state.entries.len() >= self.capacity {
            state.entries.retain(|_, (_, at)| self.is_fresh(*at, now));
            if state.entries.len() >= self.capacity {
                let stalest = state
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(name, _)| name.clone());
                if let Some(name) = stalest {
                    state.entries.remove(&name);
                }
            }
        }
        state.entries.insert(dataset.to_string(), (value, now));
    }

    /// This client created or dropped `dataset`: forget it and void every ticket in flight.
    pub fn forget(&self, dataset: &str) {
        let mut state = self.state();
        state.epoch += 1;
        state.entries.remove(dataset);
    }

    /// Forgets every entry and voids every ticket in flight.
    pub fn clear(&self) {
        let mut state = self.state();
        state.epoch += 1;
        state.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DatasetProps;

    fn cache(ttl: Duration) -> MetadataCache<DatasetProps> {
        MetadataCache::new(ttl, DEFAULT_METADATA_CACHE_CAPACITY)
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<MetadataCache<DatasetProps>>();
        check::<CacheTicket>();
    }

    #[test]
    fn found_datasets_are_reused_missing_ones_are_not() {
        let cache = cache(Duration::from_secs(60));
        assert_eq!(cache.get("A"), None);
        assert_eq!(cache.get("B"), None);
        let ticket = cache.ticket();
        cache.insert(ticket, "A", DatasetProps::snapshot()); // B does not exist: nothing kept
        assert_eq!(cache.get("A"), Some(DatasetProps::snapshot()));
        assert_eq!(cache.get("B"), None);
    }

    #[test]
    fn forget_wins_over_a_lookup_that_began_before_it() {
        let cache = cache(Duration::from_secs(60));
        let ticket = cache.ticket();
        cache.forget("A"); // dropped while the read was in flight
        cache.insert(ticket, "A", DatasetProps::snapshot());
        assert_eq!(cache.get("A"), None);

        let ticket = cache.ticket();
        cache.clear();
        cache.insert(ticket, "B", DatasetProps::snapshot());
        assert_eq!(cache.get("B"), None);

        // A lookup begun after the drop is kept.
        let ticket = cache.ticket();
        cache.insert(ticket, "A", DatasetProps::time_series());
        assert_eq!(cache.get("A"), Some(DatasetProps::time_series()));
    }

    #[test]
    fn entries_expire_and_zero_disables() {
        let cache = cache(Duration::from_millis(300));
        cache.insert(cache.ticket(), "A", DatasetProps::snapshot());
        assert!(cache.get("A").is_some());
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(cache.get("A"), None);
        assert!(cache.is_empty(), "an expired entry read is removed");

        let off = MetadataCache::new(Duration::ZERO, DEFAULT_METADATA_CACHE_CAPACITY);
        off.insert(off.ticket(), "A", DatasetProps::snapshot());
        assert_eq!(off.get("A"), None);
        assert!(!off.is_enabled());
        let no_room = MetadataCache::new(Duration::from_secs(60), 0);
        no_room.insert(no_room.ticket(), "A", DatasetProps::snapshot());
        assert_eq!(no_room.get("A"), None);
    }

    #[test]
    fn a_full_cache_drops_its_stalest_entry() {
        let cache = MetadataCache::new(Duration::from_secs(60), 3);
        for (i, name) in ["A", "B", "C"].into_iter().enumerate() {
            cache.insert(cache.ticket(), name, i);
            std::thread::sleep(Duration::from_millis(2)); // distinct insert times
        }
        cache.insert(cache.ticket(), "B", 10); // a refresh of a held entry evicts nothing
        assert_eq!(cache.len(), 3);
        std::thread::sleep(Duration::from_millis(2));
        cache.insert(cache.ticket(), "D", 3);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("A"), None, "the stalest entry went");
        assert_eq!(cache.get("B"), Some(10));
        assert_eq!(cache.get("C"), Some(2));
        assert_eq!(cache.get("D"), Some(3));
    }
}
