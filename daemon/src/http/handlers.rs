//! Routing and the request handlers. Request types are strict (`deny_unknown_fields`) and
//! validated here, before anything reaches the queue.

use super::{json_response, sse, ApiError, AppState, Body};
use futures_util::future::LocalBoxFuture;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use procedurewriter_actors::{
    Acknowledge, Cancel, Enqueue, NewAck, NewRun, Retry, RunStatus, Stats,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Longest procedure title accepted.
const MAX_PROCEDURE_CHARS: usize = 300;
/// Longest context accepted.
const MAX_CONTEXT_CHARS: usize = 20_000;
/// Longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 200;
/// Largest page of `GET /api/runs`; asking for more is an error, not a silent cap.
const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

type Answer = (&'static str, Response<Body>);

/// Routes a request; returns the route template (the metrics label) and the response.
pub async fn route(state: &Arc<AppState>, req: Request<Incoming>) -> Answer {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let method = req.method().clone();
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
            let err = ApiError::new(
                StatusCode::NOT_FOUND,
                "route_not_found",
                format!("no route for {method} {path}; see the README for the API"),
            );
            return ("unmatched", err.into_response());
        }
    };
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

type Handled = Result<Response<Body>, ApiError>;

fn boxed<'a>(f: impl std::future::Future<Output = Handled> + 'a) -> LocalBoxFuture<'a, Handled> {
    Box::pin(f)
}

/// A run id must be a UUID; anything else cannot name a run (and never reaches the store).
fn check_run_id(id: &str) -> Result<String, ApiError> {
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

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Reads a body up to `max_body_bytes` (413 beyond); returns its media type (lower case,
/// without parameters) and bytes.
async fn read_body(
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
    match Limited::new(req.into_body(), limit).collect().await {
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
async fn json_body<T: serde::de::DeserializeOwned>(
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

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is over the limit of {limit} bytes (max_body_bytes)"),
    )
}

/// Parses the query string into `T` (strict: unknown parameters are refused); `hint` names the
/// parameters the route takes.
fn query<T: serde::de::DeserializeOwned>(
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
fn page(cursor: Option<&str>, limit: Option<usize>) -> Result<(Option<i64>, usize), ApiError> {
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

async fn health(state: &Arc<AppState>) -> Handled {
    let depth = state.store.depth().await;
    let stats = state.supervisor.send(Stats).await.ok();
    let reload_error = state
        .last_reload_error
        .lock()
        .map(|g| g.clone())
        .unwrap_or(None);
    let (status, db, depth, running) = match &depth {
        Ok((queued, running)) => (StatusCode::OK, json!("ok"), Some(*queued), Some(*running)),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!(e.to_string()),
            None,
            None,
        ),
    };
    Ok(json_response(
        status,
        &json!({
            "status": if state.is_shutting_down() { "shutting_down" } else if status == StatusCode::OK { "ok" } else { "degraded" },
            "db": db,
            "queue_depth": depth,
            "running": running,
            "workers": stats.map(|s| s.workers),
            "busy_workers": stats.map(|s| s.busy),
            "instance": state.instance,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": state.started.elapsed().as_secs(),
            "last_reload_error": reload_error,
        }),
    ))
}

async fn metrics(state: &Arc<AppState>) -> Handled {
    let counts = state.store.counts().await.map_err(ApiError::from)?;
    let text = state.metrics.encode(&counts);
    let mut resp = Response::new(super::full(text));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteRequest {
    procedure: String,
    #[serde(default)]
    context: String,
    /// Per-run options for the job runner.
    #[serde(default)]
    options: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    priority: i64,
}

async fn write(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
    if state.is_shutting_down() {
        return Err(procedurewriter_actors::Error::ShuttingDown.into());
    }
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v.to_str().ok().map(str::trim).filter(|k| {
                !k.is_empty()
                    && k.len() <= MAX_IDEMPOTENCY_KEY
                    && k.bytes().all(|b| b.is_ascii_graphic())
            });
            match k {
                Some(k) => Some(k.to_string()),
                None => {
                    return Err(ApiError::bad_request(
                        "invalid_idempotency_key",
                        format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
                    ))
                }
            }
        }
    };
    let body: WriteRequest = json_body(state, req, false).await?;
    let procedure = body.procedure.trim().to_string();
    if procedure.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`procedure` must not be empty",
        ));
    }
    if procedure.chars().count() > MAX_PROCEDURE_CHARS {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("`procedure` is longer than {MAX_PROCEDURE_CHARS} characters"),
        ));
    }
    if body.context.chars().count() > MAX_CONTEXT_CHARS {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("`context` is longer than {MAX_CONTEXT_CHARS} characters"),
        ));
    }
    if procedure.contains('\0') || body.context.contains('\0') {
        return Err(ApiError::bad_request(
            "invalid_request",
            "text fields must not contain NUL characters",
        ));
    }
    if let Some(p) = body
        .options
        .as_ref()
        .and_then(|o| o.get("missing_tier_policy"))
    {
        if p.as_str()
            .and_then(procedurewriter_pipeline::gate::Policy::parse)
            .is_none()
        {
            return Err(ApiError::bad_request(
                "invalid_request",
                "`options.missing_tier_policy` must be \"STRICT\" or \"allow_with_ack\"",
            ));
        }
    }
    if !(-1000..=1000).contains(&body.priority) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`priority` must be between -1000 and 1000",
        ));
    }
    let new = NewRun {
        procedure,
        context: body.context,
        params: Value::Object(body.options.unwrap_or_default()),
        priority: body.priority,
        idempotency_key: key,
        max_attempts: state.settings.max_attempts,
    };
    let (run, created) = state
        .queue
        .send(Enqueue(new))
        .await
        .map_err(procedurewriter_actors::Error::from)??;
    let mut resp = json_response(StatusCode::ACCEPTED, &run);
    if let Ok(loc) = header::HeaderValue::from_str(&format!("/api/runs/{}", run.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    if !created {
        resp.headers_mut().insert(
            "idempotent-replayed",
            header::HeaderValue::from_static("true"),
        );
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
    let q: ListQuery = query(&req, "status, cursor, limit")?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(RunStatus::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("unknown status {s:?}; one of QUEUED, RUNNING, NEEDS_ACK, DONE, FAILED, CANCELLED"),
            )
        })?),
    };
    let (cursor, limit) = page(q.cursor.as_deref(), q.limit)?;
    let runs = state.store.list_runs(status, cursor, limit).await?;
    Ok(json_response(StatusCode::OK, &runs))
}

async fn get_run(state: &Arc<AppState>, id: String) -> Handled {
    let id = check_run_id(&id)?;
    let run = state.store.get_run(id).await?;
    Ok(json_response(StatusCode::OK, &run))
}

/// Cancel and retry take no body; an empty body or `{}` is accepted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

async fn cancel(state: &Arc<AppState>, id: String, req: Request<Incoming>) -> Handled {
    let id = check_run_id(&id)?;
    let _: NoFields = json_body(state, req, true).await?;
    let run = state
        .queue
        .send(Cancel { run_id: id })
        .await
        .map_err(procedurewriter_actors::Error::from)??;
    let status = if run.status == RunStatus::Running {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, &run))
}

async fn retry(state: &Arc<AppState>, id: String, req: Request<Incoming>) -> Handled {
    if state.is_shutting_down() {
        return Err(procedurewriter_actors::Error::ShuttingDown.into());
    }
    let id = check_run_id(&id)?;
    let _: NoFields = json_body(state, req, true).await?;
    let run = state
        .queue
        .send(Retry { run_id: id })
        .await
        .map_err(procedurewriter_actors::Error::from)??;
    Ok(json_response(StatusCode::OK, &run))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckRequest {
    note: String,
    acknowledged_by: String,
    tiers: Vec<String>,
}

async fn ack(state: &Arc<AppState>, id: String, req: Request<Incoming>) -> Handled {
    if state.is_shutting_down() {
        return Err(procedurewriter_actors::Error::ShuttingDown.into());
    }
    let id = check_run_id(&id)?;
    let body: AckRequest = json_body(state, req, false).await?;
    let (note, by) = (body.note.trim(), body.acknowledged_by.trim());
    if note.is_empty() || by.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`note` and `acknowledged_by` must name who accepts the gap and why",
        ));
    }
    if note.chars().count() > MAX_CONTEXT_CHARS || by.chars().count() > MAX_PROCEDURE_CHARS {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`note` or `acknowledged_by` is too long",
        ));
    }
    if body.tiers.is_empty()
        || body
            .tiers
            .iter()
            .any(|t| t.trim().is_empty() || t.len() > 100)
    {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`tiers` must list the acknowledged tiers, e.g. [\"danish_guideline\"]",
        ));
    }
    let ack = NewAck {
        acknowledged_by: by.to_string(),
        note: note.to_string(),
        tiers: body.tiers,
    };
    let run = state
        .queue
        .send(Acknowledge { run_id: id, ack })
        .await
        .map_err(procedurewriter_actors::Error::from)??;
    Ok(json_response(StatusCode::OK, &run))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    after: Option<i64>,
}

async fn events(state: &Arc<AppState>, id: String, req: Request<Incoming>) -> Handled {
    let id = check_run_id(&id)?;
    let q: EventsQuery = query(&req, "after")?;
    let wants_sse = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_last_event_id",
                    "Last-Event-ID must be an event id (an integer)",
                )
            })
        })
        .transpose()?;
    let after = last_event_id.or(q.after).unwrap_or(0).max(0);
    if wants_sse {
        // 404 before the stream starts, not an empty stream.
        state.store.get_run(id.clone()).await?;
        return Ok(sse::stream(
            state.store.clone(),
            id,
            after,
            state.settings.sse_keepalive(),
            state.shutdown_watch(),
        ));
    }
    let events = state.store.events(id, after).await?;
    Ok(json_response(StatusCode::OK, &json!({ "events": events })))
}

/// The secrets the daemon knows, each with the environment variable used when none is stored.
const KNOWN_KEYS: &[(&str, &str)] = &[
    ("openai_api_key", "OPENAI_API_KEY"),
    ("anthropic_api_key", "ANTHROPIC_API_KEY"),
    ("ncbi_api_key", "NCBI_API_KEY"),
];

/// Longest secret value accepted, in bytes.
const MAX_SECRET_BYTES: usize = 4096;

fn known_key(name: &str) -> Result<(&'static str, &'static str), ApiError> {
    KNOWN_KEYS
        .iter()
        .find(|(n, _)| *n == name)
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = KNOWN_KEYS.iter().map(|(n, _)| *n).collect();
            ApiError::new(
                StatusCode::NOT_FOUND,
                "key_not_found",
                format!(
                    "unknown key name {:?}; known: {}",
                    truncate(name, 60),
                    names.join(", ")
                ),
            )
        })
}

/// What a client may know of a secret: whether it is set, where from, and a mask. Never the
/// value.
async fn key_view(
    state: &Arc<AppState>,
    name: &'static str,
    env_var: &'static str,
) -> Result<Value, ApiError> {
    let stored = state
        .store
        .get_secret(name.to_string(), state.secret_key.clone())
        .await?;
    Ok(match stored {
        Some(s) => match s.value {
            Ok(v) => json!({
                "name": name, "present": true, "source": "stored", "usable": true,
                "masked": v.masked(), "updated_at": rfc3339(s.meta.updated_at),
            }),
            Err(e) => json!({
                "name": name, "present": true, "source": "stored", "usable": false,
                "masked": null, "updated_at": rfc3339(s.meta.updated_at), "error": e.to_string(),
            }),
        },
        None => match std::env::var(env_var).ok().filter(|v| !v.trim().is_empty()) {
            Some(v) => {
                let v = procedurewriter_actors::crypto::SecretValue::new(v);
                json!({
                    "name": name, "present": true, "source": "environment", "usable": true,
                    "environment_variable": env_var, "masked": v.masked(), "updated_at": null,
                })
            }
            None => json!({
                "name": name, "present": false, "source": "none", "usable": false,
                "environment_variable": env_var, "masked": null, "updated_at": null,
            }),
        },
    })
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

async fn list_keys(state: &Arc<AppState>) -> Handled {
    let mut keys = Vec::new();
    for (name, env_var) in KNOWN_KEYS {
        keys.push(key_view(state, name, env_var).await?);
    }
    Ok(json_response(StatusCode::OK, &json!({ "keys": keys })))
}

async fn get_key(state: &Arc<AppState>, name: String) -> Handled {
    let (name, env_var) = known_key(&name)?;
    Ok(json_response(
        StatusCode::OK,
        &key_view(state, name, env_var).await?,
    ))
}

/// `{"value": "..."}`; the value is moved into a zeroizing [`SecretValue`] at once.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutKey {
    value: String,
}

async fn put_key(state: &Arc<AppState>, name: String, req: Request<Incoming>) -> Handled {
    let (name, env_var) = known_key(&name)?;
    // Parse errors are reported without serde's text, which can quote the body.
    let body: PutKey = json_body(state, req, false).await.map_err(|e| {
        if e.code == "malformed_json" {
            ApiError::bad_request(
                "malformed_json",
                "the body must be {\"value\": \"<the key>\"}",
            )
        } else {
            e
        }
    })?;
    let value = procedurewriter_actors::crypto::SecretValue::new(body.value);
    if value.expose().trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`value` must not be empty",
        ));
    }
    if value.len() > MAX_SECRET_BYTES {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("`value` is longer than {MAX_SECRET_BYTES} bytes"),
        ));
    }
    if value.expose().chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`value` must not contain control characters (newlines included)",
        ));
    }
    state
        .store
        .put_secret(name.to_string(), state.secret_key.clone(), value)
        .await?;
    tracing::info!(key = name, "secret stored");
    Ok(json_response(
        StatusCode::OK,
        &key_view(state, name, env_var).await?,
    ))
}

async fn delete_key(state: &Arc<AppState>, name: String) -> Handled {
    let (name, env_var) = known_key(&name)?;
    let deleted = state.store.delete_secret(name.to_string()).await?;
    if !deleted {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_stored",
            format!("no stored value for {name}"),
        ));
    }
    tracing::info!(key = name, "secret deleted");
    Ok(json_response(
        StatusCode::OK,
        &key_view(state, name, env_var).await?,
    ))
}

/// Metadata for a text body, from the query string.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SourceQuery {
    title: Option<String>,
    url: Option<String>,
    tier: Option<String>,
    year: Option<i32>,
    publication_type: Option<String>,
    /// The file name, the title of last resort.
    filename: Option<String>,
}

/// `POST /api/sources`: a JSON source, or a `text/markdown` / `text/plain` document (TOML front
/// matter and query parameters give its metadata; query parameters win).
async fn add_source(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
    use procedurewriter_pipeline::library::{self, IngestError, IngestRequest};
    let q: SourceQuery = query(&req, "title, url, tier, year, publication_type, filename")?;
    let (content_type, bytes) = read_body(state, req).await?;
    let ingest: IngestRequest = match content_type.as_deref() {
        Some("application/json") => serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request("malformed_json", format!("the JSON body is not valid: {e}"))
        })?,
        Some(kind @ ("text/markdown" | "text/plain" | "text/html")) => {
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                ApiError::bad_request("invalid_request", "the document is not valid UTF-8")
            })?;
            let fallback = q.filename.clone().unwrap_or_default();
            let parsed = if kind == "text/html" {
                library::parse_html(text.as_bytes(), q.title.as_deref().unwrap_or(""))
            } else {
                library::parse_document(text, &fallback)
            };
            let mut doc =
                parsed.map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
            doc.title = q.title.or(Some(doc.title).filter(|t| !t.is_empty())).unwrap_or_default();
            doc.url = q.url.or(doc.url);
            doc.tier = q.tier.or(doc.tier);
            doc.year = q.year.or(doc.year);
            doc.publication_type = q.publication_type.or(doc.publication_type);
            doc
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send a source as application/json, text/markdown, text/plain or text/html (PDF is not supported yet)",
            ))
        }
    };
    match library::ingest(&state.store, &state.rules, ingest, false).await {
        Ok((source, created)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_response(
                status,
                &json!({ "created": created, "source": source }),
            ))
        }
        Err(IngestError::Invalid(m)) => Err(ApiError::bad_request("invalid_request", m)),
        Err(IngestError::Store(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn list_sources(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
    let q: PageQuery = query(&req, "cursor, limit")?;
    let (cursor, limit) = page(q.cursor.as_deref(), q.limit)?;
    let sources = state.store.list_sources(cursor, limit).await?;
    Ok(json_response(StatusCode::OK, &sources))
}

async fn get_source(state: &Arc<AppState>, id: String) -> Handled {
    let valid = id.len() <= 12
        && id
            .strip_prefix("SRC")
            .is_some_and(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()));
    if !valid {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "source_not_found",
            format!(
                "source {:?} not found: source ids look like SRC0001",
                truncate(&id, 40)
            ),
        ));
    }
    let source = state.store.get_source(id).await?;
    Ok(json_response(StatusCode::OK, &source))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

async fn search_sources(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
    let q: SearchQuery = query(&req, "q (required), limit")?;
    if q.q.trim().is_empty() || q.q.chars().count() > 1000 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`q` must be 1 to 1000 characters of search text",
        ));
    }
    let limit = q.limit.unwrap_or(20);
    if limit == 0 || limit > 200 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 200",
        ));
    }
    let hits = state.store.search_sources(q.q, limit).await?;
    Ok(json_response(StatusCode::OK, &json!({ "hits": hits })))
}

/// A finished run's artifacts: `procedure` (Markdown), `manifest` and `evidence` (JSON) from
/// `<data_dir>/runs/<id>/`, and `sources` (the sources it used, from the library).
async fn run_artifact(state: &Arc<AppState>, id: String, artifact: String) -> Handled {
    let id = check_run_id(&id)?;
    let run = state.store.get_run(id.clone()).await?;
    let not_yet = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "artifact_not_found",
            format!("run {id} has no {artifact} (it is {}; artifacts exist once a pipeline run is DONE)", run.status),
        )
    };
    if artifact == "sources" {
        let ids: Vec<String> = run
            .result
            .as_ref()
            .and_then(|r| r.get("sources"))
            .and_then(Value::as_array)
            .ok_or_else(not_yet)?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let mut sources = Vec::new();
        for sid in ids {
            sources.push(state.store.get_source(sid).await?);
        }
        return Ok(json_response(
            StatusCode::OK,
            &json!({ "sources": sources }),
        ));
    }
    let (file, content_type) = match artifact.as_str() {
        "procedure" => ("procedure.md", "text/markdown; charset=utf-8"),
        "docx" => (
            "procedure.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        "manifest" => ("manifest.json", "application/json"),
        _ => ("evidence_report.json", "application/json"),
    };
    // `id` is a parsed UUID, so the path stays inside the runs directory.
    let path = state.settings.data_dir.join("runs").join(&id).join(file);
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_yet()),
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "artifact_unreadable",
                format!("cannot read {file}: {e}"),
            ))
        }
    };
    let mut resp = Response::new(super::full(bytes));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    Ok(resp)
}
