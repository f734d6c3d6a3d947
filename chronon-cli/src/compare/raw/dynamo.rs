//! The `aws-sdk-dynamodb` baseline on the adapter's own client: `BatchGetItem` in chunks of 100
//! and `BatchWriteItem` in chunks of 25 (the service limits), as many in flight as the adapter
//! allows, unprocessed items resent, on a plain `keyBytes`-keyed table; range reads are one
//! `Query` per key on a second table keyed by `keyBytes` and `ts`, as the adapter's
//! time-series tables are.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, PutRequest as DynPut, WriteRequest,
};

use super::super::workload::{key, value, T0, VERSIONS};
use super::chunked::{key_index, multiplicity, Chunked};

/// What the DynamoDB baseline needs.
pub struct DynamoRaw {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// The versioned table, for range reads.
    versions_table: String,
    in_flight: usize,
}

impl DynamoRaw {
    /// Opens the adapter on `url` for its client and limits, and creates the baseline's table.
    pub async fn open(url: &str) -> Result<Arc<Self>> {
        let store = chronon_dynamo::DynamoStore::open_url(url).await?;
        let table = format!("rawbaseline_{}", rand::random::<u32>());
        let raw = DynamoRaw {
            client: store.client().clone(),
            versions_table: format!("{table}_versions"),
            table,
            in_flight: store.options().max_in_flight.max(1),
        };
        raw.create_table(&raw.table, false).await?;
        raw.create_table(&raw.versions_table, true).await?;
        Ok(Arc::new(raw))
    }

    /// A table keyed by `keyBytes`, and by `ts` as well when `versioned`.
    async fn create_table(&self, table: &str, versioned: bool) -> Result<()> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let mut create = self
            .client
            .create_table()
            .table_name(table)
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
            .billing_mode(BillingMode::PayPerRequest);
        if versioned {
            create = create
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
        create
            .send()
            .await
            .context("creating the raw baseline's DynamoDB table")?;
        Ok(())
    }

    /// Writes `items` into `table` with `BatchWriteItem`s of 25, resending unprocessed items;
    /// returns whether every item was written.
    async fn write_items(&self, table: &str, items: Vec<HashMap<String, AttributeValue>>) -> bool {
        for chunk in items.chunks(25) {
            let writes: Vec<WriteRequest> = chunk
                .iter()
                .filter_map(|item| {
                    let put = DynPut::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .ok()?;
                    Some(WriteRequest::builder().put_request(put).build())
                })
                .collect();
            let mut request = Some(HashMap::from([(table.to_string(), writes)]));
            while let Some(items) = request.take() {
                match self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                {
                    Ok(out) => request = out.unprocessed_items.filter(|m| !m.is_empty()),
                    Err(_) => return false,
                }
            }
        }
        true
    }

    fn key_attr(i: usize) -> HashMap<String, AttributeValue> {
        HashMap::from([("keyBytes".to_string(), AttributeValue::B(Blob::new(key(i))))])
    }
}

impl Chunked for DynamoRaw {
    fn get_chunk_len(&self) -> usize {
        100
    }

    fn put_chunk_len(&self) -> usize {
        25
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// One `Query` per key: DynamoDB reads one partition per query.
    fn range_chunk_len(&self) -> usize {
        1
    }

    /// One consistent `Query` per key for its versions at or after [`T0`], oldest first,
    /// following pages; counts the keys that had all [`VERSIONS`].
    async fn get_range_chunk(&self, chunk: Vec<usize>) -> u64 {
        let mut count = 0;
        for (i, asked) in multiplicity(&chunk) {
            let mut versions = 0;
            let mut start_key = None;
            loop {
                let page = self
                    .client
                    .query()
                    .table_name(&self.versions_table)
                    .consistent_read(true)
                    .key_condition_expression("#k = :k AND #t >= :lo")
                    .expression_attribute_names("#k", "keyBytes")
                    .expression_attribute_names("#t", "ts")
                    .expression_attribute_values(":k", AttributeValue::B(Blob::new(key(i))))
                    .expression_attribute_values(":lo", AttributeValue::N(T0.to_string()))
                    .set_exclusive_start_key(start_key.take())
                    .send()
                    .await;
                let Ok(page) = page else { break };
                versions += page
                    .items
                    .unwrap_or_default()
                    .iter()
                    .filter(|item| matches!(item.get("valueBytes"), Some(AttributeValue::B(_))))
                    .count();
                match page.last_evaluated_key {
                    Some(k) if !k.is_empty() => start_key = Some(k),
                    _ => break,
                }
            }
            if versions as i64 == VERSIONS {
                count += asked;
            }
        }
        count
    }

    async fn preload_versions(&self, keys: usize, value_size: usize) -> Result<()> {
        let items = (0..keys)
            .flat_map(|i| (0..VERSIONS).map(move |v| (i, v)))
            .map(|(i, v)| {
                let mut item = Self::key_attr(i);
                item.insert("ts".to_string(), AttributeValue::N((T0 + v).to_string()));
                item.insert(
                    "valueBytes".to_string(),
                    AttributeValue::B(Blob::new(value(i, value_size).to_vec())),
                );
                item
            })
            .collect();
        anyhow::ensure!(
            self.write_items(&self.versions_table, items).await,
            "raw DynamoDB baseline: loading the versioned table failed"
        );
        Ok(())
    }

    /// One `BatchGetItem` (resending unprocessed keys); returns the keys found, counting a key
    /// asked for twice twice. DynamoDB rejects a `BatchGetItem` that names a key twice, and the
    /// workload draws keys with repeats, so the keys go once each (as the adapter sends them).
    async fn get_chunk(&self, chunk: Vec<usize>) -> u64 {
        let asked = multiplicity(&chunk);
        let keys = asked.keys().map(|i| Self::key_attr(*i)).collect();
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
                .unwrap_or_default()
                .iter()
                .filter_map(|item| match item.get("keyBytes") {
                    Some(AttributeValue::B(k)) => key_index(k.as_ref()),
                    _ => None,
                })
                .map(|i| asked.get(&i).copied().unwrap_or(0))
                .sum::<u64>();
            request = out.unprocessed_keys.filter(|m| !m.is_empty());
        }
        count
    }

    /// One `BatchWriteItem` (resending unprocessed items); returns the items not written.
    /// DynamoDB rejects a batch that writes one key twice, so each key goes once (its value is
    /// the same each time: values are a function of the key). Items carry the call's `ts`, as
    /// the adapter's `Snapshot` items must (Chronon's layout writes `ts` on every item): without
    /// it the baseline sent and stored one attribute less per item than the adapter has to.
    async fn put_chunk(&self, chunk: Vec<usize>, value_size: usize, ts: i64) -> u64 {
        let writes: Vec<WriteRequest> = multiplicity(&chunk)
            .keys()
            .filter_map(|i| {
                let mut item = Self::key_attr(*i);
                item.insert(
                    "valueBytes".to_string(),
                    AttributeValue::B(Blob::new(value(*i, value_size).to_vec())),
                );
                item.insert("ts".to_string(), AttributeValue::N(ts.to_string()));
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

    /// Deletes the baseline's tables.
    async fn cleanup(&self) {
        for table in [&self.table, &self.versions_table] {
            let _ = self.client.delete_table().table_name(table).send().await;
        }
    }
}
