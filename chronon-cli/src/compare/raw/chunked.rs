//! The fan-out the DynamoDB and MongoDB baselines share: a batch split into chunks of one
//! request each, as many in flight as the adapter allows, the per-chunk counts summed.

use std::future::Future;
use std::sync::Arc;

use anyhow::Result;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use super::super::workload::{CallFn, Op, Profile};
use super::Baseline;

/// A baseline that sends a batch as chunks of one request each.
pub trait Chunked: Send + Sync + 'static {
    /// Keys per read request.
    fn get_chunk_len(&self) -> usize;
    /// Values per write request.
    fn put_chunk_len(&self) -> usize;
    /// Requests in flight at once (the adapter's own limit).
    fn in_flight(&self) -> usize;
    /// Keys per range read request.
    fn range_chunk_len(&self) -> usize;
    /// Reads one chunk; returns the keys found.
    fn get_chunk(&self, chunk: Vec<usize>) -> impl Future<Output = u64> + Send;
    /// Reads every version of each key of one chunk (of the versioned rows); returns the keys
    /// that had all [`VERSIONS`](super::super::workload::VERSIONS) of theirs.
    fn get_range_chunk(&self, chunk: Vec<usize>) -> impl Future<Output = u64> + Send;
    /// Writes [`VERSIONS`](super::super::workload::VERSIONS) versions of rows `0..keys`, for
    /// the range reads.
    fn preload_versions(
        &self,
        keys: usize,
        value_size: usize,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Writes one chunk with the call's version timestamp `ts` (the adapter's puts carry it);
    /// returns the values not written.
    fn put_chunk(
        &self,
        chunk: Vec<usize>,
        value_size: usize,
        ts: i64,
    ) -> impl Future<Output = u64> + Send;
    /// Removes what the baseline wrote.
    fn cleanup(&self) -> impl Future<Output = ()> + Send;
}

/// Runs `per_chunk` on `idx` split into chunks of `chunk_len` indices, `in_flight` at a time,
/// and returns the sum of what they return.
pub async fn fan_out<F, Fut>(idx: &[usize], chunk_len: usize, in_flight: usize, per_chunk: F) -> u64
where
    F: FnMut(Vec<usize>) -> Fut,
    Fut: Future<Output = u64>,
{
    futures::stream::iter(idx.chunks(chunk_len.max(1)).map(<[usize]>::to_vec))
        .map(per_chunk)
        .buffer_unordered(in_flight.max(1))
        .fold(0, |sum, n| async move { sum + n })
        .await
}

impl<T: Chunked> Baseline for Arc<T> {
    fn call(&self, value_size: usize) -> CallFn {
        let raw = self.clone();
        Arc::new(move |op, idx, ts| {
            let raw = raw.clone();
            async move {
                let n = idx.len() as u64;
                let errors = match op {
                    Op::Put => {
                        fan_out(&idx, raw.put_chunk_len(), raw.in_flight(), |chunk| {
                            let raw = raw.clone();
                            async move { raw.put_chunk(chunk, value_size, ts).await }
                        })
                        .await
                    }
                    Op::GetLatest => {
                        let found = fan_out(&idx, raw.get_chunk_len(), raw.in_flight(), |chunk| {
                            let raw = raw.clone();
                            async move { raw.get_chunk(chunk).await }
                        })
                        .await;
                        n - found.min(n)
                    }
                    Op::GetRange => {
                        let found =
                            fan_out(&idx, raw.range_chunk_len(), raw.in_flight(), |chunk| {
                                let raw = raw.clone();
                                async move { raw.get_range_chunk(chunk).await }
                            })
                            .await;
                        n - found.min(n)
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
        Chunked::preload_versions(&**self, profile.keys, value_size).boxed()
    }

    fn cleanup<'a>(&'a self, _profile: &'a Profile) -> BoxFuture<'a, ()> {
        Chunked::cleanup(&**self).boxed()
    }
}

/// The row number of a workload key (`user:000000042` -> 42), for baselines that get keys back.
pub fn key_index(key: &[u8]) -> Option<usize> {
    std::str::from_utf8(key.strip_prefix(b"user:")?)
        .ok()?
        .parse()
        .ok()
}

/// How many times each row is asked for in `idx` (the workload draws keys with repeats; a store
/// answers a repeated key once per `BatchGetItem` or `$in`, so baselines send each key once and
/// count the answer once per time it was asked).
pub fn multiplicity(idx: &[usize]) -> std::collections::HashMap<usize, u64> {
    let mut asked = std::collections::HashMap::new();
    for i in idx {
        *asked.entry(*i).or_default() += 1;
    }
    asked
}
