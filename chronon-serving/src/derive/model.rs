//! The derivations of this crate's [`GroupBy`] and [`Join`] compiled into [`Deriver`]s, with the
//! base schemas Chronon builds them over (`Fetcher.buildJoinPartCodec` / `buildJoinCodec`):
//!
//! - a GroupBy's derivations read its features (finalized types) and its key columns;
//! - a Join's derivations read every part's features after that part's own GroupBy
//!   derivations, prefixed `{prefix}_{groupby}_`, and the join's request keys (as `keyMapping`
//!   names them).
//!
//! Kept apart from `derive/mod.rs` because it reads the definitions, which in turn hold
//! [`super::Derivation`]s.

use crate::aggregation::GroupByAggregator;
use crate::groupby::{DefinitionError, GroupBy, Join};
use crate::stream::DataType;

use super::{parse, Derivation, Deriver};

/// Parses every derivation without types (for a definition whose inputs are not known yet, such
/// as a compiled Join before its GroupBys' column types are): `Err((index, reason))` names the
/// first derivation whose expression is not supported.
pub fn check_syntax(derivations: &[Derivation]) -> Result<(), (usize, String)> {
    for (i, d) in derivations.iter().enumerate() {
        if d.name == "*" || super::is_identifier(&d.expression) {
            continue;
        }
        parse::parse(&d.expression).map_err(|e| {
            (
                i,
                format!("derivation {:?} = {:?}: {e}", d.name, d.expression),
            )
        })?;
    }
    Ok(())
}

/// The output names and types of a GroupBy after its derivations (its features when it has
/// none). A derived column that is always null has no type; it is listed as a string, as it
/// would be in no schema.
pub fn group_by_output(gb: &GroupBy) -> Result<Vec<(String, DataType)>, DefinitionError> {
    let agg = GroupByAggregator::new(gb)?;
    let base: Vec<(String, DataType)> = agg
        .feature_types()
        .into_iter()
        .map(|(n, t)| (n.to_string(), t))
        .collect();
    match group_by_deriver(gb)? {
        None => Ok(base),
        Some(d) => Ok(d
            .types()
            .into_iter()
            .map(|(n, t)| (n, t.unwrap_or(DataType::String)))
            .collect()),
    }
}

/// A GroupBy's derivations compiled over its features and keys; `None` without derivations.
pub fn group_by_deriver(gb: &GroupBy) -> Result<Option<Deriver>, DefinitionError> {
    if gb.derivations.is_empty() {
        return Ok(None);
    }
    let agg = GroupByAggregator::new(gb)?;
    let base: Vec<(String, DataType)> = agg
        .feature_types()
        .into_iter()
        .map(|(n, t)| (n.to_string(), t))
        .collect();
    let keys: Vec<(String, DataType)> = gb
        .keys
        .iter()
        .map(|k| {
            let t = gb.schema.type_of(k).cloned().unwrap_or(DataType::String);
            (k.clone(), t)
        })
        .collect();
    Deriver::new(&gb.derivations, &base, &keys)
        .map(Some)
        .map_err(|e| DefinitionError::new(gb.name.clone(), format!("derivations: {e}")))
}

/// A Join's derivations compiled over its parts' prefixed (derived) features and its keys;
/// `None` without derivations. Every part's GroupBy must be in `group_bys`.
pub fn join_deriver(
    join: &Join,
    group_bys: &[&GroupBy],
) -> Result<Option<Deriver>, DefinitionError> {
    if join.derivations.is_empty() {
        return Ok(None);
    }
    let mut base = Vec::new();
    let mut keys: Vec<(String, DataType)> = Vec::new();
    for p in &join.parts {
        let gb = group_bys
            .iter()
            .find(|g| g.name == p.group_by)
            .ok_or_else(|| {
                DefinitionError::new(
                    join.name.clone(),
                    format!("group-by {:?} is not defined", p.group_by),
                )
            })?;
        for k in &gb.keys {
            let left = p.join_key_for(k).to_string();
            if !keys.iter().any(|(n, _)| *n == left) {
                let t = gb.schema.type_of(k).cloned().unwrap_or(DataType::String);
                keys.push((left, t));
            }
        }
        let prefix = p.full_prefix();
        for (n, t) in group_by_output(gb)? {
            base.push((format!("{prefix}_{n}"), t));
        }
    }
    Deriver::new(&join.derivations, &base, &keys)
        .map(Some)
        .map_err(|e| DefinitionError::new(join.name.clone(), format!("derivations: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groupby::JoinPart;
    use crate::stream::Value;
    use std::collections::BTreeMap;

    const YAML: &str = r#"
name: team.purchases.v1
keys: [user_id]
schema: {name: p, fields: [{name: user_id, type: string}, {name: price, type: double}, {name: ts, type: long}]}
aggregations:
  - {input_column: price, operation: sum, windows: ["1d"]}
  - {input_column: price, operation: count, windows: ["1d"]}
derivations:
  - {name: "*", expression: "*"}
  - {name: total, expression: price_sum_1d}
  - {name: mean, expression: "price_sum_1d / price_count_1d"}
"#;

    #[test]
    fn yaml_shorthand_takes_derivations_and_round_trips_them() {
        let gb = GroupBy::from_yaml_str(YAML).unwrap();
        assert_eq!(gb.derivations.len(), 3);
        assert_eq!(GroupBy::from_json_str(&gb.to_json_string()).unwrap(), gb);
        let names: Vec<String> = group_by_output(&gb)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        // `*` keeps the features no derivation renames, ahead of the derived ones.
        assert_eq!(names, ["price_count_1d", "total", "mean"]);
        let d = group_by_deriver(&gb).unwrap().unwrap();
        let base = BTreeMap::from([
            ("price_sum_1d".to_string(), Value::Double(9.0)),
            ("price_count_1d".to_string(), Value::Long(2)),
        ]);
        let out = d.apply(&BTreeMap::new(), &base, 0);
        assert_eq!(out["mean"], Value::Double(4.5));
        assert_eq!(out["total"], Value::Double(9.0));
    }

    #[test]
    fn join_derivations_read_prefixed_derived_features_and_keys() {
        let gb = GroupBy::from_yaml_str(YAML).unwrap();
        let mut join = Join {
            name: "team.j".into(),
            parts: vec![JoinPart {
                group_by: gb.name.clone(),
                key_mapping: BTreeMap::from([("buyer".to_string(), "user_id".to_string())]),
                prefix: Some("b".into()),
            }],
            derivations: vec![Derivation::new(
                "x",
                "concat(buyer, ':', CAST(b_team_purchases_v1_mean AS STRING))",
            )],
        };
        let d = join_deriver(&join, &[&gb]).unwrap().unwrap();
        assert_eq!(d.names(), ["x"]);
        // A base feature the GroupBy's derivations dropped is not a column of the join.
        join.derivations = vec![Derivation::new("y", "b_team_purchases_v1_price_sum_1d + 1")];
        let err = join_deriver(&join, &[&gb]).unwrap_err().to_string();
        assert!(err.contains("b_team_purchases_v1_price_sum_1d"), "{err}");
        assert!(check_syntax(&[Derivation::new("z", "a LIKE 'b'")]).is_err());
    }
}
