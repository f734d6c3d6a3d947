//! [`RocksStore`]: the `KvStore` on an embedded RocksDB directory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use chronon_core::batch::{now_millis, select_versions, with_timeout, GetBatch, PutBatch};
use chronon_core::{
    validate, BulkPutOptions, BulkPutReport, BulkSource, Capabilities, DatasetKind, DatasetProps,
    GetRequest, GetResponse, KvError, KvStore, ListCursor, ListPage, PutRequest, TimedValue,
};
use rocksdb::compaction_filter::Decision;
use rocksdb::{
    BlockBasedOptions, BoundColumnFamily, Cache, ColumnFamilyDescriptor, DBCompressionType,
    MultiThreaded, Options, ReadOptions, WriteBatch, WriteBufferManager, WriteOptions,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::layout::{self, META_CF};
use crate::options::{Compression, RocksOptions, SCHEME};

/// The RocksDB handle type: column families can be created and dropped through `&self`.
pub(crate) type Db = rocksdb::DBWithThreadMode<MultiThreaded>;

/// The backend name in errors and reports.
pub(crate) const BACKEND: &str = "rocks";

/// Sub-directory of the database directory where `bulk_put` writes SST files before ingesting them.
pub(crate) const BULK_TMP_DIR: &str = "chronon-bulk-tmp";

/// The one place a RocksDB error becomes a [`KvError`]. RocksDB's own `Busy`, `TimedOut` and
/// `TryAgain` are transient (write stalls, lock waits), so they are marked retryable.
pub(crate) fn rocks_error(context: impl Into<String>, e: rocksdb::Error) -> KvError {
    use rocksdb::ErrorKind as K;
    let retryable = matches!(
        e.kind(),
        K::Busy | K::TimedOut | K::TryAgain | K::Incomplete
    );
    let err = KvError::backend(BACKEND, context, e);
    if retryable {
        err.retryable()
    } else {
        err
    }
}

/// The TTL cell a dataset's compaction filter reads. It is empty until the dataset's metadata has
/// been read (the filter then keeps everything), because RocksDB needs the filter when it opens
/// the column family, before the metadata column family can be read.
type PropsCell = Arc<OnceLock<DatasetProps>>;

pub(crate) struct Inner {
    pub(crate) db: Db,
    /// Kind and TTL of every dataset, loaded from [`META_CF`] at open and kept in step by
    /// `create`/`drop_dataset`. Only one process can open the directory, so this is authoritative.
    datasets: RwLock<HashMap<String, DatasetProps>>,
    /// Serialises `create` and `drop_dataset` (column family + metadata changes).
    ddl: Mutex<()>,
    cache: Cache,
    pub(crate) opts: RocksOptions,
    write_opts: WriteOptions,
}

impl Inner {
    pub(crate) fn props(&self, dataset: &str) -> Option<DatasetProps> {
        self.datasets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(dataset)
            .copied()
    }

    /// The props and column family of an existing dataset, or `DatasetNotFound`.
    pub(crate) fn dataset(
        &self,
        dataset: &str,
    ) -> Result<(DatasetProps, Arc<BoundColumnFamily<'_>>), KvError> {
        let props = self
            .props(dataset)
            .ok_or_else(|| KvError::not_found(dataset))?;
        let cf = self
            .db
            .cf_handle(&layout::cf_name(dataset))
            .ok_or_else(|| KvError::not_found(dataset))?;
        Ok((props, cf))
    }

    /// Options for a dataset's column family (also used, without a filter, for the SST files a
    /// bulk load writes, which must match the column family's table format).
    pub(crate) fn cf_options(&self, ttl_cell: Option<PropsCell>) -> Options {
        cf_options(&self.opts, &self.cache, ttl_cell)
    }
}

fn cf_options(opts: &RocksOptions, cache: &Cache, ttl_cell: Option<PropsCell>) -> Options {
    let mut o = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    // Index and filter blocks stay on the heap with their table reader (RocksDB's default), not
    // in the block cache: tried, and once a file's index block outgrew a cache shard (64 MiB /
    // 64 shards) it could not be cached at all and every read decompressed it again; the soak
    // fell from 80,000 to 8,000 ops/s at about 2 M versions.
    if opts.bloom_bits_per_key > 0.0 {
        table.set_bloom_filter(opts.bloom_bits_per_key, false);
    }
    o.set_block_based_table_factory(&table);
    o.set_compression_type(match opts.compression {
        Compression::None => DBCompressionType::None,
        Compression::Lz4 => DBCompressionType::Lz4,
        Compression::Zstd => DBCompressionType::Zstd,
    });
    if let Some(cell) = ttl_cell {
        o.set_compaction_filter(
            "chronon_ttl",
            move |_level: u32, key: &[u8], value: &[u8]| ttl_filter(&cell, key, value),
        );
    }
    o
}

/// The TTL compaction filter: drops a row whose timestamp is older than `now - ttl`, the same
/// cut-off reads apply (`DatasetProps::visible_from`), so compaction only removes what no read
/// could return any more. Rows it cannot parse are kept.
fn ttl_filter(cell: &OnceLock<DatasetProps>, key: &[u8], value: &[u8]) -> Decision {
    let Some(props) = cell.get() else {
        return Decision::Keep;
    };
    let Some(cut) = props.visible_from(now_millis()) else {
        return Decision::Keep;
    };
    let ts = match props.kind {
        DatasetKind::Snapshot => layout::split_snapshot_value(value).map(|(ts, _)| ts),
        DatasetKind::TimeSeries => layout::version_key_ts(key),
    };
    match ts {
        Some(ts) if ts < cut => Decision::Remove,
        _ => Decision::Keep,
    }
}

/// A Chronon `KvStore` on an embedded RocksDB directory.
///
/// One column family per dataset, the dataset's kind and TTL in the `chronon.meta` column family,
/// and a key layout that keeps a key's versions adjacent in ts order (see README.md). Every
/// RocksDB call runs on tokio's blocking pool (at most [`RocksOptions::blocking_threads`] at
/// once) under [`RocksOptions::timeout`], never on an async worker thread.
///
/// RocksDB lets one process open a directory at a time; a second open gets
/// `KvError::Unavailable` naming the directory. Clones share the one open database.
#[derive(Clone)]
pub struct RocksStore {
    inner: Arc<Inner>,
    permits: Arc<Semaphore>,
    target: Arc<str>,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("target", &self.target)
            .field("options", &self.inner.opts)
            .finish()
    }
}

impl RocksStore {
    /// The largest value accepted. RocksDB itself takes far larger values, but multi-megabyte
    /// features are a modelling mistake and would thrash the block cache.
    pub const MAX_VALUE_BYTES: usize = 4 << 20;

    /// Opens (or creates) the database described by `options`, restoring every dataset's kind and
    /// TTL from its metadata column family.
    pub async fn open(options: RocksOptions) -> Result<Self, KvError> {
        let target: Arc<str> = format!("{SCHEME}://{}", options.path.display()).into();
        let timeout = options.timeout;
        let permits = Arc::new(Semaphore::new(options.blocking_threads.max(1)));
        let open_target = target.clone();
        let inner = with_timeout(timeout, "open", &target, async move {
            tokio::task::spawn_blocking(move || open_blocking(options, &open_target))
                .await
                .map_err(|e| KvError::backend(BACKEND, "open (blocking task)", e))?
        })
        .await?;
        Ok(RocksStore {
            inner: Arc::new(inner),
            permits,
            target,
        })
    }

    /// Opens the database at a `rocks:///abs/path/to/dir?cache_mb=64&...` URL (query keys in
    /// [`RocksOptions::from_url`]).
    pub async fn open_url(url: &url::Url) -> Result<Self, KvError> {
        Self::open(RocksOptions::from_url(url)?).await
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &RocksOptions {
        &self.inner.opts
    }

    /// The open RocksDB database, for what the `KvStore` API does not cover: properties and
    /// statistics, checkpoints, or reading a dataset's rows with the `rocksdb` crate itself (the
    /// benchmarks compare the adapter with exactly that, on this same database).
    ///
    /// Its calls block: make them from `spawn_blocking` or a thread of your own, not on an async
    /// worker. Rows written through it must follow the layout in README.md (see
    /// [`RocksStore::column_family`]); creating or dropping a dataset's column family through it
    /// leaves the store's record of datasets wrong until the directory is reopened.
    pub fn db(&self) -> &rocksdb::DBWithThreadMode<rocksdb::MultiThreaded> {
        &self.inner.db
    }

    /// The name of the column family that holds `dataset`'s rows (whether or not it exists).
    pub fn column_family(dataset: &str) -> String {
        layout::cf_name(dataset)
    }

    /// Compacts a dataset's whole column family now, which also runs the TTL compaction filter
    /// (RocksDB otherwise compacts, and so drops expired rows, in the background as data grows).
    pub async fn compact_dataset(&self, dataset: &str) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        let ds = dataset.to_string();
        self.blocking_with(
            "compact",
            dataset,
            self.inner.opts.bulk_chunk_timeout,
            move |inner| {
                let (_, cf) = inner.dataset(&ds)?;
                inner.db.compact_range_cf(&cf, None::<&[u8]>, None::<&[u8]>);
                Ok(())
            },
        )
        .await
    }

    /// How many rows a dataset physically holds (every stored version, expired or not, until
    /// compaction removes it). For tests and tools; it scans the whole column family.
    pub async fn raw_row_count(&self, dataset: &str) -> Result<u64, KvError> {
        validate::dataset_name(dataset)?;
        let ds = dataset.to_string();
        self.blocking_with(
            "raw_row_count",
            dataset,
            self.inner.opts.bulk_chunk_timeout,
            move |inner| {
                let (_, cf) = inner.dataset(&ds)?;
                let mut it = inner.db.raw_iterator_cf_opt(&cf, ReadOptions::default());
                it.seek_to_first();
                let mut n = 0u64;
                while it.valid() {
                    n += 1;
                    it.next();
                }
                it.status()
                    .map_err(|e| rocks_error(format!("counting rows of dataset {ds:?}"), e))?;
                Ok(n)
            },
        )
        .await
    }

    /// Starts `f` on the blocking pool without a permit or timeout, for the long steps of a bulk
    /// load, which the caller awaits under its own per-chunk timeout.
    pub(crate) fn spawn_blocking_task<T, F>(
        &self,
        f: F,
    ) -> tokio::task::JoinHandle<Result<T, KvError>>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, KvError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
    }

    /// Runs `f` on the blocking pool under the store's timeout.
    async fn blocking<T, F>(&self, operation: &str, target: &str, f: F) -> Result<T, KvError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, KvError> + Send + 'static,
    {
        self.blocking_with(operation, target, self.inner.opts.timeout, f)
            .await
    }

    /// Runs `f` on the blocking pool, once one of the store's permits is free, under `timeout`
    /// (waiting for a permit counts). On timeout the call returns at once; RocksDB finishes the
    /// work in the background, since a running RocksDB call cannot be interrupted.
    pub(crate) async fn blocking_with<T, F>(
        &self,
        operation: &str,
        target: &str,
        timeout: std::time::Duration,
        f: F,
    ) -> Result<T, KvError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, KvError> + Send + 'static,
    {
        self.on_blocking_pool(operation, target, timeout, |inner, permit| async move {
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                f(&inner)
            })
            .await
            .map_err(|e| e.to_string())
        })
        .await
    }

    /// [`RocksStore::blocking_with`] for work that has freeing left to do once its result
    /// exists: `f` returns the result and what the call no longer needs (a put batch's
    /// requests); the caller has the result at once, and the rest is dropped after, on the
    /// blocking thread, still under the permit. Freeing a 1,000-put batch's 3,000 buffers took
    /// ~0.1 ms, ~5 % of the call, all of it on the caller's clock before. (Tried for reads,
    /// deferring RocksDB's pinned read buffers: nothing measurable, so reads keep the plain
    /// path and answer when their task ends.)
    ///
    /// The database handle is let go of *before* the answer: a caller that drops its store on
    /// the answer then closes RocksDB (and frees the directory lock) itself, so the directory
    /// reopens at once (it failed now and then as "locked" while this thread still held the
    /// handle during the freeing).
    pub(crate) async fn blocking_answer_first<T, L, F>(
        &self,
        operation: &str,
        target: &str,
        timeout: std::time::Duration,
        f: F,
    ) -> Result<T, KvError>
    where
        T: Send + 'static,
        L: Send + 'static,
        F: FnOnce(&Inner) -> (Result<T, KvError>, L) + Send + 'static,
    {
        self.on_blocking_pool(operation, target, timeout, |inner, permit| async move {
            let (answer_tx, answer) = tokio::sync::oneshot::channel();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let (result, leftover) = f(&inner);
                drop(inner);
                // The caller may have timed out and gone; the result is then dropped here.
                let _ = answer_tx.send(result);
                drop(leftover);
            });
            // A closed channel without an answer: `f` panicked (the pool reports the panic).
            answer
                .await
                .map_err(|_| "the blocking task ended without an answer (it panicked)".to_string())
        })
        .await
    }

    /// What both of the above share: a permit, then `run` (which starts the blocking work and
    /// awaits its result), all under `timeout`, with errors naming the operation and target.
    async fn on_blocking_pool<T, Fut>(
        &self,
        operation: &str,
        target: &str,
        timeout: std::time::Duration,
        run: impl FnOnce(Arc<Inner>, OwnedSemaphorePermit) -> Fut,
    ) -> Result<T, KvError>
    where
        Fut: std::future::Future<Output = Result<Result<T, KvError>, String>>,
    {
        let inner = self.inner.clone();
        let permits = self.permits.clone();
        // Error messages are formatted only when there is an error: this is every call's path.
        let target = || format!("{target:?} in {}", self.target);
        let work = async move {
            let permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
            run(inner, permit).await
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(KvError::backend_msg(
                BACKEND,
                format!("{operation} on {}", target()),
                e,
            )),
            Err(_) => Err(KvError::timeout(operation, target(), timeout)),
        }
    }
}

fn db_options(opts: &RocksOptions) -> Options {
    let mut o = Options::default();
    o.create_if_missing(opts.create_if_missing);
    o.create_missing_column_families(true);
    o.set_max_background_jobs(4);
    o.set_keep_log_file_num(4);
    // One memtable budget for every column family (RocksOptions::memtable_budget_bytes); writes
    // are not stalled at the budget, the largest memtable is flushed instead.
    o.set_write_buffer_manager(&WriteBufferManager::new_write_buffer_manager(
        opts.memtable_budget_bytes,
        false,
    ));
    o
}

fn open_blocking(opts: RocksOptions, target: &str) -> Result<Inner, KvError> {
    let path = opts.path.clone();
    if opts.create_if_missing {
        std::fs::create_dir_all(&path).map_err(|e| {
            KvError::backend(BACKEND, format!("creating the directory of {target}"), e)
        })?;
    }
    let db_opts = db_options(&opts);
    let cache = Cache::new_lru_cache(opts.block_cache_bytes);
    let existing = if path.join("CURRENT").exists() {
        Db::list_cf(&db_opts, &path).map_err(|e| open_error(target, &path, e))?
    } else {
        Vec::new()
    };
    let mut cells: HashMap<String, PropsCell> = HashMap::new();
    let mut descriptors = vec![
        ColumnFamilyDescriptor::new(rocksdb::DEFAULT_COLUMN_FAMILY_NAME, Options::default()),
        ColumnFamilyDescriptor::new(META_CF, Options::default()),
    ];
    for cf in &existing {
        if let Some(ds) = layout::dataset_of_cf(cf) {
            let cell = PropsCell::default();
            cells.insert(ds.to_string(), cell.clone());
            descriptors.push(ColumnFamilyDescriptor::new(
                cf,
                cf_options(&opts, &cache, Some(cell)),
            ));
        }
    }
    let db = Db::open_cf_descriptors(&db_opts, &path, descriptors)
        .map_err(|e| open_error(target, &path, e))?;

    // Restore kinds and TTLs; tidy up after a crash between a column family and its metadata.
    let mut datasets = HashMap::new();
    {
        let meta = db.cf_handle(META_CF).ok_or_else(|| {
            KvError::backend_msg(
                BACKEND,
                format!("opening {target}"),
                "no metadata column family",
            )
        })?;
        let mut it = db.raw_iterator_cf_opt(&meta, ReadOptions::default());
        it.seek_to_first();
        let mut stale = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let name = String::from_utf8_lossy(k).into_owned();
            let props = layout::decode_meta(v).map_err(|reason| {
                KvError::backend_msg(
                    BACKEND,
                    format!("reading metadata of dataset {name:?} in {target}"),
                    reason,
                )
            })?;
            match cells.get(&name) {
                Some(cell) => {
                    let _ = cell.set(props);
                    datasets.insert(name, props);
                }
                None => stale.push(k.to_vec()),
            }
            it.next();
        }
        it.status()
            .map_err(|e| rocks_error(format!("reading dataset metadata in {target}"), e))?;
        drop(it);
        for k in stale {
            db.delete_cf(&meta, k)
                .map_err(|e| rocks_error(format!("removing stale metadata in {target}"), e))?;
        }
    }
    for ds in cells.keys().filter(|ds| !datasets.contains_key(*ds)) {
        tracing::warn!(dataset = %ds, "dropping column family without metadata (interrupted create or drop)");
        db.drop_cf(&layout::cf_name(ds))
            .map_err(|e| rocks_error(format!("dropping orphan dataset {ds:?} in {target}"), e))?;
    }
    // SST files of a bulk load that never finished.
    let _ = std::fs::remove_dir_all(path.join(BULK_TMP_DIR));

    let mut write_opts = WriteOptions::default();
    write_opts.set_sync(opts.sync_writes);
    Ok(Inner {
        db,
        datasets: RwLock::new(datasets),
        ddl: Mutex::new(()),
        cache,
        opts,
        write_opts,
    })
}

/// Open errors get a sentence a user can act on: a held lock means another process (or another
/// client in this one) has the directory open.
fn open_error(target: &str, path: &Path, e: rocksdb::Error) -> KvError {
    let msg = e.to_string();
    if msg.contains("lock") || msg.contains("LOCK") {
        KvError::Unavailable {
            backend: BACKEND.into(),
            address: path.display().to_string(),
            message: format!(
                "the RocksDB directory is locked: another process (or another open client in this process) \
                 has it open, and RocksDB allows one at a time; close that one first ({msg})"
            ),
            source: Some(Arc::new(e)),
        }
    } else {
        rocks_error(format!("opening {target}"), e)
    }
}

fn sync_write_opts() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

/// Answers the requests of one snapshot dataset with one `batched_multi_get_cf`, its keys
/// sorted here (see [`layout::sort_in_key_order`]).
fn get_snapshot(
    inner: &Inner,
    cf: &Arc<BoundColumnFamily<'_>>,
    batch: &mut GetBatch,
    mut idxs: Vec<usize>,
    visible_from: Option<i64>,
) {
    let requests = batch.requests();
    layout::sort_in_key_order(&mut idxs, |i| &requests[i].key);
    let found = inner.db.batched_multi_get_cf_opt(
        cf,
        idxs.iter().map(|&i| &requests[i].key),
        /* sorted_input */ true,
        &ReadOptions::default(),
    );
    batch.answer_each(&idxs, found, |req, got| match got {
        Ok(None) => Ok(Vec::new()),
        Ok(Some(stored)) => match layout::split_snapshot_value(&stored) {
            // One stored version: the answer is it or nothing (requests are validated, so a
            // range has start <= end); no copy of a value that is not returned.
            Some((ts, value)) => {
                let visible = visible_from.is_none_or(|cut| ts >= cut) && req.contains_ts(ts);
                Ok(if visible {
                    vec![TimedValue::new(Bytes::copy_from_slice(value), ts)]
                } else {
                    Vec::new()
                })
            }
            None => Err(corrupt(req)),
        },
        Err(e) => Err(rocks_error(get_context(req), e)),
    });
}

fn get_context(req: &GetRequest) -> String {
    format!(
        "multi_get of key {} in dataset {:?}",
        chronon_core::key_preview(&req.key),
        req.dataset
    )
}

fn corrupt(req: &GetRequest) -> KvError {
    KvError::backend_msg(
        BACKEND,
        get_context(req),
        "stored row is not in chronon-rocks layout",
    )
}

/// Answers one time-series request with one bounded iterator: `seek_to_last` for the latest
/// version, a forward scan for a range. The TTL cut-off is the lower bound, so expired versions
/// are never read.
fn get_time_series(
    inner: &Inner,
    cf: &Arc<BoundColumnFamily<'_>>,
    req: &GetRequest,
    visible_from: Option<i64>,
) -> Result<Vec<TimedValue>, KvError> {
    let prefix = layout::version_prefix(&req.key);
    let lower_ts = req
        .start_ts
        .unwrap_or(0)
        .max(visible_from.unwrap_or(0))
        .max(0);
    let upper = match req.end_ts.and_then(|e| e.checked_add(1)) {
        Some(end) if end <= lower_ts => return Ok(Vec::new()),
        Some(end) if end <= validate::MAX_TS => {
            let mut k = prefix.clone();
            k.extend_from_slice(&layout::ts_bytes(end));
            k
        }
        _ => layout::after_versions(&prefix),
    };
    let mut lower = prefix;
    lower.extend_from_slice(&layout::ts_bytes(lower_ts));
    let mut ro = ReadOptions::default();
    ro.set_iterate_lower_bound(lower);
    ro.set_iterate_upper_bound(upper);
    let mut it = inner.db.raw_iterator_cf_opt(cf, ro);
    let mut versions = Vec::new();
    let decode = |k: &[u8], v: &[u8]| -> Result<TimedValue, KvError> {
        let ts = layout::version_key_ts(k).ok_or_else(|| corrupt(req))?;
        Ok(TimedValue::new(Bytes::copy_from_slice(v), ts))
    };
    if req.start_ts.is_none() {
        it.seek_to_last();
        if let (Some(k), Some(v)) = (it.key(), it.value()) {
            versions.push(decode(k, v)?);
        }
    } else {
        it.seek_to_first();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            versions.push(decode(k, v)?);
            it.next();
        }
    }
    it.status().map_err(|e| rocks_error(get_context(req), e))?;
    Ok(select_versions(versions, req, visible_from))
}

fn multi_get_blocking(inner: &Inner, mut batch: GetBatch) -> GetBatch {
    let now = now_millis();
    for (dataset, idxs) in batch.pending_by_dataset() {
        let (props, cf) = match inner.dataset(&dataset) {
            Ok(found) => found,
            Err(e) => {
                batch.fail_dataset(&dataset, &e);
                continue;
            }
        };
        let visible_from = props.visible_from(now);
        match props.kind {
            DatasetKind::Snapshot => get_snapshot(inner, &cf, &mut batch, idxs, visible_from),
            DatasetKind::TimeSeries => {
                for &i in &idxs {
                    let answer = get_time_series(inner, &cf, &batch.requests()[i], visible_from);
                    batch.answer(i, answer);
                }
            }
        }
    }
    batch
}

fn multi_put_blocking(inner: &Inner, mut batch: PutBatch) -> PutBatch {
    let mut wb = WriteBatch::default();
    let mut written = Vec::new();
    // One buffer for every snapshot row's stored value: `put_cf` copies it into the batch.
    let mut stored = Vec::new();
    for (dataset, mut idxs) in batch.pending_by_dataset() {
        let (props, cf) = match inner.dataset(&dataset) {
            Ok(found) => found,
            Err(e) => {
                batch.fail_dataset(&dataset, &e);
                continue;
            }
        };
        written.reserve(idxs.len());
        match props.kind {
            DatasetKind::Snapshot => {
                layout::sort_in_key_order(&mut idxs, |i| batch.get(i).key);
                for i in idxs {
                    let p = batch.get(i);
                    layout::snapshot_value_into(&mut stored, p.ts, p.value);
                    wb.put_cf(&cf, p.key, &stored);
                    written.push(i);
                }
            }
            DatasetKind::TimeSeries => {
                let mut keyed: Vec<(Vec<u8>, usize)> = idxs
                    .into_iter()
                    .map(|i| {
                        let p = batch.get(i);
                        (layout::version_key(p.key, p.ts), i)
                    })
                    .collect();
                // As `layout::sort_in_key_order` does, on the encoded version keys (stable: the
                // last put of a version wins).
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                for (key, i) in keyed {
                    wb.put_cf(&cf, key, batch.get(i).value);
                    written.push(i);
                }
            }
        }
    }
    if written.is_empty() {
        return batch;
    }
    let outcome = inner.db.write_opt(wb, &inner.write_opts).map_err(|e| {
        rocks_error(
            format!("multi_put of {} values (one write batch)", written.len()),
            e,
        )
    });
    for i in written {
        batch.answer(i, outcome.clone());
    }
    batch
}

fn list_blocking(
    inner: &Inner,
    dataset: &str,
    limit: usize,
    cursor: Option<ListCursor>,
) -> Result<ListPage, KvError> {
    let (props, cf) = inner.dataset(dataset)?;
    let visible_from = props.visible_from(now_millis());
    let visible = |ts: i64| visible_from.is_none_or(|cut| ts >= cut);
    let limit = limit.max(1);
    let mut ro = ReadOptions::default();
    if let Some(c) = &cursor {
        ro.set_iterate_lower_bound(match props.kind {
            // The raw key's immediate successor.
            DatasetKind::Snapshot => [c.0.as_ref(), &[0]].concat(),
            DatasetKind::TimeSeries => layout::after_versions(&layout::version_prefix(&c.0)),
        });
    }
    let context = || format!("list of dataset {dataset:?}");
    let corrupt = || {
        KvError::backend_msg(
            BACKEND,
            context(),
            "stored row is not in chronon-rocks layout",
        )
    };
    let mut it = inner.db.raw_iterator_cf_opt(&cf, ro);
    it.seek_to_first();
    let mut entries = Vec::new();
    let mut last_key: Option<Vec<u8>> = None;
    let mut more = false;
    match props.kind {
        DatasetKind::Snapshot => {
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                if entries.len() >= limit {
                    more = true;
                    break;
                }
                let (ts, value) = layout::split_snapshot_value(v).ok_or_else(corrupt)?;
                if visible(ts) {
                    entries.push((
                        Bytes::copy_from_slice(k),
                        TimedValue::new(Bytes::copy_from_slice(value), ts),
                    ));
                }
                last_key = Some(k.to_vec());
                it.next();
            }
        }
        DatasetKind::TimeSeries => {
            // Versions are ascending within a key, so a key's latest is its last row.
            let mut current: Option<(Vec<u8>, i64, Vec<u8>)> = None;
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                let (key, ts) = layout::split_version_key(k).ok_or_else(corrupt)?;
                match &mut current {
                    Some((ck, cts, cv)) if *ck == key => {
                        *cts = ts;
                        *cv = v.to_vec();
                    }
                    _ => {
                        if let Some((ck, cts, cv)) = current.take() {
                            if visible(cts) {
                                entries.push((Bytes::from(ck.clone()), TimedValue::new(cv, cts)));
                            }
                            last_key = Some(ck);
                        }
                        if entries.len() >= limit {
                            more = true;
                            break;
                        }
                        current = Some((key, ts, v.to_vec()));
                    }
                }
                it.next();
            }
            if let Some((ck, cts, cv)) = current.filter(|_| !more) {
                if visible(cts) {
                    entries.push((Bytes::from(ck.clone()), TimedValue::new(cv, cts)));
                }
                last_key = Some(ck);
            }
        }
    }
    it.status().map_err(|e| rocks_error(context(), e))?;
    Ok(ListPage {
        entries,
        next: if more {
            last_key.map(|k| ListCursor(Bytes::from(k)))
        } else {
            None
        },
    })
}

fn create_blocking(inner: &Inner, dataset: &str, props: DatasetProps) -> Result<(), KvError> {
    let _ddl = inner.ddl.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = inner.props(dataset) {
        if existing.kind != props.kind {
            return Err(KvError::DatasetConflict {
                dataset: dataset.to_string(),
                existing: existing.describe(),
                requested: props.describe(),
            });
        }
        return Ok(());
    }
    let cf = layout::cf_name(dataset);
    let context = format!("create of dataset {dataset:?}");
    if inner.db.cf_handle(&cf).is_some() {
        // Left over from a drop that did not finish; its data must not reappear.
        inner
            .db
            .drop_cf(&cf)
            .map_err(|e| rocks_error(context.clone(), e))?;
    }
    let cell = PropsCell::default();
    let _ = cell.set(props);
    inner
        .db
        .create_cf(&cf, &inner.cf_options(Some(cell)))
        .map_err(|e| rocks_error(context.clone(), e))?;
    let meta = inner.db.cf_handle(META_CF).ok_or_else(|| {
        KvError::backend_msg(BACKEND, context.clone(), "no metadata column family")
    })?;
    inner
        .db
        .put_cf_opt(
            &meta,
            dataset.as_bytes(),
            layout::encode_meta(&props),
            &sync_write_opts(),
        )
        .map_err(|e| rocks_error(context, e))?;
    inner
        .datasets
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dataset.to_string(), props);
    Ok(())
}

fn drop_blocking(inner: &Inner, dataset: &str) -> Result<(), KvError> {
    let _ddl = inner.ddl.lock().unwrap_or_else(|e| e.into_inner());
    let context = format!("drop of dataset {dataset:?}");
    inner
        .datasets
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(dataset);
    // Metadata first: a crash before the column family is dropped leaves an orphan that the
    // next open removes, never a dataset that silently lost its kind.
    let meta = inner.db.cf_handle(META_CF).ok_or_else(|| {
        KvError::backend_msg(BACKEND, context.clone(), "no metadata column family")
    })?;
    inner
        .db
        .delete_cf_opt(&meta, dataset.as_bytes(), &sync_write_opts())
        .map_err(|e| rocks_error(context.clone(), e))?;
    let cf = layout::cf_name(dataset);
    if inner.db.cf_handle(&cf).is_some() {
        inner.db.drop_cf(&cf).map_err(|e| rocks_error(context, e))?;
    }
    Ok(())
}

#[async_trait]
impl KvStore for RocksStore {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        // One multi_get / one WriteBatch per call, whatever its size.
        Capabilities::new(Self::MAX_VALUE_BYTES, 10_000, 10_000)
            .with_native_ttl()
            .with_persistence()
    }

    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        let (ds, props) = (dataset.to_string(), *props);
        self.blocking("create", dataset, move |inner| {
            create_blocking(inner, &ds, props)
        })
        .await
    }

    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        let ds = dataset.to_string();
        self.blocking("drop_dataset", dataset, move |inner| {
            drop_blocking(inner, &ds)
        })
        .await
    }

    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        validate::dataset_name(dataset)?;
        self.inner
            .props(dataset)
            .ok_or_else(|| KvError::not_found(dataset))
    }

    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        if requests.is_empty() {
            return Vec::new();
        }
        let batch = GetBatch::new(requests);
        if batch.is_done() {
            return batch.finish(BACKEND);
        }
        // Kept to answer every request if the call times out (the batch is on the blocking pool).
        let standby = batch.standby();
        let target = standby.requests()[0].dataset.as_str();
        match self
            .blocking("multi_get", target, move |inner| {
                Ok(multi_get_blocking(inner, batch))
            })
            .await
        {
            Ok(batch) => {
                drop(standby);
                batch.finish(BACKEND)
            }
            Err(e) => standby.fail(&e),
        }
    }

    async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        if requests.is_empty() {
            return Vec::new();
        }
        let target = requests[0].dataset.clone();
        let batch = PutBatch::new(requests, &self.capabilities());
        if batch.pending().next().is_none() {
            return batch.finish(BACKEND);
        }
        let standby = batch.standby();
        let timeout = self.inner.opts.timeout;
        match self
            .blocking_answer_first("multi_put", &target, timeout, move |inner| {
                let (results, requests) =
                    multi_put_blocking(inner, batch).finish_and_release(BACKEND);
                (Ok(results), requests)
            })
            .await
        {
            Ok(results) => results,
            // Timed out: the write may still land, but it was not acknowledged.
            Err(e) => standby.fail(&e),
        }
    }

    async fn list(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        validate::dataset_name(dataset)?;
        let ds = dataset.to_string();
        self.blocking("list", dataset, move |inner| {
            list_blocking(inner, &ds, limit, cursor)
        })
        .await
    }

    async fn bulk_put(
        &self,
        dataset: &str,
        rows: BulkSource<'_>,
        options: BulkPutOptions,
    ) -> Result<BulkPutReport, KvError> {
        crate::bulk::bulk_put(self, dataset, rows, options).await
    }
}
