//! Redis Cluster (`cluster=true`): the `redis` crate's async cluster client, plus what it does
//! not do for us.
//!
//! - The driver sends a pipeline to one node and refuses one whose keys span slots, so a
//!   [`Batch`](crate::client::Batch) is split here into one pipeline per master (by the slot
//!   map `CLUSTER SLOTS` gave, [`SlotMap`]), sent concurrently and merged back in order. Commands
//!   without a key (`SCRIPT LOAD`, `WAIT`) go into every one of those pipelines, in place.
//! - A `MOVED`/`ASK` reply inside a pipeline makes the driver resend that pipeline to the node
//!   named (it refreshes its own slot map too); a pipeline that still fails fails the call, our
//!   slot map is read again, and the batch is sent once more. Every command we batch is
//!   idempotent (reads, `SET`, the version-writing script, `HSETNX`, `SADD`), so a resend never
//!   changes an answer. Anything left is a retryable error, never a wrong answer.
//! - `SCAN` runs on one node: `list` and `drop_dataset` walk every master, named by the lowest
//!   slot it serves ([`Cluster::scan_nodes`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind, Value};

/// Hash slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// The hash slot of `key`, as Redis computes it: CRC16/XMODEM of the key's hash tag (the bytes
/// between the first `{` and the next `}`, when not empty), else of the whole key.
pub(crate) fn slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hash_tag(key).unwrap_or(key)) % SLOTS
}

fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|b| *b == b'{')?;
    let close = key[open + 1..].iter().position(|b| *b == b'}')?;
    let tag = &key[open + 1..open + 1 + close];
    (!tag.is_empty()).then_some(tag)
}

/// Which master serves each slot, as `CLUSTER SLOTS` said.
#[derive(Debug, Default, PartialEq, Eq)]
struct SlotMap {
    /// `(first slot, last slot, master)`, sorted by first slot.
    ranges: Vec<(u16, u16, usize)>,
}

impl SlotMap {
    /// Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id..], replicas..], ..]`.
    fn parse(reply: Value) -> Result<SlotMap, String> {
        let Value::Array(entries) = reply else {
            return Err(format!("CLUSTER SLOTS answered {reply:?}"));
        };
        let mut masters: HashMap<String, usize> = HashMap::new();
        let mut ranges = Vec::with_capacity(entries.len());
        for entry in entries {
            let bad = || format!("unreadable CLUSTER SLOTS entry {entry:?}");
            let Value::Array(parts) = &entry else {
                return Err(bad());
            };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(node))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                return Err(bad());
            };
            let host = match node.first() {
                Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
                Some(Value::SimpleString(h)) => h.clone(),
                _ => return Err(bad()),
            };
            let Some(Value::Int(port)) = node.get(1) else {
                return Err(bad());
            };
            let (Ok(start), Ok(end)) = (u16::try_from(*start), u16::try_from(*end)) else {
                return Err(bad());
            };
            let next = masters.len();
            let master = *masters.entry(format!("{host}:{port}")).or_insert(next);
            ranges.push((start, end, master));
        }
        ranges.sort_unstable();
        Ok(SlotMap { ranges })
    }

    /// The master serving `slot`, if any.
    fn master_of(&self, slot: u16) -> Option<usize> {
        let i = self.ranges.partition_point(|(start, _, _)| *start <= slot);
        let (_, end, master) = self.ranges.get(i.checked_sub(1)?)?;
        (slot <= *end).then_some(*master)
    }

    /// One slot per master (the lowest it serves), ascending: how `SCAN` names a master.
    fn lowest_slots(&self) -> Vec<u16> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for (start, _, master) in &self.ranges {
            if !seen.contains(master) {
                seen.push(*master);
                out.push(*start);
            }
        }
        out
    }
}

/// The cluster connection and the slot map batches are split by.
pub(crate) struct Cluster {
    conn: ClusterConnection,
    map: RwLock<Arc<SlotMap>>,
    /// Set when a call saw the cluster change: the next call reads the slot map first.
    stale: AtomicBool,
}

impl Cluster {
    /// Wraps a connected cluster connection and reads its slot map.
    pub(crate) async fn new(conn: ClusterConnection) -> RedisResult<Cluster> {
        let cluster = Cluster {
            conn,
            map: RwLock::new(Arc::new(SlotMap::default())),
            stale: AtomicBool::new(true),
        };
        cluster.slot_map().await?;
        Ok(cluster)
    }

    /// The driver's connection (single commands route themselves by their key).
    pub(crate) fn conn(&self) -> ClusterConnection {
        self.conn.clone()
    }

    async fn slot_map(&self) -> RedisResult<Arc<SlotMap>> {
        // A plain load first: a swap on every call would write the flag's cache line from
        // every caller's thread, though it is almost never set.
        if !self.stale.load(Ordering::Acquire) || !self.stale.swap(false, Ordering::AcqRel) {
            return Ok(self.current());
        }
        let reply = self
            .conn
            .clone()
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await
            .inspect_err(|_| self.stale.store(true, Ordering::Release))?;
        let map = SlotMap::parse(reply).map_err(|m| {
            self.stale.store(true, Ordering::Release);
            RedisError::from((ErrorKind::Parse, "unreadable slot map", m))
        })?;
        let map = Arc::new(map);
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = map.clone();
        Ok(map)
    }

    fn current(&self) -> Arc<SlotMap> {
        self.map.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `pipe` (commands with errors kept in place) whose commands touch `slots` (`None`:
    /// no key, run on every master reached), one pipeline per master, replies in order.
    pub(crate) async fn send(
        &self,
        pipe: &redis::Pipeline,
        slots: &[Option<u16>],
    ) -> RedisResult<Vec<Value>> {
        match self.send_once(pipe, slots).await {
            Err(e) if cluster_changed(&e) => {
                self.stale.store(true, Ordering::Release);
                self.send_once(pipe, slots).await
            }
            other => other,
        }
    }

    async fn send_once(
        &self,
        pipe: &redis::Pipeline,
        slots: &[Option<u16>],
    ) -> RedisResult<Vec<Value>> {
        let map = self.slot_map().await?;
        // Per master (or per slot nobody serves, which the driver then reports): the master,
        // a slot to route by and the commands with a key, in their order. A call reaches one
        // master or a few, so a list searched in order beats a hash map.
        let mut groups: Vec<(usize, u16, Vec<usize>)> = Vec::new();
        for (i, s) in slots.iter().enumerate() {
            let Some(s) = *s else { continue };
            let owner = map
                .master_of(s)
                .unwrap_or(usize::from(SLOTS) + usize::from(s));
            match groups.iter_mut().find(|(o, _, _)| *o == owner) {
                Some((_, _, idxs)) => idxs.push(i),
                None => groups.push((owner, s, vec![i])),
            }
        }
        drop(map);
        let n = pipe.len();
        if groups.is_empty() {
            if n == 0 {
                return Ok(Vec::new());
            }
            return self
                .conn
                .clone()
                .route_pipeline(pipe.clone(), 0, n, SingleNodeRoutingInfo::Random)
                .await;
        }
        if let [(_, route, _)] = groups[..] {
            // Every command on one master (a one-key call always): the pipeline goes as it
            // is, keyless commands in place, with no splitting and merging back.
            let node = SingleNodeRoutingInfo::SpecificNode(Route::new(route, SlotAddr::Master));
            let values = self
                .conn
                .clone()
                .route_pipeline(pipe.clone(), 0, n, node)
                .await
                .inspect_err(|e| self.note_failure(e))?;
            if values.len() != n {
                return Err(miscounted());
            }
            return Ok(values);
        }
        let cmds: Vec<&redis::Cmd> = pipe.cmd_iter().collect();
        let keyless: Vec<usize> = (0..slots.len()).filter(|i| slots[*i].is_none()).collect();
        let sends = groups.into_iter().map(|(_, route, mut idxs)| {
            idxs.extend(&keyless);
            idxs.sort_unstable();
            let mut sub = redis::pipe();
            sub.ignore_errors();
            for i in &idxs {
                sub.add_command((*cmds[*i]).clone());
            }
            let mut conn = self.conn.clone();
            async move {
                let n = idxs.len();
                let node = SingleNodeRoutingInfo::SpecificNode(Route::new(route, SlotAddr::Master));
                conn.route_pipeline(sub, 0, n, node)
                    .await
                    .map(|values| (idxs, values))
            }
        });
        let results = futures::future::join_all(sends).await;
        let mut out: Vec<Option<Value>> = vec![None; cmds.len()];
        for result in results {
            let (idxs, values) = result.inspect_err(|e| self.note_failure(e))?;
            if values.len() != idxs.len() {
                return Err(miscounted());
            }
            for (i, v) in idxs.into_iter().zip(values) {
                out[i] = Some(match (slots[i], out[i].take()) {
                    (None, Some(earlier)) => weakest(earlier, v),
                    _ => v,
                });
            }
        }
        Ok(out.into_iter().map(|v| v.unwrap_or(Value::Nil)).collect())
    }

    /// The masters, each named by the lowest slot it serves, ascending.
    pub(crate) async fn scan_nodes(&self) -> RedisResult<Vec<u16>> {
        Ok(self.slot_map().await?.lowest_slots())
    }

    /// The master serving `node`'s slot after `node` (the next one to scan), if any.
    pub(crate) async fn next_node(&self, node: u16) -> RedisResult<Option<u16>> {
        Ok(self
            .scan_nodes()
            .await?
            .into_iter()
            .find(|slot| *slot > node))
    }

    /// Runs `cmd` (a keyless one such as `SCAN`) on the master serving slot `node`.
    pub(crate) async fn on_node(&self, node: u16, cmd: &redis::Cmd) -> RedisResult<Value> {
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
            node,
            SlotAddr::Master,
        )));
        self.conn
            .clone()
            .route_command(cmd.clone(), routing)
            .await
            .inspect_err(|e| self.note_failure(e))
    }

    /// After a failed send: a cluster that changed or a node gone means the slot map is read
    /// again before the next call.
    fn note_failure(&self, e: &RedisError) {
        if cluster_changed(e) || e.is_io_error() || e.is_connection_dropped() {
            self.stale.store(true, Ordering::Release);
        }
    }
}

/// A node answered a pipeline with another number of replies than it had commands.
fn miscounted() -> RedisError {
    RedisError::from((
        ErrorKind::Parse,
        "a node answered a different number of commands than it was sent",
    ))
}

/// Whether `e` says the cluster moved slots or is changing (so the slot map is worth reading
/// again and a batch worth resending).
fn cluster_changed(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::Moved
                | ServerErrorKind::Ask
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
        )
    )
}

/// The reply of a keyless command that ran on several masters: an error if any failed, else
/// the smallest count (`WAIT`: replicas every master reached), else the first reply.
fn weakest(a: Value, b: Value) -> Value {
    match (a, b) {
        (e @ Value::ServerError(_), _) | (_, e @ Value::ServerError(_)) => e,
        (Value::Int(x), Value::Int(y)) => Value::Int(x.min(y)),
        (a, _) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_slots() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"123456789"), 12739);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"));
        assert_ne!(
            slot(b"foo{}{bar}"),
            slot(b"bar"),
            "an empty tag hashes the whole key"
        );
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    #[test]
    fn slot_map_from_cluster_slots() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("127.0.0.1", 7001),
                node("127.0.0.1", 7004),
            ]),
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7000),
            ]),
            Value::Array(vec![
                Value::Int(10923),
                Value::Int(16383),
                node("127.0.0.1", 7000),
            ]),
        ]);
        let map = SlotMap::parse(reply).unwrap();
        let a = map.master_of(0).unwrap();
        assert_eq!(map.master_of(5460), Some(a));
        assert_eq!(map.master_of(16383), Some(a), "one master, two ranges");
        let b = map.master_of(5461).unwrap();
        assert_ne!(a, b);
        assert_eq!(map.master_of(10922), Some(b));
        assert_eq!(map.lowest_slots(), vec![0, 5461]);
        let gap = SlotMap::parse(Value::Array(vec![Value::Array(vec![
            Value::Int(10),
            Value::Int(20),
            node("h", 1),
        ])]))
        .unwrap();
        assert_eq!((gap.master_of(9), gap.master_of(21)), (None, None));
        assert!(SlotMap::parse(Value::Int(1)).is_err());
        assert!(SlotMap::parse(Value::Array(vec![Value::Int(1)])).is_err());
    }

    #[test]
    fn keyless_replies_merge_to_the_weakest() {
        assert_eq!(weakest(Value::Int(2), Value::Int(1)), Value::Int(1));
        let ok = Value::SimpleString("OK".into());
        assert_eq!(weakest(ok.clone(), Value::Nil), ok);
    }
}
