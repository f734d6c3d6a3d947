//! The suite proves itself: each deliberately broken store (a `MemoryStore` wrapper with one
//! plausible adapter bug, `store.rs`) must be caught by the case that names its flaw, the
//! wrapper without a bug must pass everything, and a slow but correct store must pass with its
//! retries counted.
//!
//! Writing a case for a new clause? Add a `Flaw` that breaks exactly that clause the way a real
//! adapter would, and a test here asserting the new case catches it (conformance/README.md,
//! "Proving a new case").

mod get;
mod put;
mod store;

use std::sync::Arc;

use chronon_core::{KvError, MemoryStore};
use store::{Broken, Flaw, Shared};

fn factory(flaw: Flaw) -> impl conformance::StoreFactory + 'static {
    let db = MemoryStore::new();
    let shared = Shared::default();
    let calls = shared.calls.clone();
    conformance::FnFactory::new(format!("{flaw:?}"), move || {
        let inner = if flaw == Flaw::ForgetsAcrossClients {
            MemoryStore::new()
        } else {
            db.clone()
        };
        let shared = shared.clone();
        async move { Ok::<_, KvError>(Broken::new(inner, flaw, shared)) }
    })
    .with_call_counter(move || {
        let calls = calls.clone();
        async move { Some(calls.load(std::sync::atomic::Ordering::Relaxed)) }
    })
}

/// The whole suite against `flaw`.
async fn full_report(flaw: Flaw) -> conformance::Report {
    let options = conformance::RunOptions {
        filter: Vec::new(),
        ..Default::default()
    };
    conformance::run_with(Arc::new(factory(flaw)), conformance::all_cases(), options).await
}

/// Only the case named `by`, against `flaw` (the new flaws: one case is enough to prove, and
/// running the whole suite 20 more times would cost CI minutes).
async fn named_case_report(flaw: Flaw, by: &str) -> conformance::Report {
    let cases: Vec<_> = conformance::all_cases()
        .into_iter()
        .filter(|c| c.name == by)
        .collect();
    assert_eq!(cases.len(), 1, "no case named {by}");
    let options = conformance::RunOptions {
        filter: Vec::new(),
        ..Default::default()
    };
    conformance::run_with(Arc::new(factory(flaw)), cases, options).await
}

fn assert_failed(report: &conformance::Report, flaw: Flaw, by: &str) {
    let failed: Vec<&str> = report.failures().iter().map(|c| c.name).collect();
    println!("{flaw:?} caught by {failed:?}");
    for c in report.failures() {
        println!("  {}: {}", c.name, c.failure.as_deref().unwrap_or_default());
    }
    assert!(
        failed.contains(&by),
        "{flaw:?} not caught by {by}; caught by {failed:?}"
    );
    assert!(
        report.too_slow().is_empty(),
        "{flaw:?} reported as too slow instead of wrong"
    );
}

async fn assert_caught(flaw: Flaw, by: &str) {
    assert_failed(&full_report(flaw).await, flaw, by);
}

async fn assert_caught_by(flaw: Flaw, by: &str) {
    assert_failed(&named_case_report(flaw, by).await, flaw, by);
}

macro_rules! caught {
    ($($test:ident: $flaw:ident by $case:literal, whole suite: $whole:literal;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                if $whole {
                    assert_caught(Flaw::$flaw, $case).await;
                } else {
                    assert_caught_by(Flaw::$flaw, $case).await;
                }
            }
        )*
    };
}

caught! {
    catches_ignored_start_ts: IgnoresStartTs by "range_bounds_inclusive", whole suite: true;
    catches_newest_first_ranges: NewestFirst by "range_returns_versions_oldest_first", whole suite: true;
    catches_dropped_last_request: DropsLastRequest by "responses_in_request_order", whole suite: true;
    catches_mangled_zero_bytes: ManglesZeroBytes by "binary_bytes_round_trip", whole suite: true;
    catches_whole_batch_failure: FailsWholeBatch by "results_one_per_request_in_order", whole suite: true;
    catches_read_time_timestamps: ReportsReadTime by "stored_ts_returned_not_read_time", whole suite: true;
    catches_ignored_ttl: IgnoresTtl by "ttl_hides_expired_latest", whole suite: true;
    catches_list_stopping_early: ListStopsAfterFirstPage by "paging_visits_every_key_once", whole suite: true;
    catches_data_lost_across_clients: ForgetsAcrossClients by "new_client_sees_writes", whole suite: true;
    catches_unenforced_value_limit: AcceptsOversizedValues by "value_one_byte_over_max_rejected", whole suite: true;
    // Sizes at the drivers' page and chunk limits.
    catches_range_without_second_page: RangeFirstPageOnly by "range_of_1500_versions", whole suite: false;
    catches_range_capped_at_10000: RangeStopsAt10000 by "range_of_12000_versions", whole suite: false;
    catches_lost_last_bulk_chunk: BulkDropsPartialChunk by "bulk_sizes_at_chunk_boundaries", whole suite: false;
    catches_lost_last_bulk_chunk_of_big_load: BulkDropsPartialChunk by "loads_100003_rows_with_progress", whole suite: false;
    catches_put_sending_one_chunk: PutDropsAfterFirstChunk by "put_batches_at_chunk_boundaries", whole suite: false;
    catches_get_chunk_off_by_one: GetLosesChunkBoundary by "get_batches_at_chunk_boundaries", whole suite: false;
    // Near-collisions under plausible mappings.
    catches_trimmed_keys: TrimsKeys by "keys_differing_at_edges_stay_apart", whole suite: false;
    catches_case_folded_keys: CaseFoldsKeys by "keys_differing_at_edges_stay_apart", whole suite: false;
    catches_lossy_utf8_keys: LossyUtf8Keys by "keys_differing_at_edges_stay_apart", whole suite: false;
    catches_c_string_keys: CutsTrailingNul by "keys_differing_at_edges_stay_apart", whole suite: false;
    catches_case_folded_datasets: CaseFoldsDatasets by "dataset_names_prefix_and_case_stay_apart", whole suite: false;
    catches_prefix_drop: DropDeletesPrefixed by "dataset_names_prefix_and_case_stay_apart", whole suite: false;
    catches_prefix_list: ListIncludesPrefixed by "dataset_names_prefix_and_case_stay_apart", whole suite: false;
    // Several clients over time.
    catches_client_read_cache: ReadCache by "write_after_read_across_clients", whole suite: false;
    catches_client_negative_cache: NegativeCache by "write_after_read_across_clients", whole suite: false;
    // Listings across expired data.
    catches_list_ending_on_empty_page: ListStopsOnEmptyPage by "list_pages_across_expired_runs", whole suite: false;
    catches_list_ending_on_short_page: ListStopsOnShortPage by "list_pages_across_expired_runs", whole suite: false;
    // Promptness.
    catches_round_trip_on_empty_batch: RoundTripOnEmptyBatch by "empty_batches_make_no_round_trip", whole suite: false;
}

/// The wrapper itself is sound: with no flaw it passes every case, and the promptness case
/// really counted (no "not counted" note).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn control_wrapper_passes_everything() {
    let report = full_report(Flaw::None).await;
    println!("{report}");
    report.assert_passed();
    let promptness = report
        .cases
        .iter()
        .find(|c| c.name == "empty_batches_make_no_round_trip")
        .expect("promptness case ran");
    assert!(promptness.note.is_none(), "{:?}", promptness.note);
    assert_eq!(report.retries(), 0);
}

/// Slow is not wrong: a store whose big calls time out passes once the suite retries them in
/// smaller batches, and the report counts the retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_store_passes_with_retries_counted() {
    let report = full_report(Flaw::SlowBigBatches).await;
    println!("{report}");
    report.assert_passed();
    assert!(report.retries() > 0, "no retries counted");
    let retried: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| c.retries > 0)
        .map(|c| c.name)
        .collect();
    for case in ["put_batch_of_10000", "range_of_12000_versions"] {
        assert!(retried.contains(&case), "{case} not retried: {retried:?}");
    }
}

#[test]
fn suite_has_unique_case_names() {
    let cases = conformance::all_cases();
    assert!(
        cases.len() >= conformance::MIN_FULL_RUN,
        "{} cases",
        cases.len()
    );
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "duplicate case names");
}
