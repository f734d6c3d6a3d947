//! [`RocksStore`]: the `KvStore` on an embedded RocksDB directory; its methods hand each call to
//! `datasets`, `read` or `write`.

use async_trait::async_trait;
use chronon_core::{
    BulkPutOptions, BulkPutReport, BulkSource, Capabilities, DatasetProps, GetRequest, GetResponse,
    KvError, KvStore, ListCursor, ListPage, PutRequest,
};

use crate::client::{self, Client};
use crate::config::{RocksOptions, BACKEND};
use crate::{datasets, layout, read, write};

/// A Chronon `KvStore` on an embedded RocksDB directory.
///
/// One column family per dataset, the dataset's kind and TTL in the `chronon.meta` column family,
/// and a key layout that keeps a key's versions adjacent in ts order (see the crate's README).
/// Every RocksDB call runs on tokio's blocking pool (at most [`RocksOptions::blocking_threads`]
/// at once) under [`RocksOptions::timeout`], never on an async worker thread.
///
/// RocksDB lets one process open a directory at a time; a second open gets
/// `KvError::Unavailable` naming the directory. Clones share the one open database.
#[derive(Clone)]
pub struct RocksStore {
    client: Client,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("directory", &self.client.address())
            .field("options", self.client.options())
            .finish()
    }
}

impl RocksStore {
    /// The largest value accepted. RocksDB itself takes far larger values, but multi-megabyte
    /// features are a modelling mistake and would thrash the block cache.
    pub const MAX_VALUE_BYTES: usize = client::MAX_VALUE_BYTES;

    /// Opens (or creates) the database described by `options`, restoring every dataset's kind and
    /// TTL from its metadata column family.
    pub async fn open(options: RocksOptions) -> Result<RocksStore, KvError> {
        Ok(RocksStore {
            client: Client::open(options).await?,
        })
    }

    /// Opens the database at a `rocks:///abs/path/to/dir?cache_mb=64&...` URL (query keys in
    /// [`RocksOptions::from_url`]).
    pub async fn open_url(url: &str) -> Result<RocksStore, KvError> {
        Self::open(RocksOptions::from_url(url)?).await
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &RocksOptions {
        self.client.options()
    }

    /// The open RocksDB database, for what the `KvStore` API does not cover: properties and
    /// statistics, checkpoints, or reading a dataset's rows with the `rocksdb` crate itself (the
    /// benchmarks compare the adapter with exactly that, on this same database).
    ///
    /// Its calls block: make them from `spawn_blocking` or a thread of your own, not on an async
    /// worker. Rows written through it must follow the layout in the crate's README (see
    /// [`RocksStore::column_family`]); creating or dropping a dataset's column family through it
    /// leaves the store's record of datasets wrong until the directory is reopened.
    pub fn db(&self) -> &rocksdb::DBWithThreadMode<rocksdb::MultiThreaded> {
        &self.client.database().db
    }

    /// The name of the column family that holds `dataset`'s rows (whether or not it exists).
    pub fn column_family(dataset: &str) -> String {
        layout::cf_name(dataset)
    }

    /// Compacts a dataset's whole column family now, which also runs the TTL compaction filter
    /// (RocksDB otherwise compacts, and so drops expired rows, in the background as data grows).
    pub async fn compact_dataset(&self, dataset: &str) -> Result<(), KvError> {
        datasets::compact(&self.client, dataset).await
    }

    /// How many rows a dataset physically holds (every stored version, expired or not, until
    /// compaction removes it). For tests and tools; it scans the whole column family.
    pub async fn raw_row_count(&self, dataset: &str) -> Result<u64, KvError> {
        datasets::raw_row_count(&self.client, dataset).await
    }
}

#[async_trait]
impl KvStore for RocksStore {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        client::capabilities()
    }

    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        datasets::create(&self.client, dataset, props).await
    }

    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        datasets::drop_dataset(&self.client, dataset).await
    }

    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        datasets::props(&self.client, dataset)
    }

    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        read::multi_get(&self.client, requests).await
    }

    async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        write::multi_put(&self.client, requests).await
    }

    async fn list(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        read::list(&self.client, dataset, limit, cursor).await
    }

    async fn bulk_put(
        &self,
        dataset: &str,
        rows: BulkSource<'_>,
        options: BulkPutOptions,
    ) -> Result<BulkPutReport, KvError> {
        write::bulk_put(&self.client, dataset, rows, options).await
    }
}
