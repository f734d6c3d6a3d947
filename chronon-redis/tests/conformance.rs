//! The full conformance suite against a real Redis (`conformance::launch::redis`: the
//! environment's server, a container or a `redis-server` child, else a loud skip).

use chronon_redis::{RedisOptions, RedisStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_passes_the_suite() {
    let Some(server) = conformance::launch::redis::redis().await else {
        return;
    };
    println!("redis via {}: {}", server.method, server.url);
    // A prefix of its own, so a shared server from CHRONON_REDIS_URL keeps other data apart.
    let options = RedisOptions::new(server.url.clone())
        .with_prefix(format!("chronon_test_{:08x}", rand::random::<u32>()));
    let factory = conformance::FnFactory::new("redis", move || RedisStore::open(options.clone()));
    conformance::assert_conformance(factory).await;
}
