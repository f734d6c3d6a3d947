//! [`RedisStore`]: the `KvStore` on a Redis server, through the `redis` crate's
//! `ConnectionManager` (one multiplexed connection that reconnects by itself).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chronon_core::batch::{now_millis, select_versions, GetBatch, PutBatch};
use chronon_core::{
    validate, Capabilities, DatasetKind, DatasetProps, GetRequest, GetResponse, KvError, KvStore,
    ListCursor, ListPage, PutRequest, TimedValue,
};
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Value};

use crate::layout::{self, Entry};
use crate::options::{redact, RedisOptions};

/// The backend name in errors and reports.
const BACKEND: &str = "redis";

/// Expiry is only set when it is closer than this (100 years); a longer TTL is enforced by
/// read filtering alone, so `PX`/`PEXPIREAT` arithmetic never overflows on the server.
const MAX_EXPIRY_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

/// Writes one `TimeSeries` version atomically (a single key, so also on Redis Cluster):
/// replace any version with the same ts, add this one, and with a TTL trim expired versions and
/// let the whole key expire with its newest version.
///
/// `KEYS[1]` = the key's sorted set; `ARGV` = ts, member, TTL cut-off (`''`: no TTL),
/// TTL in ms (`''`: no expiry).
const PUT_VERSION_LUA: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
  if ARGV[4] ~= '' then
    local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    if top[2] then
      redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', tonumber(top[2]) + tonumber(ARGV[4])))
    end
  end
end
return 1
";

/// A Chronon online `KvStore` on Redis. Layout: see the crate README and [`crate::layout`].
///
/// Every call makes a handful of round trips whatever the batch size: requests go out as
/// pipelines of [`RedisOptions::chunk_size`], up to [`RedisOptions::max_in_flight`] at once,
/// and the dataset registry is read in the same round trip as the data (see
/// [`RedisStore::multi_get`]'s notes in the README: "optimistic registry check").
pub struct RedisStore {
    conn: ConnectionManager,
    opts: RedisOptions,
    /// `host:port` of the server, for `Unavailable` messages.
    address: String,
    registry: String,
    /// The registry entry last seen per dataset and when it was read, used to send data
    /// commands in the same round trip as the registry read (checked against that read before
    /// an answer is used), or, by reads within `registry_check_interval`, without one.
    seen: Mutex<HashMap<String, (Entry, Instant)>>,
    script: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.address)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// Opens a store from a `redis://` URL: `redis://[user:password@]host:port/db?prefix=chronon`
/// (other parameters: [`RedisOptions::from_url`]).
///
/// ```no_run
/// # async fn f() -> Result<(), chronon_core::KvError> {
/// let url = url::Url::parse("redis://127.0.0.1:6379/0?prefix=chronon").unwrap();
/// let store = chronon_redis::open_url(&url).await?;
/// # Ok(()) }
/// ```
pub async fn open_url(url: &url::Url) -> Result<RedisStore, KvError> {
    RedisStore::open(RedisOptions::from_url(url)?).await
}

/// What one dataset's requests need: where its keys live and how to read them.
struct Target {
    data_prefix: String,
    kind: DatasetKind,
    props: DatasetProps,
}

type GetAnswers = Vec<(usize, Result<Vec<TimedValue>, KvError>)>;
type PutAnswers = Vec<(usize, Result<(), KvError>)>;
/// Registry entries by dataset (`DatasetNotFound` or `Backend` per dataset).
type Registry = HashMap<String, Result<Entry, KvError>>;
/// The registry reply carried by the first pipeline of a call, if it asked for one.
type RegistryReply = Option<Result<Value, KvError>>;

/// Splits the registry reply off the front of a pipeline's replies.
fn split_registry(
    with_registry: bool,
    values: Result<Vec<Value>, KvError>,
) -> (RegistryReply, Result<Vec<Value>, KvError>) {
    match (with_registry, values) {
        (false, v) => (None, v),
        (true, Err(e)) => (Some(Err(e.clone())), Err(e)),
        (true, Ok(v)) => {
            let mut it = v.into_iter();
            match it.next() {
                Some(first) => (Some(Ok(first)), Ok(it.collect())),
                None => {
                    let e = KvError::backend_msg(BACKEND, "pipeline", "empty reply");
                    (Some(Err(e.clone())), Err(e))
                }
            }
        }
    }
}

impl RedisStore {
    /// Connects to the server in `opts` and checks it answers (`PING`) within the timeout.
    /// A server that refuses or cannot be reached is `Unavailable` naming its address.
    pub async fn open(opts: RedisOptions) -> Result<RedisStore, KvError> {
        opts.validate()?;
        let client = redis::Client::open(opts.url.as_str())
            .map_err(|e| KvError::backend(BACKEND, format!("opening {}", redact(&opts.url)), e))?;
        let address = client.get_connection_info().addr().to_string();
        // No driver response timeout: every call is bounded by the store's own timeout already
        // (a second timer per pipeline cost measurable throughput), and the driver's default of
        // 500 ms would cut big pipelines short on a busy server.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(opts.connect_timeout.min(opts.timeout)))
            .set_number_of_retries(opts.reconnect_retries)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let timeout = opts.timeout;
        let connect = async {
            let mut conn = ConnectionManager::new_with_config(client, config)
                .await
                .map_err(|e| map_err(&address, timeout, "connect", "server", e))?;
            let _: Value = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .map_err(|e| map_err(&address, timeout, "connect", "server", e))?;
            Ok(conn)
        };
        let conn = with_deadline(timeout, "connect", &address, connect).await?;
        Ok(RedisStore {
            conn,
            registry: layout::registry_key(&opts.prefix),
            opts,
            address,
            seen: Mutex::new(HashMap::new()),
            script: redis::Script::new(PUT_VERSION_LUA),
        })
    }

    /// The options this store runs with.
    pub fn options(&self) -> &RedisOptions {
        &self.opts
    }

    /// `host:port` of the server.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn err(&self, op: &str, target: &str, e: RedisError) -> KvError {
        map_err(&self.address, self.opts.timeout, op, target, e)
    }

    async fn query<T: redis::FromRedisValue>(
        &self,
        op: &str,
        target: &str,
        cmd: &redis::Cmd,
    ) -> Result<T, KvError> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| self.err(op, target, e))
    }

    /// Runs a pipeline whose commands may fail one by one: a server error is kept in place as
    /// `Value::ServerError`, a connection error fails the whole pipeline.
    async fn pipeline(
        &self,
        op: &str,
        target: &str,
        pipe: &redis::Pipeline,
    ) -> Result<Vec<Value>, KvError> {
        let mut conn = self.conn.clone();
        pipe.query_async(&mut conn)
            .await
            .map_err(|e| self.err(op, target, e))
    }

    fn timed<'a, T: 'a>(
        &'a self,
        op: &'a str,
        target: &'a str,
        fut: impl Future<Output = Result<T, KvError>> + Send + 'a,
    ) -> impl Future<Output = Result<T, KvError>> + Send + 'a {
        with_deadline(self.opts.timeout, op, target, fut)
    }

    fn remember(&self, dataset: &str, entry: Option<&Entry>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match entry {
            Some(e) => {
                if seen.len() > 100_000 {
                    seen.clear();
                }
                seen.insert(dataset.to_string(), (e.clone(), Instant::now()));
            }
            None => {
                seen.remove(dataset);
            }
        }
    }

    fn last_seen(&self, datasets: &[String]) -> HashMap<String, Entry> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        datasets
            .iter()
            .filter_map(|d| seen.get(d).map(|(e, _)| (d.clone(), e.clone())))
            .collect()
    }

    /// The entries of `datasets` if every one was read from the registry within
    /// `registry_check_interval` (reads may then skip the registry).
    fn recently_seen(&self, datasets: &[String]) -> Option<HashMap<String, Entry>> {
        let interval = self.opts.registry_check_interval;
        if interval.is_zero() {
            return None;
        }
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        datasets
            .iter()
            .map(|d| match seen.get(d) {
                Some((e, at)) if at.elapsed() < interval => Some((d.clone(), e.clone())),
                _ => None,
            })
            .collect()
    }

    /// Reads the registry entries of `datasets` (one `HMGET`). A missing dataset maps to
    /// `DatasetNotFound`, an unreadable entry to `Backend`, both per dataset.
    async fn lookup(&self, op: &str, datasets: &[String]) -> Result<Registry, KvError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&self.registry).arg(datasets);
        let raw: Value = self.query(op, "the dataset registry", &cmd).await?;
        self.parse_registry(op, datasets, raw)
    }

    /// Reads an `HMGET P:#datasets <datasets>` reply.
    fn parse_registry(
        &self,
        op: &str,
        datasets: &[String],
        raw: Value,
    ) -> Result<Registry, KvError> {
        if let Value::ServerError(e) = raw {
            return Err(self.err(op, "the dataset registry", e.into()));
        }
        let raw: Vec<Option<String>> = redis::from_redis_value(raw).map_err(|e| {
            KvError::backend(BACKEND, format!("{op}: reading the dataset registry"), e)
        })?;
        if raw.len() != datasets.len() {
            return Err(KvError::backend_msg(
                BACKEND,
                op,
                "registry answered a different number of datasets",
            ));
        }
        let mut out = HashMap::new();
        for (ds, raw) in datasets.iter().zip(raw) {
            let entry = match raw {
                None => Err(KvError::not_found(ds)),
                Some(r) => Entry::decode(&r).map_err(|m| {
                    KvError::backend_msg(
                        BACKEND,
                        format!("reading the registry entry of dataset {ds:?}"),
                        m,
                    )
                }),
            };
            self.remember(ds, entry.as_ref().ok());
            out.insert(ds.clone(), entry);
        }
        Ok(out)
    }

    fn registry_result(
        &self,
        op: &str,
        datasets: &[String],
        reply: RegistryReply,
    ) -> Result<Registry, KvError> {
        match reply {
            Some(Ok(v)) => self.parse_registry(op, datasets, v),
            Some(Err(e)) => Err(e),
            None => Err(KvError::backend_msg(
                BACKEND,
                op,
                "the dataset registry was not read (adapter bug)",
            )),
        }
    }

    async fn lookup_one(&self, op: &str, dataset: &str) -> Result<Entry, KvError> {
        let ds = [dataset.to_string()];
        let mut found = self.lookup(op, &ds).await?;
        found
            .remove(dataset)
            .unwrap_or_else(|| Err(KvError::not_found(dataset)))
    }

    fn targets(&self, entries: &HashMap<String, Entry>) -> HashMap<String, Target> {
        entries
            .iter()
            .map(|(ds, e)| {
                let t = Target {
                    data_prefix: layout::data_prefix(&self.opts.prefix, ds, &e.gen),
                    kind: e.props.kind,
                    props: e.props,
                };
                (ds.clone(), t)
            })
            .collect()
    }

    /// Runs `chunks` through `f`, at most `max_in_flight` at once, and concatenates the answers.
    /// The first pipeline also reads the registry entries of `registry` (when given), so the
    /// check costs no extra round trip.
    async fn run_chunks<'r, A, F, Fut>(
        &self,
        mut chunks: Vec<Vec<usize>>,
        registry: Option<&'r [String]>,
        f: F,
    ) -> (RegistryReply, Vec<A>)
    where
        F: Fn(Option<&'r [String]>, Vec<usize>) -> Fut,
        Fut: Future<Output = (RegistryReply, Vec<A>)>,
    {
        if chunks.is_empty() && registry.is_some() {
            chunks.push(Vec::new());
        }
        let outs: Vec<(RegistryReply, Vec<A>)> = futures::stream::iter(
            chunks
                .into_iter()
                .enumerate()
                .map(|(n, c)| f(registry.filter(|_| n == 0), c)),
        )
        .buffer_unordered(self.opts.max_in_flight)
        .collect()
        .await;
        let mut reply = None;
        let mut all = Vec::with_capacity(outs.iter().map(|(_, a)| a.len()).sum());
        for (r, answers) in outs {
            if r.is_some() {
                reply = r;
            }
            all.extend(answers);
        }
        (reply, all)
    }

    /// Reads requests `idxs` of `batch` from the generations in `targets`.
    async fn read(
        &self,
        batch: &GetBatch,
        idxs: Vec<usize>,
        targets: &HashMap<String, Target>,
        registry: Option<&[String]>,
    ) -> (RegistryReply, GetAnswers) {
        let requests = batch.requests();
        let chunks: Vec<Vec<usize>> = idxs
            .chunks(self.opts.chunk_size)
            .map(<[usize]>::to_vec)
            .collect();
        self.run_chunks(chunks, registry, |registry, chunk| async move {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            if let Some(ds) = registry {
                pipe.cmd("HMGET").arg(&self.registry).arg(ds);
            }
            // Each request's target travels with it; a run of one dataset is looked up once.
            let mut sent: Vec<(usize, &Target)> = Vec::with_capacity(chunk.len());
            let mut last: Option<(&str, &Target)> = None;
            for i in chunk {
                let req = &requests[i];
                let t = match last {
                    Some((ds, t)) if ds == req.dataset => t,
                    _ => match targets.get(&req.dataset) {
                        Some(t) => {
                            last = Some((&req.dataset, t));
                            t
                        }
                        None => continue,
                    },
                };
                read_command(&mut pipe, t, req);
                sent.push((i, t));
            }
            let target = format!("{} keys", sent.len());
            let (reg, values) = split_registry(
                registry.is_some(),
                self.pipeline("multi_get", &target, &pipe).await,
            );
            let answers = match values {
                Err(e) => sent.into_iter().map(|(i, _)| (i, Err(e.clone()))).collect(),
                Ok(values) if values.len() != sent.len() => {
                    let e = KvError::backend_msg(
                        BACKEND,
                        "multi_get",
                        "pipeline answered a different number of commands",
                    );
                    sent.into_iter().map(|(i, _)| (i, Err(e.clone()))).collect()
                }
                Ok(values) => {
                    let now = now_millis();
                    sent.into_iter()
                        .zip(values)
                        .map(|((i, t), v)| (i, self.parse_read(t, &requests[i], v, now)))
                        .collect()
                }
            };
            (reg, answers)
        })
        .await
    }

    fn parse_read(
        &self,
        t: &Target,
        req: &GetRequest,
        v: Value,
        now: i64,
    ) -> Result<Vec<TimedValue>, KvError> {
        let context = || {
            format!(
                "multi_get of key {} in dataset {:?}",
                chronon_core::key_preview(&req.key),
                req.dataset
            )
        };
        let versions = decode_versions(v).map_err(|e| match e {
            Decode::Server(e) => self.err("multi_get", &context(), e),
            Decode::Corrupt(m) => KvError::backend_msg(BACKEND, context(), m),
        })?;
        Ok(select_versions(versions, req, t.props.visible_from(now)))
    }

    /// Writes puts `idxs` of `batch` into the generations in `targets`.
    async fn write(
        &self,
        batch: &PutBatch,
        idxs: Vec<usize>,
        targets: &HashMap<String, Target>,
        registry: Option<&[String]>,
    ) -> (RegistryReply, PutAnswers) {
        let mut chunks: Vec<Vec<usize>> = Vec::new();
        let mut bytes = 0;
        for i in idxs {
            let size = batch.get(i).value.len() + batch.get(i).key.len();
            match chunks.last_mut() {
                Some(c)
                    if c.len() < self.opts.chunk_size && bytes + size <= self.opts.chunk_bytes =>
                {
                    bytes += size;
                    c.push(i);
                }
                _ => {
                    bytes = size;
                    chunks.push(vec![i]);
                }
            }
        }
        self.run_chunks(chunks, registry, |registry, chunk| async move {
            let now = now_millis();
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            if let Some(ds) = registry {
                pipe.cmd("HMGET").arg(&self.registry).arg(ds);
            }
            if chunk.iter().any(|i| {
                targets
                    .get(batch.get(*i).dataset)
                    .is_some_and(|t| t.kind == DatasetKind::TimeSeries)
            }) {
                // Loaded in the same pipeline, so EVALSHA below finds it even on a server that
                // restarted (and lost its script cache) since the last call.
                pipe.cmd("SCRIPT").arg("LOAD").arg(PUT_VERSION_LUA).ignore();
            }
            let mut sent = Vec::with_capacity(chunk.len());
            for i in chunk {
                let p = batch.get(i);
                let Some(t) = targets.get(p.dataset) else {
                    continue;
                };
                self.write_command(&mut pipe, t, p.key, p.value, p.ts, now);
                sent.push(i);
            }
            let target = format!("{} keys", sent.len());
            let (reg, values) = split_registry(
                registry.is_some(),
                self.pipeline("multi_put", &target, &pipe).await,
            );
            let answers = match values {
                Err(e) => sent.into_iter().map(|i| (i, Err(e.clone()))).collect(),
                Ok(values) if values.len() != sent.len() => {
                    let e = KvError::backend_msg(
                        BACKEND,
                        "multi_put",
                        "pipeline answered a different number of commands",
                    );
                    sent.into_iter().map(|i| (i, Err(e.clone()))).collect()
                }
                Ok(values) => sent
                    .into_iter()
                    .zip(values)
                    .map(|(i, v)| {
                        let answer = match v {
                            Value::ServerError(e) => {
                                let p = batch.get(i);
                                let ctx = format!(
                                    "multi_put of key {} in dataset {:?}",
                                    chronon_core::key_preview(p.key),
                                    p.dataset
                                );
                                Err(self.err("multi_put", &ctx, e.into()))
                            }
                            _ => Ok(()),
                        };
                        (i, answer)
                    })
                    .collect(),
            };
            (reg, answers)
        })
        .await
    }

    fn write_command(
        &self,
        pipe: &mut redis::Pipeline,
        t: &Target,
        key: &[u8],
        value: &[u8],
        ts: i64,
        now: i64,
    ) {
        let redis_key = layout::data_key(&t.data_prefix, key);
        let encoded = layout::encode_value(ts, value);
        let ttl = t.props.ttl_millis();
        match t.kind {
            DatasetKind::Snapshot => {
                let cmd = pipe.cmd("SET").arg(redis_key).arg(encoded);
                if let Some(ttl) = ttl.filter(|t| *t <= MAX_EXPIRY_MS) {
                    // Expire with the value's own timestamp; a value already past its TTL still
                    // replaces the old one and vanishes at once (reads hide it regardless).
                    cmd.arg("PX")
                        .arg(ts.saturating_add(ttl).saturating_sub(now).max(1));
                }
            }
            DatasetKind::TimeSeries => {
                let cut = ttl
                    .map(|t| now.saturating_sub(t).to_string())
                    .unwrap_or_default();
                let expiry = ttl
                    .filter(|t| *t <= MAX_EXPIRY_MS)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                pipe.cmd("EVALSHA")
                    .arg(self.script.get_hash())
                    .arg(1)
                    .arg(redis_key)
                    .arg(ts)
                    .arg(encoded)
                    .arg(cut)
                    .arg(expiry);
            }
        }
    }

    /// Deletes keys written under registry entries that turned out to be stale (their dataset
    /// was dropped, maybe re-created, by another client): they are garbage of a dead generation.
    async fn discard(&self, batch: &PutBatch, idxs: &[usize], targets: &HashMap<String, Target>) {
        for chunk in idxs.chunks(self.opts.chunk_size) {
            let mut cmd = redis::cmd("UNLINK");
            for i in chunk {
                let p = batch.get(*i);
                if let Some(t) = targets.get(p.dataset) {
                    cmd.arg(layout::data_key(&t.data_prefix, p.key));
                }
            }
            let _ = self.query::<Value>("multi_put", "stale keys", &cmd).await;
        }
    }

    async fn get_into(&self, batch: &mut GetBatch) {
        let groups = batch.pending_by_dataset();
        let datasets: Vec<String> = groups.keys().cloned().collect();
        if let Some(entries) = self.recently_seen(&datasets) {
            let targets = self.targets(&entries);
            let pending = groups.into_values().flatten().collect();
            for (i, a) in self.read(batch, pending, &targets, None).await.1 {
                batch.answer(i, a);
            }
            return;
        }
        let guesses = self.last_seen(&datasets);
        let guessed: Vec<usize> = groups
            .iter()
            .filter(|(ds, _)| guesses.contains_key(*ds))
            .flat_map(|(_, idxs)| idxs.iter().copied())
            .collect();
        let guess_targets = self.targets(&guesses);
        let (reply, mut answers) = self
            .read(batch, guessed, &guess_targets, Some(&datasets))
            .await;
        let fresh = self.registry_result("multi_get", &datasets, reply);
        let fresh = match fresh {
            Ok(f) => f,
            Err(e) => return batch.fail_pending(&e),
        };
        let (mut confirmed, mut redo) = (Vec::new(), Vec::new());
        let mut fresh_entries = HashMap::new();
        for (ds, idxs) in &groups {
            match fresh.get(ds) {
                Some(Ok(entry)) if guesses.get(ds) == Some(entry) => confirmed.push(ds.clone()),
                Some(Ok(entry)) => {
                    fresh_entries.insert(ds.clone(), entry.clone());
                    redo.extend(idxs.iter().copied());
                }
                Some(Err(e)) => batch.fail_dataset(ds, e),
                None => batch.fail_dataset(ds, &KvError::not_found(ds)),
            }
        }
        if !redo.is_empty() {
            let targets = self.targets(&fresh_entries);
            answers.extend(self.read(batch, redo, &targets, None).await.1);
            confirmed.extend(fresh_entries.into_keys());
        }
        for (i, a) in answers {
            if confirmed.contains(&batch.requests()[i].dataset) {
                batch.answer(i, a);
            }
        }
    }

    async fn put_into(&self, batch: &mut PutBatch) {
        let groups = batch.pending_by_dataset();
        let datasets: Vec<String> = groups.keys().cloned().collect();
        let guesses = self.last_seen(&datasets);
        let guessed: Vec<usize> = groups
            .iter()
            .filter(|(ds, _)| guesses.contains_key(*ds))
            .flat_map(|(_, idxs)| idxs.iter().copied())
            .collect();
        let guess_targets = self.targets(&guesses);
        let (reply, mut answers) = self
            .write(batch, guessed, &guess_targets, Some(&datasets))
            .await;
        let fresh = self.registry_result("multi_put", &datasets, reply);
        let fresh = match fresh {
            Ok(f) => f,
            Err(e) => {
                // The writes may have landed, but without the registry we cannot tell whether
                // they went to the live generation: report the registry's error for all.
                return batch.fail_pending(&e);
            }
        };
        let (mut confirmed, mut redo, mut stale) = (Vec::new(), Vec::new(), Vec::new());
        let mut fresh_entries = HashMap::new();
        for (ds, idxs) in &groups {
            let guess = guesses.get(ds);
            match fresh.get(ds) {
                Some(Ok(entry)) if guess == Some(entry) => confirmed.push(ds.clone()),
                other => {
                    if guess.is_some() {
                        stale.extend(idxs.iter().copied());
                    }
                    match other {
                        Some(Ok(entry)) => {
                            fresh_entries.insert(ds.clone(), entry.clone());
                            redo.extend(idxs.iter().copied());
                        }
                        Some(Err(e)) => batch.fail_dataset(ds, e),
                        None => batch.fail_dataset(ds, &KvError::not_found(ds)),
                    }
                }
            }
        }
        if !stale.is_empty() {
            self.discard(batch, &stale, &guess_targets).await;
        }
        if !redo.is_empty() {
            let targets = self.targets(&fresh_entries);
            answers.extend(self.write(batch, redo, &targets, None).await.1);
            confirmed.extend(fresh_entries.into_keys());
        }
        for (i, a) in answers {
            if confirmed.iter().any(|d| d == batch.get(i).dataset) {
                batch.answer(i, a);
            }
        }
    }

    async fn list_inner(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        let entry = self.lookup_one("list", dataset).await?;
        let t = Target {
            data_prefix: layout::data_prefix(&self.opts.prefix, dataset, &entry.gen),
            kind: entry.props.kind,
            props: entry.props,
        };
        let pattern = format!("{}*", t.data_prefix);
        let (session, mut scan) = match &cursor {
            None => (layout::new_gen(), 0u64),
            Some(c) => parse_cursor(dataset, c)?,
        };
        let skey = layout::list_session_key(&self.opts.prefix, &session);
        if cursor.is_some() {
            let live: bool = self
                .query("list", dataset, redis::cmd("SISMEMBER").arg(&skey).arg(""))
                .await?;
            if !live {
                return Err(KvError::InvalidRequest {
                    dataset: dataset.to_string(),
                    reason: format!(
                        "list cursor expired (idle longer than {:?}) or unknown; start the listing again",
                        self.opts.list_session_ttl
                    ),
                });
            }
        }
        let limit = limit.max(1);
        let ttl_ms = i64::try_from(self.opts.list_session_ttl.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let mut entries = Vec::new();
        loop {
            let (next, found): (u64, Vec<Vec<u8>>) = self
                .query(
                    "list",
                    dataset,
                    redis::cmd("SCAN")
                        .arg(scan)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(self.opts.scan_count),
                )
                .await?;
            let mut keys: Vec<Bytes> = found
                .iter()
                .filter_map(|k| layout::decode_data_key(&t.data_prefix, k))
                .collect();
            keys.sort();
            keys.dedup();
            let mut leftover = false;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                pipe.cmd("SMISMEMBER")
                    .arg(&skey)
                    .arg(keys.iter().map(|k| k.as_ref()).collect::<Vec<_>>());
                let latest: Vec<GetRequest> = keys
                    .iter()
                    .map(|k| GetRequest::latest(dataset, k.clone()))
                    .collect();
                for req in &latest {
                    read_command(&mut pipe, &t, req);
                }
                let mut values = self.pipeline("list", dataset, &pipe).await?.into_iter();
                let seen: Vec<bool> = match values.next() {
                    Some(Value::Array(flags)) => {
                        flags.iter().map(|f| matches!(f, Value::Int(1))).collect()
                    }
                    Some(Value::ServerError(e)) => return Err(self.err("list", dataset, e.into())),
                    other => {
                        return Err(KvError::backend_msg(
                            BACKEND,
                            format!("list of dataset {dataset:?}"),
                            format!("unexpected SMISMEMBER reply {other:?}"),
                        ))
                    }
                };
                let now = now_millis();
                let mut marked: Vec<Bytes> = Vec::new();
                for ((req, v), seen) in latest.iter().zip(values).zip(seen) {
                    if seen {
                        continue;
                    }
                    let versions = self.parse_read(&t, req, v, now)?;
                    // A key gone or hidden by the TTL is never returned; remembering it is enough.
                    if let Some(tv) = versions.into_iter().next() {
                        if entries.len() >= limit {
                            leftover = true;
                            break;
                        }
                        entries.push((req.key.clone(), tv));
                    }
                    marked.push(req.key.clone());
                }
                let mut pipe = redis::pipe();
                pipe.cmd("SADD")
                    .arg(&skey)
                    .arg("")
                    .arg(marked.iter().map(|k| k.as_ref()).collect::<Vec<_>>())
                    .ignore();
                pipe.cmd("PEXPIRE").arg(&skey).arg(ttl_ms).ignore();
                self.pipeline("list", dataset, &pipe).await?;
            }
            if leftover {
                return Ok(ListPage {
                    entries,
                    next: Some(make_cursor(&session, scan)),
                });
            }
            scan = next;
            if scan == 0 {
                let _ = self
                    .query::<Value>("list", dataset, redis::cmd("UNLINK").arg(&skey))
                    .await;
                return Ok(ListPage {
                    entries,
                    next: None,
                });
            }
            if entries.len() >= limit {
                let mut pipe = redis::pipe();
                pipe.cmd("SADD").arg(&skey).arg("").ignore();
                pipe.cmd("PEXPIRE").arg(&skey).arg(ttl_ms).ignore();
                self.pipeline("list", dataset, &pipe).await?;
                return Ok(ListPage {
                    entries,
                    next: Some(make_cursor(&session, scan)),
                });
            }
        }
    }

    async fn drop_inner(&self, dataset: &str) -> Result<(), KvError> {
        let raw: Option<String> = self
            .query(
                "drop_dataset",
                dataset,
                redis::cmd("HGET").arg(&self.registry).arg(dataset),
            )
            .await?;
        self.remember(dataset, None);
        let Some(raw) = raw else { return Ok(()) };
        let _: Value = self
            .query(
                "drop_dataset",
                dataset,
                redis::cmd("HDEL").arg(&self.registry).arg(dataset),
            )
            .await?;
        let Ok(entry) = Entry::decode(&raw) else {
            return Ok(());
        };
        // The generation is gone from the registry, so its keys are invisible from here on;
        // delete them so the memory comes back.
        let pattern = format!(
            "{}*",
            layout::data_prefix(&self.opts.prefix, dataset, &entry.gen)
        );
        let mut scan = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .query(
                    "drop_dataset",
                    dataset,
                    redis::cmd("SCAN")
                        .arg(scan)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(self.opts.scan_count.saturating_mul(10)),
                )
                .await?;
            if !keys.is_empty() {
                let _: Value = self
                    .query("drop_dataset", dataset, redis::cmd("UNLINK").arg(keys))
                    .await?;
            }
            scan = next;
            if scan == 0 {
                return Ok(());
            }
        }
    }

    async fn create_inner(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        for _ in 0..3 {
            let entry = Entry {
                props: *props,
                gen: layout::new_gen(),
            };
            let created: bool = self
                .query(
                    "create",
                    dataset,
                    redis::cmd("HSETNX")
                        .arg(&self.registry)
                        .arg(dataset)
                        .arg(entry.encode()),
                )
                .await?;
            if created {
                self.remember(dataset, Some(&entry));
                return Ok(());
            }
            match self.lookup_one("create", dataset).await {
                Ok(existing) if existing.props.kind != props.kind => {
                    return Err(KvError::DatasetConflict {
                        dataset: dataset.to_string(),
                        existing: existing.props.describe(),
                        requested: props.describe(),
                    })
                }
                Ok(_) => return Ok(()),
                // Dropped between the two commands: try again.
                Err(KvError::DatasetNotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(KvError::backend_msg(
            BACKEND,
            format!("create dataset {dataset:?}"),
            "dataset was dropped and re-created concurrently; try again",
        )
        .retryable())
    }
}

/// `GET` for a snapshot key, the newest member or a score range for a time series.
fn read_command(pipe: &mut redis::Pipeline, t: &Target, req: &GetRequest) {
    let key = layout::data_key(&t.data_prefix, &req.key);
    match (t.kind, req.start_ts) {
        (DatasetKind::Snapshot, _) => {
            pipe.cmd("GET").arg(key);
        }
        (DatasetKind::TimeSeries, None) => {
            pipe.cmd("ZRANGE").arg(key).arg(-1).arg(-1);
        }
        (DatasetKind::TimeSeries, Some(start)) => {
            let end = req
                .end_ts
                .map_or_else(|| "+inf".to_string(), |e| e.to_string());
            pipe.cmd("ZRANGEBYSCORE").arg(key).arg(start).arg(end);
        }
    }
}

enum Decode {
    Server(RedisError),
    Corrupt(String),
}

/// Stored versions (ascending ts) from a `GET` or `ZRANGE` reply.
fn decode_versions(v: Value) -> Result<Vec<TimedValue>, Decode> {
    let one = |raw: Vec<u8>| {
        let len = raw.len();
        layout::decode_owned_value(raw).ok_or_else(|| {
            Decode::Corrupt(format!(
                "stored value of {} bytes is too short to hold a timestamp",
                len
            ))
        })
    };
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::BulkString(raw) => Ok(vec![one(raw)?]),
        Value::Array(items) | Value::Set(items) => items
            .into_iter()
            .map(|item| match item {
                Value::BulkString(raw) => one(raw),
                other => Err(Decode::Corrupt(format!("unexpected member {other:?}"))),
            })
            .collect(),
        Value::ServerError(e) => Err(Decode::Server(e.into())),
        other => Err(Decode::Corrupt(format!("unexpected reply {other:?}"))),
    }
}

fn make_cursor(session: &str, scan: u64) -> ListCursor {
    ListCursor(Bytes::from(format!("v1:{session}:{scan}")))
}

fn parse_cursor(dataset: &str, c: &ListCursor) -> Result<(String, u64), KvError> {
    let bad = || KvError::InvalidRequest {
        dataset: dataset.to_string(),
        reason: "list cursor was not made by this adapter".to_string(),
    };
    let text = std::str::from_utf8(&c.0).map_err(|_| bad())?;
    let mut parts = text.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some(session), Some(scan), None)
            if !session.is_empty()
                && session.len() <= 32
                && session.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok((session.to_string(), scan.parse().map_err(|_| bad())?))
        }
        _ => Err(bad()),
    }
}

/// Runs `fut` under `timeout`, as `Timeout` naming `op` and `target` when it expires.
async fn with_deadline<T>(
    timeout: Duration,
    op: &str,
    target: &str,
    fut: impl Future<Output = Result<T, KvError>>,
) -> Result<T, KvError> {
    chronon_core::batch::with_timeout(timeout, op, target, fut).await
}

/// The one place driver errors become [`KvError`]s: a dead, refused or still-loading server is
/// `Unavailable` (retryable) naming its address, an I/O timeout is `Timeout`, anything else is
/// `Backend` with the driver error as its source (retryable when the server says so).
fn map_err(address: &str, timeout: Duration, op: &str, target: &str, e: RedisError) -> KvError {
    use redis::{ErrorKind, ServerErrorKind};
    if e.is_timeout() {
        return KvError::timeout(op, format!("{target} at {address}"), timeout);
    }
    let busy = matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ClusterDown
        )
    );
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || busy {
        return KvError::unavailable(BACKEND, address, e);
    }
    let retryable = matches!(e.kind(), ErrorKind::Server(ServerErrorKind::TryAgain));
    let err = KvError::backend(BACKEND, format!("{op} on {target}"), e);
    if retryable {
        err.retryable()
    } else {
        err
    }
}

#[async_trait]
impl KvStore for RedisStore {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(
            self.opts.max_value_bytes,
            self.opts.chunk_size,
            self.opts.chunk_size,
        )
        .with_native_ttl()
        .with_persistence()
    }

    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        self.timed("create", dataset, self.create_inner(dataset, props))
            .await
    }

    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        self.timed("drop_dataset", dataset, self.drop_inner(dataset))
            .await
    }

    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        validate::dataset_name(dataset)?;
        self.timed("dataset_props", dataset, async {
            Ok(self.lookup_one("dataset_props", dataset).await?.props)
        })
        .await
    }

    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        let mut batch = GetBatch::new(requests);
        if !batch.is_done() {
            let timeout = self.opts.timeout;
            if tokio::time::timeout(timeout, self.get_into(&mut batch))
                .await
                .is_err()
            {
                batch.fail_pending(&KvError::timeout("multi_get", &self.address, timeout));
            }
        }
        batch.finish(BACKEND)
    }

    async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        let mut batch = PutBatch::new(requests, &self.capabilities());
        if batch.pending().next().is_some() {
            let timeout = self.opts.timeout;
            if tokio::time::timeout(timeout, self.put_into(&mut batch))
                .await
                .is_err()
            {
                batch.fail_pending(&KvError::timeout("multi_put", &self.address, timeout));
            }
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
        self.timed("list", dataset, self.list_inner(dataset, limit, cursor))
            .await
    }
}
