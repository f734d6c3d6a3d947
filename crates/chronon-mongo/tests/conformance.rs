//! The full conformance suite against a real MongoDB-protocol server (see
//! `conformance::launch::mongo` for how it is found or started).

use std::sync::Arc;
use std::time::Instant;

use chronon_core::KvStore;
use chronon_mongo::{MongoOptions, MongoStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongo_store_passes_the_suite() {
    let Some(server) = conformance::launch::mongo::mongo().await else {
        return;
    };
    println!("mongo: {} ({})", server.uri, server.method);
    let uri = server.uri.clone();
    let factory = conformance::FnFactory::new("mongo", move || {
        let uri = uri.clone();
        async move {
            let store = MongoStore::connect(&uri, MongoOptions::default().with_database("chronon_conformance")).await?;
            Ok(Arc::new(store) as Arc<dyn KvStore>)
        }
    });
    let started = Instant::now();
    let report = conformance::run_all(factory).await;
    println!("{report}");
    println!("suite took {:.1} s", started.elapsed().as_secs_f64());
    assert!(report.cases.len() >= 40, "only {} cases", report.cases.len());
    report.assert_passed();
}
