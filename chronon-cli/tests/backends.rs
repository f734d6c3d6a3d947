//! `chronon kv` against every server backend this machine can start (the conformance launchers:
//! a real redis-server, DynamoDB Local and SecantusDB as child processes), through the URL a user
//! would type. Each backend is skipped loudly when it cannot start, and fails when named in
//! `CHRONON_REQUIRE_BACKENDS`.

#![cfg(any(
    feature = "redis",
    feature = "dynamodb",
    feature = "mongodb",
    feature = "scylla"
))]

mod common;
use common::run;

/// create, put (binary key), get, list and drop through the binary on `url`.
#[cfg(any(feature = "redis", feature = "dynamodb", feature = "mongodb"))]
fn kv_round_trip(url: &str) {
    let ds = "CLI_ROUND_TRIP";
    // A previous run on an env-provided server may have left it behind.
    run(&["kv", "drop", url, ds]);
    let (code, _, err) = run(&["kv", "create", url, ds]);
    assert_eq!(code, 0, "create on {url}: {err}");
    let (code, _, err) = run(&[
        "kv",
        "put",
        url,
        ds,
        "hex:00ff",
        "value one",
        "--ts",
        "1700000000000",
    ]);
    assert_eq!(code, 0, "put on {url}: {err}");
    let (code, out, err) = run(&["kv", "get", url, ds, "hex:00ff"]);
    assert_eq!(code, 0, "get on {url}: {err}");
    assert_eq!(out.trim(), "hex:00ff\t1700000000000\tvalue one", "{url}");
    let (code, out, err) = run(&["kv", "list", url, ds]);
    assert_eq!(code, 0, "list on {url}: {err}");
    assert!(out.contains("hex:00ff"), "list on {url} printed {out:?}");
    let (code, _, err) = run(&["kv", "drop", url, ds]);
    assert_eq!(code, 0, "drop on {url}: {err}");
    let (code, _, err) = run(&["kv", "get", url, ds, "hex:00ff"]);
    assert_eq!(code, 1, "get after drop on {url} must fail");
    assert!(err.contains(ds), "{err}");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_on_redis() {
    let Some(server) = conformance::launch::redis::redis().await else {
        return;
    };
    kv_round_trip(&server.url);
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_on_dynamodb_local() {
    let Some(server) = conformance::launch::dynamodb::dynamodb().await else {
        return;
    };
    let endpoint = url::Url::parse(&server.endpoint).expect("launcher endpoint");
    let url = format!(
        "dynamodb://{}:{}?region=us-west-2&prefix=cli_",
        endpoint.host_str().unwrap_or("127.0.0.1"),
        endpoint.port().unwrap_or(8000)
    );
    kv_round_trip(&url);
}

#[cfg(feature = "mongodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_on_mongodb() {
    let Some(server) = conformance::launch::mongodb::mongodb().await else {
        return;
    };
    kv_round_trip(&server.uri);
}

#[cfg(feature = "scylla")]
#[test]
fn check_on_scylla_without_a_server_is_a_clear_connection_error() {
    // Nothing listens on port 1 of the loopback address.
    let (code, out, err) = run(&["check", "scylla://127.0.0.1:1/chronon"]);
    assert_ne!(code, 0, "{out}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("127.0.0.1:1"),
        "the address must be named: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
}
