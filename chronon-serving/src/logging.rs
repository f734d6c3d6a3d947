//! Response logging (Chronon's `LoggableResponse` and `Api.logResponse`): every served join
//! response can be written to a logging dataset, so training data can be built from exactly what
//! was served. Logging never slows a fetch: responses go into a bounded channel
//! ([`try_send`](tokio::sync::mpsc::Sender::try_send)); a background task writes them in batches
//! with `multi_put`; a full buffer drops the response and counts it; [`ResponseLogger::shutdown`]
//! flushes what is buffered.
//!
//! Stored layout: dataset [`LoggingOptions::dataset`] (default `CHRONON_LOGGED_RESPONSES`,
//! `TimeSeries`), key = `join_name` + `0x00` + `key_bytes`, ts = the response's `ts`, value = the
//! JSON of [`LoggableResponse::to_json`] (bytes base64). `key_bytes` is the canonical JSON of the
//! request keys (sorted by name) and `value_bytes` the JSON of the features (sorted by name);
//! `schema_hash` is the FNV-1a 64 hash of the sorted feature names, so a consumer notices when a
//! join's shape changes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::request::FetchRequest;
use crate::stream::Value;
use chronon_core::{DatasetProps, KvStore, PutRequest};

/// One served response, as Chronon's `LoggableResponse(keyBytes, valueBytes, joinName, tsMillis,
/// schemaHash)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggableResponse {
    /// The request keys (canonical JSON).
    pub key_bytes: Bytes,
    /// The features served (canonical JSON).
    pub value_bytes: Bytes,
    /// The join.
    pub join_name: String,
    /// The query time (epoch millis).
    pub ts: i64,
    /// FNV-1a 64 of the sorted feature names, hex.
    pub schema_hash: String,
}

fn fnv1a(parts: impl IntoIterator<Item = impl AsRef<[u8]>>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.as_ref().iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

impl LoggableResponse {
    /// The loggable form of a served join response.
    pub fn new(request: &FetchRequest, values: &BTreeMap<String, Value>) -> Self {
        let keys = serde_json::Value::Object(
            request
                .keys
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        let features = serde_json::Value::Object(
            values
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        );
        let ts = request.at_millis.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0)
        });
        LoggableResponse {
            key_bytes: Bytes::from(keys.to_string()),
            value_bytes: Bytes::from(features.to_string()),
            join_name: request.name.clone(),
            ts,
            schema_hash: format!("{:016x}", fnv1a(values.keys())),
        }
    }

    /// The stored JSON (bytes base64-encoded).
    pub fn to_json(&self) -> serde_json::Value {
        let b64 = base64::engine::general_purpose::STANDARD;
        serde_json::json!({
            "keyBytes": b64.encode(&self.key_bytes),
            "valueBytes": b64.encode(&self.value_bytes),
            "joinName": self.join_name,
            "tsMillis": self.ts,
            "schemaHash": self.schema_hash,
        })
    }
}

/// How responses are logged.
#[derive(Debug, Clone)]
pub struct LoggingOptions {
    /// The dataset (default `CHRONON_LOGGED_RESPONSES`).
    pub dataset: String,
    /// Responses buffered before new ones are dropped (default 10,000).
    pub buffer: usize,
    /// Responses per `multi_put` (default 500).
    pub batch_size: usize,
    /// A partial batch is written after this long (default 100 ms).
    pub flush_interval: Duration,
    /// Fraction of responses logged, `0.0..=1.0` (default 1.0); chosen by a hash of the join
    /// and keys, so a key is either always or never logged.
    pub sample_rate: f64,
}

impl Default for LoggingOptions {
    fn default() -> Self {
        LoggingOptions {
            dataset: "CHRONON_LOGGED_RESPONSES".into(),
            buffer: 10_000,
            batch_size: 500,
            flush_interval: Duration::from_millis(100),
            sample_rate: 1.0,
        }
    }
}

/// Counters of a logger.
#[derive(Debug, Default)]
pub struct LoggingStats {
    /// Responses written.
    pub written: AtomicU64,
    /// Responses dropped because the buffer was full.
    pub dropped: AtomicU64,
    /// Responses not chosen by sampling.
    pub sampled_out: AtomicU64,
    /// Responses whose write failed.
    pub failed: AtomicU64,
}

/// Writes [`LoggableResponse`]s off the request path (see the module docs).
#[derive(Debug)]
pub struct ResponseLogger {
    tx: Mutex<Option<mpsc::Sender<LoggableResponse>>>,
    task: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<LoggingStats>,
    sample_rate: f64,
}

impl ResponseLogger {
    /// Starts the background writer (needs a Tokio runtime) after creating the dataset.
    pub async fn start(
        store: Arc<dyn KvStore>,
        options: LoggingOptions,
    ) -> Result<Arc<Self>, chronon_core::KvError> {
        store
            .create(&options.dataset, &DatasetProps::time_series())
            .await?;
        let (tx, mut rx) = mpsc::channel::<LoggableResponse>(options.buffer.max(1));
        let stats = Arc::new(LoggingStats::default());
        let task_stats = stats.clone();
        let dataset = options.dataset.clone();
        let batch_size = options.batch_size.max(1);
        let interval = options.flush_interval;
        let task = tokio::spawn(async move {
            let mut batch: Vec<LoggableResponse> = Vec::with_capacity(batch_size);
            loop {
                let closed = match tokio::time::timeout(interval, rx.recv()).await {
                    Ok(Some(r)) => {
                        batch.push(r);
                        while batch.len() < batch_size {
                            match rx.try_recv() {
                                Ok(r) => batch.push(r),
                                Err(_) => break,
                            }
                        }
                        false
                    }
                    Ok(None) => true,
                    Err(_) => false,
                };
                if !batch.is_empty() && (batch.len() >= batch_size || closed || rx.is_empty()) {
                    write(&*store, &dataset, std::mem::take(&mut batch), &task_stats).await;
                }
                if closed {
                    return;
                }
            }
        });
        Ok(Arc::new(ResponseLogger {
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
            stats,
            sample_rate: options.sample_rate.clamp(0.0, 1.0),
        }))
    }

    /// Queues a response; never waits. Dropped (and counted) when the buffer is full or the
    /// logger is shut down.
    pub fn log(&self, response: LoggableResponse) {
        if self.sample_rate < 1.0 {
            let h = fnv1a([response.join_name.as_bytes(), &response.key_bytes]);
            if (h % 1_000_000) as f64 >= self.sample_rate * 1_000_000.0 {
                self.stats.sampled_out.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let sent = tx.as_ref().map(|tx| tx.try_send(response).is_ok());
        if sent != Some(true) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters.
    pub fn stats(&self) -> &LoggingStats {
        &self.stats
    }

    /// Stops accepting responses and waits until everything buffered is written.
    pub async fn shutdown(&self) {
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn write(
    store: &dyn KvStore,
    dataset: &str,
    batch: Vec<LoggableResponse>,
    stats: &LoggingStats,
) {
    let puts: Vec<PutRequest> = batch
        .iter()
        .map(|r| {
            let mut key = Vec::with_capacity(r.join_name.len() + 1 + r.key_bytes.len());
            key.extend_from_slice(r.join_name.as_bytes());
            key.push(0);
            key.extend_from_slice(&r.key_bytes);
            key.truncate(chronon_core::validate::MAX_KEY_BYTES);
            PutRequest::new(
                dataset,
                key,
                r.to_json().to_string().into_bytes(),
                Some(r.ts),
            )
        })
        .collect();
    for result in store.multi_put(puts).await {
        match result {
            Ok(()) => stats.written.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!("logging a response failed: {e}");
                stats.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}
