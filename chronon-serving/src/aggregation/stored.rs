//! How an IR is stored: as the value JVM Chronon's aggregators keep for it (the IR types of
//! [`crate::jvm::layout::ir_type`]: `SimpleAggregators.scala`, `TimedAggregators.scala`,
//! `row/ColumnAggregator.scala`), so batch values this crate uploads are what a JVM fetcher
//! reads, and batch values a JVM upload wrote are what this crate's fetcher reads. Kept apart
//! from the arithmetic of the IRs (the parent module) because it is the storage format's
//! concern: changing it changes what is in the store.
//!
//! Where the JVM's IR holds less than this crate's (SUM keeps no input count), the decoded IR
//! counts as non-empty with [`UNKNOWN_COUNT`] inputs, so reversing mutations out of it never
//! makes it empty (the JVM's SUM then serves the reversed sum too).

use std::collections::BTreeSet;

use md5::{Digest, Md5};

use super::{canonical, ColumnAggregator, Ir};
use crate::stream::decoder::json_to_value;
use crate::stream::{DataType, Value};

/// The input count of a decoded SUM IR, whose JVM form has none: large enough that reversals
/// never reach zero.
pub const UNKNOWN_COUNT: i64 = 1 << 40;

/// BOUNDED_UNIQUE_COUNT keeps numbers and bytes as they are and anything else as the MD5 hex of
/// its Java serialization (`BoundedUniqueCount` in `SimpleAggregators.scala`).
pub(crate) fn bounded_keeps_input(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int | DataType::Long | DataType::Double | DataType::Float | DataType::Binary
    )
}

/// `md5Hex(SerializationUtils.serialize(s))` of a Java `String`: `ObjectOutputStream`'s stream
/// header `AC ED 00 05`, then `TC_STRING` (0x74) with a 2-byte length, or `TC_LONGSTRING` (0x7C)
/// with an 8-byte length past 65535 bytes, of the modified UTF-8 text (NUL as `C0 80`,
/// characters past U+FFFF as two 3-byte surrogates).
pub fn java_string_md5(s: &str) -> String {
    let mut utf = Vec::with_capacity(s.len());
    for c in s.chars() {
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            let u = *u as u32;
            match u {
                0x01..=0x7F => utf.push(u as u8),
                0x00 | 0x80..=0x7FF => {
                    utf.push((0xC0 | (u >> 6)) as u8);
                    utf.push((0x80 | (u & 0x3F)) as u8);
                }
                _ => {
                    utf.push((0xE0 | (u >> 12)) as u8);
                    utf.push((0x80 | ((u >> 6) & 0x3F)) as u8);
                    utf.push((0x80 | (u & 0x3F)) as u8);
                }
            }
        }
    }
    let mut bytes = vec![0xAC, 0xED, 0x00, 0x05];
    match u16::try_from(utf.len()) {
        Ok(n) => {
            bytes.push(0x74);
            bytes.extend_from_slice(&n.to_be_bytes());
        }
        Err(_) => {
            bytes.push(0x7C);
            bytes.extend_from_slice(&(utf.len() as u64).to_be_bytes());
        }
    }
    bytes.extend_from_slice(&utf);
    Md5::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a BOUNDED_UNIQUE_COUNT IR holds for one input (as this crate's canonical text).
pub(crate) fn bounded_item(input_type: &DataType, v: &Value) -> String {
    match v {
        Value::String(s) if !bounded_keeps_input(input_type) => {
            canonical(&Value::String(java_string_md5(s)))
        }
        other => canonical(other),
    }
}

fn timed((t, v): &(i64, Value)) -> Value {
    Value::Struct(vec![Value::Long(*t), v.clone()])
}

impl ColumnAggregator {
    /// The IR's stored type (the JVM's `irType`; null is the empty IR).
    pub fn ir_type(&self) -> Result<DataType, String> {
        crate::jvm::layout::ir_type(self.operation, &self.input_type)
    }

    /// The canonical texts of a set-like IR back as values of `t`.
    fn values_of(&self, set: &BTreeSet<String>, t: &DataType) -> Result<Vec<Value>, String> {
        set.iter()
            .map(|s| {
                let json: serde_json::Value = serde_json::from_str(s)
                    .map_err(|e| format!("{:?} IR item {s:?}: {e}", self.operation))?;
                json_to_value(t, &json)
                    .map_err(|e| format!("{:?} IR item {s:?}: {e}", self.operation))
            })
            .collect()
    }

    /// The IR as the JVM stores it (null when empty).
    pub fn ir_to_value(&self, ir: &Ir) -> Result<Value, String> {
        Ok(match ir {
            Ir::Count(0) => Value::Null,
            Ir::Count(n) => Value::Long(*n),
            Ir::SumLong { n: 0, .. } | Ir::SumDouble { n: 0, .. } => Value::Null,
            Ir::Average { count: 0, .. } | Ir::Variance { count: 0, .. } => Value::Null,
            Ir::SumLong { sum, .. } => Value::Long(*sum),
            Ir::SumDouble { sum, .. } => Value::Double(*sum),
            Ir::Average { sum, count } => {
                Value::Struct(vec![Value::Double(*sum), Value::Int(int_count(*count)?)])
            }
            Ir::Variance { count, mean, m2 } => Value::Struct(vec![
                Value::Int(int_count(*count)?),
                Value::Double(*mean),
                Value::Double(*m2),
            ]),
            Ir::Min(v) | Ir::Max(v) => v.clone().unwrap_or(Value::Null),
            Ir::First(v) | Ir::Last(v) => v.as_ref().map(timed).unwrap_or(Value::Null),
            Ir::LastK(items) | Ir::FirstK(items) if items.is_empty() => Value::Null,
            Ir::LastK(items) | Ir::FirstK(items) => Value::List(items.iter().map(timed).collect()),
            Ir::UniqueCount(set) | Ir::Bounded(set) if set.is_empty() => Value::Null,
            Ir::UniqueCount(set) => Value::List(self.values_of(set, &self.input_type)?),
            Ir::Bounded(set) => {
                let t = if bounded_keeps_input(&self.input_type) {
                    self.input_type.clone()
                } else {
                    DataType::String
                };
                Value::List(self.values_of(set, &t)?)
            }
            Ir::Moments { n, .. } if *n == 0.0 => Value::Null,
            Ir::Moments { n, m1, m2, m3, m4 } => Value::List(
                [n, m1, m2, m3, m4]
                    .into_iter()
                    .map(|x| Value::Double(*x))
                    .collect(),
            ),
            Ir::Ordered(items) if items.is_empty() => Value::Null,
            Ir::Ordered(items) => Value::List(items.clone()),
            Ir::Histogram(map) if map.is_empty() => Value::Null,
            Ir::Histogram(map) => Value::Map(
                map.iter()
                    .map(|(k, c)| Ok((Value::String(k.clone()), Value::Int(int_count(*c)?))))
                    .collect::<Result<_, String>>()?,
            ),
            // Sketches: DataSketches' serialized bytes, as the JVM's CPC and KLL IRs.
            Ir::Cpc(None) | Ir::Kll(None) => Value::Null,
            Ir::Cpc(Some(c)) => Value::Binary(c.to_bytes()),
            Ir::Kll(Some(s)) => Value::Binary(s.serialize()),
        })
    }

    /// The IR back from the JVM's stored value; `Err` names what does not fit.
    pub fn ir_from_value(&self, v: &Value) -> Result<Ir, String> {
        let mut ir = self.init();
        if matches!(v, Value::Null) {
            return Ok(ir);
        }
        let bad = || {
            format!(
                "stored IR {} does not fit {:?} of a {} column",
                v.to_json(),
                self.operation,
                self.input_type
            )
        };
        let long = |v: Option<&Value>| match v {
            Some(Value::Long(x)) => Ok(*x),
            Some(Value::Int(x)) => Ok(i64::from(*x)),
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
            (Ir::Count(n), x) => *n = long(Some(x))?,
            (Ir::SumLong { sum, n }, x) => (*sum, *n) = (long(Some(x))?, UNKNOWN_COUNT),
            (Ir::SumDouble { sum, n }, x) => (*sum, *n) = (double(Some(x))?, UNKNOWN_COUNT),
            (Ir::Average { sum, count }, Value::Struct(f)) => {
                (*sum, *count) = (double(f.first())?, long(f.get(1))?)
            }
            (Ir::Variance { count, mean, m2 }, Value::Struct(f)) => {
                (*count, *mean, *m2) = (long(f.first())?, double(f.get(1))?, double(f.get(2))?)
            }
            (Ir::Min(cur) | Ir::Max(cur), x) => *cur = Some(x.clone()),
            (Ir::First(cur) | Ir::Last(cur), x) => *cur = Some(timed(x)?),
            // The JVM keeps these as heaps; this crate keeps them sorted (newest first for
            // LAST_K, oldest first for FIRST_K), so re-insert every item.
            (Ir::LastK(_) | Ir::FirstK(_), Value::List(xs)) => {
                for x in xs {
                    let (t, item) = timed(x)?;
                    self.update(&mut ir, t, &item);
                }
            }
            (Ir::Moments { n, m1, m2, m3, m4 }, Value::List(f)) if f.len() == 5 => {
                (*n, *m1, *m2, *m3, *m4) = (
                    double(f.first())?,
                    double(f.get(1))?,
                    double(f.get(2))?,
                    double(f.get(3))?,
                    double(f.get(4))?,
                )
            }
            (Ir::Ordered(_), Value::List(xs)) => {
                for x in xs {
                    self.update(&mut ir, 0, x);
                }
            }
            (Ir::Histogram(map), Value::Map(entries)) => {
                for (k, c) in entries {
                    match k {
                        Value::String(k) => {
                            map.insert(k.clone(), long(Some(c))?);
                        }
                        _ => return Err(bad()),
                    }
                }
            }
            // Items are kept as the JVM stored them (for BOUNDED_UNIQUE_COUNT of strings, the
            // MD5 hex, which is what `update` adds too).
            (Ir::UniqueCount(set) | Ir::Bounded(set), Value::List(xs)) => {
                set.extend(xs.iter().map(canonical));
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

/// Counts the JVM keeps as `int` (AVERAGE and VARIANCE counts, histogram counts).
fn int_count(n: i64) -> Result<i32, String> {
    i32::try_from(n).map_err(|_| format!("count {n} does not fit the JVM IR's int"))
}
