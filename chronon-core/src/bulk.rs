//! The bulk-load loop, written once: rows pulled from the source in chunks, a few chunks written
//! at a time by the adapter's own write, progress reported after each acknowledged chunk, the
//! first error ends the load. Memory is bounded by the chunks in flight.
//!
//! An adapter's `bulk_put` resolves what it needs once (the dataset's properties, a table
//! handle) and hands [`bulk_put_chunked`] a closure writing one chunk; a store without a faster
//! path keeps the trait's default, [`bulk_put_via_multi_put`].

mod in_flight;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::TryStreamExt;

use crate::error::KvError;
use crate::types::{BulkPutOptions, BulkPutReport, BulkRow, BulkSource, PutRequest};
use crate::validate;
use crate::KvStore;
use in_flight::InFlightLimit;

/// Chunks written at once by [`bulk_put_chunked`] (and by the default `bulk_put`).
pub const DEFAULT_BULK_CONCURRENCY: usize = 4;

/// Most rows per chunk of [`bulk_put_via_multi_put`]: a store without a batch limit
/// (`put_batch_size` of `usize::MAX`) must not make one giant allocation.
pub const MAX_MULTI_PUT_CHUNK_ROWS: usize = 10_000;

/// Loads `source` into `dataset` through `write_chunk`, [`DEFAULT_BULK_CONCURRENCY`] chunks of
/// `chunk_rows` rows at a time (see [`bulk_put_chunked_concurrently`]).
pub async fn bulk_put_chunked<F, Fut>(
    dataset: &str,
    source: BulkSource<'_>,
    options: &BulkPutOptions,
    chunk_rows: usize,
    write_chunk: F,
) -> Result<BulkPutReport, KvError>
where
    F: Fn(Vec<BulkRow>) -> Fut,
    Fut: Future<Output = Result<(), KvError>>,
{
    bulk_put_chunked_concurrently(
        dataset,
        source,
        options,
        chunk_rows,
        DEFAULT_BULK_CONCURRENCY,
        write_chunk,
    )
    .await
}

/// Loads `source` into `dataset`: checks the dataset name, pulls rows in chunks of `chunk_rows`
/// (the last one partial), writes up to `concurrency` chunks at once through `write_chunk`
/// (chunks may finish in any order), calls the options' progress callback with the rows
/// acknowledged so far after each chunk, and stops at the first error, from the source or from
/// a write, returning it. A chunk that fails with a retryable error is written again, in halves
/// if it keeps failing (see [`CHUNK_ATTEMPTS`], [`MIN_SPLIT_ROWS`]), and each such failure
/// halves the writes in flight (growing back by one after as many successes in a row as are
/// allowed): a server that queues writes behind each other gets fewer at once instead of
/// timing out on all of them. The report counts the rows of acknowledged chunks.
///
/// The returned future is `Send` when `write_chunk` and its futures are, as `bulk_put` in an
/// `async_trait` needs. `options.sorted` is the adapter's to use; nothing here checks it.
pub async fn bulk_put_chunked_concurrently<F, Fut>(
    dataset: &str,
    source: BulkSource<'_>,
    options: &BulkPutOptions,
    chunk_rows: usize,
    concurrency: usize,
    write_chunk: F,
) -> Result<BulkPutReport, KvError>
where
    F: Fn(Vec<BulkRow>) -> Fut,
    Fut: Future<Output = Result<(), KvError>>,
{
    validate::dataset_name(dataset)?;
    let written = AtomicU64::new(0);
    let written = &written;
    let write_chunk = &write_chunk;
    let limit = InFlightLimit::new(concurrency);
    let limit = &limit;
    let progress = options.progress.as_ref();
    source
        .try_chunks(chunk_rows.max(1))
        .map_err(|e| e.1)
        .map_ok(|rows| {
            let n = rows.len() as u64;
            async move {
                write_with_retries(write_chunk, limit, rows).await?;
                // Chunks are polled by one task, so totals reach the callback in rising order.
                let total = written.fetch_add(n, Ordering::Relaxed) + n;
                if let Some(p) = progress {
                    p(total);
                }
                Ok::<_, KvError>(())
            }
        })
        .try_buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await?;
    Ok(BulkPutReport {
        rows: written.load(Ordering::Relaxed),
    })
}

/// How many times a chunk of at most [`MIN_SPLIT_ROWS`] rows is written before a retryable error
/// fails the load.
pub const CHUNK_ATTEMPTS: u32 = 5;

/// A chunk that keeps failing with a retryable error is split in halves down to this many rows.
pub const MIN_SPLIT_ROWS: usize = 100;

/// Half the first backoff between writes of a chunk, in ms (the unit tests shrink it).
#[cfg(not(test))]
const CHUNK_BACKOFF_MS: u64 = 250;
#[cfg(test)]
const CHUNK_BACKOFF_MS: u64 = 1;

/// Writes one chunk; after a retryable error (`Timeout`, `Unavailable`, throttling) it backs off
/// and writes it again, and a chunk that fails twice is written as two halves, one after the
/// other, each the same way, down to [`MIN_SPLIT_ROWS`] rows (then up to [`CHUNK_ATTEMPTS`]
/// tries). A load of millions of rows should not fail because a busy server could not take a
/// chunk of the configured size in time: the load slows down to what the server can do.
/// Rewriting rows is safe (puts of the same key and ts replace). Each write holds a slot of
/// `limit` (not the backoffs between them) and tells it whether the server kept up.
async fn write_with_retries<F, Fut>(
    write_chunk: &F,
    limit: &InFlightLimit,
    rows: Vec<BulkRow>,
) -> Result<(), KvError>
where
    F: Fn(Vec<BulkRow>) -> Fut,
    Fut: Future<Output = Result<(), KvError>>,
{
    // Chunks still to write, last first; halves are pushed back in order.
    let mut stack = vec![rows];
    while let Some(rows) = stack.pop() {
        let splittable = rows.len() > MIN_SPLIT_ROWS;
        let attempts = if splittable { 2 } else { CHUNK_ATTEMPTS };
        let mut attempt = 1;
        loop {
            let slot = limit.start().await;
            let written = write_chunk(rows.clone()).await;
            limit.finish(slot, matches!(&written, Err(e) if e.is_retryable()));
            match written {
                Ok(()) => break,
                Err(e) if e.is_retryable() && attempt < attempts => {
                    tracing::debug!(attempt, rows = rows.len(), "bulk chunk failed, again: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(
                        CHUNK_BACKOFF_MS << attempt,
                    ))
                    .await;
                    attempt += 1;
                }
                Err(e) if e.is_retryable() && splittable => {
                    tracing::debug!(rows = rows.len(), "bulk chunk keeps failing, halving: {e}");
                    let mut first = rows;
                    let second = first.split_off(first.len() / 2);
                    stack.push(second);
                    stack.push(first);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The default `bulk_put`: rows pulled in chunks of the store's `put_batch_size` (at most
/// [`MAX_MULTI_PUT_CHUNK_ROWS`]) and written through `multi_put`, `concurrency` chunks in
/// flight. Rewriting the same rows leaves the same data (puts of the same key and ts replace).
pub async fn bulk_put_via_multi_put<S>(
    store: &S,
    dataset: &str,
    rows: BulkSource<'_>,
    options: BulkPutOptions,
    concurrency: usize,
) -> Result<BulkPutReport, KvError>
where
    S: KvStore + ?Sized,
{
    let chunk_rows = store
        .capabilities()
        .put_batch_size
        .clamp(1, MAX_MULTI_PUT_CHUNK_ROWS);
    bulk_put_chunked_concurrently(
        dataset,
        rows,
        &options,
        chunk_rows,
        concurrency,
        |chunk: Vec<BulkRow>| {
            let puts: Vec<PutRequest> = chunk
                .into_iter()
                .map(|r| PutRequest::new(dataset, r.key, r.value, Some(r.ts)))
                .collect();
            async move {
                for result in store.multi_put(puts).await {
                    result?;
                }
                Ok(())
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn rows(n: usize) -> BulkSource<'static> {
        futures::stream::iter((0..n).map(|i| {
            Ok(BulkRow {
                key: format!("k{i:05}").into(),
                value: "v".into(),
                ts: 1,
            })
        }))
        .boxed()
    }

    /// What a store answers when a write took longer than its 10 s timeout.
    fn timed_out() -> KvError {
        KvError::Timeout {
            operation: "multi_put".into(),
            target: "DS".into(),
            timeout: Duration::from_secs(10),
        }
    }

    fn rows_key(i: usize) -> bytes::Bytes {
        format!("k{i:05}").into()
    }

    fn with_progress(seen: Arc<Mutex<Vec<u64>>>) -> BulkPutOptions {
        BulkPutOptions {
            progress: Some(Arc::new(move |n| seen.lock().unwrap().push(n))),
            sorted: false,
        }
    }

    #[tokio::test]
    async fn the_last_partial_chunk_is_written() {
        let chunks = Arc::new(Mutex::new(Vec::new()));
        let progress = Arc::new(Mutex::new(Vec::new()));
        let options = with_progress(progress.clone());
        let report = bulk_put_chunked("DS", rows(2_501), &options, 1_000, |chunk| {
            let chunks = chunks.clone();
            async move {
                chunks.lock().unwrap().push(chunk);
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!(report.rows, 2_501);
        let chunks = chunks.lock().unwrap();
        let mut sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [501, 1_000, 1_000]);
        let mut keys: Vec<_> = chunks.iter().flatten().map(|r| r.key.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 2_501);
        let progress = progress.lock().unwrap();
        assert_eq!(progress.len(), 3);
        assert!(progress.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(progress.last(), Some(&2_501));
    }

    #[tokio::test]
    async fn writes_at_most_concurrency_chunks_at_once() {
        let in_flight = Arc::new(Mutex::new((0usize, 0usize))); // (now, most)
        let report = bulk_put_chunked_concurrently(
            "DS",
            rows(100),
            &BulkPutOptions::default(),
            10,
            3,
            |_| {
                let in_flight = in_flight.clone();
                async move {
                    {
                        let mut f = in_flight.lock().unwrap();
                        f.0 += 1;
                        f.1 = f.1.max(f.0);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    in_flight.lock().unwrap().0 -= 1;
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(report.rows, 100);
        assert_eq!(in_flight.lock().unwrap().1, 3);
    }

    #[tokio::test]
    async fn the_first_error_ends_the_load() {
        let write_error = KvError::backend_msg("t", "write", "disk full");
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let err = bulk_put_chunked_concurrently(
            "DS",
            rows(50),
            &BulkPutOptions::default(),
            10,
            1,
            |_| {
                let fail = calls.fetch_add(1, Ordering::Relaxed) + 1 == 2;
                let e = write_error.clone();
                async move {
                    if fail {
                        Err(e)
                    } else {
                        Ok(())
                    }
                }
            },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("disk full"));
        let calls = calls.load(Ordering::Relaxed);
        assert!(calls < 5, "kept writing after the error ({calls} chunks)");

        let broken: BulkSource<'static> = futures::stream::iter(vec![
            Ok(BulkRow {
                key: "k".into(),
                value: "v".into(),
                ts: 1,
            }),
            Err(KvError::not_found("source")),
        ])
        .boxed();
        let err = bulk_put_chunked("DS", broken, &BulkPutOptions::default(), 10, |_| async {
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(matches!(err, KvError::DatasetNotFound { .. }));

        let bad_name =
            bulk_put_chunked("1bad", rows(1), &BulkPutOptions::default(), 10, |_| async {
                Ok(())
            })
            .await;
        assert!(matches!(bad_name, Err(KvError::InvalidDataset { .. })));
    }

    #[tokio::test]
    async fn a_chunk_that_timed_out_is_written_again() {
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let timeout = timed_out();
        // The second chunk times out twice, then lands.
        let report = bulk_put_chunked_concurrently(
            "DS",
            rows(30),
            &BulkPutOptions::default(),
            10,
            1,
            |chunk| {
                let second = chunk[0].key == rows_key(10);
                let n = if second {
                    attempts.fetch_add(1, Ordering::Relaxed) + 1
                } else {
                    0
                };
                let e = timeout.clone();
                async move {
                    if second && n <= 2 {
                        Err(e)
                    } else {
                        Ok(())
                    }
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(report.rows, 30);
        assert_eq!(attempts.load(Ordering::Relaxed), 3);

        // A chunk that keeps timing out fails the load after CHUNK_ATTEMPTS writes.
        let tries = std::sync::atomic::AtomicUsize::new(0);
        let err = bulk_put_chunked("DS", rows(5), &BulkPutOptions::default(), 10, |_| {
            tries.fetch_add(1, Ordering::Relaxed);
            let e = timeout.clone();
            async move { Err(e) }
        })
        .await
        .unwrap_err();
        assert!(matches!(err, KvError::Timeout { .. }));
        assert_eq!(tries.load(Ordering::Relaxed), CHUNK_ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn a_chunk_too_big_for_a_slow_server_lands_in_halves() {
        // The "server" times out on any write of more than 300 rows.
        let written = Mutex::new(Vec::new());
        let timeout = timed_out();
        let report = bulk_put_chunked_concurrently(
            "DS",
            rows(2_500),
            &BulkPutOptions::default(),
            2_000,
            2,
            |chunk| {
                let too_big = chunk.len() > 300;
                if !too_big {
                    written
                        .lock()
                        .unwrap()
                        .extend(chunk.iter().map(|r| r.key.clone()));
                }
                let e = timeout.clone();
                async move {
                    if too_big {
                        Err(e)
                    } else {
                        Ok(())
                    }
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(report.rows, 2_500);
        let mut keys = written.into_inner().unwrap();
        keys.sort();
        keys.dedup();
        assert_eq!(
            keys.len(),
            2_500,
            "every row written once the chunks were small"
        );
    }

    #[tokio::test]
    async fn a_server_that_keeps_up_with_fewer_writes_gets_fewer() {
        // The "server" answers a write that arrives while 3 or more are in flight with a
        // timeout (it would queue too long); chunks of 50 rows cannot be split. Writing 8 at
        // once, every chunk beyond the third would keep timing out until it ran out of attempts.
        let in_flight = std::sync::atomic::AtomicUsize::new(0);
        let timeouts = std::sync::atomic::AtomicUsize::new(0);
        let timeout = timed_out();
        let report = bulk_put_chunked_concurrently(
            "DS",
            rows(10_000),
            &BulkPutOptions::default(),
            50,
            8,
            |_| {
                let e = timeout.clone();
                let (in_flight, timeouts) = (&in_flight, &timeouts);
                async move {
                    let queued = in_flight.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    if queued >= 3 {
                        timeouts.fetch_add(1, Ordering::SeqCst);
                        Err(e)
                    } else {
                        Ok(())
                    }
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(report.rows, 10_000);
        let timeouts = timeouts.load(Ordering::SeqCst);
        // Each probe of a fourth write costs at most a few timeouts; 200 chunks written 8 at a
        // time without the limit would time out on most writes.
        assert!(timeouts < 120, "{timeouts} timeouts for 200 chunks");
    }

    #[test]
    fn the_future_is_send_for_send_writers() {
        fn check<T: Send>(_: T) {}
        let options = BulkPutOptions::default();
        check(bulk_put_chunked("DS", rows(1), &options, 10, |_| async {
            Ok(())
        }));
    }

    #[tokio::test]
    async fn the_default_bulk_put_writes_through_multi_put() {
        let store = crate::MemoryStore::new();
        store
            .create("DS", &crate::DatasetProps::snapshot())
            .await
            .unwrap();
        let report = bulk_put_via_multi_put(&store, "DS", rows(2_501), Default::default(), 2)
            .await
            .unwrap();
        assert_eq!(report.rows, 2_501);
        let got = store
            .multi_get(vec![crate::GetRequest::latest("DS", "k02500")])
            .await;
        assert_eq!(got[0].values.as_ref().unwrap().len(), 1);
    }
}
