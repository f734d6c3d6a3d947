//! The input checks every adapter shares, so bad input is rejected the same way everywhere, per
//! request, before anything reaches a database.

use crate::error::{key_preview, KvError};
use crate::types::{Capabilities, GetRequest, PutRequest};

/// Longest portable dataset name (see CONTRACT.md, "Datasets").
pub const MAX_DATASET_NAME_CHARS: usize = 128;
/// Longest key (see CONTRACT.md, "Keys and values").
pub const MAX_KEY_BYTES: usize = 1024;
/// Smallest value limit any adapter may declare (CONTRACT.md, "Keys and values": at least 300 KiB everywhere).
pub const MIN_MAX_VALUE_BYTES: usize = 300 * 1024;
/// Largest timestamp a put may carry: 2^53 - 1 ms (year 287396), the largest integer that is
/// exact in an IEEE double, so Redis sorted-set scores and JSON tools keep it exactly.
pub const MAX_TS: i64 = (1 << 53) - 1;

/// Checks a dataset name: 1–128 of `[A-Za-z0-9_]`, not starting with a digit.
pub fn dataset_name(dataset: &str) -> Result<(), KvError> {
    // Every call validates each request's dataset name: the usual valid name is one pass over
    // its bytes (all allowed characters are ASCII, so bytes = characters).
    let bytes = dataset.as_bytes();
    if !bytes.is_empty()
        && bytes.len() <= MAX_DATASET_NAME_CHARS
        && !bytes[0].is_ascii_digit()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return Ok(());
    }
    let invalid = |reason: String| KvError::InvalidDataset {
        dataset: dataset.to_string(),
        reason,
    };
    if dataset.is_empty() {
        return Err(invalid("the name is empty".into()));
    }
    let chars = dataset.chars().count();
    if chars > MAX_DATASET_NAME_CHARS {
        return Err(invalid(format!(
            "the name has {chars} characters, at most {MAX_DATASET_NAME_CHARS} are allowed"
        )));
    }
    if let Some((i, c)) = dataset
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(invalid(format!(
            "character {c:?} at byte {i} is not allowed (only A-Z, a-z, 0-9 and _)"
        )));
    }
    if dataset.as_bytes()[0].is_ascii_digit() {
        return Err(invalid("the name must not start with a digit".into()));
    }
    Ok(())
}

/// Checks a key's length: 1–1024 bytes.
pub fn key(dataset: &str, key: &[u8]) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidKey {
            dataset: dataset.to_string(),
            key: key_preview(key),
            reason: format!(
                "key is {} bytes, keys must be 1 to {MAX_KEY_BYTES} bytes",
                key.len()
            ),
        });
    }
    Ok(())
}

/// Checks a put timestamp: `0..=MAX_TS`.
pub fn put_ts(dataset: &str, ts: i64) -> Result<(), KvError> {
    if !(0..=MAX_TS).contains(&ts) {
        return Err(KvError::InvalidRequest {
            dataset: dataset.to_string(),
            reason: format!(
                "timestamp {ts} is outside 0..={MAX_TS} (milliseconds since the Unix epoch)"
            ),
        });
    }
    Ok(())
}

/// Checks everything about a get: dataset name, key, and a sane range.
pub fn get_request(req: &GetRequest) -> Result<(), KvError> {
    dataset_name(&req.dataset)?;
    get_request_but_dataset(req)
}

/// [`get_request`] for a request whose dataset name is known to be valid (a batch checks each
/// distinct name once: a name takes a pass over its bytes, a few hundred instructions that a
/// 100-key batch of one dataset would otherwise pay a hundred times).
pub fn get_request_but_dataset(req: &GetRequest) -> Result<(), KvError> {
    key(&req.dataset, &req.key)?;
    match (req.start_ts, req.end_ts) {
        (None, Some(_)) => Err(KvError::InvalidRequest {
            dataset: req.dataset.clone(),
            reason: "end_ts needs start_ts (a latest-only read has no range)".into(),
        }),
        (Some(s), Some(e)) if s > e => Err(KvError::InvalidRequest {
            dataset: req.dataset.clone(),
            reason: format!("start_ts {s} is after end_ts {e}"),
        }),
        _ => Ok(()),
    }
}

/// Checks everything about a put: dataset name, key, value size against `caps`, timestamp.
pub fn put_request(req: &PutRequest, caps: &Capabilities) -> Result<(), KvError> {
    dataset_name(&req.dataset)?;
    put_request_but_dataset(req, caps)
}

/// [`put_request`] for a request whose dataset name is known to be valid (see
/// [`get_request_but_dataset`]).
pub fn put_request_but_dataset(req: &PutRequest, caps: &Capabilities) -> Result<(), KvError> {
    key(&req.dataset, &req.key)?;
    if req.value.len() > caps.max_value_bytes {
        return Err(KvError::ValueTooLarge {
            dataset: req.dataset.clone(),
            key: key_preview(&req.key),
            size: req.value.len(),
            max: caps.max_value_bytes,
        });
    }
    if let Some(ts) = req.ts {
        put_ts(&req.dataset, ts)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names() {
        for ok in [
            "a",
            "_x",
            "PURCHASES_BATCH",
            "user_v2_STREAMING",
            &"a".repeat(128),
        ] {
            dataset_name(ok).unwrap();
        }
        for bad in [
            "",
            "1abc",
            "a b",
            "a-b",
            "a.b",
            "a$b",
            "é",
            "a;b",
            "{}",
            &"a".repeat(129),
        ] {
            let e = dataset_name(bad).unwrap_err();
            assert!(matches!(e, KvError::InvalidDataset { .. }), "{bad:?}: {e}");
        }
    }

    #[test]
    fn keys() {
        key("d", b"k").unwrap();
        key("d", &[0u8; 1024]).unwrap();
        assert!(key("d", b"").is_err());
        assert!(key("d", &[0u8; 1025]).is_err());
    }

    #[test]
    fn ranges() {
        get_request(&GetRequest::range("d", "k", 5, Some(5))).unwrap();
        assert!(get_request(&GetRequest::range("d", "k", 6, Some(5))).is_err());
        let mut r = GetRequest::latest("d", "k");
        r.end_ts = Some(3);
        assert!(get_request(&r).is_err());
    }

    #[test]
    fn puts() {
        let caps = Capabilities::new(10, 1, 1);
        put_request(&PutRequest::new("d", "k", "0123456789", Some(0)), &caps).unwrap();
        let e = put_request(&PutRequest::new("d", "k", "0123456789a", None), &caps).unwrap_err();
        assert!(matches!(
            e,
            KvError::ValueTooLarge {
                size: 11,
                max: 10,
                ..
            }
        ));
        assert!(put_request(&PutRequest::new("d", "k", "", Some(-1)), &caps).is_err());
        assert!(put_request(&PutRequest::new("d", "k", "", Some(MAX_TS + 1)), &caps).is_err());
    }
}
