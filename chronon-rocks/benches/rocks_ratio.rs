//! Adapter / raw throughput ratios from one run: each round times one adapter call and the
//! same raw call on tokio's blocking pool back to back (in alternating order), so drift on a
//! noisy machine hits both sides alike; the ratio of the medians over all rounds is printed.
//!
//! The 100-key read is also timed in blocks of 50 calls of one side, then 50 of the other: the
//! same side back to back, as criterion times it (`benches/rocks.rs`), but with the drift
//! between criterion's seconds-long windows averaged out. It reads lower than the alternating
//! figure (by 0.03-0.05 in 2026-11-26's runs); why is not known yet (see the crate README).
//!
//! Run: `cargo bench -p chronon-rocks --bench rocks_ratio` (release; `--profile dev` reuses the
//! test build).

mod common;

use std::time::Duration;

use common::{get_call, put_call, sample, Side};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(name: &str, adapter: Vec<Duration>, raw: Vec<Duration>) {
    let (a, r) = (median(adapter), median(raw));
    println!(
        "{name:<30} adapter {:>9.1} µs  raw on the blocking pool {:>9.1} µs  adapter/raw throughput {:.2}",
        a.as_secs_f64() * 1e6,
        r.as_secs_f64() * 1e6,
        r.as_secs_f64() / a.as_secs_f64()
    );
}

/// The two sides in the order of `round`: the adapter first on even rounds, the raw call first
/// on odd ones.
fn in_turn(round: u64) -> [Side; 2] {
    if round.is_multiple_of(2) {
        [Side::Adapter, Side::RawPool]
    } else {
        [Side::RawPool, Side::Adapter]
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let rt = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = &common::load(&rt, dir.path());

    for (n, rounds) in [(100usize, 4000u64), (1000, 600)] {
        let ids = &sample(n, n as u64);
        let (mut adapter, mut raw) = (Vec::new(), Vec::new());
        rt.block_on(async {
            for round in 0..rounds + rounds / 10 {
                for side in in_turn(round) {
                    let took = get_call(store, ids, side).await;
                    // the first tenth warms up
                    if round >= rounds / 10 {
                        match side {
                            Side::Adapter => adapter.push(took),
                            _ => raw.push(took),
                        }
                    }
                }
            }
        });
        report(&format!("multi_get/{n}"), adapter, raw);
    }

    let ids = &sample(100, 100);
    let (mut adapter, mut raw) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for block in 0..110 {
            for side in in_turn(block) {
                for _ in 0..50 {
                    let took = get_call(store, ids, side).await;
                    if block >= 10 {
                        match side {
                            Side::Adapter => adapter.push(took),
                            _ => raw.push(took),
                        }
                    }
                }
            }
        }
    });
    report("multi_get/100 in blocks of 50", adapter, raw);

    let (mut adapter, mut raw) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for round in 0..330u64 {
            for (k, side) in in_turn(round).into_iter().enumerate() {
                let took = put_call(store, round * 2 + k as u64, side).await;
                if round >= 30 {
                    match side {
                        Side::Adapter => adapter.push(took),
                        _ => raw.push(took),
                    }
                }
            }
        }
    });
    report("multi_put/1000", adapter, raw);
}
