//! JSON events (one object per message) with an explicit schema.
//!
//! Columns are read by name; a missing column is null and unknown keys are ignored, so a
//! producer can add fields before the schema learns them. Accepted forms per type: numbers or
//! numeric strings for numeric types (integers must be whole and in range), `true`/`false`,
//! strings (numbers and booleans are taken as their text), base64 strings for binary,
//! `YYYY-MM-DD` or a day number for dates, epoch milliseconds or ISO-8601 for timestamps, arrays
//! for lists, objects (keys parsed as the key type) or `[[key, value], ...]` for maps, and objects
//! by field name or arrays in field order for structs.

use std::sync::Arc;

use serde_json::Value as Json;

use super::decoder::{self, object_to_row, DecodeError, StreamDecoder};
use super::mutation::Mutation;
use super::schema::StructType;
use super::value::{Row, Value};

/// Decodes one JSON object per message into an event.
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    schema: Arc<StructType>,
}

impl JsonDecoder {
    /// A decoder for objects with `schema`'s columns.
    pub fn new(schema: StructType) -> Self {
        JsonDecoder {
            schema: Arc::new(schema),
        }
    }
}

/// Parses a message as JSON, `Ok(None)` when it is blank.
pub(crate) fn parse_message(bytes: &[u8]) -> Result<Option<Json>, DecodeError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| DecodeError::message(bytes, format!("not JSON: {e}")))
}

impl StreamDecoder for JsonDecoder {
    fn decode(&self, bytes: &[u8]) -> Result<Option<Mutation>, DecodeError> {
        let Some(json) = parse_message(bytes)? else {
            return Ok(None);
        };
        let obj = json
            .as_object()
            .ok_or_else(|| DecodeError::message(bytes, "expected a JSON object"))?;
        let row = object_to_row(&self.schema, obj)?;
        decoder::build(&self.schema, None, Some(row))
    }

    fn schema(&self) -> &StructType {
        &self.schema
    }
}

/// Renders a row as the JSON object [`JsonDecoder`] reads back (tests and tools).
pub fn format_row(schema: &StructType, row: &Row) -> String {
    Value::row_to_json(schema, row).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::schema::{DataType, StructField};

    #[test]
    fn decodes_by_name_and_names_bad_fields() {
        let schema = StructType::new(
            "ev",
            vec![
                StructField::new("id", DataType::String),
                StructField::new("n", DataType::Int),
                StructField::new("tags", DataType::list(DataType::String)),
            ],
        );
        let d = JsonDecoder::new(schema);
        let m = d
            .decode(br#"{"id": 7, "n": "12", "extra": true}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            m.after().unwrap(),
            &vec![Value::String("7".into()), Value::Int(12), Value::Null]
        );
        let e = d.decode(br#"{"id": "a", "n": 3000000000}"#).unwrap_err();
        assert_eq!(
            (e.field.as_deref(), e.expected.as_deref()),
            (Some("n"), Some("int"))
        );
        let e = d.decode(br#"{"tags": ["a", null]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("tags[1]"));
        assert!(d.decode(b"[1]").is_err());
        assert!(d.decode(b"  ").unwrap().is_none());
    }
}
