//! The suite on the reference store: every case must pass.

use chronon_core::{KvError, MemoryStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_suite() {
    let db = MemoryStore::new(); // clones share data, like clients of one server
    conformance::assert_conformance(conformance::FnFactory::new("memory", move || {
        let db = db.clone();
        async move { Ok::<_, KvError>(db) }
    }))
    .await;
}
