//! DynamoDB-specific checks against DynamoDB Local: duplicate keys in one batch, the item size
//! limit, Chronon layout interop with the raw SDK (both ways), and failure mapping (server
//! paused: `Timeout`; nothing listening: `Unavailable`). One server serves all of them, so the
//! checks run in sequence inside one test.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Result};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use bytes::Bytes;
use chronon_core::{DatasetKind, DatasetProps, GetRequest, KvStore, KvStoreExt, PutRequest};
use chronon_dynamo::{DynamoOptions, DynamoStore};

const T0: i64 = 1_700_000_000_000;

fn b(s: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}

fn tag() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}", n & 0xffff_ffff)
}

async fn store(endpoint: &str) -> Result<DynamoStore> {
    Ok(DynamoStore::open(DynamoOptions::local(endpoint).with_region("us-west-2")).await?)
}

/// A raw SDK client, configured as a JVM Chronon deployment would be (other credentials).
async fn raw_client(endpoint: &str) -> Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-west-2"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "jvm", "jvm", None, None, "test",
        ))
        .load()
        .await;
    Client::new(&conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_specific_behaviour() {
    let Some(mut server) = conformance::launch::dynamodb::dynamodb().await else {
        return;
    };
    let endpoint = server.endpoint.clone();
    let store = store(&endpoint).await.expect("client");
    let raw = raw_client(&endpoint).await;
    let mut failures = Vec::new();
    macro_rules! check {
        ($name:ident $(, $arg:expr)*) => {
            if let Err(e) = $name($($arg),*).await {
                failures.push(format!("{}: {e:#}", stringify!($name)));
            } else {
                println!("ok {}", stringify!($name));
            }
        };
    }
    check!(duplicate_keys_in_one_get_batch, &store);
    check!(duplicate_puts_in_one_batch_last_wins, &store);
    check!(item_size_limit_is_checked_before_sending, &store);
    check!(reads_tables_written_by_jvm_chronon, &store, &raw);
    check!(writes_items_jvm_chronon_can_read, &store, &raw);
    check!(list_pages_time_series_with_many_versions, &store);
    check!(nothing_listening_is_unavailable_with_address);
    if let Some(child) = server.child.as_mut() {
        check!(paused_server_is_a_timeout, &endpoint, child);
    }
    drop(server);
    assert!(
        failures.is_empty(),
        "failed checks:\n{}",
        failures.join("\n")
    );
}

/// BatchGetItem rejects a request naming one key twice; the adapter asks once and answers every
/// duplicate (here 250 requests for 3 keys, across several 100-key chunks).
async fn duplicate_keys_in_one_get_batch(store: &DynamoStore) -> Result<()> {
    let ds = format!("dup_get_{}_BATCH", tag());
    store.create_default(&ds).await?;
    for k in ["a", "b"] {
        store.put(&ds, b(k), b(format!("v{k}")), Some(T0)).await?;
    }
    let keys = ["a", "b", "missing"];
    let requests: Vec<GetRequest> = (0..250)
        .map(|i| GetRequest::latest(&ds, b(keys[i % 3])))
        .collect();
    let got = store.multi_get(requests).await;
    for (i, r) in got.iter().enumerate() {
        let values = r.values.clone().map_err(|e| anyhow!("request {i}: {e}"))?;
        let want: Vec<Bytes> = match keys[i % 3] {
            "missing" => vec![],
            k => vec![b(format!("v{k}"))],
        };
        ensure!(
            values.iter().map(|v| v.bytes.clone()).collect::<Vec<_>>() == want,
            "request {i}: {values:?}"
        );
    }
    // Time series: the same key asked for its latest and for a range in one batch.
    let ts = format!("dup_get_{}_STREAMING", tag());
    store.create_default(&ts).await?;
    for t in 0..3 {
        store
            .put(&ts, b("k"), b(format!("v{t}")), Some(T0 + t))
            .await?;
    }
    let got = store
        .multi_get(vec![
            GetRequest::latest(&ts, b("k")),
            GetRequest::range(&ts, b("k"), T0 + 1, None),
            GetRequest::latest(&ts, b("k")),
        ])
        .await;
    let lens: Vec<usize> = got
        .iter()
        .map(|r| r.values.as_ref().map(Vec::len).unwrap_or(99))
        .collect();
    ensure!(lens == vec![1, 2, 1], "answers {lens:?}");
    store.drop_dataset(&ds).await?;
    store.drop_dataset(&ts).await?;
    Ok(())
}

/// BatchWriteItem rejects two writes of one item in a request; the adapter merges them (last
/// wins) and still answers every put.
async fn duplicate_puts_in_one_batch_last_wins(store: &DynamoStore) -> Result<()> {
    let ds = format!("dup_put_{}_BATCH", tag());
    store.create_default(&ds).await?;
    let puts: Vec<PutRequest> = (0..60)
        .map(|i| {
            PutRequest::new(
                &ds,
                b(format!("k{}", i % 2)),
                b(format!("v{i}")),
                Some(T0 + i),
            )
        })
        .collect();
    let results = store.multi_put(puts).await;
    ensure!(
        results.len() == 60 && results.iter().all(Result::is_ok),
        "results {results:?}"
    );
    let k0 = store
        .get(&ds, b("k0"))
        .await?
        .ok_or_else(|| anyhow!("k0 missing"))?;
    let k1 = store
        .get(&ds, b("k1"))
        .await?
        .ok_or_else(|| anyhow!("k1 missing"))?;
    ensure!(k0.bytes == b("v58") && k0.millis == T0 + 58, "k0 = {k0:?}");
    ensure!(k1.bytes == b("v59") && k1.millis == T0 + 59, "k1 = {k1:?}");

    let ts = format!("dup_put_{}_STREAMING", tag());
    store.create_default(&ts).await?;
    let puts = vec![
        PutRequest::new(&ts, b("k"), b("first"), Some(T0)),
        PutRequest::new(&ts, b("k"), b("other version"), Some(T0 + 1)),
        PutRequest::new(&ts, b("k"), b("second"), Some(T0)),
    ];
    ensure!(
        store.multi_put(puts).await.iter().all(Result::is_ok),
        "time-series puts failed"
    );
    let got = store
        .multi_get(vec![GetRequest::range(&ts, b("k"), 0, None)])
        .await;
    let values: Vec<(Bytes, i64)> = got[0]
        .values
        .clone()?
        .into_iter()
        .map(|v| (v.bytes, v.millis))
        .collect();
    ensure!(
        values == vec![(b("second"), T0), (b("other version"), T0 + 1)],
        "versions {values:?}"
    );
    store.drop_dataset(&ds).await?;
    store.drop_dataset(&ts).await?;
    Ok(())
}

/// The largest declared value fits with the longest key; one byte more is `ValueTooLarge`
/// without a round trip, and the rest of the batch is written.
async fn item_size_limit_is_checked_before_sending(store: &DynamoStore) -> Result<()> {
    let ds = format!("size_{}_STREAMING", tag());
    store
        .create(
            &ds,
            &DatasetProps::time_series().with_ttl(Duration::from_secs(3600 * 24 * 365 * 100)),
        )
        .await?;
    let max = store.capabilities().max_value_bytes;
    ensure!(
        max >= 300 * 1024,
        "max_value_bytes {max} below the contract's 300 KiB floor"
    );
    let key = vec![0xffu8; 1024];
    let results = store
        .multi_put(vec![
            PutRequest::new(&ds, key.clone(), vec![7u8; max], Some(i64::MAX >> 11)),
            PutRequest::new(&ds, b("small"), b("v"), Some(T0)),
            PutRequest::new(&ds, key.clone(), vec![7u8; max + 1], Some(T0)),
        ])
        .await;
    ensure!(
        results[0].is_ok(),
        "a value of max_value_bytes with a 1024-byte key failed: {:?}",
        results[0]
    );
    ensure!(results[1].is_ok(), "small put failed: {:?}", results[1]);
    match &results[2] {
        Err(e) if e.kind() == "ValueTooLarge" => {}
        other => return Err(anyhow!("oversized value gave {other:?}")),
    }
    let got = store
        .get(&ds, key)
        .await?
        .ok_or_else(|| anyhow!("big value missing"))?;
    ensure!(
        got.bytes.len() == max,
        "big value read back as {} bytes",
        got.bytes.len()
    );
    store.drop_dataset(&ds).await?;
    Ok(())
}

async fn raw_create(raw: &Client, table: &str, ranged: bool) -> Result<()> {
    let mut req = raw
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("keyBytes")
                .attribute_type(ScalarAttributeType::B)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("keyBytes")
                .key_type(KeyType::Hash)
                .build()?,
        );
    if ranged {
        req = req
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("ts")
                    .attribute_type(ScalarAttributeType::N)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("ts")
                    .key_type(KeyType::Range)
                    .build()?,
            );
    }
    req.send().await?;
    Ok(())
}

fn chronon_item(key: &[u8], value: &[u8], ts: i64) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("keyBytes".to_string(), AttributeValue::B(Blob::new(key))),
        (
            "valueBytes".to_string(),
            AttributeValue::B(Blob::new(value)),
        ),
        ("ts".to_string(), AttributeValue::N(ts.to_string())),
        // Chronon's JVM store writes ttl = now + 5 days on every item.
        (
            "ttl".to_string(),
            AttributeValue::N(((T0 / 1000) + 5 * 86_400).to_string()),
        ),
    ])
}

/// Tables and items made with the raw SDK the way Chronon's `DynamoDBKVStoreImpl` makes them
/// are read by the adapter: kind from the key schema, values with their stored `ts`.
async fn reads_tables_written_by_jvm_chronon(store: &DynamoStore, raw: &Client) -> Result<()> {
    let batch = format!("jvm_{}_BATCH", tag());
    let streaming = format!("jvm_{}_STREAMING", tag());
    raw_create(raw, &store.table_name(&batch), false).await?;
    raw_create(raw, &store.table_name(&streaming), true).await?;
    let key = [0u8, 255, 1, 0x80];
    raw.put_item()
        .table_name(store.table_name(&batch))
        .set_item(Some(chronon_item(&key, b"batch-value", T0)))
        .send()
        .await?;
    for t in 0..3 {
        raw.put_item()
            .table_name(store.table_name(&streaming))
            .set_item(Some(chronon_item(&key, format!("v{t}").as_bytes(), T0 + t)))
            .send()
            .await?;
    }
    let p = store.dataset_props(&batch).await?;
    ensure!(
        p.kind == DatasetKind::Snapshot && p.ttl.is_none(),
        "batch props {p:?}"
    );
    let p = store.dataset_props(&streaming).await?;
    ensure!(
        p.kind == DatasetKind::TimeSeries && p.ttl.is_none(),
        "streaming props {p:?}"
    );
    let got = store
        .get(&batch, key.to_vec())
        .await?
        .ok_or_else(|| anyhow!("batch value missing"))?;
    ensure!(
        got.bytes == b("batch-value") && got.millis == T0,
        "batch value {got:?}"
    );
    let got = store
        .multi_get(vec![GetRequest::range(
            &streaming,
            key.to_vec(),
            T0 + 1,
            None,
        )])
        .await;
    let values: Vec<(Bytes, i64)> = got[0]
        .values
        .clone()?
        .into_iter()
        .map(|v| (v.bytes, v.millis))
        .collect();
    ensure!(
        values == vec![(b("v1"), T0 + 1), (b("v2"), T0 + 2)],
        "streaming range {values:?}"
    );
    // create() on a JVM-made table of the same kind is fine, of the other kind a conflict.
    store.create_default(&streaming).await?;
    let conflict = store.create(&batch, &DatasetProps::time_series()).await;
    ensure!(
        matches!(conflict, Err(ref e) if e.kind() == "DatasetConflict"),
        "create over JVM table: {conflict:?}"
    );
    store.drop_dataset(&batch).await?;
    store.drop_dataset(&streaming).await?;
    Ok(())
}

/// What the adapter writes is what a JVM Chronon reads: `keyBytes`/`valueBytes` binaries, `ts`
/// number (sort key on `_STREAMING`), `ttl` in epoch seconds, TTL enabled, on-demand billing.
async fn writes_items_jvm_chronon_can_read(store: &DynamoStore, raw: &Client) -> Result<()> {
    let snap = format!("rs_{}_BATCH", tag());
    let ts = format!("rs_{}_STREAMING", tag());
    store
        .create(
            &snap,
            &DatasetProps::snapshot().with_ttl(Duration::from_secs(3600)),
        )
        .await?;
    store.create_default(&ts).await?;
    let key = vec![9u8, 0, 9];
    // The snapshot row is written now: with a ts in the past its `ttl` would already have
    // passed, and DynamoDB Local may sweep expired items away before the raw read below.
    let snap_ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    store
        .put(&snap, key.clone(), b("snap"), Some(snap_ts))
        .await?;
    store.put(&ts, key.clone(), b("old"), Some(T0)).await?;
    store.put(&ts, key.clone(), b("new"), Some(T0 + 10)).await?;

    let desc = raw
        .describe_table()
        .table_name(store.table_name(&ts))
        .send()
        .await?;
    let table = desc.table.ok_or_else(|| anyhow!("no table description"))?;
    let schema: Vec<(String, String)> = table
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_string(),
                k.key_type().as_str().to_string(),
            )
        })
        .collect();
    ensure!(
        schema
            == vec![
                ("keyBytes".into(), "HASH".into()),
                ("ts".into(), "RANGE".into())
            ],
        "key schema {schema:?}"
    );
    let billing = table
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .map(|m| m.as_str().to_string());
    ensure!(
        billing.as_deref() == Some("PAY_PER_REQUEST"),
        "billing {billing:?}"
    );
    let ttl = raw
        .describe_time_to_live()
        .table_name(store.table_name(&snap))
        .send()
        .await?;
    let ttl_desc = ttl
        .time_to_live_description()
        .ok_or_else(|| anyhow!("no TTL description"))?;
    ensure!(
        ttl_desc.attribute_name() == Some("ttl"),
        "TTL attribute {:?}",
        ttl_desc.attribute_name()
    );

    let out = raw
        .batch_get_item()
        .request_items(
            store.table_name(&snap),
            KeysAndAttributes::builder()
                .keys(HashMap::from([(
                    "keyBytes".to_string(),
                    AttributeValue::B(Blob::new(key.clone())),
                )]))
                .consistent_read(true)
                .build()?,
        )
        .send()
        .await?;
    let items = out
        .responses
        .and_then(|mut r| r.remove(&store.table_name(&snap)))
        .unwrap_or_default();
    ensure!(
        items.len() == 1,
        "raw BatchGetItem found {} items",
        items.len()
    );
    let item = &items[0];
    ensure!(
        item.get("valueBytes") == Some(&AttributeValue::B(Blob::new("snap"))),
        "valueBytes {:?}",
        item.get("valueBytes")
    );
    ensure!(
        item.get("ts") == Some(&AttributeValue::N(snap_ts.to_string())),
        "ts {:?}",
        item.get("ts")
    );
    let want_ttl = (snap_ts + 3_600_000) / 1000;
    ensure!(
        item.get("ttl") == Some(&AttributeValue::N(want_ttl.to_string())),
        "ttl {:?}",
        item.get("ttl")
    );

    // Chronon's query for a time range: keyBytes = :k AND ts BETWEEN :start AND :end.
    let out = raw
        .query()
        .table_name(store.table_name(&ts))
        .key_condition_expression("#pk = :k AND #ts BETWEEN :start AND :end")
        .expression_attribute_names("#pk", "keyBytes")
        .expression_attribute_names("#ts", "ts")
        .expression_attribute_values(":k", AttributeValue::B(Blob::new(key.clone())))
        .expression_attribute_values(":start", AttributeValue::N(T0.to_string()))
        .expression_attribute_values(":end", AttributeValue::N((T0 + 100).to_string()))
        .consistent_read(true)
        .send()
        .await?;
    let values: Vec<Option<&AttributeValue>> =
        out.items().iter().map(|i| i.get("valueBytes")).collect();
    ensure!(
        values
            == vec![
                Some(&AttributeValue::B(Blob::new("old"))),
                Some(&AttributeValue::B(Blob::new("new")))
            ],
        "raw query {values:?}"
    );
    ensure!(
        out.items().iter().all(|i| !i.contains_key("ttl")),
        "no-TTL dataset items carry a ttl"
    );
    store.drop_dataset(&snap).await?;
    store.drop_dataset(&ts).await?;
    Ok(())
}

/// Keys with many versions spread over several Scan pages are still listed once each, with
/// their newest version.
async fn list_pages_time_series_with_many_versions(store: &DynamoStore) -> Result<()> {
    let ds = format!("list_{}_STREAMING", tag());
    store.create_default(&ds).await?;
    let mut puts = Vec::new();
    for k in 0..30 {
        for v in 0..(k % 7 + 1) {
            puts.push(PutRequest::new(
                &ds,
                b(format!("key{k}")),
                b(format!("v{v}")),
                Some(T0 + v),
            ));
        }
    }
    ensure!(
        store.multi_put(puts).await.iter().all(Result::is_ok),
        "puts failed"
    );
    for page_size in [1, 3, 7, 100] {
        let all = store.list_all(&ds, page_size).await?;
        ensure!(
            all.len() == 30,
            "page size {page_size}: {} entries",
            all.len()
        );
        let mut keys: Vec<_> = all.iter().map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        ensure!(
            keys.len() == 30,
            "page size {page_size}: a key was listed twice"
        );
        for (k, v) in &all {
            let n: i64 = String::from_utf8_lossy(&k[3..]).parse()?;
            ensure!(
                v.millis == T0 + n % 7,
                "page size {page_size}: {k:?} listed at {}",
                v.millis
            );
        }
    }
    store.drop_dataset(&ds).await?;
    Ok(())
}

async fn nothing_listening_is_unavailable_with_address() -> Result<()> {
    let port = conformance::launch::free_port()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let store = DynamoStore::open(
        DynamoOptions::local(&endpoint)
            .with_region("us-west-2")
            .with_timeout(Duration::from_secs(3))
            .with_retry(chronon_dynamo::RetrySettings::new(
                1,
                Duration::from_millis(1),
                Duration::from_millis(1),
            )),
    )
    .await?;
    let err = store
        .get("some_BATCH", b("k"))
        .await
        .err()
        .ok_or_else(|| anyhow!("get succeeded"))?;
    ensure!(
        err.kind() == "Unavailable" && err.is_retryable(),
        "got {} ({err})",
        err.kind()
    );
    ensure!(
        err.to_string().contains(&endpoint),
        "message {err} lacks {endpoint}"
    );
    Ok(())
}

async fn paused_server_is_a_timeout(
    endpoint: &str,
    child: &mut conformance::launch::ChildServer,
) -> Result<()> {
    let store = DynamoStore::open(
        DynamoOptions::local(endpoint)
            .with_region("us-west-2")
            .with_timeout(Duration::from_millis(1500)),
    )
    .await?;
    let ds = format!("pause_{}_BATCH", tag());
    store.create_default(&ds).await?;
    child.pause()?;
    let started = Instant::now();
    let result = store.multi_get(vec![GetRequest::latest(&ds, b("k"))]).await;
    let elapsed = started.elapsed();
    child.resume()?;
    let err = result[0]
        .values
        .clone()
        .err()
        .ok_or_else(|| anyhow!("get on a paused server succeeded"))?;
    ensure!(
        err.kind() == "Timeout",
        "paused server gave {} ({err})",
        err.kind()
    );
    ensure!(elapsed < Duration::from_secs(5), "timeout took {elapsed:?}");
    store.drop_dataset(&ds).await?;
    Ok(())
}
