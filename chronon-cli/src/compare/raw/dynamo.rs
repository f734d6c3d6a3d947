//! The `aws-sdk-dynamodb` baseline on the adapter's own client: `BatchGetItem` in chunks of 100
//! and `BatchWriteItem` in chunks of 25 (the service limits), as many in flight as the adapter
//! allows, unprocessed items resent, on a plain `keyBytes`-keyed table.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, PutRequest as DynPut, WriteRequest,
};

use super::super::workload::{key, value};
use super::chunked::{key_index, multiplicity, Chunked};

/// What the DynamoDB baseline needs.
pub struct DynamoRaw {
    client: aws_sdk_dynamodb::Client,
    table: String,
    in_flight: usize,
}

impl DynamoRaw {
    /// Opens the adapter on `url` for its client and limits, and creates the baseline's table.
    pub async fn open(url: &str) -> Result<Arc<Self>> {
        let store = chronon_dynamo::DynamoStore::open_url(url).await?;
        let raw = DynamoRaw {
            client: store.client().clone(),
            table: format!("rawbaseline_{}", rand::random::<u32>()),
            in_flight: store.options().max_in_flight.max(1),
        };
        raw.create_table().await?;
        Ok(Arc::new(raw))
    }

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
    /// the same each time: values are a function of the key). Plain `key -> value` items: no ts.
    async fn put_chunk(&self, chunk: Vec<usize>, value_size: usize, _ts: i64) -> u64 {
        let writes: Vec<WriteRequest> = multiplicity(&chunk)
            .keys()
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

    /// Deletes the baseline's table.
    async fn cleanup(&self) {
        let _ = self
            .client
            .delete_table()
            .table_name(&self.table)
            .send()
            .await;
    }
}
