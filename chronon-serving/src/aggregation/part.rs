//! One aggregation part as Chronon's row aggregators see it: an operation ([`ColumnAggregator`])
//! fed from a row, in one of the shapes `ColumnAggregator.construct` picks:
//!
//! - direct (`DirectColumnAggregator`): the input column's value is one input; a list input of a
//!   simple operation is flattened, every element one input (`VectorDispatcher`: the average of
//!   `[1, 2, 3], [3, 4], [5]` is 3);
//! - bucketed (`BucketedColumnAggregator`): one IR per value of a string bucket column, the
//!   feature a map from bucket value to the operation's value; rows with a null bucket are
//!   skipped;
//! - element-wise (`ElementWiseAggregator`): a list input with one IR per position, the feature a
//!   list. The JVM fails on a null element or on lists of different lengths; here a null element
//!   is skipped and a row whose length differs from the IR's is skipped (a serving read cannot
//!   fail a row that the upload already accepted).
//!
//! A direct part's float or double value that is NaN or infinite (SKEW of two inputs, a sum that
//! overflowed) is served as null, as `DirectColumnAggregator.numberSanityCheck` does; bucketed
//! and element-wise values are finalized as they are (a NaN SKEW stays NaN), as Chronon's
//! `MapColumnAggregatorBase` and `ElementWiseAggregatorBase` do.

use std::collections::BTreeMap;

use super::{ColumnAggregator, Ir};
use crate::groupby::InputShape;
use crate::stream::{DataType, Value};

/// The IR of one aggregation part.
#[derive(Debug, Clone, PartialEq)]
pub enum PartIr {
    /// The operation's IR.
    Direct(Ir),
    /// Bucket value → the operation's IR over the rows with that bucket.
    Buckets(BTreeMap<String, Ir>),
    /// One IR per list position (empty before the first list).
    Elements(Vec<Ir>),
}

/// One operation on one input column, in its shape (see the module docs).
#[derive(Debug, Clone)]
pub struct PartAggregator {
    /// The operation over one (element) input.
    pub column: ColumnAggregator,
    /// Index of the input among the value columns.
    input: usize,
    /// Index of the bucket column among the value columns.
    bucket: Option<usize>,
    shape: InputShape,
}

impl PartAggregator {
    /// `column` reading value column `input` in `shape`, bucketed by value column `bucket`.
    pub fn new(
        column: ColumnAggregator,
        input: usize,
        bucket: Option<usize>,
        shape: InputShape,
    ) -> Self {
        PartAggregator {
            column,
            input,
            bucket,
            shape,
        }
    }

    /// The empty IR.
    pub fn init(&self) -> PartIr {
        match (self.bucket, self.shape) {
            (Some(_), _) => PartIr::Buckets(BTreeMap::new()),
            (None, InputShape::ElementWise) => PartIr::Elements(Vec::new()),
            (None, _) => PartIr::Direct(self.column.init()),
        }
    }

    /// Adds one row (its value columns) with event time `ts`.
    pub fn update(&self, ir: &mut PartIr, ts: i64, values: &[Value]) {
        self.apply(ir, ts, values, false)
    }

    /// Takes one row back out (a mutation's before-image; reversible operations only).
    pub fn delete(&self, ir: &mut PartIr, ts: i64, values: &[Value]) {
        self.apply(ir, ts, values, true)
    }

    fn feed(&self, ir: &mut Ir, ts: i64, v: &Value, reverse: bool) {
        let one = |ir: &mut Ir, v: &Value| {
            if reverse {
                self.column.delete(ir, v)
            } else {
                self.column.update(ir, ts, v)
            }
        };
        match (self.shape, v) {
            (InputShape::Flattened, Value::List(items)) => {
                for x in items {
                    one(ir, x);
                }
            }
            _ => one(ir, v),
        }
    }

    fn apply(&self, ir: &mut PartIr, ts: i64, values: &[Value], reverse: bool) {
        let input = values.get(self.input).unwrap_or(&Value::Null);
        if matches!(input, Value::Null) {
            return;
        }
        match ir {
            PartIr::Direct(ir) => self.feed(ir, ts, input, reverse),
            PartIr::Buckets(map) => {
                let Some(Value::String(bucket)) = self.bucket.and_then(|b| values.get(b)) else {
                    return;
                };
                let ir = map
                    .entry(bucket.clone())
                    .or_insert_with(|| self.column.init());
                self.feed(ir, ts, input, reverse);
            }
            PartIr::Elements(irs) => {
                let Value::List(items) = input else {
                    return;
                };
                if irs.is_empty() {
                    *irs = items.iter().map(|_| self.column.init()).collect();
                } else if irs.len() != items.len() {
                    return;
                }
                for (ir, x) in irs.iter_mut().zip(items) {
                    self.feed(ir, ts, x, reverse);
                }
            }
        }
    }

    /// Merges `other` into `ir` (both of this aggregator).
    pub fn merge(&self, ir: &mut PartIr, other: &PartIr) {
        match (ir, other) {
            (PartIr::Direct(a), PartIr::Direct(b)) => self.column.merge(a, b),
            (PartIr::Buckets(a), PartIr::Buckets(b)) => {
                for (bucket, ir) in b {
                    let mine = a
                        .entry(bucket.clone())
                        .or_insert_with(|| self.column.init());
                    self.column.merge(mine, ir);
                }
            }
            (PartIr::Elements(a), PartIr::Elements(b)) => {
                if a.is_empty() {
                    a.clone_from(b);
                } else if a.len() == b.len() {
                    for (x, y) in a.iter_mut().zip(b) {
                        self.column.merge(x, y);
                    }
                }
            }
            _ => {}
        }
    }

    /// The feature value; null when nothing was aggregated.
    pub fn finalize(&self, ir: &PartIr) -> Value {
        match ir {
            PartIr::Direct(ir) => number_sanity_check(self.column.finalize(ir)),
            PartIr::Buckets(map) if map.is_empty() => Value::Null,
            PartIr::Buckets(map) => Value::Map(
                map.iter()
                    .map(|(b, ir)| (Value::String(b.clone()), self.column.finalize(ir)))
                    .collect(),
            ),
            PartIr::Elements(irs) if irs.is_empty() => Value::Null,
            PartIr::Elements(irs) => {
                Value::List(irs.iter().map(|ir| self.column.finalize(ir)).collect())
            }
        }
    }

    /// The feature's type once finalized.
    pub fn output_type(&self) -> DataType {
        let out = self.column.output_type();
        match (self.bucket, self.shape) {
            (Some(_), _) => DataType::map(DataType::String, out),
            (None, InputShape::ElementWise) => DataType::list(out),
            (None, _) => out,
        }
    }

    /// The IR's stored type, the JVM's: the operation's IR, a `map<string, IR>` when bucketed
    /// (`BucketedColumnAggregator`), a `list<IR>` when element-wise (`ElementWiseAggregator`);
    /// null is the empty IR.
    pub fn ir_type(&self) -> Result<DataType, String> {
        let base = self.column.ir_type()?;
        Ok(match (self.bucket, self.shape) {
            (Some(_), _) => DataType::map(DataType::String, base),
            (None, InputShape::ElementWise) => DataType::list(base),
            (None, _) => base,
        })
    }

    /// The IR as the JVM stores it (null when empty). Avro map values and list items are not
    /// nullable there: an empty bucket is left out, an empty element cannot be written.
    pub fn ir_to_value(&self, ir: &PartIr) -> Result<Value, String> {
        Ok(match ir {
            PartIr::Direct(ir) => self.column.ir_to_value(ir)?,
            PartIr::Buckets(map) => {
                let mut entries = Vec::with_capacity(map.len());
                for (b, ir) in map {
                    match self.column.ir_to_value(ir)? {
                        Value::Null => {}
                        v => entries.push((Value::String(b.clone()), v)),
                    }
                }
                if entries.is_empty() {
                    Value::Null
                } else {
                    Value::Map(entries)
                }
            }
            PartIr::Elements(irs) if irs.is_empty() => Value::Null,
            PartIr::Elements(irs) => {
                let mut items = Vec::with_capacity(irs.len());
                for (i, ir) in irs.iter().enumerate() {
                    match self.column.ir_to_value(ir)? {
                        Value::Null => {
                            return Err(format!(
                                "element {i} of an element-wise {:?} has no input; the JVM's list of IRs cannot hold an empty one",
                                self.column.operation
                            ))
                        }
                        v => items.push(v),
                    }
                }
                Value::List(items)
            }
        })
    }

    /// The IR back from the JVM's stored value; `Err` names what does not fit.
    pub fn ir_from_value(&self, v: &Value) -> Result<PartIr, String> {
        let mut ir = self.init();
        match (&mut ir, v) {
            (_, Value::Null) => {}
            (PartIr::Direct(ir), v) => *ir = self.column.ir_from_value(v)?,
            (PartIr::Buckets(map), Value::Map(entries)) => {
                for (b, x) in entries {
                    let Value::String(b) = b else {
                        return Err(format!("bucket {} is not a string", b.to_json()));
                    };
                    map.insert(b.clone(), self.column.ir_from_value(x)?);
                }
            }
            (PartIr::Elements(irs), Value::List(items)) => {
                for x in items {
                    irs.push(self.column.ir_from_value(x)?);
                }
            }
            (_, other) => {
                return Err(format!(
                    "stored IR {} does not fit a {} aggregation",
                    other.to_json(),
                    if self.bucket.is_some() {
                        "bucketed"
                    } else {
                        "element-wise"
                    }
                ))
            }
        }
        Ok(ir)
    }
}

/// Chronon's `DirectColumnAggregator.numberSanityCheck`: a NaN or infinite float or double is
/// null, so a feature that cannot be computed reads as missing rather than as a number.
fn number_sanity_check(value: Value) -> Value {
    match value {
        Value::Double(d) if !d.is_finite() => Value::Null,
        Value::Float(f) if !f.is_finite() => Value::Null,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groupby::Operation;

    /// Two doubles: SKEW is NaN (under three inputs); MAX of an infinite input is infinite.
    fn fed(op: Operation, bucket: Option<usize>, shape: InputShape, input: Value) -> Value {
        let part = PartAggregator::new(
            ColumnAggregator::new(op, None, DataType::Double),
            0,
            bucket,
            shape,
        );
        let mut ir = part.init();
        for x in [input.clone(), Value::Double(1.0)] {
            part.update(&mut ir, 0, &[x, Value::String("b".into())]);
        }
        part.finalize(&ir)
    }

    #[test]
    fn direct_parts_serve_nan_and_infinity_as_null_as_chronon_does() {
        let two = Value::Double(2.0);
        let inf = Value::Double(f64::INFINITY);
        assert_eq!(
            fed(Operation::Skew, None, InputShape::Whole, two.clone()),
            Value::Null
        );
        assert_eq!(
            fed(Operation::Max, None, InputShape::Whole, inf.clone()),
            Value::Null
        );
        assert_eq!(
            fed(Operation::Max, None, InputShape::Whole, two.clone()),
            Value::Double(2.0)
        );
        // A flattened list input is a direct part too.
        let list = Value::List(vec![Value::Double(f64::NEG_INFINITY)]);
        assert_eq!(
            fed(Operation::Min, None, InputShape::Flattened, list),
            Value::Null
        );
        // Bucketed values keep NaN (`MapColumnAggregatorBase` does not check).
        match fed(Operation::Skew, Some(1), InputShape::Whole, two) {
            Value::Map(entries) => {
                assert_eq!(entries.len(), 1);
                assert!(matches!(entries[0].1, Value::Double(d) if d.is_nan()));
            }
            other => panic!("bucketed SKEW: {other:?}"),
        }
    }
}
