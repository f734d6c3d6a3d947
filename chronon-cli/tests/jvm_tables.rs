//! A JVM Chronon deployment's tables served through the `chronon` binary, on DynamoDB Local (the
//! zipline `DynamoDBKVStoreImpl` table layout) and on Redis, real servers started by the
//! conformance launchers (`SKIPPED` when one cannot start):
//!
//! 1. `chronon upload URL --table DIR` loads the golden upload tables: Spark's Parquet part
//!    files as `GroupByUpload` writes them, made by `scripts/make-jvm-golden` (Python, fastavro
//!    and pyarrow; never the Rust code), for TEMPORAL events with every exact operation, SNAPSHOT
//!    events and a GroupBy without aggregations. Nothing goes to `CHRONON_METADATA`: the fetcher
//!    takes each GroupBy from its serving info, as the JVM's fetcher does.
//! 2. `chronon stream` writes the golden events after the batch end; the stored streaming values
//!    are the golden JVM bytes (`_INPUT_COLS`, keyed by the JVM's `Key` record).
//! 3. `chronon fetch --group-by` returns the golden brute-force features (Python's re-implemented
//!    aggregators over every event before the query time) and the uploaded snapshot values.

#![cfg(all(feature = "redis", feature = "dynamodb"))]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use chronon_core::GetRequest;
use serde_json::Value as Json;

mod common;
use common::run as chronon;

fn ok(args: &[&str]) -> String {
    let (code, out, err) = chronon(args);
    assert_eq!(code, 0, "chronon {args:?} failed:\n{out}\n{err}");
    out
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../chronon-serving/tests/golden/jvm")
}

fn golden(case: &str) -> Json {
    let path = golden_dir().join(format!("{case}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("golden JSON")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// JSON values equal, numbers to 1e-9 relative (the brute force sums in another order), `NaN`
/// strings equal, `[[key, value]]` map pairs compared in key order.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (Json::Array(x), Json::Array(y)) => {
            let pairs = |v: &Vec<Json>| {
                v.iter().all(|p| {
                    p.as_array()
                        .is_some_and(|p| p.len() == 2 && p[0].is_string())
                })
            };
            if !x.is_empty() && pairs(x) && pairs(y) {
                let sorted = |v: &Vec<Json>| {
                    let mut v = v.clone();
                    v.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
                    v
                };
                let (x, y) = (sorted(x), sorted(y));
                return x.len() == y.len() && x.iter().zip(&y).all(|(a, b)| same(a, b));
            }
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        _ => a == b,
    }
}

fn fetch(url: &str, group_by: &str, keys: &str, at: i64) -> serde_json::Map<String, Json> {
    let out = ok(&[
        "fetch",
        url,
        "--group-by",
        group_by,
        "--keys",
        keys,
        "--at",
        &at.to_string(),
    ]);
    match serde_json::from_str(&out) {
        Ok(Json::Object(m)) => m,
        other => panic!("fetch printed no JSON object ({other:?}): {out}"),
    }
}

/// `user_id=alice` (or `a=1,b=x`) for a golden key under the GroupBy's key names.
fn key_arg(case: &Json, key: &Json) -> String {
    let names = case["group_by"]["keys"].as_array().expect("keys");
    names
        .iter()
        .zip(key.as_array().expect("key"))
        .map(|(n, v)| {
            let v = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}={v}", n.as_str().expect("key name"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The streamed events: the golden streaming rows back as CSV lines of the source schema.
fn write_stream_csv(case: &Json, path: &Path) {
    let fields: Vec<&str> = case["group_by"]["schema"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("field name"))
        .collect();
    let inputs: Vec<&str> = case["schemas"]["input_cols"]["fields"]
        .as_array()
        .expect("input cols")
        .iter()
        .map(|f| f["name"].as_str().expect("input name"))
        .collect();
    let keys: Vec<&str> = case["group_by"]["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k.as_str().expect("key"))
        .collect();
    let mut text = fields.join(",") + "\n";
    for e in case["streaming"].as_array().expect("streaming") {
        let cell = |name: &str| -> String {
            let v = if let Some(i) = keys.iter().position(|k| *k == name) {
                &e["key"][i]
            } else if let Some(i) = inputs.iter().position(|c| *c == name) {
                &e["value"][i]
            } else if name == "ts" {
                &e["millis"]
            } else {
                &Json::Null
            };
            match v {
                Json::Null => String::new(),
                Json::String(s) => s.clone(),
                other => other.to_string(),
            }
        };
        text += &(fields.iter().map(|f| cell(f)).collect::<Vec<_>>().join(",") + "\n");
    }
    std::fs::write(path, text).expect("write stream CSV");
}

async fn serve_jvm_tables(url: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let upload = |case: &str| {
        let table = golden_dir().join("upload").join(case);
        let out = ok(&["upload", url, "--table", table.to_str().unwrap(), "--quiet"]);
        assert!(out.contains("uploaded"), "{out}");
    };

    // TEMPORAL events: batch IRs from the upload table, streaming rows from `chronon stream`.
    let temporal = golden("temporal_events");
    let name = temporal["group_by"]["name"].as_str().unwrap();
    upload("temporal_events");
    let schema = dir.path().join("schema.json");
    std::fs::write(&schema, temporal["group_by"]["schema"].to_string()).unwrap();
    let csv = dir.path().join("stream.csv");
    write_stream_csv(&temporal, &csv);
    ok(&[
        "stream",
        url,
        "--decoder",
        "csv",
        "--schema",
        schema.to_str().unwrap(),
        "--group-by",
        name,
        "--keys",
        "user_id",
        csv.to_str().unwrap(),
    ]);
    // What `stream` wrote is the golden JVM bytes, at the golden times.
    let store = chronon_serving::store_url::open_store(url)
        .await
        .expect("open store");
    let streaming_ds = temporal["datasets"]["streaming"].as_str().unwrap();
    for e in temporal["streaming"].as_array().unwrap() {
        let key = Bytes::from(unhex(e["key_hex"].as_str().unwrap()));
        let millis = e["millis"].as_i64().unwrap();
        let got = store
            .multi_get(vec![GetRequest::range(
                streaming_ds,
                key,
                millis,
                Some(millis),
            )])
            .await;
        let versions = got[0].values.as_ref().expect("streaming read");
        assert_eq!(versions.len(), 1, "{url}: one streaming row at {millis}");
        assert_eq!(
            versions[0].bytes.as_ref(),
            unhex(e["value_hex"].as_str().unwrap()).as_slice(),
            "{url}: streaming value at {millis}"
        );
    }
    let names: Vec<&str> = temporal["schemas"]["output"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let mut checked = 0;
    for e in temporal["expected_features"].as_array().unwrap() {
        let q = e["query_millis"].as_i64().unwrap();
        let got = fetch(url, name, &key_arg(&temporal, &e["key"]), q);
        for (n, want) in names.iter().zip(e["features"].as_array().unwrap()) {
            let v = got
                .get(*n)
                .unwrap_or_else(|| panic!("{url}: no {n} in {got:?}"));
            assert!(
                same(v, want),
                "{url}: {} at {q}: {n} = {v}, brute force {want}",
                e["key"]
            );
            checked += 1;
        }
    }
    assert!(checked >= 80, "{url}: only {checked} features checked");

    // SNAPSHOT and no aggregations: the uploaded values are served as they are.
    for case in ["snapshot_events", "no_agg"] {
        let g = golden(case);
        upload(case);
        let name = g["group_by"]["name"].as_str().unwrap();
        let b = g["batch_end_millis"].as_i64().unwrap();
        let fields = g["schemas"]["batch_value"]["fields"].as_array().unwrap();
        for row in g["batch"].as_array().unwrap() {
            let got = fetch(url, name, &key_arg(&g, &row["key"]), b + 3_600_000);
            for (f, want) in fields.iter().zip(row["value"].as_array().unwrap()) {
                let n = f["name"].as_str().unwrap();
                let v = got.get(n).unwrap_or(&Json::Null);
                assert!(
                    same(v, want),
                    "{url}: {case} {}: {n} = {v}, uploaded {want}",
                    row["key"]
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jvm_tables_served_on_dynamodb_local() {
    let Some(server) = conformance::launch::dynamodb::dynamodb().await else {
        println!("SKIPPED DynamoDB Local: the launcher could not start it");
        return;
    };
    let endpoint = url::Url::parse(&server.endpoint).expect("launcher endpoint");
    let url = format!(
        "dynamodb://{}:{}?region=us-west-2",
        endpoint.host_str().unwrap_or("127.0.0.1"),
        endpoint.port().unwrap_or(8000)
    );
    serve_jvm_tables(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jvm_tables_served_on_redis() {
    let Some(server) = conformance::launch::redis::redis().await else {
        println!("SKIPPED Redis: the launcher could not start redis-server");
        return;
    };
    serve_jvm_tables(&server.url).await;
}
