//! Contract section `datasets` (`chronon-core/CONTRACT.md`, "Datasets"): names, kinds, idempotent
//! create, TTL, drop, missing datasets.

use std::time::Duration;

use anyhow::{ensure, Result};
use chronon_core::batch::now_millis;
use chronon_core::{DatasetKind, DatasetProps, GetRequest, KvStoreExt, PutRequest};

use super::{b, expect_err, expect_ok, ok_values, pairs, T0};
use crate::runner::Ctx;

/// Contract, Datasets: Portable names are 1–128 characters of `[A-Za-z0-9_]`, not starting with a
/// digit (Chronon's `cleanName` plus `_BATCH` / `_STREAMING` fit). They work for create, put and
/// get.
pub(crate) async fn valid_names_accepted(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let long = cx.name(&"_x".repeat(49));
    ensure!(
        long.len() == 128,
        "test bug: long name has {} chars",
        long.len()
    );
    // Names are dropped at the end of each iteration; `_`-prefixed is untracked so drop it here.
    for name in [
        cx.name("_BATCH"),
        cx.name("_STREAMING"),
        format!("_{}", cx.name("")),
        long,
    ] {
        expect_ok(
            store.create_default(&name).await,
            &format!("create {name:?}"),
        )?;
        expect_ok(
            store.put(&name, b("k"), b("v"), Some(T0)).await,
            &format!("put into {name:?}"),
        )?;
        let got = expect_ok(
            store.get(&name, b("k")).await,
            &format!("get from {name:?}"),
        )?;
        ensure!(
            got.map(|v| v.bytes) == Some(b("v")),
            "value written to {name:?} not read back"
        );
        let _ = store.drop_dataset(&name).await;
    }
    Ok(())
}

/// Contract, Datasets: Any other name is `InvalidDataset` with the reason, from every call, and
/// nothing is created.
pub(crate) async fn invalid_names_rejected_and_nothing_created(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let too_long = format!("a{}", "b".repeat(128));
    for name in [
        "",
        "1abc",
        "has space",
        "a-b",
        "a.b",
        "$where",
        "a;DROP",
        "{}",
        "quote\"d",
        "ünïcode",
        too_long.as_str(),
    ] {
        expect_err(
            &store.create_default(name).await,
            "InvalidDataset",
            &format!("create {name:?}"),
        )?;
        let put = store.put(name, b("k"), b("v"), Some(T0)).await;
        expect_err(&put, "InvalidDataset", &format!("put into {name:?}"))?;
        let get = store
            .multi_get(vec![GetRequest::latest(name, b("k"))])
            .await;
        expect_err(
            &get[0].values,
            "InvalidDataset",
            &format!("get from {name:?}"),
        )?;
    }
    Ok(())
}

/// Contract, Datasets: Without an explicit kind, a name ending in `_STREAMING` is `TimeSeries`
/// (every `(key, ts)` is a version), anything else `Snapshot` (one value per key). Chronon's
/// convention.
pub(crate) async fn default_kind_from_streaming_suffix(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ts = cx.name("_STREAMING");
    let snap = cx.name("_BATCH");
    store.create_default(&ts).await?;
    store.create_default(&snap).await?;
    ensure!(
        store.dataset_props(&ts).await?.kind == DatasetKind::TimeSeries,
        "{ts} should be TimeSeries"
    );
    ensure!(
        store.dataset_props(&snap).await?.kind == DatasetKind::Snapshot,
        "{snap} should be Snapshot"
    );
    // And they behave that way: two versions kept vs one.
    for ds in [&ts, &snap] {
        store.put(ds, b("k"), b("v1"), Some(T0)).await?;
        store.put(ds, b("k"), b("v2"), Some(T0 + 1)).await?;
    }
    let got = store
        .multi_get(vec![
            GetRequest::range(&ts, b("k"), 0, None),
            GetRequest::range(&snap, b("k"), 0, None),
        ])
        .await;
    ensure!(
        ok_values(&got[0])?.len() == 2,
        "TimeSeries kept {} versions, want 2",
        ok_values(&got[0])?.len()
    );
    ensure!(
        ok_values(&got[1])?.len() == 1,
        "Snapshot kept {} versions, want 1",
        ok_values(&got[1])?.len()
    );
    Ok(())
}

/// Contract, Datasets: An explicit kind wins over the suffix.
pub(crate) async fn explicit_kind_overrides_suffix(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let name = cx.name("_STREAMING");
    store.create(&name, &DatasetProps::snapshot()).await?;
    ensure!(
        store.dataset_props(&name).await?.kind == DatasetKind::Snapshot,
        "explicit Snapshot ignored"
    );
    let other = cx.name("_BATCH");
    store.create(&other, &DatasetProps::time_series()).await?;
    ensure!(
        store.dataset_props(&other).await?.kind == DatasetKind::TimeSeries,
        "explicit TimeSeries ignored"
    );
    Ok(())
}

/// Contract, Datasets: `create` of an existing dataset with the same kind is `Ok` and keeps its
/// data.
pub(crate) async fn create_is_idempotent_and_keeps_data(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    store.put(&ds, b("k"), b("v"), Some(T0)).await?;
    expect_ok(
        store.create(&ds, &DatasetProps::time_series()).await,
        "second create of the same kind",
    )?;
    let got = store.get(&ds, b("k")).await?;
    ensure!(
        got.map(|v| v.bytes) == Some(b("v")),
        "second create lost the data"
    );
    Ok(())
}

/// Contract, Datasets: `create` with another kind is `DatasetConflict`; kind and data stay.
pub(crate) async fn create_with_other_kind_conflicts(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    store.put(&ds, b("k"), b("v"), Some(T0)).await?;
    let again = store.create(&ds, &DatasetProps::time_series()).await;
    expect_err(
        &again,
        "DatasetConflict",
        "create as TimeSeries over a Snapshot",
    )?;
    ensure!(
        store.dataset_props(&ds).await?.kind == DatasetKind::Snapshot,
        "conflicting create changed the kind"
    );
    ensure!(
        store.get(&ds, b("k")).await?.is_some(),
        "conflicting create lost data"
    );
    Ok(())
}

const HOUR: Duration = Duration::from_secs(3600);

pub(crate) async fn ttl_dataset(cx: &Ctx, kind: DatasetKind) -> Result<String> {
    let store = cx.store()?;
    let name = cx.name(if kind == DatasetKind::TimeSeries {
        "_STREAMING"
    } else {
        "_BATCH"
    });
    let props = DatasetProps {
        kind,
        ttl: Some(HOUR),
    };
    store.create(&name, &props).await?;
    let got = store.dataset_props(&name).await?;
    ensure!(got.ttl == Some(HOUR), "TTL not remembered: {got:?}");
    Ok(name)
}

/// Contract, Datasets: With a TTL, a value older than `now - ttl` is never returned: not as latest,
/// not in a range, not by `list`. The TTL is remembered (`dataset_props`).
pub(crate) async fn ttl_hides_expired_latest(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let now = now_millis();
    for kind in [DatasetKind::Snapshot, DatasetKind::TimeSeries] {
        let ds = ttl_dataset(cx, kind).await?;
        let res = store
            .multi_put(vec![
                PutRequest::new(&ds, b("old"), b("v"), Some(now - 2 * 3_600_000)),
                PutRequest::new(&ds, b("fresh"), b("v"), Some(now - 60_000)),
            ])
            .await;
        for r in res {
            expect_ok(r, "put into TTL dataset")?;
        }
        ensure!(
            store.get(&ds, b("old")).await?.is_none(),
            "{kind:?}: value older than the TTL returned"
        );
        ensure!(
            store.get(&ds, b("fresh")).await?.is_some(),
            "{kind:?}: value within the TTL hidden"
        );
    }
    Ok(())
}

/// Contract, Datasets: With a TTL, a value older than `now - ttl` is never returned: not as latest,
/// not in a range, not by `list`. The TTL is remembered (`dataset_props`).
pub(crate) async fn ttl_hides_expired_versions_in_ranges(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let now = now_millis();
    let ds = ttl_dataset(cx, DatasetKind::TimeSeries).await?;
    let old = now - 3 * 3_600_000;
    let fresh = now - 1000;
    for r in store
        .multi_put(vec![
            PutRequest::new(&ds, b("k"), b("old"), Some(old)),
            PutRequest::new(&ds, b("k"), b("fresh"), Some(fresh)),
        ])
        .await
    {
        expect_ok(r, "put")?;
    }
    let got = store
        .multi_get(vec![GetRequest::range(&ds, b("k"), 0, None)])
        .await;
    ensure!(
        pairs(&ok_values(&got[0])?) == vec![(b("fresh"), fresh)],
        "range returned expired versions: {:?}",
        got[0].values
    );
    Ok(())
}

/// Contract, Datasets: With a TTL, a value older than `now - ttl` is never returned: not as latest,
/// not in a range, not by `list`. The TTL is remembered (`dataset_props`).
pub(crate) async fn ttl_hides_expired_in_list(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let now = now_millis();
    let ds = ttl_dataset(cx, DatasetKind::Snapshot).await?;
    store
        .put(&ds, b("old"), b("v"), Some(now - 2 * 3_600_000))
        .await?;
    store.put(&ds, b("fresh"), b("v"), Some(now)).await?;
    let all = store.list_all(&ds, 10).await?;
    let keys: Vec<_> = all.iter().map(|(k, _)| k.clone()).collect();
    ensure!(
        keys == vec![b("fresh")],
        "list returned {keys:?}, want only the fresh key"
    );
    Ok(())
}

/// Contract, Datasets: `drop_dataset` removes the dataset and its data; a re-created dataset starts
/// empty. Dropping a missing dataset is `Ok`. (Chronon has no drop; tests and tools need it.)
pub(crate) async fn drop_removes_dataset_and_data(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    store.put(&ds, b("k"), b("v"), Some(T0)).await?;
    store.drop_dataset(&ds).await?;
    expect_err(
        &store.get(&ds, b("k")).await,
        "DatasetNotFound",
        "get after drop",
    )?;
    store.create_default(&ds).await?;
    ensure!(
        store.get(&ds, b("k")).await?.is_none(),
        "re-created dataset still holds dropped data"
    );
    Ok(())
}

/// Contract, Datasets: get, put, `list` and `dataset_props` on a missing dataset are
/// `DatasetNotFound`.
pub(crate) async fn missing_dataset_is_not_found(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.name("_BATCH");
    expect_err(&store.get(&ds, b("k")).await, "DatasetNotFound", "get")?;
    expect_err(
        &store.put(&ds, b("k"), b("v"), Some(T0)).await,
        "DatasetNotFound",
        "put",
    )?;
    expect_err(&store.list(&ds, 10, None).await, "DatasetNotFound", "list")?;
    expect_err(
        &store.dataset_props(&ds).await,
        "DatasetNotFound",
        "dataset_props",
    )?;
    Ok(())
}

/// Contract, Datasets: Error messages name the dataset.
pub(crate) async fn errors_name_the_dataset(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let missing = cx.name("_BATCH");
    let err = store.get(&missing, b("k")).await.err();
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        msg.contains(&missing),
        "error message {msg:?} does not name dataset {missing}"
    );
    let ds = cx.snapshot().await?;
    let err = store.put(&ds, b(""), b("v"), Some(T0)).await.err();
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        msg.contains(&ds),
        "InvalidKey message {msg:?} does not name dataset {ds}"
    );
    Ok(())
}
