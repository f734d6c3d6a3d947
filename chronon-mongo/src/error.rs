//! The one place driver errors become [`KvError`]s.

use chronon_core::KvError;
use mongodb::error::{Error, ErrorKind, WriteFailure};

/// MongoDB's duplicate key error code.
pub(crate) const DUPLICATE_KEY: i32 = 11000;
/// `NamespaceNotFound`: dropping or reading a collection that does not exist.
pub(crate) const NAMESPACE_NOT_FOUND: i32 = 26;
/// `NamespaceExists`: `create` of a collection that exists (a concurrent `create`).
pub(crate) const NAMESPACE_EXISTS: i32 = 48;

/// Maps a driver error of `operation` on `target` (dataset or server) to the shared error enum:
/// network trouble and failed server selection are `Unavailable` (retryable) with the server
/// `address`, errors the driver labels retryable are retryable `Backend` errors, the rest are
/// plain `Backend` errors. The driver's error stays the `source()`.
pub(crate) fn map_err(err: Error, operation: &str, target: &str, address: &str) -> KvError {
    let unavailable = matches!(
        *err.kind,
        ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
    );
    if unavailable {
        return KvError::unavailable("mongodb", address, err);
    }
    let retryable = err.contains_label(mongodb::error::RETRYABLE_WRITE_ERROR)
        || err.contains_label("TransientTransactionError");
    let e = KvError::backend("mongodb", format!("{operation} on {target}"), err);
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
