//! Contract section `bad_input` (`chronon-core/CONTRACT.md`, "Bad input"): tables of hostile
//! requests, each answered with the error variant the contract and the reference `MemoryStore`
//! give, mixed into batches with good requests that must be unaffected, around a control dataset
//! read before and after to show nothing stored changed. No case may panic or hang (the runner
//! reports both as failures).
//!
//! Every case name contains `bad_input`, so `CHRONON_CASES=bad_input` runs just these.

use anyhow::{bail, ensure, Result};
use bytes::Bytes;
use chronon_core::{
    DatasetProps, GetRequest, KvError, KvStore, KvStoreExt, ListCursor, PutRequest, TimedValue,
};

use super::{b, expect_ok, T0};
use crate::runner::Ctx;

/// What a hostile request must get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Success (hostile-looking but valid, such as a non-UTF-8 key).
    Ok,
    /// An error of this [`KvError::kind`].
    Err(&'static str),
}

fn check<T: std::fmt::Debug>(what: &str, got: &Result<T, KvError>, want: Want) -> Result<()> {
    match (want, got) {
        (Want::Ok, Ok(_)) => Ok(()),
        (Want::Err(kind), Err(e)) if e.kind() == kind => Ok(()),
        (Want::Ok, Err(e)) => bail!("{what}: expected Ok, got {} ({e})", e.kind()),
        (Want::Err(kind), Err(e)) => bail!("{what}: expected {kind}, got {} ({e})", e.kind()),
        (Want::Err(kind), Ok(v)) => bail!("{what}: expected {kind}, got Ok({v:?})"),
    }
}

/// A time-series dataset with a few keys (binary ones too) and several versions each, whose
/// full content [`control_state`] reads; it must not change whatever hostile requests do.
async fn control(cx: &Ctx, store: &dyn KvStore) -> Result<(String, Vec<Bytes>)> {
    let ds = cx.time_series().await?;
    let keys: Vec<Bytes> = vec![
        b("control"),
        b([0x00u8]),
        b([0xFFu8, 0x00, 0xFE]),
        b("$gt"),
        b("{}"),
    ];
    let mut puts = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        for v in 0..3i64 {
            puts.push(PutRequest::new(
                &ds,
                k.clone(),
                b(format!("control-{i}-{v}")),
                Some(T0 + v),
            ));
        }
    }
    for r in store.multi_put(puts).await {
        expect_ok(r, "put into the control dataset")?;
    }
    Ok((ds, keys))
}

/// Everything in the control dataset: every version of every key, and the `list` view.
async fn control_state(
    store: &dyn KvStore,
    ds: &str,
    keys: &[Bytes],
) -> Result<(Vec<Vec<TimedValue>>, Vec<(Bytes, TimedValue)>)> {
    let got = store
        .multi_get(
            keys.iter()
                .map(|k| GetRequest::range(ds, k.clone(), 0, None))
                .collect(),
        )
        .await;
    let mut versions = Vec::new();
    for r in got {
        versions.push(expect_ok(r.values, "read of the control dataset")?);
    }
    let mut listed = expect_ok(store.list_all(ds, 2).await, "list of the control dataset")?;
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((versions, listed))
}

async fn unchanged(
    store: &dyn KvStore,
    ds: &str,
    keys: &[Bytes],
    before: &(Vec<Vec<TimedValue>>, Vec<(Bytes, TimedValue)>),
) -> Result<()> {
    let after = control_state(store, ds, keys).await?;
    ensure!(
        &after == before,
        "the control dataset changed: before {before:?}, after {after:?}"
    );
    ensure!(
        before.0.iter().all(|v| v.len() == 3) && before.1.len() == keys.len(),
        "the control dataset does not hold what was written: {before:?}"
    );
    Ok(())
}

/// Hostile keys and values among good puts and gets in the same batches: empty, 1,025-byte and
/// non-UTF-8 keys, values over `max_value_bytes`.
pub(crate) async fn bad_input_keys_and_values_in_batches(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let (control_ds, control_keys) = control(cx, store.as_ref()).await?;
    let before = control_state(store.as_ref(), &control_ds, &control_keys).await?;
    let max = store.capabilities().max_value_bytes;
    let ds = cx.time_series().await?;

    let non_utf8 = b([0xC3u8, 0x28, 0xFF, 0xFE, 0x00, 0x80]);
    let table: Vec<(&str, Bytes, Bytes, Want)> = vec![
        ("empty key", b(""), b("v"), Want::Err("InvalidKey")),
        (
            "1025-byte key",
            Bytes::from(vec![b'k'; 1025]),
            b("v"),
            Want::Err("InvalidKey"),
        ),
        (
            "64 KiB key",
            Bytes::from(vec![0xFFu8; 65536]),
            b("v"),
            Want::Err("InvalidKey"),
        ),
        ("non-UTF-8 key", non_utf8.clone(), b("bin"), Want::Ok),
        (
            "1024-byte key",
            Bytes::from(vec![0u8; 1024]),
            b("v"),
            Want::Ok,
        ),
        (
            "value of max+1 bytes",
            b("big1"),
            Bytes::from(vec![7u8; max + 1]),
            Want::Err("ValueTooLarge"),
        ),
        (
            "value of 2*max bytes",
            b("big2"),
            Bytes::from(vec![0u8; 2 * max]),
            Want::Err("ValueTooLarge"),
        ),
        (
            "key looking like an operator",
            b("{\"$gt\":\"\"}"),
            b("op"),
            Want::Ok,
        ),
        ("key with CQL", b("'; DROP TABLE x; --"), b("cql"), Want::Ok),
        ("key with a separator", b("a\0b:c|d"), b("sep"), Want::Ok),
    ];
    // Good puts between every hostile one.
    let mut puts = Vec::new();
    let mut wants = Vec::new();
    for (i, (what, key, value, want)) in table.iter().enumerate() {
        puts.push(PutRequest::new(
            &ds,
            b(format!("good{i}")),
            b(format!("g{i}")),
            Some(T0),
        ));
        wants.push((format!("good put #{i}"), Want::Ok));
        puts.push(PutRequest::new(&ds, key.clone(), value.clone(), Some(T0)));
        wants.push((format!("put with {what}"), *want));
    }
    let results = store.multi_put(puts).await;
    ensure!(
        results.len() == wants.len(),
        "{} results for {} puts",
        results.len(),
        wants.len()
    );
    for ((what, want), r) in wants.iter().zip(&results) {
        check(what, r, *want)?;
    }

    // The same keys read in one batch: good ones see their value, rejected ones their error,
    // and nothing rejected was stored.
    let mut gets = Vec::new();
    let mut expect: Vec<(String, Result<Option<Bytes>, &'static str>)> = Vec::new();
    for (i, (what, key, value, want)) in table.iter().enumerate() {
        gets.push(GetRequest::latest(&ds, b(format!("good{i}"))));
        expect.push((format!("good get #{i}"), Ok(Some(b(format!("g{i}"))))));
        gets.push(GetRequest::latest(&ds, key.clone()));
        let e = match want {
            Want::Ok => Ok(Some(value.clone())),
            Want::Err("InvalidKey") => Err("InvalidKey"),
            // A rejected value leaves its (valid) key empty.
            Want::Err(_) => Ok(None),
        };
        expect.push((format!("get of {what}"), e));
    }
    let got = store.multi_get(gets).await;
    for ((what, want), r) in expect.iter().zip(&got) {
        match (want, &r.values) {
            (Ok(v), Ok(values)) => {
                let latest = values.last().map(|t| t.bytes.clone());
                ensure!(
                    &latest == v && values.len() <= 1,
                    "{what}: expected {v:?}, got {values:?}"
                );
            }
            (Err(kind), Err(e)) if e.kind() == *kind => {}
            (Err(kind), other) => bail!("{what}: expected {kind}, got {other:?}"),
            (Ok(v), Err(e)) => bail!("{what}: expected {v:?}, got {} ({e})", e.kind()),
        }
    }
    let listed = expect_ok(store.list_all(&ds, 100).await, "list")?;
    let n_ok = table.iter().filter(|t| t.3 == Want::Ok).count();
    ensure!(
        listed.len() == table.len() + n_ok,
        "list shows {} keys, expected {} good + {n_ok} accepted hostile ones",
        listed.len(),
        table.len()
    );

    // A cursor that no page ever returned: an answer or an error, never a panic or a hang.
    for cursor in [b([0xFFu8; 2000]), b(""), b("\0"), b("{\"$gt\":1}")] {
        let _ = store.list(&ds, 10, Some(ListCursor(cursor))).await;
    }
    unchanged(store.as_ref(), &control_ds, &control_keys, &before).await
}

/// Dataset names with spaces, quotes, `$`, `.`, `;`, `{}`, CQL and Mongo operators, path and
/// control characters: `InvalidDataset` from every call, the rest of a batch unaffected, and
/// nothing created.
pub(crate) async fn bad_input_dataset_names(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let (control_ds, control_keys) = control(cx, store.as_ref()).await?;
    let before = control_state(store.as_ref(), &control_ds, &control_keys).await?;
    let ds = cx.snapshot().await?;
    let names: Vec<String> = vec![
        String::new(),
        "a b".into(),
        " ".into(),
        "a\"b".into(),
        "a'b".into(),
        "a`b".into(),
        "$where".into(),
        "a$b".into(),
        "$gt".into(),
        "{\"$ne\":null}".into(),
        "{}".into(),
        "a.b".into(),
        ".".into(),
        "..".into(),
        "chronon.datasets".into(),
        "system.indexes".into(),
        "a;b".into(),
        "x; DROP TABLE y".into(),
        "x'); DROP KEYSPACE chronon; --".into(),
        "a/b".into(),
        "../../etc/passwd".into(),
        "a\\b".into(),
        "a\0b".into(),
        "a\nb".into(),
        "a*".into(),
        "a:b".into(),
        "a-b".into(),
        "1abc".into(),
        "é".into(),
        "\u{202e}rtl".into(),
        "a".repeat(129),
        format!("{control_ds} "),
        format!("{control_ds}.x"),
    ];
    for name in &names {
        let what = |op: &str| format!("{op} on dataset {name:?}");
        check(
            &what("create"),
            &store.create(name, &DatasetProps::snapshot()).await,
            Want::Err("InvalidDataset"),
        )?;
        check(
            &what("create_default"),
            &store.create_default(name).await,
            Want::Err("InvalidDataset"),
        )?;
        check(
            &what("dataset_props"),
            &store.dataset_props(name).await,
            Want::Err("InvalidDataset"),
        )?;
        check(
            &what("list"),
            &store.list(name, 10, None).await,
            Want::Err("InvalidDataset"),
        )?;
        check(
            &what("drop_dataset"),
            &store.drop_dataset(name).await,
            Want::Err("InvalidDataset"),
        )?;
    }
    // One batch of puts and one of gets: every hostile name rejected, the good ones unaffected.
    let mut puts = Vec::new();
    let mut gets = Vec::new();
    for (i, name) in names.iter().enumerate() {
        puts.push(PutRequest::new(name.as_str(), b("k"), b("v"), Some(T0)));
        puts.push(PutRequest::new(&ds, b(format!("k{i}")), b("v"), Some(T0)));
        gets.push(GetRequest::latest(name.as_str(), b("k")));
        gets.push(GetRequest::latest(&ds, b(format!("k{i}"))));
    }
    let results = store.multi_put(puts).await;
    for (i, r) in results.iter().enumerate() {
        let name = &names[i / 2];
        if i % 2 == 0 {
            check(
                &format!("put into {name:?}"),
                r,
                Want::Err("InvalidDataset"),
            )?;
        } else {
            check(&format!("good put next to {name:?}"), r, Want::Ok)?;
        }
    }
    let got = store.multi_get(gets).await;
    for (i, r) in got.iter().enumerate() {
        let name = &names[i / 2];
        if i % 2 == 0 {
            check(
                &format!("get from {name:?}"),
                &r.values,
                Want::Err("InvalidDataset"),
            )?;
        } else {
            let v = expect_ok(r.values.clone(), &format!("good get next to {name:?}"))?;
            ensure!(
                v.len() == 1 && v[0].bytes == "v",
                "good get next to {name:?}: {v:?}"
            );
        }
    }
    unchanged(store.as_ref(), &control_ds, &control_keys, &before).await
}

/// Valid names that are keywords, operators or reserved words in some backend (`select`, `_id`,
/// `system`, `null`, `__proto__`, ...) work like any other name and keep their data apart.
pub(crate) async fn bad_input_keyword_dataset_names(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let (control_ds, control_keys) = control(cx, store.as_ref()).await?;
    let before = control_state(store.as_ref(), &control_ds, &control_keys).await?;
    // A fresh suffix keeps runs apart; the keyword is what the backend sees first. No two names
    // differ only by case: DynamoDB Local keeps tables in SQLite, whose table names are
    // case-insensitive, and answers `InternalFailure` to `SELECT_x` next to `select_x` (real
    // DynamoDB's names are case-sensitive; see RELIABILITY.md).
    let tag = cx.name("");
    let tag = tag.rsplit('_').next().unwrap_or("x").to_string();
    let names: Vec<String> = [
        "select",
        "where",
        "from",
        "table",
        "keyspace",
        "null",
        "undefined",
        "_id",
        "system",
        "admin",
        "local",
        "__proto__",
        "constructor",
        "chronon",
        "datasets",
        "TTL",
    ]
    .iter()
    .map(|k| format!("{k}_{tag}"))
    .collect();
    let mut result = Ok(());
    for name in &names {
        let r = async {
            expect_ok(
                store.create(name, &DatasetProps::snapshot()).await,
                &format!("create {name:?}"),
            )?;
            expect_ok(
                store.put(name, b("k"), b(name.as_str()), Some(T0)).await,
                &format!("put into {name:?}"),
            )?;
            anyhow::Ok(())
        }
        .await;
        if r.is_err() {
            result = r;
            break;
        }
    }
    if result.is_ok() {
        let got = store
            .multi_get(
                names
                    .iter()
                    .map(|n| GetRequest::latest(n.as_str(), b("k")))
                    .collect(),
            )
            .await;
        for (name, r) in names.iter().zip(got) {
            let v = expect_ok(r.values, &format!("get from {name:?}"))?;
            if !(v.len() == 1 && v[0].bytes == name.as_str()) {
                result = Err(anyhow::anyhow!("{name:?} holds {v:?}"));
                break;
            }
        }
    }
    for name in &names {
        let _ = store.drop_dataset(name).await;
    }
    result?;
    unchanged(store.as_ref(), &control_ds, &control_keys, &before).await
}

/// Negative and extreme timestamps on puts (`InvalidRequest` outside `0..=2^53-1`), and ranges
/// with `start_ts > end_ts`, `end_ts` without `start_ts`, or extreme bounds on gets.
pub(crate) async fn bad_input_timestamps_and_ranges(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let (control_ds, control_keys) = control(cx, store.as_ref()).await?;
    let before = control_state(store.as_ref(), &control_ds, &control_keys).await?;
    let ds = cx.time_series().await?;
    let max_ts = chronon_core::validate::MAX_TS;
    let put_table: Vec<(&str, i64, Want)> = vec![
        ("ts -1", -1, Want::Err("InvalidRequest")),
        ("ts i64::MIN", i64::MIN, Want::Err("InvalidRequest")),
        ("ts i64::MAX", i64::MAX, Want::Err("InvalidRequest")),
        ("ts 2^53", max_ts + 1, Want::Err("InvalidRequest")),
        ("ts 0", 0, Want::Ok),
        ("ts 2^53-1", max_ts, Want::Ok),
        ("ts T0", T0, Want::Ok),
    ];
    let puts = put_table
        .iter()
        .map(|(what, ts, _)| PutRequest::new(&ds, b("k"), b(*what), Some(*ts)))
        .collect();
    for ((what, _, want), r) in put_table.iter().zip(store.multi_put(puts).await) {
        check(&format!("put with {what}"), &r, *want)?;
    }
    // Accepted versions, oldest first.
    let stored = vec![(b("ts 0"), 0), (b("ts T0"), T0), (b("ts 2^53-1"), max_ts)];

    let latest_only = |start: Option<i64>, end: Option<i64>| GetRequest {
        key: b("k"),
        dataset: ds.clone(),
        start_ts: start,
        end_ts: end,
    };
    type Expected = Result<Vec<(Bytes, i64)>, &'static str>;
    let get_table: Vec<(&str, GetRequest, Expected)> = vec![
        (
            "start_ts > end_ts",
            latest_only(Some(T0 + 1), Some(T0)),
            Err("InvalidRequest"),
        ),
        (
            "start_ts i64::MAX > end_ts i64::MIN",
            latest_only(Some(i64::MAX), Some(i64::MIN)),
            Err("InvalidRequest"),
        ),
        (
            "end_ts without start_ts",
            latest_only(None, Some(T0)),
            Err("InvalidRequest"),
        ),
        (
            "start_ts i64::MIN",
            latest_only(Some(i64::MIN), None),
            Ok(stored.clone()),
        ),
        (
            "start_ts i64::MIN, end_ts i64::MAX",
            latest_only(Some(i64::MIN), Some(i64::MAX)),
            Ok(stored.clone()),
        ),
        (
            "start_ts -1, end_ts -1",
            latest_only(Some(-1), Some(-1)),
            Ok(vec![]),
        ),
        (
            "start_ts i64::MAX",
            latest_only(Some(i64::MAX), None),
            Ok(vec![]),
        ),
        (
            "start_ts = end_ts = 2^53-1",
            latest_only(Some(max_ts), Some(max_ts)),
            Ok(vec![(b("ts 2^53-1"), max_ts)]),
        ),
        (
            "latest",
            latest_only(None, None),
            Ok(vec![(b("ts 2^53-1"), max_ts)]),
        ),
    ];
    let got = store
        .multi_get(get_table.iter().map(|(_, r, _)| r.clone()).collect())
        .await;
    for ((what, _, want), r) in get_table.iter().zip(&got) {
        match (want, &r.values) {
            (Ok(v), Ok(values)) => {
                let pairs: Vec<(Bytes, i64)> =
                    values.iter().map(|t| (t.bytes.clone(), t.millis)).collect();
                ensure!(
                    &pairs == v,
                    "get with {what}: expected {v:?}, got {pairs:?}"
                );
            }
            (Err(kind), Err(e)) if e.kind() == *kind => {}
            (want, got) => bail!("get with {what}: expected {want:?}, got {got:?}"),
        }
    }
    unchanged(store.as_ref(), &control_ds, &control_keys, &before).await
}

/// Requests for a dataset dropped a moment ago: `DatasetNotFound` for each, in a batch with
/// good requests that succeed; re-creating it starts empty.
pub(crate) async fn bad_input_dropped_dataset(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let (control_ds, control_keys) = control(cx, store.as_ref()).await?;
    let before = control_state(store.as_ref(), &control_ds, &control_keys).await?;
    let good = cx.snapshot().await?;
    let gone = cx.time_series().await?;
    expect_ok(
        store.put(&gone, b("k"), b("old"), Some(T0)).await,
        "put before the drop",
    )?;
    expect_ok(store.drop_dataset(&gone).await, "drop")?;
    expect_ok(store.drop_dataset(&gone).await, "second drop")?;

    let results = store
        .multi_put(vec![
            PutRequest::new(&good, b("a"), b("1"), Some(T0)),
            PutRequest::new(&gone, b("k"), b("new"), Some(T0)),
            PutRequest::new(&good, b("b"), b("2"), Some(T0)),
        ])
        .await;
    check("good put before", &results[0], Want::Ok)?;
    check(
        "put into the dropped dataset",
        &results[1],
        Want::Err("DatasetNotFound"),
    )?;
    check("good put after", &results[2], Want::Ok)?;
    let got = store
        .multi_get(vec![
            GetRequest::latest(&good, b("a")),
            GetRequest::latest(&gone, b("k")),
            GetRequest::range(&gone, b("k"), 0, None),
            GetRequest::latest(&good, b("b")),
        ])
        .await;
    for (i, r) in got.iter().enumerate() {
        match i {
            1 | 2 => check(
                "get from the dropped dataset",
                &r.values,
                Want::Err("DatasetNotFound"),
            )?,
            _ => {
                let v = expect_ok(r.values.clone(), "good get next to the dropped dataset")?;
                ensure!(v.len() == 1, "good get next to the dropped dataset: {v:?}");
            }
        }
    }
    check(
        "list of the dropped dataset",
        &store.list(&gone, 10, None).await,
        Want::Err("DatasetNotFound"),
    )?;
    check(
        "dataset_props of the dropped dataset",
        &store.dataset_props(&gone).await,
        Want::Err("DatasetNotFound"),
    )?;
    // Re-created, it starts empty: the old value is gone for good.
    expect_ok(
        store.create(&gone, &DatasetProps::time_series()).await,
        "re-create",
    )?;
    let v = expect_ok(
        store
            .multi_get(vec![GetRequest::range(&gone, b("k"), 0, None)])
            .await
            .remove(0)
            .values,
        "get after re-create",
    )?;
    ensure!(v.is_empty(), "re-created dataset holds old data: {v:?}");
    unchanged(store.as_ref(), &control_ds, &control_keys, &before).await
}
