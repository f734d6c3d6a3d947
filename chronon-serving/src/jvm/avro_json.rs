//! Avro schema text as the JVM writes and reads it in `GroupByServingInfo`.
//!
//! - Writing: `AvroConversions.fromChrononSchema(...).toString(true)`. Avro's Java writer omits
//!   a nested record's namespace when it equals the enclosing one, writes no `default` (the
//!   field's default is Java `null`, meaning none), and pretty-prints with Jackson's
//!   `DefaultPrettyPrinter` (objects on indented lines, arrays inline as `[ a, b ]`,
//!   `"key" : value`). [`jvm_schema_text`] writes exactly that text.
//! - Reading: `AvroConversions.toChrononSchema`: a record is a struct, a union is its branch 1
//!   (unions only mean nullable, `["null", T]`), an array a list, a map a `map<string, V>`, an
//!   `int` with `logicalType` `byte`/`short` a byte/short. With `clean_names` (how
//!   `selectedChrononSchema` reads) the `_REPEATED_NAME_<i>` suffix is cut from names.

use serde_json::Value as Json;

use crate::stream::avro::{NAMESPACE, REPETITION_SUFFIX};
use crate::stream::{DataType, RowCodec, StructField, StructType};

use super::JvmError;

/// The schema JSON of `schema` in the JVM's form (see the module docs).
pub fn jvm_schema_json(schema: &StructType) -> Result<Json, JvmError> {
    let codec = RowCodec::new(schema)?;
    let mut json = codec.avro_schema_json().clone();
    strip(&mut json, true);
    Ok(json)
}

/// `fromChrononSchema(schema).toString(true)`, byte for byte.
pub fn jvm_schema_text(schema: &StructType) -> Result<String, JvmError> {
    Ok(jackson_pretty(&jvm_schema_json(schema)?))
}

fn strip(json: &mut Json, top: bool) {
    match json {
        Json::Object(obj) => {
            obj.remove("default");
            let is_record = obj.get("type").and_then(Json::as_str) == Some("record");
            if is_record && !top && obj.get("namespace").and_then(Json::as_str) == Some(NAMESPACE) {
                obj.remove("namespace");
            }
            for v in obj.values_mut() {
                strip(v, false);
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|v| strip(v, false)),
        _ => {}
    }
}

/// Avro Java's key order (`Schema.toJson`): type first, then name, namespace, doc, the body.
fn key_rank(key: &str) -> usize {
    [
        "type",
        "name",
        "namespace",
        "doc",
        "fields",
        "items",
        "values",
        "logicalType",
    ]
    .iter()
    .position(|k| *k == key)
    .unwrap_or(usize::MAX)
}

/// Jackson's `DefaultPrettyPrinter` as Avro's `toString(true)` uses it; object keys in Avro
/// Java's order (a field's keys: name, type, doc).
pub fn jackson_pretty(json: &Json) -> String {
    let mut out = String::new();
    pretty(json, 0, &mut out);
    out
}

fn pretty(json: &Json, nesting: usize, out: &mut String) {
    match json {
        Json::Object(obj) if obj.is_empty() => out.push_str("{ }"),
        Json::Object(obj) => {
            let mut keys: Vec<&String> = obj.keys().collect();
            // A record field is {name, type, doc}: "name" before "type" there.
            let is_field = obj.contains_key("name") && !obj.contains_key("fields");
            keys.sort_by_key(|k| {
                let rank = if is_field && k.as_str() == "name" {
                    0
                } else {
                    key_rank(k).saturating_add(1)
                };
                (rank, k.to_string())
            });
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                out.push_str(&"  ".repeat(nesting + 1));
                out.push_str(&Json::String((*k).clone()).to_string());
                out.push_str(" : ");
                pretty(&obj[k.as_str()], nesting + 1, out);
            }
            out.push('\n');
            out.push_str(&"  ".repeat(nesting));
            out.push('}');
        }
        Json::Array(items) if items.is_empty() => out.push_str("[ ]"),
        Json::Array(items) => {
            out.push_str("[ ");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                pretty(v, nesting, out);
            }
            out.push_str(" ]");
        }
        other => out.push_str(&other.to_string()),
    }
}

fn bad(path: &str, reason: impl Into<String>) -> JvmError {
    JvmError::Schema(crate::stream::SchemaError::new(path, reason.into()))
}

/// `AvroConversions.toChrononSchema` of schema text whose root is a record.
pub fn struct_from_avro_text(text: &str, clean_names: bool) -> Result<StructType, JvmError> {
    let json: Json = serde_json::from_str(text).map_err(|e| bad("$", format!("not JSON: {e}")))?;
    match type_from_avro(&json, clean_names, "$")? {
        DataType::Struct(s) => Ok(s),
        other => Err(bad("$", format!("the root is {other}, not a record"))),
    }
}

fn cleaned(name: &str, clean_names: bool) -> String {
    match name.find(REPETITION_SUFFIX) {
        Some(i) if clean_names => name[..i].to_string(),
        _ => name.to_string(),
    }
}

fn primitive(name: &str, path: &str) -> Result<DataType, JvmError> {
    Ok(match name {
        "string" => DataType::String,
        "int" => DataType::Int,
        "long" => DataType::Long,
        "float" => DataType::Float,
        "double" => DataType::Double,
        "bytes" => DataType::Binary,
        "boolean" => DataType::Boolean,
        other => {
            return Err(bad(
                path,
                format!("type {other:?} has no Chronon form (AvroConversions.toChrononSchema)"),
            ))
        }
    })
}

fn type_from_avro(json: &Json, clean_names: bool, path: &str) -> Result<DataType, JvmError> {
    match json {
        Json::String(name) => primitive(name, path),
        Json::Array(branches) => {
            // Unions only represent nullability; the JVM reads branch 1.
            match branches.as_slice() {
                [Json::String(n), t] if n == "null" => {
                    type_from_avro(t, clean_names, &format!("{path}[1]"))
                }
                _ => Err(bad(
                    path,
                    "a union must be [\"null\", T]: the JVM reads branch 1 and writes null as branch 0",
                )),
            }
        }
        Json::Object(obj) => {
            let ty = obj
                .get("type")
                .ok_or_else(|| bad(path, "a schema object needs \"type\""))?;
            match ty.as_str() {
                Some("record") => {
                    let name = obj.get("name").and_then(Json::as_str).unwrap_or("");
                    let fields = obj
                        .get("fields")
                        .and_then(Json::as_array)
                        .ok_or_else(|| bad(path, "a record needs \"fields\""))?;
                    let mut out = Vec::with_capacity(fields.len());
                    for (i, f) in fields.iter().enumerate() {
                        let fpath = format!("{path}.fields[{i}]");
                        let fname = f
                            .get("name")
                            .and_then(Json::as_str)
                            .ok_or_else(|| bad(&fpath, "a field needs a \"name\""))?;
                        let ftype = f
                            .get("type")
                            .ok_or_else(|| bad(&fpath, "a field needs a \"type\""))?;
                        out.push(StructField::new(
                            cleaned(fname, clean_names),
                            type_from_avro(ftype, clean_names, &fpath)?,
                        ));
                    }
                    Ok(DataType::Struct(StructType::new(
                        cleaned(name, clean_names),
                        out,
                    )))
                }
                Some("array") => {
                    let items = obj
                        .get("items")
                        .ok_or_else(|| bad(path, "an array needs \"items\""))?;
                    Ok(DataType::list(type_from_avro(
                        items,
                        clean_names,
                        &format!("{path}.items"),
                    )?))
                }
                Some("map") => {
                    let values = obj
                        .get("values")
                        .ok_or_else(|| bad(path, "a map needs \"values\""))?;
                    Ok(DataType::map(
                        DataType::String,
                        type_from_avro(values, clean_names, &format!("{path}.values"))?,
                    ))
                }
                Some("int") => match obj.get("logicalType").and_then(Json::as_str) {
                    None => Ok(DataType::Int),
                    Some("byte") => Ok(DataType::Byte),
                    Some("short") => Ok(DataType::Short),
                    Some(other) => Err(bad(path, format!("unknown logicalType {other:?} on int"))),
                },
                Some(name) => primitive(name, path),
                None => type_from_avro(ty, clean_names, path),
            }
        }
        other => Err(bad(path, format!("not an Avro schema: {other}"))),
    }
}
