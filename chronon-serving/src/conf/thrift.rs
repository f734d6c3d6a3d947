//! The parts of Chronon's Thrift structs (`api/thrift/api.thrift`) that serving reads, as
//! `compile.py` writes them with Thrift's simple JSON protocol: booleans as `1`/`0`, enums as
//! integers, every field optional. Unknown fields are ignored, as the JVM's reader ignores them,
//! so confs from newer chronon-ai versions still load.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A Thrift `bool`: `1`/`0` from the simple JSON protocol, `true`/`false` from hand-written files.
fn thrift_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Bool(b)) => Ok(Some(b)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.as_i64() != Some(0))),
        Some(other) => Err(serde::de::Error::custom(format!(
            "{other} is not a Thrift bool (1/0)"
        ))),
    }
}

/// A Thrift enum: its integer value, or its name (`"DAYS"`) as some tools write it.
fn thrift_enum<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ThriftEnum>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .map(|i| Some(ThriftEnum::Int(i)))
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a Thrift enum value"))),
        Some(serde_json::Value::String(s)) => Ok(Some(ThriftEnum::Name(s))),
        Some(other) => Err(serde::de::Error::custom(format!(
            "{other} is not a Thrift enum value"
        ))),
    }
}

/// An enum value as written: integer or name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThriftEnum {
    /// The integer value (what `compile.py` writes).
    Int(i64),
    /// The name.
    Name(String),
}

impl ThriftEnum {
    /// The value among `names` (index = integer value), as its name.
    pub fn resolve<'a>(&self, names: &[&'a str]) -> Option<&'a str> {
        match self {
            ThriftEnum::Int(i) => usize::try_from(*i).ok().and_then(|i| names.get(i).copied()),
            ThriftEnum::Name(n) => names.iter().copied().find(|x| x.eq_ignore_ascii_case(n)),
        }
    }
}

impl std::fmt::Display for ThriftEnum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThriftEnum::Int(i) => write!(f, "{i}"),
            ThriftEnum::Name(n) => write!(f, "{n:?}"),
        }
    }
}

/// Chronon's `Operation` names, indexed by their Thrift value.
pub const OPERATIONS: &[&str] = &[
    "MIN",
    "MAX",
    "FIRST",
    "LAST",
    "UNIQUE_COUNT",
    "APPROX_UNIQUE_COUNT",
    "COUNT",
    "SUM",
    "AVERAGE",
    "VARIANCE",
    "SKEW",
    "KURTOSIS",
    "APPROX_PERCENTILE",
    "LAST_K",
    "FIRST_K",
    "TOP_K",
    "BOTTOM_K",
    "HISTOGRAM",
    "APPROX_HISTOGRAM_K",
    "BOUNDED_UNIQUE_COUNT",
];
/// Chronon's `TimeUnit` names.
pub const TIME_UNITS: &[&str] = &["HOURS", "DAYS"];
/// Chronon's `Accuracy` names.
pub const ACCURACIES: &[&str] = &["TEMPORAL", "SNAPSHOT"];

/// `MetaData`: the name, team and flags.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaData {
    /// `team.file.variable`, e.g. `quickstart.purchases.v1`.
    pub name: Option<String>,
    /// Served online.
    #[serde(default, deserialize_with = "thrift_bool")]
    pub online: Option<bool>,
    /// The owning team.
    pub team: Option<String>,
    /// Free-form JSON inside a string (`{"team_override": ...}` among others).
    pub custom_json: Option<String>,
}

impl MetaData {
    /// Chronon's `MetadataOps.owningTeam`: `team_override` from `customJson`, else `team`.
    pub fn owning_team(&self) -> Option<String> {
        let over = self
            .custom_json
            .as_deref()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .and_then(|j| {
                j.get("team_override")
                    .and_then(|t| t.as_str())
                    .map(String::from)
            });
        over.or_else(|| self.team.clone())
    }
}

/// `Query`: the selected columns and the time column.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Query {
    /// Output column → Spark SQL expression.
    pub selects: Option<BTreeMap<String, String>>,
    /// Row filters.
    pub wheres: Option<Vec<String>>,
    /// The event time expression.
    pub time_column: Option<String>,
    /// The mutation time expression (entity sources with mutations).
    pub mutation_time_column: Option<String>,
    /// The reversal (before-image) expression.
    pub reversal_column: Option<String>,
}

/// `EventSource`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSource {
    /// The warehouse table.
    pub table: Option<String>,
    /// The stream topic (makes the GroupBy temporal).
    pub topic: Option<String>,
    /// The query.
    pub query: Option<Query>,
}

/// `EntitySource`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitySource {
    /// The daily snapshot table.
    pub snapshot_table: Option<String>,
    /// The mutation table.
    pub mutation_table: Option<String>,
    /// The mutation topic (makes the GroupBy temporal).
    pub mutation_topic: Option<String>,
    /// The query.
    pub query: Option<Query>,
}

/// `Source`: a union of events, entities or a join source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Events.
    pub events: Option<EventSource>,
    /// Entities.
    pub entities: Option<EntitySource>,
    /// A join's output as a source (chaining); not served here.
    pub join_source: Option<serde_json::Value>,
}

impl Source {
    /// The source's query.
    pub fn query(&self) -> Option<&Query> {
        match (&self.events, &self.entities) {
            (Some(e), _) => e.query.as_ref(),
            (_, Some(e)) => e.query.as_ref(),
            _ => None,
        }
    }

    /// Chronon's `SourceOps.topic`: the event topic or the mutation topic.
    pub fn topic(&self) -> Option<&str> {
        match (&self.events, &self.entities) {
            (Some(e), _) => e.topic.as_deref(),
            (_, Some(e)) => e.mutation_topic.as_deref(),
            _ => None,
        }
    }
}

/// `Window`: a length and a unit; absent means unbounded.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// The length (`Int.MaxValue` or `<= 0` also mean unbounded, as in Chronon's `WindowOps`).
    pub length: Option<i64>,
    /// The unit.
    #[serde(default, deserialize_with = "thrift_enum")]
    pub time_unit: Option<ThriftEnum>,
}

/// `Aggregation`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Aggregation {
    /// The input column.
    pub input_column: Option<String>,
    /// The operation.
    #[serde(default, deserialize_with = "thrift_enum")]
    pub operation: Option<ThriftEnum>,
    /// Arguments as strings: `{"k": "10"}`, `{"percentiles": "[0.5, 0.95]"}`.
    pub arg_map: Option<BTreeMap<String, String>>,
    /// The windows; absent means one unbounded window.
    pub windows: Option<Vec<Window>>,
    /// Bucket columns (`_by_<column>` map-valued features).
    pub buckets: Option<Vec<String>>,
    /// Element-wise aggregation of list inputs.
    #[serde(default, deserialize_with = "thrift_bool")]
    pub element_wise: Option<bool>,
}

/// `Derivation`: an output name and a Spark SQL expression (`*` for every column).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Derivation {
    /// The output name.
    pub name: Option<String>,
    /// The expression.
    pub expression: Option<String>,
}

/// `GroupBy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupBy {
    /// Name, team, flags.
    pub meta_data: Option<MetaData>,
    /// The sources (all events or all entities).
    pub sources: Option<Vec<Source>>,
    /// The key columns.
    pub key_columns: Option<Vec<String>>,
    /// The aggregations; absent means the selected columns are served as they are.
    pub aggregations: Option<Vec<Aggregation>>,
    /// Explicit accuracy; absent means inferred.
    #[serde(default, deserialize_with = "thrift_enum")]
    pub accuracy: Option<ThriftEnum>,
    /// Derivations over the features.
    pub derivations: Option<Vec<Derivation>>,
}

/// `JoinPart`: an embedded GroupBy with its key mapping and prefix.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinPart {
    /// The whole GroupBy.
    pub group_by: Option<GroupBy>,
    /// Left (join) key → right (group-by) key.
    pub key_mapping: Option<BTreeMap<String, String>>,
    /// The feature prefix.
    pub prefix: Option<String>,
}

/// `Join`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Join {
    /// Name, team, flags.
    pub meta_data: Option<MetaData>,
    /// The left source (offline only).
    pub left: Option<Source>,
    /// The parts.
    pub join_parts: Option<Vec<JoinPart>>,
    /// External parts, served by the JVM through registered handlers.
    pub online_external_parts: Option<Vec<serde_json::Value>>,
    /// Derivations over the parts' features.
    pub derivations: Option<Vec<Derivation>>,
}
