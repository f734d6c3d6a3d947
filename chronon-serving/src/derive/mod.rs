//! Derivations on GroupBys and Joins (Chronon's `Derivation`, served as its
//! `DerivationUtils.buildDerivationFunction` does): each derivation names an output and gives a
//! Spark SQL expression over the fetched features, the request keys, `ts` (the request time) and
//! `ds` (its date); `*` keeps every base feature that no derivation reads by name.
//!
//! - Expressions are parsed with the `sqlparser` crate's Spark dialect when the definition is
//!   loaded, and type-checked against the input columns; anything the evaluator does not
//!   implement (window functions, subqueries, date functions, `LIKE`, ...) is a load-time error
//!   naming the construct.
//! - Supported: arithmetic, comparisons (`=`, `<=>`, `!=`, `<`, ...), `AND`/`OR`/`NOT`,
//!   `IS [NOT] NULL`, `IN`, `BETWEEN`, `CASE`, `CAST` to numbers, strings and booleans,
//!   `COALESCE`/`NVL`/`IFNULL`, `IF`, `NULLIF`, `GREATEST`, `LEAST`, `ABS`, `ROUND`, `FLOOR`,
//!   `CEIL`, `SQRT`, `EXP`, `LN`/`LOG`, `LOG10`, `LOG2`, `POW`, `SIGN`, `LOWER`, `UPPER`,
//!   `LENGTH`, `CONCAT`, `CONCAT_WS`, `SUBSTRING`, `TRIM`, `LTRIM`, `RTRIM`, `SIZE`.
//! - Semantics are Spark's non-ANSI ones (see [`eval`]); one difference: Spark reads a literal
//!   such as `2.5` as a decimal, this evaluator as a double.
//! - When an evaluation fails at fetch time the response holds the rename-only derivations and
//!   `derivation_fetch_exception`, as Chronon's fetcher falls back; a join part that failed keeps
//!   its `{prefix}_exception` and its derived features are dropped (Chronon's
//!   `reintroduceExceptions`).

pub mod eval;
mod expr;
pub mod model;
mod parse;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::stream::{DataType, Value};
pub use expr::Expr;

/// One derivation: output `name` = `expression` (`*` / `*` keeps the base features).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derivation {
    /// The output name, or `*`.
    pub name: String,
    /// A Spark SQL expression, or `*`.
    pub expression: String,
}

impl Derivation {
    /// `name` = `expression`.
    pub fn new(name: impl Into<String>, expression: impl Into<String>) -> Self {
        Derivation {
            name: name.into(),
            expression: expression.into(),
        }
    }
}

/// Chronon's `JoinOps.isIdentifier`: a derivation whose expression is one is a rename.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Debug, Clone)]
enum Output {
    Rename(String),
    Computed(Expr),
}

/// Compiled derivations of one GroupBy or Join.
#[derive(Debug, Clone)]
pub struct Deriver {
    /// Expressions (base names a derivation reads by name are not kept by `*`).
    read: BTreeSet<String>,
    outputs: Vec<(String, Output, Option<DataType>)>,
    keys: BTreeMap<String, DataType>,
}

impl Deriver {
    /// Compiles `derivations` over the base features `base` (name and type, in order) and the
    /// request `keys`; `Err` names the derivation and what is wrong with it.
    pub fn new(
        derivations: &[Derivation],
        base: &[(String, DataType)],
        keys: &[(String, DataType)],
    ) -> Result<Self, String> {
        let mut types: BTreeMap<String, DataType> = BTreeMap::new();
        types.insert("ts".into(), DataType::Long);
        types.insert("ds".into(), DataType::String);
        for (k, t) in keys.iter().chain(base) {
            types.insert(k.clone(), t.clone());
        }
        let mut outputs = Vec::new();
        let mut star = false;
        let mut seen = BTreeSet::new();
        for d in derivations {
            if d.name == "*" {
                if d.expression != "*" {
                    return Err(format!(
                        "derivation \"*\" must have the expression \"*\", got {:?}",
                        d.expression
                    ));
                }
                star = true;
                continue;
            }
            if d.name.trim().is_empty() {
                return Err(format!("a derivation of {:?} has no name", d.expression));
            }
            if !seen.insert(d.name.clone()) {
                return Err(format!("derivation {:?} is defined twice", d.name));
            }
            let err = |e: String| format!("derivation {:?} = {:?}: {e}", d.name, d.expression);
            if is_identifier(&d.expression) {
                let t = types
                    .get(&d.expression)
                    .cloned()
                    .ok_or_else(|| err(format!("unknown column {:?}", d.expression)))?;
                outputs.push((
                    d.name.clone(),
                    Output::Rename(d.expression.clone()),
                    Some(t),
                ));
            } else {
                let mut e = parse::parse(&d.expression).map_err(err)?;
                let t = eval::infer(&mut e, &types).map_err(err)?;
                outputs.push((d.name.clone(), Output::Computed(e), t));
            }
        }
        let read = derivations.iter().map(|d| d.expression.clone()).collect();
        let mut out = Deriver {
            read,
            outputs,
            keys: keys.iter().cloned().collect(),
        };
        if star {
            // `*` keeps base features no derivation reads by name, ahead of the named outputs.
            let kept: Vec<_> = base
                .iter()
                .filter(|(n, _)| !out.read.contains(n) && !seen.contains(n))
                .map(|(n, t)| (n.clone(), Output::Rename(n.clone()), Some(t.clone())))
                .collect();
            out.outputs.splice(0..0, kept);
        }
        Ok(out)
    }

    /// The output names, in order.
    pub fn names(&self) -> Vec<String> {
        self.outputs.iter().map(|(n, _, _)| n.clone()).collect()
    }

    /// The output names with their types (`None`: the expression is always null).
    pub fn types(&self) -> Vec<(String, Option<DataType>)> {
        self.outputs
            .iter()
            .map(|(n, _, t)| (n.clone(), t.clone()))
            .collect()
    }

    /// The derived features from the base features of one response, the request's keys and
    /// its time `q` (epoch millis).
    pub fn apply(
        &self,
        keys: &BTreeMap<String, serde_json::Value>,
        base: &BTreeMap<String, Value>,
        q: i64,
    ) -> BTreeMap<String, Value> {
        let ds = chrono_date(q);
        let key_value = |k: &str| -> Option<Value> {
            let json = keys.get(k)?;
            let v = match json {
                serde_json::Value::String(s) => Value::String(s.clone()),
                serde_json::Value::Bool(b) => Value::Boolean(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::Long(i),
                    None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
                },
                _ => Value::Null,
            };
            Some(match self.keys.get(k) {
                Some(t) => eval::cast(v, t),
                None => v,
            })
        };
        let row = |c: &str| -> Value {
            if let Some(v) = base.get(c) {
                return v.clone();
            }
            match c {
                "ts" => Value::Long(q),
                "ds" => Value::String(ds.clone()),
                _ => key_value(c).unwrap_or(Value::Null),
            }
        };
        let mut out = BTreeMap::new();
        let mut failure = None;
        for (name, o, _) in &self.outputs {
            match o {
                Output::Rename(c) => {
                    out.insert(name.clone(), row(c));
                }
                Output::Computed(e) => match eval::eval(e, &row) {
                    Ok(v) => {
                        out.insert(name.clone(), v);
                    }
                    Err(err) => {
                        failure.get_or_insert(format!("{name}: {err}"));
                    }
                },
            }
        }
        if let Some(err) = failure {
            // Chronon falls back to the rename-only derivations and reports the failure.
            out.retain(|n, _| {
                self.outputs
                    .iter()
                    .any(|(o, kind, _)| o == n && matches!(kind, Output::Rename(_)))
            });
            out.insert("derivation_fetch_exception".into(), Value::String(err));
        }
        // A part that failed keeps its exception; its derived features are dropped.
        for (k, v) in base {
            if let Some(prefix) = k.strip_suffix("_exception") {
                out.retain(|n, _| !n.starts_with(prefix));
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }
}

/// `yyyy-MM-dd` of epoch millis in UTC (Chronon's `ds` for derivations).
fn chrono_date(millis: i64) -> String {
    let days = millis.div_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(String, DataType)> {
        vec![
            ("amount_sum_2d".into(), DataType::Double),
            ("amount_count_2d".into(), DataType::Long),
            ("price_sum".into(), DataType::Long),
            ("item_last".into(), DataType::String),
        ]
    }

    fn run(exprs: &[(&str, &str)], values: &[(&str, Value)]) -> BTreeMap<String, Value> {
        let ds: Vec<Derivation> = exprs.iter().map(|(n, e)| Derivation::new(*n, *e)).collect();
        let d = Deriver::new(&ds, &base(), &[("user_id".into(), DataType::String)]).unwrap();
        let base: BTreeMap<String, Value> = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let keys = [("user_id".to_string(), serde_json::json!("u1"))]
            .into_iter()
            .collect();
        d.apply(&keys, &base, 19_690 * 86_400_000 + 5)
    }

    #[test]
    fn spark_semantics() {
        let vals = [
            ("amount_sum_2d", Value::Double(10.0)),
            ("amount_count_2d", Value::Long(4)),
            ("price_sum", Value::Null),
            ("item_last", Value::String("Abc".into())),
        ];
        let out = run(
            &[
                ("mean", "amount_sum_2d / amount_count_2d"),
                ("zero_div", "amount_count_2d / 0"),
                ("c", "COALESCE(price_sum, 0)"),
                (
                    "busy",
                    "CASE WHEN amount_count_2d > 3 THEN 'busy' ELSE 'quiet' END",
                ),
                ("n", "amount_count_2d * 2 + 1"),
                ("nul", "price_sum + 1"),
                ("s", "concat(upper(item_last), '-', user_id, '-', ds)"),
                ("r", "round(2.675, 2)"),
                ("cast", "CAST(amount_sum_2d AS BIGINT) % 3"),
                ("logic", "price_sum > 1 OR amount_count_2d = 4"),
                ("in", "item_last IN ('x', 'Abc')"),
                ("renamed", "item_last"),
            ],
            &vals,
        );
        assert_eq!(out["mean"], Value::Double(2.5));
        assert_eq!(out["zero_div"], Value::Null);
        assert_eq!(
            out["c"],
            Value::Long(0),
            "coalesce widens to the long column"
        );
        assert_eq!(out["busy"], Value::String("busy".into()));
        assert_eq!(out["n"], Value::Long(9));
        assert_eq!(out["nul"], Value::Null);
        assert_eq!(out["s"], Value::String("ABC-u1-2023-11-29".into()));
        assert_eq!(out["r"], Value::Double(2.68));
        assert_eq!(out["cast"], Value::Long(1));
        assert_eq!(out["logic"], Value::Boolean(true));
        assert_eq!(out["in"], Value::Boolean(true));
        assert_eq!(out["renamed"], Value::String("Abc".into()));
        assert_eq!(out.len(), 12, "no * means no base features: {out:?}");
        let star = run(&[("*", "*"), ("total", "price_sum")], &vals);
        let names: Vec<&str> = star.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["amount_count_2d", "amount_sum_2d", "item_last", "total"]
        );
    }

    #[test]
    fn unsupported_constructs_fail_at_load_naming_them() {
        for (e, want) in [
            ("sum(amount_sum_2d) OVER ()", "window"),
            ("item_last LIKE 'a%'", "not supported"),
            ("date_add(ds, 1)", "the function date_add"),
            ("nope + 1", "unknown column \"nope\""),
            ("item_last + 1", "needs numbers"),
            ("amount_sum_2d +", "cannot parse"),
            ("CAST(item_last AS DATE)", "CAST to DATE"),
        ] {
            let err = Deriver::new(&[Derivation::new("x", e)], &base(), &[]).unwrap_err();
            assert!(err.contains(want), "{e}: {err}");
        }
    }

    #[test]
    fn failures_fall_back_to_renames_and_exceptions_drop_their_part() {
        let d = Deriver::new(
            &[
                Derivation::new("a", "item_last"),
                Derivation::new("b", "amount_count_2d > 1"),
            ],
            &base(),
            &[],
        )
        .unwrap();
        let base: BTreeMap<String, Value> = [
            ("item_last".to_string(), Value::String("x".into())),
            ("amount_count_2d".to_string(), Value::String("oops".into())),
        ]
        .into_iter()
        .collect();
        let out = d.apply(&BTreeMap::new(), &base, 0);
        assert_eq!(out["a"], Value::String("x".into()));
        assert!(!out.contains_key("b"));
        assert!(out.contains_key("derivation_fetch_exception"), "{out:?}");
        assert_eq!(chrono_date(0), "1970-01-01");
        assert_eq!(chrono_date(-1), "1969-12-31");
    }
}
