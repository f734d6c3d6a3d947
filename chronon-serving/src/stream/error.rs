//! Why a stream stopped.

use std::io;

use chronon_core::KvError;

use super::schema::SchemaError;
use super::source::Position;

/// Why the stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The schema, keys or options do not fit together.
    #[error("stream configuration: {0}")]
    Config(String),
    /// The schema is invalid.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// Reading the source failed.
    #[error("reading {source_name}: {error}")]
    Source {
        /// The source.
        source_name: String,
        /// What failed.
        error: io::Error,
    },
    /// The store failed (after retries) or refused the dataset.
    #[error("store: {0}")]
    Store(#[from] KvError),
    /// The dead-letter sink failed (the stream stops rather than lose a bad message).
    #[error("dead-letter sink: {0}")]
    DeadLetter(io::Error),
    /// Committing the position failed.
    #[error("committing position: {0}")]
    Checkpoint(io::Error),
    /// Strict mode met a bad message.
    #[error("bad message at line {} (offset {}): {error}", position.line, position.offset)]
    BadMessage {
        /// Where it is.
        position: Position,
        /// What is wrong with it.
        error: String,
    },
}
