//! The evidence library: `POST|GET /api/sources`, `GET|PATCH|DELETE /api/sources/{id}`,
//! `GET /api/sources/search`.

use super::request::{
    json_body, media_type, page, query, read_body, read_body_within, truncate, Handled,
};
use super::{json_response, ApiError, AppState};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Longest an upload may take to parse. The parsers' cost is bounded by the body limit and the
/// HTML depth limit; this stops whatever slips through from holding a request for minutes.
const PARSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

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

/// `POST /api/sources`: a JSON source; a `text/markdown`, `text/plain` or `text/html` document
/// (TOML front matter and query parameters give its metadata; query parameters win); or a PDF
/// or Word file (`application/pdf`, the DOCX media type) up to `max_document_mb`, whose
/// original is kept under `<data_dir>/originals/`. Reading, splitting and classifying run on
/// the blocking pool, within [`PARSE_LIMIT`].
pub(super) async fn add_source(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
    use procedurewriter_pipeline::library::{self, IngestError, IngestRequest, ReadDocument};
    use procedurewriter_pipeline::library::{MEDIA_DOCX, MEDIA_PDF};
    let q: SourceQuery = query(&req, "title, url, tier, year, publication_type, filename")?;
    let kind = media_type(&req);
    let is_file = matches!(kind.as_deref(), Some(MEDIA_PDF | MEDIA_DOCX));
    let (_, bytes) = if is_file {
        let limit = state.settings.max_document_bytes();
        read_body_within(state, req, limit, "max_document_mb").await?
    } else {
        read_body(state, req).await?
    };
    let kind = match kind.as_deref() {
        Some(k @ ("application/json" | "text/markdown" | "text/plain" | "text/html")) => k,
        Some(k @ (MEDIA_PDF | MEDIA_DOCX)) => k,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "send a source as application/json, text/markdown, text/plain, text/html, \
                     {MEDIA_PDF} or {MEDIA_DOCX}"
                ),
            ))
        }
    }
    .to_string();
    // A JSON source is read here, so a malformed one is told apart from an invalid one.
    let json_source: Option<IngestRequest> = if kind == "application/json" {
        Some(serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request("malformed_json", format!("the JSON body is not valid: {e}"))
        })?)
    } else {
        None
    };
    let rules = Arc::clone(&state.rules);
    let originals = state.settings.data_dir.join("originals");
    // A file's original is kept before its source is stored; a delete must not remove it in
    // between (see `AppState::originals`). Uploads of files wait for each other here.
    let _originals = if is_file {
        Some(state.originals.lock().await)
    } else {
        None
    };
    let read = procedurewriter_pipeline::blocking::run_with_limit(PARSE_LIMIT, move || {
        let fallback = q.filename.clone().unwrap_or_default();
        let mut doc = match kind.as_str() {
            "application/json" => {
                let req = json_source.unwrap_or_default();
                return library::prepare(&rules, req, false).map(|d| (d, None));
            }
            "text/markdown" | "text/plain" | "text/html" => {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| IngestError::Invalid("the document is not valid UTF-8".into()))?;
                let req = if kind == "text/html" {
                    library::parse_html(text.as_bytes(), q.title.as_deref().unwrap_or(""))?
                } else {
                    library::parse_document(text, &fallback)?
                };
                let media = if kind == "text/html" {
                    "text/html"
                } else if kind == "text/markdown" {
                    "text/markdown"
                } else {
                    "text/plain"
                };
                ReadDocument::text(req, media)
            }
            _ => library::read_file(&kind, &bytes, &fallback)?,
        };
        let m = &mut doc.meta;
        m.title = q
            .title
            .or(Some(std::mem::take(&mut m.title)).filter(|t| !t.is_empty()))
            .unwrap_or_default();
        m.url = q.url.or(m.url.take());
        m.tier = q.tier.or(m.tier.take());
        m.year = q.year.or(m.year);
        m.publication_type = q.publication_type.or(m.publication_type.take());
        let original = doc.original_sha256.clone();
        let prepared = library::prepare_document(&rules, doc, false)?;
        // The original file, content-addressed: a reader can open the page a citation names.
        if let Some(sha) = original {
            let ext = if kind == MEDIA_PDF { "pdf" } else { "docx" };
            let path = originals.join(format!("{sha}.{ext}"));
            if !path.exists() {
                std::fs::create_dir_all(&originals)
                    .and_then(|_| {
                        let tmp = path.with_extension("tmp");
                        std::fs::write(&tmp, &bytes)?;
                        std::fs::rename(tmp, &path)
                    })
                    .map_err(|e| {
                        IngestError::Unreadable(format!("cannot keep the original file: {e}"))
                    })?;
            }
            return Ok((prepared, Some(path)));
        }
        Ok((prepared, None))
    })
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "document_too_complex",
            format!(
                "reading the document took longer than {} s; split it or send it as text",
                PARSE_LIMIT.as_secs()
            ),
        )
    })?;
    let (doc, _original) = read.map_err(|e| match e {
        IngestError::Invalid(m) => ApiError::bad_request("invalid_request", m),
        IngestError::WrongType(m) => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "media_type_mismatch", m)
        }
        IngestError::Unreadable(m) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "document_unreadable", m)
        }
    })?;
    let (source, created) = crate::library::store_document(&state.store, doc)
        .await
        .map_err(|e| match e {
            crate::library::StoreIngestError::Invalid(m) => {
                ApiError::bad_request("invalid_request", m.to_string())
            }
            crate::library::StoreIngestError::Store(e) => ApiError::from(e),
            crate::library::StoreIngestError::TierConflict { id, stored, asked } => ApiError::new(
                StatusCode::CONFLICT,
                "tier_conflict",
                format!(
                    "this document is already in the library as {id} with tier {stored}; \
                         to give it tier {asked}, re-tier it: PATCH /api/sources/{id} with \
                         {{\"tier\": \"{asked}\", \"reason\": \"...\"}} \
                         (procedurewriter sources retier {id} {asked} --reason ...)"
                ),
            ),
            crate::library::StoreIngestError::Retired { id, reason } => ApiError::new(
                StatusCode::CONFLICT,
                "source_retired",
                format!(
                    "this document was in the library as {id} and was retired ({reason}); it \
                     is kept for the runs that used it and is not retrieved again"
                ),
            ),
        })?;
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

/// `GET /api/sources/{id}/original`: the file the source was read from (PDF, DOCX), with a
/// file name.
pub(super) async fn get_original(state: &Arc<AppState>, id: String) -> Handled {
    let id = check_source_id(&id)?;
    let source = state.store.get_source(id.clone()).await?;
    let (Some(sha), ext) = (
        source.original_sha256.clone(),
        if source.media_type == procedurewriter_pipeline::library::MEDIA_PDF {
            "pdf"
        } else {
            "docx"
        },
    ) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "original_not_found",
            format!("source {id} was sent as text; GET /api/sources/{id} has its text"),
        ));
    };
    let path = state
        .settings
        .data_dir
        .join("originals")
        .join(format!("{sha}.{ext}"));
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "original_unreadable",
            format!(
                "cannot read the original of {id}: {e}; restore <data_dir>/originals from a backup"
            ),
        )
    })?;
    let mut resp = hyper::Response::new(super::full(bytes));
    let h = resp.headers_mut();
    if let Ok(v) = hyper::header::HeaderValue::from_str(&source.media_type) {
        h.insert(hyper::header::CONTENT_TYPE, v);
    }
    if let Ok(v) =
        hyper::header::HeaderValue::from_str(&format!("attachment; filename=\"{id}.{ext}\""))
    {
        h.insert(hyper::header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// A source id must look like `SRC0001`; anything else cannot name a source (or a path).
fn check_source_id(id: &str) -> Result<String, ApiError> {
    let valid = id.len() <= 12
        && id
            .strip_prefix("SRC")
            .is_some_and(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        Ok(id.to_string())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "source_not_found",
            format!(
                "source {:?} not found: source ids look like SRC0001",
                truncate(id, 40)
            ),
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn list_sources(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
    let q: PageQuery = query(&req, "cursor, limit")?;
    let (cursor, limit) = page(q.cursor.as_deref(), q.limit)?;
    let sources = state.store.list_sources(cursor, limit).await?;
    Ok(json_response(StatusCode::OK, &sources))
}

/// `GET /api/sources/{id}`: the source with its text, its passages, how many runs used it and
/// its history (deletes, retirements, re-tierings). An erased source is a 404 that says when
/// and why.
pub(super) async fn get_source(state: &Arc<AppState>, id: String) -> Handled {
    let id = check_source_id(&id)?;
    let source = match state.store.get_source(id.clone()).await {
        Ok(s) => s,
        Err(procedurewriter_actors::Error::SourceNotFound(_)) => {
            return Err(erased_or_unknown(state, id).await)
        }
        Err(e) => return Err(e.into()),
    };
    let passages = state.store.passages(id.clone()).await?;
    let cited_by = state.store.citing_runs(id.clone()).await?;
    let history = state.store.source_history(id).await?;
    let mut body = serde_json::to_value(&source).unwrap_or_default();
    body["retired"] = json!(source.retired_at.is_some());
    body["cited_by_runs"] = json!(cited_by);
    body["history"] = json!(history);
    body["passages"] = json!(passages);
    Ok(json_response(StatusCode::OK, &body))
}

/// The 404 for a source that is not in the library: erased (when and why, from its audit) or
/// never there.
async fn erased_or_unknown(state: &Arc<AppState>, id: String) -> ApiError {
    let history = state
        .store
        .source_history(id.clone())
        .await
        .unwrap_or_default();
    let message = match history.iter().rev().find(|e| e.action == "erased") {
        Some(e) => format!(
            "source {id} was erased at {} ({}); no run had used it",
            procedurewriter_actors::model::time::rfc3339(e.at),
            e.reason
        ),
        None => format!("source {id} not found; GET /api/sources lists the library"),
    };
    ApiError::new(StatusCode::NOT_FOUND, "source_not_found", message)
}

/// The longest reason kept for a delete or a re-tiering.
const MAX_REASON_CHARS: usize = 1000;

/// Why a source is deleted or re-tiered: said in words, kept in its audit.
fn check_reason(reason: Option<&str>, what: &str) -> Result<String, ApiError> {
    let reason = reason.map(str::trim).unwrap_or_default();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "`reason` must say in 1 to {MAX_REASON_CHARS} characters why the source is \
                 {what}: it is kept in the source's audit"
            ),
        ));
    }
    Ok(reason.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteRequest {
    reason: Option<String>,
}

/// `DELETE /api/sources/{id}` with `{"reason": "..."}`: a source no run used is erased (its
/// passages, index rows and original file when no other source shares it); one a run used is
/// retired (never retrieved again, still served for those runs). Either is audited.
pub(super) async fn delete_source(
    state: &Arc<AppState>,
    id: String,
    req: Request<Incoming>,
) -> Handled {
    let id = check_source_id(&id)?;
    let body: DeleteRequest = json_body(state, req, false).await?;
    let reason = check_reason(body.reason.as_deref(), "deleted")?;
    // Until the original is removed, no upload of the same file may keep it anew.
    let _originals = state.originals.lock().await;
    let removal = match state.store.remove_source(id.clone(), reason).await {
        Err(procedurewriter_actors::Error::SourceNotFound(_)) => {
            return Err(erased_or_unknown(state, id).await)
        }
        other => other?,
    };
    let mut body = serde_json::to_value(&removal).unwrap_or_default();
    if let procedurewriter_actors::store::Removal::Erased {
        source,
        original: Some(sha),
    } = &removal
    {
        let ext = if source.media_type == procedurewriter_pipeline::library::MEDIA_PDF {
            "pdf"
        } else {
            "docx"
        };
        let path = state
            .settings
            .data_dir
            .join("originals")
            .join(format!("{sha}.{ext}"));
        let removed = match tokio::fs::remove_file(&path).await {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                tracing::warn!(source = %id, cause = %e, "erased source's original file not removed");
                false
            }
        };
        body["original_removed"] = json!(removed);
    }
    Ok(json_response(StatusCode::OK, &body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetierRequest {
    tier: Option<String>,
    reason: Option<String>,
}

/// `PATCH /api/sources/{id}` with `{"tier": "...", "reason": "..."}`: the tier future runs
/// see (each run keeps the tier it judged the source by), audited.
pub(super) async fn retier_source(
    state: &Arc<AppState>,
    id: String,
    req: Request<Incoming>,
) -> Handled {
    let id = check_source_id(&id)?;
    let body: RetierRequest = json_body(state, req, false).await?;
    let known = || state.rules.ids().collect::<Vec<_>>().join(", ");
    let tier = body.tier.as_deref().map(str::trim).unwrap_or_default();
    if tier.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("`tier` names the new tier, one of: {}", known()),
        ));
    }
    if state.rules.get(tier).is_none() {
        return Err(ApiError::bad_request(
            "unknown_tier",
            format!(
                "unknown tier {:?}; use one of: {}",
                truncate(tier, 60),
                known()
            ),
        ));
    }
    let reason = check_reason(body.reason.as_deref(), "re-tiered")?;
    let (source, changed) = match state
        .store
        .retier_source(id.clone(), tier.to_string(), reason)
        .await
    {
        Err(procedurewriter_actors::Error::SourceNotFound(_)) => {
            return Err(erased_or_unknown(state, id).await)
        }
        other => other?,
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({ "changed": changed, "source": source }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

pub(super) async fn search_sources(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
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
