//! Serving end to end through the `chronon` binary on the embedded RocksDB store, as the README
//! shows it: `upload` a group-by from raw events and a join, `fetch`, `stream` new events,
//! `fetch` again and see the features change, with the files in `examples/serving/`. Feature
//! values are checked against sums worked out by hand from those events.

#![cfg(feature = "rocks")]

use std::path::Path;

/// 2023-12-01T00:00:00Z: the batch end of `--end-date 2023-11-30`.
const B: i64 = 1_701_388_800_000;
const HOUR: i64 = 3_600_000;

mod common;
use common::run as chronon;

fn ok(args: &[&str]) -> String {
    let (code, out, err) = chronon(args);
    assert_eq!(code, 0, "chronon {args:?} failed:\n{out}\n{err}");
    out
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/serving")
        .join(name)
        .display()
        .to_string()
}

fn fetch(url: &str, at: i64) -> serde_json::Value {
    let out = ok(&[
        "fetch",
        url,
        "--join",
        "shop.features",
        "--keys",
        "user_id=5",
        "--at",
        &at.to_string(),
    ]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("fetch printed no JSON ({e}): {out}"))
}

/// The README's batch upload: `shop.purchases.v1` from `purchases.csv` as of the end of
/// 2023-11-30 (batch end `B`); its output.
fn upload_purchases(url: &str) -> String {
    ok(&[
        "upload",
        url,
        "--group-by",
        &example("purchases.yaml"),
        "--events",
        &example("purchases.csv"),
        "--end-date",
        "2023-11-30",
        "--quiet",
    ])
}

/// `chronon [--log-format FORMAT] stream URL ...`: the README's CSV stream of quickstart
/// purchases into `shop.purchases.v1`, keyed by `keys`.
fn stream(url: &str, keys: &str, file: &str, log_format: Option<&str>) -> (i32, String, String) {
    let mut args = Vec::new();
    if let Some(format) = log_format {
        args.extend(["--log-format", format]);
    }
    args.extend([
        "stream",
        url,
        "--decoder",
        "csv",
        "--quickstart-columns",
        "user_id,purchase_price,ts",
        "--group-by",
        "shop.purchases.v1",
        "--keys",
        keys,
        file,
    ]);
    chronon(&args)
}

#[test]
fn upload_fetch_stream_fetch_on_rocks() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocks://{}", dir.path().join("db").display());
    // The files the README's "Serving features" commands use. User 5 bought for 10 one day
    // before the batch end, 20 ten days before and 30 forty days before (out of every window);
    // user 6 must not leak into user 5's features.
    let join = example("join.yaml");
    let out = upload_purchases(&url);
    assert!(out.contains("uploaded 2 keys"), "{out}");
    ok(&["upload", &url, "--join", &join]);

    let before = fetch(&url, B + HOUR);
    let name = |f: &str| format!("shop_purchases_v1_purchase_price_{f}");
    assert_eq!(before[name("sum_3d")], 10, "{before}");
    assert_eq!(before[name("sum_30d")], 30, "{before}");
    assert_eq!(before[name("count_30d")], 2, "{before}");

    // Two purchases (100 at +2 h, 7 at +3 h) stream in after the batch end; the stored
    // definition decides the columns written.
    let new_purchases = example("new_purchases.csv");
    let (code, out, err) = stream(&url, "user_id", &new_purchases, None);
    assert_eq!(code, 0, "chronon stream failed:\n{out}\n{err}");
    let after = fetch(&url, B + 4 * HOUR);
    assert_eq!(after[name("sum_3d")], 117, "{after}");
    assert_eq!(after[name("sum_30d")], 137, "{after}");
    assert_eq!(after[name("count_30d")], 4, "{after}");
    // A query time before the streamed events sees the batch values only.
    assert_eq!(fetch(&url, B + HOUR)[name("sum_30d")], 30);

    // Keys that disagree with the stored definition are refused before anything is written.
    let (code, _, err) = stream(&url, "purchase_price", &new_purchases, None);
    assert_eq!(code, 1);
    assert!(err.contains("differ from the keys user_id"), "{err}");
    assert_eq!(fetch(&url, B + 4 * HOUR)[name("count_30d")], 4);

    // An unknown join is a failed request: exit 1 and the error as JSON naming it.
    let (code, out, _) = chronon(&["fetch", &url, "--join", "nope", "--keys", "user_id=5"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("nope"), "{out}");
}

/// Logs a service can ship: a bad stream line is logged as a warning; with `--log-format json`
/// each log line is one JSON object, and the text format carries no colour codes when stderr is
/// not a terminal (a pipe here), as with `chronon stream ... 2>log`.
#[test]
fn stream_warnings_are_plain_in_a_pipe_and_json_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rocks://{}", dir.path().join("db").display());
    upload_purchases(&url);
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "5,not-a-price,1701396000000\n5,7,1701399600000\n").unwrap();
    let bad = bad.display().to_string();
    for format in ["text", "json"] {
        let (code, out, err) = stream(&url, "user_id", &bad, Some(format));
        assert_eq!(
            code, 0,
            "{format}: a bad line is skipped, not fatal:\n{out}\n{err}"
        );
        assert!(
            !err.contains('\u{1b}'),
            "{format}: colour codes in a pipe:\n{err}"
        );
        let warnings: Vec<&str> = err.lines().filter(|l| l.contains("bad message:")).collect();
        assert_eq!(
            warnings.len(),
            1,
            "{format}: one warning for the one bad line:\n{err}"
        );
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(warnings[0])
                .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {err}"));
            assert_eq!(v["level"], "WARN", "{v}");
            assert_eq!(v["fields"]["line"], 1, "{v}");
            assert!(
                v["fields"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("bad message"),
                "{v}"
            );
        } else {
            assert!(warnings[0].contains("WARN"), "{err}");
        }
    }
}
