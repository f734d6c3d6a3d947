//! [`RedisOptions`]: where the server is and how the adapter talks to it, from code or a URL,
//! with its defaults, its secret-hiding `Debug`, URL parsing and validation.

use std::path::PathBuf;
use std::time::Duration;

use chronon_core::config::{redact_url, UrlParams};
use chronon_core::metadata_cache::METADATA_CACHE_TTL_PARAM;
use chronon_core::KvError;

use crate::error::BACKEND;
use crate::layout;

/// Settings of a [`RedisStore`](crate::RedisStore). Every field has a documented default.
///
/// From a URL (`redis://[user:password@]host:port/db?prefix=chronon&timeout_ms=10000`) with
/// [`RedisOptions::from_url`]; the query parameters are this adapter's, the rest goes to the
/// `redis` crate unchanged.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Connection URL for the `redis` crate, without this adapter's query parameters.
    /// Default `redis://127.0.0.1:6379/0`.
    pub url: String,
    /// Prefix of every Redis key this adapter writes (`prefix=`). Default `chronon`. 1–64
    /// printable ASCII characters without `{}*?[]\^#`, so patterns and hash tags stay exact.
    pub prefix: String,
    /// Longest any call may take before it returns `KvError::Timeout` (`timeout_ms=`). Default
    /// 10 s, Chronon's default `fetchTimeout`.
    pub timeout: Duration,
    /// Longest one connection attempt may take (`connect_timeout_ms=`). Default 2 s.
    pub connect_timeout: Duration,
    /// Reconnection attempts after a lost connection before a call gives up with
    /// `Unavailable` (`reconnect_retries=`); the next call tries again. Default 2.
    pub reconnect_retries: usize,
    /// Requests per pipeline (`chunk_size=`), so 10,000 requests never build one giant request
    /// or reply. Default 1000.
    pub chunk_size: usize,
    /// Upper bound on the value bytes of one write pipeline (`chunk_bytes=`). Default 8 MiB.
    pub chunk_bytes: usize,
    /// Pipelines of one call in flight at once (`max_in_flight=`). Default 4.
    pub max_in_flight: usize,
    /// Largest value accepted (`max_value_bytes=`). Default 1 MiB; Redis itself allows
    /// 512 MB, but one feature value that large would stall the server for every other client.
    pub max_value_bytes: usize,
    /// `COUNT` hint of each `SCAN` step in `list` and `drop_dataset` (`scan_count=`). Default 1000.
    pub scan_count: usize,
    /// How long an idle `list` iteration stays resumable (`list_session_ttl_ms=`). Default 10 min.
    pub list_session_ttl: Duration,
    /// How long a dataset's registry entry, once this client has read it, lets `multi_get` skip
    /// reading the registry again (`metadata_cache_ttl_ms=`). Default 1 s. Reading it costs one more
    /// command in every call (measured: about a tenth of a small call's throughput). Writes
    /// always check, so a put never lands in a dropped generation; this client's own
    /// `create`/`drop_dataset` take effect at once. Only a drop (or drop and re-create) by
    /// *another* client can go unseen by reads, for at most this long: they answer from the
    /// old generation (empty once its keys are deleted). `Duration::ZERO` checks every call.
    pub metadata_cache_ttl: Duration,
    /// TLS (`rediss://` URLs only): a PEM file of the certificate authorities that may sign the
    /// server's certificate (`tls_ca_file=`), instead of the system's trust store. Default none.
    pub tls_ca_file: Option<PathBuf>,
    /// TLS: a PEM client certificate chain for servers that require one (`tls_cert_file=`,
    /// with `tls_key_file=`). Default none.
    pub tls_cert_file: Option<PathBuf>,
    /// TLS: the PEM private key of [`RedisOptions::tls_cert_file`] (`tls_key_file=`).
    pub tls_key_file: Option<PathBuf>,
    /// Redis Cluster (`cluster=true`): the URL's host is one seed node, the driver discovers
    /// the others, and requests go to the master of each key's hash slot. Default false (one
    /// server). Database 0 only, as Redis Cluster has no other.
    pub cluster: bool,
    /// More seed nodes of the cluster besides the URL's host (`cluster_nodes=h:p,h:p`), so
    /// opening works while the first seed is down. Same user, password and TLS. Default none.
    pub cluster_nodes: Vec<String>,
    /// Replicas that must hold a write before `multi_put` or `create` acknowledges it
    /// (`min_replicas=`): Redis replicates asynchronously, so without this an acknowledged
    /// write dies with a master that fails before shipping it. Each write pipeline then ends
    /// in `WAIT min_replicas wait_timeout`, and writes fewer replicas confirmed are answered
    /// with a retryable error (they are on the master, maybe not on a replica). Default 0 (no
    /// `WAIT`: Redis' own behaviour).
    pub min_replicas: usize,
    /// How long one `WAIT` waits for [`RedisOptions::min_replicas`] (`wait_timeout_ms=`).
    /// Default 1 s.
    pub wait_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            url: "redis://127.0.0.1:6379/0".to_string(),
            prefix: "chronon".to_string(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            reconnect_retries: 2,
            chunk_size: 1000,
            chunk_bytes: 8 * 1024 * 1024,
            max_in_flight: 4,
            max_value_bytes: 1024 * 1024,
            scan_count: 1000,
            list_session_ttl: Duration::from_secs(600),
            metadata_cache_ttl: Duration::from_secs(1),
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            cluster: false,
            cluster_nodes: Vec::new(),
            min_replicas: 0,
            wait_timeout: Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_retries", &self.reconnect_retries)
            .field("chunk_size", &self.chunk_size)
            .field("chunk_bytes", &self.chunk_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("scan_count", &self.scan_count)
            .field("list_session_ttl", &self.list_session_ttl)
            .field("metadata_cache_ttl", &self.metadata_cache_ttl)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("cluster", &self.cluster)
            .field("cluster_nodes", &self.cluster_nodes)
            .field("min_replicas", &self.min_replicas)
            .field("wait_timeout", &self.wait_timeout)
            .finish()
    }
}

/// The largest value Redis stores (512 MB) minus our 8-byte timestamp header.
const REDIS_MAX_VALUE: usize = 512 * 1024 * 1024 - 8;

impl RedisOptions {
    /// Options for the server at `url` (a plain `redis://host:port/db`), defaults elsewhere.
    pub fn new(url: impl Into<String>) -> Self {
        RedisOptions {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Sets the key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the requests per pipeline.
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size;
        self
    }

    /// Parses `redis://[user:password@]host:port/db?prefix=..&timeout_ms=..&...` (parameter
    /// names are the field names, durations in `_ms`; the metadata cache's TTL is
    /// `metadata_cache_ttl_ms`). `rediss://` is the same over TLS (rustls; the server's
    /// certificate checked against the system's trust store, or `tls_ca_file=`; a client
    /// certificate with `tls_cert_file=` and `tls_key_file=`); the `tls_` parameters on a
    /// `redis://` URL are a `KvError::Config`, never a silent plain-text connection. Unknown or repeated parameters are a `KvError::Config` listing
    /// the known ones, so a typo never silently falls back to a default. `protocol` (`resp3`)
    /// is the `redis` crate's own and passes through to it.
    ///
    /// ```
    /// let o = chronon_redis::RedisOptions::from_url(
    ///     "redis://127.0.0.1:6379/2?prefix=team_a&timeout_ms=500",
    /// ).unwrap();
    /// assert_eq!(o.prefix, "team_a");
    /// assert_eq!(o.url, "redis://127.0.0.1:6379/2");
    /// assert_eq!(o.timeout.as_millis(), 500);
    /// ```
    pub fn from_url(url: &str) -> Result<Self, KvError> {
        let parsed = url::Url::parse(url).map_err(|e| {
            KvError::config(BACKEND, format!("{} is not a URL: {e}", redact_url(url)))
        })?;
        if parsed.scheme() != crate::SCHEME && parsed.scheme() != crate::TLS_SCHEME {
            return Err(KvError::config(
                BACKEND,
                format!(
                    "scheme must be {:?} or {:?}, not {:?} (in {})",
                    crate::SCHEME,
                    crate::TLS_SCHEME,
                    parsed.scheme(),
                    redact_url(url)
                ),
            ));
        }
        let pairs = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()));
        let mut params = UrlParams::new(BACKEND, url, pairs);
        let mut opts = RedisOptions::default();
        if let Some(prefix) = params.string("prefix") {
            opts.prefix = prefix;
        }
        set(&mut opts.timeout, params.millis("timeout_ms")?);
        set(
            &mut opts.connect_timeout,
            params.millis("connect_timeout_ms")?,
        );
        set(
            &mut opts.reconnect_retries,
            params.usize("reconnect_retries")?,
        );
        set(&mut opts.chunk_size, params.usize("chunk_size")?);
        set(&mut opts.chunk_bytes, params.usize("chunk_bytes")?);
        set(&mut opts.max_in_flight, params.usize("max_in_flight")?);
        set(&mut opts.max_value_bytes, params.usize("max_value_bytes")?);
        set(&mut opts.scan_count, params.usize("scan_count")?);
        set(
            &mut opts.list_session_ttl,
            params.millis("list_session_ttl_ms")?,
        );
        set(
            &mut opts.metadata_cache_ttl,
            params.millis(METADATA_CACHE_TTL_PARAM)?,
        );
        opts.tls_ca_file = params.string("tls_ca_file").map(PathBuf::from);
        opts.tls_cert_file = params.string("tls_cert_file").map(PathBuf::from);
        opts.tls_key_file = params.string("tls_key_file").map(PathBuf::from);
        set(&mut opts.cluster, params.bool("cluster")?);
        if let Some(nodes) = params.string("cluster_nodes") {
            opts.cluster_nodes = nodes
                .split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect();
        }
        set(&mut opts.min_replicas, params.usize("min_replicas")?);
        set(&mut opts.wait_timeout, params.millis("wait_timeout_ms")?);
        // Parameters of the redis crate itself pass through.
        let protocol = params.passthrough("protocol");
        params.finish()?;
        let mut plain = parsed;
        plain.set_fragment(None);
        match protocol {
            Some(p) => plain.set_query(Some(
                &url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("protocol", &p)
                    .finish(),
            )),
            None => plain.set_query(None),
        }
        opts.url = plain.to_string();
        opts.validate()?;
        Ok(opts)
    }

    /// Whether the URL asks for TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.url
            .get(..crate::TLS_SCHEME.len() + 1)
            .is_some_and(|s| s.eq_ignore_ascii_case(&format!("{}:", crate::TLS_SCHEME)))
    }

    /// The driver URL of every seed node: [`RedisOptions::url`], then one per
    /// [`RedisOptions::cluster_nodes`] entry with the same scheme, user, password and database.
    pub fn seed_urls(&self) -> Result<Vec<String>, KvError> {
        let mut urls = vec![self.url.clone()];
        for node in &self.cluster_nodes {
            let bad = |why: String| {
                KvError::config(
                    BACKEND,
                    format!("cluster_nodes entry {node:?} must be host:port ({why})"),
                )
            };
            let (host, port) = node.rsplit_once(':').ok_or_else(|| bad("no port".into()))?;
            let port: u16 = port.parse().map_err(|e| bad(format!("{e}")))?;
            let mut url = url::Url::parse(&self.url).map_err(|e| bad(e.to_string()))?;
            url.set_host(Some(host)).map_err(|e| bad(e.to_string()))?;
            url.set_port(Some(port))
                .map_err(|()| bad("the URL cannot take a port".into()))?;
            urls.push(url.to_string());
        }
        Ok(urls)
    }

    /// Checks the options make sense; the error names the field.
    pub fn validate(&self) -> Result<(), KvError> {
        let bad = |msg: String| KvError::config(BACKEND, msg);
        layout::valid_prefix(&self.prefix).map_err(bad)?;
        if !self.cluster_nodes.is_empty() && !self.cluster {
            return Err(bad("cluster_nodes needs cluster=true".into()));
        }
        if self.cluster {
            let db = url::Url::parse(&self.url)
                .ok()
                .map(|u| u.path().trim_matches('/').to_string())
                .unwrap_or_default();
            if !db.is_empty() && db != "0" {
                return Err(bad(format!(
                    "Redis Cluster has database 0 only, not {db:?} (in {})",
                    redact_url(&self.url)
                )));
            }
            self.seed_urls()?;
        }
        if self.min_replicas > 0 && self.wait_timeout.is_zero() {
            // WAIT with timeout 0 blocks forever.
            return Err(bad(
                "wait_timeout_ms must be above zero with min_replicas".into()
            ));
        }
        let tls_files = [&self.tls_ca_file, &self.tls_cert_file, &self.tls_key_file];
        if tls_files.iter().any(|f| f.is_some()) && !self.is_tls() {
            return Err(bad(format!(
                "tls_ca_file, tls_cert_file and tls_key_file need a {}:// URL, not {}",
                crate::TLS_SCHEME,
                redact_url(&self.url)
            )));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(bad(
                "tls_cert_file and tls_key_file go together (a client certificate and its key)"
                    .into(),
            ));
        }
        if self.timeout.is_zero() {
            return Err(bad("timeout must be above zero".into()));
        }
        if self.chunk_size == 0 || self.max_in_flight == 0 || self.scan_count == 0 {
            return Err(bad(
                "chunk_size, max_in_flight and scan_count must be above zero".into(),
            ));
        }
        if self.max_value_bytes < chronon_core::validate::MIN_MAX_VALUE_BYTES
            || self.max_value_bytes > REDIS_MAX_VALUE
        {
            return Err(bad(format!(
                "max_value_bytes {} must be between {} (the floor every store must accept) and {REDIS_MAX_VALUE} (Redis' 512 MB limit)",
                self.max_value_bytes,
                chronon_core::validate::MIN_MAX_VALUE_BYTES
            )));
        }
        Ok(())
    }
}

/// Overwrites `field` with a parameter's value when the URL gave one.
fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RedisOptions, KvError> {
        RedisOptions::from_url(s)
    }

    #[test]
    fn tls_parameters_need_rediss_and_go_through() {
        let o = parse("rediss://h:6380/0?tls_ca_file=/c/ca.pem&tls_cert_file=/c/a.pem&tls_key_file=/c/a.key&prefix=p").unwrap();
        assert!(o.is_tls());
        assert_eq!(o.url, "rediss://h:6380/0");
        assert_eq!(o.tls_ca_file, Some(PathBuf::from("/c/ca.pem")));
        assert_eq!(o.tls_cert_file, Some(PathBuf::from("/c/a.pem")));
        assert_eq!(o.tls_key_file, Some(PathBuf::from("/c/a.key")));
        assert!(parse("rediss://h:6380/0").unwrap().is_tls());
        assert!(!parse("redis://h:6379/0").unwrap().is_tls());
        let plain = parse("redis://h:6379/0?tls_ca_file=/c/ca.pem").unwrap_err();
        assert!(plain.to_string().contains("rediss://"), "{plain}");
        let half = parse("rediss://h/0?tls_cert_file=/c/a.pem").unwrap_err();
        assert!(half.to_string().contains("go together"), "{half}");
    }

    #[test]
    fn url_parameters() {
        let o = parse("redis://:secret@h:7000/3?prefix=p&chunk_size=10&scan_count=7&max_value_bytes=400000&list_session_ttl_ms=5&metadata_cache_ttl_ms=0&protocol=resp3").unwrap();
        assert_eq!(o.metadata_cache_ttl, Duration::ZERO);
        assert_eq!(o.url, "redis://:secret@h:7000/3?protocol=resp3");
        assert_eq!(
            (o.prefix.as_str(), o.chunk_size, o.scan_count),
            ("p", 10, 7)
        );
        assert_eq!(o.max_value_bytes, 400_000);
        assert_eq!(o.list_session_ttl, Duration::from_millis(5));
        assert!(
            !format!("{o:?}").contains("secret"),
            "Debug shows the password"
        );
        let d = parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!(d.prefix, "chronon");
        assert_eq!(d.timeout, Duration::from_secs(10));
    }

    #[test]
    fn cluster_parameters() {
        let o = parse("redis://:pw@h1:7000/?cluster=true&cluster_nodes=h2:7001,h3:7002&min_replicas=1&wait_timeout_ms=250").unwrap();
        assert!(o.cluster);
        assert_eq!(o.url, "redis://:pw@h1:7000/");
        assert_eq!(o.min_replicas, 1);
        assert_eq!(o.wait_timeout, Duration::from_millis(250));
        assert_eq!(
            o.seed_urls().unwrap(),
            [
                "redis://:pw@h1:7000/",
                "redis://:pw@h2:7001/",
                "redis://:pw@h3:7002/"
            ]
        );
        let d = parse("redis://h:6379").unwrap();
        assert!(!d.cluster && d.min_replicas == 0 && d.cluster_nodes.is_empty());
        assert!(parse("rediss://h:6379/0?cluster=true").unwrap().is_tls());
        for (bad, says) in [
            ("redis://h/2?cluster=true", "database 0 only"),
            ("redis://h/0?cluster_nodes=a:1", "needs cluster=true"),
            ("redis://h/0?cluster=true&cluster_nodes=a", "host:port"),
            ("redis://h/0?cluster=true&cluster_nodes=a:x", "host:port"),
            ("redis://h/0?cluster=yes%3F", "cluster"),
            (
                "redis://h/0?min_replicas=1&wait_timeout_ms=0",
                "wait_timeout_ms",
            ),
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_urls() {
        for bad in [
            "redis://h/0?prefx=a",
            "redis://h/0?timeout_ms=abc",
            "redis://h/0?timeout_ms=0",
            "redis://h/0?prefix=a*b",
            "redis://h/0?chunk_size=0",
            "redis://h/0?max_value_bytes=10",
            "http://h/0",
            "redis://h/0?registry_check_ms=5",
            "redis://h/0?chunk_size=1&chunk_size=2",
            "not a url",
        ] {
            match parse(bad) {
                Err(KvError::Config { backend, .. }) => assert_eq!(backend, "redis", "{bad}"),
                other => panic!("{bad}: expected a Config error, got {other:?}"),
            }
        }
        let err = parse("redis://:secret@h/0?prefx=a")
            .unwrap_err()
            .to_string();
        assert!(err.contains("prefx") && err.contains("known:"), "{err}");
        assert!(
            !err.contains("secret"),
            "the error shows the password: {err}"
        );
    }
}
