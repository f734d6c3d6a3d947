//! # chronon-dynamo
//!
//! Chronon's online [`KvStore`](chronon_core::KvStore) on Amazon DynamoDB, in the table layout
//! of Chronon's JVM `DynamoDBKVStoreImpl` (zipline-ai/chronon), so a JVM Chronon and this crate
//! can read each other's tables: one table per dataset (`prefix + dataset`), partition key
//! `keyBytes` (B), sort key `ts` (N) on `TimeSeries` tables, value `valueBytes` (B), TTL
//! attribute `ttl` (epoch seconds), on-demand billing.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chronon_core::KvError> {
//! use chronon_core::KvStoreExt;
//! let url = "dynamodb://?endpoint=http://127.0.0.1:8000&region=us-west-2&prefix=chronon_";
//! let store = chronon_dynamo::DynamoStore::open_url(url).await?;
//! store.create_default("PURCHASES_STREAMING").await?;
//! # Ok(()) }
//! ```
//!
//! Layout: `store.rs` (the `KvStore`) hands calls to `datasets.rs`, `read.rs` and `write.rs`,
//! which share `client.rs`; `config.rs` is the options and URL, `layout.rs` the table layout,
//! `error.rs` the error mapping, `retry.rs` the retries. The crate's README covers the
//! capabilities and how the tests run against DynamoDB Local.

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod client;
mod config;
mod datasets;
mod error;
pub mod layout;
mod read;
mod retry;
mod store;
mod write;

pub use config::{DynamoOptions, RetrySettings, SCHEME};
pub use store::DynamoStore;
