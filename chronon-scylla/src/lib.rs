//! # chronon-scylla
//!
//! Chronon's online `KVStore` on [ScyllaDB](https://www.scylladb.com) or Apache Cassandra, through
//! the [`scylla`] driver: [`ScyllaStore`] implements [`chronon_core::KvStore`] as the contract in
//! `chronon-core/CONTRACT.md` describes it; the crate's `README.md` says how to run it and what
//! was checked where.
//!
//! Layout: `config` (options, URL) → `client` (session, metadata cache) → `datasets`, `read`,
//! `write` (the calls) → `store` (the public type); `cql` holds every statement's text, `layout`
//! the table names and limits, `error` the one driver-error mapping.
//!
//! ```no_run
//! # async fn f() -> Result<(), chronon_core::KvError> {
//! use chronon_core::{KvStore, KvStoreExt};
//! let store = chronon_scylla::ScyllaStore::open_url(
//!     "scylla://host1:9042,host2:9042/chronon?consistency=local_quorum&replication_factor=3",
//! )
//! .await?;
//! store.create_default("PURCHASES_STREAMING").await?;
//! store.put("PURCHASES_STREAMING", "user_1", "12.5", Some(1_700_000_000_000)).await?;
//! # Ok(()) }
//! ```

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod config;
mod cql;
mod datasets;
mod error;
mod layout;
mod read;
mod store;
mod tls;
mod write;

pub use config::{ScyllaOptions, SCHEME};
pub use cql::Replication;
pub use scylla::statement::Consistency;
pub use store::ScyllaStore;
pub use tls::TlsOptions;
