//! A run's day: enqueue, claim, finish; cancel, retry, idempotency, concurrency, listing and
//! the event stream.

use crate::support::*;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn an_enqueued_run_is_claimed_and_finishes_done_with_its_history() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let id = h.write("Anafylaksi behandling", json!({ "duration_ms": 50 }));
    let run = h.wait_status(&id, "DONE", T);
    assert_eq!(run["attempts"], 1);
    assert_eq!(run["result"]["runner"], "test");
    assert!(run["lease_owner"].is_null());
    assert!(run["finished_at"].is_string());
    assert_eq!(h.event_kinds(&id), ["enqueued", "claimed", "completed"]);
}

#[test]
fn the_event_stream_replays_from_last_event_id_and_closes_after_the_final_event() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let id = h.write("Pleuradræn anlæggelse", json!({ "duration_ms": 400 }));
    // Live: subscribe while the run is still going; the stream ends by itself at DONE.
    let live = h.sse(&format!("/api/runs/{id}/events"), None);
    let kinds: Vec<&str> = live.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["enqueued", "claimed", "completed"]);
    assert!(live.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    assert_eq!(live[2].2["status"], "DONE");
    // Replay after the first event only.
    let replay = h.sse(&format!("/api/runs/{id}/events"), Some(live[0].0));
    let ids: Vec<i64> = replay.iter().map(|(i, _, _)| *i).collect();
    assert_eq!(ids, [live[1].0, live[2].0]);
}

#[test]
fn the_same_idempotency_key_returns_the_same_run_and_a_different_body_is_refused() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let body = json!({ "procedure": "Anafylaksi behandling", "context": "akutmodtagelse" });
    let a = h.post_with_header("/api/write", ("idempotency-key", "req-42"), &body);
    let b = h.post_with_header("/api/write", ("idempotency-key", "req-42"), &body);
    assert_eq!(a.status, 202);
    assert_eq!(b.status, 202);
    assert_eq!(a.body["run_id"], b.body["run_id"]);
    assert_eq!(b.header("idempotent-replayed"), Some("true"));
    let other = json!({ "procedure": "Pleuradræn anlæggelse" });
    h.post_with_header("/api/write", ("idempotency-key", "req-42"), &other)
        .assert_error(422, "idempotency_key_reused");
    let page = h.get("/api/runs");
    assert_eq!(page.body["runs"].as_array().unwrap().len(), 1);
}

#[test]
fn two_hundred_concurrent_enqueues_make_two_hundred_runs_without_errors() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_WORKERS", "4")]);
    let url = d.url.clone();
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let url = url.clone();
            std::thread::spawn(move || {
                let h = Http::new(&url);
                (0..10)
                    .map(|i| {
                        let r = h.post_json(
                            "/api/write",
                            &json!({ "procedure": format!("Procedure {t}-{i}") }),
                        );
                        assert_eq!(r.status, 202, "{r:?}");
                        r.body["run_id"].as_str().unwrap().to_string()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: HashSet<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(ids.len(), 200);
    let h = d.http();
    wait_for("all 200 runs DONE", T, || {
        let r = h.get("/api/runs?status=DONE&limit=1000");
        (r.body["runs"].as_array().unwrap().len() == 200).then_some(())
    });
    assert!(!d.log_text().contains("database is locked"));
}

#[test]
fn cancel_stops_a_queued_run_at_once_and_a_running_one_at_its_next_await() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_WORKERS", "1")]);
    let h = d.http();
    let running = h.write("long", json!({ "duration_ms": 30_000 }));
    h.wait_status(&running, "RUNNING", T);
    let queued = h.write("waiting", json!({}));
    assert_eq!(h.status(&queued), "QUEUED");

    let r = h.post_empty(&format!("/api/runs/{queued}/cancel"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "CANCELLED");

    let r = h.post_empty(&format!("/api/runs/{running}/cancel"));
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["cancel_requested"], true);
    // Far sooner than the job's 30 s: the job is dropped at its sleep.
    let run = h.wait_status(&running, "CANCELLED", Duration::from_secs(10));
    assert!(run["finished_at"].is_string());
    let kinds = h.event_kinds(&running);
    assert!(kinds.contains(&"cancel_requested".to_string()), "{kinds:?}");
    assert!(!kinds.contains(&"completed".to_string()), "{kinds:?}");

    // Cancelling a final run is a conflict.
    h.post_empty(&format!("/api/runs/{queued}/cancel"))
        .assert_error(409, "transition_not_allowed");
}

/// Issue 16, item 11: a cancel answered 202 binds. Cancels raced against completion (jobs
/// ending a few milliseconds after they are claimed, the cancel sent as soon as the claim shows,
/// results large enough that recording one takes a while): every run whose cancel was answered
/// 202 ends CANCELLED, with no `completed` event; a cancel that lost the race is a 409 and the
/// run DONE. The answer always says what happens.
#[test]
fn a_cancel_answered_202_binds_even_when_it_races_the_completion() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_WORKERS", "8")]);
    let base = d.url.clone();
    let answers: Vec<(String, u16)> = (0..40u64)
        .map(|i| {
            let base = base.clone();
            std::thread::spawn(move || {
                let h = Http::new(&base);
                let spec = json!({ "duration_ms": i % 12, "result_bytes": 200_000 });
                let id = h.write(&format!("raced {i}"), spec);
                // As soon as the claim shows (a tight poll, bounded by a deadline).
                let deadline = std::time::Instant::now() + T;
                while h.status(&id) == "QUEUED" {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "run {id} never claimed"
                    );
                }
                let r = h.post_empty(&format!("/api/runs/{id}/cancel"));
                (id, r.status)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let h = d.http();
    let mut seen = std::collections::BTreeMap::<u16, usize>::new();
    for (id, status) in &answers {
        *seen.entry(*status).or_default() += 1;
        let expected = match status {
            200 | 202 => "CANCELLED",
            409 => "DONE",
            other => panic!("run {id}: cancel answered {other}"),
        };
        let run = wait_for(&format!("run {id} to end"), T, || {
            let run = h.run(id);
            (run["status"] != "RUNNING" && run["status"] != "QUEUED").then_some(run)
        });
        assert_eq!(run["status"], expected, "cancel answered {status}: {run:#}");
        let kinds = h.event_kinds(id);
        if *status == 202 {
            assert!(!kinds.iter().any(|k| k == "completed"), "{id}: {kinds:?}");
        }
    }
    eprintln!("cancel answers racing completion: {seen:?}");
    assert!(
        seen.get(&202).copied().unwrap_or(0) > 0,
        "no cancel met a running job: {seen:?}"
    );
}

#[test]
fn retry_requeues_failed_and_cancelled_runs_with_a_fresh_attempt_budget() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_MAX_ATTEMPTS", "2")]);
    let h = d.http();
    let failing = h.write("flaky", json!({ "outcome": "fail_retryable" }));
    let run = h.wait_status(&failing, "FAILED", T);
    assert_eq!(run["attempts"], 2);
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("attempts exhausted (2 of 2)"),
        "{run}"
    );
    let r = h.post_empty(&format!("/api/runs/{failing}/retry"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["status"], "QUEUED");
    assert_eq!(r.body["attempts"], 0);
    let run = h.wait_status(&failing, "FAILED", T);
    assert_eq!(run["attempts"], 2, "a fresh budget of 2 was spent again");
    let claims = h
        .event_kinds(&failing)
        .iter()
        .filter(|k| *k == "claimed")
        .count();
    assert_eq!(claims, 4);

    // A cancelled run retried runs to DONE.
    let d1 = h.write("slow", json!({ "duration_ms": 30_000 }));
    h.wait_status(&d1, "RUNNING", T);
    h.post_empty(&format!("/api/runs/{d1}/cancel"));
    h.wait_status(&d1, "CANCELLED", T);
    let r = h.post_json(&format!("/api/runs/{d1}/retry"), &json!({}));
    assert_eq!(r.status, 200, "{r:?}");

    // DONE cannot be retried.
    let ok = h.write("ok", json!({}));
    h.wait_status(&ok, "DONE", T);
    h.post_empty(&format!("/api/runs/{ok}/retry"))
        .assert_error(409, "transition_not_allowed");
}

#[test]
fn a_panicking_job_fails_only_that_run_and_the_daemon_keeps_serving() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let bad = h.write("panics", json!({ "outcome": "panic" }));
    let run = h.wait_status(&bad, "FAILED", T);
    assert!(run["error"].as_str().unwrap().contains("panicked"), "{run}");
    assert_eq!(run["attempts"], 1, "a panic is not retried");
    let good = h.write("fine", json!({}));
    h.wait_status(&good, "DONE", T);
    assert_eq!(h.get("/health").status, 200);
}

#[test]
fn a_job_that_raises_a_gap_waits_in_needs_ack_and_can_be_cancelled() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let id = h.write("gap", json!({ "outcome": "needs_ack" }));
    let run = h.wait_status(&id, "NEEDS_ACK", T);
    assert_eq!(run["ack_required"]["missing_tiers"][0], "danish_guideline");
    let r = h.post_empty(&format!("/api/runs/{id}/cancel"));
    assert_eq!(r.body["status"], "CANCELLED");
}

#[test]
fn listing_pages_through_every_run_with_a_cursor_and_filters_by_status() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let mut ids: Vec<String> = (0..7)
        .map(|i| h.write(&format!("p{i}"), json!({})))
        .collect();
    for id in &ids {
        h.wait_status(id, "DONE", T);
    }
    let failed = h.write("f", json!({ "outcome": "fail" }));
    h.wait_status(&failed, "FAILED", T);
    ids.push(failed.clone());

    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = h.get(&format!("/api/runs?limit=3&cursor={cursor}"));
        assert_eq!(r.status, 200, "{r:?}");
        for run in r.body["runs"].as_array().unwrap() {
            seen.push(run["run_id"].as_str().unwrap().to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once");

    let r = h.get("/api/runs?status=FAILED");
    let only: Vec<&str> = r.body["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(only, [failed.as_str()]);
    h.get("/api/runs?limit=100000")
        .assert_error(400, "invalid_query");
    h.get("/api/runs?status=SLEEPING")
        .assert_error(400, "invalid_query");
}

#[test]
fn health_and_metrics_report_the_queue() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let id = h.write("x", json!({}));
    h.wait_status(&id, "DONE", T);
    let health = h.get("/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.body["db"], "ok");
    assert_eq!(health.body["queue_depth"], 0);
    assert_eq!(health.body["workers"], 2);
    let m = h.get("/metrics");
    assert_eq!(m.status, 200);
    let text = m.body.as_str().unwrap();
    for needle in [
        "procedurewriter_claims_total 1",
        "procedurewriter_completions_total 1",
        "procedurewriter_runs{status=\"DONE\"} 1",
        "procedurewriter_enqueue_to_claim_seconds_count 1",
        "procedurewriter_http_requests_total{route=\"/api/write\",status=\"202\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}
