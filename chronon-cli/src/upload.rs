//! `chronon upload`: batch uploads into a group-by's `<NAME>_BATCH` dataset (Chronon's
//! `GroupByUpload` + `bulkPut`), and definitions into `CHRONON_METADATA`.
//!
//! ```text
//! # (a) JVM Chronon's upload table as Spark's GroupByUpload wrote it (a folder of Parquet part
//! #     files, or one file), loaded unchanged: key_bytes, value_bytes and the serving info row
//! chronon upload rocks:///var/chronon --table warehouse/quickstart_purchases_v1_upload
//! # (b) raw events (Parquet or CSV), IRs computed here as of the end of --end-date
//! chronon upload rocks:///var/chronon --group-by purchases.json --events purchases.csv --end-date 2023-12-01
//! # a join over stored group-bys
//! chronon upload rocks:///var/chronon --join join.json
//! # Chronon's compiled confs (chronon-ai's compile.py): column types from the events' Parquet
//! # schema (or --schema for CSV events and upload tables), then the JVM's metadata layout
//! chronon upload rocks:///var/chronon --group-by production/group_bys/quickstart/purchases.v1 --events purchases.parquet --end-date 2023-11-30
//! chronon upload rocks:///var/chronon --conf production/
//! ```
//!
//! `--conf` (a compiled conf file or a folder such as `production/`) writes what the JVM's
//! `metadata-upload` writes, `ZIPLINE_METADATA` and `CHRONON_ENTITY_BY_TEAM`
//! (`chronon_serving::conf::layout`), and stores each join whose group-bys are already stored so
//! `chronon fetch --join quickstart/training_set.v1` serves it.
//!
//! The batch end time `B` is the end of `--end-date` (UTC midnight after it). With `--events`,
//! memory holds one intermediate result per key, not the events. What is written is JVM
//! Chronon's layout (`chronon_serving::jvm`): batch values by accuracy and the
//! `group_by_serving_info` row. An upload table's end date is its `ds` (see [`table`]).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType as ArrowType, TimeUnit as ArrowUnit};
use bytes::Bytes;
use chronon_core::{BulkPutOptions, BulkRow, DatasetProps, KvStore};
use chronon_serving::conf::{self, layout, CompiledConf};
use chronon_serving::groupby::{GroupBy, Join, DAY_MILLIS};
use chronon_serving::metadata::{self, BatchComputer};
use chronon_serving::stream::value::parse_date;
use chronon_serving::stream::{
    CsvDecoder, DataType, StreamDecoder, StructField, StructType, Value,
};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub mod table;

/// Arguments of `chronon upload` (the store URL comes before them).
#[derive(Debug, Clone, clap::Args)]
pub struct UploadArgs {
    /// The group-by definition (JSON or YAML, or a conf compiled by chronon-ai); stored in
    /// CHRONON_METADATA.
    #[arg(long = "group-by")]
    pub group_by: Option<PathBuf>,
    /// A join definition (JSON or YAML, or a compiled conf) to store, after its group-bys.
    #[arg(long)]
    pub join: Option<PathBuf>,
    /// Compiled confs (a file, or a folder such as `production/`) for the JVM's metadata
    /// datasets; joins whose group-bys are stored are stored for serving too.
    #[arg(long)]
    pub conf: Option<PathBuf>,
    /// The column types of a compiled group-by's data (a schema JSON file), when they cannot be
    /// read from the `--events` Parquet file.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// JVM Chronon's upload table as Spark's GroupByUpload writes it: a Parquet file or a
    /// folder of part files with `key_bytes`, `value_bytes`, `key_json`, `value_json`, `ds` and
    /// the `group_by_serving_info` row; loaded unchanged.
    #[arg(long, conflicts_with = "events")]
    pub table: Option<PathBuf>,
    /// Raw events (`.parquet` or `.csv` with a header), aggregated here.
    #[arg(long, requires = "group_by")]
    pub events: Option<PathBuf>,
    /// The last day in the upload (YYYY-MM-DD); the batch end is the midnight after it (UTC).
    #[arg(long = "end-date")]
    pub end_date: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The batch end time of `--end-date`: the UTC midnight after that day.
pub fn batch_end_of(date: &str) -> Result<i64> {
    let days = parse_date(date)
        .with_context(|| format!("--end-date {date:?} is not a YYYY-MM-DD date"))?;
    Ok((i64::from(days) + 1) * DAY_MILLIS)
}

fn bar(quiet: bool, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {pos} rows ({per_sec}, {elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(what.to_string());
    pb
}

/// Runs `chronon upload`.
pub async fn run(args: UploadArgs, store: Arc<dyn KvStore>) -> Result<()> {
    if args.group_by.is_none() && args.join.is_none() && args.conf.is_none() && args.table.is_none()
    {
        bail!("nothing to do: give --table, --group-by (with --events), --join and/or --conf");
    }
    if let Some(path) = &args.table {
        upload_table(&*store, path, &args).await?;
    } else if let Some(path) = &args.group_by {
        let gb = load_group_by(path, &args)?;
        match &args.events {
            None => {
                metadata::put_group_by(&*store, &gb).await?;
                println!("stored group-by {}", gb.name);
            }
            Some(events) => {
                let date = args
                    .end_date
                    .as_deref()
                    .context("--end-date is needed with --events")?;
                let batch_end = batch_end_of(date)?;
                let rows = compute_from_events(&gb, events, batch_end, args.quiet)?;
                let n = rows.len() as u64;
                let pb = bar(args.quiet, &format!("bulk_put {}", gb.batch_dataset()));
                pb.set_length(n);
                let progress_bar = pb.clone();
                let options = BulkPutOptions {
                    progress: Some(Arc::new(move |done| progress_bar.set_position(done))),
                    sorted: true,
                };
                let report = metadata::upload_batch(&*store, &gb, batch_end, rows, options).await?;
                pb.finish_and_clear();
                println!(
                    "uploaded {} keys to {} (batch end {batch_end} = end of {date})",
                    report.rows,
                    gb.batch_dataset()
                );
            }
        }
    }
    if let Some(path) = &args.join {
        let join = if is_compiled(path) {
            let shown = path.display().to_string();
            match conf::load(path)? {
                CompiledConf::Join(j) => conf::join_from_conf(&j, &shown)?.0,
                CompiledConf::GroupBy(_) => bail!("{shown} is a compiled group-by, not a join"),
            }
        } else {
            Join::load(path)?
        };
        metadata::put_join(&*store, &join).await?;
        println!("stored join {}", join.name);
    }
    if let Some(path) = &args.conf {
        upload_confs(&*store, path).await?;
    }
    Ok(())
}

fn is_compiled(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| conf::is_compiled_conf(&t))
}

/// A group-by from this workspace's YAML/JSON, or from a compiled conf with column types from
/// `--schema` or the `--events` Parquet file.
fn load_group_by(path: &Path, args: &UploadArgs) -> Result<GroupBy> {
    if !is_compiled(path) {
        return Ok(GroupBy::load(path)?);
    }
    let shown = path.display().to_string();
    let gb = match conf::load(path)? {
        CompiledConf::GroupBy(g) => g,
        CompiledConf::Join(_) => bail!("{shown} is a compiled join; give it to --join or --conf"),
    };
    let schema = match (&args.schema, &args.events) {
        (Some(s), _) => StructType::load(s).with_context(|| format!("--schema {}", s.display()))?,
        (None, Some(e)) if !is_csv(e) => parquet_schema(e)?,
        _ => bail!(
            "{shown} is a compiled conf, which carries no column types: give --events as Parquet \
             (its schema is used) or --schema with the data's schema"
        ),
    };
    Ok(conf::group_by_from_conf(&gb, &schema, &shown)?)
}

/// The columns of a Parquet file as a schema; columns of types serving does not read are left
/// out (a conf that needs one is then told the column is missing).
fn parquet_schema(path: &Path) -> Result<StructType> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a Parquet file", path.display()))?;
    let fields = builder
        .schema()
        .fields()
        .iter()
        .filter_map(|f| {
            let t = match f.data_type() {
                ArrowType::Boolean => DataType::Boolean,
                ArrowType::Int8 => DataType::Byte,
                ArrowType::Int16 | ArrowType::UInt8 => DataType::Short,
                ArrowType::Int32 | ArrowType::UInt16 => DataType::Int,
                ArrowType::Int64 | ArrowType::UInt32 => DataType::Long,
                ArrowType::Float32 => DataType::Float,
                ArrowType::Float64 => DataType::Double,
                ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => DataType::String,
                ArrowType::Binary | ArrowType::LargeBinary => DataType::Binary,
                ArrowType::Date32 => DataType::Date,
                ArrowType::Timestamp(..) => DataType::Timestamp,
                _ => return None,
            };
            Some(StructField::new(f.name().clone(), t))
        })
        .collect();
    Ok(StructType::new("data", fields))
}

/// `--conf`: the JVM's metadata datasets, then each join whose group-bys are stored.
async fn upload_confs(store: &dyn KvStore, path: &Path) -> Result<()> {
    let entries = layout::read_confs(path)?;
    if entries.is_empty() {
        bail!(
            "{}: no compiled confs (files under a joins/ or group_bys/ folder)",
            path.display()
        );
    }
    layout::upload_confs(store, &entries).await?;
    println!(
        "stored {} confs in {} and {}",
        entries.len(),
        layout::CONF_BY_KEY_DATASET,
        layout::ENTITY_BY_TEAM_DATASET
    );
    for e in &entries {
        let CompiledConf::Join(j) = &e.conf else {
            continue;
        };
        // The metadata layout holds every conf; serving takes the joins it can serve.
        let join = match conf::join_from_conf(j, &e.path.display().to_string()) {
            Ok((join, _)) => join,
            Err(err) => {
                println!("join {} is not servable here: {err}", e.key);
                continue;
            }
        };
        let mut missing = Vec::new();
        for p in &join.parts {
            if metadata::get_group_by(store, &p.group_by).await?.is_none() {
                missing.push(p.group_by.clone());
            }
        }
        if missing.is_empty() {
            metadata::put_join(store, &join).await?;
            println!("stored join {} for serving ({})", join.name, e.key);
        } else {
            println!(
                "join {} ({}) is not servable yet: upload its group-bys first ({})",
                join.name,
                e.key,
                missing.join(", ")
            );
        }
    }
    Ok(())
}

fn open_parquet(path: &Path) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{} is not a Parquet file", path.display()))?
        .with_batch_size(8192)
        .build()
        .with_context(|| format!("reading {}", path.display()))
}

fn binary_column(batch: &RecordBatch, name: &str, path: &Path) -> Result<Vec<Option<Bytes>>> {
    let col = batch
        .column_by_name(name)
        .with_context(|| format!("{} has no {name:?} column", path.display()))?;
    let out = match col.data_type() {
        ArrowType::Binary => col
            .as_binary::<i32>()
            .iter()
            .map(|v| v.map(Bytes::copy_from_slice))
            .collect(),
        ArrowType::LargeBinary => col
            .as_binary::<i64>()
            .iter()
            .map(|v| v.map(Bytes::copy_from_slice))
            .collect(),
        other => bail!(
            "{}: column {name:?} is {other}, but must be binary",
            path.display()
        ),
    };
    Ok(out)
}

/// Loads JVM Chronon's upload table unchanged (see [`table`]): its rows into `<NAME>_BATCH`,
/// then its serving info. With `--group-by`, that definition (of the same name) is stored too,
/// so joins over it can be stored; without, the fetcher serves the serving info's GroupBy.
async fn upload_table(store: &dyn KvStore, path: &Path, args: &UploadArgs) -> Result<()> {
    let t = table::read(path)?;
    if let Some(date) = &args.end_date {
        if *date != t.ds {
            bail!("--end-date {date} but the upload table's ds is {}", t.ds);
        }
    }
    if let Some(gb_path) = &args.group_by {
        let gb = load_group_by(gb_path, args)?;
        if gb.name != t.group_by {
            bail!(
                "--group-by is {:?} but the upload table's serving info is for {:?}",
                gb.name,
                t.group_by
            );
        }
        metadata::put_group_by(store, &gb).await?;
    }
    let batch = chronon_serving::jvm::batch_dataset(&t.group_by);
    store.create(&batch, &DatasetProps::snapshot()).await?;
    store
        .create(
            &chronon_serving::jvm::streaming_dataset(&t.group_by),
            &DatasetProps::time_series(),
        )
        .await?;
    let n = t.rows.len() as u64;
    let pb = bar(args.quiet, &format!("bulk_put {batch}"));
    pb.set_length(n);
    let progress_bar = pb.clone();
    let options = BulkPutOptions {
        progress: Some(Arc::new(move |done| progress_bar.set_position(done))),
        sorted: true,
    };
    let source = futures::stream::iter(t.rows.into_iter().map(Ok)).boxed();
    let report = store.bulk_put(&batch, source, options).await?;
    metadata::put_serving_info(store, &t.group_by, &t.serving_info, t.batch_end).await?;
    pb.finish_and_clear();
    println!(
        "uploaded {} keys and the serving info to {batch} (ds {}, batch end {})",
        report.rows, t.ds, t.batch_end
    );
    Ok(())
}

/// Aggregates raw events into batch IRs per key.
fn compute_from_events(
    gb: &GroupBy,
    path: &Path,
    batch_end: i64,
    quiet: bool,
) -> Result<Vec<BulkRow>> {
    let mut computer = BatchComputer::new(gb, batch_end)?;
    let pb = bar(quiet, &format!("aggregating {}", path.display()));
    if is_csv(path) {
        let decoder = CsvDecoder::new(gb.schema.clone());
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            match decoder.decode(line.as_bytes()) {
                Ok(None) => {}
                Ok(Some(m)) => {
                    if let Some(row) = m.after() {
                        computer.add_row(row)?;
                    }
                }
                Err(e) => bail!("{} line {}: {e}", path.display(), n + 1),
            }
            pb.inc(1);
        }
    } else {
        for batch in open_parquet(path)? {
            let batch = batch.with_context(|| format!("reading {}", path.display()))?;
            let columns =
                gb.schema
                    .fields
                    .iter()
                    .map(|f| {
                        batch.column_by_name(&f.name).cloned().with_context(|| {
                            format!("{} has no column {:?}", path.display(), f.name)
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
            for i in 0..batch.num_rows() {
                let row = gb
                    .schema
                    .fields
                    .iter()
                    .zip(&columns)
                    .map(|(f, c)| {
                        arrow_value(c.as_ref(), i, &f.data_type)
                            .with_context(|| format!("{} column {:?}", path.display(), f.name))
                    })
                    .collect::<Result<Vec<_>>>()?;
                computer.add_row(&row)?;
            }
            pb.inc(batch.num_rows() as u64);
        }
    }
    pb.finish_and_clear();
    let (read, skipped) = computer.counts();
    println!(
        "aggregated {read} events ({skipped} skipped: no time, no key or after the batch end) into {} keys",
        computer.keys()
    );
    Ok(computer.into_rows()?)
}

fn is_csv(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// One Arrow cell as a value of the schema's type.
fn arrow_value(col: &dyn Array, i: usize, want: &DataType) -> Result<Value> {
    if col.is_null(i) {
        return Ok(Value::Null);
    }
    let int = |v: i64| -> Result<Value> {
        Ok(match want {
            DataType::Long => Value::Long(v),
            DataType::Timestamp => Value::Timestamp(v),
            DataType::Int => Value::Int(i32::try_from(v).context("out of int range")?),
            DataType::Short => Value::Short(i16::try_from(v).context("out of short range")?),
            DataType::Byte => Value::Byte(i8::try_from(v).context("out of byte range")?),
            DataType::Double => Value::Double(v as f64),
            DataType::Float => Value::Float(v as f32),
            DataType::String => Value::String(v.to_string()),
            other => bail!("an integer cannot be read as {other}"),
        })
    };
    let float = |v: f64| -> Result<Value> {
        Ok(match want {
            DataType::Double => Value::Double(v),
            DataType::Float => Value::Float(v as f32),
            other => bail!("a floating-point number cannot be read as {other}"),
        })
    };
    match col.data_type() {
        ArrowType::Int8 => int(i64::from(col.as_primitive::<Int8Type>().value(i))),
        ArrowType::Int16 => int(i64::from(col.as_primitive::<Int16Type>().value(i))),
        ArrowType::Int32 => int(i64::from(col.as_primitive::<Int32Type>().value(i))),
        ArrowType::Int64 => int(col.as_primitive::<Int64Type>().value(i)),
        ArrowType::UInt8 => int(i64::from(col.as_primitive::<UInt8Type>().value(i))),
        ArrowType::UInt16 => int(i64::from(col.as_primitive::<UInt16Type>().value(i))),
        ArrowType::UInt32 => int(i64::from(col.as_primitive::<UInt32Type>().value(i))),
        ArrowType::Float32 => float(f64::from(col.as_primitive::<Float32Type>().value(i))),
        ArrowType::Float64 => float(col.as_primitive::<Float64Type>().value(i)),
        ArrowType::Boolean => match want {
            DataType::Boolean => Ok(Value::Boolean(col.as_boolean().value(i))),
            other => bail!("a boolean cannot be read as {other}"),
        },
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => {
            let s = match col.data_type() {
                ArrowType::Utf8 => col.as_string::<i32>().value(i),
                ArrowType::LargeUtf8 => col.as_string::<i64>().value(i),
                _ => col.as_string_view().value(i),
            };
            match want {
                DataType::String => Ok(Value::String(s.to_string())),
                DataType::Long | DataType::Int | DataType::Timestamp => int(s
                    .trim()
                    .parse()
                    .with_context(|| format!("{s:?} is not a number"))?),
                DataType::Double | DataType::Float => float(
                    s.trim()
                        .parse()
                        .with_context(|| format!("{s:?} is not a number"))?,
                ),
                other => bail!("a string cannot be read as {other}"),
            }
        }
        ArrowType::Binary => Ok(Value::Binary(col.as_binary::<i32>().value(i).to_vec())),
        ArrowType::LargeBinary => Ok(Value::Binary(col.as_binary::<i64>().value(i).to_vec())),
        ArrowType::Date32 => match want {
            DataType::Date => Ok(Value::Date(col.as_primitive::<Date32Type>().value(i))),
            other => bail!("a date cannot be read as {other}"),
        },
        ArrowType::Timestamp(unit, _) => {
            let ms = match unit {
                ArrowUnit::Second => col
                    .as_primitive::<TimestampSecondType>()
                    .value(i)
                    .saturating_mul(1000),
                ArrowUnit::Millisecond => col.as_primitive::<TimestampMillisecondType>().value(i),
                ArrowUnit::Microsecond => {
                    col.as_primitive::<TimestampMicrosecondType>().value(i) / 1000
                }
                ArrowUnit::Nanosecond => {
                    col.as_primitive::<TimestampNanosecondType>().value(i) / 1_000_000
                }
            };
            int(ms)
        }
        other => bail!("Arrow type {other} is not supported"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow_array::{BinaryArray, Int64Array, StringArray};
    use chronon_core::MemoryStore;
    use chronon_serving::fetcher::{FetchRequest, Fetcher, FetcherOptions};
    use parquet::arrow::ArrowWriter;

    #[test]
    fn end_date_is_the_midnight_after() {
        assert_eq!(batch_end_of("1970-01-01").unwrap(), DAY_MILLIS);
        assert!(batch_end_of("yesterday").is_err());
    }

    fn write_parquet(path: &Path, batch: RecordBatch) {
        let file = File::create(path).unwrap();
        let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    const GB: &str = r#"{"name": "t.purchases", "keys": ["user_id"],
        "schema": {"name": "p", "fields": [{"name": "user_id", "type": "string"},
            {"name": "price", "type": "long"}, {"name": "ts", "type": "long"}]},
        "aggregations": [{"input_column": "price", "operation": "sum", "windows": ["1d"]},
                         {"input_column": "price", "operation": "count"}]}"#;

    /// Events (Parquet and CSV) are aggregated and served; an upload table is loaded as is.
    #[tokio::test]
    async fn uploads_from_events_and_tables_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let gb_path = dir.path().join("gb.json");
        std::fs::write(&gb_path, GB).unwrap();
        let b = batch_end_of("2023-11-30").unwrap();
        let events = RecordBatch::try_from_iter([
            (
                "user_id",
                Arc::new(StringArray::from(vec!["a", "a", "b", "a"])) as Arc<dyn Array>,
            ),
            ("price", Arc::new(Int64Array::from(vec![1, 2, 4, 8])) as _),
            (
                "ts",
                Arc::new(Int64Array::from(vec![
                    b - DAY_MILLIS - 1,
                    b - 5,
                    b - 1,
                    b + 1,
                ])) as _,
            ),
        ])
        .unwrap();
        let ev_path = dir.path().join("events.parquet");
        write_parquet(&ev_path, events);
        let csv_path = dir.path().join("events.csv");
        std::fs::write(
            &csv_path,
            format!(
                "user_id,price,ts\na,1,{}\na,2,{}\nb,4,{}\n",
                b - DAY_MILLIS - 1,
                b - 5,
                b - 1
            ),
        )
        .unwrap();
        for events in [ev_path, csv_path] {
            let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
            let args = UploadArgs {
                group_by: Some(gb_path.clone()),
                join: None,
                conf: None,
                schema: None,
                table: None,
                events: Some(events),
                end_date: Some("2023-11-30".into()),
                quiet: true,
            };
            run(args, store.clone()).await.unwrap();
            let f = Fetcher::new(store.clone(), FetcherOptions::default());
            let r = f
                .fetch_group_bys(vec![
                    FetchRequest::new("t.purchases", [("user_id", "a")]).at(b)
                ])
                .await;
            let v = r[0].values.as_ref().unwrap();
            assert_eq!(v["price_sum_1d"], Value::Long(2));
            assert_eq!(v["price_count"], Value::Long(2));

            // Re-load what was computed, as GroupByUpload's table (rows + serving info row,
            // `ds` the end date), into a fresh store.
            let key = Bytes::from_static(&[2, 2, b'a']);
            let rows = store
                .multi_get(vec![
                    chronon_core::GetRequest::latest("T_PURCHASES_BATCH", key.clone()),
                    chronon_core::GetRequest::latest(
                        "T_PURCHASES_BATCH",
                        Bytes::from_static(b"group_by_serving_info"),
                    ),
                ])
                .await;
            let value = rows[0].values.as_ref().unwrap()[0].bytes.clone();
            let info = rows[1].values.as_ref().unwrap()[0].bytes.clone();
            let table = RecordBatch::try_from_iter([
                (
                    "key_bytes",
                    Arc::new(BinaryArray::from(vec![
                        &key[..],
                        &b"group_by_serving_info"[..],
                    ])) as Arc<dyn Array>,
                ),
                (
                    "value_bytes",
                    Arc::new(BinaryArray::from(vec![&value[..], &info[..]])) as _,
                ),
                (
                    "key_json",
                    Arc::new(StringArray::from(vec![None, Some("group_by_serving_info")])) as _,
                ),
                (
                    "ds",
                    Arc::new(StringArray::from(vec!["2023-11-30", "2023-11-30"])) as _,
                ),
            ])
            .unwrap();
            let table_path = dir.path().join("upload.parquet");
            write_parquet(&table_path, table);
            let fresh: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
            let args = UploadArgs {
                group_by: None,
                join: None,
                conf: None,
                schema: None,
                table: Some(table_path),
                events: None,
                end_date: None,
                quiet: true,
            };
            run(args, fresh.clone()).await.unwrap();
            let f = Fetcher::new(fresh, FetcherOptions::default());
            let r = f
                .fetch_group_bys(vec![
                    FetchRequest::new("t.purchases", [("user_id", "a")]).at(b)
                ])
                .await;
            assert_eq!(
                r[0].values.as_ref().unwrap()["price_sum_1d"],
                Value::Long(2)
            );
        }
    }
}
