//! Contract sections `clients` and `promptness` (`chronon-core/CONTRACT.md`, "Several clients"
//! and "Promptness"): what one client writes, another client that already read the key sees on
//! its next read (no client-side read cache, positive or negative), and trivial calls make no
//! round trip. Both run alone (exclusive), opening their own clients.

use anyhow::{bail, ensure, Result};
use chronon_core::{DatasetProps, GetRequest, KvStore, KvStoreExt, PutRequest};

use super::{b, ok_values, pairs, retry, T0};
use crate::runner::Ctx;

/// Reads `key` through `client` (latest and full range), as `(value, ts)` pairs.
async fn read(
    client: &dyn KvStore,
    ds: &str,
    key: &str,
) -> Result<(Vec<(bytes::Bytes, i64)>, Vec<(bytes::Bytes, i64)>)> {
    let got = client
        .multi_get(vec![
            GetRequest::latest(ds, b(key)),
            GetRequest::range(ds, b(key), 0, None),
        ])
        .await;
    Ok((pairs(&ok_values(&got[0])?), pairs(&ok_values(&got[1])?)))
}

/// Contract, Several clients: client B reads a key, client A overwrites it (a newer version, the
/// same version, a snapshot replace), and B's next read sees A's write; a key B read as missing
/// is seen as soon as A writes it.
pub(crate) async fn write_after_read_across_clients(cx: &Ctx) -> Result<()> {
    let a = cx.open().await?;
    if a.capabilities().single_client {
        cx.note(format!(
            "not applicable: {} allows one open client at a time",
            a.backend()
        ));
        return Ok(());
    }
    let b_client = cx.open().await?;
    let series = cx.name("_STREAMING");
    let snap = cx.name("_BATCH");
    retry::create(cx, &a, &series, &DatasetProps::time_series()).await?;
    retry::create(cx, &a, &snap, &DatasetProps::snapshot()).await?;

    // A newer version, then a same-timestamp replace, in a time series.
    a.put(&series, b("k"), b("v1"), Some(T0)).await?;
    let (latest, _) = read(b_client.as_ref(), &series, "k").await?;
    ensure!(latest == vec![(b("v1"), T0)], "B first read {latest:?}");
    a.put(&series, b("k"), b("v2"), Some(T0 + 1)).await?;
    let (latest, range) = read(b_client.as_ref(), &series, "k").await?;
    ensure!(
        latest == vec![(b("v2"), T0 + 1)] && range.len() == 2,
        "after A wrote a newer version, B reads latest {latest:?}, range {range:?}"
    );
    a.put(&series, b("k"), b("v3"), Some(T0 + 1)).await?;
    let (latest, range) = read(b_client.as_ref(), &series, "k").await?;
    ensure!(
        latest == vec![(b("v3"), T0 + 1)] && range == vec![(b("v1"), T0), (b("v3"), T0 + 1)],
        "after A replaced a version, B reads latest {latest:?}, range {range:?}"
    );

    // A snapshot replace (same or older timestamp: snapshots keep the last write).
    a.put(&snap, b("s"), b("old"), Some(T0)).await?;
    let (latest, _) = read(b_client.as_ref(), &snap, "s").await?;
    ensure!(latest == vec![(b("old"), T0)], "B first read {latest:?}");
    a.put(&snap, b("s"), b("new"), Some(T0)).await?;
    let (latest, _) = read(b_client.as_ref(), &snap, "s").await?;
    ensure!(
        latest == vec![(b("new"), T0)],
        "after A replaced a snapshot value, B reads {latest:?}"
    );

    // A miss is not remembered either.
    let (latest, _) = read(b_client.as_ref(), &snap, "later").await?;
    ensure!(latest.is_empty(), "B reads a key nobody wrote: {latest:?}");
    a.multi_put(vec![PutRequest::new(&snap, b("later"), b("x"), Some(T0))])
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()?;
    let (latest, _) = read(b_client.as_ref(), &snap, "later").await?;
    ensure!(
        latest == vec![(b("x"), T0)],
        "after A wrote a key B had read as missing, B reads {latest:?}"
    );
    Ok(())
}

/// How many times each empty call is made by the promptness case.
const EMPTY_CALLS: u64 = 50;

/// Contract, Promptness: an empty `multi_get` or `multi_put` is answered without a round trip to
/// the database (counted by the database itself, through the factory's call counter; without
/// one the case says so and checks only the answers).
pub(crate) async fn empty_batches_make_no_round_trip(cx: &Ctx) -> Result<()> {
    let store = cx.open().await?;
    let Some(before) = cx.factory().backend_calls().await else {
        for _ in 0..EMPTY_CALLS {
            ensure!(
                store.multi_get(vec![]).await.is_empty(),
                "empty get answered"
            );
            ensure!(
                store.multi_put(vec![]).await.is_empty(),
                "empty put answered"
            );
        }
        cx.note("round trips not counted: the factory has no call counter (backend_calls)");
        return Ok(());
    };
    // What reading the counter itself costs (Redis counts the INFO command, for example).
    let Some(again) = cx.factory().backend_calls().await else {
        bail!("the call counter answered once, then not at all");
    };
    let overhead = again.saturating_sub(before);
    for _ in 0..EMPTY_CALLS {
        ensure!(
            store.multi_get(vec![]).await.is_empty(),
            "empty get answered"
        );
        ensure!(
            store.multi_put(vec![]).await.is_empty(),
            "empty put answered"
        );
    }
    let Some(after) = cx.factory().backend_calls().await else {
        bail!("the call counter stopped answering");
    };
    let made = after.saturating_sub(again).saturating_sub(overhead);
    ensure!(
        made == 0,
        "{EMPTY_CALLS} empty multi_get and {EMPTY_CALLS} empty multi_put calls made {made} \
         requests to the database (its counter went {again} -> {after}, reading it costs \
         {overhead})"
    );
    Ok(())
}
