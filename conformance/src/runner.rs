//! How the suite runs: the [`StoreFactory`] a backend provides, the per-case [`Ctx`], and the
//! [`Report`] that [`run_all`] returns.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use async_trait::async_trait;
use chronon_core::{DatasetKind, DatasetProps, KvStore};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde::Serialize;

/// Opens clients of the backend under test.
///
/// Every call to [`open`](StoreFactory::open) must return a *new* client on the *same* database,
/// so the suite can check that a new client sees what an old one wrote and what kind a dataset has.
#[async_trait]
pub trait StoreFactory: Send + Sync {
    /// A short name for reports, such as `redis` or `rocks`.
    fn name(&self) -> String;
    /// A new client on the database under test.
    async fn open(&self) -> anyhow::Result<Arc<dyn KvStore>>;
}

/// A [`StoreFactory`] from a closure, for backends whose clients are cheap to make.
pub struct FnFactory<F> {
    name: String,
    open: F,
}

impl<F, Fut> FnFactory<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: std::future::Future<Output = anyhow::Result<Arc<dyn KvStore>>> + Send,
{
    /// A factory named `name` that calls `open` for each new client.
    pub fn new(name: impl Into<String>, open: F) -> Self {
        FnFactory {
            name: name.into(),
            open,
        }
    }
}

#[async_trait]
impl<F, Fut> StoreFactory for FnFactory<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: std::future::Future<Output = anyhow::Result<Arc<dyn KvStore>>> + Send,
{
    fn name(&self) -> String {
        self.name.clone()
    }
    async fn open(&self) -> anyhow::Result<Arc<dyn KvStore>> {
        (self.open)().await
    }
}

/// What a case gets: the shared client, a way to open new ones, and fresh dataset names.
pub struct Ctx {
    shared: Option<Arc<dyn KvStore>>,
    factory: Arc<dyn StoreFactory>,
    case: &'static str,
    datasets: Mutex<Vec<String>>,
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
        self.factory.open().await.context("opening a new client")
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
        self.store()?
            .create(&name, &props)
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
pub type CaseFn = for<'a> fn(&'a Ctx) -> BoxFuture<'a, anyhow::Result<()>>;

/// One clause of SPEC.md, as code.
#[derive(Clone, Copy)]
pub struct Case {
    /// The SPEC.md section the clause is in.
    pub section: &'static str,
    /// The clause, as a snake_case name.
    pub name: &'static str,
    /// Exclusive cases run alone, after the others, without the shared client (they open and
    /// drop clients themselves: persistence across clients).
    pub exclusive: bool,
    /// The check.
    pub run: CaseFn,
}

/// How one case went.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// SPEC.md section.
    pub section: &'static str,
    /// Case name.
    pub name: &'static str,
    /// `None` if it passed, else what went wrong.
    pub failure: Option<String>,
    /// Wall time of the case.
    pub millis: u128,
}

/// The outcome of a suite run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The factory's name.
    pub backend: String,
    /// One entry per case run, in registry order.
    pub cases: Vec<CaseResult>,
}

impl Report {
    /// The cases that failed.
    pub fn failures(&self) -> Vec<&CaseResult> {
        self.cases.iter().filter(|c| c.failure.is_some()).collect()
    }

    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// `(section, passed, total)` per SPEC.md section, in first-seen order.
    pub fn sections(&self) -> Vec<(&'static str, usize, usize)> {
        let mut out: Vec<(&'static str, usize, usize)> = Vec::new();
        for c in &self.cases {
            let i = match out.iter().position(|(s, _, _)| *s == c.section) {
                Some(i) => i,
                None => {
                    out.push((c.section, 0, 0));
                    out.len() - 1
                }
            };
            out[i].2 += 1;
            if c.failure.is_none() {
                out[i].1 += 1;
            }
        }
        out
    }

    /// Panics with every failure listed, for use in `#[tokio::test]`s.
    #[track_caller]
    pub fn assert_passed(&self) {
        if !self.passed() {
            panic!("{self}");
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failed = self.failures().len();
        writeln!(
            f,
            "conformance on {}: {} passed, {} failed",
            self.backend,
            self.cases.len() - failed,
            failed
        )?;
        for (section, passed, total) in self.sections() {
            writeln!(f, "  {section:<14} {passed}/{total}")?;
        }
        for c in self.failures() {
            writeln!(
                f,
                "  FAILED {}::{}: {}",
                c.section,
                c.name,
                c.failure.as_deref().unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

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
}

impl Default for RunOptions {
    fn default() -> Self {
        let filter = std::env::var("CHRONON_CASES")
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
        }
    }
}

/// Runs every case of the suite against `factory`'s backend and reports each one.
///
/// The usual call in an adapter's `tests/conformance.rs`:
/// `conformance::run_all(factory).await.assert_passed()`.
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

    let shared = match factory.open().await {
        Ok(store) => Some(store),
        Err(e) => {
            let failure = format!("could not open a client: {e:#}");
            let cases = cases
                .iter()
                .map(|(_, c)| CaseResult {
                    section: c.section,
                    name: c.name,
                    failure: Some(failure.clone()),
                    millis: 0,
                })
                .collect();
            return Report { backend, cases };
        }
    };

    let concurrent: Vec<_> = cases
        .iter()
        .filter(|(_, c)| !c.exclusive)
        .copied()
        .collect();
    let outcomes: Vec<(usize, CaseResult)> = futures::stream::iter(concurrent)
        .map(|(i, case)| {
            let factory = factory.clone();
            let shared = shared.clone();
            let timeout = options.case_timeout;
            async move { (i, run_case(case, shared, factory, timeout).await) }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    results.extend(outcomes);
    drop(shared);

    for (i, case) in cases.iter().filter(|(_, c)| c.exclusive).copied() {
        results.push((
            i,
            run_case(case, None, factory.clone(), options.case_timeout).await,
        ));
    }
    results.sort_by_key(|(i, _)| *i);
    Report {
        backend,
        cases: results.into_iter().map(|(_, r)| r).collect(),
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
    };
    let started = Instant::now();
    let outcome = std::panic::AssertUnwindSafe(tokio::time::timeout(timeout, (case.run)(&cx)))
        .catch_unwind()
        .await;
    let failure = match outcome {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some(format!("{e:#}")),
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
            None => factory.open().await.ok(),
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
    CaseResult {
        section: case.section,
        name: case.name,
        failure,
        millis,
    }
}
