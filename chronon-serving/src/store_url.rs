//! Opening any store from a URL: the one place that knows every backend, its name, its URL scheme
//! and whether this build has it.
//!
//! Each backend is one name used everywhere (URL scheme, cargo feature, [`KvStore::backend`],
//! `chronon compare` reports, `chronon soak --launch`, `CHRONON_REQUIRE_BACKENDS`): `memory`,
//! `rocks`, `redis`, `dynamodb`, `mongodb`, `scylla`. Every backend but `memory` is a cargo feature
//! of this crate that compiles in its adapter crate; none is on by default, so a team serving from
//! one database builds only that adapter (`chronon-serving = { features = ["redis"] }`). The
//! `chronon` binary turns them all on through its own features of the same names.
//!
//! A URL of a backend left out of the build fails with one line naming the feature to turn on
//! ([`not_compiled_in`]); a URL that does not parse, or names no backend, is a
//! [`KvError::Config`] carrying [`url_help`].
//!
//! # Adding a backend
//!
//! 1. **The adapter crate** `chronon-NAME`, on the floor plan every adapter follows: `lib.rs`
//!    (crate docs, `SCHEME`, re-exports), `config.rs` (the URL and its options, on
//!    `chronon_core::config`), `store.rs` (`NAMEStore::open(options)` / `open_url(&str)` and the
//!    thin [`KvStore`] implementation, whose `backend()` returns the backend name) over
//!    `client.rs`, `datasets.rs`, `read.rs` and `write.rs`, the data layout in `layout.rs`, the
//!    mapping of driver errors to [`KvError`] in `error.rs`, and a `README.md` (URL, options,
//!    layout, limits). Its tests run the conformance suite against a real server.
//! 2. **One row in [`BACKENDS`]** here (name = scheme, `compiled_in: cfg!(feature = "NAME")`, its
//!    help line), **one arm in [`open_store`]**, and **one cargo feature** `NAME =
//!    ["dep:chronon-NAME"]` in `chronon-serving/Cargo.toml`, forwarded by chronon-cli's feature
//!    of the same name (`NAME = ["chronon-serving/NAME", ...]`, on by default there).
//! 3. **A launcher** in `conformance/src/launch/NAME.rs` if the database can run locally (from
//!    `CHRONON_*` variables, Docker or a child process), and how to get it in
//!    `conformance/DATABASES.md`; `chronon compare` and `chronon soak --launch` use it.
//! 4. **CI**: add the name to `CHRONON_REQUIRE_BACKENDS` in `.ci/run` (and `./scripts/setup` for
//!    the server), so a skipped backend fails the run instead of hiding a regression.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chronon_core::{KvError, KvStore, MemoryStore};

/// A backend a build of this crate can open.
#[derive(Debug)]
pub struct Backend {
    /// The backend's one name: its cargo feature, [`KvStore::backend`], and what reports and
    /// `CHRONON_REQUIRE_BACKENDS` call it.
    pub name: &'static str,
    /// Its URL scheme (the adapter crate's `SCHEME`; the same as the name).
    pub scheme: &'static str,
    /// Whether this build has the backend (its cargo feature is on).
    pub compiled_in: bool,
    /// Its lines in [`url_help`].
    pub help: &'static str,
}

/// The name (and scheme) of the in-process reference store, always compiled in.
pub const MEMORY: &str = "memory";

/// Every backend, in `--help` order.
pub static BACKENDS: [Backend; 6] = [
    Backend {
        name: MEMORY,
        scheme: MEMORY,
        compiled_in: true,
        help: "  memory://NAME                       in-process reference store (one per NAME, gone when the process ends)",
    },
    Backend {
        name: "rocks",
        scheme: "rocks",
        compiled_in: cfg!(feature = "rocks"),
        help: "  rocks:///abs/path                   embedded RocksDB in that directory (created if missing)",
    },
    Backend {
        name: "redis",
        scheme: "redis",
        compiled_in: cfg!(feature = "redis"),
        help: "  redis://127.0.0.1:6379/0            Redis (?prefix=chronon; rediss:// for TLS)",
    },
    Backend {
        name: "dynamodb",
        scheme: "dynamodb",
        compiled_in: cfg!(feature = "dynamodb"),
        help: "  dynamodb://?endpoint=http://127.0.0.1:8000&region=us-west-2\n                                      DynamoDB (endpoint optional: AWS environment/profile chain)",
    },
    Backend {
        name: "mongodb",
        scheme: "mongodb",
        compiled_in: cfg!(feature = "mongodb"),
        help: "  mongodb://127.0.0.1:27017/          MongoDB (?chronon_db=chronon)",
    },
    Backend {
        name: "scylla",
        scheme: "scylla",
        compiled_in: cfg!(feature = "scylla"),
        help: "  scylla://127.0.0.1:9042/chronon     ScyllaDB / Cassandra",
    },
];

/// The backend called `name`.
pub fn by_name(name: &str) -> Option<&'static Backend> {
    BACKENDS.iter().find(|b| b.name == name)
}

/// The backend whose URL scheme is `scheme`.
pub fn by_scheme(scheme: &str) -> Option<&'static Backend> {
    // `rediss://` is Redis over TLS.
    let scheme = if scheme == "rediss" { "redis" } else { scheme };
    BACKENDS.iter().find(|b| b.scheme == scheme)
}

/// The backend a store URL names by its scheme (whether or not it is compiled in).
pub fn backend_of_url(url: &str) -> Option<&'static Backend> {
    by_scheme(scheme_of(url))
}

/// The text before the first `:` of `url` (all of it when there is none).
fn scheme_of(url: &str) -> &str {
    url.split(':').next().unwrap_or(url)
}

/// The one-line error for a backend this build was made without.
pub fn not_compiled_in(backend: &Backend) -> KvError {
    KvError::config(
        backend.name,
        format!(
            "{}:// support is not compiled in (build with --features {})",
            backend.scheme, backend.name
        ),
    )
}

/// Fails with [`not_compiled_in`] when `name` is a backend left out of this build; names that
/// are no backend at all pass, for the caller to reject in its own words.
pub fn ensure_compiled_in(name: &str) -> Result<(), KvError> {
    match by_name(name) {
        Some(b) if !b.compiled_in => Err(not_compiled_in(b)),
        _ => Ok(()),
    }
}

/// The URL forms this build accepts, for `--help` and error messages; backends left out of the
/// build are named at the end with the features that bring them in.
pub fn url_help() -> String {
    let mut help = String::from("Store URLs:");
    for b in BACKENDS.iter().filter(|b| b.compiled_in) {
        help.push('\n');
        help.push_str(b.help);
    }
    let missing: Vec<&Backend> = BACKENDS.iter().filter(|b| !b.compiled_in).collect();
    if !missing.is_empty() {
        let schemes: Vec<String> = missing.iter().map(|b| format!("{}://", b.scheme)).collect();
        let features: Vec<&str> = missing.iter().map(|b| b.name).collect();
        help.push_str(&format!(
            "\nNot compiled into this build: {} (cargo features: --features {})",
            schemes.join(", "),
            features.join(",")
        ));
    }
    help
}

fn memory_stores() -> &'static Mutex<HashMap<String, MemoryStore>> {
    static STORES: OnceLock<Mutex<HashMap<String, MemoryStore>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// Opens a new client of the store `url` names.
///
/// `memory://NAME` returns clients sharing one in-process store per URL, so "a new client sees
/// what an old one wrote" holds for it as for a server.
pub async fn open_store(url: &str) -> Result<Arc<dyn KvStore>, KvError> {
    // Before parsing: a backend left out of the build is named as such, whatever its URL holds.
    let backend = match backend_of_url(url) {
        Some(b) if !b.compiled_in => return Err(not_compiled_in(b)),
        Some(b) => b.name,
        None => "store",
    };
    // `host1:9042,host2:9042` is not a valid URL authority, so Scylla parses its own URLs.
    #[cfg(feature = "scylla")]
    if backend == "scylla" {
        return Ok(Arc::new(chronon_scylla::ScyllaStore::open_url(url).await?));
    }
    // The messages leave the URL out: it may hold a password.
    let parsed = url::Url::parse(url).map_err(|e| {
        KvError::config(
            backend,
            format!("the store URL is not a URL ({e})\n{}", url_help()),
        )
    })?;
    let store: Arc<dyn KvStore> = match parsed.scheme() {
        MEMORY => {
            let mut stores = memory_stores().lock().unwrap_or_else(|e| e.into_inner());
            Arc::new(stores.entry(url.to_string()).or_default().clone())
        }
        #[cfg(feature = "rocks")]
        chronon_rocks::SCHEME => Arc::new(chronon_rocks::RocksStore::open_url(url).await?),
        #[cfg(feature = "redis")]
        chronon_redis::SCHEME | chronon_redis::TLS_SCHEME => {
            Arc::new(chronon_redis::RedisStore::open_url(url).await?)
        }
        #[cfg(feature = "dynamodb")]
        chronon_dynamo::SCHEME => Arc::new(chronon_dynamo::DynamoStore::open_url(url).await?),
        #[cfg(feature = "mongodb")]
        chronon_mongo::SCHEME => Arc::new(chronon_mongo::MongoStore::open_url(url).await?),
        other => {
            return Err(KvError::config(
                backend,
                format!("unknown store scheme {other:?}\n{}", url_help()),
            ))
        }
    };
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_out_message_names_the_scheme_and_the_feature() {
        let redis = by_scheme("redis").unwrap();
        assert!(not_compiled_in(redis)
            .to_string()
            .contains("redis:// support is not compiled in (build with --features redis)"));
        let dynamo = by_name("dynamodb").unwrap();
        assert!(not_compiled_in(dynamo)
            .to_string()
            .contains("dynamodb:// support is not compiled in (build with --features dynamodb)"));
        assert_eq!(not_compiled_in(dynamo).kind(), "Config");
        assert!(by_scheme("ftp").is_none() && by_name("dynamo").is_none());
        assert!(
            ensure_compiled_in("ftp").is_ok(),
            "not a backend: the caller decides"
        );
    }

    #[test]
    fn the_table_has_one_name_per_backend_matching_features_and_adapters() {
        for b in &BACKENDS {
            assert_eq!(b.name, b.scheme, "one name per backend");
            assert_eq!(ensure_compiled_in(b.name).is_ok(), b.compiled_in);
            assert_eq!(url_help().contains(b.help), b.compiled_in, "{}", b.name);
        }
        assert!(by_name(MEMORY).is_some_and(|b| b.compiled_in));
        #[cfg(feature = "rocks")]
        assert_eq!(by_scheme(chronon_rocks::SCHEME).unwrap().name, "rocks");
        #[cfg(feature = "redis")]
        assert_eq!(by_scheme(chronon_redis::SCHEME).unwrap().name, "redis");
        #[cfg(feature = "dynamodb")]
        assert_eq!(by_scheme(chronon_dynamo::SCHEME).unwrap().name, "dynamodb");
        #[cfg(feature = "mongodb")]
        assert_eq!(by_scheme(chronon_mongo::SCHEME).unwrap().name, "mongodb");
        #[cfg(feature = "scylla")]
        assert_eq!(by_scheme(chronon_scylla::SCHEME).unwrap().name, "scylla");
    }

    #[cfg(not(feature = "redis"))]
    #[tokio::test]
    async fn a_compiled_out_scheme_is_one_clear_line() {
        let err = open_store("redis://127.0.0.1:1/0").await.err().unwrap();
        assert_eq!(err.kind(), "Config");
        assert!(err
            .to_string()
            .contains("redis:// support is not compiled in (build with --features redis)"));
        assert!(!err.to_string().contains('\n'), "one line: {err}");
        let help = url_help();
        let left_out = help
            .lines()
            .find(|l| l.starts_with("Not compiled into this build:"));
        assert!(left_out.is_some_and(|l| l.contains("redis://")), "{help}");
    }

    #[tokio::test]
    async fn unknown_schemes_and_bad_urls_are_config_errors() {
        let err = open_store("ftp://x").await.err().unwrap();
        assert_eq!(err.kind(), "Config");
        assert!(
            err.to_string().contains("unknown store scheme \"ftp\""),
            "{err}"
        );
        let err = open_store("not a url").await.err().unwrap();
        assert_eq!(err.kind(), "Config");
        assert!(err.to_string().contains("is not a URL"), "{err}");
        let err = open_store("ftp://user:secret@x").await.err().unwrap();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[tokio::test]
    async fn memory_stores_are_shared_per_name() {
        use chronon_core::DatasetProps;
        let a = open_store("memory://shared_per_name").await.unwrap();
        a.create("DS", &DatasetProps::for_dataset("DS"))
            .await
            .unwrap();
        let again = open_store("memory://shared_per_name").await.unwrap();
        let other = open_store("memory://another_name").await.unwrap();
        assert!(again.dataset_props("DS").await.is_ok());
        assert!(other.dataset_props("DS").await.is_err());
    }
}
