//! Keys and values on the command line: UTF-8 text, `hex:…` or `base64:…`.

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use bytes::Bytes;

/// Parses a command-line key or value: `hex:00ff`, `base64:AP8=`, anything else as UTF-8 text.
pub fn parse(arg: &str) -> Result<Bytes> {
    if let Some(hex) = arg.strip_prefix("hex:") {
        if hex.len() % 2 != 0 {
            bail!("{arg:?}: hex needs an even number of digits");
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&hex[i..i + 2], 16)
                    .with_context(|| format!("{arg:?}: {:?} is not a hex byte", &hex[i..i + 2]))
            })
            .collect::<Result<Vec<u8>>>()?;
        return Ok(bytes.into());
    }
    if let Some(b64) = arg.strip_prefix("base64:") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .with_context(|| format!("{arg:?} is not valid base64"))?;
        return Ok(bytes.into());
    }
    Ok(Bytes::copy_from_slice(arg.as_bytes()))
}

/// Shows bytes the way [`parse`] reads them back: text if it is printable UTF-8, else `hex:`.
pub fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s)
            if !s.starts_with("hex:")
                && !s.starts_with("base64:")
                && s.chars().all(|c| !c.is_control() || c == '\t') =>
        {
            s.to_string()
        }
        _ => format!("hex:{}", hex(bytes)),
    }
}

/// Lower-case hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(parse("hex:00ff").unwrap().as_ref(), &[0x00, 0xff]);
        assert_eq!(parse("base64:AP8=").unwrap().as_ref(), &[0x00, 0xff]);
        assert_eq!(parse("plain").unwrap().as_ref(), b"plain");
        assert!(parse("hex:0").is_err());
        assert!(parse("hex:zz").is_err());
        assert!(parse("base64:!!").is_err());
    }

    #[test]
    fn shows_what_parses_back() {
        for v in [
            &b"text"[..],
            &[0, 255],
            b"hex:looks-like-hex",
            b"line\nbreak",
        ] {
            assert_eq!(parse(&show(v)).unwrap().as_ref(), v);
        }
    }
}
