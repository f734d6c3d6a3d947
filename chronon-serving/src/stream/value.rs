//! Values and rows (Chronon's `Array[Any]` rows with boxed, nullable Java values).
//!
//! Every column is nullable, as in Chronon (`Api.scala`: "everything is nullable"). Inside a list
//! or a map, elements, keys and values are not: Chronon's Avro layout (`AvroConversions
//! .fromChrononSchema`) makes only struct fields nullable, so a null element could not be stored.

use std::fmt;

use base64::Engine;
use serde_json::{Map as JsonMap, Number, Value as Json};

use super::schema::{DataType, StructType};

/// One value of a [`DataType`].
#[derive(Debug, Clone)]
pub enum Value {
    /// A missing value (any column may be null).
    Null,
    /// `boolean`.
    Boolean(bool),
    /// `byte`.
    Byte(i8),
    /// `short`.
    Short(i16),
    /// `int`.
    Int(i32),
    /// `long`.
    Long(i64),
    /// `float`.
    Float(f32),
    /// `double`.
    Double(f64),
    /// `string`.
    String(String),
    /// `binary`.
    Binary(Vec<u8>),
    /// `date`: days since 1970-01-01.
    Date(i32),
    /// `timestamp`: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// `list`.
    List(Vec<Value>),
    /// `map`, entries in their original order.
    Map(Vec<(Value, Value)>),
    /// `struct`, one value per field.
    Struct(Vec<Value>),
}

/// A row: one value per column of its [`StructType`].
pub type Row = Vec<Value>;

/// Equality that treats floats by their bits, so `NaN == NaN` and `0.0 != -0.0`: two rows are
/// equal exactly when they encode to the same bytes (used to drop no-op updates, as Chronon's
/// streaming job drops mutations whose `before sameElements after`).
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Boolean(a), Boolean(b)) => a == b,
            (Byte(a), Byte(b)) => a == b,
            (Short(a), Short(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Long(a), Long(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Double(a), Double(b)) => a.to_bits() == b.to_bits(),
            (String(a), String(b)) => a == b,
            (Binary(a), Binary(b)) => a == b,
            (Date(a), Date(b)) => a == b,
            (Timestamp(a), Timestamp(b)) => a == b,
            (List(a), List(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (Struct(a), Struct(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

macro_rules! value_from {
    ($($t:ty => $v:ident),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$v(v.into())
            }
        })*
    };
}

value_from!(bool => Boolean, i8 => Byte, i16 => Short, i32 => Int, i64 => Long, f32 => Float, f64 => Double,
    String => String, &str => String, Vec<u8> => Binary);

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A value that does not match its type; `path` names the spot (`tags[2]`, `address.zip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMismatch {
    /// Where inside the column (empty for the column itself).
    pub path: String,
    /// The type expected there.
    pub expected: String,
    /// What was found.
    pub found: String,
}

impl fmt::Display for TypeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "expected {}, found {}", self.expected, self.found)
        } else {
            write!(
                f,
                "at {}: expected {}, found {}",
                self.path, self.expected, self.found
            )
        }
    }
}

impl Value {
    /// A short description for error messages (`long 5`, `string "abc"`, `null`).
    pub fn describe(&self) -> String {
        let s = match self {
            Value::Null => "null".to_string(),
            Value::Boolean(v) => format!("boolean {v}"),
            Value::Byte(v) => format!("byte {v}"),
            Value::Short(v) => format!("short {v}"),
            Value::Int(v) => format!("int {v}"),
            Value::Long(v) => format!("long {v}"),
            Value::Float(v) => format!("float {v}"),
            Value::Double(v) => format!("double {v}"),
            Value::String(v) => format!("string {:?}", truncate(v, 40)),
            Value::Binary(v) => format!("binary of {} bytes", v.len()),
            Value::Date(v) => format!("date {}", format_date(*v)),
            Value::Timestamp(v) => format!("timestamp {v}"),
            Value::List(v) => format!("list of {}", v.len()),
            Value::Map(v) => format!("map of {}", v.len()),
            Value::Struct(v) => format!("struct of {}", v.len()),
        };
        s
    }

    /// Checks that this value (null allowed) is of type `dt`.
    pub fn check(&self, dt: &DataType) -> Result<(), TypeMismatch> {
        self.check_at(dt, &mut String::new(), true)
    }

    fn check_at(
        &self,
        dt: &DataType,
        path: &mut String,
        nullable: bool,
    ) -> Result<(), TypeMismatch> {
        let ok = match (self, dt) {
            (Value::Null, _) => nullable,
            (Value::Boolean(_), DataType::Boolean)
            | (Value::Byte(_), DataType::Byte)
            | (Value::Short(_), DataType::Short)
            | (Value::Int(_), DataType::Int)
            | (Value::Long(_), DataType::Long)
            | (Value::Float(_), DataType::Float)
            | (Value::Double(_), DataType::Double)
            | (Value::String(_), DataType::String)
            | (Value::Binary(_), DataType::Binary)
            | (Value::Date(_), DataType::Date)
            | (Value::Timestamp(_), DataType::Timestamp) => true,
            (Value::List(items), DataType::List(e)) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    item.check_at(e, path, false)?;
                    path.truncate(len);
                }
                true
            }
            (Value::Map(entries), DataType::Map(k, v)) => {
                for (key, value) in entries {
                    let len = path.len();
                    path.push_str("{key}");
                    key.check_at(k, path, false)?;
                    path.truncate(len);
                    path.push_str(&format!("[{}]", truncate(&key.to_text(), 20)));
                    value.check_at(v, path, false)?;
                    path.truncate(len);
                }
                true
            }
            (Value::Struct(values), DataType::Struct(st)) => {
                if values.len() != st.fields.len() {
                    return Err(TypeMismatch {
                        path: path.clone(),
                        expected: format!("struct {} of {} fields", st.name, st.fields.len()),
                        found: format!("{} values", values.len()),
                    });
                }
                for (value, field) in values.iter().zip(&st.fields) {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&field.name);
                    value.check_at(&field.data_type, path, true)?;
                    path.truncate(len);
                }
                true
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(TypeMismatch {
                path: path.clone(),
                expected: if matches!(self, Value::Null) {
                    format!("a non-null {dt} (list elements and map entries cannot be null)")
                } else {
                    dt.to_string()
                },
                found: self.describe(),
            })
        }
    }

    /// The value as text: scalars as a CSV cell would hold them (binary as base64, dates as
    /// `YYYY-MM-DD`, timestamps as epoch milliseconds), composites as JSON.
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Boolean(v) => v.to_string(),
            Value::Byte(v) => v.to_string(),
            Value::Short(v) => v.to_string(),
            Value::Int(v) => v.to_string(),
            Value::Long(v) => v.to_string(),
            Value::Float(v) => format_float(*v as f64, v.is_finite(), &v.to_string()),
            Value::Double(v) => format_float(*v, v.is_finite(), &v.to_string()),
            Value::String(v) => v.clone(),
            Value::Binary(v) => base64::engine::general_purpose::STANDARD.encode(v),
            Value::Date(v) => format_date(*v),
            Value::Timestamp(v) => v.to_string(),
            Value::List(_) | Value::Map(_) | Value::Struct(_) => self.to_json().to_string(),
        }
    }

    /// The value as JSON, in the form the JSON decoder reads back: numbers as numbers (non-finite
    /// floats as the strings `NaN`, `Infinity`, `-Infinity`), binary as base64, dates as
    /// `YYYY-MM-DD`, timestamps as epoch milliseconds, maps as `[[key, value], ...]` pairs (keys
    /// need not be strings), structs as arrays in field order.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Boolean(v) => Json::Bool(*v),
            Value::Byte(v) => Json::from(*v),
            Value::Short(v) => Json::from(*v),
            Value::Int(v) => Json::from(*v),
            Value::Long(v) => Json::from(*v),
            Value::Float(v) => Number::from_f64(*v as f64)
                .map(Json::Number)
                .unwrap_or_else(|| Json::String(self.to_text())),
            Value::Double(v) => Number::from_f64(*v)
                .map(Json::Number)
                .unwrap_or_else(|| Json::String(self.to_text())),
            Value::String(v) => Json::String(v.clone()),
            Value::Binary(_) | Value::Date(_) => Json::String(self.to_text()),
            Value::Timestamp(v) => Json::from(*v),
            Value::List(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(entries) => Json::Array(
                entries
                    .iter()
                    .map(|(k, v)| Json::Array(vec![k.to_json(), v.to_json()]))
                    .collect(),
            ),
            Value::Struct(values) => Json::Array(values.iter().map(Value::to_json).collect()),
        }
    }

    /// A row as a JSON object keyed by column name (for logs and dead letters).
    pub fn row_to_json(schema: &StructType, row: &[Value]) -> Json {
        let mut obj = JsonMap::new();
        for (field, value) in schema.fields.iter().zip(row) {
            obj.insert(field.name.clone(), value.to_json());
        }
        Json::Object(obj)
    }
}

fn format_float(v: f64, finite: bool, shortest: &str) -> String {
    if finite {
        shortest.to_string()
    } else if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "Infinity".into()
    } else {
        "-Infinity".into()
    }
}

/// At most `max` characters of `s` (on a char boundary), with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD` (years outside 0..=9999 are written with their sign and all digits).
pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(days as i64);
    if (0..=9999).contains(&y) {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        format!("{y:+05}-{m:02}-{d:02}")
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses `YYYY-MM-DD` (optionally signed year) to days since the epoch.
pub fn parse_date(text: &str) -> Option<i32> {
    let (neg, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let mut parts = rest.splitn(3, '-');
    let (ys, ms, ds) = (parts.next()?, parts.next()?, parts.next()?);
    if ys.len() < 4
        || ms.len() != 2
        || ds.len() != 2
        || !all_digits(ys)
        || !all_digits(ms)
        || !all_digits(ds)
    {
        return None;
    }
    let y: i64 = ys.parse().ok()?;
    let y = if neg { -y } else { y };
    let m: u32 = ms.parse().ok()?;
    let d: u32 = ds.parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || y.abs() > 6_000_000 {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a timestamp: epoch milliseconds (`1700000000000`) or an ISO-8601 date-time
/// (`2024-01-31T12:00:00Z`, `2024-01-31 12:00:00.250`, `2024-01-31T12:00:00+02:00`; no zone means
/// UTC), to epoch milliseconds.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    if text.len() < 10 || !text.is_char_boundary(10) {
        return None;
    }
    let days = parse_date(&text[..10])? as i64;
    let rest = &text[10..];
    if rest.is_empty() {
        return days.checked_mul(86_400_000);
    }
    let rest = rest.strip_prefix(['T', ' '])?;
    // Split off the zone: `Z`, or `+hh:mm` / `-hh:mm` / `+hhmm` after the time.
    let (time, offset_ms) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0i64)
    } else if let Some(pos) = rest.rfind(['+', '-']) {
        let zone = &rest[pos + 1..];
        let sign = if rest.as_bytes()[pos] == b'-' { -1 } else { 1 };
        let digits: String = zone.chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !all_digits(&digits) {
            return None;
        }
        let h: i64 = digits[..2].parse().ok()?;
        let m: i64 = digits[2..].parse().ok()?;
        if h > 23 || m > 59 {
            return None;
        }
        (&rest[..pos], sign * (h * 3_600_000 + m * 60_000))
    } else {
        (rest, 0)
    };
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (time, None),
    };
    let mut it = hms.split(':');
    let h = it.next()?;
    let mi = it.next()?;
    let s = it.next().unwrap_or("00");
    if it.next().is_some() || [h, mi, s].iter().any(|p| p.len() != 2 || !all_digits(p)) {
        return None;
    }
    let (h, mi, s): (i64, i64, i64) = (h.parse().ok()?, mi.parse().ok()?, s.parse().ok()?);
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let millis = match frac {
        None => 0,
        Some(f) if all_digits(f) && f.len() <= 9 => {
            let padded = format!("{f:0<3}");
            padded[..3].parse::<i64>().ok()?
        }
        Some(_) => return None,
    };
    days.checked_mul(86_400_000)?
        .checked_add(h * 3_600_000 + mi * 60_000 + s * 1000 + millis)?
        .checked_sub(offset_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for d in [-800_000, -1, 0, 1, 19_000, 2_932_896, 3_000_000] {
            assert_eq!(
                parse_date(&format_date(d)),
                Some(d),
                "{d} {}",
                format_date(d)
            );
        }
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-02-30"), None);
        assert_eq!(parse_date("2024-2-03"), None);
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_timestamp("1700000000000"), Some(1_700_000_000_000));
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5"), Some(1500));
        assert_eq!(parse_timestamp("1970-01-01T02:00:00+02:00"), Some(0));
        assert_eq!(parse_timestamp("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_timestamp("1970-01-01T25:00:00"), None);
        assert_eq!(parse_timestamp("nope"), None);
        assert_eq!(parse_timestamp("ééééééééééé"), None);
    }

    #[test]
    fn check_names_the_path() {
        let st = StructType::new(
            "s",
            vec![super::super::schema::StructField::new(
                "tags",
                DataType::list(DataType::Int),
            )],
        );
        let v = Value::Struct(vec![Value::List(vec![Value::Int(1), Value::Null])]);
        let e = v.check(&DataType::Struct(st)).unwrap_err();
        assert_eq!(e.path, "tags[1]");
    }
}
