//! Fault scenarios against a real server run as a [`ChildServer`], the same for every
//! adapter:
//!
//! - [`kill_mid_stream`]: SIGKILL the server (by its pid) while one client streams `multi_put`
//!   calls, restart it on the same durable data directory and port, and check that every write
//!   that returned `Ok` is readable, that the failures were retryable errors within the timeout,
//!   and that the *same* client works again without being rebuilt (contract, "multi_put": "A
//!   write that returned `Ok` is not lost").
//! - [`pause_times_out`]: SIGSTOP the server: every call returns `Timeout` within the configured
//!   timeout plus a small margin (contract, "Errors": "no call hangs"), and the client recovers after
//!   SIGCONT.
//! - [`refused_is_unavailable`]: nothing listens on the port: `Unavailable`, naming the address.
//!
//! The server must be durable for the kill scenario (Redis `--appendonly yes --appendfsync
//! always`, DynamoDB Local `-dbPath`, SecantusDB with a storage directory; see the launchers'
//! `child`/`durable_child` functions). The scenarios signal the server from the test's own thread
//! with [`tokio::task::block_in_place`], so they need a multi-threaded runtime
//! (`#[tokio::test(flavor = "multi_thread")]`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use bytes::Bytes;
use chronon_core::{DatasetProps, GetRequest, KvError, KvStore, PutRequest};
use futures::future::BoxFuture;

use crate::launch::ChildServer;

/// How a backend's client is expected to behave under faults.
#[derive(Debug, Clone)]
pub struct FaultOptions {
    /// The client's configured per-call timeout.
    pub timeout: Duration,
    /// Slack on top of `timeout` before a call counts as hung (scheduling on a busy machine).
    pub margin: Duration,
    /// What error messages must name: the server's address, such as `127.0.0.1:6379`.
    pub address: String,
    /// Puts per `multi_put` call in the kill scenario.
    pub batch: usize,
    /// How long the stream runs before the kill.
    pub before_kill: Duration,
    /// How long the server stays dead.
    pub outage: Duration,
    /// Longest the same client may take to write successfully again after the restart.
    pub recovery: Duration,
}

impl FaultOptions {
    /// Defaults for a client with `timeout`, on a server at `address`: margin 1 s, batches of 100,
    /// 1 s of stream before the kill, a 1.5 s outage, 30 s to recover.
    pub fn new(timeout: Duration, address: impl Into<String>) -> Self {
        FaultOptions {
            timeout,
            margin: Duration::from_millis(1000),
            address: address.into(),
            batch: 100,
            before_kill: Duration::from_millis(1000),
            outage: Duration::from_millis(1500),
            recovery: Duration::from_secs(30),
        }
    }

    /// The longest any call may take.
    pub fn limit(&self) -> Duration {
        self.timeout + self.margin
    }
}

/// Error kinds seen, with counts.
pub type KindCounts = BTreeMap<&'static str, usize>;

/// What [`kill_mid_stream`] measured.
#[derive(Debug, Clone, Default)]
pub struct KillReport {
    /// Puts that returned `Ok` (all of them were read back).
    pub acknowledged: usize,
    /// Puts that returned an error.
    pub failed: usize,
    /// Of the acknowledged ones, how many after the restart (by the same client).
    pub ok_after_restart: usize,
    /// Error kinds of the failed puts.
    pub kinds: KindCounts,
    /// One error message, as an example.
    pub example_error: Option<String>,
    /// The slowest `multi_put` call.
    pub slowest_call: Duration,
    /// How long the restarted server took to listen again.
    pub restart_took: Duration,
    /// From the restart until the same client's first successful put.
    pub recovered_after: Duration,
    /// Acknowledged writes missing or wrong after the restart (must be 0).
    pub lost: usize,
}

impl std::fmt::Display for KillReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kill -9 mid-stream: {} puts acknowledged ({} after restart), {} failed {:?}, {} lost; \
             slowest call {} ms; restart {} ms; same client writing again {} ms after restart",
            self.acknowledged,
            self.ok_after_restart,
            self.failed,
            self.kinds,
            self.lost,
            self.slowest_call.as_millis(),
            self.restart_took.as_millis(),
            self.recovered_after.as_millis()
        )?;
        if let Some(e) = &self.example_error {
            write!(f, "; e.g. {e}")?;
        }
        Ok(())
    }
}

/// SIGKILLs `server` in the middle of a stream of `multi_put` calls through `store`, restarts it
/// on the same data directory and port, and checks that nothing acknowledged was lost and that
/// `store` (the same client) works again. See the module docs.
pub async fn kill_mid_stream(
    store: Arc<dyn KvStore>,
    server: &mut ChildServer,
    opts: &FaultOptions,
) -> Result<KillReport> {
    let ds = format!("fault_kill_{:08x}_STREAMING", rand::random::<u32>());
    create_for_setup(&store, &ds, &DatasetProps::time_series()).await?;

    // 0: server up, 1: killed, 2: restarted.
    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let acked_after = Arc::new(AtomicUsize::new(0));
    struct Stream {
        acknowledged: Vec<Bytes>,
        failed: Vec<(KvError, Duration)>,
        slowest: Duration,
    }
    let writer = {
        let (store, ds, phase, stop) = (store.clone(), ds.clone(), phase.clone(), stop.clone());
        let (acked, acked_after, batch) = (acked.clone(), acked_after.clone(), opts.batch);
        tokio::spawn(async move {
            let mut s = Stream {
                acknowledged: Vec::new(),
                failed: Vec::new(),
                slowest: Duration::ZERO,
            };
            let mut round = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let keys: Vec<Bytes> = (0..batch)
                    .map(|j| Bytes::from(format!("r{round}_k{j}")))
                    .collect();
                let puts = keys
                    .iter()
                    .map(|k| PutRequest::new(&ds, k.clone(), value_of(k), Some(ts_of(round))))
                    .collect();
                let started = Instant::now();
                let results = store.multi_put(puts).await;
                let took = started.elapsed();
                s.slowest = s.slowest.max(took);
                let restarted = phase.load(Ordering::SeqCst) == 2;
                for (k, r) in keys.into_iter().zip(results) {
                    match r {
                        Ok(()) => {
                            s.acknowledged.push(k);
                            acked.fetch_add(1, Ordering::SeqCst);
                            if restarted {
                                acked_after.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(e) => s.failed.push((e, took)),
                    }
                }
                round += 1;
                if took < Duration::from_millis(5) {
                    // Failing fast: do not spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            s
        })
    };

    let mut report = KillReport::default();
    // Let the stream get going (a first acknowledged batch), then kill it mid-stream.
    let deadline = Instant::now() + opts.recovery;
    while acked.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(opts.before_kill).await;
    let before_kill = acked.load(Ordering::SeqCst);
    tokio::task::block_in_place(|| server.kill()).context("SIGKILL the server")?;
    phase.store(1, Ordering::SeqCst);
    tokio::time::sleep(opts.outage).await;
    let restart = Instant::now();
    let restarted = tokio::task::block_in_place(|| server.restart());
    report.restart_took = restart.elapsed();
    phase.store(2, Ordering::SeqCst);
    if let Err(e) = restarted {
        stop.store(true, Ordering::SeqCst);
        let _ = writer.await;
        return Err(e.context("restart the server on the same data"));
    }
    let deadline = Instant::now() + opts.recovery;
    while acked_after.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report.recovered_after = restart.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let s = writer.await.context("the writer task panicked")?;

    report.acknowledged = s.acknowledged.len();
    report.failed = s.failed.len();
    report.ok_after_restart = acked_after.load(Ordering::SeqCst);
    report.slowest_call = s.slowest;
    for (e, _) in &s.failed {
        *report.kinds.entry(e.kind()).or_default() += 1;
    }
    report.example_error = s.failed.first().map(|(e, _)| e.to_string());

    // Every acknowledged write is there, read through the same client.
    for chunk in s.acknowledged.chunks(500) {
        let got = read_with_retry(&store, &ds, chunk, opts).await?;
        for (k, r) in chunk.iter().zip(got) {
            let ok = match &r.values {
                Ok(v) => v.len() == 1 && v[0].bytes == value_of(k),
                Err(_) => false,
            };
            if !ok {
                report.lost += 1;
            }
        }
    }
    let _ = store.drop_dataset(&ds).await;

    ensure!(before_kill > 0, "no put was acknowledged before the kill");
    ensure!(
        report.lost == 0,
        "{} of {} acknowledged writes lost after kill -9 and restart ({report})",
        report.lost,
        report.acknowledged
    );
    ensure!(
        report.failed > 0,
        "no put failed while the server was dead ({report})"
    );
    ensure!(
        report.ok_after_restart > 0,
        "the same client wrote nothing successfully within {:?} of the restart ({report})",
        opts.recovery
    );
    ensure!(
        report.slowest_call <= opts.limit(),
        "a multi_put call took {:?}, over the {:?} timeout + {:?} margin ({report})",
        report.slowest_call,
        opts.timeout,
        opts.margin
    );
    for (e, _) in &s.failed {
        check_outage_error(e, opts).context("a put failed during the outage")?;
    }
    Ok(report)
}

/// Creates a scenario's dataset, retrying retryable errors: setup is not what is under test, and
/// a freshly started server on a busy machine (a JVM warming up) can time out its first calls.
async fn create_for_setup(store: &Arc<dyn KvStore>, ds: &str, props: &DatasetProps) -> Result<()> {
    let mut last = None;
    for _ in 0..5 {
        match store.create(ds, props).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_retryable() => last = Some(e),
            Err(e) => return Err(e).with_context(|| format!("create {ds}")),
        }
    }
    Err(anyhow::anyhow!("create {ds} kept failing: {last:?}"))
}

fn value_of(key: &Bytes) -> Bytes {
    Bytes::from([key.as_ref(), b"=v"].concat())
}

fn ts_of(round: u64) -> i64 {
    1_700_000_000_000 + round as i64
}

/// Reads `keys` (latest version), retrying a request that failed with a retryable error a few
/// times: the reads happen right after a restart and must count losses, not hiccups.
async fn read_with_retry(
    store: &Arc<dyn KvStore>,
    ds: &str,
    keys: &[Bytes],
    opts: &FaultOptions,
) -> Result<Vec<chronon_core::GetResponse>> {
    let mut last = None;
    for _ in 0..5 {
        let got = store
            .multi_get(
                keys.iter()
                    .map(|k| GetRequest::latest(ds, k.clone()))
                    .collect(),
            )
            .await;
        match got.iter().find_map(|r| r.values.as_ref().err()) {
            Some(e) if e.is_retryable() => {
                last = Some(e.to_string());
                tokio::time::sleep(opts.margin).await;
            }
            _ => return Ok(got),
        }
    }
    bail!("reading acknowledged writes back kept failing: {last:?}")
}

/// An outage error must be retryable (`Unavailable`, `Timeout`, or a retryable `Backend`), and an
/// `Unavailable` must name the address.
fn check_outage_error(e: &KvError, opts: &FaultOptions) -> Result<()> {
    ensure!(e.is_retryable(), "{} error is not retryable: {e}", e.kind());
    if let KvError::Unavailable { .. } = e {
        ensure!(
            e.to_string().contains(&opts.address),
            "Unavailable error does not name {}: {e}",
            opts.address
        );
    }
    Ok(())
}

/// What [`pause_times_out`] measured.
#[derive(Debug, Clone, Default)]
pub struct PauseReport {
    /// `(operation, error kind or "Ok", how long it took)` for each call made during the pause.
    pub calls: Vec<(&'static str, String, Duration)>,
    /// From SIGCONT until the same client read the value again.
    pub recovered_after: Duration,
}

impl std::fmt::Display for PauseReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SIGSTOP:")?;
        for (op, kind, took) in &self.calls {
            write!(f, " {op} {kind} in {} ms;", took.as_millis())?;
        }
        write!(
            f,
            " after SIGCONT the same client read again in {} ms",
            self.recovered_after.as_millis()
        )
    }
}

type Call<'a> = BoxFuture<'a, Result<(), KvError>>;

/// SIGSTOPs `server`, checks that every kind of call through `store` returns `Timeout` within
/// the timeout plus the margin, SIGCONTs it and checks the same client answers again.
pub async fn pause_times_out(
    store: Arc<dyn KvStore>,
    server: &mut ChildServer,
    opts: &FaultOptions,
) -> Result<PauseReport> {
    let tag = rand::random::<u32>();
    let ds = format!("fault_pause_{tag:08x}_BATCH");
    let other = format!("fault_pause_{tag:08x}_other_BATCH");
    create_for_setup(&store, &ds, &DatasetProps::snapshot()).await?;
    let mut first = Err(KvError::not_found(&ds));
    for _ in 0..5 {
        first = store
            .multi_put(vec![PutRequest::new(&ds, "k", "before", Some(1))])
            .await
            .remove(0);
        if !matches!(&first, Err(e) if e.is_retryable()) {
            break;
        }
    }
    first.context("put before the pause")?;

    tokio::task::block_in_place(|| server.pause()).context("SIGSTOP the server")?;
    let s = &store;
    let (ds_r, other_r) = (ds.as_str(), other.as_str());
    let calls: Vec<(&'static str, Call<'_>)> = vec![
        (
            "multi_get",
            Box::pin(async move {
                let got = s
                    .multi_get(vec![
                        GetRequest::latest(ds_r, "k"),
                        GetRequest::latest(ds_r, "missing"),
                    ])
                    .await;
                got.into_iter().try_for_each(|r| r.values.map(|_| ()))
            }),
        ),
        (
            "range_get",
            Box::pin(async move {
                let got = s
                    .multi_get(vec![GetRequest::range(ds_r, "k", 0, None)])
                    .await;
                got.into_iter().try_for_each(|r| r.values.map(|_| ()))
            }),
        ),
        (
            "multi_put",
            Box::pin(async move {
                let got = s
                    .multi_put(vec![
                        PutRequest::new(ds_r, "k", "during", Some(2)),
                        PutRequest::new(ds_r, "k2", "during", Some(2)),
                    ])
                    .await;
                got.into_iter().collect::<Result<Vec<()>, _>>().map(|_| ())
            }),
        ),
        (
            "list",
            Box::pin(async move { s.list(ds_r, 10, None).await.map(|_| ()) }),
        ),
        (
            "create",
            Box::pin(async move { s.create(other_r, &DatasetProps::snapshot()).await }),
        ),
    ];
    // All at once: the pause lasts about one timeout, and the pool is exercised too.
    let hard_limit = opts.limit() * 3;
    let results = futures::future::join_all(calls.into_iter().map(|(op, call)| async move {
        let started = Instant::now();
        let r = tokio::time::timeout(hard_limit, call).await;
        (op, r, started.elapsed())
    }))
    .await;
    tokio::task::block_in_place(|| server.resume()).context("SIGCONT the server")?;

    let mut report = PauseReport::default();
    let mut problems = Vec::new();
    for (op, r, took) in results {
        let kind = match &r {
            Err(_) => "hung".to_string(),
            Ok(Ok(())) => "Ok".to_string(),
            Ok(Err(e)) => e.kind().to_string(),
        };
        match &r {
            Ok(Err(KvError::Timeout { .. })) => {}
            Ok(Err(e)) => problems.push(format!("{op} returned {} ({e}), want Timeout", e.kind())),
            Ok(Ok(())) => problems.push(format!("{op} returned Ok from a paused server")),
            Err(_) => problems.push(format!("{op} hung for {hard_limit:?}")),
        }
        if took > opts.limit() {
            problems.push(format!(
                "{op} took {took:?}, over the {:?} timeout + {:?} margin",
                opts.timeout, opts.margin
            ));
        }
        report.calls.push((op, kind, took));
    }

    // After SIGCONT the same client answers again (the paused put may or may not have landed).
    let resumed = Instant::now();
    let deadline = resumed + opts.recovery;
    loop {
        let got = store
            .multi_get(vec![GetRequest::latest(&ds, "k")])
            .await
            .into_iter()
            .next()
            .map(|r| r.values);
        match got {
            Some(Ok(v)) if v.len() == 1 && (v[0].bytes == "before" || v[0].bytes == "during") => {
                break
            }
            other if Instant::now() > deadline => {
                problems.push(format!(
                    "the same client did not read again within {:?} of SIGCONT: {other:?}",
                    opts.recovery
                ));
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    report.recovered_after = resumed.elapsed();
    if problems.is_empty() {
        // A fresh key: a put that timed out during the pause may still land later, at any time
        // (its outcome is unknown; DynamoDB Local applied one after later writes), so `k` is not
        // a fair check of the write path.
        let after = store
            .multi_put(vec![PutRequest::new(&ds, "k3", "after", Some(3))])
            .await;
        for r in after {
            if let Err(e) = r {
                problems.push(format!("put after resume failed: {e}"));
            }
        }
        let got = store.multi_get(vec![GetRequest::latest(&ds, "k3")]).await;
        let v = got.into_iter().next().map(|r| r.values);
        if !matches!(&v, Some(Ok(v)) if v.len() == 1 && v[0].bytes == "after") {
            problems.push(format!("read after resume: {v:?}"));
        }
    }
    let _ = store.drop_dataset(&ds).await;
    let _ = store.drop_dataset(&other).await;
    if !problems.is_empty() {
        bail!("{} ({report})", problems.join("; "));
    }
    Ok(report)
}

/// What [`refused_is_unavailable`] measured.
#[derive(Debug, Clone, Default)]
pub struct RefusedReport {
    /// `(operation, error kind, how long it took, message)`.
    pub calls: Vec<(&'static str, String, Duration, String)>,
}

impl std::fmt::Display for RefusedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused:")?;
        for (op, kind, took, _) in &self.calls {
            write!(f, " {op} {kind} in {} ms;", took.as_millis())?;
        }
        if let Some((_, _, _, msg)) = self.calls.first() {
            write!(f, " e.g. {msg}")?;
        }
        Ok(())
    }
}

/// Opens a client with `open` on an address where nothing listens (`opts.address`) and checks
/// that opening, or else every call, is `Unavailable` naming the address, within the timeout
/// plus the margin.
pub async fn refused_is_unavailable<F, Fut>(open: F, opts: &FaultOptions) -> Result<RefusedReport>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Arc<dyn KvStore>, KvError>>,
{
    let mut report = RefusedReport::default();
    let hard_limit = opts.limit() * 3;
    let started = Instant::now();
    let opened = tokio::time::timeout(hard_limit, open()).await;
    let took = started.elapsed();
    let store = match opened {
        Err(_) => bail!("opening a client on a dead port hung for {hard_limit:?}"),
        Ok(Err(e)) => {
            report
                .calls
                .push(("open", e.kind().to_string(), took, e.to_string()));
            check_refused("open", &e, took, opts)?;
            return Ok(report);
        }
        Ok(Ok(store)) => store,
    };
    let ds = "fault_refused_BATCH";
    let s = &store;
    let calls: Vec<(&'static str, Call<'_>)> = vec![
        (
            "create",
            Box::pin(async move { s.create(ds, &DatasetProps::snapshot()).await }),
        ),
        (
            "multi_get",
            Box::pin(async move {
                s.multi_get(vec![GetRequest::latest(ds, "k")])
                    .await
                    .into_iter()
                    .try_for_each(|r| r.values.map(|_| ()))
            }),
        ),
        (
            "multi_put",
            Box::pin(async move {
                s.multi_put(vec![PutRequest::new(ds, "k", "v", Some(1))])
                    .await
                    .into_iter()
                    .collect::<Result<Vec<()>, _>>()
                    .map(|_| ())
            }),
        ),
    ];
    for (op, call) in calls {
        let started = Instant::now();
        let r = tokio::time::timeout(hard_limit, call).await;
        let took = started.elapsed();
        match r {
            Err(_) => bail!("{op} on a dead port hung for {hard_limit:?}"),
            Ok(Ok(())) => bail!("{op} on a dead port returned Ok"),
            Ok(Err(e)) => {
                report
                    .calls
                    .push((op, e.kind().to_string(), took, e.to_string()));
                check_refused(op, &e, took, opts)?;
            }
        }
    }
    Ok(report)
}

fn check_refused(op: &str, e: &KvError, took: Duration, opts: &FaultOptions) -> Result<()> {
    ensure!(
        matches!(e, KvError::Unavailable { .. }),
        "{op} on a dead port returned {} ({e}), want Unavailable",
        e.kind()
    );
    ensure!(e.is_retryable(), "{op}: Unavailable is not retryable");
    ensure!(
        e.to_string().contains(&opts.address),
        "{op}: the error does not name {}: {e}",
        opts.address
    );
    ensure!(
        took <= opts.limit(),
        "{op} took {took:?}, over the {:?} timeout + {:?} margin",
        opts.timeout,
        opts.margin
    );
    Ok(())
}
