//! Every error status the API promises, each with its JSON body; hostile input never panics
//! the daemon and stores nothing.

use crate::support::*;
use serde_json::json;

#[test]
fn every_error_status_has_a_json_body_and_nothing_is_stored() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_MAX_BODY_BYTES", "4096")]);
    let h = d.http();
    let ct = Some("application/json");

    h.post_raw("/api/write", ct, b"{\"procedure\": ")
        .assert_error(400, "malformed_json");
    h.post_raw("/api/write", ct, b"[1,2,3]")
        .assert_error(400, "malformed_json");
    h.post_raw("/api/write", ct, b"{\"procedure\": 7}")
        .assert_error(400, "malformed_json");
    h.post_raw(
        "/api/write",
        ct,
        b"{\"procedure\": \"x\", \"colour\": \"red\"}",
    )
    .assert_error(400, "malformed_json");
    h.post_raw("/api/write", ct, b"{\"procedure\": \"   \"}")
        .assert_error(400, "invalid_request");
    h.post_raw("/api/write", ct, b"{\"procedure\": \"a\\u0000b\"}")
        .assert_error(400, "invalid_request");
    h.post_raw("/api/write", ct, b"\xff\xfe\x00")
        .assert_error(400, "malformed_json");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    h.post_raw("/api/write", ct, deep.as_bytes())
        .assert_error(413, "body_too_large");
    let deep = format!(
        "{{\"procedure\": {}{}}}",
        "[".repeat(1000),
        "]".repeat(1000)
    );
    h.post_raw("/api/write", ct, deep.as_bytes())
        .assert_error(400, "malformed_json");
    let huge = json!({ "procedure": "x".repeat(10_000) }).to_string();
    h.post_raw("/api/write", ct, huge.as_bytes())
        .assert_error(413, "body_too_large");
    // The refused body is not read, so the connection closes, and the answer says so: a client
    // must not send its next request on it.
    let r = h.post_raw("/api/write", ct, huge.as_bytes());
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    h.post_raw(
        "/api/write",
        Some("application/x-www-form-urlencoded"),
        b"procedure=x",
    )
    .assert_error(415, "unsupported_media_type");
    h.post_raw("/api/write", None, b"{\"procedure\": \"x\"}")
        .assert_error(415, "unsupported_media_type");
    h.post_json("/api/write", &json!({ "procedure": "x", "priority": 1e12 }))
        .assert_error(400, "malformed_json");

    h.get("/api/runs/0190f2c4-0000-7000-8000-000000000000")
        .assert_error(404, "run_not_found");
    h.get("/api/runs/..%2F..%2Fetc%2Fpasswd")
        .assert_error(404, "run_not_found");
    h.get("/api/runs/' OR 1=1 --".replace(' ', "%20").as_str())
        .assert_error(404, "run_not_found");
    h.post_empty("/api/runs/0190f2c4-0000-7000-8000-000000000000/cancel")
        .assert_error(404, "run_not_found");
    h.get("/api/nothing-here")
        .assert_error(404, "route_not_found");
    let r = h.get("/api/write");
    r.assert_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("POST"));

    // Nothing above was stored.
    assert_eq!(h.get("/api/runs").body["runs"].as_array().unwrap().len(), 0);

    // 409 from a real run.
    let id = h.write("ok", json!({}));
    h.wait_status(&id, "DONE", std::time::Duration::from_secs(20));
    h.post_empty(&format!("/api/runs/{id}/cancel"))
        .assert_error(409, "transition_not_allowed");
    h.post_raw(&format!("/api/runs/{id}/retry"), ct, b"{\"x\":1}")
        .assert_error(400, "malformed_json");

    assert_eq!(h.get("/health").status, 200, "the daemon is still serving");
}

/// Hostile input, route by route: each row is a request and the 4xx (and error code) it must
/// get. Nothing may panic the daemon or be stored.
#[test]
fn hostile_inputs_get_their_4xx_json_error_and_store_nothing() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_MAX_BODY_BYTES", "65536")]);
    let h = d.http();
    let json = Some("application/json");
    let run = "0190f2c4-0000-7000-8000-000000000000";
    let deep = format!(
        "{{\"procedure\": {}1{}}}",
        "[".repeat(2000),
        "]".repeat(2000)
    );
    let big = json!({ "procedure": "x", "context": "y".repeat(70_000) }).to_string();
    let ack = |tiers: &str| format!(r#"{{"note": "n", "acknowledged_by": "a", "tiers": {tiers}}}"#);
    // (method, path, content type, body, status, error code)
    type Row<'a> = (
        &'a str,
        String,
        Option<&'a str>,
        Option<Vec<u8>>,
        u16,
        &'a str,
    );
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        // Malformed, truncated, wrong types, unknown fields.
        ("POST", "/api/write".into(), json, Some(b"{\"procedure\": \"x\"".to_vec()), 400, "malformed_json"),
        ("POST", "/api/write".into(), json, Some(b"".to_vec()), 400, "malformed_json"),
        ("POST", "/api/write".into(), json, Some(b"null".to_vec()), 400, "malformed_json"),
        ("POST", "/api/write".into(), json, Some(br#"{"procedure": ["x"]}"#.to_vec()), 400, "malformed_json"),
        ("POST", "/api/write".into(), json, Some(br#"{"procedure": "x", "options": "fast"}"#.to_vec()), 400, "malformed_json"),
        ("POST", "/api/write".into(), json, Some(br#"{"procedure": "x", "run_id": "mine"}"#.to_vec()), 400, "malformed_json"),
        ("POST", "/api/write".into(), json, Some(br#"{"procedure": "x", "options": {"missing_tier_policy": "YOLO"}}"#.to_vec()), 400, "invalid_request"),
        // Deep nesting, huge bodies, NUL bytes, invalid UTF-8.
        ("POST", "/api/write".into(), json, Some(deep.into_bytes()), 400, "malformed_json"),
        ("POST", "/api/write".into(), json, Some(big.into_bytes()), 413, "body_too_large"),
        ("POST", "/api/write".into(), json, Some(b"{\"procedure\": \"a\0b\"}".to_vec()), 400, "malformed_json"),
        ("POST", "/api/write".into(), json, Some(b"{\"procedure\": \"\xc3\x28\"}".to_vec()), 400, "malformed_json"),
        ("POST", "/api/write".into(), json, Some(br#"{"procedure": "x", "context": "\u0000"}"#.to_vec()), 400, "invalid_request"),
        ("POST", "/api/write".into(), json, Some(br#"{"procedure": "x", "options": {"a\u0000": 1}}"#.to_vec()), 400, "invalid_request"),
        ("POST", "/api/write".into(), json, Some(br#"{"procedure": "x", "options": {"test": {"outcome": ["ok\u0000"]}}}"#.to_vec()), 400, "invalid_request"),
        // Negative and enormous numbers.
        ("POST", "/api/write".into(), json, Some(br#"{"procedure": "x", "priority": -1001}"#.to_vec()), 400, "invalid_request"),
        ("POST", "/api/write".into(), json, Some(br#"{"procedure": "x", "priority": 99999999999999999999999}"#.to_vec()), 400, "malformed_json"),
        ("POST", "/api/write".into(), json, Some(br#"{"procedure": "x", "priority": 1.5}"#.to_vec()), 400, "malformed_json"),
        ("GET", "/api/runs?limit=-1".into(), None, None, 400, "invalid_query"),
        ("GET", "/api/runs?limit=99999999999999999999999".into(), None, None, 400, "invalid_query"),
        ("GET", "/api/runs?limit=1001".into(), None, None, 400, "invalid_query"),
        ("GET", "/api/runs?cursor=-5".into(), None, None, 400, "invalid_query"),
        ("GET", "/api/runs?status=DROPPED".into(), None, None, 400, "invalid_query"),
        ("GET", "/api/runs?evil=1".into(), None, None, 400, "invalid_query"),
        ("GET", "/api/costs?from=2026-13-45".into(), None, None, 400, "invalid_query"),
        ("GET", "/api/costs?runs=-3".into(), None, None, 400, "invalid_query"),
        ("GET", "/api/reloads?limit=1e9".into(), None, None, 400, "invalid_query"),
        ("GET", "/api/sources/search?q=".into(), None, None, 400, "invalid_query"),
        // SQL and path traversal in ids and names.
        ("GET", "/api/runs/'%20OR%201=1%20--".into(), None, None, 404, "run_not_found"),
        ("GET", "/api/runs/..%2F..%2Fetc%2Fpasswd/procedure".into(), None, None, 404, "run_not_found"),
        ("GET", "/api/runs/%00".into(), None, None, 404, "run_not_found"),
        ("GET", "/api/sources/SRC1'%20OR%20'1'='1".into(), None, None, 404, "source_not_found"),
        ("GET", "/api/sources/..%2F..%2Fsecret.key".into(), None, None, 404, "source_not_found"),
        ("DELETE", "/api/sources/SRC1'%20OR%20'1'='1".into(), json, Some(br#"{"reason": "x"}"#.to_vec()), 404, "source_not_found"),
        ("PATCH", "/api/sources/..%2F..%2Fsecret.key".into(), json, Some(br#"{"tier": "rct", "reason": "x"}"#.to_vec()), 404, "source_not_found"),
        // Changing a source: a reason, a known tier, JSON; nothing changes on a refusal.
        ("DELETE", "/api/sources/SRC0001".into(), json, Some(br#"{"reason": ""}"#.to_vec()), 400, "invalid_request"),
        ("DELETE", "/api/sources/SRC0001".into(), json, Some(br#"{"reason": "x", "force": true}"#.to_vec()), 400, "malformed_json"),
        ("DELETE", "/api/sources/SRC0001".into(), None, None, 415, "unsupported_media_type"),
        ("PATCH", "/api/sources/SRC0001".into(), json, Some(br#"{"tier": "platinum", "reason": "x"}"#.to_vec()), 400, "unknown_tier"),
        ("PATCH", "/api/sources/SRC0001".into(), json, Some(br#"{"tier": "rct", "reason": "a\u0000b"}"#.to_vec()), 400, "invalid_request"),
        ("PATCH", "/api/sources/SRC0001".into(), json, Some(br#"{"tier": ["rct"], "reason": "x"}"#.to_vec()), 400, "malformed_json"),
        ("PUT", "/api/sources/SRC0001".into(), json, Some(b"{}".to_vec()), 405, "method_not_allowed"),
        ("PUT", "/api/keys/x';DROP%20TABLE%20secrets;--".into(), json, Some(br#"{"value": "v"}"#.to_vec()), 404, "key_not_found"),
        ("PUT", "/api/keys/..%2Fsecret.key".into(), json, Some(br#"{"value": "v"}"#.to_vec()), 404, "key_not_found"),
        ("PUT", "/api/keys/openai_api_key".into(), json, Some(br#"{"value": 42}"#.to_vec()), 400, "malformed_json"),
        ("PUT", "/api/keys/openai_api_key".into(), json, Some(br#"{"value": "a\u0000b"}"#.to_vec()), 400, "invalid_request"),
        ("PUT", "/api/keys/openai_api_key".into(), json, Some(br#"{"value": ""}"#.to_vec()), 400, "invalid_request"),
        ("POST", format!("/api/runs/{run}/ack"), json, Some(ack(r#""danish_guideline""#).into_bytes()), 400, "malformed_json"),
        ("POST", format!("/api/runs/{run}/ack"), json, Some(ack(r#"["danish_guideline"]"#).into_bytes()), 404, "run_not_found"),
        ("POST", "/api/sources".into(), json, Some(br#"{"title": 5}"#.to_vec()), 400, "malformed_json"),
        ("POST", "/api/sources".into(), Some("text/markdown"), Some(b"+++\ntitle = \n+++\n".to_vec()), 400, "invalid_request"),
        // Parsers have bounded cost: HTML nested 12,000 deep (parse time grows with the square
        // of the depth: 40,000 took 8 s on the serving thread once) is refused before it is
        // parsed; front matter nested absurdly deep too.
        ("POST", "/api/sources?title=x".into(), Some("text/html"), Some("<div>".repeat(12_000).into_bytes()), 400, "invalid_request"),
        ("POST", "/api/sources".into(), Some("text/markdown"), Some(format!("+++\nx = {}\n+++\nbody", "[".repeat(60_000)).into_bytes()), 400, "invalid_request"),
        // A title that would make the Word document invalid XML.
        ("POST", "/api/write".into(), json, Some(br#"{"procedure": "Anafylaksi\u0001\u0008"}"#.to_vec()), 400, "invalid_request"),
        ("POST", "/api/write".into(), json, Some("{\"procedure\": \"Anafylaksi\u{FFFE}\"}".as_bytes().to_vec()), 400, "invalid_request"),
        ("POST", "/api/sources".into(), Some("application/x-www-form-urlencoded"), Some(b"title=x".to_vec()), 415, "unsupported_media_type"),
        // Methods and routes that do not exist.
        ("DELETE", "/api/runs".into(), None, None, 405, "method_not_allowed"),
        ("PATCH", format!("/api/runs/{run}"), json, Some(b"{}".to_vec()), 405, "method_not_allowed"),
        ("GET", "/api/../../etc/passwd".into(), None, None, 404, "route_not_found"),
    ];
    for (method, path, ct, body, status, code) in &table {
        let r = h.request(method, path, *ct, body.as_deref());
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{method} {path}: {r:?}"
        );
        assert!(r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }

    // Nothing was stored: no run, no secret, no source beyond the demo library.
    assert_eq!(h.get("/api/runs").body["runs"], json!([]));
    let keys = h.get("/api/keys").body;
    assert!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["present"] == false),
        "{keys}"
    );
    let sources = h.get("/api/sources?limit=1000").body;
    assert_eq!(
        sources["sources"].as_array().unwrap().len(),
        12,
        "{sources}"
    );
    assert_eq!(h.get("/health").status, 200, "the daemon is still serving");
}

/// Requests too malformed for hyper to hand to a handler (which it used to answer itself with
/// an empty body) get the API's JSON error too, and the connection closes after it. Earlier
/// pipelined requests on the same connection still get their own answers first.
#[test]
fn requests_hyper_cannot_parse_get_a_json_error_too() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let a = d.addr();
    let write = "Content-Type: application/json\r\nHost: 127.0.0.1";
    let big = "x".repeat(20 * 1024);
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    #[rustfmt::skip]
    let table: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"GET /api/runs?q=\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(), 400, "invalid_target"),
        (b"GET /api/r\xffuns HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec(), 400, "invalid_target"),
        (b"GET /api/runs HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n".to_vec(), 400, "malformed_request"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), 400, "malformed_request"),
        (b"GET /api/runs HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n".to_vec(), 400, "malformed_request"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), 400, "malformed_request"),
        (b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec(), 400, "incomplete_request"),
        (format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {big}\r\n\r\n").into_bytes(), 431, "headers_too_large"),
        (format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n{many}\r\n").into_bytes(), 431, "headers_too_large"),
        (format!("POST /api/write HTTP/1.1\r\n{write}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\n{{}}  \r\n0\r\n\r\n").into_bytes(), 400, "transfer_encoding_not_supported"),
        (format!("POST /api/write HTTP/1.1\r\n{write}\r\nTransfer-Encoding: gzip\r\n\r\n").into_bytes(), 400, "transfer_encoding_not_supported"),
        (format!("POST /api/write HTTP/1.1\r\n{write}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n").into_bytes(), 400, "invalid_framing"),
        (format!("POST /api/write HTTP/1.1\r\n{write}\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\n{{}}").into_bytes(), 400, "invalid_framing"),
        (format!("POST /api/write HTTP/1.1\r\n{write}\r\nContent-Length: 0x10\r\n\r\n{{}}").into_bytes(), 400, "invalid_framing"),
        (format!("POST /api/write HTTP/1.1\r\n{write}\r\nContent-Length: 99999999999999999999999\r\n\r\n").into_bytes(), 400, "invalid_framing"),
        (format!("POST /api/write HTTP/1.1\r\n{write}\r\nContent-Length: 18446744073709551614\r\n\r\n").into_bytes(), 413, "body_too_large"),
    ];
    for (request, status, code) in &table {
        let answers = raw_exchange(&a, request);
        let shown = String::from_utf8_lossy(request);
        assert_eq!(answers.len(), 1, "{shown:?}: {answers:?}");
        let (got, head, body) = &answers[0];
        assert_eq!(
            (*got, body["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{shown:?}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{shown:?}"
        );
        assert!(
            head.contains("content-type: application/json"),
            "{shown:?}: {head}"
        );
        assert!(head.contains("connection: close"), "{shown:?}: {head}");
    }
    // A good request, then a bad one on the same connection: the good one's answer first.
    let mut both = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec();
    both.extend_from_slice(b"GET /api/runs?\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let answers = raw_exchange(&a, &both);
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].0, 200, "{answers:?}");
    assert_eq!(
        (answers[1].0, answers[1].2["error"]["code"].as_str()),
        (400, Some("invalid_target"))
    );
    // A chunked body is followed to its end: the request after it is checked, and answered.
    let chunked = format!(
        "POST /api/write HTTP/1.1\r\n{write}\r\nTransfer-Encoding: chunked\r\n\r\n\
         13\r\n{{\"procedure\": \"ok\"}}\r\n0\r\nX-Trailer: t\r\n\r\n\
         GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\
         GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n"
    );
    let answers = raw_exchange(&a, chunked.as_bytes());
    let statuses: Vec<u16> = answers.iter().map(|r| r.0).collect();
    assert_eq!(statuses, [202, 200, 400], "{answers:?}");
    assert_eq!(
        answers[2].2["error"]["code"],
        "transfer_encoding_not_supported"
    );

    // Nothing but the one good write was stored, and the daemon still serves.
    let h = d.http();
    assert_eq!(h.get("/api/runs").body["runs"].as_array().unwrap().len(), 1);
    assert_eq!(h.get("/health").status, 200);
}

/// A Last-Event-ID past every event of the run (a client that kept an id from somewhere else,
/// or a hostile one) gets an empty stream that still closes when the run is final, whether it
/// was final already or ends while the stream is open.
#[test]
fn an_event_stream_resumed_past_the_last_event_closes_when_the_run_ends() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let t = std::time::Duration::from_secs(20);
    let running = h.write("slow", json!({ "duration_ms": 1500 }));
    let streams: Vec<_> = [1_000_000_i64, i64::MAX]
        .into_iter()
        .map(|last| {
            let (tx, rx) = std::sync::mpsc::channel();
            let (url, path) = (d.url.clone(), format!("/api/runs/{running}/events"));
            std::thread::spawn(move || {
                let _ = tx.send(Http::new(&url).sse(&path, Some(last)));
            });
            rx
        })
        .collect();
    for rx in streams {
        let events = wait_for("the stream to close after the run ended", t, || {
            rx.try_recv().ok()
        });
        assert!(events.is_empty(), "{events:?}");
    }
    assert_eq!(h.status(&running), "DONE");
    // Already final: closes at once, empty.
    assert!(h
        .sse(&format!("/api/runs/{running}/events"), Some(i64::MAX))
        .is_empty());
}

/// Parsing is strict where leniency would misread a request: a body in a charset other than
/// UTF-8, and a source URL that is not http(s) (`javascript:` would run in a reader's browser).
/// (A `Transfer-Encoding` other than `chunked` is in
/// `requests_hyper_cannot_parse_get_a_json_error_too`.)
#[test]
fn bodies_in_other_charsets_and_non_http_source_urls_are_refused() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let write = br#"{"procedure": "x"}"#.to_vec();
    let source = |url: &str| {
        serde_json::to_vec(
            &json!({ "title": "A source", "text": "Adrenalin 0,5 mg im.", "url": url }),
        )
        .unwrap()
    };
    // (method, path, content type, body, status, error code)
    type Row<'a> = (&'a str, String, &'a str, Vec<u8>, u16, &'a str);
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        ("POST", "/api/write".into(), "application/json; charset=utf-16", write.clone(), 415, "unsupported_media_type"),
        ("POST", "/api/write".into(), "application/json;charset=\"UTF-16LE\"", write.clone(), 415, "unsupported_media_type"),
        ("POST", "/api/write".into(), "application/json; charset=latin1", write.clone(), 415, "unsupported_media_type"),
        ("POST", "/api/write".into(), "application/json; charset=", write.clone(), 415, "unsupported_media_type"),
        ("POST", "/api/write".into(), "application/json; charset=utf-8; charset=utf-16", write.clone(), 415, "unsupported_media_type"),
        ("POST", "/api/sources".into(), "text/markdown; charset=iso-8859-1", b"# T\n\ntext".to_vec(), 415, "unsupported_media_type"),
        ("PUT", "/api/keys/openai_api_key".into(), "application/json; charset=utf-32", br#"{"value": "v"}"#.to_vec(), 415, "unsupported_media_type"),
        ("POST", "/api/sources".into(), "application/json", source("javascript:alert(1)"), 400, "invalid_request"),
        ("POST", "/api/sources".into(), "application/json", source("JavaScript:alert(1)//https://x"), 400, "invalid_request"),
        ("POST", "/api/sources".into(), "application/json", source("data:text/html,<script>alert(1)</script>"), 400, "invalid_request"),
        ("POST", "/api/sources".into(), "application/json", source("file:///etc/passwd"), 400, "invalid_request"),
        ("POST", "/api/sources".into(), "application/json", source("//evil.example/x"), 400, "invalid_request"),
        ("POST", "/api/sources".into(), "application/json", source("https://"), 400, "invalid_request"),
        ("POST", "/api/sources".into(), "application/json", source("https://exa mple.dk/"), 400, "invalid_request"),
        ("POST", "/api/sources".into(), "application/json", source("https://example.dk/\n<script>"), 400, "invalid_request"),
        ("POST", "/api/sources?url=javascript:alert(1)".into(), "text/markdown", b"# T\n\ntext".to_vec(), 400, "invalid_request"),
    ];
    for (method, path, ct, body, status, code) in &table {
        let r = h.request(method, path, Some(ct), Some(body));
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{method} {path} {ct}: {r:?}"
        );
    }
    assert_eq!(h.get("/api/runs").body["runs"], json!([]));
    assert_eq!(
        h.get("/api/sources?limit=1000").body["sources"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
    // UTF-8 said explicitly is fine, and so is an https URL with a non-ASCII path.
    let r = h.request(
        "POST",
        "/api/write",
        Some("application/json; charset=UTF-8"),
        Some(&write),
    );
    assert_eq!(r.status, 202, "{r:?}");
    let r = h.post_raw(
        "/api/sources",
        Some("application/json"),
        &source("https://www.sundhed.dk/sundhedsfaglig/lægehåndbogen/"),
    );
    assert_eq!(r.status, 201, "{r:?}");
}
