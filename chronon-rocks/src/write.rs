//! Writes: `multi_put` (one `WriteBatch` per call, each dataset's rows in key order) and
//! `bulk_put` (SST files and ingestion, in [`crate::ingest`]).

use chronon_core::batch::PutBatch;
use chronon_core::{BulkPutOptions, BulkPutReport, BulkSource, DatasetKind, KvError, PutRequest};
use rocksdb::WriteBatch;

use crate::client::{capabilities, Client, Database};
use crate::config::BACKEND;
use crate::error::map_error;
use crate::{ingest, layout};

/// Writes every valid request in one `WriteBatch`; on timeout every request gets the timeout
/// error (the write may still land, but it was not acknowledged).
pub(crate) async fn multi_put(
    client: &Client,
    requests: Vec<PutRequest>,
) -> Vec<Result<(), KvError>> {
    if requests.is_empty() {
        return Vec::new();
    }
    let target = requests[0].dataset.clone();
    let batch = PutBatch::new(requests, &capabilities());
    if batch.pending().next().is_none() {
        return batch.finish(BACKEND);
    }
    let standby = batch.standby();
    let timeout = client.options().timeout;
    match client
        .blocking_answer_first("multi_put", &target, timeout, move |database| {
            let (results, requests) =
                multi_put_blocking(database, batch).finish_and_release(BACKEND);
            (Ok(results), requests)
        })
        .await
    {
        Ok(results) => results,
        Err(e) => standby.fail(&e),
    }
}

/// Loads `rows` into `dataset` through RocksDB's native path: sorted SST files, ingested.
pub(crate) async fn bulk_put(
    client: &Client,
    dataset: &str,
    rows: BulkSource<'_>,
    options: BulkPutOptions,
) -> Result<BulkPutReport, KvError> {
    ingest::bulk_put(client, dataset, rows, options).await
}

fn multi_put_blocking(database: &Database, mut batch: PutBatch) -> PutBatch {
    let mut wb = WriteBatch::default();
    let mut written = Vec::new();
    // One buffer for every snapshot row's stored value: `put_cf` copies it into the batch.
    let mut stored = Vec::new();
    for mut idxs in batch.pending_groups() {
        let dataset = batch.get(idxs[0]).dataset;
        let (props, cf) = match database.dataset(dataset) {
            Ok(found) => found,
            Err(e) => {
                let dataset = dataset.to_string();
                batch.fail_dataset(&dataset, &e);
                continue;
            }
        };
        written.reserve(idxs.len());
        match props.kind {
            DatasetKind::Snapshot => {
                layout::sort_in_key_order(&mut idxs, |i| batch.get(i).key);
                for i in idxs {
                    let p = batch.get(i);
                    layout::snapshot_value_into(&mut stored, p.ts, p.value);
                    wb.put_cf(&cf, p.key, &stored);
                    written.push(i);
                }
            }
            DatasetKind::TimeSeries => {
                let mut keyed: Vec<(Vec<u8>, usize)> = idxs
                    .into_iter()
                    .map(|i| {
                        let p = batch.get(i);
                        (layout::version_key(p.key, p.ts), i)
                    })
                    .collect();
                // As `layout::sort_in_key_order` does, on the encoded version keys (stable: the
                // last put of a version wins).
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                for (key, i) in keyed {
                    wb.put_cf(&cf, key, batch.get(i).value);
                    written.push(i);
                }
            }
        }
    }
    if written.is_empty() {
        return batch;
    }
    let outcome = database
        .db
        .write_opt(wb, &database.write_opts)
        .map_err(|e| map_error(e, database.context("multi_put")));
    for i in written {
        batch.answer(i, outcome.clone());
    }
    batch
}
