//! The dataset metadata cache (`MongoOptions::metadata_cache_ttl`) across two clients of one
//! database: what a store does itself is seen at once, a missing dataset is never remembered,
//! and another client's drop is seen within the TTL.

use std::time::Duration;

use anyhow::{ensure, Result};
use chronon_core::{KvError, KvStore, KvStoreExt};
use chronon_mongo::{MongoOptions, MongoStore};

async fn store(uri: &str, db: &str, ttl: Duration) -> Result<MongoStore> {
    let mut options = MongoOptions::new(uri)
        .with_database(db)
        .with_timeout(Duration::from_secs(60));
    options.metadata_cache_ttl = ttl;
    Ok(MongoStore::open(options).await?)
}

fn not_found<T: std::fmt::Debug>(r: &Result<T, KvError>) -> bool {
    matches!(r, Err(KvError::DatasetNotFound { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_see_each_others_datasets() -> Result<()> {
    let Some(server) = conformance::launch::mongodb::mongodb().await else {
        return Ok(());
    };
    let db = format!("chronon_cache_{}", std::process::id());
    let ttl = Duration::from_millis(1500);
    let a = store(&server.uri, &db, ttl).await?;
    let b = store(&server.uri, &db, ttl).await?;

    // Missing for A, then created by B: A can write at once (a miss is not remembered).
    let r = a.put("CACHE_BATCH", "k", "v0", Some(1)).await;
    ensure!(not_found(&r), "put before create: {r:?}");
    b.create_default("CACHE_BATCH").await?;
    a.put("CACHE_BATCH", "k", "v1", Some(2)).await?;
    ensure!(b.get_string("CACHE_BATCH", "k").await?.as_deref() == Some("v1"));

    // A's own drop is seen by A at once, although A had the dataset cached.
    a.drop_dataset("CACHE_BATCH").await?;
    let r = a.put("CACHE_BATCH", "k", "v2", Some(3)).await;
    ensure!(not_found(&r), "put after own drop: {r:?}");

    // Dropped by B while A has it cached: A sees it once the TTL has passed.
    b.create_default("CACHE_BATCH").await?;
    ensure!(a.get("CACHE_BATCH", "k").await?.is_none());
    b.drop_dataset("CACHE_BATCH").await?;
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let r = a.get("CACHE_BATCH", "k").await;
    ensure!(
        not_found(&r),
        "get after the TTL of another client's drop: {r:?}"
    );

    // With the cache off, another client's drop is seen by the very next call.
    let c = store(&server.uri, &db, Duration::ZERO).await?;
    b.create_default("CACHE_BATCH").await?;
    c.put("CACHE_BATCH", "k", "v3", Some(4)).await?;
    b.drop_dataset("CACHE_BATCH").await?;
    let r = c.put("CACHE_BATCH", "k", "v4", Some(5)).await;
    ensure!(
        not_found(&r),
        "uncached put after another client's drop: {r:?}"
    );

    a.database().drop().await?;
    Ok(())
}
