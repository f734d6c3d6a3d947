//! [`MongoStore`]: the public store, its constructors, and the `KvStore` implementation, whose
//! methods are thin calls into `datasets`, `read` and `write`.

use std::sync::Arc;

use async_trait::async_trait;
use chronon_core::config::redact_url;
use chronon_core::observe::{BulkOutcome, Call, Operation};
use chronon_core::{
    BulkPutOptions, BulkPutReport, BulkSource, Capabilities, DatasetProps, GetRequest, GetResponse,
    KvError, KvStore, ListCursor, ListPage, PutRequest,
};
use mongodb::Database;

use crate::client::Client;
use crate::config::MongoOptions;
use crate::error::BACKEND;
use crate::{datasets, read, write};

/// A Chronon `KvStore` on a MongoDB database (see the crate docs for the layout).
///
/// Cheap to clone (clones share one driver client, its connection pool and the metadata cache,
/// so a clone's `drop_dataset` is seen by the others at once). The store owns its driver client:
/// when the last clone is dropped, the client is shut down, which closes every pooled and
/// monitoring connection at once instead of within the driver's 10 s heartbeat.
#[derive(Clone)]
pub struct MongoStore {
    client: Arc<Client>,
}

impl std::fmt::Debug for MongoStore {
    // Hand-written so credentials in the connection string never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoStore")
            .field("address", &self.client.address)
            .field("database", &self.client.options.database)
            .field("timeout", &self.client.options.timeout)
            .finish()
    }
}

impl MongoStore {
    /// Connects to `options.uri` (a standard MongoDB connection string) and checks the server
    /// answers.
    ///
    /// The URI's own `w=` and `readPreference=` win over `options`; without
    /// `serverSelectionTimeoutMS` / `connectTimeoutMS` the driver uses `options.timeout`, so an
    /// unreachable server is reported as `Unavailable` within the timeout.
    pub async fn open(options: MongoOptions) -> Result<MongoStore, KvError> {
        Ok(MongoStore {
            client: Arc::new(Client::connect(options).await?),
        })
    }

    /// Opens a store from a `mongodb://` URL: the driver's connection string plus this crate's
    /// `chronon_*` parameters (see [`MongoOptions::from_url`]).
    pub async fn open_url(url: &str) -> Result<MongoStore, KvError> {
        let parsed = url::Url::parse(url).map_err(|e| {
            KvError::config(BACKEND, format!("{} is not a URL: {e}", redact_url(url)))
        })?;
        Self::open(MongoOptions::from_url(&parsed)?).await
    }

    /// The driver database the datasets live in, for tools and raw access.
    ///
    /// It shares the store's driver client, which is shut down when the store's last clone is
    /// dropped, after which this handle's calls fail with "Client has been shut down". Keep the
    /// store alive as long as the handle is used.
    pub fn database(&self) -> &Database {
        &self.client.db
    }

    /// The options in effect (with the connection string's write concern and read preference).
    pub fn options(&self) -> &MongoOptions {
        &self.client.options
    }
}

#[async_trait]
impl KvStore for MongoStore {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.client.capabilities()
    }

    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        Call::on_dataset(BACKEND, Operation::Create, dataset)
            .run(async { datasets::create(&self.client, dataset, props).await })
            .await
    }

    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        Call::on_dataset(BACKEND, Operation::DropDataset, dataset)
            .run(async { datasets::drop_dataset(&self.client, dataset).await })
            .await
    }

    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        Call::on_dataset(BACKEND, Operation::DatasetProps, dataset)
            .run(async { datasets::dataset_props(&self.client, dataset).await })
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
            .run(async { read::list(&self.client, dataset, limit, cursor).await })
            .await
    }

    async fn bulk_put(
        &self,
        dataset: &str,
        rows: BulkSource<'_>,
        options: BulkPutOptions,
    ) -> Result<BulkPutReport, KvError> {
        Call::on_dataset(BACKEND, Operation::BulkPut, dataset)
            .run(async { BulkOutcome(write::bulk_put(&self.client, dataset, rows, options).await) })
            .await
            .0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn unreachable_server_is_unavailable_within_the_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
        let started = std::time::Instant::now();
        let err = MongoStore::open(MongoOptions::new(uri).with_timeout(Duration::from_millis(800)))
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(
            matches!(err, KvError::Unavailable { .. } | KvError::Timeout { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&port.to_string()), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
