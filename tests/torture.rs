//! Crash torture: jobs of random durations, failures and panics, and the daemon killed with
//! SIGKILL at random moments (commits happen all the time, so some kills land inside one),
//! restarted each time. Then the history must be consistent with the state.
//!
//! CI runs 20 kills. The long mode is the same test with more:
//!     PROCEDUREWRITER_TORTURE_KILLS=500 cargo test --release --locked -p procedurewriter \
//!         --test tests torture -- --nocapture

use crate::support::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[test]
fn jobs_survive_repeated_kill_9_with_history_and_state_in_agreement() {
    let kills: usize = std::env::var("PROCEDUREWRITER_TORTURE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let jobs = (kills * 2).clamp(40, 400);
    let mut rng = fastrand::Rng::with_seed(kills as u64 * 7919);
    let s = Scratch::new();
    let env = [("PROCEDUREWRITER_WORKERS", "4")];
    let mut d = s.start(&env);
    let mut ids = Vec::new();
    {
        let h = d.http();
        for i in 0..jobs {
            let outcome = match rng.u32(0..20) {
                0..=11 => "ok",
                12..=13 => "fail",
                14..=16 => "fail_retryable",
                _ => "panic",
            };
            let spec = json!({ "duration_ms": rng.u64(0..150), "outcome": outcome });
            ids.push(h.write(&format!("torture {i}"), spec));
        }
    }
    let mut max_recovery = Duration::ZERO;
    for _ in 0..kills {
        // The chaos schedule: a random moment while jobs start, finish and commit.
        std::thread::sleep(Duration::from_millis(rng.u64(20..250)));
        d.kill9();
        let t = Instant::now();
        d = s.start(&env);
        max_recovery = max_recovery.max(t.elapsed());
    }
    let h = d.http();
    for id in &ids {
        wait_for(
            &format!("run {id} to be final"),
            Duration::from_secs(120),
            || {
                let st = h.status(id);
                ["DONE", "FAILED", "CANCELLED"]
                    .contains(&st.as_str())
                    .then_some(())
            },
        );
    }
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(30)).success());

    let db = s.db();
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let mut final_counts: BTreeMap<String, u32> = BTreeMap::new();
    let mut recoveries = 0;
    for id in &ids {
        let (status, attempts, max_attempts): (String, u32, u32) = db
            .query_row(
                "SELECT status, attempts, max_attempts FROM runs WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert!(
            attempts <= max_attempts,
            "{id}: {attempts} > {max_attempts}"
        );
        let mut stmt = db
            .prepare("SELECT kind, status, details FROM run_events WHERE run_id = ?1 ORDER BY id")
            .unwrap();
        let events: Vec<(String, String, serde_json::Value)> = stmt
            .query_map([id], |r| {
                let d: String = r.get(2)?;
                Ok((r.get(0)?, r.get(1)?, serde_json::from_str(&d).unwrap()))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // Replay: one lease at a time, tokens rising, exactly one final event, and the
        // replayed status and attempts equal the row's.
        let mut held: Option<i64> = None;
        let mut last_token = 0;
        let mut claims = 0;
        let mut refunds = 0;
        let mut finals = 0;
        for (kind, st, details) in &events {
            match kind.as_str() {
                "claimed" => {
                    assert!(
                        held.is_none(),
                        "{id}: claimed while lease {held:?} was held: {events:?}"
                    );
                    let token = details["lease_token"].as_i64().unwrap();
                    assert!(token > last_token, "{id}: token {token} after {last_token}");
                    last_token = token;
                    held = Some(token);
                    claims += 1;
                }
                // A deferral's re-queue refunds the attempt; a re-queue to wait for the
                // provider (`not_before`) spends it.
                "lease_released" => {
                    held = None;
                    refunds += 1;
                }
                "requeued" => {
                    held = None;
                    if details.get("attempt_refunded").is_some() {
                        refunds += 1;
                    }
                }
                "recovered" | "reaped" | "attempt_failed" | "needs_ack" => held = None,
                "completed" | "failed" | "cancelled" => {
                    held = None;
                    finals += 1;
                }
                _ => {}
            }
            if kind == "recovered" {
                recoveries += 1;
            }
            let _ = st;
        }
        assert_eq!(finals, 1, "{id}: {finals} final events: {events:?}");
        assert_eq!(
            events.last().unwrap().1,
            status,
            "{id}: the last event's status"
        );
        assert_eq!(
            claims - refunds,
            attempts,
            "{id}: attempts replayed from the log"
        );
        *final_counts.entry(status).or_default() += 1;
    }
    println!(
        "torture: {jobs} jobs, {kills} kills, {recoveries} runs recovered, max restart-to-ready {:.0} ms, final states {final_counts:?}",
        max_recovery.as_secs_f64() * 1e3
    );
}
