//! # chronon-mongo
//!
//! A [`KvStore`](chronon_core::KvStore) on MongoDB through the official `mongodb` driver (v3),
//! in the layout of Chronon's quickstart `MongoKvStore`
//! (`quickstart/mongo-online-impl` in airbnb/chronon), so a JVM deployment and this crate read
//! each other's data:
//!
//! - database `chronon` (configurable), one collection per dataset named exactly like it;
//! - documents `{keyBytes: BinData, valueBytes: BinData, ts: Long}`, indexed on
//!   `{keyBytes: 1, ts: -1}`;
//! - `Snapshot` datasets keep one document per key, `TimeSeries` one per `(key, ts)`, each
//!   enforced by a unique index; the kind and TTL live in the `chronon.datasets` collection.
//!
//! Unlike the quickstart store, reads are batched (`$in` per dataset instead of one `find` per
//! key), writes are unordered bulk upserts, and every value carries its stored timestamp (the JVM
//! store reports the read time, which makes Chronon's fetcher drop batch values as stale).
//!
//! ```no_run
//! # async fn demo() -> Result<(), chronon_core::KvError> {
//! use chronon_core::KvStoreExt;
//! let store = chronon_mongo::MongoStore::open_url("mongodb://127.0.0.1:27017/?chronon_db=chronon").await?;
//! store.create_default("PURCHASES_BATCH").await?;
//! store.put("PURCHASES_BATCH", "user_1", "10.0", Some(1_700_000_000_000)).await?;
//! # Ok(()) }
//! ```
//!
//! Layout of this crate: `config` (options, URL), `client` (shared state, metadata cache),
//! `datasets` / `read` / `write` (the operations), `store` (the public type), `layout` (documents,
//! indexes), `error` (driver errors to `KvError`). The crate's `README.md` has the options and the
//! SecantusDB notes.

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod config;
mod datasets;
mod error;
mod layout;
mod read;
mod store;
mod write;

pub use config::MongoOptions;
pub use store::MongoStore;

/// The URL scheme this adapter answers to (`mongodb://host:port/...`).
pub const SCHEME: &str = "mongodb";
