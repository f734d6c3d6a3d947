//! Contract section `list` (`chronon-core/CONTRACT.md`, "list"): `list` pages.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Result};
use chronon_core::batch::now_millis;
use chronon_core::{KvStoreExt, PutRequest};

use super::{b, expect_err, expect_ok, T0};
use crate::runner::Ctx;

/// Contract, list: Following `next` until `None` visits every key exactly once (257 keys, pages of
/// 10), no page over `limit`.
pub(crate) async fn paging_visits_every_key_once(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    for ds in [cx.snapshot().await?, cx.time_series().await?] {
        let puts = (0..257)
            .map(|i| PutRequest::new(&ds, b(format!("key{i}")), b("v"), Some(T0)))
            .collect();
        for r in store.multi_put(puts).await {
            expect_ok(r, "put")?;
        }
        let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            pages += 1;
            if pages > 1000 {
                bail!("list did not finish after 1000 pages of 10");
            }
            let page = store.list(&ds, 10, cursor).await?;
            ensure!(
                page.entries.len() <= 10,
                "page of {} entries for limit 10",
                page.entries.len()
            );
            for (k, _) in page.entries {
                *seen.entry(k.to_vec()).or_default() += 1;
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        ensure!(
            seen.len() == 257,
            "list visited {} distinct keys, want 257",
            seen.len()
        );
        let twice: Vec<_> = seen
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect();
        ensure!(twice.is_empty(), "keys listed more than once: {twice:?}");
    }
    Ok(())
}

/// Contract, list: Each key comes with its latest version (by ts).
pub(crate) async fn returns_latest_value_per_key(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    for (v, ts) in [("old", T0), ("new", T0 + 5), ("mid", T0 + 2)] {
        store.put(&ds, b("k"), b(v), Some(ts)).await?;
    }
    let all = store.list_all(&ds, 100).await?;
    ensure!(
        all.len() == 1,
        "list returned {} entries for one key",
        all.len()
    );
    ensure!(
        all[0].1.bytes == b("new") && all[0].1.millis == T0 + 5,
        "list returned {:?}",
        all[0]
    );
    Ok(())
}

/// Contract, list: An empty dataset gives one empty page without a cursor.
pub(crate) async fn empty_dataset_has_no_entries(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    let page = store.list(&ds, 10, None).await?;
    ensure!(
        page.entries.is_empty() && page.next.is_none(),
        "empty dataset listed {page:?}"
    );
    Ok(())
}

/// Contract, list: A missing dataset is `DatasetNotFound`.
pub(crate) async fn list_of_missing_dataset_is_not_found(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    expect_err(
        &store.list(&cx.name("_BATCH"), 10, None).await,
        "DatasetNotFound",
        "list of a missing dataset",
    )
}

/// Contract, list: in a dataset with a TTL, paging visits every live key exactly once and no
/// expired one, when expired entries sit between live ones, fill whole pages, or precede the
/// only live keys (DynamoDB's `Scan` counts expired items against its limit, so a correct adapter
/// may return short or empty pages with more to come).
pub(crate) async fn list_pages_across_expired_runs(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let now = now_millis();
    let old = now - 2 * 3_600_000;
    // Expired: a run of 70 keys (ten pages of 7) and every third key elsewhere.
    fn scattered(i: usize) -> bool {
        (20..90).contains(&i) || i.is_multiple_of(3)
    }
    // Expired: everything before the last three keys.
    fn leading(i: usize) -> bool {
        i < 100
    }
    /// How many keys, and which of them are written already expired.
    type Layout = (usize, fn(usize) -> bool);
    let layouts: [Layout; 2] = [(200, scattered), (103, leading)];
    for (n, expired) in layouts {
        let ds = super::datasets::ttl_dataset(cx, chronon_core::DatasetKind::Snapshot).await?;
        let puts = (0..n)
            .map(|i| {
                let ts = if expired(i) { old } else { now };
                PutRequest::new(&ds, b(format!("k{i:03}")), b(format!("v{i}")), Some(ts))
            })
            .collect();
        super::retry::put_all(cx, &store, puts).await?;
        let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        let mut cursor = None;
        for pages in 1.. {
            if pages > 1000 {
                bail!("list did not finish after 1000 pages of 7");
            }
            let page = store.list(&ds, 7, cursor).await?;
            ensure!(
                page.entries.len() <= 7,
                "page of {} entries for limit 7",
                page.entries.len()
            );
            for (k, _) in page.entries {
                *seen.entry(k.to_vec()).or_default() += 1;
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let want: Vec<Vec<u8>> = (0..n)
            .filter(|i| !expired(*i))
            .map(|i| format!("k{i:03}").into_bytes())
            .collect();
        let got: Vec<Vec<u8>> = seen.keys().cloned().collect();
        let missing: Vec<String> = want
            .iter()
            .filter(|k| !seen.contains_key(*k))
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        let extra: Vec<String> = got
            .iter()
            .filter(|k| !want.contains(k))
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        let twice = seen.values().filter(|c| **c > 1).count();
        ensure!(
            missing.is_empty() && extra.is_empty() && twice == 0,
            "listing {} live of {n} keys: missing {missing:?}, expired listed {extra:?}, \
             {twice} listed twice",
            want.len()
        );
    }
    Ok(())
}
