//! The `Api` (Chronon's `ai.chronon.online.Api`): the one object a serving deployment builds from
//! its configuration, handing out the KV store (`genKvStore`), a stream decoder per group-by
//! (`streamDecoder`), the response logger (`logResponse`) and the fetcher (`buildFetcher`).
//!
//! [`Api::from_config`] opens `store_url` through [`open_store`] (with the backends this build's
//! cargo features bring in); [`Api::new`] takes a store that is already open (a test's, or a
//! custom [`KvStore`] implementation).
//!
//! Options (strings, as Chronon's `userConf` map):
//! - `timeout_ms`: fetch timeout (default 10000); `metadata_ttl_ms`: definition cache (10000).
//! - `decoder`: `json` (default) or `csv`, the decoder for group-bys without a registered one.
//! - `logging`: `true` to log join responses (default `false`); `log_dataset`,
//!   `log_sample_rate` (0..1), `log_buffer`, `log_batch_size`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::fetcher::{Fetcher, FetcherOptions};
use crate::groupby::GroupBy;
use crate::logging::{LoggableResponse, LoggingOptions, ResponseLogger};
use crate::store_url::{backend_of_url, open_store};
use crate::stream::{CsvDecoder, JsonDecoder, StreamDecoder};
use chronon_core::{KvError, KvStore};

/// Builds the decoder of a group-by's stream.
pub type DecoderFactory = Arc<dyn Fn(&GroupBy) -> Arc<dyn StreamDecoder> + Send + Sync>;

/// The configuration an `Api` is built from: the store URL and options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiConfig {
    /// The store URL (`rocks:///path`, `redis://host:port`, `memory://NAME`, ...; see
    /// [`url_help`](crate::store_url::url_help)).
    pub store_url: String,
    /// Options (see the module docs).
    pub options: BTreeMap<String, String>,
}

impl ApiConfig {
    /// A config for `store_url` without options.
    pub fn new(store_url: impl Into<String>) -> Self {
        ApiConfig {
            store_url: store_url.into(),
            options: BTreeMap::new(),
        }
    }

    /// The same config with one more option.
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.options.insert(key.to_string(), value.to_string());
        self
    }

    fn parse<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, KvError> {
        match self.options.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                let backend = backend_of_url(&self.store_url).map_or("store", |b| b.name);
                KvError::config(backend, format!("option {key} = {v:?} cannot be parsed"))
            }),
        }
    }
}

/// Combines a store, decoders, a fetcher and response logging (see the module docs).
pub struct Api {
    store: Arc<dyn KvStore>,
    config: ApiConfig,
    decoders: RwLock<HashMap<String, DecoderFactory>>,
    logger: Option<Arc<ResponseLogger>>,
    fetcher: Mutex<Option<Arc<Fetcher>>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("store", &self.store.backend())
            .field("config", &self.config)
            .field("logging", &self.logger.is_some())
            .finish()
    }
}

impl Api {
    /// An Api over an open store (starts the logger when `logging=true`).
    pub async fn new(store: Arc<dyn KvStore>, config: ApiConfig) -> Result<Self, KvError> {
        let logger = if config.parse("logging", false)? {
            let defaults = LoggingOptions::default();
            let options = LoggingOptions {
                dataset: config
                    .options
                    .get("log_dataset")
                    .cloned()
                    .unwrap_or(defaults.dataset),
                buffer: config.parse("log_buffer", defaults.buffer)?,
                batch_size: config.parse("log_batch_size", defaults.batch_size)?,
                flush_interval: defaults.flush_interval,
                sample_rate: config.parse("log_sample_rate", defaults.sample_rate)?,
            };
            Some(ResponseLogger::start(store.clone(), options).await?)
        } else {
            None
        };
        Ok(Api {
            store,
            config,
            decoders: RwLock::new(HashMap::new()),
            logger,
            fetcher: Mutex::new(None),
        })
    }

    /// Opens the store at `config.store_url` (see [`open_store`]) and builds the Api.
    pub async fn from_config(config: ApiConfig) -> Result<Self, KvError> {
        let store = open_store(&config.store_url).await?;
        Self::new(store, config).await
    }

    /// The KV store (Chronon's `genKvStore`).
    pub fn gen_kv_store(&self) -> Arc<dyn KvStore> {
        self.store.clone()
    }

    /// Registers the decoder factory of one group-by (others use the `decoder` option).
    pub fn register_decoder(&self, group_by: &str, factory: DecoderFactory) {
        self.decoders
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group_by.to_string(), factory);
    }

    /// The decoder of a group-by's stream (Chronon's `streamDecoder(groupByServingInfo)`).
    pub fn stream_decoder(&self, gb: &GroupBy) -> Arc<dyn StreamDecoder> {
        if let Some(f) = self
            .decoders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&gb.name)
        {
            return f(gb);
        }
        match self.config.options.get("decoder").map(String::as_str) {
            Some("csv") => Arc::new(CsvDecoder::new(gb.schema.clone())),
            _ => Arc::new(JsonDecoder::new(gb.schema.clone())),
        }
    }

    /// Logs one response (Chronon's `logResponse`); a no-op unless logging is on.
    pub fn log_response(&self, response: LoggableResponse) {
        if let Some(l) = &self.logger {
            l.log(response);
        }
    }

    /// The response logger, when logging is on.
    pub fn logger(&self) -> Option<&Arc<ResponseLogger>> {
        self.logger.as_ref()
    }

    /// The fetcher (Chronon's `buildFetcher`), built once and shared.
    pub fn build_fetcher(&self) -> Result<Arc<Fetcher>, KvError> {
        let mut slot = self.fetcher.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = slot.as_ref() {
            return Ok(f.clone());
        }
        let defaults = FetcherOptions::default();
        let options = FetcherOptions {
            timeout: Duration::from_millis(
                self.config
                    .parse("timeout_ms", defaults.timeout.as_millis() as u64)?,
            ),
            metadata_ttl: Duration::from_millis(
                self.config
                    .parse("metadata_ttl_ms", defaults.metadata_ttl.as_millis() as u64)?,
            ),
        };
        let mut fetcher = Fetcher::new(self.store.clone(), options);
        if let Some(l) = &self.logger {
            fetcher = fetcher.with_logger(l.clone());
        }
        let fetcher = Arc::new(fetcher);
        *slot = Some(fetcher.clone());
        Ok(fetcher)
    }

    /// Flushes logged responses (call before the process exits).
    pub async fn shutdown(&self) {
        if let Some(l) = &self.logger {
            l.shutdown().await;
        }
    }
}
