//! Launcher for Redis (see the module docs of [`crate::launch`]).
//!
//! In order: `CHRONON_REDIS_URL`; testcontainers' `redis` module (needs Docker); a real
//! `redis-server` child on a free loopback port with a temporary directory, durable
//! (`--appendonly yes --appendfsync always`) so the fault tests can kill and restart it on the
//! same data; otherwise a loud skip. [`tls_child`] starts a child that serves only TLS, with
//! certificate files the caller made.

use std::path::PathBuf;
use std::time::Duration;

use testcontainers_modules::redis::{Redis, REDIS_PORT};
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::ContainerAsync;

use super::{free_port, on_path, skip, ChildServer, LaunchMethod};

/// The environment variable with a user's own Redis URL (`redis://host:port/db`).
pub const URL_ENV: &str = "CHRONON_REDIS_URL";

/// The server program the child-process recipe runs.
pub const PROGRAM: &str = "redis-server";

/// A Redis server for the suite; dropping it stops what was started here.
#[derive(Debug)]
pub struct RedisServer {
    /// A `redis://host:port/0` URL for the driver.
    pub url: String,
    /// How the server was found.
    pub method: LaunchMethod,
    /// The `redis-server` child process, when one was started (kill/pause/restart for fault
    /// tests; the data directory survives a restart).
    pub child: Option<ChildServer>,
    _container: Option<ContainerAsync<Redis>>,
}

/// Finds or starts a Redis server, or prints `SKIPPED redis: ...` and returns `None` (a panic
/// instead when `redis` is named in `CHRONON_REQUIRE_BACKENDS`).
pub async fn redis() -> Option<RedisServer> {
    if let Ok(url) = std::env::var(URL_ENV) {
        if !url.trim().is_empty() {
            return Some(RedisServer {
                url,
                method: LaunchMethod::Env(URL_ENV),
                child: None,
                _container: None,
            });
        }
    }
    // Without Docker the start fails at once and we fall through to a child server.
    let container_error = match Redis::default().start().await {
        Ok(container) => match container.get_host_port_ipv4(REDIS_PORT).await {
            Ok(port) => {
                return Some(RedisServer {
                    url: format!("redis://127.0.0.1:{port}/0"),
                    method: LaunchMethod::Container,
                    child: None,
                    _container: Some(container),
                })
            }
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    match child().await {
        Ok(server) => Some(server),
        Err(why) => {
            skip(
                "redis",
                &format!("${URL_ENV} is not set; testcontainers failed ({container_error}); {why}"),
            );
            None
        }
    }
}

/// Always a `redis-server` child process (never the environment's server or a container), for
/// fault tests that must kill, pause and restart the server. `Err` says why it could not start.
pub async fn child() -> Result<RedisServer, String> {
    spawn_child("redis", "redis", |port, dir| {
        [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            dir,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    })
    .await
}

/// Starts `redis-server` with the arguments `args(port, data dir)` gives on a free loopback port
/// and its own temporary directory, off the async runtime; `scheme` and the port make its URL.
/// Shared by every child recipe here and by the cluster launcher.
pub(crate) async fn spawn_child(
    name: &'static str,
    scheme: &'static str,
    args: impl FnOnce(u16, &str) -> Vec<String> + Send + 'static,
) -> Result<RedisServer, String> {
    tokio::task::spawn_blocking(move || {
        if !on_path(PROGRAM) {
            return Err(format!(
                "{PROGRAM} is not on PATH (apt-get install redis-server)"
            ));
        }
        let port = free_port().map_err(|e| e.to_string())?;
        let dir = ChildServer::temp_dir(name).map_err(|e| e.to_string())?;
        let args = args(port, &dir.path().display().to_string());
        let child = ChildServer::start(
            name,
            PROGRAM,
            args,
            vec![],
            port,
            dir,
            Duration::from_secs(30),
        )
        .map_err(|e| format!("starting {PROGRAM} ({name}) failed: {e:#}"))?;
        let host = if scheme == "rediss" {
            "localhost"
        } else {
            "127.0.0.1"
        };
        Ok(RedisServer {
            url: format!("{scheme}://{host}:{port}/0"),
            method: LaunchMethod::ChildProcess,
            child: Some(child),
            _container: None,
        })
    })
    .await
    .map_err(|e| format!("launcher task failed: {e}"))?
}

/// The certificate files of a TLS server (PEM), made by the caller (a test makes them with
/// `rcgen`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server's certificate chain, valid for `localhost` and `127.0.0.1`.
    pub cert: PathBuf,
    /// The server certificate's private key.
    pub key: PathBuf,
    /// The certificate authority clients' certificates are checked against.
    pub ca: PathBuf,
    /// Whether the server requires a client certificate (mutual TLS).
    pub require_client_cert: bool,
}

/// A `redis-server` child that serves only TLS (`--port 0 --tls-port P`) with `tls`'s files;
/// its `url` is `rediss://localhost:P/0`. `Err` says why it could not start (no `redis-server`,
/// or one built without TLS).
pub async fn tls_child(tls: TlsFiles) -> Result<RedisServer, String> {
    spawn_child("redis-tls", "rediss", move |port, dir| {
        let path = |p: &PathBuf| p.display().to_string();
        [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            &path(&tls.cert),
            "--tls-key-file",
            &path(&tls.key),
            "--tls-ca-cert-file",
            &path(&tls.ca),
            "--tls-auth-clients",
            if tls.require_client_cert { "yes" } else { "no" },
            "--save",
            "",
            "--dir",
            dir,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    })
    .await
}
