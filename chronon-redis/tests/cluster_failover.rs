//! "Kill a master, its replica takes over" on a local Redis Cluster of three masters and three
//! replicas: writers keep putting while a master is SIGKILLed, then every write that was
//! acknowledged is read back. Redis replicates asynchronously, so without `WAIT` the writes a
//! master acknowledged but had not shipped die with it; with `min_replicas=1` none may.
//! On loopback a replica is microseconds behind, so the scenario that loses writes first stalls
//! the replica (SIGSTOP, as a slow or partitioned replica) before its master dies.
//! The figures go to RELIABILITY.md (run with `--nocapture` to see them).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chronon_core::{GetRequest, KvStore, KvStoreExt, PutRequest};
use chronon_redis::{RedisOptions, RedisStore};
use conformance::launch::redis_cluster;

/// What one run saw.
#[derive(Debug)]
struct Outcome {
    acknowledged: usize,
    failed: usize,
    lost: usize,
    failover: Duration,
}

/// How the master dies.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// SIGKILL of a master whose replica keeps up.
    Kill,
    /// The replica SIGSTOPped for 1.5 s, its master SIGKILLed, the replica SIGCONTed.
    StalledReplicaThenKill,
}

async fn run(fault: Fault, extra: &str) -> Option<Outcome> {
    let cluster = match redis_cluster::local(Duration::from_millis(2000)).await {
        Ok(c) => c,
        Err(why) => {
            conformance::launch::skip(redis_cluster::BACKEND, &why);
            return None;
        }
    };
    let mut local = cluster.local.expect("a local cluster");
    let url = format!("{}&timeout_ms=3000{extra}", cluster.url);
    let opts = RedisOptions::from_url(&url)
        .expect("url")
        .with_prefix(format!("chronon_test_{:08x}", rand::random::<u32>()));
    let store = Arc::new(RedisStore::open(opts).await.expect("open"));
    let ds = "FAILOVER_STREAMING";
    store.create_default(ds).await.expect("create");
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (store, stop) = (store.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let (mut acked, mut failed) = (Vec::new(), 0usize);
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let keys: Vec<String> = (0..50).map(|j| format!("w{w}_{seq}_{j}")).collect();
                seq += 1;
                // 1 KiB values, so a stalled replica's socket buffers fill and the master
                // keeps the rest in its own memory, lost when it dies.
                let puts = keys
                    .iter()
                    .map(|k| PutRequest::new(ds, k.clone(), value(k), Some(7)))
                    .collect();
                for (k, r) in keys.into_iter().zip(store.multi_put(puts).await) {
                    match r {
                        Ok(()) => acked.push(k),
                        Err(_) => failed += 1,
                    }
                }
            }
            (acked, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let master = local.masters()[0];
    if fault == Fault::StalledReplicaThenKill {
        let replica = local.replica_of(master).expect("a replica");
        local.pause(replica).expect("stop the replica");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        local.kill(master).expect("kill a master");
        local.resume(replica).expect("continue the replica");
    } else {
        local.kill(master).expect("kill a master");
    }
    let failover = tokio::task::spawn_blocking(move || {
        let took = local.wait_for_failover(Duration::from_secs(60));
        (local, took)
    })
    .await
    .expect("wait task");
    let (_local, failover) = (failover.0, failover.1.expect("a replica takes over"));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut acked, mut failed) = (Vec::new(), 0);
    for w in writers {
        let (a, f) = w.await.expect("writer");
        acked.extend(a);
        failed += f;
    }
    // Read back every acknowledged write; retry briefly while the cluster settles.
    let mut lost = 0;
    for chunk in acked.chunks(500) {
        let gets: Vec<GetRequest> = chunk
            .iter()
            .map(|k| GetRequest::latest(ds, Bytes::from(k.clone())))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        let answers = loop {
            let answers = store.multi_get(gets.clone()).await;
            if answers.iter().all(|a| a.values.is_ok()) || Instant::now() > deadline {
                break answers;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        for (k, a) in chunk.iter().zip(answers) {
            let values = a.values.expect("a read after the failover");
            match values.last() {
                None => lost += 1,
                Some(v) => assert_eq!(v.bytes, value(k), "a wrong answer for {k}"),
            }
        }
    }
    Some(Outcome {
        acknowledged: acked.len(),
        failed,
        lost,
        failover,
    })
}

/// The value written under `key`: the key repeated to 1 KiB.
fn value(key: &str) -> Bytes {
    Bytes::from(key.repeat(1024 / key.len() + 1)[..1024].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_master_loses_no_write_acknowledged_with_min_replicas() {
    let scenarios = [
        (Fault::Kill, "", "kill, no WAIT"),
        (
            Fault::StalledReplicaThenKill,
            "",
            "stalled replica + kill, no WAIT",
        ),
        (
            Fault::StalledReplicaThenKill,
            "&min_replicas=1&wait_timeout_ms=500",
            "stalled replica + kill, min_replicas=1",
        ),
    ];
    let mut outcomes = Vec::new();
    for (fault, extra, name) in scenarios {
        let Some(o) = run(fault, extra).await else {
            return;
        };
        println!(
            "FAILOVER {name}: {} acknowledged, {} lost, {} failed, replica took over in {:.1?}",
            o.acknowledged, o.lost, o.failed, o.failover
        );
        assert!(o.acknowledged > 1000, "{name}: the writers ran");
        outcomes.push(o);
    }
    assert!(
        outcomes[1].lost > 0,
        "a stalled replica promoted without the writes its master acknowledged: some are lost"
    );
    assert_eq!(
        outcomes[2].lost, 0,
        "a write a replica confirmed survives its master"
    );
    assert!(
        outcomes[2].failed > 0,
        "writes the stalled replica could not confirm were refused, not acknowledged"
    );
}
