//! What every handler shares: reading bodies and query strings strictly, id checks,
//! pagination, and the limits on what a request may carry. Handlers and the router import
//! this; it imports neither.

use super::{ApiError, AppState, Body};
use futures_util::future::LocalBoxFuture;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{header, Request, Response, StatusCode};
use serde_json::json;

/// Longest procedure title accepted.
pub(super) const MAX_PROCEDURE_CHARS: usize = 300;
/// Longest context accepted.
pub(super) const MAX_CONTEXT_CHARS: usize = 20_000;
/// Longest idempotency key accepted.
pub(super) const MAX_IDEMPOTENCY_KEY: usize = 200;
/// Largest page of `GET /api/runs`; asking for more is an error, not a silent cap.
pub(super) const MAX_PAGE: usize = 1000;
pub(super) const DEFAULT_PAGE: usize = 100;

pub(super) type Handled = Result<Response<Body>, ApiError>;

pub(super) fn boxed<'a>(
    f: impl std::future::Future<Output = Handled> + 'a,
) -> LocalBoxFuture<'a, Handled> {
    Box::pin(f)
}

/// A run id must be a UUID; anything else cannot name a run (and never reaches the store).
pub(super) fn check_run_id(id: &str) -> Result<String, ApiError> {
    match uuid::Uuid::parse_str(id) {
        Ok(u) => Ok(u.hyphenated().to_string()),
        Err(_) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "run_not_found",
            format!(
                "run {:?} not found: run ids are UUIDs as returned by POST /api/write",
                truncate(id, 80)
            ),
        )),
    }
}

pub(super) fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Reads a body up to `max_body_bytes` (413 beyond); returns its media type (lower case,
/// without parameters) and bytes.
pub(super) async fn read_body(
    state: &AppState,
    req: Request<Incoming>,
) -> Result<(Option<String>, bytes::Bytes), ApiError> {
    let limit = state.settings.max_body_bytes;
    read_body_within(state, req, limit, "max_body_bytes").await
}

/// The request's media type (lower case, without parameters).
pub(super) fn media_type(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// [`read_body`] with another limit (`key` names the setting that sets it, for the 413).
pub(super) async fn read_body_within(
    state: &AppState,
    req: Request<Incoming>,
    limit: usize,
    key: &'static str,
) -> Result<(Option<String>, bytes::Bytes), ApiError> {
    let too_large = |limit| too_large_for(limit, key);
    let content_type = media_type(&req);
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large(limit));
        }
    }
    let timeout = state.settings.body_read_timeout();
    let Ok(read) =
        tokio::time::timeout(timeout, Limited::new(req.into_body(), limit).collect()).await
    else {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} s (body_read_timeout_s)",
                timeout.as_secs_f64()
            ),
        ));
    };
    match read {
        Ok(c) => Ok((content_type, c.to_bytes())),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large(limit))
        }
        Err(e) => Err(ApiError::bad_request(
            "body_unreadable",
            format!("could not read the request body: {e}"),
        )),
    }
}

/// Reads a JSON body: 415 unless it says `application/json`, 413 over the limit, 400 when it
/// does not parse into `T`. An empty body is allowed (as `{}`) only when `allow_empty`.
pub(super) async fn json_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: Request<Incoming>,
    allow_empty: bool,
) -> Result<T, ApiError> {
    let (content_type, bytes) = read_body(state, req).await?;
    if bytes.is_empty() && allow_empty {
        return serde_json::from_value(json!({}))
            .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()));
    }
    if content_type.as_deref() != Some("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON: send `Content-Type: application/json`",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the JSON body is not valid: {e}"))
    })?;
    if let Some(at) = nul_in(&value, "") {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("{at} contains a NUL character; text fields and keys must not"),
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the JSON body is not valid: {e}"))
    })
}

/// Where in `v` a string or an object key holds a NUL character, as a JSON path (`options`,
/// `options."a\u0000"`), if anywhere. Every route refuses NUL the same way, keys included.
fn nul_in(v: &serde_json::Value, path: &str) -> Option<String> {
    let here = || {
        if path.is_empty() {
            "the body".to_string()
        } else {
            format!("`{path}`")
        }
    };
    match v {
        serde_json::Value::String(s) if s.contains('\0') => Some(here()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_in(x, &format!("{path}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, x)| {
            let key = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(format!("a key of {}", here()))
            } else {
                nul_in(x, &key)
            }
        }),
        _ => None,
    }
}

/// The 413 for a body over `limit`, naming the setting `key` that sets it.
pub(super) fn too_large_for(limit: usize, key: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is over the limit of {limit} bytes ({key})"),
    )
}

/// Parses the query string into `T` (strict: unknown parameters are refused); `hint` names the
/// parameters the route takes.
pub(super) fn query<T: serde::de::DeserializeOwned>(
    req: &Request<Incoming>,
    hint: &str,
) -> Result<T, ApiError> {
    serde_urlencoded::from_str(req.uri().query().unwrap_or("")).map_err(|e| {
        ApiError::bad_request(
            "invalid_query",
            format!("bad query string: {e}; use {hint}"),
        )
    })
}

/// Validates a page request: a cursor from a previous page's `next_cursor`, and a limit in
/// 1..=MAX_PAGE (asking for more is an error, not a silent cap).
pub(super) fn page(
    cursor: Option<&str>,
    limit: Option<usize>,
) -> Result<(Option<i64>, usize), ApiError> {
    let cursor = match cursor {
        None | Some("") => None,
        Some(c) => Some(c.parse::<i64>().ok().filter(|c| *c > 0).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                "cursor must be a next_cursor value from a previous page",
            )
        })?),
    };
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_PAGE}; page with next_cursor for more"),
        ));
    }
    Ok((cursor, limit))
}
