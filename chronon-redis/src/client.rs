//! [`Client`]: the state every operation shares (the connection, the options, the server's
//! address, the dataset registry and what this client last read of it) and the small helpers
//! every operation uses: running a command or pipeline with errors mapped, the error context of
//! a call, reading registry entries through the metadata cache, and running pipelines a few at a
//! time.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use chronon_core::config::redact_url;
use chronon_core::metadata_cache::{CacheTicket, MetadataCache, DEFAULT_METADATA_CACHE_CAPACITY};
use chronon_core::{Capabilities, DatasetKind, DatasetProps, ErrorContext, KvError};
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Value;

use crate::cluster::Cluster;
use crate::config::RedisOptions;
use crate::error::{map_error, BACKEND};
use crate::layout::{self, Entry};

/// The certificate files of a `rediss://` URL's options, read here (an unreadable file is
/// `KvError::Config` naming it); `None` when the system's trust store and no client certificate
/// will do. Also installs a rustls crypto provider when the program has not chosen one.
fn tls_certificates(opts: &RedisOptions) -> Result<Option<redis::TlsCertificates>, KvError> {
    // rustls needs a process-wide crypto provider when more than one is compiled in (the AWS
    // SDK brings aws-lc-rs, other crates ring): install ring's unless the program chose one.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine: one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|e| {
            KvError::config(
                BACKEND,
                format!("cannot read {what} {}: {e}", path.display()),
            )
        })
    };
    let root_cert = match &opts.tls_ca_file {
        Some(path) => Some(read(path, "tls_ca_file")?),
        None => None,
    };
    let client_tls = match (&opts.tls_cert_file, &opts.tls_key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert, "tls_cert_file")?,
            client_key: read(key, "tls_key_file")?,
        }),
        _ => None,
    };
    if root_cert.is_none() && client_tls.is_none() {
        return Ok(None);
    }
    Ok(Some(redis::TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// The driver's client for `opts.url`: plain, or TLS through rustls for `rediss://`.
fn driver_client(opts: &RedisOptions, ctx: ErrorContext<'_>) -> Result<redis::Client, KvError> {
    let certificates = if opts.is_tls() {
        tls_certificates(opts)?
    } else {
        None
    };
    match certificates {
        None => redis::Client::open(opts.url.as_str()),
        Some(certificates) => redis::Client::build_with_tls(opts.url.as_str(), certificates),
    }
    .map_err(|e| map_error(e, ctx))
}

/// The driver's cluster client for the seed nodes of `opts` (`cluster=true`), with the same
/// TLS, auth and timeouts as a single server.
fn cluster_client(
    opts: &RedisOptions,
    ctx: ErrorContext<'_>,
) -> Result<redis::cluster::ClusterClient, KvError> {
    let mut builder = redis::cluster::ClusterClientBuilder::new(opts.seed_urls()?)
        .connection_timeout(opts.connect_timeout.min(opts.timeout))
        .response_timeout(opts.timeout)
        .overall_response_timeout(Some(opts.timeout));
    if opts.is_tls() {
        if let Some(certificates) = tls_certificates(opts)? {
            builder = builder.certs(certificates);
        }
    }
    builder.build().map_err(|e| map_error(e, ctx))
}

/// One server's reconnecting connection, or a cluster's.
enum Conn {
    Single(ConnectionManager),
    Cluster(Box<Cluster>),
}

/// Commands sent in one round trip: one pipeline on a single server, one per master on a
/// cluster ([`crate::cluster`]). Every command's reply comes back in place, a server error as
/// `Value::ServerError` (nothing is ignored).
pub(crate) struct Batch {
    pipe: redis::Pipeline,
    /// Cluster only: each command's hash slot, `None` for a keyless one (runs on every master
    /// the batch reaches).
    slots: Option<Vec<Option<u16>>>,
}

impl Batch {
    /// Starts command `name` on `key` (on a cluster, it runs on `key`'s master); add its
    /// arguments, the key among them, to the returned pipeline.
    pub(crate) fn on_key(&mut self, name: &str, key: impl AsRef<[u8]>) -> &mut redis::Pipeline {
        if let Some(slots) = &mut self.slots {
            slots.push(Some(crate::cluster::slot(key.as_ref())));
        }
        self.pipe.cmd(name)
    }

    /// Whether this batch goes to a cluster (where a command may touch one slot only).
    pub(crate) fn is_cluster(&self) -> bool {
        self.slots.is_some()
    }

    /// Adds `cmd`, a command on several keys (`MGET`, `MSET`), for a single server; on a
    /// cluster it is routed by its first key and answered with Redis' own `CROSSSLOT` error if
    /// its keys span slots, so callers use it only when [`Batch::is_cluster`] is false.
    pub(crate) fn add_multi_key(&mut self, cmd: redis::Cmd) {
        if let Some(slots) = &mut self.slots {
            let first = cmd.args_iter().nth(1).and_then(|a| match a {
                redis::Arg::Simple(k) => Some(crate::cluster::slot(k)),
                _ => None,
            });
            slots.push(Some(first.unwrap_or(0)));
        }
        self.pipe.add_command(cmd);
    }

    /// Starts keyless command `name` (`SCRIPT LOAD`, `WAIT`): on a cluster it runs on every
    /// master the batch reaches, in place, and its reply is the weakest of theirs.
    pub(crate) fn keyless(&mut self, name: &str) -> &mut redis::Pipeline {
        if let Some(slots) = &mut self.slots {
            slots.push(None);
        }
        self.pipe.cmd(name)
    }
}

/// The connection and everything an operation needs to know about the server and datasets.
pub(crate) struct Client {
    conn: Conn,
    pub(crate) opts: RedisOptions,
    /// `host:port` of the server, for `Unavailable` messages.
    pub(crate) address: String,
    /// The registry hash's key (`<prefix>:#datasets`).
    pub(crate) registry: String,
    /// Registry entries read within `metadata_cache_ttl`: reads may skip the registry for them.
    fresh: MetadataCache<Entry>,
    /// The registry entry last seen per dataset, however long ago: calls send their data
    /// commands for this generation in the same round trip as the registry read, and use the
    /// answers only when that read confirms the guess.
    guesses: MetadataCache<Entry>,
}

/// Taken before a registry read, so what it finds is not cached when this client created or
/// dropped a dataset meanwhile.
#[derive(Clone, Copy)]
pub(crate) struct CacheTickets {
    fresh: CacheTicket,
    guesses: CacheTicket,
}

/// What one dataset's requests need: where its keys live and how to read them.
/// Where the datasets of one call live. A call names one dataset or a few, so a list searched
/// in order costs less than a hash map (no hashing, one small allocation), on every call.
pub(crate) struct Targets(Vec<(String, Target)>);

impl Targets {
    /// The target of `dataset`, if the call resolved it.
    pub(crate) fn get(&self, dataset: &str) -> Option<&Target> {
        self.0.iter().find(|(d, _)| d == dataset).map(|(_, t)| t)
    }

    /// Whether any dataset of the call has a target satisfying `f`.
    pub(crate) fn any(&self, f: impl Fn(&Target) -> bool) -> bool {
        self.0.iter().any(|(_, t)| f(t))
    }
}

pub(crate) struct Target {
    pub(crate) data_prefix: String,
    pub(crate) kind: DatasetKind,
    pub(crate) props: DatasetProps,
}

/// Registry entries by dataset (`DatasetNotFound` or `Backend` per dataset).
pub(crate) type Registry = HashMap<String, Result<Entry, KvError>>;
/// The registry reply carried by the first pipeline of a call, if it asked for one.
pub(crate) type RegistryReply = Option<Result<Value, KvError>>;

/// Splits the registry reply off the front of a pipeline's replies.
pub(crate) fn split_registry(
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

impl Client {
    /// Connects to the server in `opts` and checks it answers (`PING`) within the timeout.
    /// A server that refuses or cannot be reached is `Unavailable` naming its address.
    pub(crate) async fn connect(opts: RedisOptions) -> Result<Client, KvError> {
        opts.validate()?;
        let redacted = redact_url(&opts.url);
        let ctx = ErrorContext::new(BACKEND, "connect", &redacted, opts.timeout);
        let (conn, address) = if opts.cluster {
            let client = cluster_client(&opts, ctx)?;
            let address = opts
                .seed_urls()?
                .iter()
                .map(|u| redact_url(u))
                .collect::<Vec<_>>()
                .join(",");
            let ctx = ErrorContext::new(BACKEND, "connect", &address, opts.timeout);
            let connect = async {
                let conn = client
                    .get_async_connection()
                    .await
                    .map_err(|e| map_error(e, ctx))?;
                Cluster::new(conn).await.map_err(|e| map_error(e, ctx))
            };
            let cluster = ctx.with_timeout(connect).await?;
            (Conn::Cluster(Box::new(cluster)), address)
        } else {
            let client = driver_client(&opts, ctx)?;
            let address = client.get_connection_info().addr().to_string();
            // No driver response timeout: every call is bounded by the store's own timeout
            // already (a second timer per pipeline cost measurable throughput), and the
            // driver's default of 500 ms would cut big pipelines short on a busy server.
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(None)
                .set_connection_timeout(Some(opts.connect_timeout.min(opts.timeout)))
                .set_number_of_retries(opts.reconnect_retries)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(500));
            let ctx = ErrorContext::new(BACKEND, "connect", &address, opts.timeout);
            let connect = async {
                let mut conn = ConnectionManager::new_with_config(client, config)
                    .await
                    .map_err(|e| map_error(e, ctx))?;
                let _: Value = redis::cmd("PING")
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| map_error(e, ctx))?;
                Ok(conn)
            };
            (Conn::Single(ctx.with_timeout(connect).await?), address)
        };
        Ok(Client {
            conn,
            registry: layout::registry_key(&opts.prefix),
            fresh: MetadataCache::new(opts.metadata_cache_ttl, DEFAULT_METADATA_CACHE_CAPACITY),
            guesses: MetadataCache::new(Duration::MAX, DEFAULT_METADATA_CACHE_CAPACITY),
            opts,
            address,
        })
    }

    /// What this store accepts: values up to `max_value_bytes`, `chunk_size` requests per call.
    pub(crate) fn capabilities(&self) -> Capabilities {
        Capabilities::new(
            self.opts.max_value_bytes,
            self.opts.chunk_size,
            self.opts.chunk_size,
        )
        .with_native_ttl()
        .with_persistence()
    }

    /// The context of an error of `operation` (add `.dataset(..)` and `.key(..)` as known).
    pub(crate) fn ctx(&self, operation: &'static str) -> ErrorContext<'_> {
        ErrorContext::new(BACKEND, operation, &self.address, self.opts.timeout)
    }

    /// Runs one command (on a cluster, on the master of its key).
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        ctx: ErrorContext<'_>,
        cmd: &redis::Cmd,
    ) -> Result<T, KvError> {
        let result = match &self.conn {
            Conn::Single(conn) => cmd.query_async(&mut conn.clone()).await,
            Conn::Cluster(cluster) => cmd.query_async(&mut cluster.conn()).await,
        };
        result.map_err(|e| map_error(e, ctx))
    }

    /// An empty [`Batch`] for this server or cluster.
    pub(crate) fn batch(&self) -> Batch {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        Batch {
            pipe,
            slots: matches!(self.conn, Conn::Cluster(_)).then(Vec::new),
        }
    }

    /// Runs a batch whose commands may fail one by one: a server error is kept in place as
    /// `Value::ServerError`, a connection error fails the whole batch.
    pub(crate) async fn pipeline(
        &self,
        ctx: ErrorContext<'_>,
        batch: &Batch,
    ) -> Result<Vec<Value>, KvError> {
        let result = match (&self.conn, &batch.slots) {
            (Conn::Single(conn), _) => batch.pipe.query_async(&mut conn.clone()).await,
            (Conn::Cluster(cluster), Some(slots)) => cluster.send(&batch.pipe, slots).await,
            (Conn::Cluster(_), None) => {
                return Err(ctx.backend_error(
                    "a single-server batch sent to a cluster (adapter bug)",
                    None,
                ))
            }
        };
        result.map_err(|e| map_error(e, ctx))
    }

    /// Where a `SCAN` of every key starts: the first node (a cluster's masters are named by
    /// the lowest slot each serves; a single server is node 0).
    pub(crate) async fn first_scan_node(&self, ctx: ErrorContext<'_>) -> Result<u16, KvError> {
        match &self.conn {
            Conn::Single(_) => Ok(0),
            Conn::Cluster(cluster) => {
                let nodes = cluster.scan_nodes().await.map_err(|e| map_error(e, ctx))?;
                nodes
                    .first()
                    .copied()
                    .ok_or_else(|| ctx.unavailable("the cluster serves no slots", None))
            }
        }
    }

    /// One `SCAN cursor MATCH pattern COUNT count` step over every key, node by node: the keys
    /// found and where to go on (`None` when every node is done).
    pub(crate) async fn scan_step(
        &self,
        ctx: ErrorContext<'_>,
        (node, cursor): (u16, u64),
        pattern: &str,
        count: usize,
    ) -> Result<(Option<(u16, u64)>, Vec<Vec<u8>>), KvError> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        let (next, keys): (u64, Vec<Vec<u8>>) = match &self.conn {
            Conn::Single(_) => self.query(ctx, &cmd).await?,
            Conn::Cluster(cluster) => {
                let v = cluster
                    .on_node(node, &cmd)
                    .await
                    .map_err(|e| map_error(e, ctx))?;
                redis::from_redis_value(v).map_err(|e| map_error(e.into(), ctx))?
            }
        };
        if next != 0 {
            return Ok((Some((node, next)), keys));
        }
        let next_node = match &self.conn {
            Conn::Single(_) => None,
            Conn::Cluster(cluster) => cluster
                .next_node(node)
                .await
                .map_err(|e| map_error(e, ctx))?,
        };
        Ok((next_node.map(|n| (n, 0)), keys))
    }

    /// With `min_replicas`, ends `batch` with a `WAIT` (its reply: replicas that confirmed).
    pub(crate) fn add_wait(&self, batch: &mut Batch) -> bool {
        if self.opts.min_replicas == 0 {
            return false;
        }
        let ms = u64::try_from(self.opts.wait_timeout.as_millis()).unwrap_or(u64::MAX);
        batch.keyless("WAIT").arg(self.opts.min_replicas).arg(ms);
        true
    }

    /// The error of writes whose `WAIT` found fewer than `min_replicas` replicas, if it did.
    pub(crate) fn wait_error(&self, ctx: ErrorContext<'_>, reply: &Value) -> Option<KvError> {
        let want = self.opts.min_replicas;
        let got = match reply {
            Value::Int(n) => usize::try_from(*n).unwrap_or(0),
            Value::ServerError(e) => return Some(map_error(e.clone().into(), ctx)),
            other => {
                return Some(ctx.backend_error(format!("unexpected WAIT reply {other:?}"), None))
            }
        };
        (got < want).then(|| {
            ctx.backend_error(
                format!(
                    "written on the master, but {got} of the {want} replicas asked for (min_replicas) confirmed within {:?}: the write may be lost if the master fails; write it again",
                    self.opts.wait_timeout
                ),
                None,
            )
            .retryable()
        })
    }

    /// Take BEFORE reading the registry; hand to [`Client::parse_registry`] with the reply.
    pub(crate) fn tickets(&self) -> CacheTickets {
        CacheTickets {
            fresh: self.fresh.ticket(),
            guesses: self.guesses.ticket(),
        }
    }

    /// This client created or dropped `dataset`: whatever was cached of it is void.
    pub(crate) fn forget(&self, dataset: &str) {
        self.fresh.forget(dataset);
        self.guesses.forget(dataset);
    }

    /// Records `dataset`'s registry entry as read by a lookup that began at `tickets`.
    pub(crate) fn remember(&self, tickets: CacheTickets, dataset: &str, entry: &Entry) {
        self.fresh.insert(tickets.fresh, dataset, entry.clone());
        self.guesses.insert(tickets.guesses, dataset, entry.clone());
    }

    /// The entries of `datasets` this client has seen, however long ago (guesses to check).
    pub(crate) fn last_seen(&self, datasets: &[String]) -> HashMap<String, Entry> {
        datasets
            .iter()
            .filter_map(|d| self.guesses.get(d).map(|e| (d.clone(), e)))
            .collect()
    }

    /// The entries of `datasets` if every one was read from the registry within
    /// `metadata_cache_ttl` (reads may then skip the registry).
    pub(crate) fn recently_seen(&self, datasets: &[String]) -> Option<Vec<(String, Entry)>> {
        datasets
            .iter()
            .map(|d| self.fresh.get(d).map(|e| (d.clone(), e)))
            .collect()
    }

    /// Reads the registry entries of `datasets` (one `HMGET`). A missing dataset maps to
    /// `DatasetNotFound`, an unreadable entry to `Backend`, both per dataset.
    pub(crate) async fn lookup(
        &self,
        op: &'static str,
        datasets: &[String],
    ) -> Result<Registry, KvError> {
        let tickets = self.tickets();
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&self.registry).arg(datasets);
        let raw: Value = self.query(self.ctx(op), &cmd).await?;
        self.parse_registry(op, datasets, raw, tickets)
    }

    /// Reads an `HMGET P:#datasets <datasets>` reply of a read begun at `tickets`.
    pub(crate) fn parse_registry(
        &self,
        op: &'static str,
        datasets: &[String],
        raw: Value,
        tickets: CacheTickets,
    ) -> Result<Registry, KvError> {
        let ctx = self.ctx(op);
        if let Value::ServerError(e) = raw {
            return Err(map_error(e.into(), ctx));
        }
        let raw: Vec<Option<String>> =
            redis::from_redis_value(raw).map_err(|e| map_error(e.into(), ctx))?;
        if raw.len() != datasets.len() {
            return Err(ctx.backend_error("registry answered a different number of datasets", None));
        }
        let mut out = HashMap::new();
        for (ds, raw) in datasets.iter().zip(raw) {
            let entry = match raw {
                None => Err(KvError::not_found(ds)),
                Some(r) => Entry::decode(&r).map_err(|m| {
                    ctx.dataset(ds)
                        .backend_error(format!("unreadable registry entry: {m}"), None)
                }),
            };
            if let Ok(e) = &entry {
                self.remember(tickets, ds, e);
            }
            out.insert(ds.clone(), entry);
        }
        // After every insert: a forget voids the tickets of the inserts still to come.
        for (ds, entry) in &out {
            if entry.is_err() {
                self.forget(ds);
            }
        }
        Ok(out)
    }

    /// The registry entries of `datasets` from the reply a call's first pipeline carried.
    pub(crate) fn registry_result(
        &self,
        op: &'static str,
        datasets: &[String],
        reply: RegistryReply,
        tickets: CacheTickets,
    ) -> Result<Registry, KvError> {
        match reply {
            Some(Ok(v)) => self.parse_registry(op, datasets, v, tickets),
            Some(Err(e)) => Err(e),
            None => Err(self
                .ctx(op)
                .backend_error("the dataset registry was not read (adapter bug)", None)),
        }
    }

    /// The registry entry of one dataset.
    pub(crate) async fn lookup_one(
        &self,
        op: &'static str,
        dataset: &str,
    ) -> Result<Entry, KvError> {
        let ds = [dataset.to_string()];
        let mut found = self.lookup(op, &ds).await?;
        found
            .remove(dataset)
            .unwrap_or_else(|| Err(KvError::not_found(dataset)))
    }

    /// Where each dataset's keys live, from its registry entry.
    pub(crate) fn targets<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a String, &'a Entry)>,
    ) -> Targets {
        Targets(
            entries
                .into_iter()
                .map(|(ds, e)| {
                    let t = Target {
                        data_prefix: layout::data_prefix(&self.opts.prefix, ds, &e.gen),
                        kind: e.props.kind,
                        props: e.props,
                    };
                    (ds.clone(), t)
                })
                .collect(),
        )
    }

    /// Runs `chunks` through `f`, at most `max_in_flight` at once, and concatenates the answers.
    /// The first pipeline also reads the registry entries of `registry` (when given), so the
    /// check costs no extra round trip.
    pub(crate) async fn run_chunks<'r, A, F, Fut>(
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
        // The usual call is one chunk: awaited directly, without the stream machinery (about
        // a thousand instructions a call, measured with callgrind).
        if chunks.len() == 1 {
            if let Some(chunk) = chunks.pop() {
                return f(registry, chunk).await;
            }
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
}
