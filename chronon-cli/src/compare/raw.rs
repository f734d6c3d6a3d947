//! Raw-driver baselines: the same batched work done with the driver directly, in the same process
//! right next to the adapter's run, so the report can show the adapter's overhead as a ratio.
//!
//! Each server baseline stores one value per key with no TTL or validation, the least any store
//! must do (MongoDB's in the adapter's layout and indexes, see `raw/mongo.rs`), plus
//! [`VERSIONS`](super::workload::VERSIONS) versions per key where it answers range reads, in
//! the database's own structure for versions (a sorted set, a sort key, an index on `ts`).
//! RocksDB's baseline reads and writes the adapter's own rows instead (`raw/rocks.rs`): it is
//! embedded, so the driver's calls on the same database are the exact floor.
//! A backend's baseline is compiled in with the backend's cargo feature, and a backend without
//! one (Scylla, the memory store) is reported without ratios.

#[cfg(any(feature = "dynamodb", feature = "mongodb"))]
mod chunked;
#[cfg(feature = "dynamodb")]
mod dynamo;
#[cfg(feature = "mongodb")]
mod mongo;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_cluster;
#[cfg(feature = "rocks")]
mod rocks;

use std::sync::Arc;

use anyhow::Result;
use chronon_core::KvStore;
use futures::future::BoxFuture;
use futures::FutureExt;

use super::workload::{CallFn, Datasets, Op, Profile};

/// What each backend's baseline offers [`Raw`].
trait Baseline: Send + Sync {
    /// The batched call for `value_size` values.
    fn call(&self, value_size: usize) -> CallFn;
    /// Whether the call answers [`Op::GetRange`] (on the rows of [`Baseline::preload_versions`]).
    fn ranges(&self) -> bool {
        false
    }
    /// Writes [`VERSIONS`](super::workload::VERSIONS) versions of rows `0..profile.keys`, for
    /// range reads.
    fn preload_versions<'a>(
        &'a self,
        _profile: &'a Profile,
        _value_size: usize,
    ) -> BoxFuture<'a, Result<()>> {
        futures::future::ready(Ok(())).boxed()
    }
    /// Called once the adapter has loaded `ds`. A baseline that works on the adapter's own rows
    /// takes note of them and returns true (it then loads nothing of its own).
    fn adopt(&self, _ds: &Datasets) -> bool {
        false
    }
    /// Removes what the baseline wrote (a temporary RocksDB directory goes with the value).
    fn cleanup<'a>(&'a self, profile: &'a Profile) -> BoxFuture<'a, ()>;
    /// Called once the plain pairs are written, before the versions: brings the data to the
    /// form the adapter's bulk load leaves it in, where that differs.
    fn settle(&self) -> Result<()> {
        Ok(())
    }
}

/// A raw baseline for a backend: preloads plain pairs, then offers a [`CallFn`].
pub struct Raw(Box<dyn Baseline>);

impl Raw {
    /// The store at `url` and its baseline, if its backend has one in this build. RocksDB's
    /// baseline needs the store itself (it works on the store's database), so both open here.
    pub async fn open(url: &str) -> Result<(Arc<dyn KvStore>, Option<Raw>)> {
        #[cfg(feature = "rocks")]
        if chronon_serving::store_url::backend_of_url(url).is_some_and(|b| b.name == "rocks") {
            let store = chronon_rocks::RocksStore::open_url(url).await?;
            let raw = Raw(Box::new(self::rocks::RocksRaw::new(store.clone())));
            return Ok((Arc::new(store), Some(raw)));
        }
        let store = chronon_serving::store_url::open_store(url).await?;
        Ok((store, Raw::for_url(url).await?))
    }

    /// A baseline with data of its own for the store at `url`, if its backend (by name, from
    /// the serving crate's backend table) has one in this build.
    async fn for_url(url: &str) -> Result<Option<Raw>> {
        let Some(backend) = chronon_serving::store_url::backend_of_url(url) else {
            return Ok(None);
        };
        let baseline: Option<Box<dyn Baseline>> = match backend.name {
            #[cfg(feature = "redis")]
            "redis" if url.contains("cluster=true") => Some(Box::new(
                self::redis_cluster::RedisClusterRaw::open(url).await?,
            )),
            #[cfg(feature = "redis")]
            "redis" => Some(Box::new(self::redis::RedisRaw::open(url).await?)),
            #[cfg(feature = "dynamodb")]
            "dynamodb" => Some(Box::new(self::dynamo::DynamoRaw::open(url).await?)),
            #[cfg(feature = "mongodb")]
            "mongodb" => Some(Box::new(self::mongo::MongoRaw::open(url).await?)),
            _ => None,
        };
        Ok(baseline.map(Raw))
    }

    /// Once the adapter has loaded `ds`: a baseline on the adapter's own rows takes note of
    /// them; any other loads as many plain pairs of the same size as the adapter's `bulk_put`
    /// loads (`bulk_rows`, at least `keys`), so both sides read from data of the same size (with
    /// 10 KiB values the adapter's rows outgrow a cache where a smaller raw set would not), and
    /// the versions its range reads read.
    pub async fn preload(&self, profile: &Profile, ds: &Datasets) -> Result<()> {
        if self.0.adopt(ds) {
            return Ok(());
        }
        let value_size = ds.value_size;
        let n = profile.bulk_rows.max(profile.keys);
        for start in (0..n).step_by(1000) {
            let idx: Vec<usize> = (start..(start + 1000).min(n)).collect();
            let (n, errors) = self.call(value_size)(Op::Put, idx, 0).await;
            anyhow::ensure!(
                errors == 0,
                "raw baseline preload: {errors} of {n} puts failed"
            );
        }
        self.0.settle()?;
        if self.0.ranges() {
            self.0.preload_versions(profile, value_size).await?;
        }
        Ok(())
    }

    /// Whether the baseline answers range reads.
    pub fn ranges(&self) -> bool {
        self.0.ranges()
    }

    /// The baseline's batched call for `value_size` values.
    pub fn call(&self, value_size: usize) -> CallFn {
        self.0.call(value_size)
    }

    /// Removes what the baseline wrote (Redis keys, the DynamoDB table, the Mongo collection;
    /// the RocksDB directory goes with the value).
    pub async fn cleanup(&self, profile: &Profile) {
        self.0.cleanup(profile).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every baseline loads the quick profile's keys and reads them all back, so a broken
    /// baseline fails here instead of leaving a hole in the report.
    #[allow(dead_code)] // unused in a build without any baseline
    async fn round_trip(url: &str) {
        let profile = Profile::quick();
        let (store, raw) = Raw::open(url).await.expect("open the store and baseline");
        let raw = raw.expect("this backend has a baseline");
        let (ds, _, _) = super::super::workload::preload(&store, "rt", &profile, 100)
            .await
            .expect("adapter preload");
        raw.preload(&profile, &ds).await.expect("preload");
        let idx: Vec<usize> = (0..100).collect();
        assert_eq!(raw.call(100)(Op::GetLatest, idx.clone(), 0).await, (100, 0));
        if raw.ranges() {
            assert_eq!(raw.call(100)(Op::GetRange, idx, 0).await, (100, 0));
            let past_the_end = vec![profile.bulk_rows.max(profile.keys) + 7];
            assert_eq!(raw.call(100)(Op::GetRange, past_the_end, 0).await, (1, 1));
            // The next value size's load replaces these versions (the report loads one size
            // after the other): still exactly `VERSIONS` per key.
            let (ds2, _, _) = super::super::workload::preload(&store, "rt2", &profile, 200)
                .await
                .expect("adapter preload");
            raw.preload(&profile, &ds2).await.expect("second preload");
            let idx: Vec<usize> = (0..100).collect();
            assert_eq!(raw.call(200)(Op::GetRange, idx, 0).await, (100, 0));
            for d in [&ds2.snapshot, &ds2.series] {
                let _ = store.drop_dataset(d).await;
            }
        }
        // The workload draws keys with repeats: each repeat is answered (DynamoDB rejects a
        // batch naming a key twice, `$in` answers it once), and so is a put of one key twice.
        let repeated = vec![7, 7, 8, 7];
        assert_eq!(raw.call(100)(Op::Put, repeated.clone(), 0).await, (4, 0));
        assert_eq!(raw.call(100)(Op::GetLatest, repeated, 0).await, (4, 0));
        raw.cleanup(&profile).await;
        for d in [&ds.snapshot, &ds.series] {
            let _ = store.drop_dataset(d).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_baseline_for_the_memory_store() {
        assert!(Raw::open("memory://x").await.unwrap().1.is_none());
    }

    #[cfg(feature = "rocks")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rocks_baseline() {
        let dir = tempfile::tempdir().unwrap();
        round_trip(&format!("rocks://{}", dir.path().display())).await;
    }

    #[cfg(feature = "redis")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_baseline() {
        if let Some(s) = conformance::launch::redis::redis().await {
            round_trip(&s.url).await;
        }
    }

    #[cfg(feature = "redis")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_cluster_baseline() {
        if let Some(c) = conformance::launch::redis_cluster::redis_cluster().await {
            round_trip(&c.url).await;
        }
    }

    #[cfg(feature = "dynamodb")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dynamo_baseline() {
        if let Some(s) = conformance::launch::dynamodb::dynamodb().await {
            round_trip(&format!(
                "dynamodb://?endpoint={}&region=us-west-2",
                s.endpoint
            ))
            .await;
        }
    }

    #[cfg(feature = "mongodb")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mongo_baseline() {
        if let Some(s) = conformance::launch::mongodb::mongodb().await {
            round_trip(&format!("{}&chronon_timeout_ms=120000", s.uri)).await;
        }
    }
}
