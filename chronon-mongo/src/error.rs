//! The one place driver errors become [`KvError`]s ([`map_error`]), and the server error codes
//! the adapter handles itself.

use std::sync::Arc;

use chronon_core::error::error_chain;
use chronon_core::{ErrorContext, KvError};
use mongodb::error::{Error, ErrorKind, WriteFailure};

/// The backend name in errors and reports (also `KvStore::backend()`).
pub(crate) const BACKEND: &str = "mongodb";

/// The operation name of opening a store (parsing the connection string, the first `ping`).
pub(crate) const CONNECT: &str = "connect";

/// MongoDB's duplicate key error code.
pub(crate) const DUPLICATE_KEY: i32 = 11000;
/// `NamespaceNotFound`: dropping or reading a collection that does not exist.
pub(crate) const NAMESPACE_NOT_FOUND: i32 = 26;
/// `NamespaceExists`: `create` of a collection that exists (a concurrent `create`).
pub(crate) const NAMESPACE_EXISTS: i32 = 48;

/// Maps a driver error of the call `ctx` describes to the shared error enum: network trouble
/// and failed server selection are `Unavailable` (retryable) naming the server address, errors
/// the driver labels retryable are retryable `Backend` errors, an invalid argument while
/// connecting (the driver rejecting the connection string) is `Config`, the rest are plain
/// `Backend` errors. The driver's error stays the `source()`.
pub(crate) fn map_error(err: Error, ctx: ErrorContext<'_>) -> KvError {
    let message = error_chain(&err);
    let unavailable = matches!(
        *err.kind,
        ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
    );
    if let ErrorKind::InvalidArgument { message, .. } = &*err.kind {
        if ctx.operation == CONNECT {
            // Only the driver's own words: the connection string (and its password) stays out.
            return KvError::config(ctx.backend, format!("connection string: {message}"));
        }
    }
    let retryable = err.contains_label(mongodb::error::RETRYABLE_WRITE_ERROR)
        || err.contains_label("TransientTransactionError");
    let source = Some(Arc::new(err) as chronon_core::ErrorSource);
    if unavailable {
        return ctx.unavailable(message, source);
    }
    let e = ctx.backend_error(message, source);
    if retryable {
        e.retryable()
    } else {
        e
    }
}

/// The server's error code, for the few codes the adapter handles itself.
pub(crate) fn code(err: &Error) -> Option<i32> {
    match &*err.kind {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        _ => None,
    }
}
