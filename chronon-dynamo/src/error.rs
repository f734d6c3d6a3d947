//! The one place driver errors become [`KvError`]s.

use std::sync::Arc;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use chronon_core::error::error_chain;
use chronon_core::{ErrorContext, KvError};

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

/// Maps an SDK error: timeouts are `Timeout`, connection failures are `Unavailable` (with the
/// endpoint), `ResourceNotFoundException` on a dataset is `DatasetNotFound`, throttling and 5xx
/// are retryable `Backend` errors, anything else a `Backend` error with the SDK error as its
/// source.
pub(crate) fn map_error<E>(err: SdkError<E, HttpResponse>, ctx: ErrorContext<'_>) -> KvError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::TimeoutError(_) => return ctx.timeout_error(),
        SdkError::DispatchFailure(d) if d.is_timeout() => return ctx.timeout_error(),
        SdkError::DispatchFailure(d) if !d.is_user() => {
            return ctx.unavailable(error_chain(&err), Some(Arc::new(err)));
        }
        _ => {}
    }
    let code = err.code().unwrap_or_default().to_string();
    if code == "ResourceNotFoundException" && ctx.dataset.is_some() {
        return ctx.not_found();
    }
    let status = err.raw_response().map(|r| r.status().as_u16());
    let retryable = THROTTLING.contains(&code.as_str())
        || TRANSIENT.contains(&code.as_str())
        || status.is_some_and(|s| s >= 500);
    let mapped = ctx.backend_error(error_chain(&err), Some(Arc::new(err)));
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

/// An SDK request builder's failure (a required field left out), as an [`SdkError`] so it goes
/// through [`map_error`] like every other driver error.
pub(crate) fn build_failure(
    err: aws_sdk_dynamodb::error::BuildError,
) -> SdkError<aws_sdk_dynamodb::Error, HttpResponse> {
    SdkError::construction_failure(err)
}
