//! `ScyllaStore`: the public store type, how to open one, and the [`KvStore`] implementation,
//! whose methods hand each call to the datasets, read and write modules.

use std::sync::Arc;

use async_trait::async_trait;
use chronon_core::observe::{Call, Operation};
use chronon_core::{
    Capabilities, DatasetProps, GetRequest, GetResponse, KvError, KvStore, ListCursor, ListPage,
    PutRequest,
};
use scylla::client::session::Session;

use crate::client::Client;
use crate::config::{ScyllaOptions, BACKEND};

/// A Chronon online [`KvStore`] on ScyllaDB or Apache Cassandra.
///
/// Layout: keyspace `chronon` (configurable); per dataset a table `(key blob, ts bigint, value
/// blob)` with `PRIMARY KEY (key)` for a `Snapshot` and `PRIMARY KEY ((key), ts)` clustered
/// newest first for a `TimeSeries`; a `datasets` table keeps each dataset's kind, TTL and
/// physical table name (names longer than CQL's 48 characters are mapped to a hashed name).
///
/// Every read and write is a prepared statement with all key columns bound, so the driver's
/// default token-aware load balancing sends it straight to a replica. `multi_get` and
/// `multi_put` run one statement per request, concurrently, with at most
/// [`ScyllaOptions::max_in_flight`] requests in flight per store; there is no multi-partition
/// `BATCH` (it would route every write through one coordinator and is slower, not faster).
///
/// Cloning is cheap and clones share the session.
#[derive(Clone)]
pub struct ScyllaStore {
    client: Arc<Client>,
}

impl std::fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("contact_points", &self.client.address)
            .field("keyspace", &self.client.options.keyspace)
            .field("consistency", &self.client.options.consistency)
            .finish()
    }
}

impl ScyllaStore {
    /// Connects to the cluster, creates the keyspace and the `datasets` table when missing
    /// (unless [`ScyllaOptions::create_keyspace`] is off), and prepares the metadata statements.
    ///
    /// Options that cannot work are `Config`; nothing listening is `Unavailable` naming the
    /// contact points; no answer within [`ScyllaOptions::timeout`] is `Timeout`.
    pub async fn open(options: ScyllaOptions) -> Result<ScyllaStore, KvError> {
        Ok(ScyllaStore {
            client: Arc::new(Client::connect(options).await?),
        })
    }

    /// Opens a store from a `scylla://` URL (see [`ScyllaOptions::from_url`] for the format),
    /// several hosts with their ports included:
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), chronon_core::KvError> {
    /// let store = chronon_scylla::ScyllaStore::open_url(
    ///     "scylla://host1:9042,host2:9042/chronon?consistency=local_quorum",
    /// )
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn open_url(url: &str) -> Result<ScyllaStore, KvError> {
        ScyllaStore::open(ScyllaOptions::from_url(url)?).await
    }

    /// The options this store was opened with.
    pub fn options(&self) -> &ScyllaOptions {
        &self.client.options
    }

    /// The driver session, for callers that need CQL the adapter does not offer.
    pub fn session(&self) -> &Session {
        &self.client.session
    }
}

#[async_trait]
impl KvStore for ScyllaStore {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.client.caps
    }

    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        Call::on_dataset(BACKEND, Operation::Create, dataset)
            .run(async { self.client.create(dataset, props).await })
            .await
    }

    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        Call::on_dataset(BACKEND, Operation::DropDataset, dataset)
            .run(async { self.client.drop_dataset(dataset).await })
            .await
    }

    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        Call::on_dataset(BACKEND, Operation::DatasetProps, dataset)
            .run(async { self.client.dataset_props(dataset).await })
            .await
    }

    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        Call::gets(BACKEND, &requests)
            .run(async { self.client.multi_get(requests).await })
            .await
    }

    async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        Call::puts(BACKEND, &requests)
            .run(async { self.client.multi_put(requests).await })
            .await
    }

    async fn list(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        Call::on_dataset(BACKEND, Operation::List, dataset)
            .run(async { self.client.list(dataset, limit, cursor).await })
            .await
    }
}
