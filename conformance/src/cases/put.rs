//! Contract section `multi_put` (`chronon-core/CONTRACT.md`, "multi_put"): one result per request,
//! mixed datasets, per-request failures.

use anyhow::{ensure, Result};
use bytes::Bytes;
use chronon_core::{GetRequest, KvStoreExt, PutRequest};

use super::{b, expect_err, expect_ok, ok_values, retry, T0};
use crate::runner::Ctx;

/// Contract, multi_put: An empty batch returns at once; result `i` answers request `i`; a rejected
/// request is not stored, its neighbours are.
pub(crate) async fn empty_put_batch_returns_at_once(cx: &Ctx) -> Result<()> {
    let got = cx.store()?.multi_put(vec![]).await;
    ensure!(
        got.is_empty(),
        "empty batch answered with {} results",
        got.len()
    );
    Ok(())
}

/// Contract, multi_put: An empty batch returns at once; result `i` answers request `i`; a rejected
/// request is not stored, its neighbours are.
pub(crate) async fn results_one_per_request_in_order(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    let puts = vec![
        PutRequest::new(&ds, b("a"), b("1"), Some(T0)),
        PutRequest::new(&ds, b(""), b("bad"), Some(T0)),
        PutRequest::new(&ds, b("b"), b("2"), Some(T0)),
        PutRequest::new(&ds, b("c"), b("3"), Some(-5)),
        PutRequest::new(&ds, b("d"), b("4"), Some(T0)),
    ];
    let got = store.multi_put(puts).await;
    ensure!(got.len() == 5, "{} results for 5 requests", got.len());
    expect_ok(got[0].clone(), "request 0")?;
    expect_err(&got[1], "InvalidKey", "request 1")?;
    expect_ok(got[2].clone(), "request 2")?;
    expect_err(&got[3], "InvalidRequest", "request 3")?;
    expect_ok(got[4].clone(), "request 4")?;
    for k in ["a", "b", "d"] {
        ensure!(
            store.get(&ds, b(k)).await?.is_some(),
            "accepted put of {k} not stored"
        );
    }
    ensure!(
        store.get(&ds, b("c")).await?.is_none(),
        "rejected put of c stored"
    );
    Ok(())
}

/// Contract, multi_put: One call may target several datasets.
pub(crate) async fn mixed_datasets_in_one_call(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let snap = cx.snapshot().await?;
    let ts = cx.time_series().await?;
    let puts = vec![
        PutRequest::new(&snap, b("k"), b("s1"), Some(T0)),
        PutRequest::new(&ts, b("k"), b("t1"), Some(T0)),
        PutRequest::new(&snap, b("k2"), b("s2"), Some(T0)),
        PutRequest::new(&ts, b("k"), b("t2"), Some(T0 + 1)),
    ];
    for r in store.multi_put(puts).await {
        expect_ok(r, "put")?;
    }
    let got = store
        .multi_get(vec![
            GetRequest::range(&snap, b("k"), 0, None),
            GetRequest::range(&ts, b("k"), 0, None),
            GetRequest::latest(&snap, b("k2")),
        ])
        .await;
    ensure!(
        ok_values(&got[0])?.len() == 1,
        "snapshot: {:?}",
        got[0].values
    );
    ensure!(
        ok_values(&got[1])?.len() == 2,
        "time series: {:?}",
        got[1].values
    );
    ensure!(
        ok_values(&got[2])?.len() == 1,
        "snapshot k2: {:?}",
        got[2].values
    );
    Ok(())
}

/// Contract, multi_put: An oversized value, an invalid key or a missing dataset fails only its
/// request (`ValueTooLarge` with the true size and max, `InvalidKey`, `DatasetNotFound`).
pub(crate) async fn oversized_value_among_good_ones(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let max = store.capabilities().max_value_bytes;
    let ds = cx.snapshot().await?;
    let puts = vec![
        PutRequest::new(&ds, b("a"), b("1"), Some(T0)),
        PutRequest::new(&ds, b("big"), Bytes::from(vec![0u8; max + 1]), Some(T0)),
        PutRequest::new(&ds, b("c"), b("3"), Some(T0)),
    ];
    let got = store.multi_put(puts).await;
    expect_ok(got[0].clone(), "request 0")?;
    match &got[1] {
        Err(chronon_core::KvError::ValueTooLarge { size, max: m, .. }) => {
            ensure!(
                *size == max + 1 && *m == max,
                "ValueTooLarge reports size {size} max {m}, want {} {max}",
                max + 1
            )
        }
        other => anyhow::bail!("oversized value answered {other:?}"),
    }
    expect_ok(got[2].clone(), "request 2")?;
    ensure!(
        store.get(&ds, b("a")).await?.is_some() && store.get(&ds, b("c")).await?.is_some(),
        "good puts lost"
    );
    ensure!(
        store.get(&ds, b("big")).await?.is_none(),
        "oversized value stored"
    );
    Ok(())
}

/// Contract, multi_put: An oversized value, an invalid key or a missing dataset fails only its
/// request (`ValueTooLarge` with the true size and max, `InvalidKey`, `DatasetNotFound`).
pub(crate) async fn invalid_key_among_good_ones(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    let puts = vec![
        PutRequest::new(&ds, Bytes::from(vec![1u8; 1025]), b("x"), Some(T0)),
        PutRequest::new(&ds, b("ok"), b("y"), Some(T0)),
    ];
    let got = store.multi_put(puts).await;
    expect_err(&got[0], "InvalidKey", "1025-byte key")?;
    expect_ok(got[1].clone(), "good key")?;
    Ok(())
}

/// Contract, multi_put: An oversized value, an invalid key or a missing dataset fails only its
/// request (`ValueTooLarge` with the true size and max, `InvalidKey`, `DatasetNotFound`).
pub(crate) async fn missing_dataset_among_good_ones(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    let missing = cx.name("_BATCH");
    let got = store
        .multi_put(vec![
            PutRequest::new(&ds, b("a"), b("1"), Some(T0)),
            PutRequest::new(&missing, b("a"), b("1"), Some(T0)),
            PutRequest::new(&ds, b("b"), b("2"), Some(T0)),
        ])
        .await;
    expect_ok(got[0].clone(), "request 0")?;
    expect_err(&got[1], "DatasetNotFound", "put into missing dataset")?;
    expect_ok(got[2].clone(), "request 2")?;
    expect_err(
        &store.dataset_props(&missing).await,
        "DatasetNotFound",
        "a put must not create a dataset",
    )?;
    Ok(())
}

/// Contract, multi_put: 10,000 puts in one call (2,000 keys × 5 versions, interleaved) all land.
pub(crate) async fn put_batch_of_10000(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    // 2,000 keys x 5 versions, interleaved so one key's versions are spread over the batch.
    let puts = (0..10_000i64)
        .map(|i| {
            PutRequest::new(
                &ds,
                b(format!("k{}", i % 2000)),
                b(format!("v{i}")),
                Some(T0 + i / 2000),
            )
        })
        .collect();
    // One call of 10,000; a Timeout is retried for the failed requests only, in smaller
    // batches (slow is not wrong).
    retry::put_all(cx, &store, puts).await?;
    let resp = retry::get_all(
        cx,
        &store,
        (0..2000)
            .map(|k| GetRequest::range(&ds, b(format!("k{k}")), 0, None))
            .collect(),
    )
    .await?;
    for (k, r) in resp.iter().enumerate() {
        let v = ok_values(r)?;
        let want: Vec<Bytes> = (0..5).map(|j| b(format!("v{}", j * 2000 + k))).collect();
        let got: Vec<Bytes> = v.iter().map(|t| t.bytes.clone()).collect();
        ensure!(got == want, "k{k} holds {got:?}, want {want:?}");
    }
    Ok(())
}
