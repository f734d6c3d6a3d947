//! # chronon-rocks
//!
//! Chronon's online `KVStore` on an embedded [RocksDB](https://rocksdb.org) directory: the store
//! the workspace uses wherever it needs one without a server. It passes the whole `conformance`
//! suite. How rows are laid out, its options and its figures are in the crate's `README.md`.
//!
//! Layout: `store` (the `KvStore` impl) hands each call to `datasets`, `read` or `write`
//! (`ingest` for bulk loads), which share `client` (the open database, the blocking pool);
//! `config` holds the options and URL form, `layout` the encodings, `error` the error mapping.
//!
//! - One column family per dataset; each dataset's kind and TTL in the `chronon.meta` column
//!   family, so reopening the directory restores them (the contract in
//!   `chronon-core/CONTRACT.md` asks the backend itself to remember kinds).
//! - `Snapshot` rows are stored under the raw key with the ts in front of the value, so a latest
//!   read is one point lookup; `TimeSeries` rows under an escaped key followed by the big-endian
//!   ts, so a key's versions are adjacent and in ts order.
//! - `multi_get` uses `batched_multi_get_cf` (snapshots) and one bounded iterator per request
//!   (time series), `multi_put` one `WriteBatch` per call, `bulk_put` SST files and ingestion.
//! - TTL: expired rows are filtered on read and removed by a compaction filter.
//! - Every RocksDB call runs on tokio's blocking pool, bounded by a semaphore, under a timeout.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chronon_core::KvError> {
//! use chronon_core::{KvStore, KvStoreExt};
//! let store = chronon_rocks::RocksStore::open_url("rocks:///var/lib/chronon/kv?cache_mb=128").await?;
//! store.create_default("PURCHASES_BATCH").await?;
//! store.put("PURCHASES_BATCH", "user_1", "12.5", Some(1_700_000_000_000)).await?;
//! # Ok(()) }
//! ```

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod config;
mod datasets;
mod error;
mod ingest;
mod layout;
mod read;
mod store;
mod write;

pub use config::{Compression, RocksOptions, SCHEME};
/// The `rocksdb` crate this adapter is built on, for [`RocksStore::db`].
pub use rocksdb;
pub use store::RocksStore;

/// The workspace README's example, compiled and run as a doctest so it works as copied.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExample;
