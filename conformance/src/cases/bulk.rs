//! Contract section `bulk_put` (`chronon-core/CONTRACT.md`, "bulk_put"): large uploads through
//! `bulk_put`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{ensure, Result};
use chronon_core::{BulkPutOptions, BulkRow, GetRequest, KvError, KvStore};
use futures::StreamExt;

use super::{b, ok_values, pairs, retry, T0};
use crate::runner::Ctx;

fn rows(
    range: std::ops::Range<u64>,
    order: impl Fn(u64) -> u64 + Send + 'static,
    ts: i64,
) -> chronon_core::BulkSource<'static> {
    futures::stream::iter(range)
        .map(move |i| {
            let k = order(i);
            Ok::<_, KvError>(BulkRow {
                key: b(format!("key{k:08}")),
                value: b(format!("value{k}")),
                ts,
            })
        })
        .boxed()
}

/// Checks keys spread over `0..n` plus the last three (a lost final partial chunk shows there).
async fn check_sample(cx: &Ctx, store: &Arc<dyn KvStore>, ds: &str, n: u64, ts: i64) -> Result<()> {
    let sample: Vec<u64> = (0..n)
        .step_by((n as usize / 997).max(1))
        .chain(n.saturating_sub(3)..n)
        .collect();
    let got = retry::get_all(
        cx,
        store,
        sample
            .iter()
            .map(|k| GetRequest::latest(ds, b(format!("key{k:08}"))))
            .collect(),
    )
    .await?;
    for (k, r) in sample.iter().zip(&got) {
        ensure!(
            pairs(&ok_values(r)?) == vec![(b(format!("value{k}")), ts)],
            "key{k:08} holds {:?}",
            r.values
        );
    }
    Ok(())
}

/// The rows of the big load: 100,003, so the last chunk of any loader that writes in chunks of
/// 10, 25, 100, 1,000 or 10,000 rows is a partial one.
const BIG_LOAD: u64 = 100_003;

/// Contract, bulk_put: 100,003 sorted rows load (the last chunk partial at every usual chunk
/// size); the report and the progress callback reach 100,003; `list` sees them all.
pub(crate) async fn loads_100003_rows_with_progress(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    let progress = Arc::new(AtomicU64::new(0));
    let seen = progress.clone();
    let loaded = retry::bulk_put_all(
        cx,
        &store,
        &ds,
        BIG_LOAD,
        |range| rows(range, |i| i, T0),
        true,
        Some(Arc::new(move |n| {
            seen.fetch_max(n, Ordering::Relaxed);
        })),
    )
    .await?;
    ensure!(
        loaded == BIG_LOAD,
        "bulk_put reported {loaded} rows, want {BIG_LOAD}"
    );
    ensure!(
        progress.load(Ordering::Relaxed) == BIG_LOAD,
        "progress ended at {}, want {BIG_LOAD}",
        progress.load(Ordering::Relaxed)
    );
    check_sample(cx, &store, &ds, BIG_LOAD, T0).await?;
    let listed = retry::list_all(cx, &store, &ds, 10_000).await?;
    ensure!(
        listed.len() as u64 == BIG_LOAD,
        "list after bulk_put saw {} keys, want {BIG_LOAD}",
        listed.len()
    );
    Ok(())
}

/// Contract, bulk_put: loads of 1, 25, 100, 101, 999, 1,000 and 1,001 rows (just below, at and
/// just above the chunk sizes adapters and drivers use) each land in full.
pub(crate) async fn bulk_sizes_at_chunk_boundaries(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    for n in super::CHUNK_BOUNDARIES {
        let ds = cx.snapshot().await?;
        let loaded =
            retry::bulk_put_all(cx, &store, &ds, n, |r| rows(r, |i| i, T0), true, None).await?;
        ensure!(loaded == n, "a load of {n} rows reported {loaded}");
        let got = retry::get_all(
            cx,
            &store,
            (0..n)
                .map(|k| GetRequest::latest(&ds, b(format!("key{k:08}"))))
                .collect(),
        )
        .await?;
        let missing: Vec<u64> = (0..n)
            .zip(&got)
            .filter(|(k, r)| {
                ok_values(r).map(|v| pairs(&v)).ok() != Some(vec![(b(format!("value{k}")), T0)])
            })
            .map(|(k, _)| k)
            .collect();
        ensure!(
            missing.is_empty(),
            "a load of {n} rows: {} keys missing or wrong, first {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    Ok(())
}

/// Contract, bulk_put: Loading the same rows twice leaves the same data.
pub(crate) async fn is_idempotent(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    for _ in 0..2 {
        retry::bulk_put_all(cx, &store, &ds, 5_000, |r| rows(r, |i| i, T0), true, None).await?;
    }
    check_sample(cx, &store, &ds, 5_000, T0).await?;
    let listed = retry::list_all(cx, &store, &ds, 1000).await?;
    ensure!(
        listed.len() == 5_000,
        "two identical loads left {} keys",
        listed.len()
    );
    Ok(())
}

/// Contract, bulk_put: Unsorted input (`sorted: false`) loads. A broken `sorted: true` promise is
/// an error, never silent corruption.
pub(crate) async fn unsorted_input_loads(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    // A permutation of 0..20000 (7919 is prime and coprime with 20000).
    let loaded = retry::bulk_put_all(
        cx,
        &store,
        &ds,
        20_000,
        |r| rows(r, |i| (i * 7919) % 20_000, T0),
        false,
        None,
    )
    .await?;
    ensure!(loaded == 20_000, "reported {loaded} rows");
    check_sample(cx, &store, &ds, 20_000, T0).await
}

/// Contract, bulk_put: Several versions of a key load into a `TimeSeries` dataset as versions.
pub(crate) async fn time_series_versions_load(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    let source = futures::stream::iter(0..3000i64)
        .map(|i| {
            Ok::<_, KvError>(BulkRow {
                key: b(format!("k{:04}", i / 3)),
                value: b(format!("v{i}")),
                ts: T0 + i % 3,
            })
        })
        .boxed();
    store
        .bulk_put(
            &ds,
            source,
            BulkPutOptions {
                progress: None,
                sorted: true,
            },
        )
        .await?;
    let got = store
        .multi_get(vec![GetRequest::range(&ds, b("k0007"), 0, None)])
        .await;
    let want = vec![(b("v21"), T0), (b("v22"), T0 + 1), (b("v23"), T0 + 2)];
    ensure!(
        pairs(&ok_values(&got[0])?) == want,
        "k0007 holds {:?}",
        got[0].values
    );
    Ok(())
}
