//! Definitions and batch end times in the `CHRONON_METADATA` snapshot dataset, and the batch
//! upload that writes `<NAME>_BATCH` (Chronon's `MetadataStore` and `GroupByUpload` + `bulkPut`).
//!
//! Keys in `CHRONON_METADATA` (values are UTF-8):
//! - `group_by/<name>`: the [`GroupBy`] as JSON; `join/<name>`: the [`Join`] as JSON.
//! - `group_bys`, `joins`: the names, in Chronon's `StringArrayConverter` format.
//!
//! The batch upload writes JVM Chronon's layout ([`crate::jvm`]): `<NAME>_BATCH` holds the
//! batch values by accuracy and, under `group_by_serving_info`, the `GroupByServingInfo` JSON
//! whose `batchEndDate` is the batch end the fetcher reads (`GroupByUpload.scala`).

use std::collections::HashMap;

use bytes::Bytes;
use futures::stream::{self, StreamExt};

use crate::aggregation::{BatchState, GroupByAggregator};
use crate::derive::model::{group_by_deriver, join_deriver};
use crate::groupby::{DefinitionError, GroupBy, Join, METADATA_DATASET};
use crate::jvm::{BatchRecord, BatchValue, JvmCodecs, JvmLayout, ServingInfo, SERVING_INFO_KEY};
use crate::stream::value::format_date;
use crate::stream::{KeyCodec, Row, Value};
use crate::window::DAY_MILLIS;
use chronon_core::{
    BulkPutOptions, BulkPutReport, BulkRow, DatasetProps, KvError, KvStore, KvStoreExt,
};

/// Why a metadata or upload call failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] KvError),
    /// A definition is invalid.
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// Stored metadata cannot be read.
    #[error("metadata {key:?}: {reason}")]
    Corrupt {
        /// The metadata key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An input row cannot be aggregated.
    #[error("row {row}: {reason}")]
    BadRow {
        /// The row's position in the input (0-based).
        row: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The metadata key of a group-by definition.
pub fn group_by_key(name: &str) -> String {
    format!("group_by/{name}")
}

/// The metadata key of a join definition.
pub fn join_key(name: &str) -> String {
    format!("join/{name}")
}

async fn ensure_metadata(store: &dyn KvStore) -> Result<(), KvError> {
    store
        .create(METADATA_DATASET, &DatasetProps::snapshot())
        .await
}

async fn add_name(store: &dyn KvStore, list: &str, name: &str) -> Result<(), KvError> {
    let mut names = store
        .get_string_array(METADATA_DATASET, list)
        .await?
        .unwrap_or_default();
    if !names.iter().any(|n| n == name) {
        names.push(name.to_string());
        store
            .put_string_array(METADATA_DATASET, list, &names, None)
            .await?;
    }
    Ok(())
}

/// The JVM layout of `gb`, or an error naming what JVM Chronon cannot store for it.
fn jvm_layout(gb: &GroupBy) -> Result<JvmLayout, DefinitionError> {
    JvmLayout::new(gb).map_err(|e| DefinitionError::new(&gb.name, e.to_string()))
}

/// Validates and stores a group-by definition, and creates its datasets.
pub async fn put_group_by(store: &dyn KvStore, gb: &GroupBy) -> Result<(), MetadataError> {
    gb.validate()?;
    GroupByAggregator::new(gb)?;
    jvm_layout(gb)?;
    group_by_deriver(gb)?;
    ensure_metadata(store).await?;
    store
        .create(&gb.batch_dataset(), &DatasetProps::snapshot())
        .await?;
    store
        .create(&gb.streaming_dataset(), &DatasetProps::time_series())
        .await?;
    store
        .put_string(
            METADATA_DATASET,
            &group_by_key(&gb.name),
            &gb.to_json_string(),
            None,
        )
        .await?;
    add_name(store, "group_bys", &gb.name).await?;
    Ok(())
}

/// Stores a join definition after checking it against its (stored) group-bys.
pub async fn put_join(store: &dyn KvStore, join: &Join) -> Result<(), MetadataError> {
    let mut gbs = Vec::new();
    for p in &join.parts {
        match get_group_by(store, &p.group_by).await? {
            Some(g) => gbs.push(g),
            None => {
                return Err(DefinitionError::new(
                    &join.name,
                    format!(
                        "group-by {:?} is not in {METADATA_DATASET}; put it first",
                        p.group_by
                    ),
                )
                .into())
            }
        }
    }
    join.validate(&gbs.iter().collect::<Vec<_>>())?;
    join_deriver(join, &gbs.iter().collect::<Vec<_>>())?;
    ensure_metadata(store).await?;
    store
        .put_string(
            METADATA_DATASET,
            &join_key(&join.name),
            &join.to_json_string(),
            None,
        )
        .await?;
    add_name(store, "joins", &join.name).await?;
    Ok(())
}

/// Reads a group-by definition.
pub async fn get_group_by(
    store: &dyn KvStore,
    name: &str,
) -> Result<Option<GroupBy>, MetadataError> {
    let key = group_by_key(name);
    match get_metadata(store, &key).await? {
        None => Ok(None),
        Some(text) => Ok(Some(GroupBy::from_json_str(&text)?)),
    }
}

/// Reads a join definition.
pub async fn get_join(store: &dyn KvStore, name: &str) -> Result<Option<Join>, MetadataError> {
    match get_metadata(store, &join_key(name)).await? {
        None => Ok(None),
        Some(text) => Ok(Some(Join::from_json_str(&text)?)),
    }
}

/// The names of the stored joins (the `joins` list), in the order they were first put; empty
/// when nothing was ever stored.
pub async fn list_joins(store: &dyn KvStore) -> Result<Vec<String>, MetadataError> {
    list_names(store, "joins").await
}

/// The names of the stored group-bys (the `group_bys` list).
pub async fn list_group_bys(store: &dyn KvStore) -> Result<Vec<String>, MetadataError> {
    list_names(store, "group_bys").await
}

async fn list_names(store: &dyn KvStore, list: &str) -> Result<Vec<String>, MetadataError> {
    match store.get_string_array(METADATA_DATASET, list).await {
        Ok(names) => Ok(names.unwrap_or_default()),
        Err(KvError::DatasetNotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Reads the serving info a batch upload left in `<NAME>_BATCH` (`None` before any upload).
pub async fn get_serving_info(
    store: &dyn KvStore,
    name: &str,
) -> Result<Option<ServingInfo>, MetadataError> {
    let dataset = crate::jvm::batch_dataset(name);
    let text = match store.get_string(&dataset, SERVING_INFO_KEY).await {
        Ok(v) => v,
        Err(KvError::DatasetNotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    text.map(|t| {
        ServingInfo::parse(&t).map_err(|e| MetadataError::Corrupt {
            key: format!("{dataset}/{SERVING_INFO_KEY}"),
            reason: e.to_string(),
        })
    })
    .transpose()
}

/// A group-by's batch end time: `batchEndDate` of its serving info, midnight UTC.
pub async fn get_batch_end(store: &dyn KvStore, name: &str) -> Result<Option<i64>, MetadataError> {
    match get_serving_info(store, name).await? {
        None => Ok(None),
        Some(info) => info
            .batch_end_millis()
            .map(Some)
            .map_err(|e| MetadataError::Corrupt {
                key: format!("{}/{SERVING_INFO_KEY}", crate::jvm::batch_dataset(name)),
                reason: e.to_string(),
            }),
    }
}

async fn get_metadata(store: &dyn KvStore, key: &str) -> Result<Option<String>, MetadataError> {
    match store.get_string(METADATA_DATASET, key).await {
        Ok(v) => Ok(v),
        Err(KvError::DatasetNotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Computes batch IRs per key from source rows as of `batch_end` (what Chronon's Spark
/// `GroupByUpload` job does), holding one [`BatchState`] per key: memory grows with the number
/// of keys, not rows.
#[derive(Debug)]
pub struct BatchComputer {
    agg: GroupByAggregator,
    codecs: JvmCodecs,
    key_codec: KeyCodec,
    time_index: usize,
    value_indices: Vec<usize>,
    batch_end: i64,
    states: HashMap<Vec<u8>, BatchState>,
    rows: u64,
    skipped: u64,
}

impl BatchComputer {
    /// A computer for `gb` as of `batch_end` (epoch millis, usually the end of the last day).
    pub fn new(gb: &GroupBy, batch_end: i64) -> Result<Self, MetadataError> {
        gb.validate()?;
        let agg = GroupByAggregator::new(gb)?;
        end_date_of(gb, batch_end)?;
        let codecs = JvmCodecs::new(jvm_layout(gb)?)
            .map_err(|e| DefinitionError::new(&gb.name, e.to_string()))?;
        let key_codec = KeyCodec::new(&gb.schema, &gb.keys)
            .map_err(|e| DefinitionError::new(&gb.name, e.to_string()))?;
        let time_index = gb
            .schema
            .index_of(&gb.time_column)
            .ok_or_else(|| DefinitionError::new(&gb.name, "time column is not in the schema"))?;
        let value_indices = gb
            .value_columns()
            .iter()
            .filter_map(|c| gb.schema.index_of(c))
            .collect();
        Ok(BatchComputer {
            agg,
            codecs,
            key_codec,
            time_index,
            value_indices,
            batch_end,
            states: HashMap::new(),
            rows: 0,
            skipped: 0,
        })
    }

    /// Adds one source row (all columns of the group-by's schema, in order). Rows without a
    /// time, without any key, or at/after the batch end are skipped and counted.
    pub fn add_row(&mut self, row: &Row) -> Result<(), MetadataError> {
        self.rows += 1;
        let ts = match row.get(self.time_index) {
            Some(Value::Long(t) | Value::Timestamp(t)) => *t,
            _ => {
                self.skipped += 1;
                return Ok(());
            }
        };
        if ts >= self.batch_end {
            self.skipped += 1;
            return Ok(());
        }
        let key = match self.key_codec.encode_row(row) {
            Ok(k) => k,
            Err(crate::stream::KeyError::AllNull { .. }) => {
                self.skipped += 1;
                return Ok(());
            }
            Err(e) => {
                return Err(MetadataError::BadRow {
                    row: self.rows - 1,
                    reason: e.to_string(),
                })
            }
        };
        let values: Vec<Value> = self
            .value_indices
            .iter()
            .map(|&i| row.get(i).cloned().unwrap_or(Value::Null))
            .collect();
        let state = self
            .states
            .entry(key)
            .or_insert_with(|| self.agg.empty_state());
        self.agg.update_batch(state, self.batch_end, ts, &values);
        Ok(())
    }

    /// Keys seen so far.
    pub fn keys(&self) -> usize {
        self.states.len()
    }

    /// `(rows read, rows skipped)`.
    pub fn counts(&self) -> (u64, u64) {
        (self.rows, self.skipped)
    }

    /// The JVM batch value of one key's state (`GroupByUpload.scala`: the selected row
    /// without aggregations, finalized outputs for SNAPSHOT, `{collapsedIr, tailHopIrs}` for
    /// TEMPORAL).
    fn batch_record(&self, state: &BatchState) -> Result<BatchRecord, String> {
        let layout = self.codecs.layout();
        let finalized = || {
            self.agg
                .lambda(Some(state), self.batch_end, [], self.batch_end, false)
        };
        Ok(match layout.batch_value {
            BatchValue::Ir => BatchRecord::Ir(self.agg.to_final_ir(state)?),
            BatchValue::Finalized => BatchRecord::Finalized(finalized()?),
            BatchValue::Selected => {
                let values = finalized()?;
                let names = self.agg.feature_names();
                BatchRecord::Selected(
                    layout
                        .selected
                        .fields
                        .iter()
                        .map(|f| {
                            names
                                .iter()
                                .position(|n| *n == f.name)
                                .and_then(|i| values.get(i).cloned())
                                .unwrap_or(Value::Null)
                        })
                        .collect(),
                )
            }
        })
    }

    /// The upload rows (key bytes → the JVM batch value, ts = batch end), sorted by key.
    pub fn into_rows(self) -> Result<Vec<BulkRow>, MetadataError> {
        let mut out = Vec::with_capacity(self.states.len());
        for (key, state) in &self.states {
            let value = self
                .batch_record(state)
                .and_then(|r| self.codecs.encode_batch(&r).map_err(|e| e.to_string()))
                .map_err(|reason| MetadataError::BadRow { row: 0, reason })?;
            out.push(BulkRow {
                key: Bytes::from(key.clone()),
                value: Bytes::from(value),
                ts: self.batch_end,
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// Loads upload rows into `<NAME>_BATCH` through `bulk_put`, then writes the serving info for
/// `batch_end` there (last, so a fetcher never pairs a new batch end with old batch values).
pub async fn upload_batch(
    store: &dyn KvStore,
    gb: &GroupBy,
    batch_end: i64,
    rows: Vec<BulkRow>,
    options: BulkPutOptions,
) -> Result<BulkPutReport, MetadataError> {
    put_group_by(store, gb).await?;
    let source = stream::iter(rows.into_iter().map(Ok)).boxed();
    let report = store.bulk_put(&gb.batch_dataset(), source, options).await?;
    let info = serving_info_for(gb, batch_end)?;
    put_serving_info(store, &gb.name, &info.to_json_string(), batch_end).await?;
    Ok(report)
}

/// The upload's end date of a batch end: the day before it, which must be a UTC midnight (the
/// JVM's serving info keeps only the date, `batchEndDate`).
fn end_date_of(gb: &GroupBy, batch_end: i64) -> Result<String, DefinitionError> {
    if batch_end.rem_euclid(DAY_MILLIS) != 0 {
        return Err(DefinitionError::new(
            &gb.name,
            format!("batch end {batch_end} is not a UTC midnight: the JVM's serving info keeps it as a date (batchEndDate)"),
        ));
    }
    i32::try_from(batch_end.div_euclid(DAY_MILLIS) - 1)
        .map(format_date)
        .map_err(|_| {
            DefinitionError::new(&gb.name, format!("batch end {batch_end} is out of range"))
        })
}

/// The serving info this crate's upload writes for `gb` as of `batch_end` (a UTC midnight: the
/// JVM keeps the day before it as the upload's end date, `batchEndDate` = that day + 1).
pub fn serving_info_for(gb: &GroupBy, batch_end: i64) -> Result<ServingInfo, MetadataError> {
    let end_date = end_date_of(gb, batch_end)?;
    ServingInfo::for_group_by(gb, &end_date)
        .map_err(|e| DefinitionError::new(&gb.name, e.to_string()).into())
}

/// Writes the `group_by_serving_info` row of `<NAME>_BATCH` (text as given: this crate's or a
/// JVM upload table's), at `ts` (the batch end).
pub async fn put_serving_info(
    store: &dyn KvStore,
    name: &str,
    text: &str,
    ts: i64,
) -> Result<(), MetadataError> {
    store
        .put_string(
            &crate::jvm::batch_dataset(name),
            SERVING_INFO_KEY,
            text,
            Some(ts),
        )
        .await?;
    Ok(())
}

/// Computes the batch IRs of `rows` as of `batch_end` and uploads them ([`BatchComputer`] +
/// [`upload_batch`]).
pub async fn compute_and_upload(
    store: &dyn KvStore,
    gb: &GroupBy,
    batch_end: i64,
    rows: impl IntoIterator<Item = Row>,
) -> Result<BulkPutReport, MetadataError> {
    let mut c = BatchComputer::new(gb, batch_end)?;
    for r in rows {
        c.add_row(&r)?;
    }
    let rows = c.into_rows()?;
    upload_batch(
        store,
        gb,
        batch_end,
        rows,
        BulkPutOptions {
            sorted: true,
            ..Default::default()
        },
    )
    .await
}
