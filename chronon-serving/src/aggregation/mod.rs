//! Aggregations as Chronon computes them online: an intermediate result (IR) per operation that
//! can be updated with a row, reversed (where the operation allows), merged with another IR and
//! finalized into the feature value (Chronon's `ColumnAggregator`s), plus the batch IR with its
//! tail hops and the lambda merge at fetch time ([`plan`], Chronon's `SawtoothOnlineAggregator`).
//! How each IR is stored (the JVM's IR type and value) is in `stored`.
//!
//! Null inputs are skipped, as Chronon's aggregators skip them, and a feature with no input in its
//! window is null (Chronon's IR is null then), for every operation.

pub mod part;
pub mod plan;
pub mod sketch;
mod stored;

pub use stored::{java_string_md5, UNKNOWN_COUNT};

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::groupby::Operation;
use crate::stream::{DataType, Value};

pub use part::{PartAggregator, PartIr};
pub use plan::{BatchState, GroupByAggregator, StreamingRow};

/// The intermediate result of one operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Ir {
    /// `count`: inputs seen.
    Count(i64),
    /// `sum` of integer inputs, with how many were added.
    SumLong {
        /// The sum (wrapping on overflow, like the JVM's `long`).
        sum: i64,
        /// Inputs added.
        n: i64,
    },
    /// `sum` of floating inputs, with how many were added.
    SumDouble {
        /// The sum.
        sum: f64,
        /// Inputs added.
        n: i64,
    },
    /// `average`: sum and count.
    Average {
        /// The sum.
        sum: f64,
        /// Inputs added.
        count: i64,
    },
    /// `variance`: Welford's running count, mean and sum of squared deviations.
    Variance {
        /// Inputs added.
        count: i64,
        /// Running mean.
        mean: f64,
        /// Sum of squared deviations from the mean.
        m2: f64,
    },
    /// `min` so far.
    Min(Option<Value>),
    /// `max` so far.
    Max(Option<Value>),
    /// `first`: the earliest `(ts, value)`.
    First(Option<(i64, Value)>),
    /// `last`: the latest `(ts, value)`.
    Last(Option<(i64, Value)>),
    /// `last_k`: up to `k` `(ts, value)`, newest first.
    LastK(Vec<(i64, Value)>),
    /// `unique_count`: the distinct inputs (their canonical JSON text).
    UniqueCount(BTreeSet<String>),
    /// `skew` / `kurtosis`: count and the first four central moments (Chronon's `MomentsIR`).
    Moments {
        /// Inputs added.
        n: f64,
        /// Mean.
        m1: f64,
        /// Sum of squared deviations.
        m2: f64,
        /// Sum of cubed deviations.
        m3: f64,
        /// Sum of fourth-power deviations.
        m4: f64,
    },
    /// `first_k`: up to `k` `(ts, value)`, oldest first.
    FirstK(Vec<(i64, Value)>),
    /// `top_k` (largest first) / `bottom_k` (smallest first): up to `k` inputs in output order.
    Ordered(Vec<Value>),
    /// `histogram`: count per input.
    Histogram(BTreeMap<String, i64>),
    /// `bounded_unique_count`: up to `k` distinct inputs (canonical JSON text).
    Bounded(BTreeSet<String>),
    /// `approx_unique_count`: a CPC sketch, absent before the first input.
    Cpc(Option<sketch::Cpc>),
    /// `approx_percentile`: a KLL floats sketch, absent before the first input.
    Kll(Option<Box<sketch::Kll>>),
}

/// One operation on one input column: how its IR is built, reversed, merged, stored and
/// finalized.
#[derive(Debug, Clone)]
pub struct ColumnAggregator {
    /// The operation.
    pub operation: Operation,
    /// `k` of `last_k`.
    pub k: usize,
    /// The input column's type.
    pub input_type: DataType,
    /// The percentiles of `approx_percentile`.
    pub percentiles: Vec<f64>,
    integral: bool,
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Byte(x) => Some(f64::from(*x)),
        Value::Short(x) => Some(f64::from(*x)),
        Value::Int(x) => Some(f64::from(*x)),
        Value::Long(x) => Some(*x as f64),
        Value::Float(x) => Some(f64::from(*x)),
        Value::Double(x) => Some(*x),
        _ => None,
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Byte(x) => Some(i64::from(*x)),
        Value::Short(x) => Some(i64::from(*x)),
        Value::Int(x) => Some(i64::from(*x)),
        Value::Long(x) | Value::Timestamp(x) => Some(*x),
        Value::Date(x) => Some(i64::from(*x)),
        _ => None,
    }
}

/// Orders two inputs of the same column (numbers numerically, strings by bytes); `None` when
/// they cannot be compared (NaN, mixed kinds).
pub fn compare_values(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Float(_) | Value::Double(_), _) | (_, Value::Float(_) | Value::Double(_)) => {
            as_f64(a)?.partial_cmp(&as_f64(b)?)
        }
        _ => Some(as_i64(a)?.cmp(&as_i64(b)?)),
    }
}

fn canonical(v: &Value) -> String {
    v.to_json().to_string()
}

/// A histogram key: strings as they are, anything else as its JSON text.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => canonical(other),
    }
}

impl ColumnAggregator {
    /// The aggregator of `operation` over a column of `input_type`.
    pub fn new(operation: Operation, k: Option<usize>, input_type: DataType) -> Self {
        let integral = matches!(
            input_type,
            DataType::Byte | DataType::Short | DataType::Int | DataType::Long
        );
        ColumnAggregator {
            operation,
            k: k.or(operation.default_k()).unwrap_or(1).max(1),
            input_type,
            percentiles: vec![0.5],
            integral,
        }
    }

    /// The same aggregator with the percentiles of `approx_percentile` (empty keeps `[0.5]`,
    /// Chronon's default).
    pub fn with_percentiles(mut self, percentiles: &[f64]) -> Self {
        if !percentiles.is_empty() {
            self.percentiles = percentiles.to_vec();
        }
        self
    }

    /// The empty IR.
    pub fn init(&self) -> Ir {
        match self.operation {
            Operation::Count => Ir::Count(0),
            Operation::Sum if self.integral => Ir::SumLong { sum: 0, n: 0 },
            Operation::Sum => Ir::SumDouble { sum: 0.0, n: 0 },
            Operation::Average => Ir::Average { sum: 0.0, count: 0 },
            Operation::Variance => Ir::Variance {
                count: 0,
                mean: 0.0,
                m2: 0.0,
            },
            Operation::Min => Ir::Min(None),
            Operation::Max => Ir::Max(None),
            Operation::First => Ir::First(None),
            Operation::Last => Ir::Last(None),
            Operation::LastK => Ir::LastK(Vec::new()),
            Operation::UniqueCount => Ir::UniqueCount(BTreeSet::new()),
            Operation::Skew | Operation::Kurtosis => Ir::Moments {
                n: 0.0,
                m1: 0.0,
                m2: 0.0,
                m3: 0.0,
                m4: 0.0,
            },
            Operation::FirstK => Ir::FirstK(Vec::new()),
            Operation::TopK | Operation::BottomK => Ir::Ordered(Vec::new()),
            Operation::Histogram => Ir::Histogram(BTreeMap::new()),
            Operation::BoundedUniqueCount => Ir::Bounded(BTreeSet::new()),
            Operation::ApproxUniqueCount => Ir::Cpc(None),
            Operation::ApproxPercentile => Ir::Kll(None),
        }
    }

    /// Whether `a` goes before `b` in a `top_k` / `bottom_k` list.
    fn ordered_before(&self, a: &Value, b: &Value) -> bool {
        let want = if self.operation == Operation::TopK {
            Ordering::Greater
        } else {
            Ordering::Less
        };
        compare_values(a, b) == Some(want)
    }

    fn insert_ordered(&self, items: &mut Vec<Value>, v: &Value) {
        let pos = items.partition_point(|x| !self.ordered_before(v, x));
        if pos < self.k {
            items.insert(pos, v.clone());
            items.truncate(self.k);
        }
    }

    fn insert_first_k(&self, items: &mut Vec<(i64, Value)>, ts: i64, v: &Value) {
        let pos = items.partition_point(|(t, _)| *t <= ts);
        if pos < self.k {
            items.insert(pos, (ts, v.clone()));
            items.truncate(self.k);
        }
    }

    /// Adds one input with event time `ts` (nulls and non-numbers for numeric ops are skipped).
    pub fn update(&self, ir: &mut Ir, ts: i64, v: &Value) {
        if matches!(v, Value::Null) {
            return;
        }
        match ir {
            Ir::Count(n) => *n += 1,
            Ir::SumLong { sum, n } => {
                if let Some(x) = as_i64(v) {
                    *sum = sum.wrapping_add(x);
                    *n += 1;
                }
            }
            Ir::SumDouble { sum, n } => {
                if let Some(x) = as_f64(v) {
                    *sum += x;
                    *n += 1;
                }
            }
            Ir::Average { sum, count } => {
                if let Some(x) = as_f64(v) {
                    *sum += x;
                    *count += 1;
                }
            }
            Ir::Variance { count, mean, m2 } => {
                if let Some(x) = as_f64(v) {
                    *count += 1;
                    let delta = x - *mean;
                    *mean += delta / *count as f64;
                    *m2 += delta * (x - *mean);
                }
            }
            Ir::Min(cur) => {
                if cur
                    .as_ref()
                    .is_none_or(|c| compare_values(v, c) == Some(Ordering::Less))
                {
                    *cur = Some(v.clone());
                }
            }
            Ir::Max(cur) => {
                if cur
                    .as_ref()
                    .is_none_or(|c| compare_values(v, c) == Some(Ordering::Greater))
                {
                    *cur = Some(v.clone());
                }
            }
            Ir::First(cur) => {
                if cur.as_ref().is_none_or(|(t, _)| ts < *t) {
                    *cur = Some((ts, v.clone()));
                }
            }
            Ir::Last(cur) => {
                if cur.as_ref().is_none_or(|(t, _)| ts >= *t) {
                    *cur = Some((ts, v.clone()));
                }
            }
            Ir::LastK(items) => {
                let pos = items.partition_point(|(t, _)| *t >= ts);
                if pos < self.k {
                    items.insert(pos, (ts, v.clone()));
                    items.truncate(self.k);
                }
            }
            Ir::UniqueCount(set) => {
                set.insert(canonical(v));
            }
            Ir::Moments { n, m1, m2, m3, m4 } => {
                if let Some(x) = as_f64(v) {
                    // Chronon's MomentAggregator.update (Welford/Knuth, higher orders).
                    let n1 = *n;
                    *n += 1.0;
                    let delta = x - *m1;
                    let dn = delta / *n;
                    let dn2 = dn * dn;
                    let term1 = delta * dn * n1;
                    *m1 += dn;
                    *m4 +=
                        term1 * dn2 * (*n * *n - 3.0 * *n + 3.0) + 6.0 * dn2 * *m2 - 4.0 * dn * *m3;
                    *m3 += term1 * dn * (*n - 2.0) - 3.0 * dn * *m2;
                    *m2 += term1;
                }
            }
            Ir::FirstK(items) => self.insert_first_k(items, ts, v),
            Ir::Ordered(items) => {
                if compare_values(v, v).is_some() {
                    self.insert_ordered(items, v)
                }
            }
            Ir::Histogram(map) => *map.entry(value_text(v)).or_default() += 1,
            Ir::Bounded(set) => {
                if set.len() < self.k {
                    set.insert(stored::bounded_item(&self.input_type, v));
                }
            }
            Ir::Cpc(cpc) => {
                if cpc.is_none() {
                    // k is validated (4..=26) when the definition loads.
                    *cpc = sketch::Cpc::new(self.k).ok();
                }
                if let Some(c) = cpc {
                    c.update(v);
                }
            }
            Ir::Kll(kll) => {
                if kll.is_none() {
                    // k is validated (8..=65535) when the definition loads.
                    *kll = sketch::kll_new(self.k).ok().map(Box::new);
                }
                if let Some(s) = kll {
                    sketch::kll_update(s, v);
                }
            }
        }
    }

    /// Takes one input back out (a mutation's before-image). Only reversible operations
    /// (count, sum, average, variance) do anything; definitions with others are rejected for
    /// mutation sources when loaded.
    pub fn delete(&self, ir: &mut Ir, v: &Value) {
        if matches!(v, Value::Null) {
            return;
        }
        match ir {
            Ir::Count(n) => *n -= 1,
            Ir::SumLong { sum, n } => {
                if let Some(x) = as_i64(v) {
                    *sum = sum.wrapping_sub(x);
                    *n -= 1;
                }
            }
            Ir::SumDouble { sum, n } => {
                if let Some(x) = as_f64(v) {
                    *sum -= x;
                    *n -= 1;
                }
            }
            Ir::Average { sum, count } => {
                if let Some(x) = as_f64(v) {
                    *sum -= x;
                    *count -= 1;
                }
            }
            Ir::Variance { count, mean, m2 } => {
                if let Some(x) = as_f64(v) {
                    if *count <= 1 {
                        *count -= 1;
                        *mean = 0.0;
                        *m2 = 0.0;
                    } else {
                        let n = *count as f64;
                        let prev_mean = (n * *mean - x) / (n - 1.0);
                        *m2 -= (x - prev_mean) * (x - *mean);
                        *mean = prev_mean;
                        *count -= 1;
                    }
                }
            }
            _ => {}
        }
    }

    /// Merges `other` into `ir` (both of this aggregator).
    pub fn merge(&self, ir: &mut Ir, other: &Ir) {
        // Merging one kept value is updating with it (same comparison, same tie rule).
        match other {
            Ir::Min(Some(v)) | Ir::Max(Some(v)) => return self.update(ir, 0, v),
            Ir::First(Some((t, v))) | Ir::Last(Some((t, v))) => return self.update(ir, *t, v),
            _ => {}
        }
        match (ir, other) {
            (Ir::Count(a), Ir::Count(b)) => *a += b,
            (Ir::SumLong { sum, n }, Ir::SumLong { sum: s2, n: n2 }) => {
                *sum = sum.wrapping_add(*s2);
                *n += n2;
            }
            (Ir::SumDouble { sum, n }, Ir::SumDouble { sum: s2, n: n2 }) => {
                *sum += s2;
                *n += n2;
            }
            (Ir::Average { sum, count }, Ir::Average { sum: s2, count: c2 }) => {
                *sum += s2;
                *count += c2;
            }
            (
                Ir::Variance { count, mean, m2 },
                Ir::Variance {
                    count: c2,
                    mean: mean2,
                    m2: m22,
                },
            ) => {
                if *c2 == 0 {
                    return;
                }
                if *count == 0 {
                    (*count, *mean, *m2) = (*c2, *mean2, *m22);
                    return;
                }
                let n = (*count + c2) as f64;
                let delta = mean2 - *mean;
                *m2 += m22 + delta * delta * (*count as f64) * (*c2 as f64) / n;
                *mean += delta * (*c2 as f64) / n;
                *count += c2;
            }
            (Ir::LastK(a), Ir::LastK(b)) => {
                for (t, v) in b {
                    let pos = a.partition_point(|(ta, _)| ta >= t);
                    if pos < self.k {
                        a.insert(pos, (*t, v.clone()));
                        a.truncate(self.k);
                    }
                }
            }
            (Ir::UniqueCount(a), Ir::UniqueCount(b)) => a.extend(b.iter().cloned()),
            (
                Ir::Moments { n, m1, m2, m3, m4 },
                Ir::Moments {
                    n: bn,
                    m1: b1,
                    m2: b2,
                    m3: b3,
                    m4: b4,
                },
            ) => {
                if *bn == 0.0 {
                    return;
                }
                if *n == 0.0 {
                    (*n, *m1, *m2, *m3, *m4) = (*bn, *b1, *b2, *b3, *b4);
                    return;
                }
                // Chronon's MomentAggregator.merge.
                let (an, a1, a2, a3, a4) = (*n, *m1, *m2, *m3, *m4);
                let tn = an + bn;
                let d = b1 - a1;
                let d2 = d * d;
                let d3 = d * d2;
                let d4 = d2 * d2;
                *m1 = (an * a1 + bn * b1) / tn;
                *m2 = a2 + b2 + d2 * an * bn / tn;
                *m3 = a3
                    + b3
                    + d3 * an * bn * (an - bn) / (tn * tn)
                    + 3.0 * d * (an * b2 - bn * a2) / tn;
                *m4 = a4
                    + b4
                    + d4 * an * bn * (an * an - an * bn + bn * bn) / (tn * tn * tn)
                    + 6.0 * d2 * (an * an * b2 + bn * bn * a2) / (tn * tn)
                    + 4.0 * d * (an * b3 - bn * a3) / tn;
                *n = tn;
            }
            (Ir::FirstK(a), Ir::FirstK(b)) => {
                for (t, v) in b {
                    self.insert_first_k(a, *t, v);
                }
            }
            (Ir::Ordered(a), Ir::Ordered(b)) => {
                for v in b {
                    self.insert_ordered(a, v);
                }
            }
            (Ir::Histogram(a), Ir::Histogram(b)) => {
                for (k, c) in b {
                    *a.entry(k.clone()).or_default() += c;
                }
            }
            (Ir::Cpc(a), Ir::Cpc(Some(b))) => match a {
                Some(a) => a.merge(b),
                None => *a = Some(b.clone()),
            },
            (Ir::Kll(a), Ir::Kll(Some(b))) => match a {
                // Sketches of one aggregator share k, so the merge cannot fail.
                Some(a) => {
                    let _ = a.merge(b);
                }
                None => *a = Some(b.clone()),
            },
            (Ir::Bounded(a), Ir::Bounded(b)) => {
                for v in b {
                    if a.len() >= self.k {
                        break;
                    }
                    a.insert(v.clone());
                }
            }
            _ => {}
        }
    }

    /// The feature value; null when nothing was aggregated.
    pub fn finalize(&self, ir: &Ir) -> Value {
        match ir {
            Ir::Count(n) if *n > 0 => Value::Long(*n),
            Ir::SumLong { sum, n } if *n > 0 => Value::Long(*sum),
            Ir::SumDouble { sum, n } if *n > 0 => Value::Double(*sum),
            Ir::Average { sum, count } if *count > 0 => Value::Double(*sum / *count as f64),
            Ir::Variance { count, m2, .. } if *count > 0 => {
                Value::Double((*m2 / *count as f64).max(0.0))
            }
            Ir::Min(Some(v)) | Ir::Max(Some(v)) => v.clone(),
            Ir::First(Some((_, v))) | Ir::Last(Some((_, v))) => v.clone(),
            Ir::LastK(items) if !items.is_empty() => {
                Value::List(items.iter().map(|(_, v)| v.clone()).collect())
            }
            Ir::UniqueCount(set) if !set.is_empty() => Value::Long(set.len() as i64),
            Ir::Moments { n, m2, m3, m4, .. } if *n > 0.0 => {
                // Chronon's Skew / Kurtosis: NaN for too few inputs or no spread.
                Value::Double(match self.operation {
                    Operation::Skew if *n >= 3.0 && *m2 != 0.0 => n.sqrt() * m3 / m2.powf(1.5),
                    Operation::Kurtosis if *n >= 4.0 && *m2 != 0.0 => n * m4 / (m2 * m2) - 3.0,
                    _ => f64::NAN,
                })
            }
            Ir::FirstK(items) if !items.is_empty() => {
                Value::List(items.iter().map(|(_, v)| v.clone()).collect())
            }
            Ir::Ordered(items) if !items.is_empty() => Value::List(items.clone()),
            Ir::Histogram(map) if !map.is_empty() => Value::Map(
                map.iter()
                    .map(|(k, c)| (Value::String(k.clone()), Value::Int(*c as i32)))
                    .collect(),
            ),
            Ir::Bounded(set) if !set.is_empty() => Value::Long(set.len().min(self.k) as i64),
            Ir::Cpc(Some(c)) => Value::Long(c.estimate()),
            Ir::Kll(Some(s)) if !s.is_empty() => sketch::kll_percentiles(s, &self.percentiles),
            _ => Value::Null,
        }
    }

    /// The feature's type once finalized.
    pub fn output_type(&self) -> DataType {
        match self.operation {
            Operation::Count | Operation::UniqueCount => DataType::Long,
            Operation::Sum if self.integral => DataType::Long,
            Operation::Sum | Operation::Average | Operation::Variance => DataType::Double,
            Operation::Min | Operation::Max | Operation::First | Operation::Last => {
                self.input_type.clone()
            }
            Operation::LastK | Operation::FirstK | Operation::TopK | Operation::BottomK => {
                DataType::list(self.input_type.clone())
            }
            Operation::Skew | Operation::Kurtosis => DataType::Double,
            Operation::Histogram => DataType::map(DataType::String, DataType::Int),
            Operation::BoundedUniqueCount | Operation::ApproxUniqueCount => DataType::Long,
            Operation::ApproxPercentile => DataType::list(DataType::Float),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversible_ops_undo_their_updates() {
        for op in [
            Operation::Count,
            Operation::Sum,
            Operation::Average,
            Operation::Variance,
        ] {
            let agg = ColumnAggregator::new(op, None, DataType::Double);
            let mut ir = agg.init();
            for x in [1.0, 4.0, 9.5] {
                agg.update(&mut ir, 0, &Value::Double(x));
            }
            let before = agg.finalize(&ir);
            agg.update(&mut ir, 0, &Value::Double(100.0));
            agg.delete(&mut ir, &Value::Double(100.0));
            match (agg.finalize(&ir), before) {
                (Value::Double(a), Value::Double(b)) => assert!((a - b).abs() < 1e-9, "{op:?}"),
                (a, b) => assert_eq!(a, b, "{op:?}"),
            }
        }
    }

    #[test]
    fn ir_values_round_trip_and_merge() {
        let ops = [
            Operation::Count,
            Operation::Sum,
            Operation::Average,
            Operation::Variance,
            Operation::Min,
            Operation::Max,
            Operation::First,
            Operation::Last,
            Operation::LastK,
            Operation::UniqueCount,
            Operation::FirstK,
            Operation::TopK,
            Operation::BottomK,
            Operation::Histogram,
            Operation::BoundedUniqueCount,
        ];
        for op in ops {
            let agg = ColumnAggregator::new(op, Some(2), DataType::Long);
            let mut a = agg.init();
            let mut b = agg.init();
            let mut all = agg.init();
            for (t, x) in [(5, 3), (1, 7), (9, 2), (3, 7)] {
                let target = if t < 4 { &mut a } else { &mut b };
                agg.update(target, t, &Value::Long(x));
                agg.update(&mut all, t, &Value::Long(x));
            }
            agg.merge(&mut a, &b);
            assert_eq!(agg.finalize(&a), agg.finalize(&all), "{op:?}");
            let back = agg.ir_from_value(&agg.ir_to_value(&all).unwrap()).unwrap();
            assert_eq!(agg.finalize(&back), agg.finalize(&all), "{op:?}");
            assert_eq!(agg.finalize(&agg.init()), Value::Null, "{op:?}");
        }
        // Moments merged from parts equal the moments of the whole (to rounding).
        for op in [Operation::Skew, Operation::Kurtosis] {
            let agg = ColumnAggregator::new(op, None, DataType::Double);
            let (mut a, mut b, mut all) = (agg.init(), agg.init(), agg.init());
            for (i, x) in [1.0, 4.0, 9.5, -2.0, 3.25, 7.0].into_iter().enumerate() {
                agg.update(
                    if i % 2 == 0 { &mut a } else { &mut b },
                    0,
                    &Value::Double(x),
                );
                agg.update(&mut all, 0, &Value::Double(x));
            }
            agg.merge(&mut a, &b);
            match (agg.finalize(&a), agg.finalize(&all)) {
                (Value::Double(x), Value::Double(y)) => {
                    assert!(x.is_finite() && (x - y).abs() < 1e-9, "{op:?} {x} {y}")
                }
                other => panic!("{op:?}: {other:?}"),
            }
        }
        let lk = ColumnAggregator::new(Operation::LastK, Some(2), DataType::Long);
        let mut ir = lk.init();
        for (t, x) in [(5, 3), (1, 7), (9, 2)] {
            lk.update(&mut ir, t, &Value::Long(x));
        }
        assert_eq!(
            lk.finalize(&ir),
            Value::List(vec![Value::Long(2), Value::Long(3)])
        );
    }
}
