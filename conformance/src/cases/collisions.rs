//! Contract section `near_collisions` (`chronon-core/CONTRACT.md`, "Near-collisions"): keys and
//! dataset names are compared byte for byte. Real adapters push both through encodings (UTF-8
//! strings, trimmed or case-folded identifiers, C strings, prefix scans); any mapping that merges
//! two of the names below merges two users' data.

use anyhow::{ensure, Result};
use bytes::Bytes;
use chronon_core::{DatasetProps, GetRequest, KvStore, KvStoreExt, PutRequest};

use super::{b, expect_err, ok_values, retry, T0};
use crate::runner::Ctx;

/// Keys that plausible mappings merge: whitespace trimmed, case folded, invalid UTF-8 replaced
/// by U+FFFD (0x80 and 0xff both), Latin-1 vs UTF-8 `é`, and C strings (trailing 0x00 cut).
fn edge_keys() -> Vec<Bytes> {
    [
        &b"key"[..],
        b" key",
        b"key ",
        b"key\t",
        b"\nkey",
        b"KEY",
        b"Key",
        b"key\0",
        b"key\0\0",
        b"\0key",
        b"k\x80y",
        b"k\xffy",
        b"k\xc3\xa9y",
        b"k\xe9y",
    ]
    .into_iter()
    .map(b)
    .collect()
}

fn sorted(mut keys: Vec<Bytes>) -> Vec<Bytes> {
    keys.sort();
    keys
}

/// Contract, Near-collisions: keys that differ only in leading/trailing whitespace, in case, in
/// one byte >= 0x80, or by trailing 0x00 bytes are different keys: each reads back its own
/// value, and `list` returns every one of them byte for byte.
pub(crate) async fn keys_differing_at_edges_stay_apart(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    for ds in [cx.snapshot().await?, cx.time_series().await?] {
        let keys = edge_keys();
        let puts = keys
            .iter()
            .enumerate()
            .map(|(i, k)| PutRequest::new(&ds, k.clone(), b(format!("value {i}")), Some(T0)))
            .collect();
        retry::put_all(cx, &store, puts).await?;
        let got = store
            .multi_get(
                keys.iter()
                    .map(|k| GetRequest::latest(&ds, k.clone()))
                    .collect(),
            )
            .await;
        for (i, (k, r)) in keys.iter().zip(&got).enumerate() {
            let v = ok_values(r)?;
            ensure!(
                v.len() == 1 && v[0].bytes == b(format!("value {i}")),
                "key {k:?} in {ds} holds {v:?}, want value {i}"
            );
        }
        let listed = retry::list_all(cx, &store, &ds, 5).await?;
        let listed_keys = sorted(listed.iter().map(|(k, _)| k.clone()).collect());
        ensure!(
            listed_keys == sorted(keys.clone()),
            "list of {ds} returned keys {listed_keys:?}, want exactly {:?}",
            sorted(keys.clone())
        );
        for (k, v) in &listed {
            let i = keys.iter().position(|x| x == k).unwrap_or(usize::MAX);
            ensure!(
                v.bytes == b(format!("value {i}")),
                "list of {ds}: key {k:?} listed with {:?}",
                v.bytes
            );
        }
    }
    Ok(())
}

/// Contract, Near-collisions: dataset names that are prefixes of each other (`x`, `x_BATCH`,
/// `x_BATCH2`) or differ only in case (`x_BATCH`, `X_BATCH`) are different datasets, used at the
/// same time: each holds its own data, lists only its own keys, and dropping one leaves the
/// others whole. A database whose identifiers ignore case may refuse the case twin with
/// `InvalidDataset` instead, but never alias it.
pub(crate) async fn dataset_names_prefix_and_case_stay_apart(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let base = cx.name("");
    let with_suffix = cx.also_drop(format!("{base}_BATCH"));
    let longer = cx.also_drop(format!("{base}_BATCH2"));
    let upper = cx.also_drop(with_suffix.to_uppercase());
    let mut names = vec![base, with_suffix, longer];
    for name in &names {
        retry::create(cx, &store, name, &DatasetProps::snapshot()).await?;
    }
    // A database whose identifiers ignore case (DynamoDB Local's SQLite tables) may refuse the
    // case twin with `InvalidDataset`; then it must not exist at all, rather than alias its twin.
    match store.create(&upper, &DatasetProps::snapshot()).await {
        Ok(()) => names.push(upper),
        Err(e) if e.kind() == "InvalidDataset" => {
            expect_err(
                &store.dataset_props(&upper).await,
                "DatasetNotFound",
                "dataset_props of a refused case twin",
            )?;
            expect_err(
                &store.put(&upper, b("shared"), b("twin"), Some(T0)).await,
                "DatasetNotFound",
                "put into a refused case twin",
            )?;
            cx.note(format!(
                "the backend refuses names that differ only in case: {e}"
            ));
        }
        Err(e) => return Err(e.into()),
    }
    for name in &names {
        let puts = vec![
            PutRequest::new(name, b("shared"), b(name), Some(T0)),
            PutRequest::new(name, b(format!("only-{name}")), b(name), Some(T0)),
        ];
        retry::put_all(cx, &store, puts).await?;
    }
    check_each(&store, cx, &names).await?;
    // Drop the shortest (a prefix of two others), then the one with a case twin.
    store.drop_dataset(&names[0]).await?;
    expect_err(
        &store.dataset_props(&names[0]).await,
        "DatasetNotFound",
        "dataset_props after drop",
    )?;
    check_each(&store, cx, &names[1..]).await?;
    store.drop_dataset(&names[1]).await?;
    check_each(&store, cx, &names[2..]).await?;
    Ok(())
}

/// Each of `names` answers `shared` with its own name and lists exactly its two keys.
async fn check_each(store: &std::sync::Arc<dyn KvStore>, cx: &Ctx, names: &[String]) -> Result<()> {
    for name in names {
        let got = store
            .multi_get(vec![GetRequest::latest(name, b("shared"))])
            .await;
        let v = ok_values(&got[0])?;
        ensure!(
            v.len() == 1 && v[0].bytes == b(name),
            "dataset {name} answers key `shared` with {v:?}"
        );
        let listed = retry::list_all(cx, store, name, 10).await?;
        let keys = sorted(listed.iter().map(|(k, _)| k.clone()).collect());
        ensure!(
            keys == sorted(vec![b(format!("only-{name}")), b("shared")])
                && listed.iter().all(|(_, v)| v.bytes == b(name)),
            "dataset {name} lists {:?}",
            listed
                .iter()
                .map(|(k, v)| (k.clone(), v.bytes.clone()))
                .collect::<Vec<_>>()
        );
        let props = store.dataset_props(name).await?;
        ensure!(
            props.kind == chronon_core::DatasetKind::Snapshot,
            "dataset {name} now has kind {props:?}"
        );
    }
    Ok(())
}
