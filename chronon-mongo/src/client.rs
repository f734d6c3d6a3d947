//! [`Client`]: the state every operation shares (the driver's database handle, the metadata
//! collection, the options, the server's address, the dataset-metadata cache) and the small
//! helpers every operation uses: mapping driver errors, bounding a call by the timeout, and a
//! dataset's properties through the cache.

use std::collections::HashMap;
use std::future::Future;

use chronon_core::metadata_cache::{MetadataCache, DEFAULT_METADATA_CACHE_CAPACITY};
use chronon_core::{Capabilities, DatasetProps, ErrorContext, KvError};
use futures::TryStreamExt;
use mongodb::bson::{doc, Document, RawDocumentBuf};
use mongodb::options::{ClientOptions, DatabaseOptions};
use mongodb::{Collection, Database};

use crate::config::MongoOptions;
use crate::error::{map_error, BACKEND, CONNECT};
use crate::layout;

/// The connection and everything an operation needs to know about the server and datasets.
pub(crate) struct Client {
    pub(crate) driver: mongodb::Client,
    pub(crate) db: Database,
    /// The collection with each dataset's kind and TTL.
    pub(crate) meta: Collection<Document>,
    pub(crate) options: MongoOptions,
    /// `host:port[,host:port...]` of the servers, for `Unavailable` messages.
    pub(crate) address: String,
    /// The write concern as the document an `update` command carries.
    pub(crate) write_concern: Document,
    /// Dataset properties read within `metadata_cache_ttl`.
    props: MetadataCache<DatasetProps>,
}

/// Shuts the driver client down when the last store clone (which share this) is dropped.
///
/// Without it the driver only cleans up lazily after the last driver handle is gone: its RTT
/// monitor keeps its connection until its next heartbeat (`heartbeatFrequencyMS`, 10 s by
/// default), so a dropped store held a connection to the server for seconds (what
/// `tests/resources.rs` checks). `Client::shutdown` cancels the monitors and closes the pools now.
/// It first waits (up to the call timeout) for the driver's pending cleanup (cursors, sessions),
/// then shuts down without waiting. Needs a Tokio runtime at drop time, as the driver does;
/// without one the driver's own lazy cleanup applies.
impl Drop for Client {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (driver, grace) = (self.driver.clone(), self.options.timeout);
        runtime.spawn(async move {
            if tokio::time::timeout(grace, driver.clone().shutdown())
                .await
                .is_err()
            {
                driver.shutdown().immediate(true).await;
            }
        });
    }
}

impl Client {
    /// Connects to `options.uri` and checks the server answers (`ping`) within the timeout.
    ///
    /// The URI's own `w=`, `readPreference=` and read concern win over `options`; without
    /// `serverSelectionTimeoutMS` / `connectTimeoutMS` the driver uses a little under
    /// `options.timeout`, so an unreachable server is reported as `Unavailable` (naming the
    /// address and the cause) rather than a bare `Timeout`.
    pub(crate) async fn connect(mut options: MongoOptions) -> Result<Client, KvError> {
        options.validate()?;
        let uri = options.uri.clone();
        // Until the hosts are known, errors name the backend where they would name the address.
        let ctx = ErrorContext::new(BACKEND, CONNECT, BACKEND, options.timeout);
        let parse = async {
            ClientOptions::parse(&uri)
                .await
                .map_err(|e| map_error(e, ctx))
        };
        let mut client_options = ctx.with_timeout(parse).await?;
        let address = client_options
            .hosts
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join(",");
        client_options
            .server_selection_timeout
            .get_or_insert(options.timeout.mul_f64(0.9));
        client_options
            .connect_timeout
            .get_or_insert(options.timeout);
        if let Some(wc) = client_options.write_concern.clone() {
            options.write_concern = wc;
        }
        if let Some(sc) = client_options.selection_criteria.clone() {
            options.read_preference = sc;
        }
        if let Some(rc) = client_options.read_concern.clone() {
            options.read_concern = Some(rc);
        }
        let driver = mongodb::Client::with_options(client_options).map_err(|e| {
            map_error(
                e,
                ErrorContext::new(BACKEND, CONNECT, &address, options.timeout),
            )
        })?;
        // From here on, dropping the client (even when the ping below fails) shuts it down.
        let client = Self::wrap(driver, options, address)?;
        let ctx = client.ctx(CONNECT);
        let ping = async {
            client
                .db
                .run_command(doc! { "ping": 1 })
                .await
                .map(|_| ())
                .map_err(|e| map_error(e, ctx))
        };
        ctx.with_timeout(ping).await?;
        Ok(client)
    }

    /// The handles on `options.database` of a new driver client; `address` only appears in
    /// error messages.
    fn wrap(
        driver: mongodb::Client,
        options: MongoOptions,
        address: String,
    ) -> Result<Client, KvError> {
        let db_options = DatabaseOptions::builder()
            .write_concern(options.write_concern.clone())
            .selection_criteria(options.read_preference.clone())
            .read_concern(options.read_concern.clone())
            .build();
        let db = driver.database_with_options(&options.database, db_options);
        let meta = db.collection::<Document>(&options.metadata_collection);
        let write_concern = mongodb::bson::to_document(&options.write_concern)
            .map_err(|e| KvError::backend(BACKEND, "encoding the write concern", e))?;
        Ok(Client {
            driver,
            db,
            meta,
            props: MetadataCache::new(options.metadata_cache_ttl, DEFAULT_METADATA_CACHE_CAPACITY),
            options,
            address,
            write_concern,
        })
    }

    /// What this store accepts: values up to MongoDB's document limit, the batch sizes per call.
    pub(crate) fn capabilities(&self) -> Capabilities {
        Capabilities::new(
            layout::MAX_VALUE_BYTES,
            self.options.get_batch_size,
            self.options.put_batch_size,
        )
        .with_native_ttl()
        .with_persistence()
    }

    /// What a call of `operation` is doing, for its errors and its timeout.
    pub(crate) fn ctx(&self, operation: &'static str) -> ErrorContext<'_> {
        ErrorContext::new(BACKEND, operation, &self.address, self.options.timeout)
    }

    /// Maps a driver error of `operation` on `dataset` (datasets joined by `,` for a call on
    /// several).
    pub(crate) fn err(
        &self,
        e: mongodb::error::Error,
        operation: &'static str,
        dataset: &str,
    ) -> KvError {
        map_error(e, self.ctx(operation).dataset(dataset))
    }

    /// A dataset's collection, read and written as raw documents.
    pub(crate) fn raw(&self, dataset: &str) -> Collection<RawDocumentBuf> {
        self.db.collection::<RawDocumentBuf>(dataset)
    }

    /// Runs `fut`, a call of `operation` on `dataset`, under the call timeout.
    pub(crate) async fn timed<T>(
        &self,
        operation: &'static str,
        dataset: &str,
        fut: impl Future<Output = Result<T, KvError>>,
    ) -> Result<T, KvError> {
        self.ctx(operation).dataset(dataset).with_timeout(fut).await
    }

    /// Forgets what the cache holds of `dataset` (this client created or dropped it).
    pub(crate) fn forget(&self, dataset: &str) {
        self.props.forget(dataset);
    }

    /// [`Client::read_props`], reusing what was read within
    /// [`MongoOptions::metadata_cache_ttl`]: the path of every `multi_get`, `multi_put`, `list`.
    pub(crate) async fn resolve(
        &self,
        datasets: &[&str],
    ) -> Result<HashMap<String, DatasetProps>, KvError> {
        let mut out = HashMap::new();
        let mut misses = Vec::new();
        for &dataset in datasets {
            match self.props.get(dataset) {
                Some(props) => {
                    out.insert(dataset.to_string(), props);
                }
                None => misses.push(dataset),
            }
        }
        if misses.is_empty() {
            return Ok(out);
        }
        // Taken before the read: a create or drop by this client meanwhile voids what it reads.
        let ticket = self.props.ticket();
        let read = self.read_props(&misses).await?;
        for (dataset, props) in &read {
            self.props.insert(ticket, dataset, *props);
        }
        out.extend(read);
        Ok(out)
    }

    /// The properties of each named dataset that exists: from the metadata collection, or, for a
    /// collection without metadata (made by the JVM quickstart, whose `create` is a bare
    /// `createCollection`), Chronon's default for its name.
    pub(crate) async fn read_props(
        &self,
        datasets: &[&str],
    ) -> Result<HashMap<String, DatasetProps>, KvError> {
        let target = datasets.join(",");
        let mut out = HashMap::new();
        let mut cursor = self
            .meta
            .find(doc! { "_id": { "$in": datasets } })
            .await
            .map_err(|e| self.err(e, "reading dataset metadata", &target))?;
        while let Some(d) = cursor
            .try_next()
            .await
            .map_err(|e| self.err(e, "reading dataset metadata", &target))?
        {
            let (name, props) = layout::parse_meta(&d)
                .map_err(|m| KvError::backend_msg(BACKEND, "reading dataset metadata", m))?;
            out.insert(name, props);
        }
        let missing: Vec<&str> = datasets
            .iter()
            .copied()
            .filter(|d| !out.contains_key(*d))
            .collect();
        if !missing.is_empty() {
            let found = self
                .db
                .list_collection_names()
                .filter(doc! { "name": { "$in": &missing } })
                .await
                .map_err(|e| self.err(e, "listing collections", &target))?;
            for name in found {
                let props = DatasetProps::for_dataset(&name);
                out.insert(name, props);
            }
        }
        Ok(out)
    }

    /// One dataset's properties read now (not from the cache): `dataset_props` and `bulk_put`.
    pub(crate) async fn read_props_one(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        self.read_props(&[dataset])
            .await?
            .remove(dataset)
            .ok_or_else(|| KvError::not_found(dataset))
    }
}

#[cfg(test)]
mod tls_tests {
    use mongodb::options::{ClientOptions, Tls};

    use crate::config::MongoOptions;

    /// `tls=true` and the CA / client certificate options of a store URL reach the driver
    /// (rustls, the driver's default TLS), while the `chronon_*` parameters do not.
    #[tokio::test]
    async fn tls_options_of_the_url_reach_the_driver() {
        let url = url::Url::parse(
            "mongodb://db.example:27017/features?tls=true&tlsCAFile=/etc/chronon/ca.pem\
             &tlsCertificateKeyFile=/etc/chronon/client.pem&chronon_timeout_ms=500",
        )
        .unwrap();
        let options = MongoOptions::from_url(&url).unwrap();
        assert!(!options.uri.contains("chronon_"), "{}", options.uri);
        let driver = ClientOptions::parse(&options.uri).await.unwrap();
        match driver.tls {
            Some(Tls::Enabled(tls)) => {
                assert_eq!(tls.ca_file_path, Some("/etc/chronon/ca.pem".into()));
                assert_eq!(
                    tls.cert_key_file_path,
                    Some("/etc/chronon/client.pem".into())
                );
            }
            other => panic!("TLS not enabled: {other:?}"),
        }
        let plain = url::Url::parse("mongodb://db.example:27017/features").unwrap();
        let plain = ClientOptions::parse(&MongoOptions::from_url(&plain).unwrap().uri)
            .await
            .unwrap();
        assert!(!matches!(plain.tls, Some(Tls::Enabled(_))));
    }
}
