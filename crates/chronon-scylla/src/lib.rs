//! Chronon online KvStore adapter (work in progress).
