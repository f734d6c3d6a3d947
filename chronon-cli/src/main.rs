//! `chronon`: Chronon's online KV integration from the shell. Opens any store from a URL.

mod bytes_arg;
mod check;
mod compare;
mod fetch_cmd;
mod kv;
mod launch;
mod output;
mod serve;
mod soak;
mod stream_cmd;
mod upload;

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: a fetch or a batch read frees many small buffers between
/// a few large ones (the request and answer vectors), and glibc consolidates its free lists on
/// each large allocation. With callgrind, glibc's allocator was the largest single cost of a
/// 100-key Redis read beyond the raw driver's (BENCHMARKS.md, 2026-12-05). Libraries cannot
/// choose an allocator; a service can, as this binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chronon_serving::store_url;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "chronon",
    version,
    about = "Chronon's online KV stores from the command line: read and write, check a store \
             against the contract, compare backends.",
    after_help = store_url::url_help()
)]
struct Cli {
    /// Log line format on stderr: `text` for people (coloured only on a terminal), `json` for
    /// log collectors (one JSON object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "CHRONON_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How the CLI writes its log lines (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr in `format`. Colour codes only when stderr is a terminal and `NO_COLOR` is
/// unset, so `2>log` or a pipe gets plain lines.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter =
        // Our own warnings only by default: drivers log connection failures that the
        // command reports itself, as one line. RUST_LOG=... shows everything.
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            "off,chronon=warn,chronon_core=warn,chronon_rocks=warn,chronon_redis=warn,\
             chronon_dynamo=warn,chronon_mongo=warn,chronon_scylla=warn,chronon_serving=warn,conformance=warn"
                .into()
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_ansi(false).init(),
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).init()
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, drop, put, get and list in any store.
    Kv(kv::KvArgs),
    /// Run the conformance suite (the contract, chronon-core/CONTRACT.md) against a store; exit 1
    /// on any failure.
    Check(check::CheckArgs),
    /// Decode a stream of events or change records and write them to a `<NAME>_STREAMING` dataset.
    Stream {
        /// Store URL (see `chronon --help`).
        url: String,
        #[command(flatten)]
        args: stream_cmd::StreamArgs,
    },
    /// Compare backends: the conformance suite plus a workload matrix with raw-driver baselines;
    /// writes reports/compare.json and reports/compare.html.
    Compare(compare::CompareArgs),
    /// Bounded load with a checker: mixed writes and reads from many workers; reports ops,
    /// errors by kind, lost or wrong values (exit 1 if any) and memory at the start and end.
    Soak(soak::SoakArgs),
    /// Upload batch IRs to a group-by's `<NAME>_BATCH` dataset (from an upload table or raw
    /// events) and store group-by / join definitions in CHRONON_METADATA.
    Upload {
        /// Store URL (see `chronon --help`).
        url: String,
        #[command(flatten)]
        args: upload::UploadArgs,
    },
    /// Fetch a join's or group-by's features for one set of keys and print them as JSON.
    Fetch {
        /// Store URL (see `chronon --help`).
        url: String,
        #[command(flatten)]
        args: fetch_cmd::FetchArgs,
    },
    /// Serve fetches over HTTP with the endpoints of Chronon's fetch service (join, group-by,
    /// join list and schema), plus /health and Prometheus /metrics, until SIGTERM or Ctrl-C.
    Serve {
        /// Store URL (see `chronon --help`).
        url: String,
        #[command(flatten)]
        args: serve::ServeArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Kv(args) => kv::run(args).await.map(|()| true),
            Command::Check(args) => check::run(args).await,
            Command::Stream { url, args } => {
                let store = store_url::open_store(&url).await?;
                stream_cmd::run(args, store).await.map(|()| true)
            }
            Command::Compare(args) => compare::run(args).await,
            Command::Soak(args) => soak::run(args).await,
            Command::Upload { url, args } => upload::run(args, store_url::open_store(&url).await?)
                .await
                .map(|()| true),
            Command::Fetch { url, args } => {
                fetch_cmd::run(args, store_url::open_store(&url).await?).await
            }
            Command::Serve { url, args } => {
                let store = store_url::open_store(&url).await?;
                serve::run(&url, args, store).await
            }
        }
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the line already holds
/// (drivers often repeat their source in their own message).
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}
