//! One group-by as the fetcher serves it ([`Served`]): its definition, aggregator, derivations
//! and JVM codecs, loaded once per metadata TTL ([`load_served`]), and the per-lookup work done
//! with them (request keys to key bytes, streaming values to rows, values to named features).
//! Apart from [`super::Fetcher`], which batches the lookups of many requests into two
//! `multi_get`s, because this part is about one group-by and never touches the store.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::aggregation::{BatchState, GroupByAggregator, StreamingRow};
use crate::derive::model::group_by_deriver;
use crate::derive::Deriver;
use crate::groupby::{Accuracy, GroupBy};
use crate::jvm::{BatchRecord, BatchValue, JvmCodecs, JvmLayout, ServingInfo, SERVING_INFO_KEY};
use crate::request::FetchError;
use crate::stream::{DataType, Value};
use chronon_core::{GetResponse, KvError};

/// A lookup's batch value once read and decoded.
pub(super) enum BatchPart {
    /// The served values themselves: a batch value that is not IRs (SNAPSHOT outputs or the
    /// selected row), in feature order.
    Final(Vec<Value>),
    /// The IR state as of the batch end (`None`: no batch value), to merge streaming rows into.
    State(Option<BatchState>),
}

/// Everything needed to serve one group-by: its definition (from `CHRONON_METADATA`, else from
/// the serving info of a JVM upload), its JVM layout and the batch end of its serving info.
#[derive(Debug)]
pub(super) struct Served {
    pub(super) gb: GroupBy,
    /// The GroupBy's derivations, compiled once per load.
    pub(super) deriver: Option<Deriver>,
    pub(super) agg: GroupByAggregator,
    pub(super) codecs: JvmCodecs,
    /// For each field of a streaming value's input columns, its index among the value columns.
    input_positions: Vec<usize>,
    /// Whether `input_positions` is `0, 1, ...` (each input column is the value column of the
    /// same index), so a streaming value's fields need no placing.
    inputs_in_place: bool,
    value_width: usize,
    pub(super) batch_end: Option<i64>,
    pub(super) batch_dataset: String,
    pub(super) streaming_dataset: String,
    pub(super) loaded: Instant,
}

impl Served {
    fn new(gb: GroupBy, layout: JvmLayout, batch_end: Option<i64>) -> Result<Self, FetchError> {
        let def = |reason: String| FetchError::Definition {
            name: gb.name.clone(),
            reason,
        };
        gb.validate().map_err(|e| def(e.reason))?;
        let agg = GroupByAggregator::new(&gb).map_err(|e| def(e.reason))?;
        let deriver = group_by_deriver(&gb).map_err(|e| def(e.reason))?;
        let value_columns = gb.value_columns();
        let input_positions: Vec<usize> = layout
            .input_cols
            .fields
            .iter()
            .map(|f| {
                value_columns
                    .iter()
                    .position(|c| *c == f.name)
                    .ok_or_else(|| def(format!("input column {:?} is not a value column", f.name)))
            })
            .collect::<Result<_, _>>()?;
        let codecs = JvmCodecs::new(layout).map_err(|e| def(e.to_string()))?;
        Ok(Served {
            value_width: value_columns.len(),
            inputs_in_place: input_positions.iter().enumerate().all(|(i, &p)| i == p),
            input_positions,
            batch_dataset: gb.batch_dataset(),
            streaming_dataset: gb.streaming_dataset(),
            agg,
            codecs,
            batch_end,
            deriver,
            gb,
            loaded: Instant::now(),
        })
    }

    /// Whether the batch value is IRs merged with streaming rows (TEMPORAL with aggregations);
    /// otherwise it is the served values themselves (`FetcherBase.constructGroupByResponse`).
    pub(super) fn merges_streaming(&self) -> bool {
        self.codecs.layout().batch_value == BatchValue::Ir && self.gb.accuracy == Accuracy::Temporal
    }

    /// The response map of one lookup: the features by name, then the GroupBy's derivations
    /// over them (Chronon's `FetcherBase.fetchGroupBys` derives before a join prefixes).
    pub(super) fn features(
        &self,
        values: Vec<Value>,
        keys: &BTreeMap<String, serde_json::Value>,
        q: i64,
    ) -> BTreeMap<String, Value> {
        let base: BTreeMap<String, Value> = self
            .agg
            .feature_names()
            .into_iter()
            .map(String::from)
            .zip(values)
            .collect();
        match &self.deriver {
            Some(d) => d.apply(keys, &base, q),
            None => base,
        }
    }

    /// The JVM key bytes of a request's keys (`key` gives the JSON value of a key column by
    /// name, so a join part reads its request's keys through its key mapping without building
    /// a map of them), typed as the key schema has them.
    pub(super) fn key_bytes<'k>(
        &self,
        key: impl Fn(&str) -> Option<&'k serde_json::Value>,
    ) -> Result<Vec<u8>, FetchError> {
        let bad = |reason: String| FetchError::BadKeys {
            name: self.gb.name.clone(),
            reason,
        };
        let key_schema = &self.codecs.layout().key;
        let mut values = Vec::with_capacity(key_schema.fields.len());
        for f in &key_schema.fields {
            let k = &f.name;
            let json = key(k).ok_or_else(|| {
                bad(format!(
                    "missing key {k:?} (keys are {})",
                    self.gb.keys.join(", ")
                ))
            })?;
            values.push(
                json_to_value(json, &f.data_type).map_err(|r| bad(format!("key {k:?}: {r}")))?,
            );
        }
        if values.iter().all(|v| matches!(v, Value::Null)) {
            return Err(bad("every key is null".into()));
        }
        self.codecs
            .encode_key(&values)
            .map_err(|e| bad(e.to_string()))
    }

    /// The served values of a decoded batch value that is not an IR (SNAPSHOT outputs or the
    /// selected row), in feature order.
    pub(super) fn final_values(&self, record: BatchRecord) -> Result<Vec<Value>, String> {
        match record {
            BatchRecord::Finalized(values) => Ok(values),
            BatchRecord::Selected(row) => {
                let fields = &self.codecs.layout().selected.fields;
                Ok(self
                    .agg
                    .feature_names()
                    .iter()
                    .map(|n| {
                        fields
                            .iter()
                            .position(|f| f.name == *n)
                            .and_then(|i| row.get(i).cloned())
                            .unwrap_or(Value::Null)
                    })
                    .collect())
            }
            BatchRecord::Ir(_) => Err("an IR where served values were expected".into()),
        }
    }

    /// The decoded batch value of one lookup from its batch read's response (`None`: no batch
    /// read). A value older than the batch end is from an earlier upload: stale, ignored as
    /// `FetcherCache`/`FetcherBase` ignore it.
    pub(super) fn batch_part(
        &self,
        response: Option<&GetResponse>,
    ) -> Result<BatchPart, FetchError> {
        let batch_end = self.batch_end.unwrap_or(0);
        let decode_err = |reason: String| FetchError::Decode {
            dataset: self.batch_dataset.clone(),
            reason,
        };
        let record = match response.map(GetResponse::latest) {
            None | Some(Ok(None)) => None,
            Some(Err(e)) => return Err(FetchError::Store(e.clone())),
            Some(Ok(Some(tv))) if tv.millis < batch_end => None,
            Some(Ok(Some(tv))) => Some(
                self.codecs
                    .decode_batch(&tv.bytes)
                    .map_err(|e| decode_err(e.to_string()))?,
            ),
        };
        if self.codecs.layout().batch_value != BatchValue::Ir {
            return Ok(BatchPart::Final(match record {
                Some(r) => self.final_values(r).map_err(decode_err)?,
                None => vec![Value::Null; self.agg.feature_names().len()],
            }));
        }
        match record {
            Some(BatchRecord::Ir(ir)) => Ok(BatchPart::State(Some(
                self.agg.from_final_ir(&ir).map_err(decode_err)?,
            ))),
            Some(_) => Err(decode_err("not an IR batch value".into())),
            None => Ok(BatchPart::State(None)),
        }
    }

    /// The streaming rows of one lookup from its streaming read's response (a missing
    /// streaming dataset has none).
    pub(super) fn response_rows(
        &self,
        response: &GetResponse,
    ) -> Result<Vec<StreamingRow>, FetchError> {
        match &response.values {
            Err(KvError::DatasetNotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(FetchError::Store(e.clone())),
            Ok(versions) => self.streaming_rows(versions),
        }
    }

    /// Streaming rows from the JVM's streaming values: the input columns placed at their value
    /// column positions, and for mutations `ts` and `is_before` (the put's time is the mutation
    /// time).
    pub(super) fn streaming_rows(
        &self,
        versions: &[chronon_core::TimedValue],
    ) -> Result<Vec<StreamingRow>, FetchError> {
        let dec = |reason: String| FetchError::Decode {
            dataset: self.streaming_dataset.clone(),
            reason,
        };
        let mutations = self.codecs.layout().mutations;
        let n = self.input_positions.len();
        let mut out = Vec::with_capacity(versions.len());
        for tv in versions {
            let mut fields = self
                .codecs
                .decode_streaming(&tv.bytes)
                .map_err(|e| dec(e.to_string()))?;
            let (ts, is_before) = if mutations {
                let ts = match fields.get(n) {
                    Some(Value::Long(t)) => *t,
                    _ => tv.millis,
                };
                (ts, matches!(fields.get(n + 1), Some(Value::Boolean(true))))
            } else {
                (tv.millis, false)
            };
            // The decoded fields are moved, not cloned; when the input columns are the first
            // value columns in order, the decoded row is the value row itself.
            let values = if self.inputs_in_place {
                fields.truncate(n);
                fields.resize(self.value_width, Value::Null);
                fields
            } else {
                let mut values = vec![Value::Null; self.value_width];
                for (v, &i) in fields.into_iter().zip(&self.input_positions) {
                    values[i] = v;
                }
                values
            };
            out.push(StreamingRow {
                ts,
                mutation_ts: tv.millis,
                is_before,
                values,
            });
        }
        Ok(out)
    }
}

/// One group-by's serving info from its stored definition (this crate's uploads) and the
/// serving info of its last upload. Without a definition, the serving info's GroupBy is served
/// with the key and selected schemas it stores (a JVM deployment's tables).
pub(super) fn load_served(
    name: &str,
    def: Result<Option<String>, FetchError>,
    info: Result<Option<String>, FetchError>,
) -> Result<Served, FetchError> {
    let bad_info = |e: crate::jvm::JvmError| FetchError::Decode {
        dataset: crate::jvm::batch_dataset(name),
        reason: format!("{SERVING_INFO_KEY}: {e}"),
    };
    let info = info?
        .map(|text| ServingInfo::parse(&text))
        .transpose()
        .map_err(bad_info)?;
    let batch_end = info
        .as_ref()
        .map(ServingInfo::batch_end_millis)
        .transpose()
        .map_err(bad_info)?;
    let definition = |reason: String| FetchError::Definition {
        name: name.to_string(),
        reason,
    };
    let (gb, layout) = match (def?, &info) {
        (Some(text), _) => {
            let gb = GroupBy::from_json_str(&text).map_err(|e| definition(e.reason))?;
            let layout = JvmLayout::new(&gb).map_err(|e| definition(e.to_string()))?;
            (gb, layout)
        }
        (None, Some(info)) => JvmLayout::from_serving_info(info).map_err(bad_info)?,
        (None, None) => {
            return Err(FetchError::NotFound {
                kind: "group-by",
                name: name.to_string(),
            })
        }
    };
    Served::new(gb, layout, batch_end)
}

/// Converts a request key from JSON to the key column's type.
pub fn json_to_value(json: &serde_json::Value, t: &DataType) -> Result<Value, String> {
    use serde_json::Value as J;
    let text = match json {
        J::String(s) => s.clone(),
        J::Number(n) => n.to_string(),
        J::Bool(b) => b.to_string(),
        J::Null => return Ok(Value::Null),
        other => return Err(format!("{other} is not a scalar")),
    };
    let parse_err = |what: &str| format!("{text:?} is not {what}");
    Ok(match t {
        DataType::String => Value::String(text),
        DataType::Long => Value::Long(text.parse().map_err(|_| parse_err("a long"))?),
        DataType::Int => Value::Int(text.parse().map_err(|_| parse_err("an int"))?),
        DataType::Short => Value::Short(text.parse().map_err(|_| parse_err("a short"))?),
        DataType::Byte => Value::Byte(text.parse().map_err(|_| parse_err("a byte"))?),
        DataType::Double => Value::Double(text.parse().map_err(|_| parse_err("a double"))?),
        DataType::Float => Value::Float(text.parse().map_err(|_| parse_err("a float"))?),
        DataType::Boolean => Value::Boolean(text.parse().map_err(|_| parse_err("a boolean"))?),
        DataType::Timestamp => {
            Value::Timestamp(text.parse().map_err(|_| parse_err("epoch millis"))?)
        }
        other => {
            return Err(format!(
                "key columns of type {other} cannot be given in a request"
            ))
        }
    })
}
