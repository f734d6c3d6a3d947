//! Raw-driver baselines: the same batched work done with the driver directly, in the same process
//! right next to the adapter's run, so the report can show the adapter's overhead as a ratio.
//!
//! Each baseline stores one value per key with no versions, TTL or validation: the least any
//! store must do (MongoDB's in the adapter's layout and indexes, see `raw/mongo.rs`). Latest reads and puts are measured (ranges have no driver-neutral equivalent).
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
#[cfg(feature = "rocks")]
mod rocks;

use anyhow::Result;
use futures::future::BoxFuture;

use super::workload::{CallFn, Op, Profile};

/// What each backend's baseline offers [`Raw`].
trait Baseline: Send + Sync {
    /// The batched call for `value_size` values.
    fn call(&self, value_size: usize) -> CallFn;
    /// Removes what the baseline wrote (a temporary RocksDB directory goes with the value).
    fn cleanup<'a>(&'a self, profile: &'a Profile) -> BoxFuture<'a, ()>;
    /// Called once the preload is written: brings the data to the form the adapter's bulk load
    /// leaves it in (RocksDB: flushed to an SST file, as `bulk_put` ingests one), so both read
    /// the same structures.
    fn settle(&self) -> Result<()> {
        Ok(())
    }
}

/// A raw baseline for a backend: preloads plain pairs, then offers a [`CallFn`].
pub struct Raw(Box<dyn Baseline>);

impl Raw {
    /// A baseline for the store at `url`, if its backend (by name, from the serving crate's
    /// backend table) has one in this build.
    pub async fn for_url(url: &str) -> Result<Option<Raw>> {
        let Some(backend) = chronon_serving::store_url::backend_of_url(url) else {
            return Ok(None);
        };
        let baseline: Option<Box<dyn Baseline>> = match backend.name {
            #[cfg(feature = "rocks")]
            "rocks" => Some(Box::new(self::rocks::RocksRaw::open()?)),
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

    /// Loads as many plain pairs of `value_size` bytes as the adapter's `bulk_put` loads
    /// (`bulk_rows`, at least `keys`), so both sides read from data of the same size: with
    /// 10 KiB values the adapter's rows outgrow the block cache where a smaller raw set would not.
    pub async fn preload(&self, profile: &Profile, value_size: usize) -> Result<()> {
        let n = profile.bulk_rows.max(profile.keys);
        for start in (0..n).step_by(1000) {
            let idx: Vec<usize> = (start..(start + 1000).min(n)).collect();
            let (n, errors) = self.call(value_size)(Op::Put, idx, 0).await;
            anyhow::ensure!(
                errors == 0,
                "raw baseline preload: {errors} of {n} puts failed"
            );
        }
        self.0.settle()
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
        let raw = Raw::for_url(url)
            .await
            .expect("open the baseline")
            .expect("this backend has a baseline");
        raw.preload(&profile, 100).await.expect("preload");
        let idx: Vec<usize> = (0..100).collect();
        assert_eq!(raw.call(100)(Op::GetLatest, idx, 0).await, (100, 0));
        // The workload draws keys with repeats: each repeat is answered (DynamoDB rejects a
        // batch naming a key twice, `$in` answers it once), and so is a put of one key twice.
        let repeated = vec![7, 7, 8, 7];
        assert_eq!(raw.call(100)(Op::Put, repeated.clone(), 0).await, (4, 0));
        assert_eq!(raw.call(100)(Op::GetLatest, repeated, 0).await, (4, 0));
        raw.cleanup(&profile).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_baseline_for_the_memory_store() {
        assert!(Raw::for_url("memory://x").await.unwrap().is_none());
    }

    #[cfg(feature = "rocks")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rocks_baseline() {
        round_trip("rocks:///baseline-uses-its-own-temp-dir").await;
    }

    #[cfg(feature = "redis")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_baseline() {
        if let Some(s) = conformance::launch::redis::redis().await {
            round_trip(&s.url).await;
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
