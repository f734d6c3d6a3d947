//! What a failed call was doing, handed to an adapter's single error-mapping function so every
//! [`KvError`] it makes names the operation, the dataset (and key) and, for an unreachable
//! server, the address tried, the same way in every adapter.
//!
//! ```
//! use std::time::Duration;
//! use chronon_core::{ErrorContext, KvError};
//! let ctx = ErrorContext::new("redis", "multi_get", "127.0.0.1:6379", Duration::from_secs(1))
//!     .dataset("PURCHASES")
//!     .key(b"user_1");
//! assert_eq!(ctx.describe(), "multi_get on dataset \"PURCHASES\" key \"user_1\"");
//! assert!(matches!(ctx.timeout_error(), KvError::Timeout { .. }));
//! ```

use std::future::Future;
use std::time::Duration;

use crate::error::{key_preview, ErrorSource, KvError};

/// What a failed call was doing, given to each adapter's single error-mapping function.
#[derive(Debug, Clone, Copy)]
pub struct ErrorContext<'a> {
    /// The backend's name (`redis`, `dynamodb`, ...).
    pub backend: &'static str,
    /// What was being done: a contract call (`multi_get`, `create`), a driver call
    /// (`BatchGetItem`) or a step such as `connect`.
    pub operation: &'static str,
    /// The dataset the call was on, if any.
    pub dataset: Option<&'a str>,
    /// The key the call was on, if one key is to blame.
    pub key: Option<&'a [u8]>,
    /// Where the server was tried (redacted: never a password), for `Unavailable`.
    pub address: &'a str,
    /// The deadline that applied, for `Timeout`.
    pub timeout: Duration,
}

impl<'a> ErrorContext<'a> {
    /// A context without dataset or key.
    pub fn new(
        backend: &'static str,
        operation: &'static str,
        address: &'a str,
        timeout: Duration,
    ) -> Self {
        ErrorContext {
            backend,
            operation,
            dataset: None,
            key: None,
            address,
            timeout,
        }
    }

    /// The same context for another operation (one base context per client, one per call).
    pub fn operation(self, operation: &'static str) -> Self {
        ErrorContext { operation, ..self }
    }

    /// The same context on `dataset`.
    pub fn dataset(self, dataset: &'a str) -> Self {
        ErrorContext {
            dataset: Some(dataset),
            ..self
        }
    }

    /// The same context on `key`.
    pub fn key(self, key: &'a [u8]) -> Self {
        ErrorContext {
            key: Some(key),
            ..self
        }
    }

    /// `multi_get on dataset "X" key <preview>` (the key shown by [`crate::key_preview`]).
    pub fn describe(&self) -> String {
        let mut out = self.operation.to_string();
        if let Some(dataset) = self.dataset {
            out.push_str(&format!(" on dataset {dataset:?}"));
        }
        if let Some(key) = self.key {
            out.push_str(" key ");
            out.push_str(&key_preview(key));
        }
        out
    }

    /// `Timeout` of the operation on the dataset (or, without one, on the address), after
    /// `self.timeout`.
    pub fn timeout_error(&self) -> KvError {
        KvError::timeout(
            self.operation,
            self.dataset.unwrap_or(self.address),
            self.timeout,
        )
    }

    /// `Unavailable`: the server at `self.address` could not be reached.
    pub fn unavailable(&self, message: impl Into<String>, source: Option<ErrorSource>) -> KvError {
        KvError::Unavailable {
            backend: self.backend.to_string(),
            address: self.address.to_string(),
            message: message.into(),
            source,
        }
    }

    /// A non-retryable `Backend` error whose context is [`ErrorContext::describe`]; chain
    /// [`KvError::retryable`] for throttling and other transient failures.
    pub fn backend_error(
        &self,
        message: impl Into<String>,
        source: Option<ErrorSource>,
    ) -> KvError {
        KvError::Backend {
            backend: self.backend.to_string(),
            context: self.describe(),
            message: message.into(),
            retryable: false,
            source,
        }
    }

    /// `DatasetNotFound` for `self.dataset`. Without a dataset in the context there is nothing
    /// to name, so it is a `Backend` error saying so (an adapter bug, shown as an error).
    pub fn not_found(&self) -> KvError {
        match self.dataset {
            Some(dataset) => KvError::not_found(dataset),
            None => self.backend_error(
                "the backend reported a missing dataset, but the call named none (adapter bug)",
                None,
            ),
        }
    }

    /// Runs `fut` under self.timeout; expiry is self.timeout_error().
    pub async fn with_timeout<T, F: Future<Output = Result<T, KvError>>>(
        &self,
        fut: F,
    ) -> Result<T, KvError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(result) => result,
            Err(_) => Err(self.timeout_error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const ADDRESS: &str = "127.0.0.1:6379";

    fn ctx() -> ErrorContext<'static> {
        ErrorContext::new("redis", "multi_get", ADDRESS, Duration::from_millis(20))
    }

    #[test]
    fn describes_operation_dataset_and_key() {
        assert_eq!(ctx().describe(), "multi_get");
        assert_eq!(ctx().dataset("D").describe(), "multi_get on dataset \"D\"");
        assert_eq!(
            ctx()
                .dataset("D")
                .key(&[0, 255])
                .operation("create")
                .describe(),
            "create on dataset \"D\" key hex:00ff"
        );
    }

    #[test]
    fn errors_carry_the_context() {
        match ctx().timeout_error() {
            KvError::Timeout {
                operation,
                target,
                timeout,
            } => {
                assert_eq!(
                    (operation.as_str(), target.as_str()),
                    ("multi_get", ADDRESS)
                );
                assert_eq!(timeout, Duration::from_millis(20));
            }
            other => panic!("{other:?}"),
        }
        assert!(ctx()
            .dataset("D")
            .timeout_error()
            .to_string()
            .contains("on D"));

        let io: ErrorSource = Arc::new(std::io::Error::other("refused"));
        let e = ctx().unavailable("connection refused", Some(io));
        assert!(e.is_retryable() && e.to_string().contains(ADDRESS));
        assert!(std::error::Error::source(&e).is_some());

        let e = ctx().dataset("D").backend_error("WRONGTYPE", None);
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "redis error during multi_get on dataset \"D\": WRONGTYPE"
        );
        assert!(matches!(
            ctx().dataset("D").not_found(),
            KvError::DatasetNotFound { dataset } if dataset == "D"
        ));
        assert!(matches!(ctx().not_found(), KvError::Backend { .. }));
    }

    #[tokio::test]
    async fn with_timeout_turns_expiry_into_timeout() {
        let ok = ctx().with_timeout(async { Ok(7) }).await;
        assert_eq!(ok.unwrap(), 7);
        let slow = ctx()
            .dataset("D")
            .with_timeout(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await;
        assert!(matches!(slow, Err(KvError::Timeout { .. })));
    }
}
