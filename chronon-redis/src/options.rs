//! [`RedisOptions`]: where the server is and how the adapter talks to it, from code or a URL.

use std::time::Duration;

use chronon_core::KvError;

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
    /// reading the registry again (`registry_check_ms=`). Default 1 s. Reading it costs one more
    /// command in every call (measured: about a tenth of a small call's throughput). Writes
    /// always check, so a put never lands in a dropped generation; this client's own
    /// `create`/`drop_dataset` take effect at once. Only a drop (or drop and re-create) by
    /// *another* client can go unseen by reads, for at most this long: they answer from the
    /// old generation (empty once its keys are deleted). `Duration::ZERO` checks every call.
    pub registry_check_interval: Duration,
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
            registry_check_interval: Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &redact(&self.url))
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
            .field("registry_check_interval", &self.registry_check_interval)
            .finish()
    }
}

/// The URL with any password replaced by `***`, for logs.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable url>".to_string(),
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
    /// names are the field names, durations in `_ms`). Unknown parameters are an error, so a
    /// typo never silently falls back to a default.
    ///
    /// ```
    /// let o = chronon_redis::RedisOptions::from_url(
    ///     &url::Url::parse("redis://127.0.0.1:6379/2?prefix=team_a&timeout_ms=500").unwrap(),
    /// ).unwrap();
    /// assert_eq!(o.prefix, "team_a");
    /// assert_eq!(o.url, "redis://127.0.0.1:6379/2");
    /// assert_eq!(o.timeout.as_millis(), 500);
    /// ```
    pub fn from_url(url: &url::Url) -> Result<Self, KvError> {
        let bad = |msg: String| {
            KvError::backend_msg(
                "redis",
                format!("parsing URL {}", redact(url.as_str())),
                msg,
            )
        };
        if url.scheme() != crate::SCHEME {
            return Err(bad(format!(
                "scheme must be {:?}, not {:?}",
                crate::SCHEME,
                url.scheme()
            )));
        }
        let mut opts = RedisOptions::default();
        let mut rest = url::form_urlencoded::Serializer::new(String::new());
        let mut kept = 0;
        for (k, v) in url.query_pairs() {
            let num = || {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("{k}={v:?} is not a whole number")))
            };
            let size = || num().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
            match k.as_ref() {
                "prefix" => opts.prefix = v.to_string(),
                "timeout_ms" => opts.timeout = Duration::from_millis(num()?),
                "connect_timeout_ms" => opts.connect_timeout = Duration::from_millis(num()?),
                "reconnect_retries" => opts.reconnect_retries = size()?,
                "chunk_size" => opts.chunk_size = size()?,
                "chunk_bytes" => opts.chunk_bytes = size()?,
                "max_in_flight" => opts.max_in_flight = size()?,
                "max_value_bytes" => opts.max_value_bytes = size()?,
                "scan_count" => opts.scan_count = size()?,
                "list_session_ttl_ms" => opts.list_session_ttl = Duration::from_millis(num()?),
                "registry_check_ms" => opts.registry_check_interval = Duration::from_millis(num()?),
                // Parameters of the redis crate itself (protocol=resp3, ...) pass through.
                "protocol" => {
                    rest.append_pair(&k, &v);
                    kept += 1;
                }
                other => return Err(bad(format!("unknown parameter {other:?}"))),
            }
        }
        let mut plain = url.clone();
        plain.set_fragment(None);
        if kept > 0 {
            plain.set_query(Some(&rest.finish()));
        } else {
            plain.set_query(None);
        }
        opts.url = plain.to_string();
        opts.validate()?;
        Ok(opts)
    }

    /// Checks the options make sense; the error names the field.
    pub fn validate(&self) -> Result<(), KvError> {
        let bad = |msg: String| KvError::backend_msg("redis", "checking RedisOptions", msg);
        layout::valid_prefix(&self.prefix).map_err(bad)?;
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
                "max_value_bytes {} must be between {} (SPEC.md floor) and {REDIS_MAX_VALUE} (Redis' 512 MB limit)",
                self.max_value_bytes,
                chronon_core::validate::MIN_MAX_VALUE_BYTES
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RedisOptions, KvError> {
        RedisOptions::from_url(&url::Url::parse(s).unwrap())
    }

    #[test]
    fn url_parameters() {
        let o = parse("redis://:secret@h:7000/3?prefix=p&chunk_size=10&scan_count=7&max_value_bytes=400000&list_session_ttl_ms=5&registry_check_ms=0&protocol=resp3").unwrap();
        assert_eq!(o.registry_check_interval, Duration::ZERO);
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
    fn bad_urls() {
        for bad in [
            "redis://h/0?prefx=a",
            "redis://h/0?timeout_ms=abc",
            "redis://h/0?timeout_ms=0",
            "redis://h/0?prefix=a*b",
            "redis://h/0?chunk_size=0",
            "redis://h/0?max_value_bytes=10",
            "http://h/0",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
