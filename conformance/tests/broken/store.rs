//! `Broken`: a `MemoryStore` wrapper with one plausible adapter bug (a [`Flaw`]). Each flaw is a
//! mistake a real adapter makes at a boundary of its driver; the suite must catch every one.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chronon_core::{
    BulkPutOptions, BulkPutReport, BulkSource, Capabilities, DatasetProps, GetRequest, GetResponse,
    KvError, KvStore, ListCursor, ListPage, MemoryStore, PutRequest,
};
use futures::StreamExt;

/// One bug per variant. `None` is the control: the wrapper with no bug passes everything.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flaw {
    None,
    IgnoresStartTs,
    NewestFirst,
    DropsLastRequest,
    ManglesZeroBytes,
    FailsWholeBatch,
    ReportsReadTime,
    IgnoresTtl,
    ListStopsAfterFirstPage,
    ForgetsAcrossClients,
    AcceptsOversizedValues,
    /// A range query that never fetches the driver's second page of 1,000 items.
    RangeFirstPageOnly,
    /// A range query capped at 10,000 items (a `LIMIT` left in the query).
    RangeStopsAt10000,
    /// A bulk loader that never flushes its last partial chunk of 1,000 rows.
    BulkDropsPartialChunk,
    /// A `multi_put` that sends only its first chunk of 1,000 but acknowledges everything.
    PutDropsAfterFirstChunk,
    /// A `multi_get` whose chunking (100 per call) answers the first key of every later chunk
    /// as missing (an off-by-one in the chunk offsets).
    GetLosesChunkBoundary,
    /// Keys trimmed of ASCII whitespace (a string column with trimming).
    TrimsKeys,
    /// Keys case-folded (a case-insensitive collation).
    CaseFoldsKeys,
    /// Keys through lossy UTF-8 (bytes stored as a string).
    LossyUtf8Keys,
    /// Keys as C strings: trailing NUL bytes cut.
    CutsTrailingNul,
    /// Dataset names case-folded (case-insensitive table identifiers).
    CaseFoldsDatasets,
    /// `drop_dataset(x)` deletes every dataset whose name starts with `x` (a prefix delete).
    DropDeletesPrefixed,
    /// `list(x)` also returns the keys of datasets whose name starts with `x` (a prefix scan).
    ListIncludesPrefixed,
    /// A per-client cache of values read, emptied only by the client's own writes.
    ReadCache,
    /// A per-client cache of misses, emptied only by the client's own writes.
    NegativeCache,
    /// `list` over a TTL dataset filters expired entries page by page (as DynamoDB's `Scan`
    /// does) and takes a page left empty by the filter as the end.
    ListStopsOnEmptyPage,
    /// Same, but takes any page shorter than `limit` as the end.
    ListStopsOnShortPage,
    /// Empty batches are sent to the database.
    RoundTripOnEmptyBatch,
    /// Not a bug: calls of more than 1,000 requests time out (a slow database), and the suite
    /// must retry them in smaller batches and pass.
    SlowBigBatches,
}

/// Shared by every client of one broken database.
#[derive(Debug, Default, Clone)]
pub struct Shared {
    /// TTLs the wrapper keeps itself (flaws that emulate TTL filtering above the store).
    pub ttls: Arc<Mutex<HashMap<String, DatasetProps>>>,
    /// Every dataset name created, for the prefix flaws.
    pub names: Arc<Mutex<BTreeSet<String>>>,
    /// Calls forwarded to the inner store: the "database's" request counter.
    pub calls: Arc<AtomicU64>,
}

type CacheKey = (String, Bytes, Option<i64>, Option<i64>);

#[derive(Debug)]
pub struct Broken {
    pub inner: MemoryStore,
    pub flaw: Flaw,
    pub shared: Shared,
    /// This client's read cache (`ReadCache`, `NegativeCache`).
    pub cache: Mutex<HashMap<CacheKey, GetResponse>>,
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Broken {
    pub fn new(inner: MemoryStore, flaw: Flaw, shared: Shared) -> Self {
        Broken {
            inner,
            flaw,
            shared,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn call(&self) {
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the wrapper filters TTL itself (the inner dataset is created without one).
    pub fn emulates_ttl(&self) -> bool {
        matches!(
            self.flaw,
            Flaw::IgnoresTtl | Flaw::ListStopsOnEmptyPage | Flaw::ListStopsOnShortPage
        )
    }

    pub fn key(&self, key: Bytes) -> Bytes {
        match self.flaw {
            Flaw::TrimsKeys => Bytes::copy_from_slice(key.trim_ascii()),
            Flaw::CaseFoldsKeys => Bytes::from(key.to_ascii_lowercase()),
            Flaw::LossyUtf8Keys => Bytes::from(String::from_utf8_lossy(&key).into_owned()),
            Flaw::CutsTrailingNul => {
                let end = key.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                key.slice(..end)
            }
            _ => key,
        }
    }

    pub fn dataset(&self, name: &str) -> String {
        if self.flaw == Flaw::CaseFoldsDatasets {
            name.to_ascii_lowercase()
        } else {
            name.to_string()
        }
    }

    pub fn expiry_cutoff(&self, dataset: &str) -> Option<i64> {
        let ttl = lock(&self.shared.ttls).get(dataset)?.ttl?;
        Some(chronon_core::batch::now_millis() - ttl.as_millis() as i64)
    }

    fn prefixed(&self, dataset: &str) -> Vec<String> {
        lock(&self.shared.names)
            .iter()
            .filter(|n| n.as_str() != dataset && n.starts_with(dataset))
            .cloned()
            .collect()
    }
}

#[async_trait]
impl KvStore for Broken {
    fn backend(&self) -> &str {
        "broken"
    }

    fn capabilities(&self) -> Capabilities {
        let caps = self.inner.capabilities();
        if self.flaw == Flaw::AcceptsOversizedValues {
            // Claims a smaller limit than it enforces.
            return Capabilities::new(300 * 1024, caps.get_batch_size, caps.put_batch_size)
                .with_persistence();
        }
        caps
    }

    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        self.call();
        lock(&self.cache).clear();
        let dataset = self.dataset(dataset);
        let inner_props = if self.emulates_ttl() {
            lock(&self.shared.ttls).insert(dataset.clone(), *props);
            DatasetProps {
                kind: props.kind,
                ttl: None,
            }
        } else {
            *props
        };
        self.inner.create(&dataset, &inner_props).await?;
        lock(&self.shared.names).insert(dataset);
        Ok(())
    }

    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        self.call();
        lock(&self.cache).clear();
        let dataset = self.dataset(dataset);
        if self.flaw == Flaw::DropDeletesPrefixed {
            for other in self.prefixed(&dataset) {
                self.inner.drop_dataset(&other).await?;
                lock(&self.shared.names).remove(&other);
            }
        }
        lock(&self.shared.names).remove(&dataset);
        lock(&self.shared.ttls).remove(&dataset);
        self.inner.drop_dataset(&dataset).await
    }

    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        self.call();
        let dataset = self.dataset(dataset);
        let props = self.inner.dataset_props(&dataset).await?;
        match lock(&self.shared.ttls).get(&dataset) {
            Some(p) if self.emulates_ttl() => Ok(*p),
            _ => Ok(props),
        }
    }

    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        crate::get::multi_get(self, requests).await
    }

    async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        crate::put::multi_put(self, requests).await
    }

    async fn list(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        self.call();
        let dataset = self.dataset(dataset);
        let first = cursor.is_none();
        let mut page = self.inner.list(&dataset, limit, cursor).await?;
        if self.flaw == Flaw::ListStopsAfterFirstPage {
            page.next = None;
        }
        if self.flaw == Flaw::ListIncludesPrefixed && first {
            for other in self.prefixed(&dataset) {
                let more = chronon_core::KvStoreExt::list_all(&self.inner, &other, 1000).await?;
                page.entries.extend(more);
            }
        }
        if self.emulates_ttl() {
            if let Some(cutoff) = self.expiry_cutoff(&dataset) {
                let scanned = page.entries.len();
                page.entries.retain(|(_, v)| v.millis >= cutoff);
                let stop = match self.flaw {
                    Flaw::ListStopsOnEmptyPage => page.entries.is_empty(),
                    Flaw::ListStopsOnShortPage => page.entries.len() < limit,
                    _ => false,
                };
                if stop && scanned > 0 {
                    page.next = None;
                }
            }
        }
        Ok(page)
    }

    async fn bulk_put(
        &self,
        dataset: &str,
        rows: BulkSource<'_>,
        options: BulkPutOptions,
    ) -> Result<BulkPutReport, KvError> {
        match self.flaw {
            Flaw::BulkDropsPartialChunk => {
                let rows: Vec<_> = rows.collect().await;
                let total = rows.len() as u64;
                let mut chunk = Vec::new();
                for row in rows {
                    let row = row?;
                    chunk.push(PutRequest::new(dataset, row.key, row.value, Some(row.ts)));
                    if chunk.len() == 1000 {
                        for r in self.multi_put(std::mem::take(&mut chunk)).await {
                            r?;
                        }
                    }
                }
                // The bug: the last `chunk` (fewer than 1,000 rows) is never written.
                if let Some(progress) = &options.progress {
                    progress(total);
                }
                Ok(BulkPutReport { rows: total })
            }
            // The slow database only slows direct calls; loads go straight through.
            Flaw::SlowBigBatches => self.inner.bulk_put(dataset, rows, options).await,
            _ => chronon_core::batch::bulk_put_via_multi_put(self, dataset, rows, options, 4).await,
        }
    }
}

/// Answers every request with `err`.
pub fn fail_all<T>(n: usize, err: KvError) -> Vec<Result<T, KvError>> {
    (0..n).map(|_| Err(err.clone())).collect()
}

/// The timeout a slow database answers with.
pub fn slow() -> KvError {
    KvError::Timeout {
        operation: "multi_get/multi_put".into(),
        target: "broken".into(),
        timeout: std::time::Duration::from_secs(10),
    }
}
