//! [`DynamoOptions`]: where the tables are, how long calls may take, how hard to retry, and the
//! `dynamodb://` URL that sets them.

use std::time::Duration;

use chronon_core::config::UrlParams;
use chronon_core::metadata_cache::METADATA_CACHE_TTL_PARAM;
use chronon_core::KvError;

/// The URL scheme of this store, `dynamodb://`, which is also its backend name in errors and
/// reports.
pub const SCHEME: &str = "dynamodb";

/// How [`DynamoStore`](crate::DynamoStore) reaches DynamoDB and behaves under load.
///
/// Every field has a documented default ([`DynamoOptions::default`]); set them with the `with_*`
/// methods or from a URL with [`DynamoOptions::from_url`]. Region and credentials not given here
/// come from the usual AWS chain (environment, profile, instance metadata).
#[derive(Clone)]
#[non_exhaustive]
pub struct DynamoOptions {
    /// Prepended to every dataset name to form the table name (default empty, as in Chronon's
    /// `DynamoDBKVStoreImpl`, which uses the dataset name as the table name).
    pub table_prefix: String,
    /// An endpoint to use instead of AWS's (DynamoDB Local: `http://127.0.0.1:8000`). Default none.
    pub endpoint: Option<String>,
    /// The AWS region (default: from the AWS chain; `us-east-1` when an endpoint is given and the
    /// chain has none, since DynamoDB Local accepts any region).
    pub region: Option<String>,
    /// Longest a data call (`multi_get`, `multi_put`, `list`) may take: 10 s, Chronon's default.
    pub timeout: Duration,
    /// Longest `create`/`drop_dataset` may take, waiting for the table to become ACTIVE or to
    /// disappear (real DynamoDB needs seconds to minutes): 120 s.
    pub admin_timeout: Duration,
    /// Requests sent to DynamoDB at once by one client, across all its calls: 32.
    pub max_in_flight: usize,
    /// Retries of throttled requests and of `UnprocessedKeys`/`UnprocessedItems`.
    pub retry: RetrySettings,
    /// The table (after the prefix) holding each dataset's TTL. Its default name,
    /// `chronon.datasets`, contains a `.`, which no dataset name can, so it never collides with a
    /// dataset's table.
    pub metadata_table: String,
    /// How long a client trusts the kind and TTL it read for a dataset before reading them again
    /// (they only change when a dataset is dropped and re-created by another client): 5 s. Zero
    /// turns the cache off. URL parameter `metadata_cache_ttl_ms`.
    pub metadata_cache_ttl: Duration,
    /// Static credentials (access key id, secret). Default none: the AWS chain, or the dummy
    /// credentials DynamoDB Local accepts when the endpoint is on loopback and the environment has
    /// no AWS credentials.
    pub credentials: Option<(String, String)>,
    /// A PEM file of the certificate authorities that may sign an `https://` endpoint's
    /// certificate, instead of the system's trust store (URL parameter `tls_ca_file`): a private
    /// DynamoDB-compatible endpoint or a TLS proxy. Default none. Needs an `https` endpoint.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

/// How throttled requests and unprocessed batch items are retried: exponential backoff with full
/// jitter (a random delay up to `min(max_backoff, initial_backoff * 2^attempt)`), as the
/// DynamoDB documentation recommends for `BatchGetItem`/`BatchWriteItem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrySettings {
    /// Attempts without progress before giving up with a retryable error: 10.
    pub max_attempts: u32,
    /// The first backoff ceiling: 25 ms.
    pub initial_backoff: Duration,
    /// The largest backoff ceiling: 2 s.
    pub max_backoff: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetrySettings {
    /// Settings with the given attempts and backoff bounds.
    pub fn new(max_attempts: u32, initial_backoff: Duration, max_backoff: Duration) -> Self {
        RetrySettings {
            max_attempts: max_attempts.max(1),
            initial_backoff,
            max_backoff: max_backoff.max(initial_backoff),
        }
    }
}

impl Default for DynamoOptions {
    fn default() -> Self {
        DynamoOptions {
            table_prefix: String::new(),
            endpoint: None,
            region: None,
            timeout: Duration::from_secs(10),
            admin_timeout: Duration::from_secs(120),
            max_in_flight: 32,
            retry: RetrySettings::default(),
            metadata_table: "chronon.datasets".to_string(),
            metadata_cache_ttl: Duration::from_secs(5),
            credentials: None,
            tls_ca_file: None,
        }
    }
}

impl std::fmt::Debug for DynamoOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoOptions")
            .field("table_prefix", &self.table_prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("timeout", &self.timeout)
            .field("admin_timeout", &self.admin_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("retry", &self.retry)
            .field("metadata_table", &self.metadata_table)
            .field("metadata_cache_ttl", &self.metadata_cache_ttl)
            // Never print the secret.
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(id, _)| format!("{id} / ***")),
            )
            .field("tls_ca_file", &self.tls_ca_file)
            .finish()
    }
}

impl DynamoOptions {
    /// Options for DynamoDB Local (or any compatible server) at `endpoint`.
    pub fn local(endpoint: impl Into<String>) -> Self {
        DynamoOptions::default().with_endpoint(endpoint)
    }

    /// Sets [`table_prefix`](Self::table_prefix).
    pub fn with_table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.table_prefix = prefix.into();
        self
    }

    /// Sets [`endpoint`](Self::endpoint).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets [`region`](Self::region).
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Sets [`timeout`](Self::timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`admin_timeout`](Self::admin_timeout).
    pub fn with_admin_timeout(mut self, timeout: Duration) -> Self {
        self.admin_timeout = timeout;
        self
    }

    /// Sets [`max_in_flight`](Self::max_in_flight) (at least 1).
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Sets [`retry`](Self::retry).
    pub fn with_retry(mut self, retry: RetrySettings) -> Self {
        self.retry = retry;
        self
    }

    /// Sets [`metadata_table`](Self::metadata_table).
    pub fn with_metadata_table(mut self, name: impl Into<String>) -> Self {
        self.metadata_table = name.into();
        self
    }

    /// Sets [`metadata_cache_ttl`](Self::metadata_cache_ttl).
    pub fn with_metadata_cache_ttl(mut self, ttl: Duration) -> Self {
        self.metadata_cache_ttl = ttl;
        self
    }

    /// Sets static [`credentials`](Self::credentials).
    pub fn with_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        self.credentials = Some((access_key_id.into(), secret.into()));
        self
    }

    /// Whether the endpoint is on this machine (DynamoDB Local), where dummy credentials do.
    pub fn endpoint_is_loopback(&self) -> bool {
        let Some(endpoint) = &self.endpoint else {
            return false;
        };
        match url::Url::parse(endpoint) {
            Ok(u) => match u.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            },
            Err(_) => false,
        }
    }

    /// Parses a `dynamodb://` URL.
    ///
    /// ```
    /// use chronon_dynamo::DynamoOptions;
    /// let o = DynamoOptions::from_url("dynamodb://?endpoint=http://127.0.0.1:8000&region=us-west-2&prefix=chronon_").unwrap();
    /// assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:8000"));
    /// assert_eq!((o.region.as_deref(), o.table_prefix.as_str()), (Some("us-west-2"), "chronon_"));
    /// // A host and port are a shorthand for an http endpoint (DynamoDB Local).
    /// let o = DynamoOptions::from_url("dynamodb://127.0.0.1:8000").unwrap();
    /// assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:8000"));
    /// ```
    ///
    /// Query parameters: `endpoint`, `region`, `prefix` (or `table_prefix`), `timeout_ms`,
    /// `admin_timeout_ms`, `max_in_flight`, `max_attempts`, `initial_backoff_ms`,
    /// `max_backoff_ms`, `metadata_table`, `metadata_cache_ttl_ms`, `access_key_id` and
    /// `secret_access_key`. An unknown or repeated parameter is a `KvError::Config` error (listing
    /// the known ones), so a typo is never ignored; messages never show the secret.
    pub fn from_url(url: &str) -> Result<Self, KvError> {
        let parsed = url::Url::parse(url).map_err(|e| {
            KvError::config(
                SCHEME,
                format!(
                    "{} is not a URL: {e}",
                    chronon_core::config::redact_url(url)
                ),
            )
        })?;
        let pairs = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()));
        let mut params = UrlParams::new(SCHEME, url, pairs);
        let bad = |params: &UrlParams, reason: &str| {
            KvError::config(SCHEME, format!("{reason} (in {})", params.redacted_url()))
        };
        if parsed.scheme() != SCHEME {
            let reason = format!("the scheme must be {SCHEME}://, not {}://", parsed.scheme());
            return Err(bad(&params, &reason));
        }
        let mut o = DynamoOptions::default();
        if let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) {
            o.endpoint = Some(match parsed.port() {
                Some(p) => format!("http://{host}:{p}"),
                None => format!("http://{host}"),
            });
        }
        if let Some(endpoint) = params.string("endpoint") {
            o.endpoint = Some(endpoint);
        }
        o.region = params.string("region");
        match (params.string("prefix"), params.string("table_prefix")) {
            (Some(_), Some(_)) => {
                return Err(bad(&params, "give prefix or table_prefix, not both"));
            }
            (Some(prefix), None) | (None, Some(prefix)) => o.table_prefix = prefix,
            (None, None) => {}
        }
        if let Some(t) = params.millis("timeout_ms")? {
            o.timeout = t;
        }
        if let Some(t) = params.millis("admin_timeout_ms")? {
            o.admin_timeout = t;
        }
        if let Some(n) = params.usize("max_in_flight")? {
            o.max_in_flight = n.max(1);
        }
        if let Some(n) = params.parse::<u32>("max_attempts", "a whole number of attempts")? {
            o.retry.max_attempts = n.max(1);
        }
        if let Some(t) = params.millis("initial_backoff_ms")? {
            o.retry.initial_backoff = t;
        }
        if let Some(t) = params.millis("max_backoff_ms")? {
            o.retry.max_backoff = t;
        }
        if let Some(table) = params.string("metadata_table") {
            o.metadata_table = table;
        }
        if let Some(ttl) = params.millis(METADATA_CACHE_TTL_PARAM)? {
            o.metadata_cache_ttl = ttl;
        }
        match (
            params.string("access_key_id"),
            params.string("secret_access_key"),
        ) {
            (Some(id), Some(secret)) => o.credentials = Some((id, secret)),
            (None, None) => {}
            _ => {
                return Err(bad(
                    &params,
                    "access_key_id and secret_access_key go together",
                ))
            }
        }
        o.tls_ca_file = params.string("tls_ca_file").map(Into::into);
        params.finish()?;
        o.retry = RetrySettings::new(
            o.retry.max_attempts,
            o.retry.initial_backoff,
            o.retry.max_backoff,
        );
        o.validate()?;
        Ok(o)
    }

    /// Checks what DynamoDB would only reject later, call by call: the endpoint must be a URL,
    /// the metadata table named, and the prefix and metadata table made of the characters
    /// DynamoDB allows in table names (`A-Z a-z 0-9 _ - .`). [`DynamoStore::open`] runs it.
    ///
    /// [`DynamoStore::open`]: crate::DynamoStore::open
    pub fn validate(&self) -> Result<(), KvError> {
        if let Some(endpoint) = &self.endpoint {
            if let Err(e) = url::Url::parse(endpoint) {
                return Err(KvError::config(
                    SCHEME,
                    format!("endpoint {endpoint:?} is not a URL: {e}"),
                ));
            }
        }
        if self.metadata_table.is_empty() {
            return Err(KvError::config(SCHEME, "metadata_table must not be empty"));
        }
        let https = self.endpoint.as_deref().is_some_and(|e| {
            e.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        });
        if self.tls_ca_file.is_some() && !https {
            return Err(KvError::config(
                SCHEME,
                "tls_ca_file needs an https:// endpoint (AWS's own endpoints use the system's trust store)",
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        for (name, value) in [
            ("table_prefix", &self.table_prefix),
            ("metadata_table", &self.metadata_table),
        ] {
            if !value.chars().all(allowed) {
                return Err(KvError::config(
                    SCHEME,
                    format!(
                        "{name} {value:?} has characters DynamoDB table names cannot hold (A-Z a-z 0-9 _ - . only)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DynamoOptions, KvError> {
        DynamoOptions::from_url(s)
    }

    fn config_message(err: KvError) -> String {
        match err {
            KvError::Config { backend, message } => {
                assert_eq!(backend, SCHEME);
                message
            }
            other => panic!("expected a Config error, got {other:?}"),
        }
    }

    #[test]
    fn full_url() {
        let o = parse(
            "dynamodb://?endpoint=http://127.0.0.1:8000&region=us-west-2&prefix=chronon_&timeout_ms=500\
             &max_in_flight=4&max_attempts=3&initial_backoff_ms=5&max_backoff_ms=50\
             &metadata_cache_ttl_ms=250&access_key_id=a&secret_access_key=s",
        )
        .unwrap();
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(o.region.as_deref(), Some("us-west-2"));
        assert_eq!(o.table_prefix, "chronon_");
        assert_eq!(o.timeout, Duration::from_millis(500));
        assert_eq!(o.max_in_flight, 4);
        assert_eq!(o.metadata_cache_ttl, Duration::from_millis(250));
        assert_eq!(
            o.retry,
            RetrySettings::new(3, Duration::from_millis(5), Duration::from_millis(50))
        );
        assert_eq!(o.credentials, Some(("a".into(), "s".into())));
        assert!(o.endpoint_is_loopback());
        assert!(
            !format!("{o:?}").contains("\"s\""),
            "Debug must hide the secret"
        );
    }

    #[test]
    fn host_shorthand_and_defaults() {
        let o = parse("dynamodb://localhost:8123").unwrap();
        assert_eq!(o.endpoint.as_deref(), Some("http://localhost:8123"));
        assert!(o.endpoint_is_loopback());
        assert_eq!(o.timeout, Duration::from_secs(10));
        assert_eq!(o.metadata_cache_ttl, Duration::from_secs(5));
        let o = parse("dynamodb://").unwrap();
        assert!(o.endpoint.is_none() && !o.endpoint_is_loopback());
        assert_eq!(
            parse("dynamodb://?table_prefix=p_").unwrap().table_prefix,
            "p_"
        );
    }

    #[test]
    fn errors_are_config_errors() {
        assert!(config_message(parse("redis://x").unwrap_err()).contains("scheme"));
        let unknown = config_message(parse("dynamodb://?nope=1").unwrap_err());
        assert!(
            unknown.contains("nope") && unknown.contains("metadata_cache_ttl_ms"),
            "{unknown}"
        );
        // The old name of the cache knob is gone.
        assert!(parse("dynamodb://?props_cache_ttl_ms=5").is_err());
        assert!(
            config_message(parse("dynamodb://?timeout_ms=soon").unwrap_err())
                .contains("timeout_ms")
        );
        assert!(parse("dynamodb://?region=a&region=b").is_err());
        assert!(parse("dynamodb://?prefix=a&table_prefix=b").is_err());
        assert!(parse("dynamodb://?max_attempts=-1").is_err());
        let e = config_message(
            parse("dynamodb://?access_key_id=a&secret_access_key=hidden&x=1").unwrap_err(),
        );
        assert!(!e.contains("hidden"), "{e}");
        assert!(parse("dynamodb://?access_key_id=a").is_err());
        assert!(parse("not a url").is_err());
    }

    #[test]
    fn validate_rejects_what_dynamodb_would() {
        assert!(DynamoOptions::default().validate().is_ok());
        assert!(DynamoOptions::local("http://127.0.0.1:8000")
            .validate()
            .is_ok());
        assert!(DynamoOptions::local("not a url").validate().is_err());
        assert!(DynamoOptions::default()
            .with_table_prefix("bad prefix/")
            .validate()
            .is_err());
        assert!(DynamoOptions::default()
            .with_metadata_table("")
            .validate()
            .is_err());
        assert!(parse("dynamodb://?prefix=a%20b").is_err());
    }
}
