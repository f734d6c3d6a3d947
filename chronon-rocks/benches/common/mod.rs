//! What both RocksDB benchmarks share: 100,000 snapshot rows loaded through the adapter, and
//! the raw `rocksdb` calls that do the adapter's work on that same database.

#![allow(dead_code)] // each benchmark uses part of it

use std::time::{Duration, Instant};

use bytes::Bytes;
use chronon_core::{DatasetProps, GetRequest, KvStore, PutRequest};
use chronon_rocks::rocksdb::{self, WriteBatch};
use chronon_rocks::{RocksOptions, RocksStore};

pub const ROWS: u64 = 100_000;
pub const DATASET: &str = "BENCH_BATCH";
pub const TS: i64 = 1_700_000_000_000;

pub fn key(i: u64) -> Vec<u8> {
    format!("user_{i:08}").into_bytes()
}

pub fn value(i: u64) -> Vec<u8> {
    let mut v = format!("features-of-{i}-").into_bytes();
    v.resize(100, b'x');
    v
}

/// Deterministic sample of `n` row numbers (an LCG; no rand dependency needed).
pub fn sample(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % ROWS
        })
        .collect()
}

/// The column family of [`DATASET`] in the adapter's database, for the raw calls.
fn raw_cf(store: &RocksStore) -> std::sync::Arc<rocksdb::BoundColumnFamily<'_>> {
    store
        .db()
        .cf_handle(&RocksStore::column_family(DATASET))
        .unwrap()
}

/// The raw side of `multi_get`: one `batched_multi_get_cf` on the adapter's own database and
/// column family, each value copied out past its ts.
pub fn raw_get(store: &RocksStore, keys: &[Vec<u8>]) -> Vec<Bytes> {
    let cf = raw_cf(store);
    store
        .db()
        .batched_multi_get_cf(&cf, keys.iter(), false)
        .into_iter()
        .map(|r| Bytes::copy_from_slice(&r.unwrap().unwrap()[8..]))
        .collect()
}

/// The raw side of `multi_put`: one `WriteBatch` into the adapter's own column family, values
/// stored as chronon-rocks stores them (8-byte big-endian ts, then the value) through one
/// reused buffer.
pub fn raw_put(store: &RocksStore, puts: &[(Vec<u8>, Bytes)]) {
    let cf = raw_cf(store);
    let mut wb = WriteBatch::default();
    let mut stored = Vec::new();
    for (k, v) in puts {
        stored.clear();
        stored.extend_from_slice(&(TS as u64).to_be_bytes());
        stored.extend_from_slice(v);
        wb.put_cf(&cf, k, &stored);
    }
    store.db().write(wb).unwrap();
}

/// The runtime both benchmarks drive the adapter on: two workers, as on the 2-core CI machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The adapter's store holding [`ROWS`] rows of [`DATASET`], in `dir`. The raw side of every
/// benchmark reads and writes this same database through [`RocksStore::db`]: two databases
/// loaded the same way differed by 10-15 % in lookup speed (memtable layout), which swamped the
/// adapter's own cost.
pub fn load(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> RocksStore {
    rt.block_on(async {
        let store = RocksStore::open(RocksOptions::new(dir.join("adapter")))
            .await
            .unwrap();
        store
            .create(DATASET, &DatasetProps::snapshot())
            .await
            .unwrap();
        for start in (0..ROWS).step_by(10_000) {
            let puts = (start..start + 10_000)
                .map(|i| PutRequest::new(DATASET, key(i), value(i), Some(TS)))
                .collect();
            assert!(store.multi_put(puts).await.iter().all(Result::is_ok));
        }
        // Loaded rows sit in the memtable (12 MB of a 64 MB write buffer); with this set they are
        // flushed and compacted into table files first, where a service's bulk-loaded rows live.
        if std::env::var_os("CHRONON_BENCH_FROM_SST").is_some() {
            let db = store.db();
            db.flush_cf(&raw_cf(&store)).unwrap();
            db.compact_range_cf(&raw_cf(&store), None::<&[u8]>, None::<&[u8]>);
        }
        store
    })
}

/// Who does a benchmark call: the adapter, or the raw `rocksdb` calls on tokio's blocking pool
/// (what an async service must do with a blocking call, and what the adapter does) or on the
/// calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Adapter,
    RawPool,
    RawHere,
}

/// One `multi_get` of the latest values of rows `ids`, its input built just before (as a
/// service does) and its output dropped after; returns the time of the call alone.
pub async fn get_call(store: &RocksStore, ids: &[u64], side: Side) -> Duration {
    if side == Side::Adapter {
        let requests: Vec<GetRequest> = ids
            .iter()
            .map(|&i| GetRequest::latest(DATASET, key(i)))
            .collect();
        let t = Instant::now();
        let out = store.multi_get(requests).await;
        let took = t.elapsed();
        assert!(out
            .iter()
            .all(|r| r.values.as_ref().is_ok_and(|v| v.len() == 1)));
        return took;
    }
    let keys: Vec<Vec<u8>> = ids.iter().map(|&i| key(i)).collect();
    let t = Instant::now();
    let out = if side == Side::RawPool {
        let db = store.clone();
        tokio::task::spawn_blocking(move || raw_get(&db, &keys))
            .await
            .unwrap()
    } else {
        raw_get(store, &keys)
    };
    let took = t.elapsed();
    assert_eq!(out.len(), ids.len());
    took
}

/// One `multi_put` of 1,000 values to rows sampled by `round` (in no key order, as a batch
/// from an upload job arrives), built just before; returns the time of the call alone. Then a 1 ms pause, not timed: RocksDB's background flushes and the
/// adapter's freeing of a batch after it answers (see `RocksStore::blocking_answer_first`)
/// finish there instead of overlapping the next timed call, of either side.
pub async fn put_call(store: &RocksStore, round: u64, side: Side) -> Duration {
    let rows = sample(1000, round);
    let took = if side == Side::Adapter {
        let puts: Vec<PutRequest> = (0..1000u64)
            .map(|i| PutRequest::new(DATASET, key(rows[i as usize]), value(i), Some(TS)))
            .collect();
        let t = Instant::now();
        let out = store.multi_put(puts).await;
        let took = t.elapsed();
        assert!(out.iter().all(Result::is_ok));
        took
    } else {
        let puts: Vec<(Vec<u8>, Bytes)> = (0..1000u64)
            .map(|i| (key(rows[i as usize]), Bytes::from(value(i))))
            .collect();
        let t = Instant::now();
        if side == Side::RawPool {
            let db = store.clone();
            tokio::task::spawn_blocking(move || raw_put(&db, &puts))
                .await
                .unwrap();
        } else {
            raw_put(store, &puts);
        }
        t.elapsed()
    };
    tokio::time::sleep(Duration::from_millis(1)).await;
    took
}
