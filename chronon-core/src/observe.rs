//! One `tracing` span and one set of metrics per [`KvStore`](crate::KvStore) call, written once
//! here so every adapter reports the same names and fields.
//!
//! Each adapter's `KvStore` impl wraps its call in a [`Call`]:
//!
//! ```
//! use chronon_core::observe::{Call, Operation};
//! use chronon_core::{GetRequest, GetResponse};
//!
//! async fn multi_get(requests: Vec<GetRequest>) -> Vec<GetResponse> {
//!     Call::gets("mybackend", &requests)
//!         .run(async move { requests.into_iter().map(|r| GetResponse { request: r, values: Ok(vec![]) }).collect() })
//!         .await
//! }
//! ```
//!
//! # The span
//!
//! A `DEBUG` span named `kv_call`, target [`TARGET`] (`chronon_kv`), with the fields `backend`,
//! `operation` (the `KvStore` method: [`Operation::as_str`]), `dataset` (for a batch: its one
//! dataset, or `first+N` when it spans several), `batch_size` (requests in the call; for
//! `bulk_put`, rows written), `outcome` (`ok`, `partial` when some requests of a batch failed,
//! `error`), `errors` (failed requests) and `retries` (retries the adapter itself made, counted
//! by [`note_retry`]). Turn the spans on with a filter such as `chronon_kv=debug`.
//!
//! # The metrics
//!
//! Through the [`metrics`] facade, so the service picks the exporter (none installed: the
//! facade's no-op recorder). Names are in [`names`]; [`describe_metrics`] registers their help
//! texts and units with the installed recorder.
//!
//! | name | kind | labels |
//! | --- | --- | --- |
//! | `chronon_kv_calls_total` | counter | `backend`, `operation`, `outcome` |
//! | `chronon_kv_errors_total` | counter, one per failed request | `backend`, `operation`, `kind` ([`KvError::kind`]) |
//! | `chronon_kv_call_duration_seconds` | histogram | `backend`, `operation` |
//! | `chronon_kv_retries_total` | counter (only when a call retried) | `backend`, `operation` |
//!
//! # Cost when nobody listens
//!
//! With no subscriber enabling `chronon_kv=debug`, the span is a disabled span (one atomic load at
//! its callsite) and the batch is never walked for its dataset; with no recorder installed, each
//! metric goes to the no-op recorder. What remains is a clock read and a few label vectors per
//! call, not per request.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::Instant;

use tracing::field::Empty;
use tracing::Instrument;

use crate::error::KvError;
use crate::types::{BulkPutReport, GetRequest, GetResponse, PutRequest};

/// The `tracing` target of the per-call spans: filter on it (`chronon_kv=debug`) to see them.
pub const TARGET: &str = "chronon_kv";

/// The metric names this module records.
pub mod names {
    /// Counter: calls, labelled `backend`, `operation`, `outcome`.
    pub const CALLS: &str = "chronon_kv_calls_total";
    /// Counter: failed requests (a whole failed call counts once), labelled `backend`,
    /// `operation`, `kind`.
    pub const ERRORS: &str = "chronon_kv_errors_total";
    /// Histogram: call latency in seconds, labelled `backend`, `operation`.
    pub const DURATION: &str = "chronon_kv_call_duration_seconds";
    /// Counter: retries the adapter made inside calls, labelled `backend`, `operation`.
    pub const RETRIES: &str = "chronon_kv_retries_total";
}

/// Registers the help texts and units of the metrics in [`names`] with the installed recorder.
/// Call it once after installing an exporter; recording works without it.
pub fn describe_metrics() {
    metrics::describe_counter!(
        names::CALLS,
        "KvStore calls by backend, operation and outcome"
    );
    metrics::describe_counter!(
        names::ERRORS,
        "Failed KvStore requests by backend, operation and error kind"
    );
    metrics::describe_histogram!(
        names::DURATION,
        metrics::Unit::Seconds,
        "KvStore call latency by backend and operation"
    );
    metrics::describe_counter!(
        names::RETRIES,
        "Retries adapters made inside KvStore calls, by backend and operation"
    );
}

/// The `KvStore` method a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `create`.
    Create,
    /// `drop_dataset`.
    DropDataset,
    /// `dataset_props`.
    DatasetProps,
    /// `multi_get`.
    MultiGet,
    /// `multi_put`.
    MultiPut,
    /// `list`.
    List,
    /// `bulk_put`.
    BulkPut,
}

impl Operation {
    /// The method's name, as in the span's `operation` field and the metrics' label.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::DropDataset => "drop_dataset",
            Operation::DatasetProps => "dataset_props",
            Operation::MultiGet => "multi_get",
            Operation::MultiPut => "multi_put",
            Operation::List => "list",
            Operation::BulkPut => "bulk_put",
        }
    }
}

thread_local! {
    /// Retries noted while the innermost [`Call`] is being polled on this thread.
    static RETRIES: Cell<u64> = const { Cell::new(0) };
}

/// Counts one retry in the call being run (the innermost [`Call::run`] polling on this thread):
/// it shows in the span's `retries` field and in `chronon_kv_retries_total`. Adapters call it
/// where they retry by themselves (throttled batches, write races); a retry the driver makes
/// internally is invisible here. Outside a call it does nothing.
pub fn note_retry() {
    RETRIES.with(|r| r.set(r.get().saturating_add(1)));
}

/// What a call returned, as the span and metrics see it.
pub trait Outcome {
    /// Calls `each` with every error in the result: the call's own, or each failed request's.
    fn for_each_error(&self, each: &mut dyn FnMut(&KvError));
    /// How many requests the call answered (the span's `errors` field is out of this many).
    fn answered(&self) -> usize;
    /// Rows written, for calls that only know it at the end (`bulk_put`).
    fn rows_written(&self) -> Option<u64> {
        None
    }
}

impl<T> Outcome for Result<T, KvError> {
    fn for_each_error(&self, each: &mut dyn FnMut(&KvError)) {
        if let Err(e) = self {
            each(e)
        }
    }
    fn answered(&self) -> usize {
        1
    }
}

impl Outcome for Vec<GetResponse> {
    fn for_each_error(&self, each: &mut dyn FnMut(&KvError)) {
        for r in self {
            if let Err(e) = &r.values {
                each(e)
            }
        }
    }
    fn answered(&self) -> usize {
        self.len()
    }
}

impl Outcome for Vec<Result<(), KvError>> {
    fn for_each_error(&self, each: &mut dyn FnMut(&KvError)) {
        for r in self {
            if let Err(e) = r {
                each(e)
            }
        }
    }
    fn answered(&self) -> usize {
        self.len()
    }
}

/// A `bulk_put`'s result: its rows written become the span's `batch_size`.
#[derive(Debug)]
pub struct BulkOutcome(pub Result<BulkPutReport, KvError>);

impl Outcome for BulkOutcome {
    fn for_each_error(&self, each: &mut dyn FnMut(&KvError)) {
        self.0.for_each_error(each)
    }
    fn answered(&self) -> usize {
        1
    }
    fn rows_written(&self) -> Option<u64> {
        self.0.as_ref().ok().map(|r| r.rows)
    }
}

/// What `metrics::counter!` gives a metric recorded from this module.
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The span's and the metrics' outcomes, in the order of [`CallKeys::calls`].
const OUTCOMES: [&str; 3] = ["ok", "partial", "error"];

thread_local! {
    /// The metric keys of each (backend, operation) this thread has recorded.
    static KEYS: RefCell<Vec<Rc<CallKeys>>> = const { RefCell::new(Vec::new()) };
}

/// The keys every call of one (backend, operation) records under, built once per thread: the
/// `metrics` macros build a key (a label vector, hashed) per metric per call, ~500 instructions
/// of a one-key RocksDB read even with no recorder installed. The labels are the same ones, so
/// the recorder sees the same metrics.
struct CallKeys {
    backend: &'static str,
    operation: Operation,
    /// `chronon_kv_calls_total`, by outcome ([`OUTCOMES`]).
    calls: [metrics::Key; 3],
    /// `chronon_kv_call_duration_seconds`.
    duration: metrics::Key,
}

impl CallKeys {
    fn of(backend: &'static str, operation: Operation) -> Rc<CallKeys> {
        KEYS.with(|keys| {
            let found = keys
                .borrow()
                .iter()
                .find(|k| k.operation == operation && k.backend == backend)
                .cloned();
            found.unwrap_or_else(|| {
                let made = Rc::new(CallKeys::new(backend, operation));
                // A recorder that records a call of its own while this one is being recorded
                // finds the list borrowed: its keys are then made again next time.
                if let Ok(mut keys) = keys.try_borrow_mut() {
                    keys.push(made.clone());
                }
                made
            })
        })
    }

    fn new(backend: &'static str, operation: Operation) -> CallKeys {
        let label = metrics::Label::from_static_parts;
        let op = operation.as_str();
        CallKeys {
            backend,
            operation,
            calls: OUTCOMES.map(|outcome| {
                metrics::Key::from_parts(
                    names::CALLS,
                    vec![
                        label("backend", backend),
                        label("operation", op),
                        label("outcome", outcome),
                    ],
                )
            }),
            duration: metrics::Key::from_parts(
                names::DURATION,
                vec![label("backend", backend), label("operation", op)],
            ),
        }
    }
}

/// One observed `KvStore` call: its span, and the labels its metrics are recorded under.
#[derive(Debug)]
#[must_use = "a Call records nothing until `run` awaits the call"]
pub struct Call {
    backend: &'static str,
    operation: Operation,
    span: tracing::Span,
}

impl Call {
    /// A call on one dataset (`create`, `drop_dataset`, `dataset_props`, `list`, `bulk_put`).
    pub fn on_dataset(backend: &'static str, operation: Operation, dataset: &str) -> Call {
        let call = Call::new(backend, operation, 1);
        if !call.span.is_disabled() {
            call.span.record("dataset", dataset);
        }
        call
    }

    /// A `multi_get` of `requests`.
    pub fn gets(backend: &'static str, requests: &[GetRequest]) -> Call {
        let call = Call::new(backend, Operation::MultiGet, requests.len());
        if !call.span.is_disabled() {
            call.record_dataset(requests.iter().map(|r| r.dataset.as_str()));
        }
        call
    }

    /// A `multi_put` of `requests`.
    pub fn puts(backend: &'static str, requests: &[PutRequest]) -> Call {
        let call = Call::new(backend, Operation::MultiPut, requests.len());
        if !call.span.is_disabled() {
            call.record_dataset(requests.iter().map(|r| r.dataset.as_str()));
        }
        call
    }

    fn new(backend: &'static str, operation: Operation, batch_size: usize) -> Call {
        let span = tracing::debug_span!(
            target: TARGET,
            "kv_call",
            backend,
            operation = operation.as_str(),
            dataset = Empty,
            batch_size,
            outcome = Empty,
            errors = Empty,
            retries = Empty,
        );
        Call {
            backend,
            operation,
            span,
        }
    }

    /// `dataset` for a batch: its one dataset, or `first+N` (N other datasets) when it has several.
    fn record_dataset<'a>(&self, mut datasets: impl Iterator<Item = &'a str>) {
        let Some(first) = datasets.next() else {
            return;
        };
        let mut others: Vec<&str> = Vec::new();
        for d in datasets {
            if d != first && !others.contains(&d) {
                others.push(d);
            }
        }
        if others.is_empty() {
            self.span.record("dataset", first);
        } else {
            self.span
                .record("dataset", format!("{first}+{}", others.len()).as_str());
        }
    }

    /// Runs `call` inside the span, then records its outcome in the span and the metrics.
    pub async fn run<T: Outcome>(self, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let mut call = std::pin::pin!(call.instrument(self.span.clone()));
        let mut retries = 0u64;
        let out = std::future::poll_fn(|cx| {
            // Each poll counts the retries noted inside it, nested calls keeping their own.
            let outer = RETRIES.with(|r| r.replace(0));
            let polled = call.as_mut().poll(cx);
            retries += RETRIES.with(|r| r.replace(outer));
            polled
        })
        .await;
        self.finish(&out, started, retries);
        out
    }

    fn finish<T: Outcome>(&self, out: &T, started: Instant, retries: u64) {
        let (backend, operation) = (self.backend, self.operation.as_str());
        let mut errors = 0usize;
        out.for_each_error(&mut |e| {
            errors += 1;
            metrics::counter!(names::ERRORS, "backend" => backend, "operation" => operation, "kind" => e.kind())
                .increment(1);
        });
        let outcome_index = match errors {
            0 => 0,
            n if n < out.answered() => 1,
            _ => 2,
        };
        let outcome = OUTCOMES[outcome_index];
        let keys = CallKeys::of(self.backend, self.operation);
        let seconds = started.elapsed().as_secs_f64();
        metrics::with_recorder(|recorder| {
            recorder
                .register_counter(&keys.calls[outcome_index], &METADATA)
                .increment(1);
            recorder
                .register_histogram(&keys.duration, &METADATA)
                .record(seconds);
        });
        if retries > 0 {
            metrics::counter!(names::RETRIES, "backend" => backend, "operation" => operation)
                .increment(retries);
        }
        if !self.span.is_disabled() {
            self.span.record("outcome", outcome);
            self.span.record("errors", errors);
            self.span.record("retries", retries);
            if let Some(rows) = out.rows_written() {
                self.span.record("batch_size", rows);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use tracing::span::{Attributes, Id, Record};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    use super::*;

    type Fields = BTreeMap<String, String>;

    /// Collects every `kv_call` span's fields, as recorded by the time it closes.
    #[derive(Clone, Default)]
    struct Capture {
        open: Arc<Mutex<BTreeMap<u64, Fields>>>,
        closed: Arc<Mutex<Vec<Fields>>>,
    }

    struct Visitor<'a>(&'a mut Fields);
    impl tracing::field::Visit for Visitor<'_> {
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            self.0.insert(field.name().into(), value.into());
        }
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().into(), format!("{value:?}"));
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for Capture {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
            let mut fields = Fields::new();
            attrs.record(&mut Visitor(&mut fields));
            self.open.lock().unwrap().insert(id.into_u64(), fields);
        }
        fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
            if let Some(fields) = self.open.lock().unwrap().get_mut(&id.into_u64()) {
                values.record(&mut Visitor(fields));
            }
        }
        fn on_close(&self, id: Id, _: Context<'_, S>) {
            if let Some(fields) = self.open.lock().unwrap().remove(&id.into_u64()) {
                self.closed.lock().unwrap().push(fields);
            }
        }
    }

    fn block_on<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn calls() -> (Vec<GetResponse>, Result<(), KvError>) {
        block_on(async {
            let requests = vec![
                GetRequest::latest("A", "k1"),
                GetRequest::latest("B", "k2"),
                GetRequest::latest("A", "k3"),
            ];
            let gets = Call::gets("test", &requests)
                .run(async move {
                    note_retry();
                    tokio::task::yield_now().await;
                    note_retry();
                    requests
                        .into_iter()
                        .enumerate()
                        .map(|(i, request)| GetResponse {
                            values: if i == 1 {
                                Err(KvError::not_found("B"))
                            } else {
                                Ok(vec![])
                            },
                            request,
                        })
                        .collect::<Vec<_>>()
                })
                .await;
            let dropped = Call::on_dataset("test", Operation::DropDataset, "A")
                .run(async { Err(KvError::config("test", "no")) })
                .await;
            (gets, dropped)
        })
    }

    #[test]
    fn one_span_per_call_with_its_fields() {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        let (gets, dropped) = tracing::subscriber::with_default(subscriber, calls);
        assert!(gets[1].values.is_err() && dropped.is_err());
        let spans = capture.closed.lock().unwrap().clone();
        assert_eq!(spans.len(), 2, "{spans:?}");
        let expect = |s: &Fields, pairs: &[(&str, &str)]| {
            for (k, v) in pairs {
                assert_eq!(s.get(*k).map(String::as_str), Some(*v), "{k} in {s:?}");
            }
        };
        expect(
            &spans[0],
            &[
                ("backend", "test"),
                ("operation", "multi_get"),
                ("dataset", "A+1"),
                ("batch_size", "3"),
                ("outcome", "partial"),
                ("errors", "1"),
                ("retries", "2"),
            ],
        );
        expect(
            &spans[1],
            &[
                ("operation", "drop_dataset"),
                ("dataset", "A"),
                ("outcome", "error"),
                ("retries", "0"),
            ],
        );
    }

    #[test]
    fn metrics_count_calls_errors_by_kind_latency_and_retries() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let (gets, dropped) = metrics::with_local_recorder(&recorder, calls);
        assert!(gets[0].values.is_ok() && dropped.is_err());
        let mut seen = BTreeMap::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let value = match value {
                DebugValue::Counter(n) => n.to_string(),
                DebugValue::Histogram(v) => format!("{} samples", v.len()),
                DebugValue::Gauge(g) => g.to_string(),
            };
            seen.insert(
                format!("{}{{{}}}", key.key().name(), labels.join(",")),
                value,
            );
        }
        let get = |k: &str| seen.get(k).map(String::as_str);
        assert_eq!(
            get("chronon_kv_calls_total{backend=test,operation=multi_get,outcome=partial}"),
            Some("1"),
            "{seen:#?}"
        );
        assert_eq!(
            get("chronon_kv_errors_total{backend=test,operation=multi_get,kind=DatasetNotFound}"),
            Some("1")
        );
        assert_eq!(
            get("chronon_kv_errors_total{backend=test,operation=drop_dataset,kind=Config}"),
            Some("1")
        );
        assert_eq!(
            get("chronon_kv_calls_total{backend=test,operation=drop_dataset,outcome=error}"),
            Some("1")
        );
        assert_eq!(
            get("chronon_kv_retries_total{backend=test,operation=multi_get}"),
            Some("2")
        );
        assert_eq!(
            get("chronon_kv_call_duration_seconds{backend=test,operation=multi_get}"),
            Some("1 samples")
        );
        assert_eq!(seen.len(), 7, "{seen:#?}");
    }

    #[test]
    fn a_retry_outside_a_call_is_not_counted_in_the_next() {
        note_retry();
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::with_default(subscriber, || {
            block_on(Call::on_dataset("test", Operation::Create, "A").run(async { Ok(()) }))
        })
        .unwrap();
        let spans = capture.closed.lock().unwrap().clone();
        assert_eq!(spans[0].get("retries").map(String::as_str), Some("0"));
        assert_eq!(spans[0].get("outcome").map(String::as_str), Some("ok"));
    }
}
