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
//! let url = url::Url::parse("mongodb://127.0.0.1:27017/?chronon_db=chronon").unwrap();
//! let store = chronon_mongo::open_url(&url).await?;
//! store.create_default("PURCHASES_BATCH").await?;
//! store.put("PURCHASES_BATCH", "user_1", "10.0", Some(1_700_000_000_000)).await?;
//! # Ok(()) }
//! ```
//!
//! See the crate's README for the layout, the options and the SecantusDB notes.

#![deny(missing_docs)]

mod cache;
mod error;
mod layout;
mod options;
mod store;

pub use options::{durable_write_concern, open_url, MongoOptions};
pub use store::MongoStore;

/// The URL scheme this adapter answers to (`mongodb://host:port/...`).
pub const SCHEME: &str = "mongodb";
