//! `GroupByServingInfo`: what the batch dataset holds under the key `group_by_serving_info`
//! (`GroupByUpload.run` writes it as `ThriftJsonCodec.toJsonStr`; `MetadataStore` and
//! `GroupByServingInfoParsed` read it).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};

use crate::conf::{group_by_from_conf, thrift};
use crate::groupby::{Accuracy, GroupBy, Operation, SourceKind};
use crate::stream::value::{format_date, parse_date};
use crate::stream::{DataType, StructField, StructType};
use crate::window::{TimeUnit, DAY_MILLIS};

use super::avro_json::{jvm_schema_text, struct_from_avro_text};
use super::layout::{is_selection, JvmLayout};
use super::JvmError;

/// The key the serving info row has in the batch dataset (`Constants.GroupByServingInfoKey`).
pub const SERVING_INFO_KEY: &str = "group_by_serving_info";

/// `GroupByServingInfo` (api.thrift), fields in Thrift id order as the JSON has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServingInfo {
    /// The GroupBy's Thrift JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Json>,
    /// The streaming source's table schema (`Input` record); absent without a streaming source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_avro_schema: Option<String>,
    /// The selected columns (`Value` record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_avro_schema: Option<String>,
    /// The key columns (`Key` record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_avro_schema: Option<String>,
    /// The day after the upload's end date (`yyyy-MM-dd`): streaming rows count from its
    /// midnight (UTC) on, `GroupByServingInfoParsed.batchEndTsMillis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_end_date: Option<String>,
    /// The date format (`yyyy-MM-dd` when absent; only that one is read here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_format: Option<String>,
}

fn info_err(reason: impl Into<String>) -> JvmError {
    JvmError::ServingInfo(reason.into())
}

/// Chronon's `Operation` enum number (api.thrift).
fn operation_number(op: Operation) -> i64 {
    match op {
        Operation::Min => 0,
        Operation::Max => 1,
        Operation::First => 2,
        Operation::Last => 3,
        Operation::UniqueCount => 4,
        Operation::ApproxUniqueCount => 5,
        Operation::Count => 6,
        Operation::Sum => 7,
        Operation::Average => 8,
        Operation::Variance => 9,
        Operation::Skew => 10,
        Operation::Kurtosis => 11,
        Operation::ApproxPercentile => 12,
        Operation::LastK => 13,
        Operation::FirstK => 14,
        Operation::TopK => 15,
        Operation::BottomK => 16,
        Operation::Histogram => 17,
        Operation::BoundedUniqueCount => 19,
    }
}

impl ServingInfo {
    /// Parses the serving info JSON (unknown fields ignored, as `ThriftJsonCodec` does).
    pub fn parse(text: &str) -> Result<Self, JvmError> {
        serde_json::from_str(text)
            .map_err(|e| info_err(format!("not GroupByServingInfo JSON: {e}")))
    }

    /// The JSON text (compact, fields in Thrift id order).
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The serving info this crate's upload writes for `gb` with data up to `end_date`
    /// (`yyyy-MM-dd`): batch end the day after, schemas as `GroupByUpload.buildServingInfo`
    /// writes them, and the GroupBy as Thrift JSON.
    pub fn for_group_by(gb: &GroupBy, end_date: &str) -> Result<Self, JvmError> {
        let layout = JvmLayout::new(gb)?;
        let day = parse_date(end_date)
            .ok_or_else(|| info_err(format!("end date {end_date:?} is not yyyy-MM-dd")))?;
        let mut input_fields: Vec<StructField> = gb.schema.fields.clone();
        // The JVM's input table has the event time as `ts` (the query's timeColumn).
        for f in &mut input_fields {
            if f.name == gb.time_column {
                f.name = "ts".into();
                f.data_type = DataType::Long;
            }
        }
        Ok(ServingInfo {
            group_by: Some(thrift_group_by(gb)?),
            input_avro_schema: Some(jvm_schema_text(&StructType::new("Input", input_fields))?),
            selected_avro_schema: Some(jvm_schema_text(&layout.selected)?),
            key_avro_schema: Some(jvm_schema_text(&layout.key)?),
            batch_end_date: Some(format_date(day + 1)),
            date_format: None,
        })
    }

    /// The GroupBy's name (`groupBy.metaData.name`).
    pub fn group_by_name(&self) -> Result<String, JvmError> {
        self.group_by
            .as_ref()
            .and_then(|g| g.pointer("/metaData/name"))
            .and_then(Json::as_str)
            .map(str::to_string)
            .ok_or_else(|| info_err("groupBy.metaData.name is missing"))
    }

    /// `batchEndTsMillis`: midnight UTC of `batchEndDate`.
    pub fn batch_end_millis(&self) -> Result<i64, JvmError> {
        if let Some(f) = &self.date_format {
            if f != "yyyy-MM-dd" {
                return Err(info_err(format!(
                    "dateFormat {f:?} is not read here (only yyyy-MM-dd)"
                )));
            }
        }
        let date = self
            .batch_end_date
            .as_deref()
            .ok_or_else(|| info_err("batchEndDate is missing"))?;
        let day = parse_date(date)
            .ok_or_else(|| info_err(format!("batchEndDate {date:?} is not yyyy-MM-dd")))?;
        Ok(i64::from(day) * DAY_MILLIS)
    }

    /// The key schema (`keyChrononSchema`).
    pub fn key_schema(&self) -> Result<StructType, JvmError> {
        let text = self
            .key_avro_schema
            .as_deref()
            .ok_or_else(|| info_err("keyAvroSchema is missing"))?;
        struct_from_avro_text(text, false)
    }

    /// The selected schema (`selectedChrononSchema`, names cleaned).
    pub fn selected_schema(&self) -> Result<StructType, JvmError> {
        let text = self
            .selected_avro_schema
            .as_deref()
            .ok_or_else(|| info_err("selectedAvroSchema is missing"))?;
        struct_from_avro_text(text, true)
    }

    /// The GroupBy in this crate's model, column types from `inputAvroSchema` (or, without
    /// one, the key and selected schemas plus a long `ts`).
    pub fn group_by(&self) -> Result<GroupBy, JvmError> {
        let json = self
            .group_by
            .clone()
            .ok_or_else(|| info_err("groupBy is missing"))?;
        let conf: thrift::GroupBy = serde_json::from_value(json)
            .map_err(|e| info_err(format!("groupBy is not a GroupBy: {e}")))?;
        let data = match &self.input_avro_schema {
            Some(text) => struct_from_avro_text(text, false)?,
            None => {
                let mut fields = self.key_schema()?.fields;
                fields.extend(self.selected_schema()?.fields);
                if !fields.iter().any(|f| f.name == "ts") {
                    fields.push(StructField::new("ts", DataType::Long));
                }
                StructType::new("Input", fields)
            }
        };
        group_by_from_conf(&conf, &data, SERVING_INFO_KEY).map_err(|e| info_err(e.to_string()))
    }
}

/// The GroupBy as Thrift JSON (`TSimpleJSONProtocol`: enums as numbers, booleans as 1/0).
/// The source is described by its query (selects and time column) only: this crate's model has
/// no table or topic names; entities served with mutations get a `mutationTopic` named after the
/// streaming dataset so the JVM infers the same data model.
fn thrift_group_by(gb: &GroupBy) -> Result<Json, JvmError> {
    let mut selects = Map::new();
    for f in &gb.schema.fields {
        if f.name != gb.time_column {
            selects.insert(f.name.clone(), Json::String(f.name.clone()));
        }
    }
    let query = json!({"selects": selects, "timeColumn": gb.time_column});
    let source = match gb.source {
        SourceKind::Events => json!({"events": {"query": query}}),
        SourceKind::Entities if gb.accuracy == Accuracy::Temporal => json!({"entities": {
            "mutationTopic": super::layout::streaming_dataset(&gb.name), "query": query}}),
        SourceKind::Entities => json!({"entities": {"query": query}}),
    };
    let mut obj = Map::new();
    obj.insert("metaData".into(), json!({"name": gb.name, "online": 1}));
    obj.insert("sources".into(), json!([source]));
    obj.insert("keyColumns".into(), json!(gb.keys));
    if !is_selection(gb) {
        let mut aggs = Vec::with_capacity(gb.aggregations.len());
        for a in &gb.aggregations {
            let mut agg = Map::new();
            agg.insert("inputColumn".into(), json!(a.input_column));
            agg.insert("operation".into(), json!(operation_number(a.operation)));
            if let Some(k) = a.k {
                agg.insert("argMap".into(), json!({"k": k.to_string()}));
            }
            if !a.windows.is_empty() {
                let mut windows = Vec::with_capacity(a.windows.len());
                for w in &a.windows {
                    let unit = match w.unit {
                        TimeUnit::Hours => 0,
                        TimeUnit::Days => 1,
                        TimeUnit::Minutes => {
                            return Err(info_err(format!(
                                "window {w}: Chronon's TimeUnit is HOURS or DAYS"
                            )))
                        }
                    };
                    windows.push(json!({"length": w.length, "timeUnit": unit}));
                }
                agg.insert("windows".into(), Json::Array(windows));
            }
            aggs.push(Json::Object(agg));
        }
        obj.insert("aggregations".into(), Json::Array(aggs));
    }
    obj.insert(
        "accuracy".into(),
        json!(match gb.accuracy {
            Accuracy::Temporal => 0,
            Accuracy::Snapshot => 1,
        }),
    );
    Ok(Json::Object(obj))
}
