//! Faults against a real `redis-server` child process (issue 12): killed mid-stream and
//! restarted on the same durable data, paused with SIGSTOP, and absent (connection refused).
//! These need a child server they can signal, so they never use `CHRONON_REDIS_URL`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chronon_core::{DatasetProps, GetRequest, KvError, KvStore, KvStoreExt, PutRequest};
use chronon_redis::{RedisOptions, RedisStore};
use conformance::launch::{self, ChildServer};

const TIMEOUT: Duration = Duration::from_millis(1500);
/// Slack on top of the timeout for scheduling on a busy 2-core machine.
const MARGIN: Duration = Duration::from_millis(750);

async fn child_or_skip() -> Option<launch::redis::RedisServer> {
    match launch::redis::child().await {
        Ok(s) => Some(s),
        Err(why) => {
            launch::skip("redis", &why);
            None
        }
    }
}

async fn open(url: &str) -> RedisStore {
    let opts = RedisOptions::new(url)
        .with_timeout(TIMEOUT)
        .with_prefix("faults");
    RedisStore::open(opts).await.expect("open the store")
}

/// Runs a blocking `ChildServer` operation off the async workers.
async fn on_child<F>(child: ChildServer, f: F) -> ChildServer
where
    F: FnOnce(&mut ChildServer) -> anyhow::Result<()> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let mut child = child;
        f(&mut child).expect("signal the redis child");
        child
    })
    .await
    .expect("blocking task")
}

#[derive(Default, Debug)]
struct Tally {
    acknowledged: Vec<Bytes>,
    failed: Vec<(String, Duration)>,
    slowest: Duration,
    ok_after_restart: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_write_and_client_recovers() {
    let Some(mut server) = child_or_skip().await else {
        return;
    };
    let store = Arc::new(open(&server.url).await);
    let ds = "FAULT_KILL_STREAMING";
    store
        .create(ds, &DatasetProps::time_series())
        .await
        .expect("create");

    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop, restarted) = (store.clone(), stop.clone(), restarted.clone());
        tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let keys: Vec<Bytes> = (0..200)
                    .map(|j| Bytes::from(format!("r{round}_k{j}")))
                    .collect();
                let puts = keys
                    .iter()
                    .map(|k| {
                        PutRequest::new(
                            ds,
                            k.clone(),
                            k.clone(),
                            Some(1_700_000_000_000 + round as i64),
                        )
                    })
                    .collect();
                let started = Instant::now();
                let results = store.multi_put(puts).await;
                let took = started.elapsed();
                tally.slowest = tally.slowest.max(took);
                for (k, r) in keys.into_iter().zip(results) {
                    match r {
                        Ok(()) => {
                            if restarted.load(Ordering::Relaxed) {
                                tally.ok_after_restart += 1;
                            }
                            tally.acknowledged.push(k)
                        }
                        Err(e) => {
                            assert!(e.is_retryable(), "outage error is not retryable: {e}");
                            assert!(
                                matches!(e, KvError::Unavailable { .. } | KvError::Timeout { .. }),
                                "outage error is {}: {e}",
                                e.kind()
                            );
                            tally.failed.push((e.to_string(), took));
                        }
                    }
                }
                round += 1;
            }
            tally
        })
    };

    tokio::time::sleep(Duration::from_millis(700)).await;
    let child = server.child.take().expect("child server");
    let child = on_child(child, |c| c.kill()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // the outage
    let child = on_child(child, |c| c.restart()).await;
    restarted.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let tally = writer.await.expect("writer task");
    server.child = Some(child);

    println!(
        "acknowledged {}, failed {}, ok after restart {}, slowest call {:?}",
        tally.acknowledged.len(),
        tally.failed.len(),
        tally.ok_after_restart,
        tally.slowest
    );
    if let Some((e, took)) = tally.failed.first() {
        println!("first outage error after {took:?}: {e}");
    }
    assert!(
        !tally.failed.is_empty(),
        "no call failed while the server was dead"
    );
    assert!(
        tally.ok_after_restart > 0,
        "the same client never worked again after the restart"
    );
    assert!(
        tally.slowest <= TIMEOUT + MARGIN,
        "a call took {:?}",
        tally.slowest
    );
    assert!(
        tally.failed.iter().any(|(e, _)| e.contains("127.0.0.1")),
        "errors do not name the address"
    );

    // Every acknowledged write survived the SIGKILL (appendfsync always), read by the same client.
    let got = store
        .multi_get(
            tally
                .acknowledged
                .iter()
                .map(|k| GetRequest::latest(ds, k.clone()))
                .collect(),
        )
        .await;
    let lost: Vec<_> = got
        .iter()
        .filter(|r| {
            r.values
                .as_ref()
                .map(|v| v.len() != 1 || v[0].bytes != r.request.key)
                .unwrap_or(true)
        })
        .map(|r| String::from_utf8_lossy(&r.request.key).into_owned())
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        lost.len(),
        tally.acknowledged.len(),
        &lost[..lost.len().min(5)]
    );
    // And a brand-new client sees the dataset's kind from the restarted server.
    let fresh = open(&server.url).await;
    assert!(
        fresh
            .dataset_props(ds)
            .await
            .expect("props after restart")
            .kind
            == chronon_core::DatasetKind::TimeSeries
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_pause_times_out_within_the_timeout_and_recovers() {
    let Some(mut server) = child_or_skip().await else {
        return;
    };
    let store = open(&server.url).await;
    let ds = "FAULT_PAUSE_BATCH";
    store
        .create(ds, &DatasetProps::snapshot())
        .await
        .expect("create");
    store
        .put(ds, "k", "before", Some(1))
        .await
        .expect("put before the pause");

    let child = server.child.take().expect("child server");
    let child = on_child(child, |c| c.pause()).await;
    let checks: Vec<(&str, Result<(), KvError>, Duration)> = vec![
        {
            let t = Instant::now();
            let r = store.get(ds, "k").await.map(|_| ());
            ("get", r, t.elapsed())
        },
        {
            let t = Instant::now();
            let r = store.put(ds, "k", "during", Some(2)).await;
            ("put", r, t.elapsed())
        },
        {
            let t = Instant::now();
            let r = store.list(ds, 10, None).await.map(|_| ());
            ("list", r, t.elapsed())
        },
        {
            let t = Instant::now();
            let r = store
                .create("FAULT_PAUSE_OTHER", &DatasetProps::snapshot())
                .await;
            ("create", r, t.elapsed())
        },
    ];
    let child = on_child(child, |c| c.resume()).await;
    server.child = Some(child);
    for (op, r, took) in &checks {
        println!("{op} during pause: {took:?} {r:?}");
        match r {
            Err(KvError::Timeout { .. }) => {}
            other => panic!("{op} during the pause returned {other:?}, want Timeout"),
        }
        assert!(
            *took >= TIMEOUT && *took <= TIMEOUT + MARGIN,
            "{op} took {took:?} for a {TIMEOUT:?} timeout"
        );
    }
    // After SIGCONT the same client answers again (the paused write may or may not have landed).
    let t = Instant::now();
    let got = store.get(ds, "k").await.expect("get after resume");
    assert!(t.elapsed() < TIMEOUT, "recovery took {:?}", t.elapsed());
    let v = got.expect("value after resume");
    assert!(v.bytes == "before" || v.bytes == "during", "got {v:?}");
    store
        .put(ds, "k", "after", Some(3))
        .await
        .expect("put after resume");
    assert_eq!(store.get(ds, "k").await.unwrap().unwrap().bytes, "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_unavailable_naming_the_address() {
    // Nothing listens on this port: opening fails fast with Unavailable.
    let port = launch::free_port().expect("free port");
    let url = format!("redis://127.0.0.1:{port}/0");
    let t = Instant::now();
    let err = RedisStore::open(RedisOptions::new(&url).with_timeout(TIMEOUT))
        .await
        .expect_err("open with no server");
    println!("open with no server after {:?}: {err}", t.elapsed());
    assert!(
        matches!(err, KvError::Unavailable { .. }),
        "got {} ({err})",
        err.kind()
    );
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(t.elapsed() <= TIMEOUT + MARGIN, "took {:?}", t.elapsed());

    // A store whose server goes away: every call is Unavailable, well within the timeout.
    let Some(mut server) = child_or_skip().await else {
        return;
    };
    let store = open(&server.url).await;
    store
        .create("FAULT_GONE_BATCH", &DatasetProps::snapshot())
        .await
        .expect("create");
    let child = server.child.take().expect("child server");
    let _dead = on_child(child, |c| c.kill()).await;
    let address = store.address().to_string();
    for attempt in 0..3 {
        let t = Instant::now();
        let got = store
            .multi_get(vec![GetRequest::latest("FAULT_GONE_BATCH", "k")])
            .await;
        let err = got[0].values.clone().expect_err("get from a dead server");
        println!(
            "get #{attempt} from a dead server after {:?}: {err}",
            t.elapsed()
        );
        assert!(
            matches!(err, KvError::Unavailable { .. }),
            "got {} ({err})",
            err.kind()
        );
        assert!(
            err.to_string().contains(&address),
            "{err} does not name {address}"
        );
        assert!(t.elapsed() <= TIMEOUT, "took {:?}", t.elapsed());
        let put = store.put("FAULT_GONE_BATCH", "k", "v", Some(1)).await;
        assert!(
            matches!(put, Err(KvError::Unavailable { .. })),
            "put: {put:?}"
        );
    }
}
