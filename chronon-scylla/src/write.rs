//! Writes: `multi_put`, one prepared `INSERT` per put, run concurrently (at most
//! [`ScyllaOptions::max_in_flight`](crate::ScyllaOptions::max_in_flight) at once per store).
//!
//! There is no multi-partition `BATCH`: it would route every write through one coordinator and
//! is slower, not faster. `bulk_put` is the contract's default (chunks of `multi_put` through
//! `chronon_core::bulk`), which already runs every put of a chunk concurrently.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use chronon_core::batch::{now_millis, PutBatch};
use chronon_core::{DatasetKind, KvError, PutRequest};

use crate::client::{run_until, Client, Dataset};
use crate::config::BACKEND;
use crate::cql;
use crate::error::map_error;

impl Client {
    /// `KvStore::multi_put`: one result per request, in order; puts still running when the
    /// data-call timeout passes are answered `Timeout`.
    pub(crate) async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        let mut batch = PutBatch::new(requests, &self.caps);
        let deadline = tokio::time::Instant::now() + self.options.timeout;
        let names: Vec<String> = batch.pending_by_dataset().into_keys().collect();
        if names.is_empty() {
            return batch.finish(BACKEND);
        }
        let datasets = self.datasets_for(names, "multi_put", deadline).await;
        for (name, ds) in &datasets {
            if let Err(e) = ds {
                batch.fail_dataset(name, e);
            }
        }
        // Two puts of the same version in one call would race when run concurrently; the last
        // one in the batch is the one that must win (as it does when applied in order), so only
        // it is sent and the earlier ones share its result.
        let mut jobs: Vec<(Arc<Dataset>, PutJob)> = Vec::new();
        let mut slots = Vec::new();
        for p in batch.pending() {
            let Some(Ok(ds)) = datasets.get(p.dataset) else {
                continue;
            };
            let version = (ds.props.kind == DatasetKind::TimeSeries).then_some(p.ts);
            slots.push((p.index, (p.dataset, p.key, version)));
            jobs.push((
                ds.clone(),
                PutJob {
                    index: p.index,
                    dataset: p.dataset.to_string(),
                    key: p.key.clone(),
                    value: p.value.clone(),
                    ts: p.ts,
                },
            ));
        }
        let (sent, aliases) = fold_duplicates(slots);
        let sent: HashSet<usize> = sent.into_iter().collect();
        jobs.retain(|(_, job)| sent.contains(&job.index));
        let done = run_until(
            jobs,
            self.options.max_in_flight,
            deadline,
            |(ds, job)| async move {
                let result = self.put_one(&ds, &job).await;
                if let Err(e) = &result {
                    self.note_error(&job.dataset, e);
                }
                (job.index, result)
            },
        )
        .await;
        let mut results: HashMap<usize, Result<(), KvError>> = done.into_iter().collect();
        share_results(&mut results, &aliases);
        for (i, r) in results {
            batch.answer(i, r);
        }
        let late: Vec<(usize, String)> = batch
            .pending()
            .map(|p| (p.index, p.dataset.to_string()))
            .collect();
        for (i, dataset) in late {
            let timeout = self.ctx("multi_put").dataset(&dataset).timeout_error();
            batch.answer(i, Err(timeout));
        }
        batch.finish(BACKEND)
    }

    async fn put_one(&self, ds: &Dataset, job: &PutJob) -> Result<(), KvError> {
        let ctx = self.ctx("multi_put").dataset(&job.dataset).key(&job.key);
        let _permit = self.permit(ctx).await?;
        let key: &[u8] = &job.key;
        let value: &[u8] = &job.value;
        let session = &self.session;
        let result = match ds.props.ttl_millis() {
            Some(ttl_ms) => {
                let ttl = cql::write_ttl_secs(ttl_ms, job.ts, now_millis());
                session
                    .execute_unpaged(&ds.insert, (key, job.ts, value, ttl))
                    .await
            }
            None => {
                session
                    .execute_unpaged(&ds.insert, (key, job.ts, value))
                    .await
            }
        };
        result.map(|_| ()).map_err(|e| map_error(e, ctx))
    }
}

/// A put that goes to the database (duplicates within one call are folded into the last one).
struct PutJob {
    index: usize,
    dataset: String,
    key: Bytes,
    value: Bytes,
    ts: i64,
}

/// Folds puts that write the same slot (dataset, key and, for a time series, version): returns
/// the indexes to send (the last put of each slot) and `(earlier, later)` pairs in input order,
/// each earlier put taking the result of the later one.
fn fold_duplicates<S: Eq + std::hash::Hash>(
    puts: Vec<(usize, S)>,
) -> (Vec<usize>, Vec<(usize, usize)>) {
    let mut last: HashMap<S, usize> = HashMap::new();
    let mut aliases = Vec::new();
    for (index, slot) in puts {
        if let Some(previous) = last.insert(slot, index) {
            aliases.push((previous, index));
        }
    }
    let mut sent: Vec<usize> = last.into_values().collect();
    sent.sort_unstable();
    (sent, aliases)
}

/// Gives each folded put the result of the put that was sent for it (following chains
/// `a -> b -> c` back from the end). A put whose representative has no result yet stays unanswered.
fn share_results<R: Clone>(results: &mut HashMap<usize, R>, aliases: &[(usize, usize)]) {
    for (earlier, later) in aliases.iter().rev() {
        if let Some(r) = results.get(later).cloned() {
            results.insert(*earlier, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_puts_fold_into_the_last_one() {
        // Slots: a, b, a, c, a, b
        let puts = vec![(0, "a"), (1, "b"), (2, "a"), (3, "c"), (4, "a"), (5, "b")];
        let (sent, aliases) = fold_duplicates(puts);
        assert_eq!(
            sent,
            vec![3, 4, 5],
            "only the last put of each slot is sent"
        );
        assert_eq!(aliases, vec![(0, 2), (2, 4), (1, 5)], "in input order");
        let mut results: HashMap<usize, Result<(), &str>> =
            [(3, Ok(())), (4, Err("boom")), (5, Ok(()))]
                .into_iter()
                .collect();
        share_results(&mut results, &aliases);
        assert_eq!(results.len(), 6, "every put answered");
        assert_eq!(
            results[&0],
            Err("boom"),
            "chain 0 -> 2 -> 4 takes 4's result"
        );
        assert_eq!(results[&2], Err("boom"));
        assert_eq!(results[&1], Ok(()));
    }

    #[test]
    fn folding_keeps_distinct_slots_and_leaves_timed_out_ones_unanswered() {
        let (sent, aliases) =
            fold_duplicates(vec![(0, ("ds", 1)), (1, ("ds", 2)), (2, ("other", 1))]);
        assert_eq!(sent, vec![0, 1, 2]);
        assert!(aliases.is_empty());
        let (sent, aliases) = fold_duplicates(vec![(7, "k"), (9, "k")]);
        assert_eq!(sent, vec![9]);
        let mut results: HashMap<usize, Result<(), ()>> = HashMap::new(); // 9 did not finish
        share_results(&mut results, &aliases);
        assert!(
            results.is_empty(),
            "7 stays pending and is answered Timeout by the caller"
        );
    }
}
