//! Contract section `list` (`chronon-core/CONTRACT.md`, "list"): `list` pages.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Result};
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
