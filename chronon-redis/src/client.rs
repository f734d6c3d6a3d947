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

use crate::config::RedisOptions;
use crate::error::{map_error, BACKEND};
use crate::layout::{self, Entry};

/// The driver's client for `opts.url`: plain, or TLS through rustls for `rediss://` with the
/// options' CA and client certificate files read here (an unreadable file is `KvError::Config`
/// naming it).
fn driver_client(opts: &RedisOptions, ctx: ErrorContext<'_>) -> Result<redis::Client, KvError> {
    if !opts.is_tls() {
        return redis::Client::open(opts.url.as_str()).map_err(|e| map_error(e, ctx));
    }
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
        return redis::Client::open(opts.url.as_str()).map_err(|e| map_error(e, ctx));
    }
    let certificates = redis::TlsCertificates {
        client_tls,
        root_cert,
    };
    redis::Client::build_with_tls(opts.url.as_str(), certificates).map_err(|e| map_error(e, ctx))
}

/// The connection and everything an operation needs to know about the server and datasets.
pub(crate) struct Client {
    conn: ConnectionManager,
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
        let client = driver_client(
            &opts,
            ErrorContext::new(BACKEND, "connect", &redacted, opts.timeout),
        )?;
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
        let conn = ctx.with_timeout(connect).await?;
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

    /// Runs one command.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        ctx: ErrorContext<'_>,
        cmd: &redis::Cmd,
    ) -> Result<T, KvError> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| map_error(e, ctx))
    }

    /// Runs a pipeline whose commands may fail one by one: a server error is kept in place as
    /// `Value::ServerError`, a connection error fails the whole pipeline.
    pub(crate) async fn pipeline(
        &self,
        ctx: ErrorContext<'_>,
        pipe: &redis::Pipeline,
    ) -> Result<Vec<Value>, KvError> {
        let mut conn = self.conn.clone();
        pipe.query_async(&mut conn)
            .await
            .map_err(|e| map_error(e, ctx))
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
    pub(crate) fn recently_seen(&self, datasets: &[String]) -> Option<HashMap<String, Entry>> {
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
    pub(crate) fn targets(&self, entries: &HashMap<String, Entry>) -> HashMap<String, Target> {
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
