//! Chronon's own compiled definitions, end to end: `scripts/compile-chronon-confs` compiles the
//! Python repository in `tests/chronon_repo` with chronon-ai's `compile.py` and writes the feature
//! names Chronon's Python helpers give for each file; this test loads every compiled file, serves
//! it, and checks
//!
//! - the feature names the fetcher returns equal the Python helpers' names (an independent route:
//!   names computed in Python from the Thrift objects, not by this crate);
//! - fetched values equal a brute-force computation over the raw events for every exact
//!   operation the model serves (`activity.basic`), batch and stream parts both;
//! - derived features (GroupBy and Join derivations) equal the same expressions computed by hand
//!   over the brute-force features;
//! - the files the model cannot serve yet fail at load time with an error naming the file and
//!   the field.
//!
//! Without `compile.py` (`pip install chronon-ai==0.0.115`, done by `scripts/setup`) the test
//! prints `SKIPPED` and passes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use chronon_core::{KvStore, KvStoreExt, MemoryStore};
use chronon_serving::conf::layout::{self, CONF_BY_KEY_DATASET, ENTITY_BY_TEAM_DATASET};
use chronon_serving::conf::{self, CompiledConf};
use chronon_serving::fetcher::{FetchRequest, Fetcher, FetcherOptions};
use chronon_serving::groupby::{
    round_down, tail_hop_millis, Aggregation, GroupBy, Operation, Window, HOUR_MILLIS,
    MINUTE_MILLIS,
};
use chronon_serving::metadata::put_join;
use chronon_serving::stream::Value;

mod common;
use common::*;

#[tokio::test]
async fn compiled_confs_load_serve_chronon_names_and_exact_values() {
    let Some((dir, expected)) = compile("serve") else {
        return;
    };
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let group_bys = load_all(&dir, &store).await;
    let fetcher = Fetcher::new(store.clone(), FetcherOptions::default());
    let q = B + 3 * HOUR_MILLIS + 7 * MINUTE_MILLIS;

    // Names: every served group-by and join against the Python helpers' names.
    for (file, names) in &expected {
        if NOT_YET.iter().any(|(f, _)| f == file) {
            continue;
        }
        let want: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        let name = match file.split_once('/') {
            Some(("group_bys", _)) => group_bys[file].name.clone(),
            _ => {
                let (_, conf) =
                    layout::get_conf(&*store, "joins", file.trim_start_matches("joins/"))
                        .await
                        .unwrap()
                        .expect("uploaded to ZIPLINE_METADATA");
                match conf {
                    CompiledConf::Join(j) => j.meta_data.unwrap().name.unwrap(),
                    CompiledConf::GroupBy(_) => panic!("{file} is a join"),
                }
            }
        };
        let req = FetchRequest::new(&name, [("user_id", "u1"), ("buyer", "u2")]).at(q);
        let resp = if file.starts_with("joins/") {
            fetcher.fetch_joins(vec![req]).await
        } else {
            fetcher
                .fetch_group_bys(vec![FetchRequest::new(&name, [("user_id", "u1")]).at(q)])
                .await
        };
        let values = resp[0]
            .values
            .as_ref()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let got: BTreeSet<&str> = values.keys().map(String::as_str).collect();
        assert_eq!(got, want, "{file}: fetched names vs chronon-ai's");
    }

    // Values: every exact operation of activity.basic against the brute force, per user.
    let gb = &group_bys["group_bys/quickstart/activity.basic"];
    let events = events();
    let mut checked = 0;
    for (u, user) in USERS.iter().enumerate() {
        let resp = fetcher
            .fetch_group_bys(vec![FetchRequest::new(&gb.name, [("user_id", *user)]).at(q)])
            .await;
        let values = resp[0].values.as_ref().unwrap();
        let mine: Vec<&Event> = events.iter().filter(|e| e.user == u).collect();
        for (a, w, _) in gb.features() {
            let name = a.feature_name(w);
            let want = as_direct(reference(a.operation, a.k, w, &mine, q));
            let got = &values[&name];
            assert!(
                close(got, &want),
                "{user} {name}: fetched {got:?}, brute force {want:?}"
            );
            assert_ne!(
                want,
                Value::Null,
                "{user} {name}: the case exercises the feature"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * 35);
}

/// A bucketed, element-wise or flattened feature over the raw events, from [`reference`] over
/// the events of each bucket (rows with a null bucket left out; a bucket without rows in the
/// window is absent, as Chronon's map holds only buckets it saw), over each list position as the
/// amount, or over every list element as one event.
fn shaped_reference(
    a: &Aggregation,
    w: Option<Window>,
    bucket: Option<&str>,
    events: &[&Event],
    q: i64,
) -> Value {
    let with_amount = |e: &Event, amount: f64| Event {
        amount,
        ..e.clone()
    };
    if let Some(col) = bucket {
        let key = |e: &Event| match col {
            "category" => e.category.clone(),
            "item" => Some(e.item.clone()),
            other => panic!("no bucket column {other} in the events"),
        };
        let buckets: BTreeSet<String> = events.iter().filter_map(|e| key(e)).collect();
        let mut entries = Vec::new();
        for b in buckets {
            let mine: Vec<&Event> = events
                .iter()
                .copied()
                .filter(|e| key(e).as_ref() == Some(&b))
                .collect();
            let v = reference(a.operation, a.k, w, &mine, q);
            if v != Value::Null {
                entries.push((Value::String(b), v));
            }
        }
        return if entries.is_empty() {
            Value::Null
        } else {
            Value::Map(entries)
        };
    }
    assert_eq!(a.input_column, "scores", "only the list column is shaped");
    if a.element_wise {
        let per_position: Vec<Value> = (0..3)
            .map(|i| {
                let at: Vec<Event> = events.iter().map(|e| with_amount(e, e.scores[i])).collect();
                reference(a.operation, a.k, w, &at.iter().collect::<Vec<_>>(), q)
            })
            .collect();
        return if per_position.iter().all(|v| *v == Value::Null) {
            Value::Null
        } else {
            Value::List(per_position)
        };
    }
    let flat: Vec<Event> = events
        .iter()
        .flat_map(|e| e.scores.iter().map(|s| with_amount(e, *s)))
        .collect();
    as_direct(reference(
        a.operation,
        a.k,
        w,
        &flat.iter().collect::<Vec<_>>(),
        q,
    ))
}

/// Buckets (`activity.exact`: one and two bucket columns, simple and timed operations, windowed
/// and unbounded), element-wise aggregation of a list column and a flattened list input: names
/// equal chronon-ai's (checked with every file above), values equal the brute force, batch and
/// stream parts both.
#[tokio::test]
async fn buckets_and_element_wise_serve_brute_force_values() {
    let Some((dir, expected)) = compile("shapes") else {
        return;
    };
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let group_bys = load_all(&dir, &store).await;
    let fetcher = Fetcher::new(store.clone(), FetcherOptions::default());
    let q = B + 3 * HOUR_MILLIS + 7 * MINUTE_MILLIS;
    let file = "group_bys/quickstart/activity.exact";
    let gb = &group_bys[file];
    assert_eq!(gb.feature_names(), expected[file], "names and their order");
    let events = events();
    let mut checked = 0;
    let mut buckets_seen = 0;
    for (u, user) in USERS.iter().enumerate() {
        let resp = fetcher
            .fetch_group_bys(vec![FetchRequest::new(&gb.name, [("user_id", *user)]).at(q)])
            .await;
        let values = resp[0].values.as_ref().unwrap();
        let mine: Vec<&Event> = events.iter().filter(|e| e.user == u).collect();
        for (a, w, b) in gb.features() {
            let name = a.output_name(w, b);
            let want = shaped_reference(a, w, b, &mine, q);
            let got = &values[&name];
            assert!(
                close(got, &want),
                "{user} {name}: fetched {got:?}, brute force {want:?}"
            );
            assert_ne!(want, Value::Null, "{user} {name}: the case exercises it");
            if let Value::Map(m) = &want {
                buckets_seen += m.len();
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * 20);
    assert!(
        buckets_seen > 3 * 11 * 2,
        "several buckets per map: {buckets_seen}"
    );
}

/// The events of `events` inside window `w` at `q` (`round_down(q - w, hop) <= t < q`).
fn in_window<'a>(events: &[&'a Event], w: Option<Window>, q: i64) -> Vec<&'a Event> {
    events
        .iter()
        .copied()
        .filter(|e| e.ts < q)
        .filter(|e| {
            w.is_none_or(|w| e.ts >= round_down(q - w.millis(), tail_hop_millis(w.millis())))
        })
        .collect()
}

/// APPROX_UNIQUE_COUNT (CPC, strings and doubles, default and explicit lg_k) and
/// APPROX_PERCENTILE (KLL, default and explicit k, percentiles 0 and 1 included) of
/// `activity.sketches` equal what Apache DataSketches' Python package (its C++ core) computes
/// from the same events in each window (`scripts/sketch-reference`): an independent
/// implementation of the same sketches. Prints SKIPPED without that package.
#[tokio::test]
async fn sketches_equal_apache_datasketches_python() {
    let Some((dir, _)) = compile("sketches") else {
        return;
    };
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let group_bys = load_all(&dir, &store).await;
    let fetcher = Fetcher::new(store.clone(), FetcherOptions::default());
    let q = B + 3 * HOUR_MILLIS + 7 * MINUTE_MILLIS;
    let gb = &group_bys["group_bys/quickstart/activity.sketches"];
    let events = events();
    let mut requests = Vec::new();
    let mut fetched = Vec::new();
    for (u, user) in USERS.iter().enumerate() {
        let resp = fetcher
            .fetch_group_bys(vec![FetchRequest::new(&gb.name, [("user_id", *user)]).at(q)])
            .await;
        let values = resp[0].values.as_ref().unwrap();
        let mine: Vec<&Event> = events.iter().filter(|e| e.user == u).collect();
        for (a, w, _) in gb.features() {
            let rows = in_window(&mine, w, q);
            let req = match (a.operation, a.input_column.as_str()) {
                (Operation::ApproxUniqueCount, "item") => serde_json::json!({
                    "cpc": a.k.unwrap_or(8),
                    "items": rows.iter().map(|e| e.item.clone()).collect::<Vec<_>>(),
                }),
                (Operation::ApproxUniqueCount, _) => serde_json::json!({
                    "cpc": a.k.unwrap_or(8),
                    "items": rows.iter().map(|e| e.amount).collect::<Vec<_>>(),
                }),
                (Operation::ApproxPercentile, _) => serde_json::json!({
                    "kll": a.k.unwrap_or(128),
                    "values": rows.iter().map(|e| e.amount).collect::<Vec<_>>(),
                    "percentiles": if a.percentiles.is_empty() { vec![0.5] } else { a.percentiles.clone() },
                }),
                (op, _) => panic!("{op:?} is not a sketch"),
            };
            requests.push(req);
            let mut amounts: Vec<f32> = rows.iter().map(|e| e.amount as f32).collect();
            amounts.sort_by(f32::total_cmp);
            fetched.push((
                format!("{user} {}", a.feature_name(w)),
                values[&a.feature_name(w)].clone(),
                (a.operation == Operation::ApproxPercentile && rows.len() > a.k.unwrap_or(128))
                    .then(|| (amounts, requests.last().unwrap()["percentiles"].clone())),
            ));
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/sketch-reference");
    let mut child = std::process::Command::new(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run scripts/sketch-reference");
    let input = serde_json::to_vec(&requests).unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &input).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.code() == Some(3) {
        println!("SKIPPED sketch values: pip install datasketches==5.2.0");
        return;
    }
    assert!(out.status.success(), "sketch-reference failed");
    let answers: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answers.len(), 3 * 6);
    let mut estimating = 0;
    for ((name, got, sampled), want) in fetched.iter().zip(&answers) {
        if let (Some((sorted, ps)), Value::List(got)) = (sampled, got) {
            // Past k inputs KLL compacts at random (in the JVM too): 0 and 1 are the exact min
            // and max, the others within the rank error of a k = 64 sketch (about 0.04; 0.1 here).
            let n = sorted.len() as f64;
            for (p, x) in ps.as_array().unwrap().iter().zip(got) {
                let (p, Value::Float(x)) = (p.as_f64().unwrap(), x) else {
                    panic!("{name}: {x:?} is not a float");
                };
                let below = sorted.iter().filter(|v| **v < *x).count() as f64 / n;
                let upto = sorted.iter().filter(|v| **v <= *x).count() as f64 / n;
                match p {
                    0.0 => assert_eq!(*x, sorted[0], "{name}: p = 0 is the min"),
                    1.0 => assert_eq!(*x, sorted[sorted.len() - 1], "{name}: p = 1 is the max"),
                    _ => assert!(
                        below - 0.1 <= p && p <= upto + 0.1,
                        "{name}: {x} has rank [{below}, {upto}], asked {p}"
                    ),
                }
            }
            estimating += 1;
            continue;
        }
        let want = match want {
            serde_json::Value::Number(n) => Value::Long(n.as_i64().unwrap()),
            serde_json::Value::Array(xs) => Value::List(
                xs.iter()
                    .map(|x| Value::Float(x.as_f64().unwrap() as f32))
                    .collect(),
            ),
            other => panic!("{name}: every case has inputs, got {other}"),
        };
        assert_eq!(*got, want, "{name}: served vs DataSketches (Python)");
    }
    assert!(estimating > 0, "some sketch is past k (estimation mode)");
}

/// The project's YAML shorthand (`tests/shorthand/*.yaml`, written by hand to mean the same as
/// the Python definitions) loads into the same model as the compiled confs: the same feature
/// names as chronon-ai's, in the same order, and the same served values, for buckets,
/// element-wise and flattened lists, sketches, GroupBy derivations and a join with derivations.
#[tokio::test]
async fn yaml_shorthand_serves_the_compiled_names_and_values() {
    let Some((dir, expected)) = compile("shorthand") else {
        return;
    };
    let compiled: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let group_bys = load_all(&dir, &compiled).await;
    let shorthand: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shorthand");
    let q = B + 3 * HOUR_MILLIS + 7 * MINUTE_MILLIS;
    let from_compiled = Fetcher::new(compiled.clone(), FetcherOptions::default());
    let from_shorthand = Fetcher::new(shorthand.clone(), FetcherOptions::default());
    for (yaml, file) in [
        ("activity_exact.yaml", "group_bys/quickstart/activity.exact"),
        (
            "activity_sketches.yaml",
            "group_bys/quickstart/activity.sketches",
        ),
        (
            "activity_derived.yaml",
            "group_bys/quickstart/activity.derived",
        ),
    ] {
        let gb = GroupBy::load(&here.join(yaml)).unwrap();
        assert_eq!(gb.aggregations, group_bys[file].aggregations, "{yaml}");
        assert_eq!(gb.derivations, group_bys[file].derivations, "{yaml}");
        upload_events(&shorthand, &gb).await;
        for user in USERS {
            let req = || vec![FetchRequest::new(&gb.name, [("user_id", user)]).at(q)];
            let a = from_shorthand.fetch_group_bys(req()).await;
            let b = from_compiled.fetch_group_bys(req()).await;
            let (a, b) = (a[0].values.as_ref().unwrap(), b[0].values.as_ref().unwrap());
            let names: BTreeSet<&str> = a.keys().map(String::as_str).collect();
            let want: BTreeSet<&str> = expected[file].iter().map(String::as_str).collect();
            assert_eq!(names, want, "{yaml}: names vs chronon-ai's");
            // Past k inputs KLL compacts at random, so the unbounded k = 64 percentiles differ
            // from one sketch to the next (their rank error is checked in the sketch test).
            let random = "amount_approx_percentile";
            let (mut a, mut b) = (a.clone(), b.clone());
            if let (Some(Value::List(x)), Some(Value::List(y))) =
                (a.remove(random), b.remove(random))
            {
                assert_eq!(x.len(), y.len(), "{yaml} {user}: {random}");
            }
            assert_eq!(a, b, "{yaml} {user}: shorthand vs compiled values");
        }
        if gb.derivations.is_empty() {
            assert_eq!(gb.feature_names(), expected[file], "{yaml}: names in order");
        }
    }
    let join = chronon_serving::groupby::Join::load(&here.join("derived_v1.yaml")).unwrap();
    put_join(&*compiled, &join).await.unwrap();
    for user in USERS {
        let req = |name: &str| vec![FetchRequest::new(name, [("user_id", user)]).at(q)];
        let a = from_compiled.fetch_joins(req(&join.name)).await;
        let b = from_compiled
            .fetch_joins(req("quickstart.derived.v1"))
            .await;
        let (a, b) = (a[0].values.as_ref().unwrap(), b[0].values.as_ref().unwrap());
        let names: BTreeSet<&str> = a.keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = expected["joins/quickstart/derived.v1"]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(names, want, "derived_v1.yaml: names vs chronon-ai's");
        assert_eq!(a, b, "derived_v1.yaml {user}: shorthand vs compiled values");
    }
}

/// `ZIPLINE_METADATA` and `CHRONON_ENTITY_BY_TEAM` hold exactly what the script computed with
/// Thrift's own simple JSON protocol (the one the JVM's `ThriftJsonCodec.toJsonStr` uses).
#[tokio::test]
async fn metadata_layout_holds_the_jvm_keys_and_values() {
    let Some((dir, _)) = compile("layout") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("expected_metadata.json")).unwrap();
    let expected: BTreeMap<String, BTreeMap<String, serde_json::Value>> =
        serde_json::from_str(&text).unwrap();
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let entries = layout::read_confs(&dir.join("production")).unwrap();
    layout::upload_confs(&*store, &entries).await.unwrap();
    let confs = &expected[CONF_BY_KEY_DATASET];
    assert_eq!(confs.len(), entries.len());
    for (key, want) in confs {
        let stored = store
            .get_string(CONF_BY_KEY_DATASET, key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key} is stored"));
        assert_eq!(Some(stored.as_str()), want.as_str(), "{key}");
    }
    for (team, keys) in &expected[ENTITY_BY_TEAM_DATASET] {
        let stored = store
            .get_string_array(ENTITY_BY_TEAM_DATASET, team)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{team} is stored"));
        let want: BTreeSet<&str> = keys
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| k.as_str())
            .collect();
        assert_eq!(
            stored.iter().map(String::as_str).collect::<BTreeSet<_>>(),
            want,
            "{team}"
        );
        assert_eq!(stored.len(), want.len(), "{team}");
    }
}

/// The brute-force sum of the quarters (`purchase_price`, `refund_amt`) in window `w` at `q`.
fn quarters_sum(events: &[&Event], w: &str, q: i64) -> i64 {
    let w: Window = w.parse().unwrap();
    match reference(Operation::Sum, None, Some(w), events, q) {
        Value::Double(x) => (x * 4.0) as i64,
        _ => 0,
    }
}

fn long(v: &Value) -> i64 {
    match v {
        Value::Long(x) => *x,
        other => panic!("{other:?} is not a long"),
    }
}

/// GroupBy and Join derivations: `activity.derived` (`*`, a rename, a division, a CASE) and
/// `derived.v1` (`*` over the prefixed parts, COALESCE arithmetic, a comparison) served with the
/// values of the same expressions over the brute-force features.
#[tokio::test]
async fn derivations_serve_chronon_names_and_brute_force_values() {
    let Some((dir, expected)) = compile("derive") else {
        return;
    };
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let group_bys = load_all(&dir, &store).await;
    let fetcher = Fetcher::new(store.clone(), FetcherOptions::default());
    let q = B + 3 * HOUR_MILLIS + 7 * MINUTE_MILLIS;
    let events = events();
    let gb = &group_bys["group_bys/quickstart/activity.derived"];
    let window = |w: &str| Some(w.parse::<Window>().unwrap());
    for (u, user) in USERS.iter().enumerate() {
        let mine: Vec<&Event> = events.iter().filter(|e| e.user == u).collect();
        let resp = fetcher
            .fetch_group_bys(vec![FetchRequest::new(&gb.name, [("user_id", *user)]).at(q)])
            .await;
        let got = resp[0].values.as_ref().unwrap();
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        let mut want_names: Vec<&str> = expected["group_bys/quickstart/activity.derived"]
            .iter()
            .map(String::as_str)
            .collect();
        want_names.sort();
        assert_eq!(names, want_names, "{user}: derived names vs chronon-ai's");
        let sum_6h = reference(Operation::Sum, None, window("6h"), &mine, q);
        let sum_2d = reference(Operation::Sum, None, window("2d"), &mine, q);
        let count_6h = reference(Operation::Count, None, window("6h"), &mine, q);
        let count_2d = reference(Operation::Count, None, window("2d"), &mine, q);
        let (Value::Double(s2), Value::Long(c2)) = (&sum_2d, &count_2d) else {
            panic!("{user}: the case needs events in 2d: {sum_2d:?} {count_2d:?}");
        };
        let want = [
            ("amount_total_6h", sum_6h),
            ("amount_sum_2d", sum_2d.clone()),
            ("amount_count_6h", count_6h),
            ("amount_count_2d", count_2d.clone()),
            ("amount_mean_2d", Value::Double(s2 / *c2 as f64)),
            (
                "busy_2d",
                Value::String(if *c2 > 3 { "busy" } else { "quiet" }.into()),
            ),
        ];
        for (name, want) in want {
            assert!(
                close(&got[name], &want),
                "{user} {name}: fetched {:?}, brute force {want:?}",
                got[name]
            );
        }
    }

    let join_name = "quickstart.derived.v1";
    for (u, user) in USERS.iter().enumerate() {
        let mine: Vec<&Event> = events.iter().filter(|e| e.user == u).collect();
        let resp = fetcher
            .fetch_joins(vec![
                FetchRequest::new(join_name, [("user_id", *user)]).at(q)
            ])
            .await;
        let got = resp[0].values.as_ref().unwrap();
        let mut want_names: Vec<&str> = expected["joins/quickstart/derived.v1"]
            .iter()
            .map(String::as_str)
            .collect();
        want_names.sort();
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(names, want_names, "{user}: join derived names");
        // Purchases has no topic (SNAPSHOT: served at the batch end), returns has one.
        let spent = quarters_sum(&mine, "30d", B);
        let returned = quarters_sum(&mine, "30d", q);
        let count_3d = match reference(Operation::Count, None, window("3d"), &mine, q) {
            Value::Long(c) => c,
            _ => 0,
        };
        assert_eq!(
            long(&got["quickstart_purchases_v1_purchase_price_sum_30d"]),
            spent,
            "{user}: base feature"
        );
        assert_eq!(
            got["net_spend_30d"],
            Value::Long(spent - returned),
            "{user}: net_spend_30d"
        );
        assert_eq!(
            got["returned_any_3d"],
            Value::Boolean(count_3d > 0),
            "{user}: returned_any_3d"
        );
    }
}

/// Derivations the evaluator cannot run fail when the compiled file is loaded, naming the
/// derivation; an unknown column fails once the features' types are known.
#[tokio::test]
async fn unsupported_derivations_fail_at_load_naming_them() {
    let Some((dir, _)) = compile("derive_errors") else {
        return;
    };
    let entries = layout::read_confs(&dir.join("production")).unwrap();
    let data = data_schema();
    for e in &entries {
        let file = rel(&dir, &e.path);
        match &e.conf {
            CompiledConf::GroupBy(g) if file.ends_with("activity.derived") => {
                let mut g = g.clone();
                let ds = g.derivations.as_mut().unwrap();
                ds[2].expression = Some("date_add(ds, 1)".into());
                let err = conf::group_by_from_conf(&g, &data, &file).unwrap_err();
                assert_eq!(err.field, "derivations[2].expression", "{err}");
                assert!(err.to_string().contains("date_add"), "{err}");
                let ds = g.derivations.as_mut().unwrap();
                ds[2].expression = Some("amount_sum_9d / 2".into());
                let err = conf::group_by_from_conf(&g, &data, &file).unwrap_err();
                assert_eq!(err.field, "derivations", "{err}");
                assert!(err.to_string().contains("amount_sum_9d"), "{err}");
            }
            CompiledConf::Join(j) if file.ends_with("derived.v1") => {
                let mut j = j.clone();
                let ds = j.derivations.as_mut().unwrap();
                ds[1].expression = Some("sum(x) OVER ()".into());
                let err = conf::join_from_conf(&j, &file).unwrap_err();
                assert_eq!(err.field, "derivations[1].expression", "{err}");
                assert!(err.to_string().contains("net_spend_30d"), "{err}");
            }
            _ => {}
        }
    }
}
