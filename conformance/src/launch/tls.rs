//! A throwaway PKI for TLS tests against real servers: a certificate authority, a server
//! certificate for `localhost` and `127.0.0.1`, and a client certificate, all made here by
//! `rcgen` and written as PEM files into a temporary directory that lives as long as the value.
//! The launchers that start TLS servers (for example [`super::mongodb::tls_child`]) take it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM files of a test PKI; the directory is removed on drop.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
    /// The certificate authority's certificate (what clients and servers trust).
    pub ca: PathBuf,
    /// The server's certificate, valid for `localhost` and `127.0.0.1`.
    pub server_cert: PathBuf,
    /// The server certificate's private key (PKCS#8).
    pub server_key: PathBuf,
    /// A client certificate (for mutual TLS).
    pub client_cert: PathBuf,
    /// The client certificate's private key (PKCS#8).
    pub client_key: PathBuf,
    /// The client certificate followed by its key in one file, as MongoDB drivers take it
    /// (`tlsCertificateKeyFile`).
    pub client_bundle: PathBuf,
}

impl TestPki {
    /// Makes a fresh CA and the two leaf certificates it signs.
    pub fn generate() -> Result<TestPki> {
        let dir = tempfile::Builder::new().prefix("chronon-pki-").tempdir()?;
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "chronon test CA");
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca = Issuer::new(ca_params, ca_key);
        let (server_cert, server_key) = leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca,
        )?;
        let (client_cert, client_key) = leaf(
            &["chronon-client"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &ca,
        )?;
        let d = dir.path();
        Ok(TestPki {
            ca: write(d, "ca.pem", &ca_cert.pem())?,
            server_cert: write(d, "server.pem", &server_cert)?,
            server_key: write(d, "server.key", &server_key)?,
            client_bundle: write(
                d,
                "client-bundle.pem",
                &format!("{client_cert}{client_key}"),
            )?,
            client_cert: write(d, "client.pem", &client_cert)?,
            client_key: write(d, "client.key", &client_key)?,
            dir,
        })
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A certificate for `names` with `usage`, signed by `ca`: (certificate PEM, key PEM).
fn leaf(
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    ca: &Issuer<'_, KeyPair>,
) -> Result<(String, String)> {
    let key = KeyPair::generate()?;
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names)?;
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write(dir: &Path, name: &str, pem: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, pem).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}
