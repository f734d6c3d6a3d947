//! `MongoOptions` and the `mongodb://` URL the `chronon` CLI hands to [`open_url`].

use std::time::Duration;

use chronon_core::KvError;
use mongodb::options::{
    Acknowledgment, ReadConcern, ReadPreference, SelectionCriteria, WriteConcern,
};

use crate::store::MongoStore;

/// The default write concern: `{w: "majority", j: true}`. Replica sets with the server default
/// `writeConcernMajorityJournalDefault` journal majority writes anyway; asking for `j` explicitly
/// makes a standalone server (or a MongoDB-compatible one) flush its journal before it
/// acknowledges, so "acknowledged" means "on disk" on every deployment.
pub fn durable_write_concern() -> WriteConcern {
    WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .journal(true)
        .build()
}

/// How a [`MongoStore`] talks to MongoDB. Every field has a documented default
/// ([`MongoOptions::default`]); change them on a default value
/// (`let mut o = MongoOptions::default(); o.concurrency = 4;`) or with the `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MongoOptions {
    /// The database holding the dataset collections. Default `chronon` (Chronon's quickstart
    /// `Constants.mongoDatabase`).
    pub database: String,
    /// The collection that remembers each dataset's kind and TTL. Default `chronon.datasets`: the
    /// dot cannot appear in a dataset name, so no dataset can ever collide with it.
    pub metadata_collection: String,
    /// Write concern of every write. Default `majority` with `j: true` ([`durable_write_concern`]):
    /// a put that returned `Ok` survives a failover, is seen by every majority/primary reader
    /// (SPEC: read-your-writes), and is in the on-disk journal, so it also survives `kill -9` of
    /// a standalone server, where `majority` alone does not imply a journal flush.
    pub write_concern: WriteConcern,
    /// Where reads go. Default the primary: reads from secondaries could miss a write that
    /// returned `Ok` a moment ago.
    pub read_preference: SelectionCriteria,
    /// Read concern of every read; default `None` (the server's default, `local`), which on the
    /// primary already sees every acknowledged write.
    pub read_concern: Option<ReadConcern>,
    /// Upper bound of every call (Chronon's default is 10,000 ms); also the driver's server
    /// selection timeout unless the URI sets `serverSelectionTimeoutMS`.
    pub timeout: Duration,
    /// Keys per `find` (`$in` list) in `multi_get`. Default 1,000.
    pub get_batch_size: usize,
    /// Upserts per `update` command in `multi_put`. Default 1,000.
    pub put_batch_size: usize,
    /// Payload bytes per `update` command before a new one is started (a command must stay under
    /// MongoDB's 16 MiB + 16 KiB). Default 8 MiB; one larger value always goes alone.
    pub max_batch_bytes: usize,
    /// Commands in flight at once within one call. Default 8.
    pub concurrency: usize,
    /// Rows per `update` command in `bulk_put`. Default 5,000.
    pub bulk_batch_size: usize,
    /// Commands in flight at once in `bulk_put`. Default 8.
    pub bulk_concurrency: usize,
    /// How long a dataset's kind and TTL, once read from the metadata collection, are reused
    /// by `multi_get`, `multi_put` and `list` before being read again. Default 1 s. Without it
    /// every call costs one extra round trip (a metadata `find` before the data), which halved
    /// the throughput of small calls. This store's own `create`/`drop_dataset` forget the entry
    /// at once, and a dataset that was missing is always looked up again; only a drop (or
    /// re-create with another kind) by *another* client can go unseen, for at most this long:
    /// in that window a put may recreate the dropped collection, without metadata, as
    /// MongoDB's upserts do. `Duration::ZERO` reads the metadata on every call.
    pub metadata_cache_ttl: Duration,
}

impl Default for MongoOptions {
    fn default() -> Self {
        MongoOptions {
            database: "chronon".to_string(),
            metadata_collection: "chronon.datasets".to_string(),
            write_concern: durable_write_concern(),
            read_preference: SelectionCriteria::ReadPreference(ReadPreference::Primary),
            read_concern: None,
            timeout: Duration::from_millis(10_000),
            get_batch_size: 1_000,
            put_batch_size: 1_000,
            max_batch_bytes: 8 * 1024 * 1024,
            concurrency: 8,
            bulk_batch_size: 5_000,
            bulk_concurrency: 8,
            metadata_cache_ttl: Duration::from_secs(1),
        }
    }
}

impl MongoOptions {
    /// The same options on another database.
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = database.into();
        self
    }

    /// The same options with another call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Splits a `mongodb://` URL into the driver's connection string and our options.
///
/// Database: `chronon_db=` if given, else the URI's path (`mongodb://host/chronon`, which the
/// driver also uses as the default auth database), else `chronon`. Write concern and read
/// preference come from the URI's standard `w=` / `journal=` / `readPreference=` when present, else
/// [`durable_write_concern`] and primary (see [`MongoOptions`]).
pub(crate) fn split_url(url: &url::Url) -> Result<(String, MongoOptions), KvError> {
    let bad =
        |msg: String| KvError::backend_msg("mongodb", format!("parsing URL {}", redact(url)), msg);
    if url.scheme() != crate::SCHEME && url.scheme() != "mongodb+srv" {
        return Err(bad(format!(
            "scheme {:?} is not mongodb or mongodb+srv",
            url.scheme()
        )));
    }
    let mut options = MongoOptions::default();
    let mut driver_url = url.clone();
    let mut kept: Vec<(String, String)> = Vec::new();
    for (k, v) in url.query_pairs() {
        let parse_usize = |v: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(format!("{k}={v} is not a positive integer")))
        };
        match k.as_ref() {
            "chronon_db" => options.database = v.to_string(),
            "chronon_metadata" => options.metadata_collection = v.to_string(),
            "chronon_timeout_ms" => {
                options.timeout = Duration::from_millis(parse_usize(&v)? as u64)
            }
            "chronon_get_batch" => options.get_batch_size = parse_usize(&v)?,
            "chronon_put_batch" => options.put_batch_size = parse_usize(&v)?,
            "chronon_concurrency" => options.concurrency = parse_usize(&v)?,
            "chronon_metadata_cache_ms" => {
                let ms = v
                    .parse::<u64>()
                    .map_err(|_| bad(format!("{k}={v} is not a whole number of milliseconds")))?;
                options.metadata_cache_ttl = Duration::from_millis(ms);
            }
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    if kept.is_empty() {
        driver_url.set_query(None);
    } else {
        driver_url.query_pairs_mut().clear().extend_pairs(kept);
    }
    if !url.query_pairs().any(|(k, _)| k == "chronon_db") {
        let path = url.path().trim_start_matches('/');
        if !path.is_empty() {
            options.database = path.to_string();
        }
    }
    if options.database.is_empty() {
        return Err(bad("the database name is empty".into()));
    }
    Ok((driver_url.to_string(), options))
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

/// Opens a [`MongoStore`] from a standard MongoDB connection string plus this crate's parameters.
///
/// `mongodb://[user:pass@]host:port[/database][?driver options][&chronon_db=NAME]`, for example
/// `mongodb://127.0.0.1:27017/chronon?w=majority&chronon_timeout_ms=5000`.
///
/// | parameter | meaning | default |
/// | --- | --- | --- |
/// | `chronon_db` | database of the dataset collections | URI path, else `chronon` |
/// | `chronon_metadata` | collection with dataset kinds and TTLs | `chronon.datasets` |
/// | `chronon_timeout_ms` | per-call timeout | `10000` |
/// | `chronon_get_batch` / `chronon_put_batch` | keys per `find` / upserts per `update` | `1000` |
/// | `chronon_concurrency` | commands in flight per call | `8` |
/// | `chronon_metadata_cache_ms` | reuse of a dataset's kind and TTL (0 = read every call) | `1000` |
///
/// Every other parameter (`w`, `readPreference`, `replicaSet`, `directConnection`, `tls`, ...)
/// goes to the driver unchanged; `w` and `readPreference` override the majority / primary
/// defaults.
pub async fn open_url(url: &url::Url) -> Result<MongoStore, KvError> {
    let (uri, options) = split_url(url)?;
    MongoStore::connect(&uri, options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> (String, MongoOptions) {
        split_url(&url::Url::parse(s).unwrap()).unwrap()
    }

    #[test]
    fn defaults_without_parameters() {
        let (uri, o) = split("mongodb://127.0.0.1:27017");
        assert_eq!(uri, "mongodb://127.0.0.1:27017");
        assert_eq!(o.database, "chronon");
        assert_eq!(o.write_concern, durable_write_concern());
        assert_eq!(o.write_concern.journal, Some(true));
        assert_eq!(o.timeout, Duration::from_secs(10));
    }

    #[test]
    fn path_names_the_database_and_chronon_db_wins() {
        assert_eq!(split("mongodb://h:1/features").1.database, "features");
        let (uri, o) = split("mongodb://h:1/features?w=1&chronon_db=other&directConnection=true");
        assert_eq!(o.database, "other");
        assert_eq!(uri, "mongodb://h:1/features?w=1&directConnection=true");
    }

    #[test]
    fn chronon_parameters_are_read_and_removed() {
        let (uri, o) = split(
            "mongodb://h:1/?chronon_timeout_ms=1500&chronon_get_batch=50&chronon_put_batch=60&chronon_concurrency=3&chronon_metadata=meta&chronon_metadata_cache_ms=0",
        );
        assert_eq!(uri, "mongodb://h:1/");
        assert_eq!(o.timeout, Duration::from_millis(1500));
        assert_eq!(
            (o.get_batch_size, o.put_batch_size, o.concurrency),
            (50, 60, 3)
        );
        assert_eq!(o.metadata_collection, "meta");
        assert_eq!(o.metadata_cache_ttl, Duration::ZERO);
    }

    #[test]
    fn bad_values_and_schemes_are_errors() {
        for bad in [
            "mongodb://h:1/?chronon_get_batch=0",
            "mongodb://h:1/?chronon_timeout_ms=x",
            "mongodb://h:1/?chronon_metadata_cache_ms=-1",
            "redis://h:1",
        ] {
            assert!(split_url(&url::Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn redact_hides_password() {
        let u = url::Url::parse("mongodb://user:secret@h:1/").unwrap();
        assert!(!redact(&u).contains("secret"));
    }
}
