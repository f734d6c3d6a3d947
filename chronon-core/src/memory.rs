//! `MemoryStore`: the contract (CONTRACT.md) as executable code. The reference the conformance suite is proven on,
//! and a handy store for unit tests; not a production backend (nothing is persisted).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;

use crate::batch::{now_millis, select_versions, GetBatch, PutBatch};
use crate::error::KvError;
use crate::types::{
    Capabilities, DatasetKind, DatasetProps, GetRequest, GetResponse, ListCursor, ListPage,
    PutRequest, TimedValue,
};
use crate::{validate, KvStore};

/// Versions of one key: ts → value, ascending.
type Versions = BTreeMap<i64, Bytes>;

#[derive(Debug)]
struct Dataset {
    props: DatasetProps,
    rows: BTreeMap<Bytes, Versions>,
}

/// An in-memory `KvStore`. Clones share the same data, which is how the suite's "new client sees
/// what the old one wrote" cases run on it.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    datasets: Arc<RwLock<HashMap<String, Dataset>>>,
    caps: Capabilities,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// The largest value the memory store accepts (1 MiB; it has no physical limit).
    pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

    /// An empty store.
    pub fn new() -> Self {
        MemoryStore {
            datasets: Arc::new(RwLock::new(HashMap::new())),
            caps: Capabilities::new(Self::MAX_VALUE_BYTES, usize::MAX, usize::MAX)
                .with_persistence(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Dataset>> {
        // A panic while holding the lock cannot leave a dataset half-written (every mutation is a
        // single map operation), so a poisoned lock is safe to keep using.
        self.datasets.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Dataset>> {
        self.datasets.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn answer(ds: &Dataset, req: &GetRequest, now: i64) -> Vec<TimedValue> {
    let Some(versions) = ds.rows.get(&req.key) else {
        return Vec::new();
    };
    let all = versions
        .iter()
        .map(|(ts, v)| TimedValue::new(v.clone(), *ts));
    select_versions(all, req, ds.props.visible_from(now))
}

#[async_trait]
impl KvStore for MemoryStore {
    fn backend(&self) -> &str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        let mut map = self.write();
        match map.get(dataset) {
            Some(existing) if existing.props.kind != props.kind => Err(KvError::DatasetConflict {
                dataset: dataset.to_string(),
                existing: existing.props.describe(),
                requested: props.describe(),
            }),
            Some(_) => Ok(()),
            None => {
                map.insert(
                    dataset.to_string(),
                    Dataset {
                        props: *props,
                        rows: BTreeMap::new(),
                    },
                );
                Ok(())
            }
        }
    }

    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        self.write().remove(dataset);
        Ok(())
    }

    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        validate::dataset_name(dataset)?;
        self.read()
            .get(dataset)
            .map(|d| d.props)
            .ok_or_else(|| KvError::not_found(dataset))
    }

    async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        let mut batch = GetBatch::new(requests);
        let now = now_millis();
        {
            let map = self.read();
            let answers: Vec<(usize, Result<Vec<TimedValue>, KvError>)> = batch
                .pending()
                .map(|(i, req)| {
                    let result = match map.get(&req.dataset) {
                        None => Err(KvError::not_found(&req.dataset)),
                        Some(ds) => Ok(answer(ds, req, now)),
                    };
                    (i, result)
                })
                .collect();
            for (i, r) in answers {
                batch.answer(i, r);
            }
        }
        batch.finish(self.backend())
    }

    async fn multi_put(&self, requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        let mut batch = PutBatch::new(requests, &self.caps);
        let mut results = Vec::new();
        {
            let mut map = self.write();
            for p in batch.pending() {
                let result = match map.get_mut(p.dataset) {
                    None => Err(KvError::not_found(p.dataset)),
                    Some(ds) => {
                        let versions = ds.rows.entry(p.key.clone()).or_default();
                        if ds.props.kind == DatasetKind::Snapshot {
                            versions.clear();
                        }
                        versions.insert(p.ts, p.value.clone());
                        Ok(())
                    }
                };
                results.push((p.index, result));
            }
        }
        for (i, r) in results {
            batch.answer(i, r);
        }
        batch.finish(self.backend())
    }

    async fn list(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        validate::dataset_name(dataset)?;
        let map = self.read();
        let ds = map
            .get(dataset)
            .ok_or_else(|| KvError::not_found(dataset))?;
        let visible_from = ds.props.visible_from(now_millis());
        let start = match &cursor {
            Some(c) => std::ops::Bound::Excluded(c.0.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let mut entries = Vec::new();
        let mut last_key = None;
        let mut more = false;
        for (key, versions) in ds.rows.range((start, std::ops::Bound::Unbounded)) {
            if entries.len() >= limit.max(1) {
                more = true;
                break;
            }
            last_key = Some(key.clone());
            let latest = versions.iter().next_back();
            if let Some((ts, v)) = latest {
                if visible_from.is_none_or(|cut| *ts >= cut) {
                    entries.push((key.clone(), TimedValue::new(v.clone(), *ts)));
                }
            }
        }
        Ok(ListPage {
            entries,
            next: if more { last_key.map(ListCursor) } else { None },
        })
    }
}
