//! Fetch latency of a 100-key join next to the raw `multi_get` time for the same lookups, on
//! RocksDB (or any store URL given as the first argument).
//!
//! The join has two group-bys (6 features each); every user has batch IRs and a few streaming
//! events after the batch end. One fetch = 100 join requests in one `fetch_joins` call (two
//! `multi_get`s of 200 lookups each, run concurrently). The raw baseline issues exactly those
//! `GetRequest`s through the same two concurrent `multi_get`s, without decoding or aggregating.
//!
//! ```text
//! cargo run -p chronon-cli --example fetch_bench [-- rocks:///tmp/bench] [iterations]
//! ```

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use bytes::Bytes;
use chronon_core::{GetRequest, KvStore, PutRequest};
use chronon_serving::fetcher::{FetchRequest, Fetcher, FetcherOptions};
use chronon_serving::groupby::{
    Accuracy, Aggregation, GroupBy, Join, JoinPart, Operation, SourceKind, DAY_MILLIS, HOUR_MILLIS,
};
use chronon_serving::metadata::{compute_and_upload, put_join};
use chronon_serving::stream::{KeyCodec, Mutation, StreamingWriter, StructType, Value};
use hdrhistogram::Histogram;

/// The allocator of the `chronon` binary (`chronon-cli/src/main.rs`), so this measures the fetch
/// that `chronon serve` users get rather than glibc's malloc (a fifth of a flat profile of this
/// example without it). The raw `multi_get` baseline runs under the same allocator, so the
/// ratio compares the fetcher's own work, not two allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH_END: i64 = 19_692 * DAY_MILLIS;
const USERS: usize = 10_000;
const KEYS_PER_FETCH: usize = 100;

async fn open(url: &str) -> Result<Arc<dyn KvStore>> {
    Ok(chronon_serving::store_url::open_store(url).await?)
}

fn group_by(name: &str) -> Result<GroupBy> {
    let a = |op, w: &[&str]| Aggregation::new("amount", op, w).map_err(anyhow::Error::msg);
    Ok(GroupBy {
        derivations: Vec::new(),
        name: name.into(),
        keys: vec!["user_id".into()],
        schema: StructType::from_json_str(
            r#"{"name": "ev", "fields": [{"name": "user_id", "type": "string"},
            {"name": "amount", "type": "long"}, {"name": "ts", "type": "long"}]}"#,
        )?,
        time_column: "ts".into(),
        accuracy: Accuracy::Temporal,
        source: SourceKind::Events,
        aggregations: vec![
            a(Operation::Sum, &["1d", "7d", "30d"])?,
            a(Operation::Count, &["1d", "7d"])?,
            a(Operation::Average, &[])?,
        ],
    })
}

fn pct(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("rocks://{}", tmp.path().join("bench").display()));
    let iterations: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(300);
    let store = open(&url).await?;
    let gbs = [group_by("bench.purchases")?, group_by("bench.returns")?];
    let join = Join {
        derivations: Vec::new(),
        name: "bench.join".into(),
        parts: gbs
            .iter()
            .map(|g| JoinPart {
                group_by: g.name.clone(),
                key_mapping: Default::default(),
                prefix: None,
            })
            .collect(),
    };
    // Setup: 20 batch events and 5 streaming events per user and group-by.
    for gb in &gbs {
        let mut rows = Vec::new();
        for u in 0..USERS {
            for i in 0..20 {
                let ts = BATCH_END - (i + 1) * 37 * HOUR_MILLIS;
                rows.push(vec![
                    Value::String(format!("u{u}")),
                    Value::Long(i),
                    Value::Long(ts),
                ]);
            }
        }
        compute_and_upload(&*store, gb, BATCH_END, rows).await?;
        let writer = StreamingWriter::new(
            Arc::new(chronon_serving::stream::JsonDecoder::new(gb.schema.clone())),
            store.clone(),
            gb.writer_options(),
        )?;
        let schema = Arc::new(gb.schema.clone());
        let mut puts = Vec::new();
        for u in 0..USERS {
            for i in 0..5 {
                let row = vec![
                    Value::String(format!("u{u}")),
                    Value::Long(i),
                    Value::Long(BATCH_END + (i + 1) * 600_000),
                ];
                for p in writer
                    .encode(&Mutation::insert(schema.clone(), row)?)
                    .map_err(anyhow::Error::msg)?
                {
                    puts.push(PutRequest::new(
                        writer.dataset(),
                        p.key,
                        p.value,
                        Some(p.ts),
                    ));
                }
            }
        }
        for chunk in puts.chunks(5_000) {
            for r in store.multi_put(chunk.to_vec()).await {
                r?;
            }
        }
    }
    put_join(&*store, &join).await?;
    let q = BATCH_END + 2 * HOUR_MILLIS;
    let fetcher = Fetcher::new(store.clone(), FetcherOptions::default());
    let key_codec = KeyCodec::new(&gbs[0].schema, &gbs[0].keys)?;

    let mut fetch_h = Histogram::<u64>::new(3)?;
    let mut raw_h = Histogram::<u64>::new(3)?;
    for it in 0..iterations + 20 {
        let users: Vec<String> = (0..KEYS_PER_FETCH)
            .map(|i| format!("u{}", (it * 7919 + i * 97) % USERS))
            .collect();
        // Raw: the same lookups the fetcher makes, in the same two concurrent multi_gets.
        let mut batch = Vec::new();
        let mut streaming = Vec::new();
        for u in &users {
            let key = Bytes::from(key_codec.encode_values(vec![Value::String(u.clone())])?);
            for gb in &gbs {
                batch.push(GetRequest::latest(gb.batch_dataset(), key.clone()));
                streaming.push(GetRequest::range(
                    gb.streaming_dataset(),
                    key.clone(),
                    BATCH_END,
                    Some(q - 1),
                ));
            }
        }
        let t = Instant::now();
        let (b, s) = futures::join!(store.multi_get(batch), store.multi_get(streaming));
        let raw = t.elapsed();
        if b.iter().chain(&s).any(|r| r.values.is_err()) {
            bail!("raw multi_get failed");
        }
        let requests: Vec<FetchRequest> = users
            .iter()
            .map(|u| FetchRequest::new(&join.name, [("user_id", u.as_str())]).at(q))
            .collect();
        let t = Instant::now();
        let responses = fetcher.fetch_joins(requests).await;
        let fetch = t.elapsed();
        if let Some(bad) = responses.iter().find(|r| r.values.is_err()) {
            bail!("fetch failed: {:?}", bad.values);
        }
        if it >= 20 {
            raw_h.record(raw.as_micros() as u64)?;
            fetch_h.record(fetch.as_micros() as u64)?;
        }
    }
    println!("store: {url}; {iterations} iterations of a {KEYS_PER_FETCH}-key join (2 group-bys, 12 features)");
    println!(
        "raw multi_get (same 400 lookups): p50 {:.2} ms  p99 {:.2} ms",
        pct(&raw_h, 0.5),
        pct(&raw_h, 0.99)
    );
    println!(
        "fetch_joins:                      p50 {:.2} ms  p99 {:.2} ms",
        pct(&fetch_h, 0.5),
        pct(&fetch_h, 0.99)
    );
    println!(
        "ratio fetcher / raw:              p50 {:.2}x    p99 {:.2}x",
        pct(&fetch_h, 0.5) / pct(&raw_h, 0.5),
        pct(&fetch_h, 0.99) / pct(&raw_h, 0.99)
    );
    Ok(())
}
