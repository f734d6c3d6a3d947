//! Contract section `sizes` (`chronon-core/CONTRACT.md`, "Sizes at page and chunk limits"):
//! every answer is whole whatever the drivers' page and chunk limits are. Drivers page range
//! queries (DynamoDB's `Query` at 1 MB, MongoDB's cursor batches, CQL's page size) and adapters
//! chunk batches (25 for DynamoDB's `BatchWriteItem`, 100 for `BatchGetItem`, 1,000 for a
//! pipeline); an adapter that forgets the second page or the last partial chunk is caught here.

use anyhow::{ensure, Result};
use chronon_core::{GetRequest, PutRequest};

use super::{b, ok_values, retry, CHUNK_BOUNDARIES, T0};
use crate::runner::Ctx;

/// Writes `n` versions of key `k` (values `v0..`, timestamps `T0 + i`) and three versions of its
/// neighbour `k2`, then checks a full range, a range from the middle, and the latest.
async fn many_versions(cx: &Ctx, n: i64) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    let mut puts: Vec<PutRequest> = (0..n)
        .map(|i| PutRequest::new(&ds, b("k"), b(format!("v{i}")), Some(T0 + i)))
        .collect();
    puts.extend((0..3).map(|i| PutRequest::new(&ds, b("k2"), b("other"), Some(T0 + i))));
    retry::put_all(cx, &store, puts).await?;
    let middle = n / 2;
    let got = retry::get_all(
        cx,
        &store,
        vec![
            GetRequest::range(&ds, b("k"), 0, None),
            GetRequest::range(&ds, b("k"), T0 + middle, None),
            GetRequest::latest(&ds, b("k")),
        ],
    )
    .await?;
    let all = ok_values(&got[0])?;
    ensure!(
        all.len() as i64 == n,
        "a range over {n} versions returned {}",
        all.len()
    );
    for (i, v) in all.iter().enumerate() {
        ensure!(
            v.millis == T0 + i as i64 && v.bytes == b(format!("v{i}")),
            "version {i} of {n} is ({:?}, {}), want (v{i}, {})",
            v.bytes,
            v.millis,
            T0 + i as i64
        );
    }
    let tail = ok_values(&got[1])?;
    ensure!(
        tail.len() as i64 == n - middle && tail.first().map(|v| v.millis) == Some(T0 + middle),
        "a range from version {middle} of {n} returned {} versions starting at {:?}",
        tail.len(),
        tail.first().map(|v| v.millis)
    );
    let latest = ok_values(&got[2])?;
    ensure!(
        latest.len() == 1 && latest[0].bytes == b(format!("v{}", n - 1)),
        "latest of {n} versions is {latest:?}"
    );
    Ok(())
}

/// Contract, Sizes: a range over 1,500 versions of one key returns all of them, oldest first
/// (more than one page of 1,000).
pub(crate) async fn range_of_1500_versions(cx: &Ctx) -> Result<()> {
    many_versions(cx, 1_500).await
}

/// Contract, Sizes: a range over 12,000 versions of one key returns all of them, oldest first
/// (more than 10,000).
pub(crate) async fn range_of_12000_versions(cx: &Ctx) -> Result<()> {
    many_versions(cx, 12_000).await
}

/// Contract, Sizes: one `multi_put` of 1, 25, 100, 101, 999, 1,000 or 1,001 requests stores
/// every request (read back in batches of 10, so a `multi_get` bug cannot hide here).
pub(crate) async fn put_batches_at_chunk_boundaries(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    for n in CHUNK_BOUNDARIES {
        let ds = cx.snapshot().await?;
        let puts = (0..n)
            .map(|i| PutRequest::new(&ds, b(format!("key{i:05}")), b(format!("v{i}")), Some(T0)))
            .collect();
        retry::put_all(cx, &store, puts).await?;
        for start in (0..n).step_by(10) {
            let keys: Vec<u64> = (start..(start + 10).min(n)).collect();
            let got = retry::get_all(
                cx,
                &store,
                keys.iter()
                    .map(|i| GetRequest::latest(&ds, b(format!("key{i:05}"))))
                    .collect(),
            )
            .await?;
            for (i, r) in keys.iter().zip(&got) {
                let v = ok_values(r)?;
                ensure!(
                    v.len() == 1 && v[0].bytes == b(format!("v{i}")),
                    "after one multi_put of {n}, key{i:05} holds {v:?}"
                );
            }
        }
    }
    Ok(())
}

/// Contract, Sizes: one `multi_get` of 1, 25, 100, 101, 999, 1,000 or 1,001 requests answers
/// every request with its own value (written in batches of 10, so a `multi_put` bug cannot hide
/// here).
pub(crate) async fn get_batches_at_chunk_boundaries(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    let most = CHUNK_BOUNDARIES.into_iter().max().unwrap_or(0);
    for start in (0..most).step_by(10) {
        let puts = (start..(start + 10).min(most))
            .map(|i| PutRequest::new(&ds, b(format!("key{i:05}")), b(format!("v{i}")), Some(T0)))
            .collect();
        retry::put_all(cx, &store, puts).await?;
    }
    for n in CHUNK_BOUNDARIES {
        // 3 is coprime with 1,001: distinct keys spread over the whole range.
        let keys: Vec<u64> = (0..n).map(|i| (i * 3) % most).collect();
        let got = retry::get_all(
            cx,
            &store,
            keys.iter()
                .map(|i| GetRequest::latest(&ds, b(format!("key{i:05}"))))
                .collect(),
        )
        .await?;
        ensure!(
            got.len() as u64 == n,
            "{n} requests, {} responses",
            got.len()
        );
        for (pos, (i, r)) in keys.iter().zip(&got).enumerate() {
            let v = ok_values(r)?;
            ensure!(
                v.len() == 1 && v[0].bytes == b(format!("v{i}")),
                "multi_get of {n}: response {pos} (key{i:05}) holds {v:?}"
            );
        }
    }
    Ok(())
}
