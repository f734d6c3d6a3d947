//! Contract section `helpers` (`chronon-core/CONTRACT.md`, "Helpers"): `get`/`put`, strings, and
//! Chronon's `StringArrayConverter` format.

use anyhow::{ensure, Result};
use chronon_core::KvStoreExt;

use super::{b, T0};
use crate::runner::Ctx;

/// Contract, Helpers: `get`/`put` and `get_string`/`put_string` round-trip.
pub(crate) async fn get_and_put_round_trip(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    store.put(&ds, b("k"), b("v"), Some(T0)).await?;
    let got = store.get(&ds, b("k")).await?;
    ensure!(
        got.map(|v| (v.bytes, v.millis)) == Some((b("v"), T0)),
        "get after put"
    );
    ensure!(
        store.get(&ds, b("other")).await?.is_none(),
        "missing key is not None"
    );
    Ok(())
}

/// Contract, Helpers: `get`/`put` and `get_string`/`put_string` round-trip.
pub(crate) async fn string_round_trip(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    store
        .put_string(&ds, "join/name", "ünïcödé ✓", Some(T0))
        .await?;
    let got = store.get_string(&ds, "join/name").await?;
    ensure!(
        got.as_deref() == Some("ünïcödé ✓"),
        "get_string returned {got:?}"
    );
    Ok(())
}

/// Contract, Helpers: `["a", "bc", "", "é,x"]` is stored as exactly `YQ==,YmM=,,w6kseA==`.
pub(crate) async fn string_array_matches_chronon_bytes(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    let values = vec![
        "a".to_string(),
        "bc".to_string(),
        String::new(),
        "é,x".to_string(),
    ];
    store
        .put_string_array(&ds, "arr", &values, Some(T0))
        .await?;
    // Chronon's StringArrayConverter: Base64 of each string's UTF-8, joined with ','.
    let raw = store.get(&ds, b("arr")).await?.map(|v| v.bytes);
    ensure!(
        raw == Some(b("YQ==,YmM=,,w6kseA==")),
        "stored bytes {raw:?} differ from Chronon's format"
    );
    Ok(())
}

/// Contract, Helpers: Arrays round-trip, commas and non-ASCII included.
pub(crate) async fn string_array_round_trip(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    let values: Vec<String> = vec!["team.join_v1".into(), "with,comma".into(), "ünï".into()];
    store
        .put_string_array(&ds, "arr", &values, Some(T0))
        .await?;
    let got = store.get_string_array(&ds, "arr").await?;
    ensure!(
        got.as_ref() == Some(&values),
        "get_string_array returned {got:?}"
    );
    Ok(())
}
