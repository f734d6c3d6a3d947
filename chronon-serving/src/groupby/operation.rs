//! One aggregation of a GroupBy: the operation (Chronon's `Operation`), its input column,
//! windows and `k`, how its features are named, and which input types each operation takes.

use serde::{Deserialize, Serialize};

use crate::stream::DataType;
use crate::window::Window;

/// An aggregation operation (Chronon's `Operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Number of non-null inputs.
    Count,
    /// Sum (long for integer inputs, double otherwise).
    Sum,
    /// Mean of the inputs.
    Average,
    /// Smallest input (numbers or strings).
    Min,
    /// Largest input (numbers or strings).
    Max,
    /// The input with the earliest time.
    First,
    /// The input with the latest time.
    Last,
    /// The `k` inputs with the latest times, newest first.
    LastK,
    /// Population variance (Welford).
    Variance,
    /// Number of distinct inputs (exact).
    UniqueCount,
    /// Sample skewness from the first four moments (Chronon's `Skew`; NaN under 3 inputs).
    Skew,
    /// Excess kurtosis from the first four moments (Chronon's `Kurtosis`; NaN under 4 inputs).
    Kurtosis,
    /// The `k` inputs with the earliest times, oldest first.
    FirstK,
    /// The `k` largest inputs, largest first.
    TopK,
    /// The `k` smallest inputs, smallest first.
    BottomK,
    /// Count per distinct (string) input, a map.
    Histogram,
    /// Number of distinct inputs, counted up to `k` (Chronon's `BoundedUniqueCount`).
    BoundedUniqueCount,
    /// Estimated number of distinct inputs from a CPC sketch of `lg_k = k` (default 8;
    /// Chronon's `ApproxDistinctCount`).
    ApproxUniqueCount,
    /// Estimated percentiles (a list of floats) from a KLL floats sketch of size `k` (default
    /// 128; Chronon's `ApproxPercentiles`).
    ApproxPercentile,
}

impl Operation {
    /// Whether a value can be taken back out of the IR (Chronon's `isDeletable`), which mutation
    /// sources need for their before-images.
    pub fn is_reversible(self) -> bool {
        matches!(
            self,
            Operation::Count | Operation::Sum | Operation::Average | Operation::Variance
        )
    }

    /// Chronon's default `k` for the operations whose `k` is optional (`ColumnAggregator.construct`).
    pub fn default_k(self) -> Option<usize> {
        match self {
            Operation::BoundedUniqueCount | Operation::ApproxUniqueCount => Some(8),
            Operation::ApproxPercentile => Some(128),
            _ => None,
        }
    }

    /// Whether the operation takes `k` (Chronon's `argMap` `k`).
    pub fn takes_k(self) -> bool {
        matches!(
            self,
            Operation::LastK
                | Operation::FirstK
                | Operation::TopK
                | Operation::BottomK
                | Operation::BoundedUniqueCount
        )
    }

    /// The name in feature names (`last_k` with k = 5 prints `last5`).
    pub fn feature_part(self, k: Option<usize>) -> String {
        match self {
            Operation::Count => "count".into(),
            Operation::Sum => "sum".into(),
            Operation::Average => "average".into(),
            Operation::Min => "min".into(),
            Operation::Max => "max".into(),
            Operation::First => "first".into(),
            Operation::Last => "last".into(),
            Operation::LastK => format!("last{}", k.unwrap_or(0)),
            Operation::Variance => "variance".into(),
            Operation::UniqueCount => "unique_count".into(),
            Operation::Skew => "skew".into(),
            Operation::Kurtosis => "kurtosis".into(),
            Operation::FirstK => format!("first{}", k.unwrap_or(0)),
            Operation::TopK => format!("top{}", k.unwrap_or(0)),
            Operation::BottomK => format!("bottom{}", k.unwrap_or(0)),
            Operation::Histogram => "histogram".into(),
            Operation::BoundedUniqueCount => "bounded_unique_count".into(),
            Operation::ApproxUniqueCount => "approx_unique_count".into(),
            Operation::ApproxPercentile => "approx_percentile".into(),
        }
    }
}

/// One aggregation: an operation on an input column over zero or more windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregation {
    /// The input column.
    pub input_column: String,
    /// The operation.
    pub operation: Operation,
    /// The windows; empty means one unbounded window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
    /// `k` of `last_k`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// The feature name, when it is not `{input}_{op}{_window}`: a Chronon GroupBy without
    /// aggregations serves each selected column under its own name (see [`crate::conf`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Chronon's `buckets`: string columns that split the aggregation, one map-valued feature
    /// per bucket column and window, named `{input}_{op}{_window}_by_{bucket}`, mapping each
    /// bucket value to the operation's value over the rows with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<String>,
    /// Chronon's `elementWise`: the input is a list and the operation runs per position (the
    /// feature is a list of the per-position values). Without it a list input of a simple
    /// operation is flattened, as Chronon's `VectorDispatcher` does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub element_wise: bool,
    /// The percentiles of `approx_percentile` (Chronon's `argMap` `percentiles`; default
    /// `[0.5]`), each in `[0, 1]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percentiles: Vec<f64>,
}

impl Aggregation {
    /// An aggregation of `input_column` by `operation` over `windows` (e.g. `["1h", "7d"]`).
    pub fn new(input_column: &str, operation: Operation, windows: &[&str]) -> Result<Self, String> {
        Ok(Aggregation {
            input_column: input_column.into(),
            operation,
            windows: windows
                .iter()
                .map(|w| w.parse())
                .collect::<Result<_, _>>()?,
            k: None,
            name: None,
            buckets: Vec::new(),
            element_wise: false,
            percentiles: Vec::new(),
        })
    }

    /// The same aggregation with `k` (for `last_k`).
    pub fn with_k(mut self, k: usize) -> Self {
        self.k = Some(k);
        self
    }

    /// `None` for the unbounded window, else each window.
    pub fn window_list(&self) -> Vec<Option<Window>> {
        if self.windows.is_empty() {
            vec![None]
        } else {
            self.windows.iter().copied().map(Some).collect()
        }
    }

    /// The same aggregation served under `name` (one unbounded window only).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The same aggregation split by the bucket columns `buckets`.
    pub fn with_buckets(mut self, buckets: &[&str]) -> Self {
        self.buckets = buckets.iter().map(|b| b.to_string()).collect();
        self
    }

    /// The same aggregation run per list position (Chronon's `elementWise`).
    pub fn element_wise(mut self) -> Self {
        self.element_wise = true;
        self
    }

    /// `None` when unbucketed, else each bucket column (Chronon's `unpack` order: bucket, then
    /// window).
    pub fn bucket_list(&self) -> Vec<Option<&str>> {
        if self.buckets.is_empty() {
            vec![None]
        } else {
            self.buckets.iter().map(|b| Some(b.as_str())).collect()
        }
    }

    /// Whether the operation is one of Chronon's simple ones (`OperationOps.isSimple`): every
    /// one but FIRST, LAST, FIRST_K and LAST_K, which take their input whole with its time.
    pub fn is_simple(&self) -> bool {
        !matches!(
            self.operation,
            Operation::First | Operation::Last | Operation::FirstK | Operation::LastK
        )
    }

    /// The feature name of one window and bucket column: Chronon's `outputColumnName`,
    /// `{input}_{op}{_window}{_by_bucket}`.
    pub fn output_name(&self, window: Option<Window>, bucket: Option<&str>) -> String {
        match bucket {
            Some(b) => format!("{}_by_{b}", self.feature_name(window)),
            None => self.feature_name(window),
        }
    }

    /// The feature name for one window, unbucketed: `{input}_{op}{_window}`, or the explicit
    /// name.
    pub fn feature_name(&self, window: Option<Window>) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let base = format!(
            "{}_{}",
            self.input_column,
            self.operation.feature_part(self.k)
        );
        match window {
            Some(w) => format!("{base}_{}", w.suffix()),
            None => base,
        }
    }
}

fn is_numeric(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Byte
            | DataType::Short
            | DataType::Int
            | DataType::Long
            | DataType::Float
            | DataType::Double
    )
}

/// How an aggregation reads its input column (Chronon's `ColumnAggregator.construct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputShape {
    /// The value as it is.
    Whole,
    /// A list input of a simple operation: every element is one input (`VectorDispatcher`).
    Flattened,
    /// A list input with `elementWise`: one IR per position (`ElementWiseAggregator`).
    ElementWise,
}

/// How `a` reads a column of type `t`, and the type its operation sees (the element type for
/// list inputs); `Err` says what Chronon does not define or this crate does not serve.
pub fn input_shape(a: &Aggregation, t: &DataType) -> Result<(InputShape, DataType), String> {
    let element = match t {
        DataType::List(e) if e.is_scalar() && a.is_simple() => Some((**e).clone()),
        _ => None,
    };
    let (shape, input) = match (a.element_wise, element) {
        (true, _) if !a.buckets.is_empty() => {
            return Err("element-wise aggregation cannot be bucketed (Chronon refuses it too)".into())
        }
        (true, Some(e)) => (InputShape::ElementWise, e),
        (true, None) => {
            return Err(format!(
                "element-wise aggregation needs a list of scalars and a simple operation (not first, last, first_k, last_k), got {t}"
            ))
        }
        (false, Some(e)) => (InputShape::Flattened, e),
        (false, None) => {
            if a.is_simple() && matches!(t, DataType::Map(..)) {
                return Err(format!(
                    "map-valued inputs (Chronon's per-key MapColumnAggregator) are not served yet, got {t}"
                ));
            }
            (InputShape::Whole, t.clone())
        }
    };
    check_input_type(a.operation, &input)?;
    Ok((shape, input))
}

pub(crate) fn check_input_type(op: Operation, t: &DataType) -> Result<(), String> {
    match op {
        Operation::Sum
        | Operation::Average
        | Operation::Variance
        | Operation::Skew
        | Operation::Kurtosis
            if !is_numeric(t) =>
        {
            Err(format!("needs a numeric column, got {t}"))
        }
        Operation::Min | Operation::Max
            if !(is_numeric(t)
                || matches!(t, DataType::String | DataType::Date | DataType::Timestamp)) =>
        {
            Err(format!(
                "needs a numeric, string, date or timestamp column, got {t}"
            ))
        }
        Operation::TopK | Operation::BottomK
            if !(is_numeric(t) || matches!(t, DataType::String)) =>
        {
            Err(format!("needs a numeric or string column, got {t}"))
        }
        Operation::Histogram if !matches!(t, DataType::String) => Err(format!(
            "needs a string column (Chronon's Histogram), got {t}"
        )),
        Operation::UniqueCount | Operation::BoundedUniqueCount if !t.is_scalar() => {
            Err(format!("needs a scalar column, got {t}"))
        }
        Operation::ApproxUniqueCount
            if !(is_numeric(t) || matches!(t, DataType::String | DataType::Binary)) =>
        {
            Err(format!(
                "needs a numeric, string or binary column (Chronon's CpcFriendly inputs), got {t}"
            ))
        }
        Operation::ApproxPercentile if !is_numeric(t) => {
            Err(format!("needs a numeric column, got {t}"))
        }
        _ => Ok(()),
    }
}
