//! Error answers: a status code and Chronon's error body, `{"errors": ["..."]}`, each message
//! naming what is wrong (which join, which key map, which key, which limit).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Most messages one error body lists (a batch of 1000 bad key maps gets the first ones and a
/// count of the rest).
const MAX_MESSAGES: usize = 10;

/// A request that is answered with an error.
#[derive(Debug)]
pub struct ApiError {
    /// The status code.
    pub status: StatusCode,
    /// The metrics label (see `metrics`).
    pub kind: &'static str,
    /// What is wrong, one message per problem.
    pub messages: Vec<String>,
}

impl ApiError {
    /// An error with one message.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            messages: vec![message.into()],
        }
    }

    /// 400: the body is not a JSON array of key maps.
    pub fn malformed(reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!(
                "malformed request body: {reason}; expected a JSON array of key maps such as \
                 [{{\"user_id\": \"5\"}}]"
            ),
        )
    }

    /// 400: key maps that miss a key or hold one that does not convert to its column's type.
    pub fn bad_keys(mut messages: Vec<String>) -> Self {
        if messages.len() > MAX_MESSAGES {
            let rest = messages.len() - MAX_MESSAGES;
            messages.truncate(MAX_MESSAGES);
            messages.push(format!("... and {rest} more"));
        }
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_key",
            messages,
        }
    }

    /// 404: the store defines no such join or group-by.
    pub fn unknown(kind: &str, name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_name",
            format!("{kind} {name:?} is not defined in the store's metadata"),
        )
    }

    /// 503: the store failed.
    pub fn store(what: &str, e: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store",
            format!("{what}: {e}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "errors": self.messages })),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_key_error_lists_are_cut_with_a_count() {
        let e = ApiError::bad_keys((0..25).map(|i| format!("request {i}")).collect());
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.messages.len(), MAX_MESSAGES + 1);
        assert_eq!(e.messages[MAX_MESSAGES], "... and 15 more");
    }
}
