//! TLS to the cluster (rustls): the [`TlsOptions`] of a store and the rustls client
//! configuration the driver's `SessionBuilder::tls_context` takes, built from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chronon_core::KvError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::BACKEND;

/// How the store encrypts its connections to the cluster (URL: `tls=true`, `tls_ca_file=`,
/// `tls_cert_file=`, `tls_key_file=`; any `tls_` file implies `tls=true`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsOptions {
    /// Connect over TLS. Default off (CQL's plain port 9042; TLS clusters usually listen on 9142).
    pub enabled: bool,
    /// PEM file of the certificate authorities that may sign the nodes' certificates, instead
    /// of the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for clusters that require one (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl TlsOptions {
    /// TLS with the system's trust store and no client certificate.
    pub fn enabled() -> Self {
        TlsOptions {
            enabled: true,
            ..TlsOptions::default()
        }
    }

    /// Checks the files go together; a client certificate without its key is an error.
    pub fn validate(&self) -> Result<(), KvError> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(KvError::config(
                BACKEND,
                "tls_cert_file and tls_key_file go together (a client certificate and its key)",
            ));
        }
        if !self.enabled && (self.ca_file.is_some() || self.cert_file.is_some()) {
            return Err(KvError::config(
                BACKEND,
                "TLS files are set but TLS is off (tls=false)",
            ));
        }
        Ok(())
    }

    /// The rustls client configuration for these options (ring as crypto provider, so it does
    /// not depend on a process-wide default), or `None` when TLS is off. Unreadable or invalid
    /// files are `KvError::Config` naming the file.
    pub fn client_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, KvError> {
        if !self.enabled {
            return Ok(None);
        }
        self.validate()?;
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                for cert in certificates(path, "tls_ca_file")? {
                    roots
                        .add(cert)
                        .map_err(|e| bad_file("tls_ca_file", path, e))?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
        }
        if roots.is_empty() {
            return Err(KvError::config(
                BACKEND,
                "TLS has no trusted certificate authority (set tls_ca_file)",
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| KvError::config(BACKEND, format!("TLS: {e}")))?
            .with_root_certificates(roots);
        let config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let chain = certificates(cert, "tls_cert_file")?;
                let key_der = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| bad_file("tls_key_file", key, e))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| bad_file("tls_cert_file", cert, e))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Some(Arc::new(config)))
    }
}

fn bad_file(param: &str, path: &Path, e: impl std::fmt::Display) -> KvError {
    KvError::config(BACKEND, format!("{param} {}: {e}", path.display()))
}

/// Every certificate in a PEM file; none is an error.
fn certificates(path: &Path, param: &str) -> Result<Vec<CertificateDer<'static>>, KvError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad_file(param, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_file(param, path, e))?;
    if certs.is_empty() {
        return Err(bad_file(param, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    /// A CA and a client certificate it signed, as PEM files.
    fn files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let (ca, c, k) = (dir.join("ca.pem"), dir.join("c.pem"), dir.join("c.key"));
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (ca, c, k)
    }

    #[test]
    fn builds_a_client_config_from_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = files(dir.path());
        let tls = TlsOptions {
            enabled: true,
            ca_file: Some(ca.clone()),
            cert_file: Some(cert),
            key_file: Some(key),
        };
        let config = tls.client_config().unwrap().expect("a TLS config");
        assert!(config.client_auth_cert_resolver.has_certs());
        assert!(TlsOptions::default().client_config().unwrap().is_none());

        let missing = TlsOptions {
            ca_file: Some(dir.path().join("nope.pem")),
            ..TlsOptions::enabled()
        };
        let err = missing.client_config().unwrap_err();
        assert!(matches!(err, KvError::Config { .. }), "{err}");
        assert!(err.to_string().contains("nope.pem"), "{err}");

        let not_pem = TlsOptions {
            ca_file: Some(dir.path().join("c.key")),
            ..TlsOptions::enabled()
        };
        let err = not_pem.client_config().unwrap_err();
        assert!(err.to_string().contains("tls_ca_file"), "{err}");
    }
}
