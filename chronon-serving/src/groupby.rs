//! GroupBy and Join definitions (Chronon's `api.GroupBy` / `api.Join`, reduced to what online
//! serving needs), read from JSON or YAML, validated when loaded, and stored in
//! `CHRONON_METADATA`.
//!
//! ```
//! use chronon_serving::groupby::GroupBy;
//! let gb = GroupBy::from_yaml_str(r#"
//! name: quickstart.purchases.v1
//! keys: [user_id]
//! schema: {name: purchases, fields: [{name: user_id, type: string}, {name: price, type: double}, {name: ts, type: long}]}
//! aggregations:
//!   - {input_column: price, operation: sum, windows: ["3d", "14d"]}
//!   - {input_column: price, operation: last_k, k: 5}
//! "#).unwrap();
//! assert_eq!(gb.feature_names(), vec!["price_sum_3d", "price_sum_14d", "price_last5"]);
//! ```

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod operation;

/// The aggregation definitions live in `groupby/operation.rs`; re-exported here with the GroupBy
/// that holds them.
pub use operation::{input_shape, Aggregation, InputShape, Operation};

pub use crate::derive::Derivation;
use crate::stream::debezium::MUTATION_TS_COLUMN;
use crate::stream::mutation::is_time_type;
use crate::stream::writer::{clean_name, TIME_COLUMN};
use crate::stream::{DataModel, DataType, StructType, WriterOptions};
/// Windows and time units live in [`crate::window`]; re-exported here with the definitions that use them.
pub use crate::window::{
    round_down, tail_hop_millis, TimeUnit, Window, DAY_MILLIS, HOUR_MILLIS, MINUTE_MILLIS,
    TAIL_BUFFER_MILLIS,
};

/// The metadata dataset (Chronon's `MetadataDataset`): definitions and batch end times.
pub const METADATA_DATASET: &str = "CHRONON_METADATA";
/// A definition that cannot be served, with what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid definition {name:?}: {reason}")]
pub struct DefinitionError {
    /// The group-by or join name (or the file, before a name is known).
    pub name: String,
    /// What is wrong.
    pub reason: String,
}

impl DefinitionError {
    pub(crate) fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        DefinitionError {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// Whether the group-by serves batch values only or batch plus streaming (Chronon's `Accuracy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accuracy {
    /// Batch values as uploaded (daily refresh, no streaming part).
    Snapshot,
    /// Batch IR merged with streaming rows at request time (the lambda merge).
    #[default]
    Temporal,
}

/// Whether the source is immutable events or entity changes (Chronon's `DataModel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Insert-only events.
    #[default]
    Events,
    /// Entity mutations (CDC): before-images are reversed out of the IR.
    Entities,
}

fn schema_ser<S: Serializer>(schema: &StructType, s: S) -> Result<S::Ok, S::Error> {
    schema.to_json().serialize(s)
}

fn schema_de<'de, D: Deserializer<'de>>(d: D) -> Result<StructType, D::Error> {
    let json = serde_json::Value::deserialize(d)?;
    StructType::from_json(&json).map_err(serde::de::Error::custom)
}

fn default_time_column() -> String {
    TIME_COLUMN.to_string()
}

/// A GroupBy: features aggregated per key from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBy {
    /// The name (`team.purchases.v1`); datasets use its clean form.
    pub name: String,
    /// The key columns.
    pub keys: Vec<String>,
    /// The source schema (the JSON form of [`StructType`]).
    #[serde(serialize_with = "schema_ser", deserialize_with = "schema_de")]
    pub schema: StructType,
    /// The event time column (`long` epoch millis or `timestamp`; default `ts`).
    #[serde(default = "default_time_column")]
    pub time_column: String,
    /// Snapshot or temporal (default temporal).
    #[serde(default)]
    pub accuracy: Accuracy,
    /// Events or entities (default events).
    #[serde(default)]
    pub source: SourceKind,
    /// The aggregations.
    pub aggregations: Vec<Aggregation>,
    /// Chronon's `derivations`, applied to the fetched features (see [`crate::derive`]); the
    /// YAML/JSON shorthand may give them too, as `[{name, expression}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derivations: Vec<Derivation>,
}

impl GroupBy {
    /// Parses and validates a JSON definition.
    pub fn from_json_str(text: &str) -> Result<Self, DefinitionError> {
        let gb: GroupBy = serde_json::from_str(text)
            .map_err(|e| DefinitionError::new("<group-by json>", e.to_string()))?;
        gb.validate()?;
        Ok(gb)
    }

    /// Parses and validates a YAML definition.
    pub fn from_yaml_str(text: &str) -> Result<Self, DefinitionError> {
        let gb: GroupBy = serde_yaml::from_str(text)
            .map_err(|e| DefinitionError::new("<group-by yaml>", e.to_string()))?;
        gb.validate()?;
        Ok(gb)
    }

    /// Reads a `.json`, `.yaml` or `.yml` file.
    pub fn load(path: &std::path::Path) -> Result<Self, DefinitionError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DefinitionError::new(path.display().to_string(), e.to_string()))?;
        if is_yaml(path) {
            Self::from_yaml_str(&text)
        } else {
            Self::from_json_str(&text)
        }
    }

    /// The definition as JSON (what `CHRONON_METADATA` stores).
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks everything serving relies on, so a bad definition fails when it is loaded rather
    /// than at request time.
    pub fn validate(&self) -> Result<(), DefinitionError> {
        let err = |reason: String| DefinitionError::new(self.name.clone(), reason);
        if self.name.trim().is_empty() {
            return Err(err("the name is empty".into()));
        }
        chronon_core::validate::dataset_name(&self.batch_dataset())
            .map_err(|e| err(format!("name does not give a valid dataset: {e}")))?;
        self.schema
            .validate()
            .map_err(|e| err(format!("schema: {e}")))?;
        if self.keys.is_empty() {
            return Err(err("at least one key column is needed".into()));
        }
        let names = || self.schema.field_names().collect::<Vec<_>>().join(", ");
        for k in &self.keys {
            if self.schema.index_of(k).is_none() {
                return Err(err(format!(
                    "key column {k:?} is not in the schema ({})",
                    names()
                )));
            }
        }
        match self.schema.type_of(&self.time_column) {
            None => {
                return Err(err(format!(
                    "time column {:?} is not in the schema ({})",
                    self.time_column,
                    names()
                )))
            }
            Some(t) if !is_time_type(t) => {
                return Err(err(format!(
                    "time column {:?} is {t}, but must be long (epoch ms) or timestamp",
                    self.time_column
                )))
            }
            Some(_) => {}
        }
        if self.aggregations.is_empty() {
            return Err(err("at least one aggregation is needed".into()));
        }
        let value_columns = self.value_columns();
        let mut seen = HashSet::new();
        for a in &self.aggregations {
            let Some(t) = self.schema.type_of(&a.input_column) else {
                return Err(err(format!(
                    "aggregation input column {:?} is not in the schema ({})",
                    a.input_column,
                    names()
                )));
            };
            if !value_columns.contains(&a.input_column) {
                return Err(err(format!(
                    "aggregation input column {:?} is a key or time column; aggregate a value column",
                    a.input_column
                )));
            }
            input_shape(a, t).map_err(|r| {
                err(format!(
                    "{} of {:?}: {r}",
                    a.operation.feature_part(a.k),
                    a.input_column
                ))
            })?;
            for b in &a.buckets {
                match self.schema.type_of(b) {
                    Some(DataType::String) if value_columns.contains(b) => {}
                    Some(DataType::String) => {
                        return Err(err(format!(
                            "bucket column {b:?} is a key or time column; bucket by a value column"
                        )))
                    }
                    Some(t) => {
                        return Err(err(format!(
                            "bucket column {b:?} is {t}, but Chronon's buckets are strings"
                        )))
                    }
                    None => {
                        return Err(err(format!(
                            "bucket column {b:?} is not in the schema ({})",
                            names()
                        )))
                    }
                }
            }
            match (a.operation.takes_k(), a.k) {
                (true, None | Some(0)) => {
                    return Err(err(format!(
                        "{:?} of {:?} needs k of at least 1",
                        a.operation, a.input_column
                    )))
                }
                (true, Some(k)) if k > 10_000 => {
                    return Err(err(format!("{:?} k = {k} is over 10000", a.operation)))
                }
                (false, Some(k)) if a.operation.default_k().is_some() => {
                    let (lo, hi) = match a.operation {
                        Operation::ApproxUniqueCount => (4, 26),
                        Operation::ApproxPercentile => (8, 65_535),
                        _ => (1, 10_000),
                    };
                    if !(lo..=hi).contains(&k) {
                        return Err(err(format!(
                            "{:?} k = {k} is outside {lo}..={hi}",
                            a.operation
                        )));
                    }
                }
                (false, Some(_)) => {
                    return Err(err(format!(
                        "k is only for last_k, first_k, top_k, bottom_k and bounded_unique_count, not for {:?} of {:?}",
                        a.operation, a.input_column
                    )))
                }
                _ => {}
            }
            if !a.percentiles.is_empty() && a.operation != Operation::ApproxPercentile {
                return Err(err(format!(
                    "percentiles are only for approx_percentile, not for {:?} of {:?}",
                    a.operation, a.input_column
                )));
            }
            if a.percentiles.iter().any(|p| !(0.0..=1.0).contains(p)) {
                return Err(err(format!(
                    "percentiles {:?} of {:?} must be in [0, 1]",
                    a.percentiles, a.input_column
                )));
            }
            if a.name.is_some() && !(a.windows.is_empty() && a.buckets.is_empty()) {
                return Err(err(format!(
                    "feature {:?} has an explicit name, so it can have only the unbounded window and no buckets",
                    a.feature_name(None)
                )));
            }
            if self.source == SourceKind::Entities && !a.operation.is_reversible() {
                return Err(err(format!(
                    "{} of {:?} cannot be reversed, so it cannot aggregate an entity (mutation) source; use count, sum, average or variance",
                    a.operation.feature_part(a.k),
                    a.input_column
                )));
            }
            for (_, w, b) in a_features(a) {
                let name = a.output_name(w, b);
                if !seen.insert(name.clone()) {
                    return Err(err(format!("feature {name:?} is defined twice")));
                }
            }
        }
        Ok(())
    }

    /// The feature names in definition order: `{input}_{op}{_window}{_by_bucket}`.
    pub fn feature_names(&self) -> Vec<String> {
        self.features()
            .map(|(a, w, b)| a.output_name(w, b))
            .collect()
    }

    /// Every `(aggregation, window, bucket column)`, in feature order (Chronon's `unpack`: per
    /// aggregation, per bucket column, per window).
    pub fn features(&self) -> impl Iterator<Item = (&Aggregation, Option<Window>, Option<&str>)> {
        self.aggregations.iter().flat_map(a_features)
    }

    /// The columns the streaming rows carry: every column but the keys, the time column and
    /// `mutation_ts` (the streaming writer's default, made explicit so both sides agree).
    pub fn value_columns(&self) -> Vec<String> {
        self.schema
            .fields
            .iter()
            .map(|f| f.name.clone())
            .filter(|n| !self.keys.contains(n) && *n != self.time_column && n != MUTATION_TS_COLUMN)
            .collect()
    }

    /// The distinct aggregation inputs, each aggregation's bucket columns then its input
    /// column: what a streaming value holds (JVM Chronon's `_INPUT_COLS`,
    /// `Extensions.aggregationInputs`, `GroupByServingInfoParsed.valueChrononSchema`).
    pub fn aggregation_inputs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in &self.aggregations {
            for c in a.buckets.iter().chain([&a.input_column]) {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
        out
    }

    /// Options for a [`crate::stream::StreamingWriter`] that writes the rows this group-by's
    /// fetcher reads.
    pub fn writer_options(&self) -> WriterOptions {
        let mut o = WriterOptions::new(self.name.clone(), self.keys.clone(), &self.time_column);
        o.value_columns = Some(self.aggregation_inputs());
        o.data_model = Some(match self.source {
            SourceKind::Events => DataModel::Events,
            SourceKind::Entities => DataModel::Entities,
        });
        o
    }

    /// `<NAME>_BATCH`, the clean name upper-cased (Chronon's `GroupBy.batchDataset`).
    pub fn batch_dataset(&self) -> String {
        crate::jvm::batch_dataset(&self.name)
    }

    /// `<NAME>_STREAMING`, the clean name upper-cased (Chronon's `GroupBy.streamingDataset`).
    pub fn streaming_dataset(&self) -> String {
        crate::jvm::streaming_dataset(&self.name)
    }
}

/// One aggregation's `(aggregation, window, bucket column)` features, bucket outer.
fn a_features(
    a: &Aggregation,
) -> impl Iterator<Item = (&Aggregation, Option<Window>, Option<&str>)> {
    a.bucket_list()
        .into_iter()
        .flat_map(move |b| a.window_list().into_iter().map(move |w| (a, w, b)))
}

/// The batch dataset of a group-by (`<CLEANNAME>_BATCH`, see [`crate::jvm::batch_dataset`]).
pub fn batch_dataset(group_by: &str) -> String {
    crate::jvm::batch_dataset(group_by)
}

fn is_yaml(path: &std::path::Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// One group-by in a join: which group-by, how the join's keys map to its keys, and the feature
/// prefix (Chronon's `JoinPart`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinPart {
    /// The group-by name.
    pub group_by: String,
    /// Join key name → group-by key name (Chronon's `keyMapping`); unmapped keys keep their name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub key_mapping: BTreeMap<String, String>,
    /// Optional prefix: features are named `{prefix}_{groupby}_{feature}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

impl JoinPart {
    /// Chronon's `JoinPart.fullPrefix`: `{prefix}_{cleanName(group_by)}`, or the clean name alone.
    pub fn full_prefix(&self) -> String {
        match &self.prefix {
            Some(p) if !p.is_empty() => format!("{p}_{}", clean_name(&self.group_by)),
            _ => clean_name(&self.group_by),
        }
    }

    /// The join key that feeds group-by key `gb_key`.
    pub fn join_key_for<'a>(&'a self, gb_key: &'a str) -> &'a str {
        self.key_mapping
            .iter()
            .find(|(_, g)| g.as_str() == gb_key)
            .map(|(j, _)| j.as_str())
            .unwrap_or(gb_key)
    }
}

/// A Join: features of several group-bys served together for one set of keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// The join name.
    pub name: String,
    /// The group-bys it serves.
    pub parts: Vec<JoinPart>,
    /// Chronon's join `derivations`, over the prefixed features of every part (see
    /// [`crate::derive`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derivations: Vec<Derivation>,
}

impl Join {
    /// Parses a JSON definition (checked against its group-bys with [`Join::validate`]).
    pub fn from_json_str(text: &str) -> Result<Self, DefinitionError> {
        let j: Join = serde_json::from_str(text)
            .map_err(|e| DefinitionError::new("<join json>", e.to_string()))?;
        j.validate_shape()?;
        Ok(j)
    }

    /// Parses a YAML definition.
    pub fn from_yaml_str(text: &str) -> Result<Self, DefinitionError> {
        let j: Join = serde_yaml::from_str(text)
            .map_err(|e| DefinitionError::new("<join yaml>", e.to_string()))?;
        j.validate_shape()?;
        Ok(j)
    }

    /// Reads a `.json`, `.yaml` or `.yml` file.
    pub fn load(path: &std::path::Path) -> Result<Self, DefinitionError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DefinitionError::new(path.display().to_string(), e.to_string()))?;
        if is_yaml(path) {
            Self::from_yaml_str(&text)
        } else {
            Self::from_json_str(&text)
        }
    }

    /// The definition as JSON.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn validate_shape(&self) -> Result<(), DefinitionError> {
        if self.name.trim().is_empty() {
            return Err(DefinitionError::new("<join>", "the name is empty"));
        }
        if self.parts.is_empty() {
            return Err(DefinitionError::new(
                &self.name,
                "a join needs at least one part",
            ));
        }
        let mut prefixes = HashSet::new();
        for p in &self.parts {
            if !prefixes.insert(p.full_prefix()) {
                return Err(DefinitionError::new(
                    &self.name,
                    format!(
                        "two parts share the prefix {:?}; give one a prefix",
                        p.full_prefix()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks the join against its group-bys: every part's group-by exists and every mapped key
    /// is one of its keys.
    pub fn validate(&self, group_bys: &[&GroupBy]) -> Result<(), DefinitionError> {
        self.validate_shape()?;
        for p in &self.parts {
            let gb = group_bys
                .iter()
                .find(|g| g.name == p.group_by)
                .ok_or_else(|| {
                    DefinitionError::new(
                        &self.name,
                        format!("group-by {:?} is not defined", p.group_by),
                    )
                })?;
            for g in p.key_mapping.values() {
                if !gb.keys.contains(g) {
                    return Err(DefinitionError::new(
                        &self.name,
                        format!(
                            "key mapping targets {g:?}, which is not a key of {:?} ({})",
                            gb.name,
                            gb.keys.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The join's key names: each part's group-by keys, mapped back through `key_mapping`.
    pub fn key_names(&self, group_bys: &[&GroupBy]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.parts {
            if let Some(gb) = group_bys.iter().find(|g| g.name == p.group_by) {
                for k in &gb.keys {
                    let j = p.join_key_for(k).to_string();
                    if !out.contains(&j) {
                        out.push(j);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> StructType {
        StructType::from_json_str(
            r#"{"name": "purchases", "fields": [
            {"name": "user_id", "type": "string"}, {"name": "price", "type": "double"},
            {"name": "item", "type": "string"}, {"name": "ts", "type": "long"}]}"#,
        )
        .unwrap()
    }

    fn gb(aggs: Vec<Aggregation>) -> GroupBy {
        GroupBy {
            derivations: Vec::new(),
            name: "team.purchases".into(),
            keys: vec!["user_id".into()],
            schema: schema(),
            time_column: "ts".into(),
            accuracy: Accuracy::Temporal,
            source: SourceKind::Events,
            aggregations: aggs,
        }
    }

    #[test]
    fn windows_parse_print_and_pick_their_tail_hop() {
        let w: Window = "7d".parse().unwrap();
        assert_eq!(
            (w.millis(), w.tail_hop_millis()),
            (7 * DAY_MILLIS, HOUR_MILLIS)
        );
        assert_eq!(
            "30d".parse::<Window>().unwrap().tail_hop_millis(),
            DAY_MILLIS
        );
        assert_eq!(
            "1h".parse::<Window>().unwrap().tail_hop_millis(),
            5 * MINUTE_MILLIS
        );
        assert_eq!(
            "12h".parse::<Window>().unwrap().tail_hop_millis(),
            HOUR_MILLIS
        );
        assert_eq!("90m".parse::<Window>().unwrap().to_string(), "90m");
        assert!("0d".parse::<Window>().is_err());
        assert!("7w".parse::<Window>().is_err());
        assert!("d".parse::<Window>().is_err());
        assert_eq!(round_down(-1, 5), -5);
    }

    #[test]
    fn feature_names_follow_chronon() {
        let g = gb(vec![
            Aggregation::new("price", Operation::Sum, &["7d", "1h"]).unwrap(),
            Aggregation::new("price", Operation::Count, &[]).unwrap(),
            Aggregation::new("item", Operation::LastK, &["1d"])
                .unwrap()
                .with_k(5),
        ]);
        g.validate().unwrap();
        assert_eq!(
            g.feature_names(),
            vec![
                "price_sum_7d",
                "price_sum_1h",
                "price_count",
                "item_last5_1d"
            ]
        );
        let g = gb(vec![Aggregation::new(
            "price",
            Operation::Sum,
            &["7d", "1h"],
        )
        .unwrap()
        .with_buckets(&["item"])]);
        g.validate().unwrap();
        assert_eq!(
            g.feature_names(),
            vec!["price_sum_7d_by_item", "price_sum_1h_by_item"]
        );
        let p = JoinPart {
            group_by: "team.purchases".into(),
            key_mapping: BTreeMap::new(),
            prefix: Some("u".into()),
        };
        assert_eq!(p.full_prefix(), "u_team_purchases");
    }

    #[test]
    fn json_and_yaml_round_trip() {
        let g = gb(vec![
            Aggregation::new("price", Operation::Average, &["3d"]).unwrap()
        ]);
        let back = GroupBy::from_json_str(&g.to_json_string()).unwrap();
        assert_eq!(back, g);
        let yaml = serde_yaml::to_string(&g).unwrap();
        assert_eq!(GroupBy::from_yaml_str(&yaml).unwrap(), g);
    }

    #[test]
    fn bad_definitions_are_rejected_with_the_reason() {
        let cases: Vec<(GroupBy, &str)> = vec![
            (
                gb(vec![Aggregation::new("nope", Operation::Sum, &[]).unwrap()]),
                "not in the schema",
            ),
            (
                gb(vec![Aggregation::new("item", Operation::Sum, &[]).unwrap()]),
                "numeric",
            ),
            (
                gb(vec![
                    Aggregation::new("item", Operation::LastK, &[]).unwrap()
                ]),
                "needs k",
            ),
            (
                gb(vec![
                    Aggregation::new("user_id", Operation::Count, &[]).unwrap()
                ]),
                "key or time",
            ),
            (
                gb(vec![
                    Aggregation::new("price", Operation::Sum, &["1d"]).unwrap(),
                    Aggregation::new("price", Operation::Sum, &["1d"]).unwrap(),
                ]),
                "defined twice",
            ),
            (gb(vec![]), "at least one aggregation"),
            (
                gb(vec![Aggregation::new("price", Operation::Sum, &[])
                    .unwrap()
                    .element_wise()]),
                "needs a list of scalars",
            ),
            (
                gb(vec![Aggregation::new("item", Operation::Count, &[])
                    .unwrap()
                    .with_buckets(&["price"])]),
                "Chronon's buckets are strings",
            ),
            (
                gb(vec![Aggregation::new("price", Operation::Sum, &[])
                    .unwrap()
                    .with_buckets(&["user_id"])]),
                "key or time column",
            ),
            (
                gb(vec![Aggregation::new("price", Operation::Sum, &[])
                    .unwrap()
                    .with_buckets(&["nope"])]),
                "not in the schema",
            ),
        ];
        for (g, want) in cases {
            let e = g.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e} should mention {want}");
        }
        let mut g = gb(vec![Aggregation::new("price", Operation::Max, &[]).unwrap()]);
        g.source = SourceKind::Entities;
        let e = g.validate().unwrap_err().to_string();
        assert!(e.contains("cannot be reversed"), "{e}");
        g.aggregations = vec![Aggregation::new("price", Operation::Sum, &[]).unwrap()];
        g.validate().unwrap();
        assert!(GroupBy::from_json_str(r#"{"name": "x"}"#).is_err());
    }
}
