//! `chronon kv`: create, drop, put, get and list from the shell.

use anyhow::{Context as _, Result};
use chronon_core::{DatasetKind, DatasetProps, GetRequest, KvError, PutRequest, TimedValue};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::{bytes_arg, output};
use chronon_serving::store_url::open_store;

/// `chronon kv …`
#[derive(Debug, Args)]
pub struct KvArgs {
    #[command(subcommand)]
    command: KvCommand,
    /// Print results as JSON lines, for scripts.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum KvCommand {
    /// Create a dataset (kind from the `_STREAMING` suffix unless --kind is given).
    Create {
        /// Store URL (see `chronon --help`).
        url: String,
        /// Dataset name: `[A-Za-z_][A-Za-z0-9_]{0,127}`.
        dataset: String,
        /// `snapshot` (one value per key) or `time_series` (every (key, ts) kept).
        #[arg(long)]
        kind: Option<String>,
        /// Hide values older than this many seconds.
        #[arg(long)]
        ttl_secs: Option<u64>,
    },
    /// Drop a dataset and all its data.
    Drop { url: String, dataset: String },
    /// Write one value. KEY and VALUE are UTF-8 text, `hex:…` or `base64:…`. A dataset that
    /// does not exist yet is created first with the defaults for its name (`_STREAMING`: time
    /// series, otherwise snapshot), and a note says so on stderr.
    Put {
        url: String,
        dataset: String,
        key: String,
        value: String,
        /// Timestamp in ms since the epoch (default: now).
        #[arg(long)]
        ts: Option<i64>,
    },
    /// Read a key: its latest value, or every version in [--start-ts, --end-ts].
    Get {
        url: String,
        dataset: String,
        key: String,
        /// Return every version with ts >= this (ms).
        #[arg(long)]
        start_ts: Option<i64>,
        /// With --start-ts: only versions with ts <= this (ms).
        #[arg(long, requires = "start_ts")]
        end_ts: Option<i64>,
    },
    /// List keys with their latest values.
    List {
        url: String,
        dataset: String,
        /// Stop after this many keys.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

fn print_value(json_out: bool, key: &[u8], v: &TimedValue) -> std::io::Result<()> {
    if json_out {
        output::line(
            json!({"key": bytes_arg::show(key), "value": bytes_arg::show(&v.bytes), "ts": v.millis}),
        )
    } else {
        output::line(format_args!(
            "{}\t{}\t{}",
            bytes_arg::show(key),
            v.millis,
            bytes_arg::show(&v.bytes)
        ))
    }
}

/// Runs `chronon kv`.
pub async fn run(args: KvArgs) -> Result<()> {
    let json_out = args.json;
    match args.command {
        KvCommand::Create {
            url,
            dataset,
            kind,
            ttl_secs,
        } => {
            let store = open_store(&url).await?;
            let mut props = DatasetProps::for_dataset(&dataset);
            if let Some(kind) = kind {
                props.kind = DatasetKind::parse(&kind).with_context(|| {
                    format!("--kind {kind:?}: expected snapshot or time_series")
                })?;
            }
            if let Some(secs) = ttl_secs {
                props = props.with_ttl(std::time::Duration::from_secs(secs));
            }
            store.create(&dataset, &props).await?;
            println!("created {dataset} ({})", props.describe());
        }
        KvCommand::Drop { url, dataset } => {
            open_store(&url).await?.drop_dataset(&dataset).await?;
            println!("dropped {dataset}");
        }
        KvCommand::Put {
            url,
            dataset,
            key,
            value,
            ts,
        } => {
            let store = open_store(&url).await?;
            let req = PutRequest::new(
                &dataset,
                bytes_arg::parse(&key)?,
                bytes_arg::parse(&value)?,
                ts,
            );
            let mut result = store
                .multi_put(vec![req.clone()])
                .await
                .pop()
                .context("store returned no result")?;
            if matches!(result, Err(KvError::DatasetNotFound { .. })) {
                let props = DatasetProps::for_dataset(&dataset);
                match store.create(&dataset, &props).await {
                    Ok(()) => eprintln!("note: created dataset {dataset} ({:?})", props.kind),
                    // Another writer created it meanwhile, as another kind: put into that one.
                    Err(KvError::DatasetConflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                result = store
                    .multi_put(vec![req])
                    .await
                    .pop()
                    .context("store returned no result")?;
            }
            result?;
            if json_out {
                println!("{}", json!({"ok": true}));
            }
        }
        KvCommand::Get {
            url,
            dataset,
            key,
            start_ts,
            end_ts,
        } => {
            let store = open_store(&url).await?;
            let key = bytes_arg::parse(&key)?;
            let req = GetRequest {
                key: key.clone(),
                dataset,
                start_ts,
                end_ts,
            };
            let mut responses = store.multi_get(vec![req]).await;
            let values = responses
                .pop()
                .context("store returned no response")?
                .values?;
            if values.is_empty() {
                if json_out {
                    output::line("null")?;
                } else {
                    eprintln!("(no value)");
                }
                std::process::exit(1);
            }
            for v in &values {
                print_value(json_out, &key, v)?;
            }
        }
        KvCommand::List {
            url,
            dataset,
            limit,
        } => {
            let store = open_store(&url).await?;
            let mut cursor = None;
            let mut shown = 0;
            while shown < limit {
                let page = store
                    .list(&dataset, (limit - shown).min(1000), cursor)
                    .await?;
                for (k, v) in &page.entries {
                    print_value(json_out, k, v)?;
                }
                shown += page.entries.len();
                match page.next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
    }
    Ok(())
}
