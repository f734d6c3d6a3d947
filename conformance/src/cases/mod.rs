//! The cases, one per clause of `chronon-core/CONTRACT.md`, grouped by its sections. Each is a
//! plain `async fn(&Ctx)`.

use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use chronon_core::{GetResponse, KvError, TimedValue};

use crate::runner::{Case, CaseFn, Ctx};

mod bulk;
mod clients;
mod collisions;
mod concurrency;
mod datasets;
mod get;
mod helpers;
mod hostile;
mod keys;
mod list;
mod persistence;
mod put;
mod retry;
mod sizes;

pub(crate) use retry::create as retry_create;
pub use retry::TooSlow;

/// Batch and bulk sizes just below, at and just above the chunk sizes adapters and drivers use
/// (DynamoDB's 25 and 100, pipelines and cursors of 1,000).
pub(crate) const CHUNK_BOUNDARIES: [u64; 7] = [1, 25, 100, 101, 999, 1_000, 1_001];

/// A fixed base timestamp (2023-11-14) so cases do not depend on the clock, except TTL cases.
pub(crate) const T0: i64 = 1_700_000_000_000;

/// Bytes from anything byte-like.
pub(crate) fn b(v: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(v.as_ref())
}

/// The values of a response, or a failure naming the request.
pub(crate) fn ok_values(resp: &GetResponse) -> Result<Vec<TimedValue>> {
    resp.values.clone().map_err(|e| {
        anyhow!(
            "get of key {} in {} failed: {e}",
            chronon_core::key_preview(&resp.request.key),
            resp.request.dataset
        )
    })
}

/// `(value bytes, ts)` pairs, to compare with expectations.
pub(crate) fn pairs(values: &[TimedValue]) -> Vec<(Bytes, i64)> {
    values.iter().map(|v| (v.bytes.clone(), v.millis)).collect()
}

/// Checks that `result` failed with the error variant named `kind` (see [`KvError::kind`]).
pub(crate) fn expect_err<T: std::fmt::Debug>(
    result: &Result<T, KvError>,
    kind: &str,
    what: &str,
) -> Result<()> {
    match result {
        Err(e) if e.kind() == kind => Ok(()),
        Err(e) => bail!("{what}: expected {kind}, got {} ({e})", e.kind()),
        Ok(v) => bail!("{what}: expected {kind}, got Ok({v:?})"),
    }
}

/// Fails unless `result` is `Ok`, with `what` and the error in the message.
pub(crate) fn expect_ok<T>(result: Result<T, KvError>, what: &str) -> Result<T> {
    result.map_err(|e| anyhow!("{what}: {} error: {e}", e.kind()))
}

/// The cases that move 10,000 rows or more in all (`get_batch_of_10000`, `put_batch_of_10000`,
/// `loads_100003_rows_with_progress`, `unsorted_input_loads` (20,000), `is_idempotent` (5,000
/// twice), `range_of_12000_versions`, and the chunk-boundary cases (3,227 rows each, read back in
/// calls of 10)): seconds on an embedded store, minutes on an emulator such as SecantusDB. They
/// run one at a time after the other cases, with a longer timeout
/// ([`RunOptions::load_case_timeout`]).
/// `chronon compare --quick` leaves them out and says so in its report; every adapter's
/// `tests/conformance.rs` and `chronon check` run them.
///
/// [`RunOptions::load_case_timeout`]: crate::RunOptions::load_case_timeout
pub const LOAD_CASES: &[&str] = &[
    "get_batch_of_10000",
    "put_batch_of_10000",
    "loads_100003_rows_with_progress",
    "unsorted_input_loads",
    "is_idempotent",
    "range_of_12000_versions",
    "put_batches_at_chunk_boundaries",
    "get_batches_at_chunk_boundaries",
    "bulk_sizes_at_chunk_boundaries",
];

macro_rules! registry {
    ($( $section:literal : [ $( $(#[$excl:ident])? $module:ident :: $name:ident ),* $(,)? ] ),* $(,)?) => {
        /// Every case of the suite, in the order of `chronon-core/CONTRACT.md`.
        pub fn all_cases() -> Vec<Case> {
            let mut cases = Vec::new();
            $( $( {
                fn run<'a>(cx: &'a Ctx) -> futures::future::BoxFuture<'a, anyhow::Result<()>> {
                    Box::pin($module::$name(cx))
                }
                let run: CaseFn = run;
                cases.push(Case {
                    section: $section,
                    name: stringify!($name),
                    exclusive: registry!(@excl $($excl)?),
                    run,
                });
            } )* )*
            cases
        }
    };
    (@excl exclusive) => { true };
    (@excl) => { false };
}

registry! {
    "datasets": [
        datasets::valid_names_accepted,
        datasets::invalid_names_rejected_and_nothing_created,
        datasets::default_kind_from_streaming_suffix,
        datasets::explicit_kind_overrides_suffix,
        datasets::create_is_idempotent_and_keeps_data,
        datasets::create_with_other_kind_conflicts,
        datasets::ttl_hides_expired_latest,
        datasets::ttl_hides_expired_versions_in_ranges,
        datasets::ttl_hides_expired_in_list,
        datasets::drop_removes_dataset_and_data,
        datasets::missing_dataset_is_not_found,
        datasets::errors_name_the_dataset,
    ],
    "keys_values": [
        keys::binary_bytes_round_trip,
        keys::one_byte_key,
        keys::key_of_1024_bytes,
        keys::empty_key_rejected,
        keys::key_of_1025_bytes_rejected,
        keys::empty_value_allowed,
        keys::value_at_declared_max_accepted,
        keys::value_one_byte_over_max_rejected,
        keys::keys_sharing_a_prefix_stay_apart,
        keys::negative_and_huge_put_ts_rejected,
    ],
    "near_collisions": [
        collisions::keys_differing_at_edges_stay_apart,
        collisions::dataset_names_prefix_and_case_stay_apart,
    ],
    "multi_get": [
        get::empty_get_batch_returns_at_once,
        get::responses_in_request_order,
        get::duplicates_each_answered,
        get::missing_key_is_empty_not_error,
        get::missing_dataset_isolated,
        get::invalid_range_isolated,
        get::latest_only_returns_newest_version,
        get::range_returns_versions_oldest_first,
        get::range_bounds_inclusive,
        get::range_with_end_ts,
        get::stored_ts_returned_not_read_time,
        get::put_without_ts_gets_now,
        get::same_ts_replaces_that_version_only,
        get::snapshot_put_replaces_value,
        get::snapshot_range_filters_its_one_value,
        get::get_batch_of_10000,
    ],
    "multi_put": [
        put::empty_put_batch_returns_at_once,
        put::results_one_per_request_in_order,
        put::mixed_datasets_in_one_call,
        put::oversized_value_among_good_ones,
        put::invalid_key_among_good_ones,
        put::missing_dataset_among_good_ones,
        put::put_batch_of_10000,
    ],
    "sizes": [
        sizes::range_of_1500_versions,
        sizes::range_of_12000_versions,
        sizes::put_batches_at_chunk_boundaries,
        sizes::get_batches_at_chunk_boundaries,
    ],
    "list": [
        list::paging_visits_every_key_once,
        list::returns_latest_value_per_key,
        list::empty_dataset_has_no_entries,
        list::list_of_missing_dataset_is_not_found,
        list::list_pages_across_expired_runs,
    ],
    "bulk_put": [
        bulk::loads_100003_rows_with_progress,
        bulk::bulk_sizes_at_chunk_boundaries,
        bulk::is_idempotent,
        bulk::unsorted_input_loads,
        bulk::time_series_versions_load,
    ],
    "helpers": [
        helpers::get_and_put_round_trip,
        helpers::string_round_trip,
        helpers::string_array_matches_chronon_bytes,
        helpers::string_array_round_trip,
    ],
    "concurrency": [
        concurrency::tasks_64_interleaved_lose_nothing,
        concurrency::concurrent_versions_of_one_key,
    ],
    "bad_input": [
        hostile::bad_input_keys_and_values_in_batches,
        hostile::bad_input_dataset_names,
        hostile::bad_input_keyword_dataset_names,
        hostile::bad_input_timestamps_and_ranges,
        hostile::bad_input_dropped_dataset,
    ],
    "clients": [
        #[exclusive] clients::write_after_read_across_clients,
    ],
    "promptness": [
        #[exclusive] clients::empty_batches_make_no_round_trip,
    ],
    "persistence": [
        #[exclusive] persistence::new_client_sees_writes,
        #[exclusive] persistence::kind_and_ttl_survive_new_client,
        #[exclusive] persistence::dropped_client_loses_nothing_acknowledged,
    ],
}

#[cfg(test)]
mod tests {
    /// `LOAD_CASES` names real cases: a renamed case would otherwise slip back into `--quick`.
    #[test]
    fn load_cases_are_cases_of_the_suite() {
        let names: Vec<&str> = super::all_cases().iter().map(|c| c.name).collect();
        for heavy in super::LOAD_CASES {
            assert!(names.contains(heavy), "{heavy} is not a case of the suite");
        }
    }
}
