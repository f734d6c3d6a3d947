//! Reads: `multi_get` (latest versions and time ranges) and `list`.
//!
//! A `multi_get` sends its data commands in the same round trip as the registry read, guessing
//! each dataset's generation from what this client last saw, and re-reads the datasets whose
//! guess turned out wrong; within `metadata_cache_ttl` of the last registry read it skips
//! the registry altogether.

use std::collections::HashMap;

use bytes::Bytes;
use chronon_core::batch::{now_millis, select_versions, GetBatch};
use chronon_core::{
    DatasetKind, ErrorContext, GetRequest, GetResponse, KvError, ListCursor, ListPage, TimedValue,
};
use redis::{RedisError, Value};

use crate::client::{split_registry, Batch, Client, RegistryReply, Target, Targets};
use crate::error::{map_error, BACKEND};
use crate::layout;

/// The replies of one chunk's pipeline, parsed only once the call knows it wants them: each
/// answer is then written straight into the batch's slot (`GetBatch::answer_with`), and
/// replies read from a generation the registry did not confirm are dropped unparsed.
struct ChunkReply<'t> {
    /// Requests read by a command of their own, in pipeline order.
    sent: Vec<(usize, &'t Target)>,
    /// Snapshot requests read by the chunk's `MGET` (the pipeline's last command), in order.
    multi: Vec<(usize, &'t Target)>,
    /// The pipeline's replies after the registry's.
    values: Result<Vec<Value>, KvError>,
}

/// Answers `requests`, each on its own; the whole call is bounded by the store's timeout.
pub(crate) async fn multi_get(client: &Client, requests: Vec<GetRequest>) -> Vec<GetResponse> {
    let mut batch = GetBatch::new(requests);
    if !batch.is_done() {
        let timeout = client.opts.timeout;
        if tokio::time::timeout(timeout, get_into(client, &mut batch))
            .await
            .is_err()
        {
            batch.fail_pending(&client.ctx("multi_get").timeout_error());
        }
    }
    batch.finish(BACKEND)
}

/// One page of `dataset`'s keys with their latest visible version, bounded by the timeout.
pub(crate) async fn list(
    client: &Client,
    dataset: &str,
    limit: usize,
    cursor: Option<ListCursor>,
) -> Result<ListPage, KvError> {
    client
        .ctx("list")
        .dataset(dataset)
        .with_timeout(list_inner(client, dataset, limit, cursor))
        .await
}

async fn get_into(client: &Client, batch: &mut GetBatch) {
    // The usual call: every dataset's registry entry read within `metadata_cache_ttl`, so the
    // data is read without the registry, and without grouping the requests by dataset.
    let groups = batch.pending_groups();
    let datasets: Vec<String> = groups
        .iter()
        .map(|g| batch.requests()[g[0]].dataset.clone())
        .collect();
    if let Some(entries) = client.recently_seen(&datasets) {
        let targets = client.targets(entries.iter().map(|(d, e)| (d, e)));
        let (_, replies) = read(client, batch, groups.concat(), &targets, None).await;
        answer(client, batch, replies, None);
        return;
    }
    let guesses = client.last_seen(&datasets);
    let guessed: Vec<usize> = groups
        .iter()
        .zip(&datasets)
        .filter(|(_, ds)| guesses.contains_key(*ds))
        .flat_map(|(idxs, _)| idxs.iter().copied())
        .collect();
    let guess_targets = client.targets(&guesses);
    let tickets = client.tickets();
    let (reply, guessed_replies) =
        read(client, batch, guessed, &guess_targets, Some(&datasets)).await;
    let fresh = client.registry_result("multi_get", &datasets, reply, tickets);
    let fresh = match fresh {
        Ok(f) => f,
        Err(e) => return batch.fail_pending(&e),
    };
    // Which requests the registry confirmed were read from the live generation, by index
    // (each group's indexes ascend, so its last is its largest).
    let len = groups
        .iter()
        .filter_map(|g| g.last())
        .max()
        .map_or(0, |m| m + 1);
    let mut confirmed = vec![false; len];
    let mut redo = Vec::new();
    let mut fresh_entries = HashMap::new();
    for (idxs, ds) in groups.iter().zip(&datasets) {
        match fresh.get(ds) {
            Some(Ok(entry)) if guesses.get(ds) == Some(entry) => {
                for &i in idxs {
                    confirmed[i] = true;
                }
            }
            Some(Ok(entry)) => {
                fresh_entries.insert(ds.clone(), entry.clone());
                redo.extend(idxs.iter().copied());
            }
            Some(Err(e)) => batch.fail_dataset(ds, e),
            None => batch.fail_dataset(ds, &KvError::not_found(ds)),
        }
    }
    // Only the guesses the registry confirmed are answers; a wrong guess read a dead
    // generation, and its datasets are read again below.
    answer(client, batch, guessed_replies, Some(&confirmed));
    if !redo.is_empty() {
        let targets = client.targets(&fresh_entries);
        let (_, replies) = read(client, batch, redo, &targets, None).await;
        answer(client, batch, replies, None);
    }
}

/// Reads requests `idxs` of `batch` from the generations in `targets`.
async fn read<'t>(
    client: &Client,
    batch: &GetBatch,
    idxs: Vec<usize>,
    targets: &'t Targets,
    registry: Option<&[String]>,
) -> (RegistryReply, Vec<ChunkReply<'t>>) {
    let requests = batch.requests();
    let chunks: Vec<Vec<usize>> = idxs
        .chunks(client.opts.chunk_size)
        .map(<[usize]>::to_vec)
        .collect();
    client
        .run_chunks(chunks, registry, |registry, chunk| async move {
            let mut batch = client.batch();
            if let Some(ds) = registry {
                batch
                    .on_key("HMGET", &client.registry)
                    .arg(&client.registry)
                    .arg(ds);
            }
            // Each request's target travels with it; a run of one dataset is looked up once.
            // On a single server every snapshot key of the chunk goes into one `MGET` (last in
            // the pipeline): one command instead of one per key, less to encode, send and parse
            // on both ends. A cluster refuses a multi-key command across slots, so there each
            // key keeps its own `GET`.
            let mut sent: Vec<(usize, &Target)> = Vec::with_capacity(chunk.len());
            let mut multi: Vec<(usize, &Target)> = Vec::new();
            let mut mget = (!batch.is_cluster()).then(|| redis::cmd("MGET"));
            let mut key = Vec::new();
            let mut last: Option<(&str, &Target)> = None;
            for i in chunk {
                let req = &requests[i];
                let t = match last {
                    Some((ds, t)) if ds == req.dataset => t,
                    _ => match targets.get(&req.dataset) {
                        Some(t) => {
                            last = Some((&req.dataset, t));
                            t
                        }
                        None => continue,
                    },
                };
                layout::write_data_key(&mut key, &t.data_prefix, &req.key);
                match &mut mget {
                    Some(cmd) if t.kind == DatasetKind::Snapshot => {
                        cmd.arg(&key[..]);
                        multi.push((i, t));
                    }
                    _ => {
                        read_command(&mut batch, t, req, &key);
                        sent.push((i, t));
                    }
                }
            }
            if let Some(cmd) = mget.filter(|_| !multi.is_empty()) {
                batch.add_multi_key(cmd);
            }
            let ctx = client.ctx("multi_get");
            let (reg, values) =
                split_registry(registry.is_some(), client.pipeline(ctx, &batch).await);
            (
                reg,
                vec![ChunkReply {
                    sent,
                    multi,
                    values,
                }],
            )
        })
        .await
}

/// Parses `replies` into `batch`; with `only`, just the requests marked there (the others stay
/// as they are).
fn answer(
    client: &Client,
    batch: &mut GetBatch,
    replies: Vec<ChunkReply<'_>>,
    only: Option<&[bool]>,
) {
    let ctx = client.ctx("multi_get");
    let now = now_millis();
    let wanted = |i: usize| only.is_none_or(|only| only.get(i).copied().unwrap_or(false));
    let fail = |batch: &mut GetBatch, idxs: Vec<(usize, &Target)>, e: &KvError| {
        for (i, _) in idxs {
            if wanted(i) {
                batch.answer(i, Err(e.clone()));
            }
        }
    };
    for ChunkReply {
        sent,
        multi,
        values,
    } in replies
    {
        let expected = sent.len() + usize::from(!multi.is_empty());
        let mut values = match values {
            Ok(values) if values.len() == expected => values,
            Ok(_) => {
                let e = ctx.backend_error("pipeline answered a different number of commands", None);
                fail(batch, sent, &e);
                fail(batch, multi, &e);
                continue;
            }
            Err(e) => {
                fail(batch, sent, &e);
                fail(batch, multi, &e);
                continue;
            }
        };
        // One value (or nil) per key of the `MGET`, in order; a server error or a reply of
        // another shape fails them all.
        let mget = if multi.is_empty() { None } else { values.pop() };
        for ((i, t), v) in sent.into_iter().zip(values) {
            if wanted(i) {
                batch.answer_with(i, |req| parse_read(ctx, t, req, v, now));
            }
        }
        match mget {
            None => {}
            Some(Value::Array(items)) if items.len() == multi.len() => {
                for ((i, t), v) in multi.into_iter().zip(items) {
                    if wanted(i) {
                        batch.answer_with(i, |req| parse_read(ctx, t, req, v, now));
                    }
                }
            }
            Some(Value::ServerError(e)) => fail(batch, multi, &map_error(e.into(), ctx)),
            Some(other) => {
                let e = ctx.backend_error(format!("unexpected MGET reply {other:?}"), None);
                fail(batch, multi, &e);
            }
        }
    }
}

/// The versions `req` asks for from its command's reply, as visible at `now`.
fn parse_read(
    ctx: ErrorContext<'_>,
    t: &Target,
    req: &GetRequest,
    v: Value,
    now: i64,
) -> Result<Vec<TimedValue>, KvError> {
    let ctx = ctx.dataset(&req.dataset).key(&req.key);
    let versions = decode_versions(v).map_err(|e| match e {
        Decode::Server(e) => map_error(e, ctx),
        Decode::Corrupt(m) => ctx.backend_error(m, None),
    })?;
    Ok(select_versions(versions, req, t.props.visible_from(now)))
}

async fn list_inner(
    client: &Client,
    dataset: &str,
    limit: usize,
    cursor: Option<ListCursor>,
) -> Result<ListPage, KvError> {
    let ctx = client.ctx("list").dataset(dataset);
    let entry = client.lookup_one("list", dataset).await?;
    let t = Target {
        data_prefix: layout::data_prefix(&client.opts.prefix, dataset, &entry.gen),
        kind: entry.props.kind,
        props: entry.props,
    };
    let pattern = format!("{}*", t.data_prefix);
    let (session, mut pos) = match &cursor {
        None => (
            layout::new_gen(),
            (client.first_scan_node(ctx).await?, 0u64),
        ),
        Some(c) => parse_cursor(dataset, c)?,
    };
    let skey = layout::list_session_key(&client.opts.prefix, &session);
    if cursor.is_some() {
        let live: bool = client
            .query(ctx, redis::cmd("SISMEMBER").arg(&skey).arg(""))
            .await?;
        if !live {
            return Err(KvError::InvalidRequest {
                dataset: dataset.to_string(),
                reason: format!(
                    "list cursor expired (idle longer than {:?}) or unknown; start the listing again",
                    client.opts.list_session_ttl
                ),
            });
        }
    }
    let limit = limit.max(1);
    let ttl_ms = i64::try_from(client.opts.list_session_ttl.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let mut entries = Vec::new();
    loop {
        let (next, found) = client
            .scan_step(ctx, pos, &pattern, client.opts.scan_count)
            .await?;
        let mut keys: Vec<Bytes> = found
            .iter()
            .filter_map(|k| layout::decode_data_key(&t.data_prefix, k))
            .collect();
        keys.sort();
        keys.dedup();
        let mut leftover = false;
        if !keys.is_empty() {
            let mut batch = client.batch();
            batch
                .on_key("SMISMEMBER", &skey)
                .arg(&skey)
                .arg(keys.iter().map(|k| k.as_ref()).collect::<Vec<_>>());
            let latest: Vec<GetRequest> = keys
                .iter()
                .map(|k| GetRequest::latest(dataset, k.clone()))
                .collect();
            for req in &latest {
                read_command(
                    &mut batch,
                    &t,
                    req,
                    &layout::data_key(&t.data_prefix, &req.key),
                );
            }
            let mut values = client.pipeline(ctx, &batch).await?.into_iter();
            let seen: Vec<bool> = match values.next() {
                Some(Value::Array(flags)) => {
                    flags.iter().map(|f| matches!(f, Value::Int(1))).collect()
                }
                Some(Value::ServerError(e)) => return Err(map_error(e.into(), ctx)),
                other => {
                    return Err(
                        ctx.backend_error(format!("unexpected SMISMEMBER reply {other:?}"), None)
                    )
                }
            };
            let now = now_millis();
            let mut marked: Vec<Bytes> = Vec::new();
            for ((req, v), seen) in latest.iter().zip(values).zip(seen) {
                if seen {
                    continue;
                }
                let versions = parse_read(ctx, &t, req, v, now)?;
                // A key gone or hidden by the TTL is never returned; remembering it is enough.
                if let Some(tv) = versions.into_iter().next() {
                    if entries.len() >= limit {
                        leftover = true;
                        break;
                    }
                    entries.push((req.key.clone(), tv));
                }
                marked.push(req.key.clone());
            }
            let marked: Vec<&[u8]> = marked.iter().map(|k| k.as_ref()).collect();
            remember(client, ctx, &skey, &marked, ttl_ms).await?;
        }
        if leftover {
            return Ok(ListPage {
                entries,
                next: Some(make_cursor(&session, pos)),
            });
        }
        let Some(next) = next else {
            let _ = client
                .query::<Value>(ctx, redis::cmd("UNLINK").arg(&skey))
                .await;
            return Ok(ListPage {
                entries,
                next: None,
            });
        };
        pos = next;
        if entries.len() >= limit {
            remember(client, ctx, &skey, &[], ttl_ms).await?;
            return Ok(ListPage {
                entries,
                next: Some(make_cursor(&session, pos)),
            });
        }
    }
}

/// Adds `keys` (and the `""` marker that says the session lives) to a `list` session's set
/// and renews its expiry.
async fn remember(
    client: &Client,
    ctx: ErrorContext<'_>,
    skey: &str,
    keys: &[&[u8]],
    ttl_ms: i64,
) -> Result<(), KvError> {
    let mut batch = client.batch();
    batch.on_key("SADD", skey).arg(skey).arg("").arg(keys);
    batch.on_key("PEXPIRE", skey).arg(skey).arg(ttl_ms);
    for v in client.pipeline(ctx, &batch).await? {
        if let Value::ServerError(e) = v {
            return Err(map_error(e.into(), ctx));
        }
    }
    Ok(())
}

/// `GET` for a snapshot key, the newest member or a score range for a time series; `key` is
/// `req`'s data key.
fn read_command(batch: &mut Batch, t: &Target, req: &GetRequest, key: &[u8]) {
    match (t.kind, req.start_ts) {
        (DatasetKind::Snapshot, _) => {
            batch.on_key("GET", key).arg(key);
        }
        (DatasetKind::TimeSeries, None) => {
            batch.on_key("ZRANGE", key).arg(key).arg(-1).arg(-1);
        }
        (DatasetKind::TimeSeries, Some(start)) => {
            let cmd = batch.on_key("ZRANGEBYSCORE", key).arg(key).arg(start);
            match req.end_ts {
                Some(end) => cmd.arg(end),
                None => cmd.arg("+inf"),
            };
        }
    }
}

enum Decode {
    Server(RedisError),
    Corrupt(String),
}

/// Stored versions (ascending ts) from a `GET` or `ZRANGE` reply.
fn decode_versions(v: Value) -> Result<Vec<TimedValue>, Decode> {
    let one = |raw: Vec<u8>| {
        let len = raw.len();
        layout::decode_owned_value(raw).ok_or_else(|| {
            Decode::Corrupt(format!(
                "stored value of {} bytes is too short to hold a timestamp",
                len
            ))
        })
    };
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::BulkString(raw) => Ok(vec![one(raw)?]),
        Value::Array(items) | Value::Set(items) => items
            .into_iter()
            .map(|item| match item {
                Value::BulkString(raw) => one(raw),
                other => Err(Decode::Corrupt(format!("unexpected member {other:?}"))),
            })
            .collect(),
        Value::ServerError(e) => Err(Decode::Server(e.into())),
        other => Err(Decode::Corrupt(format!("unexpected reply {other:?}"))),
    }
}

/// `v2:<session>:<node>:<scan cursor>`: the `list` session and where its `SCAN` stands (the
/// node is 0 on a single server, a master's lowest slot on a cluster).
fn make_cursor(session: &str, (node, scan): (u16, u64)) -> ListCursor {
    ListCursor(Bytes::from(format!("v2:{session}:{node}:{scan}")))
}

/// Reads [`make_cursor`]'s cursors, and `v1:<session>:<scan>` ones of earlier versions (node 0).
fn parse_cursor(dataset: &str, c: &ListCursor) -> Result<(String, (u16, u64)), KvError> {
    let bad = || KvError::InvalidRequest {
        dataset: dataset.to_string(),
        reason: "list cursor was not made by this adapter".to_string(),
    };
    let text = std::str::from_utf8(&c.0).map_err(|_| bad())?;
    let parts: Vec<&str> = text.split(':').collect();
    let (session, node, scan) = match parts.as_slice() {
        ["v1", session, scan] => (*session, "0", *scan),
        ["v2", session, node, scan] => (*session, *node, *scan),
        _ => return Err(bad()),
    };
    if session.is_empty() || session.len() > 32 || !session.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let node = node.parse().map_err(|_| bad())?;
    let scan = scan.parse().map_err(|_| bad())?;
    Ok((session.to_string(), (node, scan)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_old_ones_still_read() {
        let c = make_cursor("00ab", (5461, 17));
        assert_eq!(
            parse_cursor("DS", &c).unwrap(),
            ("00ab".to_string(), (5461, 17))
        );
        let old = ListCursor(Bytes::from_static(b"v1:00ab:9"));
        assert_eq!(
            parse_cursor("DS", &old).unwrap(),
            ("00ab".to_string(), (0, 9))
        );
        for bad in [
            "v2:00ab:x:1",
            "v2:zz:0:1",
            "v3:00ab:0:1",
            "v2::0:1",
            "v1:00ab",
        ] {
            let c = ListCursor(Bytes::from(bad.to_string()));
            assert!(parse_cursor("DS", &c).is_err(), "{bad}");
        }
    }
}
