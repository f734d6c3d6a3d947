//! The `mongodb` baseline on the adapter's own client: one `find` with `$in` per chunk of the
//! adapter's read size, and unordered `update` commands of upserts per chunk of its write size,
//! as many in flight as the adapter allows, with the adapter's write concern.
//!
//! Unlike the other baselines it keeps Chronon's quickstart layout, which is what this adapter is
//! asked to write (`{keyBytes, valueBytes, ts}` upserted on `keyBytes`, with the unique
//! `{keyBytes: 1}` and the `{keyBytes: 1, ts: -1}` indexes a `Snapshot` dataset has): with a plain
//! `_id -> value` collection the ratio measured the layout's two extra indexes, not the adapter
//! (puts were 0.2-0.3 of raw on SecantusDB). What the adapter still does beyond this baseline:
//! validation, and a dataset-metadata read per second (`metadata_cache_ttl`).

use std::sync::Arc;

use anyhow::{Context as _, Result};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, Binary, Bson, Document, RawDocumentBuf};

use super::super::workload::{key, value, T0, VERSIONS};
use super::chunked::{key_index, multiplicity, Chunked};

/// What the MongoDB baseline needs.
pub struct MongoRaw {
    /// Held, not used: the store shuts its client (shared by `db`) down on its last drop.
    _store: chronon_mongo::MongoStore,
    /// The adapter's write concern, as a command document.
    write_concern: Document,
    db: mongodb::Database,
    collection: String,
    coll: mongodb::Collection<RawDocumentBuf>,
    /// Several versions per key (`{keyBytes, ts}` uniquely indexed, as a `TimeSeries`
    /// dataset's), for range reads.
    versions: mongodb::Collection<RawDocumentBuf>,
    get_chunk_len: usize,
    put_chunk_len: usize,
    in_flight: usize,
}

impl MongoRaw {
    /// Opens the adapter on `url` for its client and limits.
    pub async fn open(url: &str) -> Result<Arc<Self>> {
        let store = chronon_mongo::MongoStore::open_url(url).await?;
        let options = store.options();
        let (get_chunk_len, put_chunk_len, in_flight) = (
            options.get_batch_size.max(1),
            options.put_batch_size.max(1),
            options.concurrency.max(1),
        );
        let db = store.database().clone();
        let write_concern = mongodb::bson::to_document(&options.write_concern)
            .context("the adapter's write concern as a document")?;
        let collection = format!("rawbaseline_{}", rand::random::<u32>());
        db.run_command(doc! {
            "createIndexes": &collection,
            "indexes": [
                { "key": { "keyBytes": 1, "ts": -1 }, "name": "keyBytes_1_ts_-1" },
                { "key": { "keyBytes": 1 }, "name": "keyBytes_1", "unique": true },
            ],
        })
        .await
        .context("creating the raw baseline's indexes")?;
        let versions = format!("{collection}_versions");
        db.run_command(doc! {
            "createIndexes": &versions,
            // Unique, as a `TimeSeries` dataset's index is (a plain one reads slower).
            "indexes": [{
                "key": { "keyBytes": 1, "ts": -1 },
                "name": "keyBytes_1_ts_-1",
                "unique": true,
            }],
        })
        .await
        .context("creating the raw baseline's versioned indexes")?;
        Ok(Arc::new(MongoRaw {
            _store: store,
            write_concern,
            coll: db.collection(&collection),
            versions: db.collection(&versions),
            db,
            collection,
            get_chunk_len,
            put_chunk_len,
            in_flight,
        }))
    }

    fn bin(i: usize) -> Bson {
        Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: key(i).to_vec(),
        })
    }
}

impl Chunked for MongoRaw {
    fn get_chunk_len(&self) -> usize {
        self.get_chunk_len
    }

    fn put_chunk_len(&self) -> usize {
        self.put_chunk_len
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn range_chunk_len(&self) -> usize {
        self.get_chunk_len
    }

    /// One `find` with `$in` and `ts >= T0` on the versioned collection; counts the keys that
    /// had all [`VERSIONS`].
    async fn get_range_chunk(&self, chunk: Vec<usize>) -> u64 {
        let asked = multiplicity(&chunk);
        let keys: Vec<Bson> = asked.keys().map(|i| Self::bin(*i)).collect();
        let filter = doc! { "keyBytes": { "$in": keys }, "ts": { "$gte": T0 } };
        let Ok(mut cursor) = self.versions.find(filter).batch_size(100_000).await else {
            return 0;
        };
        let mut found = std::collections::HashMap::<usize, i64>::new();
        while let Ok(true) = cursor.advance().await {
            let doc = cursor.current();
            let key = doc
                .get_binary("keyBytes")
                .ok()
                .and_then(|b| key_index(b.bytes));
            if let (Some(i), Ok(_)) = (key, doc.get_binary("valueBytes")) {
                *found.entry(i).or_default() += 1;
            }
        }
        found
            .into_iter()
            .filter(|(_, n)| *n == VERSIONS)
            .map(|(i, _)| asked.get(&i).copied().unwrap_or(0))
            .sum()
    }

    async fn preload_versions(&self, keys: usize, value_size: usize) -> Result<()> {
        let docs: Vec<Document> = (0..keys)
            .flat_map(|i| (0..VERSIONS).map(move |v| (i, v)))
            .map(|(i, v)| {
                doc! {
                    "keyBytes": Self::bin(i),
                    "ts": T0 + v,
                    "valueBytes": Bson::Binary(Binary {
                        subtype: BinarySubtype::Generic,
                        bytes: value(i, value_size).to_vec(),
                    }),
                }
            })
            .collect();
        // The previous value size's versions go first (same keys and ts, other values).
        self.versions
            .delete_many(doc! {})
            .await
            .context("raw MongoDB baseline: clearing the versioned collection")?;
        for chunk in docs.chunks(1000) {
            self.db
                .run_command(doc! { "insert": self.versions.name(), "documents": chunk.to_vec() })
                .await
                .context("raw MongoDB baseline: loading the versioned collection")?;
        }
        Ok(())
    }

    /// One `find` with `$in`; returns the keys found.
    async fn get_chunk(&self, chunk: Vec<usize>) -> u64 {
        let asked = multiplicity(&chunk);
        let keys: Vec<Bson> = asked.keys().map(|i| Self::bin(*i)).collect();
        let Ok(mut cursor) = self.coll.find(doc! { "keyBytes": { "$in": keys } }).await else {
            return 0;
        };
        let mut count = 0;
        while let Ok(true) = cursor.advance().await {
            let found = cursor
                .current()
                .get_binary("keyBytes")
                .ok()
                .and_then(|b| key_index(b.bytes));
            count += found.and_then(|i| asked.get(&i)).copied().unwrap_or(0);
        }
        count
    }

    /// One unordered `update` command of upserts; returns the values not written. The documents
    /// carry the call's `ts`, as the adapter's do: with a fixed ts every upsert after the first
    /// replaced a document with an identical one, which MongoDB (and SecantusDB) skip as a no-op
    /// without writing or journaling, and the adapter's puts looked 0.36-0.43 of raw.
    async fn put_chunk(&self, chunk: Vec<usize>, value_size: usize, ts: i64) -> u64 {
        let updates: Vec<Document> = chunk
            .iter()
            .map(|i| {
                let v = Bson::Binary(Binary {
                    subtype: BinarySubtype::Generic,
                    bytes: value(*i, value_size).to_vec(),
                });
                doc! {
                    "q": { "keyBytes": Self::bin(*i) },
                    "u": { "keyBytes": Self::bin(*i), "valueBytes": v, "ts": ts },
                    "upsert": true,
                }
            })
            .collect();
        let command = doc! {
            "update": &self.collection,
            "updates": updates,
            "ordered": false,
            // The adapter's durability (default `{w: majority, j: true}`: a journal flush per
            // command), so both sides do the same work.
            "writeConcern": self.write_concern.clone(),
        };
        match self.db.run_command(command).await {
            Ok(reply) if !reply.contains_key("writeErrors") => 0,
            Ok(reply) => {
                tracing::warn!(reply = %reply, "raw MongoDB baseline: update reported write errors");
                chunk.len() as u64
            }
            Err(e) => {
                tracing::warn!(error = %e, "raw MongoDB baseline: update failed");
                chunk.len() as u64
            }
        }
    }

    /// Drops the baseline's collections.
    async fn cleanup(&self) {
        let _ = self.coll.drop().await;
        let _ = self.versions.drop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The baseline's documents carry each call's ts: with a fixed one every later upsert was
    /// an identical-document no-op, which the server skips, and the baseline measured nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn puts_write_the_calls_ts() {
        let Some(server) = conformance::launch::mongodb::mongodb().await else {
            return;
        };
        let raw = MongoRaw::open(&format!("{}&chronon_timeout_ms=120000", server.uri))
            .await
            .expect("open the baseline");
        for ts in [1_700_000_000_123i64, 1_700_000_000_456] {
            assert_eq!(raw.put_chunk(vec![3], 100, ts).await, 0);
            let stored = raw
                .coll
                .find_one(doc! { "keyBytes": MongoRaw::bin(3) })
                .await
                .expect("find")
                .expect("the document");
            assert_eq!(stored.get_i64("ts").ok(), Some(ts));
        }
        raw.cleanup().await;
    }
}
