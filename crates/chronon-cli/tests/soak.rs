//! `chronon soak` end to end: a short soak on the embedded stores must report operations, zero
//! lost or wrong values, memory figures, and exit 0 (issue 12).

use std::process::Command;

fn soak(url: &str, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chronon"))
        .args(["soak", url, "--duration", "3s", "--json"])
        .args(extra)
        .output()
        .expect("run chronon soak");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), report, stderr)
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
    let out = Command::new(env!("CARGO_BIN_EXE_chronon"))
        .args(["soak", "--duration", "1s"])
        .output()
        .expect("run chronon soak");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--launch"), "{err}");
}
