//! The full conformance suite against a real Redis: `CHRONON_REDIS_URL`, else testcontainers,
//! else a `redis-server` child process, else a loud skip (a failure when `redis` is named in
//! `CHRONON_REQUIRE_BACKENDS`).

use std::sync::Arc;

use chronon_core::KvStore;
use chronon_redis::{RedisOptions, RedisStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_passes_the_suite() {
    let Some(server) = conformance::launch::redis::redis().await else {
        return;
    };
    println!("redis via {}: {}", server.method, server.url);
    // A prefix of its own, so a shared server from CHRONON_REDIS_URL keeps other data apart.
    let prefix = format!("chronon_test_{:08x}", rand::random::<u32>());
    let url = server.url.clone();
    let factory = conformance::FnFactory::new("redis", move || {
        let opts = RedisOptions::new(url.clone()).with_prefix(prefix.clone());
        async move { Ok(Arc::new(RedisStore::open(opts).await?) as Arc<dyn KvStore>) }
    });
    let report = conformance::run_all(factory).await;
    println!("{report}");
    assert!(
        report.cases.len() >= 40,
        "only {} cases ran",
        report.cases.len()
    );
    report.assert_passed();
}
