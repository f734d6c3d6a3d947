//! End to end: 100,000 CSV events and 10,000 Debezium changes streamed from files into RocksDB
//! through `StreamingWriter`, then read back with `multi_get` ranges. The ignored
//! `throughput_on_rocksdb` measures decode + encode + write events/s (run it with `--release`).

#![cfg(feature = "rocks")]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chronon_core::{GetRequest, KvStore};
use chronon_rocks::{RocksOptions, RocksStore};
use chronon_serving::stream::{
    CsvDecoder, DebeziumDecoder, LineSource, StreamingWriter, StructType, Value, WriterOptions,
};

const BASE_TS: i64 = 1_700_000_000_000;

fn purchases() -> StructType {
    StructType::from_json_str(
        r#"{"name": "purchases", "fields": [
            {"name": "user_id", "type": "string"},
            {"name": "purchase_price", "type": "double"},
            {"name": "item", "type": "string"},
            {"name": "quantity", "type": "int"},
            {"name": "ts", "type": "long"}]}"#,
    )
    .unwrap()
}

fn write_events(path: &Path, n: usize, users: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "user_id,purchase_price,item,quantity,ts").unwrap();
    for i in 0..n {
        writeln!(
            f,
            "user_{},{}.25,\"item, #{}\",{},{}",
            i % users,
            i % 1000,
            i % 7,
            i % 5,
            BASE_TS + i as i64
        )
        .unwrap();
    }
    f.flush().unwrap();
}

async fn rocks(dir: &Path) -> Arc<dyn KvStore> {
    Arc::new(
        RocksStore::open(RocksOptions::new(dir.join("db")))
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_events_and_debezium_changes_round_trip_through_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let store = rocks(dir.path()).await;

    // 100,000 CSV events for 1,000 users.
    let events = dir.path().join("events.csv");
    write_events(&events, 100_000, 1_000);
    let checkpoint = dir.path().join("events.cp");
    let writer = StreamingWriter::new(
        Arc::new(CsvDecoder::new(purchases())),
        store.clone(),
        WriterOptions::new("quickstart.purchases.v1", ["user_id"], "ts"),
    )
    .unwrap();
    let started = Instant::now();
    let source = LineSource::file(&events, Some(&checkpoint)).unwrap();
    let summary = writer.run(Box::new(source)).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "csv: {summary:?} in {secs:.2}s ({:.0} events/s, debug build)",
        100_000.0 / secs
    );
    assert_eq!(
        (summary.written, summary.bad, summary.skipped),
        (100_000, 0, 1)
    );
    assert_eq!(summary.committed_line, 100_001);

    // Every user's full history in one multi_get of ranges, and a narrower window.
    let requests: Vec<GetRequest> = (0..1_000)
        .map(|u| {
            let key = writer
                .key_codec()
                .encode_values(vec![Value::String(format!("user_{u}"))])
                .unwrap();
            GetRequest::range(writer.dataset(), key, BASE_TS, None)
        })
        .collect();
    let responses = store.multi_get(requests).await;
    let mut total = 0;
    for (u, r) in responses.iter().enumerate() {
        let versions = r.values.as_ref().unwrap();
        assert_eq!(versions.len(), 100, "user_{u}");
        for (j, tv) in versions.iter().enumerate() {
            let i = u + j * 1_000;
            assert_eq!(tv.millis, BASE_TS + i as i64);
            let row = writer.value_codec().decode(&tv.bytes).unwrap();
            assert_eq!(
                row,
                vec![
                    Value::Double((i % 1000) as f64 + 0.25),
                    Value::String(format!("item, #{}", i % 7)),
                    Value::Int((i % 5) as i32),
                ]
            );
        }
        total += versions.len();
    }
    assert_eq!(total, 100_000);
    let key = writer
        .key_codec()
        .encode_values(vec![Value::String("user_7".into())])
        .unwrap();
    let window = store
        .multi_get(vec![GetRequest::range(
            writer.dataset(),
            key,
            BASE_TS + 10_000,
            Some(BASE_TS + 20_007),
        )])
        .await;
    let millis: Vec<i64> = window[0]
        .values
        .as_ref()
        .unwrap()
        .iter()
        .map(|tv| tv.millis)
        .collect();
    assert_eq!(
        millis,
        (10..=20)
            .map(|j| BASE_TS + 7 + j * 1_000)
            .collect::<Vec<_>>()
    );

    // Re-running after the checkpoint reads nothing new and changes nothing.
    let again = StreamingWriter::new(
        Arc::new(CsvDecoder::new(purchases())),
        store.clone(),
        WriterOptions::new("quickstart.purchases.v1", ["user_id"], "ts"),
    )
    .unwrap()
    .run(Box::new(
        LineSource::file(&events, Some(&checkpoint)).unwrap(),
    ))
    .await
    .unwrap();
    assert_eq!(again.messages, 0);

    // 10,000 Debezium changes for 1,000 accounts: insert, 8 updates, delete.
    let table = StructType::from_json_str(
        r#"{"name": "accounts", "fields": [
            {"name": "account_id", "type": "long"}, {"name": "balance", "type": "double"},
            {"name": "status", "type": "string"}, {"name": "ts", "type": "long"}]}"#,
    )
    .unwrap();
    let changes = dir.path().join("changes.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&changes).unwrap());
        let row = |a: usize, v: usize| {
            format!(
                r#"{{"account_id":{a},"balance":{v}.5,"status":"s{v}","ts":{}}}"#,
                BASE_TS + v as i64
            )
        };
        for v in 0..10 {
            for a in 0..1_000 {
                let ts_ms = BASE_TS + (v * 1_000 + a) as i64;
                let line = match v {
                    0 => format!(
                        r#"{{"schema":{{}},"payload":{{"op":"c","before":null,"after":{},"ts_ms":{ts_ms}}}}}"#,
                        row(a, 0)
                    ),
                    9 => format!(
                        r#"{{"op":"d","before":{},"after":null,"ts_ms":{ts_ms}}}"#,
                        row(a, 8)
                    ),
                    _ => format!(
                        r#"{{"op":"u","before":{},"after":{},"ts_ms":{ts_ms}}}"#,
                        row(a, v - 1),
                        row(a, v)
                    ),
                };
                writeln!(f, "{line}").unwrap();
            }
        }
        f.flush().unwrap();
    }
    let cdc = StreamingWriter::new(
        Arc::new(DebeziumDecoder::new(table).unwrap()),
        store.clone(),
        WriterOptions::new("bank.accounts", ["account_id"], "ts"),
    )
    .unwrap();
    let summary = cdc
        .run(Box::new(LineSource::file(&changes, None).unwrap()))
        .await
        .unwrap();
    assert_eq!(
        (summary.messages, summary.written, summary.bad),
        // One put per image: 1 insert + 8 updates × 2 images + 1 delete per account.
        (10_000, 18_000, 0)
    );
    let requests: Vec<GetRequest> = (0..1_000)
        .map(|a| {
            let key = cdc.key_codec().encode_values(vec![Value::Long(a)]).unwrap();
            GetRequest::range(cdc.dataset(), key, 0, None)
        })
        .collect();
    let responses = store.multi_get(requests).await;
    let image = |v: usize, before: bool| {
        vec![
            Value::Double(v as f64 + 0.5),
            Value::String(format!("s{v}")),
            Value::Long(BASE_TS + v as i64),
            Value::Boolean(before),
        ]
    };
    for (a, r) in responses.iter().enumerate() {
        let versions = r.values.as_ref().unwrap();
        // One JVM `_MUTATION_COLS` record per put: the insert's after-image, each update's
        // before-image 1 ms before its after-image, the delete's before-image.
        let mut expected = Vec::new();
        for v in 0..10usize {
            let t = BASE_TS + (v * 1_000 + a) as i64;
            match v {
                0 => expected.push((t, image(0, false))),
                9 => expected.push((t, image(8, true))),
                _ => {
                    expected.push((t - 1, image(v - 1, true)));
                    expected.push((t, image(v, false)));
                }
            }
        }
        let got: Vec<(i64, Vec<Value>)> = versions
            .iter()
            .map(|tv| (tv.millis, cdc.value_codec().decode(&tv.bytes).unwrap()))
            .collect();
        assert_eq!(got, expected, "account {a}");
    }
}

/// Decode + encode + write throughput on RocksDB. Run:
/// `cargo test -p chronon-cli --release --test stream_e2e -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput_on_rocksdb() {
    let n: usize = std::env::var("STREAM_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store = rocks(dir.path()).await;
    let events = dir.path().join("events.csv");
    write_events(&events, n, 100_000);
    let mut opts = WriterOptions::new("bench.purchases", ["user_id"], "ts");
    opts.batch_size = 5_000;
    let writer =
        StreamingWriter::new(Arc::new(CsvDecoder::new(purchases())), store.clone(), opts).unwrap();
    let started = Instant::now();
    let summary = writer
        .run(Box::new(LineSource::file(&events, None).unwrap()))
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(summary.written, n as u64);
    println!("THROUGHPUT: {n} CSV events decoded, encoded and written to RocksDB in {secs:.2}s = {:.0} events/s", n as f64 / secs);
}
