//! `chronon soak URL --duration 5m --concurrency 64`: a bounded load test with a checker.
//!
//! Every worker owns its keys, in a `Snapshot` and a `TimeSeries` dataset, and remembers what
//! each must hold: the last acknowledged value (plus any whose put failed, since a failed write
//! may or may not have landed) and, for time series, every recent version. Workers mix
//! `multi_put` and `multi_get` calls of a few keys each; every read is checked, and at the end
//! every key is read once more. A value that was acknowledged and is missing is *lost*; a value
//! that was never written, or was replaced by a later acknowledged write, is *wrong*. Both must be
//! zero (exit status 1 otherwise). Errors are counted by kind; memory (VmRSS, VmHWM of this
//! process) is sampled so a leak shows as growth between the start and the end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use chronon_core::{DatasetProps, GetRequest, KvError, KvStore, PutRequest};
use clap::Args;
use rand::Rng;
use serde::Serialize;

use chronon_serving::store_url::open_store;

/// `chronon soak …`
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Store URL (see `chronon --help`); omit it with `--launch`.
    pub url: Option<String>,
    /// How long to run: `90s`, `5m`, `1h`, `500ms`.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub duration: Duration,
    /// Concurrent workers sharing one client.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Keys each worker owns in each of the two datasets.
    #[arg(long, default_value_t = 32)]
    pub keys_per_worker: usize,
    /// Requests per `multi_put` / `multi_get` call.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Percent of calls that write (the rest read).
    #[arg(long, default_value_t = 50)]
    pub write_percent: u32,
    /// Size of each value in bytes.
    #[arg(long, default_value_t = 128)]
    pub value_bytes: usize,
    /// Fail (exit 1) when more than this fraction of operations returned an error.
    #[arg(long, default_value_t = 0.01)]
    pub max_error_rate: f64,
    /// Start a local server with the conformance launchers instead of a URL: `redis`,
    /// `dynamodb` or `mongodb` (whatever `CHRONON_*` variables, Docker or a child process give),
    /// if compiled into this build.
    #[arg(long)]
    pub launch: Option<String>,
    /// Print the report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Keep the soak's datasets instead of dropping them at the end.
    #[arg(long)]
    pub keep: bool,
    /// Export the adapters' metrics (`chronon_kv_*`: calls, errors by kind, latency per backend
    /// and operation) in Prometheus' text format to this file, rewritten every 10 s and at the
    /// end, atomically (the node exporter's textfile collector reads such files).
    #[arg(long, value_name = "FILE")]
    pub metrics_out: Option<std::path::PathBuf>,
}

/// Parses `500ms`, `90s`, `5m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 5m or 1h"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (ms, s, m, h)")),
    })
}

/// What a soak did and found.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    /// The store's scheme (`rocks`, `redis`, ...), never the full URL (it may hold a password).
    pub backend: String,
    /// Wall time of the load phase, seconds.
    pub seconds: f64,
    /// Workers.
    pub concurrency: usize,
    /// Requests (puts and gets) answered, including errors.
    pub ops: u64,
    /// Put requests.
    pub puts: u64,
    /// Get requests.
    pub gets: u64,
    /// `multi_put` and `multi_get` calls.
    pub calls: u64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Errors by [`KvError::kind`].
    pub errors: BTreeMap<String, u64>,
    /// One error message per kind, as an example.
    pub error_examples: BTreeMap<String, String>,
    /// Acknowledged values or versions a read did not return.
    pub lost: u64,
    /// Values a read returned that were never written there, or were already replaced.
    pub wrong: u64,
    /// The first few lost or wrong findings.
    pub findings: Vec<String>,
    /// Keys read in the final check.
    pub final_keys_checked: u64,
    /// VmRSS of this process when the load started, KiB.
    pub rss_start_kib: u64,
    /// VmRSS when it ended, KiB.
    pub rss_end_kib: u64,
    /// The largest VmRSS sampled (every second) during the load, KiB.
    pub rss_max_sampled_kib: u64,
    /// VmHWM (peak RSS) when the load started, KiB.
    pub hwm_start_kib: u64,
    /// VmHWM when it ended, KiB.
    pub hwm_end_kib: u64,
    /// Whether nothing was lost or wrong and the error rate stayed under the limit.
    pub passed: bool,
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "soak on {}: {} ops ({} puts, {} gets, {} calls) in {:.1} s with {} workers = {:.0} ops/s",
            self.backend,
            self.ops,
            self.puts,
            self.gets,
            self.calls,
            self.seconds,
            self.concurrency,
            self.ops_per_sec
        )?;
        let errors: u64 = self.errors.values().sum();
        writeln!(f, "errors: {errors} {:?}", self.errors)?;
        for (kind, e) in &self.error_examples {
            writeln!(f, "  e.g. {kind}: {e}")?;
        }
        writeln!(
            f,
            "lost: {}, wrong: {} (final check read {} keys)",
            self.lost, self.wrong, self.final_keys_checked
        )?;
        for finding in &self.findings {
            writeln!(f, "  {finding}")?;
        }
        writeln!(
            f,
            "RSS: start {} KiB, end {} KiB, max sampled {} KiB; peak (VmHWM) start {} KiB, end {} KiB",
            self.rss_start_kib,
            self.rss_end_kib,
            self.rss_max_sampled_kib,
            self.hwm_start_kib,
            self.hwm_end_kib
        )?;
        write!(f, "{}", if self.passed { "PASSED" } else { "FAILED" })
    }
}

/// `(VmRSS, VmHWM)` of this process in KiB, from `/proc/self/status` (zeros elsewhere).
pub fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Runs the soak; `Ok(false)` when it failed (lost or wrong values, too many errors).
pub async fn run(args: SoakArgs) -> Result<bool> {
    // A launched server lives as long as this guard.
    let (url, _server) = match (&args.url, &args.launch) {
        (Some(url), None) => (url.clone(), None),
        (None, Some(backend)) => {
            let (url, guard) = crate::launch::launch(backend, "soak_").await?;
            eprintln!("soak: launched {backend} at {url}");
            (url, Some(guard))
        }
        _ => bail!(
            "give either a store URL or --launch {}",
            crate::launch::LAUNCHABLE
        ),
    };
    let metrics = args
        .metrics_out
        .clone()
        .map(MetricsFile::start)
        .transpose()?;
    let store = open_store(&url).await?;
    let backend = store.backend().to_string();
    let report = soak(store, backend, &args).await?;
    if let Some(metrics) = metrics {
        metrics.finish()?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(report.passed)
}

/// `--metrics-out`: the Prometheus recorder `chronon serve` uses, rendered to a file on a timer
/// and once more at the end.
struct MetricsFile {
    path: std::path::PathBuf,
    exporter: crate::serve::metrics::Exporter,
    timer: tokio::task::JoinHandle<()>,
}

impl MetricsFile {
    /// Installs the recorder (before the store opens, so every call is counted) and starts the
    /// 10 s rewrites.
    fn start(path: std::path::PathBuf) -> Result<MetricsFile> {
        let exporter = crate::serve::metrics::Exporter::install();
        chronon_core::observe::describe_metrics();
        // Fail now, not after the run, when the file cannot be written.
        write_metrics(&path, &exporter)?;
        let (p, e) = (path.clone(), exporter.clone());
        let timer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(err) = write_metrics(&p, &e) {
                    tracing::warn!("{err:#}");
                }
            }
        });
        Ok(MetricsFile {
            path,
            exporter,
            timer,
        })
    }

    /// Stops the timer and writes the final figures.
    fn finish(self) -> Result<()> {
        self.timer.abort();
        write_metrics(&self.path, &self.exporter)?;
        eprintln!("soak: metrics written to {}", self.path.display());
        Ok(())
    }
}

/// Writes the exposition next to `path` and renames it over `path`, so a reader never sees half.
fn write_metrics(path: &std::path::Path, exporter: &crate::serve::metrics::Exporter) -> Result<()> {
    let text = exporter
        .render()
        .context("--metrics-out: another metrics recorder is installed in this process")?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text)
        .with_context(|| format!("--metrics-out: write {}", path.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("--metrics-out: rename onto {}", path.display()))?;
    Ok(())
}

/// Shared counters of the workers.
#[derive(Default)]
struct Counters {
    puts: AtomicU64,
    gets: AtomicU64,
    calls: AtomicU64,
    errors: std::sync::Mutex<BTreeMap<String, (u64, String)>>,
    findings: std::sync::Mutex<(u64, u64, Vec<String>)>,
    final_keys: AtomicU64,
}

impl Counters {
    fn error(&self, e: &KvError) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        let entry = errors
            .entry(e.kind().to_string())
            .or_insert_with(|| (0, e.to_string()));
        entry.0 += 1;
    }

    fn finding(&self, lost: bool, what: String) {
        let mut f = self.findings.lock().unwrap_or_else(|p| p.into_inner());
        if lost {
            f.0 += 1;
        } else {
            f.1 += 1;
        }
        if f.2.len() < 10 {
            f.2.push(what);
        }
    }
}

/// What one snapshot key may hold: the last acknowledged value, and any written since whose put
/// failed (a failed write may have landed).
#[derive(Default, Clone)]
struct SnapshotKey {
    acked: Option<(Bytes, i64)>,
    maybe: Vec<(Bytes, i64)>,
}

/// One time-series version this worker wrote, and whether its put was acknowledged.
#[derive(Clone)]
struct Version {
    ts: i64,
    value: Bytes,
    acked: bool,
}

/// How many recent versions per time-series key the checker keeps (and reads back).
const KEEP_VERSIONS: usize = 6;

struct Worker {
    id: usize,
    store: Arc<dyn KvStore>,
    snapshot_ds: String,
    series_ds: String,
    snapshot: Vec<SnapshotKey>,
    series: Vec<Vec<Version>>,
    /// Versions older than the kept window start here (reads ask from this ts).
    series_from: Vec<i64>,
    next_ts: i64,
    counters: Arc<Counters>,
    batch: usize,
    value_bytes: usize,
    write_percent: u32,
}

impl Worker {
    fn key(&self, i: usize) -> Bytes {
        Bytes::from(format!("w{:03}_k{i:04}", self.id))
    }

    fn value(&self, i: usize, ts: i64) -> Bytes {
        let mut v = format!("w{}k{i}t{ts}|", self.id).into_bytes();
        v.resize(self.value_bytes.max(v.len()), b'.');
        Bytes::from(v)
    }

    async fn run(mut self, deadline: Instant) -> Self {
        let n = self.snapshot.len();
        while Instant::now() < deadline {
            let (write, keys) = {
                let mut rng = rand::rng();
                let write = rng.random_range(0..100) < self.write_percent;
                let keys: Vec<(bool, usize)> = (0..self.batch)
                    .map(|_| (rng.random_bool(0.5), rng.random_range(0..n)))
                    .collect();
                (write, keys)
            };
            if write {
                self.write(&keys).await;
            } else {
                self.read(&keys).await;
            }
            // An in-process store (memory) never awaits anything: yield so the progress and
            // memory sampler, and tokio's timers, still run.
            tokio::task::yield_now().await;
        }
        // Final check: every key once.
        let all: Vec<(bool, usize)> = (0..n).flat_map(|i| [(true, i), (false, i)]).collect();
        for chunk in all.chunks(self.batch.max(1) * 4) {
            self.read(chunk).await;
            self.counters
                .final_keys
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        self
    }

    /// `keys`: `(is_series, index)`.
    async fn write(&mut self, keys: &[(bool, usize)]) {
        let mut puts = Vec::with_capacity(keys.len());
        let mut written = Vec::with_capacity(keys.len());
        for &(series, i) in keys {
            self.next_ts += 1;
            let ts = self.next_ts;
            let value = self.value(i, ts);
            let ds = if series {
                &self.series_ds
            } else {
                &self.snapshot_ds
            };
            puts.push(PutRequest::new(
                ds.as_str(),
                self.key(i),
                value.clone(),
                Some(ts),
            ));
            written.push((series, i, ts, value));
        }
        let results = self.store.multi_put(puts).await;
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        self.counters
            .puts
            .fetch_add(written.len() as u64, Ordering::Relaxed);
        for ((series, i, ts, value), r) in written.into_iter().zip(results) {
            let acked = match r {
                Ok(()) => true,
                Err(e) => {
                    self.counters.error(&e);
                    false
                }
            };
            if series {
                let versions = &mut self.series[i];
                versions.push(Version { ts, value, acked });
                if versions.len() > KEEP_VERSIONS {
                    versions.remove(0);
                    self.series_from[i] = versions[0].ts;
                }
            } else {
                let k = &mut self.snapshot[i];
                if acked {
                    k.acked = Some((value, ts));
                    k.maybe.clear();
                } else {
                    k.maybe.push((value, ts));
                }
            }
        }
    }

    async fn read(&mut self, keys: &[(bool, usize)]) {
        let gets: Vec<GetRequest> = keys
            .iter()
            .map(|&(series, i)| {
                if series {
                    GetRequest::range(
                        self.series_ds.as_str(),
                        self.key(i),
                        self.series_from[i],
                        None,
                    )
                } else {
                    GetRequest::latest(self.snapshot_ds.as_str(), self.key(i))
                }
            })
            .collect();
        let got = self.store.multi_get(gets).await;
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        self.counters
            .gets
            .fetch_add(keys.len() as u64, Ordering::Relaxed);
        for (&(series, i), resp) in keys.iter().zip(got) {
            let values = match resp.values {
                Ok(v) => v,
                Err(e) => {
                    self.counters.error(&e);
                    continue;
                }
            };
            let key = String::from_utf8_lossy(&self.key(i)).into_owned();
            if series {
                let expected = &self.series[i];
                // Every acknowledged version is there with its value; nothing else is, except
                // versions whose put failed; oldest first.
                for v in expected.iter().filter(|v| v.acked) {
                    if !values
                        .iter()
                        .any(|t| t.millis == v.ts && t.bytes == v.value)
                    {
                        self.counters.finding(
                            true,
                            format!("{key}: acknowledged version ts={} missing", v.ts),
                        );
                    }
                }
                for t in &values {
                    if !expected
                        .iter()
                        .any(|v| v.ts == t.millis && v.value == t.bytes)
                    {
                        self.counters.finding(
                            false,
                            format!(
                                "{key}: unexpected version ts={} ({} bytes)",
                                t.millis,
                                t.bytes.len()
                            ),
                        );
                    }
                }
                if values.windows(2).any(|w| w[0].millis >= w[1].millis) {
                    self.counters
                        .finding(false, format!("{key}: versions not oldest first"));
                }
            } else {
                let k = &self.snapshot[i];
                let got = values.last().map(|t| (t.bytes.clone(), t.millis));
                let allowed = |g: &(Bytes, i64)| {
                    k.acked.as_ref() == Some(g) || k.maybe.iter().any(|m| m == g)
                };
                match &got {
                    // Failed puts never remove a value: an acknowledged one must still show.
                    None => {
                        if let Some((_, ts)) = &k.acked {
                            self.counters.finding(
                                true,
                                format!("{key}: acknowledged value ts={ts} missing"),
                            );
                        }
                    }
                    Some(g) if values.len() == 1 && allowed(g) => {}
                    Some(g) => match &k.acked {
                        Some((_, ts)) if g.1 < *ts => self.counters.finding(
                            true,
                            format!("{key}: stale value ts={} after acknowledged ts={ts}", g.1),
                        ),
                        _ => self.counters.finding(
                            false,
                            format!(
                                "{key}: unexpected value ts={} ({} values)",
                                g.1,
                                values.len()
                            ),
                        ),
                    },
                }
            }
        }
    }
}

/// Runs the load on `store` and checks it (see the module docs).
pub async fn soak(store: Arc<dyn KvStore>, backend: String, args: &SoakArgs) -> Result<SoakReport> {
    let tag = format!("{:08x}", rand::random::<u32>());
    let snapshot_ds = format!("soak_{tag}_BATCH");
    let series_ds = format!("soak_{tag}_STREAMING");
    store
        .create(&snapshot_ds, &DatasetProps::snapshot())
        .await
        .with_context(|| format!("create {snapshot_ds}"))?;
    store
        .create(&series_ds, &DatasetProps::time_series())
        .await
        .with_context(|| format!("create {series_ds}"))?;

    let counters = Arc::new(Counters::default());
    let base_ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(1_700_000_000_000);
    let keys = args.keys_per_worker.max(1);
    let (rss_start, hwm_start) = memory_kib();
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut tasks = Vec::new();
    for id in 0..args.concurrency.max(1) {
        let worker = Worker {
            id,
            store: store.clone(),
            snapshot_ds: snapshot_ds.clone(),
            series_ds: series_ds.clone(),
            snapshot: vec![SnapshotKey::default(); keys],
            series: vec![Vec::new(); keys],
            series_from: vec![0; keys],
            // Workers own disjoint keys; distinct ts ranges only make findings easier to read.
            next_ts: base_ts + (id as i64) * 1_000_000_000,
            counters: counters.clone(),
            batch: args.batch.max(1),
            value_bytes: args.value_bytes,
            write_percent: args.write_percent.min(100),
        };
        tasks.push(tokio::spawn(worker.run(deadline)));
    }

    // Progress and memory samples while the workers run.
    let mut rss_max = rss_start;
    let mut last_report = Instant::now();
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        rss_max = rss_max.max(memory_kib().0);
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let ops = counters.puts.load(Ordering::Relaxed) + counters.gets.load(Ordering::Relaxed);
            let errors: u64 = counters
                .errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .map(|e| e.0)
                .sum();
            eprintln!(
                "soak: {:>4.0} s, {ops} ops, {errors} errors, RSS {} KiB",
                started.elapsed().as_secs_f64(),
                memory_kib().0
            );
        }
    }
    for t in tasks {
        t.await.context("a soak worker panicked")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let (rss_end, hwm_end) = memory_kib();

    if !args.keep {
        let _ = store.drop_dataset(&snapshot_ds).await;
        let _ = store.drop_dataset(&series_ds).await;
    }

    let puts = counters.puts.load(Ordering::Relaxed);
    let gets = counters.gets.load(Ordering::Relaxed);
    let errors_map = counters
        .errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let (lost, wrong, findings) = counters
        .findings
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let errors: u64 = errors_map.values().map(|e| e.0).sum();
    let ops = puts + gets;
    let error_rate = if ops == 0 {
        1.0
    } else {
        errors as f64 / ops as f64
    };
    Ok(SoakReport {
        backend,
        seconds,
        concurrency: args.concurrency.max(1),
        ops,
        puts,
        gets,
        calls: counters.calls.load(Ordering::Relaxed),
        ops_per_sec: ops as f64 / seconds.max(1e-9),
        errors: errors_map.iter().map(|(k, v)| (k.clone(), v.0)).collect(),
        error_examples: errors_map.into_iter().map(|(k, v)| (k, v.1)).collect(),
        lost,
        wrong,
        findings,
        final_keys_checked: counters.final_keys.load(Ordering::Relaxed),
        rss_start_kib: rss_start,
        rss_end_kib: rss_end,
        rss_max_sampled_kib: rss_max,
        hwm_start_kib: hwm_start,
        hwm_end_kib: hwm_end,
        passed: lost == 0 && wrong == 0 && ops > 0 && error_rate <= args.max_error_rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn memory_is_read_on_linux() {
        let (rss, hwm) = memory_kib();
        if cfg!(target_os = "linux") {
            assert!(rss > 0 && hwm >= rss, "rss {rss} hwm {hwm}");
        }
    }
}
