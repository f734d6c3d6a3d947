//! `chronon soak` end to end: a short soak on the embedded stores must report operations, zero
//! lost or wrong values, memory figures, and exit 0.

mod common;
use common::run;

fn soak(url: &str, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec!["soak", url, "--duration", "3s", "--json"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run(&args);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    (code, report, stderr)
}

fn check(code: i32, report: &serde_json::Value, stderr: &str) {
    println!("{report:#}");
    assert_eq!(code, 0, "{report:#}\n{stderr}");
    assert_eq!(report["passed"], true);
    assert_eq!(report["lost"], 0);
    assert_eq!(report["wrong"], 0);
    assert!(report["ops"].as_u64().unwrap() > 1000, "{report:#}");
    assert!(report["puts"].as_u64().unwrap() > 0);
    assert!(report["gets"].as_u64().unwrap() > 0);
    assert!(report["final_keys_checked"].as_u64().unwrap() > 0);
    assert!(report["rss_start_kib"].as_u64().unwrap() > 0);
    assert!(report["hwm_end_kib"].as_u64().unwrap() >= report["rss_end_kib"].as_u64().unwrap());
}

#[test]
fn short_soak_on_memory_loses_nothing() {
    let (code, report, stderr) = soak("memory://soak", &["--concurrency", "64"]);
    check(code, &report, &stderr);
    assert_eq!(report["backend"], "memory");
    assert_eq!(report["concurrency"], 64);
}

#[cfg(feature = "rocks")]
#[test]
fn short_soak_on_rocks_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocks://{}", dir.path().display());
    let (code, report, stderr) = soak(&url, &["--concurrency", "16"]);
    check(code, &report, &stderr);
    assert_eq!(report["backend"], "rocks");
}

#[test]
fn soak_needs_a_url_or_launch() {
    let (code, _, err) = run(&["soak", "--duration", "1s"]);
    assert_eq!(code, 1);
    assert!(err.contains("--launch"), "{err}");
}

/// `--metrics-out`: the file holds the adapters' per-call metrics in Prometheus' text format,
/// and its call counts agree with the soak's own count of `multi_get`/`multi_put` calls.
#[cfg(feature = "rocks")]
#[test]
fn soak_exports_the_adapter_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocks://{}", dir.path().join("db").display());
    let file = dir.path().join("soak.prom");
    let file_arg = file.display().to_string();
    let (code, report, stderr) = soak(&url, &["--concurrency", "8", "--metrics-out", &file_arg]);
    check(code, &report, &stderr);
    let text = std::fs::read_to_string(&file).unwrap();
    let value = |name: &str, labels: &[&str]| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    let calls: f64 = ["multi_get", "multi_put"]
        .iter()
        .map(|op| {
            let op = format!("operation=\"{op}\"");
            value("chronon_kv_calls_total", &["backend=\"rocks\"", &op])
        })
        .sum();
    assert_eq!(calls as u64, report["calls"].as_u64().unwrap(), "{text}");
    let timed = value(
        "chronon_kv_call_duration_seconds_count",
        &["backend=\"rocks\"", "operation=\"multi_get\""],
    );
    assert!(timed > 0.0, "no multi_get latency recorded:\n{text}");
    assert!(text.contains("# HELP chronon_kv_calls_total"), "{text}");
    assert!(!dir.path().join("soak.prom.tmp").exists());
}
