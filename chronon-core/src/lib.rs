//! # chronon-core
//!
//! The online half of [Chronon](https://github.com/airbnb/chronon)'s storage integration, in Rust:
//! the [`KvStore`] contract every database adapter implements (Chronon's `KVStore`: `create`,
//! `multiGet`, `multiPut`, `bulkPut`, plus `list` and `drop`), the request and response types,
//! the one error enum [`KvError`], the input checks every adapter shares ([`validate`]), the batch
//! bookkeeping adapters build on ([`batch`]), and [`MemoryStore`], the executable reading of the
//! contract that the `conformance` suite is proven on. The serving stack (stream decoders,
//! definitions, aggregation, the fetcher) lives in the `chronon-serving` crate.
//!
//! The contract itself, clause by clause, is `CONTRACT.md` next to this crate's `Cargo.toml`.
//!
//! ## Helpers every adapter shares
//!
//! Written once here so the adapters answer the same way and stay thin:
//! - [`validate`]: the per-request input checks (dataset names, keys, values, timestamps);
//! - [`batch`]: `multi_get`/`multi_put` bookkeeping by request index, version selection, TTL;
//! - [`bulk`]: the bulk-load loop ([`bulk::bulk_put_chunked`]) and the default `bulk_put`;
//! - [`config`]: store options from URL query parameters ([`config::UrlParams`]), one policy for
//!   numbers, bools, durations and unknown parameters, and [`config::redact_url`];
//! - [`metadata_cache`]: the dataset-metadata cache that a concurrent drop cannot corrupt;
//! - [`ErrorContext`]: what a failed call was doing, turned into the right [`KvError`] (and the
//!   call's timeout) by each adapter's one error-mapping function.
//!
//! Decisions the contract leaves to the implementation (CONTRACT.md, "Decisions", lists them too):
//! - A put timestamp must be in `0..=2^53-1` ms ([`validate::MAX_TS`]): exact in every backend's
//!   number type, Redis' double scores included. Reads accept any range.
//! - `end_ts` without `start_ts`, and `start_ts > end_ts`, are [`KvError::InvalidRequest`].
//! - TTL hides a value when `ts < now - ttl`, judged on the value's own timestamp (the event or
//!   batch time Chronon writes), whether or not the backend has removed it yet.
//! - A `Snapshot` put replaces the key's value whatever the timestamps (last write wins), as an
//!   upsert does in every backend.
//! - `list` on a `TimeSeries` dataset returns each key's latest visible version.

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod batch;
pub mod bulk;
pub mod config;
pub mod error;
pub mod error_context;
mod memory;
pub mod metadata_cache;
pub mod observe;
mod store;
pub mod string_array;
mod types;
pub mod validate;

pub use error::{key_preview, ErrorSource, KvError, KvResult};
pub use error_context::ErrorContext;
pub use memory::MemoryStore;
pub use store::{DynKvStore, KvStore, KvStoreExt};
pub use types::{
    BulkPutOptions, BulkPutReport, BulkRow, BulkSource, Capabilities, DatasetKind, DatasetProps,
    GetRequest, GetResponse, ListCursor, ListPage, ProgressFn, PutRequest, TimedValue,
};

/// Re-exports for `use chronon_core::prelude::*;`.
pub mod prelude {
    pub use crate::{
        BulkPutOptions, BulkRow, DatasetKind, DatasetProps, GetRequest, GetResponse, KvError,
        KvStore, KvStoreExt, PutRequest, TimedValue,
    };
}
