//! The `redis` crate baseline: one pipeline of `GET`s or `SET`s per batch on a
//! `ConnectionManager`.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::super::workload::{key, value, CallFn, Op, Profile};
use super::Baseline;

/// A connection and the key prefix of this run's pairs.
pub struct RedisRaw {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

impl RedisRaw {
    /// Connects to the server of `url` (its query, the adapter's options, left out).
    pub async fn open(url: &str) -> Result<Self> {
        let base = url.split('?').next().unwrap_or(url);
        let client = redis::Client::open(base).context("raw redis client")?;
        // The adapter's default 10 s response timeout (the driver's own default, 500 ms, is
        // shorter than a 1,000-command pipeline takes on a server that fsyncs every write).
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(std::time::Duration::from_secs(10)));
        let conn = redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .context("raw redis connection")?;
        Ok(RedisRaw {
            conn,
            prefix: format!("rawbaseline:{}", rand::random::<u32>()),
        })
    }
}

impl Baseline for RedisRaw {
    fn call(&self, value_size: usize) -> CallFn {
        let conn = self.conn.clone();
        let prefix = self.prefix.clone();
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

    fn cleanup<'a>(&'a self, profile: &'a Profile) -> BoxFuture<'a, ()> {
        async move {
            let mut conn = self.conn.clone();
            for start in (0..profile.keys).step_by(1000) {
                let keys: Vec<Vec<u8>> = (start..(start + 1000).min(profile.keys))
                    .map(|i| [self.prefix.as_bytes(), &key(i)].concat())
                    .collect();
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
            }
        }
        .boxed()
    }
}
