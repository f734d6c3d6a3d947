//! How datasets, keys and values are laid out in Redis (written down in the crate README).
//!
//! Pure functions only, so every encoding and decoding is unit-tested without a server.
//!
//! - Registry: one hash `<prefix>:#datasets`, field = dataset name, value =
//!   `kind=<Snapshot|TimeSeries>;ttl_ms=<n|->;gen=<16 hex>`.
//! - Data key of one Chronon key: `<prefix>:<dataset>:<gen>:{<tag>}<raw key bytes>`, where
//!   `<tag>` is 8 hex digits of FNV-1a-32 over the raw key. The first `{...}` of a Redis key is
//!   its Cluster hash tag, and ours always comes before the user's bytes, so a key that itself
//!   contains braces can never choose its slot.
//! - Values: 8-byte big-endian timestamp followed by the raw value bytes, both as a `Snapshot`
//!   string value and as a `TimeSeries` sorted-set member (score = ts).

use bytes::{Buf, Bytes};
use chronon_core::{DatasetKind, DatasetProps, TimedValue};
use std::time::Duration;

/// Length of the `{xxxxxxxx}` hash tag in a data key.
const TAG_LEN: usize = 10;

/// The registry hash holding every dataset's kind, TTL and generation.
pub fn registry_key(prefix: &str) -> String {
    format!("{prefix}:#datasets")
}

/// The set that remembers which keys a `list` iteration has already returned.
pub(crate) fn list_session_key(prefix: &str, session: &str) -> String {
    format!("{prefix}:#list:{session}")
}

/// Everything before the hash tag of a dataset generation's data keys.
pub fn data_prefix(prefix: &str, dataset: &str, gen: &str) -> String {
    format!("{prefix}:{dataset}:{gen}:")
}

/// FNV-1a 32-bit: tiny, stable across versions and platforms (unlike `DefaultHasher`).
fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The Redis key holding `key` of a dataset generation whose [`data_prefix`] is `data_prefix`.
pub fn data_key(data_prefix: &str, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data_prefix.len() + TAG_LEN + key.len());
    write_data_key(&mut out, data_prefix, key);
    out
}

/// [`data_key`] into `out` (cleared first), so a batch can reuse one buffer for all its keys.
pub(crate) fn write_data_key(out: &mut Vec<u8>, data_prefix: &str, key: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.clear();
    out.reserve(data_prefix.len() + TAG_LEN + key.len());
    out.extend_from_slice(data_prefix.as_bytes());
    let tag = fnv1a32(key);
    let mut hex = [0u8; TAG_LEN];
    hex[0] = b'{';
    for (i, h) in hex[1..TAG_LEN - 1].iter_mut().enumerate() {
        *h = HEX[((tag >> ((7 - i) * 4)) & 0xf) as usize];
    }
    hex[TAG_LEN - 1] = b'}';
    out.extend_from_slice(&hex);
    out.extend_from_slice(key);
}

/// The raw key of a data key found by `SCAN`, or `None` for anything that is not ours.
pub fn decode_data_key(data_prefix: &str, redis_key: &[u8]) -> Option<Bytes> {
    let rest = redis_key.strip_prefix(data_prefix.as_bytes())?;
    if rest.len() <= TAG_LEN || rest[0] != b'{' || rest[TAG_LEN - 1] != b'}' {
        return None;
    }
    let key = &rest[TAG_LEN..];
    let tag = std::str::from_utf8(&rest[1..TAG_LEN - 1]).ok()?;
    (u32::from_str_radix(tag, 16).ok()? == fnv1a32(key)).then(|| Bytes::copy_from_slice(key))
}

/// A stored value: the timestamp first, so a sorted-set member of another ts never collides
/// and a value read back always carries the ts it was written with.
pub fn encode_value(ts: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    write_value(&mut out, ts, value);
    out
}

/// [`encode_value`] into `out` (cleared first), so a batch can reuse one buffer for all values.
pub(crate) fn write_value(out: &mut Vec<u8>, ts: i64, value: &[u8]) {
    out.clear();
    out.reserve(8 + value.len());
    out.extend_from_slice(&ts.to_be_bytes());
    out.extend_from_slice(value);
}

/// Reverses [`encode_value`]; `None` when the bytes are too short to be ours.
pub fn decode_value(raw: &[u8]) -> Option<TimedValue> {
    let ts = i64::from_be_bytes(raw.get(..8)?.try_into().ok()?);
    Some(TimedValue::new(Bytes::copy_from_slice(&raw[8..]), ts))
}

/// [`decode_value`] without copying the value out of a reply buffer it takes over.
pub fn decode_owned_value(raw: Vec<u8>) -> Option<TimedValue> {
    let ts = i64::from_be_bytes(raw.get(..8)?.try_into().ok()?);
    // `advance` moves the start in place; `slice` would turn the buffer into a shared one,
    // one more allocation per value read.
    let mut value = Bytes::from(raw);
    value.advance(8);
    Some(TimedValue::new(value, ts))
}

/// A dataset as the registry remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Kind and TTL.
    pub props: DatasetProps,
    /// Generation: a random id chosen at `create`, part of every data key, so data of a dropped
    /// dataset can never reappear in a re-created one even before it is deleted.
    pub gen: String,
}

impl Entry {
    /// The registry value for this entry.
    pub fn encode(&self) -> String {
        let ttl = self
            .props
            .ttl_millis()
            .map_or_else(|| "-".to_string(), |t| t.to_string());
        format!("kind={};ttl_ms={ttl};gen={}", self.props.kind, self.gen)
    }

    /// Parses [`Entry::encode`]'s output; the error says what is wrong.
    pub fn decode(raw: &str) -> Result<Entry, String> {
        let (mut kind, mut ttl, mut gen) = (None, None, None);
        for part in raw.split(';') {
            match part.split_once('=') {
                Some(("kind", v)) => kind = DatasetKind::parse(v),
                Some(("ttl_ms", "-")) => ttl = Some(None),
                Some(("ttl_ms", v)) => {
                    let ms: u64 = v.parse().map_err(|_| format!("bad ttl_ms {v:?}"))?;
                    ttl = Some(Some(Duration::from_millis(ms)));
                }
                Some(("gen", v)) if valid_gen(v) => gen = Some(v.to_string()),
                _ => {}
            }
        }
        match (kind, ttl, gen) {
            (Some(kind), Some(ttl), Some(gen)) => Ok(Entry {
                props: DatasetProps { kind, ttl },
                gen,
            }),
            _ => Err(format!("unreadable registry entry {raw:?}")),
        }
    }
}

/// A generation is hex only, so it never adds a glob character to a `SCAN MATCH` pattern.
fn valid_gen(gen: &str) -> bool {
    !gen.is_empty() && gen.len() <= 32 && gen.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A fresh random generation.
pub(crate) fn new_gen() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Checks a key prefix: 1–64 printable ASCII characters without glob characters or braces, so
/// `SCAN MATCH` patterns and Cluster hash tags built from it mean what they say.
pub(crate) fn valid_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() || prefix.len() > 64 {
        return Err(format!("prefix {prefix:?} must be 1 to 64 characters"));
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !c.is_ascii_graphic() || "{}*?[]\\^#".contains(*c))
    {
        return Err(format!(
            "prefix {prefix:?} contains {c:?}; use letters, digits and _-.:"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keys_round_trip_any_bytes() {
        let p = data_prefix("chronon", "DS_STREAMING", "00ff");
        for key in [&b"k"[..], b"{a}b", &[0, 0xff, b'}'], &[0xab; 1024]] {
            let rk = data_key(&p, key);
            assert!(rk.starts_with(b"chronon:DS_STREAMING:00ff:{"));
            assert_eq!(decode_data_key(&p, &rk).as_deref(), Some(key));
        }
        // Stored keys never change: FNV-1a-32 of `user:000000001` is 0x7ad9b7cb.
        assert_eq!(
            data_key(&p, b"user:000000001"),
            b"chronon:DS_STREAMING:00ff:{7ad9b7cb}user:000000001"
        );
        // A reused buffer holds exactly the last key.
        let mut buf = b"left over from a longer key".to_vec();
        write_data_key(&mut buf, &p, b"k");
        assert_eq!(buf, data_key(&p, b"k"));
        let mut buf = b"junk".to_vec();
        write_value(&mut buf, 7, b"abc");
        assert_eq!(buf, encode_value(7, b"abc"));
        // The hash tag comes before the user's bytes.
        let rk = data_key(&p, b"{user}1");
        let first_close = rk.iter().position(|b| *b == b'}').unwrap();
        assert_eq!(first_close, p.len() + TAG_LEN - 1);
    }

    #[test]
    fn foreign_keys_are_ignored() {
        let p = data_prefix("chronon", "DS", "01");
        assert!(decode_data_key(&p, b"chronon:DS:01:{zzzzzzzz}k").is_none());
        assert!(decode_data_key(&p, b"chronon:DS:01:{00000000}k").is_none());
        assert!(decode_data_key(&p, b"chronon:DS:01:").is_none());
        assert!(decode_data_key(&p, b"other:DS:01:{00000000}k").is_none());
        let mut good = data_key(&p, b"k");
        assert!(decode_data_key(&p, &good).is_some());
        good.truncate(good.len() - 1);
        assert!(decode_data_key(&p, &good).is_none(), "empty key");
    }

    #[test]
    fn values_round_trip() {
        for (ts, v) in [
            (0, &b""[..]),
            (1_700_000_000_000, &[0, 0xff][..]),
            ((1 << 53) - 1, b"x"),
        ] {
            let tv = decode_value(&encode_value(ts, v)).unwrap();
            assert_eq!((tv.millis, tv.bytes.as_ref()), (ts, v));
        }
        assert!(decode_value(b"short").is_none());
        let tv = decode_owned_value(encode_value(7, b"abc")).unwrap();
        assert_eq!((tv.millis, tv.bytes.as_ref()), (7, &b"abc"[..]));
        assert!(decode_owned_value(b"1234567".to_vec()).is_none());
    }

    #[test]
    fn registry_entries_round_trip() {
        for props in [
            DatasetProps::snapshot(),
            DatasetProps::time_series().with_ttl(Duration::from_secs(3600)),
        ] {
            let e = Entry {
                props,
                gen: new_gen(),
            };
            assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
        }
        assert!(Entry::decode("kind=Snapshot;ttl_ms=-").is_err());
        assert!(Entry::decode("kind=Other;ttl_ms=-;gen=00").is_err());
        assert!(Entry::decode("kind=Snapshot;ttl_ms=-;gen=0*").is_err());
        assert!(Entry::decode("").is_err());
    }

    #[test]
    fn prefixes() {
        for ok in ["chronon", "a", "team-a.chronon:v1", "x_y"] {
            valid_prefix(ok).unwrap();
        }
        for bad in [
            "",
            "a b",
            "a*",
            "{a}",
            "a?",
            "a[",
            "é",
            "a#b",
            &"a".repeat(65),
        ] {
            assert!(valid_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
