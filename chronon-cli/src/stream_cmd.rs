//! `chronon stream`: decode a stream of messages (CSV, JSON or Debezium change events, one per
//! line) and write them to a group-by's `<NAME>_STREAMING` dataset, with a progress line.
//!
//! ```text
//! chronon stream rocks:///var/chronon --decoder csv --schema purchases.json \
//!     --group-by team.purchases.v1 --keys user_id --time-column ts \
//!     --dead-letter bad.jsonl --checkpoint purchases.cp events.csv
//! ```
//!
//! When the group-by was stored by `chronon upload`, its definition in `CHRONON_METADATA` sets
//! the time and value columns written (so the fetcher can decode them); `--keys` must match it.
//!
//! With `--checkpoint`, a restart resumes after the last position whose writes the store
//! acknowledged (at-least-once; re-written rows replace themselves). `--dead-letter FILE` appends
//! bad messages as JSON lines, `--dead-letter dataset:NAME` puts them in a store dataset, and
//! `--strict` stops at the first bad message instead.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chronon_core::KvStore;
use chronon_serving::metadata;
use chronon_serving::stream::{
    CsvDecoder, DatasetDeadLetter, DeadLetterSink, DebeziumDecoder, FileDeadLetter, JsonDecoder,
    LineSource, Source, StreamDecoder, StreamSummary, StreamingWriter, StructType, WriterOptions,
};

/// The message formats `chronon stream` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecoderKind {
    /// One CSV record per line, columns in schema order.
    Csv,
    /// One JSON object per line, columns by name.
    Json,
    /// One Debezium change event (JSON) per line; written as entity mutations.
    Debezium,
}

/// Arguments of `chronon stream` (the store URL comes before them).
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// Message format.
    #[arg(long, value_enum)]
    pub decoder: DecoderKind,
    /// Schema file (JSON: {"name": ..., "fields": [{"name": ..., "type": ...}]}); for Debezium,
    /// the table's columns.
    #[arg(long, required_unless_present = "quickstart_columns")]
    pub schema: Option<PathBuf>,
    /// CSV only, instead of --schema: column names whose types are guessed as Chronon's
    /// quickstart does (`*ts`, `*_price`, `*_amt` are long, the rest string).
    #[arg(long, value_delimiter = ',', conflicts_with = "schema")]
    pub quickstart_columns: Vec<String>,
    /// Group-by name; the dataset written is `<CLEANNAME>_STREAMING` (JVM Chronon's).
    #[arg(long = "group-by")]
    pub group_by: String,
    /// Key columns, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub keys: Vec<String>,
    /// Event time column (long epoch ms or timestamp).
    #[arg(long, default_value = "ts")]
    pub time_column: String,
    /// Value columns, comma-separated (default: all but keys, time and mutation_ts).
    #[arg(long, value_delimiter = ',')]
    pub values: Option<Vec<String>>,
    /// Stop at the first bad message instead of dead-lettering it.
    #[arg(long)]
    pub strict: bool,
    /// Where bad messages go: a file (JSON lines) or `dataset:NAME`.
    #[arg(long)]
    pub dead_letter: Option<String>,
    /// Checkpoint file: resume after the last acknowledged position.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Puts per store batch.
    #[arg(long, default_value_t = 2_000)]
    pub batch_size: usize,
    /// Write a partial batch after this many milliseconds.
    #[arg(long, default_value_t = 200)]
    pub batch_interval_ms: u64,
    /// Batches in flight before reading pauses (backpressure).
    #[arg(long, default_value_t = 4)]
    pub max_in_flight: usize,
    /// CSV field delimiter (one ASCII character).
    #[arg(long, default_value_t = ',')]
    pub delimiter: char,
    /// Input: a file of one message per line, or `-` for stdin.
    pub input: String,
}

/// Builds the decoder the arguments ask for.
pub fn build_decoder(args: &StreamArgs) -> anyhow::Result<Arc<dyn StreamDecoder>> {
    let schema = match &args.schema {
        Some(path) => Some(
            StructType::load(path).with_context(|| format!("loading schema {}", path.display()))?,
        ),
        None => None,
    };
    Ok(match (args.decoder, schema) {
        (DecoderKind::Csv, schema) => {
            if !args.delimiter.is_ascii() {
                bail!("--delimiter must be one ASCII character");
            }
            let d = match schema {
                Some(s) => CsvDecoder::new(s),
                None => CsvDecoder::with_quickstart_types(&args.quickstart_columns),
            };
            Arc::new(d.delimiter(args.delimiter as u8))
        }
        (DecoderKind::Json, Some(s)) => Arc::new(JsonDecoder::new(s)),
        (DecoderKind::Debezium, Some(s)) => Arc::new(DebeziumDecoder::new(s)?),
        (_, None) => bail!("--schema is required for the json and debezium decoders"),
    })
}

fn progress_line(s: &StreamSummary, elapsed: Duration) -> String {
    let rate = s.messages as f64 / elapsed.as_secs_f64().max(1e-3);
    format!(
        "{} messages ({:.0}/s), {} puts written, {} skipped, {} errors, committed line {}",
        s.messages, rate, s.written, s.skipped, s.bad, s.committed_line
    )
}

/// Runs `chronon stream` against `store`.
pub async fn run(args: StreamArgs, store: Arc<dyn KvStore>) -> anyhow::Result<()> {
    let decoder = build_decoder(&args)?;
    let mut opts = WriterOptions::new(
        args.group_by.clone(),
        args.keys.clone(),
        args.time_column.clone(),
    );
    opts.value_columns = args.values.clone();
    // A group-by stored in CHRONON_METADATA (by `chronon upload`), else the one in the serving
    // info of a JVM upload, decides the columns the fetcher will decode: its keys, time column
    // and aggregation inputs (JVM Chronon's `_INPUT_COLS`) are the ones written.
    let gb = match metadata::get_group_by(&*store, &args.group_by).await? {
        Some(gb) => Some(gb),
        None => match metadata::get_serving_info(&*store, &args.group_by).await? {
            Some(info) => Some(info.group_by()?),
            None => None,
        },
    };
    if let Some(gb) = gb {
        if gb.keys != args.keys {
            bail!(
                "--keys {} differ from the keys {} of group-by {} (stored in {} or its serving info)",
                args.keys.join(","),
                gb.keys.join(","),
                gb.name,
                chronon_serving::groupby::METADATA_DATASET
            );
        }
        let stored = gb.writer_options();
        if let (Some(given), Some(inputs)) = (&args.values, &stored.value_columns) {
            if given != inputs {
                bail!(
                    "--values {} differ from the aggregation inputs {} of group-by {}: JVM Chronon's streaming rows hold exactly those",
                    given.join(","),
                    inputs.join(","),
                    gb.name
                );
            }
        }
        opts.time_column = stored.time_column;
        opts.data_model = stored.data_model;
        opts.value_columns = stored.value_columns;
    }
    opts.strict = args.strict;
    opts.batch_size = args.batch_size;
    opts.batch_interval = Duration::from_millis(args.batch_interval_ms);
    opts.max_in_flight = args.max_in_flight;
    let mut writer = StreamingWriter::new(decoder, store.clone(), opts)?;
    if let Some(dl) = &args.dead_letter {
        let sink: Arc<dyn DeadLetterSink> = match dl.strip_prefix("dataset:") {
            Some(dataset) => Arc::new(DatasetDeadLetter::new(store.clone(), dataset).await?),
            None => Arc::new(
                FileDeadLetter::open(std::path::Path::new(dl))
                    .with_context(|| format!("opening dead-letter file {dl}"))?,
            ),
        };
        writer = writer.with_dead_letter(sink);
    }
    let source: Box<dyn Source> = if args.input == "-" {
        Box::new(LineSource::stdin(args.checkpoint.as_deref())?)
    } else {
        Box::new(
            LineSource::file(
                std::path::Path::new(&args.input),
                args.checkpoint.as_deref(),
            )
            .with_context(|| format!("opening input {}", args.input))?,
        )
    };

    let stats = writer.stats();
    let started = Instant::now();
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let ticker = {
        let bar = bar.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            loop {
                bar.set_message(progress_line(&stats.snapshot(), started.elapsed()));
                bar.tick();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let result = writer.run(source).await;
    ticker.abort();
    bar.finish_and_clear();
    let summary = stats.snapshot();
    eprintln!(
        "{} into {}: {}",
        if result.is_ok() {
            "streamed"
        } else {
            "stopped"
        },
        writer.dataset(),
        progress_line(&summary, started.elapsed())
    );
    if summary.bad > 0 {
        match &args.dead_letter {
            Some(dl) => eprintln!("{} bad messages sent to {dl}", summary.bad),
            None => eprintln!(
                "{} bad messages were skipped (logged; pass --dead-letter to keep them)",
                summary.bad
            ),
        }
    }
    result.map(|_| ()).map_err(anyhow::Error::from)
}
