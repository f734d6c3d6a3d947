//! A group-by's aggregations laid out as Chronon's `SawtoothOnlineAggregator` lays them out: one
//! collapsed IR per feature (aggregation × window), tail hops per hop size holding one IR per
//! aggregation, the batch IR as of the batch end `B`, and the lambda merge at query time `q`.
//!
//! Batch IR (SERVING.md, "The batch IR at batch end `B`"): a row with `t < B` goes, for each windowed feature with
//! tail `T = B - w` and `T <= t`, into the collapsed IR when `t >= T + tail_buffer`, else into
//! the tail hop `round_down(t, tail_hop(w))` of that hop size (each hop updated once per row even
//! when several windows share a hop size); unbounded features take every row. One deliberate
//! difference from Chronon's `update`, which keeps only `t > T`: a row exactly at `T` is kept, so
//! the served value matches the window rule (`round_down(q - w, hop) <= t < q`) for every
//! `q` in `[B, B + tail_buffer)` when `B` and the windows align to their hops. Chronon drops that
//! row and then counts it out for `q` in `[B, B + hop)` only.
//!
//! Lambda (Chronon's `lambdaAggregateIr`): start from the collapsed IRs, add each streaming row
//! with `B <= t < q` (mutations: `B <= mutation_ts`, `t < q`, `mutation_ts < q`; before-images
//! reversed) whose `t` is inside the feature's window at `q`, merge the tail hops with
//! `round_down(q - w, hop) <= start < (B - w) + tail_buffer`, then finalize.

use std::collections::BTreeMap;

use super::part::{PartAggregator, PartIr};
use super::ColumnAggregator;
use crate::groupby::{input_shape, GroupBy, Window, TAIL_BUFFER_MILLIS};
use crate::jvm::{FinalBatchIr, HOP_SIZES};
use crate::stream::{DataType, Value};

/// One served feature: which aggregation part (aggregation × bucket column), which window,
/// which hop size.
#[derive(Debug, Clone)]
struct Feature {
    name: String,
    agg: usize,
    window: Option<Window>,
    hop_index: Option<usize>,
}

/// The IR state of one key as of the batch end: collapsed IR per feature, and per hop size the
/// hops by start time with one IR per aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchState {
    /// One IR per feature.
    pub collapsed: Vec<PartIr>,
    /// Per hop size: hop start → one IR per aggregation part.
    pub hops: Vec<BTreeMap<i64, Vec<PartIr>>>,
}

/// A streaming row as the fetcher reads it from `<NAME>_STREAMING`.
#[derive(Debug, Clone)]
pub struct StreamingRow {
    /// The row's event time (`ts`).
    pub ts: i64,
    /// The mutation time (the put timestamp); equals `ts` for events.
    pub mutation_ts: i64,
    /// A before-image, reversed out of the IR.
    pub is_before: bool,
    /// The value columns ([`GroupBy::value_columns`] order).
    pub values: Vec<Value>,
}

/// A group-by's aggregations, ready to build batch IRs and serve features.
#[derive(Debug, Clone)]
pub struct GroupByAggregator {
    /// One per aggregation and bucket column (Chronon's `AggregationPart`s without windows).
    aggs: Vec<PartAggregator>,
    features: Vec<Feature>,
    hop_sizes: Vec<i64>,
    tail_buffer: i64,
}

impl GroupByAggregator {
    /// The aggregator of a validated group-by.
    pub fn new(gb: &GroupBy) -> Result<Self, crate::groupby::DefinitionError> {
        let err = |r: String| crate::groupby::DefinitionError::new(gb.name.clone(), r);
        let value_columns = gb.value_columns();
        let column = |c: &str| value_columns.iter().position(|v| v == c);
        let mut aggs = Vec::new();
        let mut features = Vec::new();
        let mut windowed = Vec::new();
        for a in &gb.aggregations {
            let t = gb.schema.type_of(&a.input_column).ok_or_else(|| {
                err(format!(
                    "input column {:?} is not in the schema",
                    a.input_column
                ))
            })?;
            let input = column(&a.input_column).ok_or_else(|| {
                err(format!(
                    "input column {:?} is not a value column",
                    a.input_column
                ))
            })?;
            let (shape, element) = input_shape(a, t).map_err(&err)?;
            for b in a.bucket_list() {
                let bucket = match b {
                    Some(b) => Some(column(b).ok_or_else(|| {
                        err(format!("bucket column {b:?} is not a value column"))
                    })?),
                    None => None,
                };
                let part = aggs.len();
                aggs.push(PartAggregator::new(
                    ColumnAggregator::new(a.operation, a.k, element.clone())
                        .with_percentiles(&a.percentiles),
                    input,
                    bucket,
                    shape,
                ));
                for w in a.window_list() {
                    features.push((a.output_name(w, b), part, w));
                    windowed.extend(w);
                }
            }
        }
        let mut hop_sizes: Vec<i64> = windowed.iter().map(|w| w.tail_hop_millis()).collect();
        hop_sizes.sort_unstable_by(|a, b| b.cmp(a));
        hop_sizes.dedup();
        let features: Vec<Feature> = features
            .into_iter()
            .map(|(name, agg, window)| Feature {
                name,
                agg,
                window,
                hop_index: window
                    .and_then(|w| hop_sizes.iter().position(|h| *h == w.tail_hop_millis())),
            })
            .collect();
        Ok(GroupByAggregator {
            aggs,
            features,
            hop_sizes,
            tail_buffer: TAIL_BUFFER_MILLIS,
        })
    }

    /// The feature names, in the order [`GroupByAggregator::lambda`] returns values.
    pub fn feature_names(&self) -> Vec<&str> {
        self.features.iter().map(|f| f.name.as_str()).collect()
    }

    /// Each feature's name and finalized type, in the order [`GroupByAggregator::lambda`]
    /// returns values (what a join's value schema is made of).
    pub fn feature_types(&self) -> Vec<(&str, DataType)> {
        self.features
            .iter()
            .map(|f| (f.name.as_str(), self.aggs[f.agg].output_type()))
            .collect()
    }

    /// An empty batch state.
    pub fn empty_state(&self) -> BatchState {
        BatchState {
            collapsed: self
                .features
                .iter()
                .map(|f| self.aggs[f.agg].init())
                .collect(),
            hops: vec![BTreeMap::new(); self.hop_sizes.len()],
        }
    }

    /// Adds one source row (event time `ts`, value columns `values`) to a key's batch state as
    /// of `batch_end`. Rows at or after `batch_end` are ignored (the stream serves them).
    pub fn update_batch(&self, state: &mut BatchState, batch_end: i64, ts: i64, values: &[Value]) {
        if ts >= batch_end {
            return;
        }
        let mut hop_updated = vec![false; self.hop_sizes.len()];
        for (i, f) in self.features.iter().enumerate() {
            let agg = &self.aggs[f.agg];
            match (f.window, f.hop_index) {
                (Some(w), Some(h)) => {
                    let tail = batch_end - w.millis();
                    if ts < tail {
                        continue;
                    }
                    if ts >= tail + self.tail_buffer {
                        agg.update(&mut state.collapsed[i], ts, values);
                    } else if !hop_updated[h] {
                        hop_updated[h] = true;
                        let start = crate::groupby::round_down(ts, self.hop_sizes[h]);
                        let hop = state.hops[h]
                            .entry(start)
                            .or_insert_with(|| self.aggs.iter().map(|a| a.init()).collect());
                        for (a, ir) in self.aggs.iter().zip(hop.iter_mut()) {
                            a.update(ir, ts, values);
                        }
                    }
                }
                _ => agg.update(&mut state.collapsed[i], ts, values),
            }
        }
    }

    /// Index into [`HOP_SIZES`] of each of this group-by's hop sizes.
    fn jvm_hop_index(&self, h: usize) -> Result<usize, String> {
        HOP_SIZES
            .iter()
            .position(|s| *s == self.hop_sizes[h])
            .ok_or_else(|| {
                format!(
                    "tail hop of {} ms is none of the JVM's (1 day, 1 hour, 5 minutes)",
                    self.hop_sizes[h]
                )
            })
    }

    /// A batch state as the JVM's TEMPORAL batch value (`FinalBatchIr`): the collapsed IRs, then
    /// all three hop lists (those of hop sizes no window uses stay empty), each hop's IRs
    /// followed by its start `ts`, sorted by it.
    pub fn to_final_ir(&self, state: &BatchState) -> Result<FinalBatchIr, String> {
        let mut collapsed = Vec::with_capacity(self.features.len());
        for (i, f) in self.features.iter().enumerate() {
            collapsed.push(self.aggs[f.agg].ir_to_value(&state.collapsed[i])?);
        }
        let mut tail_hops: [Vec<Vec<Value>>; 3] = Default::default();
        for (h, hops) in state.hops.iter().enumerate() {
            let slot = &mut tail_hops[self.jvm_hop_index(h)?];
            for (start, irs) in hops {
                let mut fields = Vec::with_capacity(irs.len() + 1);
                for (a, ir) in self.aggs.iter().zip(irs) {
                    fields.push(a.ir_to_value(ir)?);
                }
                fields.push(Value::Long(*start));
                slot.push(fields);
            }
        }
        Ok(FinalBatchIr {
            collapsed,
            tail_hops,
        })
    }

    /// The batch state of a JVM TEMPORAL batch value; hop lists of sizes no window uses are
    /// not read (the JVM's fetcher does not read them either).
    pub fn from_final_ir(&self, ir: &FinalBatchIr) -> Result<BatchState, String> {
        if ir.collapsed.len() != self.features.len() {
            return Err(format!(
                "collapsedIr has {} IRs for {} features",
                ir.collapsed.len(),
                self.features.len()
            ));
        }
        let mut state = BatchState {
            collapsed: self
                .features
                .iter()
                .zip(&ir.collapsed)
                .map(|(f, v)| self.aggs[f.agg].ir_from_value(v))
                .collect::<Result<_, _>>()?,
            hops: vec![BTreeMap::new(); self.hop_sizes.len()],
        };
        for h in 0..self.hop_sizes.len() {
            for hop in &ir.tail_hops[self.jvm_hop_index(h)?] {
                let Some(start) = FinalBatchIr::hop_ts(hop) else {
                    return Err("a tail hop has no ts".into());
                };
                let irs = self
                    .aggs
                    .iter()
                    .enumerate()
                    .map(|(ai, a)| a.ir_from_value(hop.get(ai).unwrap_or(&Value::Null)))
                    .collect::<Result<Vec<_>, _>>()?;
                state.hops[h].insert(start, irs);
            }
        }
        Ok(state)
    }

    /// The features at query time `q` from the batch state (`None`: no batch value) and the
    /// streaming rows, finalized in [`GroupByAggregator::feature_names`] order. `q < batch_end`
    /// is an error, as in Chronon.
    pub fn lambda<'a>(
        &self,
        batch: Option<&BatchState>,
        batch_end: i64,
        rows: impl IntoIterator<Item = &'a StreamingRow>,
        q: i64,
        has_reversal: bool,
    ) -> Result<Vec<Value>, String> {
        let empty;
        let batch = match batch {
            Some(b) => b,
            None => {
                empty = self.empty_state();
                &empty
            }
        };
        let collapsed = batch.collapsed.clone();
        self.merge_at(collapsed, &batch.hops, batch_end, rows, q, has_reversal)
    }

    /// [`GroupByAggregator::lambda`] of a batch state the caller no longer needs: its collapsed
    /// IRs are merged into in place instead of copied (the fetcher decodes a state per lookup).
    pub fn lambda_owned<'a>(
        &self,
        batch: Option<BatchState>,
        batch_end: i64,
        rows: impl IntoIterator<Item = &'a StreamingRow>,
        q: i64,
        has_reversal: bool,
    ) -> Result<Vec<Value>, String> {
        let batch = batch.unwrap_or_else(|| self.empty_state());
        self.merge_at(
            batch.collapsed,
            &batch.hops,
            batch_end,
            rows,
            q,
            has_reversal,
        )
    }

    /// The lambda merge into `ir` (the collapsed IRs, consumed) with the tail hops `hops`.
    fn merge_at<'a>(
        &self,
        mut ir: Vec<PartIr>,
        hops: &[BTreeMap<i64, Vec<PartIr>>],
        batch_end: i64,
        rows: impl IntoIterator<Item = &'a StreamingRow>,
        q: i64,
        has_reversal: bool,
    ) -> Result<Vec<Value>, String> {
        if q < batch_end {
            return Err(format!(
                "request time {q} is before the batch end time {batch_end}"
            ));
        }
        let starts: Vec<Option<i64>> = self
            .features
            .iter()
            .map(|f| {
                f.window
                    .zip(f.hop_index)
                    .map(|(w, h)| crate::groupby::round_down(q - w.millis(), self.hop_sizes[h]))
            })
            .collect();
        for row in rows {
            let select = if has_reversal {
                q > row.ts && q > row.mutation_ts && row.mutation_ts >= batch_end
            } else {
                q > row.ts && row.ts >= batch_end
            };
            if !select {
                continue;
            }
            for (i, f) in self.features.iter().enumerate() {
                if starts[i].is_none_or(|s| row.ts >= s) {
                    let agg = &self.aggs[f.agg];
                    if has_reversal && row.is_before {
                        agg.delete(&mut ir[i], row.ts, &row.values);
                    } else {
                        agg.update(&mut ir[i], row.ts, &row.values);
                    }
                }
            }
        }
        for (i, f) in self.features.iter().enumerate() {
            if let (Some(w), Some(h), Some(query_tail)) = (f.window, f.hop_index, starts[i]) {
                let limit = batch_end - w.millis() + self.tail_buffer;
                for (_, irs) in hops[h].range(query_tail..limit.max(query_tail)) {
                    self.aggs[f.agg].merge(&mut ir[i], &irs[f.agg]);
                }
            }
        }
        Ok(self
            .features
            .iter()
            .zip(&ir)
            .map(|(f, ir)| self.aggs[f.agg].finalize(ir))
            .collect())
    }
}
