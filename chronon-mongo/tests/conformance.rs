//! The full conformance suite against a real MongoDB-protocol server (see
//! `conformance::launch::mongo` for how it is found or started).

use std::sync::Arc;
use std::time::Instant;

use std::time::Duration;

use chronon_core::KvStore;
use chronon_mongo::{MongoOptions, MongoStore};
use conformance::launch::LaunchMethod;
use conformance::RunOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongo_store_passes_the_suite() {
    let Some(server) = conformance::launch::mongo::mongo().await else {
        return;
    };
    println!("mongo: {} ({})", server.uri, server.method);
    let uri = server.uri.clone();
    let mut options = MongoOptions::default().with_database("chronon_conformance");
    let mut run_options = RunOptions::default();
    if server.method == LaunchMethod::ChildProcess {
        // SecantusDB (a Python server) is slow, and this is tuned for it explicitly (README,
        // "SecantusDB notes"): ~650 upserts/s, so the suite's 10,000-put batches need ~16 s,
        // more with the other cases running; and `$in` costs grow quadratically with the list
        // (1,000 keys: 4.5 s; 100 keys: 0.07 s), so reads go in chunks of 100 keys.
        // Index-ordered scans (`list`) materialise the whole collection (~3 s per page at
        // 30,000 documents), so the 100,000-row case needs more than the default 180 s per
        // case; smaller bulk commands keep the server fair to the cases running alongside.
        options.timeout = Duration::from_secs(300);
        options.get_batch_size = 100;
        options.bulk_batch_size = 1_000;
        options.bulk_concurrency = 2;
        run_options.case_timeout = Duration::from_secs(900);
    }
    let factory = conformance::FnFactory::new("mongo", move || {
        let (uri, options) = (uri.clone(), options.clone());
        async move {
            let store = MongoStore::connect(&uri, options.clone()).await?;
            Ok(Arc::new(store) as Arc<dyn KvStore>)
        }
    });
    let started = Instant::now();
    let report =
        conformance::run_with(Arc::new(factory), conformance::all_cases(), run_options).await;
    println!("{report}");
    println!("suite took {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        report.cases.len() >= 40,
        "only {} cases",
        report.cases.len()
    );
    report.assert_passed();
}
