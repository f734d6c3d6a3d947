//! # chronon-redis
//!
//! Chronon's online `KVStore` on Redis: [`RedisStore`] implements [`chronon_core::KvStore`] with
//! the `redis` crate's `ConnectionManager` (a multiplexed connection that reconnects by itself
//! after the server goes away), pipelined and chunked batches, dataset kinds and TTLs kept in
//! Redis itself, and Redis expiry plus read filtering for TTL.
//!
//! Chronon has no Redis layout of its own; ours is written down in the crate README and in
//! [`layout`]: a sorted set per `TimeSeries` key (score = ts), a plain string per `Snapshot` key,
//! both holding `8-byte ts ++ value`, under `<prefix>:<dataset>:<generation>:{<hash tag>}<key>`.
//!
//! Files: `store.rs` (the public type, thin) calls `datasets.rs`, `read.rs` and `write.rs`, which
//! share `client.rs` (connection, options, registry cache); `config.rs` holds the options,
//! `error.rs` the one driver-error mapping. See the crate's `README.md` for the whole story.
//!
//! ```no_run
//! # async fn f() -> Result<(), chronon_core::KvError> {
//! use chronon_core::{KvStore, KvStoreExt};
//! let store = chronon_redis::RedisStore::open_url("redis://127.0.0.1:6379/0?prefix=chronon").await?;
//! store.create_default("PURCHASES_STREAMING").await?;
//! store.put("PURCHASES_STREAMING", "user_1", "12.5", Some(1_700_000_000_000)).await?;
//! # Ok(()) }
//! ```

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod cluster;
mod config;
mod datasets;
mod error;
pub mod layout;
mod read;
mod store;
mod write;

pub use config::RedisOptions;
pub use store::RedisStore;

/// The URL scheme this adapter opens (`redis://host:port/db?prefix=chronon`).
pub const SCHEME: &str = "redis";

/// The URL scheme of the same store over TLS (`rediss://host:port/db?tls_ca_file=ca.pem`).
pub const TLS_SCHEME: &str = "rediss";
