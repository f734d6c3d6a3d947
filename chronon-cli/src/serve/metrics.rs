//! Prometheus metrics on `GET /metrics`, through the `metrics` facade: the service records
//! requests, errors and latency per endpoint and per join or group-by; the adapters record their
//! KV calls through the same facade, so one scrape shows both.
//!
//! - `chronon_serve_requests_total{endpoint, name, status}`: requests answered.
//! - `chronon_serve_errors_total{endpoint, name, kind}`: what went wrong (`malformed_json`,
//!   `bad_key`, `unknown_name`, `batch_too_large`, `body_too_large`, `store`, `timeout`,
//!   `entity_failure` for one failed key map in a batch, `feature_exception` for one failed join
//!   part).
//! - `chronon_serve_request_duration_seconds{endpoint, name}`: latency, a histogram.
//! - `chronon_serve_batch_size{endpoint, name}`: key maps per fetch, a histogram.
//! - `chronon_serve_in_flight`: requests being served.
//! - `chronon_serve_definitions{kind}`, `chronon_serve_refresh_total{outcome}`: the catalog.
//!
//! `name` is a join or group-by the store defines (`_all` for the join list), or `_unknown`, so a
//! client cannot grow the label set by asking for names that do not exist.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Batch size buckets, in key maps.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// The label of a name the store does not define.
pub const UNKNOWN_NAME: &str = "_unknown";

/// The installed Prometheus recorder's handle (one per process: the facade has one global
/// recorder).
#[derive(Clone)]
pub struct Exporter {
    handle: Option<PrometheusHandle>,
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

impl Exporter {
    /// Installs the Prometheus recorder as the global `metrics` recorder (once per process) and
    /// starts its upkeep, which drains histogram samples every 5 s between scrapes. When another
    /// recorder was installed first, `/metrics` says so instead of serving numbers.
    pub fn install() -> Exporter {
        let handle = HANDLE
            .get_or_init(|| {
                let builder = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            Matcher::Full("chronon_serve_batch_size".into()),
                            BATCH_BUCKETS,
                        )
                    });
                let recorder = match builder {
                    Ok(b) => b.build_recorder(),
                    Err(e) => {
                        tracing::warn!("metrics buckets rejected: {e}");
                        PrometheusBuilder::new().build_recorder()
                    }
                };
                let handle = recorder.handle();
                match metrics::set_global_recorder(recorder) {
                    Ok(()) => {
                        let upkeep = handle.clone();
                        tokio::spawn(async move {
                            let mut tick = tokio::time::interval(Duration::from_secs(5));
                            loop {
                                tick.tick().await;
                                upkeep.run_upkeep();
                            }
                        });
                        Some(handle)
                    }
                    Err(e) => {
                        tracing::warn!("another metrics recorder is installed: {e}");
                        None
                    }
                }
            })
            .clone();
        Exporter { handle }
    }

    /// The Prometheus text exposition, or `None` when this process's recorder is not ours.
    pub fn render(&self) -> Option<String> {
        self.handle.as_ref().map(|h| h.render())
    }

    /// Records one refresh of the definitions.
    pub fn refreshed(&self, ok: bool, joins: usize, group_bys: usize) {
        let outcome = if ok { "ok" } else { "error" };
        counter!("chronon_serve_refresh_total", "outcome" => outcome).increment(1);
        gauge!("chronon_serve_definitions", "kind" => "join").set(joins as f64);
        gauge!("chronon_serve_definitions", "kind" => "group_by").set(group_bys as f64);
    }
}

/// One request being served: counts it in flight until [`Request::finish`] (or drop) and
/// records its latency and outcome.
pub struct Request {
    endpoint: &'static str,
    name: String,
    start: std::time::Instant,
    done: bool,
}

impl Request {
    /// Starts timing a request to `endpoint` (`join`, `groupby`, `joins`, `schema`, ...).
    pub fn start(endpoint: &'static str) -> Request {
        gauge!("chronon_serve_in_flight").increment(1.0);
        Request {
            endpoint,
            name: UNKNOWN_NAME.to_string(),
            start: std::time::Instant::now(),
            done: false,
        }
    }

    /// Labels the request with a defined join or group-by name.
    pub fn name(&mut self, name: &str) {
        self.name = name.to_string();
    }

    /// Counts one error of `kind` (see the module docs).
    pub fn error(&self, kind: &'static str) {
        self.errors(kind, 1);
    }

    /// Counts `n` errors of `kind`.
    pub fn errors(&self, kind: &'static str, n: u64) {
        if n > 0 {
            counter!("chronon_serve_errors_total", "endpoint" => self.endpoint,
                "name" => self.name.clone(), "kind" => kind)
            .increment(n);
        }
    }

    /// Records the batch size of a fetch.
    pub fn batch(&self, size: usize) {
        histogram!("chronon_serve_batch_size", "endpoint" => self.endpoint,
            "name" => self.name.clone())
        .record(size as f64);
    }

    /// Records the answer's status and the latency.
    pub fn finish(mut self, status: u16) {
        self.record(status);
    }

    fn record(&mut self, status: u16) {
        if self.done {
            return;
        }
        self.done = true;
        gauge!("chronon_serve_in_flight").decrement(1.0);
        counter!("chronon_serve_requests_total", "endpoint" => self.endpoint,
            "name" => self.name.clone(), "status" => status.to_string())
        .increment(1);
        histogram!("chronon_serve_request_duration_seconds", "endpoint" => self.endpoint,
            "name" => self.name.clone())
        .record(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for Request {
    /// A request dropped unanswered (the client went away): counted with status 499, as proxies
    /// do, so the in-flight gauge comes back down.
    fn drop(&mut self) {
        self.record(499);
    }
}
