//! Opening any store from a URL: the one place that knows every adapter's scheme.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{bail, Context as _, Result};
use chronon_core::{KvStore, MemoryStore};

/// The URL forms `chronon` accepts, for `--help` and error messages.
pub const URL_HELP: &str = "\
Store URLs:
  memory://NAME                       in-process reference store (gone when the command ends)
  rocks:///abs/path                   embedded RocksDB in that directory (created if missing)
  redis://127.0.0.1:6379/0            Redis (?prefix=chronon)
  dynamodb://?endpoint=http://127.0.0.1:8000&region=us-west-2
                                      DynamoDB (endpoint optional: AWS environment/profile chain)
  mongodb://127.0.0.1:27017/          MongoDB (?chronon_db=chronon)
  scylla://127.0.0.1:9042/chronon     ScyllaDB / Cassandra";

fn memory_stores() -> &'static Mutex<HashMap<String, MemoryStore>> {
    static STORES: OnceLock<Mutex<HashMap<String, MemoryStore>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// Opens a new client of the store `url` names.
///
/// `memory://NAME` returns clients sharing one in-process store per name, so "a new client sees
/// what an old one wrote" holds for it as for a server.
pub async fn open_store(url: &str) -> Result<Arc<dyn KvStore>> {
    // `host1:9042,host2:9042` is not a valid URL authority, so Scylla parses its own URLs.
    if url.starts_with("scylla://") {
        return Ok(Arc::new(chronon_scylla::ScyllaStore::open_str(url).await?));
    }
    let parsed =
        url::Url::parse(url).with_context(|| format!("{url:?} is not a URL\n{URL_HELP}"))?;
    let store: Arc<dyn KvStore> = match parsed.scheme() {
        "memory" => {
            let mut stores = memory_stores().lock().unwrap_or_else(|e| e.into_inner());
            Arc::new(stores.entry(url.to_string()).or_default().clone())
        }
        chronon_rocks::SCHEME => Arc::new(chronon_rocks::RocksStore::open_url(&parsed).await?),
        chronon_redis::SCHEME => Arc::new(chronon_redis::open_url(&parsed).await?),
        chronon_dynamo::SCHEME => Arc::new(chronon_dynamo::DynamoStore::open_url(&parsed).await?),
        chronon_mongo::SCHEME => Arc::new(chronon_mongo::open_url(&parsed).await?),
        chronon_scylla::SCHEME => Arc::new(chronon_scylla::open_url(&parsed).await?),
        other => bail!("unknown store scheme {other:?} in {url:?}\n{URL_HELP}"),
    };
    Ok(store)
}
