//! Routing, and what every handler shares: reading bodies and query strings strictly, id
//! checks, pagination. The handlers live by resource: `runs.rs`, `sources.rs`, `keys.rs`,
//! `costs.rs`.

use super::costs::{costs, reloads};
use super::keys::{delete_key, get_key, list_keys, put_key};
use super::runs::{
    ack, cancel, events, get_run, health, list, metrics, retry, run_artifact, write,
};
use super::sources::{add_source, get_source, list_sources, search_sources};
use super::{ApiError, AppState, Body};
use futures_util::future::LocalBoxFuture;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;

/// Longest procedure title accepted.
pub(super) const MAX_PROCEDURE_CHARS: usize = 300;
/// Longest context accepted.
pub(super) const MAX_CONTEXT_CHARS: usize = 20_000;
/// Longest idempotency key accepted.
pub(super) const MAX_IDEMPOTENCY_KEY: usize = 200;
/// Largest page of `GET /api/runs`; asking for more is an error, not a silent cap.
pub(super) const MAX_PAGE: usize = 1000;
pub(super) const DEFAULT_PAGE: usize = 100;

type Answer = (&'static str, Response<Body>);

/// Routes a request; returns the route template (the metrics label) and the response.
pub async fn route(state: &Arc<AppState>, req: Request<Incoming>) -> Answer {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let method = req.method().clone();
    let authorized = super::guard::authorized(state, req.headers());
    let (route, allowed, result) = match segs.as_slice() {
        ["health"] => (
            "/health",
            "GET",
            (method == Method::GET).then(|| boxed(health(state))),
        ),
        ["metrics"] => (
            "/metrics",
            "GET",
            (method == Method::GET).then(|| boxed(metrics(state))),
        ),
        ["api", "write"] => (
            "/api/write",
            "POST",
            (method == Method::POST).then(|| boxed(write(state, req))),
        ),
        ["api", "costs"] => (
            "/api/costs",
            "GET",
            (method == Method::GET).then(|| boxed(costs(state, req))),
        ),
        ["api", "reloads"] => (
            "/api/reloads",
            "GET",
            (method == Method::GET).then(|| boxed(reloads(state, req))),
        ),
        ["api", "runs"] => (
            "/api/runs",
            "GET",
            (method == Method::GET).then(|| boxed(list(state, req))),
        ),
        ["api", "runs", id] => {
            let id = id.to_string();
            (
                "/api/runs/{id}",
                "GET",
                (method == Method::GET).then(|| boxed(get_run(state, id))),
            )
        }
        ["api", "runs", id, "cancel"] => {
            let id = id.to_string();
            (
                "/api/runs/{id}/cancel",
                "POST",
                (method == Method::POST).then(|| boxed(cancel(state, id, req))),
            )
        }
        ["api", "runs", id, "retry"] => {
            let id = id.to_string();
            (
                "/api/runs/{id}/retry",
                "POST",
                (method == Method::POST).then(|| boxed(retry(state, id, req))),
            )
        }
        ["api", "sources"] => {
            let fut = match method {
                Method::GET => Some(boxed(list_sources(state, req))),
                Method::POST => Some(boxed(add_source(state, req))),
                _ => None,
            };
            ("/api/sources", "GET, POST", fut)
        }
        ["api", "sources", "search"] => (
            "/api/sources/search",
            "GET",
            (method == Method::GET).then(|| boxed(search_sources(state, req))),
        ),
        ["api", "sources", id] => {
            let id = id.to_string();
            (
                "/api/sources/{id}",
                "GET",
                (method == Method::GET).then(|| boxed(get_source(state, id))),
            )
        }
        ["api", "keys"] => (
            "/api/keys",
            "GET",
            (method == Method::GET).then(|| boxed(list_keys(state))),
        ),
        ["api", "keys", name] => {
            let name = name.to_string();
            let fut = match method {
                Method::GET => Some(boxed(get_key(state, name))),
                Method::PUT => Some(boxed(put_key(state, name, req))),
                Method::DELETE => Some(boxed(delete_key(state, name))),
                _ => None,
            };
            ("/api/keys/{name}", "GET, PUT, DELETE", fut)
        }
        ["api", "runs", id, "ack"] => {
            let id = id.to_string();
            (
                "/api/runs/{id}/ack",
                "POST",
                (method == Method::POST).then(|| boxed(ack(state, id, req))),
            )
        }
        ["api", "runs", id, artifact @ ("procedure" | "docx" | "manifest" | "evidence" | "sources")] =>
        {
            let (id, artifact) = (id.to_string(), artifact.to_string());
            (
                "/api/runs/{id}/{artifact}",
                "GET",
                (method == Method::GET).then(|| boxed(run_artifact(state, id, artifact))),
            )
        }
        ["api", "runs", id, "events"] => {
            let id = id.to_string();
            (
                "/api/runs/{id}/events",
                "GET",
                (method == Method::GET).then(|| boxed(events(state, id, req))),
            )
        }
        _ => {
            if let Some(refused) = super::guard::authorization("unmatched", authorized) {
                return ("refused", refused);
            }
            let err = ApiError::new(
                StatusCode::NOT_FOUND,
                "route_not_found",
                format!("no route for {method} {path}; see the README for the API"),
            );
            return ("unmatched", err.into_response());
        }
    };
    // Authorised on the resolved route: however the path was spelled, this is what it reaches.
    if let Some(refused) = super::guard::authorization(route, authorized) {
        return ("refused", refused);
    }
    let resp = match result {
        Some(fut) => match fut.await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
        },
        None => {
            let mut resp = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{route} accepts {allowed}, not {method}"),
            )
            .into_response();
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
            resp
        }
    };
    (route, resp)
}

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
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
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
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the JSON body is not valid: {e}"))
    })
}

pub(super) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is over the limit of {limit} bytes (max_body_bytes)"),
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
