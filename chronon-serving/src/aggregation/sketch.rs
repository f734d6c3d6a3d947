//! The sketch IRs of APPROX_UNIQUE_COUNT and APPROX_PERCENTILE, from Apache DataSketches' own
//! Rust port (the `datasketches` crate), whose sketches hash, estimate and serialize as the Java
//! library Chronon uses:
//!
//! - APPROX_UNIQUE_COUNT is Chronon's `ApproxDistinctCount`: a CPC sketch of `lg_k = k`
//!   (default 8) updated as Java's `CpcSketch.update` is (strings and bytes as their raw bytes,
//!   empty ones skipped; integers as longs; floats as canonical doubles). The feature is the
//!   estimate truncated to a long (`getEstimate.toLong`), taken after a `CpcUnion`, as every IR
//!   the JVM serves has been through one (its `merge` and `clone` are unions), so the estimate is
//!   CPC's ICON estimator: a function of the distinct inputs alone, whatever the merge order.
//! - APPROX_PERCENTILE is Chronon's `ApproxPercentiles`: a KLL floats sketch of size `k`
//!   (default 128), inputs cast to float, NaN skipped; the feature is one float per requested
//!   percentile, `getQuantiles` of sketches-core 0.13.4, the item at position `floor(p * n)` of
//!   the sorted stream — DataSketches' EXCLUSIVE search criterion — and the exact min and max
//!   for 0 and 1. Up to `k` inputs the sketch is exact; past that KLL compacts at random, in the
//!   JVM as here, so values agree only within the sketch's rank error.
//!
//! The stored IR is the sketch's serialized bytes (Chronon's IR type for both is binary).
//!
//! APPROX_HISTOGRAM_K is not served: its JVM IR is a Java-serialized Scala object
//! (`ApproxHistogramIrSerializable`), and past `k` keys its counts come from the frequent-items
//! sketch of sketches-core 0.13.4, whose purges depend on Java's `hashCode` of the items.

use std::fmt;

use datasketches::common::SearchCriteria;
use datasketches::cpc::{CpcSketch, CpcUnion};
use datasketches::hash::value::canonical_float;
use datasketches::hash::value::raw_bytes;
use datasketches::kll::{KllFloat, KllSketch};

use crate::stream::Value;

/// A CPC sketch (APPROX_UNIQUE_COUNT's IR).
#[derive(Clone)]
pub struct Cpc(CpcSketch);

impl fmt::Debug for Cpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cpc(lg_k {}, ~{:.1})", self.0.lg_k(), self.0.estimate())
    }
}

impl PartialEq for Cpc {
    fn eq(&self, other: &Self) -> bool {
        self.0.serialize() == other.0.serialize()
    }
}

impl Cpc {
    /// An empty sketch of `lg_k` (checked when the definition is validated: 4..=26).
    pub fn new(lg_k: usize) -> Result<Self, String> {
        let lg_k = u8::try_from(lg_k).map_err(|_| format!("lg_k {lg_k} is out of range"))?;
        CpcSketch::new(lg_k)
            .map(Cpc)
            .map_err(|e| format!("CPC sketch of lg_k {lg_k}: {e}"))
    }

    /// Adds one input as Java's `CpcSketch.update` does for its type.
    pub fn update(&mut self, v: &Value) {
        match v {
            Value::String(s) if !s.is_empty() => self.0.update(raw_bytes::from_str(s)),
            Value::Binary(b) if !b.is_empty() => self.0.update(raw_bytes::from_slice(b)),
            Value::Byte(x) => self.0.update(i64::from(*x)),
            Value::Short(x) => self.0.update(i64::from(*x)),
            Value::Int(x) => self.0.update(i64::from(*x)),
            Value::Long(x) => self.0.update(*x),
            Value::Float(x) => self.0.update(canonical_float::from_f64(f64::from(*x))),
            Value::Double(x) => self.0.update(canonical_float::from_f64(*x)),
            _ => {}
        }
    }

    /// The union of both sketches (Chronon's `merge`).
    pub fn merge(&mut self, other: &Cpc) {
        let mut union = match CpcUnion::new(self.0.lg_k()) {
            Ok(u) => u,
            Err(_) => return,
        };
        if union.update(&self.0).is_ok() && union.update(&other.0).is_ok() {
            self.0 = union.to_sketch();
        }
    }

    /// The estimate after a union (ICON), truncated to a long.
    pub fn estimate(&self) -> i64 {
        let mut union = match CpcUnion::new(self.0.lg_k()) {
            Ok(u) => u,
            Err(_) => return self.0.estimate() as i64,
        };
        match union.update(&self.0) {
            Ok(()) => union.to_sketch().estimate() as i64,
            Err(_) => self.0.estimate() as i64,
        }
    }

    /// The serialized sketch (DataSketches' compact CPC format).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.serialize()
    }

    /// A sketch back from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        CpcSketch::deserialize(bytes)
            .map(Cpc)
            .map_err(|e| format!("stored CPC sketch: {e}"))
    }
}

/// A KLL floats sketch (APPROX_PERCENTILE's IR).
pub type Kll = KllSketch<KllFloat<f32>>;

/// An empty KLL sketch of size `k` (checked when the definition is validated: 8..=65535).
pub fn kll_new(k: usize) -> Result<Kll, String> {
    let k16 = u16::try_from(k).map_err(|_| format!("KLL k {k} is out of range"))?;
    Kll::new(k16).map_err(|e| format!("KLL sketch of k {k}: {e}"))
}

/// Adds one numeric input as a float (NaN and non-numbers skipped, as Java's KLL skips NaN).
pub fn kll_update(sketch: &mut Kll, v: &Value) {
    let x = match v {
        Value::Byte(x) => f32::from(*x),
        Value::Short(x) => f32::from(*x),
        Value::Int(x) => *x as f32,
        Value::Long(x) => *x as f32,
        Value::Float(x) => *x,
        Value::Double(x) => *x as f32,
        _ => return,
    };
    if let Ok(x) = KllFloat::<f32>::new(x) {
        sketch.update(x);
    }
}

/// One float per percentile (null for an empty sketch).
pub fn kll_percentiles(sketch: &Kll, percentiles: &[f64]) -> Value {
    let mut out = Vec::with_capacity(percentiles.len());
    for p in percentiles {
        // sketches-core 0.13.4's getQuantile answers 0 and 1 with the exact min and max, which
        // the sketch keeps even after compacting them away.
        let exact = match *p {
            0.0 => sketch.min_item(),
            1.0 => sketch.max_item(),
            _ => None,
        };
        if let Some(x) = exact {
            out.push(Value::Float(x.into_inner()));
            continue;
        }
        match sketch.quantile(*p, SearchCriteria::Exclusive) {
            Ok(Some(q)) => out.push(Value::Float(q.into_inner())),
            _ => return Value::Null,
        }
    }
    Value::List(out)
}
