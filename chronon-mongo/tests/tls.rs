//! TLS for real: a SecantusDB child serving only TLS (certificates made here by
//! `conformance::launch::tls::TestPki`) runs part of the conformance suite through the driver's own
//! URL options (`tls=true`, `tlsCAFile`, `tlsCertificateKeyFile`), and clients that lack the CA or,
//! under mutual TLS, a client certificate are refused with an error instead of talking in clear.

use std::sync::Arc;
use std::time::Duration;

use chronon_core::{KvError, KvStoreExt};
use chronon_mongo::{MongoOptions, MongoStore};
use conformance::launch::{self, tls::TestPki};

/// A handful of cases that cover create, put, get, ranges, list and drop (the whole suite runs
/// in `conformance.rs`; SecantusDB is too slow to run it twice).
const CASES: &[&str] = &[
    "create_is_idempotent_and_keeps_data",
    "drop_removes_dataset_and_data",
    "binary_bytes_round_trip",
    "key_of_1024_bytes",
    "ttl_hides_expired_in_list",
];

/// The dataset the refused clients try to read.
const DATASET: &str = "tls_refused_BATCH";

fn options(uri: String) -> MongoOptions {
    let mut options = MongoOptions::new(&uri).with_database("chronon_tls");
    options.timeout = Duration::from_secs(60);
    options
}

async fn server(pki: &TestPki, require_client_cert: bool) -> Option<launch::mongodb::MongoServer> {
    match launch::mongodb::tls_child(pki, require_client_cert).await {
        Ok(server) => Some(server),
        Err(why) => {
            launch::skip("mongodb", &format!("no TLS SecantusDB: {why}"));
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_cases_pass_over_mutual_tls_and_plain_clients_are_refused() {
    let pki = TestPki::generate().expect("test PKI");
    let Some(server) = server(&pki, true).await else {
        return;
    };
    let (ca, bundle) = (pki.ca.display(), pki.client_bundle.display());
    let tls_uri = format!(
        "{}&tls=true&tlsCAFile={ca}&tlsCertificateKeyFile={bundle}",
        server.uri
    );
    println!("mongodb over TLS: {tls_uri}");
    let opts = options(tls_uri);
    let factory_opts = opts.clone();
    let factory = conformance::FnFactory::new("mongodb", move || {
        let options = factory_opts.clone();
        async move { MongoStore::open(options).await }
    });
    let run = conformance::RunOptions {
        filter: CASES.iter().map(|c| c.to_string()).collect(),
        ..conformance::RunOptions::default()
    };
    let report = conformance::run_with(Arc::new(factory), conformance::all_cases(), run).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.cases.len(),
        CASES.len(),
        "every named case ran: {report}"
    );

    // A dataset the refused clients below would read: for a trusted client the read succeeds, so
    // their failures can only come from TLS.
    let trusted = MongoStore::open(opts).await.expect("open over TLS");
    trusted
        .create_default(DATASET)
        .await
        .expect("create over TLS");
    assert_eq!(
        trusted
            .get(DATASET, b"k".to_vec())
            .await
            .expect("read over TLS"),
        None
    );

    // Without the CA the server's certificate is not trusted; without a client certificate the
    // server refuses the handshake. Either way a call fails; nothing goes in clear.
    let refused = [
        (
            "no CA",
            format!("{}&tls=true&tlsCertificateKeyFile={bundle}", server.uri),
            "UnknownIssuer",
        ),
        (
            "no client certificate",
            format!("{}&tls=true&tlsCAFile={ca}", server.uri),
            "CertificateRequired",
        ),
        ("plain TCP", server.uri.clone(), "unavailable"),
    ];
    for (what, uri, why) in refused {
        let mut opts = options(uri);
        opts.timeout = Duration::from_secs(5);
        let result = match MongoStore::open(opts).await {
            Err(e) => Err(e),
            Ok(store) => store.get(DATASET, b"k".to_vec()).await.map(|_| ()),
        };
        let err = result.expect_err(&format!("{what}: a call succeeded"));
        println!("{what}: refused: {err}");
        assert!(
            !matches!(err, KvError::DatasetNotFound { .. }),
            "{what}: {err}"
        );
        assert!(
            err.to_string().contains(why),
            "{what}: expected {why:?} in: {err}"
        );
    }
}
