//! The adapter next to the raw `rocksdb` crate doing the same work (issue 4: the adapter must
//! reach at least 0.9 of the raw throughput).
//!
//! - `multi_get/{100,1000}`: latest values of keys drawn from 100,000 snapshot rows. The adapter
//!   goes through `KvStore::multi_get` (validation, spawn_blocking, `batched_multi_get_cf`, decode
//!   into `TimedValue`s); the raw side calls `batched_multi_get_cf` on the adapter's own
//!   database and column family (`RocksStore::db`) and copies each value out.
//! - `multi_put/1000`: 1,000 snapshot values in one `WriteBatch`, either way.
//!
//! Both sides use one database: two databases loaded the same way differed by 10-15 % in lookup
//! speed (memtable layout), more than the adapter's own cost, so comparing across two measured
//! mostly which one was luckier.
//!
//! Each raw call is measured twice: `raw` on the benchmark's own thread, and `raw_blocking_pool`
//! the same call sent to tokio's blocking pool and awaited, which is what any async service must
//! do with a blocking RocksDB call (and what the adapter does). The gap between the two is the
//! thread hop: mostly the lookup running on another core whose caches do not hold the memtable's
//! upper skiplist levels (seen in `perf`: the same `FindGreaterOrEqual` work takes longer), not
//! the adapter's own code; `adapter / raw_blocking_pool` is the adapter's overhead.
//!
//! The async sides build their input for every call (`BatchSize::PerIteration`), as a service
//! does just before it calls; pre-built batches of inputs made the adapter's requests (cold in
//! cache by the time they were used) cost more than the call's own work.
//!
//! The ratio itself is better read from `benches/rocks_ratio.rs`, which times both sides
//! interleaved in one run; criterion measures one side for seconds, then the other, and on a
//! noisy 2-core VM that alone moved ratios by ±10 %.
//!
//! Run: `cargo bench -p chronon-rocks --bench rocks -- --warm-up-time 1 --measurement-time 3`
//! (release, as `cargo bench` builds; add `--profile dev` to reuse the test build).

use std::hint::black_box;

mod common;

use bytes::Bytes;
use chronon_core::{GetRequest, KvStore, PutRequest};
use common::{key, raw_get, raw_put, sample, value, DATASET, ROWS, TS};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn benches(c: &mut Criterion) {
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = common::load(&rt, dir.path());
    let raw = &store;

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
                BatchSize::PerIteration,
            )
        });
        group.bench_function("raw", |b| b.iter(|| black_box(raw_get(raw, &raw_keys))));
        group.bench_function("raw_blocking_pool", |b| {
            b.to_async(&rt).iter_batched(
                || (store.clone(), raw_keys.clone()),
                |(db, keys)| async move {
                    let out = tokio::task::spawn_blocking(move || raw_get(&db, &keys))
                        .await
                        .unwrap();
                    black_box(out)
                },
                BatchSize::PerIteration,
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
            BatchSize::PerIteration,
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
            BatchSize::PerIteration,
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
                (store.clone(), puts)
            },
            |(db, puts)| async move {
                tokio::task::spawn_blocking(move || raw_put(&db, &puts))
                    .await
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(rocks, benches);
criterion_main!(rocks);
