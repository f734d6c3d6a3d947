//! Where stream messages come from: a small [`Source`] trait (so Kafka can be added later behind
//! a feature) with newline-delimited files and stdin now.
//!
//! Delivery is at-least-once: a source hands out messages with their [`Position`], and the
//! writer hands positions back to the source's [`Committer`] only after everything up to them
//! has been acknowledged by the store. A restart resumes from the last committed position, so
//! messages after it may be written twice, which is harmless because a `(key, ts)` put replaces.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// How far a source has been read: `offset` is the source's resume point just after a message
/// (a byte offset for files and stdin, an offset for Kafka), `line` the number of messages
/// before it (for people: "line 1234").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Position {
    /// The resume point after the message.
    pub offset: u64,
    /// Messages up to and including this one (so a message's own line number).
    pub line: u64,
}

/// One raw message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The bytes (for line sources: the line without its newline).
    pub payload: Bytes,
    /// The position just after this message.
    pub position: Position,
    /// The message was longer than the source's limit and `payload` holds only its start.
    pub truncated: bool,
}

/// A stream of messages.
pub trait Source: Send {
    /// A short name for logs and checkpoints (`file:/data/events.csv`, `stdin`).
    fn describe(&self) -> String;

    /// Up to `max` messages; blocks until at least one is available, returns an empty batch at
    /// the end of the stream. Returns early rather than block when some are already read.
    fn next_batch(&mut self, max: usize) -> io::Result<Vec<Message>>;

    /// Where reading started (the last committed position, or the beginning).
    fn start_position(&self) -> Position;

    /// The object that records acknowledged positions (used from another task).
    fn committer(&self) -> Box<dyn Committer>;
}

/// Records that everything up to a position is safely written.
pub trait Committer: Send {
    /// Commits `position`; a restart resumes after it.
    fn commit(&mut self, position: Position) -> io::Result<()>;
}

/// A committer that remembers nothing (no checkpoint asked for).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCommit;

impl Committer for NoCommit {
    fn commit(&mut self, _position: Position) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointRecord {
    source: String,
    #[serde(flatten)]
    position: Position,
}

/// A checkpoint file: JSON `{"source": ..., "offset": ..., "line": ...}`, replaced atomically
/// (write to a temporary file, then rename) on every commit.
#[derive(Debug, Clone)]
pub struct CheckpointFile {
    path: PathBuf,
    source: String,
}

impl CheckpointFile {
    /// The checkpoint at `path` for the source named `source`.
    pub fn new(path: impl Into<PathBuf>, source: impl Into<String>) -> Self {
        CheckpointFile {
            path: path.into(),
            source: source.into(),
        }
    }

    /// The committed position, `None` when there is no checkpoint yet. A checkpoint written for
    /// another source is an error rather than a silent skip of the wrong bytes.
    pub fn load(&self) -> io::Result<Option<Position>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let rec: CheckpointRecord = serde_json::from_str(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("checkpoint {}: {e}", self.path.display()),
            )
        })?;
        if rec.source != self.source {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "checkpoint {} belongs to source {:?}, not {:?}; remove it to start over",
                    self.path.display(),
                    rec.source,
                    self.source
                ),
            ));
        }
        Ok(Some(rec.position))
    }
}

impl Committer for CheckpointFile {
    fn commit(&mut self, position: Position) -> io::Result<()> {
        let rec = CheckpointRecord {
            source: self.source.clone(),
            position,
        };
        let text = serde_json::to_string(&rec).map_err(io::Error::other)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// Newline-delimited messages from a file or stdin.
pub struct LineSource {
    reader: BufReader<Box<dyn Read + Send>>,
    name: String,
    position: Position,
    start: Position,
    checkpoint: Option<CheckpointFile>,
    max_message_bytes: usize,
    done: bool,
}

impl std::fmt::Debug for LineSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineSource")
            .field("name", &self.name)
            .field("position", &self.position)
            .finish()
    }
}

/// The longest message a line source hands out whole (16 MiB); longer lines are cut and marked.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

impl LineSource {
    /// Lines of the file at `path`, resuming after the position in `checkpoint` when it exists.
    pub fn file(path: &Path, checkpoint: Option<&Path>) -> io::Result<Self> {
        let name = format!("file:{}", path.display());
        let mut file = File::open(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()))
        })?;
        let cp = checkpoint.map(|c| CheckpointFile::new(c, name.clone()));
        let start = match &cp {
            Some(c) => c.load()?.unwrap_or_default(),
            None => Position::default(),
        };
        file.seek(SeekFrom::Start(start.offset))?;
        Ok(Self::from_parts(
            BufReader::with_capacity(256 * 1024, Box::new(file) as Box<dyn Read + Send>),
            name,
            start,
            cp,
        ))
    }

    /// Lines of standard input. With a checkpoint, the first `offset` bytes are read and
    /// skipped: replaying the same input after a restart resumes where the last run stopped.
    pub fn stdin(checkpoint: Option<&Path>) -> io::Result<Self> {
        Self::reader(Box::new(io::stdin()), "stdin", checkpoint)
    }

    /// Lines of any reader (tests, pipes), named `name`; a checkpoint skips its committed bytes.
    pub fn reader(
        reader: Box<dyn Read + Send>,
        name: &str,
        checkpoint: Option<&Path>,
    ) -> io::Result<Self> {
        let mut reader = BufReader::with_capacity(256 * 1024, reader);
        let cp = checkpoint.map(|c| CheckpointFile::new(c, name));
        let start = match &cp {
            Some(c) => c.load()?.unwrap_or_default(),
            None => Position::default(),
        };
        let skipped = io::copy(&mut (&mut reader).take(start.offset), &mut io::sink())?;
        if skipped < start.offset {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{name} has only {skipped} bytes but the checkpoint is at {}",
                    start.offset
                ),
            ));
        }
        Ok(Self::from_parts(reader, name.to_string(), start, cp))
    }

    fn from_parts(
        reader: BufReader<Box<dyn Read + Send>>,
        name: String,
        start: Position,
        checkpoint: Option<CheckpointFile>,
    ) -> Self {
        LineSource {
            reader,
            name,
            position: start,
            start,
            checkpoint,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            done: false,
        }
    }

    /// Sets the longest message handed out whole.
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.max_message_bytes = max.max(1);
        self
    }

    fn read_one(&mut self) -> io::Result<Option<Message>> {
        let mut buf = Vec::new();
        let limit = self.max_message_bytes as u64 + 1;
        let mut n = (&mut self.reader).take(limit).read_until(b'\n', &mut buf)? as u64;
        if n == 0 {
            return Ok(None);
        }
        let mut truncated = false;
        if buf.last() != Some(&b'\n') && buf.len() as u64 >= limit {
            // Too long: keep the start, skip the rest of the line.
            truncated = true;
            buf.truncate(self.max_message_bytes);
            loop {
                let available = self.reader.fill_buf()?;
                if available.is_empty() {
                    break;
                }
                match available.iter().position(|b| *b == b'\n') {
                    Some(p) => {
                        self.reader.consume(p + 1);
                        n += p as u64 + 1;
                        break;
                    }
                    None => {
                        let len = available.len();
                        self.reader.consume(len);
                        n += len as u64;
                    }
                }
            }
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        self.position.offset += n;
        self.position.line += 1;
        Ok(Some(Message {
            payload: Bytes::from(buf),
            position: self.position,
            truncated,
        }))
    }
}

impl Source for LineSource {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn next_batch(&mut self, max: usize) -> io::Result<Vec<Message>> {
        let mut out = Vec::new();
        while !self.done && out.len() < max.max(1) {
            match self.read_one()? {
                Some(m) => out.push(m),
                None => self.done = true,
            }
            // Hand over what we have rather than block on a slow pipe.
            if !out.is_empty() && self.reader.buffer().is_empty() {
                break;
            }
        }
        Ok(out)
    }

    fn start_position(&self) -> Position {
        self.start
    }

    fn committer(&self) -> Box<dyn Committer> {
        match &self.checkpoint {
            Some(c) => Box::new(c.clone()),
            None => Box::new(NoCommit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_positions_and_resume() {
        let dir = tempdir();
        let data = dir.join("in.txt");
        std::fs::write(&data, b"a\nbb\r\n\nccc").unwrap();
        let cp = dir.join("cp.json");
        let mut s = LineSource::file(&data, Some(&cp)).unwrap();
        let batch = s.next_batch(10).unwrap();
        let payloads: Vec<&[u8]> = batch.iter().map(|m| m.payload.as_ref()).collect();
        assert_eq!(payloads, vec![&b"a"[..], b"bb", b"", b"ccc"]);
        assert_eq!(batch[1].position, Position { offset: 6, line: 2 });
        assert!(s.next_batch(10).unwrap().is_empty());
        s.committer().commit(batch[1].position).unwrap();
        let mut again = LineSource::file(&data, Some(&cp)).unwrap();
        assert_eq!(again.start_position().line, 2);
        let rest = again.next_batch(10).unwrap();
        assert_eq!(rest.len(), 2);
        assert_eq!(
            rest[1].position,
            Position {
                offset: 10,
                line: 4
            }
        );
        let other = LineSource::reader(Box::new(&b"zzzzzzzzzzzz"[..]), "stdin", Some(&cp));
        assert!(
            other.is_err(),
            "a checkpoint of another source must not be used"
        );
    }

    #[test]
    fn long_lines_are_cut_and_marked() {
        let mut s = LineSource::reader(Box::new(&b"0123456789\nok\n"[..]), "t", None)
            .unwrap()
            .max_message_bytes(4);
        let b = s.next_batch(10).unwrap();
        assert!(b[0].truncated && b[0].payload.as_ref() == b"0123");
        assert_eq!(b[1].payload.as_ref(), b"ok");
        assert_eq!(b[1].position.offset, 14);
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "chronon-src-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
