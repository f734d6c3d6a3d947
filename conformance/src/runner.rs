//! How the suite runs: the per-case [`Ctx`], the [`Case`] registry entries, and [`run_with`],
//! which runs cases concurrently (exclusive ones alone, last) and returns a [`Report`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use chronon_core::{DatasetKind, DatasetProps, KvStore};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use crate::factory::{open_client, StoreFactory};
use crate::report::{CaseResult, Report};

/// What a case gets: the shared client, a way to open new ones, and fresh dataset names.
pub(crate) struct Ctx {
    shared: Option<Arc<dyn KvStore>>,
    factory: Arc<dyn StoreFactory>,
    case: &'static str,
    datasets: Mutex<Vec<String>>,
    retries: AtomicU64,
    note: Mutex<Option<String>>,
}

impl Ctx {
    /// The client shared by all non-exclusive cases. Exclusive cases have none and call
    /// [`open`](Ctx::open) instead (so an embedded store's lock is free for a second client).
    pub fn store(&self) -> anyhow::Result<Arc<dyn KvStore>> {
        self.shared.clone().ok_or_else(|| {
            anyhow!(
                "case {} is exclusive and must open its own client",
                self.case
            )
        })
    }

    /// A new client from the factory.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn KvStore>> {
        open_client(self.factory.as_ref())
            .await
            .map_err(|e| anyhow::Error::from_boxed(e).context("opening a new client"))
    }

    /// A fresh, never used, valid dataset name, ending in `suffix` (for example `_STREAMING`).
    /// It is dropped when the case ends.
    pub fn name(&self, suffix: &str) -> String {
        let tag: u64 = rand::random();
        let short: String = self.case.chars().filter(|c| *c != '_').take(12).collect();
        let name = format!("c{short}_{tag:016x}{suffix}");
        self.datasets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.clone());
        name
    }

    /// Registers `name` (derived from a [`name`](Ctx::name), for example its upper-cased twin)
    /// so it is dropped when the case ends, and returns it.
    pub fn also_drop(&self, name: String) -> String {
        self.datasets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.clone());
        name
    }

    /// The factory the suite was given (for its optional backend call counter).
    pub fn factory(&self) -> &dyn StoreFactory {
        self.factory.as_ref()
    }

    /// Counts `n` calls repeated after a retryable error (`Timeout`, `Unavailable`): the report
    /// shows them per case and per backend, so "slow" is visible without being "wrong".
    pub fn count_retries(&self, n: u64) {
        self.retries.fetch_add(n, Ordering::Relaxed);
    }

    /// Says why a case checked nothing (a clause that does not apply to this backend) or what
    /// it could not check; the report prints it next to the pass.
    pub fn note(&self, text: impl Into<String>) {
        *self.note.lock().unwrap_or_else(|e| e.into_inner()) = Some(text.into());
    }

    /// A fresh dataset of `kind` created on the shared client.
    pub async fn dataset(&self, kind: DatasetKind) -> anyhow::Result<String> {
        let suffix = match kind {
            DatasetKind::Snapshot => "_BATCH",
            DatasetKind::TimeSeries => "_STREAMING",
        };
        let name = self.name(suffix);
        let props = match kind {
            DatasetKind::Snapshot => DatasetProps::snapshot(),
            DatasetKind::TimeSeries => DatasetProps::time_series(),
        };
        let store = self.store()?;
        crate::cases::retry_create(self, &store, &name, &props)
            .await
            .with_context(|| format!("create {name} as {}", kind.as_str()))?;
        Ok(name)
    }

    /// A fresh snapshot dataset.
    pub async fn snapshot(&self) -> anyhow::Result<String> {
        self.dataset(DatasetKind::Snapshot).await
    }

    /// A fresh time-series dataset.
    pub async fn time_series(&self) -> anyhow::Result<String> {
        self.dataset(DatasetKind::TimeSeries).await
    }

    fn take_datasets(&self) -> Vec<String> {
        std::mem::take(&mut *self.datasets.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The signature of a case: an async check that fails with a message saying what was wrong.
pub(crate) type CaseFn = for<'a> fn(&'a Ctx) -> BoxFuture<'a, anyhow::Result<()>>;

/// One clause of the contract (`chronon-core/CONTRACT.md`), as code. [`all_cases`](crate::all_cases)
/// lists them; pick some by name for [`run_with`].
#[derive(Clone, Copy)]
pub struct Case {
    /// The contract section the clause is in (`datasets`, `multi_get`, ...).
    pub section: &'static str,
    /// The clause, as a snake_case name.
    pub name: &'static str,
    /// Exclusive cases run alone, after the others, without the shared client (they open and
    /// drop clients themselves: persistence across clients).
    pub exclusive: bool,
    /// The check.
    pub(crate) run: CaseFn,
}

/// The environment variable that picks cases by name: comma-separated parts of case names
/// (`CHRONON_CASES=ttl,list`); unset or empty runs them all.
pub const CASES_ENV: &str = "CHRONON_CASES";

/// Options for [`run_with`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Only cases whose name contains one of these (empty: all). `CHRONON_CASES` (comma-separated)
    /// sets it from the environment.
    pub filter: Vec<String>,
    /// How many non-exclusive cases run at once.
    pub concurrency: usize,
    /// Longest a case may take before it fails as hung.
    pub case_timeout: Duration,
    /// Longest a load case ([`LOAD_CASES`](crate::LOAD_CASES)) may take: they move 10,000 rows
    /// or more, and retry slow calls, so a slow emulator on a busy machine needs minutes.
    pub load_case_timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        let filter = std::env::var(CASES_ENV)
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        RunOptions {
            filter,
            concurrency: 4,
            case_timeout: Duration::from_secs(180),
            load_case_timeout: Duration::from_secs(900),
        }
    }
}

/// Runs every case of the suite against `factory`'s backend and reports each one.
///
/// An adapter's `tests/conformance.rs` usually calls
/// [`assert_conformance`](crate::assert_conformance) instead, which also prints and checks the
/// report.
pub async fn run_all(factory: impl StoreFactory + 'static) -> Report {
    run_with(Arc::new(factory), crate::all_cases(), RunOptions::default()).await
}

/// Runs `cases` against `factory`'s backend.
pub async fn run_with(
    factory: Arc<dyn StoreFactory>,
    cases: Vec<Case>,
    options: RunOptions,
) -> Report {
    let backend = factory.name();
    let cases: Vec<(usize, Case)> = cases
        .into_iter()
        .filter(|c| {
            options.filter.is_empty() || options.filter.iter().any(|f| c.name.contains(f.as_str()))
        })
        .enumerate()
        .collect();
    let mut results: Vec<(usize, CaseResult)> = Vec::new();

    let shared = match open_client(factory.as_ref()).await {
        Ok(store) => Some(store),
        Err(e) => {
            let failure = format!("could not open a client: {e:#}");
            let cases = cases
                .iter()
                .map(|(_, c)| CaseResult {
                    section: c.section,
                    name: c.name,
                    failure: Some(failure.clone()),
                    too_slow: false,
                    retries: 0,
                    note: None,
                    millis: 0,
                })
                .collect();
            return Report { backend, cases };
        }
    };

    // Ordinary cases several at a time, then the load cases one at a time on the same client:
    // four loads of 10,000 rows at once would only measure a slow server's queue.
    let is_load = |c: &Case| crate::LOAD_CASES.contains(&c.name);
    for (load, width) in [(false, options.concurrency.max(1)), (true, 1)] {
        let batch: Vec<_> = cases
            .iter()
            .filter(|(_, c)| !c.exclusive && is_load(c) == load)
            .copied()
            .collect();
        let outcomes: Vec<(usize, CaseResult)> = futures::stream::iter(batch)
            .map(|(i, case)| {
                let factory = factory.clone();
                let shared = shared.clone();
                let timeout = timeout_for(&case, &options);
                async move { (i, run_case(case, shared, factory, timeout).await) }
            })
            .buffer_unordered(width)
            .collect()
            .await;
        results.extend(outcomes);
    }
    drop(shared);

    for (i, case) in cases.iter().filter(|(_, c)| c.exclusive).copied() {
        results.push((
            i,
            run_case(case, None, factory.clone(), timeout_for(&case, &options)).await,
        ));
    }
    results.sort_by_key(|(i, _)| *i);
    Report {
        backend,
        cases: results.into_iter().map(|(_, r)| r).collect(),
    }
}

fn timeout_for(case: &Case, options: &RunOptions) -> Duration {
    if crate::LOAD_CASES.contains(&case.name) {
        options.load_case_timeout.max(options.case_timeout)
    } else {
        options.case_timeout
    }
}

async fn run_case(
    case: Case,
    shared: Option<Arc<dyn KvStore>>,
    factory: Arc<dyn StoreFactory>,
    timeout: Duration,
) -> CaseResult {
    let cx = Ctx {
        shared: shared.clone(),
        factory: factory.clone(),
        case: case.name,
        datasets: Mutex::new(Vec::new()),
        retries: AtomicU64::new(0),
        note: Mutex::new(None),
    };
    let started = Instant::now();
    let outcome = std::panic::AssertUnwindSafe(tokio::time::timeout(timeout, (case.run)(&cx)))
        .catch_unwind()
        .await;
    let mut too_slow = false;
    let failure = match outcome {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => {
            too_slow = e.chain().any(|c| c.is::<crate::cases::TooSlow>());
            Some(format!("{e:#}"))
        }
        Ok(Err(_)) => Some(format!("hung: no answer within {timeout:?}")),
        Err(panic) => Some(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)")
        )),
    };
    let millis = started.elapsed().as_millis();
    // Best-effort cleanup so servers do not fill up with test datasets.
    let names = cx.take_datasets();
    if !names.is_empty() {
        let store = match shared {
            Some(s) => Some(s),
            None => open_client(factory.as_ref()).await.ok(),
        };
        if let Some(store) = store {
            for name in names {
                let _ =
                    tokio::time::timeout(Duration::from_secs(30), store.drop_dataset(&name)).await;
            }
        }
    }
    if let Some(f) = &failure {
        tracing::warn!(case = case.name, "conformance case failed: {f}");
    }
    let note = cx.note.lock().unwrap_or_else(|e| e.into_inner()).take();
    CaseResult {
        section: case.section,
        name: case.name,
        failure,
        too_slow,
        retries: cx.retries.load(Ordering::Relaxed),
        note,
        millis,
    }
}
