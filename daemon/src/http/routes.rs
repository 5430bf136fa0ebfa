//! Routing: which handler answers which method and path. The handlers live by resource
//! (`runs.rs`, `sources.rs`, `api_keys.rs`, `costs.rs`); what they share is in `request.rs`.

use super::api_keys::{delete_key, get_key, list_keys, put_key};
use super::costs::{costs, reloads};
use super::request::boxed;
use super::runs::{
    ack, cancel, events, get_run, health, list, metrics, retry, run_artifact, write,
};
use super::sources::{
    add_source, delete_source, get_original, get_source, list_sources, retier_source,
    search_sources,
};
use super::{ApiError, AppState, Body};
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use std::sync::Arc;

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
            (method == Method::GET).then(|| boxed(metrics(state, req))),
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
            let fut = match method {
                Method::GET => Some(boxed(get_source(state, id))),
                Method::PATCH => Some(boxed(retier_source(state, id, req))),
                Method::DELETE => Some(boxed(delete_source(state, id, req))),
                _ => None,
            };
            ("/api/sources/{id}", "GET, PATCH, DELETE", fut)
        }
        ["api", "sources", id, "original"] => {
            let id = id.to_string();
            (
                "/api/sources/{id}/original",
                "GET",
                (method == Method::GET).then(|| boxed(get_original(state, id))),
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
        ["api", "runs", id, artifact]
            if *artifact == "sources"
                || procedurewriter_pipeline::package::artifact(artifact).is_some() =>
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
