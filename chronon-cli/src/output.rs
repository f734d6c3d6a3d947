//! Standard output of the read commands (`kv get`, `kv list`, `fetch`).
//!
//! A reader that stops early (`chronon kv list URL DS | head -3`) closes the pipe; the command
//! then stops quietly with success, as Unix tools do, instead of panicking in `println!`. Only
//! read commands print through here, so stopping leaves nothing half done.

use std::fmt::Display;
use std::io::{ErrorKind, Write};

/// Writes `line` and a newline to stdout. If the reader has gone, exits at once with success;
/// any other write error is returned.
pub fn line(line: impl Display) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        other => other,
    }
}
