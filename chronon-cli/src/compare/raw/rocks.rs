//! The `rocksdb` crate baseline: `batched_multi_get_cf` and one `WriteBatch`, on the blocking
//! pool as the adapter does (an async caller has to).

use std::sync::Arc;

use anyhow::{Context as _, Result};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::super::workload::{key, value, CallFn, Op, Profile};
use super::Baseline;

/// The raw RocksDB baseline's one column family (the adapter keeps one per dataset).
const RAW_CF: &str = "raw";

/// A RocksDB in its own temporary directory, removed with the value.
pub struct RocksRaw {
    db: Arc<rocksdb::DB>,
    _dir: tempfile::TempDir,
}

impl RocksRaw {
    /// Tuned like the adapter's defaults (64 MiB LRU block cache, 10-bit bloom filters, LZ4)
    /// and, like the adapter, one column family for the dataset.
    pub fn open() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_cache(&rocksdb::Cache::new_lru_cache(64 << 20));
        table.set_bloom_filter(10.0, false);
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_block_based_table_factory(&table);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db =
            rocksdb::DB::open_cf(&opts, dir.path(), [RAW_CF]).context("opening raw RocksDB")?;
        Ok(RocksRaw {
            db: Arc::new(db),
            _dir: dir,
        })
    }
}

impl Baseline for RocksRaw {
    fn call(&self, value_size: usize) -> CallFn {
        let db = self.db.clone();
        Arc::new(move |op, idx, _ts| {
            let db = db.clone();
            tokio::task::spawn_blocking(move || {
                let n = idx.len() as u64;
                match op {
                    Op::Put => {
                        let Some(cf) = db.cf_handle(RAW_CF) else {
                            return (n, n);
                        };
                        let mut batch = rocksdb::WriteBatch::default();
                        for i in &idx {
                            batch.put_cf(&cf, key(*i), value(*i, value_size));
                        }
                        (n, db.write(batch).is_err() as u64)
                    }
                    _ => {
                        let keys: Vec<_> = idx.iter().map(|i| key(*i)).collect();
                        let cf = db.cf_handle(RAW_CF);
                        let errors = match cf {
                            // Values are copied out, as any caller that returns them must (the
                            // adapter hands out owned `Bytes`).
                            Some(cf) => db
                                .batched_multi_get_cf(&cf, keys.iter().map(|k| k.as_ref()), false)
                                .into_iter()
                                .map(|r| r.map(|v| v.map(|v| bytes::Bytes::copy_from_slice(&v))))
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

    fn settle(&self) -> Result<()> {
        let cf = self
            .db
            .cf_handle(RAW_CF)
            .context("raw RocksDB lost its column family")?;
        self.db.flush_cf(&cf).context("flushing raw RocksDB")
    }

    fn cleanup<'a>(&'a self, _profile: &'a Profile) -> BoxFuture<'a, ()> {
        // The directory goes with the value.
        futures::future::ready(()).boxed()
    }
}
