//! The suite on the reference store: every case must pass.

use std::sync::Arc;

use chronon_core::{KvStore, MemoryStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_suite() {
    let db = MemoryStore::new();
    let factory = conformance::FnFactory::new("memory", move || {
        let db = db.clone();
        async move { Ok(Arc::new(db) as Arc<dyn KvStore>) }
    });
    let report = conformance::run_all(factory).await;
    println!("{report}");
    assert!(
        report.cases.len() >= 40,
        "only {} cases",
        report.cases.len()
    );
    report.assert_passed();
}
