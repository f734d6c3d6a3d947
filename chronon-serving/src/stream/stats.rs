//! Live counters of a streaming writer and their snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of a running writer (read them for a progress line).
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Messages read.
    pub messages: AtomicU64,
    /// Messages that carried no row (heartbeats, headers, tombstones, no-op updates).
    pub skipped: AtomicU64,
    /// Bad messages (dead-lettered, or the one that stopped a strict stream).
    pub bad: AtomicU64,
    /// Puts acknowledged by the store.
    pub written: AtomicU64,
    /// Batches acknowledged.
    pub batches: AtomicU64,
    /// Store write attempts retried.
    pub retries: AtomicU64,
    /// The last committed line.
    pub committed_line: AtomicU64,
}

/// A snapshot of [`StreamStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamSummary {
    /// Messages read.
    pub messages: u64,
    /// Messages without a row.
    pub skipped: u64,
    /// Bad messages.
    pub bad: u64,
    /// Puts acknowledged.
    pub written: u64,
    /// Batches acknowledged.
    pub batches: u64,
    /// Retried write attempts.
    pub retries: u64,
    /// The last committed line.
    pub committed_line: u64,
}

impl StreamStats {
    /// The counters now.
    pub fn snapshot(&self) -> StreamSummary {
        StreamSummary {
            messages: self.messages.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            bad: self.bad.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            committed_line: self.committed_line.load(Ordering::Relaxed),
        }
    }
}
