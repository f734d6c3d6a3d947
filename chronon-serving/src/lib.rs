//! # chronon-serving
//!
//! Chronon's serving stack over any [`chronon_core::KvStore`]: what turns stored rows into
//! features. [`stream`] holds streaming updates (Chronon's `StreamDecoder`/`Mutation`, typed
//! schemas, the Avro row and key encodings, and the writer of `<NAME>_STREAMING` datasets);
//! [`groupby`] the GroupBy and Join definitions ([`window`] their windows); [`aggregation`] the
//! batch IRs and their merge; [`metadata`] the definitions and batch uploads kept in the store;
//! [`fetcher`] the `Fetcher` that serves joins and group-bys ([`request`] its request and
//! response types, [`join_schema`] a join's key and value schemas); [`api`] Chronon's `Api`
//! entry point; [`logging`] the served-response log;
//! [`jvm`] JVM Chronon's storage format (dataset names, key and value bytes, serving info);
//! and [`store_url`] opening any store from a URL, with one cargo feature per backend (none by
//! default).
//!
//! The store contract itself (the trait, its types and errors, the reference `MemoryStore`) is
//! `chronon-core`; this crate only uses it, so an adapter crate never compiles the serving stack.

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod aggregation;
pub mod api;
pub mod conf;
pub mod derive;
pub mod fetcher;
pub mod groupby;
pub mod join_schema;
pub mod jvm;
pub mod logging;
pub mod metadata;
pub mod request;
pub mod store_url;
pub mod stream;
pub mod window;
