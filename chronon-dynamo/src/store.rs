//! [`DynamoStore`]: the `KvStore` on DynamoDB, in Chronon's table layout (see `layout.rs`).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    PutRequest as DdbPutRequest, ScalarAttributeType, TableDescription, TableStatus,
    TimeToLiveSpecification, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use bytes::Bytes;
use chronon_core::batch::{self, select_versions, with_timeout, GetBatch, PutBatch};
use chronon_core::{
    validate, BulkPutOptions, BulkPutReport, BulkSource, Capabilities, DatasetKind, DatasetProps,
    GetRequest, GetResponse, KvError, KvStore, ListCursor, ListPage, PutRequest, TimedValue,
};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Semaphore;

use crate::error::{code_of, map_sdk_err, message_of, Op, RefusedIsFinal};
use crate::layout::{self, KEY_ATTR, META_DATASET_ATTR, META_KIND_ATTR, META_TTL_ATTR, TS_ATTR};
use crate::options::DynamoOptions;
use crate::retry::{until_processed, Round};
use crate::SCHEME;

/// Keys per `BatchGetItem` (DynamoDB's limit).
pub const GET_BATCH: usize = 100;
/// Items per `BatchWriteItem` (DynamoDB's limit).
pub const PUT_BATCH: usize = 25;

type Item = HashMap<String, AttributeValue>;
/// The answer for one chunk of keys (`BatchGetItem`) or one query group: the keys or request
/// indexes it covers, and what DynamoDB returned for them.
type ChunkAnswer<K, V> = (Vec<K>, Result<Vec<V>, KvError>);

/// A Chronon `KvStore` on Amazon DynamoDB (or DynamoDB Local).
///
/// Layout (the one of Chronon's JVM `DynamoDBKVStoreImpl`, so both can share tables): one table
/// per dataset named `prefix + dataset`, partition key `keyBytes` (B), sort key `ts` (N) for
/// `TimeSeries` datasets, the value in `valueBytes` (B), `ts` also stored on `Snapshot` items, and
/// the TTL attribute `ttl` (epoch seconds) with DynamoDB's TTL enabled; on-demand billing.
/// The kind is read back from the table's key schema; the TTL duration is kept in a small
/// metadata table (`prefix + "chronon.datasets"`).
///
/// Cheap to share: wrap it in an `Arc`; all calls go through one SDK client and at most
/// [`DynamoOptions::max_in_flight`] requests are in flight at once.
pub struct DynamoStore {
    client: Client,
    options: DynamoOptions,
    address: String,
    permits: Semaphore,
    props_cache: RwLock<HashMap<String, (DatasetProps, Instant)>>,
    meta_ready: AtomicBool,
    caps: Capabilities,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("address", &self.address)
            .field("options", &self.options)
            .finish()
    }
}

/// One valid put, owned, so the work can outlive the borrow of the batch.
#[derive(Debug, Clone)]
struct OwnedPut {
    index: usize,
    key: Bytes,
    value: Bytes,
    ts: i64,
}

/// Whether the environment names AWS credentials of its own (then the AWS chain is used even
/// for a loopback endpoint).
fn env_has_credentials() -> bool {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

fn build_err(context: &str, e: BuildError) -> KvError {
    KvError::backend(SCHEME, context.to_string(), e)
}

impl DynamoStore {
    /// Connects with `options`: region and credentials from the options, else the AWS chain
    /// (with dummy static credentials for a loopback endpoint when the environment has none, as
    /// DynamoDB Local accepts any).
    pub async fn connect(options: DynamoOptions) -> Result<Self, KvError> {
        let retry = RetryConfig::standard()
            .with_max_attempts(options.retry.max_attempts.max(1))
            .with_initial_backoff(options.retry.initial_backoff)
            .with_max_backoff(options.retry.max_backoff);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(options.timeout)
            .operation_timeout(options.timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Some(endpoint) = &options.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        match (&options.region, &options.endpoint) {
            (Some(region), _) => loader = loader.region(Region::new(region.clone())),
            (None, Some(_)) => {
                // DynamoDB Local accepts any region; avoid probing instance metadata for one.
                let region = std::env::var("AWS_REGION")
                    .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|_| "us-east-1".to_string());
                loader = loader.region(Region::new(region));
            }
            (None, None) => {}
        }
        if let Some((id, secret)) = &options.credentials {
            loader = loader.credentials_provider(Credentials::new(
                id,
                secret,
                None,
                None,
                "chronon-options",
            ));
        } else if options.endpoint_is_loopback() && !env_has_credentials() {
            // DynamoDB Local 2+ accepts any key id made of letters and digits only.
            loader = loader.credentials_provider(Credentials::new(
                "chrononlocal",
                "chrononlocal",
                None,
                None,
                "chronon-dynamodb-local",
            ));
        }
        let config = loader.load().await;
        // Connection refused is final for one call: the SDK would otherwise retry it until the
        // operation timeout and report `Timeout`, hiding that nothing listens (SPEC: refused is
        // `Unavailable`, naming the address). Throttling and 5xx are still retried.
        let conf = aws_sdk_dynamodb::config::Builder::from(&config)
            .retry_classifier(RefusedIsFinal)
            .build();
        Ok(Self::from_client(Client::from_conf(conf), options))
    }

    /// A store on an SDK client you configured yourself (`options.endpoint`/`region`/`credentials`
    /// are then only used in messages).
    pub fn from_client(client: Client, options: DynamoOptions) -> Self {
        let address = match (&options.endpoint, client.config().region()) {
            (Some(e), _) => e.clone(),
            (None, Some(r)) => format!("dynamodb.{r}.amazonaws.com"),
            (None, None) => "dynamodb (default endpoint)".to_string(),
        };
        DynamoStore {
            client,
            address,
            permits: Semaphore::new(options.max_in_flight.max(1)),
            props_cache: RwLock::new(HashMap::new()),
            meta_ready: AtomicBool::new(false),
            caps: Capabilities::new(layout::MAX_VALUE_BYTES, GET_BATCH, PUT_BATCH)
                .with_native_ttl()
                .with_persistence(),
            options,
        }
    }

    /// Opens a store from a `dynamodb://` URL (see [`DynamoOptions::from_url`]), for example
    /// `dynamodb://?endpoint=http://127.0.0.1:8000&region=us-west-2&prefix=chronon_`.
    pub async fn open_url(url: &url::Url) -> Result<Self, KvError> {
        Self::connect(DynamoOptions::from_url(url)?).await
    }

    /// The SDK client (for tools that need a call this store does not make).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The options this store runs with.
    pub fn options(&self) -> &DynamoOptions {
        &self.options
    }

    /// The physical table of `dataset` (`prefix + dataset`).
    pub fn table_name(&self, dataset: &str) -> String {
        layout::table_name(&self.options.table_prefix, dataset)
    }

    fn meta_table(&self) -> String {
        format!(
            "{}{}",
            self.options.table_prefix, self.options.metadata_table
        )
    }

    fn op<'a>(&'a self, name: &'static str, dataset: Option<&'a str>) -> Op<'a> {
        Op {
            name,
            dataset,
            address: &self.address,
            timeout: self.options.timeout,
        }
    }

    /// Runs one SDK call while holding an in-flight permit (the bound on concurrent requests).
    async fn limited<F: Future>(&self, fut: F) -> F::Output {
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self.permits.acquire().await.ok();
        fut.await
    }

    // ----- dataset metadata -------------------------------------------------------------------

    async fn describe(
        &self,
        table: &str,
        dataset: Option<&str>,
    ) -> Result<Option<TableDescription>, KvError> {
        let res = self
            .limited(self.client.describe_table().table_name(table).send())
            .await;
        match res {
            Ok(out) => Ok(out
                .table
                .filter(|t| t.table_status() != Some(&TableStatus::Deleting))),
            Err(e) if code_of(&e) == "ResourceNotFoundException" => Ok(None),
            Err(e) => Err(map_sdk_err(e, self.op("DescribeTable", dataset))),
        }
    }

    /// Polls until `table` is ACTIVE (the caller's timeout bounds the wait).
    async fn wait_active(&self, table: &str, dataset: Option<&str>) -> Result<(), KvError> {
        let mut delay = Duration::from_millis(20);
        loop {
            if let Some(t) = self.describe(table, dataset).await? {
                if t.table_status() == Some(&TableStatus::Active) {
                    return Ok(());
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// Polls until `table` is gone.
    async fn wait_gone(&self, table: &str, dataset: &str) -> Result<(), KvError> {
        let mut delay = Duration::from_millis(20);
        while self.describe(table, Some(dataset)).await?.is_some() {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
        Ok(())
    }

    /// Creates the metadata table if needed (once per client).
    async fn ensure_meta_table(&self) -> Result<(), KvError> {
        if self.meta_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let table = self.meta_table();
        if self.describe(&table, None).await?.is_none() {
            let res = self
                .limited(
                    self.client
                        .create_table()
                        .table_name(&table)
                        .billing_mode(BillingMode::PayPerRequest)
                        .attribute_definitions(
                            AttributeDefinition::builder()
                                .attribute_name(META_DATASET_ATTR)
                                .attribute_type(ScalarAttributeType::S)
                                .build()
                                .map_err(|e| build_err("CreateTable (metadata)", e))?,
                        )
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name(META_DATASET_ATTR)
                                .key_type(KeyType::Hash)
                                .build()
                                .map_err(|e| build_err("CreateTable (metadata)", e))?,
                        )
                        .send(),
                )
                .await;
            match res {
                Ok(_) => {}
                Err(e) if code_of(&e) == "ResourceInUseException" => {}
                Err(e) => {
                    return Err(map_sdk_err(
                        e,
                        self.op("CreateTable (metadata table)", None),
                    ))
                }
            }
        }
        self.wait_active(&table, None).await?;
        self.meta_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The TTL remembered for `dataset` (none when the metadata table or its row is missing).
    async fn read_ttl(&self, dataset: &str) -> Result<Option<Duration>, KvError> {
        let res = self
            .limited(
                self.client
                    .get_item()
                    .table_name(self.meta_table())
                    .key(META_DATASET_ATTR, AttributeValue::S(dataset.to_string()))
                    .consistent_read(true)
                    .send(),
            )
            .await;
        let item = match res {
            Ok(out) => out.item.unwrap_or_default(),
            Err(e) if code_of(&e) == "ResourceNotFoundException" => return Ok(None),
            Err(e) => {
                return Err(map_sdk_err(
                    e,
                    self.op("GetItem (metadata table)", Some(dataset)),
                ))
            }
        };
        match item.get(META_TTL_ATTR) {
            Some(AttributeValue::N(n)) => n
                .parse::<u64>()
                .map(|ms| Some(Duration::from_millis(ms)))
                .map_err(|e| {
                    KvError::backend_msg(
                        SCHEME,
                        format!("reading the TTL of dataset {dataset:?}"),
                        format!("{META_TTL_ATTR} {n:?} is not a number of milliseconds: {e}"),
                    )
                }),
            _ => Ok(None),
        }
    }

    /// Records (or clears) the TTL of `dataset` in the metadata table.
    async fn write_meta(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        match props.ttl_millis() {
            Some(ttl) => {
                self.ensure_meta_table().await?;
                self.limited(
                    self.client
                        .put_item()
                        .table_name(self.meta_table())
                        .item(META_DATASET_ATTR, AttributeValue::S(dataset.to_string()))
                        .item(
                            META_KIND_ATTR,
                            AttributeValue::S(props.kind.as_str().to_string()),
                        )
                        .item(META_TTL_ATTR, layout::num(ttl))
                        .send(),
                )
                .await
                .map_err(|e| map_sdk_err(e, self.op("PutItem (metadata table)", Some(dataset))))?;
                Ok(())
            }
            None => self.delete_meta(dataset).await,
        }
    }

    async fn delete_meta(&self, dataset: &str) -> Result<(), KvError> {
        let res = self
            .limited(
                self.client
                    .delete_item()
                    .table_name(self.meta_table())
                    .key(META_DATASET_ATTR, AttributeValue::S(dataset.to_string()))
                    .send(),
            )
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e) == "ResourceNotFoundException" => Ok(()),
            Err(e) => Err(map_sdk_err(
                e,
                self.op("DeleteItem (metadata table)", Some(dataset)),
            )),
        }
    }

    /// Reads a dataset's kind (from the key schema) and TTL (from the metadata table).
    async fn fetch_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        let table = self.table_name(dataset);
        let desc = self
            .describe(&table, Some(dataset))
            .await?
            .ok_or_else(|| KvError::not_found(dataset))?;
        let kind = layout::kind_from_key_schema(desc.key_schema());
        let ttl = self.read_ttl(dataset).await?;
        let props = DatasetProps { kind, ttl };
        self.remember(dataset, props);
        Ok(props)
    }

    fn remember(&self, dataset: &str, props: DatasetProps) {
        let mut cache = self.props_cache.write().unwrap_or_else(|e| e.into_inner());
        cache.insert(dataset.to_string(), (props, Instant::now()));
    }

    fn forget(&self, dataset: &str) {
        let mut cache = self.props_cache.write().unwrap_or_else(|e| e.into_inner());
        cache.remove(dataset);
    }

    /// The dataset's properties, from the cache when fresh.
    async fn props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        {
            let cache = self.props_cache.read().unwrap_or_else(|e| e.into_inner());
            if let Some((p, at)) = cache.get(dataset) {
                if at.elapsed() < self.options.props_cache_ttl {
                    return Ok(*p);
                }
            }
        }
        self.fetch_props(dataset).await
    }

    async fn check_existing(
        &self,
        dataset: &str,
        desc: &TableDescription,
        props: &DatasetProps,
    ) -> Result<(), KvError> {
        let kind = layout::kind_from_key_schema(desc.key_schema());
        if kind != props.kind {
            let ttl = self.read_ttl(dataset).await.unwrap_or(None);
            return Err(KvError::DatasetConflict {
                dataset: dataset.to_string(),
                existing: DatasetProps { kind, ttl }.describe(),
                requested: props.describe(),
            });
        }
        if desc.table_status() != Some(&TableStatus::Active) {
            self.wait_active(&self.table_name(dataset), Some(dataset))
                .await?;
        }
        Ok(())
    }

    async fn create_inner(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        let table = self.table_name(dataset);
        if let Some(desc) = self.describe(&table, Some(dataset)).await? {
            return self.check_existing(dataset, &desc, props).await;
        }
        // The TTL row goes first, so no client ever sees the table without its TTL.
        self.write_meta(dataset, props).await?;
        let ctx = "CreateTable";
        let mut defs = vec![AttributeDefinition::builder()
            .attribute_name(KEY_ATTR)
            .attribute_type(ScalarAttributeType::B)
            .build()
            .map_err(|e| build_err(ctx, e))?];
        let mut schema = vec![KeySchemaElement::builder()
            .attribute_name(KEY_ATTR)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| build_err(ctx, e))?];
        if props.kind == DatasetKind::TimeSeries {
            defs.push(
                AttributeDefinition::builder()
                    .attribute_name(TS_ATTR)
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .map_err(|e| build_err(ctx, e))?,
            );
            schema.push(
                KeySchemaElement::builder()
                    .attribute_name(TS_ATTR)
                    .key_type(KeyType::Range)
                    .build()
                    .map_err(|e| build_err(ctx, e))?,
            );
        }
        let res = self
            .limited(
                self.client
                    .create_table()
                    .table_name(&table)
                    .billing_mode(BillingMode::PayPerRequest)
                    .set_attribute_definitions(Some(defs))
                    .set_key_schema(Some(schema))
                    .send(),
            )
            .await;
        match res {
            Ok(_) => {}
            Err(e) if code_of(&e) == "ResourceInUseException" => {
                // Another client created it meanwhile: same rules as an existing table.
                if let Some(desc) = self.describe(&table, Some(dataset)).await? {
                    return self.check_existing(dataset, &desc, props).await;
                }
            }
            Err(e) => return Err(map_sdk_err(e, self.op("CreateTable", Some(dataset)))),
        }
        self.wait_active(&table, Some(dataset)).await?;
        // Chronon enables TTL on attribute "ttl" right after creating the table.
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(layout::TTL_ATTR)
            .build()
            .map_err(|e| build_err("UpdateTimeToLive", e))?;
        let res = self
            .limited(
                self.client
                    .update_time_to_live()
                    .table_name(&table)
                    .time_to_live_specification(spec)
                    .send(),
            )
            .await;
        match res {
            Ok(_) => {}
            Err(e) if message_of(&e).contains("already enabled") => {}
            Err(e) => return Err(map_sdk_err(e, self.op("UpdateTimeToLive", Some(dataset)))),
        }
        self.remember(dataset, *props);
        Ok(())
    }

    async fn drop_inner(&self, dataset: &str) -> Result<(), KvError> {
        let table = self.table_name(dataset);
        self.forget(dataset);
        loop {
            let res = self
                .limited(self.client.delete_table().table_name(&table).send())
                .await;
            match res {
                Ok(_) => break,
                Err(e) if code_of(&e) == "ResourceNotFoundException" => break,
                // Being created or updated: wait until it settles, then delete.
                Err(e) if code_of(&e) == "ResourceInUseException" => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(map_sdk_err(e, self.op("DeleteTable", Some(dataset)))),
            }
        }
        self.wait_gone(&table, dataset).await?;
        self.delete_meta(dataset).await?;
        self.forget(dataset);
        Ok(())
    }

    // ----- reads ------------------------------------------------------------------------------

    /// One `BatchGetItem` of at most 100 distinct keys, with `UnprocessedKeys` resent.
    async fn batch_get_chunk(
        &self,
        dataset: &str,
        table: &str,
        keys: &[Bytes],
    ) -> Result<Vec<(Bytes, TimedValue)>, KvError> {
        let ctx = format!("BatchGetItem on dataset {dataset:?}");
        let request = KeysAndAttributes::builder()
            .set_keys(Some(
                keys.iter()
                    .map(|k| layout::primary_key(DatasetKind::Snapshot, k, 0))
                    .collect(),
            ))
            .consistent_read(true)
            .build()
            .map_err(|e| build_err(&ctx, e))?;
        let first = HashMap::from([(table.to_string(), request)]);
        let rounds = until_processed(
            first,
            &self.options.retry,
            &ctx,
            |request_items: HashMap<String, KeysAndAttributes>| async move {
                let sent: usize = request_items.values().map(|k| k.keys().len()).sum();
                let out = self
                    .limited(
                        self.client
                            .batch_get_item()
                            .set_request_items(Some(request_items))
                            .send(),
                    )
                    .await
                    .map_err(|e| map_sdk_err(e, self.op("BatchGetItem", Some(dataset))))?;
                let items = out
                    .responses
                    .and_then(|mut r| r.remove(table))
                    .unwrap_or_default();
                let unprocessed = out
                    .unprocessed_keys
                    .filter(|m| m.values().any(|k| !k.keys().is_empty()));
                let left: usize = unprocessed
                    .as_ref()
                    .map(|m| m.values().map(|k| k.keys().len()).sum())
                    .unwrap_or(0);
                Ok(Round {
                    output: items,
                    unprocessed,
                    progress: left < sent,
                })
            },
        )
        .await?;
        rounds
            .into_iter()
            .flatten()
            .map(|item| {
                Ok((
                    layout::item_key(&item, dataset)?,
                    layout::timed_value(&item, dataset)?,
                ))
            })
            .collect()
    }

    /// The versions of one key in a `TimeSeries` table through `Query`: the newest visible one
    /// (`ScanIndexForward=false`, `Limit 1`) or all in `[max(start, ttl cut), end]`, oldest first,
    /// following pagination to the end.
    async fn query_versions(
        &self,
        dataset: &str,
        table: &str,
        key: &Bytes,
        range: Option<(i64, Option<i64>)>,
        visible_from: Option<i64>,
    ) -> Result<Vec<TimedValue>, KvError> {
        let mut q = self
            .client
            .query()
            .table_name(table)
            .consistent_read(true)
            .expression_attribute_names("#k", KEY_ATTR)
            .expression_attribute_values(":k", layout::blob(key));
        match range {
            None => {
                q = q.scan_index_forward(false).limit(1);
                q = match visible_from {
                    Some(cut) => q
                        .key_condition_expression("#k = :k AND #t >= :lo")
                        .expression_attribute_names("#t", TS_ATTR)
                        .expression_attribute_values(":lo", layout::num(cut)),
                    None => q.key_condition_expression("#k = :k"),
                };
            }
            Some((start, end)) => {
                let lo = visible_from.map_or(start, |cut| start.max(cut));
                let hi = end.unwrap_or(i64::MAX);
                if lo > hi {
                    return Ok(Vec::new());
                }
                q = q
                    .scan_index_forward(true)
                    .key_condition_expression("#k = :k AND #t BETWEEN :lo AND :hi")
                    .expression_attribute_names("#t", TS_ATTR)
                    .expression_attribute_values(":lo", layout::num(lo))
                    .expression_attribute_values(":hi", layout::num(hi));
            }
        }
        let mut out = Vec::new();
        let mut start_key: Option<Item> = None;
        loop {
            let page = self
                .limited(q.clone().set_exclusive_start_key(start_key.take()).send())
                .await
                .map_err(|e| map_sdk_err(e, self.op("Query", Some(dataset))))?;
            for item in page.items.unwrap_or_default() {
                out.push(layout::timed_value(&item, dataset)?);
            }
            match page.last_evaluated_key {
                // A latest-only query asked for one item and has it (or nothing is left).
                Some(k) if range.is_some() && !k.is_empty() => start_key = Some(k),
                _ => break,
            }
        }
        out.sort_by_key(|v| v.millis);
        Ok(out)
    }

    /// Answers the requests `indexes` (all on `dataset`).
    async fn get_dataset(
        &self,
        dataset: &str,
        indexes: &[usize],
        requests: &[GetRequest],
    ) -> Vec<(usize, Result<Vec<TimedValue>, KvError>)> {
        let fail_all = |e: &KvError| {
            indexes
                .iter()
                .map(|i| (*i, Err(e.clone())))
                .collect::<Vec<_>>()
        };
        let props = match self.props(dataset).await {
            Ok(p) => p,
            Err(e) => return fail_all(&e),
        };
        let cut = batch::visible_from(&props);
        let table = self.table_name(dataset);
        let answers: Vec<(usize, Result<Vec<TimedValue>, KvError>)> = match props.kind {
            DatasetKind::Snapshot => {
                // BatchGetItem rejects a request that names the same key twice: ask once per key.
                let mut seen = HashSet::new();
                let keys: Vec<Bytes> = indexes
                    .iter()
                    .map(|i| requests[*i].key.clone())
                    .filter(|k| seen.insert(k.clone()))
                    .collect();
                let chunks: Vec<Vec<Bytes>> =
                    keys.chunks(GET_BATCH).map(<[Bytes]>::to_vec).collect();
                let table = table.as_str();
                let results: Vec<ChunkAnswer<Bytes, (Bytes, TimedValue)>> =
                    futures::stream::iter(chunks)
                        .map(|chunk: Vec<Bytes>| async move {
                            let result = self.batch_get_chunk(dataset, table, &chunk).await;
                            (chunk, result)
                        })
                        .buffer_unordered(self.options.max_in_flight.max(1))
                        .collect()
                        .await;
                let mut found: HashMap<Bytes, Result<Option<TimedValue>, KvError>> =
                    HashMap::with_capacity(keys.len());
                for (chunk, result) in results {
                    match result {
                        Ok(items) => {
                            for k in &chunk {
                                found.insert(k.clone(), Ok(None));
                            }
                            for (k, v) in items {
                                found.insert(k, Ok(Some(v)));
                            }
                        }
                        Err(e) => {
                            for k in chunk {
                                found.insert(k, Err(e.clone()));
                            }
                        }
                    }
                }
                indexes
                    .iter()
                    .map(|i| {
                        let req = &requests[*i];
                        let answer = match found.get(&req.key) {
                            Some(Ok(v)) => Ok(select_versions(v.clone(), req, cut)),
                            Some(Err(e)) => Err(e.clone()),
                            None => Ok(Vec::new()),
                        };
                        (*i, answer)
                    })
                    .collect()
            }
            DatasetKind::TimeSeries => {
                // Identical requests share one query.
                let mut groups: HashMap<(Bytes, Option<i64>, Option<i64>), Vec<usize>> =
                    HashMap::new();
                for i in indexes {
                    let r = &requests[*i];
                    groups
                        .entry((r.key.clone(), r.start_ts, r.end_ts))
                        .or_default()
                        .push(*i);
                }
                let table = table.as_str();
                let results: Vec<ChunkAnswer<usize, TimedValue>> = futures::stream::iter(groups)
                    .map(
                        |((key, start, end), idxs): (
                            (Bytes, Option<i64>, Option<i64>),
                            Vec<usize>,
                        )| async move {
                            let range = start.map(|s| (s, end));
                            (
                                idxs,
                                self.query_versions(dataset, table, &key, range, cut).await,
                            )
                        },
                    )
                    .buffer_unordered(self.options.max_in_flight.max(1))
                    .collect()
                    .await;
                results
                    .into_iter()
                    .flat_map(|(idxs, result)| {
                        idxs.into_iter().map(move |i| {
                            let answer = match &result {
                                Ok(v) => Ok(select_versions(v.iter().cloned(), &requests[i], cut)),
                                Err(e) => Err(e.clone()),
                            };
                            (i, answer)
                        })
                    })
                    .collect()
            }
        };
        if answers
            .iter()
            .any(|(_, r)| matches!(r, Err(KvError::DatasetNotFound { .. })))
        {
            self.forget(dataset);
        }
        answers
    }

    // ----- writes -----------------------------------------------------------------------------

    /// One `BatchWriteItem` of at most 25 items with distinct keys, `UnprocessedItems` resent.
    async fn write_chunk(
        &self,
        dataset: &str,
        table: &str,
        writes: Vec<WriteRequest>,
    ) -> Result<(), KvError> {
        let ctx = format!("BatchWriteItem on dataset {dataset:?}");
        let first = HashMap::from([(table.to_string(), writes)]);
        until_processed(
            first,
            &self.options.retry,
            &ctx,
            |request_items: HashMap<String, Vec<WriteRequest>>| async move {
                let sent: usize = request_items.values().map(Vec::len).sum();
                let out = self
                    .limited(
                        self.client
                            .batch_write_item()
                            .set_request_items(Some(request_items))
                            .send(),
                    )
                    .await
                    .map_err(|e| map_sdk_err(e, self.op("BatchWriteItem", Some(dataset))))?;
                let unprocessed = out
                    .unprocessed_items
                    .filter(|m| m.values().any(|w| !w.is_empty()));
                let left: usize = unprocessed
                    .as_ref()
                    .map(|m| m.values().map(Vec::len).sum())
                    .unwrap_or(0);
                Ok(Round {
                    output: (),
                    unprocessed,
                    progress: left < sent,
                })
            },
        )
        .await
        .map(|_| ())
    }

    /// Writes the puts of one dataset. Puts of the same item (same key, and same ts on a
    /// `TimeSeries` table) are merged, last one wins, because `BatchWriteItem` rejects a
    /// request naming one item twice and concurrent chunks have no order; every merged put gets
    /// the result of the write that carried it.
    async fn put_dataset(
        &self,
        dataset: &str,
        puts: Vec<OwnedPut>,
    ) -> Vec<(usize, Result<(), KvError>)> {
        let props = match self.props(dataset).await {
            Ok(p) => p,
            Err(e) => {
                return puts
                    .into_iter()
                    .map(|p| (p.index, Err(e.clone())))
                    .collect()
            }
        };
        let ttl = props.ttl_millis();
        let table = self.table_name(dataset);
        let mut position: HashMap<(Bytes, i64), usize> = HashMap::new();
        let mut unique: Vec<(OwnedPut, Vec<usize>)> = Vec::new();
        for p in puts {
            let id = (
                p.key.clone(),
                if props.kind == DatasetKind::TimeSeries {
                    p.ts
                } else {
                    0
                },
            );
            match position.get(&id) {
                Some(&at) => {
                    unique[at].1.push(p.index);
                    unique[at].0 = p;
                }
                None => {
                    position.insert(id, unique.len());
                    let index = p.index;
                    unique.push((p, vec![index]));
                }
            }
        }
        let mut chunks: Vec<(Vec<WriteRequest>, Vec<usize>)> = Vec::new();
        for group in unique.chunks(PUT_BATCH) {
            let mut writes = Vec::with_capacity(group.len());
            let mut idxs = Vec::new();
            for (p, indexes) in group {
                let item = layout::item(&p.key, &p.value, p.ts, ttl);
                match DdbPutRequest::builder().set_item(Some(item)).build() {
                    Ok(put) => {
                        writes.push(WriteRequest::builder().put_request(put).build());
                        idxs.extend_from_slice(indexes);
                    }
                    Err(e) => {
                        // Only possible without an item, which `layout::item` always gives.
                        let err = build_err("BatchWriteItem", e);
                        return unique
                            .iter()
                            .flat_map(|(_, idxs)| idxs.iter().map(|i| (*i, Err(err.clone()))))
                            .collect();
                    }
                }
            }
            chunks.push((writes, idxs));
        }
        let results: Vec<(Vec<usize>, Result<(), KvError>)> = futures::stream::iter(chunks)
            .map(|(writes, idxs): (Vec<WriteRequest>, Vec<usize>)| {
                let table = table.as_str();
                async move { (idxs, self.write_chunk(dataset, table, writes).await) }
            })
            .buffer_unordered(self.options.max_in_flight.max(1))
            .collect()
            .await;
        let answers: Vec<(usize, Result<(), KvError>)> = results
            .into_iter()
            .flat_map(|(idxs, r)| idxs.into_iter().map(move |i| (i, r.clone())))
            .collect();
        if answers
            .iter()
            .any(|(_, r)| matches!(r, Err(KvError::DatasetNotFound { .. })))
        {
            self.forget(dataset);
        }
        answers
    }

    // ----- list -------------------------------------------------------------------------------

    async fn list_inner(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        let props = self.props(dataset).await?;
        let cut = batch::visible_from(&props);
        let table = self.table_name(dataset);
        let limit = limit.max(1);
        let mut start = match &cursor {
            Some(c) => Some(layout::decode_cursor(c, props.kind, dataset)?),
            None => None,
        };
        let mut entries: Vec<(Bytes, TimedValue)> = Vec::new();
        // The key being read: its newest version so far. All versions of a key are contiguous in
        // a Scan (one item collection, in sort key order), so a key is complete once the next
        // key shows up or the scan ends.
        let mut current: Option<(Bytes, TimedValue)> = None;
        let page_size = i32::try_from((limit + 1).min(1000)).unwrap_or(1000);
        loop {
            let page = self
                .limited(
                    self.client
                        .scan()
                        .table_name(&table)
                        .consistent_read(true)
                        .limit(page_size)
                        .set_exclusive_start_key(start.take())
                        .send(),
                )
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    let err = map_sdk_err(e, self.op("Scan", Some(dataset)));
                    if matches!(err, KvError::DatasetNotFound { .. }) {
                        self.forget(dataset);
                    }
                    return Err(err);
                }
            };
            for item in page.items.unwrap_or_default() {
                let key = layout::item_key(&item, dataset)?;
                let value = layout::timed_value(&item, dataset)?;
                match &mut current {
                    Some((k, newest)) if *k == key => {
                        if value.millis >= newest.millis {
                            *newest = value;
                        }
                    }
                    _ => {
                        if let Some((k, newest)) = current.take() {
                            let last_ts = newest.millis;
                            if cut.is_none_or(|c| newest.millis >= c) {
                                entries.push((k.clone(), newest));
                            }
                            if entries.len() >= limit {
                                // `key` proves there is more; continue after `k`'s last version.
                                return Ok(ListPage {
                                    entries,
                                    next: Some(layout::encode_cursor(props.kind, &k, last_ts)),
                                });
                            }
                        }
                        current = Some((key, value));
                    }
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        if let Some((k, newest)) = current {
            if cut.is_none_or(|c| newest.millis >= c) {
                entries.push((k, newest));
            }
        }
        Ok(ListPage {
            entries,
            next: None,
        })
    }

    fn target(groups: &std::collections::BTreeMap<String, Vec<usize>>) -> String {
        match groups.len() {
            1 => groups.keys().next().cloned().unwrap_or_default(),
            n => format!("{n} datasets"),
        }
    }
}

#[async_trait]
impl KvStore for DynamoStore {
    fn backend(&self) -> &str {
        SCHEME
    }

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        with_timeout(
            self.options.admin_timeout,
            "create",
            dataset,
            self.create_inner(dataset, props),
        )
        .await
    }

    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        with_timeout(
            self.options.admin_timeout,
            "drop_dataset",
            dataset,
            self.drop_inner(dataset),
        )
        .await
    }

    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        validate::dataset_name(dataset)?;
        with_timeout(
            self.options.timeout,
            "dataset_props",
            dataset,
            self.fetch_props(dataset),
        )
        .await
    }

    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        let mut batch = GetBatch::new(requests);
        if batch.is_done() {
            return batch.finish(SCHEME);
        }
        let groups = batch.pending_by_dataset();
        let target = Self::target(&groups);
        let work = async {
            let requests = batch.requests();
            let per_dataset = futures::future::join_all(
                groups
                    .iter()
                    .map(|(dataset, idxs)| self.get_dataset(dataset, idxs, requests)),
            )
            .await;
            Ok(per_dataset.into_iter().flatten().collect::<Vec<_>>())
        };
        match with_timeout(self.options.timeout, "multi_get", &target, work).await {
            Ok(answers) => {
                for (i, r) in answers {
                    batch.answer(i, r);
                }
            }
            Err(e) => batch.fail_pending(&e),
        }
        batch.finish(SCHEME)
    }

    async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        let mut batch = PutBatch::new(requests, &self.caps);
        let groups = batch.pending_by_dataset();
        if groups.is_empty() {
            return batch.finish(SCHEME);
        }
        let target = Self::target(&groups);
        let work: Vec<(String, Vec<OwnedPut>)> = groups
            .iter()
            .map(|(dataset, idxs)| {
                let puts = idxs
                    .iter()
                    .map(|i| {
                        let p = batch.get(*i);
                        OwnedPut {
                            index: *i,
                            key: p.key.clone(),
                            value: p.value.clone(),
                            ts: p.ts,
                        }
                    })
                    .collect();
                (dataset.clone(), puts)
            })
            .collect();
        let run = async {
            let per_dataset = futures::future::join_all(
                work.into_iter()
                    .map(|(dataset, puts)| async move { self.put_dataset(&dataset, puts).await }),
            )
            .await;
            Ok(per_dataset.into_iter().flatten().collect::<Vec<_>>())
        };
        match with_timeout(self.options.timeout, "multi_put", &target, run).await {
            Ok(answers) => {
                for (i, r) in answers {
                    batch.answer(i, r);
                }
            }
            Err(e) => batch.fail_pending(&e),
        }
        batch.finish(SCHEME)
    }

    async fn list(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        validate::dataset_name(dataset)?;
        with_timeout(
            self.options.timeout,
            "list",
            dataset,
            self.list_inner(dataset, limit, cursor),
        )
        .await
    }

    /// Parallel `BatchWriteItem`s: rows are pulled in slices of `25 * max_in_flight` and each
    /// slice is written by `multi_put` (its chunks of 25 run concurrently), two slices at a time.
    /// Idempotent: a row rewrites the same item. Chronon's JVM store uses S3 `ImportTable`
    /// instead; see the README for how that would slot in.
    async fn bulk_put(
        &self,
        dataset: &str,
        rows: BulkSource<'_>,
        options: BulkPutOptions,
    ) -> Result<BulkPutReport, KvError> {
        validate::dataset_name(dataset)?;
        with_timeout(
            self.options.timeout,
            "bulk_put",
            dataset,
            self.props(dataset),
        )
        .await?;
        let slice = PUT_BATCH * self.options.max_in_flight.max(1);
        let written = std::sync::atomic::AtomicU64::new(0);
        let (written, progress) = (&written, &options.progress);
        rows.try_chunks(slice)
            .map_err(|e| e.1)
            .map_ok(|chunk| async move {
                let n = chunk.len() as u64;
                let puts = chunk
                    .into_iter()
                    .map(|r| PutRequest::new(dataset, r.key, r.value, Some(r.ts)))
                    .collect();
                for result in self.multi_put(puts).await {
                    result?;
                }
                let total = written.fetch_add(n, Ordering::Relaxed) + n;
                if let Some(p) = progress {
                    p(total);
                }
                Ok::<_, KvError>(())
            })
            .try_buffer_unordered(2)
            .try_collect::<()>()
            .await?;
        Ok(BulkPutReport {
            rows: written.load(Ordering::Relaxed),
        })
    }
}
