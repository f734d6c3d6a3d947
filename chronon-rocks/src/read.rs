//! Reads: `multi_get` (latest values and ranges, one `batched_multi_get_cf` per snapshot dataset
//! and one bounded iterator per time-series request) and `list` (one page of a dataset's keys).

use std::sync::Arc;

use bytes::Bytes;
use chronon_core::batch::{now_millis, select_versions, GetBatch};
use chronon_core::{
    validate, DatasetKind, ErrorContext, GetRequest, GetResponse, KvError, ListCursor, ListPage,
    TimedValue,
};
use rocksdb::{BoundColumnFamily, ReadOptions};

use crate::client::{Client, Database};
use crate::config::BACKEND;
use crate::error::map_error;
use crate::layout;

/// Answers every request in one blocking call; on timeout every request gets the timeout error.
pub(crate) async fn multi_get(client: &Client, requests: Vec<GetRequest>) -> Vec<GetResponse> {
    if requests.is_empty() {
        return Vec::new();
    }
    let batch = GetBatch::new(requests);
    if batch.is_done() {
        return batch.finish(BACKEND);
    }
    // Kept to answer every request if the call times out (the batch is on the blocking pool).
    let standby = batch.standby();
    let target = standby.requests()[0].dataset.as_str();
    match client
        .blocking("multi_get", target, move |database| {
            Ok(multi_get_blocking(database, batch))
        })
        .await
    {
        Ok(batch) => {
            drop(standby);
            batch.finish(BACKEND)
        }
        Err(e) => standby.fail(&e),
    }
}

/// One page of `dataset`'s keys with their latest visible value, after `cursor`.
pub(crate) async fn list(
    client: &Client,
    dataset: &str,
    limit: usize,
    cursor: Option<ListCursor>,
) -> Result<ListPage, KvError> {
    validate::dataset_name(dataset)?;
    let ds = dataset.to_string();
    client
        .blocking("list", dataset, move |database| {
            list_blocking(database, &ds, limit, cursor)
        })
        .await
}

/// Answers the requests of one snapshot dataset with one `batched_multi_get_cf`, its keys
/// sorted here (see [`layout::sort_in_key_order`]).
fn get_snapshot(
    database: &Database,
    cf: &Arc<BoundColumnFamily<'_>>,
    batch: &mut GetBatch,
    mut idxs: Vec<usize>,
    visible_from: Option<i64>,
) {
    let requests = batch.requests();
    layout::sort_in_key_order(&mut idxs, |i| &requests[i].key);
    let found = database.db.batched_multi_get_cf_opt(
        cf,
        idxs.iter().map(|&i| &requests[i].key),
        /* sorted_input */ true,
        &ReadOptions::default(),
    );
    batch.answer_each(&idxs, found, |req, got| match got {
        Ok(None) => Ok(Vec::new()),
        Ok(Some(stored)) => match layout::split_snapshot_value(&stored) {
            // One stored version: the answer is it or nothing (requests are validated, so a
            // range has start <= end); no copy of a value that is not returned.
            Some((ts, value)) => {
                let visible = visible_from.is_none_or(|cut| ts >= cut) && req.contains_ts(ts);
                Ok(if visible {
                    vec![TimedValue::new(Bytes::copy_from_slice(value), ts)]
                } else {
                    Vec::new()
                })
            }
            None => Err(corrupt(get_context(database, req))),
        },
        Err(e) => Err(map_error(e, get_context(database, req))),
    });
}

/// What a read of one request is doing, for errors.
fn get_context<'a>(database: &'a Database, req: &'a GetRequest) -> ErrorContext<'a> {
    database
        .context("multi_get")
        .dataset(&req.dataset)
        .key(&req.key)
}

/// A stored row the layout cannot decode.
fn corrupt(ctx: ErrorContext<'_>) -> KvError {
    ctx.backend_error("stored row is not in chronon-rocks layout", None)
}

/// Answers one time-series request with one bounded iterator: `seek_to_last` for the latest
/// version, a forward scan for a range. The TTL cut-off is the lower bound, so expired versions
/// are never read.
fn get_time_series(
    database: &Database,
    cf: &Arc<BoundColumnFamily<'_>>,
    req: &GetRequest,
    visible_from: Option<i64>,
) -> Result<Vec<TimedValue>, KvError> {
    let prefix = layout::version_prefix(&req.key);
    let lower_ts = req
        .start_ts
        .unwrap_or(0)
        .max(visible_from.unwrap_or(0))
        .max(0);
    let upper = match req.end_ts.and_then(|e| e.checked_add(1)) {
        Some(end) if end <= lower_ts => return Ok(Vec::new()),
        Some(end) if end <= validate::MAX_TS => {
            let mut k = prefix.clone();
            k.extend_from_slice(&layout::ts_bytes(end));
            k
        }
        _ => layout::after_versions(&prefix),
    };
    let mut lower = prefix;
    lower.extend_from_slice(&layout::ts_bytes(lower_ts));
    let mut ro = ReadOptions::default();
    ro.set_iterate_lower_bound(lower);
    ro.set_iterate_upper_bound(upper);
    let mut it = database.db.raw_iterator_cf_opt(cf, ro);
    let mut versions = Vec::new();
    let decode = |k: &[u8], v: &[u8]| -> Result<TimedValue, KvError> {
        let ts = layout::version_key_ts(k).ok_or_else(|| corrupt(get_context(database, req)))?;
        Ok(TimedValue::new(Bytes::copy_from_slice(v), ts))
    };
    if req.start_ts.is_none() {
        it.seek_to_last();
        if let (Some(k), Some(v)) = (it.key(), it.value()) {
            versions.push(decode(k, v)?);
        }
    } else {
        it.seek_to_first();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            versions.push(decode(k, v)?);
            it.next();
        }
    }
    it.status()
        .map_err(|e| map_error(e, get_context(database, req)))?;
    Ok(select_versions(versions, req, visible_from))
}

fn multi_get_blocking(database: &Database, mut batch: GetBatch) -> GetBatch {
    let now = now_millis();
    for idxs in batch.pending_groups() {
        let dataset = &batch.requests()[idxs[0]].dataset;
        let (props, cf) = match database.dataset(dataset) {
            Ok(found) => found,
            Err(e) => {
                let dataset = dataset.clone();
                batch.fail_dataset(&dataset, &e);
                continue;
            }
        };
        let visible_from = props.visible_from(now);
        match props.kind {
            DatasetKind::Snapshot => get_snapshot(database, &cf, &mut batch, idxs, visible_from),
            DatasetKind::TimeSeries => {
                for &i in &idxs {
                    let answer = get_time_series(database, &cf, &batch.requests()[i], visible_from);
                    batch.answer(i, answer);
                }
            }
        }
    }
    batch
}

fn list_blocking(
    database: &Database,
    dataset: &str,
    limit: usize,
    cursor: Option<ListCursor>,
) -> Result<ListPage, KvError> {
    let (props, cf) = database.dataset(dataset)?;
    let visible_from = props.visible_from(now_millis());
    let visible = |ts: i64| visible_from.is_none_or(|cut| ts >= cut);
    let limit = limit.max(1);
    let mut ro = ReadOptions::default();
    if let Some(c) = &cursor {
        ro.set_iterate_lower_bound(match props.kind {
            // The raw key's immediate successor.
            DatasetKind::Snapshot => [c.0.as_ref(), &[0]].concat(),
            DatasetKind::TimeSeries => layout::after_versions(&layout::version_prefix(&c.0)),
        });
    }
    let ctx = database.context("list").dataset(dataset);
    let corrupt = || corrupt(ctx);
    let mut it = database.db.raw_iterator_cf_opt(&cf, ro);
    it.seek_to_first();
    let mut entries = Vec::new();
    let mut last_key: Option<Vec<u8>> = None;
    let mut more = false;
    match props.kind {
        DatasetKind::Snapshot => {
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                if entries.len() >= limit {
                    more = true;
                    break;
                }
                let (ts, value) = layout::split_snapshot_value(v).ok_or_else(corrupt)?;
                if visible(ts) {
                    entries.push((
                        Bytes::copy_from_slice(k),
                        TimedValue::new(Bytes::copy_from_slice(value), ts),
                    ));
                }
                last_key = Some(k.to_vec());
                it.next();
            }
        }
        DatasetKind::TimeSeries => {
            // Versions are ascending within a key, so a key's latest is its last row.
            let mut current: Option<(Vec<u8>, i64, Vec<u8>)> = None;
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                let (key, ts) = layout::split_version_key(k).ok_or_else(corrupt)?;
                match &mut current {
                    Some((ck, cts, cv)) if *ck == key => {
                        *cts = ts;
                        *cv = v.to_vec();
                    }
                    _ => {
                        if let Some((ck, cts, cv)) = current.take() {
                            if visible(cts) {
                                entries.push((Bytes::from(ck.clone()), TimedValue::new(cv, cts)));
                            }
                            last_key = Some(ck);
                        }
                        if entries.len() >= limit {
                            more = true;
                            break;
                        }
                        current = Some((key, ts, v.to_vec()));
                    }
                }
                it.next();
            }
            if let Some((ck, cts, cv)) = current.filter(|_| !more) {
                if visible(cts) {
                    entries.push((Bytes::from(ck.clone()), TimedValue::new(cv, cts)));
                }
                last_key = Some(ck);
            }
        }
    }
    it.status().map_err(|e| map_error(e, ctx))?;
    Ok(ListPage {
        entries,
        next: if more {
            last_key.map(|k| ListCursor(Bytes::from(k)))
        } else {
            None
        },
    })
}
