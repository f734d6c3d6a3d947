//! The whole conformance suite on a fresh RocksDB directory. Each factory call opens a new
//! `RocksStore` on the same directory; RocksDB allows one open at a time, and the suite retries
//! an open that finds the directory still locked by a just-dropped client.

use chronon_rocks::{RocksOptions, RocksStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rocks_store_passes_the_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    conformance::assert_conformance(conformance::FnFactory::new("rocks", move || {
        RocksStore::open(RocksOptions::new(&path))
    }))
    .await;
}
