//! `chronon compare`: the conformance suite and a workload matrix on several backends side by
//! side, with raw-driver baselines, written as a terminal table, a JSON file and an HTML report.

mod cell;
mod raw;
mod report;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use chronon_serving::store_url;
use workload::{Figures, OnlySide, Op, Profile};

/// `chronon compare …`
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Store URLs to compare. None: the embedded RocksDB in a temporary directory, the memory
    /// store, and every backend the conformance launchers can start on this machine, among those
    /// compiled into this build (each backend is a cargo feature of chronon-cli).
    pub urls: Vec<String>,
    /// The short profile (well under two minutes per backend); CI runs this.
    #[arg(long)]
    pub quick: bool,
    /// Directory for `compare.json` and `compare.html`.
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Seed for the random key choice, so runs are repeatable.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Shortest time per repetition of a matrix cell, in milliseconds (overrides the profile;
    /// a repetition also runs until it has done the profile's minimum number of keys, for at
    /// most ten times this long or the profile's maximum, whichever is longer).
    #[arg(long)]
    pub cell_ms: Option<u64>,
    /// Repetitions of each cell (overrides the profile); the adapter and the raw driver take
    /// turns call by call within each.
    #[arg(long)]
    pub repeats: Option<usize>,
    /// Skip the conformance suite (workloads only).
    #[arg(long)]
    pub no_suite: bool,
    /// Only these operations (comma-separated; default all): to measure or profile one cell.
    #[arg(long, value_delimiter = ',')]
    pub ops: Vec<Op>,
    /// Only these batch sizes (overrides the profile's).
    #[arg(long, value_delimiter = ',')]
    pub batches: Vec<usize>,
    /// Only these numbers of concurrent callers (overrides the profile's).
    #[arg(long, value_delimiter = ',')]
    pub callers: Vec<usize>,
    /// Only these value sizes in bytes (overrides the profile's).
    #[arg(long, value_delimiter = ',')]
    pub value_sizes: Vec<usize>,
    /// Run one side only (`adapter` or `raw`): for profiling that side with `perf record`,
    /// since a profile of both sides mixes their costs. No ratios are reported then.
    #[arg(long, value_enum)]
    pub only_side: Option<OnlySide>,
}

/// One matrix cell's result.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Operation.
    pub op: Op,
    /// Requests per call.
    pub batch: usize,
    /// Concurrent callers.
    pub callers: usize,
    /// Value size in bytes.
    pub value_size: usize,
    /// Through the adapter.
    pub adapter: Figures,
    /// Through the raw driver, where the backend has a baseline.
    pub raw: Option<Figures>,
    /// Adapter keys/s over raw keys/s: the median over the repetitions (each adapter
    /// repetition over the raw one next to it).
    pub ratio: Option<f64>,
    /// The lowest repetition's ratio.
    pub ratio_min: Option<f64>,
    /// The highest repetition's ratio.
    pub ratio_max: Option<f64>,
}

/// Everything measured on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct BackendResult {
    /// Short name (the URL scheme, or the launcher's backend name).
    pub name: String,
    /// The URL used.
    pub url: String,
    /// How the backend was found or started.
    pub how: String,
    /// The conformance report (absent with `--no-suite`).
    pub conformance: Option<conformance::Report>,
    /// `bulk_put` load, per value size.
    pub bulk: Vec<(usize, Figures)>,
    /// The matrix.
    pub cells: Vec<Cell>,
    /// Cells not run because the backend used up the profile's `backend_budget`.
    pub skipped_cells: usize,
    /// Which cells those are (`put batch 1000 x16 10240 B`), so the report names them.
    pub skipped: Vec<String>,
    /// Conformance cases the profile left out (`--quick`: `conformance::LOAD_CASES`).
    pub suite_left_out: Vec<&'static str>,
    /// Why the workloads could not run, if they could not.
    pub error: Option<String>,
}

impl BackendResult {
    /// Notes a cell left out for the time budget.
    fn skip(&mut self, op: Op, batch: usize, callers: usize, value_size: usize) {
        self.skipped_cells += 1;
        self.skipped.push(format!(
            "{} batch {batch} x{callers} {value_size} B",
            op.name()
        ));
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    /// Machine description (CPU model, cores).
    pub machine: String,
    /// UTC date and time of the run.
    pub date: String,
    /// Which build measured: figures from an unoptimised build say little about a deployment.
    pub build: String,
    /// Seed used.
    pub seed: u64,
    /// Profile used.
    pub profile: Profile,
    /// One entry per backend.
    pub backends: Vec<BackendResult>,
}

/// Keeps launched servers (and the temporary RocksDB directory) alive for the run.
#[allow(dead_code)] // held for their Drop
enum Guard {
    Dir(tempfile::TempDir),
    Redis(conformance::launch::redis::RedisServer),
    RedisCluster(conformance::launch::redis_cluster::RedisCluster),
    Dynamo(conformance::launch::dynamodb::DynamoServer),
    Mongo(conformance::launch::mongodb::MongoServer),
    Scylla(conformance::launch::scylla::ScyllaServer),
}

/// Whether the backend called `name` is in this build (see `store_url::BACKENDS`).
fn compiled_in(name: &str) -> bool {
    store_url::by_name(name).is_some_and(|b| b.compiled_in)
}

/// Runs `launch` when the backend called `name` is in this build.
async fn launch_if_compiled<S, F>(name: &str, launch: impl FnOnce() -> F) -> Option<S>
where
    F: std::future::Future<Output = Option<S>>,
{
    match compiled_in(name) {
        true => launch().await,
        false => None,
    }
}

async fn default_targets(guards: &mut Vec<Guard>) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    if compiled_in("rocks") {
        let dir = tempfile::Builder::new()
            .prefix("chronon-compare-")
            .tempdir()?;
        out.push((
            "rocks".to_string(),
            format!("rocks://{}", dir.path().display()),
            "embedded, temp dir".to_string(),
        ));
        guards.push(Guard::Dir(dir));
    }
    out.push((
        "memory".to_string(),
        "memory://compare".to_string(),
        "in process (reference)".to_string(),
    ));
    let left_out: Vec<&str> = store_url::BACKENDS
        .iter()
        .filter(|b| !b.compiled_in)
        .map(|b| b.name)
        .collect();
    if !left_out.is_empty() {
        eprintln!(
            "== not compiled into this build, so not compared: {} (cargo features of chronon-cli)",
            left_out.join(", ")
        );
    }
    // The servers start at the same time (DynamoDB Local's JVM alone takes seconds); each
    // launcher prints its own SKIPPED line when it finds no way to start its server.
    let (redis, cluster, dynamo, mongo, scylla) = tokio::join!(
        launch_if_compiled("redis", conformance::launch::redis::redis),
        // The Redis adapter in cluster mode, on a local 3 masters + 3 replicas.
        launch_if_compiled("redis", conformance::launch::redis_cluster::redis_cluster),
        launch_if_compiled("dynamodb", conformance::launch::dynamodb::dynamodb),
        launch_if_compiled("mongodb", conformance::launch::mongodb::mongodb),
        launch_if_compiled("scylla", conformance::launch::scylla::scylla),
    );
    if let Some(s) = redis {
        out.push(("redis".into(), s.url.clone(), s.method.to_string()));
        guards.push(Guard::Redis(s));
    }
    if let Some(s) = cluster {
        let name = conformance::launch::redis_cluster::BACKEND;
        out.push((name.into(), s.url.clone(), s.method.to_string()));
        guards.push(Guard::RedisCluster(s));
    }
    if let Some(s) = dynamo {
        out.push((
            "dynamodb".into(),
            format!("dynamodb://?endpoint={}&region=us-west-2", s.endpoint),
            s.method.to_string(),
        ));
        guards.push(Guard::Dynamo(s));
    }
    if let Some(s) = mongo {
        let (mut uri, mut method) = (s.uri.clone(), s.method.to_string());
        if s.method == conformance::launch::LaunchMethod::ChildProcess {
            // SecantusDB, a Python server (chronon-mongo/README.md, "SecantusDB
            // notes"): ~1,600 inserts/s and `$in` costs that grow with the square of the
            // list, so the 20,000-row load needs more than the default 10 s call timeout,
            // and reads go in chunks of 100 keys. Real MongoDB needs neither; the report
            // names the server.
            let sep = if uri.contains('?') { '&' } else { '?' };
            uri.push_str(&format!(
                "{sep}chronon_timeout_ms=120000&chronon_get_batch=100"
            ));
            method.push_str(" (SecantusDB)");
        }
        out.push(("mongodb".into(), uri, method));
        guards.push(Guard::Mongo(s));
    }
    if let Some(s) = scylla {
        out.push(("scylla".into(), s.uri.clone(), s.method.to_string()));
        guards.push(Guard::Scylla(s));
    }
    Ok(out)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpu}, {cores} cores")
}

/// Runs `chronon compare`; `Ok(false)` when a conformance case failed or a backend could not run.
pub async fn run(args: CompareArgs) -> Result<bool> {
    let mut profile = if args.quick {
        Profile::quick()
    } else {
        Profile::full()
    };
    if let Some(ms) = args.cell_ms {
        profile.cell_time = Duration::from_millis(ms);
        profile.cell_max_time = profile.cell_max_time.max(profile.cell_time * 10);
    }
    if let Some(n) = args.repeats {
        profile.repeats = n.max(1);
    }
    for (given, field) in [
        (&args.batches, &mut profile.batches),
        (&args.callers, &mut profile.callers),
        (&args.value_sizes, &mut profile.value_sizes),
    ] {
        if !given.is_empty() {
            *field = given.iter().map(|n| (*n).max(1)).collect();
        }
    }
    if !args.ops.is_empty() {
        profile.ops = args.ops.clone();
    }
    profile.only_side = args.only_side;
    let mut guards = Vec::new();
    let targets = if args.urls.is_empty() {
        default_targets(&mut guards).await?
    } else {
        args.urls
            .iter()
            .map(|u| {
                (
                    u.split(':').next().unwrap_or(u).to_string(),
                    u.clone(),
                    "given URL".to_string(),
                )
            })
            .collect()
    };
    // The suites first, every backend's at once: they check behaviour, not speed, and the
    // slowest server's suite (SecantusDB's) would otherwise add its minute to the run. The
    // matrices then run one backend at a time, so no measurement shares the machine.
    let suite_left_out: Vec<&'static str> = match profile.suite_load_cases {
        true => Vec::new(),
        false => conformance::LOAD_CASES.to_vec(),
    };
    let no_suite = args.no_suite;
    let suites = futures::future::join_all(targets.iter().map(|(name, url, _)| {
        let left_out = &suite_left_out;
        async move {
            if no_suite {
                return None;
            }
            eprintln!("== {name}: conformance suite ...");
            let cases = conformance::all_cases()
                .into_iter()
                .filter(|c| !left_out.contains(&c.name))
                .collect();
            Some(crate::check::run_cases(url, cases, Vec::new()).await)
        }
    }))
    .await;
    let mut backends = Vec::new();
    for ((name, url, how), suite) in targets.into_iter().zip(suites) {
        eprintln!("== {name} ({how}): {url}");
        let mut result = BackendResult {
            name: name.clone(),
            url: url.clone(),
            how,
            conformance: None,
            bulk: Vec::new(),
            cells: Vec::new(),
            error: None,
            skipped_cells: 0,
            skipped: Vec::new(),
            suite_left_out: Vec::new(),
        };
        match suite {
            None => {}
            Some(Ok(report)) => {
                eprint!("{}", report);
                result.conformance = Some(report);
                result.suite_left_out = suite_left_out.clone();
            }
            Some(Err(e)) => result.error = Some(format!("suite could not run: {e:#}")),
        }
        if result.error.is_none() {
            if let Err(e) = measure(&name, &url, &profile, args.seed, &mut result).await {
                result.error = Some(format!("{e:#}"));
            }
        }
        if let Some(e) = &result.error {
            eprintln!("   {name}: {e}");
        }
        backends.push(result);
    }
    let report = CompareReport {
        machine: machine(),
        date: report::utc_now(),
        build: match cfg!(debug_assertions) {
            true => "unoptimised (debug assertions on)".to_string(),
            false => "optimised (release profile)".to_string(),
        },
        seed: args.seed,
        profile,
        backends,
    };
    report::print_table(&report);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let json = args.out.join("compare.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)?;
    let html = args.out.join("compare.html");
    std::fs::write(&html, report::html(&report))?;
    println!("\nwrote {} and {}", json.display(), html.display());
    drop(guards);
    let ok = report
        .backends
        .iter()
        .all(|b| b.error.is_none() && b.conformance.as_ref().is_none_or(|r| r.passed()));
    Ok(ok)
}

async fn measure(
    name: &str,
    url: &str,
    profile: &Profile,
    seed: u64,
    result: &mut BackendResult,
) -> Result<()> {
    let (store, raw) = raw::Raw::open(url).await?;
    let cells_total = profile.value_sizes.len()
        * profile.batches.len()
        * profile.callers.len()
        * profile.ops.len();
    let bar = ProgressBar::new(cells_total as u64);
    bar.set_style(
        ProgressStyle::with_template("   {prefix} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    let tag = format!("{:x}", rand::random::<u32>());
    let started = Instant::now();
    let cells_per_size = cells_total / profile.value_sizes.len().max(1);
    for &value_size in &profile.value_sizes {
        if started.elapsed() > profile.backend_budget {
            for &batch in &profile.batches {
                for &op in &profile.ops {
                    for &callers in &profile.callers {
                        result.skip(op, batch, callers, value_size);
                    }
                }
            }
            bar.inc(cells_per_size as u64);
            continue;
        }
        bar.set_message(format!(
            "loading {} rows of {value_size} B",
            profile.bulk_rows
        ));
        // `sized`: the profile with the keys this backend loaded within its load time.
        let (ds, bulk, sized) = workload::preload(&store, &tag, profile, value_size).await?;
        result.bulk.push((value_size, bulk));
        if let Some(raw) = &raw {
            raw.preload(&sized, &ds).await?;
        }
        let adapter = workload::adapter_call(store.clone(), ds.clone());
        // Batch sizes outermost: when the budget runs out, what is left is the largest batches
        // of every operation, not every cell of the last operation.
        for &batch in &profile.batches {
            for &op in &profile.ops {
                for &callers in &profile.callers {
                    if started.elapsed() > profile.backend_budget {
                        result.skip(op, batch, callers, value_size);
                        bar.inc(1);
                        continue;
                    }
                    bar.set_message(format!(
                        "{} batch {batch} x{callers} {value_size} B",
                        op.name()
                    ));
                    let raw_call = match &raw {
                        Some(raw) if op != Op::GetRange || raw.ranges() => {
                            Some(raw.call(value_size))
                        }
                        _ => None,
                    };
                    let (a, r) = repeat_cell(
                        &adapter,
                        raw_call.as_ref(),
                        op,
                        batch,
                        callers,
                        &sized,
                        seed,
                    )
                    .await?;
                    let ratio = workload::ratio(&a, &r);
                    result.cells.push(Cell {
                        op,
                        batch,
                        callers,
                        value_size,
                        adapter: workload::summarize(&a)?,
                        raw: match r.is_empty() {
                            true => None,
                            false => Some(workload::summarize(&r)?),
                        },
                        ratio: ratio.map(|r| r.median),
                        ratio_min: ratio.map(|r| r.min),
                        ratio_max: ratio.map(|r| r.max),
                    });
                    bar.inc(1);
                }
            }
        }
        for d in [&ds.snapshot, &ds.series] {
            let _ = store.drop_dataset(d).await;
        }
    }
    if let Some(raw) = &raw {
        raw.cleanup(profile).await;
    }
    // Report order: by value size, operation, batch, callers (cells ran batch-major).
    result.cells.sort_by_key(|c| {
        let op = Op::ALL.iter().position(|o| *o == c.op).unwrap_or(0);
        (c.value_size, op, c.batch, c.callers)
    });
    bar.finish_and_clear();
    drop(Arc::clone(&store));
    Ok(())
}

/// Runs a cell's repetitions, each on the adapter and the raw call (if any) together, call by
/// call (see [`cell::run_cell`]), unless the profile asks for one side only. Returns each
/// side's repetitions in order.
async fn repeat_cell(
    adapter: &workload::CallFn,
    raw: Option<&workload::CallFn>,
    op: Op,
    batch: usize,
    callers: usize,
    profile: &Profile,
    seed: u64,
) -> Result<(Vec<workload::Run>, Vec<workload::Run>)> {
    let mut calls = Vec::new();
    if profile.only_side != Some(OnlySide::Raw) {
        calls.push(adapter.clone());
    }
    if let (Some(raw), false) = (raw, profile.only_side == Some(OnlySide::Adapter)) {
        calls.push(raw.clone());
    }
    let (mut a, mut r) = (Vec::new(), Vec::new());
    if calls.is_empty() {
        return Ok((a, r));
    }
    for rep in 0..profile.repeats.max(1) {
        let seed = seed.wrapping_add(rep as u64);
        let mut runs = cell::run_cell(&calls, op, batch, callers, profile, seed)
            .await?
            .into_iter();
        match profile.only_side {
            Some(OnlySide::Raw) => r.extend(runs),
            Some(OnlySide::Adapter) => a.extend(runs),
            None => {
                a.extend(runs.next());
                r.extend(runs);
            }
        }
    }
    Ok((a, r))
}
