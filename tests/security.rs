//! Local-HTTP security: the API token on non-loopback addresses, DNS-rebinding and cross-site
//! refusals, ids that cannot name a path, oversized headers. Requests are written by hand
//! here so the tests control every header a browser or an attacker would send.

use crate::support::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;

const TOKEN: &str = "test-token-0123456789abcdefghijklmnopqrstuvwxyz";

/// Sends one raw HTTP/1.1 request (`Connection: close` is added) and returns the status, the
/// headers (lower-case names) and the body as JSON (or a string).
fn raw(addr: &str, head: &str, body: &str) -> (u16, String, Value) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{head}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    (status, headers.to_lowercase(), body)
}

#[test]
fn a_non_loopback_address_is_refused_without_an_api_token() {
    let s = Scratch::new();
    let (code, stderr) = s.start_failing(&[("PROCEDUREWRITER_LISTEN", "0.0.0.0:0")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("not a loopback address") && stderr.contains("api_token"),
        "{stderr}"
    );
}

#[test]
fn with_a_token_every_api_route_needs_it_and_health_stays_open() {
    let s = Scratch::new();
    let d = s.start(&[
        ("PROCEDUREWRITER_LISTEN", "0.0.0.0:0"),
        ("PROCEDUREWRITER_API_TOKEN", TOKEN),
    ]);
    let port = d.addr().rsplit_once(':').unwrap().1.to_string();
    let a = format!("127.0.0.1:{port}");
    let host = format!("Host: {a}");
    for (line, body) in [
        ("GET /api/runs HTTP/1.1", ""),
        ("GET /api/costs HTTP/1.1", ""),
        ("GET /api/keys HTTP/1.1", ""),
        ("GET /metrics HTTP/1.1", ""),
        (
            "POST /api/write HTTP/1.1\r\nContent-Type: application/json",
            r#"{"procedure":"x"}"#,
        ),
    ] {
        let (status, headers, body) = raw(&a, &format!("{line}\r\n{host}"), body);
        assert_eq!(status, 401, "{line}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{line}");
        assert!(headers.contains("www-authenticate: bearer"), "{headers}");
        let wrong = format!(
            "{line}\r\n{host}\r\nAuthorization: Bearer {}x",
            &TOKEN[..TOKEN.len() - 1]
        );
        assert_eq!(raw(&a, &wrong, "").0, 401, "{line} with a wrong token");
    }
    assert_eq!(
        raw(&a, &format!("GET /health HTTP/1.1\r\n{host}"), "").0,
        200
    );
    let ok = format!("GET /api/runs HTTP/1.1\r\n{host}\r\nAuthorization: Bearer {TOKEN}");
    let (status, _, body) = raw(&a, &ok, "");
    assert_eq!(status, 200, "{body}");
    // Nothing was enqueued by the refused POST, and the token is not in the log.
    assert_eq!(body["runs"].as_array().unwrap().len(), 0);
    assert!(!d.log_text().contains(TOKEN));
}

/// The token guards the route a path reaches, not the path's spelling: a trailing or doubled
/// slash, a query string or percent-encoding must not reach a protected route without it.
#[test]
fn the_token_guards_every_spelling_of_every_protected_route() {
    let s = Scratch::new();
    let d = s.start(&[
        ("PROCEDUREWRITER_LISTEN", "0.0.0.0:0"),
        ("PROCEDUREWRITER_API_TOKEN", TOKEN),
    ]);
    let port = d.addr().rsplit_once(':').unwrap().1.to_string();
    let a = format!("127.0.0.1:{port}");
    let host = format!("Host: {a}");
    let run = "0190f2c4-0000-7000-8000-000000000000";
    let routes = [
        "/metrics".to_string(),
        "/api/write".into(),
        "/api/costs".into(),
        "/api/reloads".into(),
        "/api/runs".into(),
        format!("/api/runs/{run}"),
        format!("/api/runs/{run}/cancel"),
        format!("/api/runs/{run}/retry"),
        format!("/api/runs/{run}/ack"),
        format!("/api/runs/{run}/procedure"),
        format!("/api/runs/{run}/events"),
        "/api/sources".into(),
        "/api/sources/search".into(),
        "/api/sources/SRC0001".into(),
        "/api/keys".into(),
        "/api/keys/openai_api_key".into(),
    ];
    let mut spellings = vec![
        "/".to_string(),
        "/api".into(),
        "/api/".into(),
        "/nothing-here".into(),
        "/%6Detrics".into(),
        "/metrics%2F".into(),
        "/api/%72uns".into(),
        "/api%2Fruns".into(),
    ];
    for r in &routes {
        spellings.extend([
            r.clone(),
            format!("{r}/"),
            format!("{r}//"),
            format!("{r}///"),
            format!("{r}?x"),
            format!("{r}/?x"),
            format!("{r}//?x=1&y"),
            format!("/{r}"),
            r.replace('/', "//"),
            format!("{r}?"),
        ]);
    }
    for path in &spellings {
        for method in ["GET", "POST", "HEAD", "DELETE"] {
            let line = format!("{method} {path} HTTP/1.1");
            let (status, headers, body) = raw(&a, &format!("{line}\r\n{host}"), "");
            assert_eq!(status, 401, "{line}: {body}");
            assert!(
                headers.contains("www-authenticate: bearer"),
                "{line}: {headers}"
            );
            if method != "HEAD" {
                assert_eq!(body["error"]["code"], "unauthorized", "{line}: {body}");
            }
        }
    }
    // With the token the same spellings reach their route, and /health stays open however
    // it is spelled.
    let auth = format!("Authorization: Bearer {TOKEN}");
    for path in ["/metrics/", "/metrics//", "/metrics/?x", "/metrics?x"] {
        let (status, _, body) = raw(&a, &format!("GET {path} HTTP/1.1\r\n{host}\r\n{auth}"), "");
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            body.as_str()
                .is_some_and(|t| t.contains("procedurewriter_")),
            "{path}"
        );
    }
    for path in ["/health", "/health/", "/health//", "/health?x"] {
        let (status, _, body) = raw(&a, &format!("GET {path} HTTP/1.1\r\n{host}"), "");
        assert_eq!(status, 200, "{path}: {body}");
    }
    // Two Authorization headers are not a token, even if one of them is right.
    let (status, _, _) = raw(
        &a,
        &format!("GET /api/runs HTTP/1.1\r\n{host}\r\n{auth}\r\nAuthorization: Bearer x"),
        "",
    );
    assert_eq!(status, 401);
}

#[test]
fn a_request_for_another_host_name_is_refused_against_dns_rebinding() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let a = d.addr();
    let port = a.rsplit_once(':').unwrap().1;
    let (status, _, body) = raw(
        &a,
        &format!("GET /api/runs HTTP/1.1\r\nHost: evil.example:{port}"),
        "",
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "host_not_allowed");
    for host in [
        format!("localhost:{port}"),
        a.clone(),
        format!("[::1]:{port}"),
    ] {
        let (status, _, body) = raw(&a, &format!("GET /api/runs HTTP/1.1\r\nHost: {host}"), "");
        assert_eq!(status, 200, "{host}: {body}");
    }
}

/// `Host` is parsed strictly (host, optional numeric port, IPv6 in brackets exactly) and must be
/// sent once; so must `Origin` and `Sec-Fetch-Site`. An absolute-form target must name the same
/// host. None of these is treated as "no header", and none of them stores anything.
#[test]
fn malformed_repeated_or_missing_host_headers_and_foreign_absolute_targets_are_refused() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let a = d.addr();
    let port = a.rsplit_once(':').unwrap().1;
    let write = r#"{"procedure":"Anafylaksi"}"#;
    let json = "Content-Type: application/json";
    #[rustfmt::skip]
    let table: Vec<(String, u16, &str)> = vec![
        (format!("POST /api/write HTTP/1.1\r\nHost: [::1]evil.example\r\n{json}"), 400, "invalid_host"),
        (format!("POST /api/write HTTP/1.1\r\nHost: [::1]:evil.example\r\n{json}"), 400, "invalid_host"),
        (format!("POST /api/write HTTP/1.1\r\nHost: localhost:evil.example\r\n{json}"), 400, "invalid_host"),
        (format!("POST /api/write HTTP/1.1\r\nHost: localhost:{port}:1\r\n{json}"), 400, "invalid_host"),
        (format!("POST /api/write HTTP/1.1\r\nHost: localhost:\r\n{json}"), 400, "invalid_host"),
        (format!("POST /api/write HTTP/1.1\r\nHost: 127.0.0.1:99999\r\n{json}"), 400, "invalid_host"),
        (format!("POST /api/write HTTP/1.1\r\nHost: \u{e9}vil.example\r\n{json}"), 400, "invalid_host"),
        (format!("POST /api/write HTTP/1.1\r\nHost: l\u{43e}calhost:{port}\r\n{json}"), 400, "invalid_host"),
        (format!("POST /api/write HTTP/1.1\r\nHost: \r\n{json}"), 400, "invalid_host"),
        (format!("POST /api/write HTTP/1.1\r\n{json}"), 400, "missing_host"),
        (format!("POST /api/write HTTP/1.1\r\nHost: {a}\r\nHost: evil.example\r\n{json}"), 400, "duplicate_header"),
        (format!("POST /api/write HTTP/1.1\r\nHost: evil.example\r\nHost: {a}\r\n{json}"), 400, "duplicate_header"),
        (format!("POST /api/write HTTP/1.1\r\nHost: {a}\r\nOrigin: http://{a}\r\nOrigin: https://evil.example\r\n{json}"), 400, "duplicate_header"),
        (format!("POST /api/write HTTP/1.1\r\nHost: {a}\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-Site: cross-site\r\n{json}"), 400, "duplicate_header"),
        (format!("POST http://evil.example/api/write HTTP/1.1\r\nHost: {a}\r\n{json}"), 400, "invalid_target"),
        (format!("POST http://evil.example:{port}/api/write HTTP/1.1\r\nHost: evil.example:{port}\r\n{json}"), 403, "host_not_allowed"),
        (format!("POST https://{a}/api/write HTTP/1.1\r\nHost: {a}\r\n{json}"), 400, "invalid_target"),
        (format!("POST http://evil.example/api/write HTTP/1.0\r\n{json}"), 400, "invalid_target"),
    ];
    for (head, status, code) in &table {
        let (got, _, body) = raw(&a, head, write);
        assert_eq!(got, *status, "{head}: {body}");
        assert_eq!(body["error"]["code"], *code, "{head}: {body}");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(
        d.http().get("/api/runs").body["runs"],
        serde_json::json!([]),
        "nothing was stored"
    );
    // Well-formed requests still pass: an absolute-form target naming this host, and HTTP/1.0
    // (which may omit Host).
    for head in [
        format!("GET http://{a}/api/runs HTTP/1.1\r\nHost: {a}"),
        format!("GET http://localhost:{port}/api/runs HTTP/1.1\r\nHost: localhost:{port}"),
        "GET /api/runs HTTP/1.0".to_string(),
        "GET /api/runs HTTP/1.1\r\nHost: [::1]".to_string(),
        "GET /api/runs HTTP/1.1\r\nHost: LOCALHOST".to_string(),
    ] {
        let (status, _, body) = raw(&a, &head, "");
        assert_eq!(status, 200, "{head}: {body}");
    }
}

#[test]
fn cross_site_browser_requests_and_form_posts_are_refused_and_store_nothing() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let a = d.addr();
    let host = format!("Host: {a}");
    let json = "Content-Type: application/json";
    let body = r#"{"procedure":"Anafylaksi"}"#;
    for extra in [
        "Origin: https://evil.example".to_string(),
        "Origin: null".to_string(),
        "Sec-Fetch-Site: cross-site".to_string(),
    ] {
        let (status, _, b) = raw(
            &a,
            &format!("POST /api/write HTTP/1.1\r\n{host}\r\n{json}\r\n{extra}"),
            body,
        );
        assert_eq!(status, 403, "{extra}: {b}");
        assert_eq!(b["error"]["code"], "cross_origin_refused");
    }
    // What an HTML form can send is not JSON.
    for ct in [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
    ] {
        let (status, _, b) = raw(
            &a,
            &format!("POST /api/write HTTP/1.1\r\n{host}\r\nContent-Type: {ct}"),
            body,
        );
        assert_eq!(status, 415, "{ct}: {b}");
        assert!(b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("application/json"));
    }
    // A same-origin request is fine; nothing before it was stored.
    let (status, _, b) = raw(
        &a,
        &format!("POST /api/write HTTP/1.1\r\n{host}\r\n{json}\r\nOrigin: http://{a}\r\nSec-Fetch-Site: same-origin"),
        body,
    );
    assert_eq!(status, 202, "{b}");
    assert_eq!(
        d.http().get("/api/runs").body["runs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn ids_cannot_name_a_path_and_oversized_headers_are_refused() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    for path in [
        "/api/runs/..%2F..%2Fsecret.key/procedure",
        "/api/runs/..%2Fprocedurewriter.db/manifest",
        "/api/runs/%2Fetc%2Fpasswd",
        "/api/sources/..%2F..%2Fsecret.key",
        "/api/runs/0190f2c4-0000-7000-8000-000000000000'%20OR%201=1--",
    ] {
        let r = h.get(path);
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert!(r.body["error"]["code"].is_string(), "{path}: {r:?}");
    }
    let a = d.addr();
    let big = "x".repeat(100 * 1024);
    let (status, _, _) = raw(
        &a,
        &format!("GET /health HTTP/1.1\r\nHost: {a}\r\nX-Big: {big}"),
        "",
    );
    assert_eq!(status, 431);
    // The daemon is unharmed.
    assert_eq!(h.get("/health").status, 200);
}
