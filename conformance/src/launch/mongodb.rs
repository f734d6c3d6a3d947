//! Launcher for MongoDB (see the module docs of [`crate::launch`]).
//!
//! In order: `CHRONON_MONGO_URI`; testcontainers' `mongo` module (a real `mongod`, needs Docker);
//! a SecantusDB child server (`python3 -m secantus`, PyPI `secantusdb`: a single-node server on
//! WiredTiger that speaks MongoDB's wire protocol, see `conformance/DATABASES.md`) on a free loopback
//! port with a temporary storage directory; otherwise a loud skip.

use std::time::Duration;

use testcontainers_modules::mongo::Mongo;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::ContainerAsync;

use super::tls::TestPki;
use super::{free_port, skip, ChildServer, LaunchMethod};
use crate::RunOptions;

/// The environment variable with a user's own MongoDB URI (`mongodb://host:port/...`).
pub const URI_ENV: &str = "CHRONON_MONGO_URI";

/// A MongoDB-protocol server for the suite; dropping it stops what was started here.
#[derive(Debug)]
pub struct MongoServer {
    /// A `mongodb://` connection string for the driver.
    pub uri: String,
    /// How the server was found.
    pub method: LaunchMethod,
    /// The SecantusDB child process, when one was started (kill/pause/restart for fault tests).
    pub child: Option<ChildServer>,
    _container: Option<ContainerAsync<Mongo>>,
}

/// How the suite drives a slow MongoDB-protocol server: SecantusDB, a Python server, manages
/// about 650 upserts/s, so the suite's 10,000-put batches need ~16 s (more with other cases
/// running); its `$in` cost grows quadratically with the list (1,000 keys: 4.5 s, 100 keys:
/// 0.07 s), so reads go in chunks of 100 keys; index-ordered scans (`list`) materialise the
/// whole collection (~3 s per page at 30,000 documents), so the 100,000-row case needs more than
/// the default 180 s per case; and smaller bulk commands keep the server fair to the cases
/// running alongside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowServerTuning {
    /// Upper bound of every adapter call (`MongoOptions::timeout`).
    pub call_timeout: Duration,
    /// Keys per `find` in `multi_get` (`MongoOptions::get_batch_size`).
    pub keys_per_find: usize,
    /// Rows per `update` command in `bulk_put` (`MongoOptions::bulk_batch_size`).
    pub rows_per_bulk_command: usize,
    /// `bulk_put` commands in flight at once (`MongoOptions::bulk_concurrency`).
    pub bulk_commands_in_flight: usize,
    /// Longest a suite case may take ([`RunOptions::case_timeout`]).
    pub case_timeout: Duration,
}

/// The tuning for SecantusDB, the server [`mongodb`] starts when there is no other.
pub const SECANTUS_TUNING: SlowServerTuning = SlowServerTuning {
    call_timeout: Duration::from_secs(300),
    keys_per_find: 100,
    rows_per_bulk_command: 1_000,
    bulk_commands_in_flight: 2,
    case_timeout: Duration::from_secs(900),
};

impl MongoServer {
    /// [`SECANTUS_TUNING`] when this is a SecantusDB child server, `None` for a real `mongod`.
    pub fn slow_server_tuning(&self) -> Option<SlowServerTuning> {
        (self.method == LaunchMethod::ChildProcess).then_some(SECANTUS_TUNING)
    }

    /// Suite options for this server: the defaults (`CHRONON_CASES` included), with the longer
    /// case timeout of [`slow_server_tuning`](MongoServer::slow_server_tuning) when it has one.
    pub fn suite_run_options(&self) -> RunOptions {
        let mut options = RunOptions::default();
        if let Some(slow) = self.slow_server_tuning() {
            options.case_timeout = slow.case_timeout;
        }
        options
    }
}

/// Finds or starts a MongoDB-protocol server, or prints `SKIPPED mongodb: ...` and returns
/// `None` (a panic instead when `mongodb` is named in `CHRONON_REQUIRE_BACKENDS`).
pub async fn mongodb() -> Option<MongoServer> {
    if let Ok(uri) = std::env::var(URI_ENV) {
        if !uri.trim().is_empty() {
            return Some(MongoServer {
                uri,
                method: LaunchMethod::Env(URI_ENV),
                child: None,
                _container: None,
            });
        }
    }
    let container_error = match Mongo::default().start().await {
        Ok(container) => match container.get_host_port_ipv4(27017).await {
            Ok(port) => {
                return Some(MongoServer {
                    uri: format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
                    method: LaunchMethod::Container,
                    child: None,
                    _container: Some(container),
                })
            }
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    match secantus().await {
        Ok(server) => Some(server),
        Err(why) => {
            skip(
                "mongodb",
                &format!("${URI_ENV} is not set; testcontainers failed ({container_error}); {why}"),
            );
            None
        }
    }
}

/// Whether `python3 -c "import secantus"` works.
fn secantus_installed() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import secantus"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Always a SecantusDB child process with its storage in a temporary directory (durable across
/// [`ChildServer::restart`]), never the environment's server or a container: the fault tests
/// kill, pause and restart it. `Err` says why it could not start.
pub async fn child() -> Result<MongoServer, String> {
    secantus().await
}

/// A SecantusDB child that serves only TLS with `pki`'s server certificate, trusting its CA;
/// with `require_client_cert`, only clients showing a certificate that CA signed get in. The
/// returned `uri` has no TLS options: the caller adds the ones under test.
pub async fn tls_child(pki: &TestPki, require_client_cert: bool) -> Result<MongoServer, String> {
    let path = |p: &std::path::Path| p.display().to_string();
    let mut args = vec![
        "--tls-cert-file".to_string(),
        path(&pki.server_cert),
        "--tls-key-file".to_string(),
        path(&pki.server_key),
        "--tls-ca-file".to_string(),
        path(&pki.ca),
    ];
    if require_client_cert {
        args.push("--tls-require-client-cert".to_string());
    }
    secantus_with(args).await
}

async fn secantus() -> Result<MongoServer, String> {
    secantus_with(Vec::new()).await
}

/// Starts SecantusDB with `extra` arguments after the usual ones.
async fn secantus_with(extra: Vec<String>) -> Result<MongoServer, String> {
    tokio::task::spawn_blocking(move || {
        if !secantus_installed() {
            return Err("SecantusDB is not installed (pip install secantusdb)".to_string());
        }
        let port = free_port().map_err(|e| e.to_string())?;
        let dir = ChildServer::temp_dir("mongo").map_err(|e| e.to_string())?;
        let storage = dir.path().join("data");
        let args: Vec<String> = vec![
            "-m".to_string(),
            "secantus".to_string(),
            "--host".to_string(),
            "127.0.0.1".to_string(),
            "--port".to_string(),
            port.to_string(),
            "--storage-path".to_string(),
            storage.display().to_string(),
            "--log-level".to_string(),
            "WARNING".to_string(),
        ]
        .into_iter()
        .chain(extra)
        .collect();
        let child = ChildServer::start(
            "secantus",
            "python3",
            args,
            vec![],
            port,
            dir,
            Duration::from_secs(60),
        )
        .map_err(|e| format!("starting SecantusDB failed: {e:#}"))?;
        Ok(MongoServer {
            uri: format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
            method: LaunchMethod::ChildProcess,
            child: Some(child),
            _container: None,
        })
    })
    .await
    .map_err(|e| format!("launcher task failed: {e}"))?
}
