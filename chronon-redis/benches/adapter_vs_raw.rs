//! Adapter vs. the raw `redis` crate doing the same pipelined work, on one server in one run.
//!
//! `cargo bench -p chronon-redis --bench adapter_vs_raw` (optimised, production-like numbers).
//! Uses `CHRONON_REDIS_URL` or starts a `redis-server` child like the suite does. Prints the
//! median of each measurement and `adapter / raw` throughput (1.0 = as fast as raw); both sides
//! are timed in the same rounds, back to back in alternating order.
//!
//! The raw side does what any client of this layout must: it builds each Redis key from the user
//! key (`layout::data_key`) and splits each stored value into its ts and bytes (or encodes it,
//! for puts). What remains is the adapter's own cost: validation, the registry check, batching,
//! and answering each request with its `GetResponse`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chronon_core::{DatasetProps, GetRequest, KvStore, PutRequest};
use chronon_redis::{layout, RedisOptions, RedisStore};
use futures::StreamExt;
use redis::aio::ConnectionManager;

const T0: i64 = 1_700_000_000_000;
/// Times `adapter` and `raw` in the same rounds, back to back in alternating order (so drift on
/// a noisy machine hits both alike); medians of each. One warm-up round first. The clock covers
/// the call until its results are in hand; checking and dropping them (`check_*`) is not timed,
/// for either side.
async fn interleaved<A, AF, AO, R, RF, RO>(
    rounds: usize,
    mut adapter: A,
    check_adapter: impl Fn(AO),
    mut raw: R,
    check_raw: impl Fn(RO),
) -> (Duration, Duration)
where
    A: FnMut() -> AF,
    AF: std::future::Future<Output = AO>,
    R: FnMut() -> RF,
    RF: std::future::Future<Output = RO>,
{
    check_adapter(adapter().await);
    check_raw(raw().await);
    let (mut a_times, mut r_times) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for round in 0..rounds {
        // The closures' bodies (cloning the requests) run before the clock starts.
        let (a, r) = (adapter(), raw());
        let time_adapter = async {
            let t = Instant::now();
            let out = a.await;
            a_times.push(t.elapsed());
            check_adapter(out);
        };
        let time_raw = async {
            let t = Instant::now();
            let out = r.await;
            r_times.push(t.elapsed());
            check_raw(out);
        };
        if round % 2 == 0 {
            time_adapter.await;
            time_raw.await;
        } else {
            time_raw.await;
            time_adapter.await;
        }
    }
    a_times.sort();
    r_times.sort();
    (a_times[rounds / 2], r_times[rounds / 2])
}

/// Rounds for a call of `size` requests: about the same total work per measurement.
fn rounds(size: usize) -> usize {
    (200_000 / size).clamp(25, 1001)
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

/// Raw reads: the same commands in pipelines of `chunk`, `in_flight` at once. Like any client of
/// this layout it builds each Redis key from the user key (`layout::data_key`) and splits each
/// stored value into its ts and bytes (`layout::decode_owned_value`); returns the values read.
async fn raw_reads(
    conn: &ConnectionManager,
    data_prefix: &str,
    keys: &[Bytes],
    chunk: usize,
    in_flight: usize,
    zrange: bool,
) -> Vec<chronon_core::TimedValue> {
    let results: Vec<Vec<chronon_core::TimedValue>> = futures::stream::iter(keys.chunks(chunk))
        .map(|c| {
            let mut conn = conn.clone();
            async move {
                let mut pipe = redis::pipe();
                for k in c {
                    let key = layout::data_key(data_prefix, k);
                    if zrange {
                        pipe.cmd("ZRANGE").arg(key).arg(-1).arg(-1);
                    } else {
                        pipe.cmd("GET").arg(key);
                    }
                }
                let out: Vec<redis::Value> =
                    pipe.query_async(&mut conn).await.expect("raw pipeline");
                out.into_iter().filter_map(decode).collect()
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    results.into_iter().flatten().collect()
}

/// The newest stored value in a `GET` or `ZRANGE` reply, split into ts and bytes.
fn decode(v: redis::Value) -> Option<chronon_core::TimedValue> {
    match v {
        redis::Value::BulkString(raw) => layout::decode_owned_value(raw),
        redis::Value::Array(mut items) => match items.pop()? {
            redis::Value::BulkString(raw) => layout::decode_owned_value(raw),
            _ => None,
        },
        _ => None,
    }
}

/// Raw reads as one `MGET` per chunk (snapshot keys only; not Cluster-safe, for reference).
async fn raw_mget(
    conn: &ConnectionManager,
    data_prefix: &str,
    keys: &[Bytes],
    chunk: usize,
    in_flight: usize,
) -> Vec<chronon_core::TimedValue> {
    let results: Vec<Vec<chronon_core::TimedValue>> = futures::stream::iter(keys.chunks(chunk))
        .map(|c| {
            let mut conn = conn.clone();
            async move {
                let mut mget = redis::cmd("MGET");
                for k in c {
                    mget.arg(layout::data_key(data_prefix, k));
                }
                let out: Vec<Option<Vec<u8>>> = mget.query_async(&mut conn).await.expect("mget");
                out.into_iter()
                    .filter_map(|v| layout::decode_owned_value(v?))
                    .collect()
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    results.into_iter().flatten().collect()
}

fn report(name: &str, n: usize, adapter: Duration, raw: Duration) {
    println!(
        "{name:<44} adapter {:>9.3} ms  raw {:>9.3} ms  adapter/raw throughput {:.2}  ({n} requests)",
        adapter.as_secs_f64() * 1e3,
        raw.as_secs_f64() * 1e3,
        raw.as_secs_f64() / adapter.as_secs_f64()
    );
}

/// With `CHRONON_BENCH_OBSERVE=1`, the adapter's per-call spans and metrics are on: a `tracing`
/// subscriber that enables `chronon_kv=debug` and formats every span when it closes (to a sink),
/// and the Prometheus recorder `chronon serve` installs. Without it nobody listens (the
/// default), so two runs give the adapter/raw ratio with observation on and off.
fn observe_if_asked() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    if std::env::var_os("CHRONON_BENCH_OBSERVE").is_none() {
        return;
    }
    let spans = tracing_subscriber::fmt::layer()
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::sink)
        .with_filter(tracing_subscriber::EnvFilter::new("chronon_kv=debug"));
    tracing_subscriber::registry().with(spans).init();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::set_global_recorder(recorder).expect("one recorder");
    println!("observation on: chronon_kv spans formatted, Prometheus recorder installed");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    observe_if_asked();
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

    for (label, ds, data_prefix, zrange) in [
        ("Snapshot", snap, &snap_prefix, false),
        ("TimeSeries", ts, &ts_prefix, true),
    ] {
        for size in [10_000usize, 100] {
            let reqs: Vec<GetRequest> = keys[..size]
                .iter()
                .map(|k| GetRequest::latest(ds, k.clone()))
                .collect();
            let adapter_get = || {
                let (store, reqs) = (store.clone(), reqs.clone());
                async move { store.multi_get(reqs).await }
            };
            let check_adapter = |got: Vec<chronon_core::GetResponse>| {
                assert!(got
                    .iter()
                    .all(|r| matches!(&r.values, Ok(v) if v.len() == 1)));
            };
            let check_raw = |got: Vec<chronon_core::TimedValue>| assert_eq!(got.len(), size);
            let (adapter, raw) = interleaved(
                rounds(size),
                adapter_get,
                check_adapter,
                || raw_reads(&conn, data_prefix, &keys[..size], chunk, in_flight, zrange),
                check_raw,
            )
            .await;
            report(
                &format!("multi_get {size} latest, {label} (GET/ZRANGE)"),
                size,
                adapter,
                raw,
            );
            if !zrange {
                let (adapter, mget) = interleaved(
                    rounds(size),
                    adapter_get,
                    check_adapter,
                    || raw_mget(&conn, data_prefix, &keys[..size], chunk, in_flight),
                    check_raw,
                )
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
    // Raw: the same SETs, keys and stored values built with the layout's functions.
    let (adapter, raw) = interleaved(
        rounds(1000),
        || {
            let (store, puts) = (store.clone(), puts.clone());
            async move { store.multi_put(puts).await }
        },
        |out: Vec<Result<(), chronon_core::KvError>>| assert!(out.iter().all(Result::is_ok)),
        || {
            let mut conn = conn.clone();
            let (keys, snap_prefix, value) = (&keys, &snap_prefix, &value);
            async move {
                let mut pipe = redis::pipe();
                for k in &keys[..1000] {
                    pipe.cmd("SET")
                        .arg(layout::data_key(snap_prefix, k))
                        .arg(layout::encode_value(T0 + 9, value))
                        .ignore();
                }
                let _: () = pipe.query_async(&mut conn).await.expect("raw puts");
            }
        },
        |()| (),
    )
    .await;
    report("multi_put 1000, Snapshot (SET)", 1000, adapter, raw);
    let _ = store.drop_dataset(snap).await;
    let _ = store.drop_dataset(ts).await;
}
