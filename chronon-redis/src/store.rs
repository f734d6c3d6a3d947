//! [`RedisStore`]: the `KvStore` on a Redis server, through the `redis` crate's
//! `ConnectionManager` (one multiplexed connection that reconnects by itself). Each method is a
//! thin call into [`crate::datasets`], [`crate::read`] or [`crate::write`].

use async_trait::async_trait;
use chronon_core::observe::{Call, Operation};
use chronon_core::{
    validate, Capabilities, DatasetProps, GetRequest, GetResponse, KvError, KvStore, ListCursor,
    ListPage, PutRequest,
};

use crate::client::Client;
use crate::config::RedisOptions;
use crate::error::BACKEND;
use crate::{datasets, read, write};

/// A Chronon online `KvStore` on Redis. Layout: see the crate README and [`crate::layout`].
///
/// Every call makes a handful of round trips whatever the batch size: requests go out as
/// pipelines of [`RedisOptions::chunk_size`], up to [`RedisOptions::max_in_flight`] at once,
/// and the dataset registry is read in the same round trip as the data (see
/// [`RedisStore::multi_get`]'s notes in the README: "optimistic registry check").
pub struct RedisStore {
    client: Client,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.client.address)
            .field("opts", &self.client.opts)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the server in `opts` and checks it answers (`PING`) within the timeout.
    /// A server that refuses or cannot be reached is `Unavailable` naming its address.
    pub async fn open(opts: RedisOptions) -> Result<RedisStore, KvError> {
        Ok(RedisStore {
            client: Client::connect(opts).await?,
        })
    }

    /// Opens a store from a `redis://` URL: `redis://[user:password@]host:port/db?prefix=chronon`
    /// (other parameters: [`RedisOptions::from_url`]).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), chronon_core::KvError> {
    /// let store = chronon_redis::RedisStore::open_url("redis://127.0.0.1:6379/0?prefix=chronon").await?;
    /// # Ok(()) }
    /// ```
    pub async fn open_url(url: &str) -> Result<RedisStore, KvError> {
        RedisStore::open(RedisOptions::from_url(url)?).await
    }

    /// The options this store runs with.
    pub fn options(&self) -> &RedisOptions {
        &self.client.opts
    }

    /// `host:port` of the server.
    pub fn address(&self) -> &str {
        &self.client.address
    }
}

#[async_trait]
impl KvStore for RedisStore {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.client.capabilities()
    }

    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        Call::on_dataset(BACKEND, Operation::Create, dataset)
            .run(async {
                validate::dataset_name(dataset)?;
                datasets::create(&self.client, dataset, props).await
            })
            .await
    }

    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        Call::on_dataset(BACKEND, Operation::DropDataset, dataset)
            .run(async {
                validate::dataset_name(dataset)?;
                datasets::drop_dataset(&self.client, dataset).await
            })
            .await
    }

    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        Call::on_dataset(BACKEND, Operation::DatasetProps, dataset)
            .run(async {
                validate::dataset_name(dataset)?;
                datasets::dataset_props(&self.client, dataset).await
            })
            .await
    }

    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        Call::gets(BACKEND, &requests)
            .run(async { read::multi_get(&self.client, requests).await })
            .await
    }

    async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        Call::puts(BACKEND, &requests)
            .run(async { write::multi_put(&self.client, requests).await })
            .await
    }

    async fn list(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        Call::on_dataset(BACKEND, Operation::List, dataset)
            .run(async {
                validate::dataset_name(dataset)?;
                read::list(&self.client, dataset, limit, cursor).await
            })
            .await
    }
}
