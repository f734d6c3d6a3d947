//! The measured work: preloaded datasets, then one cell per (operation, batch size, callers,
//! value size), each timed call recorded in an HDR histogram.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use chronon_core::{
    BulkPutOptions, BulkRow, DatasetProps, GetRequest, KvError, KvStore, PutRequest,
};
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Base timestamp of the preloaded versions.
pub const T0: i64 = 1_700_000_000_000;
/// Versions per key in the time-series dataset (a range read returns all of them).
pub const VERSIONS: i64 = 3;

/// What a run measures and for how long.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Profile name (`quick` or `full`).
    pub name: &'static str,
    /// Keys preloaded per dataset.
    pub keys: usize,
    /// Batch sizes.
    pub batches: Vec<usize>,
    /// Concurrent callers.
    pub callers: Vec<usize>,
    /// Value sizes in bytes.
    pub value_sizes: Vec<usize>,
    /// A repetition of a cell runs until it has done at least this many keys...
    pub min_keys: u64,
    /// ...and for at least this long (so a fast backend's cell is not over in a few calls),
    pub cell_time: Duration,
    /// but stops after this long even short of `min_keys` (a slow server's large batches).
    pub cell_max_time: Duration,
    /// Repetitions of each cell. Within a repetition the adapter and the raw driver take turns
    /// call by call on the same keys, all callers on one side at a time ([`super::cell::run_cell`]), so drift
    /// on a shared machine hits both sides alike and neither runs under the other's load; the report gives the median of the repetitions' ratios and their spread.
    pub repeats: usize,
    /// Rows in the `bulk_put` load.
    pub bulk_rows: usize,
    /// Time one backend's matrix may take: cells not started by then are skipped and counted
    /// (`BackendResult::skipped_cells`), so one slow server cannot stretch the whole run.
    /// Cells run from the smallest batch up, so what is skipped is the most expensive part.
    pub backend_budget: Duration,
    /// Whether the conformance suite includes `conformance::LOAD_CASES` (10,000+ rows each).
    pub suite_load_cases: bool,
    /// The operations measured (all by default; `--ops`).
    pub ops: Vec<Op>,
    /// One side only (`--only-side`, for profiling), or both.
    pub only_side: Option<OnlySide>,
}

/// One side of a cell, for `--only-side`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum OnlySide {
    /// Through the adapter.
    Adapter,
    /// Through the raw driver.
    Raw,
}

impl Profile {
    /// Finishes in well under two minutes per backend on a 2-core machine.
    pub fn quick() -> Self {
        Profile {
            name: "quick",
            keys: 1_000,
            batches: vec![1, 10, 100, 1000],
            callers: vec![1, 16],
            value_sizes: vec![100, 10_240],
            min_keys: 2_000,
            cell_time: Duration::from_millis(100),
            cell_max_time: Duration::from_secs(1),
            repeats: 3,
            bulk_rows: 2_000,
            backend_budget: Duration::from_secs(60),
            suite_load_cases: false,
            ops: Op::ALL.to_vec(),
            only_side: None,
        }
    }

    /// The full matrix, for numbers worth quoting: cells ten times longer than the quick
    /// ones, on ten times the keys, with the suite's load cases; about 25 minutes for the six
    /// backends this machine starts (budgeted to stay under 30: each backend's load and matrix
    /// stop after `backend_budget`, and the cells left out are named in the report). The data
    /// stays under about 200 MB per side at 10 KiB values, so a server on a small machine
    /// holds it.
    pub fn full() -> Self {
        Profile {
            name: "full",
            keys: 10_000,
            batches: vec![1, 10, 100, 1000],
            callers: vec![1, 16],
            value_sizes: vec![100, 10_240],
            min_keys: 50_000,
            cell_time: Duration::from_secs(1),
            cell_max_time: Duration::from_secs(2),
            repeats: 3,
            bulk_rows: 20_000,
            backend_budget: Duration::from_secs(200),
            suite_load_cases: true,
            ops: Op::ALL.to_vec(),
            only_side: None,
        }
    }
}

/// The operations of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Op {
    /// `multi_get`, latest value only, snapshot dataset.
    GetLatest,
    /// `multi_get` with `start_ts`, time-series dataset (3 versions per key).
    GetRange,
    /// `multi_put` to the snapshot dataset.
    Put,
}

impl Op {
    /// All operations, in report order.
    pub const ALL: [Op; 3] = [Op::GetLatest, Op::GetRange, Op::Put];

    /// Name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Op::GetLatest => "get_latest",
            Op::GetRange => "get_range",
            Op::Put => "put",
        }
    }
}

/// Throughput and latency of one side of a cell, over all its repetitions.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Keys read or written (all repetitions).
    pub keys: u64,
    /// Calls made (all repetitions).
    pub calls: u64,
    /// Failed calls (or failed requests inside calls).
    pub errors: u64,
    /// Wall time in seconds (all repetitions).
    pub secs: f64,
    /// Keys per second: the median over the repetitions.
    pub keys_per_sec: f64,
    /// Each repetition's keys per second, in the order they ran.
    pub runs: Vec<f64>,
    /// Per-call latency percentiles over every call of every repetition, microseconds.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// CPU time of this process per key, microseconds (all repetitions): the client's own work
    /// (for an embedded store, the store's too). Next to the other side's, it tells whether a
    /// gap is the adapter's CPU or time spent waiting on the server.
    /// `None` where not measured (`bulk_put`).
    pub cpu_us_per_key: Option<f64>,
}

/// One repetition of one side of a cell.
#[derive(Debug, Clone)]
pub struct Run {
    /// Keys read or written.
    pub keys: u64,
    /// Calls made.
    pub calls: u64,
    /// Failed calls (or failed requests inside calls).
    pub errors: u64,
    /// Wall time in seconds.
    pub secs: f64,
    /// CPU time this process spent while the side's calls were in flight, in seconds (see
    /// [`super::cell::run_cell`]).
    pub cpu_secs: f64,
    /// Per-call latency, microseconds.
    pub hist: Histogram<u64>,
}

impl Run {
    /// Keys per second.
    pub fn keys_per_sec(&self) -> f64 {
        self.keys as f64 / self.secs.max(1e-9)
    }
}

/// The median of `v` (the mean of the middle two for an even count); 0 when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One side's repetitions as the report shows them.
pub fn summarize(runs: &[Run]) -> Result<Figures> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for r in runs {
        hist.add(&r.hist)?;
    }
    let per_run: Vec<f64> = runs.iter().map(Run::keys_per_sec).collect();
    Ok(Figures {
        keys: runs.iter().map(|r| r.keys).sum(),
        calls: runs.iter().map(|r| r.calls).sum(),
        errors: runs.iter().map(|r| r.errors).sum(),
        secs: runs.iter().map(|r| r.secs).sum(),
        keys_per_sec: median(&per_run),
        runs: per_run,
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
        p999_us: hist.value_at_quantile(0.999),
        cpu_us_per_key: Some(
            runs.iter().map(|r| r.cpu_secs).sum::<f64>() * 1e6
                / (runs.iter().map(|r| r.keys).sum::<u64>().max(1) as f64),
        ),
    })
}

/// The adapter's throughput over the raw driver's in one cell, repetition by repetition (within
/// a repetition the two took turns call by call): the median, and the lowest and highest, which
/// is the spread a reader should allow for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratio {
    /// Median of the repetitions' ratios.
    pub median: f64,
    /// Lowest repetition's ratio.
    pub min: f64,
    /// Highest repetition's ratio.
    pub max: f64,
}

/// The [`Ratio`] of a cell. None without a baseline, and None when either side had errors: a
/// side whose calls failed did less (or no) work, so its figure would make the ratio flattering
/// or unfair (the errors are in the report instead).
pub fn ratio(adapter: &[Run], raw: &[Run]) -> Option<Ratio> {
    if raw.is_empty() || adapter.is_empty() || adapter.iter().chain(raw).any(|r| r.errors > 0) {
        return None;
    }
    let per_run: Vec<f64> = adapter
        .iter()
        .zip(raw)
        .map(|(a, r)| a.keys_per_sec() / r.keys_per_sec().max(1e-9))
        .collect();
    Some(Ratio {
        median: median(&per_run),
        min: per_run.iter().copied().fold(f64::INFINITY, f64::min),
        max: per_run.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// Preloaded data for one value size.
#[derive(Debug, Clone)]
pub struct Datasets {
    /// Snapshot dataset, `keys` keys.
    pub snapshot: String,
    /// Time-series dataset, `keys` keys x [`VERSIONS`].
    pub series: String,
    /// Value size.
    pub value_size: usize,
}

/// The key of index `i`.
pub fn key(i: usize) -> Bytes {
    Bytes::from(format!("user:{i:09}"))
}

/// A deterministic value of `size` bytes for key `i`: a zero-copy slice of one shared pattern,
/// so generating values costs nothing next to the store's work.
pub fn value(i: usize, size: usize) -> Bytes {
    static PATTERN: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    const MAX: usize = 64 * 1024;
    let pattern = PATTERN.get_or_init(|| {
        (0..MAX + 251)
            .map(|j| (j % 251) as u8)
            .collect::<Vec<u8>>()
            .into()
    });
    let offset = (i * 31) % 251;
    pattern.slice(offset..offset + size.min(MAX))
}

/// Creates and loads the datasets for one value size; returns them, the `bulk_put` figures and
/// the profile sized to what was loaded.
///
/// The load stops after a tenth of the backend's budget: a slow server (SecantusDB loads ~650
/// rows/s) then serves fewer rows rather than spend the whole budget loading, and the cells
/// read the first `keys` rows of what it holds (the returned profile's `keys` and `bulk_rows`).
pub async fn preload(
    store: &Arc<dyn KvStore>,
    tag: &str,
    profile: &Profile,
    value_size: usize,
) -> Result<(Datasets, Figures, Profile)> {
    let snapshot = format!("cmp_{tag}_{value_size}_BATCH");
    let series = format!("cmp_{tag}_{value_size}_STREAMING");
    for (name, props) in [
        (&snapshot, DatasetProps::snapshot()),
        (&series, DatasetProps::time_series()),
    ] {
        let _ = store.drop_dataset(name).await;
        store
            .create(name, &props)
            .await
            .with_context(|| format!("create {name}"))?;
    }
    // bulk_put: the load is measured (rows beyond `keys` make the load bigger than the read set).
    let rows = profile.bulk_rows.max(profile.keys);
    let load_deadline = Instant::now() + profile.backend_budget / 10;
    let source = futures::stream::iter(0..rows)
        .take_while(move |i| futures::future::ready(*i == 0 || Instant::now() < load_deadline))
        .map(move |i| {
            Ok::<_, KvError>(BulkRow {
                key: key(i),
                value: value(i, value_size),
                ts: T0,
            })
        })
        .boxed();
    let started = Instant::now();
    let report = store
        .bulk_put(
            &snapshot,
            source,
            BulkPutOptions {
                progress: None,
                sorted: true,
            },
        )
        .await
        .with_context(|| format!("bulk_put into {snapshot}"))?;
    let secs = started.elapsed().as_secs_f64();
    let bulk = Figures {
        keys: report.rows,
        calls: 1,
        errors: 0,
        secs,
        keys_per_sec: report.rows as f64 / secs.max(1e-9),
        runs: Vec::new(),
        p50_us: (secs * 1e6) as u64,
        p99_us: (secs * 1e6) as u64,
        p999_us: (secs * 1e6) as u64,
        cpu_us_per_key: None,
    };
    let loaded = usize::try_from(report.rows).unwrap_or(rows).min(rows);
    let sized = Profile {
        keys: profile.keys.min(loaded).max(1),
        bulk_rows: loaded,
        ..profile.clone()
    };
    let puts: Vec<PutRequest> = (0..sized.keys)
        .flat_map(|i| (0..VERSIONS).map(move |v| (i, v)))
        .map(|(i, v)| PutRequest::new(&series, key(i), value(i, value_size), Some(T0 + v)))
        .collect();
    for chunk in puts.chunks(1000) {
        for r in store.multi_put(chunk.to_vec()).await {
            r.with_context(|| format!("preloading {series}"))?;
        }
    }
    Ok((
        Datasets {
            snapshot,
            series,
            value_size,
        },
        bulk,
        sized,
    ))
}

/// One batched call of a cell, as any store or raw driver does it. Returns (keys, errors).
pub type CallFn = Arc<
    dyn Fn(Op, Vec<usize>, i64) -> futures::future::BoxFuture<'static, (u64, u64)> + Send + Sync,
>;

/// A [`CallFn`] through the adapter.
pub fn adapter_call(store: Arc<dyn KvStore>, ds: Datasets) -> CallFn {
    Arc::new(move |op, idx, ts| {
        let store = store.clone();
        let ds = ds.clone();
        Box::pin(async move {
            let n = idx.len() as u64;
            let errors = match op {
                Op::GetLatest => {
                    let reqs = idx
                        .iter()
                        .map(|i| GetRequest::latest(&ds.snapshot, key(*i)))
                        .collect();
                    store
                        .multi_get(reqs)
                        .await
                        .iter()
                        .filter(|r| r.values.is_err())
                        .count()
                }
                Op::GetRange => {
                    let reqs = idx
                        .iter()
                        .map(|i| GetRequest::range(&ds.series, key(*i), T0, None))
                        .collect();
                    store
                        .multi_get(reqs)
                        .await
                        .iter()
                        .filter(|r| {
                            r.values
                                .as_ref()
                                .map_or(true, |v| v.len() as i64 != VERSIONS)
                        })
                        .count()
                }
                Op::Put => {
                    let reqs = idx
                        .iter()
                        .map(|i| {
                            PutRequest::new(
                                &ds.snapshot,
                                key(*i),
                                value(*i, ds.value_size),
                                Some(ts),
                            )
                        })
                        .collect();
                    store
                        .multi_put(reqs)
                        .await
                        .iter()
                        .filter(|r| r.is_err())
                        .count()
                }
            };
            (n, errors as u64)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repetition that did `keys_per_sec` keys in one second.
    fn run(keys_per_sec: f64, errors: u64) -> Run {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        hist.record(100).unwrap();
        Run {
            keys: keys_per_sec as u64,
            calls: 10,
            errors,
            secs: 1.0,
            cpu_secs: 0.0,
            hist,
        }
    }

    #[test]
    fn no_ratio_without_a_baseline_or_when_a_side_had_errors() {
        let adapter = [run(900.0, 0)];
        assert_eq!(
            ratio(&adapter, &[run(1000.0, 0)]).map(|r| r.median),
            Some(0.9)
        );
        assert_eq!(ratio(&adapter, &[]), None);
        assert_eq!(
            ratio(&[], &adapter),
            None,
            "one side alone (--only-side raw)"
        );
        // A baseline failing fast looks fast; an adapter failing fast looks fast too.
        assert_eq!(ratio(&adapter, &[run(50_000.0, 3)]), None);
        assert_eq!(ratio(&[run(50_000.0, 1)], &[run(1000.0, 0)]), None);
        // A baseline that did nothing gives a huge figure, not a division by zero.
        assert!(ratio(&adapter, &[run(0.0, 0)]).is_some_and(|r| r.median.is_finite()));
    }

    #[test]
    fn the_ratio_pairs_repetitions_and_reports_their_spread() {
        let adapter = [run(900.0, 0), run(500.0, 0), run(1000.0, 0)];
        let raw = [run(1000.0, 0), run(1000.0, 0), run(1000.0, 0)];
        let r = ratio(&adapter, &raw).unwrap();
        assert_eq!((r.median, r.min, r.max), (0.9, 0.5, 1.0));
        // Paired by repetition, not median over median: a slow raw repetition next to a slow
        // adapter one is drift both sides saw, not the adapter's cost.
        let r = ratio(
            &[run(500.0, 0), run(1000.0, 0)],
            &[run(500.0, 0), run(1000.0, 0)],
        )
        .unwrap();
        assert_eq!((r.min, r.max), (1.0, 1.0));
    }

    #[test]
    fn figures_take_the_median_repetition_and_every_calls_latency() {
        let f = summarize(&[run(100.0, 0), run(300.0, 0), run(200.0, 0)]).unwrap();
        assert_eq!(f.keys_per_sec, 200.0);
        assert_eq!(f.runs, vec![100.0, 300.0, 200.0]);
        assert_eq!((f.keys, f.calls, f.secs), (600, 30, 3.0));
        assert!((100..=101).contains(&f.p99_us), "{}", f.p99_us);
        assert_eq!(median(&[1.0, 4.0]), 2.5);
    }
}
