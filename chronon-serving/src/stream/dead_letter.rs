//! Dead letters: bad messages, kept with their position and reason instead of stopping the
//! stream, in a file or a dataset.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use chronon_core::{validate, DatasetProps, KvError, KvStore, PutRequest};

use super::source::Position;

/// A bad message on its way to the dead-letter sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The source it came from.
    pub source: String,
    /// Its position (line and offset just after it).
    pub position: Position,
    /// Why it was rejected.
    pub error: String,
    /// The raw message.
    pub payload: Bytes,
}

impl DeadLetter {
    /// The JSON line a file sink writes: `source`, `line`, `offset`, `error`, `payload` (lossy
    /// UTF-8) and `payload_base64` (exact bytes).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "source": self.source,
            "line": self.position.line,
            "offset": self.position.offset,
            "error": self.error,
            "payload": String::from_utf8_lossy(&self.payload),
            "payload_base64": base64::engine::general_purpose::STANDARD.encode(&self.payload),
        })
    }
}

/// Where bad messages go. A letter is durable after `flush`, which the writer calls before it
/// commits a position past it.
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    /// Records one bad message.
    async fn send(&self, letter: &DeadLetter) -> io::Result<()>;
    /// Makes every letter sent so far durable.
    async fn flush(&self) -> io::Result<()>;
}

/// Dead letters appended to a file, one JSON object per line ([`DeadLetter::to_json`]).
#[derive(Debug)]
pub struct FileDeadLetter {
    file: Mutex<io::BufWriter<std::fs::File>>,
}

impl FileDeadLetter {
    /// Appends to `path` (created when missing).
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(FileDeadLetter {
            file: Mutex::new(io::BufWriter::new(file)),
        })
    }
}

#[async_trait]
impl DeadLetterSink for FileDeadLetter {
    async fn send(&self, letter: &DeadLetter) -> io::Result<()> {
        use std::io::Write;
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::to_writer(&mut *f, &letter.to_json()).map_err(io::Error::other)?;
        f.write_all(b"\n")
    }

    async fn flush(&self) -> io::Result<()> {
        use std::io::Write;
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.flush()?;
        f.get_ref().sync_data()
    }
}

/// Dead letters written to a snapshot dataset of the store (key `<source>@<offset>`, value the
/// JSON of [`DeadLetter::to_json`]), for deployments without a local disk.
#[derive(Debug)]
pub struct DatasetDeadLetter {
    store: Arc<dyn KvStore>,
    dataset: String,
}

impl DatasetDeadLetter {
    /// Creates (if needed) and uses `dataset`, e.g. `<NAME>_DEAD_LETTER`.
    pub async fn new(store: Arc<dyn KvStore>, dataset: impl Into<String>) -> Result<Self, KvError> {
        let dataset = dataset.into();
        store.create(&dataset, &DatasetProps::snapshot()).await?;
        Ok(DatasetDeadLetter { store, dataset })
    }
}

#[async_trait]
impl DeadLetterSink for DatasetDeadLetter {
    async fn send(&self, letter: &DeadLetter) -> io::Result<()> {
        let key = format!("{}@{}", letter.source, letter.position.offset);
        let mut key = key.into_bytes();
        key.truncate(validate::MAX_KEY_BYTES);
        let value = letter.to_json().to_string().into_bytes();
        let put = PutRequest::new(self.dataset.clone(), key, value, None);
        match self.store.multi_put(vec![put]).await.pop() {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(io::Error::other(e)),
            None => Err(io::Error::other("no result from multi_put")),
        }
    }

    async fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}
