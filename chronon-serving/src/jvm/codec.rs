//! Encoders and decoders of the JVM's stored values: key bytes, batch values (selected row,
//! finalized outputs or `{collapsedIr, tailHopIrs}`) and streaming values, all Avro binary
//! through this crate's [`RowCodec`] on the schemas of [`JvmLayout`].

use crate::stream::{RowCodec, Value};

use super::layout::{BatchValue, JvmLayout, HOP_SIZES};
use super::JvmError;

/// A TEMPORAL GroupBy's batch value (`SawtoothMutationAggregator.scala`, `FinalBatchIr`).
#[derive(Debug, Clone, PartialEq)]
pub struct FinalBatchIr {
    /// One IR per output column (null where no row landed in the collapsed part of its window).
    pub collapsed: Vec<Value>,
    /// One hop list per hop size of [`HOP_SIZES`] (1 day, 1 hour, 5 minutes); each hop holds one
    /// IR per aggregation and ends with the hop's start `ts` (a `Value::Long`). The JVM writes
    /// each list sorted by that `ts` (`HopsAggregatorBase.toTimeSortedArray`).
    pub tail_hops: [Vec<Vec<Value>>; 3],
}

impl FinalBatchIr {
    /// The hop start of a hop row (its last field).
    pub fn hop_ts(hop: &[Value]) -> Option<i64> {
        match hop.last() {
            Some(Value::Long(ts)) => Some(*ts),
            _ => None,
        }
    }
}

/// A decoded batch value, by the GroupBy's shape.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchRecord {
    /// The selected row (no aggregations).
    Selected(Vec<Value>),
    /// The finalized outputs (SNAPSHOT).
    Finalized(Vec<Value>),
    /// The IRs (TEMPORAL).
    Ir(FinalBatchIr),
}

/// The codecs of one GroupBy's stored values.
#[derive(Debug, Clone)]
pub struct JvmCodecs {
    layout: JvmLayout,
    key: RowCodec,
    batch: RowCodec,
    streaming: RowCodec,
}

fn corrupt(what: &str, reason: impl Into<String>) -> JvmError {
    JvmError::Corrupt {
        what: what.to_string(),
        reason: reason.into(),
    }
}

impl JvmCodecs {
    /// Codecs for `layout`'s schemas.
    pub fn new(layout: JvmLayout) -> Result<Self, JvmError> {
        Ok(JvmCodecs {
            key: RowCodec::new(&layout.key)?,
            batch: RowCodec::new(layout.batch_value_schema())?,
            streaming: RowCodec::new(layout.streaming_value_schema())?,
            layout,
        })
    }

    /// The layout.
    pub fn layout(&self) -> &JvmLayout {
        &self.layout
    }

    /// The key codec (`Key` record; identical for the batch and streaming datasets).
    pub fn key_codec(&self) -> &RowCodec {
        &self.key
    }

    /// The batch value codec.
    pub fn batch_codec(&self) -> &RowCodec {
        &self.batch
    }

    /// The streaming value codec.
    pub fn streaming_codec(&self) -> &RowCodec {
        &self.streaming
    }

    /// Key bytes of the key column values, in key order.
    pub fn encode_key(&self, key: &[Value]) -> Result<Vec<u8>, JvmError> {
        Ok(self.key.encode(key)?)
    }

    /// Key values of key bytes.
    pub fn decode_key(&self, bytes: &[u8]) -> Result<Vec<Value>, JvmError> {
        Ok(self.key.decode(bytes)?)
    }

    /// A streaming value: the input columns (then `ts`, `is_before` for mutations).
    pub fn encode_streaming(&self, row: &[Value]) -> Result<Vec<u8>, JvmError> {
        Ok(self.streaming.encode(row)?)
    }

    /// The fields of a streaming value.
    pub fn decode_streaming(&self, bytes: &[u8]) -> Result<Vec<Value>, JvmError> {
        Ok(self.streaming.decode(bytes)?)
    }

    /// A batch value of the GroupBy's shape; a record of another shape is an error.
    pub fn encode_batch(&self, record: &BatchRecord) -> Result<Vec<u8>, JvmError> {
        match (record, self.layout.batch_value) {
            (BatchRecord::Selected(row), BatchValue::Selected)
            | (BatchRecord::Finalized(row), BatchValue::Finalized) => Ok(self.batch.encode(row)?),
            (BatchRecord::Ir(ir), BatchValue::Ir) => self.encode_ir(ir),
            (_, expected) => Err(corrupt(
                "batch value",
                format!(
                    "{} stores {expected:?} batch values, not this record",
                    self.layout.name
                ),
            )),
        }
    }

    /// Decodes a batch value.
    pub fn decode_batch(&self, bytes: &[u8]) -> Result<BatchRecord, JvmError> {
        let row = self.batch.decode(bytes)?;
        Ok(match self.layout.batch_value {
            BatchValue::Selected => BatchRecord::Selected(row),
            BatchValue::Finalized => BatchRecord::Finalized(row),
            BatchValue::Ir => BatchRecord::Ir(self.ir_from_row(row)?),
        })
    }

    fn encode_ir(&self, ir: &FinalBatchIr) -> Result<Vec<u8>, JvmError> {
        let parts = self.layout.parts.len();
        if ir.collapsed.len() != parts {
            return Err(corrupt(
                "collapsedIr",
                format!("{} IRs for {parts} output columns", ir.collapsed.len()),
            ));
        }
        let width = self.layout.base.len() + 1;
        let mut lists = Vec::with_capacity(HOP_SIZES.len());
        for hops in &ir.tail_hops {
            let mut list = Vec::with_capacity(hops.len());
            for hop in hops {
                if hop.len() != width || FinalBatchIr::hop_ts(hop).is_none() {
                    return Err(corrupt(
                        "tailHopIrs",
                        format!("a hop needs {width} fields ending with its long ts"),
                    ));
                }
                list.push(Value::Struct(hop.clone()));
            }
            lists.push(Value::List(list));
        }
        let row = [Value::Struct(ir.collapsed.clone()), Value::List(lists)];
        Ok(self.batch.encode(&row)?)
    }

    fn ir_from_row(&self, row: Vec<Value>) -> Result<FinalBatchIr, JvmError> {
        let mut fields = row.into_iter();
        let collapsed = match fields.next() {
            Some(Value::Struct(c)) => c,
            // The JVM always writes a record; a null reads as nothing collapsed.
            Some(Value::Null) => vec![Value::Null; self.layout.parts.len()],
            other => return Err(corrupt("collapsedIr", format!("not a record: {other:?}"))),
        };
        let mut tail_hops: [Vec<Vec<Value>>; 3] = Default::default();
        match fields.next() {
            Some(Value::List(lists)) => {
                if lists.len() != HOP_SIZES.len() {
                    return Err(corrupt(
                        "tailHopIrs",
                        format!(
                            "{} hop lists; the JVM writes one per hop size (1d, 1h, 5min)",
                            lists.len()
                        ),
                    ));
                }
                for (slot, list) in tail_hops.iter_mut().zip(lists) {
                    let Value::List(hops) = list else {
                        return Err(corrupt("tailHopIrs", "a hop list is not a list"));
                    };
                    for hop in hops {
                        let Value::Struct(hop) = hop else {
                            return Err(corrupt("tailHopIrs", "a hop is not a record"));
                        };
                        if FinalBatchIr::hop_ts(&hop).is_none() {
                            return Err(corrupt("tailHopIrs", "a hop has no ts"));
                        }
                        slot.push(hop);
                    }
                }
            }
            Some(Value::Null) => {}
            other => return Err(corrupt("tailHopIrs", format!("not a list: {other:?}"))),
        }
        Ok(FinalBatchIr {
            collapsed,
            tail_hops,
        })
    }
}
