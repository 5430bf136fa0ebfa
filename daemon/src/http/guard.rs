//! Who may call the API, checked before any routing: the Host header (DNS rebinding), the
//! browser's own cross-site markers (CSRF), and the API token when one is configured.
//!
//! The API has no browser UI and sends no CORS headers, so a browser page on another site can
//! only reach it by a "simple" request (a form post, a body-less `fetch`) or by rebinding a DNS
//! name to 127.0.0.1. Browsers mark both: a rebound request carries the attacker's name in
//! `Host`, and a cross-site request carries `Origin` (and `Sec-Fetch-Site`). `curl` and the CLI
//! send neither marker. JSON bodies must also say `application/json` (see `routes::json_body`),
//! which a form cannot.

use super::{ApiError, AppState, Body};
use hyper::{header, Request, Response, StatusCode};

/// The refusal (with its JSON error), or None when the request may proceed.
pub(super) fn refusal<B>(state: &AppState, req: &Request<B>) -> Option<Response<Body>> {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if state.settings.listen.ip().is_loopback() && !host.is_empty() && !is_loopback_host(host) {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            "this daemon listens on loopback and answers only requests addressed to localhost, \
             127.0.0.1 or [::1]",
        )
        .into_response());
    }
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.eq_ignore_ascii_case("cross-site") || v.eq_ignore_ascii_case("same-site")
        });
    let foreign_origin = headers
        .get(header::ORIGIN)
        .map(|v| {
            let origin = v.to_str().unwrap_or("null");
            let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
            origin_host.is_empty() || !origin_host.eq_ignore_ascii_case(host)
        })
        .unwrap_or(false);
    if cross_site || foreign_origin {
        return Some(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_origin_refused",
                "requests from web pages of other origins are refused",
            )
            .into_response(),
        );
    }
    let path = req.uri().path();
    let protected = path == "/metrics" || path == "/api" || path.starts_with("/api/");
    if protected && state.settings.api_token.is_set() {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        if !presented.is_some_and(|t| state.settings.api_token.matches(t)) {
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this daemon requires `Authorization: Bearer <api_token>` on /api and /metrics",
            )
            .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return Some(resp);
        }
    }
    None
}

/// `localhost`, a loopback IP (v4, or v6 in brackets), with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, _)) => ip,
            None => return false,
        }
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST:8077",
            "127.0.0.1",
            "127.0.0.1:1",
            "[::1]:8077",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:8077",
            "10.0.0.1:8077",
            "localhost.evil.example",
            "[::1",
            "127.0.0.1.nip.io",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
