//! The state every operation shares: the open RocksDB database with its record of datasets, and
//! the blocking pool every RocksDB call runs on (bounded by a semaphore, under a timeout).
//!
//! Opening also restores each dataset's kind and TTL from the metadata column family and tidies
//! up after a crash (orphan column families, stale metadata, a bulk load's leftover files),
//! because RocksDB needs every column family's options at the moment it opens the directory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use chronon_core::batch::now_millis;
use chronon_core::{Capabilities, DatasetKind, DatasetProps, ErrorContext, KvError};
use rocksdb::compaction_filter::Decision;
use rocksdb::{
    BlockBasedOptions, BoundColumnFamily, Cache, ColumnFamilyDescriptor, DBCompressionType,
    MultiThreaded, Options, ReadOptions, WriteBufferManager, WriteOptions,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Compression, RocksOptions, BACKEND};
use crate::error::{map_error, OPEN};
use crate::layout::{self, META_CF};

/// The RocksDB handle type: column families can be created and dropped through `&self`.
pub(crate) type Db = rocksdb::DBWithThreadMode<MultiThreaded>;

/// Sub-directory of the database directory where `bulk_put` writes SST files before ingesting them.
pub(crate) const BULK_TMP_DIR: &str = "chronon-bulk-tmp";

/// The largest value accepted. RocksDB itself takes far larger values, but multi-megabyte
/// features are a modelling mistake and would thrash the block cache.
pub(crate) const MAX_VALUE_BYTES: usize = 4 << 20;

/// What the store supports: one multi_get / one `WriteBatch` per call, whatever its size.
pub(crate) fn capabilities() -> Capabilities {
    Capabilities::new(MAX_VALUE_BYTES, 10_000, 10_000)
        .with_native_ttl()
        .with_persistence()
        .with_single_client()
}

/// The TTL cell a dataset's compaction filter reads. It is empty until the dataset's metadata has
/// been read (the filter then keeps everything), because RocksDB needs the filter when it opens
/// the column family, before the metadata column family can be read.
pub(crate) type PropsCell = Arc<OnceLock<DatasetProps>>;

/// The open database and what the store keeps beside it.
pub(crate) struct Database {
    pub(crate) db: Db,
    /// Kind and TTL of every dataset, loaded from [`META_CF`] at open and kept in step by
    /// `create`/`drop_dataset`. Only one process can open the directory, so this is authoritative
    /// (no cache to expire).
    pub(crate) datasets: RwLock<HashMap<String, DatasetProps>>,
    /// Serialises `create` and `drop_dataset` (column family + metadata changes).
    pub(crate) ddl: Mutex<()>,
    cache: Cache,
    pub(crate) opts: RocksOptions,
    pub(crate) write_opts: WriteOptions,
    /// The directory, as errors name it.
    address: String,
}

impl Database {
    /// What a call on this database is doing, for [`map_error`]: `operation` under the store's
    /// timeout; add the dataset (and key) it is on.
    pub(crate) fn context(&self, operation: &'static str) -> ErrorContext<'_> {
        ErrorContext::new(BACKEND, operation, &self.address, self.opts.timeout)
    }

    /// The kind and TTL of `dataset`, if it exists.
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
        let cf = layout::with_cf_name(dataset, |name| self.db.cf_handle(name))
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
    // in the block cache: once a file's index block outgrew a cache shard (64 MiB / 64 shards)
    // it could not be cached at all and every read decompressed it again, which made reads of a
    // few million versions ten times slower.
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

/// Opens the directory (blocking): every dataset's column family with its TTL filter, then the
/// datasets' kinds and TTLs from [`META_CF`].
fn open_database(opts: RocksOptions, address: String) -> Result<Database, KvError> {
    let path = opts.path.clone();
    let ctx = ErrorContext::new(BACKEND, OPEN, &address, opts.timeout);
    if opts.create_if_missing {
        std::fs::create_dir_all(&path).map_err(|e| {
            ctx.backend_error(format!("creating the directory: {e}"), Some(Arc::new(e)))
        })?;
    }
    let db_opts = db_options(&opts);
    let cache = Cache::new_lru_cache(opts.block_cache_bytes);
    let existing = if path.join("CURRENT").exists() {
        Db::list_cf(&db_opts, &path).map_err(|e| map_error(e, ctx))?
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
    let db =
        Db::open_cf_descriptors(&db_opts, &path, descriptors).map_err(|e| map_error(e, ctx))?;
    let datasets = restore_datasets(&db, &cells, ctx.operation("restore_datasets"))?;
    // SST files of a bulk load that never finished.
    let _ = std::fs::remove_dir_all(path.join(BULK_TMP_DIR));

    let mut write_opts = WriteOptions::default();
    write_opts.set_sync(opts.sync_writes);
    Ok(Database {
        db,
        datasets: RwLock::new(datasets),
        ddl: Mutex::new(()),
        cache,
        opts,
        write_opts,
        address,
    })
}

/// Restores kinds and TTLs into the datasets' filter cells; tidies up after a crash between a
/// column family and its metadata (metadata without a column family is deleted, a column family
/// without metadata is dropped).
fn restore_datasets(
    db: &Db,
    cells: &HashMap<String, PropsCell>,
    ctx: ErrorContext<'_>,
) -> Result<HashMap<String, DatasetProps>, KvError> {
    let mut datasets = HashMap::new();
    let meta = db
        .cf_handle(META_CF)
        .ok_or_else(|| ctx.backend_error("no metadata column family", None))?;
    let mut it = db.raw_iterator_cf_opt(&meta, ReadOptions::default());
    it.seek_to_first();
    let mut stale = Vec::new();
    while let (Some(k), Some(v)) = (it.key(), it.value()) {
        let name = String::from_utf8_lossy(k).into_owned();
        let props = layout::decode_meta(v).map_err(|reason| {
            ctx.dataset(&name)
                .backend_error(format!("reading its metadata: {reason}"), None)
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
    it.status().map_err(|e| map_error(e, ctx))?;
    drop(it);
    for k in stale {
        db.delete_cf(&meta, k).map_err(|e| map_error(e, ctx))?;
    }
    for ds in cells.keys().filter(|ds| !datasets.contains_key(*ds)) {
        tracing::warn!(dataset = %ds, "dropping column family without metadata (interrupted create or drop)");
        db.drop_cf(&layout::cf_name(ds))
            .map_err(|e| map_error(e, ctx.dataset(ds)))?;
    }
    Ok(datasets)
}

/// The open database plus the blocking pool's permits; clones share both.
#[derive(Clone)]
pub(crate) struct Client {
    database: Arc<Database>,
    permits: Arc<Semaphore>,
}

impl Client {
    /// Opens (or creates) the database described by `options` on the blocking pool, under
    /// `options.timeout`.
    pub(crate) async fn open(options: RocksOptions) -> Result<Self, KvError> {
        options.validate()?;
        let address = options.path.display().to_string();
        let ctx = ErrorContext::new(BACKEND, OPEN, &address, options.timeout);
        let permits = Arc::new(Semaphore::new(options.blocking_threads.max(1)));
        let open_address = address.clone();
        let database = ctx
            .with_timeout(async move {
                tokio::task::spawn_blocking(move || open_database(options, open_address))
                    .await
                    .map_err(|e| blocking_task_failed(ctx, e.to_string()))?
            })
            .await?;
        Ok(Client {
            database: Arc::new(database),
            permits,
        })
    }

    /// What a call is doing, for errors: see [`Database::context`].
    pub(crate) fn context(&self, operation: &'static str) -> ErrorContext<'_> {
        self.database.context(operation)
    }

    /// The open database.
    pub(crate) fn database(&self) -> &Database {
        &self.database
    }

    /// The options the store was opened with.
    pub(crate) fn options(&self) -> &RocksOptions {
        &self.database.opts
    }

    /// The directory, as errors name it.
    pub(crate) fn address(&self) -> &str {
        &self.database.address
    }

    /// Starts `f` on the blocking pool without a permit or timeout, for the long steps of a bulk
    /// load, which the caller awaits under its own per-chunk timeout.
    pub(crate) fn spawn_blocking_task<T, F>(
        &self,
        f: F,
    ) -> tokio::task::JoinHandle<Result<T, KvError>>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, KvError> + Send + 'static,
    {
        let database = self.database.clone();
        tokio::task::spawn_blocking(move || f(&database))
    }

    /// Runs `f` on the blocking pool under the store's timeout.
    pub(crate) async fn blocking<T, F>(
        &self,
        operation: &'static str,
        dataset: &str,
        f: F,
    ) -> Result<T, KvError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, KvError> + Send + 'static,
    {
        self.blocking_with(operation, dataset, self.database.opts.timeout, f)
            .await
    }

    /// Runs `f` on the blocking pool, once one of the store's permits is free, under `timeout`
    /// (waiting for a permit counts). On timeout the call returns at once; RocksDB finishes the
    /// work in the background, since a running RocksDB call cannot be interrupted.
    pub(crate) async fn blocking_with<T, F>(
        &self,
        operation: &'static str,
        dataset: &str,
        timeout: Duration,
        f: F,
    ) -> Result<T, KvError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, KvError> + Send + 'static,
    {
        self.on_blocking_pool(operation, dataset, timeout, |database, permit| async move {
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                f(&database)
            })
            .await
            .map_err(|e| e.to_string())
        })
        .await
    }

    /// [`Client::blocking_with`] for work that has freeing left to do once its result exists:
    /// `f` returns the result and what the call no longer needs (a put batch's requests); the
    /// caller has the result at once, and the rest is dropped after, on the blocking thread,
    /// still under the permit. Freeing a 1,000-put batch's 3,000 buffers is about 5 % of the
    /// call, which the caller no longer waits for. (Reads gain nothing measurable from it, so
    /// they keep the plain path.)
    ///
    /// The database handle is let go of *before* the answer: a caller that drops its store on
    /// the answer then closes RocksDB (and frees the directory lock) itself, so the directory
    /// reopens at once (otherwise it can fail as "locked" while this thread still holds the
    /// handle during the freeing).
    pub(crate) async fn blocking_answer_first<T, L, F>(
        &self,
        operation: &'static str,
        dataset: &str,
        timeout: Duration,
        f: F,
    ) -> Result<T, KvError>
    where
        T: Send + 'static,
        L: Send + 'static,
        F: FnOnce(&Database) -> (Result<T, KvError>, L) + Send + 'static,
    {
        self.on_blocking_pool(operation, dataset, timeout, |database, permit| async move {
            let (answer_tx, answer) = tokio::sync::oneshot::channel();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let (result, leftover) = f(&database);
                drop(database);
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
    /// awaits its result), all under `timeout`, with errors naming the operation and dataset.
    async fn on_blocking_pool<T, Fut>(
        &self,
        operation: &'static str,
        dataset: &str,
        timeout: Duration,
        run: impl FnOnce(Arc<Database>, OwnedSemaphorePermit) -> Fut,
    ) -> Result<T, KvError>
    where
        Fut: std::future::Future<Output = Result<Result<T, KvError>, String>>,
    {
        let ctx = ErrorContext {
            timeout,
            ..self.context(operation).dataset(dataset)
        };
        let database = self.database.clone();
        let permits = self.permits.clone();
        ctx.with_timeout(async move {
            let permit = permits
                .acquire_owned()
                .await
                .map_err(|e| blocking_task_failed(ctx, e.to_string()))?;
            run(database, permit)
                .await
                .map_err(|e| blocking_task_failed(ctx, e))?
        })
        .await
    }
}

/// The error of a blocking task that ended without a result (it panicked, or the pool is gone).
fn blocking_task_failed(ctx: ErrorContext<'_>, message: String) -> KvError {
    ctx.backend_error(format!("blocking task: {message}"), None)
}
