//! What the fetcher is asked and what it answers: [`FetchRequest`], [`FetchResponse`] and
//! [`FetchError`]. A module of their own so the response logger and the fetcher both use them
//! without importing each other.

use std::collections::BTreeMap;
use std::time::Duration;

use chronon_core::KvError;

use crate::groupby::METADATA_DATASET;
use crate::stream::Value;

/// One request: a group-by or join name, its keys, and optionally the query time.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    /// The group-by or join name.
    pub name: String,
    /// Key name → value (JSON: strings, numbers, booleans; converted to the key column's type).
    pub keys: BTreeMap<String, serde_json::Value>,
    /// The query time `q` in epoch millis; `None` for now.
    pub at_millis: Option<i64>,
}

impl FetchRequest {
    /// A request for `name` with `keys` at the current time.
    pub fn new<K: Into<String>, V: Into<serde_json::Value>>(
        name: impl Into<String>,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        FetchRequest {
            name: name.into(),
            keys: keys
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            at_millis: None,
        }
    }

    /// The same request at query time `q`.
    pub fn at(mut self, q: i64) -> Self {
        self.at_millis = Some(q);
        self
    }
}

/// Why one request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// No such group-by or join in `CHRONON_METADATA`.
    #[error("{kind} {name:?} is not defined in {METADATA_DATASET}")]
    NotFound {
        /// `group-by` or `join`.
        kind: &'static str,
        /// The name asked for.
        name: String,
    },
    /// The stored definition cannot be served.
    #[error("definition of {name:?}: {reason}")]
    Definition {
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The request's keys do not fit the key columns.
    #[error("keys of {name:?}: {reason}")]
    BadKeys {
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The query time is before the batch end time (Chronon refuses it too).
    #[error("request time {query} of {name:?} is before its batch end time {batch_end}")]
    BeforeBatchEnd {
        /// The name.
        name: String,
        /// The query time.
        query: i64,
        /// The batch end time.
        batch_end: i64,
    },
    /// A stored value cannot be decoded.
    #[error("decoding {dataset}: {reason}")]
    Decode {
        /// The dataset.
        dataset: String,
        /// What is wrong.
        reason: String,
    },
    /// The store failed for this request.
    #[error(transparent)]
    Store(#[from] KvError),
    /// The fetch did not finish within the timeout.
    #[error("fetch timed out after {0:?}")]
    Timeout(Duration),
}

/// The answer to one request, in request order.
#[derive(Debug, Clone)]
pub struct FetchResponse {
    /// The request.
    pub request: FetchRequest,
    /// Feature name → value, or why the request failed.
    pub values: Result<BTreeMap<String, Value>, FetchError>,
}

impl FetchResponse {
    /// The features as a JSON object (`{"error": ...}` on failure), for printing.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.values {
            Ok(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Err(e) => serde_json::json!({"error": e.to_string()}),
        }
    }
}
