//! The adapter next to the raw SDK doing the same batched calls against DynamoDB Local:
//! `multi_get` of 100 and 10,000 keys (`BatchGetItem`s of 100) and `multi_put` of 1,000 values
//! (`BatchWriteItem`s of 25), both sides with 32 requests in flight, timed in alternating rounds.
//! Prints the medians and the adapter's throughput relative to the raw SDK (1.0 = as fast).
//!
//! `cargo bench -p chronon-dynamo --bench adapter_vs_raw_sdk` (uses `CHRONON_DYNAMO_ENDPOINT` or
//! starts DynamoDB Local like the suite does).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, PutRequest as RawPut, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chronon_core::{GetRequest, KvStore, KvStoreExt, PutRequest};
use chronon_dynamo::{DynamoOptions, DynamoStore};
use futures::StreamExt;

const T0: i64 = 1_700_000_000_000;
const IN_FLIGHT: usize = 32;

fn key(i: usize) -> Vec<u8> {
    format!("user_{i:08}").into_bytes()
}

async fn raw_multi_get(raw: &Client, table: &str, n: usize) -> usize {
    let chunks: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(<[usize]>::to_vec)
        .collect();
    let found: Vec<usize> = futures::stream::iter(chunks)
        .map(|chunk: Vec<usize>| async move {
            let keys = chunk
                .iter()
                .map(|i| {
                    HashMap::from([(
                        "keyBytes".to_string(),
                        AttributeValue::B(Blob::new(key(*i))),
                    )])
                })
                .collect();
            let mut request = Some(HashMap::from([(
                table.to_string(),
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .unwrap(),
            )]));
            let mut count = 0;
            while let Some(items) = request.take() {
                let out = raw
                    .batch_get_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .unwrap();
                count += out
                    .responses
                    .and_then(|mut r| r.remove(table))
                    .map(|v| v.len())
                    .unwrap_or(0);
                request = out.unprocessed_keys.filter(|m| !m.is_empty());
            }
            count
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    found.into_iter().sum()
}

async fn raw_multi_put(raw: &Client, table: &str, n: usize, round: usize) {
    let chunks: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(25)
        .map(<[usize]>::to_vec)
        .collect();
    futures::stream::iter(chunks)
        .map(|chunk: Vec<usize>| async move {
            let writes = chunk
                .iter()
                .map(|i| {
                    let item = HashMap::from([
                        (
                            "keyBytes".to_string(),
                            AttributeValue::B(Blob::new(key(*i))),
                        ),
                        (
                            "valueBytes".to_string(),
                            AttributeValue::B(Blob::new(vec![round as u8; 100])),
                        ),
                        ("ts".to_string(), AttributeValue::N(T0.to_string())),
                    ]);
                    WriteRequest::builder()
                        .put_request(RawPut::builder().set_item(Some(item)).build().unwrap())
                        .build()
                })
                .collect();
            let mut request = Some(HashMap::from([(table.to_string(), writes)]));
            while let Some(items) = request.take() {
                let out = raw
                    .batch_write_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .unwrap();
                request = out.unprocessed_items.filter(|m| !m.is_empty());
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
}

/// Prints medians and the adapter's throughput relative to the raw SDK.
fn report(what: &str, adapter: &mut [Duration], raw: &mut [Duration]) {
    adapter.sort();
    raw.sort();
    let (a, r) = (adapter[adapter.len() / 2], raw[raw.len() / 2]);
    println!(
        "{what}: adapter {:>8.1} ms, raw SDK {:>8.1} ms (medians of {}), adapter throughput = {:.2} x raw",
        a.as_secs_f64() * 1e3,
        r.as_secs_f64() * 1e3,
        adapter.len(),
        r.as_secs_f64() / a.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let Some(server) = conformance::launch::dynamodb::dynamodb().await else {
        return;
    };
    let options = DynamoOptions::local(server.endpoint.clone())
        .with_region("us-west-2")
        .with_max_in_flight(IN_FLIGHT)
        .with_timeout(Duration::from_secs(60));
    let store = Arc::new(DynamoStore::open(options).await.unwrap());
    let raw = store.client().clone();
    let ds = "bench_BATCH";
    store.create_default(ds).await.unwrap();
    let table = store.table_name(ds);

    // Load 10,000 keys.
    let puts: Vec<PutRequest> = (0..10_000)
        .map(|i| PutRequest::new(ds, key(i), vec![1u8; 100], Some(T0)))
        .collect();
    assert!(store.multi_put(puts).await.iter().all(Result::is_ok));

    let (raw, table, store_ref) = (&raw, table.as_str(), &store);
    for n in [100usize, 10_000] {
        let reps = if n == 100 { 30 } else { 5 };
        // Warm both paths once, then alternate them so load on the shared machine hits both alike.
        raw_multi_get(raw, table, n).await;
        let _ = store_ref
            .multi_get((0..n).map(|i| GetRequest::latest(ds, key(i))).collect())
            .await;
        let (mut raw_t, mut adapter_t) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let started = Instant::now();
            assert_eq!(raw_multi_get(raw, table, n).await, n);
            raw_t.push(started.elapsed());
            let started = Instant::now();
            let got = store_ref
                .multi_get((0..n).map(|i| GetRequest::latest(ds, key(i))).collect())
                .await;
            adapter_t.push(started.elapsed());
            assert!(got
                .iter()
                .all(|r| matches!(&r.values, Ok(v) if v.len() == 1)));
        }
        report(
            &format!("multi_get {n:>6} keys"),
            &mut adapter_t,
            &mut raw_t,
        );
    }

    let n = 1_000;
    let (mut raw_t, mut adapter_t) = (Vec::new(), Vec::new());
    for r in 0..7 {
        let started = Instant::now();
        raw_multi_put(raw, table, n, r).await;
        raw_t.push(started.elapsed());
        let puts: Vec<PutRequest> = (0..n)
            .map(|i| PutRequest::new(ds, key(i), vec![r as u8; 100], Some(T0)))
            .collect();
        let started = Instant::now();
        let results = store_ref.multi_put(puts).await;
        adapter_t.push(started.elapsed());
        assert!(results.iter().all(Result::is_ok));
    }
    report(
        &format!("multi_put {n:>6} vals"),
        &mut adapter_t,
        &mut raw_t,
    );
    store.drop_dataset(ds).await.unwrap();
    drop(server);
}
