//! `chronon serve` under load: join fetches over HTTP with `wrk` (Debian's package) at 1, 16 and
//! 64 connections, single-key and 100-key, on RocksDB and Redis, next to the same fetches made
//! in-process through the `Fetcher` with as many concurrent callers, so the service's own cost
//! (HTTP, JSON, the router) shows as a ratio.
//!
//! ```text
//! cargo bench --workspace --bench serve            # CHRONON_SERVE_BENCH_SECS=5 per cell
//! ```
//!
//! The data is `examples/fetch_bench.rs`'s: 10,000 users, a join of two group-bys (6 features
//! each) with batch IRs and five streaming events per user after the batch end; every request
//! asks for different users. p50/p99 are per request (one HTTP request = one `fetch_joins` call
//! of 1 or 100 key maps); wrk and the service share this machine's cores with the store, as the
//! in-process callers share them with it. Prints a Markdown table. Needs `wrk` on PATH (else it
//! prints `SKIPPED wrk` and measures in-process only).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chronon_core::{KvStore, PutRequest};
use chronon_serving::fetcher::{FetchRequest, Fetcher, FetcherOptions};
use chronon_serving::groupby::{
    Accuracy, Aggregation, GroupBy, Join, JoinPart, Operation, SourceKind, DAY_MILLIS, HOUR_MILLIS,
};
use chronon_serving::metadata::{compute_and_upload, put_join};
use chronon_serving::stream::{Mutation, StreamingWriter, StructType, Value};
use hdrhistogram::Histogram;

const BATCH_END: i64 = 19_692 * DAY_MILLIS;
const USERS: usize = 10_000;
const JOIN: &str = "bench.join";
const CONNECTIONS: [usize; 3] = [1, 16, 64];
const KEYS: [usize; 2] = [1, 100];

fn query_time() -> i64 {
    BATCH_END + 2 * HOUR_MILLIS
}

fn group_by(name: &str) -> Result<GroupBy> {
    let a = |op, w: &[&str]| Aggregation::new("amount", op, w).map_err(anyhow::Error::msg);
    Ok(GroupBy {
        derivations: Vec::new(),
        name: name.into(),
        keys: vec!["user_id".into()],
        schema: StructType::from_json_str(
            r#"{"name": "ev", "fields": [{"name": "user_id", "type": "string"},
            {"name": "amount", "type": "long"}, {"name": "ts", "type": "long"}]}"#,
        )?,
        time_column: "ts".into(),
        accuracy: Accuracy::Temporal,
        source: SourceKind::Events,
        aggregations: vec![
            a(Operation::Sum, &["1d", "7d", "30d"])?,
            a(Operation::Count, &["1d", "7d"])?,
            a(Operation::Average, &[])?,
        ],
    })
}

/// Batch IRs (20 events per user before the batch end) and 5 streaming events per user after
/// it, for both group-bys, and the join.
async fn populate(store: &Arc<dyn KvStore>) -> Result<()> {
    let gbs = [group_by("bench.purchases")?, group_by("bench.returns")?];
    for gb in &gbs {
        let mut rows = Vec::new();
        for u in 0..USERS {
            for i in 0..20 {
                let ts = BATCH_END - (i + 1) * 37 * HOUR_MILLIS;
                rows.push(vec![
                    Value::String(format!("u{u}")),
                    Value::Long(i),
                    Value::Long(ts),
                ]);
            }
        }
        compute_and_upload(&**store, gb, BATCH_END, rows).await?;
        let writer = StreamingWriter::new(
            Arc::new(chronon_serving::stream::JsonDecoder::new(gb.schema.clone())),
            store.clone(),
            gb.writer_options(),
        )?;
        let schema = Arc::new(gb.schema.clone());
        let mut puts = Vec::new();
        for u in 0..USERS {
            for i in 0..5 {
                let row = vec![
                    Value::String(format!("u{u}")),
                    Value::Long(i),
                    Value::Long(BATCH_END + (i + 1) * 600_000),
                ];
                for p in writer
                    .encode(&Mutation::insert(schema.clone(), row)?)
                    .map_err(anyhow::Error::msg)?
                {
                    puts.push(PutRequest::new(
                        writer.dataset(),
                        p.key,
                        p.value,
                        Some(p.ts),
                    ));
                }
            }
        }
        for chunk in puts.chunks(5_000) {
            for r in store.multi_put(chunk.to_vec()).await {
                r?;
            }
        }
    }
    let join = Join {
        derivations: Vec::new(),
        name: JOIN.into(),
        parts: gbs
            .iter()
            .map(|g| JoinPart {
                group_by: g.name.clone(),
                key_mapping: Default::default(),
                prefix: None,
            })
            .collect(),
    };
    put_join(&**store, &join).await?;
    Ok(())
}

/// One cell's figures.
#[derive(Debug, Clone, Copy)]
struct Stat {
    p50_ms: f64,
    p99_ms: f64,
    rps: f64,
}

fn users(seed: usize, keys: usize) -> Vec<String> {
    (0..keys)
        .map(|i| format!("u{}", (seed * 7919 + i * 97) % USERS))
        .collect()
}

/// `conns` callers, each fetching `keys` users per call for `secs`, through one shared Fetcher.
async fn in_process(store: Arc<dyn KvStore>, conns: usize, keys: usize, secs: u64) -> Result<Stat> {
    let fetcher = Arc::new(Fetcher::new(store, FetcherOptions::default()));
    let warm = fetcher
        .fetch_joins(vec![
            FetchRequest::new(JOIN, [("user_id", "u1")]).at(query_time())
        ])
        .await;
    if let Some(Err(e)) = warm.first().map(|r| &r.values) {
        bail!("in-process warm-up fetch failed: {e}");
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let fetcher = fetcher.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3)?;
            let mut seed = c * 1_000_003;
            while Instant::now() < deadline {
                seed += 1;
                let requests = users(seed, keys)
                    .into_iter()
                    .map(|u| FetchRequest::new(JOIN, [("user_id", u)]).at(query_time()))
                    .collect();
                let t = Instant::now();
                let responses = fetcher.fetch_joins(requests).await;
                h.record(t.elapsed().as_micros() as u64)?;
                if let Some(bad) = responses.iter().find(|r| r.values.is_err()) {
                    bail!("fetch failed: {:?}", bad.values);
                }
            }
            Ok::<_, anyhow::Error>(h)
        }));
    }
    let mut all = Histogram::<u64>::new(3)?;
    for t in tasks {
        all.add(t.await??)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Stat {
        p50_ms: all.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: all.value_at_quantile(0.99) as f64 / 1000.0,
        rps: all.len() as f64 / elapsed,
    })
}

/// A `chronon serve` child on a free port (killed by its pid on drop).
struct Service {
    child: Child,
    base: String,
}

impl Service {
    fn start(url: &str) -> Result<Service> {
        // RocksDB's lock may outlive the in-process store by a moment: retry the open.
        for attempt in 0..20 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_chronon"))
                .args([
                    "serve",
                    url,
                    "--listen",
                    "127.0.0.1:0",
                    "--max-batch",
                    "1000",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .context("starting chronon serve")?;
            let mut line = String::new();
            if let Some(out) = child.stdout.take() {
                BufReader::new(out).read_line(&mut line)?;
            }
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                return Ok(Service {
                    base: addr.to_string(),
                    child,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
            if attempt == 19 {
                bail!("chronon serve {url} did not start");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        bail!("unreachable")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A wrk Lua script that POSTs 256 different bodies of `keys` users each, in turn.
fn wrk_script(keys: usize) -> String {
    let mut s = String::from(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nlocal bodies = {\n",
    );
    for seed in 0..256 {
        let body: Vec<String> = users(seed * 31 + 7, keys)
            .into_iter()
            .map(|u| format!("{{\"user_id\":\"{u}\"}}"))
            .collect();
        // A level-1 long string: `[=[ ... ]=]` holds the JSON's brackets as they are.
        s.push_str(&format!("  [=[[{}]]=],\n", body.join(",")));
    }
    s.push_str(
        "}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  \
         return wrk.format(nil, nil, nil, bodies[(i % #bodies) + 1])\nend\n",
    );
    s
}

fn parse_latency(text: &str) -> Option<f64> {
    let t = text.trim();
    let (n, scale) = if let Some(v) = t.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = t.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = t.strip_suffix('s') {
        (v, 1000.0)
    } else {
        return None;
    };
    n.trim().parse::<f64>().ok().map(|v| v * scale)
}

fn run_wrk(service: &Service, conns: usize, keys: usize, secs: u64) -> Result<Stat> {
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("fetch.lua");
    std::fs::write(&script, wrk_script(keys))?;
    let url = format!(
        "{}/v1/features/join/{JOIN}?at={}",
        service.base,
        query_time()
    );
    let out = Command::new("wrk")
        .arg(format!("-t{}", conns.min(2)))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .args(["--latency", "-s"])
        .arg(&script)
        .arg(&url)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    if text.contains("Non-2xx or 3xx responses") || text.contains("Socket errors") {
        bail!("wrk saw failed requests:\n{text}");
    }
    let mut p50 = None;
    let mut p99 = None;
    let mut rps = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("50%"), Some(v)) => p50 = parse_latency(v),
            (Some("99%"), Some(v)) => p99 = parse_latency(v),
            (Some("Requests/sec:"), Some(v)) => rps = v.parse().ok(),
            _ => {}
        }
    }
    match (p50, p99, rps) {
        (Some(p50_ms), Some(p99_ms), Some(rps)) => Ok(Stat {
            p50_ms,
            p99_ms,
            rps,
        }),
        _ => bail!("cannot read wrk's output:\n{text}"),
    }
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

async fn bench_backend(name: &str, url: &str, secs: u64, rows: &mut Vec<String>) -> Result<()> {
    eprintln!("{name}: loading {USERS} users ...");
    let mut local = Vec::new();
    {
        let store = chronon_serving::store_url::open_store(url).await?;
        populate(&store).await?;
        for keys in KEYS {
            for conns in CONNECTIONS {
                eprintln!("{name}: in-process {keys} key(s), {conns} caller(s)");
                local.push(in_process(store.clone(), conns, keys, secs).await?);
            }
        }
    }
    if !on_path("wrk") {
        eprintln!("SKIPPED wrk: not on PATH (apt-get install wrk); in-process figures only");
    }
    let service = if on_path("wrk") {
        Some(Service::start(url)?)
    } else {
        None
    };
    let mut i = 0;
    for keys in KEYS {
        for conns in CONNECTIONS {
            let l = local[i];
            i += 1;
            let http = match &service {
                Some(s) => {
                    eprintln!("{name}: HTTP {keys} key(s), {conns} connection(s)");
                    Some(run_wrk(s, conns, keys, secs)?)
                }
                None => None,
            };
            let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
            rows.push(format!(
                "| {name} | {keys} | {conns} | {} | {} | {} | {:.2} | {:.2} | {:.0} | {} | {} |",
                cell(http.map(|h| h.p50_ms)),
                cell(http.map(|h| h.p99_ms)),
                http.map_or("-".into(), |h| format!("{:.0}", h.rps)),
                l.p50_ms,
                l.p99_ms,
                l.rps,
                cell(http.map(|h| h.p99_ms / l.p99_ms)),
                cell(http.map(|h| l.rps / h.rps)),
            ));
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let secs: u64 = std::env::var("CHRONON_SERVE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let mut rows = Vec::new();
    let tmp = tempfile::tempdir()?;
    let rocks = format!("rocks://{}", tmp.path().join("bench").display());
    bench_backend("rocks", &rocks, secs, &mut rows).await?;
    match conformance::launch::redis::redis().await {
        Some(server) => {
            bench_backend("redis", &server.url, secs, &mut rows).await?;
        }
        None => eprintln!("(redis skipped)"),
    }
    println!(
        "| store | keys/request | connections | HTTP p50 ms | HTTP p99 ms | HTTP req/s | \
         in-process p50 ms | in-process p99 ms | in-process req/s | p99 HTTP/in-process | \
         req/s in-process/HTTP |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}
