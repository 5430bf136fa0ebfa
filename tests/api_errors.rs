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
