//! The one place `redis` driver errors become [`KvError`]s.

use std::sync::Arc;

use chronon_core::{ErrorContext, KvError};
use redis::{ErrorKind, RedisError, ServerErrorKind};

/// The backend name in errors and reports.
pub(crate) const BACKEND: &str = "redis";

/// Maps a driver error of the call `ctx` describes: a dead, refused or still-loading server is
/// `Unavailable` (retryable) naming its address, an I/O timeout is `Timeout`, anything else is
/// `Backend` with the driver error as its source (retryable when the server says so).
pub(crate) fn map_error(err: RedisError, ctx: ErrorContext<'_>) -> KvError {
    if err.is_timeout() {
        return ctx.timeout_error();
    }
    let busy = matches!(
        err.kind(),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ClusterDown
        )
    );
    let message = err.to_string();
    if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() || busy {
        return ctx.unavailable(message, Some(Arc::new(err)));
    }
    let retryable = matches!(err.kind(), ErrorKind::Server(ServerErrorKind::TryAgain));
    let mapped = ctx.backend_error(message, Some(Arc::new(err)));
    if retryable {
        mapped.retryable()
    } else {
        mapped
    }
}
