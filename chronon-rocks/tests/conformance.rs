//! The whole conformance suite on a fresh RocksDB directory. Each factory call opens a new
//! `RocksStore` on the same directory; RocksDB allows one open at a time, and the suite runs its
//! cross-client cases alone after dropping the shared client, so an open only has to wait (briefly)
//! for a just-dropped client's last background call to finish.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chronon_core::{KvError, KvStore};
use chronon_rocks::{RocksOptions, RocksStore};

async fn open_retrying(path: PathBuf) -> anyhow::Result<Arc<dyn KvStore>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match RocksStore::open(RocksOptions::new(&path)).await {
            Ok(store) => return Ok(Arc::new(store)),
            Err(e @ KvError::Unavailable { .. }) if Instant::now() < deadline => {
                tracing::debug!("directory still locked, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rocks_store_passes_the_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let factory = conformance::FnFactory::new("rocks", move || open_retrying(path.clone()));
    let report = conformance::run_all(factory).await;
    println!("{report}");
    assert!(
        report.cases.len() >= 40,
        "only {} cases",
        report.cases.len()
    );
    report.assert_passed();
}
