//! The streaming writer: decode each message, encode key and row, write them to the group-by's
//! `<NAME>_STREAMING` time-series dataset (what Chronon's `spark.streaming.GroupBy` does with
//! its `DataWriter`), batched, with bounded memory, dead letters and checkpoints.
//!
//! What is stored, per Chronon's streaming job:
//! - **Events** ([`DataModel::Events`]): key = the key columns ([`KeyCodec`]), value = an Avro
//!   record `<NAME>_INPUT_COLS` of the value columns, put at ts = the event's time column.
//! - **Entities** (CDC, [`DataModel::Entities`]): every image becomes one Chronon
//!   `<NAME>_MUTATION_COLS` record, the value columns plus `ts` (the row's time column, else the
//!   mutation time) and `is_before` (`true` for a before-image, so a reader can reverse it), put
//!   at ts = the mutation time (`mutation_ts`, else the time column), one record per put as the
//!   JVM's fetcher reads them (`FetcherBase`, `mutationValueAvroCodec`). A `(key, ts)` put
//!   replaces, so when an update's before- and after-image share a key the before-image is put
//!   1 ms earlier (JVM Chronon's own streaming job puts both at the mutation time, and a store
//!   that keeps one version per `(key, ts)` loses its before-image).
//! - Keys and datasets are JVM Chronon's (`<CLEANNAME>_STREAMING`, the `Key` record): a JVM
//!   fetcher reads what this writer writes (`chronon_serving::jvm`).
//! - Value columns default to every column that is not a key, the time column or `mutation_ts`;
//!   a GroupBy's [`crate::groupby::GroupBy::writer_options`] gives its aggregation inputs, the
//!   JVM's `_INPUT_COLS`.
//! - Updates whose before and after are equal are dropped, as Chronon drops them.
//!
//! Delivery is at-least-once: a batch is written when it reaches `batch_size` puts or is
//! `batch_interval` old; up to `max_in_flight` batches are outstanding, and reading stops while
//! they are (backpressure), so memory stays bounded whatever the store's speed. Batches are
//! acknowledged in order and the source position after a batch is committed only once it and
//! everything before it is written. Retryable store errors are retried with backoff; a store
//! that stays down stops the stream without committing, and a restart resumes from the last
//! commit (re-writes replace, so nothing is duplicated).
//!
//! Bad messages (undecodable, no key, no time, or refused by the store as too large or invalid)
//! are counted, logged with their position and sent to the dead-letter sink; they never stop
//! the stream and never reach the dataset. In strict mode the first one stops the stream after
//! everything before it has been written and committed.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};

use super::avro::RowCodec;
use super::dead_letter::{DeadLetter, DeadLetterSink};
use super::debezium::MUTATION_TS_COLUMN;
use super::decoder::{DataModel, StreamDecoder};
use super::error::StreamError;
use super::key::KeyCodec;
use super::mutation::{is_time_type, Mutation, MutationKind};
use super::schema::{DataType, StructField, StructType};
use super::source::{Committer, Message, Position, Source};
use super::stats::{StreamStats, StreamSummary};
use super::value::{Row, Value};
use chronon_core::{validate, DatasetKind, DatasetProps, KvError, KvStore, PutRequest};

/// Chronon's `Constants.ReversalColumn`.
pub const REVERSAL_COLUMN: &str = "is_before";
/// Chronon's `Constants.TimeColumn`.
pub const TIME_COLUMN: &str = "ts";

/// Chronon's `MetaData.cleanName`: every character outside `[a-zA-Z0-9_]` becomes `_`.
pub fn clean_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The streaming dataset of a group-by, `<CLEANNAME>_STREAMING` (Chronon's
/// `GroupBy.streamingDataset`, see [`crate::jvm::streaming_dataset`]).
pub fn streaming_dataset(group_by: &str) -> String {
    crate::jvm::streaming_dataset(group_by)
}

/// How the writer runs.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// The group-by name (the dataset is `<cleanName>_STREAMING`).
    pub group_by: String,
    /// The key columns.
    pub key_columns: Vec<String>,
    /// The event time column (`long` epoch millis or `timestamp`); Chronon's is `ts`.
    pub time_column: String,
    /// The value columns; `None` for every column but keys, time and `mutation_ts`.
    pub value_columns: Option<Vec<String>>,
    /// Events or entities; `None` takes the decoder's.
    pub data_model: Option<DataModel>,
    /// Puts per store batch (default 2,000).
    pub batch_size: usize,
    /// A partial batch is written after this long (default 200 ms).
    pub batch_interval: Duration,
    /// Batches written concurrently before reading pauses (default 4).
    pub max_in_flight: usize,
    /// Stop at the first bad message (default: dead-letter it and go on).
    pub strict: bool,
    /// Retries of a retryable store error before the stream stops (default 8).
    pub max_write_retries: u32,
    /// First retry delay, doubled each time up to 5 s (default 100 ms).
    pub retry_backoff: Duration,
    /// Bad messages logged at `warn` before only every 1,000th is (default 100).
    pub log_first_bad: u64,
}

impl WriterOptions {
    /// Options for `group_by` keyed by `key_columns` with time column `time_column`.
    pub fn new<S: Into<String>>(
        group_by: impl Into<String>,
        key_columns: impl IntoIterator<Item = S>,
        time_column: impl Into<String>,
    ) -> Self {
        WriterOptions {
            group_by: group_by.into(),
            key_columns: key_columns.into_iter().map(Into::into).collect(),
            time_column: time_column.into(),
            value_columns: None,
            data_model: None,
            batch_size: 2_000,
            batch_interval: Duration::from_millis(200),
            max_in_flight: 4,
            strict: false,
            max_write_retries: 8,
            retry_backoff: Duration::from_millis(100),
            log_first_bad: 100,
        }
    }
}

/// One encoded put: key bytes, value bytes, version ts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPut {
    /// The key bytes.
    pub key: Vec<u8>,
    /// The value bytes.
    pub value: Vec<u8>,
    /// The version timestamp (ms).
    pub ts: i64,
}

/// Decodes, encodes and writes a stream into a group-by's streaming dataset.
pub struct StreamingWriter {
    decoder: Arc<dyn StreamDecoder>,
    store: Arc<dyn KvStore>,
    opts: WriterOptions,
    model: DataModel,
    dataset: String,
    key_codec: KeyCodec,
    value_codec: RowCodec,
    value_indices: Vec<usize>,
    time_index: usize,
    mutation_ts_index: Option<usize>,
    dead_letter: Option<Arc<dyn DeadLetterSink>>,
    dead_letter_dirty: AtomicBool,
    stats: Arc<StreamStats>,
}

impl std::fmt::Debug for StreamingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingWriter")
            .field("dataset", &self.dataset)
            .field("model", &self.model)
            .field("opts", &self.opts)
            .finish()
    }
}

struct PendingBatch {
    puts: Vec<PutRequest>,
    /// For each put, the index of its message in `messages`.
    origins: Vec<u32>,
    messages: Vec<Message>,
    last: Option<Position>,
    started: Option<tokio::time::Instant>,
}

impl PendingBatch {
    fn new() -> Self {
        PendingBatch {
            puts: Vec::new(),
            origins: Vec::new(),
            messages: Vec::new(),
            last: None,
            started: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.last.is_none()
    }
}

struct Ack {
    last: Option<Position>,
    written: u64,
    /// Messages the store refused, with why.
    refused: Vec<(Message, KvError)>,
}

type AckFuture = BoxFuture<'static, Result<Ack, StreamError>>;

impl StreamingWriter {
    /// A writer of `decoder`'s rows into `store`, checking keys, time and value columns against
    /// the decoder's schema.
    pub fn new(
        decoder: Arc<dyn StreamDecoder>,
        store: Arc<dyn KvStore>,
        opts: WriterOptions,
    ) -> Result<Self, StreamError> {
        let schema = decoder.schema().clone();
        let model = opts.data_model.unwrap_or_else(|| decoder.data_model());
        if opts.batch_size == 0 || opts.max_in_flight == 0 {
            return Err(StreamError::Config(
                "batch_size and max_in_flight must be at least 1".into(),
            ));
        }
        let key_codec = KeyCodec::new(&schema, &opts.key_columns)?;
        let time_index = schema.index_of(&opts.time_column).ok_or_else(|| {
            StreamError::Config(format!(
                "time column {:?} is not in schema {schema}",
                opts.time_column
            ))
        })?;
        if !is_time_type(&schema.fields[time_index].data_type) {
            return Err(StreamError::Config(format!(
                "time column {:?} is {}, but must be long (epoch ms) or timestamp",
                opts.time_column, schema.fields[time_index].data_type
            )));
        }
        let mutation_ts_index = schema
            .index_of(MUTATION_TS_COLUMN)
            .filter(|i| is_time_type(&schema.fields[*i].data_type));
        let value_indices: Vec<usize> = match &opts.value_columns {
            Some(cols) => cols
                .iter()
                .map(|c| {
                    schema.index_of(c).ok_or_else(|| {
                        StreamError::Config(format!("value column {c:?} is not in schema {schema}"))
                    })
                })
                .collect::<Result<_, _>>()?,
            None => (0..schema.fields.len())
                .filter(|i| {
                    let n = schema.fields[*i].name.as_str();
                    !opts.key_columns.iter().any(|k| k == n)
                        && *i != time_index
                        && n != MUTATION_TS_COLUMN
                })
                .collect(),
        };
        let clean = clean_name(&opts.group_by);
        let mut value_fields: Vec<StructField> = value_indices
            .iter()
            .map(|&i| schema.fields[i].clone())
            .collect();
        let value_name = match model {
            DataModel::Events => format!("{clean}_INPUT_COLS"),
            DataModel::Entities => {
                for extra in [TIME_COLUMN, REVERSAL_COLUMN] {
                    if value_fields.iter().any(|f| f.name == extra) {
                        return Err(StreamError::Config(format!(
                            "value column {extra:?} collides with Chronon's mutation column of that name; rename it or leave it out of the values"
                        )));
                    }
                }
                value_fields.push(StructField::new(TIME_COLUMN, DataType::Long));
                value_fields.push(StructField::new(REVERSAL_COLUMN, DataType::Boolean));
                format!("{clean}_MUTATION_COLS")
            }
        };
        if value_fields.is_empty() {
            value_fields.push(StructField::new(TIME_COLUMN, DataType::Long));
        }
        let value_codec = RowCodec::new(&StructType::new(value_name, value_fields))?;
        let dataset = streaming_dataset(&opts.group_by);
        validate::dataset_name(&dataset)?;
        Ok(StreamingWriter {
            decoder,
            store,
            opts,
            model,
            dataset,
            key_codec,
            value_codec,
            value_indices,
            time_index,
            mutation_ts_index,
            dead_letter: None,
            dead_letter_dirty: AtomicBool::new(false),
            stats: Arc::new(StreamStats::default()),
        })
    }

    /// Sends bad messages to `sink` (without one they are only counted and logged).
    pub fn with_dead_letter(mut self, sink: Arc<dyn DeadLetterSink>) -> Self {
        self.dead_letter = Some(sink);
        self
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<StreamStats> {
        self.stats.clone()
    }

    /// The dataset written (`<NAME>_STREAMING`).
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// Events or entities.
    pub fn data_model(&self) -> DataModel {
        self.model
    }

    /// The key codec (a fetcher encodes lookups with the same one).
    pub fn key_codec(&self) -> &KeyCodec {
        &self.key_codec
    }

    /// The value codec: an `_INPUT_COLS` record per event, a `_MUTATION_COLS` record per
    /// entity image.
    pub fn value_codec(&self) -> &RowCodec {
        &self.value_codec
    }

    fn time_of(&self, row: &[Value], index: usize) -> Option<i64> {
        match row.get(index) {
            Some(Value::Long(t) | Value::Timestamp(t)) => Some(*t),
            _ => None,
        }
    }

    fn checked_ts(&self, ts: i64, what: &str) -> Result<i64, String> {
        if (0..=validate::MAX_TS).contains(&ts) {
            Ok(ts)
        } else {
            Err(format!(
                "{what} {ts} is outside 0..={} ms",
                validate::MAX_TS
            ))
        }
    }

    fn values_of(&self, row: &[Value]) -> Row {
        self.value_indices.iter().map(|&i| row[i].clone()).collect()
    }

    /// Encodes one mutation into the puts the writer makes for it (empty for a no-op update);
    /// `Err` says why the message is bad.
    pub fn encode(&self, m: &Mutation) -> Result<Vec<EncodedPut>, String> {
        if m.is_noop() {
            return Ok(Vec::new());
        }
        match self.model {
            DataModel::Events => {
                let row = match (m.kind(), m.after()) {
                    (MutationKind::Insert, Some(row)) => row,
                    (kind, _) => {
                        return Err(format!(
                            "an event stream carries inserts only, got an {kind}"
                        ))
                    }
                };
                let ts = self
                    .time_of(row, self.time_index)
                    .ok_or_else(|| format!("time column {:?} is null", self.opts.time_column))?;
                let ts = self.checked_ts(ts, "event time")?;
                let key = self.key_codec.encode_row(row).map_err(|e| e.to_string())?;
                let value = if self.value_indices.is_empty() {
                    self.value_codec.encode(&[Value::Long(ts)])
                } else {
                    self.value_codec.encode(&self.values_of(row))
                }
                .map_err(|e| e.to_string())?;
                Ok(vec![EncodedPut { key, value, ts }])
            }
            DataModel::Entities => {
                let images: Vec<(&Row, bool)> = m
                    .before()
                    .map(|r| (r, true))
                    .into_iter()
                    .chain(m.after().map(|r| (r, false)))
                    .collect();
                // The mutation time: the after-image's (else before's) mutation_ts, else time column.
                let any = images
                    .last()
                    .map(|(r, _)| *r)
                    .ok_or("a mutation without images")?;
                let mts = self
                    .mutation_ts_index
                    .and_then(|i| self.time_of(any, i))
                    .or_else(|| self.time_of(any, self.time_index))
                    .ok_or_else(|| {
                        format!(
                            "neither {MUTATION_TS_COLUMN} nor time column {:?} is set",
                            self.opts.time_column
                        )
                    })?;
                let mts = self.checked_ts(mts, "mutation time")?;
                let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(2);
                for (row, is_before) in images {
                    let key = self.key_codec.encode_row(row).map_err(|e| e.to_string())?;
                    let row_ts = self.time_of(row, self.time_index).unwrap_or(mts);
                    let mut vals = self.values_of(row);
                    vals.push(Value::Long(row_ts));
                    vals.push(Value::Boolean(is_before));
                    let value = self.value_codec.encode(&vals).map_err(|e| e.to_string())?;
                    encoded.push((key, value));
                }
                // Images in order: before, then after. A before-image sharing the after-image's
                // key goes 1 ms earlier, so the after-image's put does not replace it.
                let mut out = Vec::with_capacity(encoded.len());
                for (i, (key, value)) in encoded.iter().enumerate() {
                    let shadowed = encoded[i + 1..].iter().any(|(k, _)| k == key);
                    let ts = if shadowed {
                        self.checked_ts(mts - 1, "mutation time")?
                    } else {
                        mts
                    };
                    out.push(EncodedPut {
                        key: key.clone(),
                        value: value.clone(),
                        ts,
                    });
                }
                Ok(out)
            }
        }
    }

    async fn reject(
        &self,
        source: &str,
        message: &Message,
        error: String,
    ) -> Result<(), StreamError> {
        let n = self.stats.bad.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= self.opts.log_first_bad || n.is_multiple_of(1000) {
            tracing::warn!(
                source,
                line = message.position.line,
                offset = message.position.offset,
                bad_so_far = n,
                "bad message: {error}"
            );
        }
        if self.opts.strict {
            return Err(StreamError::BadMessage {
                position: message.position,
                error,
            });
        }
        if let Some(sink) = &self.dead_letter {
            let letter = DeadLetter {
                source: source.to_string(),
                position: message.position,
                error,
                payload: message.payload.clone(),
            };
            sink.send(&letter).await.map_err(StreamError::DeadLetter)?;
            self.dead_letter_dirty.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Decodes and encodes one message into `batch`; `Err` only in strict mode or on sink failure.
    async fn process(
        &self,
        source: &str,
        message: Message,
        batch: &mut PendingBatch,
    ) -> Result<(), StreamError> {
        self.stats.messages.fetch_add(1, Ordering::Relaxed);
        let outcome = if message.truncated {
            Err(format!(
                "message longer than the source's limit ({} bytes kept)",
                message.payload.len()
            ))
        } else {
            match self.decoder.decode(&message.payload) {
                Ok(None) => Ok(Vec::new()),
                Ok(Some(m)) => self.encode(&m),
                Err(e) => Err(e.to_string()),
            }
        };
        match outcome {
            Ok(puts) if puts.is_empty() => {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            }
            Ok(puts) => {
                let idx = batch.messages.len() as u32;
                for p in puts {
                    batch.puts.push(PutRequest {
                        key: Bytes::from(p.key),
                        value: Bytes::from(p.value),
                        dataset: self.dataset.clone(),
                        ts: Some(p.ts),
                    });
                    batch.origins.push(idx);
                }
                batch.messages.push(message.clone());
            }
            Err(error) => self.reject(source, &message, error).await?,
        }
        batch.last = Some(message.position);
        if batch.started.is_none() {
            batch.started = Some(tokio::time::Instant::now());
        }
        Ok(())
    }

    fn write_batch(&self, batch: PendingBatch) -> AckFuture {
        let store = self.store.clone();
        let stats = self.stats.clone();
        let retries = self.opts.max_write_retries;
        let first_backoff = self.opts.retry_backoff;
        Box::pin(async move {
            let PendingBatch {
                puts,
                origins,
                messages,
                last,
                ..
            } = batch;
            let total = puts.len();
            let mut refused = Vec::new();
            let mut todo: Vec<usize> = (0..total).collect();
            let mut attempt = 0u32;
            let mut backoff = first_backoff;
            while !todo.is_empty() {
                let requests: Vec<PutRequest> = todo.iter().map(|&i| puts[i].clone()).collect();
                let results = store.multi_put(requests).await;
                let mut again = Vec::new();
                let mut last_err = None;
                for (n, &i) in todo.iter().enumerate() {
                    let result = results.get(n).cloned().unwrap_or_else(|| {
                        Err(KvError::backend_msg(
                            store.backend(),
                            "multi_put",
                            "fewer results than requests",
                        )
                        .retryable())
                    });
                    match result {
                        Ok(()) => {}
                        Err(e) if e.is_retryable() => {
                            again.push(i);
                            last_err = Some(e);
                        }
                        Err(
                            e @ (KvError::InvalidKey { .. }
                            | KvError::ValueTooLarge { .. }
                            | KvError::InvalidRequest { .. }),
                        ) => {
                            refused.push((messages[origins[i] as usize].clone(), e));
                        }
                        Err(e) => return Err(StreamError::Store(e)),
                    }
                }
                if let Some(e) = last_err {
                    if attempt >= retries {
                        return Err(StreamError::Store(e));
                    }
                    attempt += 1;
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(attempt, pending = again.len(), "retrying store write: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                todo = again;
            }
            // One letter per refused message, even when both of its puts were refused. (When an
            // entity mutation's images go to two keys and only one is refused, the other stays
            // written: each image is a complete row on its own.)
            refused.dedup_by_key(|(m, _)| m.position);
            Ok(Ack {
                last,
                written: (total - refused.len()) as u64,
                refused,
            })
        })
    }

    async fn on_ack(
        &self,
        source: &str,
        ack: Ack,
        committer: &mut dyn Committer,
    ) -> Result<(), StreamError> {
        for (message, error) in &ack.refused {
            self.reject(source, message, format!("refused by the store: {error}"))
                .await?;
        }
        if let Some(sink) = &self.dead_letter {
            if self.dead_letter_dirty.swap(false, Ordering::AcqRel) {
                sink.flush().await.map_err(StreamError::DeadLetter)?;
            }
        }
        self.stats.written.fetch_add(ack.written, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        if let Some(pos) = ack.last {
            committer.commit(pos).map_err(StreamError::Checkpoint)?;
            self.stats.committed_line.store(pos.line, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Streams `source` to the end (or the first error), returning the final counters.
    pub async fn run(&self, mut source: Box<dyn Source>) -> Result<StreamSummary, StreamError> {
        // Keep an existing dataset's properties (a TTL set by an operator stays).
        match self.store.dataset_props(&self.dataset).await {
            Ok(p) if p.kind == DatasetKind::TimeSeries => {}
            Ok(p) => {
                return Err(StreamError::Config(format!(
                    "dataset {} exists as {}, but streaming updates need a TimeSeries dataset",
                    self.dataset,
                    p.describe()
                )))
            }
            Err(KvError::DatasetNotFound { .. }) => {
                self.store
                    .create(&self.dataset, &DatasetProps::time_series())
                    .await?
            }
            Err(e) => return Err(e.into()),
        }
        let name = source.describe();
        let mut committer = source.committer();
        let start = source.start_position();
        self.stats
            .committed_line
            .store(start.line, Ordering::Relaxed);
        if start.offset > 0 {
            tracing::info!(source = %name, line = start.line, offset = start.offset, "resuming after the last committed position");
        }
        // The source reads on its own thread (stdin and files block) into a small bounded
        // channel: when the writer stops taking chunks, the reader stops reading.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Vec<Message>>>(2);
        let chunk = self.opts.batch_size.clamp(1, 1024);
        std::thread::Builder::new()
            .name("chronon-stream-source".into())
            .spawn(move || loop {
                let batch = source.next_batch(chunk);
                let end = matches!(&batch, Ok(b) if b.is_empty()) || batch.is_err();
                if tx.blocking_send(batch).is_err() || end {
                    return;
                }
            })
            .map_err(|e| StreamError::Source {
                source_name: name.clone(),
                error: e,
            })?;

        let result = self.pump(&name, &mut rx, committer.as_mut()).await;
        drop(rx);
        result.map(|()| self.stats.snapshot())
    }

    async fn pump(
        &self,
        name: &str,
        rx: &mut tokio::sync::mpsc::Receiver<io::Result<Vec<Message>>>,
        committer: &mut dyn Committer,
    ) -> Result<(), StreamError> {
        let mut inflight: FuturesOrdered<AckFuture> = FuturesOrdered::new();
        let mut batch = PendingBatch::new();
        let max = self.opts.max_in_flight;
        let interval = self.opts.batch_interval;
        let mut eof = false;
        let mut failure: Option<StreamError> = None;
        while !eof && failure.is_none() {
            let deadline = batch.started.map(|s| s + interval);
            tokio::select! {
                biased;
                Some(ack) = inflight.next(), if !inflight.is_empty() => {
                    self.on_ack(name, ack?, committer).await?;
                }
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } },
                    if !batch.is_empty() && inflight.len() < max => {
                    inflight.push_back(self.write_batch(std::mem::replace(&mut batch, PendingBatch::new())));
                }
                chunk = rx.recv(), if inflight.len() < max => {
                    let messages = match chunk {
                        None => { eof = true; continue; }
                        Some(Err(error)) => return Err(StreamError::Source { source_name: name.to_string(), error }),
                        Some(Ok(m)) => m,
                    };
                    if messages.is_empty() {
                        eof = true;
                    }
                    for message in messages {
                        if let Err(e) = self.process(name, message, &mut batch).await {
                            failure = Some(e);
                            break;
                        }
                        if batch.puts.len() >= self.opts.batch_size {
                            while inflight.len() >= max {
                                if let Some(ack) = inflight.next().await {
                                    self.on_ack(name, ack?, committer).await?;
                                }
                            }
                            inflight.push_back(self.write_batch(std::mem::replace(&mut batch, PendingBatch::new())));
                        }
                    }
                }
            }
        }
        // End of stream, or strict mode stopping: write what is pending (which ends before a bad
        // message), then wait for every batch so their positions are committed.
        if !batch.is_empty() {
            inflight.push_back(self.write_batch(batch));
        }
        while let Some(ack) = inflight.next().await {
            self.on_ack(name, ack?, committer).await?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
