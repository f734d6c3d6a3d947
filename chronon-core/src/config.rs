//! Store options from URL query parameters, read the same way by every adapter.
//!
//! One policy everywhere: numbers are plain decimal digits, a bool is exactly `true` or `false`,
//! durations are `*_ms` parameters in whole milliseconds, an unknown or repeated parameter is an
//! error that lists the known ones, and every error is [`KvError::Config`] naming the parameter,
//! the bad value and the URL with its secrets hidden ([`redact_url`]).
//!
//! ```
//! use chronon_core::config::UrlParams;
//! let url = "redis://:hunter2@localhost:6379/?timeout_ms=1500&pipeline=true";
//! let mut params = UrlParams::from_url("redis", url);
//! let timeout = params.millis("timeout_ms").unwrap();
//! let pipeline = params.bool("pipeline").unwrap();
//! params.finish().unwrap();
//! assert_eq!(timeout, Some(std::time::Duration::from_millis(1500)));
//! assert_eq!(pipeline, Some(true));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::error::KvError;

/// What replaces a secret in a redacted URL.
const HIDDEN: &str = "***";

/// Whether a query parameter's value is a secret, by its name.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token"]
        .iter()
        .any(|word| name.contains(word))
}

/// `url` with its secrets hidden: the password of `user:pass@` and the value of every query
/// parameter whose name contains `password`, `secret` or `token` (any case) become `***`, and
/// so does a fragment. Never fails and never returns a secret: an input that cannot be read
/// with certainty (no scheme, or an authority whose password may hold a `/`, `?` or `#`) is
/// reduced to `scheme://***` (or `***` without a scheme).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = split_scheme(url) else {
        return HIDDEN.to_string();
    };
    let unreadable = || format!("{scheme}://{HIDDEN}");
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((before, _)) => (before, Some(HIDDEN)),
        None => (rest, None),
    };
    let (before_query, query) = match before_fragment.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (before_fragment, None),
    };
    let mut out = format!("{scheme}:");
    if let Some(after_slashes) = before_query.strip_prefix("//") {
        let (authority, path) = match after_slashes.find('/') {
            Some(i) => after_slashes.split_at(i),
            None => (after_slashes, ""),
        };
        out.push_str("//");
        match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => {
                match userinfo.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(HIDDEN);
                    }
                    None => out.push_str(userinfo),
                }
                out.push('@');
                out.push_str(hosts);
            }
            None => {
                // No `@` in the authority, but one later: a password holding `/`, `?` or `#`
                // may have cut the authority short (`user:pa/ss@host`), so nothing is certain.
                if url[scheme.len()..].contains('@') && authority.contains(':') {
                    return unreadable();
                }
                if !hosts_look_valid(authority) {
                    return unreadable();
                }
                out.push_str(authority);
            }
        }
        out.push_str(path);
    } else {
        out.push_str(before_query);
    }
    if let Some(query) = query {
        out.push('?');
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_name(&percent_decode(name)) => {
                    format!("{name}={HIDDEN}")
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&redacted.join("&"));
    }
    if let Some(hidden) = fragment {
        out.push('#');
        out.push_str(hidden);
    }
    out
}

/// The scheme (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`) and what follows its `:`.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok).then_some((scheme, rest))
}

/// Whether an authority without user info reads as `host[:port]` items separated by commas
/// (MongoDB and ScyllaDB URLs name several hosts). A `:` followed by anything but digits is
/// not a port, so it may be a password: the caller then hides everything.
fn hosts_look_valid(authority: &str) -> bool {
    authority.split(',').all(|host| {
        let after_brackets = match host.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((_, rest)) => rest,
                None => return false,
            },
            None => host,
        };
        match after_brackets.split_once(':') {
            Some((name, port)) => !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()),
            None => true,
        }
    })
}

/// Decodes `%XX` escapes and `+` (a space in a query), keeping invalid escapes as written and
/// replacing invalid UTF-8 (never fails: its output only feeds name lookups and messages).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex_value(*b)),
                bytes.get(i + 2).and_then(|b| hex_value(*b)),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The decoded `name=value` pairs of `url`'s query (between `?` and `#`), in order; a pair
/// without `=` has an empty value, empty pairs (`a=1&&b=2`) are skipped.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let before_fragment = url.split('#').next().unwrap_or_default();
    let Some((_, query)) = before_fragment.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

/// The query parameters of a store URL, taken one by one by the adapter's option reader; what
/// is left at [`UrlParams::finish`] is an error, so a misspelt option never goes unnoticed.
#[derive(Debug)]
pub struct UrlParams {
    backend: String,
    redacted: String,
    /// The values given for each name not taken yet, in the order given.
    given: BTreeMap<String, Vec<String>>,
    /// Every name a getter asked for: the list an unknown parameter's error shows.
    known: BTreeSet<&'static str>,
    /// Names taken that were given more than once.
    repeated: BTreeSet<&'static str>,
}

impl UrlParams {
    /// `backend` names the adapter in errors; `url` is the URL as given (only its redacted form
    /// ever appears in a message); `pairs` are the already-decoded query pairs.
    pub fn new(
        backend: &str,
        url: &str,
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let mut given: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in pairs {
            given.entry(name).or_default().push(value);
        }
        UrlParams {
            backend: backend.to_string(),
            redacted: redact_url(url),
            given,
            known: BTreeSet::new(),
            repeated: BTreeSet::new(),
        }
    }

    /// [`UrlParams::new`] with the pairs of `url`'s own query ([`query_pairs`]), for adapters
    /// that do not parse the URL with a library of their own.
    pub fn from_url(backend: &str, url: &str) -> Self {
        UrlParams::new(backend, url, query_pairs(url))
    }

    /// The URL with its secrets hidden, for messages of the adapter's own checks.
    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }

    /// A [`KvError::Config`] for parameter `name` with `value`, which is not `what` (for the
    /// adapter's own checks, such as a range). The value is hidden when the name is a secret's.
    pub fn invalid(&self, name: &str, value: &str, what: &str) -> KvError {
        let shown = if is_secret_name(name) {
            HIDDEN.to_string()
        } else {
            format!("{value:?}")
        };
        KvError::config(
            &self.backend,
            format!(
                "parameter {name}={shown} is not {what} (in {})",
                self.redacted
            ),
        )
    }

    /// Takes `name`'s value; a repeated one is remembered for [`UrlParams::finish`].
    fn take(&mut self, name: &'static str) -> Option<String> {
        self.known.insert(name);
        let mut values = self.given.remove(name)?;
        if values.len() > 1 {
            self.repeated.insert(name);
        }
        values.pop()
    }

    /// Takes `name`'s value for a typed getter, failing at once when it was given twice.
    fn take_once(&mut self, name: &'static str) -> Result<Option<String>, KvError> {
        let value = self.take(name);
        if self.repeated.contains(name) {
            return Err(self.repeated_error(&[name]));
        }
        Ok(value)
    }

    fn repeated_error(&self, names: &[&str]) -> KvError {
        KvError::config(
            &self.backend,
            format!(
                "parameter {} given more than once (in {})",
                names.join(", "),
                self.redacted
            ),
        )
    }

    /// A text parameter, as given.
    pub fn string(&mut self, name: &'static str) -> Option<String> {
        self.take(name)
    }

    /// A parameter the driver itself understands: known (not rejected), returned to pass through.
    pub fn passthrough(&mut self, name: &'static str) -> Option<String> {
        self.take(name)
    }

    /// A whole number: ASCII digits only (no sign, no spaces, no `_`).
    pub fn u64(&mut self, name: &'static str) -> Result<Option<u64>, KvError> {
        let Some(value) = self.take_once(name)? else {
            return Ok(None);
        };
        let parsed = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            value.parse::<u64>().ok()
        } else {
            None
        };
        match parsed {
            Some(n) => Ok(Some(n)),
            None => Err(self.invalid(name, &value, "a whole number (digits only, at most 2^64-1)")),
        }
    }

    /// A whole number that fits this machine's `usize`, with the rules of [`UrlParams::u64`].
    pub fn usize(&mut self, name: &'static str) -> Result<Option<usize>, KvError> {
        let Some(n) = self.u64(name)? else {
            return Ok(None);
        };
        usize::try_from(n)
            .map(Some)
            .map_err(|_| self.invalid(name, &n.to_string(), "a size this machine can hold"))
    }

    /// A finite decimal number (`0.5`, `2`, `1e3`; not `NaN` or `inf`).
    pub fn f64(&mut self, name: &'static str) -> Result<Option<f64>, KvError> {
        let Some(value) = self.take_once(name)? else {
            return Ok(None);
        };
        match value.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(self.invalid(name, &value, "a finite decimal number")),
        }
    }

    /// A `*_ms` parameter as a Duration.
    pub fn millis(&mut self, name: &'static str) -> Result<Option<Duration>, KvError> {
        let Some(value) = self.take_once(name)? else {
            return Ok(None);
        };
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(ms) = value.parse::<u64>() {
                return Ok(Some(Duration::from_millis(ms)));
            }
        }
        Err(self.invalid(name, &value, "a whole number of milliseconds"))
    }

    /// Exactly `true` or `false` (the one spelling; anything else is an error naming the value).
    pub fn bool(&mut self, name: &'static str) -> Result<Option<bool>, KvError> {
        let Some(value) = self.take_once(name)? else {
            return Ok(None);
        };
        match value.as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(self.invalid(name, &value, "`true` or `false`")),
        }
    }

    /// Any FromStr type; `what` describes the expected form in the error ("one of none|lz4|zstd").
    pub fn parse<T: std::str::FromStr>(
        &mut self,
        name: &'static str,
        what: &str,
    ) -> Result<Option<T>, KvError>
    where
        T::Err: std::fmt::Display,
    {
        let Some(value) = self.take_once(name)? else {
            return Ok(None);
        };
        value.parse::<T>().map(Some).map_err(|e| {
            let mut err = self.invalid(name, &value, what);
            if let KvError::Config { message, .. } = &mut err {
                if !is_secret_name(name) {
                    message.push_str(&format!(": {e}"));
                }
            }
            err
        })
    }

    /// Fails with KvError::Config if any parameter was not taken by a getter above: the message
    /// names the unknown parameter(s) and lists every known name (every name any getter was asked
    /// for), sorted. A parameter given twice is an error too (from the getter or from finish).
    pub fn finish(self) -> Result<(), KvError> {
        if !self.given.is_empty() {
            let unknown: Vec<&str> = self.given.keys().map(String::as_str).collect();
            let known: Vec<&str> = self.known.iter().copied().collect();
            let plural = if unknown.len() == 1 { "" } else { "s" };
            return Err(KvError::config(
                &self.backend,
                format!(
                    "unknown parameter{plural} {} (known: {}) in {}",
                    unknown.join(", "),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    },
                    self.redacted
                ),
            ));
        }
        if !self.repeated.is_empty() {
            let repeated: Vec<&str> = self.repeated.iter().copied().collect();
            return Err(self.repeated_error(&repeated));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(url: &str) -> UrlParams {
        UrlParams::from_url("redis", url)
    }

    fn message(err: KvError) -> String {
        match err {
            KvError::Config { backend, message } => {
                assert_eq!(backend, "redis");
                message
            }
            other => panic!("expected Config, got {other:?}"),
        }
    }

    #[test]
    fn redaction_hides_passwords_and_secret_parameters() {
        let cases = [
            ("redis://:hunter2@h:6379/0", "redis://:***@h:6379/0"),
            ("redis://u:p%40ss@h/0?x=1", "redis://u:***@h/0?x=1"),
            ("redis://u@h", "redis://u@h"),
            (
                "mongodb://u:p@a:1,b:2/db?authSource=admin",
                "mongodb://u:***@a:1,b:2/db?authSource=admin",
            ),
            (
                "dynamodb://h:8000/?aws_secret_access_key=abc&session_Token=t&region=x",
                "dynamodb://h:8000/?aws_secret_access_key=***&session_Token=***&region=x",
            ),
            (
                "scylla://[::1]:9042/?PASSWORD=x",
                "scylla://[::1]:9042/?PASSWORD=***",
            ),
            ("rocks:///tmp/db?cache=1", "rocks:///tmp/db?cache=1"),
            ("memory:", "memory:"),
            ("redis://h/#frag", "redis://h/#***"),
            // A password that cuts the authority short is not guessed at.
            ("redis://u:pa/ss@h", "redis://***"),
            ("redis://u:12?3@h", "redis://***"),
            ("redis://u:pass", "redis://***"),
            ("no scheme at all", "***"),
            ("", "***"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "redacting {url}");
        }
        // A password with an unescaped `@` keeps none of itself.
        assert_eq!(redact_url("redis://u:a@b@h:1"), "redis://u:***@h:1");
    }

    #[test]
    fn query_pairs_are_decoded() {
        assert_eq!(
            query_pairs("x://h/?a=1&b=%41+c&&flag&d=%zz#a=2"),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "A c".to_string()),
                ("flag".to_string(), String::new()),
                ("d".to_string(), "%zz".to_string()),
            ]
        );
        assert!(query_pairs("x://h/").is_empty());
    }

    #[test]
    fn typed_getters_read_their_values() {
        let mut p =
            params("redis://h/?n=42&size=7&ratio=0.5&t_ms=250&on=true&off=false&c=lz4&db=x&pw=y");
        assert_eq!(p.u64("n").unwrap(), Some(42));
        assert_eq!(p.usize("size").unwrap(), Some(7));
        assert_eq!(p.f64("ratio").unwrap(), Some(0.5));
        assert_eq!(p.millis("t_ms").unwrap(), Some(Duration::from_millis(250)));
        assert_eq!(p.bool("on").unwrap(), Some(true));
        assert_eq!(p.bool("off").unwrap(), Some(false));
        assert_eq!(
            p.parse::<String>("c", "a codec").unwrap().as_deref(),
            Some("lz4")
        );
        assert_eq!(p.string("db").as_deref(), Some("x"));
        assert_eq!(p.passthrough("pw").as_deref(), Some("y"));
        assert_eq!(p.u64("absent").unwrap(), None);
        p.finish().unwrap();
    }

    #[test]
    fn bad_values_name_parameter_value_and_redacted_url() {
        let url = "redis://:hunter2@h/?n=-1&on=yes&t_ms=1.5&r=NaN&k=abc";
        let mut p = params(url);
        let m = message(p.u64("n").unwrap_err());
        assert!(
            m.contains("n=\"-1\"") && m.contains("redis://:***@h/"),
            "{m}"
        );
        assert!(!m.contains("hunter2"), "{m}");
        let m = message(p.bool("on").unwrap_err());
        assert!(
            m.contains("on=\"yes\"") && m.contains("`true` or `false`"),
            "{m}"
        );
        assert!(p.millis("t_ms").is_err());
        assert!(p.f64("r").is_err());
        let m = message(p.parse::<u8>("k", "a small number").unwrap_err());
        assert!(
            m.contains("k=\"abc\"") && m.contains("a small number"),
            "{m}"
        );
        for bad in ["+5", " 5", "1_000", "", "18446744073709551616"] {
            let mut p = UrlParams::new("redis", "redis://h", [("n".to_string(), bad.to_string())]);
            assert!(p.u64("n").is_err(), "{bad:?} accepted");
        }
        // A secret's value never shows, even when it is the bad one.
        let mut p = params("redis://h/?token_ttl=oops");
        let m = message(p.u64("token_ttl").unwrap_err());
        assert!(!m.contains("oops"), "{m}");
    }

    #[test]
    fn unknown_parameters_are_errors_listing_the_known_ones() {
        let mut p = params("redis://h/?zeta=1&timeout_ms=5&alpha=2");
        p.millis("timeout_ms").unwrap();
        p.string("pool");
        let m = message(p.finish().unwrap_err());
        assert!(m.contains("unknown parameters alpha, zeta"), "{m}");
        assert!(m.contains("known: pool, timeout_ms"), "{m}");
    }

    #[test]
    fn repeated_parameters_are_errors() {
        let mut p = params("redis://h/?n=1&n=2");
        assert!(message(p.u64("n").unwrap_err()).contains("more than once"));
        let mut p = params("redis://h/?s=1&s=2");
        assert_eq!(p.string("s").as_deref(), Some("2"));
        assert!(message(p.finish().unwrap_err()).contains("s given more than once"));
    }
}
