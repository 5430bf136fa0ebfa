//! What the language models cost (`GET /api/costs`) and the configuration reloads
//! (`GET /api/reloads`).

use super::request::{query, Handled};
use super::{json_response, ApiError, AppState};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use procedurewriter_actors::store::CostQuery;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Most runs listed in `by_run` by default, and at most.
const DEFAULT_RUNS: usize = 50;
const MAX_RUNS: usize = 1000;
const MS_PER_DAY: i64 = 86_400_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CostParams {
    /// First UTC day included, `YYYY-MM-DD`.
    from: Option<String>,
    /// Last UTC day included, `YYYY-MM-DD`.
    to: Option<String>,
    /// Most runs in `by_run`.
    runs: Option<usize>,
}

/// A `YYYY-MM-DD` UTC day as Unix ms at its start.
fn day_start(name: &str, day: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_query",
            format!("{name} must be a UTC day as YYYY-MM-DD, got {day:?}"),
        )
    };
    if day.len() != 10 {
        return Err(bad());
    }
    let t = humantime::parse_rfc3339(&format!("{day}T00:00:00Z")).map_err(|_| bad())?;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| bad())?
        .as_millis();
    Ok(ms as i64)
}

pub(super) async fn costs(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
    let p: CostParams = query(&req, "?from=YYYY-MM-DD&to=YYYY-MM-DD&runs=N")?;
    let from = p
        .from
        .as_deref()
        .map(|d| day_start("from", d))
        .transpose()?;
    let to =
        p.to.as_deref()
            .map(|d| day_start("to", d).map(|ms| ms + MS_PER_DAY))
            .transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ApiError::bad_request(
                "invalid_query",
                "from must be a day on or before to",
            ));
        }
    }
    let runs = p.runs.unwrap_or(DEFAULT_RUNS);
    if runs == 0 || runs > MAX_RUNS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("runs must be between 1 and {MAX_RUNS}"),
        ));
    }
    let report = state
        .store
        .costs(CostQuery {
            from,
            to,
            run_limit: runs,
        })
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "from": p.from,
            "to": p.to,
            "total": report.total,
            "by_day": report.by_day,
            "by_model": report.by_model,
            "by_run": report.by_run,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReloadParams {
    limit: Option<usize>,
}

pub(super) async fn reloads(state: &Arc<AppState>, req: Request<Incoming>) -> Handled {
    let p: ReloadParams = query(&req, "?limit=N")?;
    let limit = p.limit.unwrap_or(DEFAULT_RUNS);
    if limit == 0 || limit > MAX_RUNS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_RUNS}"),
        ));
    }
    let reloads = state.store.reloads(limit).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "reloads": reloads }),
    ))
}
