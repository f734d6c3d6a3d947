//! Dataset properties a store has read from the metadata collection, reused for
//! [`MongoOptions::metadata_cache_ttl`](crate::MongoOptions::metadata_cache_ttl) so a call does
//! not cost a metadata round trip before its data.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chronon_core::DatasetProps;

/// Entries beyond this are dropped all at once (a store naming this many datasets is unusual;
/// the cache must not grow without bound either way).
const MAX_ENTRIES: usize = 10_000;

/// Found datasets only: a missing dataset is always looked up again, so one created by another
/// client is usable at once.
pub(crate) struct PropsCache {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bumped by every [`PropsCache::forget`]: a lookup that started before a drop or create of
    /// this store must not put back what it read before it.
    epoch: u64,
    entries: HashMap<String, (DatasetProps, Instant)>,
}

/// What [`PropsCache::lookup`] could not answer, and when the caller started asking.
pub(crate) struct Misses<'a> {
    pub(crate) datasets: Vec<&'a str>,
    epoch: u64,
}

impl PropsCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        PropsCache {
            ttl,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fresh entries among `datasets` into `found`; the rest are returned to be read.
    pub(crate) fn lookup<'a>(
        &self,
        datasets: &[&'a str],
        found: &mut HashMap<String, DatasetProps>,
    ) -> Misses<'a> {
        let state = self.state();
        let now = Instant::now();
        let mut misses = Vec::new();
        for &d in datasets {
            match state.entries.get(d) {
                Some((props, at)) if now.duration_since(*at) < self.ttl => {
                    found.insert(d.to_string(), *props);
                }
                _ => misses.push(d),
            }
        }
        Misses {
            datasets: misses,
            epoch: state.epoch,
        }
    }

    /// Keeps what was read for `misses`, unless this store dropped or created a dataset since
    /// the read began (it may predate that change).
    pub(crate) fn remember(&self, misses: Misses<'_>, read: &HashMap<String, DatasetProps>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.state();
        if state.epoch != misses.epoch {
            return;
        }
        if state.entries.len() + read.len() > MAX_ENTRIES {
            state.entries.clear();
        }
        let now = Instant::now();
        for d in misses.datasets {
            if let Some(props) = read.get(d) {
                state.entries.insert(d.to_string(), (*props, now));
            }
        }
    }

    /// Forgets `dataset` (this store created or dropped it) and every lookup still in flight.
    pub(crate) fn forget(&self, dataset: &str) {
        let mut state = self.state();
        state.epoch += 1;
        state.entries.remove(dataset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(names: &[&str]) -> HashMap<String, DatasetProps> {
        names
            .iter()
            .map(|n| (n.to_string(), DatasetProps::snapshot()))
            .collect()
    }

    #[test]
    fn found_datasets_are_reused_missing_ones_are_not() {
        let cache = PropsCache::new(Duration::from_secs(60));
        let mut found = HashMap::new();
        let misses = cache.lookup(&["A", "B"], &mut found);
        assert_eq!(misses.datasets, ["A", "B"]);
        cache.remember(misses, &read(&["A"])); // B does not exist
        let mut found = HashMap::new();
        let misses = cache.lookup(&["A", "B"], &mut found);
        assert_eq!(misses.datasets, ["B"]);
        assert!(found.contains_key("A"));
    }

    #[test]
    fn forget_wins_over_a_lookup_that_began_before_it() {
        let cache = PropsCache::new(Duration::from_secs(60));
        let misses = cache.lookup(&["A"], &mut HashMap::new());
        cache.forget("A"); // dropped while the read was in flight
        cache.remember(misses, &read(&["A"]));
        assert_eq!(cache.lookup(&["A"], &mut HashMap::new()).datasets, ["A"]);
    }

    #[test]
    fn entries_expire_and_zero_disables() {
        let cache = PropsCache::new(Duration::from_millis(500));
        let misses = cache.lookup(&["A"], &mut HashMap::new());
        cache.remember(misses, &read(&["A"]));
        assert!(cache
            .lookup(&["A"], &mut HashMap::new())
            .datasets
            .is_empty());
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(cache.lookup(&["A"], &mut HashMap::new()).datasets, ["A"]);

        let off = PropsCache::new(Duration::ZERO);
        let misses = off.lookup(&["A"], &mut HashMap::new());
        off.remember(misses, &read(&["A"]));
        assert_eq!(off.lookup(&["A"], &mut HashMap::new()).datasets, ["A"]);
    }
}
