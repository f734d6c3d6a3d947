//! The streaming writer on the reference `MemoryStore`: what it stores for events and for CDC
//! mutations, dead letters, strict mode, at-least-once resume from a checkpoint, batching by
//! time, and backpressure against a slow store.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chronon_core::{
    BulkPutOptions, BulkPutReport, BulkSource, Capabilities, DatasetProps, GetRequest, GetResponse,
    KvError, KvStore, ListCursor, ListPage, MemoryStore, PutRequest,
};
use chronon_serving::stream::{
    CsvDecoder, DebeziumDecoder, FileDeadLetter, LineSource, Message, Position, Source,
    StreamError, StreamingWriter, StructType, Value, WriterOptions,
};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chronon-stream-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn purchases() -> StructType {
    StructType::from_json_str(
        r#"{"name": "purchases", "fields": [
            {"name": "user_id", "type": "string"},
            {"name": "price", "type": "double"},
            {"name": "note", "type": "string"},
            {"name": "ts", "type": "long"}]}"#,
    )
    .unwrap()
}

fn events_writer(
    store: Arc<dyn KvStore>,
    opts: impl FnOnce(&mut WriterOptions),
) -> StreamingWriter {
    let mut o = WriterOptions::new("team.purchases.v1", ["user_id"], "ts");
    opts(&mut o);
    StreamingWriter::new(Arc::new(CsvDecoder::new(purchases())), store, o).unwrap()
}

async fn versions(
    store: &dyn KvStore,
    writer: &StreamingWriter,
    user: &str,
) -> Vec<(i64, Vec<Value>)> {
    let key = writer.key_codec().encode_values(vec![user.into()]).unwrap();
    let got = store
        .multi_get(vec![GetRequest::range(writer.dataset(), key, 0, None)])
        .await;
    got[0]
        .values
        .as_ref()
        .unwrap()
        .iter()
        .map(|tv| (tv.millis, writer.value_codec().decode(&tv.bytes).unwrap()))
        .collect()
}

fn source(text: &str, checkpoint: Option<&std::path::Path>) -> Box<dyn Source> {
    Box::new(
        LineSource::reader(
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
            "test",
            checkpoint,
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn events_are_written_at_their_time_with_value_columns() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let w = events_writer(store.clone(), |_| {});
    assert_eq!(w.dataset(), "TEAM_PURCHASES_V1_STREAMING");
    assert_eq!(
        w.value_codec().schema().name,
        "team_purchases_v1_INPUT_COLS"
    );
    let s = w
        .run(source(
            "user_id,price,note,ts\nu1,1.5,first,1000\nu2,2.5,,1500\nu1,3.5,\"a,b\",2000\n",
            None,
        ))
        .await
        .unwrap();
    assert_eq!((s.messages, s.written, s.skipped, s.bad), (4, 3, 1, 0));
    let v = versions(store.as_ref(), &w, "u1").await;
    assert_eq!(
        v,
        vec![
            (
                1000,
                vec![Value::Double(1.5), Value::String("first".into())]
            ),
            (2000, vec![Value::Double(3.5), Value::String("a,b".into())]),
        ]
    );
    let props = store.dataset_props(w.dataset()).await.unwrap();
    assert_eq!(props, DatasetProps::time_series());
}

#[tokio::test]
async fn bad_messages_are_counted_dead_lettered_and_skipped() {
    let dir = tmp("dead");
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let dl = dir.join("dead.jsonl");
    let w = events_writer(store.clone(), |_| {})
        .with_dead_letter(Arc::new(FileDeadLetter::open(&dl).unwrap()));
    let input =
        "u1,1.0,,1000\nu1,NaN?,,2000\n,1.0,,3000\nu1,1.0,,\nu1,1.0,,-5\nu1,1.0\nu1,2.0,,4000\n";
    let s = w.run(source(input, None)).await.unwrap();
    assert_eq!((s.written, s.bad), (2, 5));
    let letters: Vec<serde_json::Value> = std::fs::read_to_string(&dl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines: Vec<u64> = letters
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6]);
    let e0 = letters[0]["error"].as_str().unwrap();
    assert!(
        e0.contains("price") && e0.contains("double") && e0.contains("NaN?"),
        "{e0}"
    );
    assert!(letters[1]["error"].as_str().unwrap().contains("key"));
    assert!(letters[2]["error"]
        .as_str()
        .unwrap()
        .contains("time column"));
    assert_eq!(letters[0]["payload"], "u1,NaN?,,2000");
    let v = versions(store.as_ref(), &w, "u1").await;
    assert_eq!(
        v.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        vec![1000, 4000]
    );
}

#[tokio::test]
async fn values_the_store_refuses_are_dead_lettered() {
    let dir = tmp("refused");
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let dl = dir.join("dead.jsonl");
    let w = events_writer(store.clone(), |_| {})
        .with_dead_letter(Arc::new(FileDeadLetter::open(&dl).unwrap()));
    let big = "x".repeat(MemoryStore::MAX_VALUE_BYTES + 10);
    let input = format!("u1,1.0,,1000\nu1,1.0,{big},2000\nu1,1.0,,3000\n");
    let s = w.run(source(&input, None)).await.unwrap();
    assert_eq!((s.written, s.bad), (2, 1));
    let text = std::fs::read_to_string(&dl).unwrap();
    assert!(
        text.contains("refused by the store") && text.contains("\"line\":2"),
        "{}",
        &text[..200]
    );
}

#[tokio::test]
async fn strict_mode_stops_at_the_first_bad_message_after_committing_what_came_before() {
    let dir = tmp("strict");
    let cp = dir.join("cp.json");
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let w = events_writer(store.clone(), |o| o.strict = true);
    let input = "u1,1.0,,1000\nu1,2.0,,2000\nu1,bad,,3000\nu1,4.0,,4000\n";
    let err = w.run(source(input, Some(&cp))).await.unwrap_err();
    match err {
        StreamError::BadMessage { position, error } => {
            assert_eq!(position.line, 3);
            assert!(error.contains("price"));
        }
        other => panic!("expected BadMessage, got {other}"),
    }
    let v = versions(store.as_ref(), &w, "u1").await;
    assert_eq!(
        v.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        vec![1000, 2000]
    );
    let cp_text = std::fs::read_to_string(&cp).unwrap();
    assert!(cp_text.contains("\"line\":2"), "{cp_text}");
    // A restart resumes at the bad message and stops there again.
    let err = events_writer(store.clone(), |o| o.strict = true)
        .run(source(input, Some(&cp)))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StreamError::BadMessage {
            position: Position { line: 3, .. },
            ..
        }
    ));
}

#[tokio::test]
async fn mutations_are_one_jvm_record_per_put_with_the_before_image_kept() {
    let table = StructType::from_json_str(
        r#"{"name": "accounts", "fields": [
            {"name": "id", "type": "long"}, {"name": "balance", "type": "double"},
            {"name": "ts", "type": "long"}]}"#,
    )
    .unwrap();
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let w = StreamingWriter::new(
        Arc::new(DebeziumDecoder::new(table).unwrap()),
        store.clone(),
        WriterOptions::new("accounts", ["id"], "ts"),
    )
    .unwrap();
    let input = [
        r#"{"op":"c","before":null,"after":{"id":1,"balance":10.0,"ts":900},"ts_ms":1000}"#,
        r#"{"op":"u","before":{"id":1,"balance":10.0,"ts":900},"after":{"id":1,"balance":25.0,"ts":1900},"ts_ms":2000}"#,
        r#"{"op":"u","before":{"id":1,"balance":25.0,"ts":1900},"after":{"id":1,"balance":25.0,"ts":1900},"ts_ms":2500}"#,
        "",
        r#"{"op":"d","before":{"id":1,"balance":25.0,"ts":1900},"after":null,"ts_ms":3000}"#,
    ]
    .join("\n");
    let s = w.run(source(&input, None)).await.unwrap();
    assert_eq!((s.written, s.skipped, s.bad), (4, 2, 0));
    let key = w.key_codec().encode_values(vec![1i64.into()]).unwrap();
    let got = store
        .multi_get(vec![GetRequest::range("ACCOUNTS_STREAMING", key, 0, None)])
        .await;
    let rows: Vec<(i64, Vec<Value>)> = got[0]
        .values
        .as_ref()
        .unwrap()
        .iter()
        .map(|tv| (tv.millis, w.value_codec().decode(&tv.bytes).unwrap()))
        .collect();
    let r = |bal: f64, ts: i64, before: bool| {
        vec![Value::Double(bal), Value::Long(ts), Value::Boolean(before)]
    };
    assert_eq!(
        rows,
        vec![
            (1000, r(10.0, 900, false)),
            // The update's before-image goes 1 ms before its after-image (same key: a put at
            // the same ts would replace it).
            (1999, r(10.0, 900, true)),
            (2000, r(25.0, 1900, false)),
            (3000, r(25.0, 1900, true)),
        ]
    );
    assert_eq!(w.value_codec().schema().name, "accounts_MUTATION_COLS");
}

/// A store that fails every write with `Unavailable` once `ok_puts` puts have been written.
#[derive(Debug)]
struct FailingAfter {
    inner: MemoryStore,
    ok_puts: AtomicI64,
}

/// A store that takes `delay` per write and records the most writes it saw at once.
#[derive(Debug)]
struct Slow {
    inner: MemoryStore,
    delay: Duration,
    now: AtomicUsize,
    max: AtomicUsize,
    largest_batch: AtomicUsize,
}

macro_rules! delegate {
    ($t:ty, |$s:ident, $reqs:ident| $put:block) => {
        #[async_trait]
        impl KvStore for $t {
            fn backend(&self) -> &str {
                "test"
            }
            fn capabilities(&self) -> Capabilities {
                self.inner.capabilities()
            }
            async fn create(&self, d: &str, p: &DatasetProps) -> Result<(), KvError> {
                self.inner.create(d, p).await
            }
            async fn drop_dataset(&self, d: &str) -> Result<(), KvError> {
                self.inner.drop_dataset(d).await
            }
            async fn dataset_props(&self, d: &str) -> Result<DatasetProps, KvError> {
                self.inner.dataset_props(d).await
            }
            async fn multi_get(&self, r: Vec<GetRequest>) -> Vec<GetResponse> {
                self.inner.multi_get(r).await
            }
            async fn multi_put(&self, $reqs: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
                let $s = self;
                $put
            }
            async fn list(
                &self,
                d: &str,
                l: usize,
                c: Option<ListCursor>,
            ) -> Result<ListPage, KvError> {
                self.inner.list(d, l, c).await
            }
            async fn bulk_put(
                &self,
                d: &str,
                r: BulkSource<'_>,
                o: BulkPutOptions,
            ) -> Result<BulkPutReport, KvError> {
                self.inner.bulk_put(d, r, o).await
            }
        }
    };
}

delegate!(FailingAfter, |s, reqs| {
    if s.ok_puts.fetch_sub(reqs.len() as i64, Ordering::SeqCst) < reqs.len() as i64 {
        let e = KvError::unavailable(
            "test",
            "127.0.0.1:1",
            io::Error::new(io::ErrorKind::ConnectionRefused, "down"),
        );
        return reqs.iter().map(|_| Err(e.clone())).collect();
    }
    s.inner.multi_put(reqs).await
});

delegate!(Slow, |s, reqs| {
    let n = s.now.fetch_add(1, Ordering::SeqCst) + 1;
    s.max.fetch_max(n, Ordering::SeqCst);
    s.largest_batch.fetch_max(reqs.len(), Ordering::SeqCst);
    tokio::time::sleep(s.delay).await;
    let r = s.inner.multi_put(reqs).await;
    s.now.fetch_sub(1, Ordering::SeqCst);
    r
});

fn lines(n: usize) -> String {
    (0..n)
        .map(|i| format!("u{},{}.0,,{}\n", i % 50, i, 1000 + i))
        .collect()
}

#[tokio::test]
async fn a_restart_resumes_from_the_last_commit_and_loses_nothing() {
    let dir = tmp("resume");
    let cp = dir.join("cp.json");
    let input = lines(5_000);
    let memory = MemoryStore::new();
    let failing: Arc<dyn KvStore> = Arc::new(FailingAfter {
        inner: memory.clone(),
        ok_puts: AtomicI64::new(2_500),
    });
    let w = events_writer(failing, |o| {
        o.batch_size = 300;
        o.max_write_retries = 2;
        o.retry_backoff = Duration::from_millis(1);
    });
    let err = w.run(source(&input, Some(&cp))).await.unwrap_err();
    assert!(
        matches!(err, StreamError::Store(KvError::Unavailable { .. })),
        "{err}"
    );
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cp).unwrap()).unwrap();
    let line = committed["line"].as_u64().unwrap();
    assert!(
        line > 0 && line <= 2_500,
        "committed line {line} must not pass the failed writes"
    );

    let healthy: Arc<dyn KvStore> = Arc::new(memory.clone());
    let w2 = events_writer(healthy.clone(), |o| o.batch_size = 300);
    let s = w2.run(source(&input, Some(&cp))).await.unwrap();
    assert_eq!(
        s.messages,
        5_000 - line,
        "the restart reads only what was not committed"
    );
    let mut total = 0;
    for u in 0..50 {
        let v = versions(healthy.as_ref(), &w2, &format!("u{u}")).await;
        assert_eq!(v.len(), 100, "user u{u}");
        total += v.len();
    }
    assert_eq!(total, 5_000);
}

#[tokio::test]
async fn a_slow_store_gets_bounded_batches_and_bounded_concurrency() {
    let slow = Arc::new(Slow {
        inner: MemoryStore::new(),
        delay: Duration::from_millis(20),
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
        largest_batch: AtomicUsize::new(0),
    });
    let w = events_writer(slow.clone(), |o| {
        o.batch_size = 100;
        o.max_in_flight = 2;
    });
    let s = w.run(source(&lines(3_000), None)).await.unwrap();
    assert_eq!(s.written, 3_000);
    assert!(
        slow.max.load(Ordering::SeqCst) <= 2,
        "in flight: {}",
        slow.max.load(Ordering::SeqCst)
    );
    assert_eq!(slow.max.load(Ordering::SeqCst), 2, "both slots are used");
    assert!(slow.largest_batch.load(Ordering::SeqCst) <= 100);
}

/// One message, then a long pause before the end: the batch interval must write it meanwhile.
struct Trickle {
    step: usize,
}

impl Source for Trickle {
    fn describe(&self) -> String {
        "trickle".into()
    }
    fn next_batch(&mut self, _max: usize) -> io::Result<Vec<Message>> {
        self.step += 1;
        match self.step {
            1 => Ok(vec![Message {
                payload: "u1,1.0,,1000".into(),
                position: Position {
                    offset: 13,
                    line: 1,
                },
                truncated: false,
            }]),
            _ => {
                std::thread::sleep(Duration::from_millis(600));
                Ok(Vec::new())
            }
        }
    }
    fn start_position(&self) -> Position {
        Position::default()
    }
    fn committer(&self) -> Box<dyn chronon_serving::stream::Committer> {
        Box::new(chronon_serving::stream::source::NoCommit)
    }
}

#[tokio::test]
async fn a_partial_batch_is_written_after_the_batch_interval() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let w = Arc::new(events_writer(store.clone(), |o| {
        o.batch_interval = Duration::from_millis(50)
    }));
    let run = tokio::spawn({
        let w = w.clone();
        async move { w.run(Box::new(Trickle { step: 0 })).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        versions(store.as_ref(), &w, "u1").await.len(),
        1,
        "written before the source ended"
    );
    assert!(!run.is_finished());
    assert_eq!(run.await.unwrap().unwrap().written, 1);
}
