//! Finding or starting a real database for the suite, in this order (`conformance/DATABASES.md`
//! says how to install each one locally):
//!
//! 1. an explicit address from the environment (`CHRONON_REDIS_URL`, `CHRONON_DYNAMO_ENDPOINT`,
//!    `CHRONON_MONGO_URI`, `CHRONON_SCYLLA_URI`);
//! 2. testcontainers, where a Docker engine answers;
//! 3. a real server as a child process on a free loopback port with its own temporary directory,
//!    stopped by its pid when the handle is dropped;
//! 4. otherwise a loud `SKIPPED <backend>: <why>` line, which is a failure when the backend is
//!    named in `CHRONON_REQUIRE_BACKENDS` (comma-separated backend names: `redis`, `dynamodb`,
//!    `mongodb`, `scylla`, as in URL schemes and cargo features, and `redis-cluster`).
//!
//! The child-process helpers ([`ChildServer`]) also serve the fault tests: kill, pause, restart.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

/// The environment variable naming backends that must run (comma-separated).
pub const REQUIRE_ENV: &str = "CHRONON_REQUIRE_BACKENDS";

/// Every backend name `CHRONON_REQUIRE_BACKENDS` may list: the same names as URL schemes, cargo
/// features, `KvStore::backend()` and reports.
pub const BACKEND_NAMES: &[&str] = &[
    "memory",
    "rocks",
    "redis",
    "redis-cluster",
    "dynamodb",
    "mongodb",
    "scylla",
];

/// The names listed in `CHRONON_REQUIRE_BACKENDS`, lower-cased.
fn required_names() -> Vec<String> {
    std::env::var(REQUIRE_ENV)
        .map(|v| {
            v.split(',')
                .map(|b| b.trim().to_ascii_lowercase())
                .filter(|b| !b.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `backend` is named in `CHRONON_REQUIRE_BACKENDS`.
pub fn is_required(backend: &str) -> bool {
    required_names()
        .iter()
        .any(|b| b.eq_ignore_ascii_case(backend))
}

/// Whether every thread of process `pid` is in the stopped state (`T` in `/proc/PID/task/*/stat`).
/// False while any thread still runs, or when `/proc` cannot be read.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat"))
            .ok()
            // The state follows the parenthesised command name, which may itself hold spaces.
            .and_then(|stat| {
                stat.rsplit_once(") ")
                    .map(|(_, rest)| rest.starts_with('T'))
            })
            .unwrap_or(false)
    })
}

/// Reports that `backend` cannot run here: prints a loud `SKIPPED` line, and panics instead when
/// the backend is required, so a skip can never hide a regression in CI.
#[track_caller]
pub fn skip(backend: &str, why: &str) {
    // A misspelt name (or an old one such as `dynamo`) would otherwise let its backend skip
    // silently where CI meant to require it.
    let unknown: Vec<String> = required_names()
        .into_iter()
        .filter(|b| !BACKEND_NAMES.contains(&b.as_str()))
        .collect();
    if !unknown.is_empty() {
        panic!("{REQUIRE_ENV} names unknown backends {unknown:?}; the names are {BACKEND_NAMES:?}");
    }
    if is_required(backend) {
        panic!("{backend} is named in {REQUIRE_ENV} but cannot run: {why}");
    }
    eprintln!("\n==================================================================");
    eprintln!("SKIPPED {backend}: {why}");
    eprintln!("==================================================================\n");
    println!("SKIPPED {backend}: {why}");
}

/// How a backend was found, for logs and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchMethod {
    /// From an environment variable (the variable's name).
    Env(&'static str),
    /// A testcontainers container.
    Container,
    /// A child process started here.
    ChildProcess,
    /// In this process (embedded stores).
    Embedded,
}

impl std::fmt::Display for LaunchMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LaunchMethod::Env(var) => write!(f, "address from ${var}"),
            LaunchMethod::Container => f.write_str("testcontainers"),
            LaunchMethod::ChildProcess => f.write_str("local child server"),
            LaunchMethod::Embedded => f.write_str("embedded"),
        }
    }
}

/// A free TCP port on 127.0.0.1 (the OS picks one; a race with another process is possible but
/// rare, and the server's start then fails loudly).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("nothing listening on {addr} after {timeout:?}")
}

/// Whether `program` can be found on `PATH` (or is a path that exists).
pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// A database server running as a child process on a loopback port, with a data directory.
///
/// Dropping it kills the process (by its own pid) and removes a temporary directory.
#[derive(Debug)]
pub struct ChildServer {
    name: String,
    program: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// The loopback port the server listens on.
    pub port: u16,
    /// The server's data directory (kept across [`restart`](ChildServer::restart)).
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    child: Option<Child>,
    log: PathBuf,
    ready_timeout: Duration,
}

impl ChildServer {
    /// Starts `program args` and waits until `port` accepts connections. `data_dir` is a
    /// temporary directory the server may use (its path is in `args` already if needed; create it
    /// with [`ChildServer::temp_dir`]).
    pub fn start(
        name: &str,
        program: &str,
        args: Vec<String>,
        envs: Vec<(String, String)>,
        port: u16,
        data_dir: tempfile::TempDir,
        ready_timeout: Duration,
    ) -> Result<ChildServer> {
        let log = data_dir.path().join(format!("{name}.log"));
        let mut server = ChildServer {
            name: name.to_string(),
            program: program.to_string(),
            args,
            envs,
            port,
            data_dir: data_dir.path().to_path_buf(),
            _temp: Some(data_dir),
            child: None,
            log,
            ready_timeout,
        };
        server.spawn()?;
        Ok(server)
    }

    /// A fresh temporary directory for a server's data.
    pub fn temp_dir(name: &str) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(&format!("chronon-{name}-"))
            .tempdir()
            .context("creating a temporary data directory")
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} ({})", self.name, self.program))?;
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{} exited with {status} before listening on port {}; its log:\n{}",
                    self.name,
                    self.port,
                    self.log_tail()
                );
            }
            if wait_for_port(self.port, Duration::from_millis(300)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{} did not listen on port {} within {:?}; its log:\n{}",
                    self.name,
                    self.port,
                    self.ready_timeout,
                    self.log_tail()
                );
            }
        }
        self.child = Some(child);
        Ok(())
    }

    /// The last lines the server logged, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn signal(&self, signal: &str) -> Result<()> {
        let pid = self.pid().context("server is not running")?;
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill {signal} {pid} failed");
        }
        Ok(())
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) -> Result<()> {
        self.signal("-KILL")?;
        if let Some(mut child) = self.child.take() {
            child.wait()?;
        }
        Ok(())
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing. Returns once every thread of
    /// the process is stopped: `kill` only queues the signal, and a thread that was running may
    /// still answer a request that arrives just after (seen once in CI with DynamoDB Local).
    pub fn pause(&self) -> Result<()> {
        self.signal("-STOP")?;
        let pid = self.pid().context("server is not running")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !all_threads_stopped(pid) {
            if Instant::now() > deadline {
                bail!(
                    "{} (pid {pid}) did not stop within 5 s of SIGSTOP",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// SIGCONT after [`pause`](ChildServer::pause).
    pub fn resume(&self) -> Result<()> {
        self.signal("-CONT")
    }

    /// Starts the server again with the same arguments and data directory (after [`kill`]).
    ///
    /// [`kill`]: ChildServer::kill
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.kill()?;
        }
        self.spawn()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub mod dynamodb;
pub mod mongodb;
pub mod redis;
pub mod redis_cluster;
pub mod scylla;
pub mod tls;
