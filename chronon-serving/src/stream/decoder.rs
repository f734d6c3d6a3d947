//! The `StreamDecoder` trait (Chronon's `online.StreamDecoder`) and the typed conversions the
//! text decoders share.

use std::fmt;

use base64::Engine;
use serde_json::Value as Json;

use super::mutation::{Mutation, MutationError};
use super::schema::{DataType, StructType};
use super::value::{parse_date, parse_timestamp, truncate, Row, Value};

/// How much of the offending text an error quotes.
const QUOTE_CHARS: usize = 80;

/// Chronon's `DataModel`: whether a stream carries immutable events or changes to entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataModel {
    /// Immutable events (insert-only); stored rows are keyed by the event time column.
    Events,
    /// Row changes (CDC); stored rows carry `ts` and `is_before` and are keyed by mutation time.
    Entities,
}

/// Turns raw stream messages into [`Mutation`]s (Chronon's `StreamDecoder`).
///
/// `decode` returns `Ok(None)` for a message that carries no row (a heartbeat, a blank line, a
/// Debezium tombstone) and `Err` for one that cannot be read; it never panics, whatever the bytes.
pub trait StreamDecoder: Send + Sync {
    /// Decodes one message.
    fn decode(&self, bytes: &[u8]) -> Result<Option<Mutation>, DecodeError>;

    /// The schema of the rows this decoder produces.
    fn schema(&self) -> &StructType;

    /// Whether the stream holds events or entity changes (decides how the writer stores rows).
    fn data_model(&self) -> DataModel {
        DataModel::Events
    }
}

/// A message that could not be decoded: which field, what type was expected, and the text that
/// did not fit, so a log line is enough to fix the producer or the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The column (with a path inside it: `tags[2]`, `address.zip`); `None` when the message as
    /// a whole is malformed.
    pub field: Option<String>,
    /// The expected type (`long`, `list<string>`), when a field is involved.
    pub expected: Option<String>,
    /// The offending text (cut to 80 characters).
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.field, &self.expected) {
            (Some(field), Some(ty)) => write!(
                f,
                "field {field:?} (expected {ty}): got {:?}: {}",
                self.text, self.reason
            ),
            (Some(field), None) => {
                write!(f, "field {field:?}: got {:?}: {}", self.text, self.reason)
            }
            _ => write!(f, "message {:?}: {}", self.text, self.reason),
        }
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// The whole message is malformed.
    pub fn message(bytes: &[u8], reason: impl Into<String>) -> Self {
        DecodeError {
            field: None,
            expected: None,
            text: quote_bytes(bytes),
            reason: reason.into(),
        }
    }

    /// One field is wrong.
    pub fn field(
        field: impl Into<String>,
        expected: &DataType,
        text: &str,
        reason: impl Into<String>,
    ) -> Self {
        DecodeError {
            field: Some(field.into()),
            expected: Some(expected.to_string()),
            text: truncate(text, QUOTE_CHARS),
            reason: reason.into(),
        }
    }

    /// Prefixes the field path with `parent` (for nested values).
    pub(crate) fn within(mut self, parent: &str) -> Self {
        self.field = Some(match self.field.take() {
            None => parent.to_string(),
            Some(inner) if inner.is_empty() => parent.to_string(),
            Some(inner) if inner.starts_with('[') => format!("{parent}{inner}"),
            Some(inner) => format!("{parent}.{inner}"),
        });
        self
    }
}

impl From<MutationError> for DecodeError {
    fn from(e: MutationError) -> Self {
        match e {
            MutationError::Type {
                field,
                expected,
                found,
                detail,
                ..
            } => DecodeError {
                field: Some(field),
                expected: Some(expected),
                text: found,
                reason: detail,
            },
            other => DecodeError {
                field: None,
                expected: None,
                text: String::new(),
                reason: other.to_string(),
            },
        }
    }
}

/// The message as text for an error: lossy UTF-8, cut to 80 characters.
pub fn quote_bytes(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(QUOTE_CHARS * 4)];
    truncate(&String::from_utf8_lossy(head), QUOTE_CHARS)
}

/// Parses one text cell (a CSV field, a JSON string) as `dt`. The empty string is handled by
/// the caller (CSV reads it as null).
///
/// Scalars: booleans `true`/`false`/`1`/`0` (any case), integers in range, floats (with `NaN`,
/// `Infinity`), binary as standard base64, dates as `YYYY-MM-DD` or a day number, timestamps as
/// epoch milliseconds or ISO-8601. Lists, maps and structs are JSON text.
pub fn parse_text(dt: &DataType, text: &str) -> Result<Value, DecodeError> {
    let bad = |reason: &str| Err(DecodeError::field("", dt, text, reason));
    let t = text.trim();
    let v = match dt {
        DataType::String => Value::String(text.to_string()),
        DataType::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" | "1" => Value::Boolean(true),
            "false" | "0" => Value::Boolean(false),
            _ => return bad("not a boolean (true/false/1/0)"),
        },
        DataType::Byte => match t.parse() {
            Ok(v) => Value::Byte(v),
            Err(_) => return bad("not an integer in -128..=127"),
        },
        DataType::Short => match t.parse() {
            Ok(v) => Value::Short(v),
            Err(_) => return bad("not an integer in -32768..=32767"),
        },
        DataType::Int => match t.parse() {
            Ok(v) => Value::Int(v),
            Err(_) => return bad("not a 32-bit integer"),
        },
        DataType::Long => match t.parse() {
            Ok(v) => Value::Long(v),
            Err(_) => return bad("not a 64-bit integer"),
        },
        DataType::Float => match parse_float(t).and_then(|v| {
            if v.is_finite() {
                t.parse::<f32>().ok()
            } else {
                Some(v as f32)
            }
        }) {
            Some(v) => Value::Float(v),
            None => return bad("not a number"),
        },
        DataType::Double => match parse_float(t) {
            Some(v) => Value::Double(v),
            None => return bad("not a number"),
        },
        DataType::Binary => match base64::engine::general_purpose::STANDARD.decode(t) {
            Ok(v) => Value::Binary(v),
            Err(e) => return bad(&format!("not base64: {e}")),
        },
        DataType::Date => match parse_date(t).or_else(|| t.parse::<i32>().ok()) {
            Some(v) => Value::Date(v),
            None => return bad("not a date (YYYY-MM-DD or days since 1970-01-01)"),
        },
        DataType::Timestamp => match parse_timestamp(t) {
            Some(v) => Value::Timestamp(v),
            None => return bad("not a timestamp (epoch milliseconds or ISO-8601)"),
        },
        DataType::List(_) | DataType::Map(..) | DataType::Struct(_) => {
            let json: Json = match serde_json::from_str(t) {
                Ok(j) => j,
                Err(e) => return bad(&format!("not JSON: {e}")),
            };
            json_to_value(dt, &json)?
        }
    };
    Ok(v)
}

fn parse_float(t: &str) -> Option<f64> {
    match t {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ if t.bytes().any(|b| b.is_ascii_digit()) && !t.contains(['i', 'I', 'n', 'N']) => {
            t.parse().ok()
        }
        _ => None,
    }
}

/// Converts a JSON value to `dt` (see [`crate::stream::json`] for the accepted forms). `null`
/// is [`Value::Null`]; whether null is allowed is checked when the mutation is built.
pub fn json_to_value(dt: &DataType, json: &Json) -> Result<Value, DecodeError> {
    let text = || truncate(&json.to_string(), QUOTE_CHARS);
    let bad = |reason: &str| Err(DecodeError::field("", dt, &text(), reason));
    if json.is_null() {
        return Ok(Value::Null);
    }
    match (dt, json) {
        (_, Json::String(s))
            if !matches!(
                dt,
                DataType::List(_) | DataType::Map(..) | DataType::Struct(_)
            ) =>
        {
            parse_text(dt, s)
        }
        (DataType::String, Json::Number(_) | Json::Bool(_)) => Ok(Value::String(json.to_string())),
        (DataType::Boolean, Json::Bool(b)) => Ok(Value::Boolean(*b)),
        (
            DataType::Byte
            | DataType::Short
            | DataType::Int
            | DataType::Long
            | DataType::Date
            | DataType::Timestamp,
            Json::Number(n),
        ) => {
            let Some(i) = n.as_i64() else {
                return bad("not an integer in range");
            };
            let v = match dt {
                DataType::Byte => i8::try_from(i).map(Value::Byte).ok(),
                DataType::Short => i16::try_from(i).map(Value::Short).ok(),
                DataType::Int => i32::try_from(i).map(Value::Int).ok(),
                DataType::Date => i32::try_from(i).map(Value::Date).ok(),
                DataType::Timestamp => Some(Value::Timestamp(i)),
                _ => Some(Value::Long(i)),
            };
            v.map_or_else(|| bad("integer out of range"), Ok)
        }
        (DataType::Float, Json::Number(n)) => n
            .as_f64()
            .map(|f| Value::Float(f as f32))
            .map_or_else(|| bad("not a number"), Ok),
        (DataType::Double, Json::Number(n)) => n
            .as_f64()
            .map(Value::Double)
            .map_or_else(|| bad("not a number"), Ok),
        (DataType::List(e), Json::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(json_to_value(e, item).map_err(|err| err.within(&format!("[{i}]")))?);
            }
            Ok(Value::List(out))
        }
        (DataType::Map(k, v), Json::Object(obj)) => {
            let mut out = Vec::with_capacity(obj.len());
            for (key, value) in obj {
                let kv = if matches!(**k, DataType::String) {
                    Value::String(key.clone())
                } else {
                    parse_text(k, key).map_err(|err| err.within("{key}"))?
                };
                let vv = json_to_value(v, value)
                    .map_err(|err| err.within(&format!("[{}]", truncate(key, 20))))?;
                out.push((kv, vv));
            }
            Ok(Value::Map(out))
        }
        (DataType::Map(k, v), Json::Array(pairs)) => {
            let mut out = Vec::with_capacity(pairs.len());
            for (i, pair) in pairs.iter().enumerate() {
                match pair.as_array().map(Vec::as_slice) {
                    Some([key, value]) => {
                        let kv = json_to_value(k, key)
                            .map_err(|err| err.within(&format!("[{i}].key")))?;
                        let vv = json_to_value(v, value)
                            .map_err(|err| err.within(&format!("[{i}].value")))?;
                        out.push((kv, vv));
                    }
                    _ => {
                        return Err(DecodeError::field(
                            format!("[{i}]"),
                            dt,
                            &truncate(&pair.to_string(), QUOTE_CHARS),
                            "a map entry is a [key, value] pair",
                        ));
                    }
                }
            }
            Ok(Value::Map(out))
        }
        (DataType::Struct(st), Json::Object(obj)) => Ok(Value::Struct(object_to_row(st, obj)?)),
        (DataType::Struct(st), Json::Array(items)) => {
            if items.len() != st.fields.len() {
                return bad(&format!(
                    "struct {} has {} fields, array has {}",
                    st.name,
                    st.fields.len(),
                    items.len()
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (item, field) in items.iter().zip(&st.fields) {
                out.push(
                    json_to_value(&field.data_type, item).map_err(|err| err.within(&field.name))?,
                );
            }
            Ok(Value::Struct(out))
        }
        _ => bad(&format!("JSON {} does not fit", json_kind(json))),
    }
}

/// A row from a JSON object keyed by column name: missing columns are null, unknown ones are
/// ignored (producers add columns before consumers learn them).
pub fn object_to_row(
    schema: &StructType,
    obj: &serde_json::Map<String, Json>,
) -> Result<Row, DecodeError> {
    let mut row = Vec::with_capacity(schema.fields.len());
    for field in &schema.fields {
        let v = match obj.get(&field.name) {
            None => Value::Null,
            Some(j) => json_to_value(&field.data_type, j).map_err(|e| e.within(&field.name))?,
        };
        row.push(v);
    }
    Ok(row)
}

fn json_kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// Builds a mutation, turning a schema mismatch (a null list element, say) into a field error.
pub(crate) fn build(
    schema: &std::sync::Arc<StructType>,
    before: Option<Row>,
    after: Option<Row>,
) -> Result<Option<Mutation>, DecodeError> {
    Ok(Some(Mutation::new(schema.clone(), before, after)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_field_type_and_text() {
        let e = parse_text(&DataType::Long, "12x")
            .unwrap_err()
            .within("price");
        assert_eq!(e.field.as_deref(), Some("price"));
        assert_eq!(e.expected.as_deref(), Some("long"));
        assert_eq!(e.text, "12x");
        let shown = e.to_string();
        assert!(
            shown.contains("price") && shown.contains("long") && shown.contains("12x"),
            "{shown}"
        );
    }

    #[test]
    fn nested_paths() {
        let dt = DataType::list(DataType::Int);
        let e = json_to_value(&dt, &serde_json::json!([1, "x"]))
            .unwrap_err()
            .within("tags");
        assert_eq!(e.field.as_deref(), Some("tags[1]"));
    }
}
