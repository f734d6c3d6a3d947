//! [`RocksStore`]: the `KvStore` on an embedded RocksDB directory; its methods hand each call to
//! `datasets`, `read` or `write`.

use async_trait::async_trait;
use chronon_core::observe::{BulkOutcome, Call, Operation};
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
            .run(async { datasets::props(&self.client, dataset) })
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
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use chronon_core::{GetRequest, KvStoreExt, PutRequest};
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use tracing_subscriber::fmt::format::FmtSpan;

    use super::*;

    /// Log lines written by the subscriber, kept for the test to read.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Every call on a real RocksDB store opens one `kv_call` span with its fields (as a JSON
    /// log subscriber sees them when the span closes) and counts in the metrics.
    #[test]
    fn each_call_has_one_span_and_its_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter("chronon_kv=debug")
            .with_span_events(FmtSpan::CLOSE)
            .with_writer(move || writer.clone())
            .finish();
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let run = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let store = RocksStore::open(RocksOptions::new(dir.path()))
                        .await
                        .unwrap();
                    store.create_default("OBS").await.unwrap();
                    let puts = vec![
                        PutRequest::new("OBS", "a", "1", Some(1)),
                        PutRequest::new("OBS", "", "bad key", Some(1)),
                    ];
                    let put = store.multi_put(puts).await;
                    assert!(put[0].is_ok() && put[1].is_err());
                    let got = store
                        .multi_get(vec![
                            GetRequest::latest("OBS", "a"),
                            GetRequest::latest("MISSING", "a"),
                        ])
                        .await;
                    assert!(got[0].values.is_ok() && got[1].values.is_err());
                    store.drop_dataset("OBS").await.unwrap();
                })
        };
        tracing::subscriber::with_default(subscriber, || {
            metrics::with_local_recorder(&recorder, run)
        });

        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let spans: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["span"]["name"] == "kv_call")
            .map(|v| v["span"].clone())
            .collect();
        let ops: Vec<&str> = spans
            .iter()
            .map(|s| s["operation"].as_str().unwrap())
            .collect();
        assert_eq!(
            ops,
            ["create", "multi_put", "multi_get", "drop_dataset"],
            "{text}"
        );
        for s in &spans {
            assert_eq!(s["backend"], "rocks", "{s}");
            assert!(s["retries"].is_number(), "{s}");
        }
        let (put, get) = (&spans[1], &spans[2]);
        assert_eq!(
            (
                &put["dataset"],
                &put["batch_size"],
                &put["outcome"],
                &put["errors"]
            ),
            (&"OBS".into(), &2.into(), &"partial".into(), &1.into()),
            "{put}"
        );
        assert_eq!(
            (&get["dataset"], &get["outcome"], &get["errors"]),
            (&"OBS+1".into(), &"partial".into(), &1.into()),
            "{get}"
        );
        assert_eq!(spans[0]["outcome"], "ok");

        // One snapshot: taking it drains what it reports.
        let snapshot = snapshotter.snapshot().into_vec();
        let counter = |name: &str, labels: &[(&str, &str)]| {
            snapshot.iter().find_map(|(key, _, _, value)| {
                let key = key.key();
                let matches = key.name() == name
                    && labels
                        .iter()
                        .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v));
                match value {
                    DebugValue::Counter(n) if matches => Some(*n),
                    DebugValue::Histogram(h) if matches => Some(h.len() as u64),
                    _ => None,
                }
            })
        };
        let calls = "chronon_kv_calls_total";
        let ok = [
            ("backend", "rocks"),
            ("operation", "create"),
            ("outcome", "ok"),
        ];
        assert_eq!(counter(calls, &ok), Some(1));
        let partial = [("operation", "multi_get"), ("outcome", "partial")];
        assert_eq!(counter(calls, &partial), Some(1));
        let errors = "chronon_kv_errors_total";
        let invalid_key = [("operation", "multi_put"), ("kind", "InvalidKey")];
        assert_eq!(counter(errors, &invalid_key), Some(1));
        let not_found = [("operation", "multi_get"), ("kind", "DatasetNotFound")];
        assert_eq!(counter(errors, &not_found), Some(1));
        let latency = [("backend", "rocks"), ("operation", "drop_dataset")];
        assert_eq!(
            counter("chronon_kv_call_duration_seconds", &latency),
            Some(1)
        );
    }
}
