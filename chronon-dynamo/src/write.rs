//! Writes: `multi_put` (`BatchWriteItem`s of 25 run concurrently, `UnprocessedItems` resent) and
//! `bulk_put` (slices of rows written by `multi_put`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{PutRequest as DdbPutRequest, WriteRequest};
use bytes::Bytes;
use chronon_core::batch::PutBatch;
use chronon_core::bulk::bulk_put_chunked;
use chronon_core::{
    validate, BulkPutOptions, BulkPutReport, BulkRow, BulkSource, DatasetKind, KvError, PutRequest,
};
use futures::StreamExt;

use crate::client::{batch_target, DynamoClient};
use crate::config::SCHEME;
use crate::error::{build_failure, map_error};
use crate::layout::{self, PUT_BATCH};
use crate::retry::{until_processed, Round};

/// One valid put, owned, so the work can outlive the borrow of the batch.
#[derive(Debug, Clone)]
struct OwnedPut {
    index: usize,
    key: Bytes,
    value: Bytes,
    ts: i64,
}

/// Answers to puts, by their index in the batch.
type Answers = Vec<(usize, Result<(), KvError>)>;

/// Writes every valid put of the batch within the data timeout, datasets in parallel.
pub(crate) async fn multi_put(
    c: &DynamoClient,
    requests: Vec<PutRequest>,
) -> Vec<Result<(), KvError>> {
    let mut batch = PutBatch::new(requests, &c.caps);
    let groups = batch.pending_by_dataset();
    if groups.is_empty() {
        return batch.finish(SCHEME);
    }
    let target = batch_target(&groups);
    let work: Vec<(String, Vec<OwnedPut>)> = groups
        .iter()
        .map(|(dataset, idxs)| {
            let puts = idxs
                .iter()
                .map(|i| {
                    let p = batch.get(*i);
                    OwnedPut {
                        index: *i,
                        key: p.key.clone(),
                        value: p.value.clone(),
                        ts: p.ts,
                    }
                })
                .collect();
            (dataset.clone(), puts)
        })
        .collect();
    let run = async {
        let per_dataset = futures::future::join_all(
            work.into_iter()
                .map(|(dataset, puts)| async move { put_dataset(c, &dataset, puts).await }),
        )
        .await;
        Ok(per_dataset.into_iter().flatten().collect::<Vec<_>>())
    };
    match c.ctx("multi_put").dataset(&target).with_timeout(run).await {
        Ok(answers) => {
            for (i, r) in answers {
                batch.answer(i, r);
            }
        }
        Err(e) => batch.fail_pending(&e),
    }
    batch.finish(SCHEME)
}

/// One `BatchWriteItem` of at most 25 items with distinct keys, `UnprocessedItems` resent.
async fn write_chunk(
    c: &DynamoClient,
    dataset: &str,
    table: &str,
    writes: Vec<WriteRequest>,
) -> Result<(), KvError> {
    let ctx = c.ctx("BatchWriteItem").dataset(dataset);
    let first = HashMap::from([(table.to_string(), writes)]);
    until_processed(
        first,
        &c.options.retry,
        ctx,
        |request_items: HashMap<String, Vec<WriteRequest>>| async move {
            let sent: usize = request_items.values().map(Vec::len).sum();
            let out = c
                .limited(
                    c.sdk
                        .batch_write_item()
                        .set_request_items(Some(request_items))
                        .send(),
                )
                .await
                .map_err(|e| map_error(e, ctx))?;
            let unprocessed = out
                .unprocessed_items
                .filter(|m| m.values().any(|w| !w.is_empty()));
            let left: usize = unprocessed
                .as_ref()
                .map(|m| m.values().map(Vec::len).sum())
                .unwrap_or(0);
            Ok(Round {
                output: (),
                unprocessed,
                progress: left < sent,
            })
        },
    )
    .await
    .map(|_| ())
}

/// Puts of the same item (same key, and same ts on a `TimeSeries` table) merged, last one wins,
/// each with the indexes of every put it carries.
fn merge_same_items(kind: DatasetKind, puts: Vec<OwnedPut>) -> Vec<(OwnedPut, Vec<usize>)> {
    let mut position: HashMap<(Bytes, i64), usize> = HashMap::new();
    let mut unique: Vec<(OwnedPut, Vec<usize>)> = Vec::new();
    for p in puts {
        let ts = if kind == DatasetKind::TimeSeries {
            p.ts
        } else {
            0
        };
        match position.get(&(p.key.clone(), ts)) {
            Some(&at) => {
                unique[at].1.push(p.index);
                unique[at].0 = p;
            }
            None => {
                position.insert((p.key.clone(), ts), unique.len());
                let index = p.index;
                unique.push((p, vec![index]));
            }
        }
    }
    unique
}

/// Writes the puts of one dataset. Puts of the same item are merged, last one wins, because
/// `BatchWriteItem` rejects a request naming one item twice and concurrent chunks have no order;
/// every merged put gets the result of the write that carried it.
async fn put_dataset(c: &DynamoClient, dataset: &str, puts: Vec<OwnedPut>) -> Answers {
    let props = match c.props(dataset).await {
        Ok(p) => p,
        Err(e) => {
            return puts
                .into_iter()
                .map(|p| (p.index, Err(e.clone())))
                .collect()
        }
    };
    let ttl = props.ttl_millis();
    let table = c.table_name(dataset);
    let unique = merge_same_items(props.kind, puts);
    let mut chunks: Vec<(Vec<WriteRequest>, Vec<usize>)> = Vec::new();
    for group in unique.chunks(PUT_BATCH) {
        let mut writes = Vec::with_capacity(group.len());
        let mut idxs = Vec::new();
        for (p, indexes) in group {
            let item = layout::item(&p.key, &p.value, p.ts, ttl);
            match DdbPutRequest::builder().set_item(Some(item)).build() {
                Ok(put) => {
                    writes.push(WriteRequest::builder().put_request(put).build());
                    idxs.extend_from_slice(indexes);
                }
                Err(e) => {
                    // Only possible without an item, which `layout::item` always gives.
                    let err = map_error(build_failure(e), c.ctx("BatchWriteItem").dataset(dataset));
                    return unique
                        .iter()
                        .flat_map(|(_, idxs)| idxs.iter().map(|i| (*i, Err(err.clone()))))
                        .collect();
                }
            }
        }
        chunks.push((writes, idxs));
    }
    let results: Vec<(Vec<usize>, Result<(), KvError>)> = futures::stream::iter(chunks)
        .map(|(writes, idxs): (Vec<WriteRequest>, Vec<usize>)| {
            let table = table.as_str();
            async move { (idxs, write_chunk(c, dataset, table, writes).await) }
        })
        .buffer_unordered(c.options.max_in_flight.max(1))
        .collect()
        .await;
    let answers: Answers = results
        .into_iter()
        .flat_map(|(idxs, r)| idxs.into_iter().map(move |i| (i, r.clone())))
        .collect();
    c.forget_if_missing(dataset, &answers);
    answers
}

/// Parallel `BatchWriteItem`s: rows are pulled in slices of `25 * max_in_flight` and each slice
/// is written by `multi_put` (its chunks of 25 run concurrently), a few slices at a time, through
/// the core's bulk loop. Idempotent: a row rewrites the same item. Chronon's JVM store uses S3
/// `ImportTable` instead; see the README for how that would slot in.
pub(crate) async fn bulk_put(
    c: &DynamoClient,
    dataset: &str,
    rows: BulkSource<'_>,
    options: BulkPutOptions,
) -> Result<BulkPutReport, KvError> {
    validate::dataset_name(dataset)?;
    // A missing dataset fails the load before any row is pulled.
    c.ctx("bulk_put")
        .dataset(dataset)
        .with_timeout(c.props(dataset))
        .await?;
    let slice = PUT_BATCH * c.options.max_in_flight.max(1);
    bulk_put_chunked(dataset, rows, &options, slice, |chunk: Vec<BulkRow>| {
        let puts: Vec<PutRequest> = chunk
            .into_iter()
            .map(|r| PutRequest::new(dataset, r.key, r.value, Some(r.ts)))
            .collect();
        async move {
            for result in multi_put(c, puts).await {
                result?;
            }
            Ok(())
        }
    })
    .await
}
