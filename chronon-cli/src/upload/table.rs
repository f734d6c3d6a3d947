//! `chronon upload --table`: JVM Chronon's upload table, loaded into the store unchanged.
//!
//! Spark's `GroupByUpload.run` (airbnb/chronon `spark/.../GroupByUpload.scala`, rows from
//! `KvRdd.toAvroDf`) writes one unpartitioned table with the columns `key_bytes` (binary: the
//! Avro `Key` record), `value_bytes` (binary: the batch value), `key_json` and `value_json`
//! (strings, filled for about 1% of rows, for debugging) and `ds` (the upload's end date), plus
//! one row whose `key_bytes` are the UTF-8 of `group_by_serving_info` and whose `value_bytes` are
//! the `GroupByServingInfo` JSON. Spark saves it as a folder of Parquet part files (hidden files
//! and `_SUCCESS` alongside); a single Parquet file is read as well.
//!
//! Every row goes to `<NAME>_BATCH` as it is, at the batch end (`batchEndDate`, the day after
//! `ds`); the serving-info row goes last, so a fetcher never pairs the new batch end with old
//! values. `key_json`/`value_json` are not stored (the JVM's `bulkPut` does not store them
//! either).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::RecordBatch;
use arrow_schema::DataType as ArrowType;
use bytes::Bytes;
use chronon_core::BulkRow;
use chronon_serving::jvm::{ServingInfo, SERVING_INFO_KEY};
use chronon_serving::stream::value::{format_date, parse_date};

use super::{binary_column, open_parquet};

/// What an upload table holds.
#[derive(Debug)]
pub struct UploadTable {
    /// The GroupBy's name, from the serving info.
    pub group_by: String,
    /// The `ds` of every row: the upload's end date.
    pub ds: String,
    /// The batch end (`batchEndDate` at midnight UTC, the day after `ds`).
    pub batch_end: i64,
    /// The serving-info JSON, as the table holds it.
    pub serving_info: String,
    /// The key/value rows, sorted by key, at the batch end.
    pub rows: Vec<BulkRow>,
}

/// The Parquet files of a table: the file itself, or a folder's files but hidden ones (`.crc`)
/// and Spark's markers (`_SUCCESS`), in name order.
pub fn part_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| format!("listing {}", path.display()))? {
        let entry = entry.with_context(|| format!("listing {}", path.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with('_') || !entry.path().is_file() {
            continue;
        }
        files.push(entry.path());
    }
    files.sort();
    if files.is_empty() {
        bail!(
            "{} holds no Parquet part files (an upload table as Spark writes it has part-*.parquet)",
            path.display()
        );
    }
    Ok(files)
}

fn string_column(batch: &RecordBatch, name: &str, path: &Path) -> Result<Vec<Option<String>>> {
    let col = batch
        .column_by_name(name)
        .with_context(|| format!("{} has no {name:?} column", path.display()))?;
    let out = match col.data_type() {
        ArrowType::Utf8 => col
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
        ArrowType::LargeUtf8 => col
            .as_string::<i64>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
        ArrowType::Utf8View => col
            .as_string_view()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect(),
        other => bail!(
            "{}: column {name:?} is {other}, but must be a string",
            path.display()
        ),
    };
    Ok(out)
}

/// Reads an upload table (a Parquet file or Spark's folder of part files).
pub fn read(path: &Path) -> Result<UploadTable> {
    let mut rows = Vec::new();
    let mut info_text: Option<String> = None;
    let mut dates = BTreeSet::new();
    for file in part_files(path)? {
        for batch in open_parquet(&file)? {
            let batch = batch.with_context(|| format!("reading {}", file.display()))?;
            let keys = binary_column(&batch, "key_bytes", &file)?;
            let values = binary_column(&batch, "value_bytes", &file)?;
            let ds = string_column(&batch, "ds", &file)?;
            for (i, ((k, v), d)) in keys.into_iter().zip(values).zip(ds).enumerate() {
                let key =
                    k.with_context(|| format!("{}: row {i} has a null key_bytes", file.display()))?;
                let d = d.with_context(|| format!("{}: row {i} has a null ds", file.display()))?;
                dates.insert(d);
                if key.as_ref() == SERVING_INFO_KEY.as_bytes() {
                    let bytes = v.with_context(|| {
                        format!(
                            "{}: the {SERVING_INFO_KEY} row has no value_bytes",
                            file.display()
                        )
                    })?;
                    let text = String::from_utf8(bytes.to_vec()).with_context(|| {
                        format!(
                            "{}: the {SERVING_INFO_KEY} row is not UTF-8",
                            file.display()
                        )
                    })?;
                    info_text = Some(text);
                    continue;
                }
                rows.push(BulkRow {
                    key,
                    value: v.unwrap_or_default(),
                    ts: 0,
                });
            }
        }
    }
    let serving_info = info_text.with_context(|| {
        format!(
            "{} has no {SERVING_INFO_KEY} row (GroupByUpload writes one with every upload)",
            path.display()
        )
    })?;
    let info = ServingInfo::parse(&serving_info)?;
    let group_by = info.group_by_name()?;
    let ds = match dates.len() {
        1 => dates.into_iter().next().unwrap_or_default(),
        0 => bail!("{} has no rows", path.display()),
        _ => bail!(
            "{} holds the dates {} in ds; GroupByUpload writes one upload's end date",
            path.display(),
            dates.into_iter().collect::<Vec<_>>().join(", ")
        ),
    };
    let batch_end = info.batch_end_millis()?;
    let day = parse_date(&ds)
        .with_context(|| format!("{}: ds {ds:?} is not yyyy-MM-dd", path.display()))?;
    if i64::from(day + 1) * chronon_serving::groupby::DAY_MILLIS != batch_end {
        bail!(
            "{}: ds {ds} but the serving info's batchEndDate is {:?}; GroupByUpload sets it to the day after ds ({})",
            path.display(),
            info.batch_end_date.as_deref().unwrap_or_default(),
            format_date(day + 1)
        );
    }
    for r in &mut rows {
        r.ts = batch_end;
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(w) = rows.windows(2).find(|w| w[0].key == w[1].key) {
        bail!(
            "{}: two rows have the key_bytes {}",
            path.display(),
            hex(&w[0].key)
        );
    }
    Ok(UploadTable {
        group_by,
        ds,
        batch_end,
        serving_info,
        rows,
    })
}

fn hex(b: &Bytes) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
