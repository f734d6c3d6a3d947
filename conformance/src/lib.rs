//! # conformance
//!
//! `shared/SPEC.md` turned into code: the behaviour suite every chronon [`KvStore`] adapter must
//! pass, and the launchers that find or start a real database for it.
//!
//! An adapter runs the whole suite from its own tests with a [`StoreFactory`] that opens new
//! clients on one database:
//!
//! ```
//! use std::sync::Arc;
//! use chronon_core::{KvStore, MemoryStore};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = MemoryStore::new(); // clones share data, like clients of one server
//! let factory = conformance::FnFactory::new("memory", move || {
//!     let db = db.clone();
//!     async move { Ok(Arc::new(db) as Arc<dyn KvStore>) }
//! });
//! let report = conformance::run_all(factory).await;
//! println!("{report}");
//! report.assert_passed();
//! # });
//! ```
//!
//! Every case uses fresh random dataset names, so runs never see each other's data, and checks
//! [`Capabilities`](chronon_core::Capabilities) rather than backend names.

#![deny(missing_docs)]

mod cases;
pub mod faults;
pub mod launch;
pub mod resources;
mod runner;

pub use cases::{all_cases, LOAD_CASES};
pub use runner::{
    run_all, run_with, Case, CaseFn, CaseResult, Ctx, FnFactory, Report, RunOptions, StoreFactory,
};

#[doc(no_inline)]
pub use chronon_core::KvStore;
