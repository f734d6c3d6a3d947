//! Contract section `persistence` (`chronon-core/CONTRACT.md`, "Persistence"): kinds remembered by
//! the backend and nothing acknowledged lost, checked across clients. These cases run alone, so an
//! embedded store's lock is free.

use std::time::Duration;

use anyhow::{ensure, Result};
use chronon_core::{DatasetKind, DatasetProps, GetRequest, KvStoreExt, PutRequest};

use super::{b, ok_values, retry, T0};
use crate::runner::Ctx;

/// Contract, Persistence: A new client sees every version an old one wrote.
pub(crate) async fn new_client_sees_writes(cx: &Ctx) -> Result<()> {
    let ds = cx.name("_STREAMING");
    {
        let old = cx.open().await?;
        retry::create(cx, &old, &ds, &DatasetProps::for_dataset(&ds)).await?;
        old.put(&ds, b("k"), b("v1"), Some(T0)).await?;
        old.put(&ds, b("k"), b("v2"), Some(T0 + 1)).await?;
    }
    let new = cx.open().await?;
    let got = new
        .multi_get(vec![GetRequest::range(&ds, b("k"), 0, None)])
        .await;
    ensure!(
        ok_values(&got[0])?.len() == 2,
        "new client sees {:?}",
        got[0].values
    );
    Ok(())
}

/// Contract, Persistence: Kind and TTL are kept by the database, not the client (even against the
/// name's suffix).
pub(crate) async fn kind_and_ttl_survive_new_client(cx: &Ctx) -> Result<()> {
    let ts = cx.name("_BATCH");
    let snap = cx.name("_STREAMING");
    let ttl = Duration::from_secs(7 * 24 * 3600);
    {
        let old = cx.open().await?;
        retry::create(cx, &old, &ts, &DatasetProps::time_series().with_ttl(ttl)).await?;
        retry::create(cx, &old, &snap, &DatasetProps::snapshot()).await?;
    }
    let new = cx.open().await?;
    let p = new.dataset_props(&ts).await?;
    ensure!(
        p.kind == DatasetKind::TimeSeries && p.ttl == Some(ttl),
        "new client sees {p:?}"
    );
    let p = new.dataset_props(&snap).await?;
    ensure!(
        p.kind == DatasetKind::Snapshot && p.ttl.is_none(),
        "new client sees {p:?}"
    );
    Ok(())
}

/// Contract, Persistence: 2,000 acknowledged puts survive the client being dropped without a flush
/// or close.
pub(crate) async fn dropped_client_loses_nothing_acknowledged(cx: &Ctx) -> Result<()> {
    let ds = cx.name("_BATCH");
    {
        let old = cx.open().await?;
        retry::create(cx, &old, &ds, &DatasetProps::for_dataset(&ds)).await?;
        let puts = (0..2000)
            .map(|i| PutRequest::new(&ds, b(format!("k{i}")), b(format!("v{i}")), Some(T0)))
            .collect();
        // Retried requests count as acknowledged once they succeed (slow is not wrong).
        retry::put_all(cx, &old, puts).await?;
        // Dropped without any explicit flush or close.
    }
    let new = cx.open().await?;
    let got = retry::get_all(
        cx,
        &new,
        (0..2000)
            .map(|i| GetRequest::latest(&ds, b(format!("k{i}"))))
            .collect(),
    )
    .await?;
    let missing = got
        .iter()
        .filter(|r| ok_values(r).map(|v| v.is_empty()).unwrap_or(true))
        .count();
    ensure!(
        missing == 0,
        "{missing} of 2000 acknowledged writes missing in a new client"
    );
    Ok(())
}
