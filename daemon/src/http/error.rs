//! The API's error shape, `{"error": {"code", "message"}}`, and the one mapping from internal
//! errors to HTTP statuses.

use super::{json_response, Body};
use hyper::{Response, StatusCode};
use procedurewriter_actors::Error;
use serde_json::json;

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable.
    pub code: &'static str,
    /// For people: what was wrong and what to do.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn body(&self) -> serde_json::Value {
        json!({ "error": { "code": self.code, "message": self.message } })
    }

    pub fn into_response(self) -> Response<Body> {
        json_response(self.status, &self.body())
    }

    /// The whole HTTP/1.1 response, closing the connection: for refusals written before hyper
    /// has a request to answer (`framing.rs`).
    pub(super) fn to_http1_bytes(&self) -> Vec<u8> {
        let body = self.body().to_string();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body.as_bytes());
        out
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let (status, code) = match &err {
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "run_not_found"),
            Error::SourceNotFound(_) => (StatusCode::NOT_FOUND, "source_not_found"),
            Error::SourceRetired { .. } => (StatusCode::CONFLICT, "source_retired"),
            Error::Conflict { .. } => (StatusCode::CONFLICT, "transition_not_allowed"),
            Error::AckIncomplete { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "ack_incomplete"),
            Error::IdempotencyMismatch(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
            }
            Error::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Error::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            Error::Schema(_)
            | Error::Internal(_)
            | Error::KeyMismatch { .. }
            | Error::Secret(_) => {
                tracing::error!(cause = %err, "internal error answering a request");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        ApiError::new(status, code, err.to_string())
    }
}
