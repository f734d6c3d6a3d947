//! `RedisOptions::metadata_cache_ttl` across two clients of one server: reads may reuse a
//! registry entry for the interval, writes never do (no put lands in a dropped generation), and
//! a client's own drop is seen at once.

use std::time::Duration;

use chronon_core::{KvError, KvStore, KvStoreExt};
use chronon_redis::{RedisOptions, RedisStore};

async fn store(url: &str, prefix: &str, interval: Duration) -> RedisStore {
    let mut opts = RedisOptions::new(url).with_prefix(prefix);
    opts.metadata_cache_ttl = interval;
    RedisStore::open(opts).await.expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_reuse_the_registry_for_the_interval_writes_never() {
    let Some(server) = conformance::launch::redis::redis().await else {
        return;
    };
    let prefix = format!("chronon_regcheck_{:08x}", rand::random::<u32>());
    let interval = Duration::from_millis(1500);
    let a = store(&server.url, &prefix, interval).await;
    let b = store(&server.url, &prefix, interval).await;

    b.create_default("REG_BATCH").await.unwrap();
    b.put("REG_BATCH", "k", "old", Some(1)).await.unwrap();
    assert_eq!(
        a.get_string("REG_BATCH", "k").await.unwrap().as_deref(),
        Some("old")
    );

    // B drops and re-creates the dataset (a new generation) and writes to it.
    b.drop_dataset("REG_BATCH").await.unwrap();
    b.create_default("REG_BATCH").await.unwrap();
    b.put("REG_BATCH", "k", "new", Some(2)).await.unwrap();
    // Within the interval A's read may still use the dropped generation: its keys are gone.
    let stale = a.get_string("REG_BATCH", "k").await.unwrap();
    assert!(
        stale.is_none() || stale.as_deref() == Some("new"),
        "{stale:?}"
    );
    // A's write checks the registry, so it lands in the new generation, where B reads it.
    a.put("REG_BATCH", "k2", "from a", Some(3)).await.unwrap();
    assert_eq!(
        b.get_string("REG_BATCH", "k2").await.unwrap().as_deref(),
        Some("from a")
    );
    // That write refreshed A's entry: A's reads see the new generation now.
    assert_eq!(
        a.get_string("REG_BATCH", "k").await.unwrap().as_deref(),
        Some("new")
    );

    // A read-only client catches up once the interval has passed.
    let c = store(&server.url, &prefix, interval).await;
    assert_eq!(
        c.get_string("REG_BATCH", "k").await.unwrap().as_deref(),
        Some("new")
    );
    b.drop_dataset("REG_BATCH").await.unwrap();
    tokio::time::sleep(interval + Duration::from_millis(200)).await;
    let r = c.get("REG_BATCH", "k").await;
    assert!(matches!(r, Err(KvError::DatasetNotFound { .. })), "{r:?}");

    // A client's own drop is seen by its next read at once.
    a.create_default("REG_BATCH").await.unwrap();
    assert!(a.get("REG_BATCH", "k").await.unwrap().is_none());
    a.drop_dataset("REG_BATCH").await.unwrap();
    let r = a.get("REG_BATCH", "k").await;
    assert!(matches!(r, Err(KvError::DatasetNotFound { .. })), "{r:?}");

    // With the interval at zero, another client's drop is seen by the very next read.
    let d = store(&server.url, &prefix, Duration::ZERO).await;
    b.create_default("REG_BATCH").await.unwrap();
    assert!(d.get("REG_BATCH", "k").await.unwrap().is_none());
    b.drop_dataset("REG_BATCH").await.unwrap();
    let r = d.get("REG_BATCH", "k").await;
    assert!(matches!(r, Err(KvError::DatasetNotFound { .. })), "{r:?}");
}
