//! The one place a RocksDB error becomes a [`KvError`].

use std::sync::Arc;

use chronon_core::{ErrorContext, KvError};

/// The operation name of opening the directory, the one call whose errors can mean "locked".
pub(crate) const OPEN: &str = "open";

/// Maps a RocksDB error to a [`KvError`] naming what the call was doing (`ctx`).
///
/// RocksDB's own `Busy`, `TimedOut`, `TryAgain` and `Incomplete` are transient (write stalls,
/// lock waits), so they are marked retryable. An [`OPEN`] that finds the directory's lock held
/// gets `KvError::Unavailable` (its address is the directory) with a sentence a user can act on:
/// another process, or another open client in this one, has it open.
pub(crate) fn map_error(err: rocksdb::Error, ctx: ErrorContext<'_>) -> KvError {
    use rocksdb::ErrorKind as K;
    let message = err.to_string();
    if ctx.operation == OPEN && (message.contains("lock") || message.contains("LOCK")) {
        return ctx.unavailable(
            format!(
                "the RocksDB directory is locked: another process (or another open client in this process) \
                 has it open, and RocksDB allows one at a time; close that one first ({message})"
            ),
            Some(Arc::new(err)),
        );
    }
    let retryable = matches!(
        err.kind(),
        K::Busy | K::TimedOut | K::TryAgain | K::Incomplete
    );
    let mapped = ctx.backend_error(message, Some(Arc::new(err)));
    if retryable {
        mapped.retryable()
    } else {
        mapped
    }
}
