//! The Fetcher (Chronon's `Fetcher.fetchGroupBys` / `fetchJoin`): many requests at once, served
//! with ONE `multi_get` for every batch lookup and ONE for every streaming lookup (run
//! concurrently), merged as SERVING.md describes (the lambda merge in
//! [`crate::aggregation::plan`]) and finalized into `{feature_name: value}` maps.
//!
//! - Each GroupBy's serving info is JVM Chronon's (`crate::jvm`): the batch end from the
//!   `group_by_serving_info` row of `<NAME>_BATCH`, the definition from `CHRONON_METADATA` when
//!   this crate stored one, else from that serving info (a JVM deployment's tables), both read in
//!   one `multi_get` and cached for [`FetcherOptions::metadata_ttl`] (Chronon caches its serving
//!   info the same way), so a warm fetch costs exactly the two `multi_get`s.
//! - A failure (unknown name, bad keys, `q < B`, a store error for one key) fails only the
//!   request it belongs to. In a join, a failed part adds `{prefix}_exception` to the response
//!   instead of failing the others, as Chronon's `fetchJoin` does.
//! - The whole call is bounded by [`FetcherOptions::timeout`] (Chronon's 10,000 ms default);
//!   when it passes, every unanswered request gets [`FetchError::Timeout`].
//! - A batch value whose timestamp is before the batch end time is stale and ignored, as Chronon's
//!   `FetcherBase`/`FetcherCache` ignore it; streaming rows are read from the batch end on
//!   (`afterTsMillis`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

mod join_derivations;
mod served;

use crate::groupby::{Accuracy, Join, JoinPart, SourceKind, METADATA_DATASET};
use crate::jvm::SERVING_INFO_KEY;
use crate::logging::{LoggableResponse, ResponseLogger};
use crate::metadata::{group_by_key, join_key};
use crate::stream::Value;
use chronon_core::{GetRequest, GetResponse, KvError, KvStore};
use join_derivations::JoinDerivers;
pub use served::json_to_value;
use served::{load_served, BatchPart, Served};

/// The request and response types live in [`crate::request`] (so the response logger uses them
/// without importing the fetcher); re-exported here, next to the [`Fetcher`] that takes them.
pub use crate::request::{FetchError, FetchRequest, FetchResponse};

/// Chronon's default fetch timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);

/// How the fetcher runs.
#[derive(Debug, Clone)]
pub struct FetcherOptions {
    /// Bound on one `fetch_*` call (default 10,000 ms, Chronon's).
    pub timeout: Duration,
    /// How long definitions and batch end times are cached (default 10 s).
    pub metadata_ttl: Duration,
}

impl Default for FetcherOptions {
    fn default() -> Self {
        FetcherOptions {
            timeout: DEFAULT_TIMEOUT,
            metadata_ttl: Duration::from_secs(10),
        }
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One group-by lookup inside a fetch: which request, which serving info, which key.
struct Lookup {
    info: Arc<Served>,
    key: Bytes,
    q: i64,
    batch: Option<usize>,
    streaming: Option<usize>,
}

impl Lookup {
    fn batch_end(&self) -> i64 {
        self.info.batch_end.unwrap_or(0)
    }

    /// The time the features are served as of, and the batch end: a SNAPSHOT group-by serves
    /// its batch end whatever the request's time.
    fn query_time(&self) -> (i64, i64) {
        let batch_end = self.batch_end();
        match self.info.gb.accuracy {
            Accuracy::Snapshot => (batch_end, batch_end),
            Accuracy::Temporal => (self.q, batch_end),
        }
    }
}

/// How one part of a join is answered within one `fetch_joins` call: its group-by's serving
/// info, its prefix and its features' prefixed names, built once per call instead of once per
/// request (formatting the names was the largest cost of a join fetch besides decoding).
struct PartPlan<'a> {
    part: &'a JoinPart,
    info: Result<Arc<Served>, FetchError>,
    /// `{prefix}_{groupby}` (see [`JoinPart::full_prefix`]).
    prefix: String,
    /// `{prefix}_{feature}` in feature order; empty when the group-by has derivations (their
    /// names are known only once derived).
    names: Vec<String>,
}

impl<'a> PartPlan<'a> {
    fn new(part: &'a JoinPart, info: Option<&Result<Arc<Served>, FetchError>>) -> Self {
        let info = match info {
            Some(i) => i.clone(),
            None => Err(FetchError::NotFound {
                kind: "group-by",
                name: part.group_by.clone(),
            }),
        };
        let prefix = part.full_prefix();
        let names = match &info {
            Ok(i) if i.deriver.is_none() => i
                .agg
                .feature_names()
                .iter()
                .map(|n| format!("{prefix}_{n}"))
                .collect(),
            _ => Vec::new(),
        };
        PartPlan {
            part,
            info,
            prefix,
            names,
        }
    }

    /// The request's value of group-by key `key` (read through the part's key mapping).
    fn request_key<'r>(
        &self,
        info: &Served,
        request: &'r FetchRequest,
        key: &str,
    ) -> Option<&'r serde_json::Value> {
        if info.gb.keys.iter().any(|k| k == key) {
            request.keys.get(self.part.join_key_for(key))
        } else {
            None
        }
    }

    /// The request's keys as the part's group-by names them (what its derivations read).
    fn part_keys(
        &self,
        info: &Served,
        request: &FetchRequest,
    ) -> BTreeMap<String, serde_json::Value> {
        info.gb
            .keys
            .iter()
            .filter_map(|k| {
                request
                    .keys
                    .get(self.part.join_key_for(k))
                    .map(|v| (k.clone(), v.clone()))
            })
            .collect()
    }
}

/// Serves features from a store (see the module docs).
#[derive(Debug)]
pub struct Fetcher {
    store: Arc<dyn KvStore>,
    options: FetcherOptions,
    group_bys: RwLock<HashMap<String, Arc<Served>>>,
    joins: RwLock<HashMap<String, (Arc<Join>, Instant)>>,
    join_derivers: JoinDerivers,
    logger: Option<Arc<ResponseLogger>>,
}

impl Fetcher {
    /// A fetcher over `store`.
    pub fn new(store: Arc<dyn KvStore>, options: FetcherOptions) -> Self {
        Fetcher {
            store,
            options,
            group_bys: RwLock::new(HashMap::new()),
            joins: RwLock::new(HashMap::new()),
            join_derivers: JoinDerivers::default(),
            logger: None,
        }
    }

    /// Logs every join response through `logger` (Chronon's `logFunc`), off the request path.
    pub fn with_logger(mut self, logger: Arc<ResponseLogger>) -> Self {
        self.logger = Some(logger);
        self
    }

    /// Forgets cached definitions and batch end times (after an upload, say), so the next fetch
    /// reads them again.
    pub fn refresh(&self) {
        self.group_bys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.joins
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.join_derivers.clear();
    }

    /// Reads `(dataset, key)` strings in one `multi_get`; missing keys (or a missing dataset)
    /// are `None`.
    async fn read_strings(
        &self,
        keys: &[(String, String)],
    ) -> Vec<Result<Option<String>, FetchError>> {
        if keys.is_empty() {
            return Vec::new();
        }
        let requests = keys
            .iter()
            .map(|(d, k)| GetRequest::latest(d.clone(), Bytes::copy_from_slice(k.as_bytes())))
            .collect();
        let responses = self.store.multi_get(requests).await;
        keys.iter()
            .enumerate()
            .map(|(i, (d, k))| match responses.get(i).map(|r| &r.values) {
                Some(Ok(v)) => match v.iter().max_by_key(|tv| tv.millis) {
                    None => Ok(None),
                    Some(tv) => String::from_utf8(tv.bytes.to_vec()).map(Some).map_err(|e| {
                        FetchError::Decode {
                            dataset: d.clone(),
                            reason: format!("{k}: {e}"),
                        }
                    }),
                },
                Some(Err(KvError::DatasetNotFound { .. })) => Ok(None),
                Some(Err(e)) => Err(FetchError::Store(e.clone())),
                None => Err(FetchError::Store(KvError::backend_msg(
                    self.store.backend(),
                    "multi_get on metadata",
                    "fewer responses than requests",
                ))),
            })
            .collect()
    }

    /// The serving info of each name (cached; missing ones loaded in one `multi_get`: the
    /// definition in `CHRONON_METADATA` and the `group_by_serving_info` row of `<NAME>_BATCH`).
    async fn serving_infos(
        &self,
        names: &[&str],
    ) -> HashMap<String, Result<Arc<Served>, FetchError>> {
        let ttl = self.options.metadata_ttl;
        let mut out = HashMap::new();
        let mut missing: Vec<String> = Vec::new();
        {
            let cache = self.group_bys.read().unwrap_or_else(|e| e.into_inner());
            for &n in names {
                match cache.get(n) {
                    Some(info) if info.loaded.elapsed() < ttl => {
                        out.insert(n.to_string(), Ok(info.clone()));
                    }
                    _ => {
                        if !missing.iter().any(|m| m == n) {
                            missing.push(n.to_string());
                        }
                    }
                }
            }
        }
        if missing.is_empty() {
            return out;
        }
        let keys: Vec<(String, String)> = missing
            .iter()
            .flat_map(|n| {
                [
                    (METADATA_DATASET.to_string(), group_by_key(n)),
                    (crate::jvm::batch_dataset(n), SERVING_INFO_KEY.to_string()),
                ]
            })
            .collect();
        let mut values = self.read_strings(&keys).await.into_iter();
        let mut cache = self.group_bys.write().unwrap_or_else(|e| e.into_inner());
        for name in missing {
            let def = values.next().unwrap_or(Ok(None));
            let info = values.next().unwrap_or(Ok(None));
            let loaded = load_served(&name, def, info).map(Arc::new);
            if let Ok(info) = &loaded {
                cache.insert(name.clone(), info.clone());
            }
            out.insert(name, loaded);
        }
        out
    }

    async fn join_defs(&self, names: &[&str]) -> HashMap<String, Result<Arc<Join>, FetchError>> {
        let ttl = self.options.metadata_ttl;
        let mut out = HashMap::new();
        let mut missing: Vec<String> = Vec::new();
        {
            let cache = self.joins.read().unwrap_or_else(|e| e.into_inner());
            for &n in names {
                match cache.get(n) {
                    Some((j, at)) if at.elapsed() < ttl => {
                        out.insert(n.to_string(), Ok(j.clone()));
                    }
                    _ => {
                        if !missing.iter().any(|m| m == n) {
                            missing.push(n.to_string());
                        }
                    }
                }
            }
        }
        if missing.is_empty() {
            return out;
        }
        let keys: Vec<String> = missing.iter().map(|n| join_key(n)).collect();
        let keys: Vec<(String, String)> = keys
            .into_iter()
            .map(|k| (METADATA_DATASET.to_string(), k))
            .collect();
        let values = self.read_strings(&keys).await;
        let mut cache = self.joins.write().unwrap_or_else(|e| e.into_inner());
        for (name, v) in missing.into_iter().zip(values) {
            let loaded = v.and_then(|text| {
                let text = text.ok_or_else(|| FetchError::NotFound {
                    kind: "join",
                    name: name.clone(),
                })?;
                Join::from_json_str(&text)
                    .map(Arc::new)
                    .map_err(|e| FetchError::Definition {
                        name: name.clone(),
                        reason: e.reason,
                    })
            });
            if let Ok(j) = &loaded {
                cache.insert(name.clone(), (j.clone(), Instant::now()));
            }
            out.insert(name, loaded);
        }
        out
    }

    /// Fetches group-by features for every request (see the module docs), in request order.
    pub async fn fetch_group_bys(&self, requests: Vec<FetchRequest>) -> Vec<FetchResponse> {
        let timeout = self.options.timeout;
        match tokio::time::timeout(timeout, self.fetch_group_bys_inner(&requests)).await {
            Ok(values) => requests
                .into_iter()
                .zip(values)
                .map(|(request, values)| FetchResponse { request, values })
                .collect(),
            Err(_) => timed_out(requests, timeout),
        }
    }

    async fn fetch_group_bys_inner(
        &self,
        requests: &[FetchRequest],
    ) -> Vec<Result<BTreeMap<String, Value>, FetchError>> {
        let names: Vec<&str> = requests.iter().map(|r| r.name.as_str()).collect();
        let infos = self.serving_infos(&names).await;
        let now = now_millis();
        let lookups: Vec<Result<Lookup, FetchError>> = requests
            .iter()
            .map(|r| {
                let info = match infos.get(&r.name) {
                    Some(Ok(i)) => i.clone(),
                    Some(Err(e)) => return Err(e.clone()),
                    None => {
                        return Err(FetchError::NotFound {
                            kind: "group-by",
                            name: r.name.clone(),
                        })
                    }
                };
                let key = Bytes::from(info.key_bytes(|k| r.keys.get(k))?);
                Ok(Lookup {
                    info,
                    key,
                    q: r.at_millis.unwrap_or(now),
                    batch: None,
                    streaming: None,
                })
            })
            .collect();
        self.serve(lookups)
            .await
            .into_iter()
            .zip(requests)
            .map(|(r, req)| {
                r.map(|(info, values)| {
                    info.features(values, &req.keys, req.at_millis.unwrap_or(now))
                })
            })
            .collect()
    }

    /// Runs the two `multi_get`s for all lookups and the lambda merge for each.
    async fn serve(
        &self,
        mut lookups: Vec<Result<Lookup, FetchError>>,
    ) -> Vec<Result<(Arc<Served>, Vec<Value>), FetchError>> {
        let mut batch_requests = Vec::new();
        let mut stream_requests = Vec::new();
        for l in lookups.iter_mut().flatten() {
            let info = &l.info;
            let batch_end = info.batch_end.unwrap_or(0);
            if info.batch_end.is_some() {
                l.batch = Some(batch_requests.len());
                batch_requests.push(GetRequest::latest(
                    info.batch_dataset.clone(),
                    l.key.clone(),
                ));
            }
            if info.merges_streaming() && l.q > batch_end {
                l.streaming = Some(stream_requests.len());
                stream_requests.push(GetRequest::range(
                    info.streaming_dataset.clone(),
                    l.key.clone(),
                    batch_end.max(0),
                    Some(l.q - 1),
                ));
            }
        }
        // Each read's values are decoded as soon as it answers, while the other may still run
        // (the batch IRs' decoding was otherwise on the critical path after the slower read).
        let pending = &lookups;
        let batches = async {
            let responses = self.multi_get(batch_requests).await;
            pending
                .iter()
                .map(|l| match l {
                    Ok(l) if l.query_time().0 >= l.batch_end() => {
                        Some(l.info.batch_part(l.batch.and_then(|i| responses.get(i))))
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        let streams = async {
            let responses = self.multi_get(stream_requests).await;
            pending
                .iter()
                .map(|l| match l {
                    Ok(l) => l
                        .streaming
                        .and_then(|i| responses.get(i))
                        .map(|r| l.info.response_rows(r)),
                    Err(_) => None,
                })
                .collect::<Vec<_>>()
        };
        let (batches, rows) = futures::join!(batches, streams);
        lookups
            .into_iter()
            .zip(batches)
            .zip(rows)
            .map(|((l, batch), rows)| {
                let l = l?;
                let (q, batch_end) = l.query_time();
                let info = l.info;
                if q < batch_end {
                    return Err(FetchError::BeforeBatchEnd {
                        name: info.gb.name.clone(),
                        query: q,
                        batch_end,
                    });
                }
                let batch = match batch.transpose()? {
                    Some(BatchPart::Final(values)) => return Ok((info, values)),
                    Some(BatchPart::State(state)) => state,
                    None => None,
                };
                let rows = rows.transpose()?.unwrap_or_default();
                let has_reversal = info.gb.source == SourceKind::Entities;
                let values = info
                    .agg
                    .lambda_owned(batch, batch_end, &rows, q, has_reversal)
                    .map_err(|_| FetchError::BeforeBatchEnd {
                        name: info.gb.name.clone(),
                        query: q,
                        batch_end,
                    })?;
                Ok((info, values))
            })
            .collect()
    }

    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        if requests.is_empty() {
            return Vec::new();
        }
        self.store.multi_get(requests).await
    }

    /// Fetches join features for every request: each part's group-by features, prefixed
    /// `{prefix}_{groupby}_`, all parts of all requests served by the same two `multi_get`s.
    pub async fn fetch_joins(&self, requests: Vec<FetchRequest>) -> Vec<FetchResponse> {
        let timeout = self.options.timeout;
        let responses = match tokio::time::timeout(timeout, self.fetch_joins_inner(&requests)).await
        {
            Ok(values) => requests
                .into_iter()
                .zip(values)
                .map(|(request, values)| FetchResponse { request, values })
                .collect(),
            Err(_) => timed_out(requests, timeout),
        };
        if let Some(logger) = &self.logger {
            for r in &responses {
                if let Ok(values) = &r.values {
                    logger.log(LoggableResponse::new(&r.request, values));
                }
            }
        }
        responses
    }

    async fn fetch_joins_inner(
        &self,
        requests: &[FetchRequest],
    ) -> Vec<Result<BTreeMap<String, Value>, FetchError>> {
        let names: Vec<&str> = requests.iter().map(|r| r.name.as_str()).collect();
        let joins = self.join_defs(&names).await;
        let gb_names: Vec<&str> = joins
            .values()
            .flatten()
            .flat_map(|j| j.parts.iter().map(|p| p.group_by.as_str()))
            .collect();
        let infos = self.serving_infos(&gb_names).await;
        let now = now_millis();
        // What each part of each join answers with, built once per call (not per request).
        let plans: HashMap<&str, Result<Vec<PartPlan>, FetchError>> = joins
            .iter()
            .map(|(name, j)| {
                let parts = j.as_ref().map_err(Clone::clone).map(|j| {
                    j.parts
                        .iter()
                        .map(|p| PartPlan::new(p, infos.get(&p.group_by)))
                        .collect()
                });
                (name.as_str(), parts)
            })
            .collect();
        // Expand every join request into one lookup per part.
        let mut lookups = Vec::new();
        let mut owners: Vec<(usize, &PartPlan)> = Vec::new();
        // Each response's features are gathered in order and made a map in one go at the end
        // (a sorted bulk build instead of one tree insert per feature).
        let mut entries: Vec<Result<Vec<(String, Value)>, FetchError>> =
            Vec::with_capacity(requests.len());
        for (ri, r) in requests.iter().enumerate() {
            let parts = match plans.get(r.name.as_str()) {
                Some(Ok(parts)) => parts,
                Some(Err(e)) => {
                    entries.push(Err(e.clone()));
                    continue;
                }
                None => {
                    entries.push(Err(FetchError::NotFound {
                        kind: "join",
                        name: r.name.clone(),
                    }));
                    continue;
                }
            };
            let width = parts.iter().map(|p| p.names.len().max(1)).sum();
            entries.push(Ok(Vec::with_capacity(width)));
            for plan in parts {
                let lookup = plan.info.clone().and_then(|info| {
                    let key = info.key_bytes(|k| plan.request_key(&info, r, k))?;
                    Ok(Lookup {
                        info,
                        key: Bytes::from(key),
                        q: r.at_millis.unwrap_or(now),
                        batch: None,
                        streaming: None,
                    })
                });
                lookups.push(lookup);
                owners.push((ri, plan));
            }
        }
        let served = self.serve(lookups).await;
        for ((ri, plan), part) in owners.into_iter().zip(served) {
            let Some(Ok(map)) = entries.get_mut(ri) else {
                continue;
            };
            match part {
                Ok((info, values)) if info.deriver.is_none() => {
                    map.extend(plan.names.iter().cloned().zip(values));
                }
                Ok((info, values)) => {
                    let request = &requests[ri];
                    let keys = plan.part_keys(&info, request);
                    let q = request.at_millis.unwrap_or(now);
                    for (name, v) in info.features(values, &keys, q) {
                        map.push((format!("{}_{name}", plan.prefix), v));
                    }
                }
                Err(e) => {
                    map.push((
                        format!("{}_exception", plan.prefix),
                        Value::String(e.to_string()),
                    ));
                }
            }
        }
        // `from_iter` keeps the last of equal names, as inserting one by one did.
        let mut results: Vec<Result<BTreeMap<String, Value>, FetchError>> = entries
            .into_iter()
            .map(|e| e.map(BTreeMap::from_iter))
            .collect();
        // Join derivations over the prefixed features and the request keys (Chronon's
        // `Fetcher.fetchDerivations`), compiled once per join (see `join_derivations`).
        let mut derivers: HashMap<&str, join_derivations::Compiled> = HashMap::new();
        for (r, result) in requests.iter().zip(results.iter_mut()) {
            let Some(Ok(join)) = joins.get(&r.name) else {
                continue;
            };
            if join.derivations.is_empty() {
                continue;
            }
            let deriver = derivers
                .entry(r.name.as_str())
                .or_insert_with(|| self.join_derivers.get(join, &infos));
            match (deriver, result.as_mut()) {
                (Ok(Some(d)), Ok(map)) => {
                    *map = d.apply(&r.keys, map, r.at_millis.unwrap_or(now));
                }
                // Chronon answers with the codec failure alone when the join's codec (which
                // compiles the derivations) cannot be built.
                (Err(e), Ok(map)) => {
                    *map = BTreeMap::from([(
                        "join_codec_fetch_exception".to_string(),
                        Value::String(e.to_string()),
                    )]);
                }
                _ => {}
            }
        }
        results
    }
}

fn timed_out(requests: Vec<FetchRequest>, timeout: Duration) -> Vec<FetchResponse> {
    requests
        .into_iter()
        .map(|request| FetchResponse {
            request,
            values: Err(FetchError::Timeout(timeout)),
        })
        .collect()
}
