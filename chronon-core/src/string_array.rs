//! Chronon's `StringArrayConverter` format: each string base64-encoded (standard alphabet, with
//! padding, as `java.util.Base64.getEncoder`), joined with commas. Used for lists of names in
//! `CHRONON_METADATA`, so a Rust and a JVM deployment read each other's metadata.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;

/// Encodes `values` as Chronon does: `base64(v1),base64(v2),...` (empty list: empty bytes).
pub fn encode(values: &[String]) -> Bytes {
    let joined = values
        .iter()
        .map(|v| STANDARD.encode(v.as_bytes()))
        .collect::<Vec<_>>()
        .join(",");
    Bytes::from(joined)
}

/// Decodes [`encode`]'s output; an error names the element that is not valid base64 or UTF-8.
pub fn decode(bytes: &[u8]) -> Result<Vec<String>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let text = std::str::from_utf8(bytes).map_err(|e| format!("string array is not UTF-8: {e}"))?;
    text.split(',')
        .enumerate()
        .map(|(i, part)| {
            let raw = STANDARD
                .decode(part)
                .map_err(|e| format!("element {i} ({part:?}) is not base64: {e}"))?;
            String::from_utf8(raw).map_err(|e| format!("element {i} is not UTF-8: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_chronon_bytes() {
        // java.util.Base64.getEncoder.encode("a") = "YQ==", "bc" = "YmM=", "" = ""
        let v = vec!["a".to_string(), "bc".to_string(), "".to_string()];
        assert_eq!(&encode(&v)[..], b"YQ==,YmM=,");
        assert_eq!(decode(b"YQ==,YmM=,").unwrap(), v);
        assert!(decode(b"!!").is_err());
        assert_eq!(decode(b"").unwrap(), Vec::<String>::new());
    }
}
