//! What `compiled_confs.rs` shares between its tests: compiling Chronon's test repository, the
//! deterministic events, loading them into a store, and the brute-force reference values.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chronon_core::{KvStore, PutRequest};
use chronon_serving::conf::layout;
use chronon_serving::conf::{self, CompiledConf};
use chronon_serving::groupby::{
    round_down, tail_hop_millis, GroupBy, Operation, Window, DAY_MILLIS, HOUR_MILLIS,
};
use chronon_serving::metadata::{compute_and_upload, put_join};
use chronon_serving::stream::{JsonDecoder, Mutation, StreamingWriter, StructType, Value};

/// What the files the model cannot serve yet must say: (file, field named in the error).
pub const NOT_YET: &[(&str, &str)] = &[(
    "group_bys/quickstart/activity.approx_histogram",
    "aggregations[0].operation",
)];

/// Compiles the repository into `<target tmp>/chronon_repo_<tag>`; `None` (after printing
/// SKIPPED) without chronon-ai.
pub fn compile(tag: &str) -> Option<(PathBuf, BTreeMap<String, Vec<String>>)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/compile-chronon-confs");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chronon_repo_{tag}"));
    let status = std::process::Command::new(&script)
        .arg(&out)
        .status()
        .expect("run scripts/compile-chronon-confs");
    if status.code() == Some(3) {
        println!("SKIPPED compiled confs: compile.py not found (pip install chronon-ai==0.0.115)");
        return None;
    }
    assert!(status.success(), "compile-chronon-confs failed: {status}");
    let names = std::fs::read_to_string(out.join("expected_names.json")).unwrap();
    Some((out, serde_json::from_str(&names).unwrap()))
}

/// The columns of every source table in the repository, as the data would carry them.
pub fn data_schema() -> StructType {
    StructType::from_json_str(
        r#"{"name": "data", "fields": [
        {"name": "user_id", "type": "string"}, {"name": "purchase_price", "type": "long"},
        {"name": "refund_amt", "type": "long"}, {"name": "account_created_ds", "type": "string"},
        {"name": "email_verified", "type": "boolean"}, {"name": "amount", "type": "double"},
        {"name": "item", "type": "string"}, {"name": "category", "type": "string"},
        {"name": "scores", "type": {"type": "list", "element": "double"}},
        {"name": "ts", "type": "long"}]}"#,
    )
    .unwrap()
}

pub const B: i64 = 19_690 * DAY_MILLIS;
pub const USERS: [&str; 3] = ["u1", "u2", "u3"];

#[derive(Debug, Clone)]
pub struct Event {
    pub user: usize,
    pub ts: i64,
    pub amount: f64,
    pub item: String,
    /// A bucket column, null for every seventh event (Chronon skips null buckets).
    pub category: Option<String>,
    /// A list column of three scores (element-wise and flattened aggregations).
    pub scores: Vec<f64>,
}

/// Deterministic events over the four days before `B` and the hours after it (the stream).
pub fn events() -> Vec<Event> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for _ in 0..300 {
        let user = (next() % 3) as usize;
        let ts = B - 4 * DAY_MILLIS
            + (next() % (4 * DAY_MILLIS as u64 + 10 * HOUR_MILLIS as u64)) as i64;
        if !seen.insert((user, ts)) {
            continue;
        }
        let amount = (next() % 200) as f64 * 0.25 - 10.0;
        // Derived from the values above, so the earlier columns keep their sequence.
        out.push(Event {
            user,
            ts,
            amount,
            item: format!("item{}", next() % 6),
            category: (ts % 7 != 0).then(|| format!("cat{}", (ts / 1000) % 3)),
            scores: vec![
                amount * 0.5,
                (ts % 1000) as f64 / 8.0,
                -amount - user as f64,
            ],
        });
    }
    out
}

pub fn row(schema: &StructType, e: &Event) -> Vec<Value> {
    schema
        .fields
        .iter()
        .map(|f| match f.name.as_str() {
            "user_id" => Value::String(USERS[e.user].into()),
            "amount" => Value::Double(e.amount),
            // Purchases and returns carry the amount in quarters, so their sums are exact longs.
            "purchase_price" | "refund_amt" => Value::Long((e.amount * 4.0) as i64),
            "item" => Value::String(e.item.clone()),
            "category" => e.category.clone().map_or(Value::Null, Value::String),
            "scores" => Value::List(e.scores.iter().copied().map(Value::Double).collect()),
            "ts" => Value::Long(e.ts),
            _ => Value::Null,
        })
        .collect()
}

/// The feature over the raw events with the window rule `round_down(q - w, hop) <= t < q`.
pub fn reference(
    op: Operation,
    k: Option<usize>,
    w: Option<Window>,
    events: &[&Event],
    q: i64,
) -> Value {
    let mut rows: Vec<&Event> = events
        .iter()
        .copied()
        .filter(|e| e.ts < q)
        .filter(|e| {
            w.is_none_or(|w| e.ts >= round_down(q - w.millis(), tail_hop_millis(w.millis())))
        })
        .collect();
    rows.sort_by_key(|e| e.ts);
    if rows.is_empty() {
        return Value::Null;
    }
    let n = rows.len() as f64;
    let amounts = || rows.iter().map(|e| e.amount);
    let mean = amounts().sum::<f64>() / n;
    match op {
        Operation::Count => Value::Long(rows.len() as i64),
        Operation::Sum => Value::Double(amounts().sum()),
        Operation::Average => Value::Double(mean),
        Operation::Variance => {
            Value::Double(amounts().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n)
        }
        Operation::Min => Value::Double(amounts().fold(f64::INFINITY, f64::min)),
        Operation::Max => Value::Double(amounts().fold(f64::NEG_INFINITY, f64::max)),
        Operation::First => Value::String(rows[0].item.clone()),
        Operation::Last => Value::String(rows[rows.len() - 1].item.clone()),
        Operation::LastK => Value::List(
            rows.iter()
                .rev()
                .take(k.unwrap_or(1))
                .map(|e| Value::String(e.item.clone()))
                .collect(),
        ),
        Operation::UniqueCount => Value::Long(
            rows.iter()
                .map(|e| e.item.as_str())
                .collect::<BTreeSet<_>>()
                .len() as i64,
        ),
        Operation::BoundedUniqueCount => Value::Long(
            rows.iter()
                .map(|e| e.item.as_str())
                .collect::<BTreeSet<_>>()
                .len()
                .min(k.unwrap_or(8)) as i64,
        ),
        Operation::Skew | Operation::Kurtosis => {
            let m = |p: i32| amounts().map(|x| (x - mean).powi(p)).sum::<f64>();
            let (m2, m3, m4) = (m(2), m(3), m(4));
            Value::Double(match op {
                Operation::Skew if n >= 3.0 && m2 != 0.0 => n.sqrt() * m3 / m2.powf(1.5),
                Operation::Kurtosis if n >= 4.0 && m2 != 0.0 => n * m4 / (m2 * m2) - 3.0,
                _ => f64::NAN,
            })
        }
        Operation::FirstK => Value::List(
            rows.iter()
                .take(k.unwrap_or(1))
                .map(|e| Value::String(e.item.clone()))
                .collect(),
        ),
        Operation::TopK | Operation::BottomK => {
            let mut xs: Vec<f64> = amounts().collect();
            xs.sort_by(|a, b| a.total_cmp(b));
            if op == Operation::TopK {
                xs.reverse();
            }
            Value::List(
                xs.into_iter()
                    .take(k.unwrap_or(1))
                    .map(Value::Double)
                    .collect(),
            )
        }
        Operation::ApproxUniqueCount | Operation::ApproxPercentile => {
            panic!("sketches are checked against DataSketches, not this brute force")
        }
        Operation::Histogram => {
            let mut counts: BTreeMap<String, i32> = BTreeMap::new();
            for e in &rows {
                *counts.entry(e.item.clone()).or_default() += 1;
            }
            Value::Map(
                counts
                    .into_iter()
                    .map(|(k, c)| (Value::String(k), Value::Int(c)))
                    .collect(),
            )
        }
    }
}

/// A direct (not bucketed, not element-wise) feature as Chronon serves it: NaN and infinite
/// doubles are null (`DirectColumnAggregator.numberSanityCheck`).
pub fn as_direct(v: Value) -> Value {
    match v {
        Value::Double(d) if !d.is_finite() => Value::Null,
        other => other,
    }
}

pub fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) if x.is_nan() || y.is_nan() => {
            x.is_nan() && y.is_nan()
        }
        (Value::List(xs), Value::List(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| close(x, y))
        }
        (Value::Map(xs), Value::Map(ys)) => {
            let sorted = |m: &[(Value, Value)]| {
                let mut m = m.to_vec();
                m.sort_by_key(|(k, _)| k.to_json().to_string());
                m
            };
            let (xs, ys) = (sorted(xs), sorted(ys));
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(&ys)
                    .all(|((kx, x), (ky, y))| kx == ky && close(x, y))
        }
        (Value::Double(x), Value::Double(y)) => {
            (x - y).abs() <= 1e-7 * (1.0 + x.abs().max(y.abs()))
        }
        _ => a == b,
    }
}

pub fn rel(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir.join("production"))
        .unwrap()
        .display()
        .to_string()
        .replace('\\', "/")
}

/// Uploads the events of [`events`] for `gb`: the batch IRs as of `B` and the stream after it.
pub async fn upload_events(store: &Arc<dyn KvStore>, gb: &GroupBy) {
    let data = data_schema();
    let events = events();
    let schema = Arc::new(data.clone());
    let rows = events.iter().filter(|e| e.ts < B).map(|e| row(&data, e));
    let rows: Vec<Vec<Value>> = rows
        .map(|r| {
            gb.schema
                .fields
                .iter()
                .map(|f| r[data.index_of(&f.name).unwrap()].clone())
                .collect()
        })
        .collect();
    compute_and_upload(&**store, gb, B, rows).await.unwrap();
    let decoder = Arc::new(JsonDecoder::new(data.clone()));
    let writer = StreamingWriter::new(decoder, store.clone(), gb.writer_options()).unwrap();
    let mut puts = Vec::new();
    for ev in events.iter().filter(|e| e.ts >= B) {
        let m = Mutation::insert(schema.clone(), row(&data, ev)).unwrap();
        for p in writer.encode(&m).unwrap() {
            puts.push(PutRequest::new(
                writer.dataset(),
                p.key,
                p.value,
                Some(p.ts),
            ));
        }
    }
    for r in store.multi_put(puts).await {
        r.unwrap();
    }
}

/// Loads every compiled file: the served ones into `store` (group-bys with the events of
/// [`events`], batch and stream), the others must fail naming their field.
pub async fn load_all(dir: &Path, store: &Arc<dyn KvStore>) -> BTreeMap<String, GroupBy> {
    let entries = layout::read_confs(&dir.join("production")).unwrap();
    assert_eq!(entries.len(), 11, "every compiled file is read");
    let data = data_schema();
    let mut group_bys = BTreeMap::new();
    let mut joins = Vec::new();
    for e in &entries {
        let file = rel(dir, &e.path);
        let shown = e.path.display().to_string();
        let result = match &e.conf {
            CompiledConf::GroupBy(g) => conf::group_by_from_conf(g, &data, &shown).map(|gb| {
                group_bys.insert(file.clone(), gb);
            }),
            CompiledConf::Join(j) => conf::join_from_conf(j, &shown).map(|(join, _)| {
                joins.push(join);
            }),
        };
        match NOT_YET.iter().find(|(f, _)| *f == file) {
            Some((_, field)) => {
                let err = result.expect_err(&file);
                assert_eq!(err.field, *field, "{err}");
                assert!(err.to_string().contains(&shown), "{err} names the file");
            }
            None => result.unwrap_or_else(|e| panic!("{file} should load: {e}")),
        }
    }
    for gb in group_bys.values() {
        upload_events(store, gb).await;
    }
    for j in joins {
        put_join(&**store, &j).await.unwrap();
    }
    layout::upload_confs(&**store, &entries).await.unwrap();
    group_bys
}
