//! The `rocksdb` crate baseline, on the adapter's own database: `batched_multi_get_cf` on the
//! snapshot dataset's column family, one `WriteBatch` into it, and one bounded iterator per key
//! of the time-series dataset, each on the blocking pool as the adapter does (an async caller
//! has to), rows encoded as `chronon-rocks/README.md` lays them out.
//!
//! Reading the adapter's own rows, as `chronon-rocks/benches/rocks_ratio.rs` does, and not a
//! second database loaded alike: two such databases differed by 10-15 % in lookup speed, which
//! made the ratio noise by construction (and let the adapter "beat" its driver by 1.2-1.4).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chronon_rocks::rocksdb::{self, ReadOptions, WriteBatch};
use chronon_rocks::RocksStore;
use futures::future::BoxFuture;
use futures::FutureExt;

use super::super::workload::{key, value, CallFn, Datasets, Op, Profile, T0, VERSIONS};
use super::Baseline;

/// The database type of [`RocksStore::db`].
type Db = rocksdb::DBWithThreadMode<rocksdb::MultiThreaded>;

/// Bytes of the big-endian timestamp that starts a stored snapshot value and ends a stored
/// version key (`chronon-rocks/README.md`, "On-disk layout").
const TS_BYTES: usize = 8;

/// The adapter's store, whose database the raw calls share, and the datasets it loaded.
pub struct RocksRaw {
    store: RocksStore,
    /// The adapter's datasets by value size (see [`Baseline::adopt`]).
    datasets: Mutex<HashMap<usize, Datasets>>,
}

impl RocksRaw {
    /// Raw calls on `store`'s database.
    pub fn new(store: RocksStore) -> Self {
        RocksRaw {
            store,
            datasets: Mutex::new(HashMap::new()),
        }
    }
}

/// `escape(key) 00 00`: the prefix of every stored version of `key` (each `00` of the key is
/// written `00 FF`; the workload's keys have none, but the baseline does what a reader must).
fn version_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2 + TS_BYTES);
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// What a raw read hands back to its async caller, as the adapter's answer is: the values are
/// dropped there, not on the blocking thread that read them. Freeing on the other thread is part
/// of the work (mimalloc's cross-thread frees: ~90-100 ns per key of a 1,000-key range read,
/// measured with `perf`), and a baseline that skipped it was 5-7 % faster than any caller that
/// uses its values could be.
type Found = Vec<Bytes>;

/// Latest values of `idx` in the snapshot column family `cf`: keys sorted (so RocksDB skips its
/// own sort), each value copied out past its ts, as any caller that returns values must.
fn get_latest(db: &Db, cf: &str, idx: &[usize]) -> (u64, Found) {
    let Some(cf) = db.cf_handle(cf) else {
        return (idx.len() as u64, Vec::new());
    };
    let mut keys: Vec<Bytes> = idx.iter().map(|i| key(*i)).collect();
    keys.sort_unstable();
    let values: Vec<Bytes> = db
        .batched_multi_get_cf_opt(&cf, keys.iter(), true, &ReadOptions::default())
        .into_iter()
        .filter_map(|r| r.ok().flatten())
        .filter(|v| v.len() >= TS_BYTES)
        .map(|v| Bytes::copy_from_slice(&v[TS_BYTES..]))
        .collect();
    let found = values.len();
    ((idx.len() - found.min(idx.len())) as u64, values)
}

/// Every version at or after [`T0`] of each key of `idx` in the time-series column family `cf`:
/// one iterator per key bounded to `[escape(key) 00 00 ts(T0), escape(key) 00 01)`, values
/// copied out with their ts, as the adapter returns them. Returns the keys whose
/// [`VERSIONS`] versions were not all there, and the values (their ts checked, not kept).
fn get_range(db: &Db, cf: &str, idx: &[usize]) -> (u64, Found) {
    let Some(cf) = db.cf_handle(cf) else {
        return (idx.len() as u64, Vec::new());
    };
    let mut missing = 0;
    let mut found = Vec::with_capacity(idx.len() * VERSIONS as usize);
    for i in idx {
        let prefix = version_prefix(&key(*i));
        let mut lower = prefix.clone();
        lower.extend_from_slice(&(T0 as u64).to_be_bytes());
        let mut upper = prefix;
        if let Some(last) = upper.last_mut() {
            *last = 1;
        }
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(lower);
        ro.set_iterate_upper_bound(upper);
        let mut it = db.raw_iterator_cf_opt(&cf, ro);
        it.seek_to_first();
        let mut versions = 0;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let ts = k
                .len()
                .checked_sub(TS_BYTES)
                .and_then(|at| <[u8; TS_BYTES]>::try_from(&k[at..]).ok())
                .map(u64::from_be_bytes);
            if ts.is_some() {
                versions += 1;
                found.push(Bytes::copy_from_slice(v));
            }
            it.next();
        }
        if it.status().is_err() || versions != VERSIONS {
            missing += 1;
        }
    }
    (missing, found)
}

/// One `WriteBatch` of `idx`'s values stamped `ts` into the snapshot column family `cf`, keys
/// in order (RocksDB's memtable inserts a sorted batch faster), through one reused buffer.
fn put(db: &Db, cf: &str, idx: &[usize], value_size: usize, ts: i64) -> u64 {
    let Some(cf) = db.cf_handle(cf) else {
        return idx.len() as u64;
    };
    let mut keys: Vec<(Bytes, usize)> = idx.iter().map(|i| (key(*i), *i)).collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    let mut batch = WriteBatch::default();
    let mut stored = Vec::with_capacity(TS_BYTES + value_size);
    for (k, i) in &keys {
        stored.clear();
        stored.extend_from_slice(&(ts.max(0) as u64).to_be_bytes());
        stored.extend_from_slice(&value(*i, value_size));
        batch.put_cf(&cf, k, &stored);
    }
    match db.write(batch) {
        Ok(()) => 0,
        Err(_) => idx.len() as u64,
    }
}

impl Baseline for RocksRaw {
    /// The calls on the adapter's datasets of `value_size` (all failing if it loaded none).
    fn call(&self, value_size: usize) -> CallFn {
        let store = self.store.clone();
        let (snapshot, series): (Arc<str>, Arc<str>) = match self
            .datasets
            .lock()
            .ok()
            .and_then(|d| d.get(&value_size).cloned())
        {
            Some(ds) => (
                RocksStore::column_family(&ds.snapshot).into(),
                RocksStore::column_family(&ds.series).into(),
            ),
            None => ("".into(), "".into()),
        };
        Arc::new(move |op, idx, ts| {
            let (store, snapshot, series) = (store.clone(), snapshot.clone(), series.clone());
            tokio::task::spawn_blocking(move || {
                let db = store.db();
                let (errors, found) = match op {
                    Op::GetLatest => get_latest(db, &snapshot, &idx),
                    Op::GetRange => get_range(db, &series, &idx),
                    Op::Put => (put(db, &snapshot, &idx, value_size, ts), Vec::new()),
                };
                (idx.len() as u64, errors, found)
            })
            // The values end here, on the caller's thread, as the adapter's answers do.
            .map(|r| match r {
                Ok((n, errors, found)) => {
                    drop(std::hint::black_box(found));
                    (n, errors)
                }
                Err(_) => (0, 1),
            })
            .boxed()
        })
    }

    fn ranges(&self) -> bool {
        true
    }

    fn adopt(&self, ds: &Datasets) -> bool {
        if let Ok(mut d) = self.datasets.lock() {
            d.insert(ds.value_size, ds.clone());
        }
        true
    }

    fn cleanup<'a>(&'a self, _profile: &'a Profile) -> BoxFuture<'a, ()> {
        // The rows are the adapter's, dropped with its datasets.
        futures::future::ready(()).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The baseline reads what the adapter wrote, in the adapter's layout (a layout change in
    /// chronon-rocks fails here, not as an empty baseline), and the adapter reads its puts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_and_writes_the_adapters_rows() {
        use chronon_core::{GetRequest, KvStore};
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open_url(&format!("rocks://{}", dir.path().display()))
            .await
            .unwrap();
        let adapter: Arc<dyn KvStore> = Arc::new(store.clone());
        let profile = Profile::quick();
        let (ds, _, _) = super::super::super::workload::preload(&adapter, "t", &profile, 100)
            .await
            .unwrap();
        let raw = RocksRaw::new(store.clone());
        assert_eq!(
            raw.call(100)(Op::GetLatest, vec![0], T0).await,
            (1, 1),
            "not adopted yet"
        );
        assert!(raw.adopt(&ds));
        let call = raw.call(100);
        let idx: Vec<usize> = vec![0, 5, 5, 999];
        assert_eq!(call(Op::GetLatest, idx.clone(), T0).await, (4, 0));
        assert_eq!(call(Op::GetRange, idx, T0).await, (4, 0));
        let absent = profile.bulk_rows.max(profile.keys) + 5;
        assert_eq!(call(Op::GetLatest, vec![absent], T0).await, (1, 1));
        assert_eq!(call(Op::GetRange, vec![absent], T0).await, (1, 1));
        assert_eq!(call(Op::Put, vec![7, 3], T0 + 99).await, (2, 0));
        let got = store
            .multi_get(vec![GetRequest::latest(&ds.snapshot, key(7))])
            .await;
        let versions = got[0].values.as_ref().unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0].millis, T0 + 99);
        assert_eq!(versions[0].bytes, value(7, 100));
    }
}
