//! Raw-driver baselines: the same batched work done with the driver directly, in the same process
//! right next to the adapter's run, so the report can show the adapter's overhead as a ratio.
//!
//! Each baseline stores plain `key -> value` with no versions, TTL or validation: the least any
//! store must do. Latest reads and puts are measured (ranges have no driver-neutral equivalent).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, PutRequest as DynPut, WriteRequest,
};
use futures::{FutureExt, StreamExt};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document, RawDocumentBuf};

use super::workload::{key, value, CallFn, Op, Profile};

/// The raw RocksDB baseline's one column family (the adapter keeps one per dataset).
const RAW_CF: &str = "raw";

/// A raw baseline for a backend: preloads plain pairs, then offers a [`CallFn`].
pub enum Raw {
    /// `rocksdb` crate: `batched_multi_get_cf` and one `WriteBatch`, on the blocking pool as the
    /// adapter does (an async caller has to).
    Rocks(Arc<rocksdb::DB>, #[allow(dead_code)] tempfile::TempDir),
    /// `redis` crate: one pipeline of `GET`s or `SET`s per batch on a `ConnectionManager`.
    Redis(redis::aio::ConnectionManager, String),
    /// `aws-sdk-dynamodb` on the adapter's own client: `BatchGetItem` in chunks of 100 and
    /// `BatchWriteItem` in chunks of 25 (the service limits), as many in flight as the adapter
    /// allows, unprocessed items resent, on a plain `keyBytes`-keyed table.
    Dynamo(Arc<DynamoRaw>),
    /// `mongodb` on the adapter's own client: one `find` with `$in` per chunk of the adapter's
    /// read size, and unordered `update` commands of upserts per chunk of its write size, as many
    /// in flight as the adapter allows, on a plain collection keyed by `_id`.
    Mongo(Arc<MongoRaw>),
}

/// What the DynamoDB baseline needs.
pub struct DynamoRaw {
    client: aws_sdk_dynamodb::Client,
    table: String,
    in_flight: usize,
}

/// What the MongoDB baseline needs.
pub struct MongoRaw {
    db: mongodb::Database,
    collection: String,
    get_chunk: usize,
    put_chunk: usize,
    in_flight: usize,
}

impl Raw {
    /// A baseline for the store at `url`, if this backend has one.
    pub async fn for_url(url: &str) -> Result<Option<Raw>> {
        if url.starts_with("rocks:") {
            // Tuned like the adapter's defaults (64 MiB LRU block cache, 10-bit bloom filters,
            // LZ4) and, like the adapter, one column family for the dataset.
            let dir = tempfile::tempdir()?;
            let mut table = rocksdb::BlockBasedOptions::default();
            table.set_block_cache(&rocksdb::Cache::new_lru_cache(64 << 20));
            table.set_bloom_filter(10.0, false);
            let mut opts = rocksdb::Options::default();
            opts.create_if_missing(true);
            opts.create_missing_column_families(true);
            opts.set_block_based_table_factory(&table);
            opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            let db =
                rocksdb::DB::open_cf(&opts, dir.path(), [RAW_CF]).context("opening raw RocksDB")?;
            return Ok(Some(Raw::Rocks(Arc::new(db), dir)));
        }
        if url.starts_with("redis:") {
            let base = url.split('?').next().unwrap_or(url);
            let client = redis::Client::open(base).context("raw redis client")?;
            // The adapter's default 10 s response timeout (the driver's own default, 500 ms, is
            // shorter than a 1,000-command pipeline takes on a server that fsyncs every write).
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_response_timeout(Some(std::time::Duration::from_secs(10)));
            let conn = redis::aio::ConnectionManager::new_with_config(client, config)
                .await
                .context("raw redis connection")?;
            return Ok(Some(Raw::Redis(
                conn,
                format!("rawbaseline:{}", rand::random::<u32>()),
            )));
        }
        if url.starts_with("dynamodb:") {
            let parsed = url::Url::parse(url)?;
            let store = chronon_dynamo::DynamoStore::open_url(&parsed).await?;
            let raw = DynamoRaw {
                client: store.client().clone(),
                table: format!("rawbaseline_{}", rand::random::<u32>()),
                in_flight: store.options().max_in_flight.max(1),
            };
            raw.create_table().await?;
            return Ok(Some(Raw::Dynamo(Arc::new(raw))));
        }
        if url.starts_with("mongodb:") {
            let parsed = url::Url::parse(url)?;
            let store = chronon_mongo::open_url(&parsed).await?;
            let options = store.options();
            return Ok(Some(Raw::Mongo(Arc::new(MongoRaw {
                db: store.database().clone(),
                collection: format!("rawbaseline_{}", rand::random::<u32>()),
                get_chunk: options.get_batch_size.max(1),
                put_chunk: options.put_batch_size.max(1),
                in_flight: options.concurrency.max(1),
            }))));
        }
        Ok(None)
    }

    /// Loads `profile.keys` plain pairs of `value_size` bytes.
    pub async fn preload(&self, profile: &Profile, value_size: usize) -> Result<()> {
        let n = profile.keys;
        for start in (0..n).step_by(1000) {
            let idx: Vec<usize> = (start..(start + 1000).min(n)).collect();
            let (n, errors) = self.call(value_size)(Op::Put, idx, 0).await;
            anyhow::ensure!(
                errors == 0,
                "raw baseline preload: {errors} of {n} puts failed"
            );
        }
        Ok(())
    }

    /// The baseline's batched call for `value_size` values.
    pub fn call(&self, value_size: usize) -> CallFn {
        match self {
            Raw::Rocks(db, _) => {
                let db = db.clone();
                Arc::new(move |op, idx, _ts| {
                    let db = db.clone();
                    tokio::task::spawn_blocking(move || {
                        let n = idx.len() as u64;
                        match op {
                            Op::Put => {
                                let Some(cf) = db.cf_handle(RAW_CF) else {
                                    return (n, n);
                                };
                                let mut batch = rocksdb::WriteBatch::default();
                                for i in &idx {
                                    batch.put_cf(&cf, key(*i), value(*i, value_size));
                                }
                                (n, db.write(batch).is_err() as u64)
                            }
                            _ => {
                                let keys: Vec<_> = idx.iter().map(|i| key(*i)).collect();
                                let cf = db.cf_handle(RAW_CF);
                                let errors = match cf {
                                    Some(cf) => db
                                        .batched_multi_get_cf(
                                            &cf,
                                            keys.iter().map(|k| k.as_ref()),
                                            false,
                                        )
                                        .into_iter()
                                        .filter(|r| !matches!(r, Ok(Some(_))))
                                        .count(),
                                    None => keys.len(),
                                };
                                (n, errors as u64)
                            }
                        }
                    })
                    .map(|r| r.unwrap_or((0, 1)))
                    .boxed()
                })
            }
            Raw::Redis(conn, prefix) => {
                let conn = conn.clone();
                let prefix = prefix.clone();
                Arc::new(move |op, idx, _ts| {
                    let mut conn = conn.clone();
                    let prefix = prefix.clone();
                    async move {
                        let n = idx.len() as u64;
                        let mut pipe = redis::pipe();
                        for i in &idx {
                            let k = [prefix.as_bytes(), &key(*i)].concat();
                            match op {
                                Op::Put => {
                                    pipe.set(k, value(*i, value_size).as_ref()).ignore();
                                }
                                _ => {
                                    pipe.get(k);
                                }
                            }
                        }
                        let errors = match op {
                            Op::Put => pipe.query_async::<()>(&mut conn).await.is_err() as u64,
                            _ => match pipe.query_async::<Vec<Option<Vec<u8>>>>(&mut conn).await {
                                Ok(v) => v.iter().filter(|x| x.is_none()).count() as u64,
                                Err(_) => n,
                            },
                        };
                        (n, errors)
                    }
                    .boxed()
                })
            }
            Raw::Dynamo(raw) => {
                let raw = raw.clone();
                Arc::new(move |op, idx, _ts| {
                    let raw = raw.clone();
                    async move {
                        let n = idx.len() as u64;
                        let errors = match op {
                            Op::Put => raw.put(idx, value_size).await,
                            _ => raw.get(idx).await,
                        };
                        (n, errors)
                    }
                    .boxed()
                })
            }
            Raw::Mongo(raw) => {
                let raw = raw.clone();
                Arc::new(move |op, idx, _ts| {
                    let raw = raw.clone();
                    async move {
                        let n = idx.len() as u64;
                        let errors = match op {
                            Op::Put => raw.put(idx, value_size).await,
                            _ => raw.get(idx).await,
                        };
                        (n, errors)
                    }
                    .boxed()
                })
            }
        }
    }

    /// Removes what the baseline wrote (Redis keys, the DynamoDB table, the Mongo collection;
    /// the RocksDB directory goes with the value).
    pub async fn cleanup(&self, profile: &Profile) {
        match self {
            Raw::Dynamo(raw) => {
                let _ = raw
                    .client
                    .delete_table()
                    .table_name(&raw.table)
                    .send()
                    .await;
                return;
            }
            Raw::Mongo(raw) => {
                let _ = raw
                    .db
                    .collection::<mongodb::bson::Document>(&raw.collection)
                    .drop()
                    .await;
                return;
            }
            _ => {}
        }
        if let Raw::Redis(conn, prefix) = self {
            let mut conn = conn.clone();
            for start in (0..profile.keys).step_by(1000) {
                let keys: Vec<Vec<u8>> = (start..(start + 1000).min(profile.keys))
                    .map(|i| [prefix.as_bytes(), &key(i)].concat())
                    .collect();
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
            }
        }
    }
}

impl DynamoRaw {
    async fn create_table(&self) -> Result<()> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        self.client
            .create_table()
            .table_name(&self.table)
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
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .context("creating the raw baseline's DynamoDB table")?;
        Ok(())
    }

    fn key_attr(i: usize) -> HashMap<String, AttributeValue> {
        HashMap::from([("keyBytes".to_string(), AttributeValue::B(Blob::new(key(i))))])
    }

    /// `BatchGetItem` per 100 keys; returns the keys not found or failed.
    async fn get(self: Arc<Self>, idx: Vec<usize>) -> u64 {
        let chunks: Vec<Vec<usize>> = idx.chunks(100).map(<[usize]>::to_vec).collect();
        let in_flight = self.in_flight;
        let found: Vec<u64> = futures::stream::iter(chunks)
            .map(|chunk| {
                let this = self.clone();
                async move { this.get_chunk(chunk).await }
            })
            .buffer_unordered(in_flight)
            .collect()
            .await;
        idx.len() as u64 - found.iter().sum::<u64>().min(idx.len() as u64)
    }

    /// One `BatchGetItem` (resending unprocessed keys); returns the keys found.
    async fn get_chunk(&self, chunk: Vec<usize>) -> u64 {
        let keys = chunk.iter().map(|i| Self::key_attr(*i)).collect();
        let Ok(ka) = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
        else {
            return 0;
        };
        let mut request = Some(HashMap::from([(self.table.clone(), ka)]));
        let mut count = 0;
        while let Some(items) = request.take() {
            let Ok(out) = self
                .client
                .batch_get_item()
                .set_request_items(Some(items))
                .send()
                .await
            else {
                break;
            };
            count += out
                .responses
                .and_then(|mut r| r.remove(&self.table))
                .map_or(0, |v| v.len() as u64);
            request = out.unprocessed_keys.filter(|m| !m.is_empty());
        }
        count
    }

    /// `BatchWriteItem` per 25 items; returns the items not written.
    async fn put(self: Arc<Self>, idx: Vec<usize>, value_size: usize) -> u64 {
        let chunks: Vec<Vec<usize>> = idx.chunks(25).map(<[usize]>::to_vec).collect();
        let in_flight = self.in_flight;
        let failed: Vec<u64> = futures::stream::iter(chunks)
            .map(|chunk| {
                let this = self.clone();
                async move { this.put_chunk(chunk, value_size).await }
            })
            .buffer_unordered(in_flight)
            .collect()
            .await;
        failed.iter().sum()
    }

    /// One `BatchWriteItem` (resending unprocessed items); returns the items not written.
    async fn put_chunk(&self, chunk: Vec<usize>, value_size: usize) -> u64 {
        let writes: Vec<WriteRequest> = chunk
            .iter()
            .filter_map(|i| {
                let mut item = Self::key_attr(*i);
                item.insert(
                    "valueBytes".to_string(),
                    AttributeValue::B(Blob::new(value(*i, value_size).to_vec())),
                );
                let put = DynPut::builder().set_item(Some(item)).build().ok()?;
                Some(WriteRequest::builder().put_request(put).build())
            })
            .collect();
        let mut request = Some(HashMap::from([(self.table.clone(), writes)]));
        while let Some(items) = request.take() {
            match self
                .client
                .batch_write_item()
                .set_request_items(Some(items))
                .send()
                .await
            {
                Ok(out) => request = out.unprocessed_items.filter(|m| !m.is_empty()),
                Err(_) => return chunk.len() as u64,
            }
        }
        0
    }
}

impl MongoRaw {
    fn bin(i: usize) -> Bson {
        Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: key(i).to_vec(),
        })
    }

    /// One `find` with `$in` per `get_chunk` keys; returns the keys not found or failed.
    async fn get(self: Arc<Self>, idx: Vec<usize>) -> u64 {
        let coll = self.db.collection::<RawDocumentBuf>(&self.collection);
        let chunks: Vec<Vec<usize>> = idx.chunks(self.get_chunk).map(<[usize]>::to_vec).collect();
        let found: Vec<u64> = futures::stream::iter(chunks)
            .map(|chunk| {
                let coll = coll.clone();
                async move {
                    let keys: Vec<Bson> = chunk.iter().map(|i| Self::bin(*i)).collect();
                    let Ok(mut cursor) = coll.find(doc! { "_id": { "$in": keys } }).await else {
                        return 0;
                    };
                    let mut count = 0;
                    while let Ok(true) = cursor.advance().await {
                        count += 1;
                    }
                    count
                }
            })
            .buffer_unordered(self.in_flight)
            .collect()
            .await;
        idx.len() as u64 - found.iter().sum::<u64>().min(idx.len() as u64)
    }

    /// One unordered `update` command of upserts per `put_chunk` values; returns the values
    /// not written.
    async fn put(self: Arc<Self>, idx: Vec<usize>, value_size: usize) -> u64 {
        let chunks: Vec<Vec<usize>> = idx.chunks(self.put_chunk).map(<[usize]>::to_vec).collect();
        let in_flight = self.in_flight;
        let failed: Vec<u64> = futures::stream::iter(chunks)
            .map(|chunk| {
                let this = self.clone();
                async move { this.put_chunk(chunk, value_size).await }
            })
            .buffer_unordered(in_flight)
            .collect()
            .await;
        failed.iter().sum()
    }

    /// One unordered `update` command of upserts; returns the values not written.
    async fn put_chunk(&self, chunk: Vec<usize>, value_size: usize) -> u64 {
        let updates: Vec<Document> = chunk
            .iter()
            .map(|i| {
                let v = Bson::Binary(Binary {
                    subtype: BinarySubtype::Generic,
                    bytes: value(*i, value_size).to_vec(),
                });
                doc! {
                    "q": { "_id": Self::bin(*i) },
                    "u": { "$set": { "valueBytes": v } },
                    "upsert": true,
                }
            })
            .collect();
        let command = doc! {
            "update": &self.collection,
            "updates": updates,
            "ordered": false,
        };
        match self.db.run_command(command).await {
            Ok(reply) if !reply.contains_key("writeErrors") => 0,
            _ => chunk.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every baseline loads the quick profile's keys and reads them all back, so a broken
    /// baseline fails here instead of leaving a hole in the report.
    async fn round_trip(url: &str) {
        let profile = Profile::quick();
        let raw = Raw::for_url(url)
            .await
            .expect("open the baseline")
            .expect("this backend has a baseline");
        raw.preload(&profile, 100).await.expect("preload");
        let idx: Vec<usize> = (0..100).collect();
        assert_eq!(raw.call(100)(Op::GetLatest, idx, 0).await, (100, 0));
        raw.cleanup(&profile).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rocks_baseline() {
        round_trip("rocks:///baseline-uses-its-own-temp-dir").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_baseline() {
        if let Some(s) = conformance::launch::redis::redis().await {
            round_trip(&s.url).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamo_baseline() {
        if let Some(s) = conformance::launch::dynamo::dynamo().await {
            round_trip(&format!(
                "dynamodb://?endpoint={}&region=us-west-2",
                s.endpoint
            ))
            .await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mongo_baseline() {
        if let Some(s) = conformance::launch::mongo::mongo().await {
            round_trip(&format!("{}&chronon_timeout_ms=120000", s.uri)).await;
        }
    }
}
