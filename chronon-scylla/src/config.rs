//! `ScyllaOptions`: where the cluster is, how the keyspace is replicated, and the limits every
//! call honours; parsed from `scylla://` URLs.
//!
//! A host list with a port on each host (`host1:9042,host2:9042`) is not a valid `url::Url`, so
//! the hosts, user and keyspace are split here; the query parameters are read through
//! [`UrlParams`] and every message shows the URL through [`redact_url`].

use std::path::PathBuf;
use std::time::Duration;

use chronon_core::config::{query_pairs, redact_url, UrlParams};
use chronon_core::metadata_cache::METADATA_CACHE_TTL_PARAM;
use chronon_core::KvError;
use scylla::statement::Consistency;

use crate::cql::Replication;
use crate::layout::is_valid_keyspace;
use crate::tls::TlsOptions;

/// The URL scheme of this adapter: `scylla://host:9042/keyspace`.
pub const SCHEME: &str = "scylla";

/// The backend name in reports and errors.
pub(crate) const BACKEND: &str = "scylla";

/// The CQL native protocol port, used when a contact point names none.
pub const DEFAULT_PORT: u16 = 9042;

/// Largest accepted [`ScyllaOptions::max_in_flight`]: one connection's CQL stream ids (32768)
/// times two; more would only queue inside the driver.
pub const MAX_IN_FLIGHT: usize = 65_536;

/// How to reach a ScyllaDB or Cassandra cluster and how the adapter behaves on it.
///
/// Every field has a documented default ([`ScyllaOptions::new`]); the URL form
/// ([`ScyllaOptions::from_url`]) sets the same fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct ScyllaOptions {
    /// `host:port` contact points (the driver discovers the rest of the cluster from them).
    pub contact_points: Vec<String>,
    /// The keyspace holding the `datasets` table and one table per dataset. Default `chronon`.
    pub keyspace: String,
    /// Replication used when the adapter creates the keyspace. Default
    /// `NetworkTopologyStrategy` with `replication_factor` 1.
    pub replication: Replication,
    /// Consistency of every read and write. Default `LOCAL_QUORUM`: a quorum write and a quorum
    /// read overlap, so a read sees every acknowledged write (the contract's read-your-writes).
    pub consistency: Consistency,
    /// Most requests this store has in flight at once, over all concurrent calls. `multi_get` and
    /// `multi_put` run one prepared statement per request, concurrently up to this bound (no
    /// multi-partition `BATCH`, which would funnel every write through one coordinator). Default 256.
    pub max_in_flight: usize,
    /// Deadline of every data call (`multi_get`, `multi_put`, `list`, `dataset_props`) and of
    /// connecting. Default 10 s (Chronon's default KV timeout).
    pub timeout: Duration,
    /// Deadline of `create` and `drop_dataset`, which change the schema and wait for every node
    /// to agree on it. Default 60 s.
    pub schema_timeout: Duration,
    /// Preferred (local) datacenter for load balancing; with `LOCAL_*` consistencies this is the
    /// datacenter whose quorum is used. Default none (all nodes alike).
    pub local_datacenter: Option<String>,
    /// User name for password authentication.
    pub username: Option<String>,
    /// Password for password authentication (never printed by `Debug`).
    pub password: Option<String>,
    /// Create the keyspace and the `datasets` table at connect time when missing. Default true;
    /// turn off where the schema is managed by an administrator.
    pub create_keyspace: bool,
    /// How long a client trusts what it read from the `datasets` table (and the statements it
    /// prepared) before reading it again, so a dataset dropped or re-created by another client is
    /// noticed. Default 5 s; zero turns the cache off.
    pub metadata_cache_ttl: Duration,
    /// TLS to the nodes (rustls). Default off. URL: `tls=true`, `tls_ca_file=`,
    /// `tls_cert_file=`, `tls_key_file=`.
    pub tls: TlsOptions,
}

impl std::fmt::Debug for ScyllaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaOptions")
            .field("contact_points", &self.contact_points)
            .field("keyspace", &self.keyspace)
            .field("replication", &self.replication)
            .field("consistency", &self.consistency)
            .field("max_in_flight", &self.max_in_flight)
            .field("timeout", &self.timeout)
            .field("schema_timeout", &self.schema_timeout)
            .field("local_datacenter", &self.local_datacenter)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("create_keyspace", &self.create_keyspace)
            .field("metadata_cache_ttl", &self.metadata_cache_ttl)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for ScyllaOptions {
    /// One node on `127.0.0.1:9042`.
    fn default() -> Self {
        ScyllaOptions::new([format!("127.0.0.1:{DEFAULT_PORT}")])
    }
}

impl ScyllaOptions {
    /// Options for the given contact points (`host` or `host:port`), every other field at its default.
    pub fn new(contact_points: impl IntoIterator<Item = impl Into<String>>) -> Self {
        ScyllaOptions {
            contact_points: contact_points
                .into_iter()
                .map(|c| with_default_port(&c.into()))
                .collect(),
            keyspace: "chronon".to_string(),
            replication: Replication::default(),
            consistency: Consistency::LocalQuorum,
            max_in_flight: 256,
            timeout: Duration::from_secs(10),
            schema_timeout: Duration::from_secs(60),
            local_datacenter: None,
            username: None,
            password: None,
            create_keyspace: true,
            metadata_cache_ttl: Duration::from_secs(5),
            tls: TlsOptions::default(),
        }
    }

    /// The same options with another keyspace.
    pub fn with_keyspace(mut self, keyspace: impl Into<String>) -> Self {
        self.keyspace = keyspace.into();
        self
    }

    /// The same options with another consistency.
    pub fn with_consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }

    /// The same options with another replication for a keyspace the adapter creates.
    pub fn with_replication(mut self, replication: Replication) -> Self {
        self.replication = replication;
        self
    }

    /// The same options with another data-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same options with another bound on requests in flight.
    pub fn with_max_in_flight(mut self, max_in_flight: usize) -> Self {
        self.max_in_flight = max_in_flight;
        self
    }

    /// Checks what the driver would otherwise reject later, less clearly.
    pub fn validate(&self) -> Result<(), KvError> {
        let bad = |reason: String| Err(KvError::config(BACKEND, reason));
        if self.contact_points.is_empty() {
            return bad("no contact points".into());
        }
        self.tls.validate()?;
        if !is_valid_keyspace(&self.keyspace) {
            return bad(format!(
                "keyspace {:?} is not a CQL keyspace name (1-48 of A-Z, a-z, 0-9, _, starting with a letter)",
                self.keyspace
            ));
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) {
            return bad(format!("max_in_flight must be 1 to {MAX_IN_FLIGHT}"));
        }
        let day = Duration::from_secs(24 * 3600);
        if [self.timeout, self.schema_timeout]
            .iter()
            .any(|t| t.is_zero() || *t > day)
        {
            return bad("timeouts must be positive and at most one day".into());
        }
        match &self.replication {
            Replication::Simple {
                replication_factor: 0,
            }
            | Replication::NetworkTopology {
                replication_factor: 0,
            } => return bad("replication_factor must be at least 1".into()),
            Replication::Datacenters(dcs) if dcs.is_empty() => {
                return bad("datacenters needs at least one dc:factor".into())
            }
            _ => {}
        }
        if matches!(
            self.consistency,
            Consistency::Any
                | Consistency::EachQuorum
                | Consistency::Serial
                | Consistency::LocalSerial
        ) {
            return bad(format!(
                "consistency {} cannot be used for both reads and writes",
                self.consistency
            ));
        }
        Ok(())
    }

    /// Parses a `scylla://` URL (also `cassandra://`):
    ///
    /// ```text
    /// scylla://[user:password@]host1[:port][,host2[:port]...][/keyspace][?param=value&...]
    /// ```
    ///
    /// Each host carries its own port (default 9042); IPv6 addresses go in brackets. The path is
    /// the keyspace (default `chronon`). Parameters (all optional):
    ///
    /// | parameter | meaning |
    /// | --- | --- |
    /// | `consistency` | `local_quorum` (default), `quorum`, `all`, `one`, `two`, `three`, `local_one` |
    /// | `replication_factor` | factor for a keyspace the adapter creates (default 1) |
    /// | `replication_class` | `NetworkTopologyStrategy` (default) or `SimpleStrategy` |
    /// | `datacenters` | per-datacenter factors, `dc1:3,dc2:2` (NetworkTopologyStrategy) |
    /// | `local_dc` | preferred datacenter |
    /// | `timeout_ms` | data-call timeout (default 10000) |
    /// | `schema_timeout_ms` | create/drop timeout (default 60000) |
    /// | `max_in_flight` | requests in flight (default 256) |
    /// | `create_keyspace` | `true` (default) or `false` |
    /// | `metadata_cache_ttl_ms` | dataset metadata cache lifetime (default 5000, 0 turns it off) |
    ///
    /// Unknown or repeated parameters are errors, so a typo never silently falls back to a
    /// default; every error is [`KvError::Config`] and never shows the password.
    ///
    /// ```
    /// use chronon_scylla::ScyllaOptions;
    /// let o = ScyllaOptions::from_url(
    ///     "scylla://host1:9042,host2:9042/features?consistency=quorum&replication_factor=3",
    /// ).unwrap();
    /// assert_eq!(o.contact_points, vec!["host1:9042", "host2:9042"]);
    /// assert_eq!(o.keyspace, "features");
    /// ```
    pub fn from_url(url: &str) -> Result<ScyllaOptions, KvError> {
        let redacted = redact_url(url);
        let err = |reason: String| KvError::config(BACKEND, format!("{reason} (in {redacted})"));
        let rest = url
            .strip_prefix("scylla://")
            .or_else(|| url.strip_prefix("cassandra://"))
            .ok_or_else(|| err(format!("the scheme must be {SCHEME}:// (or cassandra://)")))?;
        let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let mut contact_points = Vec::new();
        for host in hosts.split(',') {
            contact_points.push(parse_host(host).map_err(&err)?);
        }
        let mut options = ScyllaOptions::new(contact_points);
        if let Some(userinfo) = userinfo {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            options.username = Some(percent_decode(user).map_err(&err)?);
            options.password = password.map(percent_decode).transpose().map_err(&err)?;
        }
        let keyspace = path.trim_end_matches('/');
        if !keyspace.is_empty() {
            options.keyspace = keyspace.to_string();
        }
        let mut params = UrlParams::new(BACKEND, url, query_pairs(url));
        if let Some(v) = params.string("consistency") {
            options.consistency = parse_consistency(&v).map_err(&err)?;
        }
        let factor = match params.u64("replication_factor")? {
            Some(n) => Some(u32::try_from(n).map_err(|_| {
                params.invalid("replication_factor", &n.to_string(), "at most 2^32-1")
            })?),
            None => None,
        };
        let class = params.string("replication_class");
        if let Some(v) = params.string("datacenters") {
            options.replication = parse_datacenters(&v).map_err(&err)?;
        }
        if let Some(v) = params.string("local_dc") {
            options.local_datacenter = Some(v);
        }
        if let Some(t) = params.millis("timeout_ms")? {
            options.timeout = t;
        }
        if let Some(t) = params.millis("schema_timeout_ms")? {
            options.schema_timeout = t;
        }
        if let Some(n) = params.usize("max_in_flight")? {
            options.max_in_flight = n;
        }
        if let Some(b) = params.bool("create_keyspace")? {
            options.create_keyspace = b;
        }
        if let Some(t) = params.millis(METADATA_CACHE_TTL_PARAM)? {
            options.metadata_cache_ttl = t;
        }
        let tls_file = |params: &mut UrlParams, name| params.string(name).map(PathBuf::from);
        options.tls.ca_file = tls_file(&mut params, "tls_ca_file");
        options.tls.cert_file = tls_file(&mut params, "tls_cert_file");
        options.tls.key_file = tls_file(&mut params, "tls_key_file");
        let any_file = options.tls.ca_file.is_some() || options.tls.cert_file.is_some();
        options.tls.enabled = params.bool("tls")?.unwrap_or(any_file);
        params.finish()?;
        if class.is_some() || factor.is_some() {
            if matches!(options.replication, Replication::Datacenters(_)) {
                return Err(err(
                    "datacenters cannot be combined with replication_class or replication_factor"
                        .into(),
                ));
            }
            let replication_factor = factor.unwrap_or(1);
            options.replication = match class.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("networktopologystrategy") | Some("network_topology") => {
                    Replication::NetworkTopology { replication_factor }
                }
                Some("simplestrategy") | Some("simple") => {
                    Replication::Simple { replication_factor }
                }
                Some(_) => {
                    return Err(err(format!(
                        "replication_class={:?} is not NetworkTopologyStrategy or SimpleStrategy",
                        class.unwrap_or_default()
                    )))
                }
            };
        }
        options.validate().map_err(|e| match e {
            KvError::Config { message, .. } => err(message),
            other => other,
        })?;
        Ok(options)
    }
}

fn with_default_port(host: &str) -> String {
    let has_port = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']')
            .is_some_and(|(_, p)| p.starts_with(':'))
    } else {
        host.contains(':')
    };
    if has_port {
        host.to_string()
    } else {
        format!("{host}:{DEFAULT_PORT}")
    }
}

fn parse_host(host: &str) -> Result<String, String> {
    if host.is_empty() {
        return Err("empty host in the host list".into());
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed [ in host {host:?}"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{addr:?} in brackets is not an IPv6 address"));
        }
        match after {
            "" => (format!("[{addr}]"), None),
            p if p.starts_with(':') => (format!("[{addr}]"), Some(&p[1..])),
            _ => return Err(format!("unexpected {after:?} after ] in host {host:?}")),
        }
    } else {
        match host.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                return Err(format!(
                    "host {host:?}: put IPv6 addresses in brackets, [::1]:9042"
                ))
            }
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (host.to_string(), None),
        }
    };
    if name.is_empty() {
        return Err(format!("empty host name in {host:?}"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("invalid port {p:?} in host {host:?}"))?,
    };
    Ok(format!("{name}:{port}"))
}

/// Parses a consistency name (`local_quorum`, `LOCAL_QUORUM`, `LocalQuorum` all work).
pub fn parse_consistency(s: &str) -> Result<Consistency, String> {
    let norm: String = s
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    Ok(match norm.as_str() {
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "localquorum" => Consistency::LocalQuorum,
        "localone" => Consistency::LocalOne,
        "any" | "eachquorum" | "serial" | "localserial" => {
            return Err(format!(
                "consistency {s:?} is write-only or serial-only; use one, two, three, quorum, all, local_quorum or local_one"
            ))
        }
        _ => return Err(format!("unknown consistency {s:?}")),
    })
}

fn parse_datacenters(s: &str) -> Result<Replication, String> {
    let mut dcs = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (dc, rf) = part
            .rsplit_once(':')
            .ok_or_else(|| format!("datacenters entry {part:?} is not dc:factor"))?;
        let rf: u32 = rf.parse().ok().filter(|rf| *rf > 0).ok_or_else(|| {
            format!("replication factor {rf:?} of datacenter {dc:?} is not a positive integer")
        })?;
        if dc.is_empty() {
            return Err(format!("datacenters entry {part:?} has no datacenter name"));
        }
        dcs.push((dc.to_string(), rf));
    }
    if dcs.is_empty() {
        return Err("datacenters is empty".into());
    }
    Ok(Replication::Datacenters(dcs))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad percent-encoding in user or password".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "user or password is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters() {
        let o = ScyllaOptions::from_url(
            "scylla://h:9142/ks?tls_ca_file=/c/ca.pem&tls_cert_file=/c/a.pem&tls_key_file=/c/a.key",
        )
        .unwrap();
        assert!(o.tls.enabled, "a CA file implies TLS");
        assert_eq!(o.tls.ca_file, Some(PathBuf::from("/c/ca.pem")));
        assert_eq!(o.tls.cert_file, Some(PathBuf::from("/c/a.pem")));
        assert_eq!(o.tls.key_file, Some(PathBuf::from("/c/a.key")));
        let on = ScyllaOptions::from_url("scylla://h:9142/ks?tls=true").unwrap();
        assert!(on.tls.enabled && on.tls.ca_file.is_none());
        assert!(
            !ScyllaOptions::from_url("scylla://h/ks")
                .unwrap()
                .tls
                .enabled
        );
        let err =
            ScyllaOptions::from_url("scylla://h/ks?tls=false&tls_ca_file=/c/ca.pem").unwrap_err();
        assert!(err.to_string().contains("TLS is off"), "{err}");
        let err = ScyllaOptions::from_url("scylla://h/ks?tls_cert_file=/c/a.pem").unwrap_err();
        assert!(err.to_string().contains("go together"), "{err}");
    }

    #[test]
    fn defaults() {
        let o = ScyllaOptions::default();
        assert_eq!(o.contact_points, vec!["127.0.0.1:9042"]);
        assert_eq!(o.keyspace, "chronon");
        assert_eq!(o.consistency, Consistency::LocalQuorum);
        assert_eq!(
            o.replication,
            Replication::NetworkTopology {
                replication_factor: 1
            }
        );
        assert_eq!(o.timeout, Duration::from_secs(10));
        assert_eq!(o.max_in_flight, 256);
        assert!(o.create_keyspace);
        o.validate().unwrap();
    }

    #[test]
    fn url_with_several_hosts_keyspace_and_parameters() {
        let o = ScyllaOptions::from_url(
            "scylla://host1:9042,host2:19042/keyspace?consistency=local_quorum&replication_factor=1",
        )
        .unwrap();
        assert_eq!(o.contact_points, vec!["host1:9042", "host2:19042"]);
        assert_eq!(o.keyspace, "keyspace");
        assert_eq!(o.consistency, Consistency::LocalQuorum);
        assert_eq!(
            o.replication,
            Replication::NetworkTopology {
                replication_factor: 1
            }
        );
    }

    #[test]
    fn url_defaults_and_forms() {
        let o = ScyllaOptions::from_url("scylla://db").unwrap();
        assert_eq!(o.contact_points, vec!["db:9042"]);
        assert_eq!(o.keyspace, "chronon");
        let o = ScyllaOptions::from_url("cassandra://a,b:9043/ks/").unwrap();
        assert_eq!(o.contact_points, vec!["a:9042", "b:9043"]);
        assert_eq!(o.keyspace, "ks");
        let o = ScyllaOptions::from_url("scylla://[::1]:9042,[fe80::1]/ks").unwrap();
        assert_eq!(o.contact_points, vec!["[::1]:9042", "[fe80::1]:9042"]);
    }

    #[test]
    fn url_parameters() {
        let o = ScyllaOptions::from_url(
            "scylla://h/ks?consistency=QUORUM&replication_class=SimpleStrategy&replication_factor=3\
             &local_dc=dc1&timeout_ms=2500&schema_timeout_ms=90000&max_in_flight=64\
             &create_keyspace=false&metadata_cache_ttl_ms=0",
        )
        .unwrap();
        assert_eq!(o.consistency, Consistency::Quorum);
        assert_eq!(
            o.replication,
            Replication::Simple {
                replication_factor: 3
            }
        );
        assert_eq!(o.local_datacenter.as_deref(), Some("dc1"));
        assert_eq!(o.timeout, Duration::from_millis(2500));
        assert_eq!(o.schema_timeout, Duration::from_secs(90));
        assert_eq!(o.max_in_flight, 64);
        assert!(!o.create_keyspace);
        assert_eq!(o.metadata_cache_ttl, Duration::ZERO);
        let o = ScyllaOptions::from_url("scylla://h/ks?datacenters=dc1:3,eu-west:2").unwrap();
        assert_eq!(
            o.replication,
            Replication::Datacenters(vec![("dc1".into(), 3), ("eu-west".into(), 2)])
        );
    }

    #[test]
    fn credentials_are_decoded_and_never_printed() {
        let o = ScyllaOptions::from_url("scylla://app:p%40ss%3Aword@h:9042/ks").unwrap();
        assert_eq!(o.username.as_deref(), Some("app"));
        assert_eq!(o.password.as_deref(), Some("p@ss:word"));
        let debug = format!("{o:?}");
        assert!(!debug.contains("p@ss"), "{debug}");
        assert!(debug.contains("***"));
        let err = ScyllaOptions::from_url("scylla://app:secret@h/ks?bogus=1").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(err.to_string().contains("app:***@h"), "{err}");
    }

    #[test]
    fn bad_urls_are_rejected_with_the_reason() {
        for (url, needle) in [
            ("redis://h/ks", "scheme"),
            ("scylla://h:99999/ks", "invalid port"),
            ("scylla://h:0/ks", "invalid port"),
            ("scylla://h1,,h2/ks", "empty host"),
            ("scylla:///ks", "empty host"),
            ("scylla://::1/ks", "brackets"),
            ("scylla://[nope]/ks", "IPv6"),
            ("scylla://h/1ks", "keyspace"),
            ("scylla://h/a-b", "keyspace"),
            ("scylla://h/a/b", "keyspace"),
            ("scylla://h/ks?consistency=serial", "serial"),
            ("scylla://h/ks?consistency=most", "unknown consistency"),
            ("scylla://h/ks?replication_factor=0", "at least 1"),
            ("scylla://h/ks?replication_factor=x", "whole number"),
            ("scylla://h/ks?replication_factor=99999999999", "2^32-1"),
            ("scylla://h/ks?replication_class=Other", "replication_class"),
            ("scylla://h/ks?datacenters=dc1", "dc:factor"),
            ("scylla://h/ks?datacenters=dc1:0", "positive"),
            (
                "scylla://h/ks?datacenters=dc1:1&replication_factor=2",
                "cannot be combined",
            ),
            ("scylla://h/ks?max_in_flight=0", "max_in_flight"),
            ("scylla://h/ks?max_in_flight=99999999999", "max_in_flight"),
            ("scylla://h/ks?timeout_ms=0", "timeouts"),
            (
                "scylla://h/ks?schema_timeout_ms=18446744073709551615",
                "timeouts",
            ),
            ("scylla://h/ks?create_keyspace=maybe", "create_keyspace"),
            ("scylla://h/ks?create_keyspace=1", "create_keyspace"),
            ("scylla://h/ks?timeout_ms=1&timeout_ms=2", "more than once"),
            ("scylla://h/ks?metadata_cache_ms=0", "metadata_cache_ttl_ms"),
            ("scylla://h/ks?consistancy=one", "unknown parameter"),
            ("scylla://u:%zz@h/ks", "percent"),
        ] {
            match ScyllaOptions::from_url(url) {
                Ok(o) => panic!("{url} parsed: {o:?}"),
                Err(e) => {
                    assert_eq!(e.kind(), "Config", "{url}: {e}");
                    assert!(!e.is_retryable(), "{url}");
                    assert!(e.to_string().contains(needle), "{url}: {e}");
                }
            }
        }
    }

    #[test]
    fn consistency_names() {
        assert_eq!(
            parse_consistency("local_quorum"),
            Ok(Consistency::LocalQuorum)
        );
        assert_eq!(parse_consistency("LOCAL_ONE"), Ok(Consistency::LocalOne));
        assert_eq!(
            parse_consistency("LocalQuorum"),
            Ok(Consistency::LocalQuorum)
        );
        assert_eq!(parse_consistency("all"), Ok(Consistency::All));
        assert!(parse_consistency("each_quorum").is_err());
        assert!(parse_consistency("any").is_err());
    }

    #[test]
    fn contact_points_get_the_default_port() {
        let o = ScyllaOptions::new(["a", "b:1", "[::1]", "[::1]:2"]);
        assert_eq!(
            o.contact_points,
            vec!["a:9042", "b:1", "[::1]:9042", "[::1]:2"]
        );
    }
}
