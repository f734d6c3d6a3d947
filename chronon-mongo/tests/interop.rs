//! Interop with Chronon's quickstart `MongoKvStore` layout, both ways: documents the JVM store
//! (or Spark2MongoLoader) writes with the raw driver are read by the adapter, and what the
//! adapter writes is plain `{keyBytes: BinData, valueBytes: BinData, ts: Long}`.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use chronon_core::{BulkPutOptions, BulkRow, DatasetKind, GetRequest, KvStore, KvStoreExt};
use chronon_mongo::{MongoOptions, MongoStore};
use futures::StreamExt;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document};

fn bin(b: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: b.to_vec(),
    }
}

async fn store(uri: &str, db: &str) -> Result<MongoStore> {
    let options = MongoOptions::new(uri)
        .with_database(db)
        .with_timeout(Duration::from_secs(60));
    Ok(MongoStore::open(options).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_layout_both_ways() -> Result<()> {
    let Some(server) = conformance::launch::mongodb::mongodb().await else {
        return Ok(());
    };
    let db_name = format!("chronon_interop_{}", std::process::id());
    let store = store(&server.uri, &db_name).await?;
    let raw = store.database().clone();

    // JVM -> Rust: MongoKvStore.create is a bare createCollection, multiPut one insertOne per
    // put, so a key may have several documents; the adapter answers with the newest and its ts.
    raw.create_collection("JVM_BATCH").await?;
    let jvm = raw.collection::<Document>("JVM_BATCH");
    jvm.insert_one(
        doc! { "keyBytes": bin(b"user\x00\xff"), "valueBytes": bin(b"old"), "ts": 1_000i64 },
    )
    .await?;
    jvm.insert_one(
        doc! { "keyBytes": bin(b"user\x00\xff"), "valueBytes": bin(b"new"), "ts": 2_000i64 },
    )
    .await?;
    let props = store.dataset_props("JVM_BATCH").await?;
    ensure!(
        props.kind == DatasetKind::Snapshot,
        "adopted collection kind {props:?}"
    );
    let got = store
        .get("JVM_BATCH", &b"user\x00\xff"[..])
        .await?
        .context("JVM value not found")?;
    ensure!(
        got.bytes.as_ref() == b"new" && got.millis == 2_000,
        "read {got:?}"
    );
    // Rust -> JVM: exactly the three fields, ts a Long, key and value generic BinData.
    store.create_default("RUST_STREAMING").await?;
    store
        .put("RUST_STREAMING", &b"k\x01"[..], &b"v1"[..], Some(5_000))
        .await?;
    store
        .put("RUST_STREAMING", &b"k\x01"[..], &b"v2"[..], Some(6_000))
        .await?;
    let coll = raw.collection::<Document>("RUST_STREAMING");
    let mut docs: Vec<Document> = coll
        .find(doc! { "keyBytes": bin(b"k\x01") })
        .sort(doc! { "ts": 1 })
        .await?
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    ensure!(docs.len() == 2, "{docs:?}");
    let last = docs.pop().context("no doc")?;
    let mut fields: Vec<&str> = last.keys().map(String::as_str).collect();
    fields.sort();
    ensure!(
        fields == ["_id", "keyBytes", "ts", "valueBytes"],
        "fields {fields:?}"
    );
    ensure!(
        last.get("ts") == Some(&Bson::Int64(6_000)),
        "ts {:?}",
        last.get("ts")
    );
    ensure!(
        last.get("valueBytes") == Some(&Bson::Binary(bin(b"v2"))),
        "{last:?}"
    );
    let names: Vec<String> = coll.list_index_names().await?;
    ensure!(
        names.iter().any(|n| n == "keyBytes_1_ts_-1"),
        "indexes {names:?}"
    );

    // bulk_put twice with new values: the second load replaces (insert, then upsert on conflict).
    store.create_default("BULK_BATCH").await?;
    for round in 0..2u8 {
        let rows = futures::stream::iter((0..500u32).map(move |i| {
            Ok(BulkRow {
                key: format!("k{i}").into_bytes().into(),
                value: vec![round; 3].into(),
                ts: 10 + i64::from(round),
            })
        }))
        .boxed();
        let report = store
            .bulk_put("BULK_BATCH", rows, BulkPutOptions::default())
            .await?;
        ensure!(report.rows == 500, "{report:?}");
    }
    let responses = store
        .multi_get(
            (0..500)
                .map(|i| GetRequest::latest("BULK_BATCH", format!("k{i}").into_bytes()))
                .collect(),
        )
        .await;
    for r in &responses {
        let v = r
            .latest()
            .map_err(Clone::clone)?
            .cloned()
            .context("missing")?;
        ensure!(v.bytes.as_ref() == [1, 1, 1] && v.millis == 11, "{v:?}");
    }
    ensure!(coll.estimated_document_count().await? == 2);
    let count = raw
        .collection::<Document>("BULK_BATCH")
        .count_documents(doc! {})
        .await?;
    ensure!(
        count == 500,
        "{count} documents after two loads of 500 keys"
    );

    raw.drop().await?;
    Ok(())
}
