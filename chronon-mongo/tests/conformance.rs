//! The full conformance suite against a real MongoDB-protocol server (see
//! `conformance::launch::mongodb` for how it is found or started, and why SecantusDB is tuned).

use chronon_mongo::{MongoOptions, MongoStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongodb_store_passes_the_suite() {
    let Some(server) = conformance::launch::mongodb::mongodb().await else {
        return;
    };
    println!("mongodb: {} ({})", server.uri, server.method);
    let mut options = MongoOptions::new(&server.uri).with_database("chronon_conformance");
    if let Some(slow) = server.slow_server_tuning() {
        options.timeout = slow.call_timeout;
        options.get_batch_size = slow.keys_per_find;
        options.bulk_batch_size = slow.rows_per_bulk_command;
        options.bulk_concurrency = slow.bulk_commands_in_flight;
    }
    let factory = conformance::FnFactory::new("mongodb", move || {
        let options = options.clone();
        async move { MongoStore::open(options).await }
    });
    conformance::assert_conformance_with(factory, server.suite_run_options()).await;
}
