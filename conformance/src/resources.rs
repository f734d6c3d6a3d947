//! Resource use of a network adapter: its connections to the server are pooled and
//! bounded under load, and dropping the store closes them.
//!
//! [`connections_bounded_and_closed_on_drop`] counts this process's TCP connections to the
//! server's port from `/proc/net/tcp` and `/proc/net/tcp6`, keeping only sockets whose inode is
//! one of this process's file descriptors (`/proc/self/fd/* -> socket:[inode]`), so the server (a
//! child process on the same loopback) and other processes never count. It opens a store, runs a
//! burst of concurrent `multi_put` + `multi_get` callers while a separate OS thread samples the
//! count every ~20 ms, checks the peak against the bound the adapter documents, then drops the
//! store and waits for the count to return to what it was before the store was opened.
//!
//! Linux only (it reads `/proc`); elsewhere the scenario fails with a message saying so.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use bytes::Bytes;
use chronon_core::{DatasetProps, GetRequest, KvError, KvStore, PutRequest};

/// TCP state `01` in `/proc/net/tcp`: ESTABLISHED.
const ESTABLISHED: &str = "01";

/// How the scenario loads the store and what it expects.
#[derive(Debug, Clone)]
pub struct ResourceOptions {
    /// Most connections to the server the store may hold at once (the adapter's documented pool
    /// or connection limit, plus any monitoring connections its driver keeps).
    pub bound: usize,
    /// Concurrent callers in the burst.
    pub concurrency: usize,
    /// How long the burst runs.
    pub burst: Duration,
    /// Keys per `multi_put` / `multi_get` call.
    pub keys_per_call: usize,
    /// How often the connection count is sampled.
    pub sample_every: Duration,
    /// Longest the connections may take to close after the last handle to the store is dropped.
    pub close_within: Duration,
}

impl ResourceOptions {
    /// Defaults for an adapter that holds at most `bound` connections: 64 callers for 3 s, 10 keys
    /// per call, a sample every 20 ms, 5 s to close after the drop.
    pub fn new(bound: usize) -> Self {
        ResourceOptions {
            bound,
            concurrency: 64,
            burst: Duration::from_secs(3),
            keys_per_call: 10,
            sample_every: Duration::from_millis(20),
            close_within: Duration::from_secs(5),
        }
    }
}

/// Connections of this process to one server port at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnCount {
    /// In state ESTABLISHED.
    pub established: usize,
    /// Held by one of this process's file descriptors, in any state (CLOSE_WAIT included: a
    /// socket the server closed but this process never did is still a leak).
    pub open: usize,
}

/// What [`connections_bounded_and_closed_on_drop`] measured.
#[derive(Debug, Clone, Default)]
pub struct ResourceReport {
    /// Before the store was opened.
    pub before: ConnCount,
    /// Right after the store was opened, before any load.
    pub after_open: ConnCount,
    /// Most ESTABLISHED connections seen in one sample, from the open to the end of the burst.
    pub peak: usize,
    /// The bound the peak was checked against.
    pub bound: usize,
    /// Samples taken.
    pub samples: usize,
    /// Concurrent callers in the burst.
    pub concurrency: usize,
    /// Calls (`multi_put` or `multi_get`) whose every request succeeded.
    pub calls_ok: usize,
    /// Requests that failed, by error kind.
    pub errors: BTreeMap<&'static str, usize>,
    /// The last count seen after the drop (equal to `before` when the scenario passed).
    pub after_drop: ConnCount,
    /// From the drop until the count was back to `before`.
    pub close_took: Duration,
}

impl std::fmt::Display for ResourceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connections: before {}, after open {}, peak {} (bound {}, {} samples) under {} \
             callers ({} calls ok, errors {:?}), after drop {} (open fds {}) within {} ms",
            self.before.established,
            self.after_open.established,
            self.peak,
            self.bound,
            self.samples,
            self.concurrency,
            self.calls_ok,
            self.errors,
            self.after_drop.established,
            self.after_drop.open,
            self.close_took.as_millis()
        )
    }
}

/// Counts this process's TCP connections whose remote port is `port` (any address, IPv4 or
/// IPv6), from `/proc/net/tcp{,6}` joined with the socket inodes of `/proc/self/fd`.
pub fn count_connections(port: u16) -> Result<ConnCount> {
    let inodes = own_socket_inodes()?;
    let mut count = ConnCount::default();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(t) => t,
            // No IPv6 in this kernel: nothing to count there.
            Err(e) if table.ends_with('6') && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {table}")),
        };
        for line in text.lines().skip(1) {
            let Some(entry) = parse_tcp_line(line) else {
                continue;
            };
            if entry.remote_port != port || !inodes.contains(&entry.inode) {
                continue;
            }
            count.open += 1;
            if entry.state == ESTABLISHED {
                count.established += 1;
            }
        }
    }
    Ok(count)
}

struct TcpEntry<'a> {
    remote_port: u16,
    state: &'a str,
    inode: u64,
}

/// One row of `/proc/net/tcp`: `sl local_address rem_address st tx:rx tr:when retrnsmt uid
/// timeout inode ...`, addresses as `HEXADDR:HEXPORT`.
fn parse_tcp_line(line: &str) -> Option<TcpEntry<'_>> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 10 {
        return None;
    }
    let (_, port) = fields[2].rsplit_once(':')?;
    Some(TcpEntry {
        remote_port: u16::from_str_radix(port, 16).ok()?,
        state: fields[3],
        inode: fields[9].parse().ok()?,
    })
}

/// Inodes of the sockets this process holds (`/proc/self/fd/N -> socket:[INODE]`).
fn own_socket_inodes() -> Result<HashSet<u64>> {
    let mut out = HashSet::new();
    let dir = std::fs::read_dir("/proc/self/fd").context("listing /proc/self/fd (Linux only)")?;
    for entry in dir {
        let Ok(entry) = entry else { continue };
        // An fd closed between the listing and the readlink is simply gone.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
            .and_then(|s| s.parse().ok())
        {
            out.insert(inode);
        }
    }
    Ok(out)
}

/// Samples [`count_connections`] on an OS thread (so a runtime busy with the burst cannot delay
/// it) and keeps the peak of ESTABLISHED connections.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    samples: Arc<AtomicUsize>,
    error: Arc<Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(port: u16, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(0));
        let samples = Arc::new(AtomicUsize::new(0));
        let error = Arc::new(Mutex::new(None));
        let thread = {
            let (stop, peak, samples, error) =
                (stop.clone(), peak.clone(), samples.clone(), error.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match count_connections(port) {
                        Ok(c) => {
                            peak.fetch_max(c.established, Ordering::SeqCst);
                            samples.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            if let Ok(mut slot) = error.lock() {
                                *slot = Some(format!("{e:#}"));
                            }
                            return;
                        }
                    }
                    std::thread::sleep(every);
                }
            })
        };
        Sampler {
            stop,
            peak,
            samples,
            error,
            thread: Some(thread),
        }
    }

    /// Stops sampling: `(peak, samples)`.
    fn finish(mut self) -> Result<(usize, usize)> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| anyhow::anyhow!("the sampler thread panicked"))?;
        }
        if let Some(e) = self.error.lock().ok().and_then(|mut s| s.take()) {
            bail!("sampling connections failed: {e}");
        }
        Ok((
            self.peak.load(Ordering::SeqCst),
            self.samples.load(Ordering::SeqCst),
        ))
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Opens a store with `open`, loads it with [`ResourceOptions::concurrency`] callers of
/// `multi_put` + `multi_get` on a scratch dataset for [`ResourceOptions::burst`], and checks that
/// this process never held more than [`ResourceOptions::bound`] (and at least one) ESTABLISHED
/// connections to `127.0.0.1:server_port`; then drops the store (`open` must hand over the only
/// handle) and checks that within [`ResourceOptions::close_within`] the count is back to what it
/// was before the open, with no socket left open in any state.
///
/// Needs a multi-threaded runtime only for the burst's throughput; the sampler is an OS thread.
pub async fn connections_bounded_and_closed_on_drop<F, Fut>(
    open: F,
    server_port: u16,
    opts: &ResourceOptions,
) -> Result<ResourceReport>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Arc<dyn KvStore>, KvError>>,
{
    let mut report = ResourceReport {
        bound: opts.bound,
        concurrency: opts.concurrency,
        ..Default::default()
    };
    report.before = count_connections(server_port)?;
    let sampler = Sampler::start(server_port, opts.sample_every);

    let store = open().await.context("open the store")?;
    report.after_open = count_connections(server_port)?;

    let ds = format!("resources_{:08x}", rand::random::<u32>());
    create_for_setup(&store, &ds).await?;

    let calls_ok = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + opts.burst;
    let mut callers = Vec::with_capacity(opts.concurrency);
    for caller in 0..opts.concurrency {
        let (store, ds, calls_ok) = (store.clone(), ds.clone(), calls_ok.clone());
        let keys_per_call = opts.keys_per_call.max(1);
        callers.push(tokio::spawn(async move {
            let mut errors: BTreeMap<&'static str, usize> = BTreeMap::new();
            let mut round = 0u64;
            while Instant::now() < deadline {
                let keys: Vec<Bytes> = (0..keys_per_call)
                    .map(|j| Bytes::from(format!("c{caller}_k{j}")))
                    .collect();
                let ts = 1_700_000_000_000 + round as i64;
                let puts = keys
                    .iter()
                    .map(|k| {
                        PutRequest::new(&ds, k.clone(), Bytes::from(format!("v{round}")), Some(ts))
                    })
                    .collect();
                let mut clean = true;
                for r in store.multi_put(puts).await {
                    if let Err(e) = r {
                        clean = false;
                        *errors.entry(e.kind()).or_default() += 1;
                    }
                }
                if clean {
                    calls_ok.fetch_add(1, Ordering::SeqCst);
                }
                let gets = keys
                    .iter()
                    .map(|k| GetRequest::latest(&ds, k.clone()))
                    .collect();
                let mut clean = true;
                for r in store.multi_get(gets).await {
                    if let Err(e) = r.values {
                        clean = false;
                        *errors.entry(e.kind()).or_default() += 1;
                    }
                }
                if clean {
                    calls_ok.fetch_add(1, Ordering::SeqCst);
                }
                round += 1;
            }
            errors
        }));
    }
    for c in callers {
        for (kind, n) in c.await.context("a caller task panicked")? {
            *report.errors.entry(kind).or_default() += n;
        }
    }
    report.calls_ok = calls_ok.load(Ordering::SeqCst);
    // Cleanup, not under test.
    let _ = store.drop_dataset(&ds).await;
    let (peak, samples) = sampler.finish()?;
    report.peak = peak;
    report.samples = samples;

    // Every clone made here is gone with the callers; the caller handed over the only handle.
    let handles = Arc::strong_count(&store);
    ensure!(
        handles == 1,
        "{handles} handles to the store remain before the drop (the test must hand over the only one)"
    );
    let dropped = Instant::now();
    drop(store);
    loop {
        report.after_drop = count_connections(server_port)?;
        report.close_took = dropped.elapsed();
        if report.after_drop.established <= report.before.established
            && report.after_drop.open <= report.before.open
        {
            break;
        }
        if report.close_took > opts.close_within {
            bail!(
                "dropping the store did not close its connections within {:?}: {} established \
                 and {} open sockets to port {server_port} remain, {} and {} before it was opened \
                 ({report})",
                opts.close_within,
                report.after_drop.established,
                report.after_drop.open,
                report.before.established,
                report.before.open
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    ensure!(
        report.calls_ok > 0,
        "no call succeeded during the burst ({report})"
    );
    ensure!(
        report.peak > 0 && samples > 0,
        "no connection to port {server_port} was ever seen ({report})"
    );
    ensure!(
        report.peak <= opts.bound,
        "{} connections to port {server_port} at once, over the bound of {} ({report})",
        report.peak,
        opts.bound
    );
    Ok(report)
}

/// Creates the scratch dataset, retrying retryable errors: setup is not under test, and a
/// freshly started server on a busy machine can time out its first calls.
async fn create_for_setup(store: &Arc<dyn KvStore>, ds: &str) -> Result<()> {
    let mut last = None;
    for _ in 0..5 {
        match store.create(ds, &DatasetProps::snapshot()).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_retryable() => last = Some(e),
            Err(e) => return Err(e).with_context(|| format!("create {ds}")),
        }
    }
    Err(anyhow::anyhow!("create {ds} kept failing: {last:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp_rows() {
        let row = "   3: 0100007F:A1B2 0100007F:18EB 01 00000000:00000000 00:00000000 00000000  \
                   1000        0 123456 1 0000000000000000 20 4 30 10 -1";
        let e = parse_tcp_line(row).expect("a row");
        assert_eq!(e.remote_port, 0x18EB);
        assert_eq!(e.state, "01");
        assert_eq!(e.inode, 123456);
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
        assert!(parse_tcp_line(header).is_none());
        let v6 = "   0: 00000000000000000000000001000000:C350 00000000000000000000000001000000:1F90 08 \
                  00000000:00000000 00:00000000 00000000  1000 0 77 1 0000000000000000 20 4 0 10 -1";
        let e = parse_tcp_line(v6).expect("a v6 row");
        assert_eq!((e.remote_port, e.state, e.inode), (0x1F90, "08", 77));
    }

    /// A connection this process opens is counted, one the peer's side holds is not, and closing
    /// it brings the count back.
    #[test]
    fn counts_own_connections_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let before = count_connections(port).expect("count");
        assert_eq!(before, ConnCount::default());
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (server_side, _) = listener.accept().expect("accept");
        let during = count_connections(port).expect("count");
        // The accepted socket's remote port is the client's, so only the client side counts.
        assert_eq!(during.established, 1);
        assert_eq!(during.open, 1);
        drop(client);
        drop(server_side);
        let after = count_connections(port).expect("count");
        assert_eq!(after.established, 0);
        assert_eq!(after.open, 0);
    }
}
