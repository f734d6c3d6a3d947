//! Debezium change events in JSON: the most common CDC format, mapped to Chronon mutations.
//!
//! A message is Debezium's envelope, either bare (`{"before": .., "after": .., "op": "u",
//! "ts_ms": ..}`) or wrapped by Kafka Connect's JSON converter with schemas enabled
//! (`{"schema": .., "payload": {..}}`). `op` maps as Chronon expects mutations (`Api.scala`):
//!
//! | `op` | meaning | mutation |
//! | --- | --- | --- |
//! | `c` (create), `r` (snapshot read) | INSERT | only `after` |
//! | `u` | UPDATE | `before` and `after` (only `after` when the table does not log before-images) |
//! | `d` | DELETE | only `before` (it must be present: it carries the key) |
//! | `t` (truncate), `m` (message), tombstone (empty / `null`) | no row | skipped (`None`) |
//!
//! The mutation time is the envelope's `ts_ms` (else `source.ts_ms`). It is stored in a
//! `mutation_ts` column (Chronon's `Constants.MutationTimeColumn`) that the decoder appends to
//! the table schema when the schema does not already have it, as Chronon's quickstart CDC
//! decoder appends its mutation columns.

use std::sync::Arc;

use serde_json::Value as Json;

use super::decoder::{self, object_to_row, DataModel, DecodeError, StreamDecoder};
use super::json::parse_message;
use super::mutation::Mutation;
use super::schema::{DataType, StructField, StructType};
use super::value::{Row, Value};

/// Chronon's `Constants.MutationTimeColumn`.
pub const MUTATION_TS_COLUMN: &str = "mutation_ts";

/// Decodes Debezium JSON change events for one table.
#[derive(Debug, Clone)]
pub struct DebeziumDecoder {
    table: StructType,
    schema: Arc<StructType>,
    mutation_ts_index: usize,
}

impl DebeziumDecoder {
    /// A decoder for a table with columns `table` (the `before`/`after` row layout). The output
    /// schema is `table` plus `mutation_ts: long` unless `table` already has that column (then it
    /// must be a `long` and is filled from `ts_ms` when a row leaves it null).
    pub fn new(table: StructType) -> Result<Self, super::schema::SchemaError> {
        let mut schema = table.clone();
        let mutation_ts_index = match schema.index_of(MUTATION_TS_COLUMN) {
            Some(i) if schema.fields[i].data_type == DataType::Long => i,
            Some(_) => {
                return Err(super::schema::SchemaError::new(
                    format!("$.{MUTATION_TS_COLUMN}"),
                    "the mutation time column must be a long",
                ))
            }
            None => {
                schema
                    .fields
                    .push(StructField::new(MUTATION_TS_COLUMN, DataType::Long));
                schema.fields.len() - 1
            }
        };
        Ok(DebeziumDecoder {
            table,
            schema: Arc::new(schema),
            mutation_ts_index,
        })
    }

    fn image(
        &self,
        payload: &serde_json::Map<String, Json>,
        name: &str,
        ts: i64,
        bytes: &[u8],
    ) -> Result<Option<Row>, DecodeError> {
        match payload.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Object(obj)) => {
                let mut row = object_to_row(&self.table, obj).map_err(|e| e.within(name))?;
                if row.len() < self.schema.fields.len() {
                    row.push(Value::Null);
                }
                if let Some(slot) = row.get_mut(self.mutation_ts_index) {
                    if *slot == Value::Null {
                        *slot = Value::Long(ts);
                    }
                }
                Ok(Some(row))
            }
            Some(_) => Err(DecodeError::message(
                bytes,
                format!("\"{name}\" must be an object or null"),
            )),
        }
    }
}

impl StreamDecoder for DebeziumDecoder {
    fn decode(&self, bytes: &[u8]) -> Result<Option<Mutation>, DecodeError> {
        let Some(json) = parse_message(bytes)? else {
            return Ok(None); // tombstone
        };
        let envelope = match json {
            Json::Null => return Ok(None),
            Json::Object(obj) => obj,
            _ => {
                return Err(DecodeError::message(
                    bytes,
                    "expected a Debezium change event object",
                ))
            }
        };
        let payload = match envelope.get("payload") {
            Some(Json::Null) => return Ok(None),
            Some(Json::Object(p))
                if envelope.contains_key("schema") || !envelope.contains_key("op") =>
            {
                p
            }
            _ => &envelope,
        };
        let op = match payload.get("op") {
            Some(Json::String(op)) => op.as_str(),
            Some(other) => {
                return Err(DecodeError {
                    field: Some("op".into()),
                    expected: Some("string c/r/u/d".into()),
                    text: other.to_string(),
                    reason: "not an operation".into(),
                })
            }
            None => {
                return Err(DecodeError::message(
                    bytes,
                    "no \"op\" field: not a Debezium change event",
                ))
            }
        };
        if matches!(op, "t" | "m") {
            return Ok(None);
        }
        let ts = match payload
            .get("ts_ms")
            .or_else(|| payload.get("source").and_then(|s| s.get("ts_ms")))
        {
            Some(Json::Number(n)) => n.as_i64().ok_or_else(|| DecodeError {
                field: Some("ts_ms".into()),
                expected: Some("long".into()),
                text: n.to_string(),
                reason: "not a 64-bit integer".into(),
            })?,
            Some(other) => {
                return Err(DecodeError {
                    field: Some("ts_ms".into()),
                    expected: Some("long".into()),
                    text: other.to_string(),
                    reason: "not a number".into(),
                })
            }
            None => {
                return Err(DecodeError::message(
                    bytes,
                    "no \"ts_ms\" (nor source.ts_ms): the mutation time is unknown",
                ))
            }
        };
        let before = self.image(payload, "before", ts, bytes)?;
        let after = self.image(payload, "after", ts, bytes)?;
        match (op, before, after) {
            ("c" | "r", _, Some(after)) => decoder::build(&self.schema, None, Some(after)),
            ("u", before, Some(after)) => decoder::build(&self.schema, before, Some(after)),
            ("d", Some(before), _) => decoder::build(&self.schema, Some(before), None),
            ("c" | "r" | "u", _, None) => Err(DecodeError::message(
                bytes,
                format!("op \"{op}\" without an \"after\" image"),
            )),
            ("d", None, _) => Err(DecodeError::message(
                bytes,
                "op \"d\" without a \"before\" image (enable full before-images)",
            )),
            _ => Err(DecodeError {
                field: Some("op".into()),
                expected: Some("one of c, r, u, d, t, m".into()),
                text: op.to_string(),
                reason: "unknown operation".into(),
            }),
        }
    }

    fn schema(&self) -> &StructType {
        &self.schema
    }

    fn data_model(&self) -> DataModel {
        DataModel::Entities
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::mutation::MutationKind;

    fn decoder() -> DebeziumDecoder {
        DebeziumDecoder::new(StructType::new(
            "accounts",
            vec![
                StructField::new("id", DataType::Long),
                StructField::new("balance", DataType::Double),
            ],
        ))
        .unwrap()
    }

    #[test]
    fn maps_ops_to_mutations() {
        let d = decoder();
        assert_eq!(d.schema().fields.len(), 3);
        let m = d
            .decode(br#"{"op": "c", "before": null, "after": {"id": 1, "balance": 5.0}, "ts_ms": 1000}"#)
            .unwrap()
            .unwrap();
        assert_eq!(m.kind(), MutationKind::Insert);
        assert_eq!(m.after().unwrap()[2], Value::Long(1000));
        let m = d
            .decode(br#"{"schema": {}, "payload": {"op": "u", "before": {"id": 1, "balance": 5.0}, "after": {"id": 1, "balance": 7.5}, "ts_ms": 2000}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(m.kind(), MutationKind::Update);
        let m = d
            .decode(br#"{"op": "d", "before": {"id": 1, "balance": 7.5}, "after": null, "source": {"ts_ms": 3000}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(m.kind(), MutationKind::Delete);
        assert_eq!(m.before().unwrap()[2], Value::Long(3000));
        assert!(d.decode(b"").unwrap().is_none());
        assert!(d.decode(b"null").unwrap().is_none());
        assert!(d.decode(br#"{"op": "t", "ts_ms": 1}"#).unwrap().is_none());
    }

    #[test]
    fn bad_events_say_why() {
        let d = decoder();
        assert!(d
            .decode(br#"{"op": "d", "before": null, "ts_ms": 1}"#)
            .is_err());
        assert!(d
            .decode(br#"{"op": "c", "after": {"id": 1}}"#)
            .unwrap_err()
            .reason
            .contains("ts_ms"));
        let e = d
            .decode(br#"{"op": "c", "after": {"id": "x"}, "ts_ms": 1}"#)
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("after.id"));
        assert_eq!(
            d.decode(br#"{"op": "x", "after": {"id": 1}, "ts_ms": 1}"#)
                .unwrap_err()
                .field
                .as_deref(),
            Some("op")
        );
    }
}
