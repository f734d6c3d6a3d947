//! `ScyllaStore`: the [`KvStore`] on the `scylla` driver.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chronon_core::batch::{
    now_millis, select_versions, visible_from, with_timeout, GetBatch, PutBatch,
};
use chronon_core::{
    validate, Capabilities, DatasetKind, DatasetProps, GetRequest, GetResponse, KvError, KvStore,
    ListCursor, ListPage, PutRequest, TimedValue,
};
use futures::StreamExt;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, Statement};
use tokio::sync::Semaphore;

use crate::cql;
use crate::error::{map_error, DriverError, Op};
use crate::naming::physical_name;
use crate::options::ScyllaOptions;
use crate::BACKEND;

/// The largest value accepted: 1 MiB. CQL itself allows far more (a mutation may be half a
/// commitlog segment, 16 MiB by default), but both ScyllaDB and Cassandra warn about cells above
/// 1 MiB and large partitions hurt every read of them; 1 MiB is well above SPEC.md's 300 KiB floor.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Largest page `list` asks for in one round trip.
const MAX_LIST_PAGE: usize = 10_000;

/// A Chronon online [`KvStore`] on ScyllaDB or Apache Cassandra.
///
/// Layout (SPEC.md "On-disk layouts"): keyspace `chronon` (configurable); per dataset a table
/// `(key blob, ts bigint, value blob)` with `PRIMARY KEY (key)` for a `Snapshot` and
/// `PRIMARY KEY ((key), ts)` clustered newest first for a `TimeSeries`; a `datasets` table keeps
/// each dataset's kind, TTL and physical table name (see [`crate::naming`]).
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
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    options: ScyllaOptions,
    /// The contact points, for error messages.
    address: String,
    meta: MetaStatements,
    datasets: RwLock<HashMap<String, Cached>>,
    permits: Semaphore,
    caps: Capabilities,
}

struct MetaStatements {
    select: PreparedStatement,
    insert: PreparedStatement,
    delete: PreparedStatement,
    columns: PreparedStatement,
}

/// One dataset as this client knows it: its properties and its prepared statements.
struct Dataset {
    props: DatasetProps,
    insert: PreparedStatement,
    latest: PreparedStatement,
    range: Option<PreparedStatement>,
    list: PreparedStatement,
}

struct Cached {
    dataset: Arc<Dataset>,
    loaded: Instant,
}

/// A row of the `datasets` table.
#[derive(Debug, Clone)]
struct MetaRow {
    dataset: String,
    kind: Option<String>,
    ttl_ms: Option<i64>,
}

impl MetaRow {
    fn props(&self, address: &str) -> Result<DatasetProps, KvError> {
        let kind = self
            .kind
            .as_deref()
            .and_then(DatasetKind::parse)
            .ok_or_else(|| {
                KvError::backend_msg(
                    BACKEND,
                    format!(
                        "reading the datasets table at {address} for dataset {:?}",
                        self.dataset
                    ),
                    format!(
                        "unknown kind {:?} (expected Snapshot or TimeSeries)",
                        self.kind
                    ),
                )
            })?;
        let ttl = self
            .ttl_ms
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(ms.unsigned_abs()));
        Ok(DatasetProps { kind, ttl })
    }
}

impl std::fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("contact_points", &self.inner.address)
            .field("keyspace", &self.inner.options.keyspace)
            .field("consistency", &self.inner.options.consistency)
            .finish()
    }
}

/// Runs `jobs` through `f`, at most `concurrency` at once, until all finish or `deadline`
/// passes; returns what finished (callers answer the rest with `Timeout`).
async fn run_until<J, R, F, Fut>(
    jobs: Vec<J>,
    concurrency: usize,
    deadline: tokio::time::Instant,
    f: F,
) -> Vec<R>
where
    F: FnMut(J) -> Fut,
    Fut: Future<Output = R>,
{
    let mut stream =
        futures::stream::iter(jobs.into_iter().map(f)).buffer_unordered(concurrency.max(1));
    let mut out = Vec::new();
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline, stream.next()).await {
        out.push(r);
    }
    out
}

impl ScyllaStore {
    /// Connects to the cluster, creates the keyspace and the `datasets` table when missing
    /// (unless [`ScyllaOptions::create_keyspace`] is off), and prepares the metadata statements.
    ///
    /// Nothing listening is `Unavailable` naming the contact points; no answer within
    /// [`ScyllaOptions::timeout`] is `Timeout`.
    pub async fn connect(options: ScyllaOptions) -> Result<ScyllaStore, KvError> {
        options.validate()?;
        let address = options.contact_points.join(",");
        let op = Op {
            operation: "connect",
            dataset: None,
            key: None,
            address: &address,
            timeout: options.timeout,
        };
        let profile = ExecutionProfile::builder()
            .consistency(options.consistency)
            .request_timeout(Some(options.timeout))
            .build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&options.contact_points)
            .connection_timeout(options.timeout)
            .default_execution_profile_handle(profile.into_handle())
            // Client-side, strictly increasing write timestamps: two puts from one client are
            // ordered as issued even when different coordinators with skewed clocks take them
            // (a Snapshot put replaces the value: last write wins).
            .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
            .schema_agreement_timeout(options.schema_timeout)
            .keyspaces_to_fetch([options.keyspace.clone()]);
        if let Some(dc) = &options.local_datacenter {
            builder = builder.prefer_datacenter(dc.clone());
        }
        if let Some(user) = &options.username {
            builder = builder.user(user.clone(), options.password.clone().unwrap_or_default());
        }
        let session = match tokio::time::timeout(options.timeout, builder.build()).await {
            Ok(Ok(session)) => session,
            Ok(Err(e)) => return Err(map_error(e, op)),
            Err(_) => return Err(KvError::timeout("connect", &address, options.timeout)),
        };
        let keyspace = options.keyspace.clone();
        let bootstrap = async {
            if options.create_keyspace {
                let schema_op = Op {
                    operation: "creating the keyspace",
                    timeout: options.schema_timeout,
                    ..op
                };
                ddl(
                    &session,
                    &cql::create_keyspace(&keyspace, &options.replication),
                    &options,
                    schema_op,
                )
                .await?;
                ddl(
                    &session,
                    &cql::create_datasets_table(&keyspace),
                    &options,
                    schema_op,
                )
                .await?;
            }
            let prepare_op = Op {
                operation: "preparing the datasets table statements",
                ..op
            };
            let (select, insert, delete, columns) = futures::try_join!(
                prepare(&session, cql::select_dataset(&keyspace), prepare_op),
                prepare(&session, cql::insert_dataset(&keyspace), prepare_op),
                prepare(&session, cql::delete_dataset(&keyspace), prepare_op),
                prepare(
                    &session,
                    cql::select_table_columns().to_string(),
                    prepare_op
                ),
            )?;
            Ok::<_, KvError>(MetaStatements {
                select,
                insert,
                delete,
                columns,
            })
        };
        let mut meta = with_timeout(options.schema_timeout, "connect", &address, bootstrap).await?;
        // system_schema is node-local (LocalStrategy): ONE is the only level that means anything.
        meta.columns.set_consistency(Consistency::One);
        let caps = Capabilities::new(
            MAX_VALUE_BYTES,
            options.max_in_flight,
            options.max_in_flight,
        )
        .with_native_ttl()
        .with_persistence();
        Ok(ScyllaStore {
            inner: Arc::new(Inner {
                session,
                permits: Semaphore::new(options.max_in_flight),
                options,
                address,
                meta,
                datasets: RwLock::new(HashMap::new()),
                caps,
            }),
        })
    }

    /// Opens a store from a `scylla://` URL (see [`ScyllaOptions::from_url_str`] for the format):
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), chronon_core::KvError> {
    /// let url = url::Url::parse("scylla://127.0.0.1:9042/chronon?consistency=local_quorum").unwrap();
    /// let store = chronon_scylla::open_url(&url).await?;
    /// # Ok(()) }
    /// ```
    pub async fn open_url(url: &url::Url) -> Result<ScyllaStore, KvError> {
        ScyllaStore::connect(ScyllaOptions::from_url(url)?).await
    }

    /// Opens a store from a URL string; unlike [`ScyllaStore::open_url`] this accepts several
    /// hosts with ports (`scylla://host1:9042,host2:9042/chronon`), which `url::Url` rejects.
    pub async fn open_str(url: &str) -> Result<ScyllaStore, KvError> {
        ScyllaStore::connect(ScyllaOptions::from_url_str(url)?).await
    }

    /// The options this store was opened with.
    pub fn options(&self) -> &ScyllaOptions {
        &self.inner.options
    }

    /// The driver session, for callers that need CQL the adapter does not offer.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    fn op<'a>(
        &'a self,
        operation: &'a str,
        dataset: Option<&'a str>,
        key: Option<&'a [u8]>,
    ) -> Op<'a> {
        Op {
            operation,
            dataset,
            key,
            address: &self.inner.address,
            timeout: self.inner.options.timeout,
        }
    }

    fn schema_op<'a>(&'a self, operation: &'a str, dataset: &'a str) -> Op<'a> {
        Op {
            timeout: self.inner.options.schema_timeout,
            ..self.op(operation, Some(dataset), None)
        }
    }

    fn cached(&self, dataset: &str) -> Option<Arc<Dataset>> {
        let map = self
            .inner
            .datasets
            .read()
            .unwrap_or_else(|e| e.into_inner());
        map.get(dataset)
            .filter(|c| c.loaded.elapsed() < self.inner.options.metadata_cache_ttl)
            .map(|c| c.dataset.clone())
    }

    fn forget(&self, dataset: &str) {
        self.inner
            .datasets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(dataset);
    }

    /// The `datasets` row stored under `physical`, if any.
    async fn read_meta(&self, physical: &str, op: Op<'_>) -> Result<Option<MetaRow>, KvError> {
        let result = self
            .inner
            .session
            .execute_unpaged(&self.inner.meta.select, (physical,))
            .await
            .map_err(|e| map_error(e, op))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| map_error(DriverError::result(e), op))?;
        let row = rows
            .maybe_first_row::<(Option<String>, Option<String>, Option<i64>)>()
            .map_err(|e| map_error(DriverError::result(e), op))?;
        Ok(row.map(|(dataset, kind, ttl_ms)| MetaRow {
            dataset: dataset.unwrap_or_default(),
            kind,
            ttl_ms,
        }))
    }

    /// The dataset's metadata row when it belongs to `dataset` (not to another name that maps
    /// to the same physical table).
    async fn own_meta(&self, dataset: &str, op: Op<'_>) -> Result<Option<MetaRow>, KvError> {
        let row = self.read_meta(&physical_name(dataset), op).await?;
        Ok(row.filter(|m| m.dataset == dataset))
    }

    /// The dataset with its prepared statements, from the cache or the `datasets` table.
    async fn dataset(&self, dataset: &str, operation: &str) -> Result<Arc<Dataset>, KvError> {
        if let Some(d) = self.cached(dataset) {
            return Ok(d);
        }
        let op = self.op(operation, Some(dataset), None);
        let meta = self
            .own_meta(dataset, op)
            .await?
            .ok_or_else(|| KvError::not_found(dataset))?;
        let props = meta.props(&self.inner.address)?;
        let statements = cql::dataset_statements(
            &self.inner.options.keyspace,
            &physical_name(dataset),
            props.kind,
            props.ttl.is_some(),
        );
        let session = &self.inner.session;
        let range = async {
            match statements.range.clone() {
                Some(text) => prepare(session, text, op).await.map(Some),
                None => Ok(None),
            }
        };
        let (insert, latest, range, list) = futures::try_join!(
            prepare(session, statements.insert.clone(), op),
            prepare(session, statements.latest.clone(), op),
            range,
            prepare(session, statements.list.clone(), op),
        )?;
        let ds = Arc::new(Dataset {
            props,
            insert,
            latest,
            range,
            list,
        });
        self.inner
            .datasets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                dataset.to_string(),
                Cached {
                    dataset: ds.clone(),
                    loaded: Instant::now(),
                },
            );
        Ok(ds)
    }

    /// Resolves every dataset a batch names, concurrently, within `deadline`.
    async fn datasets_for(
        &self,
        names: Vec<String>,
        operation: &'static str,
        deadline: tokio::time::Instant,
    ) -> HashMap<String, Result<Arc<Dataset>, KvError>> {
        let timeout = self.inner.options.timeout;
        let lookups = names.into_iter().map(|name| async move {
            let result =
                match tokio::time::timeout_at(deadline, self.dataset(&name, operation)).await {
                    Ok(r) => r,
                    Err(_) => Err(KvError::timeout(
                        operation,
                        format!("dataset {name:?}"),
                        timeout,
                    )),
                };
            (name, result)
        });
        futures::future::join_all(lookups)
            .await
            .into_iter()
            .collect()
    }

    /// Forgets a dataset whose table turned out to be gone (dropped by another client).
    fn note_error(&self, dataset: &str, err: &KvError) {
        if matches!(err, KvError::DatasetNotFound { .. }) {
            self.forget(dataset);
        }
    }

    async fn get_one(
        &self,
        ds: &Dataset,
        req: &GetRequest,
        cut: Option<i64>,
    ) -> Result<Vec<TimedValue>, KvError> {
        let op = self.op("multi_get", Some(&req.dataset), Some(&req.key));
        let _permit = self.inner.permits.acquire().await.map_err(|e| {
            KvError::backend(BACKEND, "multi_get: waiting for an in-flight slot", e)
        })?;
        let key: &[u8] = &req.key;
        let mut versions = Vec::new();
        match (&ds.range, req.start_ts) {
            (Some(range), Some(start)) => {
                // Only versions the TTL still shows, and only the asked range, leave the server.
                let lo = start.max(cut.unwrap_or(i64::MIN));
                let hi = req.end_ts.unwrap_or(i64::MAX);
                if lo > hi {
                    return Ok(Vec::new());
                }
                let pager = self
                    .inner
                    .session
                    .execute_iter(range.clone(), (key, lo, hi))
                    .await
                    .map_err(|e| map_error(e, op))?;
                let mut rows = pager
                    .rows_stream::<(Option<i64>, Option<Bytes>)>()
                    .map_err(|e| map_error(DriverError::result(e), op))?;
                while let Some(row) = rows.next().await {
                    let (ts, value) = row.map_err(|e| map_error(e, op))?;
                    if let Some(ts) = ts {
                        versions.push(TimedValue::new(value.unwrap_or_default(), ts));
                    }
                }
                // The table is clustered newest first; SPEC.md returns oldest first.
                versions.reverse();
            }
            _ => {
                let result = self
                    .inner
                    .session
                    .execute_unpaged(&ds.latest, (key,))
                    .await
                    .map_err(|e| map_error(e, op))?;
                let rows = result
                    .into_rows_result()
                    .map_err(|e| map_error(DriverError::result(e), op))?;
                for row in rows
                    .rows::<(Option<i64>, Option<Bytes>)>()
                    .map_err(|e| map_error(DriverError::result(e), op))?
                {
                    let (ts, value) = row.map_err(|e| map_error(DriverError::result(e), op))?;
                    if let Some(ts) = ts {
                        versions.push(TimedValue::new(value.unwrap_or_default(), ts));
                    }
                }
            }
        }
        Ok(select_versions(versions, req, cut))
    }

    async fn put_one(&self, ds: &Dataset, job: &PutJob) -> Result<(), KvError> {
        let op = self.op("multi_put", Some(&job.dataset), Some(&job.key));
        let _permit = self.inner.permits.acquire().await.map_err(|e| {
            KvError::backend(BACKEND, "multi_put: waiting for an in-flight slot", e)
        })?;
        let key: &[u8] = &job.key;
        let value: &[u8] = &job.value;
        let session = &self.inner.session;
        let result = match ds.props.ttl_millis() {
            Some(ttl_ms) => {
                let ttl = cql::write_ttl_secs(ttl_ms, job.ts, now_millis());
                session
                    .execute_unpaged(&ds.insert, (key, job.ts, value, ttl))
                    .await
            }
            None => {
                session
                    .execute_unpaged(&ds.insert, (key, job.ts, value))
                    .await
            }
        };
        result.map(|_| ()).map_err(|e| map_error(e, op))
    }

    /// Checks that the table of `physical` has the shape of `kind` (a `TimeSeries` clusters on
    /// `ts`), so a table left behind by an interrupted `create` of the other kind is never
    /// adopted silently. Silent when the schema tables do not show the table.
    async fn check_table_kind(
        &self,
        dataset: &str,
        physical: &str,
        kind: DatasetKind,
    ) -> Result<(), KvError> {
        let op = self.schema_op("create", dataset);
        let result = self
            .inner
            .session
            .execute_unpaged(
                &self.inner.meta.columns,
                (self.inner.options.keyspace.as_str(), physical),
            )
            .await
            .map_err(|e| map_error(e, op))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| map_error(DriverError::result(e), op))?;
        for row in rows
            .rows::<(Option<String>, Option<String>)>()
            .map_err(|e| map_error(DriverError::result(e), op))?
        {
            let (column, column_kind) = row.map_err(|e| map_error(DriverError::result(e), op))?;
            if column.as_deref() != Some("ts") {
                continue;
            }
            let found = if column_kind.as_deref() == Some("clustering") {
                DatasetKind::TimeSeries
            } else {
                DatasetKind::Snapshot
            };
            if found != kind {
                return Err(KvError::DatasetConflict {
                    dataset: dataset.to_string(),
                    existing: format!(
                        "{found} (table {physical:?} exists without a datasets entry)"
                    ),
                    requested: kind.to_string(),
                });
            }
        }
        Ok(())
    }

    async fn create_inner(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        let physical = physical_name(dataset);
        let op = self.schema_op("create", dataset);
        let existing = self.read_meta(&physical, op).await?;
        let (kind, ttl_ms) = match &existing {
            Some(meta) if meta.dataset != dataset => {
                return Err(KvError::InvalidDataset {
                    dataset: dataset.to_string(),
                    reason: format!(
                        "its CQL table name {physical:?} is already used by dataset {:?}",
                        meta.dataset
                    ),
                })
            }
            Some(meta) => {
                let have = meta.props(&self.inner.address)?;
                if have.kind != props.kind {
                    return Err(KvError::DatasetConflict {
                        dataset: dataset.to_string(),
                        existing: have.describe(),
                        requested: props.describe(),
                    });
                }
                // Idempotent: the dataset keeps the properties it was created with.
                (have.kind, have.ttl_millis())
            }
            None => (props.kind, props.ttl_millis()),
        };
        // Table first, then its datasets entry: a dataset is visible only once its table exists.
        // Re-running CREATE ... IF NOT EXISTS for an existing entry repairs a dropped-but-listed
        // table after an interrupted drop.
        let keyspace = &self.inner.options.keyspace;
        ddl(
            &self.inner.session,
            &cql::create_table(keyspace, &physical, kind, ttl_ms),
            &self.inner.options,
            op,
        )
        .await?;
        self.check_table_kind(dataset, &physical, kind).await?;
        if existing.is_none() {
            self.inner
                .session
                .execute_unpaged(
                    &self.inner.meta.insert,
                    (physical.as_str(), dataset, kind.as_str(), ttl_ms),
                )
                .await
                .map_err(|e| map_error(e, op))?;
        }
        self.forget(dataset);
        Ok(())
    }

    async fn drop_inner(&self, dataset: &str) -> Result<(), KvError> {
        let physical = physical_name(dataset);
        let op = self.schema_op("drop_dataset", dataset);
        self.forget(dataset);
        // Only a table this dataset owns is dropped; a name that maps to another dataset's
        // table, or was never created, is already "dropped".
        if self.own_meta(dataset, op).await?.is_some() {
            // Table first: if this is interrupted the entry remains and the next drop or
            // create finishes the job.
            ddl(
                &self.inner.session,
                &cql::drop_table(&self.inner.options.keyspace, &physical),
                &self.inner.options,
                op,
            )
            .await?;
            self.inner
                .session
                .execute_unpaged(&self.inner.meta.delete, (physical.as_str(),))
                .await
                .map_err(|e| map_error(e, op))?;
        }
        self.forget(dataset);
        Ok(())
    }
}

/// Runs a schema statement (no bound values, so unprepared) and waits for every node to agree
/// on the new schema before returning.
async fn ddl(
    session: &Session,
    text: &str,
    options: &ScyllaOptions,
    op: Op<'_>,
) -> Result<(), KvError> {
    let mut statement = Statement::new(text);
    statement.set_request_timeout(Some(options.schema_timeout));
    session
        .query_unpaged(statement, ())
        .await
        .map_err(|e| map_error(e, op))?;
    session
        .await_schema_agreement()
        .await
        .map_err(|e| map_error(e, op))?;
    Ok(())
}

/// Prepares a statement; every statement the adapter prepares is idempotent (plain upserts and
/// reads), which lets the driver's retry policy retry it after a timeout.
async fn prepare(
    session: &Session,
    text: String,
    op: Op<'_>,
) -> Result<PreparedStatement, KvError> {
    let mut prepared = session
        .prepare(Statement::new(text))
        .await
        .map_err(|e| map_error(e, op))?;
    prepared.set_is_idempotent(true);
    Ok(prepared)
}

/// A put that goes to the database (duplicates within one call are folded into the last one).
struct PutJob {
    index: usize,
    dataset: String,
    key: Bytes,
    value: Bytes,
    ts: i64,
}

/// Folds puts that write the same slot (dataset, key and, for a time series, version): returns
/// the indexes to send (the last put of each slot) and `(earlier, later)` pairs in input order,
/// each earlier put taking the result of the later one.
fn fold_duplicates<S: Eq + std::hash::Hash>(
    puts: Vec<(usize, S)>,
) -> (Vec<usize>, Vec<(usize, usize)>) {
    let mut last: HashMap<S, usize> = HashMap::new();
    let mut aliases = Vec::new();
    for (index, slot) in puts {
        if let Some(previous) = last.insert(slot, index) {
            aliases.push((previous, index));
        }
    }
    let mut sent: Vec<usize> = last.into_values().collect();
    sent.sort_unstable();
    (sent, aliases)
}

/// Gives each folded put the result of the put that was sent for it (following chains
/// `a -> b -> c` back from the end). A put whose representative has no result yet stays unanswered.
fn share_results<R: Clone>(results: &mut HashMap<usize, R>, aliases: &[(usize, usize)]) {
    for (earlier, later) in aliases.iter().rev() {
        if let Some(r) = results.get(later).cloned() {
            results.insert(*earlier, r);
        }
    }
}

#[async_trait]
impl KvStore for ScyllaStore {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.caps
    }

    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        let timeout = self.inner.options.schema_timeout;
        with_timeout(
            timeout,
            "create",
            dataset,
            self.create_inner(dataset, props),
        )
        .await
    }

    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        let timeout = self.inner.options.schema_timeout;
        with_timeout(timeout, "drop_dataset", dataset, self.drop_inner(dataset)).await
    }

    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        validate::dataset_name(dataset)?;
        if let Some(d) = self.cached(dataset) {
            return Ok(d.props);
        }
        let op = self.op("dataset_props", Some(dataset), None);
        let lookup = async {
            match self.own_meta(dataset, op).await? {
                Some(meta) => meta.props(&self.inner.address),
                None => Err(KvError::not_found(dataset)),
            }
        };
        with_timeout(self.inner.options.timeout, "dataset_props", dataset, lookup).await
    }

    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        let mut batch = GetBatch::new(requests);
        if batch.is_done() {
            return batch.finish(BACKEND);
        }
        let timeout = self.inner.options.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let names: Vec<String> = batch.pending_by_dataset().into_keys().collect();
        let datasets = self.datasets_for(names, "multi_get", deadline).await;
        let mut jobs = Vec::new();
        for (name, ds) in &datasets {
            match ds {
                Err(e) => batch.fail_dataset(name, e),
                Ok(ds) => {
                    let cut = visible_from(&ds.props);
                    jobs.extend(
                        batch
                            .pending()
                            .filter(|(_, r)| &r.dataset == name)
                            .map(|(i, r)| (i, ds.clone(), r.clone(), cut)),
                    );
                }
            }
        }
        let done = run_until(
            jobs,
            self.inner.options.max_in_flight,
            deadline,
            |(i, ds, req, cut)| async move {
                let result = self.get_one(&ds, &req, cut).await;
                if let Err(e) = &result {
                    self.note_error(&req.dataset, e);
                }
                (i, result)
            },
        )
        .await;
        for (i, result) in done {
            batch.answer(i, result);
        }
        let late: Vec<(usize, String)> = batch
            .pending()
            .map(|(i, r)| (i, r.dataset.clone()))
            .collect();
        for (i, dataset) in late {
            batch.answer(
                i,
                Err(KvError::timeout(
                    "multi_get",
                    format!("dataset {dataset:?}"),
                    timeout,
                )),
            );
        }
        batch.finish(BACKEND)
    }

    async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        let mut batch = PutBatch::new(requests, &self.inner.caps);
        let timeout = self.inner.options.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let names: Vec<String> = batch.pending_by_dataset().into_keys().collect();
        if names.is_empty() {
            return batch.finish(BACKEND);
        }
        let datasets = self.datasets_for(names, "multi_put", deadline).await;
        for (name, ds) in &datasets {
            if let Err(e) = ds {
                batch.fail_dataset(name, e);
            }
        }
        // Two puts of the same version in one call would race when run concurrently; the last
        // one in the batch is the one that must win (as it does when applied in order), so only
        // it is sent and the earlier ones share its result.
        let mut jobs: Vec<(Arc<Dataset>, PutJob)> = Vec::new();
        let mut slots = Vec::new();
        for p in batch.pending() {
            let Some(Ok(ds)) = datasets.get(p.dataset) else {
                continue;
            };
            let version = (ds.props.kind == DatasetKind::TimeSeries).then_some(p.ts);
            slots.push((p.index, (p.dataset, p.key, version)));
            jobs.push((
                ds.clone(),
                PutJob {
                    index: p.index,
                    dataset: p.dataset.to_string(),
                    key: p.key.clone(),
                    value: p.value.clone(),
                    ts: p.ts,
                },
            ));
        }
        let (sent, aliases) = fold_duplicates(slots);
        let sent: std::collections::HashSet<usize> = sent.into_iter().collect();
        jobs.retain(|(_, job)| sent.contains(&job.index));
        let done = run_until(
            jobs,
            self.inner.options.max_in_flight,
            deadline,
            |(ds, job)| async move {
                let result = self.put_one(&ds, &job).await;
                if let Err(e) = &result {
                    self.note_error(&job.dataset, e);
                }
                (job.index, result)
            },
        )
        .await;
        let mut results: HashMap<usize, Result<(), KvError>> = done.into_iter().collect();
        share_results(&mut results, &aliases);
        for (i, r) in results {
            batch.answer(i, r);
        }
        let late: Vec<(usize, String)> = batch
            .pending()
            .map(|p| (p.index, p.dataset.to_string()))
            .collect();
        for (i, dataset) in late {
            batch.answer(
                i,
                Err(KvError::timeout(
                    "multi_put",
                    format!("dataset {dataset:?}"),
                    timeout,
                )),
            );
        }
        batch.finish(BACKEND)
    }

    async fn list(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        validate::dataset_name(dataset)?;
        let work = async {
            let ds = self.dataset(dataset, "list").await?;
            let op = self.op("list", Some(dataset), None);
            let mut statement = ds.list.clone();
            let page = limit.clamp(1, MAX_LIST_PAGE);
            statement.set_page_size(i32::try_from(page).unwrap_or(1));
            let mut paging = match cursor {
                Some(c) if !c.0.is_empty() => PagingState::new_from_raw_bytes(c.0.to_vec()),
                _ => PagingState::start(),
            };
            let cut = visible_from(&ds.props);
            let mut entries = Vec::new();
            // A page can come back empty while more follow (every row in it past the TTL, or a
            // server page cut short); keep going until something or the end is reached, so an
            // empty page is only ever the last one.
            let next = loop {
                let _permit = self.inner.permits.acquire().await.map_err(|e| {
                    KvError::backend(BACKEND, "list: waiting for an in-flight slot", e)
                })?;
                let (result, response) = self
                    .inner
                    .session
                    .execute_single_page(&statement, (), paging)
                    .await
                    .map_err(|e| {
                        let err = map_error(e, op);
                        self.note_error(dataset, &err);
                        err
                    })?;
                let rows = result
                    .into_rows_result()
                    .map_err(|e| map_error(DriverError::result(e), op))?;
                for row in rows
                    .rows::<(Option<Bytes>, Option<i64>, Option<Bytes>)>()
                    .map_err(|e| map_error(DriverError::result(e), op))?
                {
                    let (key, ts, value) =
                        row.map_err(|e| map_error(DriverError::result(e), op))?;
                    let (Some(key), Some(ts)) = (key, ts) else {
                        continue;
                    };
                    // The newest version per key came back (PER PARTITION LIMIT 1 on a
                    // newest-first time series); when even it is past the TTL the key has
                    // nothing visible.
                    if cut.is_none_or(|c| ts >= c) {
                        entries.push((key, TimedValue::new(value.unwrap_or_default(), ts)));
                    }
                }
                let state = match response {
                    PagingStateResponse::HasMorePages { state } => state,
                    PagingStateResponse::NoMorePages => break None,
                };
                let Some(bytes) = state.as_bytes_slice() else {
                    break None;
                };
                if !entries.is_empty() {
                    break Some(ListCursor(Bytes::copy_from_slice(bytes)));
                }
                paging = state;
            };
            Ok(ListPage { entries, next })
        };
        with_timeout(self.inner.options.timeout, "list", dataset, work).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_puts_fold_into_the_last_one() {
        // Slots: a, b, a, c, a, b
        let puts = vec![(0, "a"), (1, "b"), (2, "a"), (3, "c"), (4, "a"), (5, "b")];
        let (sent, aliases) = fold_duplicates(puts);
        assert_eq!(
            sent,
            vec![3, 4, 5],
            "only the last put of each slot is sent"
        );
        assert_eq!(aliases, vec![(0, 2), (2, 4), (1, 5)], "in input order");
        let mut results: HashMap<usize, Result<(), &str>> =
            [(3, Ok(())), (4, Err("boom")), (5, Ok(()))]
                .into_iter()
                .collect();
        share_results(&mut results, &aliases);
        assert_eq!(results.len(), 6, "every put answered");
        assert_eq!(
            results[&0],
            Err("boom"),
            "chain 0 -> 2 -> 4 takes 4's result"
        );
        assert_eq!(results[&2], Err("boom"));
        assert_eq!(results[&1], Ok(()));
    }

    #[test]
    fn folding_keeps_distinct_slots_and_leaves_timed_out_ones_unanswered() {
        let (sent, aliases) =
            fold_duplicates(vec![(0, ("ds", 1)), (1, ("ds", 2)), (2, ("other", 1))]);
        assert_eq!(sent, vec![0, 1, 2]);
        assert!(aliases.is_empty());
        let (sent, aliases) = fold_duplicates(vec![(7, "k"), (9, "k")]);
        assert_eq!(sent, vec![9]);
        let mut results: HashMap<usize, Result<(), ()>> = HashMap::new(); // 9 did not finish
        share_results(&mut results, &aliases);
        assert!(
            results.is_empty(),
            "7 stays pending and is answered Timeout by the caller"
        );
    }

    #[tokio::test]
    async fn run_until_keeps_what_finished_by_the_deadline() {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let jobs: Vec<u64> = vec![0, 10, 5000, 20];
        let mut done = run_until(jobs, 2, deadline, |ms| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        })
        .await;
        done.sort_unstable();
        assert_eq!(
            done,
            vec![0, 10, 20],
            "the slow job is left out, the others are kept"
        );
    }
}
