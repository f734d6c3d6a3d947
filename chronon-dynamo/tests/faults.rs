//! Faults against a real DynamoDB Local child process, through the shared scenarios in
//! `conformance::faults`: killed mid-stream and restarted on the same on-disk tables (`-dbPath`),
//! paused with SIGSTOP, and absent (connection refused). These need a child server they can
//! signal, so they never use `CHRONON_DYNAMO_ENDPOINT`.

use std::sync::Arc;
use std::time::Duration;

use chronon_core::{KvError, KvStore};
use chronon_dynamo::{DynamoOptions, DynamoStore};
use conformance::faults::{self, FaultOptions};
use conformance::launch;

/// DynamoDB Local is a JVM on a busy 2-core machine: a few seconds, not the 10 s default, so the
/// pause scenario stays short.
const TIMEOUT: Duration = Duration::from_secs(3);

async fn child_or_skip() -> Option<launch::dynamodb::DynamoServer> {
    match launch::dynamodb::durable_child().await {
        Ok(s) => Some(s),
        Err(why) => {
            launch::skip("dynamodb", &why);
            None
        }
    }
}

async fn open(endpoint: &str) -> Result<Arc<dyn KvStore>, KvError> {
    let options = DynamoOptions::local(endpoint)
        .with_region("us-west-2")
        .with_timeout(TIMEOUT)
        .with_table_prefix("faults_");
    Ok(Arc::new(DynamoStore::open(options).await?) as Arc<dyn KvStore>)
}

fn options(port: u16) -> FaultOptions {
    let mut opts = FaultOptions::new(TIMEOUT, format!("127.0.0.1:{port}"));
    opts.batch = 50;
    // The JVM needs several seconds to listen again.
    opts.recovery = Duration::from_secs(120);
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_write_and_client_recovers() {
    let Some(mut server) = child_or_skip().await else {
        return;
    };
    let store = open(&server.endpoint).await.expect("connect");
    let child = server.child.as_mut().expect("a child server");
    let opts = options(child.port);
    let report = faults::kill_mid_stream(store, child, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("dynamo {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_pause_times_out_within_the_timeout_and_recovers() {
    let Some(mut server) = child_or_skip().await else {
        return;
    };
    let store = open(&server.endpoint).await.expect("connect");
    let child = server.child.as_mut().expect("a child server");
    let opts = options(child.port);
    let report = faults::pause_times_out(store, child, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("dynamo {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_unavailable_naming_the_address() {
    let port = launch::free_port().expect("free port");
    let endpoint = format!("http://127.0.0.1:{port}");
    let report = faults::refused_is_unavailable(|| open(&endpoint), &options(port))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("dynamo {report}");
}
