//! What both RocksDB benchmarks share: the same 100,000 snapshot rows loaded into the adapter
//! and into a raw `rocksdb` database tuned like the adapter's defaults, and the raw calls that
//! do the adapter's work.

#![allow(dead_code)] // each benchmark uses part of it

use bytes::Bytes;
use chronon_core::{DatasetProps, KvStore, PutRequest};
use chronon_rocks::{RocksOptions, RocksStore};
use rocksdb::{
    BlockBasedOptions, Cache, DBCompressionType, Options, WriteBatch, WriteBufferManager, DB,
};

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

/// Stored form of a snapshot value in chronon-rocks: 8-byte big-endian ts, then the value.
pub fn stored(i: u64) -> Vec<u8> {
    let mut out = (TS as u64).to_be_bytes().to_vec();
    out.extend_from_slice(&value(i));
    out
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

/// The raw side of `multi_get`: one `batched_multi_get_cf`, each value copied out past its ts.
pub fn raw_get(db: &DB, keys: &[Vec<u8>]) -> Vec<Bytes> {
    let cf = db.cf_handle("ds").unwrap();
    db.batched_multi_get_cf(&cf, keys.iter(), false)
        .into_iter()
        .map(|r| Bytes::copy_from_slice(&r.unwrap().unwrap()[8..]))
        .collect()
}

/// The raw side of `multi_put`: one `WriteBatch` of values stored as chronon-rocks stores them.
pub fn raw_put(db: &DB, puts: &[(Vec<u8>, Bytes)]) {
    let cf = db.cf_handle("ds").unwrap();
    let mut wb = WriteBatch::default();
    for (k, v) in puts {
        let mut stored = (TS as u64).to_be_bytes().to_vec();
        stored.extend_from_slice(v);
        wb.put_cf(&cf, k, stored);
    }
    db.write(wb).unwrap();
}

/// The raw database, tuned like the adapter's defaults (64 MiB LRU cache, 10-bit bloom, LZ4,
/// one 64 MiB write buffer manager, 4 background jobs).
pub fn raw_db(path: &std::path::Path) -> DB {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&Cache::new_lru_cache(64 << 20));
    table.set_bloom_filter(10.0, false);
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(4);
    opts.set_write_buffer_manager(&WriteBufferManager::new_write_buffer_manager(
        64 << 20,
        false,
    ));
    opts.set_block_based_table_factory(&table);
    opts.set_compression_type(DBCompressionType::Lz4);
    let mut cf_opts = Options::default();
    cf_opts.set_block_based_table_factory(&table);
    cf_opts.set_compression_type(DBCompressionType::Lz4);
    DB::open_cf_descriptors(
        &opts,
        path,
        vec![rocksdb::ColumnFamilyDescriptor::new("ds", cf_opts)],
    )
    .unwrap()
}

/// The runtime both benchmarks drive the adapter on: two workers, as on the 2-core CI machine.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The adapter and the raw database, both holding the same [`ROWS`] rows, in `dir`.
pub fn load(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> (RocksStore, DB) {
    let store = rt.block_on(async {
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
        store
    });
    let raw = raw_db(&dir.join("raw"));
    {
        let cf = raw.cf_handle("ds").unwrap();
        for start in (0..ROWS).step_by(10_000) {
            let mut wb = WriteBatch::default();
            for i in start..start + 10_000 {
                wb.put_cf(&cf, key(i), stored(i));
            }
            raw.write(wb).unwrap();
        }
    }
    (store, raw)
}
