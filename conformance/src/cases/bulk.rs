//! Contract section `bulk_put` (`chronon-core/CONTRACT.md`, "bulk_put"): large uploads through
//! `bulk_put`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{ensure, Result};
use chronon_core::{BulkPutOptions, BulkRow, GetRequest, KvError, KvStore};
use futures::StreamExt;

use super::{b, ok_values, pairs, T0};
use crate::runner::Ctx;

fn rows(
    n: u64,
    order: impl Fn(u64) -> u64 + Send + 'static,
    ts: i64,
) -> chronon_core::BulkSource<'static> {
    futures::stream::iter(0..n)
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

async fn check_sample(store: &Arc<dyn KvStore>, ds: &str, n: u64, ts: i64) -> Result<()> {
    let sample: Vec<u64> = (0..n)
        .step_by((n as usize / 997).max(1))
        .chain([n - 1])
        .collect();
    let got = store
        .multi_get(
            sample
                .iter()
                .map(|k| GetRequest::latest(ds, b(format!("key{k:08}"))))
                .collect(),
        )
        .await;
    for (k, r) in sample.iter().zip(&got) {
        ensure!(
            pairs(&ok_values(r)?) == vec![(b(format!("value{k}")), ts)],
            "key{k:08} holds {:?}",
            r.values
        );
    }
    Ok(())
}

/// Contract, bulk_put: 100,000 sorted rows load; the report and the progress callback reach
/// 100,000; `list` sees them all.
pub(crate) async fn loads_100000_rows_with_progress(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    let progress = Arc::new(AtomicU64::new(0));
    let seen = progress.clone();
    let options = BulkPutOptions {
        progress: Some(Arc::new(move |n| {
            seen.fetch_max(n, Ordering::Relaxed);
        })),
        sorted: true,
    };
    let report = store
        .bulk_put(&ds, rows(100_000, |i| i, T0), options)
        .await?;
    ensure!(
        report.rows == 100_000,
        "bulk_put reported {} rows",
        report.rows
    );
    ensure!(
        progress.load(Ordering::Relaxed) == 100_000,
        "progress ended at {}",
        progress.load(Ordering::Relaxed)
    );
    check_sample(&store, &ds, 100_000, T0).await?;
    let listed = chronon_core::KvStoreExt::list_all(store.as_ref(), &ds, 10_000).await?;
    ensure!(
        listed.len() == 100_000,
        "list after bulk_put saw {} keys",
        listed.len()
    );
    Ok(())
}

/// Contract, bulk_put: Loading the same rows twice leaves the same data.
pub(crate) async fn is_idempotent(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    for _ in 0..2 {
        store
            .bulk_put(
                &ds,
                rows(5_000, |i| i, T0),
                BulkPutOptions {
                    progress: None,
                    sorted: true,
                },
            )
            .await?;
    }
    check_sample(&store, &ds, 5_000, T0).await?;
    let listed = chronon_core::KvStoreExt::list_all(store.as_ref(), &ds, 1000).await?;
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
    let report = store
        .bulk_put(
            &ds,
            rows(20_000, |i| (i * 7919) % 20_000, T0),
            BulkPutOptions {
                progress: None,
                sorted: false,
            },
        )
        .await?;
    ensure!(report.rows == 20_000, "reported {} rows", report.rows);
    check_sample(&store, &ds, 20_000, T0).await
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
