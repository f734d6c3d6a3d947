//! Reads: `multi_get` (latest values and time ranges, batched into `$in` queries per dataset)
//! and `list` (pages in key order along the `{keyBytes: 1, ts: -1}` index).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use chronon_core::batch::{self, GetBatch};
use chronon_core::{
    validate, DatasetKind, DatasetProps, GetRequest, GetResponse, KvError, ListCursor, ListPage,
    TimedValue,
};
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::options::Hint;

use crate::client::Client;
use crate::error::BACKEND;
use crate::layout::{self, KEY, TS, VALUE};

/// The answer to one request, by index.
type Answers<T> = Vec<(usize, Result<T, KvError>)>;
/// Key → its versions, ascending by ts.
type Versions = HashMap<Bytes, Vec<TimedValue>>;
type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Answers every request: the datasets resolved once (through the cache), then each dataset's
/// requests in chunks, a failed chunk failing only its own requests.
pub(crate) async fn multi_get(client: &Client, requests: Vec<GetRequest>) -> Vec<GetResponse> {
    let mut batch = GetBatch::new(requests);
    let groups: BTreeMap<String, Vec<(usize, GetRequest)>> = batch
        .pending_by_dataset()
        .into_iter()
        .map(|(d, idx)| {
            let reqs = idx
                .into_iter()
                .map(|i| (i, batch.requests()[i].clone()))
                .collect();
            (d, reqs)
        })
        .collect();
    if groups.is_empty() {
        return batch.finish(BACKEND);
    }
    let target = groups.keys().cloned().collect::<Vec<_>>().join(",");
    match client
        .timed("multi_get", &target, get_all(client, groups))
        .await
    {
        Ok(answers) => answers.into_iter().for_each(|(i, r)| batch.answer(i, r)),
        Err(e) => batch.fail_pending(&e),
    }
    batch.finish(BACKEND)
}

/// One page of `dataset`'s keys, each with its latest visible version, after `cursor`.
pub(crate) async fn list(
    client: &Client,
    dataset: &str,
    limit: usize,
    cursor: Option<ListCursor>,
) -> Result<ListPage, KvError> {
    validate::dataset_name(dataset)?;
    let limit = limit.max(1);
    client
        .timed("list", dataset, async {
            let props = client
                .resolve(&[dataset])
                .await?
                .remove(dataset)
                .ok_or_else(|| KvError::not_found(dataset))?;
            let cut = batch::visible_from(&props);
            // Pages walk the `{keyBytes: 1, ts: -1}` index from an index bound: `min` with
            // `ts: MinKey` sits after every version of the cursor key (MinKey sorts last in a
            // descending field), so the next page starts at the next key, each key's newest
            // version first. A `{keyBytes: {$gt: cursor}}` filter would be equivalent on MongoDB
            // (BinData compares by length, then subtype, then bytes, in filters and sorts
            // alike) but SecantusDB compares BinData in `$gt` bytewise while sorting by length
            // first, which skips keys (README, "SecantusDB notes"); index bounds are exact on both.
            let coll = client.raw(dataset);
            let mut find = coll
                .find(doc! {})
                .hint(Hint::Keys(doc! { KEY: 1, TS: -1 }))
                .sort(doc! { KEY: 1, TS: -1 })
                .projection(doc! { "_id": 0, KEY: 1, VALUE: 1, TS: 1 })
                .batch_size(u32::try_from(limit + 1).unwrap_or(u32::MAX));
            if let Some(c) = &cursor {
                find = find.min(doc! { KEY: layout::bin(&c.0), TS: Bson::MinKey });
            }
            let mut docs = find.await.map_err(|e| client.err(e, "list", dataset))?;
            let mut entries = Vec::new();
            let mut last_key: Option<Bytes> = None;
            let mut more = false;
            while docs
                .advance()
                .await
                .map_err(|e| client.err(e, "list", dataset))?
            {
                let (key, tv) = layout::parse_doc(docs.current(), KEY).map_err(|m| {
                    KvError::backend_msg(BACKEND, format!("list on dataset {dataset:?}"), m)
                })?;
                if last_key.as_ref() == Some(&key) {
                    continue; // an older version of the key just handled
                }
                if entries.len() >= limit {
                    more = true;
                    break;
                }
                if cut.is_none_or(|c| tv.millis >= c) {
                    entries.push((key.clone(), tv));
                }
                last_key = Some(key);
            }
            Ok(ListPage {
                entries,
                next: if more { last_key.map(ListCursor) } else { None },
            })
        })
        .await
}

/// Reads the given keys of one dataset in chunks of `get_batch_size`, one query per chunk.
/// `latest`: newest version per key (one document per key in a `Snapshot`; an aggregation
/// that keeps each key's first document in `{keyBytes: 1, ts: -1}` order in a `TimeSeries`).
/// Otherwise every version with `ts` in `[lo, hi]`.
async fn read_keys(
    client: &Client,
    dataset: &str,
    kind: DatasetKind,
    keys: Vec<Bytes>,
    latest: bool,
    lo: Option<i64>,
    hi: Option<i64>,
) -> Vec<(Vec<Bytes>, Result<Versions, KvError>)> {
    let size = client.options.get_batch_size;
    batch::for_each_chunk(keys, size, client.options.concurrency, |chunk| async move {
        let r = read_chunk(client, dataset, kind, &chunk, latest, lo, hi).await;
        (chunk, r)
    })
    .await
}

async fn read_chunk(
    client: &Client,
    dataset: &str,
    kind: DatasetKind,
    keys: &[Bytes],
    latest: bool,
    lo: Option<i64>,
    hi: Option<i64>,
) -> Result<Versions, KvError> {
    let in_list: Vec<Bson> = keys.iter().map(|k| layout::bin(k)).collect();
    let mut filter = doc! { KEY: { "$in": in_list } };
    let mut ts_range = Document::new();
    if let Some(lo) = lo {
        ts_range.insert("$gte", lo);
    }
    if let Some(hi) = hi {
        ts_range.insert("$lte", hi);
    }
    if !ts_range.is_empty() {
        filter.insert(TS, ts_range);
    }
    let coll = client.raw(dataset);
    let op = "multi_get";
    let group_latest = latest && kind == DatasetKind::TimeSeries;
    let mut cursor = if group_latest {
        let pipeline = vec![
            doc! { "$match": filter },
            doc! { "$sort": { KEY: 1, TS: -1 } },
            doc! { "$group": { "_id": format!("${KEY}"), TS: { "$first": format!("${TS}") }, VALUE: { "$first": format!("${VALUE}") } } },
        ];
        coll.aggregate(pipeline)
            .batch_size(100_000)
            .await
            .map_err(|e| client.err(e, op, dataset))?
            .with_type::<RawDocumentBuf>()
    } else {
        // No projection: the documents hold little beyond the three fields read (`_id`, and
        // `tsDate` with a TTL), while a projection is work for the server on every document
        // (SecantusDB: ~10 % of a one-key `find`, which made `multi_get` 0.85x the raw driver).
        coll.find(filter)
            .batch_size(100_000)
            .await
            .map_err(|e| client.err(e, op, dataset))?
    };
    let key_field = if group_latest { "_id" } else { KEY };
    let mut out: Versions = HashMap::with_capacity(keys.len());
    while cursor
        .advance()
        .await
        .map_err(|e| client.err(e, op, dataset))?
    {
        let (key, tv) = layout::parse_doc(cursor.current(), key_field).map_err(|m| {
            KvError::backend_msg(BACKEND, format!("{op} on dataset {dataset:?}"), m)
        })?;
        out.entry(key).or_default().push(tv);
    }
    for versions in out.values_mut() {
        versions.sort_by_key(|v| v.millis);
        if kind == DatasetKind::Snapshot && versions.len() > 1 {
            // Only a collection filled by other writers (the JVM quickstart inserts one
            // document per put) can hold several; a snapshot's value is the newest.
            let newest = versions.split_off(versions.len() - 1);
            *versions = newest;
        }
    }
    Ok(out)
}

/// Answers the requests of one dataset: latest-only requests with one query per chunk of
/// distinct keys, ranged requests with one query per chunk with the ranges folded into one
/// `ts` bound; then each request picks its versions with `select_versions`.
async fn get_dataset(
    client: &Client,
    dataset: &str,
    props: DatasetProps,
    requests: Vec<(usize, GetRequest)>,
) -> Answers<Vec<TimedValue>> {
    let cut = batch::visible_from(&props);
    let mut latest_keys: Vec<Bytes> = Vec::new();
    let mut range_keys: Vec<Bytes> = Vec::new();
    let (mut lo, mut hi) = (i64::MAX, Some(i64::MIN));
    {
        let mut seen_latest = std::collections::HashSet::new();
        let mut seen_range = std::collections::HashSet::new();
        for (_, r) in &requests {
            match r.start_ts {
                None => {
                    if seen_latest.insert(r.key.clone()) {
                        latest_keys.push(r.key.clone());
                    }
                }
                Some(s) => {
                    lo = lo.min(s);
                    hi = match (hi, r.end_ts) {
                        (Some(h), Some(e)) => Some(h.max(e)),
                        _ => None,
                    };
                    if seen_range.insert(r.key.clone()) {
                        range_keys.push(r.key.clone());
                    }
                }
            }
        }
    }
    let lo_range = Some(cut.map_or(lo, |c| c.max(lo)));
    let (latest, ranged) = futures::join!(
        read_keys(client, dataset, props.kind, latest_keys, true, cut, None),
        read_keys(client, dataset, props.kind, range_keys, false, lo_range, hi),
    );
    let index = |chunks: Vec<(Vec<Bytes>, Result<Versions, KvError>)>| {
        let mut found: Versions = HashMap::new();
        let mut failed: HashMap<Bytes, KvError> = HashMap::new();
        for (keys, r) in chunks {
            match r {
                Ok(v) => found.extend(v),
                Err(e) => failed.extend(keys.into_iter().map(|k| (k, e.clone()))),
            }
        }
        (found, failed)
    };
    let (latest, latest_failed) = index(latest);
    let (ranged, ranged_failed) = index(ranged);
    requests
        .into_iter()
        .map(|(i, r)| {
            let (found, failed) = if r.start_ts.is_none() {
                (&latest, &latest_failed)
            } else {
                (&ranged, &ranged_failed)
            };
            if let Some(e) = failed.get(&r.key) {
                return (i, Err(e.clone()));
            }
            let versions = found.get(&r.key).cloned().unwrap_or_default();
            (i, Ok(batch::select_versions(versions, &r, cut)))
        })
        .collect()
}

async fn get_all(
    client: &Client,
    groups: BTreeMap<String, Vec<(usize, GetRequest)>>,
) -> Result<Answers<Vec<TimedValue>>, KvError> {
    let names: Vec<&str> = groups.keys().map(String::as_str).collect();
    let props = client.resolve(&names).await?;
    let mut answers = Vec::new();
    let mut work: Vec<BoxFut<'_, Answers<Vec<TimedValue>>>> = Vec::new();
    for (dataset, requests) in groups {
        match props.get(&dataset) {
            None => {
                let e = KvError::not_found(&dataset);
                answers.extend(requests.into_iter().map(|(i, _)| (i, Err(e.clone()))));
            }
            Some(p) => {
                let p = *p;
                work.push(Box::pin(async move {
                    get_dataset(client, &dataset, p, requests).await
                }));
            }
        }
    }
    for a in futures::future::join_all(work).await {
        answers.extend(a);
    }
    Ok(answers)
}
