//! Loads 10,000,000 rows of 100-byte values through `bulk_put` (sorted input, SST ingestion)
//! into a fresh directory and prints the time taken and the peak resident memory (`VmHWM`).
//! The target is a peak memory well under 1 GiB.
//!
//! `cargo run --release -p chronon-rocks --example bulk_load_10m [-- ROWS [DIR]]`

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chronon_core::{BulkPutOptions, BulkRow, DatasetProps, GetRequest, KvError, KvStore};
use chronon_rocks::{RocksOptions, RocksStore};
use futures::StreamExt;

fn vm(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}

#[tokio::main]
async fn main() -> Result<(), KvError> {
    let mut args = std::env::args().skip(1);
    let rows: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let tmp = tempfile::tempdir().map_err(|e| KvError::backend("example", "temp dir", e))?;
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("db"));
    let store = RocksStore::open(RocksOptions::new(&dir)).await?;
    store
        .create("BULK_BATCH", &DatasetProps::snapshot())
        .await?;

    let value: Bytes = Bytes::from(vec![b'v'; 100]);
    let source = futures::stream::iter(0..rows)
        .map(move |i| {
            let mut v = value.to_vec();
            v[..8].copy_from_slice(&i.to_be_bytes());
            Ok::<_, KvError>(BulkRow {
                key: Bytes::from(format!("key{i:012}")),
                value: Bytes::from(v),
                ts: 1_700_000_000_000,
            })
        })
        .boxed();
    let started = Instant::now();
    let last = Arc::new(std::sync::Mutex::new(Instant::now()));
    let progress = Arc::new(move |n: u64| {
        let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
        if l.elapsed().as_secs() >= 5 {
            *l = Instant::now();
            eprintln!(
                "  {n} rows after {:.1} s, VmRSS {}",
                started.elapsed().as_secs_f64(),
                vm("VmRSS:")
            );
        }
    });
    let report = store
        .bulk_put(
            "BULK_BATCH",
            source,
            BulkPutOptions {
                progress: Some(progress),
                sorted: true,
            },
        )
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let probe = store
        .multi_get(vec![GetRequest::latest(
            "BULK_BATCH",
            Bytes::from(format!("key{:012}", rows - 1)),
        )])
        .await;
    let found = probe[0].values.as_ref().map(|v| v.len()).unwrap_or(0);
    println!(
        "bulk_load_10m: {} rows of 100-byte values in {secs:.1} s ({:.0} rows/s); peak RSS (VmHWM) {}; last key found: {}",
        report.rows,
        report.rows as f64 / secs,
        vm("VmHWM:"),
        found == 1
    );
    Ok(())
}
