//! Contract section `multi_get` (`chronon-core/CONTRACT.md`, "multi_get"): ordering, duplicates,
//! isolation, latest vs ranges, big batches.

use anyhow::{ensure, Result};
use chronon_core::batch::now_millis;
use chronon_core::{GetRequest, KvStoreExt, PutRequest};

use super::{b, expect_err, expect_ok, ok_values, pairs, retry, T0};
use crate::runner::Ctx;

/// Writes versions `v0..vN` of `key` at `T0, T0+10, ...`.
async fn versions(cx: &Ctx, ds: &str, key: &str, n: usize) -> Result<()> {
    let store = cx.store()?;
    let puts = (0..n)
        .map(|i| PutRequest::new(ds, b(key), b(format!("v{i}")), Some(T0 + 10 * i as i64)))
        .collect();
    for r in store.multi_put(puts).await {
        expect_ok(r, "put of a version")?;
    }
    Ok(())
}

/// Contract, multi_get: An empty batch returns at once; response `i` answers request `i`;
/// duplicates are each answered.
pub(crate) async fn empty_get_batch_returns_at_once(cx: &Ctx) -> Result<()> {
    let got = cx.store()?.multi_get(vec![]).await;
    ensure!(
        got.is_empty(),
        "empty batch answered with {} responses",
        got.len()
    );
    Ok(())
}

/// Contract, multi_get: An empty batch returns at once; response `i` answers request `i`;
/// duplicates are each answered.
pub(crate) async fn responses_in_request_order(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    let puts = (0..50)
        .map(|i| PutRequest::new(&ds, b(format!("k{i}")), b(format!("v{i}")), Some(T0 + i)))
        .collect();
    for r in store.multi_put(puts).await {
        expect_ok(r, "put")?;
    }
    let order: Vec<i64> = (0..50).rev().chain((0..50).step_by(3)).collect();
    let got = store
        .multi_get(
            order
                .iter()
                .map(|i| GetRequest::latest(&ds, b(format!("k{i}"))))
                .collect(),
        )
        .await;
    ensure!(
        got.len() == order.len(),
        "{} responses for {} requests",
        got.len(),
        order.len()
    );
    for (i, resp) in order.iter().zip(&got) {
        ensure!(
            resp.request.key == b(format!("k{i}")),
            "response carries request for {:?}",
            resp.request.key
        );
        ensure!(
            pairs(&ok_values(resp)?) == vec![(b(format!("v{i}")), T0 + i)],
            "k{i} answered {:?}",
            resp.values
        );
    }
    Ok(())
}

/// Contract, multi_get: An empty batch returns at once; response `i` answers request `i`;
/// duplicates are each answered.
pub(crate) async fn duplicates_each_answered(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    versions(cx, &ds, "k", 3).await?;
    let reqs = vec![
        GetRequest::latest(&ds, b("k")),
        GetRequest::latest(&ds, b("k")),
        GetRequest::range(&ds, b("k"), 0, None),
        GetRequest::latest(&ds, b("k")),
    ];
    let got = store.multi_get(reqs).await;
    ensure!(got.len() == 4, "{} responses for 4 requests", got.len());
    for i in [0, 1, 3] {
        ensure!(
            ok_values(&got[i])?.len() == 1,
            "duplicate {i} answered {:?}",
            got[i].values
        );
    }
    ensure!(
        ok_values(&got[2])?.len() == 3,
        "range among duplicates answered {:?}",
        got[2].values
    );
    Ok(())
}

/// Contract, multi_get: A missing key is `Ok(vec![])`, not an error.
pub(crate) async fn missing_key_is_empty_not_error(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    for ds in [cx.snapshot().await?, cx.time_series().await?] {
        let got = store
            .multi_get(vec![
                GetRequest::latest(&ds, b("nope")),
                GetRequest::range(&ds, b("nope"), 0, None),
            ])
            .await;
        for r in &got {
            ensure!(
                ok_values(r)?.is_empty(),
                "missing key answered {:?}",
                r.values
            );
        }
    }
    Ok(())
}

/// Contract, multi_get: One failing request (missing dataset, bad range, bad key) never fails the
/// others.
pub(crate) async fn missing_dataset_isolated(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    let missing = cx.name("_BATCH");
    store.put(&ds, b("k"), b("v"), Some(T0)).await?;
    let got = store
        .multi_get(vec![
            GetRequest::latest(&ds, b("k")),
            GetRequest::latest(&missing, b("k")),
            GetRequest::latest(&ds, b("k")),
        ])
        .await;
    expect_err(
        &got[1].values,
        "DatasetNotFound",
        "get from a missing dataset",
    )?;
    for i in [0, 2] {
        ensure!(
            pairs(&ok_values(&got[i])?) == vec![(b("v"), T0)],
            "request {i} next to a missing dataset: {:?}",
            got[i].values
        );
    }
    Ok(())
}

/// Contract, multi_get: One failing request (missing dataset, bad range, bad key) never fails the
/// others.
pub(crate) async fn invalid_range_isolated(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    versions(cx, &ds, "k", 2).await?;
    let got = store
        .multi_get(vec![
            GetRequest::range(&ds, b("k"), T0 + 100, Some(T0)),
            GetRequest {
                key: b("k"),
                dataset: ds.clone(),
                start_ts: None,
                end_ts: Some(T0),
            },
            GetRequest::latest(&ds, b("")),
            GetRequest::range(&ds, b("k"), 0, None),
        ])
        .await;
    expect_err(&got[0].values, "InvalidRequest", "start_ts > end_ts")?;
    expect_err(&got[1].values, "InvalidRequest", "end_ts without start_ts")?;
    expect_err(&got[2].values, "InvalidKey", "empty key")?;
    ensure!(
        ok_values(&got[3])?.len() == 2,
        "good request next to bad ones: {:?}",
        got[3].values
    );
    Ok(())
}

/// Contract, multi_get: `start_ts: None` returns the latest version by ts (not by arrival), zero or
/// one value.
pub(crate) async fn latest_only_returns_newest_version(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    // Written out of order: latest is by ts, not by arrival.
    let puts = vec![
        PutRequest::new(&ds, b("k"), b("mid"), Some(T0 + 5)),
        PutRequest::new(&ds, b("k"), b("new"), Some(T0 + 9)),
        PutRequest::new(&ds, b("k"), b("old"), Some(T0 + 1)),
    ];
    for r in store.multi_put(puts).await {
        expect_ok(r, "put")?;
    }
    let got = store.multi_get(vec![GetRequest::latest(&ds, b("k"))]).await;
    ensure!(
        pairs(&ok_values(&got[0])?) == vec![(b("new"), T0 + 9)],
        "latest answered {:?}",
        got[0].values
    );
    Ok(())
}

/// Contract, multi_get: `start_ts: Some(s)` returns every version with `s <= ts` (and `ts <=
/// end_ts` when given), oldest first; both bounds inclusive.
pub(crate) async fn range_returns_versions_oldest_first(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    let puts = [7, 2, 9, 4, 0]
        .iter()
        .map(|i| PutRequest::new(&ds, b("k"), b(format!("v{i}")), Some(T0 + i)))
        .collect();
    for r in store.multi_put(puts).await {
        expect_ok(r, "put")?;
    }
    let got = store
        .multi_get(vec![GetRequest::range(&ds, b("k"), T0, None)])
        .await;
    let want: Vec<_> = [0, 2, 4, 7, 9]
        .iter()
        .map(|i| (b(format!("v{i}")), T0 + i))
        .collect();
    ensure!(
        pairs(&ok_values(&got[0])?) == want,
        "range answered {:?}",
        got[0].values
    );
    Ok(())
}

/// Contract, multi_get: `start_ts: Some(s)` returns every version with `s <= ts` (and `ts <=
/// end_ts` when given), oldest first; both bounds inclusive.
pub(crate) async fn range_bounds_inclusive(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    versions(cx, &ds, "k", 5).await?; // T0, +10, +20, +30, +40
    let got = store
        .multi_get(vec![
            GetRequest::range(&ds, b("k"), T0 + 10, Some(T0 + 30)),
            GetRequest::range(&ds, b("k"), T0 + 11, Some(T0 + 29)),
            GetRequest::range(&ds, b("k"), T0 + 40, Some(T0 + 40)),
            GetRequest::range(&ds, b("k"), T0 + 41, None),
        ])
        .await;
    let ts = |i: usize| -> Result<Vec<i64>> {
        Ok(ok_values(&got[i])?.iter().map(|v| v.millis).collect())
    };
    ensure!(
        ts(0)? == vec![T0 + 10, T0 + 20, T0 + 30],
        "[+10,+30] answered {:?}",
        ts(0)?
    );
    ensure!(ts(1)? == vec![T0 + 20], "[+11,+29] answered {:?}", ts(1)?);
    ensure!(ts(2)? == vec![T0 + 40], "[+40,+40] answered {:?}", ts(2)?);
    ensure!(ts(3)?.is_empty(), "[+41,..] answered {:?}", ts(3)?);
    Ok(())
}

/// Contract, multi_get: `start_ts: Some(s)` returns every version with `s <= ts` (and `ts <=
/// end_ts` when given), oldest first; both bounds inclusive.
pub(crate) async fn range_with_end_ts(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    versions(cx, &ds, "k", 4).await?;
    let got = store
        .multi_get(vec![GetRequest::range(&ds, b("k"), 0, Some(T0 + 15))])
        .await;
    let want = vec![(b("v0"), T0), (b("v1"), T0 + 10)];
    ensure!(
        pairs(&ok_values(&got[0])?) == want,
        "range up to +15 answered {:?}",
        got[0].values
    );
    Ok(())
}

/// Contract, multi_get: Every `TimedValue.millis` is the timestamp stored with the value, never the
/// read time. Chronon's fetcher ignores a batch value older than the batch end, so a store
/// reporting "now" (as the JVM quickstart's Mongo store does) would serve stale features silently.
pub(crate) async fn stored_ts_returned_not_read_time(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    for ds in [cx.snapshot().await?, cx.time_series().await?] {
        store.put(&ds, b("k"), b("v"), Some(T0 + 123)).await?;
        let got = store.get(&ds, b("k")).await?;
        ensure!(
            got.map(|v| v.millis) == Some(T0 + 123),
            "returned ts is not the stored one"
        );
    }
    Ok(())
}

/// Contract, multi_get: A put without `ts` is stored at about now (a few seconds of client/server
/// clock skew allowed).
pub(crate) async fn put_without_ts_gets_now(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    let before = now_millis();
    store.put(&ds, b("k"), b("v"), None).await?;
    let after = now_millis();
    let got = store.get(&ds, b("k")).await?.map(|v| v.millis);
    // Allow for clock skew between client and server of a few seconds.
    let ok = got.is_some_and(|ts| ts >= before - 5_000 && ts <= after + 5_000);
    ensure!(
        ok,
        "put without ts stored ts {got:?}, want about now ({before}..{after})"
    );
    Ok(())
}

/// Contract, multi_get: In a `TimeSeries` dataset a put with the same key and ts replaces that
/// version only.
pub(crate) async fn same_ts_replaces_that_version_only(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    versions(cx, &ds, "k", 3).await?;
    store.put(&ds, b("k"), b("again"), Some(T0 + 10)).await?;
    let got = store
        .multi_get(vec![GetRequest::range(&ds, b("k"), 0, None)])
        .await;
    let want = vec![(b("v0"), T0), (b("again"), T0 + 10), (b("v2"), T0 + 20)];
    ensure!(
        pairs(&ok_values(&got[0])?) == want,
        "after rewriting one version: {:?}",
        got[0].values
    );
    Ok(())
}

/// Contract, multi_get: In a `Snapshot` dataset a put replaces the value whatever its ts; a range
/// read returns the one value when its ts is in range.
pub(crate) async fn snapshot_put_replaces_value(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    store.put(&ds, b("k"), b("first"), Some(T0 + 50)).await?;
    store.put(&ds, b("k"), b("second"), Some(T0 + 10)).await?;
    let got = store
        .multi_get(vec![
            GetRequest::range(&ds, b("k"), 0, None),
            GetRequest::latest(&ds, b("k")),
        ])
        .await;
    for r in &got {
        ensure!(
            pairs(&ok_values(r)?) == vec![(b("second"), T0 + 10)],
            "snapshot kept {:?}",
            r.values
        );
    }
    Ok(())
}

/// Contract, multi_get: In a `Snapshot` dataset a put replaces the value whatever its ts; a range
/// read returns the one value when its ts is in range.
pub(crate) async fn snapshot_range_filters_its_one_value(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    store.put(&ds, b("k"), b("v"), Some(T0 + 50)).await?;
    let got = store
        .multi_get(vec![
            GetRequest::range(&ds, b("k"), T0 + 50, Some(T0 + 50)),
            GetRequest::range(&ds, b("k"), T0 + 51, None),
            GetRequest::range(&ds, b("k"), 0, Some(T0 + 49)),
        ])
        .await;
    ensure!(
        ok_values(&got[0])?.len() == 1,
        "in range: {:?}",
        got[0].values
    );
    ensure!(
        ok_values(&got[1])?.is_empty(),
        "after range: {:?}",
        got[1].values
    );
    ensure!(
        ok_values(&got[2])?.is_empty(),
        "before range: {:?}",
        got[2].values
    );
    Ok(())
}

/// Contract, multi_get: Batches of 10,000 requests work, hits and misses interleaved.
pub(crate) async fn get_batch_of_10000(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    let puts = (0..10_000)
        .map(|i| {
            PutRequest::new(
                &ds,
                b(format!("key-{i}")),
                b(format!("value-{i}")),
                Some(T0 + i),
            )
        })
        .collect();
    retry::put_all(cx, &store, puts).await?;
    // Every other key missing, so hits and misses interleave.
    let got = retry::get_all(
        cx,
        &store,
        (0..10_000)
            .map(|i| GetRequest::latest(&ds, b(format!("key-{}", i * 2))))
            .collect(),
    )
    .await?;
    ensure!(got.len() == 10_000, "{} responses", got.len());
    for (i, resp) in got.iter().enumerate() {
        let k = i * 2;
        let want = if k < 10_000 {
            vec![(b(format!("value-{k}")), T0 + k as i64)]
        } else {
            vec![]
        };
        ensure!(
            pairs(&ok_values(resp)?) == want,
            "key-{k} answered {:?}",
            resp.values
        );
    }
    Ok(())
}
