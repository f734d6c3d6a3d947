//! The one error type every adapter returns.
//!
//! Variants are named for what happened (see CONTRACT.md, "Errors"), each carries the dataset (and the key,
//! where one is involved) so a log line is enough to find the culprit, and the driver's own error
//! stays reachable through [`std::error::Error::source`]. The enum is `Clone` (sources are shared
//! through `Arc`) because one connection failure has to be reported on every request of a batch.

use std::sync::Arc;
use std::time::Duration;

/// A driver error kept as the `source()` of a [`KvError`].
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a [`KvStore`](crate::KvStore) call.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The dataset name is not portable (CONTRACT.md, "Datasets": 1–128 of `[A-Za-z0-9_]`, not starting with a digit).
    #[error("invalid dataset name {dataset:?}: {reason}")]
    InvalidDataset {
        /// The name as given.
        dataset: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The dataset has not been created (or was dropped).
    #[error("dataset {dataset:?} does not exist (create it first)")]
    DatasetNotFound {
        /// The dataset asked for.
        dataset: String,
    },

    /// `create` was asked for a kind other than the one the dataset already has.
    #[error("dataset {dataset:?} already exists as {existing}; cannot create it as {requested}")]
    DatasetConflict {
        /// The dataset.
        dataset: String,
        /// What it is now.
        existing: String,
        /// What the caller asked for.
        requested: String,
    },

    /// A key outside 1–1024 bytes.
    #[error("invalid key {key} in dataset {dataset:?}: {reason}")]
    InvalidKey {
        /// The dataset of the request.
        dataset: String,
        /// A printable preview of the key (see [`key_preview`]).
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A value larger than the adapter's [`Capabilities::max_value_bytes`](crate::Capabilities).
    #[error("value of {size} bytes for key {key} in dataset {dataset:?} is larger than this store's maximum of {max} bytes")]
    ValueTooLarge {
        /// The dataset of the request.
        dataset: String,
        /// A printable preview of the key.
        key: String,
        /// The value's size.
        size: usize,
        /// The adapter's limit.
        max: usize,
    },

    /// A request that is malformed in some other way (for example `start_ts > end_ts`).
    #[error("invalid request on dataset {dataset:?}: {reason}")]
    InvalidRequest {
        /// The dataset of the request.
        dataset: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The call did not finish within its timeout. Retryable.
    #[error("{operation} on {target} timed out after {} ms", timeout.as_millis())]
    Timeout {
        /// What was being done (`multi_get`, `create`, ...).
        operation: String,
        /// The dataset or server it was done on.
        target: String,
        /// The timeout that expired.
        timeout: Duration,
    },

    /// The database could not be reached (connection refused or reset, server gone). Retryable.
    #[error("{backend} at {address} is unavailable: {message}")]
    Unavailable {
        /// The backend (`redis`, `dynamodb`, ...).
        backend: String,
        /// The address that was tried.
        address: String,
        /// What the driver said.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<ErrorSource>,
    },

    /// The operation is not available on this backend.
    #[error("{operation} is not supported by {backend}")]
    Unsupported {
        /// The backend.
        backend: String,
        /// The operation that is missing.
        operation: String,
    },

    /// Anything else the database or driver reported.
    #[error("{backend} error during {context}: {message}")]
    Backend {
        /// The backend.
        backend: String,
        /// What was being done, naming the dataset (and key) where there is one.
        context: String,
        /// What the driver said.
        message: String,
        /// Whether trying again may succeed (throttling, transient server errors).
        retryable: bool,
        /// The driver's error.
        #[source]
        source: Option<ErrorSource>,
    },

    /// The store's configuration (its URL or options) is wrong. Not retryable: the same
    /// configuration fails the same way every time.
    #[error("invalid {backend} configuration: {message}")]
    Config {
        /// The backend whose configuration it is.
        backend: String,
        /// What is wrong, naming the parameter, its value and the (redacted) URL.
        message: String,
    },
}

impl KvError {
    /// Whether the same call may succeed if tried again: timeouts, unreachable servers and
    /// transient backend errors (throttling). Bad input never is.
    pub fn is_retryable(&self) -> bool {
        match self {
            KvError::Timeout { .. } | KvError::Unavailable { .. } => true,
            KvError::Backend { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// A short, stable name of the variant, for reports and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            KvError::InvalidDataset { .. } => "InvalidDataset",
            KvError::DatasetNotFound { .. } => "DatasetNotFound",
            KvError::DatasetConflict { .. } => "DatasetConflict",
            KvError::InvalidKey { .. } => "InvalidKey",
            KvError::ValueTooLarge { .. } => "ValueTooLarge",
            KvError::InvalidRequest { .. } => "InvalidRequest",
            KvError::Timeout { .. } => "Timeout",
            KvError::Unavailable { .. } => "Unavailable",
            KvError::Unsupported { .. } => "Unsupported",
            KvError::Backend { .. } => "Backend",
            KvError::Config { .. } => "Config",
        }
    }

    /// `DatasetNotFound` for `dataset`.
    pub fn not_found(dataset: impl Into<String>) -> Self {
        KvError::DatasetNotFound {
            dataset: dataset.into(),
        }
    }

    /// A non-retryable `Backend` error wrapping a driver error.
    pub fn backend<E>(backend: &str, context: impl Into<String>, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        KvError::Backend {
            backend: backend.to_string(),
            context: context.into(),
            message: error_chain(&source),
            retryable: false,
            source: Some(Arc::new(source)),
        }
    }

    /// A `Backend` error with only a message (no driver error behind it).
    pub fn backend_msg(
        backend: &str,
        context: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        KvError::Backend {
            backend: backend.to_string(),
            context: context.into(),
            message: message.into(),
            retryable: false,
            source: None,
        }
    }

    /// `Unavailable` for `address`, wrapping the driver's error.
    pub fn unavailable<E>(backend: &str, address: impl Into<String>, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        KvError::Unavailable {
            backend: backend.to_string(),
            address: address.into(),
            message: error_chain(&source),
            source: Some(Arc::new(source)),
        }
    }

    /// `Timeout` of `operation` on `target`.
    pub fn timeout(operation: &str, target: impl Into<String>, timeout: Duration) -> Self {
        KvError::Timeout {
            operation: operation.to_string(),
            target: target.into(),
            timeout,
        }
    }

    /// `Config`: `backend`'s URL or options are wrong (`message` must name no secret; see
    /// [`crate::config::redact_url`]).
    pub fn config(backend: impl Into<String>, message: impl Into<String>) -> Self {
        KvError::Config {
            backend: backend.into(),
            message: message.into(),
        }
    }

    /// Marks a `Backend` error retryable (throttling and other transient failures).
    pub fn retryable(mut self) -> Self {
        if let KvError::Backend { retryable, .. } = &mut self {
            *retryable = true;
        }
        self
    }
}

/// The error and its sources joined with `": "`, so the driver's root cause reaches one log line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// A printable form of a key for error messages: quoted text when it is short printable UTF-8,
/// otherwise `hex:` of its first 32 bytes, with its length.
pub fn key_preview(key: &[u8]) -> String {
    const MAX: usize = 32;
    match std::str::from_utf8(key) {
        Ok(s) if key.len() <= 64 && s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
        _ => {
            let shown = &key[..key.len().min(MAX)];
            let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
            if key.len() > MAX {
                format!("hex:{hex}… ({} bytes)", key.len())
            } else {
                format!("hex:{hex}")
            }
        }
    }
}

/// Result alias used throughout the workspace.
pub type KvResult<T> = Result<T, KvError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        assert!(KvError::timeout("multi_get", "ds", Duration::from_secs(1)).is_retryable());
        assert!(!KvError::not_found("ds").is_retryable());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = KvError::unavailable("redis", "127.0.0.1:1", io);
        assert!(e.is_retryable());
        assert!(e.to_string().contains("127.0.0.1:1"));
        assert!(std::error::Error::source(&e).is_some());
        let b = KvError::backend_msg("x", "ctx", "slow down");
        assert!(!b.is_retryable());
        assert!(b.retryable().is_retryable());
        let c = KvError::config("redis", "parameter timeout_ms=\"x\" is not a number");
        assert!(!c.is_retryable());
        assert_eq!(c.kind(), "Config");
        assert_eq!(
            c.to_string(),
            "invalid redis configuration: parameter timeout_ms=\"x\" is not a number"
        );
    }

    #[test]
    fn key_previews() {
        assert_eq!(key_preview(b"user_1"), "\"user_1\"");
        assert_eq!(key_preview(&[0, 255]), "hex:00ff");
        let long = vec![7u8; 100];
        assert!(key_preview(&long).ends_with("(100 bytes)"));
    }
}
