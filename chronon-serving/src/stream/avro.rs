//! Row encoding: Avro binary with the schema derived from the [`StructType`] the way Chronon
//! derives it (`AvroConversions.fromChrononSchema`), so the bytes are what Chronon's
//! `AvroCodec` writes and reads for the same schema.
//!
//! The layout, as in Chronon:
//! - a struct is a record in namespace `ai.chronon.data` whose every field is a union
//!   `["null", T]` with default `null` (columns are nullable);
//! - names are cleaned (`[^0-9a-zA-Z_]` becomes `_`) and made unique across the whole schema
//!   (record and field names share one set) with the suffix `_REPEATED_NAME_<i>`;
//! - `list` is an Avro array, `map<string, V>` an Avro map; `byte` and `short` are `int` with
//!   `logicalType` `byte` / `short`; elements, map keys and map values are not nullable.
//!
//! Where Chronon has no Avro form this module extends it instead of failing: `date` is `int`
//! with logical type `date`, `timestamp` is `long` with `timestamp-millis`, a map whose key is
//! not a string is an array of `{key, value}` records, and a cleaned name starting with a digit
//! gets a leading `_` (Avro forbids it).
//!
//! Versioning is Avro's: the writer's schema JSON ([`RowCodec::avro_schema_json`]) travels with
//! the data (Chronon keeps it in the group-by's serving info) and its fingerprint
//! ([`RowCodec::fingerprint`]) tells versions apart, so readers can resolve old rows against a
//! newer schema. Encoding is hand-written for speed (it is on the streaming hot path) and is
//! proven byte-identical to `apache_avro::to_avro_datum` by the property tests; `apache-avro`
//! parses and checks every derived schema, and [`RowCodec::decode_with_apache`] reads bytes with
//! it as an independent check.

use std::collections::{HashMap, HashSet};

use apache_avro::types::Value as AvroValue;
use apache_avro::Schema;
use serde_json::{json, Value as Json};

use super::schema::{DataType, SchemaError, StructType};
use super::value::{Row, Value};

/// Chronon's namespace for derived records.
pub const NAMESPACE: &str = "ai.chronon.data";
/// Chronon's suffix for repeated names (`AvroConversions.RepetitionSuffix`).
pub const REPETITION_SUFFIX: &str = "_REPEATED_NAME_";

/// A value that cannot be encoded or bytes that cannot be decoded with a codec's schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("avro {op} at {path}: {reason}")]
pub struct AvroError {
    /// `encode` or `decode`.
    pub op: &'static str,
    /// Where (`$.tags[2]`, or a byte offset when decoding).
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

/// The Avro shape of a type, with the derived names kept.
#[derive(Debug, Clone)]
enum Node {
    Boolean,
    Byte,
    Short,
    Int,
    Long,
    Float,
    Double,
    String,
    Binary,
    Date,
    Timestamp,
    List(Box<Node>),
    StrMap(Box<Node>),
    PairMap(Box<Node>, Box<Node>),
    Record(Vec<(String, Node)>),
}

struct Names(HashSet<String>);

impl Names {
    /// Chronon's `addName`: clean, then make unique with `_REPEATED_NAME_<i>`.
    fn add(&mut self, name: &str) -> String {
        let mut clean: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if clean.is_empty() || clean.starts_with(|c: char| c.is_ascii_digit()) {
            clean.insert(0, '_');
        }
        let eligible = if !self.0.contains(&clean) {
            clean
        } else {
            let mut i = 0;
            while self.0.contains(&format!("{clean}{REPETITION_SUFFIX}{i}")) {
                i += 1;
            }
            format!("{clean}{REPETITION_SUFFIX}{i}")
        };
        self.0.insert(eligible.clone());
        eligible
    }
}

fn derive(dt: &DataType, names: &mut Names) -> (Json, Node) {
    match dt {
        DataType::Struct(st) => derive_record(st, names),
        DataType::List(e) => {
            let (j, n) = derive(e, names);
            (
                json!({"type": "array", "items": j}),
                Node::List(Box::new(n)),
            )
        }
        DataType::Map(k, v) if **k == DataType::String => {
            let (j, n) = derive(v, names);
            (
                json!({"type": "map", "values": j}),
                Node::StrMap(Box::new(n)),
            )
        }
        DataType::Map(k, v) => {
            let entry = names.add("map_entry");
            let (kj, kn) = derive(k, names);
            let (vj, vn) = derive(v, names);
            let record = json!({
                "type": "record", "name": entry, "namespace": NAMESPACE, "doc": "",
                "fields": [{"name": "key", "type": kj, "doc": ""}, {"name": "value", "type": vj, "doc": ""}]
            });
            (
                json!({"type": "array", "items": record}),
                Node::PairMap(Box::new(kn), Box::new(vn)),
            )
        }
        DataType::String => (json!("string"), Node::String),
        DataType::Int => (json!("int"), Node::Int),
        DataType::Byte => (json!({"type": "int", "logicalType": "byte"}), Node::Byte),
        DataType::Short => (json!({"type": "int", "logicalType": "short"}), Node::Short),
        DataType::Long => (json!("long"), Node::Long),
        DataType::Float => (json!("float"), Node::Float),
        DataType::Double => (json!("double"), Node::Double),
        DataType::Binary => (json!("bytes"), Node::Binary),
        DataType::Boolean => (json!("boolean"), Node::Boolean),
        DataType::Date => (json!({"type": "int", "logicalType": "date"}), Node::Date),
        DataType::Timestamp => (
            json!({"type": "long", "logicalType": "timestamp-millis"}),
            Node::Timestamp,
        ),
    }
}

fn derive_record(st: &StructType, names: &mut Names) -> (Json, Node) {
    let name = names.add(&st.name);
    let mut fields = Vec::with_capacity(st.fields.len());
    let mut nodes = Vec::with_capacity(st.fields.len());
    for f in &st.fields {
        let fname = names.add(&f.name);
        let (j, n) = derive(&f.data_type, names);
        fields.push(json!({"name": fname, "type": ["null", j], "doc": "", "default": null}));
        nodes.push((fname, n));
    }
    (
        json!({"type": "record", "name": name, "namespace": NAMESPACE, "doc": "", "fields": fields}),
        Node::Record(nodes),
    )
}

/// Encodes and decodes rows of one [`StructType`] as Avro binary records.
#[derive(Debug, Clone)]
pub struct RowCodec {
    schema: StructType,
    node: Node,
    avro: Schema,
    avro_json: Json,
}

impl RowCodec {
    /// Derives the Avro schema for `schema` and checks it with `apache-avro`.
    pub fn new(schema: &StructType) -> Result<Self, SchemaError> {
        schema.validate()?;
        let (avro_json, node) = derive_record(schema, &mut Names(HashSet::new()));
        let avro = Schema::parse(&avro_json)
            .map_err(|e| SchemaError::new("$", format!("derived Avro schema is invalid: {e}")))?;
        Ok(RowCodec {
            schema: schema.clone(),
            node,
            avro,
            avro_json,
        })
    }

    /// The Chronon schema rows follow.
    pub fn schema(&self) -> &StructType {
        &self.schema
    }

    /// The derived Avro schema.
    pub fn avro_schema(&self) -> &Schema {
        &self.avro
    }

    /// The derived Avro schema as JSON (what Chronon stores as `valueAvroSchema`).
    pub fn avro_schema_json(&self) -> &Json {
        &self.avro_json
    }

    /// The 64-bit Rabin fingerprint of the schema's Parsing Canonical Form (Avro's standard
    /// schema fingerprint), as lowercase hex: two codecs write compatible bytes when it matches.
    pub fn fingerprint(&self) -> String {
        self.avro
            .fingerprint::<apache_avro::rabin::Rabin>()
            .to_string()
    }

    /// Encodes a row, appending to `out`.
    pub fn encode_into(&self, row: &[Value], out: &mut Vec<u8>) -> Result<(), AvroError> {
        let Node::Record(fields) = &self.node else {
            return Err(enc_err("$", "codec root is not a record"));
        };
        encode_record(fields, row, out, &|| "$".to_string())
    }

    /// Encodes a row.
    pub fn encode(&self, row: &[Value]) -> Result<Vec<u8>, AvroError> {
        let mut out = Vec::with_capacity(16 + 8 * row.len());
        self.encode_into(row, &mut out)?;
        Ok(out)
    }

    /// Encodes several rows as one Avro `array` of records (how the writer stores the images of
    /// a mutation that land on the same key and time).
    pub fn encode_array(&self, rows: &[&[Value]], out: &mut Vec<u8>) -> Result<(), AvroError> {
        if !rows.is_empty() {
            write_long(rows.len() as i64, out);
            for row in rows {
                self.encode_into(row, out)?;
            }
        }
        write_long(0, out);
        Ok(())
    }

    /// Decodes one row; the bytes must hold exactly one record.
    pub fn decode(&self, bytes: &[u8]) -> Result<Row, AvroError> {
        let mut r = Reader { bytes, pos: 0 };
        let v = r.value(&self.node)?;
        r.finish()?;
        match v {
            Value::Struct(row) => Ok(row),
            _ => Err(r.err("root is not a record")),
        }
    }

    /// Decodes what [`RowCodec::encode_array`] wrote.
    pub fn decode_array(&self, bytes: &[u8]) -> Result<Vec<Row>, AvroError> {
        let mut r = Reader { bytes, pos: 0 };
        let v = r.value(&Node::List(Box::new(self.node.clone())))?;
        r.finish()?;
        match v {
            Value::List(items) => Ok(items
                .into_iter()
                .map(|i| match i {
                    Value::Struct(row) => row,
                    _ => Vec::new(),
                })
                .collect()),
            _ => Err(r.err("root is not an array")),
        }
    }

    /// The row as an `apache-avro` value for this codec's schema.
    pub fn to_apache(&self, row: &[Value]) -> Result<AvroValue, AvroError> {
        to_apache(&self.node, &Value::Struct(row.to_vec()), "$")
    }

    /// Encodes through `apache_avro::to_avro_datum` (the reference the fast path is tested
    /// against; slower).
    pub fn encode_with_apache(&self, row: &[Value]) -> Result<Vec<u8>, AvroError> {
        let v = self.to_apache(row)?;
        apache_avro::to_avro_datum(&self.avro, v).map_err(|e| enc_err("$", &e.to_string()))
    }

    /// Decodes through `apache_avro::from_avro_datum` (an independent reader of the same bytes).
    pub fn decode_with_apache(&self, bytes: &[u8]) -> Result<Row, AvroError> {
        let mut reader = bytes;
        let v =
            apache_avro::from_avro_datum(&self.avro, &mut reader, None).map_err(|e| AvroError {
                op: "decode",
                path: "$".into(),
                reason: e.to_string(),
            })?;
        if !reader.is_empty() {
            return Err(AvroError {
                op: "decode",
                path: "$".into(),
                reason: format!("{} trailing bytes", reader.len()),
            });
        }
        match from_apache(&self.node, v)? {
            Value::Struct(row) => Ok(row),
            _ => Err(dec_err("$", "root is not a record")),
        }
    }
}

fn enc_err(path: &str, reason: &str) -> AvroError {
    avro_err("encode", path, reason)
}

fn dec_err(path: &str, reason: &str) -> AvroError {
    avro_err("decode", path, reason)
}

fn avro_err(op: &'static str, path: &str, reason: &str) -> AvroError {
    let (path, reason) = (path.to_string(), reason.to_string());
    AvroError { op, path, reason }
}

/// Avro's zig-zag varint `long`.
pub fn write_long(v: i64, out: &mut Vec<u8>) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn write_bytes(b: &[u8], out: &mut Vec<u8>) {
    write_long(b.len() as i64, out);
    out.extend_from_slice(b);
}

/// Where an encoded value is (`$.tags[2]`), formatted only if encoding fails (not per field).
type Path<'a> = &'a dyn Fn() -> String;

fn encode_record(
    fields: &[(String, Node)],
    row: &[Value],
    out: &mut Vec<u8>,
    path: Path,
) -> Result<(), AvroError> {
    if row.len() != fields.len() {
        return Err(enc_err(
            &path(),
            &format!("{} values for {} fields", row.len(), fields.len()),
        ));
    }
    for ((name, node), v) in fields.iter().zip(row) {
        if let Value::Null = v {
            out.push(0);
        } else {
            out.push(2);
            encode_value(node, v, out, &|| format!("{}.{name}", path()))?;
        }
    }
    Ok(())
}

fn encode_value(node: &Node, v: &Value, out: &mut Vec<u8>, path: Path) -> Result<(), AvroError> {
    match (node, v) {
        (Node::Boolean, Value::Boolean(b)) => out.push(*b as u8),
        (Node::Byte, Value::Byte(i)) => write_long(*i as i64, out),
        (Node::Short, Value::Short(i)) => write_long(*i as i64, out),
        (Node::Int, Value::Int(i)) | (Node::Date, Value::Date(i)) => write_long(*i as i64, out),
        (Node::Long, Value::Long(i)) | (Node::Timestamp, Value::Timestamp(i)) => {
            write_long(*i, out)
        }
        (Node::Float, Value::Float(f)) => out.extend_from_slice(&f.to_le_bytes()),
        (Node::Double, Value::Double(f)) => out.extend_from_slice(&f.to_le_bytes()),
        (Node::String, Value::String(s)) => write_bytes(s.as_bytes(), out),
        (Node::Binary, Value::Binary(b)) => write_bytes(b, out),
        (Node::List(e), Value::List(items)) => {
            if !items.is_empty() {
                write_long(items.len() as i64, out);
                for (i, item) in items.iter().enumerate() {
                    encode_value(e, item, out, &|| format!("{}[{i}]", path()))?;
                }
            }
            out.push(0);
        }
        (Node::StrMap(vn), Value::Map(entries)) => {
            if !entries.is_empty() {
                write_long(entries.len() as i64, out);
                for (k, val) in entries {
                    let Value::String(k) = k else {
                        return Err(enc_err(
                            &path(),
                            &format!("map key must be a string, found {}", k.describe()),
                        ));
                    };
                    write_bytes(k.as_bytes(), out);
                    encode_value(vn, val, out, &|| format!("{}[{k:?}]", path()))?;
                }
            }
            out.push(0);
        }
        (Node::PairMap(kn, vn), Value::Map(entries)) => {
            if !entries.is_empty() {
                write_long(entries.len() as i64, out);
                for (i, (k, val)) in entries.iter().enumerate() {
                    encode_value(kn, k, out, &|| format!("{}[{i}].key", path()))?;
                    encode_value(vn, val, out, &|| format!("{}[{i}].value", path()))?;
                }
            }
            out.push(0);
        }
        (Node::Record(fields), Value::Struct(values)) => encode_record(fields, values, out, path)?,
        (node, v) => {
            return Err(enc_err(
                &path(),
                &format!("{} does not fit Avro {node:?}", v.describe()),
            ))
        }
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn err(&self, reason: &str) -> AvroError {
        dec_err(&format!("byte {}", self.pos), reason)
    }

    fn finish(&self) -> Result<(), AvroError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.err(&format!("{} trailing bytes", self.bytes.len() - self.pos)))
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], AvroError> {
        if n > self.remaining() {
            return Err(self.err(&format!("needs {n} bytes, {} left", self.remaining())));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A zig-zag varint. Reads its bytes directly rather than through [`Reader::take`]: it is
    /// the decoder's most frequent call (every union branch, length and number).
    fn long(&mut self) -> Result<i64, AvroError> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(self.err("needs 1 bytes, 0 left"));
            };
            self.pos += 1;
            n |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    return Err(self.err("varint overflows 64 bits"));
                }
                return Ok(((n >> 1) as i64) ^ -((n & 1) as i64));
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn int(&mut self) -> Result<i32, AvroError> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| self.err(&format!("int out of range: {v}")))
    }

    fn len(&mut self) -> Result<usize, AvroError> {
        let v = self.long()?;
        usize::try_from(v).map_err(|_| self.err(&format!("negative length {v}")))
    }

    /// The item count of the next array/map block (0 ends the collection).
    fn block(&mut self) -> Result<usize, AvroError> {
        let count = self.long()?;
        if count < 0 {
            let _byte_size = self.long()?;
            return usize::try_from(count.unsigned_abs())
                .map_err(|_| self.err("block count too large"));
        }
        Ok(count as usize)
    }

    fn value(&mut self, node: &Node) -> Result<Value, AvroError> {
        Ok(match node {
            Node::Boolean => match self.take(1)?[0] {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                b => return Err(self.err(&format!("boolean byte {b}"))),
            },
            Node::Byte => {
                let v = self.int()?;
                Value::Byte(
                    i8::try_from(v).map_err(|_| self.err(&format!("byte out of range: {v}")))?,
                )
            }
            Node::Short => {
                let v = self.int()?;
                Value::Short(
                    i16::try_from(v).map_err(|_| self.err(&format!("short out of range: {v}")))?,
                )
            }
            Node::Int => Value::Int(self.int()?),
            Node::Date => Value::Date(self.int()?),
            Node::Long => Value::Long(self.long()?),
            Node::Timestamp => Value::Timestamp(self.long()?),
            Node::Float => {
                let b = self.take(4)?;
                Value::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            Node::Double => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Double(f64::from_le_bytes(a))
            }
            Node::String => {
                let n = self.len()?;
                let b = self.take(n)?;
                match std::str::from_utf8(b) {
                    Ok(s) => Value::String(s.to_string()),
                    Err(e) => return Err(self.err(&format!("string is not UTF-8: {e}"))),
                }
            }
            Node::Binary => {
                let n = self.len()?;
                Value::Binary(self.take(n)?.to_vec())
            }
            Node::List(e) => {
                let mut items = Vec::new();
                loop {
                    let n = self.block()?;
                    if n == 0 {
                        break;
                    }
                    items.reserve(n.min(self.remaining()));
                    for _ in 0..n {
                        items.push(self.value(e)?);
                    }
                }
                Value::List(items)
            }
            Node::StrMap(vn) => {
                let mut entries = Vec::new();
                loop {
                    let n = self.block()?;
                    if n == 0 {
                        break;
                    }
                    entries.reserve(n.min(self.remaining()));
                    for _ in 0..n {
                        let k = self.value(&Node::String)?;
                        let v = self.value(vn)?;
                        entries.push((k, v));
                    }
                }
                Value::Map(entries)
            }
            Node::PairMap(kn, vn) => {
                let mut entries = Vec::new();
                loop {
                    let n = self.block()?;
                    if n == 0 {
                        break;
                    }
                    entries.reserve(n.min(self.remaining()));
                    for _ in 0..n {
                        let k = self.value(kn)?;
                        let v = self.value(vn)?;
                        entries.push((k, v));
                    }
                }
                Value::Map(entries)
            }
            Node::Record(fields) => {
                let mut values = Vec::with_capacity(fields.len());
                for (_, n) in fields {
                    match self.long()? {
                        0 => values.push(Value::Null),
                        1 => values.push(self.value(n)?),
                        b => return Err(self.err(&format!("union branch {b} (expected 0 or 1)"))),
                    }
                }
                Value::Struct(values)
            }
        })
    }
}

fn to_apache(node: &Node, v: &Value, path: &str) -> Result<AvroValue, AvroError> {
    Ok(match (node, v) {
        (Node::Boolean, Value::Boolean(b)) => AvroValue::Boolean(*b),
        (Node::Byte, Value::Byte(i)) => AvroValue::Int(*i as i32),
        (Node::Short, Value::Short(i)) => AvroValue::Int(*i as i32),
        (Node::Int, Value::Int(i)) => AvroValue::Int(*i),
        (Node::Date, Value::Date(i)) => AvroValue::Date(*i),
        (Node::Long, Value::Long(i)) => AvroValue::Long(*i),
        (Node::Timestamp, Value::Timestamp(i)) => AvroValue::TimestampMillis(*i),
        (Node::Float, Value::Float(f)) => AvroValue::Float(*f),
        (Node::Double, Value::Double(f)) => AvroValue::Double(*f),
        (Node::String, Value::String(s)) => AvroValue::String(s.clone()),
        (Node::Binary, Value::Binary(b)) => AvroValue::Bytes(b.clone()),
        (Node::List(e), Value::List(items)) => AvroValue::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, it)| to_apache(e, it, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        (Node::StrMap(vn), Value::Map(entries)) => {
            let mut m = HashMap::with_capacity(entries.len());
            for (k, val) in entries {
                let Value::String(k) = k else {
                    return Err(enc_err(path, "map key must be a string"));
                };
                m.insert(k.clone(), to_apache(vn, val, path)?);
            }
            AvroValue::Map(m)
        }
        (Node::PairMap(kn, vn), Value::Map(entries)) => AvroValue::Array(
            entries
                .iter()
                .map(|(k, val)| -> Result<AvroValue, AvroError> {
                    Ok(AvroValue::Record(vec![
                        ("key".to_string(), to_apache(kn, k, path)?),
                        ("value".to_string(), to_apache(vn, val, path)?),
                    ]))
                })
                .collect::<Result<_, AvroError>>()?,
        ),
        (Node::Record(fields), Value::Struct(values)) => {
            if fields.len() != values.len() {
                return Err(enc_err(path, "struct arity"));
            }
            let mut out = Vec::with_capacity(fields.len());
            for ((name, n), val) in fields.iter().zip(values) {
                let av = match val {
                    Value::Null => AvroValue::Union(0, Box::new(AvroValue::Null)),
                    other => AvroValue::Union(
                        1,
                        Box::new(to_apache(n, other, &format!("{path}.{name}"))?),
                    ),
                };
                out.push((name.clone(), av));
            }
            AvroValue::Record(out)
        }
        (node, v) => {
            return Err(enc_err(
                path,
                &format!("{} does not fit Avro {node:?}", v.describe()),
            ))
        }
    })
}

fn from_apache(node: &Node, v: AvroValue) -> Result<Value, AvroError> {
    let mismatch = |v: &AvroValue| {
        dec_err(
            "$",
            &format!("apache-avro value {v:?} does not fit {node:?}"),
        )
    };
    Ok(match (node, v) {
        (Node::Boolean, AvroValue::Boolean(b)) => Value::Boolean(b),
        (Node::Byte, AvroValue::Int(i)) => {
            Value::Byte(i8::try_from(i).map_err(|_| dec_err("$", "byte out of range"))?)
        }
        (Node::Short, AvroValue::Int(i)) => {
            Value::Short(i16::try_from(i).map_err(|_| dec_err("$", "short out of range"))?)
        }
        (Node::Int, AvroValue::Int(i)) => Value::Int(i),
        (Node::Date, AvroValue::Date(i) | AvroValue::Int(i)) => Value::Date(i),
        (Node::Long, AvroValue::Long(i)) => Value::Long(i),
        (Node::Timestamp, AvroValue::TimestampMillis(i) | AvroValue::Long(i)) => {
            Value::Timestamp(i)
        }
        (Node::Float, AvroValue::Float(f)) => Value::Float(f),
        (Node::Double, AvroValue::Double(f)) => Value::Double(f),
        (Node::String, AvroValue::String(s)) => Value::String(s),
        (Node::Binary, AvroValue::Bytes(b)) => Value::Binary(b),
        (Node::List(e), AvroValue::Array(items)) => Value::List(
            items
                .into_iter()
                .map(|i| from_apache(e, i))
                .collect::<Result<_, _>>()?,
        ),
        (Node::StrMap(vn), AvroValue::Map(m)) => Value::Map(
            m.into_iter()
                .map(|(k, v)| -> Result<(Value, Value), AvroError> {
                    Ok((Value::String(k), from_apache(vn, v)?))
                })
                .collect::<Result<_, AvroError>>()?,
        ),
        (Node::PairMap(kn, vn), AvroValue::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let AvroValue::Record(mut kv) = item else {
                    return Err(dec_err("$", "map entry is not a record"));
                };
                if kv.len() != 2 {
                    return Err(dec_err("$", "map entry is not a key/value record"));
                }
                let (_, v) = kv.pop().ok_or_else(|| dec_err("$", "map entry"))?;
                let (_, k) = kv.pop().ok_or_else(|| dec_err("$", "map entry"))?;
                out.push((from_apache(kn, k)?, from_apache(vn, v)?));
            }
            Value::Map(out)
        }
        (Node::Record(fields), AvroValue::Record(values)) => {
            if fields.len() != values.len() {
                return Err(dec_err("$", "record arity"));
            }
            let mut out = Vec::with_capacity(values.len());
            for ((_, n), (_, v)) in fields.iter().zip(values) {
                out.push(match v {
                    AvroValue::Union(_, inner) => match *inner {
                        AvroValue::Null => Value::Null,
                        other => from_apache(n, other)?,
                    },
                    AvroValue::Null => Value::Null,
                    other => from_apache(n, other)?,
                });
            }
            Value::Struct(out)
        }
        (_, v) => return Err(mismatch(&v)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::schema::StructField;

    #[test]
    fn names_follow_chronon() {
        let st = StructType::new(
            "my-group.by",
            vec![
                StructField::new("a b", DataType::Long),
                StructField::new(
                    "inner",
                    DataType::Struct(StructType::new(
                        "inner",
                        vec![StructField::new("a_b", DataType::Int)],
                    )),
                ),
                StructField::new("9lives", DataType::Byte),
            ],
        );
        let codec = RowCodec::new(&st).unwrap();
        let j = codec.avro_schema_json();
        assert_eq!(j["name"], "my_group_by");
        assert_eq!(j["namespace"], NAMESPACE);
        assert_eq!(j["fields"][0]["name"], "a_b");
        assert_eq!(j["fields"][0]["type"][0], "null");
        assert_eq!(j["fields"][1]["name"], "inner");
        assert_eq!(j["fields"][1]["type"][1]["name"], "inner_REPEATED_NAME_0");
        assert_eq!(
            j["fields"][1]["type"][1]["fields"][0]["name"],
            "a_b_REPEATED_NAME_0"
        );
        assert_eq!(j["fields"][2]["name"], "_9lives");
        assert_eq!(codec.fingerprint().len(), 16);
    }

    #[test]
    fn encodes_like_apache_avro() {
        let st = StructType::new(
            "r",
            vec![
                StructField::new("id", DataType::String),
                StructField::new("n", DataType::Long),
                StructField::new("tags", DataType::list(DataType::String)),
            ],
        );
        let codec = RowCodec::new(&st).unwrap();
        let row = vec![
            Value::String("u1".into()),
            Value::Null,
            Value::List(vec![Value::String("a".into()), Value::String("b".into())]),
        ];
        let fast = codec.encode(&row).unwrap();
        assert_eq!(fast, codec.encode_with_apache(&row).unwrap());
        assert_eq!(codec.decode(&fast).unwrap(), row);
        assert_eq!(codec.decode_with_apache(&fast).unwrap(), row);
        assert!(codec.decode(&fast[..fast.len() - 1]).is_err());
        let mut arr = Vec::new();
        codec.encode_array(&[&row, &row], &mut arr).unwrap();
        assert_eq!(codec.decode_array(&arr).unwrap(), vec![row.clone(), row]);
    }
}
