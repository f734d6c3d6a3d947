//! Requests, responses and dataset properties (see CONTRACT.md, "Types" and "Datasets").

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::KvError;

/// A read of one key (Chronon's `GetRequest(keyBytes, dataset, afterTsMillis)`).
///
/// `start_ts: None` asks for the latest version only; `Some(s)` asks for every version with
/// `s <= ts` (and `ts <= end_ts` when `end_ts` is given), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GetRequest {
    /// The key bytes.
    pub key: Bytes,
    /// The dataset to read from.
    pub dataset: String,
    /// Inclusive lower bound on the version timestamp; `None` for the latest version only.
    pub start_ts: Option<i64>,
    /// Inclusive upper bound on the version timestamp (only with `start_ts`).
    pub end_ts: Option<i64>,
}

impl GetRequest {
    /// The latest version of `key`.
    pub fn latest(dataset: impl Into<String>, key: impl Into<Bytes>) -> Self {
        GetRequest {
            key: key.into(),
            dataset: dataset.into(),
            start_ts: None,
            end_ts: None,
        }
    }

    /// Every version of `key` with `start_ts <= ts` (and `ts <= end_ts` when given), oldest first.
    pub fn range(
        dataset: impl Into<String>,
        key: impl Into<Bytes>,
        start_ts: i64,
        end_ts: Option<i64>,
    ) -> Self {
        GetRequest {
            key: key.into(),
            dataset: dataset.into(),
            start_ts: Some(start_ts),
            end_ts,
        }
    }

    /// Whether a version with timestamp `ts` is in this request's range (always true for latest-only).
    pub fn contains_ts(&self, ts: i64) -> bool {
        match self.start_ts {
            None => true,
            Some(s) => s <= ts && self.end_ts.is_none_or(|e| ts <= e),
        }
    }
}

/// A value with the timestamp it was stored with (Chronon's `TimedValue(bytes, millis)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TimedValue {
    /// The value bytes.
    pub bytes: Bytes,
    /// The timestamp stored with the value, in milliseconds since the Unix epoch; never the
    /// time of the read (Chronon's fetcher compares it with the batch end time).
    pub millis: i64,
}

impl TimedValue {
    /// A value at `millis`.
    pub fn new(bytes: impl Into<Bytes>, millis: i64) -> Self {
        TimedValue {
            bytes: bytes.into(),
            millis,
        }
    }
}

/// The answer to one [`GetRequest`] (Chronon's `GetResponse(request, Try[Seq[TimedValue]])`).
#[derive(Debug, Clone)]
pub struct GetResponse {
    /// The request this answers.
    pub request: GetRequest,
    /// The versions found, oldest first (empty for a missing key), or this request's error.
    pub values: Result<Vec<TimedValue>, KvError>,
}

impl GetResponse {
    /// The newest value returned, if any.
    pub fn latest(&self) -> Result<Option<&TimedValue>, &KvError> {
        match &self.values {
            Ok(v) => Ok(v.iter().max_by_key(|tv| tv.millis)),
            Err(e) => Err(e),
        }
    }
}

/// A write of one value (Chronon's `PutRequest(keyBytes, valueBytes, dataset, tsMillis)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PutRequest {
    /// The key bytes.
    pub key: Bytes,
    /// The value bytes (may be empty).
    pub value: Bytes,
    /// The dataset to write to.
    pub dataset: String,
    /// The version timestamp; `None` means the store's "now".
    pub ts: Option<i64>,
}

impl PutRequest {
    /// A put of `value` under `key` at `ts` (`None`: now).
    pub fn new(
        dataset: impl Into<String>,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
        ts: Option<i64>,
    ) -> Self {
        PutRequest {
            key: key.into(),
            value: value.into(),
            dataset: dataset.into(),
            ts,
        }
    }
}

/// How a dataset keeps versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DatasetKind {
    /// One value per key; a put replaces it. Batch uploads and metadata live here.
    Snapshot,
    /// Every `(key, ts)` is a version; a put with the same key and ts replaces that version only.
    /// Streaming updates live here.
    TimeSeries,
}

impl DatasetKind {
    /// Chronon's convention: a name ending in `_STREAMING` is a time series, anything else a snapshot.
    pub fn default_for(dataset: &str) -> Self {
        if dataset.ends_with("_STREAMING") {
            DatasetKind::TimeSeries
        } else {
            DatasetKind::Snapshot
        }
    }

    /// `"Snapshot"` or `"TimeSeries"`, the form adapters persist.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Snapshot => "Snapshot",
            DatasetKind::TimeSeries => "TimeSeries",
        }
    }

    /// Parses [`DatasetKind::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Snapshot" => Some(DatasetKind::Snapshot),
            "TimeSeries" => Some(DatasetKind::TimeSeries),
            _ => None,
        }
    }
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Properties a dataset is created with, and that the backend remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DatasetProps {
    /// How versions are kept.
    pub kind: DatasetKind,
    /// Values whose timestamp is older than `now - ttl` are never returned.
    pub ttl: Option<Duration>,
}

impl DatasetProps {
    /// The defaults for a dataset name: kind by the `_STREAMING` suffix, no TTL.
    pub fn for_dataset(dataset: &str) -> Self {
        DatasetProps {
            kind: DatasetKind::default_for(dataset),
            ttl: None,
        }
    }

    /// A snapshot dataset without TTL.
    pub fn snapshot() -> Self {
        DatasetProps {
            kind: DatasetKind::Snapshot,
            ttl: None,
        }
    }

    /// A time-series dataset without TTL.
    pub fn time_series() -> Self {
        DatasetProps {
            kind: DatasetKind::TimeSeries,
            ttl: None,
        }
    }

    /// The same properties with a TTL.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The smallest timestamp still visible at `now_ms`, or `None` without TTL.
    pub fn visible_from(&self, now_ms: i64) -> Option<i64> {
        self.ttl
            .map(|ttl| now_ms.saturating_sub(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)))
    }

    /// The TTL in whole milliseconds (the form adapters persist).
    pub fn ttl_millis(&self) -> Option<i64> {
        self.ttl
            .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
    }

    /// Human-readable summary used in conflict messages: `TimeSeries (ttl 3600000 ms)`.
    pub fn describe(&self) -> String {
        match self.ttl {
            Some(t) => format!("{} (ttl {} ms)", self.kind, t.as_millis()),
            None => self.kind.to_string(),
        }
    }
}

/// What an adapter can do; the suite checks these instead of backend names.
///
/// Fields default to the most conservative value; each adapter opts in explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Largest value accepted; larger values are `ValueTooLarge` (CONTRACT.md: at least 300 KiB).
    pub max_value_bytes: usize,
    /// The database removes expired values itself (reads filter them regardless).
    pub native_ttl: bool,
    /// Data outlives the client: a new client on the same database sees it.
    pub persistent: bool,
    /// Requests the adapter sends per database round trip when reading.
    pub get_batch_size: usize,
    /// Requests the adapter sends per database round trip when writing.
    pub put_batch_size: usize,
    /// Only one client may have the database open at a time (an embedded store's directory
    /// lock), so no second client can read while the first writes. The suite's cross-client
    /// cases say "not applicable" instead of failing on the second open.
    pub single_client: bool,
}

impl Capabilities {
    /// Capabilities with the given value limit and batch sizes; everything else off.
    pub fn new(max_value_bytes: usize, get_batch_size: usize, put_batch_size: usize) -> Self {
        Capabilities {
            max_value_bytes,
            native_ttl: false,
            persistent: false,
            get_batch_size,
            put_batch_size,
            single_client: false,
        }
    }

    /// Marks the database as opened by one client at a time (embedded stores).
    pub fn with_single_client(mut self) -> Self {
        self.single_client = true;
        self
    }

    /// Marks the database as removing expired values itself.
    pub fn with_native_ttl(mut self) -> Self {
        self.native_ttl = true;
        self
    }

    /// Marks data as outliving the client.
    pub fn with_persistence(mut self) -> Self {
        self.persistent = true;
        self
    }
}

/// An opaque position in a [`list`](crate::KvStore::list) iteration, handed back to get the next page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListCursor(pub Bytes);

/// One page of a listing: keys with their latest value, and where to continue.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// `(key, latest value)` pairs.
    pub entries: Vec<(Bytes, TimedValue)>,
    /// `None` when this was the last page.
    pub next: Option<ListCursor>,
}

/// One row of a bulk upload into a single dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRow {
    /// The key bytes.
    pub key: Bytes,
    /// The value bytes.
    pub value: Bytes,
    /// The version timestamp (Chronon's batch end time for batch uploads).
    pub ts: i64,
}

/// The rows of a bulk upload, pulled as they are written so a large upload never sits in memory.
pub type BulkSource<'a> = BoxStream<'a, Result<BulkRow, KvError>>;

/// Called with the number of rows written so far.
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

/// How a bulk upload runs.
#[derive(Clone, Default)]
pub struct BulkPutOptions {
    /// Progress callback, called after each batch is acknowledged.
    pub progress: Option<ProgressFn>,
    /// The caller promises the rows arrive in ascending key order (lets RocksDB write SST
    /// files directly); a broken promise is an error, not silent corruption.
    pub sorted: bool,
}

impl std::fmt::Debug for BulkPutOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkPutOptions")
            .field("progress", &self.progress.is_some())
            .field("sorted", &self.sorted)
            .finish()
    }
}

/// What a bulk upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BulkPutReport {
    /// Rows written.
    pub rows: u64,
}
