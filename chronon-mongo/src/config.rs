//! [`MongoOptions`]: how a [`MongoStore`](crate::MongoStore) talks to MongoDB, its documented
//! defaults, and the `mongodb://` URL the `chronon` CLI hands to
//! [`MongoStore::open_url`](crate::MongoStore::open_url).

use std::time::Duration;

use chronon_core::config::{redact_url, UrlParams};
use chronon_core::metadata_cache::METADATA_CACHE_TTL_PARAM;
use chronon_core::KvError;
use mongodb::error::ErrorKind;
use mongodb::options::{
    Acknowledgment, ConnectionString, ReadConcern, ReadPreference, SelectionCriteria, WriteConcern,
};

use crate::error::BACKEND;

/// The scheme of a connection string whose hosts come from DNS SRV records.
const SRV_SCHEME: &str = "mongodb+srv";
/// What this crate's own URL parameters start with (besides the shared metadata cache TTL).
const PARAM_PREFIX: &str = "chronon_";

/// How a [`MongoStore`](crate::MongoStore) talks to MongoDB. Every field has a documented default
/// ([`MongoOptions::default`]); change them on [`MongoOptions::new`]
/// (`let mut o = MongoOptions::new(uri); o.concurrency = 4;`) or with the `with_*` methods.
#[derive(Clone)]
#[non_exhaustive]
pub struct MongoOptions {
    /// The driver's connection string (`mongodb://[user:pass@]host:port[/db][?driver options]`).
    /// Default `mongodb://127.0.0.1:27017`. Its own `w=`, `readPreference=` and `readConcernLevel=`
    /// win over the fields below. Never printed with its password.
    pub uri: String,
    /// The database holding the dataset collections. Default `chronon` (Chronon's quickstart
    /// `Constants.mongoDatabase`).
    pub database: String,
    /// The collection that remembers each dataset's kind and TTL. Default `chronon.datasets`: the
    /// dot cannot appear in a dataset name, so no dataset can ever collide with it.
    pub metadata_collection: String,
    /// Write concern of every write. Default `majority` with `j: true`
    /// ([`MongoOptions::durable_write_concern`]): a put that returned `Ok` survives a failover,
    /// is seen by every majority/primary reader (the contract's read-your-writes), and is in the
    /// on-disk journal, so it also survives `kill -9` of a standalone server, where `majority`
    /// alone does not imply a journal flush.
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
    /// Rows per `insert`/`update` command in `bulk_put`. Default 1,000: with 8 in flight on a
    /// server that writes them one after another (SecantusDB, ~2,000-3,400 documents/s), a
    /// command waits behind 7 others, so 5,000-row commands took 10-12 s and timed out at the
    /// default timeout; 1,000 rows keep that under 5 s while a real `mongod` stays as busy.
    pub bulk_batch_size: usize,
    /// Commands in flight at once in `bulk_put`. Default 8.
    pub bulk_concurrency: usize,
    /// How long a dataset's kind and TTL, once read from the metadata collection, are reused
    /// by `multi_get`, `multi_put` and `list` before being read again. Default 1 s: without it
    /// every call costs one extra round trip (a metadata `find` before the data). This store's
    /// own `create`/`drop_dataset` forget the entry at once, and a dataset that was missing is
    /// always looked up again; only a drop (or re-create with another kind) by *another* client
    /// can go unseen, for at most this long: in that window a put may recreate the dropped
    /// collection, without metadata, as MongoDB's upserts do. `Duration::ZERO` reads the
    /// metadata on every call.
    pub metadata_cache_ttl: Duration,
}

impl Default for MongoOptions {
    fn default() -> Self {
        MongoOptions {
            uri: "mongodb://127.0.0.1:27017".to_string(),
            database: "chronon".to_string(),
            metadata_collection: "chronon.datasets".to_string(),
            write_concern: MongoOptions::durable_write_concern(),
            read_preference: SelectionCriteria::ReadPreference(ReadPreference::Primary),
            read_concern: None,
            timeout: Duration::from_millis(10_000),
            get_batch_size: 1_000,
            put_batch_size: 1_000,
            max_batch_bytes: 8 * 1024 * 1024,
            concurrency: 8,
            bulk_batch_size: 1_000,
            bulk_concurrency: 8,
            metadata_cache_ttl: Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for MongoOptions {
    // Hand-written so a password in the connection string never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoOptions")
            .field("uri", &redact_url(&self.uri))
            .field("database", &self.database)
            .field("metadata_collection", &self.metadata_collection)
            .field("write_concern", &self.write_concern)
            .field("read_preference", &self.read_preference)
            .field("read_concern", &self.read_concern)
            .field("timeout", &self.timeout)
            .field("get_batch_size", &self.get_batch_size)
            .field("put_batch_size", &self.put_batch_size)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("concurrency", &self.concurrency)
            .field("bulk_batch_size", &self.bulk_batch_size)
            .field("bulk_concurrency", &self.bulk_concurrency)
            .field("metadata_cache_ttl", &self.metadata_cache_ttl)
            .finish()
    }
}

impl MongoOptions {
    /// The defaults, on the server of the connection string `uri`.
    pub fn new(uri: impl Into<String>) -> Self {
        MongoOptions {
            uri: uri.into(),
            ..MongoOptions::default()
        }
    }

    /// The default write concern: `{w: "majority", j: true}`. Replica sets with the server
    /// default `writeConcernMajorityJournalDefault` journal majority writes anyway; asking for `j`
    /// explicitly makes a standalone server (or a MongoDB-compatible one) flush its journal before
    /// it acknowledges, so "acknowledged" means "on disk" on every deployment.
    pub fn durable_write_concern() -> WriteConcern {
        WriteConcern::builder()
            .w(Acknowledgment::Majority)
            .journal(true)
            .build()
    }

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

    /// Options from a standard MongoDB connection string plus this crate's parameters.
    ///
    /// `mongodb://[user:pass@]host:port[/database][?driver options][&chronon_db=NAME]`, for
    /// example `mongodb://127.0.0.1:27017/chronon?w=majority&chronon_timeout_ms=5000`.
    ///
    /// | parameter | meaning | default |
    /// | --- | --- | --- |
    /// | `chronon_db` | database of the dataset collections | URI path, else `chronon` |
    /// | `chronon_metadata` | collection with dataset kinds and TTLs | `chronon.datasets` |
    /// | `chronon_timeout_ms` | per-call timeout | `10000` |
    /// | `chronon_get_batch` / `chronon_put_batch` | keys per `find` / upserts per `update` | `1000` |
    /// | `chronon_concurrency` | commands in flight per call | `8` |
    /// | `metadata_cache_ttl_ms` | reuse of a dataset's kind and TTL (0 = read every call) | `1000` |
    ///
    /// These are read with the core's one URL policy (an unknown `chronon_*` parameter or a
    /// repeated one is an error listing the known ones). Every other parameter (`w`,
    /// `readPreference`, `replicaSet`, `directConnection`, `tls`, ...) goes to the driver
    /// unchanged in [`MongoOptions::uri`], and the driver rejects the ones it does not know; `w`
    /// and `readPreference` override the majority / primary defaults. The database is
    /// `chronon_db=` if given, else the URI's path (`mongodb://host/chronon`, which the driver
    /// also uses as the default auth database), else `chronon`.
    pub fn from_url(url: &url::Url) -> Result<Self, KvError> {
        if url.scheme() != crate::SCHEME && url.scheme() != SRV_SCHEME {
            return Err(KvError::config(
                BACKEND,
                format!(
                    "scheme {:?} is not {} or {SRV_SCHEME} (in {})",
                    url.scheme(),
                    crate::SCHEME,
                    redact_url(url.as_str())
                ),
            ));
        }
        let (ours, driver): (Vec<_>, Vec<_>) = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .partition(|(k, _)| k.starts_with(PARAM_PREFIX) || k == METADATA_CACHE_TTL_PARAM);
        let mut params = UrlParams::new(BACKEND, url.as_str(), ours);
        let mut options = MongoOptions::default();
        let positive = |params: &UrlParams, name: &str, n: usize| {
            if n == 0 {
                Err(params.invalid(name, "0", "a positive integer"))
            } else {
                Ok(n)
            }
        };
        match params.string("chronon_db") {
            Some(db) => options.database = db,
            None => {
                let path = url.path().trim_start_matches('/');
                if !path.is_empty() {
                    options.database = path.to_string();
                }
            }
        }
        if let Some(m) = params.string("chronon_metadata") {
            options.metadata_collection = m;
        }
        if let Some(t) = params.millis("chronon_timeout_ms")? {
            if t.is_zero() {
                return Err(params.invalid("chronon_timeout_ms", "0", "a positive duration"));
            }
            options.timeout = t;
        }
        if let Some(n) = params.usize("chronon_get_batch")? {
            options.get_batch_size = positive(&params, "chronon_get_batch", n)?;
        }
        if let Some(n) = params.usize("chronon_put_batch")? {
            options.put_batch_size = positive(&params, "chronon_put_batch", n)?;
        }
        if let Some(n) = params.usize("chronon_concurrency")? {
            options.concurrency = positive(&params, "chronon_concurrency", n)?;
        }
        if let Some(ttl) = params.millis(METADATA_CACHE_TTL_PARAM)? {
            options.metadata_cache_ttl = ttl;
        }
        params.finish()?;
        let mut driver_url = url.clone();
        if driver.is_empty() {
            driver_url.set_query(None);
        } else {
            driver_url.query_pairs_mut().clear().extend_pairs(driver);
        }
        options.uri = driver_url.to_string();
        options.validate()?;
        Ok(options)
    }

    /// Checks the options make a usable store: a database and metadata collection name, a
    /// non-zero timeout, batch sizes and concurrency, and a connection string the driver
    /// accepts (its message, never the string itself, is the error). Every problem is
    /// `KvError::Config`; [`MongoStore::open`](crate::MongoStore::open) calls this first.
    pub fn validate(&self) -> Result<(), KvError> {
        let bad = |message: String| Err(KvError::config(BACKEND, message));
        if self.database.is_empty() {
            return bad("the database name is empty".to_string());
        }
        if self.metadata_collection.is_empty() {
            return bad("the metadata collection name is empty".to_string());
        }
        if self.timeout.is_zero() {
            return bad("the call timeout is zero".to_string());
        }
        for (name, n) in [
            ("get_batch_size", self.get_batch_size),
            ("put_batch_size", self.put_batch_size),
            ("max_batch_bytes", self.max_batch_bytes),
            ("concurrency", self.concurrency),
            ("bulk_batch_size", self.bulk_batch_size),
            ("bulk_concurrency", self.bulk_concurrency),
        ] {
            if n == 0 {
                return bad(format!("{name} is zero"));
            }
        }
        if let Err(e) = ConnectionString::parse(&self.uri) {
            let reason = match &*e.kind {
                ErrorKind::InvalidArgument { message, .. } => message.clone(),
                _ => "not a MongoDB connection string".to_string(),
            };
            return bad(format!(
                "connection string {}: {reason}",
                redact_url(&self.uri)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> MongoOptions {
        MongoOptions::from_url(&url::Url::parse(s).unwrap()).unwrap()
    }

    #[test]
    fn defaults_without_parameters() {
        let o = split("mongodb://127.0.0.1:27017");
        assert_eq!(o.uri, "mongodb://127.0.0.1:27017");
        assert_eq!(o.database, "chronon");
        assert_eq!(o.write_concern, MongoOptions::durable_write_concern());
        assert_eq!(o.write_concern.journal, Some(true));
        assert_eq!(o.timeout, Duration::from_secs(10));
    }

    #[test]
    fn path_names_the_database_and_chronon_db_wins() {
        assert_eq!(split("mongodb://h:1/features").database, "features");
        let o = split("mongodb://h:1/features?w=1&chronon_db=other&directConnection=true");
        assert_eq!(o.database, "other");
        assert_eq!(o.uri, "mongodb://h:1/features?w=1&directConnection=true");
    }

    #[test]
    fn chronon_parameters_are_read_and_removed() {
        let o = split(
            "mongodb://h:1/?chronon_timeout_ms=1500&chronon_get_batch=50&chronon_put_batch=60&chronon_concurrency=3&chronon_metadata=meta&metadata_cache_ttl_ms=0",
        );
        assert_eq!(o.uri, "mongodb://h:1/");
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
            "mongodb://h:1/?metadata_cache_ttl_ms=-1",
            "mongodb://h:1/?chronon_metadata_cache_ms=5",
            "mongodb://h:1/?chronon_get_batch=5&chronon_get_batch=6",
            "mongodb://h:1/?notAnOption=1",
            "mongodb://h:1/?chronon_db=",
            "redis://h:1",
        ] {
            let err = MongoOptions::from_url(&url::Url::parse(bad).unwrap()).unwrap_err();
            assert!(matches!(err, KvError::Config { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_parameters_are_named_with_the_known_ones() {
        let url = url::Url::parse("mongodb://h:1/?chronon_tiemout_ms=5").unwrap();
        let err = MongoOptions::from_url(&url).unwrap_err().to_string();
        assert!(err.contains("chronon_tiemout_ms"), "{err}");
        assert!(err.contains("chronon_timeout_ms"), "{err}");
        assert!(err.contains(METADATA_CACHE_TTL_PARAM), "{err}");
    }

    #[test]
    fn passwords_are_never_shown() {
        let o = MongoOptions::new("mongodb://user:secret@h:1/");
        assert!(!format!("{o:?}").contains("secret"));
        let url = url::Url::parse("mongodb://user:secret@h:1/?chronon_get_batch=0").unwrap();
        let err = MongoOptions::from_url(&url).unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
