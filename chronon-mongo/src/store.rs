//! `MongoStore`: the `KvStore` on MongoDB. Driver calls live here; the layout is in `layout.rs`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chronon_core::batch::{self, GetBatch, PutBatch};
use chronon_core::{
    key_preview, validate, BulkPutOptions, BulkPutReport, BulkSource, Capabilities, DatasetKind,
    DatasetProps, GetRequest, GetResponse, KvError, KvStore, ListCursor, ListPage, PutRequest,
    TimedValue,
};
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{doc, Bson, Document, RawArrayBuf, RawDocumentBuf};
use mongodb::options::{ClientOptions, DatabaseOptions, Hint};
use mongodb::{Client, Collection, Database};

use crate::cache::PropsCache;
use crate::error::{code, map_err, DUPLICATE_KEY, NAMESPACE_EXISTS, NAMESPACE_NOT_FOUND};
use crate::layout::{self, KEY, TS, VALUE};
use crate::options::MongoOptions;

const BACKEND: &str = "mongodb";
/// Attempts of an upsert that hit a duplicate key error (two clients inserting the same new key
/// at once; MongoDB documents that such an upsert may be retried).
const UPSERT_ATTEMPTS: usize = 3;

/// A Chronon `KvStore` on a MongoDB database (see the crate docs for the layout).
///
/// Cheap to clone (the driver's `Client` is a handle to a shared pool); share it through `Arc`.
///
/// A store made by [`MongoStore::connect`] or [`MongoStore::with_client_options`] owns its driver
/// client: when the last clone is dropped, the client is shut down, which closes every pooled and
/// monitoring connection at once instead of within the driver's 10 s heartbeat. A store made by
/// [`MongoStore::from_client`] leaves the caller's client alone.
#[derive(Clone)]
pub struct MongoStore {
    client: Client,
    db: Database,
    meta: Collection<Document>,
    options: MongoOptions,
    address: String,
    write_concern: Document,
    /// Shared by clones, so a clone's `drop_dataset` is seen by the others at once.
    props: Arc<PropsCache>,
    _owned: Option<Arc<OwnedClient>>,
}

/// Shuts the driver client down when the last clone of the store that created it is dropped.
///
/// Without it the driver only cleans up lazily after the last `Client` handle is gone: its RTT
/// monitor keeps its connection until its next heartbeat (`heartbeatFrequencyMS`, 10 s by
/// default), so a dropped store held a connection to the server for up to 10 s (measured by
/// `tests/resources.rs`: 5.8 s). `Client::shutdown` cancels the monitors and closes the pools now.
/// It first waits (up to the call timeout) for the driver's pending cleanup (cursors, sessions),
/// then shuts down without waiting. Needs a Tokio runtime at drop time, as the driver does; without
/// one the driver's own lazy cleanup applies.
struct OwnedClient {
    client: Client,
    grace: std::time::Duration,
}

impl Drop for OwnedClient {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (client, grace) = (self.client.clone(), self.grace);
        runtime.spawn(async move {
            if tokio::time::timeout(grace, client.clone().shutdown())
                .await
                .is_err()
            {
                client.shutdown().immediate(true).await;
            }
        });
    }
}

impl std::fmt::Debug for MongoStore {
    // Hand-written so credentials in the client options never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoStore")
            .field("address", &self.address)
            .field("database", &self.options.database)
            .field("timeout", &self.options.timeout)
            .finish()
    }
}

/// The answer to one request, by index.
type Answers<T> = Vec<(usize, Result<T, KvError>)>;
/// Key → its versions, ascending by ts.
type Versions = HashMap<Bytes, Vec<TimedValue>>;
type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One upsert of a `multi_put`, answering every request it stands for (duplicates in a batch
/// collapse into the last one, so "last write wins" does not depend on server-side ordering).
struct Statement {
    indices: Vec<usize>,
    key: Bytes,
    doc: RawDocumentBuf,
    size: usize,
}

impl MongoStore {
    /// Connects to `uri` (a standard MongoDB connection string) and checks the server answers.
    ///
    /// The URI's own `w=` and `readPreference=` win over `options`; without
    /// `serverSelectionTimeoutMS` / `connectTimeoutMS` the driver uses `options.timeout`, so an
    /// unreachable server is reported as `Unavailable` within the timeout.
    pub async fn connect(uri: &str, options: MongoOptions) -> Result<MongoStore, KvError> {
        let client_options = batch::with_timeout(options.timeout, "connect", "mongodb", async {
            ClientOptions::parse(uri)
                .await
                .map_err(|e| KvError::backend(BACKEND, "parsing the connection string", e))
        })
        .await?;
        Self::with_client_options(client_options, options).await
    }

    /// Connects with ready-made driver options (see [`MongoStore::connect`]).
    pub async fn with_client_options(
        mut client_options: ClientOptions,
        mut options: MongoOptions,
    ) -> Result<MongoStore, KvError> {
        let address = client_options
            .hosts
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join(",");
        // A little under the call timeout, so an unreachable server surfaces as the driver's
        // `Unavailable` (naming the address and the cause) rather than a bare `Timeout`.
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
        let client = Client::with_options(client_options)
            .map_err(|e| map_err(e, "connect", "mongodb", &address))?;
        let mut store = Self::from_client(client, options, address)?;
        // From here on, dropping the store (even when the ping below fails) shuts the client down.
        store._owned = Some(Arc::new(OwnedClient {
            client: store.client.clone(),
            grace: store.options.timeout,
        }));
        let ping = async {
            store
                .db
                .run_command(doc! { "ping": 1 })
                .await
                .map(|_| ())
                .map_err(|e| map_err(e, "ping", &store.address, &store.address))
        };
        batch::with_timeout(store.options.timeout, "connect", &store.address, ping).await?;
        Ok(store)
    }

    /// Wraps an existing driver client; `address` only appears in error messages.
    pub fn from_client(
        client: Client,
        options: MongoOptions,
        address: String,
    ) -> Result<MongoStore, KvError> {
        let db_options = DatabaseOptions::builder()
            .write_concern(options.write_concern.clone())
            .selection_criteria(options.read_preference.clone())
            .read_concern(options.read_concern.clone())
            .build();
        let db = client.database_with_options(&options.database, db_options);
        let meta = db.collection::<Document>(&options.metadata_collection);
        let write_concern = mongodb::bson::to_document(&options.write_concern)
            .map_err(|e| KvError::backend(BACKEND, "encoding the write concern", e))?;
        Ok(MongoStore {
            client,
            db,
            meta,
            props: Arc::new(PropsCache::new(options.metadata_cache_ttl)),
            options,
            address,
            write_concern,
            _owned: None,
        })
    }

    /// The driver database the datasets live in, for tools and raw access.
    ///
    /// It shares the store's client: a store made by `connect`/`open_url` shuts that client down
    /// when its last clone is dropped, after which this handle's calls fail with "Client has been
    /// shut down". Keep the store alive as long as the handle is used.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The driver client. A client this store created is shut down when the last clone of the
    /// store is dropped, so keep the store (not only a clone of the client) alive while using it.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The options in effect.
    pub fn options(&self) -> &MongoOptions {
        &self.options
    }

    fn err(&self, e: mongodb::error::Error, operation: &str, dataset: &str) -> KvError {
        map_err(e, operation, &format!("dataset {dataset:?}"), &self.address)
    }

    fn raw(&self, dataset: &str) -> Collection<RawDocumentBuf> {
        self.db.collection::<RawDocumentBuf>(dataset)
    }

    async fn timed<T>(
        &self,
        operation: &str,
        target: &str,
        fut: impl Future<Output = Result<T, KvError>>,
    ) -> Result<T, KvError> {
        batch::with_timeout(self.options.timeout, operation, target, fut).await
    }

    /// [`MongoStore::read_props`], reusing what was read within
    /// [`MongoOptions::metadata_cache_ttl`]: the path of every `multi_get`, `multi_put`, `list`.
    async fn resolve(&self, datasets: &[&str]) -> Result<HashMap<String, DatasetProps>, KvError> {
        let mut out = HashMap::new();
        let misses = self.props.lookup(datasets, &mut out);
        if misses.datasets.is_empty() {
            return Ok(out);
        }
        let read = self.read_props(&misses.datasets).await?;
        self.props.remember(misses, &read);
        out.extend(read);
        Ok(out)
    }

    /// The properties of each named dataset that exists: from the metadata collection, or, for a
    /// collection without metadata (made by the JVM quickstart, whose `create` is a bare
    /// `createCollection`), Chronon's default for its name.
    async fn read_props(
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
    async fn read_props_one(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        self.read_props(&[dataset])
            .await?
            .remove(dataset)
            .ok_or_else(|| KvError::not_found(dataset))
    }

    // ---------------------------------------------------------------- reads

    /// Reads the given keys of one dataset in chunks of `get_batch_size`, one query per chunk.
    /// `latest`: newest version per key (one document per key in a `Snapshot`; an aggregation
    /// that keeps each key's first document in `{keyBytes: 1, ts: -1}` order in a `TimeSeries`).
    /// Otherwise every version with `ts` in `[lo, hi]`.
    async fn read_keys(
        &self,
        dataset: &str,
        kind: DatasetKind,
        keys: Vec<Bytes>,
        latest: bool,
        lo: Option<i64>,
        hi: Option<i64>,
    ) -> Vec<(Vec<Bytes>, Result<Versions, KvError>)> {
        let size = self.options.get_batch_size;
        batch::for_each_chunk(keys, size, self.options.concurrency, |chunk| async move {
            let r = self.read_chunk(dataset, kind, &chunk, latest, lo, hi).await;
            (chunk, r)
        })
        .await
    }

    async fn read_chunk(
        &self,
        dataset: &str,
        kind: DatasetKind,
        keys: &[Bytes],
        latest: bool,
        lo: Option<i64>,
        hi: Option<i64>,
    ) -> Result<Versions, KvError> {
        let in_list: Vec<Bson> = keys.iter().map(|k| layout::bin(k)).collect();
        let mut filter = doc! { KEY: { "$in": in_list } };
        let mut ts_range = Document::new();
        if let Some(lo) = lo {
            ts_range.insert("$gte", lo);
        }
        if let Some(hi) = hi {
            ts_range.insert("$lte", hi);
        }
        if !ts_range.is_empty() {
            filter.insert(TS, ts_range);
        }
        let coll = self.raw(dataset);
        let op = "multi_get";
        let group_latest = latest && kind == DatasetKind::TimeSeries;
        let mut cursor = if group_latest {
            let pipeline = vec![
                doc! { "$match": filter },
                doc! { "$sort": { KEY: 1, TS: -1 } },
                doc! { "$group": { "_id": format!("${KEY}"), TS: { "$first": format!("${TS}") }, VALUE: { "$first": format!("${VALUE}") } } },
            ];
            coll.aggregate(pipeline)
                .batch_size(100_000)
                .await
                .map_err(|e| self.err(e, op, dataset))?
                .with_type::<RawDocumentBuf>()
        } else {
            coll.find(filter)
                .projection(doc! { "_id": 0, KEY: 1, VALUE: 1, TS: 1 })
                .batch_size(100_000)
                .await
                .map_err(|e| self.err(e, op, dataset))?
        };
        let key_field = if group_latest { "_id" } else { KEY };
        let mut out: Versions = HashMap::with_capacity(keys.len());
        while cursor
            .advance()
            .await
            .map_err(|e| self.err(e, op, dataset))?
        {
            let (key, tv) = layout::parse_doc(cursor.current(), key_field).map_err(|m| {
                KvError::backend_msg(BACKEND, format!("{op} on dataset {dataset:?}"), m)
            })?;
            out.entry(key).or_default().push(tv);
        }
        for versions in out.values_mut() {
            versions.sort_by_key(|v| v.millis);
            if kind == DatasetKind::Snapshot && versions.len() > 1 {
                // Only a collection filled by other writers (the JVM quickstart inserts one
                // document per put) can hold several; a snapshot's value is the newest.
                let newest = versions.split_off(versions.len() - 1);
                *versions = newest;
            }
        }
        Ok(out)
    }

    /// Answers the requests of one dataset: latest-only requests with one query per chunk of
    /// distinct keys, ranged requests with one query per chunk with the ranges folded into one
    /// `ts` bound; then each request picks its versions with `select_versions`.
    async fn get_dataset(
        &self,
        dataset: &str,
        props: DatasetProps,
        requests: Vec<(usize, GetRequest)>,
    ) -> Answers<Vec<TimedValue>> {
        let cut = batch::visible_from(&props);
        let mut latest_keys: Vec<Bytes> = Vec::new();
        let mut range_keys: Vec<Bytes> = Vec::new();
        let (mut lo, mut hi) = (i64::MAX, Some(i64::MIN));
        {
            let mut seen_latest = std::collections::HashSet::new();
            let mut seen_range = std::collections::HashSet::new();
            for (_, r) in &requests {
                match r.start_ts {
                    None => {
                        if seen_latest.insert(r.key.clone()) {
                            latest_keys.push(r.key.clone());
                        }
                    }
                    Some(s) => {
                        lo = lo.min(s);
                        hi = match (hi, r.end_ts) {
                            (Some(h), Some(e)) => Some(h.max(e)),
                            _ => None,
                        };
                        if seen_range.insert(r.key.clone()) {
                            range_keys.push(r.key.clone());
                        }
                    }
                }
            }
        }
        let lo_range = Some(cut.map_or(lo, |c| c.max(lo)));
        let (latest, ranged) = futures::join!(
            self.read_keys(dataset, props.kind, latest_keys, true, cut, None),
            self.read_keys(dataset, props.kind, range_keys, false, lo_range, hi),
        );
        let index = |chunks: Vec<(Vec<Bytes>, Result<Versions, KvError>)>| {
            let mut found: Versions = HashMap::new();
            let mut failed: HashMap<Bytes, KvError> = HashMap::new();
            for (keys, r) in chunks {
                match r {
                    Ok(v) => found.extend(v),
                    Err(e) => failed.extend(keys.into_iter().map(|k| (k, e.clone()))),
                }
            }
            (found, failed)
        };
        let (latest, latest_failed) = index(latest);
        let (ranged, ranged_failed) = index(ranged);
        requests
            .into_iter()
            .map(|(i, r)| {
                let (found, failed) = if r.start_ts.is_none() {
                    (&latest, &latest_failed)
                } else {
                    (&ranged, &ranged_failed)
                };
                if let Some(e) = failed.get(&r.key) {
                    return (i, Err(e.clone()));
                }
                let versions = found.get(&r.key).cloned().unwrap_or_default();
                (i, Ok(batch::select_versions(versions, &r, cut)))
            })
            .collect()
    }

    async fn get_all(
        &self,
        groups: BTreeMap<String, Vec<(usize, GetRequest)>>,
    ) -> Result<Answers<Vec<TimedValue>>, KvError> {
        let names: Vec<&str> = groups.keys().map(String::as_str).collect();
        let props = self.resolve(&names).await?;
        let mut answers = Vec::new();
        let mut work: Vec<BoxFut<'_, Answers<Vec<TimedValue>>>> = Vec::new();
        for (dataset, requests) in groups {
            match props.get(&dataset) {
                None => {
                    let e = KvError::not_found(&dataset);
                    answers.extend(requests.into_iter().map(|(i, _)| (i, Err(e.clone()))));
                }
                Some(p) => {
                    let p = *p;
                    work.push(Box::pin(async move {
                        self.get_dataset(&dataset, p, requests).await
                    }));
                }
            }
        }
        for a in futures::future::join_all(work).await {
            answers.extend(a);
        }
        Ok(answers)
    }

    // ---------------------------------------------------------------- writes

    /// Builds the upserts of one dataset's pending puts, duplicates collapsed into the last.
    fn statements(batch: &PutBatch, indices: &[usize], props: &DatasetProps) -> Vec<Statement> {
        let with_date = props.ttl.is_some();
        let mut by_identity: HashMap<(Bytes, Option<i64>), usize> = HashMap::new();
        let mut out: Vec<Statement> = Vec::with_capacity(indices.len());
        for &i in indices {
            let p = batch.get(i);
            let identity = (
                p.key.clone(),
                (props.kind == DatasetKind::TimeSeries).then_some(p.ts),
            );
            let doc = layout::upsert_statement(props.kind, p.key, p.value, p.ts, with_date);
            let size = layout::statement_size(p.key, p.value);
            match by_identity.get(&identity) {
                Some(&s) => {
                    let st = &mut out[s];
                    st.indices.push(i);
                    st.doc = doc;
                    st.size = size;
                }
                None => {
                    by_identity.insert(identity, out.len());
                    out.push(Statement {
                        indices: vec![i],
                        key: p.key.clone(),
                        doc,
                        size,
                    });
                }
            }
        }
        out
    }

    /// Splits statements into `update` commands of at most `per_command` statements and
    /// `max_batch_bytes` bytes (a larger single statement goes alone).
    fn commands(&self, statements: Vec<Statement>, per_command: usize) -> Vec<Vec<Statement>> {
        let mut out: Vec<Vec<Statement>> = Vec::new();
        let mut bytes = 0;
        for s in statements {
            let start_new = match out.last() {
                None => true,
                Some(cur) => {
                    cur.len() >= per_command.max(1) || bytes + s.size > self.options.max_batch_bytes
                }
            };
            if start_new {
                out.push(Vec::new());
                bytes = 0;
            }
            bytes += s.size;
            if let Some(cur) = out.last_mut() {
                cur.push(s);
            }
        }
        out
    }

    /// Runs one unordered `update` command (one round trip, many upserts) and maps each write
    /// error back to its statement. Statements that hit a duplicate key (a concurrent insert of
    /// the same new key) are sent again, at most [`UPSERT_ATTEMPTS`] times in all.
    ///
    /// With `insert_first` (bulk loads into datasets whose unique indexes `create` built) the
    /// documents are first sent as one `insert` command, which servers run faster than upserts
    /// (SecantusDB: ~1,600 vs ~650 documents/s), and only those that already exist (duplicate
    /// key) become upserts. The unique index makes this exactly an upsert.
    async fn run_update(
        &self,
        dataset: &str,
        statements: Vec<Statement>,
        insert_first: bool,
    ) -> Answers<()> {
        let mut pending = statements;
        let mut answers: Answers<()> = Vec::new();
        if insert_first {
            let results = self.send(dataset, &pending, true).await;
            let mut rest = Vec::new();
            for (stmt, result) in pending.into_iter().zip(results) {
                match result {
                    Err((Some(DUPLICATE_KEY), _)) => rest.push(stmt),
                    Err((_, e)) => {
                        answers.extend(stmt.indices.into_iter().map(|i| (i, Err(e.clone()))))
                    }
                    Ok(()) => answers.extend(stmt.indices.into_iter().map(|i| (i, Ok(())))),
                }
            }
            if rest.is_empty() {
                return answers;
            }
            pending = rest;
        }
        for attempt in 1..=UPSERT_ATTEMPTS {
            let results = self.send(dataset, &pending, false).await;
            let mut retry = Vec::new();
            for (stmt, result) in pending.into_iter().zip(results) {
                match result {
                    Err((Some(DUPLICATE_KEY), _)) if attempt < UPSERT_ATTEMPTS => retry.push(stmt),
                    Err((_, e)) => {
                        answers.extend(stmt.indices.into_iter().map(|i| (i, Err(e.clone()))))
                    }
                    Ok(()) => answers.extend(stmt.indices.into_iter().map(|i| (i, Ok(())))),
                }
            }
            if retry.is_empty() {
                break;
            }
            tracing::debug!(
                dataset,
                n = retry.len(),
                attempt,
                "retrying upserts after duplicate key errors"
            );
            pending = retry;
        }
        answers
    }

    /// One unordered `update` command of upserts, or with `insert` an `insert` command of the
    /// same documents; a result per statement, errors carrying the server code.
    async fn send(
        &self,
        dataset: &str,
        statements: &[Statement],
        insert: bool,
    ) -> Vec<Result<(), (Option<i32>, KvError)>> {
        let op = "multi_put";
        let mut items = RawArrayBuf::new();
        for s in statements {
            if insert {
                match s.doc.get_document("u") {
                    Ok(u) => items.push(u.to_raw_document_buf()),
                    Err(e) => {
                        let e = KvError::backend(BACKEND, "building an insert", e);
                        return statements.iter().map(|_| Err((None, e.clone()))).collect();
                    }
                }
            } else {
                items.push(s.doc.clone());
            }
        }
        let mut cmd = RawDocumentBuf::new();
        if insert {
            cmd.append("insert", dataset);
            cmd.append("documents", items);
        } else {
            cmd.append("update", dataset);
            cmd.append("updates", items);
        }
        cmd.append("ordered", false);
        match RawDocumentBuf::from_document(&self.write_concern) {
            Ok(wc) => cmd.append("writeConcern", wc),
            Err(e) => {
                let e = KvError::backend(BACKEND, "encoding the write concern", e);
                return statements.iter().map(|_| Err((None, e.clone()))).collect();
            }
        }
        let reply = match self.db.run_raw_command(cmd).await {
            Ok(r) => r,
            Err(e) => {
                let c = code(&e);
                let e = self.err(e, op, dataset);
                return statements.iter().map(|_| Err((c, e.clone()))).collect();
            }
        };
        let mut results: Vec<Result<(), (Option<i32>, KvError)>> =
            statements.iter().map(|_| Ok(())).collect();
        if let Ok(wce) = reply.get_document("writeConcernError") {
            let msg = format!(
                "write concern error {}: {}",
                wce.get_i32("code").unwrap_or_default(),
                wce.get_str("errmsg").unwrap_or_default()
            );
            // The write happened on the primary but its durability is unknown: retryable.
            let e = KvError::backend_msg(BACKEND, format!("{op} on dataset {dataset:?}"), msg)
                .retryable();
            results.iter_mut().for_each(|r| *r = Err((None, e.clone())));
        }
        if let Ok(errors) = reply.get_array("writeErrors") {
            for we in errors.iter().filter_map(Bson::as_document) {
                let index = we.get("index").and_then(bson_usize);
                let c = we.get_i32("code").ok();
                let msg = we.get_str("errmsg").unwrap_or("no message");
                match index.and_then(|i| statements.get(i).map(|s| (i, s))) {
                    Some((i, s)) => {
                        let e = KvError::backend_msg(
                            BACKEND,
                            format!("{op} of key {} on dataset {dataset:?}", key_preview(&s.key)),
                            format!("write error {}: {msg}", c.unwrap_or_default()),
                        );
                        results[i] = Err((c, e));
                    }
                    None => {
                        let e = KvError::backend_msg(
                            BACKEND,
                            format!("{op} on dataset {dataset:?}"),
                            format!("write error without a valid index ({we}): {msg}"),
                        );
                        results.iter_mut().for_each(|r| *r = Err((c, e.clone())));
                    }
                }
            }
        }
        results
    }

    /// Writes the pending puts of `groups` (datasets already resolved) with `per_command`
    /// upserts per `update` command and `concurrency` commands in flight.
    async fn write(
        &self,
        batch: &PutBatch,
        groups: Vec<(String, DatasetProps, Vec<usize>)>,
        per_command: usize,
        concurrency: usize,
        insert_first: bool,
    ) -> Answers<()> {
        let mut work: Vec<BoxFut<'_, Answers<()>>> = Vec::new();
        for (dataset, props, indices) in groups {
            let statements = Self::statements(batch, &indices, &props);
            for command in self.commands(statements, per_command) {
                let dataset = dataset.clone();
                work.push(Box::pin(async move {
                    self.run_update(&dataset, command, insert_first).await
                }));
            }
        }
        futures::stream::iter(work)
            .buffer_unordered(concurrency.max(1))
            .flat_map(futures::stream::iter)
            .collect()
            .await
    }

    async fn put_all(
        &self,
        batch: &PutBatch,
        groups: BTreeMap<String, Vec<usize>>,
    ) -> Result<Answers<()>, KvError> {
        let names: Vec<&str> = groups.keys().map(String::as_str).collect();
        let props = self.resolve(&names).await?;
        let mut answers = Vec::new();
        let mut work = Vec::new();
        for (dataset, indices) in groups {
            match props.get(&dataset) {
                // Checked before writing: an upsert into a missing collection would create it.
                None => {
                    let e = KvError::not_found(&dataset);
                    answers.extend(indices.into_iter().map(|i| (i, Err(e.clone()))));
                }
                Some(p) => work.push((dataset, *p, indices)),
            }
        }
        answers.extend(
            self.write(
                batch,
                work,
                self.options.put_batch_size,
                self.options.concurrency,
                false,
            )
            .await,
        );
        Ok(answers)
    }
}

fn bson_usize(v: &Bson) -> Option<usize> {
    match v {
        Bson::Int32(i) => usize::try_from(*i).ok(),
        Bson::Int64(i) => usize::try_from(*i).ok(),
        _ => None,
    }
}

#[async_trait]
impl KvStore for MongoStore {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(
            layout::MAX_VALUE_BYTES,
            self.options.get_batch_size,
            self.options.put_batch_size,
        )
        .with_native_ttl()
        .with_persistence()
    }

    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        let target = format!("dataset {dataset:?}");
        let created = self
            .timed("create", &target, async {
                let existing = self
                    .meta
                    .find_one(doc! { "_id": dataset })
                    .await
                    .map_err(|e| self.err(e, "create", dataset))?;
                let check = |d: &Document| -> Result<(), KvError> {
                    let (_, have) = layout::parse_meta(d).map_err(|m| {
                        KvError::backend_msg(BACKEND, format!("create {target}"), m)
                    })?;
                    if have.kind != props.kind {
                        return Err(KvError::DatasetConflict {
                            dataset: dataset.to_string(),
                            existing: have.describe(),
                            requested: props.describe(),
                        });
                    }
                    Ok(())
                };
                if let Some(d) = existing {
                    return check(&d);
                }
                // Collection and indexes first, metadata last: once the metadata is visible, the
                // unique indexes that make upserts one-document-per-key are in place.
                if let Err(e) = self.db.create_collection(dataset).await {
                    if code(&e) != Some(NAMESPACE_EXISTS) {
                        return Err(self.err(e, "create", dataset));
                    }
                }
                self.db
                    .collection::<Document>(dataset)
                    .create_indexes(layout::indexes(props))
                    .await
                    .map_err(|e| self.err(e, "creating indexes", dataset))?;
                match self.meta.insert_one(layout::meta_doc(dataset, props)).await {
                    Ok(_) => Ok(()),
                    Err(e) if code(&e) == Some(DUPLICATE_KEY) => {
                        // Another client created it meanwhile: same rules as if it had been first.
                        let d = self
                            .meta
                            .find_one(doc! { "_id": dataset })
                            .await
                            .map_err(|e| self.err(e, "create", dataset))?
                            .ok_or_else(|| KvError::not_found(dataset))?;
                        check(&d)
                    }
                    Err(e) => Err(self.err(e, "create", dataset)),
                }
            })
            .await;
        // Whatever happened, the next call reads what is there now.
        self.props.forget(dataset);
        created
    }

    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        let dropped = self
            .timed("drop", &format!("dataset {dataset:?}"), async {
                // Metadata first, so a concurrent put already sees `DatasetNotFound`.
                self.meta
                    .delete_one(doc! { "_id": dataset })
                    .await
                    .map_err(|e| self.err(e, "drop", dataset))?;
                self.props.forget(dataset);
                match self.db.collection::<Document>(dataset).drop().await {
                    Err(e) if code(&e) != Some(NAMESPACE_NOT_FOUND) => {
                        Err(self.err(e, "drop", dataset))
                    }
                    _ => Ok(()),
                }
            })
            .await;
        // Again: a lookup between the two steps saw the collection without its metadata.
        self.props.forget(dataset);
        dropped
    }

    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        validate::dataset_name(dataset)?;
        self.timed(
            "dataset_props",
            &format!("dataset {dataset:?}"),
            self.read_props_one(dataset),
        )
        .await
    }

    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        let mut batch = GetBatch::new(requests);
        let groups: BTreeMap<String, Vec<(usize, GetRequest)>> = batch
            .pending_by_dataset()
            .into_iter()
            .map(|(d, idx)| {
                let reqs = idx
                    .into_iter()
                    .map(|i| (i, batch.requests()[i].clone()))
                    .collect();
                (d, reqs)
            })
            .collect();
        if groups.is_empty() {
            return batch.finish(BACKEND);
        }
        let target = groups.keys().cloned().collect::<Vec<_>>().join(",");
        match self.timed("multi_get", &target, self.get_all(groups)).await {
            Ok(answers) => answers.into_iter().for_each(|(i, r)| batch.answer(i, r)),
            Err(e) => batch.fail_pending(&e),
        }
        batch.finish(BACKEND)
    }

    async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        let mut batch = PutBatch::new(requests, &self.capabilities());
        let groups = batch.pending_by_dataset();
        if groups.is_empty() {
            return batch.finish(BACKEND);
        }
        let target = groups.keys().cloned().collect::<Vec<_>>().join(",");
        match self
            .timed("multi_put", &target, self.put_all(&batch, groups))
            .await
        {
            Ok(answers) => answers.into_iter().for_each(|(i, r)| batch.answer(i, r)),
            Err(e) => batch.fail_pending(&e),
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
        let limit = limit.max(1);
        self.timed("list", &format!("dataset {dataset:?}"), async {
            let props = self
                .resolve(&[dataset])
                .await?
                .remove(dataset)
                .ok_or_else(|| KvError::not_found(dataset))?;
            let cut = batch::visible_from(&props);
            // Pages walk the `{keyBytes: 1, ts: -1}` index from an index bound: `min` with
            // `ts: MinKey` sits after every version of the cursor key (MinKey sorts last in a
            // descending field), so the next page starts at the next key, each key's newest
            // version first. A `{keyBytes: {$gt: cursor}}` filter would be equivalent on MongoDB
            // (BinData compares by length, then subtype, then bytes, in filters and sorts
            // alike) but SecantusDB compares BinData in `$gt` bytewise while sorting by length
            // first, which skips keys (README, "SecantusDB notes"); index bounds are exact on both.
            let coll = self.raw(dataset);
            let mut find = coll
                .find(doc! {})
                .hint(Hint::Keys(doc! { KEY: 1, TS: -1 }))
                .sort(doc! { KEY: 1, TS: -1 })
                .projection(doc! { "_id": 0, KEY: 1, VALUE: 1, TS: 1 })
                .batch_size(u32::try_from(limit + 1).unwrap_or(u32::MAX));
            if let Some(c) = &cursor {
                find = find.min(doc! { KEY: layout::bin(&c.0), TS: Bson::MinKey });
            }
            let mut docs = find.await.map_err(|e| self.err(e, "list", dataset))?;
            let mut entries = Vec::new();
            let mut last_key: Option<Bytes> = None;
            let mut more = false;
            while docs
                .advance()
                .await
                .map_err(|e| self.err(e, "list", dataset))?
            {
                let (key, tv) = layout::parse_doc(docs.current(), KEY).map_err(|m| {
                    KvError::backend_msg(BACKEND, format!("list on dataset {dataset:?}"), m)
                })?;
                if last_key.as_ref() == Some(&key) {
                    continue; // an older version of the key just handled
                }
                if entries.len() >= limit {
                    more = true;
                    break;
                }
                if cut.is_none_or(|c| tv.millis >= c) {
                    entries.push((key.clone(), tv));
                }
                last_key = Some(key);
            }
            Ok(ListPage {
                entries,
                next: if more { last_key.map(ListCursor) } else { None },
            })
        })
        .await
    }

    /// Large unordered `update` commands (`bulk_batch_size` upserts each), `bulk_concurrency`
    /// in flight, the dataset resolved once; progress after every acknowledged command.
    /// Idempotent because every statement is an upsert.
    async fn bulk_put(
        &self,
        dataset: &str,
        rows: BulkSource<'_>,
        options: BulkPutOptions,
    ) -> Result<BulkPutReport, KvError> {
        validate::dataset_name(dataset)?;
        let (props, managed) = self
            .timed("bulk_put", &format!("dataset {dataset:?}"), async {
                let props = self.read_props_one(dataset).await?;
                // Inserts may go first only where `create` built the unique indexes (the
                // dataset has metadata); a bare JVM collection would take duplicates.
                let managed = self
                    .meta
                    .find_one(doc! { "_id": dataset })
                    .await
                    .map_err(|e| self.err(e, "bulk_put", dataset))?
                    .is_some();
                Ok((props, managed))
            })
            .await?;
        let written = std::sync::atomic::AtomicU64::new(0);
        let (written, progress, props) = (&written, &options.progress, &props);
        let chunk = self.options.bulk_batch_size.max(1);
        rows.try_chunks(chunk)
            .map_err(|e| e.1)
            .map_ok(|rows| async move {
                let n = rows.len() as u64;
                let puts = rows
                    .into_iter()
                    .map(|r| PutRequest::new(dataset, r.key, r.value, Some(r.ts)))
                    .collect();
                let mut batch = PutBatch::new(puts, &self.capabilities());
                let indices: Vec<usize> = batch.pending().map(|p| p.index).collect();
                let groups = vec![(dataset.to_string(), *props, indices)];
                let answers = self
                    .timed("bulk_put", &format!("dataset {dataset:?}"), async {
                        Ok(self.write(&batch, groups, chunk, 1, managed).await)
                    })
                    .await?;
                answers.into_iter().for_each(|(i, r)| batch.answer(i, r));
                for r in batch.finish(BACKEND) {
                    r?;
                }
                let total = written.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
                if let Some(p) = progress {
                    p(total);
                }
                Ok::<_, KvError>(())
            })
            .try_buffer_unordered(self.options.bulk_concurrency.max(1))
            .try_collect::<()>()
            .await?;
        Ok(BulkPutReport {
            rows: written.load(std::sync::atomic::Ordering::Relaxed),
        })
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
        let err = MongoStore::connect(
            &uri,
            MongoOptions::default().with_timeout(Duration::from_millis(800)),
        )
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
