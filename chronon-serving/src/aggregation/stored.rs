//! How an IR is stored: its type as a column of the batch IR's Avro record, and the conversion
//! to and from that value. Kept apart from the arithmetic of the IRs (the parent module) because
//! it is the storage format's concern: changing it changes what is in the store.

use super::{ColumnAggregator, Ir};
use crate::groupby::Operation;
use crate::stream::{DataType, StructField, StructType, Value};

impl ColumnAggregator {
    /// The IR's stored type (a column of the batch IR's Avro record; null is the empty IR).
    pub fn ir_type(&self, name: &str) -> DataType {
        let timed = || {
            DataType::Struct(StructType::new(
                format!("{name}_timed"),
                vec![
                    StructField::new("ts", DataType::Long),
                    StructField::new("value", self.input_type.clone()),
                ],
            ))
        };
        let rec = |fields: Vec<(&str, DataType)>| {
            DataType::Struct(StructType::new(
                format!("{name}_ir"),
                fields
                    .into_iter()
                    .map(|(n, t)| StructField::new(n, t))
                    .collect(),
            ))
        };
        match self.operation {
            Operation::Count => DataType::Long,
            Operation::Sum if self.integral => {
                rec(vec![("sum", DataType::Long), ("n", DataType::Long)])
            }
            Operation::Sum => rec(vec![("sum", DataType::Double), ("n", DataType::Long)]),
            Operation::Average => rec(vec![("sum", DataType::Double), ("count", DataType::Long)]),
            Operation::Variance => rec(vec![
                ("count", DataType::Long),
                ("mean", DataType::Double),
                ("m2", DataType::Double),
            ]),
            Operation::Min | Operation::Max => self.input_type.clone(),
            Operation::First | Operation::Last => timed(),
            Operation::LastK | Operation::FirstK => DataType::list(timed()),
            Operation::UniqueCount | Operation::BoundedUniqueCount => {
                DataType::list(DataType::String)
            }
            Operation::Skew | Operation::Kurtosis => rec(vec![
                ("n", DataType::Double),
                ("m1", DataType::Double),
                ("m2", DataType::Double),
                ("m3", DataType::Double),
                ("m4", DataType::Double),
            ]),
            Operation::TopK | Operation::BottomK => DataType::list(self.input_type.clone()),
            Operation::Histogram => DataType::map(DataType::String, DataType::Long),
            Operation::ApproxUniqueCount | Operation::ApproxPercentile => DataType::Binary,
        }
    }

    /// The IR as a value of [`ColumnAggregator::ir_type`] (null when empty).
    pub fn ir_to_value(&self, ir: &Ir) -> Value {
        let timed = |(t, v): &(i64, Value)| Value::Struct(vec![Value::Long(*t), v.clone()]);
        match ir {
            Ir::Count(n) => {
                if *n == 0 {
                    Value::Null
                } else {
                    Value::Long(*n)
                }
            }
            Ir::SumLong { n: 0, .. } | Ir::SumDouble { n: 0, .. } => Value::Null,
            Ir::Average { count: 0, .. } | Ir::Variance { count: 0, .. } => Value::Null,
            Ir::SumLong { sum, n } => Value::Struct(vec![Value::Long(*sum), Value::Long(*n)]),
            Ir::SumDouble { sum, n } => Value::Struct(vec![Value::Double(*sum), Value::Long(*n)]),
            Ir::Average { sum, count } => {
                Value::Struct(vec![Value::Double(*sum), Value::Long(*count)])
            }
            Ir::Variance { count, mean, m2 } => Value::Struct(vec![
                Value::Long(*count),
                Value::Double(*mean),
                Value::Double(*m2),
            ]),
            Ir::Min(v) | Ir::Max(v) => v.clone().unwrap_or(Value::Null),
            Ir::First(v) | Ir::Last(v) => v.as_ref().map(timed).unwrap_or(Value::Null),
            Ir::LastK(items) if items.is_empty() => Value::Null,
            Ir::LastK(items) => Value::List(items.iter().map(timed).collect()),
            Ir::UniqueCount(set) if set.is_empty() => Value::Null,
            Ir::UniqueCount(set) => Value::List(set.iter().cloned().map(Value::String).collect()),
            Ir::Moments { n, .. } if *n == 0.0 => Value::Null,
            Ir::Moments { n, m1, m2, m3, m4 } => Value::Struct(
                [n, m1, m2, m3, m4]
                    .into_iter()
                    .map(|x| Value::Double(*x))
                    .collect(),
            ),
            Ir::FirstK(items) if items.is_empty() => Value::Null,
            Ir::FirstK(items) => Value::List(items.iter().map(timed).collect()),
            Ir::Ordered(items) if items.is_empty() => Value::Null,
            Ir::Ordered(items) => Value::List(items.clone()),
            Ir::Histogram(map) if map.is_empty() => Value::Null,
            Ir::Histogram(map) => Value::Map(
                map.iter()
                    .map(|(k, c)| (Value::String(k.clone()), Value::Long(*c)))
                    .collect(),
            ),
            Ir::Bounded(set) if set.is_empty() => Value::Null,
            Ir::Bounded(set) => Value::List(set.iter().cloned().map(Value::String).collect()),
            Ir::Cpc(None) | Ir::Kll(None) => Value::Null,
            Ir::Cpc(Some(c)) => Value::Binary(c.to_bytes()),
            Ir::Kll(Some(s)) => Value::Binary(s.serialize()),
        }
    }

    /// The IR back from a stored value; `Err` names what does not fit.
    pub fn ir_from_value(&self, v: &Value) -> Result<Ir, String> {
        let mut ir = self.init();
        if matches!(v, Value::Null) {
            return Ok(ir);
        }
        let bad = || {
            format!(
                "stored IR {} does not fit {:?}",
                v.to_json(),
                self.operation
            )
        };
        let long = |v: Option<&Value>| match v {
            Some(Value::Long(x)) => Ok(*x),
            _ => Err(bad()),
        };
        let double = |v: Option<&Value>| match v {
            Some(Value::Double(x)) => Ok(*x),
            _ => Err(bad()),
        };
        let timed = |v: &Value| match v {
            Value::Struct(f) if f.len() == 2 => Ok((long(f.first())?, f[1].clone())),
            _ => Err(bad()),
        };
        match (&mut ir, v) {
            (Ir::Count(n), Value::Long(x)) => *n = *x,
            (Ir::SumLong { sum, n }, Value::Struct(f)) => {
                (*sum, *n) = (long(f.first())?, long(f.get(1))?)
            }
            (Ir::SumDouble { sum, n }, Value::Struct(f)) => {
                (*sum, *n) = (double(f.first())?, long(f.get(1))?)
            }
            (Ir::Average { sum, count }, Value::Struct(f)) => {
                (*sum, *count) = (double(f.first())?, long(f.get(1))?)
            }
            (Ir::Variance { count, mean, m2 }, Value::Struct(f)) => {
                (*count, *mean, *m2) = (long(f.first())?, double(f.get(1))?, double(f.get(2))?)
            }
            (Ir::Min(cur) | Ir::Max(cur), x) => *cur = Some(x.clone()),
            (Ir::First(cur) | Ir::Last(cur), x) => *cur = Some(timed(x)?),
            (Ir::LastK(items), Value::List(xs)) => {
                *items = xs.iter().map(timed).collect::<Result<_, _>>()?
            }
            (Ir::Moments { n, m1, m2, m3, m4 }, Value::Struct(f)) => {
                (*n, *m1, *m2, *m3, *m4) = (
                    double(f.first())?,
                    double(f.get(1))?,
                    double(f.get(2))?,
                    double(f.get(3))?,
                    double(f.get(4))?,
                )
            }
            (Ir::FirstK(items), Value::List(xs)) => {
                *items = xs.iter().map(timed).collect::<Result<_, _>>()?
            }
            (Ir::Ordered(items), Value::List(xs)) => *items = xs.clone(),
            (Ir::Histogram(map), Value::Map(entries)) => {
                for (k, c) in entries {
                    match (k, c) {
                        (Value::String(k), Value::Long(c)) => {
                            map.insert(k.clone(), *c);
                        }
                        _ => return Err(bad()),
                    }
                }
            }
            (Ir::UniqueCount(set) | Ir::Bounded(set), Value::List(xs)) => {
                for x in xs {
                    match x {
                        Value::String(s) => {
                            set.insert(s.clone());
                        }
                        _ => return Err(bad()),
                    }
                }
            }
            (Ir::Cpc(c), Value::Binary(b)) => *c = Some(super::sketch::Cpc::from_bytes(b)?),
            (Ir::Kll(s), Value::Binary(b)) => {
                *s = Some(Box::new(
                    super::sketch::Kll::deserialize(b)
                        .map_err(|e| format!("stored KLL sketch: {e}"))?,
                ))
            }
            _ => return Err(bad()),
        }
        Ok(ir)
    }
}
