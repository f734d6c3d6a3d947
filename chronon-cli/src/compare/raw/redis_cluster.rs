//! The Redis Cluster baseline: the `redis` crate's async cluster client used the way its
//! documentation suggests for many keys, one `MGET` or `MSET` per batch, which the driver
//! splits by hash slot and sends to each slot's master concurrently.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::super::workload::{key, value, CallFn, Op, Profile};
use super::Baseline;

/// A cluster connection and the key prefix of this run's pairs.
pub struct RedisClusterRaw {
    conn: redis::cluster_async::ClusterConnection,
    prefix: String,
}

impl RedisClusterRaw {
    /// Connects to the cluster whose seed node `url` names (its query, the adapter's options,
    /// left out).
    pub async fn open(url: &str) -> Result<Self> {
        let base = url.split('?').next().unwrap_or(url);
        let client = redis::cluster::ClusterClientBuilder::new(vec![base])
            .response_timeout(std::time::Duration::from_secs(10))
            .build()
            .context("raw redis cluster client")?;
        let conn = client
            .get_async_connection()
            .await
            .context("raw redis cluster connection")?;
        Ok(RedisClusterRaw {
            conn,
            prefix: format!("rawbaseline:{}", rand::random::<u32>()),
        })
    }
}

impl Baseline for RedisClusterRaw {
    fn call(&self, value_size: usize) -> CallFn {
        let conn = self.conn.clone();
        let prefix = self.prefix.clone();
        Arc::new(move |op, idx, _ts| {
            let mut conn = conn.clone();
            let prefix = prefix.clone();
            async move {
                let n = idx.len() as u64;
                let keys: Vec<Vec<u8>> = idx
                    .iter()
                    .map(|i| [prefix.as_bytes(), &key(*i)].concat())
                    .collect();
                match op {
                    Op::Put => {
                        let mut cmd = redis::cmd("MSET");
                        for (k, i) in keys.iter().zip(&idx) {
                            cmd.arg(k).arg(value(*i, value_size).as_ref());
                        }
                        (
                            n,
                            cmd.query_async::<()>(&mut conn).await.is_err() as u64 * n,
                        )
                    }
                    _ => {
                        let got = redis::cmd("MGET")
                            .arg(&keys)
                            .query_async::<Vec<Option<Vec<u8>>>>(&mut conn)
                            .await;
                        match got {
                            Ok(v) => (n, v.iter().filter(|x| x.is_none()).count() as u64),
                            Err(_) => (n, n),
                        }
                    }
                }
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
