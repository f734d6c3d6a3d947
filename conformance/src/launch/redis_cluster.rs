//! Launcher for a Redis Cluster (see the module docs of [`crate::launch`]).
//!
//! In order: `CHRONON_REDIS_CLUSTER_URL` (a `redis://host:port/0?cluster=true` URL of a seed
//! node); a local cluster of six `redis-server` children, three masters and three replicas
//! (`--cluster-enabled yes`, each on a free loopback port with its own temporary directory),
//! joined by `redis-cli --cluster create --cluster-replicas 1`; otherwise a loud
//! `SKIPPED redis-cluster` line. The fault tests kill a master by its pid and wait for its
//! replica to take over ([`LocalCluster::wait_for_failover`]).

use std::process::Command;
use std::time::{Duration, Instant};

use super::redis::{spawn_child, RedisServer};
use super::{on_path, skip, ChildServer, LaunchMethod};

/// The environment variable with a user's own cluster (`redis://host:port/0?cluster=true`).
pub const URL_ENV: &str = "CHRONON_REDIS_CLUSTER_URL";

/// The backend name in `CHRONON_REQUIRE_BACKENDS` and `SKIPPED` lines.
pub const BACKEND: &str = "redis-cluster";

/// The client program that joins the nodes into a cluster.
pub const CLI: &str = "redis-cli";

/// A Redis Cluster for the suite; dropping it stops every node started here.
#[derive(Debug)]
pub struct RedisCluster {
    /// A `redis://127.0.0.1:port/0?cluster=true&cluster_nodes=..` URL for the adapter.
    pub url: String,
    /// How the cluster was found.
    pub method: LaunchMethod,
    /// The local cluster, when one was started here.
    pub local: Option<LocalCluster>,
}

/// Six `redis-server` children joined into a cluster of three masters with a replica each.
#[derive(Debug)]
pub struct LocalCluster {
    /// Every node, in the order they were started (roles change with failovers: ask
    /// [`LocalCluster::masters`]).
    pub nodes: Vec<RedisServer>,
    /// `cluster-node-timeout`: how long a master may be silent before its replica takes over.
    pub node_timeout: Duration,
}

/// Finds or starts a cluster, or prints `SKIPPED redis-cluster: ...` and returns `None` (a
/// panic instead when `redis-cluster` is named in `CHRONON_REQUIRE_BACKENDS`).
pub async fn redis_cluster() -> Option<RedisCluster> {
    if let Ok(url) = std::env::var(URL_ENV) {
        if !url.trim().is_empty() {
            return Some(RedisCluster {
                url,
                method: LaunchMethod::Env(URL_ENV),
                local: None,
            });
        }
    }
    match local(Duration::from_secs(5)).await {
        Ok(cluster) => Some(cluster),
        Err(why) => {
            skip(BACKEND, &format!("${URL_ENV} is not set; {why}"));
            None
        }
    }
}

/// Always a local cluster of children (for fault tests), with `node_timeout` as
/// `cluster-node-timeout`. `Err` says why it could not start.
pub async fn local(node_timeout: Duration) -> Result<RedisCluster, String> {
    if !on_path(CLI) {
        return Err(format!(
            "{CLI} is not on PATH (apt-get install redis-tools)"
        ));
    }
    let timeout_ms = node_timeout.as_millis().to_string();
    let mut nodes = Vec::with_capacity(6);
    for _ in 0..6 {
        let timeout_ms = timeout_ms.clone();
        let node = spawn_child("redis-cluster", "redis", move |port, dir| {
            [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &format!("{dir}/nodes.conf"),
                "--cluster-node-timeout",
                &timeout_ms,
                // A replica takes over however long it was cut off from its master.
                "--cluster-replica-validity-factor",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                dir,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        })
        .await?;
        nodes.push(node);
    }
    let ports: Vec<u16> = nodes.iter().map(port).collect();
    let cluster = LocalCluster {
        nodes,
        node_timeout,
    };
    tokio::task::spawn_blocking(move || {
        let mut create = Command::new(CLI);
        create.arg("--cluster").arg("create");
        for p in &ports {
            create.arg(format!("127.0.0.1:{p}"));
        }
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = create
            .output()
            .map_err(|e| format!("running {CLI} --cluster create: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{CLI} --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        wait_until_ready(&ports, Duration::from_secs(60))?;
        let seeds: Vec<String> = ports[1..3]
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        Ok(format!(
            "redis://127.0.0.1:{}/0?cluster=true&cluster_nodes={}",
            ports[0],
            seeds.join(",")
        ))
    })
    .await
    .map_err(|e| format!("launcher task failed: {e}"))?
    .map(|url| RedisCluster {
        url,
        method: LaunchMethod::ChildProcess,
        local: Some(cluster),
    })
}

fn port(node: &RedisServer) -> u16 {
    node.child.as_ref().map_or(0, |c| c.port)
}

/// Runs `redis-cli -p port args..` and returns what it printed.
pub fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let out = Command::new(CLI)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map_err(|e| format!("running {CLI}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{CLI} -p {port} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Until every node says `cluster_state:ok` and every master has its replica attached (so
/// `WAIT` can be answered), or `timeout`.
fn wait_until_ready(ports: &[u16], timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let ok = ports
            .iter()
            .all(|p| cli(*p, &["cluster", "info"]).is_ok_and(|i| i.contains("cluster_state:ok")));
        let masters = masters_of(ports);
        let attached = masters.len() == 3
            && masters.iter().all(|p| {
                cli(*p, &["info", "replication"])
                    .is_ok_and(|i| i.contains("connected_slaves:1") && i.contains("state=online"))
            });
        if ok && attached {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the cluster on ports {ports:?} was not ready (every node ok, each master with an online replica) within {timeout:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The ports of the nodes that say they are a master with slots.
fn masters_of(ports: &[u16]) -> Vec<u16> {
    ports
        .iter()
        .copied()
        .filter(|p| {
            // `CLUSTER NODES`' own line: id addr flags master ping pong epoch link slots..
            cli(*p, &["cluster", "nodes"]).is_ok_and(|n| {
                n.lines().any(|l| {
                    let fields: Vec<&str> = l.split(' ').collect();
                    fields.get(2).is_some_and(|f| {
                        f.split(',').any(|x| x == "myself") && f.split(',').any(|x| x == "master")
                    }) && fields.len() > 8
                })
            })
        })
        .collect()
}

impl LocalCluster {
    /// The ports of the running nodes.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.as_ref().is_some_and(|c| c.pid().is_some()))
            .map(port)
            .collect()
    }

    /// The ports of the running masters that serve slots.
    pub fn masters(&self) -> Vec<u16> {
        masters_of(&self.ports())
    }

    /// The port of the replica attached to the master on `master` (`INFO replication`).
    pub fn replica_of(&self, master: u16) -> Result<u16, String> {
        let info = cli(master, &["info", "replication"])?;
        info.lines()
            .find(|l| l.starts_with("slave0:"))
            .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("port=")))
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| format!("the master on {master} has no replica: {info}"))
    }

    fn node(&mut self, port: u16) -> Result<&mut ChildServer, String> {
        self.nodes
            .iter_mut()
            .filter_map(|n| n.child.as_mut())
            .find(|c| c.port == port)
            .ok_or_else(|| format!("no node started here on port {port}"))
    }

    /// SIGKILL of the node on `port` (a master, for a failover).
    pub fn kill(&mut self, port: u16) -> Result<(), String> {
        self.node(port)?.kill().map_err(|e| format!("{e:#}"))
    }

    /// SIGSTOP of the node on `port` (a replica that falls behind its master).
    pub fn pause(&mut self, port: u16) -> Result<(), String> {
        self.node(port)?.pause().map_err(|e| format!("{e:#}"))
    }

    /// SIGCONT after [`LocalCluster::pause`].
    pub fn resume(&mut self, port: u16) -> Result<(), String> {
        self.node(port)?.resume().map_err(|e| format!("{e:#}"))
    }

    /// Waits until the surviving nodes again serve every slot (`cluster_state:ok` on each),
    /// with three masters, after a master was killed.
    pub fn wait_for_failover(&self, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let ports = self.ports();
            let ok = ports.iter().all(|p| {
                cli(*p, &["cluster", "info"]).is_ok_and(|i| i.contains("cluster_state:ok"))
            });
            if ok && masters_of(&ports).len() == 3 {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "no replica took over within {timeout:?} (nodes {ports:?})"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
