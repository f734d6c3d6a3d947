//! The one place `redis` driver errors become [`KvError`]s.

use std::sync::Arc;

use chronon_core::{ErrorContext, KvError};
use redis::{ErrorKind, RedisError, ServerErrorKind};

/// The backend name in errors and reports.
pub(crate) const BACKEND: &str = "redis";

/// Maps a driver error of the call `ctx` describes: a dead, refused or still-loading server (or
/// a cluster that is down or lost the node of a slot) is `Unavailable` (retryable) naming its
/// address, an I/O timeout is `Timeout`, anything else is
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
    let no_node = matches!(err.kind(), ErrorKind::ClusterConnectionNotFound);
    if err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || busy
        || no_node
    {
        return ctx.unavailable(message, Some(Arc::new(err)));
    }
    // TRYAGAIN, and on a cluster MOVED/ASK left after the driver's redirects (slots moving):
    // the same call succeeds once the cluster settles.
    let retryable = matches!(
        err.kind(),
        ErrorKind::Server(
            ServerErrorKind::TryAgain | ServerErrorKind::Moved | ServerErrorKind::Ask
        )
    );
    let mapped = ctx.backend_error(message, Some(Arc::new(err)));
    if retryable {
        mapped.retryable()
    } else {
        mapped
    }
}
