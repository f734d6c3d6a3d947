//! [`DynamoStore`]: the `KvStore` on DynamoDB, in Chronon's table layout (see `layout.rs`); its
//! methods hand each call to `datasets.rs`, `read.rs` or `write.rs`.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chronon_core::observe::{BulkOutcome, Call, Operation};
use chronon_core::{
    BulkPutOptions, BulkPutReport, BulkSource, Capabilities, DatasetProps, GetRequest, GetResponse,
    KvError, KvStore, ListCursor, ListPage, PutRequest,
};

use crate::client::{connect_sdk, DynamoClient};
use crate::config::{DynamoOptions, SCHEME};
use crate::{datasets, read, write};

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
    client: DynamoClient,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("address", &self.client.address)
            .field("options", &self.client.options)
            .finish()
    }
}

impl DynamoStore {
    /// Connects with `options` (checked by [`DynamoOptions::validate`]): region and credentials
    /// from the options, else the AWS chain (with dummy static credentials for a loopback
    /// endpoint when the environment has none, as DynamoDB Local accepts any).
    pub async fn open(options: DynamoOptions) -> Result<Self, KvError> {
        options.validate()?;
        let sdk = connect_sdk(&options).await?;
        Ok(Self::from_client(sdk, options))
    }

    /// Opens a store from a `dynamodb://` URL (see [`DynamoOptions::from_url`]), for example
    /// `dynamodb://?endpoint=http://127.0.0.1:8000&region=us-west-2&prefix=chronon_`.
    pub async fn open_url(url: &str) -> Result<Self, KvError> {
        Self::open(DynamoOptions::from_url(url)?).await
    }

    /// A store on an SDK client you configured yourself (`options.endpoint`/`region`/`credentials`
    /// are then only used in messages).
    pub fn from_client(client: Client, options: DynamoOptions) -> Self {
        DynamoStore {
            client: DynamoClient::new(client, options),
        }
    }

    /// The SDK client (for tools that need a call this store does not make).
    pub fn client(&self) -> &Client {
        &self.client.sdk
    }

    /// The options this store runs with.
    pub fn options(&self) -> &DynamoOptions {
        &self.client.options
    }

    /// The physical table of `dataset` (`prefix + dataset`).
    pub fn table_name(&self, dataset: &str) -> String {
        self.client.table_name(dataset)
    }
}

#[async_trait]
impl KvStore for DynamoStore {
    fn backend(&self) -> &str {
        SCHEME
    }

    fn capabilities(&self) -> Capabilities {
        self.client.caps
    }

    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        Call::on_dataset(SCHEME, Operation::Create, dataset)
            .run(async { datasets::create(&self.client, dataset, props).await })
            .await
    }

    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        Call::on_dataset(SCHEME, Operation::DropDataset, dataset)
            .run(async { datasets::drop_dataset(&self.client, dataset).await })
            .await
    }

    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        Call::on_dataset(SCHEME, Operation::DatasetProps, dataset)
            .run(async { datasets::dataset_props(&self.client, dataset).await })
            .await
    }

    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        Call::gets(SCHEME, &requests)
            .run(async { read::multi_get(&self.client, requests).await })
            .await
    }

    async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        Call::puts(SCHEME, &requests)
            .run(async { write::multi_put(&self.client, requests).await })
            .await
    }

    async fn list(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        Call::on_dataset(SCHEME, Operation::List, dataset)
            .run(async { read::list(&self.client, dataset, limit, cursor).await })
            .await
    }

    /// Parallel `BatchWriteItem`s (see the README for how S3 `ImportTable`, which Chronon's JVM
    /// store uses, would slot in).
    async fn bulk_put(
        &self,
        dataset: &str,
        rows: BulkSource<'_>,
        options: BulkPutOptions,
    ) -> Result<BulkPutReport, KvError> {
        Call::on_dataset(SCHEME, Operation::BulkPut, dataset)
            .run(async { BulkOutcome(write::bulk_put(&self.client, dataset, rows, options).await) })
            .await
            .0
    }
}
