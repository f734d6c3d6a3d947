//! The endpoints, with Chronon's fetch service's paths and JSON (see the crate README's "Serve"
//! section for the table):
//!
//! - `POST /v1/features/join/{name}` and `POST /v1/features/groupby/{name}` (also under
//!   `/v1/fetch/`): the body is a JSON array of key maps; the answer is
//!   `{"results": [{"status": "Success", "entityKeys": {..}, "features": {..}}, ..]}` in request
//!   order, a key map that failed on its own being `{"status": "Failure", "entityKeys": {..},
//!   "error": ".."}`. In a join, a part that failed adds `{prefix}_exception` to its features,
//!   as Chronon's fetcher does. An optional `?at=<epoch millis>` sets the query time.
//! - `GET /v1/joins`: `{"joinNames": [..]}`. `GET /v1/join/{name}/schema`: Chronon's
//!   `JoinSchemaResponse`.
//! - `GET /ping` (`"Pong!"`), `GET /config`, `GET /health`, `GET /metrics`.
//!
//! Errors are `{"errors": [".."]}` with 400 (malformed JSON, a missing or mistyped key), 404
//! (unknown join, group-by or path), 405, 413 (a batch over `--max-batch` or a body over
//! `--max-body-bytes`), 503 (the store failed for the whole request) or 504 (the fetch timed
//! out).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chronon_serving::fetcher::{json_to_value, FetchError, FetchRequest, FetchResponse};
use serde_json::{Map, Value as Json_};

use super::catalog::KeySpec;
use super::errors::ApiError;
use super::metrics::Request;
use super::AppState;

type Shared = State<Arc<AppState>>;

/// The service's routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route("/v1/features/join/{name}", post(fetch_join))
        .route("/v1/features/groupby/{name}", post(fetch_group_by))
        .route("/v1/fetch/join/{name}", post(fetch_join))
        .route("/v1/fetch/groupby/{name}", post(fetch_group_by))
        .route("/v1/joins", get(list_joins))
        .route("/v1/join/{name}/schema", get(join_schema))
        .route("/ping", get(|| async { Json("Pong!") }))
        .route("/config", get(config))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_path", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method",
                "method not allowed on this endpoint (fetches are POST, the rest GET)",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// `?at=<epoch millis>`: the query time of every key map in the request (default now).
#[derive(Debug, serde::Deserialize)]
struct FetchQuery {
    at: Option<i64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Join,
    GroupBy,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Join => "join",
            Kind::GroupBy => "groupby",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Join => "join",
            Kind::GroupBy => "group-by",
        }
    }
}

async fn fetch_join(
    state: Shared,
    Path(name): Path<String>,
    query: Result<Query<FetchQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    fetch(state, Kind::Join, name, query, body).await
}

async fn fetch_group_by(
    state: Shared,
    Path(name): Path<String>,
    query: Result<Query<FetchQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    fetch(state, Kind::GroupBy, name, query, body).await
}

/// Answers a fetch and records its metrics.
async fn fetch(
    State(state): Shared,
    kind: Kind,
    name: String,
    query: Result<Query<FetchQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut request = Request::start(kind.label());
    let response = match serve_fetch(&state, kind, &name, query, body, &mut request).await {
        Ok(r) => r,
        Err(e) => {
            request.error(e.kind);
            e.into_response()
        }
    };
    request.finish(response.status().as_u16());
    response
}

async fn serve_fetch(
    state: &AppState,
    kind: Kind,
    name: &str,
    query: Result<Query<FetchQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
    request: &mut Request,
) -> Result<Response, ApiError> {
    // The name first, so every later error is counted under it.
    let specs = match kind {
        Kind::Join => state
            .catalog
            .join(name)
            .await
            .map(|e| e.map(|e| e.keys.clone())),
        Kind::GroupBy => state
            .catalog
            .group_by(name)
            .await
            .map(|e| e.map(|e| e.keys.clone())),
    }
    .map_err(|e| ApiError::store("reading definitions", e))?
    .ok_or_else(|| ApiError::unknown(kind.noun(), name))?;
    request.name(name);
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "request body is over --max-body-bytes {}",
                    state.limits.max_body_bytes
                ),
            )
        } else {
            ApiError::malformed(e.body_text())
        }
    })?;
    let at = query
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("query string: {} (at is epoch millis)", e.body_text()),
            )
        })?
        .0
        .at;
    let keys: Vec<Map<String, Json_>> =
        serde_json::from_slice(&body).map_err(ApiError::malformed)?;
    if keys.len() > state.limits.max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "a batch of {} key maps is over --max-batch {}",
                keys.len(),
                state.limits.max_batch
            ),
        ));
    }
    request.batch(keys.len());
    let problems = check_keys(kind, name, &specs, &keys);
    if !problems.is_empty() {
        return Err(ApiError::bad_keys(problems));
    }
    let requests: Vec<FetchRequest> = keys
        .into_iter()
        .map(|m| FetchRequest {
            name: name.to_string(),
            keys: m.into_iter().collect(),
            at_millis: at,
        })
        .collect();
    let responses = match kind {
        Kind::Join => state.fetcher.fetch_joins(requests).await,
        Kind::GroupBy => state.fetcher.fetch_group_bys(requests).await,
    };
    if let Some(e) = whole_request_failure(&responses) {
        return Err(e);
    }
    Ok(Json(results_json(&responses, request)).into_response())
}

/// Every key map's keys against the definition: present, not null, and convertible to the key
/// column's type. One message per problem.
fn check_keys(
    kind: Kind,
    name: &str,
    specs: &[KeySpec],
    batch: &[Map<String, Json_>],
) -> Vec<String> {
    let needs = || {
        specs
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut problems = Vec::new();
    for (i, keys) in batch.iter().enumerate() {
        for spec in specs {
            match keys.get(&spec.name) {
                None => problems.push(format!(
                    "key map {i}: missing key {:?} ({} {name:?} needs {})",
                    spec.name,
                    kind.noun(),
                    needs()
                )),
                Some(Json_::Null) => {
                    problems.push(format!("key map {i}: key {:?} is null", spec.name))
                }
                Some(v) => {
                    if let Err(reason) = json_to_value(v, &spec.data_type) {
                        problems.push(format!("key map {i}: key {:?}: {reason}", spec.name));
                    }
                }
            }
        }
    }
    problems
}

/// A fetch where every key map failed on the store or the timeout is the service's failure, not
/// the caller's: 504 on a timeout, else 503.
fn whole_request_failure(responses: &[FetchResponse]) -> Option<ApiError> {
    if responses.is_empty() {
        return None;
    }
    let mut timeout = false;
    let mut messages: Vec<String> = Vec::new();
    for r in responses {
        match &r.values {
            Err(e @ FetchError::Timeout(_)) => {
                timeout = true;
                push_unique(&mut messages, e.to_string());
            }
            Err(e @ FetchError::Store(_)) => push_unique(&mut messages, e.to_string()),
            _ => return None,
        }
    }
    let (status, kind) = if timeout {
        (StatusCode::GATEWAY_TIMEOUT, "timeout")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store")
    };
    Some(ApiError {
        status,
        kind,
        messages,
    })
}

fn push_unique(messages: &mut Vec<String>, m: String) {
    if !messages.contains(&m) {
        messages.push(m);
    }
}

/// Chronon's `GetFeaturesResponse`, counting failed key maps and failed join parts.
fn results_json(responses: &[FetchResponse], request: &Request) -> Json_ {
    let mut failures = 0;
    let mut exceptions = 0;
    let results: Vec<Json_> = responses
        .iter()
        .map(|r| {
            let entity_keys: Map<String, Json_> = r
                .request
                .keys
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut out = Map::new();
            match &r.values {
                Ok(features) => {
                    exceptions += features
                        .keys()
                        .filter(|k| k.ends_with("_exception"))
                        .count();
                    out.insert("status".into(), "Success".into());
                    out.insert("entityKeys".into(), Json_::Object(entity_keys));
                    out.insert("features".into(), features_json(features));
                }
                Err(e) => {
                    failures += 1;
                    out.insert("status".into(), "Failure".into());
                    out.insert("entityKeys".into(), Json_::Object(entity_keys));
                    out.insert("error".into(), e.to_string().into());
                }
            }
            Json_::Object(out)
        })
        .collect();
    request.errors("entity_failure", failures);
    request.errors("feature_exception", exceptions as u64);
    serde_json::json!({ "results": results })
}

fn features_json(features: &BTreeMap<String, chronon_serving::stream::Value>) -> Json_ {
    Json_::Object(
        features
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    )
}

async fn list_joins(State(state): Shared) -> Response {
    let mut request = Request::start("joins");
    request.name("_all");
    let response =
        Json(serde_json::json!({ "joinNames": state.catalog.join_names() })).into_response();
    request.finish(response.status().as_u16());
    response
}

async fn join_schema(State(state): Shared, Path(name): Path<String>) -> Response {
    let mut request = Request::start("schema");
    let result = match state.catalog.join(&name).await {
        Err(e) => Err(ApiError::store("reading definitions", e)),
        Ok(None) => Err(ApiError::unknown("join", &name)),
        Ok(Some(entry)) => {
            request.name(&name);
            match &entry.schema {
                Ok(schema) => Ok(Json(schema).into_response()),
                Err(reason) => Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "definition",
                    format!("the stored definition cannot be served: {reason}"),
                )),
            }
        }
    };
    let response = result.unwrap_or_else(|e| {
        request.error(e.kind);
        e.into_response()
    });
    request.finish(response.status().as_u16());
    response
}

async fn config(State(state): Shared) -> Response {
    Json(state.config.clone()).into_response()
}

/// 200 while the last definitions refresh succeeded (the store answered within the refresh
/// interval), else 503 with the reason: what a load balancer's health check wants.
async fn health(State(state): Shared) -> Response {
    let status = state.catalog.status();
    let (joins, group_bys) = state.catalog.counts();
    let healthy = status.last_error.is_none() && status.last_success_millis.is_some();
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "unavailable" },
        "backend": state.store.backend(),
        "joins": joins,
        "groupBys": group_bys,
        "lastRefreshMillis": status.last_success_millis,
        "definitionsAgeMs": state.catalog.age().map(|a| a.as_millis() as u64),
        "error": status.last_error,
    });
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(state): Shared) -> Response {
    match state.metrics.render() {
        Some(text) => ([("content-type", "text/plain; version=0.0.4")], text).into_response(),
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics",
            "another metrics recorder is installed in this process",
        )
        .into_response(),
    }
}
