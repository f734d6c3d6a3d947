//! The fetcher against a brute-force reference (SERVING.md, "What the reference test checks"): random
//! events, batch end `B` and query time `q`; the batch part uploaded through the batch IR
//! computation, the stream written in the streaming writer's row format; every feature served by
//! the fetcher must equal a direct computation over the raw events with the window rule
//! `round_down(q - w, tail_hop(w)) <= t < q`.
//!
//! `B` is the end of a day and every window is a multiple of its tail hop (the case SERVING.md
//! calls exact), and `q` is in `[B, B + tail_buffer)` (a daily batch keeps it there).
//! Event times are unique per key: the `<NAME>_STREAMING` dataset keeps one version per
//! `(key, ts)`, so two events of one key at the same millisecond cannot both be streamed.

use std::collections::BTreeSet;
use std::sync::Arc;

use chronon_core::{KvStore, MemoryStore, PutRequest};
use chronon_serving::fetcher::{FetchRequest, Fetcher, FetcherOptions};
use chronon_serving::groupby::{
    round_down, tail_hop_millis, Accuracy, Aggregation, GroupBy, Join, JoinPart, Operation,
    SourceKind, DAY_MILLIS, HOUR_MILLIS, MINUTE_MILLIS,
};
use chronon_serving::metadata::{compute_and_upload, put_join};
use chronon_serving::stream::{Mutation, StreamingWriter, StructType, Value};
use proptest::prelude::*;

fn schema() -> StructType {
    StructType::from_json_str(
        r#"{"name": "events", "fields": [
        {"name": "user", "type": "string"}, {"name": "v", "type": "long"},
        {"name": "amount", "type": "double"}, {"name": "item", "type": "string"},
        {"name": "ts", "type": "long"}]}"#,
    )
    .unwrap()
}

fn agg(col: &str, op: Operation, windows: &[&str]) -> Aggregation {
    Aggregation::new(col, op, windows).unwrap()
}

fn group_by() -> GroupBy {
    GroupBy {
        derivations: Vec::new(),
        name: "test.events.v1".into(),
        keys: vec!["user".into()],
        schema: schema(),
        time_column: "ts".into(),
        accuracy: Accuracy::Temporal,
        source: SourceKind::Events,
        aggregations: vec![
            agg("v", Operation::Count, &["3h", "1h", "1d", "13h", "12d"]),
            agg("v", Operation::Sum, &["2h", "1d", "7d", "30d"]),
            agg("v", Operation::Sum, &[]),
            agg("amount", Operation::Average, &["1d", "3d"]),
            agg("amount", Operation::Variance, &["1d"]),
            agg("v", Operation::Min, &["12h"]),
            agg("v", Operation::Max, &["2d"]),
            agg("item", Operation::First, &["1d"]),
            agg("item", Operation::Last, &["4h", "1d"]),
            agg("item", Operation::LastK, &["1d"]).with_k(3),
            agg("item", Operation::UniqueCount, &["14d"]),
            agg("amount", Operation::Sum, &["6h"]),
        ],
    }
}

#[derive(Debug, Clone)]
struct Event {
    user: usize,
    ts: i64,
    v: i64,
    amount: f64,
    item: String,
}

const USERS: [&str; 3] = ["alice", "bob", "carol"];

fn row(e: &Event) -> Vec<Value> {
    vec![
        Value::String(USERS[e.user].into()),
        Value::Long(e.v),
        Value::Double(e.amount),
        Value::String(e.item.clone()),
        Value::Long(e.ts),
    ]
}

/// The brute-force value of one feature over raw events.
fn reference(
    a: &Aggregation,
    w: Option<chronon_serving::groupby::Window>,
    events: &[&Event],
    q: i64,
) -> Value {
    let mut rows: Vec<&Event> = events
        .iter()
        .copied()
        .filter(|e| e.ts < q)
        .filter(|e| match w {
            None => true,
            Some(w) => e.ts >= round_down(q - w.millis(), tail_hop_millis(w.millis())),
        })
        .collect();
    rows.sort_by_key(|e| e.ts);
    if rows.is_empty() {
        return Value::Null;
    }
    let n = rows.len() as f64;
    let amounts = || rows.iter().map(|e| e.amount);
    match (a.operation, a.input_column.as_str()) {
        (Operation::Count, _) => Value::Long(rows.len() as i64),
        (Operation::Sum, "v") => Value::Long(rows.iter().map(|e| e.v).sum()),
        (Operation::Sum, _) => Value::Double(amounts().sum()),
        (Operation::Average, _) => Value::Double(amounts().sum::<f64>() / n),
        (Operation::Variance, _) => {
            let mean = amounts().sum::<f64>() / n;
            Value::Double(amounts().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n)
        }
        (Operation::Min, _) => Value::Long(rows.iter().map(|e| e.v).min().unwrap()),
        (Operation::Max, _) => Value::Long(rows.iter().map(|e| e.v).max().unwrap()),
        (Operation::First, _) => Value::String(rows[0].item.clone()),
        (Operation::Last, _) => Value::String(rows[rows.len() - 1].item.clone()),
        (Operation::LastK, _) => Value::List(
            rows.iter()
                .rev()
                .take(a.k.unwrap())
                .map(|e| Value::String(e.item.clone()))
                .collect(),
        ),
        (Operation::UniqueCount, _) => Value::Long(
            rows.iter()
                .map(|e| e.item.as_str())
                .collect::<BTreeSet<_>>()
                .len() as i64,
        ),
        (op, _) => panic!("{op:?} is not in this test's group-by"),
    }
}

fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => {
            (x - y).abs() <= 1e-6 * (1.0 + x.abs().max(y.abs()))
        }
        _ => a == b,
    }
}

const B: i64 = 20_000 * DAY_MILLIS;

/// Event offsets from `B`: mostly around the tails of the windows (where hops matter), some
/// anywhere in the last 35 days, some after `B` (the stream).
fn offset() -> impl Strategy<Value = i64> {
    prop_oneof![
        -35 * DAY_MILLIS..2 * DAY_MILLIS,
        -4 * DAY_MILLIS..2 * DAY_MILLIS,
        -3 * HOUR_MILLIS..2 * DAY_MILLIS,
        (-40i64..40).prop_map(|m| m * 5 * MINUTE_MILLIS),
        (-40i64..40).prop_map(|h| h * HOUR_MILLIS - 1),
        (-40i64..40).prop_map(|d| d * DAY_MILLIS),
    ]
}

fn query() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        0..2 * DAY_MILLIS,
        (0i64..576).prop_map(|m| m * 5 * MINUTE_MILLIS),
        (0i64..576).prop_map(|m| m * 5 * MINUTE_MILLIS + 1),
    ]
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec(
        (0usize..3, offset(), -50i64..50, -20i64..20, 0usize..5),
        0..60,
    )
    .prop_map(|raw| {
        let mut seen = BTreeSet::new();
        raw.into_iter()
            .filter(|(u, t, ..)| seen.insert((*u, *t)))
            .map(|(user, t, v, a, item)| Event {
                user,
                ts: B + t,
                v,
                amount: a as f64 * 0.5,
                item: format!("item{item}"),
            })
            .collect()
    })
}

async fn serve(events: &[Event], q: i64) -> Result<(), TestCaseError> {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let gb = group_by();
    compute_and_upload(&*store, &gb, B, events.iter().map(row))
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let join = Join {
        derivations: Vec::new(),
        name: "test.join".into(),
        parts: vec![JoinPart {
            group_by: gb.name.clone(),
            key_mapping: [("user_id".to_string(), "user".to_string())].into(),
            prefix: Some("u".into()),
        }],
    };
    put_join(&*store, &join)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    // The stream, in the streaming writer's format (every event: the fetcher must skip t < B).
    let decoder = Arc::new(chronon_serving::stream::JsonDecoder::new(schema()));
    let writer = StreamingWriter::new(decoder, store.clone(), gb.writer_options())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let schema = Arc::new(schema());
    let mut puts = Vec::new();
    for e in events {
        let m = Mutation::insert(schema.clone(), row(e)).unwrap();
        for p in writer.encode(&m).map_err(TestCaseError::fail)? {
            puts.push(PutRequest::new(
                writer.dataset(),
                p.key,
                p.value,
                Some(p.ts),
            ));
        }
    }
    for r in store.multi_put(puts).await {
        r.map_err(|e| TestCaseError::fail(e.to_string()))?;
    }

    let fetcher = Fetcher::new(store.clone(), FetcherOptions::default());
    let requests: Vec<FetchRequest> = USERS
        .iter()
        .map(|u| FetchRequest::new(&gb.name, [("user", *u)]).at(q))
        .collect();
    let responses = fetcher.fetch_group_bys(requests).await;
    let join_requests: Vec<FetchRequest> = USERS
        .iter()
        .map(|u| FetchRequest::new("test.join", [("user_id", *u)]).at(q))
        .collect();
    let join_responses = fetcher.fetch_joins(join_requests).await;
    for (ui, (resp, jresp)) in responses.iter().zip(&join_responses).enumerate() {
        let got = resp
            .values
            .as_ref()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let jgot = jresp
            .values
            .as_ref()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mine: Vec<&Event> = events.iter().filter(|e| e.user == ui).collect();
        prop_assert_eq!(got.len(), gb.feature_names().len());
        for (a, w, _) in gb.features() {
            let name = a.feature_name(w);
            let want = reference(a, w, &mine, q);
            let have = got.get(&name).cloned().unwrap_or(Value::Null);
            prop_assert!(
                close(&have, &want),
                "user {} feature {} at q = B + {} ms: fetcher {:?}, reference {:?}",
                USERS[ui],
                name,
                q - B,
                have,
                want
            );
            let jhave = jgot
                .get(&format!("u_test_events_v1_{name}"))
                .cloned()
                .unwrap_or(Value::Null);
            prop_assert!(
                close(&jhave, &want),
                "join feature {name}: {jhave:?} vs {want:?}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn fetcher_matches_brute_force_reference(events in events(), q in query()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(serve(&events, B + q))?;
    }
}

/// Requests before the batch end fail alone; unknown names and bad keys fail alone.
#[tokio::test]
async fn per_request_errors_are_isolated() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let gb = group_by();
    let ev = Event {
        user: 0,
        ts: B - HOUR_MILLIS,
        v: 3,
        amount: 1.0,
        item: "x".into(),
    };
    compute_and_upload(&*store, &gb, B, [row(&ev)])
        .await
        .unwrap();
    let fetcher = Fetcher::new(store, FetcherOptions::default());
    let responses = fetcher
        .fetch_group_bys(vec![
            FetchRequest::new(&gb.name, [("user", "alice")]).at(B + 1),
            FetchRequest::new(&gb.name, [("user", "alice")]).at(B - 1),
            FetchRequest::new("nope", [("user", "alice")]).at(B + 1),
            FetchRequest::new(&gb.name, [("who", "alice")]).at(B + 1),
            FetchRequest::new(&gb.name, [("user", "nobody")]).at(B + 1),
        ])
        .await;
    let ok = responses[0].values.as_ref().unwrap();
    assert_eq!(ok["v_sum_1d"], Value::Long(3));
    assert_eq!(ok["v_count_1h"], Value::Long(1));
    let errors: Vec<String> = responses[1..4]
        .iter()
        .map(|r| r.values.as_ref().unwrap_err().to_string())
        .collect();
    assert!(errors[0].contains("before its batch end"), "{}", errors[0]);
    assert!(errors[1].contains("not defined"), "{}", errors[1]);
    assert!(errors[2].contains("missing key \"user\""), "{}", errors[2]);
    let empty = responses[4].values.as_ref().unwrap();
    assert!(empty.values().all(|v| *v == Value::Null));
}

/// Entity sources: a before-image takes its row back out (DELETE and UPDATE after the batch).
#[tokio::test]
async fn mutations_reverse_before_images() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let schema = StructType::from_json_str(
        r#"{"name": "balances", "fields": [
        {"name": "user", "type": "string"}, {"name": "v", "type": "long"},
        {"name": "ts", "type": "long"}, {"name": "mutation_ts", "type": "long"}]}"#,
    )
    .unwrap();
    let gb = GroupBy {
        derivations: Vec::new(),
        name: "test.balances".into(),
        keys: vec!["user".into()],
        schema: schema.clone(),
        time_column: "ts".into(),
        accuracy: Accuracy::Temporal,
        source: SourceKind::Entities,
        aggregations: vec![
            agg("v", Operation::Sum, &["7d"]),
            agg("v", Operation::Count, &[]),
        ],
    };
    let r = |v: i64, ts: i64, mts: i64| {
        vec![
            Value::String("alice".into()),
            Value::Long(v),
            Value::Long(ts),
            Value::Long(mts),
        ]
    };
    compute_and_upload(&*store, &gb, B, [r(10, B - DAY_MILLIS, B - DAY_MILLIS)])
        .await
        .unwrap();
    let decoder = Arc::new(chronon_serving::stream::JsonDecoder::new(schema.clone()));
    let writer = StreamingWriter::new(decoder, store.clone(), gb.writer_options()).unwrap();
    let s = Arc::new(schema);
    let t1 = B + HOUR_MILLIS;
    let t2 = B + 2 * HOUR_MILLIS;
    let t3 = B + 3 * HOUR_MILLIS;
    let mutations = vec![
        Mutation::insert(s.clone(), r(5, t1, t1)).unwrap(),
        // The batch row changes from 10 to 7.
        Mutation::update(
            s.clone(),
            r(10, B - DAY_MILLIS, t2),
            r(7, B - DAY_MILLIS, t2),
        )
        .unwrap(),
        Mutation::delete(s.clone(), r(5, t1, t3)).unwrap(),
    ];
    let mut puts = Vec::new();
    for m in &mutations {
        for p in writer.encode(m).unwrap() {
            puts.push(PutRequest::new(
                writer.dataset(),
                p.key,
                p.value,
                Some(p.ts),
            ));
        }
    }
    for res in store.multi_put(puts).await {
        res.unwrap();
    }
    let fetcher = Fetcher::new(store, FetcherOptions::default());
    let at = |q: i64| FetchRequest::new(&gb.name, [("user", "alice")]).at(q);
    let responses = fetcher
        .fetch_group_bys(vec![at(B), at(t1 + 1), at(t2 + 1), at(t3 + 1)])
        .await;
    let sums: Vec<Value> = responses
        .iter()
        .map(|r| r.values.as_ref().unwrap()["v_sum_7d"].clone())
        .collect();
    assert_eq!(
        sums,
        vec![
            Value::Long(10),
            Value::Long(15),
            Value::Long(12),
            Value::Long(7)
        ]
    );
    let counts: Vec<Value> = responses
        .iter()
        .map(|r| r.values.as_ref().unwrap()["v_count"].clone())
        .collect();
    assert_eq!(
        counts,
        vec![
            Value::Long(1),
            Value::Long(2),
            Value::Long(2),
            Value::Long(1)
        ]
    );
}
