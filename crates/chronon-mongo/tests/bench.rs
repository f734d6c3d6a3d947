//! 10,000-key `multi_get` next to the raw driver doing the same batched work (`$in` finds of
//! the same chunk size, same concurrency) and next to the quickstart's one `find` per key.
//! Ignored by default (slow on SecantusDB); run with
//! `cargo test -p chronon-mongo --release --test bench -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use chronon_core::{BulkPutOptions, BulkRow, GetRequest, KvStore, KvStoreExt};
use chronon_mongo::{MongoOptions, MongoStore};
use conformance::launch::LaunchMethod;
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, RawDocumentBuf};

const KEYS: usize = 10_000;

fn key(i: usize) -> Vec<u8> {
    format!("user_{i:06}").into_bytes()
}

fn best(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark; run explicitly"]
async fn multi_get_10000_vs_raw_driver() -> Result<()> {
    let Some(server) = conformance::launch::mongo::mongo().await else {
        return Ok(());
    };
    let mut options = MongoOptions::default()
        .with_database(format!("chronon_bench_{}", std::process::id()))
        .with_timeout(Duration::from_secs(600));
    if server.method == LaunchMethod::ChildProcess {
        options.get_batch_size = 100; // SecantusDB's `$in` is quadratic (README)
    }
    let (chunk, concurrency) = (options.get_batch_size, options.concurrency);
    let store = MongoStore::connect(&server.uri, options).await?;
    store.create_default("BENCH_BATCH").await?;
    let rows = futures::stream::iter((0..KEYS).map(|i| {
        Ok(BulkRow {
            key: key(i).into(),
            value: vec![7u8; 100].into(),
            ts: 1_000,
        })
    }));
    store
        .bulk_put("BENCH_BATCH", rows.boxed(), BulkPutOptions::default())
        .await?;

    let mut adapter = Vec::new();
    for _ in 0..2 {
        let requests: Vec<GetRequest> = (0..KEYS)
            .map(|i| GetRequest::latest("BENCH_BATCH", key(i)))
            .collect();
        let t = Instant::now();
        let responses = store.multi_get(requests).await;
        adapter.push(t.elapsed());
        let found = responses
            .iter()
            .filter(|r| matches!(r.latest(), Ok(Some(_))))
            .count();
        ensure!(found == KEYS, "adapter found {found}");
    }

    let coll = store.database().collection::<RawDocumentBuf>("BENCH_BATCH");
    let bin = |i: usize| {
        Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: key(i),
        })
    };
    let mut raw = Vec::new();
    for _ in 0..2 {
        let t = Instant::now();
        let chunks: Vec<Vec<usize>> = (0..KEYS)
            .collect::<Vec<_>>()
            .chunks(chunk)
            .map(<[usize]>::to_vec)
            .collect();
        let counts: Vec<usize> = futures::stream::iter(chunks)
            .map(|c| {
                let coll = coll.clone();
                async move {
                    let keys: Vec<Bson> = c.iter().map(|i| bin(*i)).collect();
                    let docs: Vec<RawDocumentBuf> = coll
                        .find(doc! { "keyBytes": { "$in": keys } })
                        .projection(doc! { "_id": 0 })
                        .batch_size(100_000)
                        .await?
                        .try_collect()
                        .await?;
                    Ok::<_, mongodb::error::Error>(docs.len())
                }
            })
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
        raw.push(t.elapsed());
        ensure!(counts.iter().sum::<usize>() == KEYS);
    }

    let t = Instant::now();
    let found: Vec<bool> = futures::stream::iter(0..KEYS)
        .map(|i| {
            let coll = coll.clone();
            async move {
                Ok::<_, mongodb::error::Error>(
                    coll.find_one(doc! { "keyBytes": bin(i) }).await?.is_some(),
                )
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let per_key = t.elapsed();
    ensure!(found.iter().all(|f| *f));

    let (a, r) = (best(&adapter), best(&raw));
    println!("server: {} ({})", server.uri, server.method);
    println!("multi_get of {KEYS} keys, {chunk} keys per query, {concurrency} in flight:");
    println!(
        "  adapter {:.3} s, raw driver $in {:.3} s, one find per key {:.3} s",
        a.as_secs_f64(),
        r.as_secs_f64(),
        per_key.as_secs_f64()
    );
    println!(
        "  adapter throughput / raw $in = {:.2}",
        r.as_secs_f64() / a.as_secs_f64()
    );
    println!(
        "  adapter throughput / one find per key = {:.2}",
        per_key.as_secs_f64() / a.as_secs_f64()
    );
    store.database().drop().await?;
    Ok(())
}
