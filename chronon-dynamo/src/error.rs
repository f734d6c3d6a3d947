//! The one place driver errors become [`KvError`]s.

use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::interceptors::InterceptorContext;
use aws_sdk_dynamodb::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use chronon_core::KvError;

use crate::SCHEME;

/// Error codes DynamoDB uses for "slow down": retried by the SDK, then surfaced as retryable.
const THROTTLING: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "TransactionInProgressException",
];

/// Codes of transient server-side failures, also retryable.
const TRANSIENT: &[&str] = &[
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
];

/// What was being done when an SDK call failed, for the error message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op<'a> {
    /// The DynamoDB operation (`BatchGetItem`, ...).
    pub name: &'static str,
    /// The dataset it was for, if any.
    pub dataset: Option<&'a str>,
    /// The endpoint (or region) the client talks to, for `Unavailable`.
    pub address: &'a str,
    /// The call's timeout, for `Timeout`.
    pub timeout: Duration,
}

impl Op<'_> {
    fn context(&self) -> String {
        match self.dataset {
            Some(d) => format!("{} on dataset {d:?}", self.name),
            None => self.name.to_string(),
        }
    }
}

/// Maps an SDK error: `ResourceNotFoundException` is `DatasetNotFound`, timeouts are `Timeout`,
/// connection failures are `Unavailable` (with the endpoint), throttling and 5xx are retryable
/// `Backend` errors, anything else a `Backend` error with the SDK error as its source.
pub(crate) fn map_sdk_err<E>(err: SdkError<E, HttpResponse>, op: Op<'_>) -> KvError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let target = op.dataset.unwrap_or(op.address).to_string();
    match &err {
        SdkError::TimeoutError(_) => return KvError::timeout(op.name, target, op.timeout),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            return KvError::timeout(op.name, target, op.timeout)
        }
        SdkError::DispatchFailure(d) if !d.is_user() => {
            return KvError::unavailable(SCHEME, op.address.to_string(), err);
        }
        _ => {}
    }
    let code = err.code().unwrap_or_default().to_string();
    if code == "ResourceNotFoundException" {
        if let Some(dataset) = op.dataset {
            return KvError::not_found(dataset);
        }
    }
    let status = err.raw_response().map(|r| r.status().as_u16());
    let retryable = THROTTLING.contains(&code.as_str())
        || TRANSIENT.contains(&code.as_str())
        || status.is_some_and(|s| s >= 500);
    let mapped = KvError::backend(SCHEME, op.context(), err);
    if retryable {
        mapped.retryable()
    } else {
        mapped
    }
}

/// The error code of an SDK error (`""` when there is none), for the few places that treat one
/// code as success (`ResourceInUseException` on create, "TTL already enabled").
pub(crate) fn code_of<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> &str {
    err.code().unwrap_or_default()
}

/// The message of an SDK error (`""` when there is none).
pub(crate) fn message_of<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> &str {
    err.message().unwrap_or_default()
}

/// An SDK retry classifier that forbids retrying a request whose connection was refused, so the
/// call fails at once with `Unavailable` (see [`map_sdk_err`]) instead of retrying until the
/// operation timeout and surfacing as `Timeout`. Found by the fault tests (issue 12): with the
/// SDK's standard retries, a stopped DynamoDB Local gave `Timeout` for every call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RefusedIsFinal;

impl ClassifyRetry for RefusedIsFinal {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let refused = ctx
            .output_or_error()
            .and_then(|r| r.err())
            .and_then(|e| e.as_connector_error())
            .is_some_and(|e| e.is_io() && is_refused(e));
        if refused {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "chronon: connection refused is final"
    }
}

/// Whether an error's source chain holds an `io::Error` of kind `ConnectionRefused`.
fn is_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        next = e.source();
    }
    false
}
