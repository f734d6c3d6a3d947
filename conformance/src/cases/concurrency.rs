//! Contract section `concurrency` (`chronon-core/CONTRACT.md`, "Concurrency"): many tasks on one
//! shared client.

use anyhow::{anyhow, ensure, Result};
use chronon_core::{GetRequest, KvStoreExt, PutRequest};

use super::{b, expect_ok, ok_values, T0};
use crate::runner::Ctx;

/// Contract, Concurrency: 64 tasks writing and reading interleaved on one client lose nothing and
/// each sees its own latest write at once.
pub(crate) async fn tasks_64_interleaved_lose_nothing(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = store.clone();
        let ds = ds.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..10i64 {
                let puts = (0..5)
                    .map(|k| {
                        PutRequest::new(
                            &ds,
                            b(format!("t{t}-k{k}")),
                            b(format!("t{t}-r{round}")),
                            Some(T0 + round),
                        )
                    })
                    .collect();
                for r in store.multi_put(puts).await {
                    expect_ok(r, &format!("task {t} put"))?;
                }
                // Read-your-writes: each task sees its own latest write at once.
                let got = store.get(&ds, b(format!("t{t}-k{}", round % 5))).await?;
                ensure!(
                    got.as_ref().map(|v| v.bytes.clone()) == Some(b(format!("t{t}-r{round}"))),
                    "task {t} round {round} read {got:?}"
                );
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| anyhow!("task panicked: {e}"))??;
    }
    let reqs = (0..64)
        .flat_map(|t| (0..5).map(move |k| (t, k)))
        .map(|(t, k)| GetRequest::range(&ds, b(format!("t{t}-k{k}")), 0, None))
        .collect();
    for r in store.multi_get(reqs).await {
        let n = ok_values(&r)?.len();
        ensure!(n == 10, "{:?} holds {n} versions, want 10", r.request.key);
    }
    Ok(())
}

/// Contract, Concurrency: 32 concurrent puts of versions of one key all land.
pub(crate) async fn concurrent_versions_of_one_key(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    let tasks: Vec<_> = (0..32i64)
        .map(|i| {
            let store = store.clone();
            let ds = ds.clone();
            tokio::spawn(async move {
                store
                    .put(&ds, b("hot"), b(format!("v{i}")), Some(T0 + i))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| anyhow!("task panicked: {e}"))??;
    }
    let got = store
        .multi_get(vec![GetRequest::range(&ds, b("hot"), 0, None)])
        .await;
    let ts: Vec<i64> = ok_values(&got[0])?.iter().map(|v| v.millis).collect();
    ensure!(
        ts == (0..32).map(|i| T0 + i).collect::<Vec<_>>(),
        "versions after 32 concurrent puts: {ts:?}"
    );
    Ok(())
}
