//! The `chronon` binary end to end: kv round trips, clear errors, and the shape of `compare`'s
//! reports (never a timing threshold).

#![cfg(feature = "rocks")]

mod common;
use common::run;

#[test]
fn kv_put_then_get_binary_key_on_rocks() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocks://{}", dir.path().display());
    assert_eq!(run(&["kv", "create", &url, "DS"]).0, 0);
    let (code, _, err) = run(&[
        "kv",
        "put",
        &url,
        "DS",
        "hex:00ff",
        "v",
        "--ts",
        "1700000000000",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["kv", "get", &url, "DS", "hex:00ff"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "hex:00ff\t1700000000000\tv");
    let (code, out, _) = run(&["kv", "get", "--json", &url, "DS", "hex:00ff"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["value"], "v");
    assert_eq!(v["ts"], 1_700_000_000_000i64);
}

/// The two commands on a fresh directory: `kv put` creates the missing dataset (with a
/// note on stderr), `kv get` prints the value.
#[test]
fn kv_put_creates_a_missing_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocks://{}", dir.path().join("x").display());
    let (code, _, err) = run(&["kv", "put", &url, "DS", "hex:00ff", "v"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("created dataset DS (Snapshot)"), "{err}");
    let (code, out, err) = run(&["kv", "get", &url, "DS", "hex:00ff"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("hex:00ff\t") && out.trim_end().ends_with("\tv"),
        "{out}"
    );
    // A `_STREAMING` name gets a time series; the second put finds it: no note.
    let (code, _, err) = run(&["kv", "put", &url, "EV_STREAMING", "k", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("created dataset EV_STREAMING (TimeSeries)"),
        "{err}"
    );
    let (code, _, err) = run(&["kv", "put", &url, "EV_STREAMING", "k", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("created"), "{err}");
}

/// `chronon kv list ... | head`: a reader that closes the pipe before the output comes ends the
/// command quietly with success, not with a panic.
#[test]
fn a_closed_output_pipe_ends_a_read_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocks://{}", dir.path().display());
    for k in ["a", "b", "c"] {
        assert_eq!(run(&["kv", "put", &url, "DS", k, "v"]).0, 0);
    }
    let reads: [&[&str]; 2] = [&["kv", "list", &url, "DS"], &["kv", "get", &url, "DS", "a"]];
    for args in reads {
        let mut child = common::chronon()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before anything is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn bad_input_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocks://{}", dir.path().display());
    run(&["kv", "create", &url, "DS"]);
    let (code, _, err) = run(&["kv", "put", &url, "DS", "", "v"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: invalid key") && err.contains("DS"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let (code, _, err) = run(&["kv", "get", &url, "NOPE", "k"]);
    assert_eq!(code, 1);
    assert!(err.contains("NOPE"), "{err}");
    let (code, _, err) = run(&["kv", "get", "ftp://x", "DS", "k"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown store scheme"), "{err}");
    assert_eq!(run(&["kv", "get", &url]).0, 2, "bad usage exits 2");
}

/// A build without the `redis` feature names the feature to turn on, in one line.
#[cfg(not(feature = "redis"))]
#[test]
fn a_compiled_out_backend_is_one_clear_line() {
    let (code, _, err) = run(&["kv", "get", "redis://127.0.0.1:1/0", "DS", "k"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "error: invalid redis configuration: redis:// support is not compiled in (build with --features redis)"
    );
}

#[test]
fn compare_writes_json_and_html_with_figures_for_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let rocks = format!("rocks://{}", dir.path().join("db").display());
    let (code, stdout, err) = run(&[
        "compare",
        "--quick",
        "--no-suite",
        "--cell-ms",
        "20",
        "--out",
        out.to_str().unwrap(),
        "memory://cmp",
        &rocks,
    ]);
    assert_eq!(code, 0, "{stdout}\n{err}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
    let backends = json["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 2);
    for b in backends {
        let cells = b["cells"].as_array().unwrap();
        // On a loaded machine the 60 s budget may leave the last (largest) cells out: each is
        // then named in the report, never silently missing.
        let skipped = b["skipped"].as_array().unwrap();
        assert_eq!(skipped.len() as u64, b["skipped_cells"].as_u64().unwrap());
        assert!(skipped.len() <= 4, "{}: {skipped:?}", b["name"]);
        assert_eq!(
            cells.len() + skipped.len(),
            3 * 4 * 2 * 2,
            "{}: one cell per op x batch x callers x value size",
            b["name"]
        );
        for c in cells {
            assert!(c["adapter"]["keys"].as_u64().unwrap() > 0, "{c}");
            assert!(
                c["adapter"]["p99_us"].as_u64().unwrap()
                    >= c["adapter"]["p50_us"].as_u64().unwrap()
            );
        }
        assert_eq!(b["bulk"].as_array().unwrap().len(), 2);
    }
    // RocksDB has a raw-driver baseline for every operation, and each ratio comes with the
    // spread of its repetitions.
    let rocks_cells = backends[1]["cells"].as_array().unwrap();
    for c in rocks_cells {
        let ratio = |f: &str| c[f].as_f64().unwrap_or_else(|| panic!("no {f}: {c}"));
        assert!(ratio("ratio_min") <= ratio("ratio") && ratio("ratio") <= ratio("ratio_max"));
        assert_eq!(c["adapter"]["runs"].as_array().unwrap().len(), 3, "{c}");
        assert_eq!(c["raw"]["runs"].as_array().unwrap().len(), 3, "{c}");
        // Each side's CPU per key: an embedded store's work is this process's, never zero.
        for side in ["adapter", "raw"] {
            let cpu = c[side]["cpu_us_per_key"].as_f64();
            assert!(cpu.is_some_and(|v| v > 0.0), "{side}: {c}");
        }
    }
    let html = std::fs::read_to_string(out.join("compare.html")).unwrap();
    assert!(html.matches("<svg").count() >= 12, "charts missing");
    assert!(html.contains("<polyline"), "no data lines drawn");
}

/// Measuring (or profiling) one cell: the matrix narrows to the cells asked for, and one side
/// alone runs without a ratio.
#[test]
fn compare_runs_only_the_cells_and_side_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = format!("rocks://{}", dir.path().join("db").display());
    let cells_of = |side: &str| {
        let out = dir.path().join(side);
        let (code, stdout, err) = run(&[
            "compare",
            "--quick",
            "--no-suite",
            "--cell-ms",
            "20",
            "--ops",
            "get_latest,put",
            "--batches",
            "10",
            "--callers",
            "2",
            "--value-sizes",
            "64",
            "--only-side",
            side,
            "--out",
            out.to_str().unwrap(),
            &rocks,
        ]);
        assert_eq!(code, 0, "{stdout}\n{err}");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("compare.json")).unwrap()).unwrap();
        json["backends"][0]["cells"].as_array().unwrap().clone()
    };
    let adapter_only = cells_of("adapter");
    assert_eq!(adapter_only.len(), 2, "{adapter_only:?}");
    for (c, op) in adapter_only.iter().zip(["get_latest", "put"]) {
        assert_eq!(
            (c["op"].as_str(), c["batch"].as_u64()),
            (Some(op), Some(10)),
            "{c}"
        );
        assert_eq!(
            (c["callers"].as_u64(), c["value_size"].as_u64()),
            (Some(2), Some(64))
        );
        assert!(c["adapter"]["keys"].as_u64().unwrap() > 0, "{c}");
        assert!(c["raw"].is_null() && c["ratio"].is_null(), "{c}");
    }
    let raw_only = cells_of("raw");
    assert_eq!(raw_only.len(), 2);
    for c in &raw_only {
        assert_eq!(c["adapter"]["keys"].as_u64(), Some(0), "{c}");
        assert!(c["raw"]["keys"].as_u64().unwrap() > 0, "{c}");
        assert!(c["ratio"].is_null(), "{c}");
    }
}
