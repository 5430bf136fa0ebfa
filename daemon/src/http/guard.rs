//! Who may call the API: the Host header (DNS rebinding) and the browser's own cross-site
//! markers (CSRF), checked before any routing; and the API token when one is configured,
//! checked on the route the router resolved (never on the raw path, which has many spellings).
//!
//! The API has no browser UI and sends no CORS headers, so a browser page on another site can
//! only reach it by a "simple" request (a form post, a body-less `fetch`) or by rebinding a DNS
//! name to 127.0.0.1. Browsers mark both: a rebound request carries the attacker's name in
//! `Host`, and a cross-site request carries `Origin` (and `Sec-Fetch-Site`). `curl` and the CLI
//! send neither marker. JSON bodies must also say `application/json` (see `routes::json_body`),
//! which a form cannot.

use super::{ApiError, AppState, Body};
use hyper::{header, Request, Response, StatusCode};

/// The refusal of a request from the wrong place (with its JSON error), or None when the
/// request may proceed to routing.
pub(super) fn refusal<B>(state: &AppState, req: &Request<B>) -> Option<Response<Body>> {
    let headers = req.headers();
    // A header that decides who is calling must say one thing: with two, which one a proxy or
    // browser meant is anyone's guess (RFC 9112 makes a repeated Host a 400).
    for name in [
        header::HOST,
        header::ORIGIN,
        header::HeaderName::from_static("sec-fetch-site"),
    ] {
        if headers.get_all(&name).iter().nth(1).is_some() {
            return Some(bad_header(
                "duplicate_header",
                format!("the request has more than one `{name}` header; send it once"),
            ));
        }
    }
    let host =
        match headers.get(header::HOST) {
            Some(v) => match v.to_str().ok().filter(|h| parse_host(h).is_some()) {
                Some(h) => Some(h),
                None => return Some(bad_header(
                    "invalid_host",
                    "the `Host` header is not a host name or IP address with an optional numeric \
                     port (IPv6 in brackets); send e.g. `Host: 127.0.0.1:8077`",
                )),
            },
            // HTTP/1.0 clients may omit it; an HTTP/1.1 request without one is malformed.
            None if req.version() == hyper::Version::HTTP_10 => None,
            None => {
                return Some(bad_header(
                    "missing_host",
                    "an HTTP/1.1 request needs a `Host` header; send e.g. `Host: 127.0.0.1:8077`",
                ))
            }
        };
    // An absolute-form target (`GET http://host/path`) names the host itself, and RFC 9112 has
    // a server use it over `Host`: it must name the same host, by http.
    if let Some(authority) = req.uri().authority() {
        let same = host.is_some_and(|h| h.eq_ignore_ascii_case(authority.as_str()));
        let http = req
            .uri()
            .scheme_str()
            .is_none_or(|s| s.eq_ignore_ascii_case("http"));
        if !same || !http || parse_host(authority.as_str()).is_none() {
            return Some(bad_header(
                "invalid_target",
                "a request target naming a host must be `http://` and the host in the `Host` \
                 header; send the path alone (e.g. `GET /api/runs`)",
            ));
        }
    }
    let host = host.unwrap_or("");
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
    charset_refusal(headers)
}

/// Bodies are read as UTF-8 (JSON, Markdown, text): a body that says it is in another charset
/// would be misread, so it is refused rather than guessed at.
fn charset_refusal(headers: &header::HeaderMap) -> Option<Response<Body>> {
    let content_type = headers.get(header::CONTENT_TYPE)?;
    let text = content_type.to_str().unwrap_or("");
    let other = text.split(';').skip(1).any(|param| {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        name.trim().eq_ignore_ascii_case("charset")
            && !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    });
    (other || text.is_empty() && !content_type.is_empty()).then(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "request bodies must be UTF-8: send `charset=utf-8` or no charset",
        )
        .into_response()
    })
}

fn bad_header(code: &'static str, message: impl Into<String>) -> Response<Body> {
    ApiError::bad_request(code, message).into_response()
}

/// A host as `Host` and absolute-form targets carry it, strictly: a DNS name (letters, digits,
/// `-`, `.`), an IPv4 address, or an IPv6 address in brackets, then optionally `:` and a port
/// of 1 to 5 digits (at most 65535). Returns the name (brackets removed) and the port.
fn parse_host(host: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        ip.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (ip, port)
    } else {
        let (name, port) = match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let name_ok = name.len() <= 253 && name.trim_end_matches('.').split('.').all(label_ok);
        if !name_ok {
            return None;
        }
        (name, port)
    };
    let port = match port {
        None => None,
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((name, port))
}

/// The routes anyone may call when an `api_token` is set: only the liveness check. Every other
/// route template, and every path no route matches, needs the token (fail closed: a new route
/// is protected without anyone remembering to list it).
const OPEN_ROUTES: &[&str] = &["/health"];

/// Whether the request presents the configured API token (true when none is configured).
pub(super) fn authorized(state: &AppState, headers: &header::HeaderMap) -> bool {
    if !state.settings.api_token.is_set() {
        return true;
    }
    // One Authorization header only: with two, which one a proxy checked is anyone's guess.
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let presented = values
        .next()
        .filter(|_| values.next().is_none())
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    presented.is_some_and(|t| state.settings.api_token.matches(t))
}

/// The 401 for `route` (the template the router resolved the path to, so `/metrics/`,
/// `/metrics//` and `/metrics?x` are all `/metrics`), or None when the caller may proceed.
/// This is the one place that decides who may call what.
pub(super) fn authorization(route: &str, authorized: bool) -> Option<Response<Body>> {
    if authorized || OPEN_ROUTES.contains(&route) {
        return None;
    }
    let mut resp = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this daemon requires `Authorization: Bearer <api_token>` on every route but /health",
    )
    .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    Some(resp)
}

/// `localhost` or a loopback IP (v4, or v6 in brackets), with or without a port; anything that
/// is not a well-formed host (see [`parse_host`]) is not loopback.
fn is_loopback_host(host: &str) -> bool {
    let Some((name, _)) = parse_host(host) else {
        return false;
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
            "[::1]evil.example",
            "[::1]:evil.example",
            "localhost:evil.example",
            "127.0.0.1:8077:1",
            "localhost:",
            "localhost:080770",
            "localhost:99999",
            "localhost:+80",
            "[127.0.0.1]",
            "[::1]]",
            "",
            "local host",
            "localhost\u{0}",
            "lоcalhost",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
