//! The full conformance suite against a real Redis (`conformance::launch::redis`: the
//! environment's server, a container or a `redis-server` child, else a loud skip).

use chronon_redis::{RedisOptions, RedisStore};
use conformance::launch::LaunchMethod;

/// The server's own count of commands it has processed (`INFO stats`), for the suite's
/// promptness case.
async fn commands_processed(client: redis::Client) -> Option<u64> {
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut conn)
        .await
        .ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
}

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
    // Count round trips only on a server of our own: a shared one has other clients' commands.
    let factory = match server.method {
        LaunchMethod::Env(_) => factory,
        _ => {
            let client = redis::Client::open(server.url.as_str()).expect("the launcher's URL");
            factory.with_call_counter(move || commands_processed(client.clone()))
        }
    };
    conformance::assert_conformance(factory).await;
}
