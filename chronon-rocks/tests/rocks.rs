//! What the suite cannot see from outside: durability across reopen, the directory lock (in this
//! process and from a second one), the TTL compaction filter, bulk loading, and async fairness.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chronon_core::batch::now_millis;
use chronon_core::{
    BulkPutOptions, BulkRow, DatasetKind, DatasetProps, GetRequest, KvError, KvStore, KvStoreExt,
    PutRequest,
};
use chronon_rocks::{RocksOptions, RocksStore};
use futures::StreamExt;

const T0: i64 = 1_700_000_000_000;
/// Set for the child process of `second_process_gets_a_clear_lock_error`.
const CHILD_DIR_VAR: &str = "CHRONON_ROCKS_LOCK_CHILD_DIR";

fn b(v: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(v.as_ref())
}

async fn open(path: &std::path::Path) -> RocksStore {
    RocksStore::open(RocksOptions::new(path))
        .await
        .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_after_drop_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(30 * 24 * 3600);
    let mut acknowledged = Vec::new();
    {
        let store = Arc::new(open(dir.path()).await);
        store
            .create("FEATS_BATCH", &DatasetProps::snapshot())
            .await
            .unwrap();
        store
            .create(
                "FEATS_STREAMING",
                &DatasetProps::time_series().with_ttl(ttl),
            )
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for t in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut ok = Vec::new();
                for round in 0..20i64 {
                    let now = now_millis();
                    let puts = vec![
                        PutRequest::new(
                            "FEATS_BATCH",
                            b(format!("t{t}")),
                            b(format!("r{round}")),
                            Some(T0 + round),
                        ),
                        PutRequest::new(
                            "FEATS_STREAMING",
                            b(format!("t{t}")),
                            b(format!("r{round}")),
                            Some(now - 1000 + round),
                        ),
                    ];
                    let results = store.multi_put(puts).await;
                    assert!(results.iter().all(Result::is_ok), "{results:?}");
                    ok.push((t, round));
                }
                ok
            }));
        }
        for task in tasks {
            acknowledged.extend(task.await.unwrap());
        }
        // Dropped without flush or close.
    }
    let store = open(dir.path()).await;
    assert_eq!(
        store.dataset_props("FEATS_BATCH").await.unwrap(),
        DatasetProps::snapshot()
    );
    assert_eq!(
        store.dataset_props("FEATS_STREAMING").await.unwrap(),
        DatasetProps::time_series().with_ttl(ttl)
    );
    for t in 0..16 {
        let latest = store
            .get("FEATS_BATCH", b(format!("t{t}")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((latest.bytes, latest.millis), (b("r19"), T0 + 19));
        let all = store
            .multi_get(vec![GetRequest::range(
                "FEATS_STREAMING",
                b(format!("t{t}")),
                0,
                None,
            )])
            .await;
        let values = all[0].values.as_ref().unwrap();
        let want = acknowledged.iter().filter(|(tt, _)| *tt == t).count();
        assert_eq!(values.len(), want, "task {t}: {values:?}");
        let names: Vec<Bytes> = values.iter().map(|v| v.bytes.clone()).collect();
        assert_eq!(
            names,
            (0..20).map(|r| b(format!("r{r}"))).collect::<Vec<_>>()
        );
    }
}

/// A client dropped right after a put answered has closed the database: the directory opens
/// again at once, with no retry (`chronon check` and `compare` reopen like this).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_right_after_a_put_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store
        .create("REOPEN_BATCH", &DatasetProps::snapshot())
        .await
        .unwrap();
    drop(store);
    for round in 0..30 {
        let store = RocksStore::open(RocksOptions::new(dir.path()))
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let puts = (0..2000)
            .map(|i| PutRequest::new("REOPEN_BATCH", format!("k{i}"), vec![7u8; 100], Some(T0)))
            .collect();
        assert!(store.multi_put(puts).await.iter().all(Result::is_ok));
        drop(store);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_open_in_process_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).await;
    let err = RocksStore::open(RocksOptions::new(dir.path()))
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::Unavailable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("locked") && msg.contains(&dir.path().display().to_string()),
        "{msg}"
    );
    assert!(err.is_retryable());
    drop(first);
    // Once the first client is gone the directory opens again.
    open(dir.path()).await;
}

/// The child half of `second_process_gets_a_clear_lock_error`: does nothing unless the parent set
/// the variable; then tries the open and prints what happened for the parent to check.
#[tokio::test]
async fn lock_child_process() {
    let Ok(dir) = std::env::var(CHILD_DIR_VAR) else {
        return;
    };
    match RocksStore::open(RocksOptions::new(dir)).await {
        Ok(_) => println!("CHILD-RESULT opened"),
        Err(e) => println!("CHILD-RESULT {} {e}", e.kind()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_process_gets_a_clear_lock_error() {
    if std::env::var(CHILD_DIR_VAR).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_default("HELD_BATCH").await.unwrap();
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_child_process",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DIR_VAR, dir.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed (it must not panic): {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // libtest may print the test's name on the same line, so look for the marker anywhere.
    let line = stdout
        .lines()
        .find_map(|l| l.find("CHILD-RESULT").map(|at| &l[at..]))
        .unwrap_or_default();
    assert!(
        line.starts_with("CHILD-RESULT Unavailable") && line.contains("locked"),
        "child said {line:?}"
    );
    println!("second process: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_filter_removes_expired_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let hour = Duration::from_secs(3600);
    let now = now_millis();
    for (ds, kind) in [
        ("TTL_BATCH", DatasetKind::Snapshot),
        ("TTL_STREAMING", DatasetKind::TimeSeries),
    ] {
        store
            .create(
                ds,
                &DatasetProps {
                    kind,
                    ttl: Some(hour),
                },
            )
            .await
            .unwrap();
        let mut puts = Vec::new();
        for i in 0..100 {
            // Expired: two hours old. Fresh: a minute old.
            puts.push(PutRequest::new(
                ds,
                b(format!("old{i}")),
                b("x"),
                Some(now - 2 * 3_600_000),
            ));
            puts.push(PutRequest::new(
                ds,
                b(format!("new{i}")),
                b("y"),
                Some(now - 60_000),
            ));
        }
        if kind == DatasetKind::TimeSeries {
            // An old version under a fresh key: only that version goes.
            puts.push(PutRequest::new(
                ds,
                b("new0"),
                b("z"),
                Some(now - 3 * 3_600_000),
            ));
        }
        assert!(store.multi_put(puts).await.iter().all(Result::is_ok));
        let before = store.raw_row_count(ds).await.unwrap();
        assert_eq!(
            before,
            if kind == DatasetKind::TimeSeries {
                201
            } else {
                200
            }
        );
        // Reads hide expired rows before compaction.
        assert_eq!(store.get(ds, b("old5")).await.unwrap(), None);
        store.compact_dataset(ds).await.unwrap();
        let after = store.raw_row_count(ds).await.unwrap();
        assert_eq!(
            after, 100,
            "{ds}: {before} rows before compaction, {after} after"
        );
        assert_eq!(
            store.get(ds, b("new5")).await.unwrap().map(|v| v.bytes),
            Some(b("y"))
        );
        assert_eq!(store.list_all(ds, 7).await.unwrap().len(), 100);
    }
}

fn rows(keys: Vec<u64>, ts: i64) -> chronon_core::BulkSource<'static> {
    futures::stream::iter(keys)
        .map(move |k| {
            Ok::<_, KvError>(BulkRow {
                key: b(format!("key{k:06}")),
                value: b(format!("v{k}")),
                ts,
            })
        })
        .boxed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_put_in_many_small_chunks() {
    let dir = tempfile::tempdir().unwrap();
    // 4 KiB chunks: a 20,000-row load becomes well over a hundred SST files.
    let store = RocksStore::open(RocksOptions::new(dir.path()).with_bulk_chunk_bytes(4096))
        .await
        .unwrap();
    store.create_default("BULK_BATCH").await.unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let (s, c) = (seen.clone(), calls.clone());
    let progress = Arc::new(move |n: u64| {
        assert!(n >= s.swap(n, Ordering::SeqCst), "progress went backwards");
        c.fetch_add(1, Ordering::SeqCst);
    });
    let sorted = BulkPutOptions {
        progress: Some(progress),
        sorted: true,
    };
    let report = store
        .bulk_put("BULK_BATCH", rows((0..20_000).collect(), T0), sorted)
        .await
        .unwrap();
    assert_eq!(report.rows, 20_000);
    assert_eq!(seen.load(Ordering::SeqCst), 20_000);
    assert!(
        calls.load(Ordering::SeqCst) > 50,
        "progress called {} times",
        calls.load(Ordering::SeqCst)
    );
    assert_eq!(
        store.list_all("BULK_BATCH", 3000).await.unwrap().len(),
        20_000
    );

    // Unsorted, with duplicates: a later row for the same key wins, as with multi_put.
    let mut keys: Vec<u64> = (0..5000).map(|i| (i * 7919) % 5000).collect();
    keys.extend([17, 17]);
    let source = futures::stream::iter(keys.into_iter().enumerate())
        .map(|(i, k)| {
            Ok::<_, KvError>(BulkRow {
                key: b(format!("key{k:06}")),
                value: b(format!("w{i}")),
                ts: T0 + 1,
            })
        })
        .boxed();
    store
        .bulk_put(
            "BULK_BATCH",
            source,
            BulkPutOptions {
                progress: None,
                sorted: false,
            },
        )
        .await
        .unwrap();
    let got = store
        .get("BULK_BATCH", b("key000017"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.bytes, got.millis), (b("w5001"), T0 + 1));
    let got = store
        .get("BULK_BATCH", b("key012345"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.bytes, got.millis), (b("v12345"), T0));
    // Leaves no temporary files behind.
    let tmp = dir.path().join("chronon-bulk-tmp");
    assert!(
        std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0) == 0,
        "files left in {tmp:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_put_rejects_a_broken_sorted_promise() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_default("BULK_BATCH").await.unwrap();
    let res = store
        .bulk_put(
            "BULK_BATCH",
            rows(vec![1, 2, 3, 2], T0),
            BulkPutOptions {
                progress: None,
                sorted: true,
            },
        )
        .await;
    assert!(
        matches!(res, Err(KvError::InvalidRequest { .. })),
        "{res:?}"
    );
    let res = store
        .bulk_put("NOPE_BATCH", rows(vec![1], T0), BulkPutOptions::default())
        .await;
    assert!(
        matches!(res, Err(KvError::DatasetNotFound { .. })),
        "{res:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_series_list_pages_over_many_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_default("EVENTS_STREAMING").await.unwrap();
    let keys: Vec<Vec<u8>> = vec![
        b"a".to_vec(),
        b"a\x00".to_vec(),
        b"a\x00\x00".to_vec(),
        b"ab".to_vec(),
        vec![0xFF],
    ];
    let mut puts = Vec::new();
    for k in &keys {
        for ts in 0..7 {
            puts.push(PutRequest::new(
                "EVENTS_STREAMING",
                b(k),
                b(format!("v{ts}")),
                Some(T0 + ts),
            ));
        }
    }
    assert!(store.multi_put(puts).await.iter().all(Result::is_ok));
    for page in 1..=6 {
        let listed = store.list_all("EVENTS_STREAMING", page).await.unwrap();
        let got: Vec<(Vec<u8>, i64)> = listed.iter().map(|(k, v)| (k.to_vec(), v.millis)).collect();
        let want: Vec<(Vec<u8>, i64)> = keys.iter().map(|k| (k.clone(), T0 + 6)).collect();
        assert_eq!(got, want, "page size {page}");
    }
    let ranged = store
        .multi_get(vec![
            GetRequest::range("EVENTS_STREAMING", b("a\x00"), T0 + 2, Some(T0 + 4)),
            GetRequest::range("EVENTS_STREAMING", b("a"), T0 + 6, Some(i64::MAX)),
            GetRequest::range("EVENTS_STREAMING", b("a"), -5, Some(-1)),
        ])
        .await;
    let ts = |i: usize| {
        ranged[i]
            .values
            .as_ref()
            .unwrap()
            .iter()
            .map(|v| v.millis)
            .collect::<Vec<_>>()
    };
    assert_eq!(ts(0), vec![T0 + 2, T0 + 3, T0 + 4]);
    assert_eq!(ts(1), vec![T0 + 6]);
    assert!(ts(2).is_empty());
}

/// 64 callers hammering the store must not stall the runtime: every RocksDB call is on the
/// blocking pool, so a timer on the (two) async workers keeps firing on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_callers_do_not_stall_tokio() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()).await);
    store.create_default("HOT_STREAMING").await.unwrap();
    let stop = Instant::now() + Duration::from_secs(2);
    let mut tasks = Vec::new();
    for t in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0i64;
            while Instant::now() < stop {
                let puts = (0..50)
                    .map(|k| {
                        PutRequest::new(
                            "HOT_STREAMING",
                            b(format!("t{t}k{k}")),
                            b("v"),
                            Some(T0 + i),
                        )
                    })
                    .collect();
                assert!(store.multi_put(puts).await.iter().all(Result::is_ok));
                let gets = (0..50)
                    .map(|k| GetRequest::range("HOT_STREAMING", b(format!("t{t}k{k}")), 0, None))
                    .collect();
                for r in store.multi_get(gets).await {
                    assert_eq!(r.values.unwrap().len() as i64, i + 1);
                }
                i += 1;
            }
        }));
    }
    let mut worst = Duration::ZERO;
    while Instant::now() < stop {
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(5)).await;
        worst = worst.max(started.elapsed());
    }
    for task in tasks {
        task.await.unwrap();
    }
    println!("worst 5 ms timer under load: {worst:?}");
    assert!(
        worst < Duration::from_millis(250),
        "a 5 ms timer took {worst:?}"
    );
}

#[tokio::test]
async fn open_honours_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let err = RocksStore::open(RocksOptions::new(dir.path()).with_timeout(Duration::ZERO))
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::Timeout { .. }), "{err:?}");
}

/// `RocksStore::db` and `column_family` reach the rows the adapter wrote, in the README's layout
/// (snapshot: the raw key, value = 8-byte big-endian ts then the value).
#[tokio::test]
async fn db_handle_reads_the_adapters_rows_in_the_documented_layout() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store
        .create("RAW_BATCH", &DatasetProps::snapshot())
        .await
        .unwrap();
    store
        .put("RAW_BATCH", "user_1", "12.5", Some(T0))
        .await
        .unwrap();
    let raw = store.clone();
    let (stored, missing_cf) = tokio::task::spawn_blocking(move || {
        let db = raw.db();
        let cf = db
            .cf_handle(&RocksStore::column_family("RAW_BATCH"))
            .expect("the dataset's column family");
        let stored = db.get_cf(&cf, b"user_1").unwrap();
        let missing_cf = db
            .cf_handle(&RocksStore::column_family("NO_SUCH_BATCH"))
            .is_none();
        (stored, missing_cf)
    })
    .await
    .unwrap();
    let mut expected = (T0 as u64).to_be_bytes().to_vec();
    expected.extend_from_slice(b"12.5");
    assert_eq!(stored, Some(expected));
    assert!(missing_cf);
}

/// Snapshot reads sort their keys for RocksDB (see `layout::sort_in_key_order`, whose unit test
/// checks the order itself); here, end to end, every answer lands on its own request: keys that
/// are prefixes of others and bytes above 0x7f, asked for out of order, with duplicates and
/// missing keys, from a compacted file, a flushed file and the memtable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_reads_in_any_key_order_find_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let ds = "ORDER_BATCH";
    store.create(ds, &DatasetProps::snapshot()).await.unwrap();
    let mut keys: Vec<Vec<u8>> = vec![
        vec![0],
        vec![0, 0],
        vec![0x7f],
        vec![0x80],
        vec![0xff],
        vec![0xff, 0xff],
        b"a".to_vec(),
        b"a\0".to_vec(),
        b"ab".to_vec(),
        b"abc".to_vec(),
        b"b".to_vec(),
    ];
    keys.extend(
        (0..600u32)
            .map(|i| format!("user_{}", i.wrapping_mul(2_654_435_761) % 100_000).into_bytes()),
    );
    let mut expected = std::collections::HashMap::new();
    // Three rounds: compacted into the last level, flushed to level 0, left in the memtable.
    for (round, chunk) in keys.chunks(keys.len() / 3 + 1).enumerate() {
        let puts: Vec<PutRequest> = chunk
            .iter()
            .map(|k| PutRequest::new(ds, b(k), b(format!("{round}:{k:?}")), Some(T0)))
            .collect();
        for p in &puts {
            expected.insert(p.key.clone(), p.value.clone());
        }
        assert!(store.multi_put(puts).await.iter().all(Result::is_ok));
        let raw = store.clone();
        tokio::task::spawn_blocking(move || {
            let db = raw.db();
            let cf = db.cf_handle(&RocksStore::column_family(ds)).unwrap();
            match round {
                0 => {
                    db.flush_cf(&cf).unwrap();
                    db.compact_range_cf(&cf, None::<&[u8]>, None::<&[u8]>);
                }
                1 => db.flush_cf(&cf).unwrap(),
                _ => {}
            }
        })
        .await
        .unwrap();
    }
    // Every key twice, in an order unrelated to the bytes, with missing keys between.
    let mut asked: Vec<Bytes> = keys.iter().chain(keys.iter().rev()).map(b).collect();
    let n = asked.len();
    for i in 0..n {
        asked.swap(i, (i * 7919 + 13) % n);
    }
    for (i, missing) in [&b"a\0\0"[..], b"aa", b"user_", &[0xfe], &[0x80, 0]]
        .iter()
        .enumerate()
    {
        asked.insert(i * 97, b(missing));
    }
    let got = store
        .multi_get(
            asked
                .iter()
                .map(|k| GetRequest::latest(ds, k.clone()))
                .collect(),
        )
        .await;
    assert_eq!(got.len(), asked.len());
    for (key, response) in asked.iter().zip(&got) {
        let values: Vec<Bytes> = response
            .values
            .as_ref()
            .unwrap()
            .iter()
            .map(|v| v.bytes.clone())
            .collect();
        let want: Vec<Bytes> = expected.get(key).cloned().into_iter().collect();
        assert_eq!(values, want, "key {key:?}");
    }
}

/// A put batch is written sorted by key (`layout::sort_in_key_order`); puts of one key (one
/// version, for a time series) keep their order, so the batch's last one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_put_of_a_key_in_one_batch_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let (snap, series) = ("LAST_BATCH", "LAST_STREAMING");
    store.create(snap, &DatasetProps::snapshot()).await.unwrap();
    store
        .create(series, &DatasetProps::time_series())
        .await
        .unwrap();
    // Keys z, a, m repeated out of order; the last put of each is numbered 3 (and for the
    // snapshot it is not the one with the highest ts: the last put wins, as in one WriteBatch).
    let mut puts = Vec::new();
    for round in 1..=3 {
        for k in ["z", "a", "m"] {
            for ds in [snap, series] {
                let ts = if ds == snap { T0 + 10 - round } else { T0 };
                puts.push(PutRequest::new(ds, k, format!("{k}{round}"), Some(ts)));
            }
        }
    }
    assert!(store.multi_put(puts).await.iter().all(Result::is_ok));
    for ds in [snap, series] {
        let got = store
            .multi_get(
                ["a", "m", "z"]
                    .iter()
                    .map(|k| GetRequest::latest(ds, *k))
                    .collect(),
            )
            .await;
        let values: Vec<Bytes> = got
            .iter()
            .map(|r| r.values.as_ref().unwrap()[0].bytes.clone())
            .collect();
        assert_eq!(values, vec![b("a3"), b("m3"), b("z3")], "{ds}");
    }
}

#[tokio::test]
async fn open_url_reads_path_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "rocks://{}?cache_mb=8&compression=zstd",
        dir.path().display()
    );
    let store = RocksStore::open_url(&url).await.unwrap();
    assert_eq!(store.options().block_cache_bytes, 8 << 20);
    store
        .put_string("META_BATCH_X", "k", "v", None)
        .await
        .unwrap_err();
    store.create_default("META_BATCH").await.unwrap();
    store
        .put_string("META_BATCH", "k", "v", None)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_string("META_BATCH", "k")
            .await
            .unwrap()
            .as_deref(),
        Some("v")
    );
}
