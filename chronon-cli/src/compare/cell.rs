//! One repetition of one cell: the callers, the sides taking turns in lockstep, and what each
//! side's calls cost in time and in this process's CPU.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Barrier;

use super::workload::{CallFn, Op, Profile, Run, T0, VERSIONS};

/// Runs one repetition of a cell on every side in `calls` (the adapter, and the raw driver where
/// there is one), returning one [`Run`] per side in the same order.
///
/// `callers` tasks each draw a batch of `batch` random keys (from `seed`) and issue it to every
/// side in turn, in lockstep: all callers make their call to one side together, and the next
/// side starts only when every caller's call has returned. Both sides do the same keys, call
/// next to call, and the side that goes first alternates from one batch to the next, so drift on
/// a shared machine (another process, a compaction, a CPU frequency change) hits them alike.
///
/// The lockstep matters with more than one caller. If each caller alternated on its own, one
/// side's calls would run under the other side's load: on a server that gives each connection
/// a share of each turn of its loop (Redis reads at most 16 KiB from a connection per turn, then
/// fsyncs), a side slightly slower per call collects more callers waiting on it, its calls queue
/// behind each other while the other side's connection sits idle and answers at once, and a
/// 15 % difference in cost showed up as a ratio of 0.22. In lockstep each side's calls run only
/// under its own load, as they would for a user with that side alone.
///
/// A side's time is the time its calls were in flight, per caller (a caller waiting for the
/// others is not counted), so its keys/s is the rate `callers` callers get from that side; the
/// ratio of two sides is the ratio of their costs for the same work. Since only one side runs
/// between two turns, the CPU time this process spends between them (every thread: the callers,
/// the drivers' connection tasks, an embedded store's work) is that side's, and is recorded as
/// its `cpu_secs`: next to the other side's, it says whether a gap in throughput is the
/// adapter's own work or time spent waiting on the server. The repetition ends once
/// every side has done `profile.min_keys` keys and `profile.cell_time` has passed, or
/// `profile.cell_max_time` has.
pub async fn run_cell(
    calls: &[CallFn],
    op: Op,
    batch: usize,
    callers: usize,
    profile: &Profile,
    seed: u64,
) -> Result<Vec<Run>> {
    // Warm-up: one call per caller and side, not measured.
    for c in 0..callers.min(4) {
        for call in calls {
            let idx = (0..batch).map(|j| (j * 7919 + c) % profile.keys).collect();
            call(op, idx, T0).await;
        }
    }
    let sides = calls.len();
    let callers = callers.max(1);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(callers));
    let cpu = Arc::new(Mutex::new(CpuTally::new(sides)));
    let started = Instant::now();
    let (min_end, max_end) = (
        started + profile.cell_time,
        started + profile.cell_max_time.max(profile.cell_time),
    );
    let min_keys = profile.min_keys * sides as u64;
    let mut tasks = Vec::new();
    for c in 0..callers {
        let calls = calls.to_vec();
        let (done, stop, barrier, cpu) = (done.clone(), stop.clone(), barrier.clone(), cpu.clone());
        let keys = profile.keys;
        tasks.push(tokio::spawn(async move {
            let mut rng =
                StdRng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut tallies: Vec<SideTally> = (0..sides)
                .map(|_| SideTally::new())
                .collect::<Result<_>>()?;
            for round in 0.. {
                let idx: Vec<usize> = (0..batch).map(|_| rng.random_range(0..keys)).collect();
                let ts = T0 + VERSIONS + rng.random_range(0..1_000_000i64);
                let mut n_round = 0;
                for k in 0..sides {
                    let s = (k + round) % sides;
                    // No caller starts on side `s` while another is still on the previous side.
                    if barrier.wait().await.is_leader() {
                        cpu_turn(&cpu, Some(s));
                    }
                    let t = Instant::now();
                    let (n, e) = calls[s](op, idx.clone(), ts).await;
                    tallies[s].record(t.elapsed(), n, e);
                    n_round += n;
                }
                done.fetch_add(n_round, Ordering::Relaxed);
                // Every caller has added its keys; one decides for all whether to go on.
                if barrier.wait().await.is_leader() {
                    cpu_turn(&cpu, None);
                    let now = Instant::now();
                    let total = done.load(Ordering::Relaxed);
                    stop.store(
                        (total >= min_keys && now >= min_end) || now >= max_end,
                        Ordering::Relaxed,
                    );
                }
                barrier.wait().await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            Ok::<_, anyhow::Error>(tallies)
        }));
    }
    let mut totals: Vec<SideTally> = (0..sides)
        .map(|_| SideTally::new())
        .collect::<Result<_>>()?;
    for t in tasks {
        for (total, side) in totals.iter_mut().zip(t.await??) {
            total.add(&side)?;
        }
    }
    let cpu = cpu
        .lock()
        .map_or_else(|e| e.into_inner().secs.clone(), |c| c.secs.clone());
    Ok(totals
        .into_iter()
        .zip(cpu)
        .map(|(s, cpu_secs)| Run {
            keys: s.keys,
            calls: s.calls,
            errors: s.errors,
            secs: s.busy.as_secs_f64() / callers as f64,
            cpu_secs,
            hist: s.hist,
        })
        .collect())
}

/// This process's CPU time split by side: marked at each turn.
struct CpuTally {
    /// The process CPU clock at the last turn, and the side that started then (`None` at the
    /// end of a round).
    last: Option<(Duration, Option<usize>)>,
    /// Seconds per side.
    secs: Vec<f64>,
}

impl CpuTally {
    fn new(sides: usize) -> Self {
        CpuTally {
            last: None,
            secs: vec![0.0; sides],
        }
    }
}

/// At a turn: the CPU time since the last turn goes to the side that started then, if any, and
/// `next` starts. Between the end of a round and the next turn only the callers' own
/// bookkeeping runs, which counts for no side.
fn cpu_turn(cpu: &Mutex<CpuTally>, next: Option<usize>) {
    let now = process_cpu_time();
    let mut tally = cpu
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((then, Some(ran))) = tally.last {
        tally.secs[ran] += now.saturating_sub(then).as_secs_f64();
    }
    tally.last = Some((now, next));
}

/// CPU time of this process (all threads) so far.
fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the valid pointer it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// What one caller (or all of them) recorded for one side of a cell.
struct SideTally {
    hist: Histogram<u64>,
    calls: u64,
    errors: u64,
    keys: u64,
    /// Time the side's calls were in flight.
    busy: Duration,
}

impl SideTally {
    fn new() -> Result<Self> {
        Ok(SideTally {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            calls: 0,
            errors: 0,
            keys: 0,
            busy: Duration::ZERO,
        })
    }

    fn record(&mut self, took: Duration, keys: u64, errors: u64) {
        self.hist.saturating_record(took.as_micros().max(1) as u64);
        self.calls += 1;
        self.errors += errors;
        self.keys += keys;
        self.busy += took;
    }

    fn add(&mut self, other: &SideTally) -> Result<()> {
        self.hist.add(&other.hist)?;
        self.calls += other.calls;
        self.errors += other.errors;
        self.keys += other.keys;
        self.busy += other.busy;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A side that takes `per_key` of time per key and notes the keys it was given.
    fn timed_side(per_key: Duration, seen: Arc<std::sync::Mutex<Vec<usize>>>) -> CallFn {
        Arc::new(move |_op, idx, _ts| {
            let seen = seen.clone();
            Box::pin(async move {
                tokio::time::sleep(per_key * idx.len() as u32).await;
                let n = idx.len() as u64;
                seen.lock().unwrap().extend(idx);
                (n, 0)
            })
        })
    }

    /// The accounting, not a speed: sides that sleep 20 ms and 10 ms per call come out at half
    /// and full speed, with room for the sleeps' own overshoot (tokio's timer has a 1 ms
    /// granularity) on a busy machine.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sides_take_turns_on_the_same_keys_and_are_timed_apart() {
        let (a_seen, r_seen) = (Arc::default(), Arc::default());
        let calls = [
            timed_side(Duration::from_micros(200), Arc::clone(&a_seen)),
            timed_side(Duration::from_micros(100), Arc::clone(&r_seen)),
        ];
        let profile = Profile::quick();
        for callers in [1, 16] {
            a_seen.lock().unwrap().clear();
            r_seen.lock().unwrap().clear();
            let runs = run_cell(&calls, Op::GetLatest, 100, callers, &profile, 7)
                .await
                .unwrap();
            let (a, r) = (&runs[0], &runs[1]);
            // Same work on both sides: the same keys, call for call.
            let (mut ak, mut rk) = (
                a_seen.lock().unwrap().clone(),
                r_seen.lock().unwrap().clone(),
            );
            ak.sort_unstable();
            rk.sort_unstable();
            assert!(
                ak.len() as u64 >= profile.min_keys,
                "{callers}: {}",
                ak.len()
            );
            assert_eq!(ak, rk, "{callers} callers: the sides did different keys");
            // Each side is timed by its own calls only: the slower side is half as fast.
            let ratio = super::super::workload::ratio(&runs[..1], &runs[1..]).unwrap();
            assert!((ratio.median - 0.5).abs() < 0.1, "{callers}: {ratio:?}");
            assert_eq!((a.keys, a.calls), (r.keys, r.calls));
            // A side's time is its own calls' time, per caller: at least the 20 ms each call
            // sleeps (sleeps only ever overshoot), and not the other side's calls or the turns.
            let own = a.hist.mean() * a.calls as f64 / 1e6 / callers as f64;
            assert!(
                a.secs >= 0.020 * a.calls as f64 / callers as f64,
                "{callers}: {a:?}"
            );
            assert!(
                (a.secs / own - 1.0).abs() < 0.05,
                "{callers}: {} vs {own}",
                a.secs
            );
        }
    }

    /// A side that notes how many calls of each side are in flight when it runs, and either
    /// sleeps or spins (burns CPU) for `per_call`.
    fn watched_side(
        me: usize,
        in_flight: Arc<[AtomicU64; 2]>,
        overlaps: Arc<AtomicU64>,
        per_call: Duration,
        spin: bool,
    ) -> CallFn {
        Arc::new(move |_op, idx, _ts| {
            let (in_flight, overlaps) = (in_flight.clone(), overlaps.clone());
            Box::pin(async move {
                in_flight[me].fetch_add(1, Ordering::SeqCst);
                if in_flight[1 - me].load(Ordering::SeqCst) > 0 {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                if spin {
                    let end = Instant::now() + per_call;
                    while Instant::now() < end {
                        std::hint::spin_loop();
                    }
                } else {
                    tokio::time::sleep(per_call).await;
                }
                in_flight[me].fetch_sub(1, Ordering::SeqCst);
                (idx.len() as u64, 0)
            })
        })
    }

    /// With many callers, no call of one side is ever in flight with a call of the other (so
    /// neither runs under the other's load), and each side is charged the CPU it burnt: the
    /// side that spins gets its spinning, the side that sleeps next to nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sides_never_overlap_and_each_is_charged_its_own_cpu() {
        let in_flight = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let overlaps = Arc::new(AtomicU64::new(0));
        let calls = [
            watched_side(
                0,
                in_flight.clone(),
                overlaps.clone(),
                Duration::from_micros(300),
                true,
            ),
            watched_side(
                1,
                in_flight.clone(),
                overlaps.clone(),
                Duration::from_micros(300),
                false,
            ),
        ];
        let profile = Profile::quick();
        let before = process_cpu_time();
        let runs = run_cell(&calls, Op::GetLatest, 10, 8, &profile, 1)
            .await
            .unwrap();
        let total = (process_cpu_time() - before).as_secs_f64();
        assert_eq!(
            overlaps.load(Ordering::SeqCst),
            0,
            "the sides ran at the same time"
        );
        let (spin, sleep) = (&runs[0], &runs[1]);
        assert_eq!(spin.calls, sleep.calls);
        // The two sides' charges are parts of what the process burnt. The process CPU clock also
        // counts the other tests of this binary running in parallel, so the spinning side's
        // share of the total says little; what it is charged next to the sleeping side does.
        // The sleeping side is charged something too: the runtime's workers look for work for a
        // while before they park.
        assert!(
            spin.cpu_secs > 0.0 && spin.cpu_secs + sleep.cpu_secs <= total,
            "charged {} + {} of {total} s",
            spin.cpu_secs,
            sleep.cpu_secs
        );
        assert!(
            sleep.cpu_secs * 3.0 < spin.cpu_secs,
            "sleeping side charged {} s, spinning side {} s",
            sleep.cpu_secs,
            spin.cpu_secs
        );
    }
}
