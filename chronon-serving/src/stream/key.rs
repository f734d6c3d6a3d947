//! Key encoding: a group-by's key columns to key bytes, the same way every time.
//!
//! Key bytes are the Avro binary encoding of a record of the key columns (Chronon encodes keys
//! with an `AvroCodec` of the group-by's key schema, `GroupByServingInfoParsed.keyCodec`), built
//! with this crate's [`RowCodec`], so the streaming writer and a fetcher that encodes the same
//! key values get the same bytes. The record is named `Key` (Chronon's `GroupByUpload` names it
//! so); names do not change the bytes. Entries of a map-typed key column are sorted first, so
//! equal maps give equal keys whatever their order. JVM batch uploads encode keys the same way
//! (`KvRdd.keyToBytes` through `AvroConversions.fromChrononSchema`, whose nullable unions put
//! `null` first, as here), so key bytes agree with theirs (`tests/jvm_golden.rs`).

use super::avro::{AvroError, RowCodec};
use super::schema::{DataType, SchemaError, StructField, StructType};
use super::value::{Row, Value};

/// Encodes the key columns of rows of one schema.
#[derive(Debug, Clone)]
pub struct KeyCodec {
    codec: RowCodec,
    indices: Vec<usize>,
    has_map: bool,
}

/// Why a row has no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Every key column is null (Chronon's streaming query keeps a row only when at least one
    /// key column is not null).
    #[error("all key columns ({columns}) are null")]
    AllNull {
        /// The key columns.
        columns: String,
    },
    /// The key values do not fit the key schema.
    #[error(transparent)]
    Avro(#[from] AvroError),
}

impl KeyCodec {
    /// A codec for `key_columns` of rows following `input`.
    pub fn new<S: AsRef<str>>(input: &StructType, key_columns: &[S]) -> Result<Self, SchemaError> {
        if key_columns.is_empty() {
            return Err(SchemaError::new(
                "keys",
                "at least one key column is needed",
            ));
        }
        let mut indices = Vec::with_capacity(key_columns.len());
        let mut fields = Vec::with_capacity(key_columns.len());
        for k in key_columns {
            let k = k.as_ref();
            let i = input.index_of(k).ok_or_else(|| {
                SchemaError::new(
                    "keys",
                    format!(
                        "key column {k:?} is not in schema {} ({})",
                        input.name,
                        input.field_names().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            if indices.contains(&i) {
                return Err(SchemaError::new(
                    "keys",
                    format!("key column {k:?} is listed twice"),
                ));
            }
            indices.push(i);
            fields.push(StructField::new(k, input.fields[i].data_type.clone()));
        }
        let key_schema = StructType::new("Key", fields);
        let has_map = key_schema.fields.iter().any(|f| contains_map(&f.data_type));
        Ok(KeyCodec {
            codec: RowCodec::new(&key_schema)?,
            indices,
            has_map,
        })
    }

    /// The key schema (`Key` record of the key columns).
    pub fn key_schema(&self) -> &StructType {
        self.codec.schema()
    }

    /// The row codec of the key record (for its Avro schema JSON).
    pub fn row_codec(&self) -> &RowCodec {
        &self.codec
    }

    /// The key bytes of a full input row.
    pub fn encode_row(&self, row: &[Value]) -> Result<Vec<u8>, KeyError> {
        let keys: Row = self
            .indices
            .iter()
            .map(|&i| row.get(i).cloned().unwrap_or(Value::Null))
            .collect();
        self.encode_values(keys)
    }

    /// The key bytes of key values given in key-column order (what a fetcher has).
    pub fn encode_values(&self, mut keys: Row) -> Result<Vec<u8>, KeyError> {
        if keys.iter().all(|v| matches!(v, Value::Null)) {
            return Err(KeyError::AllNull {
                columns: self
                    .key_schema()
                    .field_names()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if self.has_map {
            keys.iter_mut().for_each(canonicalize);
        }
        Ok(self.codec.encode(&keys)?)
    }

    /// The key values back from key bytes.
    pub fn decode(&self, bytes: &[u8]) -> Result<Row, AvroError> {
        self.codec.decode(bytes)
    }
}

fn contains_map(dt: &DataType) -> bool {
    match dt {
        DataType::Map(..) => true,
        DataType::List(e) => contains_map(e),
        DataType::Struct(s) => s.fields.iter().any(|f| contains_map(&f.data_type)),
        _ => false,
    }
}

/// Sorts map entries (recursively) so equal maps encode equally.
fn canonicalize(v: &mut Value) {
    match v {
        Value::Map(entries) => {
            for (k, val) in entries.iter_mut() {
                canonicalize(k);
                canonicalize(val);
            }
            entries.sort_by_cached_key(|(k, _)| k.to_json().to_string());
        }
        Value::List(items) | Value::Struct(items) => items.iter_mut().for_each(canonicalize),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_need_one_non_null_column() {
        let input = StructType::new(
            "ev",
            vec![
                StructField::new("user", DataType::String),
                StructField::new("n", DataType::Long),
                StructField::new("m", DataType::map(DataType::String, DataType::Int)),
            ],
        );
        let kc = KeyCodec::new(&input, &["m", "user"]).unwrap();
        let m1 = Value::Map(vec![
            (Value::String("a".into()), Value::Int(1)),
            (Value::String("b".into()), Value::Int(2)),
        ]);
        let m2 = Value::Map(vec![
            (Value::String("b".into()), Value::Int(2)),
            (Value::String("a".into()), Value::Int(1)),
        ]);
        let a = kc
            .encode_row(&[Value::String("u".into()), Value::Long(1), m1])
            .unwrap();
        let b = kc
            .encode_row(&[Value::String("u".into()), Value::Long(2), m2])
            .unwrap();
        assert_eq!(a, b);
        assert!(matches!(
            kc.encode_row(&[Value::Null, Value::Long(1), Value::Null]),
            Err(KeyError::AllNull { .. })
        ));
        assert!(KeyCodec::new(&input, &["nope"]).is_err());
        let simple = KeyCodec::new(&input, &["user"]).unwrap();
        assert_eq!(
            simple
                .encode_values(vec![Value::String("u1".into())])
                .unwrap(),
            vec![2, 4, b'u', b'1']
        );
    }
}
