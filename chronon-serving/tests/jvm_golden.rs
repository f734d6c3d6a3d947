//! The JVM storage format against golden vectors written by an independent encoder:
//! `scripts/make-jvm-golden` (Python, `fastavro`, schemas written out from airbnb/chronon's
//! Scala, IRs from Chronon's aggregators re-implemented in Python). Each test is one clause of
//! the format (`chronon_serving::jvm` lists them with their Scala sources); each runs over every
//! golden GroupBy: no aggregations, SNAPSHOT events, TEMPORAL events with every exact operation,
//! TEMPORAL entities.

use std::path::PathBuf;

use chronon_serving::groupby::GroupBy;
use chronon_serving::jvm::avro_json::jvm_schema_json;
use chronon_serving::jvm::{
    BatchRecord, BatchValue, JvmCodecs, JvmLayout, ServingInfo, SERVING_INFO_KEY,
};
use chronon_serving::stream::value::{format_date, parse_date};
use chronon_serving::stream::{DataType, Value};
use serde_json::Value as Json;

struct Golden {
    file: String,
    json: Json,
    group_by: GroupBy,
    codecs: JvmCodecs,
}

fn golden() -> Vec<Golden> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/jvm");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "golden files in {}", dir.display());
    files
        .into_iter()
        .map(|path| {
            let file = path.file_name().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(&path).expect("read golden");
            let json: Json = serde_json::from_str(&text).expect("golden JSON");
            let group_by = GroupBy::from_json_str(&json["group_by"].to_string())
                .unwrap_or_else(|e| panic!("{file}: group_by: {e}"));
            let layout = JvmLayout::new(&group_by).unwrap_or_else(|e| panic!("{file}: {e}"));
            let codecs = JvmCodecs::new(layout).unwrap_or_else(|e| panic!("{file}: {e}"));
            Golden {
                file,
                json,
                group_by,
                codecs,
            }
        })
        .collect()
}

/// A golden value (structs positional, maps `[[k, v]]`, NaN as "NaN") as this crate's value.
fn value(t: &DataType, j: &Json) -> Value {
    if j.is_null() {
        return Value::Null;
    }
    match t {
        DataType::Boolean => Value::Boolean(j.as_bool().expect("bool")),
        DataType::Int => Value::Int(j.as_i64().expect("int") as i32),
        DataType::Long => Value::Long(j.as_i64().expect("long")),
        DataType::Double => Value::Double(match j {
            Json::String(s) if s == "NaN" => f64::NAN,
            _ => j.as_f64().expect("double"),
        }),
        DataType::String => Value::String(j.as_str().expect("string").to_string()),
        DataType::List(e) => Value::List(
            j.as_array()
                .expect("list")
                .iter()
                .map(|x| value(e, x))
                .collect(),
        ),
        DataType::Map(_, v) => Value::Map(
            j.as_array()
                .expect("map as pairs")
                .iter()
                .map(|p| {
                    (
                        Value::String(p[0].as_str().expect("map key").to_string()),
                        value(v, &p[1]),
                    )
                })
                .collect(),
        ),
        DataType::Struct(s) => Value::Struct(
            s.fields
                .iter()
                .zip(j.as_array().expect("struct as array"))
                .map(|(f, x)| value(&f.data_type, x))
                .collect(),
        ),
        other => panic!("golden type {other} not used"),
    }
}

fn row(schema: &chronon_serving::stream::StructType, j: &Json) -> Vec<Value> {
    match value(&DataType::Struct(schema.clone()), j) {
        Value::Struct(r) => r,
        other => panic!("not a row: {other:?}"),
    }
}

/// The value with every map's entries sorted by key.
fn sorted_maps(v: Value) -> Value {
    match v {
        Value::List(items) => Value::List(items.into_iter().map(sorted_maps).collect()),
        Value::Struct(items) => Value::Struct(items.into_iter().map(sorted_maps).collect()),
        Value::Map(entries) => {
            let mut entries: Vec<(Value, Value)> = entries
                .into_iter()
                .map(|(k, v)| (k, sorted_maps(v)))
                .collect();
            entries.sort_by(|a, b| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)));
            Value::Map(entries)
        }
        other => other,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn entries<'a>(g: &'a Golden, section: &str) -> &'a [Json] {
    g.json[section].as_array().map(Vec::as_slice).unwrap_or(&[])
}

#[test]
fn dataset_names_are_the_upper_cased_clean_name() {
    for g in golden() {
        let l = g.codecs.layout();
        assert_eq!(l.batch_dataset, g.json["datasets"]["batch"], "{}", g.file);
        assert_eq!(
            l.streaming_dataset, g.json["datasets"]["streaming"],
            "{}",
            g.file
        );
        assert!(
            l.batch_dataset.ends_with("_BATCH")
                && l.batch_dataset == l.batch_dataset.to_uppercase()
        );
    }
}

#[test]
fn schemas_are_what_from_chronon_schema_builds() {
    for g in golden() {
        let l = g.codecs.layout();
        let schemas = &g.json["schemas"];
        let check = |name: &str, s: &chronon_serving::stream::StructType| {
            assert_eq!(
                jvm_schema_json(s).expect("schema"),
                schemas[name],
                "{}: {name} schema",
                g.file
            );
        };
        check("key", &l.key);
        check("batch_value", l.batch_value_schema());
        if schemas.get("input_cols").is_some() {
            check("input_cols", &l.input_cols);
            check("mutation_cols", &l.mutation_cols);
            check("output", &l.output);
        }
    }
}

#[test]
fn nullable_unions_put_null_first() {
    // AvroConversions.fromChrononSchema: createUnion(NULL, T); a null key column is branch 0.
    for g in golden() {
        let key = g.codecs.layout().key.clone();
        let nulls = vec![Value::Null; key.fields.len()];
        let bytes = g.codecs.encode_key(&nulls).expect("encode null key");
        assert_eq!(bytes, vec![0u8; key.fields.len()], "{}", g.file);
        let json = jvm_schema_json(&key).expect("schema");
        for f in json["fields"].as_array().expect("fields") {
            assert_eq!(f["type"][0], "null", "{}: {}", g.file, f["name"]);
        }
    }
}

#[test]
fn key_bytes_are_the_jvm_key_bytes() {
    let mut checked = 0;
    for g in golden() {
        let key = g.codecs.layout().key.clone();
        for section in ["batch", "streaming"] {
            for e in entries(&g, section) {
                let k = row(&key, &e["key"]);
                let bytes = g.codecs.encode_key(&k).expect("encode key");
                assert_eq!(hex(&bytes), e["key_hex"], "{}: key {}", g.file, e["key"]);
                let back = g.codecs.decode_key(&unhex(e["key_hex"].as_str().unwrap()));
                assert_eq!(back.expect("decode key"), k, "{}", g.file);
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} keys checked");
}

#[test]
fn batch_values_are_the_jvm_batch_values() {
    let mut checked = 0;
    for g in golden() {
        let schema = g.codecs.layout().batch_value_schema().clone();
        for e in entries(&g, "batch") {
            let expected = row(&schema, &e["value"]);
            let golden_bytes = unhex(e["value_hex"].as_str().unwrap());
            // Decode the JVM's bytes into the record of the GroupBy's shape ...
            let record = g.codecs.decode_batch(&golden_bytes).expect("decode batch");
            let fields = match &record {
                BatchRecord::Selected(r) | BatchRecord::Finalized(r) => r.clone(),
                BatchRecord::Ir(ir) => {
                    assert_eq!(ir.collapsed.len(), g.codecs.layout().parts.len());
                    for hops in &ir.tail_hops {
                        let ts: Vec<i64> = hops
                            .iter()
                            .map(|h| chronon_serving::jvm::FinalBatchIr::hop_ts(h).unwrap())
                            .collect();
                        assert!(ts.windows(2).all(|w| w[0] < w[1]), "hops sorted by ts");
                    }
                    vec![
                        Value::Struct(ir.collapsed.clone()),
                        Value::List(
                            ir.tail_hops
                                .iter()
                                .map(|l| {
                                    Value::List(l.iter().cloned().map(Value::Struct).collect())
                                })
                                .collect(),
                        ),
                    ]
                }
            };
            assert_eq!(fields, expected, "{}: decoded batch value", g.file);
            // ... and encode that record back to the same bytes.
            let bytes = g.codecs.encode_batch(&record).expect("encode batch");
            assert_eq!(hex(&bytes), e["value_hex"], "{}: batch value bytes", g.file);
            // apache-avro, an independent reader, agrees (its maps are hash maps: order aside).
            let apache = g.codecs.batch_codec().decode_with_apache(&golden_bytes);
            assert_eq!(
                sorted_maps(Value::Struct(apache.expect("apache decode"))),
                sorted_maps(Value::Struct(expected)),
                "{}",
                g.file
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} batch values checked");
}

#[test]
fn temporal_batch_values_hold_all_three_hop_lists() {
    let g = golden()
        .into_iter()
        .find(|g| g.file == "temporal_events.json")
        .expect("temporal golden");
    let mut hop_sizes_used = [false; 3];
    for e in entries(&g, "batch") {
        let BatchRecord::Ir(ir) = g
            .codecs
            .decode_batch(&unhex(e["value_hex"].as_str().unwrap()))
            .expect("decode")
        else {
            panic!("TEMPORAL values are IRs");
        };
        for (i, hops) in ir.tail_hops.iter().enumerate() {
            hop_sizes_used[i] |= !hops.is_empty();
        }
    }
    assert_eq!(
        hop_sizes_used, [true; 3],
        "the golden exercises 1d, 1h and 5min hops"
    );
}

#[test]
fn streaming_values_are_input_or_mutation_columns() {
    let mut checked = 0;
    for g in golden() {
        let schema = g.codecs.layout().streaming_value_schema().clone();
        for e in entries(&g, "streaming") {
            let v = row(&schema, &e["value"]);
            let bytes = g.codecs.encode_streaming(&v).expect("encode streaming");
            assert_eq!(hex(&bytes), e["value_hex"], "{}: streaming value", g.file);
            let back = g
                .codecs
                .decode_streaming(&unhex(e["value_hex"].as_str().unwrap()))
                .expect("decode streaming");
            assert_eq!(back, v, "{}", g.file);
            checked += 1;
        }
        if g.group_by.source == chronon_serving::groupby::SourceKind::Entities
            && !entries(&g, "streaming").is_empty()
        {
            let names: Vec<&str> = schema.field_names().collect();
            assert_eq!(&names[names.len() - 2..], ["ts", "is_before"], "{}", g.file);
        }
    }
    assert!(checked >= 4, "only {checked} streaming values checked");
}

#[test]
fn serving_info_is_read_as_the_jvm_reads_it() {
    for g in golden() {
        assert_eq!(g.json["serving_info_key"], SERVING_INFO_KEY);
        let info = ServingInfo::parse(g.json["serving_info"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", g.file));
        assert_eq!(
            info.batch_end_millis().expect("batch end"),
            g.json["batch_end_millis"].as_i64().unwrap(),
            "{}",
            g.file
        );
        let l = g.codecs.layout();
        assert_eq!(info.key_schema().expect("key schema"), l.key, "{}", g.file);
        assert_eq!(
            info.selected_schema().expect("selected").fields,
            l.selected.fields,
            "{}",
            g.file
        );
        // The GroupBy inside gives the same layout: datasets, batch value and streaming schemas.
        let (_, read) =
            JvmLayout::from_serving_info(&info).unwrap_or_else(|e| panic!("{}: {e}", g.file));
        assert_eq!(read.batch_dataset, l.batch_dataset, "{}", g.file);
        assert_eq!(read.batch_value, l.batch_value, "{}", g.file);
        assert_eq!(
            jvm_schema_json(read.batch_value_schema()).unwrap(),
            jvm_schema_json(l.batch_value_schema()).unwrap(),
            "{}",
            g.file
        );
        if l.batch_value != BatchValue::Selected {
            // (A GroupBy without aggregations has no streaming part.)
            assert_eq!(
                read.streaming_value_schema(),
                l.streaming_value_schema(),
                "{}",
                g.file
            );
        }
    }
}

#[test]
fn serving_info_is_written_as_the_jvm_writes_it() {
    for g in golden() {
        let golden_info: Json =
            serde_json::from_str(g.json["serving_info"].as_str().unwrap()).expect("JSON");
        let batch_end = g.json["batch_end_date"].as_str().unwrap();
        let end_date = format_date(parse_date(batch_end).unwrap() - 1);
        let info = ServingInfo::for_group_by(&g.group_by, &end_date)
            .unwrap_or_else(|e| panic!("{}: {e}", g.file));
        assert_eq!(
            info.batch_end_date.as_deref(),
            Some(batch_end),
            "{}",
            g.file
        );
        // Schemas are Avro Java's pretty-printed text, byte for byte.
        for field in ["keyAvroSchema", "selectedAvroSchema", "inputAvroSchema"] {
            let ours = match field {
                "keyAvroSchema" => info.key_avro_schema.clone(),
                "selectedAvroSchema" => info.selected_avro_schema.clone(),
                _ => info.input_avro_schema.clone(),
            };
            assert_eq!(
                ours.as_deref(),
                golden_info[field].as_str(),
                "{}: {field}",
                g.file
            );
        }
        // The GroupBy as Thrift JSON: keys, aggregations and accuracy as compile.py writes them.
        let ours = info.group_by.clone().expect("groupBy");
        let theirs = &golden_info["groupBy"];
        for field in ["keyColumns", "aggregations", "accuracy"] {
            assert_eq!(
                ours.get(field),
                theirs.get(field),
                "{}: groupBy.{field}",
                g.file
            );
        }
        assert_eq!(ours["metaData"]["name"], theirs["metaData"]["name"]);
        // Fields in Thrift id order, as TSimpleJSONProtocol writes them.
        let text = info.to_json_string();
        let order: Vec<usize> = [
            "\"groupBy\"",
            "\"inputAvroSchema\"",
            "\"selectedAvroSchema\"",
            "\"keyAvroSchema\"",
            "\"batchEndDate\"",
        ]
        .iter()
        .map(|k| text.find(k).unwrap_or_else(|| panic!("{k} missing")))
        .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "{}: field order",
            g.file
        );
        // And it reads back.
        assert_eq!(ServingInfo::parse(&text).expect("parse"), info);
    }
}

/// Two served values equal, doubles to 1e-9 relative (the brute force sums in another order),
/// NaN equal to NaN, maps compared sorted.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => {
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::List(x), Value::List(y)) | (Value::Struct(x), Value::Struct(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Map(_), Value::Map(_)) => match (sorted_maps(a.clone()), sorted_maps(b.clone())) {
            (Value::Map(x), Value::Map(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(&y)
                        .all(|((k1, v1), (k2, v2))| k1 == k2 && same(v1, v2))
            }
            _ => false,
        },
        _ => a == b,
    }
}

/// A JVM deployment's tables as the golden files hold them, in a fresh store: the batch rows
/// and the serving info in `<NAME>_BATCH`, the streaming rows in `<NAME>_STREAMING`, nothing in
/// `CHRONON_METADATA` (the fetcher takes the GroupBy from the serving info).
async fn jvm_tables(g: &Golden) -> std::sync::Arc<dyn chronon_core::KvStore> {
    use chronon_core::{DatasetProps, KvStoreExt, MemoryStore};
    let store: std::sync::Arc<dyn chronon_core::KvStore> = std::sync::Arc::new(MemoryStore::new());
    let batch = g.json["datasets"]["batch"].as_str().expect("batch dataset");
    let streaming = g.json["datasets"]["streaming"]
        .as_str()
        .expect("streaming dataset");
    let b = g.json["batch_end_millis"].as_i64().expect("batch end");
    store
        .create(batch, &DatasetProps::snapshot())
        .await
        .unwrap();
    store
        .create(streaming, &DatasetProps::time_series())
        .await
        .unwrap();
    for e in entries(g, "batch") {
        let (k, v) = (
            e["key_hex"].as_str().unwrap(),
            e["value_hex"].as_str().unwrap(),
        );
        store.put(batch, unhex(k), unhex(v), Some(b)).await.unwrap();
    }
    let info = g.json["serving_info"].as_str().expect("serving info");
    store
        .put_string(batch, SERVING_INFO_KEY, info, Some(b))
        .await
        .unwrap();
    for e in entries(g, "streaming") {
        let (k, v) = (
            e["key_hex"].as_str().unwrap(),
            e["value_hex"].as_str().unwrap(),
        );
        let millis = e["millis"].as_i64().unwrap();
        store
            .put(streaming, unhex(k), unhex(v), Some(millis))
            .await
            .unwrap();
    }
    store
}

/// The request of a golden key (its values under the GroupBy's key names).
fn request(g: &Golden, key: &Json, q: i64) -> chronon_serving::fetcher::FetchRequest {
    let keys: Vec<(String, Json)> = g
        .group_by
        .keys
        .iter()
        .cloned()
        .zip(key.as_array().expect("key").iter().cloned())
        .collect();
    chronon_serving::fetcher::FetchRequest::new(g.group_by.name.clone(), keys).at(q)
}

/// A golden key, a query time and the features expected then, by name.
type Expected = (Json, i64, Vec<(String, Value)>);

#[tokio::test]
async fn the_fetcher_serves_jvm_tables_with_the_brute_force_values() {
    use chronon_serving::fetcher::{Fetcher, FetcherOptions};
    let mut checked = 0;
    for g in golden() {
        let store = jvm_tables(&g).await;
        let fetcher = Fetcher::new(store, FetcherOptions::default());
        let layout = g.codecs.layout();
        let b = g.json["batch_end_millis"].as_i64().unwrap();
        let mut cases: Vec<Expected> = Vec::new();
        match layout.batch_value {
            // TEMPORAL: the brute-force features over every row before the query time.
            BatchValue::Ir => {
                for e in entries(&g, "expected_features") {
                    let values = row(&layout.output, &e["features"]);
                    let names = layout.output.fields.iter().map(|f| f.name.clone());
                    cases.push((
                        e["key"].clone(),
                        e["query_millis"].as_i64().unwrap(),
                        names.zip(values).collect(),
                    ));
                }
            }
            // SNAPSHOT and no aggregations: the uploaded values themselves, at any time after B.
            BatchValue::Finalized | BatchValue::Selected => {
                let schema = layout.batch_value_schema();
                for e in entries(&g, "batch") {
                    let names = schema.fields.iter().map(|f| f.name.clone());
                    let values = row(schema, &e["value"]);
                    cases.push((e["key"].clone(), b + 3_600_000, names.zip(values).collect()));
                }
            }
        }
        if g.file == "temporal_entities.json" {
            // The golden mutations put a before- and an after-image at the same (key, ts), which
            // a store keeping one version per (key, ts) cannot hold; its batch side is checked
            // by the byte tests above.
            continue;
        }
        assert!(!cases.is_empty(), "{}: nothing to check", g.file);
        let requests = cases.iter().map(|(k, q, _)| request(&g, k, *q)).collect();
        let responses = fetcher.fetch_group_bys(requests).await;
        for ((key, q, want), r) in cases.iter().zip(responses) {
            let got = r
                .values
                .unwrap_or_else(|e| panic!("{}: {key} at {q}: {e}", g.file));
            for (name, w) in want {
                let v = got
                    .get(name)
                    .unwrap_or_else(|| panic!("{}: no feature {name} in {got:?}", g.file));
                assert!(
                    same(v, w),
                    "{}: {key} at {q}: {name} = {v:?}, brute force {w:?}",
                    g.file
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "only {checked} features checked");
}

/// What JVM Chronon has no stored form for is refused when the definition is stored or
/// uploaded, naming it, rather than written as bytes a JVM fetcher could not read.
#[tokio::test]
async fn what_the_jvm_cannot_store_is_refused_naming_it() {
    use chronon_core::MemoryStore;
    use chronon_serving::metadata::{compute_and_upload, put_group_by};
    let gb = |windows: &str| {
        GroupBy::from_yaml_str(&format!(
            r#"
name: t.minutes
keys: [user_id]
schema: {{name: p, fields: [{{name: user_id, type: string}}, {{name: price, type: double}}, {{name: ts, type: long}}]}}
aggregations:
  - {{input_column: price, operation: sum, windows: {windows}}}
"#
        ))
        .unwrap()
    };
    let store = MemoryStore::new();
    let e = put_group_by(&store, &gb("[30m]"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("window 30m") && e.contains("hours or days"),
        "{e}"
    );
    // The serving info keeps the batch end as a date: a batch end off midnight is refused.
    let e = compute_and_upload(&store, &gb("[1d]"), 86_400_000 + 1, [])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a UTC midnight"), "{e}");
}
