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
//! let url = url::Url::parse("dynamodb://?endpoint=http://127.0.0.1:8000&region=us-west-2&prefix=chronon_").unwrap();
//! let store = chronon_dynamo::DynamoStore::open_url(&url).await?;
//! store.create_default("PURCHASES_STREAMING").await?;
//! # Ok(()) }
//! ```
//!
//! See the crate's README for the layout, the capabilities, and how the tests run against
//! DynamoDB Local.

#![deny(missing_docs)]

mod error;
pub mod layout;
mod options;
mod retry;
mod store;

pub use options::{DynamoOptions, RetrySettings};
pub use store::{DynamoStore, GET_BATCH, PUT_BATCH};

/// The URL scheme of this store: `dynamodb://`.
pub const SCHEME: &str = "dynamodb";
