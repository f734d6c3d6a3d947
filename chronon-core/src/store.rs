//! The `KvStore` trait (what an adapter writes) and `KvStoreExt` (helpers written once for all).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::batch;
use crate::error::KvError;
use crate::string_array;
use crate::types::{
    BulkPutOptions, BulkPutReport, BulkSource, Capabilities, DatasetProps, GetRequest, GetResponse,
    ListCursor, ListPage, PutRequest, TimedValue,
};

/// A key-value store that serves Chronon's online features (Chronon's `KVStore`).
///
/// Only the methods a backend must write live here; conveniences are in [`KvStoreExt`].
///
/// # Contract
///
/// The full contract is `chronon-core/CONTRACT.md`, and the `conformance` crate checks it. In short:
///
/// - **Datasets** are created before use with a [`DatasetKind`](crate::DatasetKind) (`Snapshot`:
///   one value per key; `TimeSeries`: one version per `(key, ts)`) and an optional TTL, which the
///   backend itself remembers. `create` is idempotent for the same properties and
///   `DatasetConflict` for a different kind. Using a missing dataset is `DatasetNotFound` for that
///   request only.
/// - **Keys** are 1–1024 arbitrary bytes, **values** arbitrary bytes up to
///   [`Capabilities::max_value_bytes`]; both round-trip exactly.
/// - **`multi_get`** answers request `i` in response `i`; `start_ts: None` is the latest version
///   only, `Some(s)` every version in `[s, end_ts]` oldest first; a missing key is `Ok(vec![])`;
///   each value carries its stored timestamp; a value older than the TTL is never returned.
/// - **`multi_put`** answers request `i` in result `i`; a put that returned `Ok` is durable and
///   visible to every client of the same database.
/// - One bad request never fails the rest of its batch, no input panics, and every call returns
///   within the adapter's timeout (`Timeout`), never hangs.
///
/// Validation shared by all adapters is in [`validate`](crate::validate) and the batch helpers
/// in [`batch`](crate::batch), so adapters stay thin.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use chronon_core::{DatasetProps, GetRequest, KvStore, KvStoreExt, MemoryStore, PutRequest};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), chronon_core::KvError> {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
/// store.create("PURCHASES_STREAMING", &DatasetProps::for_dataset("PURCHASES_STREAMING")).await?;
/// let puts = vec![
///     PutRequest::new("PURCHASES_STREAMING", "user_1", "10.0", Some(1_000)),
///     PutRequest::new("PURCHASES_STREAMING", "user_1", "12.5", Some(2_000)),
/// ];
/// assert!(store.multi_put(puts).await.iter().all(|r| r.is_ok()));
///
/// let all = store.multi_get(vec![GetRequest::range("PURCHASES_STREAMING", "user_1", 0, None)]).await;
/// assert_eq!(all[0].values.as_ref().unwrap().len(), 2);
/// let latest = store.get("PURCHASES_STREAMING", "user_1").await?.unwrap();
/// assert_eq!((latest.bytes.as_ref(), latest.millis), (&b"12.5"[..], 2_000));
/// # Ok(()) }
/// ```
#[async_trait]
pub trait KvStore: Send + Sync + std::fmt::Debug {
    /// The backend's short name (`memory`, `rocksdb`, `redis`, ...), used in reports and errors.
    fn backend(&self) -> &str;

    /// What this adapter can do and its limits.
    fn capabilities(&self) -> Capabilities;

    /// Creates `dataset` with `props`, or checks that it exists with the same kind.
    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError>;

    /// Removes `dataset` and all its data. Dropping a missing dataset is `Ok`.
    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError>;

    /// The properties `dataset` was created with, as the backend remembers them.
    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError>;

    /// Reads many keys at once; response `i` answers request `i`.
    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse>;

    /// Writes many values at once; result `i` answers request `i`.
    async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>>;

    /// One page of `(key, latest value)` pairs, at most `limit` of them, after `cursor`.
    async fn list(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError>;

    /// Loads a large upload into `dataset` (which must exist), pulling rows as it writes them.
    /// Idempotent: loading the same rows twice leaves the same data. The default writes through
    /// `multi_put` in chunks; backends with a faster path (RocksDB SST ingestion) override it.
    async fn bulk_put(
        &self,
        dataset: &str,
        rows: BulkSource<'_>,
        options: BulkPutOptions,
    ) -> Result<BulkPutReport, KvError> {
        batch::bulk_put_via_multi_put(self, dataset, rows, options, 4).await
    }
}

/// A `KvStore` behind dynamic dispatch.
pub type DynKvStore = dyn KvStore;

/// The future an `#[async_trait]` method returns.
type BoxedCall<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

macro_rules! forward_kv_store {
    ($ptr:ident) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: KvStore + ?Sized> KvStore for $ptr<T> {
            fn backend(&self) -> &str {
                (**self).backend()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
                (**self).create(dataset, props).await
            }
            async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
                (**self).drop_dataset(dataset).await
            }
            async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
                (**self).dataset_props(dataset).await
            }
            // The two per-request calls hand back the inner store's boxed future itself: an
            // `async fn` here would box a second future around it on every call (an allocation,
            // a copy of the inner future and one more poll layer, ~700 instructions of a
            // one-key RocksDB read through an `Arc<dyn KvStore>`).
            fn multi_get<'life0, 'async_trait>(
                &'life0 self,
                requests: Vec<GetRequest>,
            ) -> BoxedCall<'async_trait, Vec<GetResponse>>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                (**self).multi_get(requests)
            }
            fn multi_put<'life0, 'async_trait>(
                &'life0 self,
                requests: Vec<PutRequest>,
            ) -> BoxedCall<'async_trait, Vec<Result<(), KvError>>>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                (**self).multi_put(requests)
            }
            async fn list(
                &self,
                dataset: &str,
                limit: usize,
                cursor: Option<ListCursor>,
            ) -> Result<ListPage, KvError> {
                (**self).list(dataset, limit, cursor).await
            }
            async fn bulk_put(
                &self,
                dataset: &str,
                rows: BulkSource<'_>,
                options: BulkPutOptions,
            ) -> Result<BulkPutReport, KvError> {
                (**self).bulk_put(dataset, rows, options).await
            }
        }
    };
}

forward_kv_store!(Arc);
forward_kv_store!(Box);

/// Helpers every store gets for free (Chronon's `KVStore.get`, `put`, `getString`,
/// `getStringArray`, ...). Implemented once for all stores, including `dyn KvStore`.
#[async_trait]
pub trait KvStoreExt: KvStore {
    /// Creates `dataset` with the default properties for its name (`_STREAMING`: time series).
    async fn create_default(&self, dataset: &str) -> Result<(), KvError> {
        self.create(dataset, &DatasetProps::for_dataset(dataset))
            .await
    }

    /// The latest value of one key, `None` when missing.
    async fn get(
        &self,
        dataset: &str,
        key: impl Into<Bytes> + Send,
    ) -> Result<Option<TimedValue>, KvError> {
        let mut responses = self.multi_get(vec![GetRequest::latest(dataset, key)]).await;
        let response = responses.pop().ok_or_else(|| {
            KvError::backend_msg(
                self.backend(),
                format!("get on dataset {dataset:?}"),
                "no response",
            )
        })?;
        Ok(response.values?.pop())
    }

    /// Writes one value (`ts: None` is now).
    async fn put(
        &self,
        dataset: &str,
        key: impl Into<Bytes> + Send,
        value: impl Into<Bytes> + Send,
        ts: Option<i64>,
    ) -> Result<(), KvError> {
        let mut results = self
            .multi_put(vec![PutRequest::new(dataset, key, value, ts)])
            .await;
        results.pop().unwrap_or_else(|| {
            Err(KvError::backend_msg(
                self.backend(),
                format!("put on dataset {dataset:?}"),
                "no result",
            ))
        })
    }

    /// The latest value of a UTF-8 key, decoded as UTF-8 (Chronon's `getString`).
    async fn get_string(&self, dataset: &str, key: &str) -> Result<Option<String>, KvError> {
        match self
            .get(dataset, Bytes::copy_from_slice(key.as_bytes()))
            .await?
        {
            None => Ok(None),
            Some(v) => String::from_utf8(v.bytes.to_vec()).map(Some).map_err(|e| {
                KvError::backend(
                    self.backend(),
                    format!("get_string {key:?} in dataset {dataset:?}"),
                    e,
                )
            }),
        }
    }

    /// Writes a UTF-8 value under a UTF-8 key (Chronon's `putString`).
    async fn put_string(
        &self,
        dataset: &str,
        key: &str,
        value: &str,
        ts: Option<i64>,
    ) -> Result<(), KvError> {
        self.put(
            dataset,
            Bytes::copy_from_slice(key.as_bytes()),
            Bytes::copy_from_slice(value.as_bytes()),
            ts,
        )
        .await
    }

    /// A list of strings in Chronon's `StringArrayConverter` format (each base64, comma-joined).
    async fn get_string_array(
        &self,
        dataset: &str,
        key: &str,
    ) -> Result<Option<Vec<String>>, KvError> {
        match self
            .get(dataset, Bytes::copy_from_slice(key.as_bytes()))
            .await?
        {
            None => Ok(None),
            Some(v) => string_array::decode(&v.bytes).map(Some).map_err(|reason| {
                KvError::backend_msg(
                    self.backend(),
                    format!("get_string_array {key:?} in dataset {dataset:?}"),
                    reason,
                )
            }),
        }
    }

    /// Writes a list of strings in Chronon's `StringArrayConverter` format.
    async fn put_string_array(
        &self,
        dataset: &str,
        key: &str,
        values: &[String],
        ts: Option<i64>,
    ) -> Result<(), KvError> {
        self.put(
            dataset,
            Bytes::copy_from_slice(key.as_bytes()),
            string_array::encode(values),
            ts,
        )
        .await
    }

    /// Every `(key, latest value)` of a dataset, following `list` pages to the end.
    async fn list_all(
        &self,
        dataset: &str,
        page_size: usize,
    ) -> Result<Vec<(Bytes, TimedValue)>, KvError> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list(dataset, page_size, cursor).await?;
            out.extend(page.entries);
            match page.next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}

impl<T: KvStore + ?Sized> KvStoreExt for T {}
