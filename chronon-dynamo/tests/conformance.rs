//! The full conformance suite against DynamoDB Local (or `CHRONON_DYNAMO_ENDPOINT`).

use std::sync::Arc;
use std::time::Instant;

use chronon_core::KvStore;
use chronon_dynamo::{DynamoOptions, DynamoStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_passes_the_suite() {
    let Some(server) = conformance::launch::dynamo::dynamo().await else {
        return;
    };
    println!("dynamodb at {} ({})", server.endpoint, server.method);
    // A prefix per run, so a shared endpoint never mixes runs.
    let prefix = format!("t{:08x}_", rand_tag());
    let endpoint = server.endpoint.clone();
    let factory = conformance::FnFactory::new("dynamo", move || {
        // DynamoDB Local is an emulator (Java + SQLite) on a small shared machine: 2,000
        // range queries in one call can take longer than the 10 s production default there.
        let options = DynamoOptions::local(endpoint.clone())
            .with_region("us-west-2")
            .with_timeout(std::time::Duration::from_secs(60))
            .with_table_prefix(prefix.clone());
        async move { Ok(Arc::new(DynamoStore::connect(options).await?) as Arc<dyn KvStore>) }
    });
    let started = Instant::now();
    let report = conformance::run_all(factory).await;
    println!("{report}");
    let mut slowest: Vec<_> = report.cases.iter().map(|c| (c.millis, c.name)).collect();
    slowest.sort();
    println!(
        "slowest cases (ms): {:?}",
        &slowest[slowest.len().saturating_sub(5)..]
    );
    println!("suite took {:.1} s", started.elapsed().as_secs_f64());
    if std::env::var_os("CHRONON_CASES").is_none() {
        assert!(
            report.cases.len() >= 40,
            "only {} cases ran",
            report.cases.len()
        );
    }
    report.assert_passed();
    drop(server);
}

fn rand_tag() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id()
}
