//! # conformance
//!
//! The [`KvStore`] contract (`chronon-core/CONTRACT.md`) as code: the behaviour suite every
//! chronon adapter must pass. By default the crate is light (chronon-core and a few small
//! crates), so a new backend's test build pulls in nothing else; the `launchers` feature adds
//! what finds or starts real databases and drives them through faults (`launch`, `faults`,
//! `resources`; `conformance/DATABASES.md` says how to get each database locally).
//!
//! An adapter runs the whole suite from its own tests with a [`StoreFactory`] that opens new
//! clients on one database:
//!
//! ```
//! use chronon_core::{KvError, MemoryStore};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = MemoryStore::new(); // clones share data, like clients of one server
//! conformance::assert_conformance(conformance::FnFactory::new("memory", move || {
//!     let db = db.clone();
//!     async move { Ok::<_, KvError>(db) }
//! }))
//! .await;
//! # });
//! ```
//!
//! Every case uses fresh random dataset names, so runs never see each other's data, and checks
//! [`Capabilities`](chronon_core::Capabilities) rather than backend names.

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod assert;
mod cases;
mod factory;
#[cfg(feature = "launchers")]
pub mod faults;
#[cfg(feature = "launchers")]
pub mod launch;
mod report;
#[cfg(feature = "launchers")]
pub mod resources;
mod runner;

pub use assert::{assert_conformance, assert_conformance_with, MIN_FULL_RUN};
pub use cases::{all_cases, TooSlow, LOAD_CASES};
pub use factory::{BoxError, FnFactory, StoreFactory, OPEN_RETRY_FOR};
pub use report::{CaseResult, Report};
pub use runner::{run_all, run_with, Case, RunOptions, CASES_ENV};

#[doc(no_inline)]
pub use chronon_core::{KvError, KvStore};
