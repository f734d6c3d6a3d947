//! Adapter vs. the raw `redis` crate doing the same pipelined work, on one server in one run.
//!
//! `cargo run -p chronon-redis --example bench` (add `--release` for production-like numbers).
//! Uses `CHRONON_REDIS_URL` or starts a `redis-server` child like the suite does. Prints the
//! median of each measurement and `adapter / raw` throughput (1.0 = as fast as raw).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chronon_core::{DatasetProps, GetRequest, KvStore, PutRequest};
use chronon_redis::{layout, RedisOptions, RedisStore};
use futures::StreamExt;
use redis::aio::ConnectionManager;

const T0: i64 = 1_700_000_000_000;
const ROUNDS: usize = 15;

async fn median<F, Fut>(mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await; // warm-up
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        // The closure's body (cloning the requests) runs before the clock starts.
        let fut = f();
        let t = Instant::now();
        fut.await;
        times.push(t.elapsed());
    }
    times.sort();
    times[ROUNDS / 2]
}

/// The registry generation of `dataset`, so raw commands hit exactly the adapter's keys.
async fn data_prefix(conn: &mut ConnectionManager, prefix: &str, dataset: &str) -> String {
    let raw: String = redis::cmd("HGET")
        .arg(layout::registry_key(prefix))
        .arg(dataset)
        .query_async(conn)
        .await
        .expect("registry entry");
    let gen = raw
        .split(';')
        .find_map(|p| p.strip_prefix("gen="))
        .expect("gen");
    layout::data_prefix(prefix, dataset, gen)
}

/// Raw reads: the same commands in pipelines of `chunk`, `in_flight` at once, values decoded.
async fn raw_reads(
    conn: &ConnectionManager,
    keys: &[Vec<u8>],
    chunk: usize,
    in_flight: usize,
    zrange: bool,
) -> usize {
    let results: Vec<usize> = futures::stream::iter(keys.chunks(chunk))
        .map(|c| {
            let mut conn = conn.clone();
            async move {
                let mut pipe = redis::pipe();
                for k in c {
                    if zrange {
                        pipe.cmd("ZRANGE").arg(k).arg(-1).arg(-1);
                    } else {
                        pipe.cmd("GET").arg(k);
                    }
                }
                let out: Vec<redis::Value> =
                    pipe.query_async(&mut conn).await.expect("raw pipeline");
                out.len()
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    results.into_iter().sum()
}

/// Raw reads as one `MGET` per chunk (snapshot keys only; not Cluster-safe, for reference).
async fn raw_mget(
    conn: &ConnectionManager,
    keys: &[Vec<u8>],
    chunk: usize,
    in_flight: usize,
) -> usize {
    let results: Vec<usize> = futures::stream::iter(keys.chunks(chunk))
        .map(|c| {
            let mut conn = conn.clone();
            async move {
                let out: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(c)
                    .query_async(&mut conn)
                    .await
                    .expect("mget");
                out.len()
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    results.into_iter().sum()
}

fn report(name: &str, n: usize, adapter: Duration, raw: Duration) {
    println!(
        "{name:<44} adapter {:>9.3} ms  raw {:>9.3} ms  adapter/raw throughput {:.2}  ({n} requests)",
        adapter.as_secs_f64() * 1e3,
        raw.as_secs_f64() * 1e3,
        raw.as_secs_f64() / adapter.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(server) = conformance::launch::redis::redis().await else {
        return;
    };
    println!("redis via {}: {}", server.method, server.url);
    let prefix = "bench";
    let opts = RedisOptions::new(server.url.clone()).with_prefix(prefix);
    let (chunk, in_flight) = (opts.chunk_size, opts.max_in_flight);
    let store = Arc::new(RedisStore::open(opts).await.expect("open"));
    let client = redis::Client::open(server.url.as_str()).expect("client");
    let mut conn = ConnectionManager::new(client)
        .await
        .expect("raw connection");

    let (snap, ts) = ("BENCH_BATCH", "BENCH_STREAMING");
    let _ = store.drop_dataset(snap).await;
    let _ = store.drop_dataset(ts).await;
    store
        .create(snap, &DatasetProps::snapshot())
        .await
        .expect("create");
    store
        .create(ts, &DatasetProps::time_series())
        .await
        .expect("create");
    let n = 10_000;
    let keys: Vec<Bytes> = (0..n)
        .map(|i| Bytes::from(format!("user_{i:06}")))
        .collect();
    let value = Bytes::from(vec![7u8; 100]);
    for ds in [snap, ts] {
        for v in 0..3 {
            let puts = keys
                .iter()
                .map(|k| PutRequest::new(ds, k.clone(), value.clone(), Some(T0 + v)))
                .collect();
            assert!(store.multi_put(puts).await.iter().all(Result::is_ok));
        }
    }
    let snap_prefix = data_prefix(&mut conn, prefix, snap).await;
    let ts_prefix = data_prefix(&mut conn, prefix, ts).await;
    let snap_keys: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| layout::data_key(&snap_prefix, k))
        .collect();
    let ts_keys: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| layout::data_key(&ts_prefix, k))
        .collect();

    for (label, ds, raw_keys, zrange) in [
        ("Snapshot", snap, &snap_keys, false),
        ("TimeSeries", ts, &ts_keys, true),
    ] {
        for size in [10_000usize, 100] {
            let reqs: Vec<GetRequest> = keys[..size]
                .iter()
                .map(|k| GetRequest::latest(ds, k.clone()))
                .collect();
            let adapter = median(|| {
                let (store, reqs) = (store.clone(), reqs.clone());
                async move {
                    let got = store.multi_get(reqs).await;
                    assert!(got
                        .iter()
                        .all(|r| matches!(&r.values, Ok(v) if v.len() == 1)));
                }
            })
            .await;
            let raw = median(|| async {
                assert_eq!(
                    raw_reads(&conn, &raw_keys[..size], chunk, in_flight, zrange).await,
                    size
                );
            })
            .await;
            report(
                &format!("multi_get {size} latest, {label} (GET/ZRANGE)"),
                size,
                adapter,
                raw,
            );
            if !zrange {
                let mget = median(|| async {
                    assert_eq!(
                        raw_mget(&conn, &raw_keys[..size], chunk, in_flight).await,
                        size
                    );
                })
                .await;
                report(
                    &format!("multi_get {size} latest, {label} vs raw MGET"),
                    size,
                    adapter,
                    mget,
                );
            }
        }
    }

    // multi_put of 1,000 snapshot values vs. a raw pipeline of the same SETs.
    let puts: Vec<PutRequest> = keys[..1000]
        .iter()
        .map(|k| PutRequest::new(snap, k.clone(), value.clone(), Some(T0 + 9)))
        .collect();
    let adapter = median(|| {
        let (store, puts) = (store.clone(), puts.clone());
        async move { assert!(store.multi_put(puts).await.iter().all(Result::is_ok)) }
    })
    .await;
    let encoded = layout::encode_value(T0 + 9, &value);
    let raw = median(|| {
        let mut conn = conn.clone();
        let (snap_keys, encoded) = (&snap_keys, &encoded);
        async move {
            let mut pipe = redis::pipe();
            for k in &snap_keys[..1000] {
                pipe.cmd("SET").arg(k).arg(encoded).ignore();
            }
            let _: () = pipe.query_async(&mut conn).await.expect("raw puts");
        }
    })
    .await;
    report("multi_put 1000, Snapshot (SET)", 1000, adapter, raw);
    let _ = store.drop_dataset(snap).await;
    let _ = store.drop_dataset(ts).await;
}
