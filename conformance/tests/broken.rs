//! The suite proves itself: each deliberately broken store below must be caught by at least one
//! case, and by the case that names its flaw.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chronon_core::{
    BulkPutOptions, BulkPutReport, BulkSource, Capabilities, DatasetProps, GetRequest, GetResponse,
    KvError, KvStore, ListCursor, ListPage, MemoryStore, PutRequest,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Flaw {
    IgnoresStartTs,
    NewestFirst,
    DropsLastRequest,
    ManglesZeroBytes,
    FailsWholeBatch,
    ReportsReadTime,
    IgnoresTtl,
    ListStopsAfterFirstPage,
    ForgetsAcrossClients,
    AcceptsOversizedValues,
}

#[derive(Debug)]
struct Broken {
    inner: MemoryStore,
    flaw: Flaw,
    ttls: Arc<Mutex<HashMap<String, DatasetProps>>>,
}

#[async_trait]
impl KvStore for Broken {
    fn backend(&self) -> &str {
        "broken"
    }
    fn capabilities(&self) -> Capabilities {
        let caps = self.inner.capabilities();
        if self.flaw == Flaw::AcceptsOversizedValues {
            // Claims a smaller limit than it enforces.
            return Capabilities::new(300 * 1024, caps.get_batch_size, caps.put_batch_size)
                .with_persistence();
        }
        caps
    }
    async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        if self.flaw == Flaw::IgnoresTtl {
            self.ttls
                .lock()
                .unwrap()
                .insert(dataset.to_string(), *props);
            let stripped = DatasetProps {
                kind: props.kind,
                ttl: None,
            };
            return self.inner.create(dataset, &stripped).await;
        }
        self.inner.create(dataset, props).await
    }
    async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        self.inner.drop_dataset(dataset).await
    }
    async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        let props = self.inner.dataset_props(dataset).await?;
        match self.ttls.lock().unwrap().get(dataset) {
            Some(p) if self.flaw == Flaw::IgnoresTtl => Ok(*p),
            _ => Ok(props),
        }
    }
    async fn multi_get(&self, mut requests: Vec<GetRequest>) -> Vec<GetResponse> {
        match self.flaw {
            Flaw::IgnoresStartTs => {
                for r in &mut requests {
                    if r.start_ts.is_some() {
                        r.start_ts = Some(i64::MIN);
                    }
                }
            }
            Flaw::DropsLastRequest => {
                requests.pop();
            }
            Flaw::FailsWholeBatch => {
                let bad = requests
                    .iter()
                    .find_map(|r| chronon_core::validate::get_request(r).err());
                if let Some(e) = bad {
                    return requests
                        .into_iter()
                        .map(|request| GetResponse {
                            request,
                            values: Err(e.clone()),
                        })
                        .collect();
                }
            }
            _ => {}
        }
        let mut out = self.inner.multi_get(requests).await;
        for resp in &mut out {
            if let Ok(values) = &mut resp.values {
                match self.flaw {
                    Flaw::NewestFirst => values.reverse(),
                    Flaw::ReportsReadTime => values
                        .iter_mut()
                        .for_each(|v| v.millis = chronon_core::batch::now_millis()),
                    _ => {}
                }
            }
        }
        out
    }
    async fn multi_put(&self, mut requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
        match self.flaw {
            Flaw::DropsLastRequest => {
                requests.pop();
            }
            Flaw::ManglesZeroBytes => {
                for r in &mut requests {
                    r.value = r
                        .value
                        .iter()
                        .map(|b| if *b == 0 { b' ' } else { *b })
                        .collect::<Vec<u8>>()
                        .into();
                }
            }
            Flaw::FailsWholeBatch => {
                let caps = self.inner.capabilities();
                let bad = requests
                    .iter()
                    .find_map(|r| chronon_core::validate::put_request(r, &caps).err());
                if let Some(e) = bad {
                    return requests.iter().map(|_| Err(e.clone())).collect();
                }
            }
            _ => {}
        }
        self.inner.multi_put(requests).await
    }
    async fn list(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        let mut page = self.inner.list(dataset, limit, cursor).await?;
        if self.flaw == Flaw::ListStopsAfterFirstPage {
            page.next = None;
        }
        Ok(page)
    }
    async fn bulk_put(
        &self,
        dataset: &str,
        rows: BulkSource<'_>,
        options: BulkPutOptions,
    ) -> Result<BulkPutReport, KvError> {
        chronon_core::batch::bulk_put_via_multi_put(self, dataset, rows, options, 4).await
    }
}

async fn report_for(flaw: Flaw) -> conformance::Report {
    let db = MemoryStore::new();
    let ttls = Arc::new(Mutex::new(HashMap::new()));
    let factory = conformance::FnFactory::new(format!("{flaw:?}"), move || {
        let inner = if flaw == Flaw::ForgetsAcrossClients {
            MemoryStore::new()
        } else {
            db.clone()
        };
        let ttls = ttls.clone();
        async move { Ok::<_, KvError>(Broken { inner, flaw, ttls }) }
    });
    conformance::run_all(factory).await
}

async fn assert_caught(flaw: Flaw, by: &str) {
    let report = report_for(flaw).await;
    let failed: Vec<&str> = report.failures().iter().map(|c| c.name).collect();
    println!("{flaw:?} caught by {failed:?}");
    assert!(!failed.is_empty(), "{flaw:?} passed the whole suite");
    assert!(
        failed.contains(&by),
        "{flaw:?} not caught by {by}; caught by {failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_ignored_start_ts() {
    assert_caught(Flaw::IgnoresStartTs, "range_bounds_inclusive").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_newest_first_ranges() {
    assert_caught(Flaw::NewestFirst, "range_returns_versions_oldest_first").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_dropped_last_request() {
    assert_caught(Flaw::DropsLastRequest, "responses_in_request_order").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_mangled_zero_bytes() {
    assert_caught(Flaw::ManglesZeroBytes, "binary_bytes_round_trip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_whole_batch_failure() {
    assert_caught(Flaw::FailsWholeBatch, "results_one_per_request_in_order").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_read_time_timestamps() {
    assert_caught(Flaw::ReportsReadTime, "stored_ts_returned_not_read_time").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_ignored_ttl() {
    assert_caught(Flaw::IgnoresTtl, "ttl_hides_expired_latest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_list_stopping_early() {
    assert_caught(
        Flaw::ListStopsAfterFirstPage,
        "paging_visits_every_key_once",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_data_lost_across_clients() {
    assert_caught(Flaw::ForgetsAcrossClients, "new_client_sees_writes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catches_unenforced_value_limit() {
    assert_caught(
        Flaw::AcceptsOversizedValues,
        "value_one_byte_over_max_rejected",
    )
    .await;
}

#[test]
fn suite_has_40_cases_with_unique_names() {
    let cases = conformance::all_cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "duplicate case names");
}
