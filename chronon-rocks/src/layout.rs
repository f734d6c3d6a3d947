//! The on-disk layout (written down in the crate's README.md): column family names, key and
//! value encodings, and the metadata record that remembers a dataset's kind and TTL.
//!
//! RocksDB has no Chronon layout, so this one is ours. It is chosen so that
//! - a `Snapshot` read is one point lookup (`batched_multi_get_cf` on the raw key),
//! - a `TimeSeries` key's versions sit next to each other in ascending ts order, so a range read
//!   is one bounded forward iterator and a latest read is one `seek_to_last` in bounds,
//! - a key is never confused with a longer key that starts with the same bytes,
//! - sorted bulk input (ascending key, then ascending ts) is already in encoded order, so it can be
//!   written straight into SST files.

use std::time::Duration;

use chronon_core::{DatasetKind, DatasetProps};

/// The column family holding one metadata record per dataset (its kind and TTL).
pub(crate) const META_CF: &str = "chronon.meta";

/// Prefix of every dataset's column family. A `.` never appears in a dataset name, so no dataset
/// can collide with `default` or [`META_CF`].
pub(crate) const DATASET_CF_PREFIX: &str = "ds.";

/// Bytes of the big-endian timestamp at the end of a time-series key / start of a snapshot value.
pub(crate) const TS_BYTES: usize = 8;

/// The column family of `dataset`.
pub(crate) fn cf_name(dataset: &str) -> String {
    format!("{DATASET_CF_PREFIX}{dataset}")
}

/// Calls `f` with the column family name of `dataset`, built on the stack: every call looks its
/// column family up by name, and a `String` per call ([`cf_name`]) was ~900 instructions of a
/// one-key read. Names longer than any valid dataset's take the `String`.
pub(crate) fn with_cf_name<R>(dataset: &str, f: impl FnOnce(&str) -> R) -> R {
    const ROOM: usize = 8 + chronon_core::validate::MAX_DATASET_NAME_CHARS;
    let prefix = DATASET_CF_PREFIX.as_bytes();
    let len = prefix.len() + dataset.len();
    if len <= ROOM {
        let mut buf = [0u8; ROOM];
        buf[..prefix.len()].copy_from_slice(prefix);
        buf[prefix.len()..len].copy_from_slice(dataset.as_bytes());
        // Always UTF-8 (an ASCII prefix before a `str`); the fallback only keeps this total.
        if let Ok(name) = std::str::from_utf8(&buf[..len]) {
            return f(name);
        }
    }
    f(&cf_name(dataset))
}

/// The dataset of a column family, if it is a dataset's.
pub(crate) fn dataset_of_cf(cf: &str) -> Option<&str> {
    cf.strip_prefix(DATASET_CF_PREFIX)
}

/// Sorts `indexes` by `key_of(index)` in RocksDB's order for a dataset's column family (the default
/// bytewise comparator, which is the order of `[u8]`); items with equal keys keep their order
/// (a stable sort). Both batch paths use it:
/// - reads tell `batched_multi_get_cf` their keys are sorted, so RocksDB skips its own sort,
///   which calls two virtual comparators per comparison and cost ~7 % of a 100-key read. The
///   order must be exactly RocksDB's: its batched lookup relies on it to search table files.
/// - puts enter the write batch in key order, the last put of a key still last (so it wins).
///   RocksDB inserts a batch into its memtable (a skip list) one entry at a time, and an insert
///   right after the previous one is cheaper than one anywhere else: a 1,000-put batch in no key
///   order went from ~0.96 of the raw crate's speed (writing the batch as given) to ~1.08.
pub(crate) fn sort_in_key_order<'k>(indexes: &mut [usize], key_of: impl Fn(usize) -> &'k [u8]) {
    indexes.sort_by(|&a, &b| key_of(a).cmp(key_of(b)));
}

/// A timestamp as 8 big-endian bytes. Put timestamps are validated to `0..=2^53-1`, so the byte
/// order is the numeric order; negative read bounds are clamped to 0 before encoding.
pub(crate) fn ts_bytes(ts: i64) -> [u8; TS_BYTES] {
    (ts.max(0) as u64).to_be_bytes()
}

fn read_ts(bytes: &[u8]) -> Option<i64> {
    let arr: [u8; TS_BYTES] = bytes.try_into().ok()?;
    i64::try_from(u64::from_be_bytes(arr)).ok()
}

// ---- Snapshot datasets: key = raw key bytes; value = ts (8 bytes BE) ++ value bytes ----

/// Writes the stored value of a snapshot row, its timestamp then the value, into `out` (cleared
/// first), so that one buffer serves a whole batch's rows.
pub(crate) fn snapshot_value_into(out: &mut Vec<u8>, ts: i64, value: &[u8]) {
    out.clear();
    out.reserve(TS_BYTES + value.len());
    out.extend_from_slice(&ts_bytes(ts));
    out.extend_from_slice(value);
}

/// The stored value of a snapshot row in a new buffer.
#[cfg(test)]
pub(crate) fn snapshot_value(ts: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    snapshot_value_into(&mut out, ts, value);
    out
}

/// Splits a stored snapshot value into `(ts, value)`; `None` if it is too short to be ours.
pub(crate) fn split_snapshot_value(stored: &[u8]) -> Option<(i64, &[u8])> {
    if stored.len() < TS_BYTES {
        return None;
    }
    let (ts, value) = stored.split_at(TS_BYTES);
    Some((read_ts(ts)?, value))
}

// ---- TimeSeries datasets: key = escape(key) ++ 00 00 ++ ts (8 bytes BE); value = value bytes ----

/// The escaped key followed by its `00 00` terminator: the prefix shared by all versions of `key`.
///
/// Every `00` in the key becomes `00 FF`, and the key ends with `00 00`. Inside an escaped key a
/// `00` is always followed by `FF`, so the terminator cannot occur there: the encoding of `key`
/// is never a prefix of the encoding of a longer key `key ++ x`, and the byte order of encoded keys
/// is the byte order of the raw keys (a shorter key sorts before its extensions, as in raw order).
pub(crate) fn version_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2 + TS_BYTES + 4);
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// The stored key of version `ts` of `key`.
pub(crate) fn version_key(key: &[u8], ts: i64) -> Vec<u8> {
    let mut out = version_prefix(key);
    out.extend_from_slice(&ts_bytes(ts));
    out
}

/// The smallest stored key after every version of the key whose [`version_prefix`] is `prefix`:
/// the terminator `00 00` raised to `00 01`, which sorts before any longer key (`00 FF ...`) and
/// before any other key's first byte above `00`.
pub(crate) fn after_versions(prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    if let Some(last) = out.last_mut() {
        *last = 1;
    }
    out
}

/// The stored key of `(key, ts)` split back into `(raw key, ts)`; `None` if not ours.
pub(crate) fn split_version_key(stored: &[u8]) -> Option<(Vec<u8>, i64)> {
    if stored.len() < 2 + TS_BYTES {
        return None;
    }
    let (escaped, ts) = stored.split_at(stored.len() - TS_BYTES);
    let escaped = escaped.strip_suffix(&[0, 0])?;
    let mut key = Vec::with_capacity(escaped.len());
    let mut it = escaped.iter();
    while let Some(&b) = it.next() {
        key.push(b);
        if b == 0 && it.next() != Some(&0xFF) {
            return None;
        }
    }
    Some((key, read_ts(ts)?))
}

/// The timestamp at the end of a stored time-series key (for the TTL compaction filter).
pub(crate) fn version_key_ts(stored: &[u8]) -> Option<i64> {
    if stored.len() < 2 + TS_BYTES {
        return None;
    }
    read_ts(&stored[stored.len() - TS_BYTES..])
}

// ---- Metadata: key = dataset name; value = "v1 <Kind> <ttl ms or ->" ----

/// The metadata record of a dataset.
pub(crate) fn encode_meta(props: &DatasetProps) -> Vec<u8> {
    let ttl = props
        .ttl_millis()
        .map(|t| t.to_string())
        .unwrap_or_else(|| "-".into());
    format!("v1 {} {ttl}", kind_name(props.kind)).into_bytes()
}

/// Reads a metadata record back; `Err` says what is wrong with it.
pub(crate) fn decode_meta(bytes: &[u8]) -> Result<DatasetProps, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("metadata is not UTF-8: {e}"))?;
    let parts: Vec<&str> = text.split(' ').collect();
    let [version, kind, ttl] = parts.as_slice() else {
        return Err(format!("metadata {text:?} is not `v1 <kind> <ttl>`"));
    };
    if *version != "v1" {
        return Err(format!(
            "metadata version {version:?} is not supported (only v1)"
        ));
    }
    let kind = match *kind {
        "Snapshot" => DatasetKind::Snapshot,
        "TimeSeries" => DatasetKind::TimeSeries,
        other => return Err(format!("unknown dataset kind {other:?}")),
    };
    let ttl = match *ttl {
        "-" => None,
        ms => Some(Duration::from_millis(
            ms.parse::<u64>()
                .map_err(|e| format!("bad ttl {ms:?}: {e}"))?,
        )),
    };
    Ok(DatasetProps { kind, ttl })
}

fn kind_name(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Snapshot => "Snapshot",
        DatasetKind::TimeSeries => "TimeSeries",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order `sort_in_key_order` gives is the one RocksDB iterates a column family in.
    #[test]
    fn key_order_is_rocksdbs_bytewise_order() {
        let keys: Vec<&[u8]> = vec![
            b"ab",
            &[0xff],
            b"a",
            &[0x80],
            &[0, 0],
            b"abc",
            &[0x7f],
            b"a\0",
            &[0],
            b"b",
            &[0xff, 0],
        ];
        let mut indexes: Vec<usize> = (0..keys.len()).collect();
        sort_in_key_order(&mut indexes, |i| keys[i]);
        let ours: Vec<&[u8]> = indexes.iter().map(|&i| keys[i]).collect();

        let dir = tempfile::tempdir().unwrap();
        let db = rocksdb::DB::open_default(dir.path()).unwrap();
        for k in &keys {
            db.put(k, b"").unwrap();
        }
        let rocks: Vec<Vec<u8>> = db
            .iterator(rocksdb::IteratorMode::Start)
            .map(|kv| kv.unwrap().0.to_vec())
            .collect();
        assert_eq!(ours, rocks);
    }

    #[test]
    fn version_keys_round_trip() {
        for key in [&b"a"[..], &[0], &[0, 0xFF, 0], &[0xFF, 0xFF], b"user\x00x"] {
            for ts in [0, 1, 1_700_000_000_000, (1 << 53) - 1] {
                let enc = version_key(key, ts);
                assert_eq!(split_version_key(&enc), Some((key.to_vec(), ts)));
                assert_eq!(version_key_ts(&enc), Some(ts));
            }
        }
    }

    #[test]
    fn no_prefix_ambiguity_and_raw_order_kept() {
        let keys: Vec<&[u8]> = vec![
            &[0],
            &[0, 0],
            &[0, 1],
            &[0, 0xFF],
            b"a",
            b"a\x00",
            b"a\x00\x00",
            b"a\x01",
            b"ab",
            &[0xFF],
            &[0xFF, 0],
        ];
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "test keys must be listed in raw order");
        // All versions of every key, in encoded order, must come out grouped by key in raw order
        // and by ts within a key.
        let mut enc: Vec<Vec<u8>> = Vec::new();
        for k in &keys {
            for ts in [5, 0, (1 << 53) - 1] {
                enc.push(version_key(k, ts));
            }
        }
        enc.sort();
        let decoded: Vec<(Vec<u8>, i64)> =
            enc.iter().map(|e| split_version_key(e).unwrap()).collect();
        let mut expected = Vec::new();
        for k in &keys {
            for ts in [0, 5, (1 << 53) - 1] {
                expected.push((k.to_vec(), ts));
            }
        }
        assert_eq!(decoded, expected);
        // The bound after a key's versions is above all of them and below every other key.
        for (i, k) in keys.iter().enumerate() {
            let after = after_versions(&version_prefix(k));
            assert!(after > version_key(k, (1 << 53) - 1));
            for later in &keys[i + 1..] {
                assert!(after <= version_key(later, 0), "{k:?} vs {later:?}");
            }
        }
    }

    #[test]
    fn snapshot_values_round_trip() {
        let v = snapshot_value(42, &[0, 0xFF]);
        assert_eq!(split_snapshot_value(&v), Some((42, &[0u8, 0xFF][..])));
        assert_eq!(
            split_snapshot_value(&snapshot_value(7, b"")),
            Some((7, &b""[..]))
        );
        assert_eq!(split_snapshot_value(b"short"), None);
    }

    #[test]
    fn meta_round_trips() {
        for props in [
            DatasetProps::snapshot(),
            DatasetProps::time_series().with_ttl(Duration::from_secs(3600)),
        ] {
            assert_eq!(decode_meta(&encode_meta(&props)).unwrap(), props);
        }
        assert!(decode_meta(b"v2 Snapshot -").is_err());
        assert!(decode_meta(b"v1 Other -").is_err());
        assert!(decode_meta(b"garbage").is_err());
    }

    #[test]
    fn cf_names() {
        assert_eq!(dataset_of_cf(&cf_name("default")), Some("default"));
        for ds in ["A", &"x".repeat(128), &"y".repeat(300), "é"] {
            assert_eq!(with_cf_name(ds, str::to_string), cf_name(ds));
        }
        assert_eq!(dataset_of_cf("default"), None);
        assert_eq!(dataset_of_cf(META_CF), None);
    }
}

/// Property tests of the encodings: every key and value round-trips, and no input makes a decoder
/// panic.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const MAX_TS: i64 = chronon_core::validate::MAX_TS;

    fn key() -> impl Strategy<Value = Vec<u8>> {
        // Zero bytes and 0xFF are the interesting ones for the escaping.
        prop::collection::vec(
            prop_oneof![Just(0u8), Just(0xFFu8), Just(1u8), any::<u8>()],
            1..64,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn version_key_round_trips(k in key(), ts in 0..=MAX_TS) {
            let enc = version_key(&k, ts);
            prop_assert_eq!(split_version_key(&enc), Some((k.clone(), ts)));
            prop_assert_eq!(version_key_ts(&enc), Some(ts));
            prop_assert!(enc.starts_with(&version_prefix(&k)));
            prop_assert!(after_versions(&version_prefix(&k)) > enc);
        }

        #[test]
        fn version_keys_sort_like_raw_keys_then_ts(
            a in key(), b in key(), ta in 0..=MAX_TS, tb in 0..=MAX_TS
        ) {
            let (ea, eb) = (version_key(&a, ta), version_key(&b, tb));
            prop_assert_eq!(ea.cmp(&eb), a.cmp(&b).then(ta.cmp(&tb)));
            if a != b {
                // One key's versions never fall in another key's prefix range.
                prop_assert!(!eb.starts_with(&version_prefix(&a)));
                let after = after_versions(&version_prefix(&a));
                prop_assert_eq!(eb < after, b < a);
            }
        }

        #[test]
        fn snapshot_value_round_trips(ts in 0..=MAX_TS, v in prop::collection::vec(any::<u8>(), 0..256)) {
            let enc = snapshot_value(ts, &v);
            prop_assert_eq!(split_snapshot_value(&enc), Some((ts, &v[..])));
        }

        #[test]
        fn decoders_never_panic(raw in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = split_version_key(&raw);
            let _ = version_key_ts(&raw);
            let _ = split_snapshot_value(&raw);
            let _ = decode_meta(&raw);
            let _ = dataset_of_cf(&String::from_utf8_lossy(&raw));
        }

        #[test]
        fn meta_round_trips(series in any::<bool>(), ttl in proptest::option::of(0u64..1 << 40)) {
            let kind = if series { DatasetKind::TimeSeries } else { DatasetKind::Snapshot };
            let props = DatasetProps { kind, ttl: ttl.map(Duration::from_millis) };
            prop_assert_eq!(decode_meta(&encode_meta(&props)), Ok(props));
        }
    }
}
