//! The on-disk layout: field names (Chronon quickstart's `Constants`), the documents written, the
//! indexes, the metadata documents, and reading documents back.

use std::time::Duration;

use bytes::Bytes;
use chronon_core::{DatasetKind, DatasetProps, TimedValue};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{
    doc, Binary, Bson, DateTime, Document, RawBinaryRef, RawBsonRef, RawDocument, RawDocumentBuf,
};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;

/// Key field (quickstart `Constants.mongoKey`).
pub(crate) const KEY: &str = "keyBytes";
/// Value field (quickstart `Constants.mongoValue`).
pub(crate) const VALUE: &str = "valueBytes";
/// Version timestamp field, a BSON Long of epoch millis (quickstart `Constants.mongoTs`).
pub(crate) const TS: &str = "ts";
/// The version timestamp again as a BSON date, written only in datasets with a TTL: MongoDB's
/// TTL monitor only expires documents by a date field, and `ts` must stay a Long for the JVM.
pub(crate) const TS_DATE: &str = "tsDate";

/// Fields of a metadata document in the metadata collection (`_id` is the dataset name).
const META_KIND: &str = "kind";
const META_TTL: &str = "ttlMillis";

/// Largest value: MongoDB's 16 MiB (16,777,216 bytes) document limit minus 4 KiB for the rest of
/// the document (a key of up to 1 KiB, `_id`, `ts`, `tsDate`, field names) and of the `update`
/// command around it, which the server allows up to 16 MiB + 16 KiB.
pub(crate) const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024 - 4096;

/// Bytes a statement adds to an `update` command besides the value (key twice, names, ts).
pub(crate) fn statement_size(key: &[u8], value: &[u8]) -> usize {
    value.len() + 2 * key.len() + 160
}

/// A generic-subtype BinData, as the JVM driver writes `Array[Byte]`.
pub(crate) fn bin(bytes: &[u8]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    })
}

fn bin_ref(bytes: &[u8]) -> RawBinaryRef<'_> {
    RawBinaryRef {
        subtype: BinarySubtype::Generic,
        bytes,
    }
}

/// One statement of an `update` command: an upsert that replaces the whole document with
/// `{keyBytes, valueBytes, ts[, tsDate]}`. `Snapshot` datasets match on the key alone (one
/// document per key), `TimeSeries` datasets on `(key, ts)` (one document per version).
pub(crate) fn upsert_statement(
    kind: DatasetKind,
    key: &[u8],
    value: &[u8],
    ts: i64,
    with_date: bool,
) -> RawDocumentBuf {
    let mut q = RawDocumentBuf::new();
    q.append_ref(KEY, bin_ref(key));
    if kind == DatasetKind::TimeSeries {
        q.append(TS, ts);
    }
    let mut u = RawDocumentBuf::new();
    u.append_ref(KEY, bin_ref(key));
    u.append_ref(VALUE, bin_ref(value));
    u.append(TS, ts);
    if with_date {
        u.append(TS_DATE, DateTime::from_millis(ts));
    }
    let mut stmt = RawDocumentBuf::new();
    stmt.append("q", q);
    stmt.append("u", u);
    stmt.append("upsert", true);
    stmt
}

/// The indexes `create` builds: `{keyBytes: 1, ts: -1}` always (unique for `TimeSeries`: one
/// document per version), a unique `{keyBytes: 1}` for `Snapshot` (one document per key), and a
/// TTL index on `tsDate` when the dataset has a TTL (whole seconds, rounded up, at least 1).
pub(crate) fn indexes(props: &DatasetProps) -> Vec<IndexModel> {
    let ts_series = props.kind == DatasetKind::TimeSeries;
    let mut out = vec![IndexModel::builder()
        .keys(doc! { KEY: 1, TS: -1 })
        .options(IndexOptions::builder().unique(ts_series).build())
        .build()];
    if !ts_series {
        out.push(
            IndexModel::builder()
                .keys(doc! { KEY: 1 })
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        );
    }
    if let Some(ttl) = props.ttl {
        let secs = ttl.as_millis().div_ceil(1000).max(1) as u64;
        out.push(
            IndexModel::builder()
                .keys(doc! { TS_DATE: 1 })
                .options(
                    IndexOptions::builder()
                        .expire_after(Duration::from_secs(secs))
                        .build(),
                )
                .build(),
        );
    }
    out
}

/// The metadata document of a dataset.
pub(crate) fn meta_doc(dataset: &str, props: &DatasetProps) -> Document {
    let mut d = doc! { "_id": dataset, META_KIND: props.kind.as_str() };
    if let Some(ms) = props.ttl_millis() {
        d.insert(META_TTL, ms);
    }
    d
}

/// Reads a metadata document back: `(dataset, props)`.
pub(crate) fn parse_meta(d: &Document) -> Result<(String, DatasetProps), String> {
    let name = d
        .get_str("_id")
        .map_err(|e| format!("metadata _id: {e}"))?
        .to_string();
    let kind_s = d
        .get_str(META_KIND)
        .map_err(|e| format!("metadata of {name:?}: {e}"))?;
    let kind = DatasetKind::parse(kind_s)
        .ok_or_else(|| format!("metadata of {name:?}: unknown kind {kind_s:?}"))?;
    let ttl = match d.get(META_TTL) {
        None | Some(Bson::Null) => None,
        Some(v) => Some(Duration::from_millis(
            as_i64(v).filter(|m| *m >= 0).ok_or_else(|| {
                format!("metadata of {name:?}: ttlMillis {v} is not a non-negative integer")
            })? as u64,
        )),
    };
    Ok((name, DatasetProps { kind, ttl }))
}

fn as_i64(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int64(i) => Some(*i),
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Double(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

/// Reads `(key, value)` from a stored document (or an aggregation result whose key field is
/// `key_field`). `ts` may be any BSON number or a date: Spark and the JVM write a Long, but a
/// hand-loaded document may carry an Int32 or a Double.
pub(crate) fn parse_doc(d: &RawDocument, key_field: &str) -> Result<(Bytes, TimedValue), String> {
    let key = d
        .get_binary(key_field)
        .map_err(|e| format!("field {key_field}: {e}"))?;
    let value = d
        .get_binary(VALUE)
        .map_err(|e| format!("field {VALUE}: {e}"))?;
    let ts = match d.get(TS).map_err(|e| format!("field {TS}: {e}"))? {
        Some(RawBsonRef::Int64(i)) => i,
        Some(RawBsonRef::Int32(i)) => i64::from(i),
        Some(RawBsonRef::Double(f)) if f.fract() == 0.0 => f as i64,
        Some(RawBsonRef::DateTime(t)) => t.timestamp_millis(),
        other => return Err(format!("field {TS} is {other:?}, not epoch millis")),
    };
    Ok((
        Bytes::copy_from_slice(key.bytes),
        TimedValue::new(Bytes::copy_from_slice(value.bytes), ts),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_match_on_key_or_key_and_ts() {
        let s = upsert_statement(DatasetKind::Snapshot, b"k", b"v", 5, false);
        let q = s.get_document("q").unwrap();
        assert!(q.get("ts").unwrap().is_none());
        let u = s.get_document("u").unwrap();
        let (k, v) = parse_doc(u, KEY).unwrap();
        assert_eq!(
            (k.as_ref(), v.bytes.as_ref(), v.millis),
            (&b"k"[..], &b"v"[..], 5)
        );
        assert!(u.get(TS_DATE).unwrap().is_none());
        let s = upsert_statement(DatasetKind::TimeSeries, b"k", b"v", 7, true);
        assert_eq!(s.get_document("q").unwrap().get_i64("ts").unwrap(), 7);
        assert!(s.get_document("u").unwrap().get(TS_DATE).unwrap().is_some());
    }

    #[test]
    fn metadata_round_trips() {
        for props in [
            DatasetProps::snapshot(),
            DatasetProps::time_series().with_ttl(Duration::from_millis(1500)),
        ] {
            let (name, back) = parse_meta(&meta_doc("DS", &props)).unwrap();
            assert_eq!((name.as_str(), back), ("DS", props));
        }
        assert!(parse_meta(&doc! { "_id": "x", "kind": "Nope" }).is_err());
    }

    #[test]
    fn index_sets_per_kind() {
        assert_eq!(indexes(&DatasetProps::snapshot()).len(), 2);
        let ts = indexes(&DatasetProps::time_series().with_ttl(Duration::from_millis(1)));
        assert_eq!(ts.len(), 2);
        assert_eq!(
            ts[1].options.as_ref().unwrap().expire_after,
            Some(Duration::from_secs(1))
        );
    }
}
