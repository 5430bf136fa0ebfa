//! Runs: enqueue, list, read, cancel, retry, acknowledge, events (JSON and SSE), artifacts;
//! and the daemon's own `/health` and `/metrics`.

use super::request::{
    check_run_id, json_body, page, query, Handled, MAX_CONTEXT_CHARS, MAX_IDEMPOTENCY_KEY,
    MAX_PROCEDURE_CHARS,
};
use super::{json_response, sse, ApiError, AppState};
use crate::metrics::{Files, Format, Scrape};
use hyper::body::Incoming;
use hyper::{header, Request, Response, StatusCode};
use procedurewriter_actors::{
    Acknowledge, Cancel, Enqueue, NewAck, NewRun, Retry, RunStatus, Stats,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub(super) async fn health(state: &Arc<AppState>) -> Handled {
    let depth = state.store.depth().await;
    let stats = state.supervisor.send(Stats).await.ok();
    let reload_error = state
        .last_reload_error
        .lock()
        .map(|g| g.clone())
        .unwrap_or(None);
    let store_metrics = state.store.metrics();
    let last_write_error = store_metrics.last_write_error();
    // Writes failing lately (a full disk, the size limit, a read-only file): reads still work
    // but new work is refused, which a readiness probe should see.
    let writes_failing = last_write_error.as_ref().is_some_and(|(_, at)| {
        procedurewriter_actors::model::now_ms() - at < WRITES_FAILING_WINDOW_MS
    });
    let (status, db, depth, running) = match &depth {
        Ok((queued, running)) => {
            let (status, db) = if writes_failing {
                (StatusCode::SERVICE_UNAVAILABLE, "writes failing")
            } else {
                (StatusCode::OK, "ok")
            };
            (status, json!(db), Some(*queued), Some(*running))
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!(e.to_string()),
            None,
            None,
        ),
    };
    // Draining refuses new work: a load balancer or readiness probe must stop sending it.
    let draining = state.is_shutting_down();
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        status
    };
    let pending_restart = state
        .pending_restart
        .lock()
        .map(|g| g.clone())
        .unwrap_or_default();
    Ok(json_response(
        status,
        &json!({
            "status": if draining { "shutting_down" } else if status == StatusCode::OK { "ok" } else { "degraded" },
            "llm": {
                "provider": state.settings.llm_provider,
                "model": state.settings.llm_model,
            },
            "pending_restart": pending_restart,
            "db": db,
            "queue_depth": depth,
            "running": running,
            "workers": stats.map(|s| s.workers),
            "busy_workers": stats.map(|s| s.busy),
            "instance": state.instance,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": state.started.elapsed().as_secs(),
            "last_reload_error": reload_error,
            "db_writes": {
                "ok": !writes_failing,
                "failures": store_metrics.write_failures.get(),
                "last_error": last_write_error.as_ref().map(|(e, _)| e),
                "last_error_at": last_write_error.as_ref().map(|(_, at)| at),
            },
            "quality_loop": loop_settings(state),
        }),
    ))
}

/// `/health` reports writes as failing for this long after the last failed one.
const WRITES_FAILING_WINDOW_MS: i64 = 10_000;

/// The quality loop's settings in force (they change on SIGHUP).
fn loop_settings(state: &AppState) -> Value {
    let s = match state.loop_settings.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    json!({
        "policy": s.policy.as_str(),
        "quality_threshold": s.threshold,
        "max_iterations": s.max_iterations,
        "max_additional_cost_usd": procedurewriter_actors::model::money::to_usd(s.max_additional_cost_pusd),
        "min_improvement": s.min_improvement,
    })
}

pub(super) async fn metrics(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
    let format = Format::negotiate(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let counts = state.store.counts().await.map_err(ApiError::from)?;
    let oldest = state
        .store
        .oldest_queued_at()
        .await
        .map_err(ApiError::from)?;
    let stats = state.supervisor.send(Stats).await.ok();
    let db = state.store.path().to_path_buf();
    // File sizes and /proc: blocking reads, off the serving thread.
    let files = tokio::task::spawn_blocking(move || Files::read(&db))
        .await
        .unwrap_or_default();
    let last_reload = state.last_reload.lock().map(|g| *g).unwrap_or(None);
    let scrape = Scrape {
        counts,
        workers: stats.map(|s| s.workers),
        busy_workers: stats.map(|s| s.busy),
        event_streams_open: state.event_streams_open(),
        oldest_queued_age_s: oldest
            .map(|at| (procedurewriter_actors::model::now_ms() - at).max(0) as f64 / 1000.0)
            .unwrap_or(0.0),
        draining: state.is_shutting_down(),
        last_reload,
        files,
    };
    let text = state.metrics.encode(&scrape, format);
    let mut resp = Response::new(super::full(text));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(format.content_type()),
    );
    resp.headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("accept"));
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

pub(super) async fn write(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
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
    // A title is one line of text that ends up in a Word document: no control characters or
    // noncharacters (XML cannot carry them). Context may have line breaks and tabs.
    let unprintable = |c: char| c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}');
    if procedure.chars().any(unprintable)
        || body
            .context
            .chars()
            .any(|c| unprintable(c) && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::bad_request(
            "invalid_request",
            "`procedure` and `context` must not contain control characters (context may have \
             line breaks and tabs)",
        ));
    }
    let options = Value::Object(body.options.unwrap_or_default());
    // The pipeline's own parse of its options: what it would refuse at run time is refused
    // here, with the same words.
    if let Err(why) = procedurewriter_pipeline::RunOptions::from_json(&options) {
        return Err(ApiError::bad_request("invalid_request", why));
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
        params: options,
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

pub(super) async fn list(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
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

pub(super) async fn get_run(state: &Arc<AppState>, id: String) -> Handled {
    let id = check_run_id(&id)?;
    let run = state.store.get_run(id).await?;
    // The quality loop's outcome at the top level, next to the run's cost.
    let mut body = serde_json::to_value(&run)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    if let Some(r) = &run.result {
        for k in ["score", "iterations", "stop_reason"] {
            body[k] = r.get(k).cloned().unwrap_or(Value::Null);
        }
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// Cancel and retry take no body; an empty body or `{}` is accepted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

pub(super) async fn cancel(state: &Arc<AppState>, id: String, req: Request<Incoming>) -> Handled {
    let id = check_run_id(&id)?;
    let _: NoFields = json_body(state, req, true).await?;
    let run = state
        .queue
        .send(Cancel { run_id: id })
        .await
        .map_err(procedurewriter_actors::Error::from)??;
    state.metrics.cancel();
    // 202: the run is still RUNNING with `cancel_requested`, and will end CANCELLED whatever
    // its job reports (the store's `finish` honours the request); 200: it is CANCELLED now.
    let status = if run.status == RunStatus::Running {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, &run))
}

pub(super) async fn retry(state: &Arc<AppState>, id: String, req: Request<Incoming>) -> Handled {
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

pub(super) async fn ack(state: &Arc<AppState>, id: String, req: Request<Incoming>) -> Handled {
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
        .send(Acknowledge {
            run_id: id,
            ack,
            uncovered: crate::job::uncovered,
        })
        .await
        .map_err(procedurewriter_actors::Error::from)??;
    state.metrics.ack();
    Ok(json_response(StatusCode::OK, &run))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    after: Option<i64>,
}

pub(super) async fn events(state: &Arc<AppState>, id: String, req: Request<Incoming>) -> Handled {
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

/// A finished run's artifacts: `procedure` (Markdown), `manifest` and `evidence` (JSON) from
/// `<data_dir>/runs/<id>/`, and `sources` (the sources it used, from the library).
pub(super) async fn run_artifact(state: &Arc<AppState>, id: String, artifact: String) -> Handled {
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
        // Each source with why retrieval used it (what matched, the decision, its passages),
        // with the tier this run judged it by (`current_tier` when it was re-tiered since);
        // a retired source is still served, marked retired.
        let why = run.result.as_ref().and_then(|r| r.get("retrieval"));
        let judged = state.store.run_citations(id.clone()).await?;
        let mut sources = Vec::new();
        for sid in ids {
            let source = match state.store.get_source(sid.clone()).await {
                Ok(s) => s,
                // Erased while the run was retrieving it (a run records what it used only
                // once it has retrieved): the run used its text; the library no longer has it.
                Err(procedurewriter_actors::Error::SourceNotFound(_)) => {
                    sources.push(json!({ "id": sid, "erased": true }));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let mut v = serde_json::to_value(&source).unwrap_or(Value::Null);
            v["retired"] = json!(source.retired_at.is_some());
            if let Some(c) = judged.iter().find(|c| c.source_id == sid) {
                if c.tier != source.tier {
                    v["tier"] = json!(c.tier);
                    v["current_tier"] = json!(source.tier);
                }
            }
            if let Some(w) = why
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|w| w["id"] == sid.as_str()))
            {
                v["retrieval"] = w.clone();
            }
            sources.push(v);
        }
        return Ok(json_response(
            StatusCode::OK,
            &json!({ "sources": sources }),
        ));
    }
    use procedurewriter_pipeline::package;
    // The router admits only `sources` and the pipeline's artifact names.
    let kind = package::artifact(&artifact).unwrap_or(package::EVIDENCE_REPORT);
    let (file, content_type) = (kind.file, kind.content_type);
    // `id` is a parsed UUID, so the path stays inside the runs directory.
    let path = package::run_dir(&state.settings.runs_dir(), &id).join(file);
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
    // A browser (and `curl -OJ`, and the CLI's `download`) saves it under a name that says
    // what and which run: `procedure-<run id>.docx`. The id is a parsed UUID, the stem and
    // extension fixed words, so the value needs no quoting beyond the quotes.
    let (stem, ext) = file.rsplit_once('.').unwrap_or((file, ""));
    if let Ok(v) =
        header::HeaderValue::from_str(&format!("attachment; filename=\"{stem}-{id}.{ext}\""))
    {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
