//! Raw-driver baselines: the same batched work done with the driver directly, in the same process
//! right next to the adapter's run, so the report can show the adapter's overhead as a ratio.
//!
//! Each baseline stores plain `key -> value` with no versions, TTL or validation: the least any
//! store must do. Latest reads and puts are measured (ranges have no driver-neutral equivalent).

use std::sync::Arc;

use anyhow::{Context as _, Result};
use futures::FutureExt;

use super::workload::{key, value, CallFn, Op, Profile};

/// A raw baseline for a backend: preloads plain pairs, then offers a [`CallFn`].
pub enum Raw {
    /// `rocksdb` crate: `batched_multi_get_cf` and one `WriteBatch`, on the blocking pool as the
    /// adapter does (an async caller has to).
    Rocks(Arc<rocksdb::DB>, #[allow(dead_code)] tempfile::TempDir),
    /// `redis` crate: one pipeline of `GET`s or `SET`s per batch on a `ConnectionManager`.
    Redis(redis::aio::ConnectionManager, String),
}

impl Raw {
    /// A baseline for the store at `url`, if this backend has one.
    pub async fn for_url(url: &str) -> Result<Option<Raw>> {
        if url.starts_with("rocks:") {
            let dir = tempfile::tempdir()?;
            let mut opts = rocksdb::Options::default();
            opts.create_if_missing(true);
            let db = rocksdb::DB::open(&opts, dir.path()).context("opening raw RocksDB")?;
            return Ok(Some(Raw::Rocks(Arc::new(db), dir)));
        }
        if url.starts_with("redis:") {
            let base = url.split('?').next().unwrap_or(url);
            let client = redis::Client::open(base).context("raw redis client")?;
            let conn = redis::aio::ConnectionManager::new(client)
                .await
                .context("raw redis connection")?;
            return Ok(Some(Raw::Redis(
                conn,
                format!("rawbaseline:{}", rand::random::<u32>()),
            )));
        }
        Ok(None)
    }

    /// Loads `profile.keys` plain pairs of `value_size` bytes.
    pub async fn preload(&self, profile: &Profile, value_size: usize) -> Result<()> {
        let n = profile.keys;
        for start in (0..n).step_by(1000) {
            let idx: Vec<usize> = (start..(start + 1000).min(n)).collect();
            let (_, errors) = self.call(value_size)(Op::Put, idx, 0).await;
            anyhow::ensure!(errors == 0, "raw preload failed");
        }
        Ok(())
    }

    /// The baseline's batched call for `value_size` values.
    pub fn call(&self, value_size: usize) -> CallFn {
        match self {
            Raw::Rocks(db, _) => {
                let db = db.clone();
                Arc::new(move |op, idx, _ts| {
                    let db = db.clone();
                    tokio::task::spawn_blocking(move || {
                        let n = idx.len() as u64;
                        match op {
                            Op::Put => {
                                let mut batch = rocksdb::WriteBatch::default();
                                for i in &idx {
                                    batch.put(key(*i), value(*i, value_size));
                                }
                                (n, db.write(batch).is_err() as u64)
                            }
                            _ => {
                                let keys: Vec<_> = idx.iter().map(|i| key(*i)).collect();
                                let cf = db.cf_handle(rocksdb::DEFAULT_COLUMN_FAMILY_NAME);
                                let errors = match cf {
                                    Some(cf) => db
                                        .batched_multi_get_cf(
                                            &cf,
                                            keys.iter().map(|k| k.as_ref()),
                                            false,
                                        )
                                        .into_iter()
                                        .filter(|r| !matches!(r, Ok(Some(_))))
                                        .count(),
                                    None => keys.len(),
                                };
                                (n, errors as u64)
                            }
                        }
                    })
                    .map(|r| r.unwrap_or((0, 1)))
                    .boxed()
                })
            }
            Raw::Redis(conn, prefix) => {
                let conn = conn.clone();
                let prefix = prefix.clone();
                Arc::new(move |op, idx, _ts| {
                    let mut conn = conn.clone();
                    let prefix = prefix.clone();
                    async move {
                        let n = idx.len() as u64;
                        let mut pipe = redis::pipe();
                        for i in &idx {
                            let k = [prefix.as_bytes(), &key(*i)].concat();
                            match op {
                                Op::Put => {
                                    pipe.set(k, value(*i, value_size).as_ref()).ignore();
                                }
                                _ => {
                                    pipe.get(k);
                                }
                            }
                        }
                        let errors = match op {
                            Op::Put => pipe.query_async::<()>(&mut conn).await.is_err() as u64,
                            _ => match pipe.query_async::<Vec<Option<Vec<u8>>>>(&mut conn).await {
                                Ok(v) => v.iter().filter(|x| x.is_none()).count() as u64,
                                Err(_) => n,
                            },
                        };
                        (n, errors)
                    }
                    .boxed()
                })
            }
        }
    }

    /// Removes what the baseline wrote (Redis keys; the RocksDB directory goes with the value).
    pub async fn cleanup(&self, profile: &Profile) {
        if let Raw::Redis(conn, prefix) = self {
            let mut conn = conn.clone();
            for start in (0..profile.keys).step_by(1000) {
                let keys: Vec<Vec<u8>> = (start..(start + 1000).min(profile.keys))
                    .map(|i| [prefix.as_bytes(), &key(i)].concat())
                    .collect();
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
            }
        }
    }
}
