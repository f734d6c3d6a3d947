//! What can be checked here without a CQL server: connecting to nothing fails fast and clearly,
//! a server that never answers cannot make a call hang, and bad URLs fail before any I/O.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use chronon_scylla::{ScyllaOptions, ScyllaStore};

/// A loopback port with nothing listening (bound, then released).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr()
        .expect("a bound socket has an address")
        .port()
}

#[tokio::test]
async fn nothing_listening_is_unavailable_naming_the_address() {
    let port = closed_port();
    let url = format!("scylla://127.0.0.1:{port}/chronon");
    let started = Instant::now();
    let err = ScyllaStore::open_url(&url)
        .await
        .expect_err("no server is listening");
    let elapsed = started.elapsed();
    println!("{err}");
    assert_eq!(err.kind(), "Unavailable", "{err}");
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "driver error kept as source"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[tokio::test]
async fn several_hosts_all_down_are_unavailable_naming_them_all() {
    let (a, b) = (closed_port(), closed_port());
    let url = format!("scylla://127.0.0.1:{a},127.0.0.1:{b}/chronon");
    let err = ScyllaStore::open_url(&url)
        .await
        .expect_err("no server is listening");
    println!("{err}");
    assert_eq!(err.kind(), "Unavailable", "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("127.0.0.1:{a}")) && msg.contains(&format!("127.0.0.1:{b}")),
        "{msg}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepts TCP connections and never says a word: the CQL handshake can never finish.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let options =
        ScyllaOptions::new([format!("127.0.0.1:{port}")]).with_timeout(Duration::from_millis(800));
    let started = Instant::now();
    let err = ScyllaStore::open(options)
        .await
        .expect_err("the server never answers");
    let elapsed = started.elapsed();
    println!("{err} after {elapsed:?}");
    assert!(
        matches!(err.kind(), "Timeout" | "Unavailable"),
        "expected Timeout or Unavailable, got {}: {err}",
        err.kind()
    );
    assert!(err.is_retryable());
    assert!(
        elapsed < Duration::from_secs(3),
        "no call may hang: took {elapsed:?}"
    );
    hold.abort();
}

#[tokio::test]
async fn bad_urls_fail_before_any_io() {
    for url in [
        "scylla://h:1/bad-keyspace",
        "scylla://h/ks?consistency=any",
        "scylla://h/ks?nope=1",
    ] {
        let started = Instant::now();
        let err = ScyllaStore::open_url(url).await.expect_err(url);
        assert_eq!(err.kind(), "Config", "{url}: {err}");
        assert!(!err.is_retryable());
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{url} did I/O"
        );
    }
}
