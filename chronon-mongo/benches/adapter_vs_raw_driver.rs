//! The adapter next to the raw driver doing the same batched work, in one run on one server:
//! a 10,000-key `multi_get` (`$in` finds of the same chunk size, same concurrency; and the
//! quickstart's one `find` per key), and `multi_put` of 1,000 values in one call and of 10 values
//! in each of 100 calls (the same unordered `update` command of upserts, same write concern).
//! Prints the best of a few rounds per side and the adapter's throughput relative to the raw
//! driver (1.0 = as fast).
//!
//! `cargo bench -p chronon-mongo --bench adapter_vs_raw_driver` (uses `CHRONON_MONGO_URI` or
//! starts a local server like the conformance suite does; slow on SecantusDB).

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use chronon_core::{BulkPutOptions, BulkRow, GetRequest, KvStore, KvStoreExt, PutRequest};
use chronon_mongo::{MongoOptions, MongoStore};
use conformance::launch::LaunchMethod;
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document, RawDocumentBuf};

const KEYS: usize = 10_000;

fn key(i: usize) -> Vec<u8> {
    format!("user_{i:06}").into_bytes()
}

fn best(times: &[Duration]) -> Duration {
    times.iter().copied().min().unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<()> {
    multi_get_10000_vs_raw_driver().await?;
    multi_put_vs_raw_driver().await
}

async fn multi_get_10000_vs_raw_driver() -> Result<()> {
    let Some(server) = conformance::launch::mongodb::mongodb().await else {
        return Ok(());
    };
    let mut options = MongoOptions::new(&server.uri)
        .with_database(format!("chronon_bench_{}", std::process::id()))
        .with_timeout(Duration::from_secs(600));
    if server.method == LaunchMethod::ChildProcess {
        options.get_batch_size = 100; // SecantusDB's `$in` is quadratic (README)
    }
    let (chunk, concurrency) = (options.get_batch_size, options.concurrency);
    let store = MongoStore::open(options).await?;
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

/// One raw unordered `update` command of snapshot upserts, as the adapter sends them.
async fn raw_upserts(
    db: &mongodb::Database,
    dataset: &str,
    keys: &[Vec<u8>],
    value: &[u8],
    ts: i64,
    write_concern: &Document,
) -> Result<()> {
    let bin = |b: &[u8]| {
        Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: b.to_vec(),
        })
    };
    let updates: Vec<Document> = keys
        .iter()
        .map(|k| {
            doc! {
                "q": { "keyBytes": bin(k) },
                "u": { "keyBytes": bin(k), "valueBytes": bin(value), "ts": ts },
                "upsert": true,
            }
        })
        .collect();
    let reply = db
        .run_command(doc! {
            "update": dataset,
            "updates": updates,
            "ordered": false,
            "writeConcern": write_concern.clone(),
        })
        .await?;
    ensure!(
        !reply.contains_key("writeErrors"),
        "raw update failed: {reply}"
    );
    Ok(())
}

/// `calls` calls of `per_call` puts each, `concurrency` at once; the time they took.
async fn adapter_puts(
    store: &MongoStore,
    keys: &[Vec<u8>],
    per_call: usize,
    concurrency: usize,
    value: &[u8],
    ts: i64,
) -> Result<Duration> {
    let t = Instant::now();
    let written: Vec<usize> = futures::stream::iter(keys.chunks(per_call))
        .map(|c| {
            let puts = c
                .iter()
                .map(|k| PutRequest::new("ADAPTER_BATCH", k.clone(), value.to_vec(), Some(ts)))
                .collect();
            async move {
                store
                    .multi_put(puts)
                    .await
                    .iter()
                    .filter(|r| r.is_ok())
                    .count()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = t.elapsed();
    ensure!(
        written.iter().sum::<usize>() == keys.len(),
        "adapter puts failed"
    );
    Ok(elapsed)
}

async fn multi_put_vs_raw_driver() -> Result<()> {
    let Some(server) = conformance::launch::mongodb::mongodb().await else {
        return Ok(());
    };
    let options = MongoOptions::new(&server.uri)
        .with_database(format!("chronon_bench_put_{}", std::process::id()))
        .with_timeout(Duration::from_secs(600));
    let concurrency = options.concurrency;
    let write_concern = mongodb::bson::to_document(&options.write_concern)?;
    let store = MongoStore::open(options.clone()).await?;
    // The same adapter reading the dataset metadata before every call (the cache off).
    let mut uncached_options = options;
    uncached_options.metadata_cache_ttl = Duration::ZERO;
    let uncached = MongoStore::open(uncached_options).await?;
    // Same collection layout and indexes on both sides: the raw side writes its own dataset.
    store.create_default("ADAPTER_BATCH").await?;
    store.create_default("RAW_BATCH").await?;
    let db = store.database().clone();
    let value = vec![7u8; 100];
    let keys: Vec<Vec<u8>> = (0..1000).map(key).collect();
    println!("server: {} ({})", server.uri, server.method);

    for (label, per_call) in [("1 call of 1000", 1000usize), ("100 calls of 10", 10)] {
        let (mut adapter, mut adapter_uncached, mut raw) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..3i64 {
            let ts = 1_000 + 3 * round;
            adapter.push(adapter_puts(&store, &keys, per_call, concurrency, &value, ts).await?);
            adapter_uncached
                .push(adapter_puts(&uncached, &keys, per_call, concurrency, &value, ts + 1).await?);
            let t = Instant::now();
            futures::stream::iter(keys.chunks(per_call))
                .map(|c| raw_upserts(&db, "RAW_BATCH", c, &value, ts + 2, &write_concern))
                .buffer_unordered(concurrency)
                .try_collect::<Vec<()>>()
                .await?;
            raw.push(t.elapsed());
        }
        let (a, u, r) = (best(&adapter), best(&adapter_uncached), best(&raw));
        println!(
            "multi_put {label} ({concurrency} in flight): adapter {:.3} s, raw update {:.3} s, \
             adapter throughput / raw = {:.2} (metadata read every call: {:.3} s, {:.2})",
            a.as_secs_f64(),
            r.as_secs_f64(),
            r.as_secs_f64() / a.as_secs_f64(),
            u.as_secs_f64(),
            r.as_secs_f64() / u.as_secs_f64(),
        );
    }
    let stored = store.get("ADAPTER_BATCH", key(999)).await?;
    ensure!(
        stored.map(|v| v.bytes.to_vec()) == Some(value),
        "adapter value not stored"
    );
    store.database().drop().await?;
    Ok(())
}
