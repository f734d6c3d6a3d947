//! The full conformance suite against a real Redis Cluster (`conformance::launch::redis_cluster`:
//! the environment's cluster, or three masters and three replicas started here, else a loud
//! `SKIPPED redis-cluster`), and what only a cluster shows: a batch spanning every master,
//! `list` and `drop_dataset` visiting every master, `WAIT` with `min_replicas`.

use chronon_core::{DatasetProps, GetRequest, KvStore, KvStoreExt, PutRequest};
use chronon_redis::{RedisOptions, RedisStore};

fn options(url: &str) -> RedisOptions {
    RedisOptions::from_url(url)
        .expect("the launcher's URL")
        .with_prefix(format!("chronon_test_{:08x}", rand::random::<u32>()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_passes_the_suite() {
    let Some(cluster) = conformance::launch::redis_cluster::redis_cluster().await else {
        return;
    };
    println!("redis-cluster via {}: {}", cluster.method, cluster.url);
    let opts = options(&cluster.url);
    assert!(opts.cluster);
    let factory = conformance::FnFactory::new("redis", move || RedisStore::open(opts.clone()));
    // Round trips are counted on a cluster of our own: the commands every master processed.
    let factory = match &cluster.local {
        None => factory,
        Some(local) => {
            let masters = local.masters();
            factory.with_call_counter(move || commands_processed(masters.clone()))
        }
    };
    conformance::assert_conformance(factory).await;
}

/// The commands the masters on `ports` have processed, summed (`INFO stats`).
async fn commands_processed(ports: Vec<u16>) -> Option<u64> {
    let mut total = 0;
    for port in ports {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut conn)
            .await
            .ok()?;
        total += info
            .lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse::<u64>().ok())?;
    }
    Some(total)
}

/// Keys spread over all 16384 slots land on every master; a batch over them, its reads, a
/// `list` of every key and a `drop_dataset` that deletes them all work as on one server, and the
/// keys really are on three masters (counted with `DBSIZE` on each).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_list_and_drop_span_every_master() {
    let Some(cluster) = conformance::launch::redis_cluster::redis_cluster().await else {
        return;
    };
    let Some(local) = &cluster.local else {
        println!("not a local cluster: the per-master counts are skipped");
        return;
    };
    let store = RedisStore::open(options(&cluster.url).with_chunk_size(200))
        .await
        .expect("open");
    let ds = "SPREAD_STREAMING";
    store.create_default(ds).await.expect("create");
    let n = 1500;
    let puts: Vec<PutRequest> = (0..n)
        .map(|i| PutRequest::new(ds, format!("k{i}"), format!("v{i}"), Some(1_000 + i)))
        .collect();
    for r in store.multi_put(puts).await {
        r.expect("put");
    }
    let gets: Vec<GetRequest> = (0..n)
        .map(|i| GetRequest::latest(ds, format!("k{i}")))
        .collect();
    for (i, r) in store.multi_get(gets).await.into_iter().enumerate() {
        let v = r.values.expect("get");
        assert_eq!(v.len(), 1, "k{i}");
        assert_eq!(v[0].bytes.as_ref(), format!("v{i}").as_bytes());
        assert_eq!(v[0].millis, 1_000 + i as i64);
    }
    let masters = local.masters();
    assert_eq!(masters.len(), 3, "three masters");
    let sizes: Vec<u64> = masters
        .iter()
        .map(|p| {
            conformance::launch::redis_cluster::cli(*p, &["dbsize"])
                .expect("dbsize")
                .trim()
                .parse()
                .expect("a number")
        })
        .collect();
    assert!(
        sizes.iter().all(|s| *s > 100),
        "keys on every master: {sizes:?}"
    );
    let mut listed = std::collections::BTreeSet::new();
    let mut cursor = None;
    loop {
        let page = store.list(ds, 400, cursor).await.expect("list");
        for (k, _) in page.entries {
            assert!(listed.insert(k.clone()), "listed twice: {k:?}");
        }
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(listed.len(), n as usize, "list visits every master");
    store.drop_dataset(ds).await.expect("drop");
    for p in &masters {
        let left =
            conformance::launch::redis_cluster::cli(*p, &["--scan", "--pattern", "*SPREAD*"])
                .expect("scan");
        assert!(left.trim().is_empty(), "keys left on {p}: {left}");
    }
}

/// With `min_replicas=1` writes wait for a replica and succeed on a healthy cluster; asking for
/// more replicas than exist answers every write with a retryable error naming `min_replicas`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn min_replicas_waits_for_replicas() {
    let Some(cluster) = conformance::launch::redis_cluster::redis_cluster().await else {
        return;
    };
    if cluster.local.is_none() {
        println!("not a local cluster: replica counts unknown, skipped");
        return;
    }
    let url = format!("{}&min_replicas=1&wait_timeout_ms=2000", cluster.url);
    let store = RedisStore::open(options(&url)).await.expect("open");
    let ds = "WAITED_STREAMING";
    store
        .create(ds, &DatasetProps::time_series())
        .await
        .expect("create waits for one replica");
    let puts: Vec<PutRequest> = (0..300)
        .map(|i| PutRequest::new(ds, format!("k{i}"), "v", Some(5)))
        .collect();
    for r in store.multi_put(puts).await {
        r.expect("a write one replica confirmed");
    }
    let url = format!("{}&min_replicas=2&wait_timeout_ms=200", cluster.url);
    let greedy = RedisStore::open(options(&url)).await.expect("open");
    let err = greedy
        .create("GREEDY", &DatasetProps::snapshot())
        .await
        .expect_err("two replicas do not exist");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("min_replicas"), "{err}");
}
