//! `chronon serve`: an HTTP fetch service over any store, with the endpoints of Chronon's own
//! fetch service (its Vert.x `service` module): fetch a join or a group-by for a batch of key
//! maps, list the joins, a join's schema, plus a health check and Prometheus metrics.
//!
//! ```text
//! chronon serve rocks:///var/chronon --listen 127.0.0.1:9000
//! curl -X POST http://127.0.0.1:9000/v1/features/join/shop.features -d '[{"user_id": "5"}]'
//! ```
//!
//! The service is stateless: every instance reads definitions from the store's
//! `CHRONON_METADATA` and refreshes them every `--refresh-interval` (a definition it has not seen
//! yet is read on its first request), so any number of instances behind a load balancer answer
//! the same. It prints `listening on http://ADDR` once the socket is bound (`--listen
//! 127.0.0.1:0` picks a free port), and on SIGTERM or Ctrl-C stops accepting connections and
//! finishes the requests in flight before it exits.
//!
//! Files: `catalog.rs` keeps the definitions, `routes.rs` the endpoints, `errors.rs` the JSON
//! error bodies and their status codes, `metrics.rs` the Prometheus exporter.

mod catalog;
mod errors;
pub(crate) mod metrics;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chronon_core::KvStore;
use chronon_serving::fetcher::{Fetcher, FetcherOptions};

pub use catalog::Catalog;

/// Arguments of `chronon serve` (the store URL comes before them).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// How often definitions are re-read from the store's metadata (`500ms`, `30s`, `5m`); a
    /// served definition is never older than this. Between 100ms and 1h.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub refresh_interval: Duration,
    /// Most key maps in one fetch request; a larger batch is refused with 413.
    #[arg(long, default_value_t = 1_000)]
    pub max_batch: usize,
    /// Largest request body in bytes; a larger body is refused with 413.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Bound on one fetch in milliseconds (Chronon's default 10000); past it, 504.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// After SIGTERM, how long in-flight requests may take before the process exits anyway.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

/// Parses `250ms`, `30s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 30s, 5m or 1h"))?;
    let millis = match unit {
        "ms" => n,
        "s" => n.saturating_mul(1_000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    Ok(Duration::from_millis(millis))
}

/// What every handler shares.
pub struct AppState {
    store: Arc<dyn KvStore>,
    fetcher: Fetcher,
    catalog: Arc<Catalog>,
    limits: Limits,
    metrics: metrics::Exporter,
    /// What `GET /config` shows: the (redacted) store URL and the service's settings.
    config: serde_json::Value,
}

/// The request limits (`--max-batch`, `--max-body-bytes`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    max_batch: usize,
    max_body_bytes: usize,
}

/// Runs the service until SIGTERM or Ctrl-C.
pub async fn run(url: &str, args: ServeArgs, store: Arc<dyn KvStore>) -> Result<bool> {
    if args.refresh_interval < Duration::from_millis(100)
        || args.refresh_interval > Duration::from_secs(3_600)
    {
        bail!(
            "--refresh-interval {:?} is outside 100ms..1h",
            args.refresh_interval
        );
    }
    if args.max_batch == 0 || args.max_body_bytes == 0 {
        bail!("--max-batch and --max-body-bytes must be at least 1");
    }
    let exporter = metrics::Exporter::install();
    let catalog = Arc::new(Catalog::new(store.clone()));
    // A first load before listening, so the first requests do not all read metadata; a store
    // that is down now is reported on /health and retried on every refresh.
    if let Err(e) = catalog.refresh().await {
        tracing::warn!("first definitions load failed (retried every refresh): {e}");
        eprintln!("warning: cannot read definitions yet: {e}");
    }
    let fetcher = Fetcher::new(
        store.clone(),
        FetcherOptions {
            timeout: Duration::from_millis(args.timeout_ms),
            // The fetcher's own definition cache ages out on the same bound.
            metadata_ttl: args.refresh_interval,
        },
    );
    let config = serde_json::json!({
        "store": chronon_core::config::redact_url(url),
        "backend": store.backend(),
        "refreshIntervalMs": args.refresh_interval.as_millis() as u64,
        "maxBatch": args.max_batch,
        "maxBodyBytes": args.max_body_bytes,
        "timeoutMs": args.timeout_ms,
    });
    let state = Arc::new(AppState {
        store,
        fetcher,
        catalog: catalog.clone(),
        limits: Limits {
            max_batch: args.max_batch,
            max_body_bytes: args.max_body_bytes,
        },
        metrics: exporter,
        config,
    });
    let refresher = tokio::spawn(catalog::refresh_loop(
        catalog,
        state.metrics.clone(),
        args.refresh_interval,
    ));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    let app = routes::router(state);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        eprintln!("shutting down: finishing requests in flight");
        let _ = stop_tx.send(());
    });
    let grace = args.shutdown_timeout;
    let outcome = tokio::select! {
        r = server => r.context("the HTTP server failed"),
        () = async move {
            // Only once shutdown began: bound the wait for requests in flight.
            if stop_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            eprintln!("requests still in flight after {grace:?}; exiting anyway");
            Ok(())
        }
    };
    refresher.abort();
    outcome?;
    eprintln!("stopped");
    Ok(true)
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3_600));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("3d").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("").is_err());
    }
}
