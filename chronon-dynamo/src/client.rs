//! [`DynamoClient`]: what every operation shares — the SDK client, the options, the bound on
//! requests in flight, and the cache of dataset properties — with the small helpers they all use
//! (a call under the in-flight bound, a table's description, a dataset's properties).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{AttributeValue, TableDescription, TableStatus};
use aws_sdk_dynamodb::Client;
use chronon_core::metadata_cache::{MetadataCache, DEFAULT_METADATA_CACHE_CAPACITY};
use chronon_core::{Capabilities, DatasetProps, ErrorContext, KvError};

use crate::config::{DynamoOptions, SCHEME};
use crate::error::{code_of, map_error};
use crate::layout::{self, GET_BATCH, META_DATASET_ATTR, META_TTL_ATTR, PUT_BATCH};
use crate::retry::RefusedIsFinal;

/// The state one store shares across all its calls.
pub(crate) struct DynamoClient {
    /// The SDK client every request goes through.
    pub(crate) sdk: Client,
    /// The options the store runs with.
    pub(crate) options: DynamoOptions,
    /// The endpoint (or the region's endpoint), for `Unavailable` errors and `Debug`.
    pub(crate) address: String,
    /// What this store accepts, checked before any request is sent.
    pub(crate) caps: Capabilities,
    /// Whether the metadata table is known to exist (it is created once per client).
    pub(crate) meta_ready: AtomicBool,
    /// At most [`DynamoOptions::max_in_flight`] requests at once.
    permits: tokio::sync::Semaphore,
    /// Each dataset's kind and TTL, for [`DynamoOptions::metadata_cache_ttl`].
    props_cache: MetadataCache<DatasetProps>,
}

/// Whether the environment names AWS credentials of its own (then the AWS chain is used even
/// for a loopback endpoint).
fn env_has_credentials() -> bool {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// The SDK client for `options`: region and credentials from the options, else the AWS chain
/// (with dummy static credentials for a loopback endpoint when the environment has none, as
/// DynamoDB Local accepts any).
pub(crate) async fn connect_sdk(options: &DynamoOptions) -> Result<Client, KvError> {
    let retry = RetryConfig::standard()
        .with_max_attempts(options.retry.max_attempts.max(1))
        .with_initial_backoff(options.retry.initial_backoff)
        .with_max_backoff(options.retry.max_backoff);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(options.timeout)
        .operation_timeout(options.timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(endpoint) = &options.endpoint {
        loader = loader.endpoint_url(endpoint.clone());
    }
    if let Some(ca_file) = &options.tls_ca_file {
        loader = loader.http_client(https_client_trusting(ca_file)?);
    }
    match (&options.region, &options.endpoint) {
        (Some(region), _) => loader = loader.region(Region::new(region.clone())),
        (None, Some(_)) => {
            // DynamoDB Local accepts any region; avoid probing instance metadata for one.
            let region = std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|_| "us-east-1".to_string());
            loader = loader.region(Region::new(region));
        }
        (None, None) => {}
    }
    if let Some((id, secret)) = &options.credentials {
        loader = loader.credentials_provider(Credentials::new(
            id,
            secret,
            None,
            None,
            "chronon-options",
        ));
    } else if options.endpoint_is_loopback() && !env_has_credentials() {
        // DynamoDB Local 2+ accepts any key id made of letters and digits only.
        loader = loader.credentials_provider(Credentials::new(
            "chrononlocal",
            "chrononlocal",
            None,
            None,
            "chronon-dynamodb-local",
        ));
    }
    let config = loader.load().await;
    // Connection refused is final for one call: the SDK would otherwise retry it until the
    // operation timeout and report `Timeout`, hiding that nothing listens (the contract says a
    // refused connection is `Unavailable`, naming the address). Throttling and 5xx are still
    // retried.
    let conf = aws_sdk_dynamodb::config::Builder::from(&config)
        .retry_classifier(RefusedIsFinal)
        .build();
    Ok(Client::from_conf(conf))
}

/// The SDK's own HTTPS client (rustls), trusting only the certificate authorities in the PEM
/// file `ca_file`. An unreadable or empty file is `KvError::Config` naming it.
fn https_client_trusting(
    ca_file: &std::path::Path,
) -> Result<aws_sdk_dynamodb::config::SharedHttpClient, KvError> {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    let bad = |e: &dyn std::fmt::Display| {
        KvError::config(SCHEME, format!("tls_ca_file {}: {e}", ca_file.display()))
    };
    let pem = std::fs::read(ca_file).map_err(|e| bad(&e))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(bad(&"no PEM certificate in the file"));
    }
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(pem);
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| bad(&e))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}

/// What a call names as its target in a timeout: the one dataset of the batch, or how many.
pub(crate) fn batch_target(groups: &BTreeMap<String, Vec<usize>>) -> String {
    match groups.len() {
        1 => groups.keys().next().cloned().unwrap_or_default(),
        n => format!("{n} datasets"),
    }
}

impl DynamoClient {
    /// The shared state around an SDK client.
    pub(crate) fn new(sdk: Client, options: DynamoOptions) -> Self {
        let address = match (&options.endpoint, sdk.config().region()) {
            (Some(e), _) => e.clone(),
            (None, Some(r)) => format!("dynamodb.{r}.amazonaws.com"),
            (None, None) => "dynamodb (default endpoint)".to_string(),
        };
        DynamoClient {
            sdk,
            address,
            caps: Capabilities::new(layout::MAX_VALUE_BYTES, GET_BATCH, PUT_BATCH)
                .with_native_ttl()
                .with_persistence(),
            meta_ready: AtomicBool::new(false),
            permits: tokio::sync::Semaphore::new(options.max_in_flight.max(1)),
            props_cache: MetadataCache::new(
                options.metadata_cache_ttl,
                DEFAULT_METADATA_CACHE_CAPACITY,
            ),
            options,
        }
    }

    /// The physical table of `dataset` (`prefix + dataset`).
    pub(crate) fn table_name(&self, dataset: &str) -> String {
        layout::table_name(&self.options.table_prefix, dataset)
    }

    /// The metadata table (`prefix + metadata_table`).
    pub(crate) fn meta_table(&self) -> String {
        format!(
            "{}{}",
            self.options.table_prefix, self.options.metadata_table
        )
    }

    /// The context of a data call or SDK request named `operation` (add `.dataset(..)`), for
    /// [`map_error`] and the data timeout.
    pub(crate) fn ctx(&self, operation: &'static str) -> ErrorContext<'_> {
        ErrorContext::new(SCHEME, operation, &self.address, self.options.timeout)
    }

    /// The context of `create`/`drop_dataset`, which run under the admin timeout.
    pub(crate) fn admin_ctx(&self, operation: &'static str) -> ErrorContext<'_> {
        ErrorContext::new(SCHEME, operation, &self.address, self.options.admin_timeout)
    }

    /// Runs one SDK call while holding an in-flight permit (the bound on concurrent requests).
    ///
    /// The SDK's request future is boxed at once: it is about 11 KB, and every future that held
    /// it inline (a chunk's, a dataset's, the call's) was that big too, so each move of one (into
    /// `buffer_unordered`'s task list, out of an iterator) copied it again: ~60,000 instructions
    /// of `memcpy` per one-key `multi_get` or `multi_put`, 10-15 % of the client's work per call.
    pub(crate) fn limited<'a, F: Future + Send + 'a>(
        &'a self,
        fut: F,
    ) -> impl Future<Output = F::Output> + Send + 'a {
        let fut = Box::pin(fut);
        async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = self.permits.acquire().await.ok();
            fut.await
        }
    }

    /// The description of `table`, `None` when it does not exist or is being deleted.
    pub(crate) async fn describe(
        &self,
        table: &str,
        dataset: Option<&str>,
    ) -> Result<Option<TableDescription>, KvError> {
        let res = self
            .limited(self.sdk.describe_table().table_name(table).send())
            .await;
        match res {
            Ok(out) => Ok(out
                .table
                .filter(|t| t.table_status() != Some(&TableStatus::Deleting))),
            Err(e) if code_of(&e) == "ResourceNotFoundException" => Ok(None),
            Err(e) => {
                let ctx = self.ctx("DescribeTable");
                Err(map_error(e, dataset.map_or(ctx, |d| ctx.dataset(d))))
            }
        }
    }

    /// The TTL remembered for `dataset` (none when the metadata table or its row is missing).
    pub(crate) async fn read_ttl(&self, dataset: &str) -> Result<Option<Duration>, KvError> {
        let res = self
            .limited(
                self.sdk
                    .get_item()
                    .table_name(self.meta_table())
                    .key(META_DATASET_ATTR, AttributeValue::S(dataset.to_string()))
                    .consistent_read(true)
                    .send(),
            )
            .await;
        let ctx = self.ctx("GetItem (metadata table)").dataset(dataset);
        let item = match res {
            Ok(out) => out.item.unwrap_or_default(),
            Err(e) if code_of(&e) == "ResourceNotFoundException" => return Ok(None),
            Err(e) => return Err(map_error(e, ctx)),
        };
        match item.get(META_TTL_ATTR) {
            Some(AttributeValue::N(n)) => n
                .parse::<u64>()
                .map(|ms| Some(Duration::from_millis(ms)))
                .map_err(|e| {
                    ctx.backend_error(
                        format!("{META_TTL_ATTR} {n:?} is not a number of milliseconds: {e}"),
                        None,
                    )
                }),
            _ => Ok(None),
        }
    }

    /// Reads a dataset's kind (from the key schema) and TTL (from the metadata table), and
    /// caches them.
    pub(crate) async fn fetch_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        let ticket = self.props_cache.ticket();
        let table = self.table_name(dataset);
        let desc = self
            .describe(&table, Some(dataset))
            .await?
            .ok_or_else(|| KvError::not_found(dataset))?;
        let kind = layout::kind_from_key_schema(desc.key_schema());
        let ttl = self.read_ttl(dataset).await?;
        let props = DatasetProps { kind, ttl };
        self.props_cache.insert(ticket, dataset, props);
        Ok(props)
    }

    /// The dataset's properties, from the cache when fresh.
    pub(crate) async fn props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        match self.props_cache.get(dataset) {
            Some(props) => Ok(props),
            None => self.fetch_props(dataset).await,
        }
    }

    /// Caches the properties this client just created `dataset` with (after forgetting what
    /// the cache held, which voids lookups that began before the create).
    pub(crate) fn remember_created(&self, dataset: &str, props: DatasetProps) {
        self.props_cache.forget(dataset);
        let ticket = self.props_cache.ticket();
        self.props_cache.insert(ticket, dataset, props);
    }

    /// Drops what the cache holds for `dataset` (dropped, or found missing).
    pub(crate) fn forget(&self, dataset: &str) {
        self.props_cache.forget(dataset);
    }

    /// Forgets `dataset` when any of `answers` says it does not exist (dropped by another
    /// client), so the next call reads its properties again.
    pub(crate) fn forget_if_missing<I, V>(
        &self,
        dataset: &str,
        answers: &[(I, Result<V, KvError>)],
    ) {
        if answers
            .iter()
            .any(|(_, r)| matches!(r, Err(KvError::DatasetNotFound { .. })))
        {
            self.forget(dataset);
        }
    }
}

#[cfg(test)]
mod tls_tests {
    use std::sync::Arc;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A CA (PEM) and a TLS acceptor whose certificate for `localhost` it signed.
    fn pki() -> (String, tokio_rustls::TlsAcceptor) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(cert.pem().as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
            )
            .unwrap();
        (
            ca_cert.pem(),
            tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        )
    }

    /// An HTTPS server that answers every request with an empty `ListTables` reply.
    async fn https_server(acceptor: tokio_rustls::TlsAcceptor) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = tls.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        let Some(end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() < end + 4 + length {
                            continue;
                        }
                        buf.drain(..end + 4 + length);
                        let body = r#"{"TableNames":[]}"#;
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if tls.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    /// `tls_ca_file` reaches the SDK's HTTPS client: with it, a call to an `https://` endpoint
    /// whose certificate the test CA signed succeeds over TLS; without it the system's trust
    /// store refuses the same server.
    #[tokio::test]
    async fn https_endpoint_with_a_private_ca() {
        let (ca_pem, acceptor) = pki();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let port = https_server(acceptor).await;
        let url = format!(
            "dynamodb://?endpoint=https://localhost:{port}&region=us-east-1\
             &access_key_id=test&secret_access_key=test&timeout_ms=5000&max_attempts=1"
        );
        let mut options =
            DynamoOptions::from_url(&format!("{url}&tls_ca_file={}", ca_file.display())).unwrap();
        options.retry.max_attempts = 1;
        let sdk = connect_sdk(&options).await.unwrap();
        let tables = sdk.list_tables().send().await.expect("list over TLS");
        assert!(tables.table_names().is_empty());

        let untrusted = connect_sdk(&DynamoOptions::from_url(&url).unwrap())
            .await
            .unwrap();
        let err = untrusted.list_tables().send().await.unwrap_err();
        assert!(
            format!("{err:?}").to_lowercase().contains("certificate"),
            "{err:?}"
        );

        let missing =
            DynamoOptions::from_url(&format!("{url}&tls_ca_file=/nonexistent/ca.pem")).unwrap();
        let err = connect_sdk(&missing).await.unwrap_err();
        assert!(matches!(err, KvError::Config { .. }), "{err}");
        let plain = DynamoOptions::from_url(
            "dynamodb://?endpoint=http://127.0.0.1:8000&tls_ca_file=/c/ca.pem",
        );
        assert!(plain.unwrap_err().to_string().contains("https://"));
    }
}
