//! JVM Chronon's storage format: the bytes its upload and streaming jobs write and its fetcher
//! reads, so this crate can serve a JVM deployment's tables and write tables a JVM fetcher
//! serves. Every rule comes from airbnb/chronon's sources (paths there):
//!
//! | What | Rule | Scala source |
//! |------|------|--------------|
//! | Dataset names | `<cleanName upper-cased>_BATCH` / `_STREAMING`, cleanName = `[^a-zA-Z0-9_]` → `_` | `api/.../Extensions.scala` (`batchDataset`, `streamingDataset`, `sanitize`) |
//! | Avro schema of a struct | record in namespace `ai.chronon.data`, doc `""`, every field `["null", T]` (**null first**), names cleaned and unique across records and fields (`_REPEATED_NAME_<i>`); list items and map values not nullable; byte/short are int with `logicalType` | `online/.../serde/AvroConversions.scala` (`fromChrononSchema`) |
//! | Key bytes | Avro binary of the `Key` record of the key columns, the same for batch and streaming | `spark/.../KvRdd.scala` (`keyToBytes`), `GroupByUpload.scala`, `online/.../serde/AvroCodec.scala` |
//! | Batch value, no aggregations | the `Value` record of the selected columns (all but keys and `ts`, `ds`, `is_before`, `mutation_ts`) | `GroupByUpload.snapshotEntities`, `spark/.../GroupBy.scala` (`preAggSchema`), `FetcherBase.scala` (`selectedCodec`) |
//! | Batch value, SNAPSHOT | the finalized outputs, one field per `{input}_{op}{_window}` | `GroupByUpload.snapshotEvents`, `GroupByServingInfoParsed.scala` (`outputCodec`) |
//! | Batch value, TEMPORAL | `{collapsedIr: WindowedIr, tailHopIrs: list<list<HopIr>>}`: one IR per output column, then three hop lists (1 day, 1 hour, 5 minutes, always all three), each hop one IR per aggregation and its start `ts` last, sorted by `ts` | `aggregator/.../windowing/SawtoothMutationAggregator.scala` (`batchIrSchema`), `SawtoothOnlineAggregator.scala` (`normalizeBatchIr`), `HopsAggregator.scala`, `Resolution.scala` |
//! | IR types | COUNT long; SUM long (integral input) or double; AVERAGE `{sum double, count int}`; VARIANCE `{count int, mean double, m2 double}`; MIN/MAX the input; FIRST/LAST `TimePair {epochMillis long, payload}`; FIRST_K/LAST_K lists of those; TOP_K/BOTTOM_K/UNIQUE_COUNT lists of the input; HISTOGRAM `map<int>`; SKEW/KURTOSIS `[n, m1, m2, m3, m4]`; BOUNDED_UNIQUE_COUNT a list of the input (or of MD5 hex strings); APPROX_UNIQUE_COUNT/APPROX_PERCENTILE the CPC/KLL sketch bytes; bucketed `map<bucket, IR>`, element-wise `list<IR>` | `aggregator/.../base/SimpleAggregators.scala`, `TimedAggregators.scala`, `row/ColumnAggregator.scala` (`BucketedColumnAggregator`, `ElementWiseAggregator`) |
//! | Upload table | `key_bytes`, `value_bytes`, `key_json`, `value_json` (a fraction of rows), `ds` = end date, plus the serving-info row; Parquet part files | `spark/.../GroupByUpload.scala` (`run`), `KvRdd.scala` (`toAvroDf`) |
//! | Streaming value | events: `<clean>_INPUT_COLS` of the aggregation inputs; mutations: `<clean>_MUTATION_COLS`, the same then `ts` long and `is_before` boolean | `GroupByServingInfoParsed.scala` (`valueChrononSchema`, `mutationValueAvroSchema`), `flink/.../AvroCodecFn.scala` |
//! | Serving info | `group_by_serving_info` in the batch dataset: Thrift JSON of `GroupByServingInfo` (groupBy, inputAvroSchema, selectedAvroSchema, keyAvroSchema, batchEndDate = end date + 1 day) | `GroupByUpload.scala` (`buildServingInfo`, `run`), `api/.../ThriftJsonCodec.scala`, `GroupByServingInfoParsed.scala` |
//!
//! Field and record names never change the bytes (the JVM's fetcher decodes with its own names,
//! `<clean>_IR`, `<clean>_OUTPUT`, while the upload wrote `Value`); [`JvmLayout`] uses the
//! fetcher's. The order of elements in set- and heap-like IRs (UNIQUE_COUNT, TOP_K, LAST_K,
//! HISTOGRAM) is whatever the JVM's collections held; readers must not rely on it.
//!
//! `chronon-serving/tests/jvm_golden.rs` proves these rules against bytes written by an
//! independent encoder (`scripts/make-jvm-golden`, Python's `fastavro`).

pub mod avro_json;
pub mod codec;
pub mod layout;
pub mod serving_info;

pub use codec::{BatchRecord, FinalBatchIr, JvmCodecs};
pub use layout::{batch_dataset, streaming_dataset, BatchValue, JvmLayout, HOP_SIZES};
pub use serving_info::{ServingInfo, SERVING_INFO_KEY};

use crate::stream::{AvroError, SchemaError};

/// Why a JVM-format value or definition cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JvmError {
    /// The GroupBy uses something the JVM's aggregators have no form for.
    #[error("{group_by}: no JVM Chronon layout: {reason}")]
    Unsupported {
        /// The GroupBy.
        group_by: String,
        /// What and why.
        reason: String,
    },
    /// A decoded value does not have the layout's shape.
    #[error("JVM {what}: {reason}")]
    Corrupt {
        /// Which part of the value.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The `group_by_serving_info` JSON is missing something or malformed.
    #[error("group_by_serving_info: {0}")]
    ServingInfo(String),
    /// A schema cannot be derived or read.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// Bytes do not decode, or values do not encode, with the schema.
    #[error(transparent)]
    Avro(#[from] AvroError),
}
