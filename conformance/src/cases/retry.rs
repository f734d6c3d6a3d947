//! Slow is not wrong: how load and persistence cases call the store.
//!
//! A real client retries a call that failed with a retryable error (`Timeout`, `Unavailable`)
//! after a backoff, and a client whose big batch keeps timing out sends it in smaller pieces. The
//! cases that move thousands of rows do the same through these helpers, so an emulator that writes
//! 1,700 documents/s, or a machine busy with a build, makes a case slower (and the report counts
//! the retries) but not red. Only a wrong answer, a lost acknowledged write or a non-retryable
//! error fails a case; running out of [`RETRY_FOR`] fails it as [`TooSlow`], which the report
//! keeps apart from contract failures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use chronon_core::{
    BulkPutOptions, BulkSource, GetRequest, GetResponse, KvError, KvStore, PutRequest,
};

use crate::runner::Ctx;

/// How long one helper call keeps retrying before it gives up as [`TooSlow`].
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(300);

/// The smallest batch a retry splits a timed-out batch into.
const MIN_SPLIT: usize = 10;

/// Each retry round sends the failed requests in batches this many times smaller: a server that
/// timed out on a batch is usually still working through it, so the next batches must be much
/// smaller, not a little.
const SPLIT_BY: usize = 4;

/// A case failed only because calls kept failing with a retryable error for 300 s (the retry
/// budget of the load cases).
#[derive(Debug)]
pub struct TooSlow(pub String);

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "too slow: {}", self.0)
    }
}

impl std::error::Error for TooSlow {}

/// Whether a client would retry after `e` (`Timeout`, `Unavailable`, throttling).
pub(crate) fn retryable(e: &KvError) -> bool {
    e.is_retryable()
}

/// Backoff before retry round `round` (1-based): 250 ms doubling to at most 10 s (Chronon's
/// default per-call timeout, about how long a server may still be busy with an abandoned call).
fn backoff(round: u32) -> Duration {
    Duration::from_millis(125u64.saturating_mul(1 << round.min(7))).min(Duration::from_secs(10))
}

/// Writes every request, retrying the ones that failed with a retryable error (in batches
/// [`SPLIT_BY`] times smaller at each round, down to [`MIN_SPLIT`]). Fails on the first non-retryable error, naming it.
pub(crate) async fn put_all(
    cx: &Ctx,
    store: &Arc<dyn KvStore>,
    requests: Vec<PutRequest>,
) -> Result<()> {
    let started = Instant::now();
    let mut batch = requests.len().max(1);
    let mut pending = requests;
    let mut round = 0u32;
    loop {
        let mut failed = Vec::new();
        let mut last_error = None;
        for chunk in chunks(pending, batch) {
            let results = store.multi_put(chunk.clone()).await;
            if results.len() != chunk.len() {
                return Err(anyhow!(
                    "multi_put of {} requests returned {} results",
                    chunk.len(),
                    results.len()
                ));
            }
            for (request, result) in chunk.into_iter().zip(results) {
                match result {
                    Ok(()) => {}
                    Err(e) if retryable(&e) => {
                        failed.push(request);
                        last_error = Some(e);
                    }
                    Err(e) => {
                        return Err(anyhow!(
                            "put of key {} in {}: {} error: {e}",
                            chronon_core::key_preview(&request.key),
                            request.dataset,
                            e.kind()
                        ))
                    }
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        round += 1;
        cx.count_retries(failed.len() as u64);
        give_up_after(started, failed.len(), "multi_put", last_error)?;
        tokio::time::sleep(backoff(round)).await;
        batch = (batch / SPLIT_BY).max(MIN_SPLIT).min(failed.len());
        pending = failed;
    }
}

/// Reads every request, answering in request order; requests whose answer was a retryable
/// error are asked again (in batches [`SPLIT_BY`] times smaller at each round). Other errors are left in the
/// responses for the case to judge.
pub(crate) async fn get_all(
    cx: &Ctx,
    store: &Arc<dyn KvStore>,
    requests: Vec<GetRequest>,
) -> Result<Vec<GetResponse>> {
    let started = Instant::now();
    let n = requests.len();
    let mut answers: Vec<Option<GetResponse>> = (0..n).map(|_| None).collect();
    let mut pending: Vec<(usize, GetRequest)> = requests.into_iter().enumerate().collect();
    let mut batch = n.max(1);
    let mut round = 0u32;
    loop {
        let mut failed = Vec::new();
        let mut last_error = None;
        for chunk in chunks(pending, batch) {
            let (slots, asks): (Vec<usize>, Vec<GetRequest>) = chunk.into_iter().unzip();
            let responses = store.multi_get(asks.clone()).await;
            if responses.len() != asks.len() {
                return Err(anyhow!(
                    "multi_get of {} requests returned {} responses",
                    asks.len(),
                    responses.len()
                ));
            }
            for ((slot, ask), response) in slots.into_iter().zip(asks).zip(responses) {
                match &response.values {
                    Err(e) if retryable(e) => {
                        last_error = Some(e.clone());
                        failed.push((slot, ask));
                    }
                    _ => answers[slot] = Some(response),
                }
            }
        }
        if failed.is_empty() {
            return Ok(answers.into_iter().flatten().collect());
        }
        round += 1;
        cx.count_retries(failed.len() as u64);
        give_up_after(started, failed.len(), "multi_get", last_error)?;
        tokio::time::sleep(backoff(round)).await;
        batch = (batch / SPLIT_BY).max(MIN_SPLIT).min(failed.len());
        pending = failed;
    }
}

/// Creates `dataset` on `store`, again after a retryable error (`create` is idempotent).
pub(crate) async fn create(
    cx: &Ctx,
    store: &Arc<dyn KvStore>,
    dataset: &str,
    props: &chronon_core::DatasetProps,
) -> Result<()> {
    let started = Instant::now();
    let mut round = 0u32;
    loop {
        match store.create(dataset, props).await {
            Ok(()) => return Ok(()),
            Err(e) if retryable(&e) => {
                round += 1;
                cx.count_retries(1);
                give_up_after(started, 1, "create", Some(e))?;
                tokio::time::sleep(backoff(round)).await;
            }
            Err(e) => return Err(anyhow::Error::new(e)),
        }
    }
}

/// Loads rows `0..n` (made by `rows(range)`) with `bulk_put`: in one call first; if that fails
/// with a retryable error, again in slices of a quarter of the rows, each slice retried and split
/// by four again while it keeps failing (a bulk load is idempotent, so rows written by a failed
/// attempt are simply written again). `progress` sees the rows acknowledged over all calls.
/// Returns the rows the calls reported.
pub(crate) async fn bulk_put_all(
    cx: &Ctx,
    store: &Arc<dyn KvStore>,
    dataset: &str,
    n: u64,
    rows: impl Fn(std::ops::Range<u64>) -> BulkSource<'static>,
    sorted: bool,
    progress: Option<chronon_core::ProgressFn>,
) -> Result<u64> {
    let started = Instant::now();
    let mut pending: Vec<std::ops::Range<u64>> = Vec::new();
    pending.push(0..n);
    let mut reported = 0u64;
    let mut round = 0u32;
    while let Some(range) = pending.first().cloned() {
        let offset = range.start;
        let options = BulkPutOptions {
            progress: progress.clone().map(|p| {
                let p: chronon_core::ProgressFn = Arc::new(move |done| p(offset + done));
                p
            }),
            sorted,
        };
        match store.bulk_put(dataset, rows(range.clone()), options).await {
            Ok(report) => {
                reported += report.rows;
                pending.remove(0);
            }
            Err(e) if retryable(&e) => {
                round += 1;
                cx.count_retries(1);
                give_up_after(
                    started,
                    (range.end - range.start) as usize,
                    "bulk_put row",
                    Some(e),
                )?;
                tokio::time::sleep(backoff(round)).await;
                let len = range.end - range.start;
                if len > 1_000 {
                    let step = len.div_ceil(SPLIT_BY as u64);
                    let slices: Vec<_> = (range.start..range.end)
                        .step_by(step as usize)
                        .map(|s| s..(s + step).min(range.end))
                        .collect();
                    pending.splice(0..1, slices);
                }
            }
            Err(e) => return Err(anyhow!("bulk_put into {dataset}: {} error: {e}", e.kind())),
        }
    }
    Ok(reported)
}

/// Every `(key, value)` of `dataset` through `list` pages of `limit`, retrying a page that failed
/// with a retryable error.
pub(crate) async fn list_all(
    cx: &Ctx,
    store: &Arc<dyn KvStore>,
    dataset: &str,
    limit: usize,
) -> Result<Vec<(bytes::Bytes, chronon_core::TimedValue)>> {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut cursor = None;
    let mut round = 0u32;
    loop {
        match store.list(dataset, limit, cursor.clone()).await {
            Ok(page) => {
                out.extend(page.entries);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => return Ok(out),
                }
            }
            Err(e) if retryable(&e) => {
                round += 1;
                cx.count_retries(1);
                give_up_after(started, 1, "list", Some(e))?;
                tokio::time::sleep(backoff(round)).await;
            }
            Err(e) => return Err(anyhow!("list of {dataset}: {} error: {e}", e.kind())),
        }
    }
}

fn give_up_after(started: Instant, failed: usize, call: &str, last: Option<KvError>) -> Result<()> {
    if started.elapsed() < RETRY_FOR {
        return Ok(());
    }
    let last = last.map(|e| e.to_string()).unwrap_or_default();
    Err(anyhow::Error::new(TooSlow(format!(
        "{failed} {call} requests still failing after retrying for {} s (last: {last})",
        RETRY_FOR.as_secs()
    ))))
}

fn chunks<T: Clone>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    items.chunks(size.max(1)).map(<[T]>::to_vec).collect()
}
