//! Adapter / raw throughput ratios measured interleaved: each round times one adapter call and
//! the same raw call on tokio's blocking pool back to back (in alternating order), so drift on
//! a noisy machine hits both sides alike; the ratio of the medians over all rounds is printed.
//! `benches/rocks.rs` (criterion) gives the absolute figures, but measures one side for seconds
//! and then the other, and on this 2-core VM that alone moved ratios by ±10 %.
//!
//! Run: `cargo bench -p chronon-rocks --bench rocks_ratio` (release; `--profile dev` reuses the
//! test build).

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chronon_core::{GetRequest, KvStore, PutRequest};
use common::{key, raw_get, raw_put, sample, value, DATASET, ROWS, TS};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(name: &str, adapter: Vec<Duration>, raw: Vec<Duration>) {
    let (a, r) = (median(adapter), median(raw));
    println!(
        "{name:<16} adapter {:>9.1} µs  raw on the blocking pool {:>9.1} µs  adapter/raw throughput {:.2}",
        a.as_secs_f64() * 1e6,
        r.as_secs_f64() * 1e6,
        r.as_secs_f64() / a.as_secs_f64()
    );
}

/// Both timings of a round: the adapter's first on even rounds, the raw call's on odd ones.
async fn in_turn(
    round: u64,
    adapter: impl Future<Output = Duration>,
    raw: impl Future<Output = Duration>,
) -> (Duration, Duration) {
    if round.is_multiple_of(2) {
        let a = adapter.await;
        (a, raw.await)
    } else {
        let r = raw.await;
        (adapter.await, r)
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = common::load(&rt, dir.path());

    for (n, rounds) in [(100usize, 4000usize), (1000, 600)] {
        let ids = sample(n, n as u64);
        let (mut adapter, mut raw_times) = (Vec::new(), Vec::new());
        for round in 0..(rounds + rounds / 10) as u64 {
            let requests: Vec<GetRequest> = ids
                .iter()
                .map(|&i| GetRequest::latest(DATASET, key(i)))
                .collect();
            let keys: Vec<Vec<u8>> = ids.iter().map(|&i| key(i)).collect();
            let db = store.clone();
            let time_adapter = async {
                let t = Instant::now();
                let out = store.multi_get(requests).await;
                let took = t.elapsed();
                assert!(out
                    .iter()
                    .all(|r| r.values.as_ref().is_ok_and(|v| v.len() == 1)));
                took
            };
            let time_raw = async {
                let t = Instant::now();
                let out = tokio::task::spawn_blocking(move || raw_get(&db, &keys))
                    .await
                    .unwrap();
                let took = t.elapsed();
                assert_eq!(out.len(), n);
                took
            };
            let (a, r) = rt.block_on(in_turn(round, time_adapter, time_raw));
            if round >= (rounds / 10) as u64 {
                // the first tenth warms up
                adapter.push(a);
                raw_times.push(r);
            }
        }
        report(&format!("multi_get/{n}"), adapter, raw_times);
    }

    let (mut adapter, mut raw_times) = (Vec::new(), Vec::new());
    for round in 0..330u64 {
        let puts: Vec<PutRequest> = (0..1000u64)
            .map(|i| PutRequest::new(DATASET, key((round * 1000 + i) % ROWS), value(i), Some(TS)))
            .collect();
        let raw_puts: Vec<(Vec<u8>, Bytes)> = (0..1000u64)
            .map(|i| (key((round * 1000 + i) % ROWS), Bytes::from(value(i))))
            .collect();
        let db = store.clone();
        let time_adapter = async {
            let t = Instant::now();
            let out = store.multi_put(puts).await;
            let took = t.elapsed();
            assert!(out.iter().all(Result::is_ok));
            took
        };
        let time_raw = async {
            let t = Instant::now();
            tokio::task::spawn_blocking(move || raw_put(&db, &raw_puts))
                .await
                .unwrap();
            t.elapsed()
        };
        let (a, r) = rt.block_on(in_turn(round, time_adapter, time_raw));
        if round >= 30 {
            adapter.push(a);
            raw_times.push(r);
        }
    }
    report("multi_put/1000", adapter, raw_times);
}
