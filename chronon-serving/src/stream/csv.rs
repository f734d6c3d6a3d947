//! CSV events with an explicit schema.
//!
//! Chronon's quickstart decoder (`QuickstartMutationDecoder.StreamingEventDecoder`) splits a line
//! on commas and guesses types from column names (`*ts`, `*_price`, `*_amt` are longs, anything
//! else a string). This decoder reads RFC 4180 fields (quoted fields with `""` escapes and
//! embedded delimiters) against a declared schema, so a bad value is an error naming the column
//! instead of a silently wrong row; the quickstart's guess is still available, but only when asked
//! for, through [`CsvDecoder::with_quickstart_types`].

use std::borrow::Cow;
use std::sync::Arc;

use super::decoder::{self, parse_text, DecodeError, StreamDecoder};
use super::mutation::Mutation;
use super::schema::{DataType, StructField, StructType};
use super::value::Value;

/// Decodes one CSV line per message into an event (an insert with only `after`).
#[derive(Debug, Clone)]
pub struct CsvDecoder {
    schema: Arc<StructType>,
    delimiter: u8,
    empty_is_null: bool,
    skip_header: bool,
}

impl CsvDecoder {
    /// A decoder for lines whose fields are `schema`'s columns in order, comma-separated. Empty
    /// fields are null (as in the quickstart decoder) and a line equal to the column names is
    /// skipped as a header.
    pub fn new(schema: StructType) -> Self {
        CsvDecoder {
            schema: Arc::new(schema),
            delimiter: b',',
            empty_is_null: true,
            skip_header: true,
        }
    }

    /// The quickstart's guessed schema for `columns`: names ending in `ts`, `_price` or `_amt` are
    /// `long`, everything else `string` (`QuickstartMutationDecoder`). Only use it for data that
    /// follows that convention; an explicit schema is better.
    pub fn with_quickstart_types<S: AsRef<str>>(columns: &[S]) -> Self {
        let fields = columns
            .iter()
            .map(|c| {
                let name = c.as_ref();
                let dt =
                    if name.ends_with("ts") || name.ends_with("_price") || name.ends_with("_amt") {
                        DataType::Long
                    } else {
                        DataType::String
                    };
                StructField::new(name, dt)
            })
            .collect();
        Self::new(StructType::new("event", fields))
    }

    /// Uses another single-byte delimiter (`b'\t'`, `b'|'`).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Whether an empty field is null (default) or, for string columns, the empty string.
    pub fn empty_is_null(mut self, yes: bool) -> Self {
        self.empty_is_null = yes;
        self
    }

    /// Whether a line equal to the column names is skipped (default yes).
    pub fn skip_header(mut self, yes: bool) -> Self {
        self.skip_header = yes;
        self
    }

    /// The shared schema.
    pub fn schema_arc(&self) -> &Arc<StructType> {
        &self.schema
    }
}

/// Splits one CSV record into fields (RFC 4180: fields may be quoted, `""` is a quote inside a
/// quoted field, and quoted fields may contain the delimiter).
pub fn split_record(line: &str, delimiter: u8) -> Result<Vec<Cow<'_, str>>, String> {
    if !delimiter.is_ascii() || delimiter == b'"' {
        return Err(format!(
            "delimiter byte {delimiter:#04x} must be ASCII and not a quote"
        ));
    }
    let bytes = line.as_bytes();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        if bytes.get(i) == Some(&b'"') {
            // Quoted field.
            let mut value = String::new();
            let mut start = i + 1;
            let mut j = start;
            loop {
                match bytes.get(j) {
                    None => return Err(format!("unterminated quoted field starting at byte {i}")),
                    Some(b'"') if bytes.get(j + 1) == Some(&b'"') => {
                        value.push_str(&line[start..=j]);
                        j += 2;
                        start = j;
                    }
                    Some(b'"') => {
                        value.push_str(&line[start..j]);
                        j += 1;
                        break;
                    }
                    Some(_) => j += 1,
                }
            }
            fields.push(Cow::Owned(value));
            match bytes.get(j) {
                None => return Ok(fields),
                Some(b) if *b == delimiter => i = j + 1,
                Some(_) => {
                    return Err(format!(
                        "unexpected character after closing quote at byte {j}"
                    ))
                }
            }
        } else {
            match bytes[i..].iter().position(|b| *b == delimiter) {
                Some(p) => {
                    fields.push(Cow::Borrowed(&line[i..i + p]));
                    i += p + 1;
                }
                None => {
                    fields.push(Cow::Borrowed(&line[i..]));
                    return Ok(fields);
                }
            }
        }
    }
}

/// Quotes a field for CSV when it needs it (the inverse of [`split_record`]).
pub fn quote_field(text: &str, delimiter: u8) -> Cow<'_, str> {
    let needs = text
        .bytes()
        .any(|b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r')
        || text.starts_with('"');
    if needs {
        Cow::Owned(format!("\"{}\"", text.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(text)
    }
}

impl StreamDecoder for CsvDecoder {
    fn decode(&self, bytes: &[u8]) -> Result<Option<Mutation>, DecodeError> {
        let line = std::str::from_utf8(bytes)
            .map_err(|e| DecodeError::message(bytes, format!("not UTF-8: {e}")))?;
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            return Ok(None);
        }
        let cells = split_record(line, self.delimiter)
            .map_err(|reason| DecodeError::message(bytes, reason))?;
        if cells.len() != self.schema.fields.len() {
            return Err(DecodeError::message(
                bytes,
                format!(
                    "{} fields, but schema {} has {} columns",
                    cells.len(),
                    self.schema.name,
                    self.schema.fields.len()
                ),
            ));
        }
        if self.skip_header
            && cells
                .iter()
                .zip(self.schema.field_names())
                .all(|(c, n)| c.trim() == n)
        {
            return Ok(None);
        }
        let mut row = Vec::with_capacity(cells.len());
        for (cell, field) in cells.iter().zip(&self.schema.fields) {
            let value =
                if cell.is_empty() && (self.empty_is_null || field.data_type != DataType::String) {
                    Value::Null
                } else {
                    parse_text(&field.data_type, cell).map_err(|e| e.within(&field.name))?
                };
            row.push(value);
        }
        decoder::build(&self.schema, None, Some(row))
    }

    fn schema(&self) -> &StructType {
        &self.schema
    }
}

/// Renders a row as one CSV line that [`CsvDecoder`] reads back (tests and tools).
pub fn format_row(row: &[Value], delimiter: u8) -> String {
    let mut out = String::new();
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            out.push(delimiter as char);
        }
        out.push_str(&quote_field(&v.to_text(), delimiter));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::mutation::MutationKind;

    fn schema() -> StructType {
        StructType::new(
            "purchases",
            vec![
                StructField::new("user_id", DataType::String),
                StructField::new("price", DataType::Double),
                StructField::new("ts", DataType::Long),
            ],
        )
    }

    #[test]
    fn decodes_quoted_fields_and_nulls() {
        let d = CsvDecoder::new(schema());
        let m = d
            .decode(b"\"a,\"\"b\"\"\",,1700000000000\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(m.kind(), MutationKind::Insert);
        assert_eq!(
            m.after().unwrap(),
            &vec![
                Value::String("a,\"b\"".into()),
                Value::Null,
                Value::Long(1_700_000_000_000)
            ]
        );
        assert!(d.decode(b"user_id,price,ts").unwrap().is_none());
        assert!(d.decode(b"").unwrap().is_none());
    }

    #[test]
    fn errors_name_the_column() {
        let d = CsvDecoder::new(schema());
        let e = d.decode(b"u1,cheap,5").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("price"));
        assert_eq!(e.expected.as_deref(), Some("double"));
        assert_eq!(e.text, "cheap");
        assert!(d.decode(b"u1,1.0").unwrap_err().reason.contains("2 fields"));
        assert!(d.decode(b"\"u1,1.0,5").is_err());
        assert!(d.decode(&[0xff, 0x2c]).is_err());
    }

    #[test]
    fn quickstart_guess_is_opt_in() {
        let d = CsvDecoder::with_quickstart_types(&["user_id", "purchase_price", "ts"]);
        assert_eq!(d.schema().type_of("purchase_price"), Some(&DataType::Long));
        assert_eq!(d.schema().type_of("user_id"), Some(&DataType::String));
    }
}
