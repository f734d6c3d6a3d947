//! The adapter next to the raw `rocksdb` crate doing the same work (the target: the adapter must
//! reach at least 0.9 of the raw throughput).
//!
//! - `multi_get/{100,1000}`: latest values of keys drawn from 100,000 snapshot rows. The adapter
//!   goes through `KvStore::multi_get` (validation, the blocking pool, `batched_multi_get_cf`,
//!   decode into `TimedValue`s); the raw side calls `batched_multi_get_cf` on the adapter's own
//!   database and column family (`RocksStore::db`) and copies each value out.
//! - `multi_put/1000`: 1,000 snapshot values in one `WriteBatch`, either way, to rows sampled
//!   in no key order (as an upload job's batch arrives; the adapter sorts them, the raw side
//!   writes them as given).
//!
//! Each raw call is measured twice: `raw` on the benchmark's own thread, and `raw_blocking_pool`
//! the same call sent to tokio's blocking pool and awaited, which is what any async service must
//! do with a blocking RocksDB call (and what the adapter does). The gap between the two is the
//! thread hop; `adapter / raw_blocking_pool` is the adapter's overhead.
//!
//! How it is measured, and why:
//! - Both sides use one database: two databases loaded the same way differed by 10-15 % in
//!   lookup speed (memtable layout), more than the adapter's own cost.
//! - Every call builds its input just before, as a service does, outside the timing
//!   (`common::get_call`, `common::put_call`).
//! - Each timed call follows an untimed call of the other side (`partner`), so both sides are
//!   timed in the same mix of work.
//! - Criterion times one side for seconds, then the next. On this 2-core VM the same side
//!   moved by up to ±15 % between such windows, so the ratio of two criterion figures is only
//!   as good as that; `benches/rocks_ratio.rs` alternates the two sides call by call and
//!   prints the ratio of the medians, which held within ±3 % from run to run.
//!
//! Run: `cargo bench -p chronon-rocks --bench rocks -- --warm-up-time 1 --measurement-time 3`
//! (release, as `cargo bench` builds; add `--profile dev` to reuse the test build).

use std::cell::Cell;
use std::time::Duration;

mod common;

use common::{get_call, put_call, sample, Side};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SIDES: [(&str, Side); 3] = [
    ("adapter", Side::Adapter),
    ("raw", Side::RawHere),
    ("raw_blocking_pool", Side::RawPool),
];

/// The side whose call, untimed, precedes each timed call: every window then runs the same mix
/// of adapter and raw calls, so neither side is timed in a state (caches, allocator, threads)
/// only it leaves behind.
fn partner(side: Side) -> Side {
    match side {
        Side::Adapter => Side::RawPool,
        Side::RawPool | Side::RawHere => Side::Adapter,
    }
}

fn benches(c: &mut Criterion) {
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = &common::load(&rt, dir.path());

    for n in [100usize, 1000] {
        let ids = &sample(n, n as u64);
        let mut group = c.benchmark_group(format!("multi_get/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        for (name, side) in SIDES {
            group.bench_function(name, |b| {
                b.to_async(&rt).iter_custom(|iters| async move {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        get_call(store, ids, partner(side)).await;
                        timed += get_call(store, ids, side).await;
                    }
                    timed
                })
            });
        }
        group.finish();
    }

    let mut group = c.benchmark_group("multi_put/1000");
    group.throughput(Throughput::Elements(1000));
    let round = &Cell::new(0u64);
    let next_round = move || {
        round.set(round.get() + 1);
        round.get()
    };
    for (name, side) in SIDES {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    put_call(store, next_round(), partner(side)).await;
                    timed += put_call(store, next_round(), side).await;
                }
                timed
            })
        });
    }
    group.finish();
}

criterion_group!(rocks, benches);
criterion_main!(rocks);
