//! The evidence library: `POST|GET /api/sources`, `GET /api/sources/{id}`,
//! `GET /api/sources/search`.

use super::routes::{page, query, read_body, truncate, Handled};
use super::{json_response, ApiError, AppState};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

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
pub(super) async fn add_source(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
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
    check_url(ingest.url.as_deref())?;
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

/// A source's `url` is shown to readers and may be followed: only an absolute `http` or `https`
/// URL with a host (never `javascript:`, `data:`, `file:` or a relative path), without
/// whitespace or control characters. Non-ASCII paths (Danish guideline pages) are fine.
fn check_url(url: Option<&str>) -> Result<(), ApiError> {
    let Some(url) = url else { return Ok(()) };
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        ""
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if host.is_empty() || !clean {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "the source url {:?} is not an http or https URL; send e.g. \
                 https://www.sundhed.dk/..., or leave url out",
                truncate(url, 80)
            ),
        ));
    }
    Ok(())
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

pub(super) async fn get_source(state: &Arc<AppState>, id: String) -> Handled {
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
