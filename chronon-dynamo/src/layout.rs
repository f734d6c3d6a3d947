//! Chronon's DynamoDB table layout (zipline-ai/chronon `DynamoDBKVStoreImpl` and
//! `DynamoDBKVStoreConstants`): attribute names, table names, items, and the list cursor.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, KeySchemaElement, KeyType};
use bytes::Bytes;
use chronon_core::{key_preview, DatasetKind, KvError, ListCursor, TimedValue};

use crate::config::SCHEME;

/// Partition key: the key bytes (Chronon's `partitionKeyColumn`).
pub const KEY_ATTR: &str = "keyBytes";
/// The value bytes (Chronon's `"valueBytes"`).
pub const VALUE_ATTR: &str = "valueBytes";
/// The version timestamp in milliseconds (Chronon's `sortKeyColumn = Constants.TimeColumn`): the
/// sort key of `TimeSeries` tables, a plain attribute of `Snapshot` tables (Chronon writes it on
/// every item too).
pub const TS_ATTR: &str = "ts";
/// DynamoDB's TTL attribute, in epoch seconds (Chronon enables TTL on `"ttl"`).
pub const TTL_ATTR: &str = "ttl";
/// Metadata table: partition key, the dataset name.
pub const META_DATASET_ATTR: &str = "dataset";
/// Metadata table: the dataset's TTL in milliseconds (absent: no TTL).
pub const META_TTL_ATTR: &str = "ttlMillis";
/// Metadata table: the kind, for humans (the table's key schema is what counts).
pub const META_KIND_ATTR: &str = "kind";

/// Keys per `BatchGetItem` (DynamoDB's limit).
pub const GET_BATCH: usize = 100;
/// Items per `BatchWriteItem` (DynamoDB's limit).
pub const PUT_BATCH: usize = 25;

/// DynamoDB's item size limit: 400 KB, counting attribute names and values.
pub const MAX_ITEM_BYTES: usize = 400 * 1000;
/// Room kept for everything but the value: the longest key (1024 bytes), the attribute names
/// (`keyBytes`, `valueBytes`, `ts`, `ttl`: 23 bytes) and two numbers (at most 21 bytes each),
/// rounded up to 2 KiB.
pub const ITEM_OVERHEAD_BYTES: usize = 2048;
/// The largest value a put may carry so the item always fits: 397,952 bytes (≥ 300 KiB).
pub const MAX_VALUE_BYTES: usize = MAX_ITEM_BYTES - ITEM_OVERHEAD_BYTES;

/// The physical table of `dataset`: `prefix + dataset`, padded with `.` to DynamoDB's 3-character
/// minimum. Dataset names never contain `.`, so the padding cannot collide with another dataset.
pub fn table_name(prefix: &str, dataset: &str) -> String {
    let mut name = format!("{prefix}{dataset}");
    while name.len() < 3 {
        name.push('.');
    }
    name
}

/// The kind a table's key schema says: a `RANGE` key on `ts` is a `TimeSeries` table.
pub fn kind_from_key_schema(schema: &[KeySchemaElement]) -> DatasetKind {
    let ranged = schema
        .iter()
        .any(|k| k.key_type() == &KeyType::Range && k.attribute_name() == TS_ATTR);
    if ranged {
        DatasetKind::TimeSeries
    } else {
        DatasetKind::Snapshot
    }
}

/// A binary attribute.
pub fn blob(bytes: &[u8]) -> AttributeValue {
    AttributeValue::B(Blob::new(bytes.to_vec()))
}

/// A number attribute.
pub fn num(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// The primary key of an item: `keyBytes`, plus `ts` for `TimeSeries` tables.
pub fn primary_key(kind: DatasetKind, key: &[u8], ts: i64) -> HashMap<String, AttributeValue> {
    let mut m = HashMap::with_capacity(2);
    m.insert(KEY_ATTR.to_string(), blob(key));
    if kind == DatasetKind::TimeSeries {
        m.insert(TS_ATTR.to_string(), num(ts));
    }
    m
}

/// A full item as Chronon writes it: `keyBytes`, `valueBytes`, `ts`, and `ttl` (epoch seconds
/// when the value expires: its own timestamp plus the dataset's TTL) when the dataset has one.
pub fn item(
    key: &[u8],
    value: &[u8],
    ts: i64,
    ttl_millis: Option<i64>,
) -> HashMap<String, AttributeValue> {
    let mut m = HashMap::with_capacity(4);
    m.insert(KEY_ATTR.to_string(), blob(key));
    m.insert(VALUE_ATTR.to_string(), blob(value));
    m.insert(TS_ATTR.to_string(), num(ts));
    if let Some(ttl) = ttl_millis {
        m.insert(TTL_ATTR.to_string(), num(ts.saturating_add(ttl) / 1000));
    }
    m
}

/// An item read back: its key and its value with the timestamp. An item without a `ts` (not
/// written in Chronon's layout) reads as timestamp 0, never as the time of the read
/// (`chronon-core/CONTRACT.md`, `multi_get`).
///
/// The item is taken apart in one pass over its few attributes, and its blobs are moved, not
/// copied: looking each attribute up hashes its name, and on a 100-key read the lookups and
/// copies were a measurable part of the adapter's cost (BENCHMARKS.md).
pub fn read_item(
    item: HashMap<String, AttributeValue>,
    dataset: &str,
) -> Result<(Bytes, TimedValue), KvError> {
    let (mut key, mut value, mut ts) = (None, None, Ok(0));
    for (name, attr) in item {
        match (name.as_str(), attr) {
            (KEY_ATTR, AttributeValue::B(b)) => key = Some(Bytes::from(b.into_inner())),
            (VALUE_ATTR, AttributeValue::B(b)) => value = Some(Bytes::from(b.into_inner())),
            (TS_ATTR, AttributeValue::N(n)) => {
                ts = n
                    .parse::<i64>()
                    .map_err(|e| format!("{TS_ATTR} {n:?} is not a millisecond timestamp: {e}"))
            }
            (TS_ATTR, other) => ts = Err(format!("{TS_ATTR} is {other:?}, not a number")),
            _ => {}
        }
    }
    let Some(key) = key else {
        return Err(KvError::backend_msg(
            SCHEME,
            format!("reading dataset {dataset:?}"),
            format!("an item has no binary {KEY_ATTR} attribute"),
        ));
    };
    let context = || format!("reading key {} of dataset {dataset:?}", key_preview(&key));
    let ts = ts.map_err(|e| KvError::backend_msg(SCHEME, context(), e))?;
    match value {
        Some(bytes) => Ok((key, TimedValue::new(bytes, ts))),
        None => Err(KvError::backend_msg(
            SCHEME,
            context(),
            format!("the item has no binary {VALUE_ATTR} attribute"),
        )),
    }
}

/// Where a `list` continues: just after the item `(key, ts)` (the last version of the last key
/// a page covered). Encoded as one byte for the kind, 8 bytes of big-endian `ts` for
/// `TimeSeries` tables, then the key.
pub fn encode_cursor(kind: DatasetKind, key: &[u8], ts: i64) -> ListCursor {
    let mut out = Vec::with_capacity(key.len() + 9);
    match kind {
        DatasetKind::Snapshot => out.push(0),
        DatasetKind::TimeSeries => {
            out.push(1);
            out.extend_from_slice(&ts.to_be_bytes());
        }
    }
    out.extend_from_slice(key);
    ListCursor(Bytes::from(out))
}

/// The `ExclusiveStartKey` a cursor stands for, checked against the dataset's kind.
pub fn decode_cursor(
    cursor: &ListCursor,
    kind: DatasetKind,
    dataset: &str,
) -> Result<HashMap<String, AttributeValue>, KvError> {
    let bad = |why: &str| KvError::InvalidRequest {
        dataset: dataset.to_string(),
        reason: format!("list cursor is not one this store handed out: {why}"),
    };
    let b = cursor.0.as_ref();
    match (kind, b.first()) {
        (DatasetKind::Snapshot, Some(0)) if b.len() > 1 => Ok(primary_key(kind, &b[1..], 0)),
        (DatasetKind::TimeSeries, Some(1)) if b.len() > 9 => {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&b[1..9]);
            Ok(primary_key(kind, &b[9..], i64::from_be_bytes(ts)))
        }
        (_, Some(0 | 1)) => Err(bad(
            "it was made for a dataset of another kind or is truncated",
        )),
        _ => Err(bad("unknown format")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert_eq!(table_name("", "a"), "a..");
        assert_eq!(table_name("", "ab"), "ab.");
        assert_eq!(table_name("", "abc"), "abc");
        assert_eq!(table_name("chronon_", "a"), "chronon_a");
    }

    #[test]
    fn max_value_fits_the_spec_floor() {
        const { assert!(MAX_VALUE_BYTES >= chronon_core::validate::MIN_MAX_VALUE_BYTES) };
        // The biggest item we can write stays under DynamoDB's limit.
        let names = KEY_ATTR.len() + VALUE_ATTR.len() + TS_ATTR.len() + TTL_ATTR.len();
        assert!(
            MAX_VALUE_BYTES + 1024 + names + 2 * 21 <= MAX_ITEM_BYTES,
            "{names}"
        );
    }

    #[test]
    fn items_round_trip() {
        let it = item(&[0, 255], &[1, 2, 3], 1_700_000_000_123, Some(3_600_000));
        assert_eq!(
            it.get(TTL_ATTR),
            Some(&AttributeValue::N("1700003600".into()))
        );
        let (key, tv) = read_item(it.clone(), "d").unwrap();
        assert_eq!(
            (key.as_ref(), tv.bytes.as_ref(), tv.millis),
            (&[0u8, 255][..], &[1u8, 2, 3][..], 1_700_000_000_123)
        );
        let without = |attr: &str| {
            let mut i = it.clone();
            i.remove(attr);
            read_item(i, "d")
        };
        assert_eq!(without(TS_ATTR).unwrap().1.millis, 0);
        let no_value = without(VALUE_ATTR).unwrap_err().to_string();
        assert!(
            no_value.contains(VALUE_ATTR) && no_value.contains("\"d\""),
            "{no_value}"
        );
        assert!(without(KEY_ATTR)
            .unwrap_err()
            .to_string()
            .contains(KEY_ATTR));
        let mut bad_ts = it;
        bad_ts.insert(TS_ATTR.into(), AttributeValue::S("soon".into()));
        let bad_ts = read_item(bad_ts, "d").unwrap_err().to_string();
        assert!(bad_ts.contains("not a number"), "{bad_ts}");
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor(DatasetKind::TimeSeries, b"k\x00", 42);
        let k = decode_cursor(&c, DatasetKind::TimeSeries, "d").unwrap();
        assert_eq!(k.get(TS_ATTR), Some(&num(42)));
        assert_eq!(k.get(KEY_ATTR), Some(&blob(b"k\x00")));
        assert!(decode_cursor(&c, DatasetKind::Snapshot, "d").is_err());
        let s = encode_cursor(DatasetKind::Snapshot, b"k", 0);
        assert_eq!(
            decode_cursor(&s, DatasetKind::Snapshot, "d").unwrap().len(),
            1
        );
        assert!(decode_cursor(
            &ListCursor(Bytes::from_static(b"\x07zz")),
            DatasetKind::Snapshot,
            "d"
        )
        .is_err());
        assert!(decode_cursor(&ListCursor(Bytes::new()), DatasetKind::Snapshot, "d").is_err());
    }
}
