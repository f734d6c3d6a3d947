//! Streaming throughput on the embedded default: CSV events decoded, encoded (Avro row, key
//! bytes) and written by `StreamingWriter` into RocksDB, end to end from a file.
//!
//! `cargo run --release -p chronon-rocks --example stream_throughput [EVENTS]` (default
//! 1,000,000 events over 100,000 users). Prints events/s; the target is 200,000/s.
//! It lives here rather than in chronon-cli so its release build needs RocksDB only.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use chronon_core::KvStore;
use chronon_rocks::{RocksOptions, RocksStore};
use chronon_serving::stream::{CsvDecoder, LineSource, StreamingWriter, StructType, WriterOptions};

const BASE_TS: i64 = 1_700_000_000_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 1_000_000,
    };
    let schema = StructType::from_json_str(
        r#"{"name": "purchases", "fields": [
            {"name": "user_id", "type": "string"},
            {"name": "purchase_price", "type": "double"},
            {"name": "item", "type": "string"},
            {"name": "quantity", "type": "int"},
            {"name": "ts", "type": "long"}]}"#,
    )?;
    let dir = tempfile::tempdir()?;
    let events = dir.path().join("events.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&events)?);
        writeln!(f, "user_id,purchase_price,item,quantity,ts")?;
        for i in 0..n {
            writeln!(
                f,
                "user_{},{}.25,\"item, #{}\",{},{}",
                i % 100_000,
                i % 1000,
                i % 7,
                i % 5,
                BASE_TS + i as i64
            )?;
        }
        f.flush()?;
    }
    let store: Arc<dyn KvStore> =
        Arc::new(RocksStore::open(RocksOptions::new(dir.path().join("db"))).await?);
    let mut opts = WriterOptions::new("bench.purchases", ["user_id"], "ts");
    opts.batch_size = 5_000;
    let writer = StreamingWriter::new(Arc::new(CsvDecoder::new(schema)), store, opts)?;
    let started = Instant::now();
    let summary = writer
        .run(Box::new(LineSource::file(&events, None)?))
        .await?;
    let secs = started.elapsed().as_secs_f64();
    if summary.written != n as u64 {
        return Err(format!("wrote {} of {n} events", summary.written).into());
    }
    println!(
        "{n} CSV events decoded, encoded and written to RocksDB in {secs:.2} s = {:.0} events/s",
        n as f64 / secs
    );
    Ok(())
}
