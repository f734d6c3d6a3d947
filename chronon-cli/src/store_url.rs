//! Opening any store from a URL: the one place that knows every adapter's scheme, and which
//! backends this build of `chronon` has (each backend is a cargo feature of chronon-cli, all on
//! by default; see the crate README).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context as _, Result};
use chronon_core::{KvStore, MemoryStore};

/// A backend `chronon` can be built with.
#[derive(Debug)]
pub struct Backend {
    /// The cargo feature of chronon-cli that compiles it in; also the name `compare` reports
    /// and `soak --launch` accepts.
    pub feature: &'static str,
    /// Its URL scheme (the adapter crate's `SCHEME`).
    pub scheme: &'static str,
    /// Whether this binary was built with [`Backend::feature`].
    pub compiled_in: bool,
    /// Its lines in [`url_help`].
    help: &'static str,
}

/// Every backend, in `--help` order. The memory store is not here: it is always built in.
pub static BACKENDS: [Backend; 5] = [
    Backend {
        feature: "rocks",
        scheme: "rocks",
        compiled_in: cfg!(feature = "rocks"),
        help: "  rocks:///abs/path                   embedded RocksDB in that directory (created if missing)",
    },
    Backend {
        feature: "redis",
        scheme: "redis",
        compiled_in: cfg!(feature = "redis"),
        help: "  redis://127.0.0.1:6379/0            Redis (?prefix=chronon)",
    },
    Backend {
        feature: "dynamo",
        scheme: "dynamodb",
        compiled_in: cfg!(feature = "dynamo"),
        help: "  dynamodb://?endpoint=http://127.0.0.1:8000&region=us-west-2\n                                      DynamoDB (endpoint optional: AWS environment/profile chain)",
    },
    Backend {
        feature: "mongo",
        scheme: "mongodb",
        compiled_in: cfg!(feature = "mongo"),
        help: "  mongodb://127.0.0.1:27017/          MongoDB (?chronon_db=chronon)",
    },
    Backend {
        feature: "scylla",
        scheme: "scylla",
        compiled_in: cfg!(feature = "scylla"),
        help: "  scylla://127.0.0.1:9042/chronon     ScyllaDB / Cassandra",
    },
];

/// The backend whose URL scheme is `scheme`.
pub fn by_scheme(scheme: &str) -> Option<&'static Backend> {
    BACKENDS.iter().find(|b| b.scheme == scheme)
}

/// The backend called `name`, by feature (`dynamo`) or by scheme (`dynamodb`).
pub fn by_name(name: &str) -> Option<&'static Backend> {
    BACKENDS
        .iter()
        .find(|b| b.feature == name || b.scheme == name)
}

/// The one-line error for a backend this binary was built without.
pub fn not_compiled_in(backend: &Backend) -> String {
    format!(
        "{}:// support is not compiled in (build chronon-cli with --features {})",
        backend.scheme, backend.feature
    )
}

/// Fails with [`not_compiled_in`] when `name` (feature or scheme) is a backend left out of this
/// build; names that are no backend at all pass, for the caller to reject in its own words.
pub fn ensure_compiled_in(name: &str) -> Result<()> {
    match by_name(name) {
        Some(b) if !b.compiled_in => bail!(not_compiled_in(b)),
        _ => Ok(()),
    }
}

/// The URL forms this build of `chronon` accepts, for `--help` and error messages; backends left
/// out of the build are named at the end.
pub fn url_help() -> String {
    let mut help = String::from(
        "Store URLs:\n  memory://NAME                       in-process reference store (gone when the command ends)",
    );
    for b in BACKENDS.iter().filter(|b| b.compiled_in) {
        help.push('\n');
        help.push_str(b.help);
    }
    let missing: Vec<&Backend> = BACKENDS.iter().filter(|b| !b.compiled_in).collect();
    if !missing.is_empty() {
        let schemes: Vec<String> = missing.iter().map(|b| format!("{}://", b.scheme)).collect();
        let features: Vec<&str> = missing.iter().map(|b| b.feature).collect();
        help.push_str(&format!(
            "\nNot compiled into this build: {} (cargo features of chronon-cli: --features {})",
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
/// `memory://NAME` returns clients sharing one in-process store per name, so "a new client sees
/// what an old one wrote" holds for it as for a server.
pub async fn open_store(url: &str) -> Result<Arc<dyn KvStore>> {
    // Before parsing: a backend left out of the build is named as such, whatever its URL holds.
    if let Some(b) = by_scheme(url.split(':').next().unwrap_or(url)) {
        if !b.compiled_in {
            bail!(not_compiled_in(b));
        }
    }
    // `host1:9042,host2:9042` is not a valid URL authority, so Scylla parses its own URLs.
    #[cfg(feature = "scylla")]
    if url.starts_with("scylla://") {
        return Ok(Arc::new(chronon_scylla::ScyllaStore::open_str(url).await?));
    }
    let parsed =
        url::Url::parse(url).with_context(|| format!("{url:?} is not a URL\n{}", url_help()))?;
    let store: Arc<dyn KvStore> = match parsed.scheme() {
        "memory" => {
            let mut stores = memory_stores().lock().unwrap_or_else(|e| e.into_inner());
            Arc::new(stores.entry(url.to_string()).or_default().clone())
        }
        #[cfg(feature = "rocks")]
        chronon_rocks::SCHEME => Arc::new(chronon_rocks::RocksStore::open_url(&parsed).await?),
        #[cfg(feature = "redis")]
        chronon_redis::SCHEME => Arc::new(chronon_redis::open_url(&parsed).await?),
        #[cfg(feature = "dynamo")]
        chronon_dynamo::SCHEME => Arc::new(chronon_dynamo::DynamoStore::open_url(&parsed).await?),
        #[cfg(feature = "mongo")]
        chronon_mongo::SCHEME => Arc::new(chronon_mongo::open_url(&parsed).await?),
        #[cfg(feature = "scylla")]
        chronon_scylla::SCHEME => Arc::new(chronon_scylla::open_url(&parsed).await?),
        other => bail!("unknown store scheme {other:?} in {url:?}\n{}", url_help()),
    };
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_out_message_names_the_scheme_and_the_feature() {
        let redis = by_scheme("redis").unwrap();
        assert_eq!(
            not_compiled_in(redis),
            "redis:// support is not compiled in (build chronon-cli with --features redis)"
        );
        let dynamo = by_name("dynamo").unwrap();
        assert_eq!(by_name("dynamodb").unwrap().feature, "dynamo");
        assert_eq!(
            not_compiled_in(dynamo),
            "dynamodb:// support is not compiled in (build chronon-cli with --features dynamo)"
        );
        assert!(by_scheme("ftp").is_none() && by_scheme("dynamo").is_none());
        assert!(
            ensure_compiled_in("ftp").is_ok(),
            "not a backend: the caller decides"
        );
    }

    #[test]
    fn the_table_matches_the_features_and_the_adapters() {
        for b in &BACKENDS {
            assert_eq!(ensure_compiled_in(b.feature).is_ok(), b.compiled_in);
            assert_eq!(url_help().contains(b.help), b.compiled_in, "{}", b.feature);
        }
        #[cfg(feature = "rocks")]
        assert_eq!(by_scheme(chronon_rocks::SCHEME).unwrap().feature, "rocks");
        #[cfg(feature = "redis")]
        assert_eq!(by_scheme(chronon_redis::SCHEME).unwrap().feature, "redis");
        #[cfg(feature = "dynamo")]
        assert_eq!(by_scheme(chronon_dynamo::SCHEME).unwrap().feature, "dynamo");
        #[cfg(feature = "mongo")]
        assert_eq!(by_scheme(chronon_mongo::SCHEME).unwrap().feature, "mongo");
        #[cfg(feature = "scylla")]
        assert_eq!(by_scheme(chronon_scylla::SCHEME).unwrap().feature, "scylla");
    }

    #[cfg(not(feature = "redis"))]
    #[tokio::test]
    async fn a_compiled_out_scheme_is_one_clear_line() {
        let err = open_store("redis://127.0.0.1:1/0").await.err().unwrap();
        assert_eq!(
            err.to_string(),
            "redis:// support is not compiled in (build chronon-cli with --features redis)"
        );
        assert!(url_help().contains("Not compiled into this build: redis://"));
    }

    #[tokio::test]
    async fn an_unknown_scheme_is_still_unknown() {
        let err = open_store("ftp://x").await.err().unwrap();
        assert!(err.to_string().starts_with("unknown store scheme \"ftp\""));
    }
}
