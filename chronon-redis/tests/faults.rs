//! Faults against a real `redis-server` child process, through the shared scenarios in
//! `conformance::faults`: killed mid-stream and restarted on the same durable data
//! (`--appendonly yes --appendfsync always`), paused with SIGSTOP, and absent (connection
//! refused). These need a child server they can signal, so they never use `CHRONON_REDIS_URL`.

use std::sync::Arc;
use std::time::Duration;

use chronon_core::{DatasetKind, DatasetProps, KvStore};
use chronon_redis::{RedisOptions, RedisStore};
use conformance::faults::{self, FaultOptions};
use conformance::launch;

const TIMEOUT: Duration = Duration::from_millis(1500);

async fn child_or_skip() -> Option<launch::redis::RedisServer> {
    match launch::redis::child().await {
        Ok(s) => Some(s),
        Err(why) => {
            launch::skip("redis", &why);
            None
        }
    }
}

async fn open(url: &str) -> Result<RedisStore, chronon_core::KvError> {
    RedisStore::open(
        RedisOptions::new(url)
            .with_timeout(TIMEOUT)
            .with_prefix("faults"),
    )
    .await
}

fn options(port: u16) -> FaultOptions {
    FaultOptions::new(TIMEOUT, format!("127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_write_and_client_recovers() {
    let Some(mut server) = child_or_skip().await else {
        return;
    };
    let store: Arc<dyn KvStore> = Arc::new(open(&server.url).await.expect("open"));
    let child = server.child.as_mut().expect("a child server");
    let opts = options(child.port);
    let report = faults::kill_mid_stream(store, child, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("redis {report}");

    // A brand-new client sees a dataset's kind on the restarted server too.
    let store = open(&server.url).await.expect("open after restart");
    store
        .create("FAULT_KIND_STREAMING", &DatasetProps::time_series())
        .await
        .expect("create");
    let child = server.child.as_mut().expect("a child server");
    tokio::task::block_in_place(|| child.restart()).expect("restart");
    let fresh = open(&server.url).await.expect("open after second restart");
    let props = fresh
        .dataset_props("FAULT_KIND_STREAMING")
        .await
        .expect("props after restart");
    assert_eq!(props.kind, DatasetKind::TimeSeries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_pause_times_out_within_the_timeout_and_recovers() {
    let Some(mut server) = child_or_skip().await else {
        return;
    };
    let store: Arc<dyn KvStore> = Arc::new(open(&server.url).await.expect("open"));
    let child = server.child.as_mut().expect("a child server");
    let opts = options(child.port);
    let report = faults::pause_times_out(store, child, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("redis {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_unavailable_naming_the_address() {
    let port = launch::free_port().expect("free port");
    let url = format!("redis://127.0.0.1:{port}/0");
    let opts = options(port);
    let report = faults::refused_is_unavailable(
        || async move { Ok(Arc::new(open(&url).await?) as Arc<dyn KvStore>) },
        &opts,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    println!("redis {report}");

    // A store whose server goes away after it connected: calls are Unavailable too.
    let Some(mut server) = child_or_skip().await else {
        return;
    };
    let store = open(&server.url).await.expect("open");
    let child = server.child.as_mut().expect("a child server");
    let opts = options(child.port);
    tokio::task::block_in_place(|| child.kill()).expect("kill");
    let store: Arc<dyn KvStore> = Arc::new(store);
    let report = faults::refused_is_unavailable(|| async move { Ok(store) }, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("redis after the server died: {report}");
}
