//! The adapter next to the raw `rocksdb` crate doing the same work (issue 4: the adapter must
//! reach at least 0.9 of the raw throughput).
//!
//! - `multi_get/{100,1000}`: latest values of keys drawn from 100,000 snapshot rows. The adapter
//!   goes through `KvStore::multi_get` (validation, spawn_blocking, `batched_multi_get_cf`, decode
//!   into `TimedValue`s); the raw side calls `batched_multi_get_cf` on a database with the same
//!   options and rows and copies each value out, on the calling thread.
//! - `multi_put/1000`: 1,000 snapshot values in one `WriteBatch`, either way.
//!
//! Each raw call is measured twice: `raw` on the benchmark's own thread, and `raw_blocking_pool`
//! the same call sent to tokio's blocking pool and awaited, which is what any async service must
//! do with a blocking RocksDB call (and what the adapter does). The gap between the two is the
//! thread hop: mostly the lookup running on another core whose caches do not hold the memtable's
//! upper skiplist levels (seen in `perf`: the same `FindGreaterOrEqual` work takes longer), not
//! the adapter's own code; `adapter / raw_blocking_pool` is the adapter's overhead.
//!
//! Run: `cargo bench -p chronon-rocks --bench rocks -- --warm-up-time 1 --measurement-time 3`
//! (release, as `cargo bench` builds; add `--profile dev` to reuse the test build).

use std::hint::black_box;

use bytes::Bytes;
use chronon_core::{DatasetProps, GetRequest, KvStore, PutRequest};
use chronon_rocks::{RocksOptions, RocksStore};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options, WriteBatch, DB};

const ROWS: u64 = 100_000;
const DATASET: &str = "BENCH_BATCH";
const TS: i64 = 1_700_000_000_000;

fn key(i: u64) -> Vec<u8> {
    format!("user_{i:08}").into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    let mut v = format!("features-of-{i}-").into_bytes();
    v.resize(100, b'x');
    v
}

/// Stored form of a snapshot value in chronon-rocks: 8-byte big-endian ts, then the value.
fn stored(i: u64) -> Vec<u8> {
    let mut out = (TS as u64).to_be_bytes().to_vec();
    out.extend_from_slice(&value(i));
    out
}

/// Deterministic sample of `n` row numbers (an LCG; no rand dependency needed).
fn sample(n: usize, seed: u64) -> Vec<u64> {
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
fn raw_get(db: &DB, keys: &[Vec<u8>]) -> Vec<Bytes> {
    let cf = db.cf_handle("ds").unwrap();
    db.batched_multi_get_cf(&cf, keys.iter(), false)
        .into_iter()
        .map(|r| Bytes::copy_from_slice(&r.unwrap().unwrap()[8..]))
        .collect()
}

/// The raw side of `multi_put`: one `WriteBatch` of values stored as chronon-rocks stores them.
fn raw_put(db: &DB, puts: &[(Vec<u8>, Bytes)]) {
    let cf = db.cf_handle("ds").unwrap();
    let mut wb = WriteBatch::default();
    for (k, v) in puts {
        let mut stored = (TS as u64).to_be_bytes().to_vec();
        stored.extend_from_slice(v);
        wb.put_cf(&cf, k, stored);
    }
    db.write(wb).unwrap();
}

/// The raw database, tuned like the adapter's defaults (64 MiB LRU cache, 10-bit bloom, LZ4).
fn raw_db(path: &std::path::Path) -> DB {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&Cache::new_lru_cache(64 << 20));
    table.set_bloom_filter(10.0, false);
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
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

fn benches(c: &mut Criterion) {
    // Shared with tokio's blocking pool by the `raw_blocking_pool` runs.
    let raw_shared;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let store = rt.block_on(async {
        let store = RocksStore::open(RocksOptions::new(dir.path().join("adapter")))
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
    raw_shared = std::sync::Arc::new(raw_db(&dir.path().join("raw")));
    let raw = &*raw_shared;
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

    for n in [100usize, 1000] {
        let ids = sample(n, n as u64);
        let requests: Vec<GetRequest> = ids
            .iter()
            .map(|&i| GetRequest::latest(DATASET, key(i)))
            .collect();
        let raw_keys: Vec<Vec<u8>> = ids.iter().map(|&i| key(i)).collect();
        let mut group = c.benchmark_group(format!("multi_get/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function("adapter", |b| {
            b.to_async(&rt).iter_batched(
                || requests.clone(),
                |reqs| async {
                    let out = store.multi_get(reqs).await;
                    debug_assert!(out
                        .iter()
                        .all(|r| r.values.as_ref().is_ok_and(|v| v.len() == 1)));
                    black_box(out)
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function("raw", |b| b.iter(|| black_box(raw_get(raw, &raw_keys))));
        group.bench_function("raw_blocking_pool", |b| {
            b.to_async(&rt).iter_batched(
                || (raw_shared.clone(), raw_keys.clone()),
                |(db, keys)| async move {
                    let out = tokio::task::spawn_blocking(move || raw_get(&db, &keys))
                        .await
                        .unwrap();
                    black_box(out)
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }

    let mut group = c.benchmark_group("multi_put/1000");
    group.throughput(Throughput::Elements(1000));
    let mut round = 0u64;
    group.bench_function("adapter", |b| {
        b.to_async(&rt).iter_batched(
            || {
                round += 1;
                (0..1000u64)
                    .map(|i| {
                        PutRequest::new(DATASET, key((round * 1000 + i) % ROWS), value(i), Some(TS))
                    })
                    .collect::<Vec<_>>()
            },
            |puts| async {
                let out = store.multi_put(puts).await;
                debug_assert!(out.iter().all(Result::is_ok));
                black_box(out)
            },
            BatchSize::SmallInput,
        )
    });
    let mut round = 0u64;
    group.bench_function("raw", |b| {
        b.iter_batched(
            || {
                round += 1;
                (0..1000u64)
                    .map(|i| (key((round * 1000 + i) % ROWS), Bytes::from(value(i))))
                    .collect::<Vec<_>>()
            },
            |puts| raw_put(raw, &puts),
            BatchSize::SmallInput,
        )
    });
    let mut round = 0u64;
    group.bench_function("raw_blocking_pool", |b| {
        b.to_async(&rt).iter_batched(
            || {
                round += 1;
                let puts = (0..1000u64)
                    .map(|i| (key((round * 1000 + i) % ROWS), Bytes::from(value(i))))
                    .collect::<Vec<_>>();
                (raw_shared.clone(), puts)
            },
            |(db, puts)| async move {
                tokio::task::spawn_blocking(move || raw_put(&db, &puts))
                    .await
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(rocks, benches);
criterion_main!(rocks);
