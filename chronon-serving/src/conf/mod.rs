//! Chronon's compiled definitions: the Thrift-JSON files `compile.py` (from the `chronon-ai`
//! Python package) writes under `production/group_bys/<team>/<name>` and
//! `production/joins/<team>/<name>`, loaded into this crate's serving model ([`GroupBy`],
//! [`Join`]) with Chronon's semantics for what the files leave implicit.
//!
//! - The reader is tolerant as the JVM's is: unknown fields are ignored, booleans are `1`/`0`,
//!   enums integers (or names), `argMap` values strings, windows `{length, timeUnit}` with
//!   absent meaning unbounded, and joins embed whole GroupBys in `joinParts` ([`thrift`]).
//! - Accuracy is inferred as Chronon's `GroupByOps.inferredAccuracy` does: the explicit value
//!   when set, else TEMPORAL when a source has a topic or mutation topic, else SNAPSHOT.
//! - An entity source without a mutation topic is a snapshot: served batch-only, any operation.
//!   With a mutation topic it is a mutation source (before-images reversed).
//! - A GroupBy without aggregations serves the selected value columns (every select but the
//!   keys, as Chronon's `valueColumns`) of the latest row per key.
//! - Compiled confs carry no column types: they come from the data ([`group_by_from_conf`]
//!   takes the schema of the events or upload table).
//!
//! - Buckets (`_by_<column>` map features) and element-wise aggregation of list inputs are
//!   served as Chronon's row aggregators compute them ([`crate::aggregation::part`]).
//! - Derivations (GroupBy and Join) are carried into the model and served by the fetcher
//!   ([`crate::derive`]); an expression the evaluator does not implement is a load-time error
//!   naming `derivations[i].expression`, and a GroupBy's derivations are type-checked against
//!   its features here (a Join's when it is stored or served, once its GroupBys' types are known).
//!
//! What the serving model cannot do yet is a load-time error naming the file and the field
//! ([`ConfError`]) rather than a wrong value: `wheres`, join sources, external parts, map-valued
//! inputs, HISTOGRAM truncated to `k`, and APPROX_HISTOGRAM_K (see
//! [`crate::aggregation::sketch`] for why). APPROX_UNIQUE_COUNT and APPROX_PERCENTILE are served
//! with Apache DataSketches' CPC and KLL sketches.
//!
//! [`layout`] writes the JVM's metadata datasets (`ZIPLINE_METADATA`, `CHRONON_ENTITY_BY_TEAM`).

pub mod layout;
pub mod thrift;

use std::path::Path;

use crate::derive::model::{check_syntax, group_by_deriver};
use crate::derive::Derivation;
use crate::groupby::{
    Accuracy, Aggregation, GroupBy, Join, JoinPart, Operation, SourceKind, TimeUnit, Window,
};
use crate::stream::writer::TIME_COLUMN;
use crate::stream::{StructField, StructType};

/// A compiled conf that cannot be served: which file, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {field}: {reason}")]
pub struct ConfError {
    /// The conf file (or the conf name when it was not read from a file).
    pub file: String,
    /// The field, as a path into the Thrift JSON (`aggregations[2].operation`).
    pub field: String,
    /// What is wrong or not supported.
    pub reason: String,
}

impl ConfError {
    fn new(file: &str, field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfError {
            file: file.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A compiled conf file, parsed.
#[derive(Debug, Clone)]
pub enum CompiledConf {
    /// A GroupBy (`production/group_bys/...`).
    GroupBy(Box<thrift::GroupBy>),
    /// A Join (`production/joins/...`).
    Join(Box<thrift::Join>),
}

/// Whether `text` looks like a compiled conf (a JSON object with `metaData`), as opposed to
/// this workspace's own YAML/JSON definitions.
pub fn is_compiled_conf(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .is_some_and(|j| j.get("metaData").is_some_and(|m| m.is_object()))
}

/// Parses a compiled conf; `file` names it in errors. A file is a Join when its path has a
/// `joins/` folder or it has `joinParts`, as the JVM's `MetadataDirWalker` decides by path.
pub fn parse(file: &str, text: &str) -> Result<CompiledConf, ConfError> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ConfError::new(file, "<json>", e.to_string()))?;
    if !json.get("metaData").is_some_and(|m| m.is_object()) {
        return Err(ConfError::new(
            file,
            "metaData",
            "missing: not a compiled Chronon conf",
        ));
    }
    let is_join = file.contains("joins/") || json.get("joinParts").is_some();
    let de = |e: serde_json::Error| ConfError::new(file, "<thrift json>", e.to_string());
    if is_join {
        Ok(CompiledConf::Join(
            serde_json::from_value(json).map_err(de)?,
        ))
    } else {
        Ok(CompiledConf::GroupBy(
            serde_json::from_value(json).map_err(de)?,
        ))
    }
}

/// Reads and parses a compiled conf file.
pub fn load(path: &Path) -> Result<CompiledConf, ConfError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfError::new(&file, "<file>", e.to_string()))?;
    parse(&file, &text)
}

/// The name in `metaData.name`.
pub fn conf_name(meta: Option<&thrift::MetaData>, file: &str) -> Result<String, ConfError> {
    meta.and_then(|m| m.name.clone())
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ConfError::new(file, "metaData.name", "missing"))
}

/// Chronon's inferred accuracy of a GroupBy (`GroupByOps.inferredAccuracy`).
pub fn inferred_accuracy(gb: &thrift::GroupBy, file: &str) -> Result<Accuracy, ConfError> {
    if let Some(a) = &gb.accuracy {
        return match a.resolve(thrift::ACCURACIES) {
            Some("TEMPORAL") => Ok(Accuracy::Temporal),
            Some("SNAPSHOT") => Ok(Accuracy::Snapshot),
            _ => Err(ConfError::new(
                file,
                "accuracy",
                format!("unknown value {a}"),
            )),
        };
    }
    let has_topic = gb
        .sources
        .iter()
        .flatten()
        .any(|s| s.topic().is_some_and(|t| !t.is_empty()));
    Ok(if has_topic {
        Accuracy::Temporal
    } else {
        Accuracy::Snapshot
    })
}

/// The value columns of a GroupBy without aggregations, in select order (Chronon's
/// `GroupByOps.valueColumns` for the no-aggregation case: the first source's selects but the keys).
pub fn selected_value_columns(gb: &thrift::GroupBy) -> Vec<String> {
    let keys = gb.key_columns.clone().unwrap_or_default();
    gb.sources
        .as_ref()
        .and_then(|s| s.first())
        .and_then(|s| s.query())
        .and_then(|q| q.selects.as_ref())
        .map(|sel| sel.keys().filter(|c| !keys.contains(c)).cloned().collect())
        .unwrap_or_default()
}

/// The model operation of a Chronon operation (with its `k`); `Err` names what is missing.
fn operation(
    agg: &thrift::Aggregation,
    file: &str,
    field: &str,
) -> Result<(Operation, Option<usize>), ConfError> {
    let op = agg
        .operation
        .as_ref()
        .ok_or_else(|| ConfError::new(file, format!("{field}.operation"), "missing"))?;
    let name = op.resolve(thrift::OPERATIONS).ok_or_else(|| {
        ConfError::new(
            file,
            format!("{field}.operation"),
            format!("unknown operation {op}"),
        )
    })?;
    let k = || -> Result<usize, ConfError> {
        let raw = agg
            .arg_map
            .as_ref()
            .and_then(|m| m.get("k"))
            .ok_or_else(|| ConfError::new(file, format!("{field}.argMap.k"), "missing"))?;
        raw.trim().parse().map_err(|_| {
            ConfError::new(
                file,
                format!("{field}.argMap.k"),
                format!("{raw:?} is not a whole number"),
            )
        })
    };
    Ok(match name {
        "MIN" => (Operation::Min, None),
        "MAX" => (Operation::Max, None),
        "FIRST" => (Operation::First, None),
        "LAST" => (Operation::Last, None),
        "UNIQUE_COUNT" => (Operation::UniqueCount, None),
        "COUNT" => (Operation::Count, None),
        "SUM" => (Operation::Sum, None),
        "AVERAGE" => (Operation::Average, None),
        "VARIANCE" => (Operation::Variance, None),
        "LAST_K" => (Operation::LastK, Some(k()?)),
        "FIRST_K" => (Operation::FirstK, Some(k()?)),
        "TOP_K" => (Operation::TopK, Some(k()?)),
        "BOTTOM_K" => (Operation::BottomK, Some(k()?)),
        "SKEW" => (Operation::Skew, None),
        "KURTOSIS" => (Operation::Kurtosis, None),
        // Chronon's default bound is 8 when the argMap has no k.
        "BOUNDED_UNIQUE_COUNT" => match agg.arg_map.as_ref().and_then(|m| m.get("k")) {
            None => (Operation::BoundedUniqueCount, Some(8)),
            Some(_) => (Operation::BoundedUniqueCount, Some(k()?)),
        },
        "HISTOGRAM" => match agg.arg_map.as_ref().and_then(|m| m.get("k")) {
            Some(raw) if raw.trim() != "0" => {
                return Err(ConfError::new(
                    file,
                    format!("{field}.argMap.k"),
                    "HISTOGRAM truncated to its k most frequent values is not served yet \
                     (Chronon breaks ties in hash-map order); use k = 0",
                ))
            }
            _ => (Operation::Histogram, None),
        },
        "APPROX_UNIQUE_COUNT" => match agg.arg_map.as_ref().and_then(|m| m.get("k")) {
            None => (Operation::ApproxUniqueCount, None),
            Some(_) => (Operation::ApproxUniqueCount, Some(k()?)),
        },
        "APPROX_PERCENTILE" => match agg.arg_map.as_ref().and_then(|m| m.get("k")) {
            None => (Operation::ApproxPercentile, None),
            Some(_) => (Operation::ApproxPercentile, Some(k()?)),
        },
        "APPROX_HISTOGRAM_K" => return Err(ConfError::new(
            file,
            format!("{field}.operation"),
            "APPROX_HISTOGRAM_K is not served: its JVM IR is a Java-serialized Scala object and \
                 past k keys its counts come from sketches-core 0.13.4's frequent-items sketch, \
                 whose purges follow Java's hashCode; it is refused rather than served with \
                 different numbers",
        )),
        other => {
            return Err(ConfError::new(
                file,
                format!("{field}.operation"),
                format!("{other} is not served yet"),
            ))
        }
    })
}

fn window(w: &thrift::Window, file: &str, field: &str) -> Result<Option<Window>, ConfError> {
    let length = w.length.unwrap_or(0);
    if length <= 0 || length >= i64::from(i32::MAX) {
        return Ok(None);
    }
    let unit = match w
        .time_unit
        .as_ref()
        .and_then(|u| u.resolve(thrift::TIME_UNITS))
    {
        Some("HOURS") => TimeUnit::Hours,
        Some("DAYS") => TimeUnit::Days,
        _ => {
            return Err(ConfError::new(
                file,
                format!("{field}.timeUnit"),
                format!("missing or unknown: {:?}", w.time_unit),
            ))
        }
    };
    let length = u32::try_from(length)
        .map_err(|_| ConfError::new(file, format!("{field}.length"), "out of range"))?;
    Ok(Some(Window::new(length, unit)))
}

/// A compiled GroupBy as this crate's [`GroupBy`], with column types from `data_schema` (the
/// schema of the events or upload table; it must hold the key columns, the time column and the
/// selected columns under their selected names). `file` names the conf in errors.
pub fn group_by_from_conf(
    gb: &thrift::GroupBy,
    data_schema: &StructType,
    file: &str,
) -> Result<GroupBy, ConfError> {
    let name = conf_name(gb.meta_data.as_ref(), file)?;
    let keys = gb
        .key_columns
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ConfError::new(file, "keyColumns", "missing or empty"))?;
    let sources = gb
        .sources
        .as_ref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConfError::new(file, "sources", "missing or empty"))?;
    let mut entity_model = None;
    let mut mutation = false;
    let mut selects: Option<Vec<String>> = None;
    let mut time_column: Option<String> = None;
    for (i, s) in sources.iter().enumerate() {
        let field = format!("sources[{i}]");
        if s.join_source.is_some() {
            return Err(ConfError::new(
                file,
                format!("{field}.joinSource"),
                "a join source (chaining) is not served here",
            ));
        }
        let is_entities = match (&s.events, &s.entities) {
            (Some(_), _) => false,
            (_, Some(e)) => {
                mutation |= e.mutation_topic.as_deref().is_some_and(|t| !t.is_empty());
                true
            }
            _ => return Err(ConfError::new(file, field, "neither events nor entities")),
        };
        if entity_model
            .replace(is_entities)
            .is_some_and(|m| m != is_entities)
        {
            return Err(ConfError::new(
                file,
                "sources",
                "all sources must be events or all entities (Chronon's GroupByOps.dataModel)",
            ));
        }
        let q = s.query().cloned().unwrap_or_default();
        if q.wheres.as_ref().is_some_and(|w| !w.is_empty()) {
            return Err(ConfError::new(
                file,
                format!("{field}.query.wheres"),
                "filters are not applied by the serving upload; filter the data before it",
            ));
        }
        let mut cols: Vec<String> = q
            .selects
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_else(|| data_schema.field_names().map(String::from).collect());
        cols.sort();
        if selects.as_ref().is_some_and(|s| *s != cols) {
            return Err(ConfError::new(
                file,
                format!("{field}.query.selects"),
                "sources select different columns; serving reads one row shape per GroupBy",
            ));
        }
        selects = Some(cols);
        // The time column is `ts` in Chronon's query output; a raw table may keep its own name.
        let t = match q.time_column.as_deref() {
            Some(t) if data_schema.index_of(t).is_some() => t.to_string(),
            _ => TIME_COLUMN.to_string(),
        };
        if time_column.as_ref().is_some_and(|x| *x != t) {
            return Err(ConfError::new(
                file,
                format!("{field}.query.timeColumn"),
                "sources have different time columns",
            ));
        }
        time_column = Some(t);
    }
    let time_column = time_column.unwrap_or_else(|| TIME_COLUMN.to_string());
    let accuracy = inferred_accuracy(gb, file)?;
    let source = if entity_model == Some(true) && mutation {
        SourceKind::Entities
    } else {
        SourceKind::Events
    };
    // Snapshot entity sources are batch data: served as uploaded whatever the accuracy says.
    let accuracy = if entity_model == Some(true) && !mutation {
        Accuracy::Snapshot
    } else {
        accuracy
    };
    let mut aggregations = Vec::new();
    match &gb.aggregations {
        Some(aggs) if !aggs.is_empty() => {
            for (i, a) in aggs.iter().enumerate() {
                aggregations.push(aggregation(a, file, &format!("aggregations[{i}]"))?);
            }
        }
        _ => {
            for c in selected_value_columns(gb) {
                if c == time_column {
                    continue;
                }
                aggregations.push(
                    Aggregation::new(&c, Operation::Last, &[])
                        .map_err(|e| ConfError::new(file, "aggregations", e))?
                        .named(c.clone()),
                );
            }
        }
    }
    let derivations = derivations(gb.derivations.as_deref(), file)?;
    let mut wanted: Vec<&str> = keys.iter().map(String::as_str).collect();
    for a in &aggregations {
        for c in std::iter::once(&a.input_column).chain(&a.buckets) {
            if !wanted.contains(&c.as_str()) {
                wanted.push(c);
            }
        }
    }
    wanted.push(&time_column);
    let mut fields = Vec::new();
    for c in wanted {
        let t = data_schema.type_of(c).ok_or_else(|| {
            ConfError::new(
                file,
                "sources",
                format!(
                    "column {c:?} is not in the data ({})",
                    data_schema.field_names().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        fields.push(StructField::new(c, t.clone()));
    }
    let model = GroupBy {
        name: name.clone(),
        keys,
        schema: StructType::new(crate::stream::writer::clean_name(&name), fields),
        time_column,
        accuracy,
        source,
        aggregations,
        derivations,
    };
    model
        .validate()
        .map_err(|e| ConfError::new(file, "<definition>", e.reason))?;
    // The derivations type-checked over the features, so an unsupported construct or an unknown
    // column fails here, naming the derivation.
    group_by_deriver(&model).map_err(|e| ConfError::new(file, "derivations", e.reason))?;
    Ok(model)
}

fn aggregation(a: &thrift::Aggregation, file: &str, field: &str) -> Result<Aggregation, ConfError> {
    let input = a
        .input_column
        .clone()
        .ok_or_else(|| ConfError::new(file, format!("{field}.inputColumn"), "missing"))?;
    let (op, k) = operation(a, file, field)?;
    let mut windows = Vec::new();
    let mut unbounded = false;
    for (i, w) in a.windows.iter().flatten().enumerate() {
        match window(w, file, &format!("{field}.windows[{i}]"))? {
            Some(w) => windows.push(w),
            None => unbounded = true,
        }
    }
    if unbounded && !windows.is_empty() {
        return Err(ConfError::new(
            file,
            format!("{field}.windows"),
            "an unbounded window next to bounded ones is not served yet; split the aggregation",
        ));
    }
    Ok(Aggregation {
        input_column: input,
        operation: op,
        windows,
        k,
        name: None,
        buckets: a.buckets.clone().unwrap_or_default(),
        element_wise: a.element_wise == Some(true),
        percentiles: percentiles(a, file, field)?,
    })
}

/// `argMap.percentiles` of APPROX_PERCENTILE: a JSON array of fractions in a string
/// (`"[0.5, 0.95]"`, read with Jackson in `ColumnAggregator.construct`); absent means `[0.5]`.
fn percentiles(a: &thrift::Aggregation, file: &str, field: &str) -> Result<Vec<f64>, ConfError> {
    let Some(raw) = a.arg_map.as_ref().and_then(|m| m.get("percentiles")) else {
        return Ok(Vec::new());
    };
    serde_json::from_str(raw).map_err(|e| {
        ConfError::new(
            file,
            format!("{field}.argMap.percentiles"),
            format!("{raw:?} is not a JSON array of numbers: {e}"),
        )
    })
}

/// Chronon's `derivations` as the model's: every one needs a name and an expression, and the
/// expressions must parse into what [`crate::derive`] evaluates (their types are checked once
/// the inputs' types are known: [`group_by_deriver`] here for a GroupBy, when the join is stored
/// or served for a Join).
fn derivations(
    list: Option<&[thrift::Derivation]>,
    file: &str,
) -> Result<Vec<Derivation>, ConfError> {
    let mut out = Vec::new();
    for (i, d) in list.unwrap_or_default().iter().enumerate() {
        let field = |part: &str| format!("derivations[{i}].{part}");
        let name = d
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| ConfError::new(file, field("name"), "missing"))?;
        let expression = d
            .expression
            .clone()
            .filter(|e| !e.trim().is_empty())
            .ok_or_else(|| ConfError::new(file, field("expression"), "missing"))?;
        out.push(Derivation::new(name, expression));
    }
    check_syntax(&out)
        .map_err(|(i, e)| ConfError::new(file, format!("derivations[{i}].expression"), e))?;
    Ok(out)
}

/// A compiled Join as this crate's [`Join`], with the GroupBys its parts embed.
pub fn join_from_conf(
    join: &thrift::Join,
    file: &str,
) -> Result<(Join, Vec<thrift::GroupBy>), ConfError> {
    let name = conf_name(join.meta_data.as_ref(), file)?;
    if join
        .online_external_parts
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(ConfError::new(
            file,
            "onlineExternalParts",
            "external parts are not served here",
        ));
    }
    let derivations = derivations(join.derivations.as_deref(), file)?;
    let parts_in = join
        .join_parts
        .as_ref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ConfError::new(file, "joinParts", "missing or empty"))?;
    let mut parts = Vec::new();
    let mut group_bys = Vec::new();
    for (i, p) in parts_in.iter().enumerate() {
        let gb = p
            .group_by
            .clone()
            .ok_or_else(|| ConfError::new(file, format!("joinParts[{i}].groupBy"), "missing"))?;
        let gb_name = conf_name(gb.meta_data.as_ref(), file).map_err(|e| {
            ConfError::new(
                file,
                format!("joinParts[{i}].groupBy.metaData.name"),
                e.reason,
            )
        })?;
        parts.push(JoinPart {
            group_by: gb_name,
            key_mapping: p.key_mapping.clone().unwrap_or_default(),
            prefix: p.prefix.clone().filter(|p| !p.is_empty()),
        });
        group_bys.push(gb);
    }
    let model = Join {
        name,
        parts,
        derivations,
    };
    let json = model.to_json_string();
    Join::from_json_str(&json).map_err(|e| ConfError::new(file, "joinParts", e.reason))?;
    Ok((model, group_bys))
}
