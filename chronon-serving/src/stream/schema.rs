//! Chronon's data types (`ai.chronon.api.DataType`) and their JSON form.
//!
//! The type set is Chronon's: `boolean`, `byte`, `short`, `int`, `long`, `float`, `double`,
//! `string`, `binary`, `date`, `timestamp`, `list`, `map` and `struct` (Chronon's `UnknownType`
//! is left out: a stream row must be typed). A schema file is a struct in this JSON form:
//!
//! ```json
//! {"name": "purchases", "fields": [
//!   {"name": "user_id", "type": "string"},
//!   {"name": "price",   "type": "double"},
//!   {"name": "tags",    "type": {"type": "list", "element": "string"}},
//!   {"name": "attrs",   "type": {"type": "map", "key": "string", "value": "long"}},
//!   {"name": "ts",      "type": "long"}
//! ]}
//! ```
//!
//! Scalar types are strings (Chronon's `DataType.toString` names, with `bool`/`boolean`,
//! `integer`, `bytes` accepted as aliases); composites are objects with a `type` tag. Nested
//! structs are `{"type": "struct", "name": ..., "fields": [...]}`.

use std::fmt;

use serde_json::{json, Map as JsonMap, Value as Json};

/// How deep types may nest; deeper schemas are rejected instead of risking the stack.
pub const MAX_TYPE_DEPTH: usize = 32;

/// A column type (Chronon's `DataType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `BooleanType`.
    Boolean,
    /// `ByteType` (8-bit signed; Avro `int` with `logicalType: byte`, as Chronon writes it).
    Byte,
    /// `ShortType` (16-bit signed; Avro `int` with `logicalType: short`).
    Short,
    /// `IntType` (32-bit signed).
    Int,
    /// `LongType` (64-bit signed).
    Long,
    /// `FloatType`.
    Float,
    /// `DoubleType`.
    Double,
    /// `StringType` (UTF-8).
    String,
    /// `BinaryType` (bytes).
    Binary,
    /// `DateType`: days since 1970-01-01.
    Date,
    /// `TimestampType`: milliseconds since the Unix epoch (UTC).
    Timestamp,
    /// `ListType(elementType)`.
    List(Box<DataType>),
    /// `MapType(keyType, valueType)`.
    Map(Box<DataType>, Box<DataType>),
    /// `StructType(name, fields)`.
    Struct(StructType),
}

/// One named column of a [`StructType`] (Chronon's `StructField`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StructField {
    /// The column name.
    pub name: String,
    /// The column type.
    pub data_type: DataType,
}

/// A named list of columns (Chronon's `StructType(name, fields)`); also the schema of a row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StructType {
    /// The struct's name (becomes the Avro record name).
    pub name: String,
    /// The columns, in row order.
    pub fields: Vec<StructField>,
}

/// A schema that could not be read or is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schema at {path}: {reason}")]
pub struct SchemaError {
    /// Where in the schema (`$.fields[2].type`).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl SchemaError {
    pub(crate) fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        SchemaError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl StructField {
    /// A field named `name` of type `data_type`.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        StructField {
            name: name.into(),
            data_type,
        }
    }
}

impl DataType {
    /// `ListType(element)`.
    pub fn list(element: DataType) -> Self {
        DataType::List(Box::new(element))
    }

    /// `MapType(key, value)`.
    pub fn map(key: DataType, value: DataType) -> Self {
        DataType::Map(Box::new(key), Box::new(value))
    }

    /// Chronon's name for the type (`DataType.toString`): `int`, `bool`, `list_string`,
    /// `map_string_long`, `struct_NAME`.
    pub fn chronon_name(&self) -> String {
        match self {
            DataType::List(e) => format!("list_{}", e.chronon_name()),
            DataType::Map(k, v) => format!("map_{}_{}", k.chronon_name(), v.chronon_name()),
            DataType::Struct(s) => format!("struct_{}", s.name),
            DataType::Boolean => "bool".into(),
            other => other.scalar_name().unwrap_or("?").to_string(),
        }
    }

    /// The JSON name of a scalar type, `None` for composites.
    pub fn scalar_name(&self) -> Option<&'static str> {
        Some(match self {
            DataType::Boolean => "boolean",
            DataType::Byte => "byte",
            DataType::Short => "short",
            DataType::Int => "int",
            DataType::Long => "long",
            DataType::Float => "float",
            DataType::Double => "double",
            DataType::String => "string",
            DataType::Binary => "binary",
            DataType::Date => "date",
            DataType::Timestamp => "timestamp",
            DataType::List(_) | DataType::Map(..) | DataType::Struct(_) => return None,
        })
    }

    fn scalar_from_name(name: &str) -> Option<DataType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "boolean" | "bool" => DataType::Boolean,
            "byte" | "tinyint" => DataType::Byte,
            "short" | "smallint" => DataType::Short,
            "int" | "integer" => DataType::Int,
            "long" | "bigint" => DataType::Long,
            "float" => DataType::Float,
            "double" => DataType::Double,
            "string" => DataType::String,
            "binary" | "bytes" => DataType::Binary,
            "date" => DataType::Date,
            "timestamp" => DataType::Timestamp,
            _ => return None,
        })
    }

    /// The JSON form of this type (see the module docs).
    pub fn to_json(&self) -> Json {
        if let Some(name) = self.scalar_name() {
            return Json::String(name.to_string());
        }
        match self {
            DataType::List(e) => json!({"type": "list", "element": e.to_json()}),
            DataType::Map(k, v) => json!({"type": "map", "key": k.to_json(), "value": v.to_json()}),
            DataType::Struct(s) => {
                let mut obj = JsonMap::new();
                obj.insert("type".into(), Json::String("struct".into()));
                if let Json::Object(rest) = s.to_json() {
                    obj.extend(rest);
                }
                Json::Object(obj)
            }
            _ => Json::Null,
        }
    }

    /// Reads a type from its JSON form; `path` names the spot in errors.
    pub fn from_json(json: &Json, path: &str) -> Result<DataType, SchemaError> {
        Self::from_json_depth(json, path, 0)
    }

    fn from_json_depth(json: &Json, path: &str, depth: usize) -> Result<DataType, SchemaError> {
        if depth > MAX_TYPE_DEPTH {
            return Err(SchemaError::new(
                path,
                format!("types nest deeper than {MAX_TYPE_DEPTH} levels"),
            ));
        }
        match json {
            Json::String(name) => Self::scalar_from_name(name).ok_or_else(|| {
                SchemaError::new(
                    path,
                    format!(
                        "unknown type {name:?} (expected one of boolean, byte, short, int, long, float, \
                         double, string, binary, date, timestamp, or an object for list/map/struct)"
                    ),
                )
            }),
            Json::Object(obj) => {
                let tag = obj
                    .get("type")
                    .and_then(Json::as_str)
                    .ok_or_else(|| SchemaError::new(path, "a composite type needs a string \"type\""))?;
                match tag.to_ascii_lowercase().as_str() {
                    "list" | "array" => {
                        let e = obj
                            .get("element")
                            .ok_or_else(|| SchemaError::new(path, "a list needs an \"element\" type"))?;
                        Ok(DataType::list(Self::from_json_depth(e, &format!("{path}.element"), depth + 1)?))
                    }
                    "map" => {
                        let k = obj
                            .get("key")
                            .ok_or_else(|| SchemaError::new(path, "a map needs a \"key\" type"))?;
                        let v = obj
                            .get("value")
                            .ok_or_else(|| SchemaError::new(path, "a map needs a \"value\" type"))?;
                        Ok(DataType::map(
                            Self::from_json_depth(k, &format!("{path}.key"), depth + 1)?,
                            Self::from_json_depth(v, &format!("{path}.value"), depth + 1)?,
                        ))
                    }
                    "struct" | "record" => Ok(DataType::Struct(StructType::from_json_depth(json, path, depth + 1)?)),
                    other => match Self::scalar_from_name(other) {
                        Some(t) if obj.len() == 1 => Ok(t),
                        _ => Err(SchemaError::new(path, format!("unknown type {other:?}"))),
                    },
                }
            }
            other => Err(SchemaError::new(path, format!("expected a type name or object, found {other}"))),
        }
    }

    /// Whether a value of this type is a single Avro primitive (usable as a CSV cell as is).
    pub fn is_scalar(&self) -> bool {
        self.scalar_name().is_some()
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::List(e) => write!(f, "list<{e}>"),
            DataType::Map(k, v) => write!(f, "map<{k}, {v}>"),
            DataType::Struct(s) => write!(f, "struct {}", s.name),
            other => f.write_str(other.scalar_name().unwrap_or("?")),
        }
    }
}

impl StructType {
    /// A struct named `name` with `fields`.
    pub fn new(name: impl Into<String>, fields: Vec<StructField>) -> Self {
        StructType {
            name: name.into(),
            fields,
        }
    }

    /// The index of the column named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The type of the column named `name` (Chronon's `StructType.typeOf`).
    pub fn type_of(&self, name: &str) -> Option<&DataType> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| &f.data_type)
    }

    /// The column names in order.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.name.as_str())
    }

    /// Parses a schema file's text (see the module docs).
    pub fn from_json_str(text: &str) -> Result<StructType, SchemaError> {
        let json: Json = serde_json::from_str(text)
            .map_err(|e| SchemaError::new("$", format!("not JSON: {e}")))?;
        Self::from_json(&json)
    }

    /// Reads a schema from its JSON form.
    pub fn from_json(json: &Json) -> Result<StructType, SchemaError> {
        Self::from_json_depth(json, "$", 0)
    }

    /// Loads a schema file.
    pub fn load(path: &std::path::Path) -> Result<StructType, SchemaError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SchemaError::new("$", format!("cannot read {}: {e}", path.display())))?;
        Self::from_json_str(&text)
    }

    fn from_json_depth(json: &Json, path: &str, depth: usize) -> Result<StructType, SchemaError> {
        if depth > MAX_TYPE_DEPTH {
            return Err(SchemaError::new(
                path,
                format!("types nest deeper than {MAX_TYPE_DEPTH} levels"),
            ));
        }
        let obj = json.as_object().ok_or_else(|| {
            SchemaError::new(path, "a struct is an object with \"name\" and \"fields\"")
        })?;
        if let Some(tag) = obj.get("type") {
            if !matches!(tag.as_str(), Some("struct" | "record")) {
                return Err(SchemaError::new(
                    path,
                    format!("expected a struct, found type {tag}"),
                ));
            }
        }
        let name = match obj.get("name") {
            None => "row".to_string(),
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            Some(other) => {
                return Err(SchemaError::new(
                    format!("{path}.name"),
                    format!("expected a non-empty string, found {other}"),
                ))
            }
        };
        let fields_json = obj
            .get("fields")
            .and_then(Json::as_array)
            .ok_or_else(|| SchemaError::new(path, "a struct needs a \"fields\" array"))?;
        let mut fields = Vec::with_capacity(fields_json.len());
        for (i, f) in fields_json.iter().enumerate() {
            let fpath = format!("{path}.fields[{i}]");
            let fname = f
                .get("name")
                .and_then(Json::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    SchemaError::new(&fpath, "a field needs a non-empty string \"name\"")
                })?;
            let ftype = f.get("type").ok_or_else(|| {
                SchemaError::new(&fpath, format!("field {fname:?} needs a \"type\""))
            })?;
            let data_type = DataType::from_json_depth(ftype, &format!("{fpath}.type"), depth + 1)?;
            fields.push(StructField::new(fname, data_type));
        }
        let st = StructType { name, fields };
        st.check(path)?;
        Ok(st)
    }

    /// Checks what the JSON reader checks on a struct built in code: at least one field (Chronon
    /// asserts non-empty struct params) and unique, non-empty field names.
    pub fn validate(&self) -> Result<(), SchemaError> {
        self.check_deep("$", 0)
    }

    fn check(&self, path: &str) -> Result<(), SchemaError> {
        if self.fields.is_empty() {
            return Err(SchemaError::new(
                path,
                format!("struct {:?} has no fields", self.name),
            ));
        }
        for (i, f) in self.fields.iter().enumerate() {
            if f.name.is_empty() {
                return Err(SchemaError::new(
                    format!("{path}.fields[{i}]"),
                    "empty field name",
                ));
            }
            if self.fields[..i].iter().any(|g| g.name == f.name) {
                return Err(SchemaError::new(
                    format!("{path}.fields[{i}]"),
                    format!("duplicate field name {:?}", f.name),
                ));
            }
        }
        Ok(())
    }

    fn check_deep(&self, path: &str, depth: usize) -> Result<(), SchemaError> {
        self.check(path)?;
        for (i, f) in self.fields.iter().enumerate() {
            check_type(&f.data_type, &format!("{path}.fields[{i}].type"), depth + 1)?;
        }
        Ok(())
    }

    /// The JSON form of this schema (what [`StructType::from_json`] reads).
    pub fn to_json(&self) -> Json {
        let fields: Vec<Json> = self
            .fields
            .iter()
            .map(|f| json!({"name": f.name, "type": f.data_type.to_json()}))
            .collect();
        json!({"name": self.name, "fields": fields})
    }

    /// The schema as pretty-printed JSON.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string_pretty(&self.to_json()).unwrap_or_default()
    }
}

fn check_type(dt: &DataType, path: &str, depth: usize) -> Result<(), SchemaError> {
    if depth > MAX_TYPE_DEPTH {
        return Err(SchemaError::new(
            path,
            format!("types nest deeper than {MAX_TYPE_DEPTH} levels"),
        ));
    }
    match dt {
        DataType::List(e) => check_type(e, &format!("{path}.element"), depth + 1),
        DataType::Map(k, v) => {
            check_type(k, &format!("{path}.key"), depth + 1)?;
            check_type(v, &format!("{path}.value"), depth + 1)
        }
        DataType::Struct(s) => s.check_deep(path, depth + 1),
        _ => Ok(()),
    }
}

impl fmt::Display for StructType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}", field.name, field.data_type)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_type() {
        let text = r#"{"name": "ev", "fields": [
            {"name": "a", "type": "boolean"}, {"name": "b", "type": "byte"},
            {"name": "c", "type": "short"}, {"name": "d", "type": "int"},
            {"name": "e", "type": "long"}, {"name": "f", "type": "float"},
            {"name": "g", "type": "double"}, {"name": "h", "type": "string"},
            {"name": "i", "type": "binary"}, {"name": "j", "type": "date"},
            {"name": "k", "type": "timestamp"},
            {"name": "l", "type": {"type": "list", "element": "int"}},
            {"name": "m", "type": {"type": "map", "key": "string", "value": "double"}},
            {"name": "n", "type": {"type": "struct", "name": "inner", "fields": [{"name": "x", "type": "long"}]}}
        ]}"#;
        let st = StructType::from_json_str(text).unwrap();
        assert_eq!(st.fields.len(), 14);
        assert_eq!(st.type_of("l"), Some(&DataType::list(DataType::Int)));
        let again = StructType::from_json_str(&st.to_json_string()).unwrap();
        assert_eq!(st, again);
        assert_eq!(
            DataType::map(DataType::String, DataType::Long).chronon_name(),
            "map_string_long"
        );
    }

    #[test]
    fn rejects_bad_schemas_with_their_path() {
        let e = StructType::from_json_str(r#"{"fields": [{"name": "a", "type": "decimal"}]}"#)
            .unwrap_err();
        assert_eq!(e.path, "$.fields[0].type");
        let e = StructType::from_json_str(
            r#"{"fields": [{"name": "a", "type": "int"}, {"name": "a", "type": "int"}]}"#,
        )
        .unwrap_err();
        assert!(e.reason.contains("duplicate"));
        assert!(StructType::from_json_str(r#"{"fields": []}"#).is_err());
        let mut deep = String::from("\"int\"");
        for _ in 0..100 {
            deep = format!("{{\"type\": \"list\", \"element\": {deep}}}");
        }
        assert!(StructType::from_json_str(&format!(
            "{{\"fields\": [{{\"name\": \"a\", \"type\": {deep}}}]}}"
        ))
        .is_err());
    }
}
