//! The `redis` crate baseline on one `ConnectionManager` (one multiplexed connection, as the
//! adapter has): one `MGET` per batch for latest reads and one `MSET` for puts (the fastest the
//! server offers, and what the adapter sends for snapshot data), a pipeline of `ZRANGEBYSCORE`s
//! on sorted sets of versions for ranges (the adapter's layout for time series).

use std::sync::Arc;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;

use super::super::workload::{key, value, CallFn, Op, Profile, T0, VERSIONS};
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

    /// The Redis key of row `i`'s plain value.
    fn plain_key(prefix: &str, i: usize) -> Vec<u8> {
        [prefix.as_bytes(), b":", &key(i)].concat()
    }

    /// The Redis key of row `i`'s sorted set of versions.
    fn versions_key(prefix: &str, i: usize) -> Vec<u8> {
        [prefix.as_bytes(), b":ts:", &key(i)].concat()
    }
}

/// A version as the adapter stores it in a sorted set: `ts (8 bytes BE) ++ value`.
fn member(ts: i64, value: &[u8]) -> Vec<u8> {
    [&(ts as u64).to_be_bytes()[..], value].concat()
}

impl Baseline for RedisRaw {
    fn call(&self, value_size: usize) -> CallFn {
        let conn = self.conn.clone();
        let prefix = Arc::<str>::from(self.prefix.as_str());
        Arc::new(move |op, idx, _ts| {
            let mut conn = conn.clone();
            let prefix = prefix.clone();
            async move {
                let n = idx.len() as u64;
                let errors = match op {
                    // One `MSET` / `MGET` per batch: the fewest bytes and replies the server
                    // allows (the adapter sends the same commands for snapshot data).
                    Op::Put => {
                        let items: Vec<(Vec<u8>, Bytes)> = idx
                            .iter()
                            .map(|i| (RedisRaw::plain_key(&prefix, *i), value(*i, value_size)))
                            .collect();
                        let items: Vec<(&[u8], &[u8])> = items
                            .iter()
                            .map(|(k, v)| (k.as_slice(), v.as_ref()))
                            .collect();
                        redis::cmd("MSET")
                            .arg(&items)
                            .query_async::<()>(&mut conn)
                            .await
                            .is_err() as u64
                    }
                    Op::GetLatest => {
                        let keys: Vec<Vec<u8>> = idx
                            .iter()
                            .map(|i| RedisRaw::plain_key(&prefix, *i))
                            .collect();
                        match redis::cmd("MGET")
                            .arg(&keys)
                            .query_async::<Vec<Option<Vec<u8>>>>(&mut conn)
                            .await
                        {
                            Ok(v) => v.iter().filter(|x| x.is_none()).count() as u64,
                            Err(_) => n,
                        }
                    }
                    Op::GetRange => {
                        let mut pipe = redis::pipe();
                        for i in &idx {
                            pipe.zrangebyscore(RedisRaw::versions_key(&prefix, *i), T0, "+inf");
                        }
                        match pipe.query_async::<Vec<Vec<Vec<u8>>>>(&mut conn).await {
                            Ok(v) => v.iter().filter(|x| x.len() as i64 != VERSIONS).count() as u64,
                            Err(_) => n,
                        }
                    }
                };
                (n, errors)
            }
            .boxed()
        })
    }

    fn ranges(&self) -> bool {
        true
    }

    fn preload_versions<'a>(
        &'a self,
        profile: &'a Profile,
        value_size: usize,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let mut conn = self.conn.clone();
            for start in (0..profile.keys).step_by(1000) {
                let mut pipe = redis::pipe();
                for i in start..(start + 1000).min(profile.keys) {
                    let v = value(i, value_size);
                    let items: Vec<(i64, Vec<u8>)> = (0..VERSIONS)
                        .map(|t| (T0 + t, member(T0 + t, &v)))
                        .collect();
                    // The previous value size's versions go first (other values, same scores).
                    let k = Self::versions_key(&self.prefix, i);
                    pipe.del(&k).ignore();
                    pipe.zadd_multiple(k, &items).ignore();
                }
                pipe.query_async::<()>(&mut conn)
                    .await
                    .context("raw redis baseline: loading versions")?;
            }
            Ok(())
        }
        .boxed()
    }

    fn cleanup<'a>(&'a self, profile: &'a Profile) -> BoxFuture<'a, ()> {
        async move {
            let mut conn = self.conn.clone();
            let rows = profile.bulk_rows.max(profile.keys);
            for start in (0..rows).step_by(1000) {
                let keys: Vec<Vec<u8>> = (start..(start + 1000).min(rows))
                    .flat_map(|i| {
                        [
                            Self::plain_key(&self.prefix, i),
                            Self::versions_key(&self.prefix, i),
                        ]
                    })
                    .collect();
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
            }
        }
        .boxed()
    }
}
