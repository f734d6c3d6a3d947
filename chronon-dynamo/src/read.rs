//! Reads: `multi_get` (`BatchGetItem` on `Snapshot` tables, `Query` on `TimeSeries` tables, for
//! latest values and ranges) and `list` (a consistent `Scan`, each key's newest visible version).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use bytes::Bytes;
use chronon_core::batch::{self, select_versions, GetBatch};
use chronon_core::{
    validate, DatasetKind, GetRequest, GetResponse, KvError, ListCursor, ListPage, TimedValue,
};
use futures::StreamExt;

use crate::client::{batch_target, DynamoClient};
use crate::config::SCHEME;
use crate::error::{build_failure, map_error};
use crate::layout::{self, GET_BATCH, KEY_ATTR, TS_ATTR};
use crate::retry::{until_processed, Round};

type Item = HashMap<String, AttributeValue>;
/// The answer for one query group: the request indexes it covers, and what DynamoDB returned.
type GroupAnswer = (Vec<usize>, Result<Vec<TimedValue>, KvError>);
/// What one `BatchGetItem` chunk returned, by the place of its first key among the distinct keys.
type ChunkAnswer = (usize, Result<Vec<(Bytes, TimedValue)>, KvError>);
/// Answers to requests, by their index in the batch.
type Answers = Vec<(usize, Result<Vec<TimedValue>, KvError>)>;

/// Answers every request of the batch within the data timeout, datasets in parallel.
pub(crate) async fn multi_get(c: &DynamoClient, requests: Vec<GetRequest>) -> Vec<GetResponse> {
    let mut batch = GetBatch::new(requests);
    if batch.is_done() {
        return batch.finish(SCHEME);
    }
    let groups = batch.pending_by_dataset();
    let target = batch_target(&groups);
    let work = async {
        let requests = batch.requests();
        let per_dataset = futures::future::join_all(
            groups
                .iter()
                .map(|(dataset, idxs)| get_dataset(c, dataset, idxs, requests)),
        )
        .await;
        Ok(per_dataset.into_iter().flatten().collect::<Vec<_>>())
    };
    match c.ctx("multi_get").dataset(&target).with_timeout(work).await {
        Ok(answers) => {
            for (i, r) in answers {
                batch.answer(i, r);
            }
        }
        Err(e) => batch.fail_pending(&e),
    }
    batch.finish(SCHEME)
}

/// One `BatchGetItem` of at most 100 distinct keys, with `UnprocessedKeys` resent.
async fn batch_get_chunk(
    c: &DynamoClient,
    dataset: &str,
    table: &str,
    keys: &[Bytes],
) -> Result<Vec<(Bytes, TimedValue)>, KvError> {
    let ctx = c.ctx("BatchGetItem").dataset(dataset);
    let request = KeysAndAttributes::builder()
        .set_keys(Some(
            keys.iter()
                .map(|k| layout::primary_key(DatasetKind::Snapshot, k, 0))
                .collect(),
        ))
        .consistent_read(true)
        .build()
        .map_err(|e| map_error(build_failure(e), ctx))?;
    let first = HashMap::from([(table.to_string(), request)]);
    let rounds = until_processed(
        first,
        &c.options.retry,
        ctx,
        |request_items: HashMap<String, KeysAndAttributes>| async move {
            let sent: usize = request_items.values().map(|k| k.keys().len()).sum();
            let out = c
                .limited(
                    c.sdk
                        .batch_get_item()
                        .set_request_items(Some(request_items))
                        .send(),
                )
                .await
                .map_err(|e| map_error(e, ctx))?;
            let items = out
                .responses
                .and_then(|mut r| r.remove(table))
                .unwrap_or_default();
            let unprocessed = out
                .unprocessed_keys
                .filter(|m| m.values().any(|k| !k.keys().is_empty()));
            let left: usize = unprocessed
                .as_ref()
                .map(|m| m.values().map(|k| k.keys().len()).sum())
                .unwrap_or(0);
            Ok(Round {
                output: items,
                unprocessed,
                progress: left < sent,
            })
        },
    )
    .await?;
    rounds
        .into_iter()
        .flatten()
        .map(|item| layout::read_item(item, dataset))
        .collect()
}

/// The versions of one key in a `TimeSeries` table through `Query`: the newest visible one
/// (`ScanIndexForward=false`, `Limit 1`) or all in `[max(start, ttl cut), end]`, oldest first,
/// following pagination to the end.
async fn query_versions(
    c: &DynamoClient,
    dataset: &str,
    table: &str,
    key: &Bytes,
    range: Option<(i64, Option<i64>)>,
    visible_from: Option<i64>,
) -> Result<Vec<TimedValue>, KvError> {
    let mut q = c
        .sdk
        .query()
        .table_name(table)
        .consistent_read(true)
        .expression_attribute_names("#k", KEY_ATTR)
        .expression_attribute_values(":k", layout::blob(key));
    match range {
        None => {
            q = q.scan_index_forward(false).limit(1);
            q = match visible_from {
                Some(cut) => q
                    .key_condition_expression("#k = :k AND #t >= :lo")
                    .expression_attribute_names("#t", TS_ATTR)
                    .expression_attribute_values(":lo", layout::num(cut)),
                None => q.key_condition_expression("#k = :k"),
            };
        }
        Some((start, end)) => {
            let lo = visible_from.map_or(start, |cut| start.max(cut));
            let hi = end.unwrap_or(i64::MAX);
            if lo > hi {
                return Ok(Vec::new());
            }
            // Oldest first is `Query`'s default order. An open range is `>=` alone: a
            // `BETWEEN` up to i64::MAX cost DynamoDB Local ~20 µs more CPU per query (7 %, and
            // a larger request to sign), measured against the raw SDK's `>=` query.
            q = q
                .expression_attribute_names("#t", TS_ATTR)
                .expression_attribute_values(":lo", layout::num(lo));
            q = match end {
                Some(_) => q
                    .key_condition_expression("#k = :k AND #t BETWEEN :lo AND :hi")
                    .expression_attribute_values(":hi", layout::num(hi)),
                None => q.key_condition_expression("#k = :k AND #t >= :lo"),
            };
        }
    }
    let mut out = Vec::new();
    let mut start_key: Option<Item> = None;
    loop {
        let page = c
            .limited(q.clone().set_exclusive_start_key(start_key.take()).send())
            .await
            .map_err(|e| map_error(e, c.ctx("Query").dataset(dataset)))?;
        for item in page.items.unwrap_or_default() {
            out.push(layout::read_item(item, dataset)?.1);
        }
        match page.last_evaluated_key {
            // A latest-only query asked for one item and has it (or nothing is left).
            Some(k) if range.is_some() && !k.is_empty() => start_key = Some(k),
            _ => break,
        }
    }
    out.sort_by_key(|v| v.millis);
    Ok(out)
}

/// Answers the requests `indexes` (all on `dataset`).
async fn get_dataset(
    c: &DynamoClient,
    dataset: &str,
    indexes: &[usize],
    requests: &[GetRequest],
) -> Answers {
    let props = match c.props(dataset).await {
        Ok(p) => p,
        Err(e) => return indexes.iter().map(|i| (*i, Err(e.clone()))).collect(),
    };
    let cut = batch::visible_from(&props);
    let table = c.table_name(dataset);
    let answers = match props.kind {
        DatasetKind::Snapshot => get_snapshot(c, dataset, &table, indexes, requests, cut).await,
        DatasetKind::TimeSeries => {
            get_time_series(c, dataset, &table, indexes, requests, cut).await
        }
    };
    c.forget_if_missing(dataset, &answers);
    answers
}

/// Snapshot reads: each distinct key once, in `BatchGetItem`s of 100 run concurrently.
async fn get_snapshot(
    c: &DynamoClient,
    dataset: &str,
    table: &str,
    indexes: &[usize],
    requests: &[GetRequest],
    cut: Option<i64>,
) -> Answers {
    // BatchGetItem rejects a request that names the same key twice: ask once per key. Each
    // request's slot is its key's place among the distinct keys, so the key is hashed once here
    // and once per item returned (DynamoDB answers a chunk's keys in any order).
    let mut place: HashMap<Bytes, usize> = HashMap::with_capacity(indexes.len());
    let mut keys: Vec<Bytes> = Vec::with_capacity(indexes.len());
    let slots: Vec<usize> = indexes
        .iter()
        .map(|i| {
            let key = &requests[*i].key;
            *place.entry(key.clone()).or_insert_with(|| {
                keys.push(key.clone());
                keys.len() - 1
            })
        })
        .collect();
    // Owned chunks: a stream of futures borrowing `keys` is not `Send` for every lifetime.
    let chunks: Vec<(usize, Vec<Bytes>)> = keys
        .chunks(GET_BATCH)
        .enumerate()
        .map(|(n, chunk)| (n * GET_BATCH, chunk.to_vec()))
        .collect();
    let results: Vec<ChunkAnswer> = futures::stream::iter(chunks)
        .map(|(first, chunk): (usize, Vec<Bytes>)| async move {
            (first, batch_get_chunk(c, dataset, table, &chunk).await)
        })
        .buffer_unordered(c.options.max_in_flight.max(1))
        .collect()
        .await;
    let mut found: Vec<Result<Option<TimedValue>, KvError>> = vec![Ok(None); keys.len()];
    for (first, result) in results {
        match result {
            Ok(items) => {
                for (k, v) in items {
                    if let Some(p) = place.get(&k) {
                        found[*p] = Ok(Some(v));
                    }
                }
            }
            Err(e) => {
                let last = (first + GET_BATCH).min(keys.len());
                found[first..last].fill(Err(e));
            }
        }
    }
    indexes
        .iter()
        .zip(slots)
        .map(|(i, slot)| {
            let answer = match &found[slot] {
                Ok(v) => Ok(select_versions(v.clone(), &requests[*i], cut)),
                Err(e) => Err(e.clone()),
            };
            (*i, answer)
        })
        .collect()
}

/// Time-series reads: one `Query` per distinct (key, range), run concurrently.
async fn get_time_series(
    c: &DynamoClient,
    dataset: &str,
    table: &str,
    indexes: &[usize],
    requests: &[GetRequest],
    cut: Option<i64>,
) -> Answers {
    // Identical requests share one query.
    let mut groups: HashMap<(Bytes, Option<i64>, Option<i64>), Vec<usize>> = HashMap::new();
    for i in indexes {
        let r = &requests[*i];
        groups
            .entry((r.key.clone(), r.start_ts, r.end_ts))
            .or_default()
            .push(*i);
    }
    let results: Vec<GroupAnswer> = futures::stream::iter(groups)
        .map(
            |((key, start, end), idxs): ((Bytes, Option<i64>, Option<i64>), Vec<usize>)| async move {
                let range = start.map(|s| (s, end));
                let versions = query_versions(c, dataset, table, &key, range, cut).await;
                (idxs, versions)
            },
        )
        .buffer_unordered(c.options.max_in_flight.max(1))
        .collect()
        .await;
    results
        .into_iter()
        .flat_map(|(idxs, result)| {
            idxs.into_iter().map(move |i| {
                let answer = match &result {
                    Ok(v) => Ok(select_versions(v.iter().cloned(), &requests[i], cut)),
                    Err(e) => Err(e.clone()),
                };
                (i, answer)
            })
        })
        .collect()
}

/// One page of `dataset`'s keys with their newest visible value, within the data timeout.
pub(crate) async fn list(
    c: &DynamoClient,
    dataset: &str,
    limit: usize,
    cursor: Option<ListCursor>,
) -> Result<ListPage, KvError> {
    validate::dataset_name(dataset)?;
    c.ctx("list")
        .dataset(dataset)
        .with_timeout(scan_page(c, dataset, limit, cursor))
        .await
}

/// Scans from the cursor until `limit` keys are complete (or the table ends).
async fn scan_page(
    c: &DynamoClient,
    dataset: &str,
    limit: usize,
    cursor: Option<ListCursor>,
) -> Result<ListPage, KvError> {
    let props = c.props(dataset).await?;
    let cut = batch::visible_from(&props);
    let table = c.table_name(dataset);
    let limit = limit.max(1);
    let mut start = match &cursor {
        Some(cur) => Some(layout::decode_cursor(cur, props.kind, dataset)?),
        None => None,
    };
    let mut entries: Vec<(Bytes, TimedValue)> = Vec::new();
    // The key being read: its newest version so far. All versions of a key are contiguous in
    // a Scan (one item collection, in sort key order), so a key is complete once the next
    // key shows up or the scan ends.
    let mut current: Option<(Bytes, TimedValue)> = None;
    let page_size = i32::try_from((limit + 1).min(1000)).unwrap_or(1000);
    loop {
        let page = c
            .limited(
                c.sdk
                    .scan()
                    .table_name(&table)
                    .consistent_read(true)
                    .limit(page_size)
                    .set_exclusive_start_key(start.take())
                    .send(),
            )
            .await;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                let err = map_error(e, c.ctx("Scan").dataset(dataset));
                if matches!(err, KvError::DatasetNotFound { .. }) {
                    c.forget(dataset);
                }
                return Err(err);
            }
        };
        for item in page.items.unwrap_or_default() {
            let (key, value) = layout::read_item(item, dataset)?;
            match &mut current {
                Some((k, newest)) if *k == key => {
                    if value.millis >= newest.millis {
                        *newest = value;
                    }
                }
                _ => {
                    if let Some((k, newest)) = current.take() {
                        let last_ts = newest.millis;
                        if cut.is_none_or(|c| newest.millis >= c) {
                            entries.push((k.clone(), newest));
                        }
                        if entries.len() >= limit {
                            // `key` proves there is more; continue after `k`'s last version.
                            return Ok(ListPage {
                                entries,
                                next: Some(layout::encode_cursor(props.kind, &k, last_ts)),
                            });
                        }
                    }
                    current = Some((key, value));
                }
            }
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    if let Some((k, newest)) = current {
        if cut.is_none_or(|c| newest.millis >= c) {
            entries.push((k, newest));
        }
    }
    Ok(ListPage {
        entries,
        next: None,
    })
}
