//! The full conformance suite against DynamoDB Local (or `CHRONON_DYNAMO_ENDPOINT`).

use std::time::Duration;

use chronon_dynamo::{DynamoOptions, DynamoStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_passes_the_suite() {
    let Some(server) = conformance::launch::dynamodb::dynamodb().await else {
        return;
    };
    println!("dynamodb at {} ({})", server.endpoint, server.method);
    // DynamoDB Local (Java + SQLite) on a small shared machine can take longer than the 10 s
    // production default for 2,000 range queries; a table prefix per run keeps runs apart.
    let options = DynamoOptions::local(server.endpoint.clone())
        .with_region("us-west-2")
        .with_timeout(Duration::from_secs(60))
        .with_table_prefix(format!("t{:08x}_", rand::random::<u32>()));
    let factory =
        conformance::FnFactory::new("dynamodb", move || DynamoStore::open(options.clone()));
    conformance::assert_conformance(factory).await;
}
