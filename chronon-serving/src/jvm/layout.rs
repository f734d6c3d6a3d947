//! Which schema each stored value has in a JVM Chronon deployment, derived from a [`GroupBy`]
//! exactly as the JVM derives it (every rule cites the Scala file it comes from).

use crate::groupby::{
    input_shape, Accuracy, Aggregation, GroupBy, InputShape, Operation, SourceKind,
};
use crate::stream::avro::REPETITION_SUFFIX;
use crate::stream::writer::clean_name;
use crate::stream::{DataType, StructField, StructType};
use crate::window::{DAY_MILLIS, HOUR_MILLIS, MINUTE_MILLIS};

use super::JvmError;

/// The tail-hop sizes of the batch IR, largest first (`Resolution.scala`,
/// `FiveMinuteResolution.hopSizes`): `tailHopIrs` always holds one hop list per size.
pub const HOP_SIZES: [i64; 3] = [DAY_MILLIS, HOUR_MILLIS, 5 * MINUTE_MILLIS];

/// Columns Chronon never treats as selected values (`Constants.ReservedColumns`: `ts`, the
/// partition column `ds`, `is_before`, `mutation_ts`).
pub const RESERVED_COLUMNS: [&str; 4] = ["ts", "ds", "is_before", "mutation_ts"];

/// `<cleanName upper-cased>_BATCH` (`api/Extensions.scala`, `GroupByOps.batchDataset`).
pub fn batch_dataset(group_by: &str) -> String {
    format!("{}_BATCH", clean_name(group_by).to_uppercase())
}

/// `<cleanName upper-cased>_STREAMING` (`api/Extensions.scala`, `GroupByOps.streamingDataset`).
pub fn streaming_dataset(group_by: &str) -> String {
    format!("{}_STREAMING", clean_name(group_by).to_uppercase())
}

/// What a batch value holds, by the GroupBy's shape (`GroupByUpload.run`, and `FetcherBase`
/// `constructGroupByResponse` on the reading side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchValue {
    /// No aggregations: the latest selected row (`GroupByUpload.snapshotEntities`, read with
    /// `selectedCodec`).
    Selected,
    /// SNAPSHOT accuracy: the finalized outputs (`snapshotEvents`/`snapshotEntities`, read with
    /// `outputCodec`).
    Finalized,
    /// TEMPORAL accuracy: `{collapsedIr, tailHopIrs}` (`temporalEvents`, read with `irCodec`).
    Ir,
}

/// One output column: an aggregation over one window, and the index of its unwindowed IR in a
/// hop (`UnpackedAggregations.from`: `perWindow` with `baseIrIndex`).
#[derive(Debug, Clone)]
pub struct Part {
    /// The output column name (`AggregationPartOps.outputColumnName`).
    pub name: String,
    /// The aggregation.
    pub aggregation: Aggregation,
    /// Window length in millis; `None` is unbounded.
    pub window_millis: Option<i64>,
    /// Index of the aggregation's IR in a hop row.
    pub base_index: usize,
    /// Index into [`HOP_SIZES`] of the window's tail hop (`FiveMinuteResolution.calculateTailHop`:
    /// 1 day from 12 days up, 1 hour from 12 hours up, else 5 minutes; unbounded: 1 day).
    pub hop_index: usize,
}

/// The JVM's schemas for one GroupBy.
#[derive(Debug, Clone)]
pub struct JvmLayout {
    /// The GroupBy's name.
    pub name: String,
    /// `<NAME>_BATCH`.
    pub batch_dataset: String,
    /// `<NAME>_STREAMING`.
    pub streaming_dataset: String,
    /// What the batch value holds.
    pub batch_value: BatchValue,
    /// Whether streaming rows are mutations (entities with a mutation topic).
    pub mutations: bool,
    /// `Key`: the key columns (`GroupByUpload.buildServingInfo`: `keySchema.toAvroSchema("Key")`;
    /// `KvRdd.keyZSchema`).
    pub key: StructType,
    /// `Value`: the selected columns as the serving info's `selectedAvroSchema` holds them
    /// (`GroupBy.preAggSchema`: the distinct aggregation inputs, or without aggregations every
    /// column but keys and reserved ones).
    pub selected: StructType,
    /// `<clean>_INPUT_COLS`: streaming values of events (`GroupByServingInfoParsed.valueChrononSchema`).
    pub input_cols: StructType,
    /// `<clean>_MUTATION_COLS`: streaming values of mutations, the input columns then `ts`
    /// (long) and `is_before` (boolean) (`GroupByServingInfoParsed.mutationValueAvroSchema`).
    pub mutation_cols: StructType,
    /// `<clean>_OUTPUT`: the finalized outputs (`GroupByServingInfoParsed.outputChrononSchema`).
    pub output: StructType,
    /// `<clean>_IR`: `{collapsedIr: WindowedIr, tailHopIrs: list<list<HopIr>>}`
    /// (`SawtoothMutationAggregator.batchIrSchema`; `HopIr` ends with `ts`).
    pub ir: StructType,
    /// The output columns in order.
    pub parts: Vec<Part>,
    /// The aggregations whose IRs a hop row holds, in order (`UnpackedAggregations.perBucket`).
    pub base: Vec<Aggregation>,
}

/// Whether the GroupBy is Chronon's "no aggregations" shape: every aggregation serves a column
/// as it is (this crate's model of it, see [`crate::conf`]: a named, unwindowed `last`).
pub fn is_selection(gb: &GroupBy) -> bool {
    gb.aggregations.iter().all(|a| {
        a.operation == Operation::Last
            && a.windows.is_empty()
            && a.name.as_deref() == Some(a.input_column.as_str())
    })
}

fn unsupported(gb: &GroupBy, reason: String) -> JvmError {
    JvmError::Unsupported {
        group_by: gb.name.clone(),
        reason,
    }
}

/// The type an operation's IR has (`ColumnAggregator.construct` picks the aggregator;
/// `SimpleAggregators.scala` and `TimedAggregators.scala` define `irType`).
pub fn ir_type(op: Operation, input: &DataType) -> Result<DataType, String> {
    check_input(op, input)?;
    Ok(match op {
        Operation::Count => DataType::Long,
        Operation::Sum => sum_type(input),
        Operation::Average => DataType::Struct(StructType::new(
            "AvgIr",
            vec![
                StructField::new("sum", DataType::Double),
                StructField::new("count", DataType::Int),
            ],
        )),
        Operation::Variance => DataType::Struct(StructType::new(
            "VarianceIr",
            vec![
                StructField::new("count", DataType::Int),
                StructField::new("mean", DataType::Double),
                StructField::new("m2", DataType::Double),
            ],
        )),
        Operation::Min | Operation::Max => input.clone(),
        Operation::UniqueCount | Operation::TopK | Operation::BottomK => {
            DataType::list(input.clone())
        }
        Operation::BoundedUniqueCount => match input {
            DataType::Int
            | DataType::Long
            | DataType::Double
            | DataType::Float
            | DataType::Short
            | DataType::Binary => DataType::list(input.clone()),
            // Other inputs are kept as the MD5 hex of their Java serialization.
            _ => DataType::list(DataType::String),
        },
        Operation::Histogram => DataType::map(DataType::String, DataType::Int),
        Operation::ApproxUniqueCount | Operation::ApproxPercentile => DataType::Binary,
        Operation::First | Operation::Last => time_pair(input),
        Operation::FirstK | Operation::LastK => DataType::list(time_pair(input)),
        // MomentAggregator.normalize: [n, m1, m2, m3, m4].
        Operation::Skew | Operation::Kurtosis => DataType::list(DataType::Double),
    })
}

/// The type an operation's finalized output has (`outputType` in the same files).
pub fn output_type(op: Operation, input: &DataType) -> Result<DataType, String> {
    check_input(op, input)?;
    Ok(match op {
        Operation::Count | Operation::UniqueCount | Operation::BoundedUniqueCount => DataType::Long,
        Operation::Sum => sum_type(input),
        Operation::Average | Operation::Variance | Operation::Skew | Operation::Kurtosis => {
            DataType::Double
        }
        Operation::Min | Operation::Max | Operation::First | Operation::Last => input.clone(),
        Operation::TopK | Operation::BottomK | Operation::FirstK | Operation::LastK => {
            DataType::list(input.clone())
        }
        Operation::Histogram => DataType::map(DataType::String, DataType::Int),
        Operation::ApproxUniqueCount => DataType::Long,
        Operation::ApproxPercentile => DataType::list(DataType::Float),
    })
}

/// `TimeTuple.type`: `TimePair_<type>` of `{epochMillis: long, payload}`.
fn time_pair(input: &DataType) -> DataType {
    DataType::Struct(StructType::new(
        format!("TimePair_{}", input.chronon_name()),
        vec![
            StructField::new("epochMillis", DataType::Long),
            StructField::new("payload", input.clone()),
        ],
    ))
}

/// SUM: long for int, long, short and boolean inputs, double for double and float.
fn sum_type(input: &DataType) -> DataType {
    match input {
        DataType::Double | DataType::Float => DataType::Double,
        _ => DataType::Long,
    }
}

/// The inputs `ColumnAggregator.construct` accepts (it throws for the rest); list and map inputs
/// of simple operations (Chronon's vector and map aggregations) are not modelled here.
fn check_input(op: Operation, t: &DataType) -> Result<(), String> {
    use DataType as D;
    let ok = match op {
        Operation::Count | Operation::First | Operation::Last => {
            !matches!(t, D::Date | D::Timestamp)
        }
        Operation::FirstK | Operation::LastK => !matches!(t, D::Date | D::Timestamp),
        Operation::Sum => matches!(
            t,
            D::Int | D::Long | D::Short | D::Boolean | D::Double | D::Float
        ),
        Operation::Average | Operation::Variance | Operation::Skew | Operation::Kurtosis => {
            matches!(t, D::Int | D::Long | D::Short | D::Double | D::Float)
        }
        Operation::Min | Operation::Max | Operation::TopK | Operation::BottomK => matches!(
            t,
            D::Int | D::Long | D::Short | D::Double | D::Float | D::String
        ),
        Operation::UniqueCount | Operation::BoundedUniqueCount => matches!(
            t,
            D::Int | D::Long | D::Short | D::Double | D::Float | D::String | D::Binary
        ),
        Operation::Histogram => matches!(t, D::String),
        // The IRs are the sketches' serialized bytes (`normalize` in SimpleAggregators.scala).
        Operation::ApproxUniqueCount => matches!(
            t,
            D::Int | D::Long | D::Short | D::Double | D::Float | D::String | D::Binary
        ),
        Operation::ApproxPercentile => {
            matches!(t, D::Int | D::Long | D::Short | D::Double | D::Float)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{op:?} over a {t} column has no JVM aggregator (ColumnAggregator.construct)"
        ))
    }
}

fn tail_hop_index(window_millis: Option<i64>) -> usize {
    let hop = window_millis.map_or(DAY_MILLIS, crate::window::tail_hop_millis);
    HOP_SIZES.iter().position(|h| *h == hop).unwrap_or(0)
}

impl JvmLayout {
    /// The layout of `gb`; an error names what the JVM's aggregators have no form for.
    pub fn new(gb: &GroupBy) -> Result<Self, JvmError> {
        let clean = clean_name(&gb.name);
        let type_of = |c: &str| {
            gb.schema
                .type_of(c)
                .cloned()
                .ok_or_else(|| unsupported(gb, format!("column {c:?} is not in the schema")))
        };
        let mut key_fields = Vec::with_capacity(gb.keys.len());
        for k in &gb.keys {
            key_fields.push(StructField::new(k.clone(), type_of(k)?));
        }
        let key = StructType::new("Key", key_fields);
        let selection = is_selection(gb);
        // GroupByServingInfoParsed.valueChrononSchema: aggregationInputs (each aggregation's
        // bucket columns, then its input column), distinct, in order.
        let mut inputs: Vec<StructField> = Vec::new();
        for c in gb.aggregation_inputs() {
            inputs.push(StructField::new(c.clone(), type_of(&c)?));
        }
        let selected = if selection {
            let fields = gb
                .schema
                .fields
                .iter()
                .filter(|f| {
                    !gb.keys.contains(&f.name)
                        && f.name != gb.time_column
                        && !RESERVED_COLUMNS.contains(&f.name.as_str())
                })
                .cloned()
                .collect();
            StructType::new("Value", fields)
        } else {
            StructType::new("Value", inputs.clone())
        };
        let input_cols = StructType::new(format!("{clean}_INPUT_COLS"), inputs.clone());
        let mut mutation_fields = inputs;
        mutation_fields.push(StructField::new("ts", DataType::Long));
        mutation_fields.push(StructField::new("is_before", DataType::Boolean));
        let mutation_cols = StructType::new(format!("{clean}_MUTATION_COLS"), mutation_fields);

        let mut parts = Vec::new();
        let mut base = Vec::new();
        let mut output_fields = Vec::new();
        let mut windowed_fields = Vec::new();
        let mut hop_fields = Vec::new();
        if !selection {
            for (index, a) in gb.aggregations.iter().enumerate() {
                if a.name.is_some() {
                    return Err(unsupported(
                        gb,
                        format!("aggregation {index} has a custom name; the JVM names outputs {{input}}_{{op}}{{_window}}"),
                    ));
                }
                let input = type_of(&a.input_column)?;
                let (shape, element) = input_shape(a, &input).map_err(|e| unsupported(gb, e))?;
                let wrap = |t: DataType| match (a.buckets.is_empty(), shape) {
                    // BucketedColumnAggregator: map<bucket value, IR/output>.
                    (false, _) => DataType::map(DataType::String, t),
                    // ElementWiseAggregator: one IR/output per list position.
                    (true, InputShape::ElementWise) => DataType::list(t),
                    (true, _) => t,
                };
                let ir = wrap(ir_type(a.operation, &element).map_err(|e| unsupported(gb, e))?);
                let out = wrap(output_type(a.operation, &element).map_err(|e| unsupported(gb, e))?);
                // `unpack`: buckets outer, windows inner; the hop IR holds one IR per
                // aggregation and bucket (`unWindowed`).
                for b in a.bucket_list() {
                    let base_index = base.len();
                    // Two parts of one input and operation (different windows) share the
                    // unwindowed name; Avro needs distinct field names, and AvroConversions
                    // makes them distinct the same way (names never change the bytes).
                    let unwindowed = a.output_name(None, b);
                    let mut hop_name = unwindowed.clone();
                    let mut i = 0;
                    while hop_fields.iter().any(|f: &StructField| f.name == hop_name) {
                        hop_name = format!("{unwindowed}{REPETITION_SUFFIX}{i}");
                        i += 1;
                    }
                    hop_fields.push(StructField::new(hop_name, ir.clone()));
                    base.push(a.clone());
                    for w in a.window_list() {
                        if let Some(w) = w {
                            if w.unit == crate::window::TimeUnit::Minutes {
                                return Err(unsupported(
                                    gb,
                                    format!(
                                        "window {w}: Chronon's windows are in hours or days (TimeUnit)"
                                    ),
                                ));
                            }
                        }
                        let name = a.output_name(w, b);
                        let window_millis = w.map(|w| w.millis());
                        output_fields.push(StructField::new(name.clone(), out.clone()));
                        windowed_fields.push(StructField::new(name.clone(), ir.clone()));
                        parts.push(Part {
                            name,
                            aggregation: a.clone(),
                            window_millis,
                            base_index,
                            hop_index: tail_hop_index(window_millis),
                        });
                    }
                }
            }
        }
        hop_fields.push(StructField::new("ts", DataType::Long));
        let ir = StructType::new(
            format!("{clean}_IR"),
            vec![
                StructField::new(
                    "collapsedIr",
                    DataType::Struct(StructType::new("WindowedIr", windowed_fields)),
                ),
                StructField::new(
                    "tailHopIrs",
                    DataType::list(DataType::list(DataType::Struct(StructType::new(
                        "HopIr", hop_fields,
                    )))),
                ),
            ],
        );
        let output = StructType::new(format!("{clean}_OUTPUT"), output_fields);
        let batch_value = if selection {
            BatchValue::Selected
        } else if gb.accuracy == Accuracy::Snapshot {
            BatchValue::Finalized
        } else {
            BatchValue::Ir
        };
        Ok(JvmLayout {
            name: gb.name.clone(),
            batch_dataset: batch_dataset(&gb.name),
            streaming_dataset: streaming_dataset(&gb.name),
            batch_value,
            mutations: gb.source == SourceKind::Entities && gb.accuracy == Accuracy::Temporal,
            key,
            selected,
            input_cols,
            mutation_cols,
            output,
            ir,
            parts,
            base,
        })
    }

    /// The GroupBy and layout a serving info describes, with its key and selected schemas as
    /// stored (the JVM's fetcher decodes with them, `GroupByServingInfoParsed.keyCodec` and
    /// `selectedCodec`: the selected columns' order is the upload's, not re-derivable from
    /// the GroupBy's `selects` map).
    pub fn from_serving_info(info: &super::ServingInfo) -> Result<(GroupBy, JvmLayout), JvmError> {
        let gb = info.group_by()?;
        let mut layout = JvmLayout::new(&gb)?;
        let key = info.key_schema()?;
        if key
            .fields
            .iter()
            .map(|f| &f.name)
            .ne(layout.key.fields.iter().map(|f| &f.name))
        {
            return Err(unsupported(
                &gb,
                format!(
                    "keyAvroSchema has columns {:?}, the GroupBy keys {:?}",
                    key.field_names().collect::<Vec<_>>(),
                    gb.keys
                ),
            ));
        }
        layout.key = key;
        if layout.batch_value == BatchValue::Selected {
            let selected = info.selected_schema()?;
            layout.selected = StructType::new("Value", selected.fields);
        }
        Ok((gb, layout))
    }

    /// The schema of the batch value (`Value` in the upload table; the fetcher decodes it with
    /// `selectedCodec`, `outputCodec` or `irCodec`, whose names differ but whose bytes agree).
    pub fn batch_value_schema(&self) -> &StructType {
        match self.batch_value {
            BatchValue::Selected => &self.selected,
            BatchValue::Finalized => &self.output,
            BatchValue::Ir => &self.ir,
        }
    }

    /// The schema of a streaming value: `_MUTATION_COLS` for mutations, else `_INPUT_COLS`
    /// (`FetcherBase.constructGroupByResponse` picks `mutationValueAvroCodec`/`valueAvroCodec`).
    pub fn streaming_value_schema(&self) -> &StructType {
        if self.mutations {
            &self.mutation_cols
        } else {
            &self.input_cols
        }
    }
}
