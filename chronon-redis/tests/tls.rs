//! `rediss://` for real: a `redis-server` child serving only TLS, with a certificate authority,
//! server and client certificates made here by `rcgen`, runs the whole conformance suite over
//! mutual TLS; a client without the CA or without its certificate is refused.

use std::path::{Path, PathBuf};

use chronon_core::{KvError, KvStoreExt};
use chronon_redis::{RedisOptions, RedisStore};
use conformance::launch;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM files of a test PKI in a temporary directory: a CA, a server certificate for
/// `localhost`/`127.0.0.1` and a client certificate, all signed by the CA.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn write(dir: &Path, name: &str, pem: String) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("write a PEM file");
    path
}

fn leaf(
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    ca: &Issuer<'_, KeyPair>,
) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("params");
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, ca).expect("sign");
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "chronon test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let ca = Issuer::new(ca_params, ca_key);
    let (server_cert, server_key) = leaf(
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
    );
    let (client_cert, client_key) = leaf(
        &["chronon-client"],
        ExtendedKeyUsagePurpose::ClientAuth,
        &ca,
    );
    let d = dir.path();
    Pki {
        ca: write(d, "ca.pem", ca_cert.pem()),
        server_cert: write(d, "server.pem", server_cert),
        server_key: write(d, "server.key", server_key),
        client_cert: write(d, "client.pem", client_cert),
        client_key: write(d, "client.key", client_key),
        _dir: dir,
    }
}

async fn tls_server(pki: &Pki) -> Option<launch::redis::RedisServer> {
    let files = launch::redis::TlsFiles {
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        ca: pki.ca.clone(),
        require_client_cert: true,
    };
    match launch::redis::tls_child(files).await {
        Ok(server) => Some(server),
        Err(why) => {
            launch::skip("redis", &format!("TLS server: {why}"));
            None
        }
    }
}

/// `rediss://` URL with the CA and, when `client`, the client certificate as parameters.
fn url(server: &launch::redis::RedisServer, pki: &Pki, client: bool) -> String {
    let mut url = format!("{}?tls_ca_file={}", server.url, pki.ca.display());
    if client {
        url.push_str(&format!(
            "&tls_cert_file={}&tls_key_file={}",
            pki.client_cert.display(),
            pki.client_key.display()
        ));
    }
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_passes_the_suite_over_mutual_tls() {
    let pki = pki();
    let Some(server) = tls_server(&pki).await else {
        return;
    };
    let url = url(&server, &pki, true);
    println!("redis over TLS: {url}");
    let options = RedisOptions::from_url(&url)
        .expect("rediss URL")
        .with_prefix("chronon_tls");
    assert!(options.is_tls());
    let factory = conformance::FnFactory::new("redis", move || RedisStore::open(options.clone()));
    conformance::assert_conformance(factory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_an_unknown_server_or_a_client_without_its_certificate() {
    let pki = pki();
    let Some(server) = tls_server(&pki).await else {
        return;
    };
    // The working configuration first, so the failures below are about what they leave out.
    let store = RedisStore::open_url(&url(&server, &pki, true))
        .await
        .expect("mutual TLS");
    store.put_string("TLS_CHECK", "k", "v", None).await.ok();
    assert!(store.create_default("TLS_CHECK").await.is_ok());

    // No CA parameter: the system trust store does not know the test CA.
    let no_ca = format!("{}?timeout_ms=3000", server.url);
    let err = RedisStore::open_url(&no_ca).await.unwrap_err();
    assert!(
        matches!(err, KvError::Unavailable { .. } | KvError::Backend { .. }),
        "{err}"
    );
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // The CA but no client certificate: the server (tls-auth-clients yes) hangs up.
    let no_client = format!("{}&timeout_ms=3000", url(&server, &pki, false));
    assert!(RedisStore::open_url(&no_client).await.is_err());

    // A missing CA file is a configuration error naming the file.
    let missing = format!("{}?tls_ca_file=/nonexistent/ca.pem", server.url);
    let err = RedisStore::open_url(&missing).await.unwrap_err();
    assert!(matches!(err, KvError::Config { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
