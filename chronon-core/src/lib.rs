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
//! Decisions where SPEC.md is silent (written down here, as SPEC.md asks):
//! - A put timestamp must be in `0..=2^53-1` ms ([`validate::MAX_TS`]): exact in every backend's
//!   number type, Redis' double scores included. Reads accept any range.
//! - `end_ts` without `start_ts`, and `start_ts > end_ts`, are [`KvError::InvalidRequest`].
//! - TTL hides a value when `ts < now - ttl`, judged on the value's own timestamp (the event or
//!   batch time Chronon writes), whether or not the backend has removed it yet.
//! - A `Snapshot` put replaces the key's value whatever the timestamps (last write wins), as an
//!   upsert does in every backend.
//! - `list` on a `TimeSeries` dataset returns each key's latest visible version.

#![deny(missing_docs)]

pub mod batch;
pub mod error;
mod memory;
mod store;
pub mod string_array;
mod types;
pub mod validate;

pub use error::{key_preview, ErrorSource, KvError, KvResult};
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
