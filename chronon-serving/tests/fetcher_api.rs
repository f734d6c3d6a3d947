//! The Api and response logging: logged join responses reach the logging dataset after
//! shutdown; a full buffer drops and counts; sampling keeps a key always or never; snapshot
//! group-bys serve batch values only; definitions round-trip through CHRONON_METADATA.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chronon_core::{KvStore, KvStoreExt, MemoryStore};
use chronon_serving::api::{Api, ApiConfig};
use chronon_serving::fetcher::FetchRequest;
use chronon_serving::groupby::{
    Accuracy, Aggregation, GroupBy, Join, JoinPart, Operation, SourceKind, DAY_MILLIS,
};
use chronon_serving::logging::{LoggableResponse, LoggingOptions, ResponseLogger};
use chronon_serving::metadata::{compute_and_upload, get_group_by, get_join, put_join};
use chronon_serving::store_url::open_store;
use chronon_serving::stream::{StructType, Value};

const B: i64 = 19_000 * DAY_MILLIS;

fn gb(accuracy: Accuracy) -> GroupBy {
    GroupBy {
        derivations: Vec::new(),
        name: "api.purchases".into(),
        keys: vec!["user_id".into()],
        schema: StructType::from_json_str(
            r#"{"name": "p", "fields": [{"name": "user_id", "type": "long"},
            {"name": "price", "type": "double"}, {"name": "ts", "type": "long"}]}"#,
        )
        .unwrap(),
        time_column: "ts".into(),
        accuracy,
        source: SourceKind::Events,
        aggregations: vec![Aggregation::new("price", Operation::Sum, &["7d"]).unwrap()],
    }
}

fn row(user: i64, price: f64, ts: i64) -> Vec<Value> {
    vec![Value::Long(user), Value::Double(price), Value::Long(ts)]
}

#[tokio::test]
async fn api_serves_joins_and_logs_responses_on_shutdown() {
    // The Api opens its own client of the same named memory store from the URL.
    let url = "memory://api_serves_joins";
    let store = open_store(url).await.unwrap();
    let g = gb(Accuracy::Temporal);
    compute_and_upload(&*store, &g, B, [row(42, 2.5, B - 10), row(42, 1.0, B - 20)])
        .await
        .unwrap();
    let join = Join {
        derivations: Vec::new(),
        name: "api.join".into(),
        parts: vec![JoinPart {
            group_by: g.name.clone(),
            key_mapping: Default::default(),
            prefix: Some("p".into()),
        }],
    };
    put_join(&*store, &join).await.unwrap();
    assert_eq!(
        get_group_by(&*store, &g.name).await.unwrap(),
        Some(g.clone())
    );
    assert_eq!(
        get_join(&*store, &join.name).await.unwrap(),
        Some(join.clone())
    );
    assert_eq!(
        store
            .get_string_array("CHRONON_METADATA", "group_bys")
            .await
            .unwrap(),
        Some(vec![g.name.clone()])
    );

    let config = ApiConfig::new(url)
        .with("logging", true)
        .with("timeout_ms", 5000);
    let api = Api::from_config(config).await.unwrap();
    let fetcher = api.build_fetcher().unwrap();
    // Keys as JSON numbers or strings: both become the long key column.
    let responses = fetcher
        .fetch_joins(vec![
            FetchRequest::new("api.join", [("user_id", 42)]).at(B + 1),
            FetchRequest::new("api.join", [("user_id", "42")]).at(B + 2),
            FetchRequest::new("api.join", [("user_id", "x")]).at(B + 3),
            FetchRequest::new("nope", [("user_id", 1)]).at(B + 3),
        ])
        .await;
    let v = responses[0].values.as_ref().unwrap();
    assert_eq!(v["p_api_purchases_price_sum_7d"], Value::Double(3.5));
    assert_eq!(responses[1].values.as_ref().unwrap(), v);
    // A part that fails adds `{prefix}_exception`, as Chronon's fetchJoin does.
    let bad = responses[2].values.as_ref().unwrap();
    assert!(bad["p_api_purchases_exception"]
        .to_text()
        .contains("not a long"));
    assert!(responses[3].values.is_err());
    api.shutdown().await;
    let logger = api.logger().unwrap();
    assert_eq!(logger.stats().written.load(Ordering::Relaxed), 3);
    let logged = store
        .list_all("CHRONON_LOGGED_RESPONSES", 100)
        .await
        .unwrap();
    assert_eq!(logged.len(), 3, "three distinct keys: 42, \"42\" and \"x\"");
    let json: serde_json::Value = serde_json::from_slice(&logged[0].1.bytes).unwrap();
    assert_eq!(json["joinName"], "api.join");
    assert_eq!(json["schemaHash"].as_str().unwrap().len(), 16);
}

#[tokio::test]
async fn a_full_buffer_drops_and_counts_instead_of_waiting() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let options = LoggingOptions {
        buffer: 4,
        flush_interval: Duration::from_secs(60),
        batch_size: 1_000,
        ..LoggingOptions::default()
    };
    let logger = ResponseLogger::start(store.clone(), options).await.unwrap();
    let req = FetchRequest::new("j", [("k", 1)]).at(5);
    let values = [("f".to_string(), Value::Long(1))].into();
    // The writer task cannot run (current-thread runtime, no await): the buffer fills.
    for _ in 0..10 {
        logger.log(LoggableResponse::new(&req, &values));
    }
    assert_eq!(logger.stats().dropped.load(Ordering::Relaxed), 6);
    logger.shutdown().await;
    assert_eq!(logger.stats().written.load(Ordering::Relaxed), 4);
    // After shutdown, logging drops.
    logger.log(LoggableResponse::new(&req, &values));
    assert_eq!(logger.stats().dropped.load(Ordering::Relaxed), 7);
}

#[tokio::test]
async fn sampling_keeps_a_key_always_or_never() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let options = LoggingOptions {
        sample_rate: 0.5,
        ..LoggingOptions::default()
    };
    let logger = ResponseLogger::start(store, options).await.unwrap();
    let values = [("f".to_string(), Value::Long(1))].into();
    for k in 0..200 {
        for _ in 0..2 {
            logger.log(LoggableResponse::new(
                &FetchRequest::new("j", [("k", k)]).at(5),
                &values,
            ));
        }
    }
    logger.shutdown().await;
    let written = logger.stats().written.load(Ordering::Relaxed);
    let out = logger.stats().sampled_out.load(Ordering::Relaxed);
    assert_eq!(written + out, 400);
    assert_eq!(
        written % 2,
        0,
        "both responses of a key are kept or neither"
    );
    assert!((100..300).contains(&written), "about half: {written}");
}

#[tokio::test]
async fn snapshot_group_bys_serve_the_batch_value_only() {
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let g = gb(Accuracy::Snapshot);
    compute_and_upload(&*store, &g, B, [row(1, 2.0, B - 10)])
        .await
        .unwrap();
    let api = Api::new(store, ApiConfig::new("memory://")).await.unwrap();
    let f = api.build_fetcher().unwrap();
    let r = f
        .fetch_group_bys(vec![
            FetchRequest::new(&g.name, [("user_id", 1)]).at(B + 7 * DAY_MILLIS)
        ])
        .await;
    assert_eq!(
        r[0].values.as_ref().unwrap()["price_sum_7d"],
        Value::Double(2.0)
    );
    let d = api.stream_decoder(&g);
    assert!(d
        .decode(br#"{"user_id": 1, "price": 3.0, "ts": 5}"#)
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn bad_store_urls_and_options_are_config_errors() {
    let err = Api::from_config(ApiConfig::new("ftp://x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "Config", "{err}");
    assert!(err.to_string().contains("unknown store scheme"), "{err}");
    let config = ApiConfig::new("memory://bad_options").with("logging", "maybe");
    let err = Api::from_config(config).await.unwrap_err();
    assert_eq!(err.kind(), "Config", "{err}");
    assert!(err.to_string().contains("logging"), "{err}");
    let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
    let api = Api::new(
        store,
        ApiConfig::new("memory://").with("timeout_ms", "soon"),
    )
    .await
    .unwrap();
    assert_eq!(api.build_fetcher().unwrap_err().kind(), "Config");
}
