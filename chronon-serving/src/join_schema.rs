//! A join's key and value schemas as Chronon's `Fetcher.fetchJoinSchema` reports them (the
//! `JoinSchemaResponse` a fetch service returns from `GET /v1/join/:name/schema`): the key and
//! value schemas as Avro schema JSON strings, a hash of the value schema, and one `ValueInfo`
//! per feature saying which group-by and prefix it comes from.
//!
//! The value schema is what Chronon's `JoinCodec.valueSchema` is: each part's features after
//! that part's GroupBy derivations, prefixed; then, when the join has derivations, the join's
//! derived fields in their place (`buildDerivedFields`: `*` keeps the base fields, renames and
//! expressions add theirs). A derived field that is not a part's feature has the join itself as
//! its `groupName`, no prefix, and every join key as its `leftKeys`.
//!
//! One difference: `schemaHash` is the Avro fingerprint (64-bit Rabin of the Parsing Canonical
//! Form, hex) of the value schema, where Chronon hashes the schema text; both change exactly when
//! the value schema does.

use serde::Serialize;

use crate::derive::model::{group_by_output, join_deriver};
use crate::groupby::{DefinitionError, GroupBy, Join};
use crate::stream::writer::clean_name;
use crate::stream::{DataType, RowCodec, StructField, StructType};

/// Where one feature of a join comes from (Chronon's `JoinCodec.ValueInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueInfo {
    /// The feature's name in the join response (`{prefix}_{groupby}_{feature}`).
    pub full_name: String,
    /// The group-by that computes it.
    pub group_name: String,
    /// The join part's full prefix (`{prefix}_{groupby}`).
    pub prefix: String,
    /// The join's key names that feed the group-by.
    pub left_keys: Vec<String>,
    /// The feature's type, in Chronon's type names.
    pub schema_string: String,
}

/// A join's schemas (Chronon's `JoinSchemaResponse`), serialised with Chronon's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinSchema {
    /// The join name.
    pub join_name: String,
    /// The key schema: an Avro record schema as JSON text.
    pub key_schema: String,
    /// The value schema (every feature, nullable): an Avro record schema as JSON text.
    pub value_schema: String,
    /// The value schema's Avro fingerprint (see the module docs).
    pub schema_hash: String,
    /// One entry per feature, in value schema order.
    pub value_infos: Vec<ValueInfo>,
}

/// Derives `join`'s schemas from its group-bys (every part's group-by must be in `group_bys`).
pub fn join_schema(join: &Join, group_bys: &[&GroupBy]) -> Result<JoinSchema, DefinitionError> {
    let err = |reason: String| DefinitionError::new(join.name.clone(), reason);
    join.validate(group_bys)?;
    let clean = clean_name(&join.name);
    let mut key_fields: Vec<StructField> = Vec::new();
    let mut value_fields = Vec::new();
    let mut value_infos: Vec<ValueInfo> = Vec::new();
    for part in &join.parts {
        let gb = group_bys
            .iter()
            .find(|g| g.name == part.group_by)
            .ok_or_else(|| err(format!("group-by {:?} is not defined", part.group_by)))?;
        let mut left_keys = Vec::new();
        for k in &gb.keys {
            let left = part.join_key_for(k).to_string();
            if !key_fields.iter().any(|f| f.name == left) {
                let t = gb.schema.type_of(k).cloned().unwrap_or(DataType::String);
                key_fields.push(StructField::new(left.clone(), t));
            }
            left_keys.push(left);
        }
        let prefix = part.full_prefix();
        for (name, t) in group_by_output(gb)? {
            let full_name = format!("{prefix}_{name}");
            value_infos.push(ValueInfo {
                full_name: full_name.clone(),
                group_name: gb.name.clone(),
                prefix: prefix.clone(),
                left_keys: left_keys.clone(),
                schema_string: t.chronon_name(),
            });
            value_fields.push(StructField::new(full_name, t));
        }
    }
    if let Some(deriver) = join_deriver(join, group_bys)? {
        let join_keys: Vec<String> = key_fields.iter().map(|f| f.name.clone()).collect();
        let mut infos = Vec::new();
        let mut fields = Vec::new();
        for (name, t) in deriver.types() {
            // An always-null derived column has no type; it is listed as a string.
            let t = t.unwrap_or(DataType::String);
            let info = match value_infos.iter().find(|v| v.full_name == name) {
                Some(base) => base.clone(),
                None => ValueInfo {
                    full_name: name.clone(),
                    group_name: join.name.clone(),
                    prefix: String::new(),
                    left_keys: join_keys.clone(),
                    schema_string: t.chronon_name(),
                },
            };
            infos.push(info);
            fields.push(StructField::new(name, t));
        }
        value_infos = infos;
        value_fields = fields;
    }
    let key = RowCodec::new(&StructType::new(format!("{clean}_key"), key_fields))
        .map_err(|e| err(format!("key schema: {e}")))?;
    let value = RowCodec::new(&StructType::new(format!("{clean}_value"), value_fields))
        .map_err(|e| err(format!("value schema: {e}")))?;
    Ok(JoinSchema {
        join_name: join.name.clone(),
        key_schema: key.avro_schema_json().to_string(),
        value_schema: value.avro_schema_json().to_string(),
        schema_hash: value.fingerprint(),
        value_infos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groupby::{Accuracy, Aggregation, JoinPart, Operation, SourceKind};

    fn gb(name: &str, key: &str) -> GroupBy {
        GroupBy {
            derivations: Vec::new(),
            name: name.into(),
            keys: vec![key.into()],
            schema: StructType::from_json_str(&format!(
                r#"{{"name": "ev", "fields": [{{"name": "{key}", "type": "long"}},
                {{"name": "amount", "type": "double"}}, {{"name": "ts", "type": "long"}}]}}"#
            ))
            .unwrap(),
            time_column: "ts".into(),
            accuracy: Accuracy::Temporal,
            source: SourceKind::Events,
            aggregations: vec![
                Aggregation::new("amount", Operation::Sum, &["1d"]).unwrap(),
                Aggregation::new("amount", Operation::Count, &[]).unwrap(),
            ],
        }
    }

    #[test]
    fn schema_lists_every_feature_with_its_part_and_keys() {
        let a = gb("t.a", "user_id");
        let b = gb("t.b", "merchant");
        let join = Join {
            derivations: Vec::new(),
            name: "t.join".into(),
            parts: vec![
                JoinPart {
                    group_by: "t.a".into(),
                    key_mapping: Default::default(),
                    prefix: None,
                },
                JoinPart {
                    group_by: "t.b".into(),
                    key_mapping: [("seller".to_string(), "merchant".to_string())].into(),
                    prefix: Some("p".into()),
                },
            ],
        };
        let s = join_schema(&join, &[&a, &b]).unwrap();
        assert_eq!(s.join_name, "t.join");
        let names: Vec<&str> = s.value_infos.iter().map(|v| v.full_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "t_a_amount_sum_1d",
                "t_a_amount_count",
                "p_t_b_amount_sum_1d",
                "p_t_b_amount_count"
            ]
        );
        assert_eq!(s.value_infos[2].left_keys, ["seller"]);
        assert_eq!(s.value_infos[0].schema_string, "double");
        assert_eq!(s.value_infos[1].schema_string, "long");
        let key: serde_json::Value = serde_json::from_str(&s.key_schema).unwrap();
        let key_names: Vec<&str> = key["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(key_names, ["user_id", "seller"]);
        let value: serde_json::Value = serde_json::from_str(&s.value_schema).unwrap();
        assert_eq!(value["fields"].as_array().unwrap().len(), 4);
        assert!(!s.schema_hash.is_empty());
        // A part whose group-by is missing is a definition error, not a panic.
        assert!(join_schema(&join, &[&a]).is_err());

        // Join derivations replace the base fields as JoinCodec.valueSchema does: `*` keeps
        // them (minus a renamed one), a rename and an expression add theirs.
        let mut derived = join.clone();
        derived.derivations = vec![
            crate::derive::Derivation::new("*", "*"),
            crate::derive::Derivation::new("a_count", "t_a_amount_count"),
            crate::derive::Derivation::new("total_1d", "t_a_amount_sum_1d + p_t_b_amount_sum_1d"),
        ];
        let s = join_schema(&derived, &[&a, &b]).unwrap();
        let names: Vec<&str> = s.value_infos.iter().map(|v| v.full_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "t_a_amount_sum_1d",
                "p_t_b_amount_sum_1d",
                "p_t_b_amount_count",
                "a_count",
                "total_1d"
            ]
        );
        assert_eq!(s.value_infos[2].group_name, "t.b");
        assert_eq!(s.value_infos[4].group_name, "t.join");
        assert_eq!(s.value_infos[4].left_keys, ["user_id", "seller"]);
        assert_eq!(s.value_infos[4].schema_string, "double");
        let value: serde_json::Value = serde_json::from_str(&s.value_schema).unwrap();
        assert_eq!(value["fields"].as_array().unwrap().len(), 5);
    }
}
