//! # chronon-scylla
//!
//! Chronon's online `KVStore` on [ScyllaDB](https://www.scylladb.com) or Apache Cassandra, through
//! the [`scylla`] driver: [`ScyllaStore`] implements [`chronon_core::KvStore`].
//!
//! Layout (SPEC.md "On-disk layouts"): keyspace `chronon` (configurable); per dataset a table
//! `(key blob, ts bigint, value blob)`, `PRIMARY KEY (key)` for a `Snapshot` and
//! `PRIMARY KEY ((key), ts) WITH CLUSTERING ORDER BY (ts DESC)` for a `TimeSeries`; a `datasets`
//! table keeps each dataset's kind, TTL and physical table name (names longer than CQL's 48
//! characters are mapped, see [`naming`]). Every statement's text is in [`cql`].
//!
//! Open one with a URL:
//!
//! ```no_run
//! # async fn f() -> Result<(), chronon_core::KvError> {
//! use chronon_core::{KvStore, KvStoreExt};
//! let store = chronon_scylla::ScyllaStore::open_str(
//!     "scylla://host1:9042,host2:9042/chronon?consistency=local_quorum&replication_factor=3",
//! )
//! .await?;
//! store.create_default("PURCHASES_STREAMING").await?;
//! store.put("PURCHASES_STREAMING", "user_1", "12.5", Some(1_700_000_000_000)).await?;
//! # Ok(()) }
//! ```
//!
//! Its checks: the CQL text, the name mapping, option parsing and error mapping are unit-tested
//! offline; the full conformance suite runs wherever `CHRONON_SCYLLA_URI` names a server or Docker
//! can start `scylladb/scylla` (see the crate README for which of these ran where).

#![deny(missing_docs)]

pub mod cql;
mod error;
pub mod naming;
mod options;
mod store;

pub use cql::Replication;
pub use options::{parse_consistency, ScyllaOptions, DEFAULT_PORT};
pub use scylla::statement::Consistency;
pub use store::{ScyllaStore, MAX_VALUE_BYTES};

/// The URL scheme of this adapter: `scylla://host:9042/keyspace`.
pub const SCHEME: &str = "scylla";

/// The backend name in reports and errors.
pub(crate) const BACKEND: &str = "scylla";

/// Opens a store from a `scylla://` URL (the entry point the `chronon` CLI uses):
/// `scylla://host1:9042/chronon?consistency=local_quorum&replication_factor=1`.
/// See [`ScyllaOptions::from_url_str`] for every parameter, and [`ScyllaStore::open_str`] for
/// host lists with a port on each host (which `url::Url` cannot hold).
pub async fn open_url(url: &url::Url) -> Result<ScyllaStore, chronon_core::KvError> {
    ScyllaStore::open_url(url).await
}
