//! `bulk_put` through SST files: rows are gathered into a bounded in-memory chunk (one flat
//! buffer plus a small index per row), sorted if the caller did not promise sorted input, written
//! with `SstFileWriter` and ingested with `ingest_external_file_cf` (the files are moved, not
//! copied). While one chunk is written and ingested on the blocking pool, the next one is filled,
//! so peak memory is about two chunks plus RocksDB's own caches, whatever the size of the upload.
//!
//! Sorted input gives chunks with disjoint key ranges, which RocksDB places straight into the
//! bottom level (no compaction). Unsorted input is sorted one chunk at a time; the chunks overlap,
//! so they land in level 0 and later chunks win over earlier ones for the same stored key, which
//! is exactly the input's order ("last write wins", as a `multi_put` of the same rows would do).
//!
//! Idempotent: loading the same rows again stores the same keys and values (ingestion gives the
//! new files newer sequence numbers, which replace identical data).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chronon_core::{
    validate, BulkPutOptions, BulkPutReport, BulkSource, DatasetKind, ErrorContext, KvError,
};
use futures::StreamExt;
use rocksdb::{IngestExternalFileOptions, SstFileWriter};
use tokio::task::JoinHandle;

use crate::client::{Client, Database, BULK_TMP_DIR, MAX_VALUE_BYTES};
use crate::error::map_error;
use crate::layout;

/// Per-row bookkeeping in a chunk: where the encoded key starts, its length, the value's length.
type RowIndex = (usize, u32, u32);

/// One chunk of encoded rows: a flat byte buffer and an index into it.
#[derive(Default)]
struct Chunk {
    data: Vec<u8>,
    rows: Vec<RowIndex>,
}

impl Chunk {
    fn with_capacity(bytes: usize) -> Self {
        Chunk {
            data: Vec::with_capacity(bytes),
            rows: Vec::with_capacity(bytes / 128),
        }
    }

    fn push(&mut self, key: &[u8], value_parts: &[&[u8]]) {
        let start = self.data.len();
        self.data.extend_from_slice(key);
        let mut vlen = 0;
        for part in value_parts {
            self.data.extend_from_slice(part);
            vlen += part.len();
        }
        // Keys are at most 2 * 1024 + 10 encoded bytes and values at most 4 MiB: both fit in u32.
        self.rows.push((start, key.len() as u32, vlen as u32));
    }

    fn key(&self, row: &RowIndex) -> &[u8] {
        &self.data[row.0..row.0 + row.1 as usize]
    }

    fn value(&self, row: &RowIndex) -> &[u8] {
        let start = row.0 + row.1 as usize;
        &self.data[start..start + row.2 as usize]
    }

    fn last_key(&self) -> Option<&[u8]> {
        self.rows.last().map(|r| self.key(r))
    }

    fn clear(&mut self) {
        self.data.clear();
        self.rows.clear();
    }
}

/// Removes the bulk load's temporary directory however the load ends.
struct TmpDir(PathBuf);

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

static LOADS: AtomicU64 = AtomicU64::new(0);

/// Loads `rows` into `dataset`: chunks of about `bulk_chunk_bytes`, each written to an SST file
/// and ingested on the blocking pool while the next one fills.
pub(crate) async fn bulk_put(
    client: &Client,
    dataset: &str,
    mut rows: BulkSource<'_>,
    options: BulkPutOptions,
) -> Result<BulkPutReport, KvError> {
    validate::dataset_name(dataset)?;
    let props = client
        .database()
        .props(dataset)
        .ok_or_else(|| KvError::not_found(dataset))?;
    let max_value = MAX_VALUE_BYTES;
    let chunk_bytes = client.options().bulk_chunk_bytes;
    let tmp = TmpDir(client.options().path.join(BULK_TMP_DIR).join(format!(
        "{}-{}",
        std::process::id(),
        LOADS.fetch_add(1, Ordering::Relaxed)
    )));
    let ctx = client.context("bulk_put").dataset(dataset);
    std::fs::create_dir_all(&tmp.0).map_err(|e| {
        ctx.backend_error(
            format!("creating {}: {e}", tmp.0.display()),
            Some(Arc::new(e)),
        )
    })?;

    let chunk_ctx = ErrorContext {
        timeout: client.options().bulk_chunk_timeout,
        ..ctx.operation("bulk_put chunk")
    };
    let mut chunk = Chunk::with_capacity(chunk_bytes);
    let mut spare: Option<Chunk> = None;
    let mut in_flight: Option<JoinHandle<Result<Chunk, KvError>>> = None;
    let mut prev_chunk_last: Option<Vec<u8>> = None;
    let mut written = 0u64;
    let mut pending_rows = 0u64;
    let mut in_flight_rows = 0u64;
    let mut files = 0u64;
    let mut key_buf = Vec::new();

    loop {
        let row = match rows.next().await {
            Some(row) => Some(row?),
            None => None,
        };
        if let Some(row) = &row {
            validate::key(dataset, &row.key)?;
            validate::put_ts(dataset, row.ts)?;
            if row.value.len() > max_value {
                return Err(KvError::ValueTooLarge {
                    dataset: dataset.to_string(),
                    key: chronon_core::key_preview(&row.key),
                    size: row.value.len(),
                    max: max_value,
                });
            }
            key_buf.clear();
            let ts = layout::ts_bytes(row.ts);
            match props.kind {
                DatasetKind::Snapshot => key_buf.extend_from_slice(&row.key),
                DatasetKind::TimeSeries => {
                    key_buf = layout::version_prefix(&row.key);
                    key_buf.extend_from_slice(&ts);
                }
            }
            if options.sorted {
                let last = chunk.last_key().or(prev_chunk_last.as_deref());
                if last.is_some_and(|last| key_buf.as_slice() < last) {
                    return Err(KvError::InvalidRequest {
                        dataset: dataset.to_string(),
                        reason: format!(
                            "bulk_put was told the rows are sorted, but key {} (ts {}) after {written} + {pending_rows} rows \
                             comes before the previous one; sort by key then ts, or pass sorted: false",
                            chronon_core::key_preview(&row.key),
                            row.ts
                        ),
                    });
                }
            }
            match props.kind {
                DatasetKind::Snapshot => chunk.push(&key_buf, &[&ts[..], &row.value[..]]),
                DatasetKind::TimeSeries => chunk.push(&key_buf, &[&row.value[..]]),
            }
            pending_rows += 1;
        }
        let full =
            chunk.data.len() + chunk.rows.len() * std::mem::size_of::<RowIndex>() >= chunk_bytes;
        if !(full || (row.is_none() && !chunk.rows.is_empty())) {
            if row.is_none() {
                break;
            }
            continue;
        }
        // Hand the full chunk to the blocking pool, after the previous one has been ingested.
        if let Some(handle) = in_flight.take() {
            let done = await_chunk(handle, chunk_ctx).await?;
            written += in_flight_rows;
            if let Some(p) = &options.progress {
                p(written);
            }
            spare = Some(done);
        }
        if options.sorted {
            prev_chunk_last = chunk.last_key().map(<[u8]>::to_vec);
        }
        let next = spare
            .take()
            .unwrap_or_else(|| Chunk::with_capacity(chunk_bytes));
        let full_chunk = std::mem::replace(&mut chunk, next);
        let file = tmp.0.join(format!("chunk-{files:06}.sst"));
        files += 1;
        in_flight_rows = pending_rows;
        pending_rows = 0;
        in_flight = Some(client.spawn_blocking_task({
            let dataset = dataset.to_string();
            let sorted = options.sorted;
            move |database| write_and_ingest(database, &dataset, full_chunk, sorted, &file)
        }));
        if row.is_none() {
            break;
        }
    }
    if let Some(handle) = in_flight.take() {
        await_chunk(handle, chunk_ctx).await?;
        written += in_flight_rows;
        if let Some(p) = &options.progress {
            p(written);
        }
    }
    drop(tmp);
    Ok(BulkPutReport { rows: written })
}

/// Waits for one chunk's blocking task under the per-chunk timeout (`ctx.timeout`).
async fn await_chunk(
    handle: JoinHandle<Result<Chunk, KvError>>,
    ctx: ErrorContext<'_>,
) -> Result<Chunk, KvError> {
    ctx.with_timeout(async move {
        handle
            .await
            .map_err(|e| ctx.backend_error(format!("blocking task: {e}"), Some(Arc::new(e))))?
    })
    .await
}

/// Sorts (unless sorted), drops all but the last row of each stored key, writes one SST file and
/// ingests it. Returns the emptied chunk so its memory is reused.
fn write_and_ingest(
    database: &Database,
    dataset: &str,
    mut chunk: Chunk,
    sorted: bool,
    file: &Path,
) -> Result<Chunk, KvError> {
    let ctx = database.context("bulk_put").dataset(dataset);
    let mut rows = std::mem::take(&mut chunk.rows);
    if !sorted {
        // Stable: rows with the same stored key keep their input order, so the last one wins.
        rows.sort_by(|a, b| chunk.key(a).cmp(chunk.key(b)));
    }
    let (_, cf) = database.dataset(dataset)?;
    let sst_opts = database.cf_options(None);
    let mut writer = SstFileWriter::create(&sst_opts);
    writer.open(file).map_err(|e| map_error(e, ctx))?;
    for (i, row) in rows.iter().enumerate() {
        let key = chunk.key(row);
        if rows.get(i + 1).is_some_and(|next| chunk.key(next) == key) {
            continue;
        }
        writer
            .put(key, chunk.value(row))
            .map_err(|e| map_error(e, ctx))?;
    }
    writer.finish().map_err(|e| map_error(e, ctx))?;
    let mut ingest = IngestExternalFileOptions::default();
    ingest.set_move_files(true);
    database
        .db
        .ingest_external_file_cf_opts(&cf, &ingest, vec![file])
        .map_err(|e| map_error(e, ctx))?;
    let _ = std::fs::remove_file(file);
    chunk.rows = rows;
    chunk.clear();
    Ok(chunk)
}
