//! The definitions the service answers from: every join (with its group-bys, key columns and
//! schema) and every group-by in the store's `CHRONON_METADATA`, re-read wholesale every
//! `--refresh-interval` so a changed or dropped definition is served for at most that long. A
//! name the last refresh did not see is read from the store on its first request, so a join
//! uploaded a second ago is served at once; a name the store does not have either is a 404.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chronon_core::KvStore;
use chronon_serving::groupby::{GroupBy, Join};
use chronon_serving::join_schema::{join_schema, JoinSchema};
use chronon_serving::metadata::{self, MetadataError};
use chronon_serving::stream::DataType;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::metrics::Exporter;

/// How many metadata reads one refresh keeps in flight.
const REFRESH_CONCURRENCY: usize = 16;

/// One key column a request must give: its name in the request and its type.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// The name in the request's key map.
    pub name: String,
    /// The column's type (the request's value is converted to it).
    pub data_type: DataType,
}

/// A servable join.
#[derive(Debug)]
pub struct JoinEntry {
    /// The keys every request must carry.
    pub keys: Vec<KeySpec>,
    /// The join's schemas, or why they cannot be derived.
    pub schema: Result<JoinSchema, String>,
}

/// A servable group-by.
#[derive(Debug)]
pub struct GroupByEntry {
    /// The keys every request must carry.
    pub keys: Vec<KeySpec>,
}

/// What a refresh found.
#[derive(Debug, Default)]
struct Defs {
    joins: BTreeMap<String, Arc<JoinEntry>>,
    group_bys: HashMap<String, Arc<GroupByEntry>>,
}

/// The state of the last refresh, for `/health`.
#[derive(Debug, Clone, Default)]
pub struct RefreshStatus {
    /// When the last successful refresh finished (epoch millis), if any.
    pub last_success_millis: Option<i64>,
    /// Why the last refresh failed, when it did.
    pub last_error: Option<String>,
}

/// The definitions snapshot (see the module docs).
pub struct Catalog {
    store: Arc<dyn KvStore>,
    defs: RwLock<Arc<Defs>>,
    status: RwLock<RefreshStatus>,
    last_success: RwLock<Option<Instant>>,
}

fn group_by_keys(gb: &GroupBy) -> Vec<KeySpec> {
    gb.keys
        .iter()
        .map(|k| KeySpec {
            name: k.clone(),
            data_type: gb.schema.type_of(k).cloned().unwrap_or(DataType::String),
        })
        .collect()
}

fn join_entry(join: &Join, gbs: &[GroupBy]) -> JoinEntry {
    let mut keys: Vec<KeySpec> = Vec::new();
    for part in &join.parts {
        if let Some(gb) = gbs.iter().find(|g| g.name == part.group_by) {
            for k in &gb.keys {
                let name = part.join_key_for(k).to_string();
                if !keys.iter().any(|s| s.name == name) {
                    keys.push(KeySpec {
                        name,
                        data_type: gb.schema.type_of(k).cloned().unwrap_or(DataType::String),
                    });
                }
            }
        }
    }
    let refs: Vec<&GroupBy> = gbs.iter().collect();
    JoinEntry {
        keys,
        schema: join_schema(join, &refs).map_err(|e| e.to_string()),
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Catalog {
    /// An empty catalog over `store` (call [`Catalog::refresh`] to fill it).
    pub fn new(store: Arc<dyn KvStore>) -> Self {
        Catalog {
            store,
            defs: RwLock::new(Arc::new(Defs::default())),
            status: RwLock::new(RefreshStatus::default()),
            last_success: RwLock::new(None),
        }
    }

    fn snapshot(&self) -> Arc<Defs> {
        self.defs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads every definition; on failure the previous snapshot stays and the error is kept
    /// for `/health`.
    pub async fn refresh(&self) -> Result<(usize, usize), MetadataError> {
        let result = self.load_all().await;
        let mut status = self.status.write().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(defs) => {
                let counts = (defs.joins.len(), defs.group_bys.len());
                *self.defs.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(defs);
                *self.last_success.write().unwrap_or_else(|e| e.into_inner()) =
                    Some(Instant::now());
                status.last_success_millis = Some(now_millis());
                status.last_error = None;
                Ok(counts)
            }
            Err(e) => {
                status.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    async fn load_all(&self) -> Result<Defs, MetadataError> {
        let store = &*self.store;
        let gb_names = metadata::list_group_bys(store).await?;
        let join_names = metadata::list_joins(store).await?;
        let gbs: Vec<(String, Option<GroupBy>)> = stream::iter(gb_names)
            .map(|n| async move {
                // A definition that no longer parses is left out (and logged), not fatal.
                match metadata::get_group_by(store, &n).await {
                    Ok(gb) => Ok((n, gb)),
                    Err(MetadataError::Store(e)) => Err(MetadataError::Store(e)),
                    Err(e) => {
                        tracing::warn!("group-by {n:?} is left out: {e}");
                        Ok((n, None))
                    }
                }
            })
            .buffer_unordered(REFRESH_CONCURRENCY)
            .try_collect()
            .await?;
        let gbs: HashMap<String, GroupBy> = gbs
            .into_iter()
            .filter_map(|(n, g)| g.map(|g| (n, g)))
            .collect();
        let joins: Vec<(String, Option<Join>)> = stream::iter(join_names)
            .map(|n| async move {
                match metadata::get_join(store, &n).await {
                    Ok(j) => Ok((n, j)),
                    Err(MetadataError::Store(e)) => Err(MetadataError::Store(e)),
                    Err(e) => {
                        tracing::warn!("join {n:?} is left out: {e}");
                        Ok((n, None))
                    }
                }
            })
            .buffer_unordered(REFRESH_CONCURRENCY)
            .try_collect()
            .await?;
        let mut defs = Defs::default();
        for (name, join) in joins {
            let Some(join) = join else { continue };
            let parts: Vec<GroupBy> = join
                .parts
                .iter()
                .filter_map(|p| gbs.get(&p.group_by).cloned())
                .collect();
            defs.joins.insert(name, Arc::new(join_entry(&join, &parts)));
        }
        for (name, gb) in gbs {
            defs.group_bys.insert(
                name,
                Arc::new(GroupByEntry {
                    keys: group_by_keys(&gb),
                }),
            );
        }
        Ok(defs)
    }

    /// The join's entry: from the snapshot, or read from the store when the snapshot does not
    /// have it; `Ok(None)` when the store does not have it either.
    pub async fn join(&self, name: &str) -> Result<Option<Arc<JoinEntry>>, MetadataError> {
        if let Some(e) = self.snapshot().joins.get(name) {
            return Ok(Some(e.clone()));
        }
        let Some(join) = metadata::get_join(&*self.store, name).await? else {
            return Ok(None);
        };
        let mut gbs = Vec::new();
        for p in &join.parts {
            if let Some(gb) = metadata::get_group_by(&*self.store, &p.group_by).await? {
                gbs.push(gb);
            }
        }
        let entry = Arc::new(join_entry(&join, &gbs));
        self.insert(|d| {
            d.joins.insert(name.to_string(), entry.clone());
        });
        Ok(Some(entry))
    }

    /// The group-by's entry, as [`Catalog::join`].
    pub async fn group_by(&self, name: &str) -> Result<Option<Arc<GroupByEntry>>, MetadataError> {
        if let Some(e) = self.snapshot().group_bys.get(name) {
            return Ok(Some(e.clone()));
        }
        let Some(gb) = metadata::get_group_by(&*self.store, name).await? else {
            return Ok(None);
        };
        let entry = Arc::new(GroupByEntry {
            keys: group_by_keys(&gb),
        });
        self.insert(|d| {
            d.group_bys.insert(name.to_string(), entry.clone());
        });
        Ok(Some(entry))
    }

    /// Adds one definition to the current snapshot (copy on write: readers keep theirs).
    fn insert(&self, add: impl FnOnce(&mut Defs)) {
        let mut slot = self.defs.write().unwrap_or_else(|e| e.into_inner());
        let mut defs = Defs {
            joins: slot.joins.clone(),
            group_bys: slot.group_bys.clone(),
        };
        add(&mut defs);
        *slot = Arc::new(defs);
    }

    /// The joins of the last refresh (and those read since), sorted.
    pub fn join_names(&self) -> Vec<String> {
        self.snapshot().joins.keys().cloned().collect()
    }

    /// `(joins, group-bys)` in the snapshot.
    pub fn counts(&self) -> (usize, usize) {
        let d = self.snapshot();
        (d.joins.len(), d.group_bys.len())
    }

    /// The last refresh's outcome.
    pub fn status(&self) -> RefreshStatus {
        self.status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Time since the last successful refresh.
    pub fn age(&self) -> Option<Duration> {
        self.last_success
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed())
    }
}

/// Refreshes `catalog` every `interval` until aborted, recording each outcome in the metrics.
pub async fn refresh_loop(catalog: Arc<Catalog>, metrics: Exporter, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; run() loaded once already
    loop {
        tick.tick().await;
        match catalog.refresh().await {
            Ok((joins, group_bys)) => metrics.refreshed(true, joins, group_bys),
            Err(e) => {
                tracing::warn!("definitions refresh failed (serving the previous ones): {e}");
                let (joins, group_bys) = catalog.counts();
                metrics.refreshed(false, joins, group_bys);
            }
        }
    }
}
