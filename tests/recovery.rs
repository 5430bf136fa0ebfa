//! Crashes, stale leases, fencing and shutdown: the queue never loses a run.

use crate::support::*;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[test]
fn kill_9_while_jobs_run_then_restart_finishes_every_job_counting_the_lost_attempt() {
    let s = Scratch::new();
    let env = [("PROCEDUREWRITER_WORKERS", "2")];
    let d = s.start(&env);
    let h = d.http();
    let ids: Vec<String> = (0..6)
        .map(|i| h.write(&format!("job {i}"), json!({ "duration_ms": 1500 })))
        .collect();
    let running: Vec<String> = wait_for("two runs RUNNING", T, || {
        let r = h.get("/api/runs?status=RUNNING");
        let v: Vec<String> = r.body["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_id"].as_str().unwrap().to_string())
            .collect();
        (v.len() == 2).then_some(v)
    });
    d.kill9();

    let d = s.start(&env);
    let h = d.http();
    for id in &ids {
        h.wait_status(id, "DONE", T);
    }
    for id in &running {
        let run = h.run(id);
        assert_eq!(run["attempts"], 2, "the crashed attempt counts: {run}");
        let kinds = h.event_kinds(id);
        assert!(kinds.contains(&"recovered".to_string()), "{kinds:?}");
    }
    let total: usize = ids.len();
    assert_eq!(
        h.get("/api/runs?status=DONE").body["runs"]
            .as_array()
            .unwrap()
            .len(),
        total
    );
}

#[test]
fn a_stale_lease_is_reaped_the_late_result_is_refused_and_attempts_run_out() {
    let s = Scratch::new();
    // Heartbeats far apart and a short stale timeout: every attempt's lease goes stale while
    // its job is still running, so the reaper takes it back and the late result is refused.
    let d = s.start(&[
        ("PROCEDUREWRITER_HEARTBEAT_INTERVAL_S", "60"),
        ("PROCEDUREWRITER_STALE_TIMEOUT_S", "0.3"),
        ("PROCEDUREWRITER_REAPER_INTERVAL_S", "0.05"),
        ("PROCEDUREWRITER_MAX_ATTEMPTS", "2"),
    ]);
    let h = d.http();
    let id = h.write("stalls", json!({ "duration_ms": 1000 }));
    let run = h.wait_status(&id, "FAILED", T);
    let err = run["error"].as_str().unwrap();
    assert!(
        err.contains("attempts exhausted (2 of 2)") && err.contains("lease expired"),
        "{err}"
    );
    // Both workers' results arrive after their leases were taken: both refused.
    let events = wait_for("two late results refused", T, || {
        let ev = h.events(&id);
        (ev.iter()
            .filter(|e| e["kind"] == "late_result_refused")
            .count()
            == 2)
            .then_some(ev)
    });
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(!kinds.contains(&"completed"), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "reaped").count(),
        1,
        "{kinds:?}"
    );
    let refused: Vec<i64> = events
        .iter()
        .filter(|e| e["kind"] == "late_result_refused")
        .map(|e| e["details"]["lease_token"].as_i64().unwrap())
        .collect();
    assert_eq!(refused.len(), 2);
    assert_eq!(
        h.run(&id)["status"],
        "FAILED",
        "a refused result changes nothing"
    );
    let m = h.get("/metrics").body.as_str().unwrap().to_string();
    assert!(
        m.contains("procedurewriter_late_results_refused_total 2"),
        "{m}"
    );
}

#[test]
fn sigterm_drains_refuses_new_work_and_hands_running_leases_back_without_spending_attempts() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_SHUTDOWN_GRACE_S", "1.5")]);
    let h = d.http();
    let long = h.write("long", json!({ "duration_ms": 60_000 }));
    let short = h.write("short", json!({ "duration_ms": 500 }));
    h.wait_status(&long, "RUNNING", T);
    h.wait_status(&short, "RUNNING", T);
    d.signal(libc::SIGTERM);
    wait_for("health to say shutting_down", T, || {
        (h.get("/health").body["status"] == "shutting_down").then_some(())
    });
    h.post_json("/api/write", &json!({ "procedure": "late" }))
        .assert_error(503, "shutting_down");
    let status = d.wait_exit(T);
    assert_eq!(status.code(), Some(0));

    let db = s.db();
    let (st, attempts, owner): (String, i64, Option<String>) = db
        .query_row(
            "SELECT status, attempts, lease_owner FROM runs WHERE id = ?1",
            [&long],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((st.as_str(), attempts, owner), ("QUEUED", 0, None));
    let (short_status,): (String,) = db
        .query_row("SELECT status FROM runs WHERE id = ?1", [&short], |r| {
            Ok((r.get(0)?,))
        })
        .unwrap();
    assert_eq!(
        short_status, "DONE",
        "the short job finished within the grace period"
    );
    let released: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM run_events WHERE run_id = ?1 AND kind = 'lease_released'",
            [&long],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(released, 1);
    drop(db);

    // The next daemon picks it up again as attempt 1.
    let d = s.start(&[]);
    let h = d.http();
    let run = h.wait_status(&long, "RUNNING", T);
    assert_eq!(run["attempts"], 1);
}

#[test]
fn a_second_sigterm_exits_at_once() {
    let s = Scratch::new();
    let d = s.start(&[("PROCEDUREWRITER_SHUTDOWN_GRACE_S", "600")]);
    let h = d.http();
    let id = h.write("long", json!({ "duration_ms": 60_000 }));
    h.wait_status(&id, "RUNNING", T);
    d.signal(libc::SIGTERM);
    wait_for("draining", T, || {
        (h.get("/health").body["status"] == "shutting_down").then_some(())
    });
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(Duration::from_secs(10));
    assert_ne!(
        status.code(),
        Some(0),
        "the second signal does not wait for the grace period"
    );
    // The run is recovered by the next start.
    let d = s.start(&[]);
    let run = d.http().wait_status(&id, "RUNNING", T);
    assert_eq!(run["attempts"], 2);
}

#[test]
fn a_run_waiting_for_acknowledgement_survives_a_restart_and_resumes_once_acknowledged() {
    let s = Scratch::new();
    let d = s.start(&[]);
    let h = d.http();
    let id = h.write("gap", json!({ "outcome": "needs_ack" }));
    h.wait_status(&id, "NEEDS_ACK", T);
    d.kill9();

    let d = s.start(&[]);
    let h = d.http();
    let run = h.run(&id);
    assert_eq!(run["status"], "NEEDS_ACK", "still waiting after the crash");
    assert_eq!(
        run["ack_required"]["missing_tiers"],
        json!(["danish_guideline"])
    );

    let path = format!("/api/runs/{id}/ack");
    h.post_json(
        &path,
        &json!({ "note": "ok", "acknowledged_by": "Dr. Hansen", "tiers": ["rct"] }),
    )
    .assert_error(422, "ack_incomplete");
    h.post_json(
        &path,
        &json!({ "note": "", "acknowledged_by": "Dr. Hansen", "tiers": ["danish_guideline"] }),
    )
    .assert_error(400, "invalid_request");
    assert_eq!(h.status(&id), "NEEDS_ACK", "refused acks change nothing");

    let r = h.post_json(
        &path,
        &json!({
            "note": "No Danish guideline exists yet; international guidance accepted",
            "acknowledged_by": "Dr. Hansen",
            "tiers": ["danish_guideline"]
        }),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["ack"]["acknowledged_by"], "Dr. Hansen");
    let run = h.wait_status(&id, "DONE", T);
    assert_eq!(
        run["result"]["acknowledged"], true,
        "the ack took effect: not asked again"
    );
    let kinds = h.event_kinds(&id);
    assert_eq!(
        kinds.iter().filter(|k| *k == "needs_ack").count(),
        1,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"acknowledged".to_string()), "{kinds:?}");

    h.post_json(
        &path,
        &json!({ "note": "again", "acknowledged_by": "x", "tiers": ["danish_guideline"] }),
    )
    .assert_error(409, "transition_not_allowed");
}
