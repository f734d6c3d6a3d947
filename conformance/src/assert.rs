//! The one call an adapter's `tests/conformance.rs` makes: run the suite, print the report, and
//! fail the test with every failure listed.

use std::sync::Arc;
use std::time::Instant;

use crate::factory::StoreFactory;
use crate::report::Report;
use crate::runner::{run_with, RunOptions, CASES_ENV};

/// The fewest cases a run without a filter must report; fewer means cases went missing from the
/// registry (the contract documents 77).
pub const MIN_FULL_RUN: usize = 40;

/// Runs every case of the suite against `factory`'s backend (only those matching
/// `CHRONON_CASES` when it is set), prints the report, and panics with the failures listed.
///
/// It also panics when the run proves too little: without a filter, when fewer than
/// [`MIN_FULL_RUN`] cases ran; with one, when the filter matched no case.
///
/// ```
/// use chronon_core::{KvError, MemoryStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = MemoryStore::new(); // clones share data, like clients of one server
/// conformance::assert_conformance(conformance::FnFactory::new("memory", move || {
///     let db = db.clone();
///     async move { Ok::<_, KvError>(db) }
/// }))
/// .await;
/// # });
/// ```
pub async fn assert_conformance(factory: impl StoreFactory + 'static) {
    assert_conformance_with(factory, RunOptions::default()).await
}

/// [`assert_conformance`] with explicit options (a longer case timeout for a slow emulator, for
/// example). `options.filter` plays the part of `CHRONON_CASES`.
pub async fn assert_conformance_with(factory: impl StoreFactory + 'static, options: RunOptions) {
    let filter = options.filter.clone();
    let started = Instant::now();
    let report = run_with(Arc::new(factory), crate::all_cases(), options).await;
    println!("{report}");
    println!(
        "suite took {:.1} s; slowest cases: {}",
        started.elapsed().as_secs_f64(),
        slowest(&report, 5)
    );
    if let Err(why) = verdict(&report, &filter) {
        panic!("{why}");
    }
}

/// `Err` with what is wrong when `report` (run with `filter`) must fail the test.
fn verdict(report: &Report, filter: &[String]) -> Result<(), String> {
    if filter.is_empty() && report.cases.len() < MIN_FULL_RUN {
        return Err(format!(
            "only {} cases ran on {}; a full run has at least {MIN_FULL_RUN}",
            report.cases.len(),
            report.backend
        ));
    }
    if !filter.is_empty() && report.cases.is_empty() {
        return Err(format!(
            "{CASES_ENV} (filter {filter:?}) matched no case of the suite; \
             use parts of case names such as ttl or list"
        ));
    }
    if !report.passed() {
        return Err(report.to_string());
    }
    Ok(())
}

/// The `n` slowest cases as `name (ms)`, slowest first.
fn slowest(report: &Report, n: usize) -> String {
    let mut cases: Vec<_> = report.cases.iter().collect();
    cases.sort_by_key(|c| std::cmp::Reverse(c.millis));
    cases
        .iter()
        .take(n)
        .map(|c| format!("{} ({} ms)", c.name, c.millis))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CaseResult;

    fn report(passing: usize, failing: usize) -> Report {
        let case = |failure: Option<String>| CaseResult {
            section: "datasets",
            name: "some_case",
            failure,
            too_slow: false,
            retries: 0,
            note: None,
            millis: 1,
        };
        let mut cases: Vec<CaseResult> = (0..passing).map(|_| case(None)).collect();
        cases.extend((0..failing).map(|_| case(Some("wrong".into()))));
        Report {
            backend: "test".into(),
            cases,
        }
    }

    #[test]
    fn a_full_run_must_have_enough_cases() {
        assert!(verdict(&report(MIN_FULL_RUN, 0), &[]).is_ok());
        assert!(verdict(&report(3, 0), &[]).is_err());
    }

    #[test]
    fn a_filtered_run_needs_one_match_only() {
        let filter = vec!["ttl".to_string()];
        assert!(verdict(&report(3, 0), &filter).is_ok());
        let nothing = verdict(&report(0, 0), &filter).unwrap_err();
        assert!(nothing.contains("matched no case"), "{nothing}");
    }

    #[test]
    fn failures_are_listed() {
        let why = verdict(&report(MIN_FULL_RUN, 1), &[]).unwrap_err();
        assert!(why.contains("FAILED datasets::some_case: wrong"), "{why}");
    }
}
