//! Resource use against a real MongoDB-protocol child server (SecantusDB here, see
//! `conformance::launch::mongodb`), through `conformance::resources`: under concurrent
//! callers the store holds at most the driver's `maxPoolSize` (default 10) pooled connections plus
//! its monitoring connections, and dropping the store closes them within the scenario's 5 s (the
//! store shuts its driver client down on drop; otherwise the driver's RTT monitor keeps one
//! connection until its next 10 s heartbeat). Needs a child server of its own, so it never uses
//! `CHRONON_MONGO_URI`.

use std::sync::Arc;
use std::time::Duration;

use chronon_core::KvStore;
use chronon_mongo::{MongoOptions, MongoStore};
use conformance::launch;
use conformance::resources::{self, ResourceOptions};

/// The driver's default `maxPoolSize` (operations wait for a pooled connection beyond it).
const MAX_POOL_SIZE: usize = 10;
/// Server monitoring: the heartbeat connection and, with the streaming protocol, the RTT one.
const MONITORING: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded_and_closed_on_drop() {
    let server = match launch::mongodb::child().await {
        Ok(s) => s,
        Err(why) => return launch::skip("mongodb", &why),
    };
    let port = server.child.as_ref().expect("a child server").port;
    let uri = server.uri.clone();
    let mut opts = ResourceOptions::new(MAX_POOL_SIZE + MONITORING);
    // SecantusDB is a Python server: more callers than the pool, but a short burst.
    opts.concurrency = 32;
    opts.burst = Duration::from_secs(3);
    let report = resources::connections_bounded_and_closed_on_drop(
        || async move {
            let options = MongoOptions::new(uri)
                .with_database("chronon_resources")
                .with_timeout(Duration::from_secs(10));
            Ok(Arc::new(MongoStore::open(options).await?) as Arc<dyn KvStore>)
        },
        port,
        &opts,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    println!("mongo {report}");
}
