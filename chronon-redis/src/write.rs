//! Writes: `multi_put`.
//!
//! Like reads, a put sends its data commands in the same round trip as the registry read,
//! guessing each dataset's generation; a wrong guess is written again to the live generation and
//! the keys written to the dead one are deleted, so a put never lands in a dropped dataset.

use std::collections::HashMap;
use std::sync::OnceLock;

use chronon_core::batch::{now_millis, PutBatch};
use chronon_core::{DatasetKind, KvError, PutRequest};
use redis::Value;

use crate::client::{split_registry, Batch, Client, RegistryReply, Target, Targets};
use crate::error::{map_error, BACKEND};
use crate::layout;

/// Expiry is only set when it is closer than this (100 years); a longer TTL is enforced by
/// read filtering alone, so `PX`/`PEXPIREAT` arithmetic never overflows on the server.
const MAX_EXPIRY_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

/// Writes one `TimeSeries` version atomically (a single key, so also on Redis Cluster):
/// replace any version with the same ts, add this one, and with a TTL trim expired versions and
/// let the whole key expire with its newest version.
///
/// `KEYS[1]` = the key's sorted set; `ARGV` = ts, member, TTL cut-off (`''`: no TTL),
/// TTL in ms (`''`: no expiry).
const PUT_VERSION_LUA: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
  if ARGV[4] ~= '' then
    local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    if top[2] then
      redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', tonumber(top[2]) + tonumber(ARGV[4])))
    end
  end
end
return 1
";

/// [`PUT_VERSION_LUA`] with its SHA-1, computed once.
fn put_version_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| redis::Script::new(PUT_VERSION_LUA))
}

/// Writes `requests`, each answered on its own; the whole call is bounded by the store's timeout.
pub(crate) async fn multi_put(
    client: &Client,
    requests: Vec<PutRequest>,
) -> Vec<Result<(), KvError>> {
    let mut batch = PutBatch::new(requests, &client.capabilities());
    if batch.pending().next().is_some() {
        let timeout = client.opts.timeout;
        if tokio::time::timeout(timeout, put_into(client, &mut batch))
            .await
            .is_err()
        {
            batch.fail_pending(&client.ctx("multi_put").timeout_error());
        }
    }
    batch.finish(BACKEND)
}

async fn put_into(client: &Client, batch: &mut PutBatch) {
    let groups = batch.pending_groups();
    let datasets: Vec<String> = groups
        .iter()
        .map(|g| batch.get(g[0]).dataset.to_string())
        .collect();
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
        write(client, batch, guessed, &guess_targets, Some(&datasets)).await;
    let fresh = client.registry_result("multi_put", &datasets, reply, tickets);
    let fresh = match fresh {
        Ok(f) => f,
        Err(e) => {
            // The writes may have landed, but without the registry we cannot tell whether
            // they went to the live generation: report the registry's error for all.
            return batch.fail_pending(&e);
        }
    };
    // Which puts the registry confirmed were written to the live generation, by index (each
    // group's indexes ascend, so its last is its largest).
    let len = groups
        .iter()
        .filter_map(|g| g.last())
        .max()
        .map_or(0, |m| m + 1);
    let mut confirmed = vec![false; len];
    let (mut redo, mut stale) = (Vec::new(), Vec::new());
    let mut fresh_entries = HashMap::new();
    for (idxs, ds) in groups.iter().zip(&datasets) {
        let guess = guesses.get(ds);
        match fresh.get(ds) {
            Some(Ok(entry)) if guess == Some(entry) => {
                for &i in idxs {
                    confirmed[i] = true;
                }
            }
            other => {
                if guess.is_some() {
                    stale.extend(idxs.iter().copied());
                }
                match other {
                    Some(Ok(entry)) => {
                        fresh_entries.insert(ds.clone(), entry.clone());
                        redo.extend(idxs.iter().copied());
                    }
                    Some(Err(e)) => batch.fail_dataset(ds, e),
                    None => batch.fail_dataset(ds, &KvError::not_found(ds)),
                }
            }
        }
    }
    answer(client, batch, guessed_replies, Some(&confirmed));
    if !stale.is_empty() {
        discard(client, batch, &stale, &guess_targets).await;
    }
    if !redo.is_empty() {
        let targets = client.targets(&fresh_entries);
        let (_, replies) = write(client, batch, redo, &targets, None).await;
        answer(client, batch, replies, None);
    }
}

/// The replies of one chunk's pipeline, read once the call knows it wants them (puts to a
/// generation the registry did not confirm are answered by their second write instead).
struct ChunkReply {
    /// Puts written by a command of their own, in pipeline order.
    sent: Vec<usize>,
    /// Puts written by the chunk's `MSET` (after the per-key commands).
    multi: Vec<usize>,
    /// Whether the pipeline starts with `SCRIPT LOAD` (after the registry read).
    script: bool,
    /// Whether the pipeline ends with `WAIT`.
    waited: bool,
    /// The pipeline's replies after the registry's.
    values: Result<Vec<Value>, KvError>,
}

/// Writes puts `idxs` of `batch` into the generations in `targets`.
async fn write(
    client: &Client,
    puts: &PutBatch,
    idxs: Vec<usize>,
    targets: &Targets,
    registry: Option<&[String]>,
) -> (RegistryReply, Vec<ChunkReply>) {
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for i in idxs {
        let size = puts.get(i).value.len() + puts.get(i).key.len();
        match chunks.last_mut() {
            Some(c)
                if c.len() < client.opts.chunk_size && bytes + size <= client.opts.chunk_bytes =>
            {
                bytes += size;
                c.push(i);
            }
            _ => {
                bytes = size;
                chunks.push(vec![i]);
            }
        }
    }
    // Time series are written by a script; most calls write snapshots only and need not look.
    let any_series = targets.any(|t| t.kind == DatasetKind::TimeSeries);
    client
        .run_chunks(chunks, registry, |registry, chunk| async move {
            let now = now_millis();
            let mut batch = client.batch();
            if let Some(ds) = registry {
                batch
                    .on_key("HMGET", &client.registry)
                    .arg(&client.registry)
                    .arg(ds);
            }
            let script = any_series
                && chunk.iter().any(|i| {
                    targets
                        .get(puts.get(*i).dataset)
                        .is_some_and(|t| t.kind == DatasetKind::TimeSeries)
                });
            if script {
                // In the same pipeline (on a cluster: on every master it reaches), so EVALSHA
                // below finds it even on a server that restarted or failed over (and lost its
                // script cache) since the last call.
                batch.keyless("SCRIPT").arg("LOAD").arg(PUT_VERSION_LUA);
            }
            // On a single server the snapshot values without an expiry go into one `MSET`
            // (after the per-key commands): one command instead of one per key, 13 bytes less
            // per key on the wire and one `+OK` back. A cluster refuses a multi-key command
            // across slots, so there each keeps its own `SET`.
            let mut sent = Vec::with_capacity(chunk.len());
            let mut multi = Vec::new();
            let mut mset = (!batch.is_cluster()).then(|| redis::cmd("MSET"));
            let mut key = Vec::new();
            let mut encoded = Vec::new();
            // A run of one dataset is looked up once.
            let mut last: Option<(&str, &Target)> = None;
            for i in chunk {
                let p = puts.get(i);
                let t = match last {
                    Some((ds, t)) if ds == p.dataset => t,
                    _ => match targets.get(p.dataset) {
                        Some(t) => {
                            last = Some((p.dataset, t));
                            t
                        }
                        None => continue,
                    },
                };
                layout::write_data_key(&mut key, &t.data_prefix, p.key);
                layout::write_value(&mut encoded, p.ts, p.value);
                match &mut mset {
                    Some(cmd) if t.kind == DatasetKind::Snapshot && expiry(t).is_none() => {
                        cmd.arg(&key[..]).arg(&encoded[..]);
                        multi.push(i);
                    }
                    _ => {
                        write_command(&mut batch, t, &key, &encoded, p.ts, now);
                        sent.push(i);
                    }
                }
            }
            if let Some(cmd) = mset.filter(|_| !multi.is_empty()) {
                batch.add_multi_key(cmd);
            }
            let waited = (!sent.is_empty() || !multi.is_empty()) && client.add_wait(&mut batch);
            let ctx = client.ctx("multi_put");
            let (reg, values) =
                split_registry(registry.is_some(), client.pipeline(ctx, &batch).await);
            let reply = ChunkReply {
                sent,
                multi,
                script,
                waited,
                values,
            };
            (reg, vec![reply])
        })
        .await
}

/// Records `replies` in `batch`; with `only`, just the puts marked there (the others stay as
/// they are).
fn answer(client: &Client, batch: &mut PutBatch, replies: Vec<ChunkReply>, only: Option<&[bool]>) {
    let ctx = client.ctx("multi_put");
    let wanted = |i: usize| only.is_none_or(|only| only.get(i).copied().unwrap_or(false));
    for reply in replies {
        let ChunkReply {
            sent,
            multi,
            script,
            waited,
            values,
        } = reply;
        let all = sent.iter().chain(&multi).copied();
        let mut values = match values {
            Ok(values) => values,
            Err(e) => {
                all.filter(|i| wanted(*i))
                    .for_each(|i| batch.answer(i, Err(e.clone())));
                continue;
            }
        };
        let wait = if waited { values.pop() } else { None };
        let skip = usize::from(script).min(values.len());
        let mut values = values.split_off(skip);
        let mset_sent = !multi.is_empty();
        if values.len() != sent.len() + usize::from(mset_sent) {
            let e = ctx.backend_error("pipeline answered a different number of commands", None);
            all.filter(|i| wanted(*i))
                .for_each(|i| batch.answer(i, Err(e.clone())));
            continue;
        }
        let unconfirmed = wait.and_then(|w| client.wait_error(ctx, &w));
        let answer = |batch: &mut PutBatch, v: &Value, i: usize| {
            if !wanted(i) {
                return;
            }
            let result = match v {
                Value::ServerError(e) => {
                    let p = batch.get(i);
                    Err(map_error(
                        e.clone().into(),
                        ctx.dataset(p.dataset).key(p.key),
                    ))
                }
                _ => match &unconfirmed {
                    Some(e) => Err(e.clone()),
                    None => Ok(()),
                },
            };
            batch.answer(i, result);
        };
        // One reply for the whole `MSET`: an error (it writes all or nothing) answers each of
        // its puts.
        let mset_reply = if mset_sent { values.pop() } else { None };
        for (i, v) in sent.into_iter().zip(&values) {
            answer(batch, v, i);
        }
        if let Some(v) = mset_reply {
            for i in multi {
                answer(batch, &v, i);
            }
        }
    }
}

/// The TTL Redis expires `t`'s keys with, if it has one short enough to set.
fn expiry(t: &Target) -> Option<i64> {
    t.props.ttl_millis().filter(|t| *t <= MAX_EXPIRY_MS)
}

/// The command writing one put: `redis_key` is its data key, `encoded` its stored value.
fn write_command(
    batch: &mut Batch,
    t: &Target,
    redis_key: &[u8],
    encoded: &[u8],
    ts: i64,
    now: i64,
) {
    let ttl = t.props.ttl_millis();
    match t.kind {
        DatasetKind::Snapshot => {
            let cmd = batch.on_key("SET", redis_key).arg(redis_key).arg(encoded);
            if let Some(ttl) = expiry(t) {
                // Expire with the value's own timestamp; a value already past its TTL still
                // replaces the old one and vanishes at once (reads hide it regardless).
                cmd.arg("PX")
                    .arg(ts.saturating_add(ttl).saturating_sub(now).max(1));
            }
        }
        DatasetKind::TimeSeries => {
            let cut = ttl
                .map(|t| now.saturating_sub(t).to_string())
                .unwrap_or_default();
            let expiry = ttl
                .filter(|t| *t <= MAX_EXPIRY_MS)
                .map(|t| t.to_string())
                .unwrap_or_default();
            batch
                .on_key("EVALSHA", redis_key)
                .arg(put_version_script().get_hash())
                .arg(1)
                .arg(redis_key)
                .arg(ts)
                .arg(encoded)
                .arg(cut)
                .arg(expiry);
        }
    }
}

/// Deletes keys written under registry entries that turned out to be stale (their dataset
/// was dropped, maybe re-created, by another client): they are garbage of a dead generation.
async fn discard(client: &Client, batch: &PutBatch, idxs: &[usize], targets: &Targets) {
    for chunk in idxs.chunks(client.opts.chunk_size) {
        let mut cmd = redis::cmd("UNLINK");
        for i in chunk {
            let p = batch.get(*i);
            if let Some(t) = targets.get(p.dataset) {
                cmd.arg(layout::data_key(&t.data_prefix, p.key));
            }
        }
        let _ = client.query::<Value>(client.ctx("multi_put"), &cmd).await;
    }
}
