//! The full conformance suite against a real ScyllaDB/Cassandra: `CHRONON_SCYLLA_URI`, else a
//! `scylladb/scylla` container, else a loud `SKIPPED scylla` line (a failure when
//! `CHRONON_REQUIRE_BACKENDS` names scylla).
//!
//! ```text
//! CHRONON_SCYLLA_URI=scylla://HOST:9042/chronon_conformance cargo test -p chronon-scylla --test conformance -- --nocapture
//! ```

use chronon_scylla::ScyllaStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scylla_passes_the_suite() {
    let Some(server) = conformance::launch::scylla::scylla().await else {
        return;
    };
    println!("scylla: {} ({})", server.uri, server.method);
    let uri = server.uri.clone();
    conformance::assert_conformance(conformance::FnFactory::new("scylla", move || {
        let uri = uri.clone();
        async move { ScyllaStore::open_url(&uri).await }
    }))
    .await;
}
