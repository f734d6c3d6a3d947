//! Faults against a real MongoDB-protocol child server (SecantusDB here, see
//! `conformance::launch::mongodb`), through the shared scenarios in
//! `conformance::faults`: killed mid-stream and restarted on the same storage directory, paused
//! with SIGSTOP, and absent (connection refused). These need a child server they can signal, so
//! they never use `CHRONON_MONGO_URI`.

use std::sync::Arc;
use std::time::Duration;

use chronon_core::{KvError, KvStore};
use chronon_mongo::{MongoOptions, MongoStore};
use conformance::faults::{self, FaultOptions};
use conformance::launch;

/// SecantusDB is a Python server: a few seconds, not the 10 s default, keeps the pause short.
const TIMEOUT: Duration = Duration::from_secs(3);

async fn child_or_skip() -> Option<launch::mongodb::MongoServer> {
    match launch::mongodb::child().await {
        Ok(s) => Some(s),
        Err(why) => {
            launch::skip("mongodb", &why);
            None
        }
    }
}

async fn open(uri: &str) -> Result<Arc<dyn KvStore>, KvError> {
    let options = MongoOptions::new(uri)
        .with_database("chronon_faults")
        .with_timeout(TIMEOUT);
    Ok(Arc::new(MongoStore::open(options).await?) as Arc<dyn KvStore>)
}

fn options(port: u16) -> FaultOptions {
    let mut opts = FaultOptions::new(TIMEOUT, format!("127.0.0.1:{port}"));
    // SecantusDB writes a few hundred upserts a second.
    opts.batch = 20;
    opts.recovery = Duration::from_secs(60);
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_write_and_client_recovers() {
    let Some(mut server) = child_or_skip().await else {
        return;
    };
    let store = open(&server.uri).await.expect("connect");
    let child = server.child.as_mut().expect("a child server");
    let opts = options(child.port);
    let report = faults::kill_mid_stream(store, child, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("mongo {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_pause_times_out_within_the_timeout_and_recovers() {
    let Some(mut server) = child_or_skip().await else {
        return;
    };
    let store = open(&server.uri).await.expect("connect");
    let child = server.child.as_mut().expect("a child server");
    let opts = options(child.port);
    let report = faults::pause_times_out(store, child, &opts)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("mongo {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_unavailable_naming_the_address() {
    let port = launch::free_port().expect("free port");
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    let report = faults::refused_is_unavailable(|| open(&uri), &options(port))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    println!("mongo {report}");
}
