//! Contract section `keys_values` (`chronon-core/CONTRACT.md`, "Keys and values"): binary bytes,
//! key lengths, value limits.

use anyhow::{ensure, Result};
use bytes::Bytes;
use chronon_core::{GetRequest, KvStoreExt, PutRequest};

use super::{b, expect_err, expect_ok, ok_values, pairs, T0};
use crate::runner::Ctx;

/// Contract, Keys and values: Keys and values are arbitrary bytes: `0x00`, `0xFF`, invalid UTF-8,
/// separators round-trip exactly, in both kinds.
pub(crate) async fn binary_bytes_round_trip(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let nasty: Vec<Vec<u8>> = vec![
        vec![0x00],
        vec![0xFF],
        vec![0x00, 0x00, 0xFF, 0x00],
        vec![0xC3, 0x28, 0xA0, 0xA1], // invalid UTF-8
        vec![0xFF; 64],
        b"with:colon|pipe\n\r\t".to_vec(),
        (0u8..=255).collect(),
    ];
    for ds in [cx.snapshot().await?, cx.time_series().await?] {
        let puts = nasty
            .iter()
            .map(|k| {
                PutRequest::new(
                    &ds,
                    Bytes::from(k.clone()),
                    Bytes::from([k.as_slice(), &[0, 0xFF]].concat()),
                    Some(T0),
                )
            })
            .collect();
        for r in store.multi_put(puts).await {
            expect_ok(r, "put of binary key")?;
        }
        let got = store
            .multi_get(
                nasty
                    .iter()
                    .map(|k| GetRequest::latest(&ds, Bytes::from(k.clone())))
                    .collect(),
            )
            .await;
        for (k, resp) in nasty.iter().zip(&got) {
            let want = vec![(Bytes::from([k.as_slice(), &[0, 0xFF]].concat()), T0)];
            ensure!(
                pairs(&ok_values(resp)?) == want,
                "key {k:02x?}: got {:?}",
                resp.values
            );
        }
    }
    Ok(())
}

/// Contract, Keys and values: Keys are 1–1024 bytes; empty and 1,025-byte keys are `InvalidKey` for
/// get and put.
pub(crate) async fn one_byte_key(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    expect_ok(store.put(&ds, b("x"), b("v"), Some(T0)).await, "1-byte key")?;
    ensure!(
        store.get(&ds, b("x")).await?.is_some(),
        "1-byte key not read back"
    );
    Ok(())
}

/// Contract, Keys and values: Keys are 1–1024 bytes; empty and 1,025-byte keys are `InvalidKey` for
/// get and put.
pub(crate) async fn key_of_1024_bytes(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    let key = Bytes::from(vec![0xABu8; 1024]);
    expect_ok(
        store.put(&ds, key.clone(), b("v"), Some(T0)).await,
        "1024-byte key",
    )?;
    let got = store.get(&ds, key).await?;
    ensure!(
        got.map(|v| v.bytes) == Some(b("v")),
        "1024-byte key not read back"
    );
    Ok(())
}

/// Contract, Keys and values: Keys are 1–1024 bytes; empty and 1,025-byte keys are `InvalidKey` for
/// get and put.
pub(crate) async fn empty_key_rejected(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    expect_err(
        &store.put(&ds, b(""), b("v"), Some(T0)).await,
        "InvalidKey",
        "put with empty key",
    )?;
    expect_err(
        &store.get(&ds, b("")).await,
        "InvalidKey",
        "get with empty key",
    )?;
    Ok(())
}

/// Contract, Keys and values: Keys are 1–1024 bytes; empty and 1,025-byte keys are `InvalidKey` for
/// get and put.
pub(crate) async fn key_of_1025_bytes_rejected(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.snapshot().await?;
    let key = Bytes::from(vec![b'k'; 1025]);
    expect_err(
        &store.put(&ds, key.clone(), b("v"), Some(T0)).await,
        "InvalidKey",
        "put with 1025-byte key",
    )?;
    expect_err(
        &store.get(&ds, key).await,
        "InvalidKey",
        "get with 1025-byte key",
    )?;
    ensure!(
        store.list_all(&ds, 10).await?.is_empty(),
        "rejected put stored something"
    );
    Ok(())
}

/// Contract, Keys and values: Empty values are allowed.
pub(crate) async fn empty_value_allowed(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    for ds in [cx.snapshot().await?, cx.time_series().await?] {
        expect_ok(
            store.put(&ds, b("k"), Bytes::new(), Some(T0)).await,
            "empty value",
        )?;
        let got = store.get(&ds, b("k")).await?;
        ensure!(
            got.as_ref().map(|v| v.bytes.is_empty()) == Some(true),
            "empty value read back as {got:?}"
        );
    }
    Ok(())
}

/// Contract, Keys and values: Each adapter declares `max_value_bytes`, at least 300 KiB (DynamoDB's
/// 400 KB item is the tightest); a value of exactly that size round-trips.
pub(crate) async fn value_at_declared_max_accepted(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let max = store.capabilities().max_value_bytes;
    ensure!(
        max >= 300 * 1024,
        "max_value_bytes {max} is below the contract's 300 KiB floor"
    );
    let value: Bytes = (0..max)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    for ds in [cx.snapshot().await?, cx.time_series().await?] {
        expect_ok(
            store.put(&ds, b("big"), value.clone(), Some(T0)).await,
            &format!("value of exactly {max} bytes"),
        )?;
        let got = store.get(&ds, b("big")).await?;
        ensure!(
            got.map(|v| v.bytes) == Some(value.clone()),
            "value of {max} bytes not read back intact"
        );
    }
    Ok(())
}

/// Contract, Keys and values: One byte more is `ValueTooLarge { size, max }`, and the stored value
/// is untouched.
pub(crate) async fn value_one_byte_over_max_rejected(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let max = store.capabilities().max_value_bytes;
    let ds = cx.snapshot().await?;
    store.put(&ds, b("k"), b("before"), Some(T0)).await?;
    let res = store
        .put(&ds, b("k"), Bytes::from(vec![1u8; max + 1]), Some(T0 + 1))
        .await;
    expect_err(
        &res,
        "ValueTooLarge",
        &format!("value of {} bytes", max + 1),
    )?;
    let got = store.get(&ds, b("k")).await?;
    ensure!(
        got.map(|v| v.bytes) == Some(b("before")),
        "rejected value damaged the stored one"
    );
    Ok(())
}

/// Contract, Keys and values: Keys that share a prefix (`a`, `a\0`, `a\xff`, `\0a`, ...) never see
/// each other's versions, in reads or `list`.
pub(crate) async fn keys_sharing_a_prefix_stay_apart(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let keys: Vec<&[u8]> = vec![
        b"a",
        b"a\x00",
        b"ab",
        b"a\xff",
        b"a\x00\x00",
        b"b",
        b"\x00a",
    ];
    for ds in [cx.snapshot().await?, cx.time_series().await?] {
        let puts = keys
            .iter()
            .enumerate()
            .map(|(i, k)| PutRequest::new(&ds, b(k), b(format!("v{i}")), Some(T0 + i as i64)))
            .collect();
        for r in store.multi_put(puts).await {
            expect_ok(r, "put")?;
        }
        let mut reqs: Vec<GetRequest> =
            keys.iter().map(|k| GetRequest::latest(&ds, b(k))).collect();
        reqs.extend(keys.iter().map(|k| GetRequest::range(&ds, b(k), 0, None)));
        let got = store.multi_get(reqs).await;
        for (i, resp) in got.iter().enumerate() {
            let j = i % keys.len();
            let want = vec![(b(format!("v{j}")), T0 + j as i64)];
            ensure!(
                pairs(&ok_values(resp)?) == want,
                "key {:02x?} got {:?}",
                keys[j],
                resp.values
            );
        }
        let listed = store.list_all(&ds, 3).await?;
        ensure!(
            listed.len() == keys.len(),
            "list saw {} keys, want {}",
            listed.len(),
            keys.len()
        );
    }
    Ok(())
}

/// Contract, Keys and values: Put timestamps outside `0..=2^53-1` are `InvalidRequest`; both bounds
/// are accepted.
pub(crate) async fn negative_and_huge_put_ts_rejected(cx: &Ctx) -> Result<()> {
    let store = cx.store()?;
    let ds = cx.time_series().await?;
    for ts in [-1, i64::MIN, i64::MAX, chronon_core::validate::MAX_TS + 1] {
        expect_err(
            &store.put(&ds, b("k"), b("v"), Some(ts)).await,
            "InvalidRequest",
            &format!("put at ts {ts}"),
        )?;
    }
    expect_ok(store.put(&ds, b("k"), b("v"), Some(0)).await, "put at ts 0")?;
    expect_ok(
        store
            .put(&ds, b("k"), b("w"), Some(chronon_core::validate::MAX_TS))
            .await,
        "put at MAX_TS",
    )?;
    let got = store
        .multi_get(vec![GetRequest::range(&ds, b("k"), 0, None)])
        .await;
    let want = vec![(b("v"), 0), (b("w"), chronon_core::validate::MAX_TS)];
    ensure!(
        pairs(&ok_values(&got[0])?) == want,
        "got {:?}",
        got[0].values
    );
    Ok(())
}
