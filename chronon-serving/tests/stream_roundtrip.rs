//! Round trips for every data type: schema JSON, Avro rows (against `apache-avro` too), keys,
//! and the CSV and JSON decoders reading back what was written.

use chronon_serving::stream::{
    csv, json, CsvDecoder, DataType, JsonDecoder, KeyCodec, RowCodec, StreamDecoder, StructField,
    StructType, Value,
};
use proptest::prelude::*;

fn scalar_type() -> impl Strategy<Value = DataType> {
    prop_oneof![
        Just(DataType::Boolean),
        Just(DataType::Byte),
        Just(DataType::Short),
        Just(DataType::Int),
        Just(DataType::Long),
        Just(DataType::Float),
        Just(DataType::Double),
        Just(DataType::String),
        Just(DataType::Binary),
        Just(DataType::Date),
        Just(DataType::Timestamp),
    ]
}

fn data_type() -> impl Strategy<Value = DataType> {
    scalar_type().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(DataType::list),
            (inner.clone(), inner.clone()).prop_map(|(k, v)| DataType::map(k, v)),
            (scalar_type(), inner.clone()).prop_map(|(k, v)| DataType::map(k, v)),
            inner
                .clone()
                .prop_map(|v| DataType::map(DataType::String, v)),
            prop::collection::vec(inner, 1..4)
                .prop_map(|types| DataType::Struct(struct_of("inner", types))),
        ]
    })
}

fn struct_of(name: &str, types: Vec<DataType>) -> StructType {
    StructType::new(
        name,
        types
            .into_iter()
            .enumerate()
            .map(|(i, t)| StructField::new(format!("f{i}"), t))
            .collect(),
    )
}

fn schema() -> impl Strategy<Value = StructType> {
    prop::collection::vec(data_type(), 1..6).prop_map(|types| struct_of("row", types))
}

fn canonical_nan(f: f64) -> f64 {
    if f.is_nan() {
        f64::NAN
    } else {
        f
    }
}

/// A non-null value of `dt`.
fn value_of(dt: &DataType) -> BoxedStrategy<Value> {
    match dt {
        DataType::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        DataType::Byte => any::<i8>().prop_map(Value::Byte).boxed(),
        DataType::Short => any::<i16>().prop_map(Value::Short).boxed(),
        DataType::Int => any::<i32>().prop_map(Value::Int).boxed(),
        DataType::Long => any::<i64>().prop_map(Value::Long).boxed(),
        DataType::Float => any::<f32>()
            .prop_map(|f| Value::Float(canonical_nan(f as f64) as f32))
            .boxed(),
        DataType::Double => any::<f64>()
            .prop_map(|f| Value::Double(canonical_nan(f)))
            .boxed(),
        DataType::String => any::<String>().prop_map(Value::String).boxed(),
        DataType::Binary => prop::collection::vec(any::<u8>(), 0..12)
            .prop_map(Value::Binary)
            .boxed(),
        DataType::Date => (-2_000_000_000i32..2_000_000_000)
            .prop_map(Value::Date)
            .boxed(),
        DataType::Timestamp => any::<i64>().prop_map(Value::Timestamp).boxed(),
        DataType::List(e) => prop::collection::vec(value_of(e), 0..4)
            .prop_map(Value::List)
            .boxed(),
        // Distinct keys: an Avro map (like Chronon's Java maps) holds each key once, so a row
        // with a repeated key cannot round-trip and is not a valid map value.
        DataType::Map(k, v) => prop::collection::vec((value_of(k), value_of(v)), 0..4)
            .prop_map(|entries| {
                let mut seen = Vec::new();
                let distinct = entries
                    .into_iter()
                    .filter(|(key, _)| {
                        let new = !seen.contains(key);
                        if new {
                            seen.push(key.clone());
                        }
                        new
                    })
                    .collect();
                Value::Map(distinct)
            })
            .boxed(),
        DataType::Struct(st) => row_of(st).prop_map(Value::Struct).boxed(),
    }
}

/// A row of `st`, each column null one time in five.
fn row_of(st: &StructType) -> BoxedStrategy<Vec<Value>> {
    st.fields
        .iter()
        .map(|f| prop_oneof![1 => Just(Value::Null), 4 => value_of(&f.data_type)].boxed())
        .collect::<Vec<_>>()
        .boxed()
}

fn schema_and_row() -> impl Strategy<Value = (StructType, Vec<Value>)> {
    schema().prop_flat_map(|st| {
        let rows = row_of(&st);
        (Just(st), rows)
    })
}

/// Sorts map entries so maps compare as sets (apache-avro reads maps into a `HashMap`).
fn normalize(v: &Value) -> Value {
    match v {
        Value::List(items) => Value::List(items.iter().map(normalize).collect()),
        Value::Struct(items) => Value::Struct(items.iter().map(normalize).collect()),
        Value::Map(entries) => {
            let mut e: Vec<(Value, Value)> = entries
                .iter()
                .map(|(k, v)| (normalize(k), normalize(v)))
                .collect();
            e.sort_by_key(|(k, v)| format!("{k:?}{v:?}"));
            Value::Map(e)
        }
        other => other.clone(),
    }
}

fn has_big_string_map(v: &Value) -> bool {
    match v {
        Value::List(items) | Value::Struct(items) => items.iter().any(has_big_string_map),
        Value::Map(entries) => {
            (entries.len() > 1 && matches!(entries.first(), Some((Value::String(_), _))))
                || entries
                    .iter()
                    .any(|(k, v)| has_big_string_map(k) || has_big_string_map(v))
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn schema_json_round_trips(st in schema()) {
        let text = st.to_json_string();
        prop_assert_eq!(StructType::from_json_str(&text).unwrap(), st);
    }

    #[test]
    fn avro_rows_round_trip_and_match_apache_avro((st, row) in schema_and_row()) {
        let codec = RowCodec::new(&st).unwrap();
        let bytes = codec.encode(&row).unwrap();
        prop_assert_eq!(&codec.decode(&bytes).unwrap(), &row);
        // apache-avro reads the same bytes to the same row (maps compared as sets) ...
        let via_apache = codec.decode_with_apache(&bytes).unwrap();
        prop_assert_eq!(normalize(&Value::Struct(via_apache)), normalize(&Value::Struct(row.clone())));
        // ... and writes the same bytes (Avro maps have no order; apache-avro's HashMap
        // iteration order only matches ours for maps of at most one entry).
        if !has_big_string_map(&Value::Struct(row.clone())) {
            prop_assert_eq!(codec.encode_with_apache(&row).unwrap(), bytes);
        }
    }

    #[test]
    fn keys_round_trip_and_are_deterministic((st, row) in schema_and_row()) {
        let keys: Vec<String> = st.fields.iter().map(|f| f.name.clone()).collect();
        let kc = KeyCodec::new(&st, &keys).unwrap();
        match kc.encode_row(&row) {
            Ok(bytes) => {
                prop_assert_eq!(kc.encode_row(&row).unwrap(), bytes.clone());
                let back = kc.decode(&bytes).unwrap();
                prop_assert_eq!(normalize(&Value::Struct(back)), normalize(&Value::Struct(row.clone())));
            }
            Err(_) => prop_assert!(row.iter().all(|v| *v == Value::Null)),
        }
    }

    #[test]
    fn json_decoder_reads_back_every_type((st, row) in schema_and_row()) {
        let text = json::format_row(&st, &row);
        let m = JsonDecoder::new(st.clone()).decode(text.as_bytes()).unwrap().unwrap();
        prop_assert_eq!(m.after().unwrap(), &row, "{}", text);
    }

    #[test]
    fn csv_decoder_reads_back_every_type((st, row) in schema_and_row()) {
        // CSV cannot tell an empty string or empty binary from null: those read back as null.
        let expected: Vec<Value> = row
            .iter()
            .map(|v| match v {
                Value::String(s) if s.is_empty() => Value::Null,
                Value::Binary(b) if b.is_empty() => Value::Null,
                other => other.clone(),
            })
            .collect();
        let line = csv::format_row(&row, b',');
        let d = CsvDecoder::new(st.clone()).skip_header(false);
        match d.decode(line.as_bytes()).unwrap() {
            Some(m) => prop_assert_eq!(m.after().unwrap(), &expected, "{}", line),
            // A blank line is skipped as a heartbeat: only when every column is blank.
            None => prop_assert!(line.trim().is_empty(), "{:?}", line),
        }
    }
}

#[test]
fn every_scalar_type_has_a_name_and_a_json_form() {
    for (name, dt) in [
        ("boolean", DataType::Boolean),
        ("byte", DataType::Byte),
        ("short", DataType::Short),
        ("int", DataType::Int),
        ("long", DataType::Long),
        ("float", DataType::Float),
        ("double", DataType::Double),
        ("string", DataType::String),
        ("binary", DataType::Binary),
        ("date", DataType::Date),
        ("timestamp", DataType::Timestamp),
    ] {
        assert_eq!(dt.to_json(), serde_json::json!(name));
        assert_eq!(
            DataType::from_json(&serde_json::json!(name), "$").unwrap(),
            dt
        );
    }
}
