//! Join derivations compiled once per join (Chronon builds them once, in the join's
//! `JoinCodec`), not once per `fetch_joins` call: a compiled [`Deriver`] is kept with the join
//! definition and the part serving infos it was built from, and rebuilt only when one of those
//! is reloaded (they are `Arc`s the fetcher's metadata caches replace on reload, so pointer
//! identity says whether the inputs changed).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{FetchError, Served};
use crate::derive::model::join_deriver;
use crate::derive::Deriver;
use crate::groupby::Join;

/// A join's compiled derivations (`None`: the join has none), or why they cannot compile.
pub(super) type Compiled = Result<Option<Arc<Deriver>>, FetchError>;

#[derive(Debug)]
struct Entry {
    join: Arc<Join>,
    parts: Vec<Arc<Served>>,
    compiled: Compiled,
}

/// The compiled derivations of every join served so far.
#[derive(Debug, Default)]
pub(super) struct JoinDerivers {
    entries: RwLock<HashMap<String, Entry>>,
}

impl JoinDerivers {
    /// The derivations of `join` over the serving infos of its parts, compiled when first asked
    /// for or when the join or one of its parts was reloaded since.
    pub(super) fn get(
        &self,
        join: &Arc<Join>,
        infos: &HashMap<String, Result<Arc<Served>, FetchError>>,
    ) -> Compiled {
        let mut parts = Vec::with_capacity(join.parts.len());
        for p in &join.parts {
            match infos.get(&p.group_by) {
                Some(Ok(info)) => parts.push(info.clone()),
                Some(Err(e)) => return Err(e.clone()),
                None => {
                    return Err(FetchError::NotFound {
                        kind: "group-by",
                        name: p.group_by.clone(),
                    })
                }
            }
        }
        let same = |e: &Entry| {
            Arc::ptr_eq(&e.join, join)
                && e.parts.len() == parts.len()
                && e.parts.iter().zip(&parts).all(|(a, b)| Arc::ptr_eq(a, b))
        };
        if let Some(e) = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&join.name)
            .filter(|e| same(e))
        {
            return e.compiled.clone();
        }
        let gbs: Vec<_> = parts.iter().map(|i| &i.gb).collect();
        let compiled = join_deriver(join, &gbs)
            .map(|d| d.map(Arc::new))
            .map_err(|e| FetchError::Definition {
                name: join.name.clone(),
                reason: e.reason,
            });
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                join.name.clone(),
                Entry {
                    join: join.clone(),
                    parts,
                    compiled: compiled.clone(),
                },
            );
        compiled
    }

    /// Forgets every compiled join (with the fetcher's other caches).
    pub(super) fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
