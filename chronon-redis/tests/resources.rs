//! Resource use against a real `redis-server` child process, through
//! `conformance::resources`: under 64 concurrent callers the store holds exactly one connection
//! (the `ConnectionManager`'s multiplexed connection, see the README), and dropping the store
//! closes it. Needs a child server of its own, so it never uses `CHRONON_REDIS_URL` (another
//! client of a shared server would not count anyway: only this process's sockets are counted).

use std::sync::Arc;
use std::time::Duration;

use chronon_core::KvStore;
use chronon_redis::{RedisOptions, RedisStore};
use conformance::launch;
use conformance::resources::{self, ResourceOptions};

/// One `ConnectionManager`: every call of every clone is multiplexed on one connection.
const BOUND: usize = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded_and_closed_on_drop() {
    let server = match launch::redis::child().await {
        Ok(s) => s,
        Err(why) => return launch::skip("redis", &why),
    };
    let port = server.child.as_ref().expect("a child server").port;
    let url = server.url.clone();
    let report = resources::connections_bounded_and_closed_on_drop(
        || async move {
            let opts = RedisOptions::new(&url)
                .with_timeout(Duration::from_secs(5))
                .with_prefix("resources");
            Ok(Arc::new(RedisStore::open(opts).await?) as Arc<dyn KvStore>)
        },
        port,
        &ResourceOptions::new(BOUND),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    println!("redis {report}");
}
