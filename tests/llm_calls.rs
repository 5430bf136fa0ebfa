//! Model calls as real servers make them: streamed answers with a first-token and an idle
//! timeout, a bounded number of calls in flight, messages that say what to check, the cost of
//! a cut call, truncation, and a revision the server refuses. Against the fake provider
//! (`support::fake_llm`), which streams as the real APIs do.

use crate::support::fake_llm::{FakeLlm, Flavor, Reply};
use crate::support::*;
use serde_json::Value;
use std::time::{Duration, SystemTime};

const T: Duration = Duration::from_secs(60);
const ANAPHYLAXIS: &str = "Anafylaksi behandling";

fn start(s: &Scratch, fake: &FakeLlm, extra: &[(&str, &str)]) -> Daemon {
    let env = fake.env("gpt-4o-mini");
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.extend_from_slice(extra);
    Daemon::spawn(s.command(&pairs))
}

/// An answer streamed over three seconds finishes under a one-second `llm_timeout_s`: the
/// timeout bounds the wait for the first token, not the whole answer. Both APIs.
#[test]
fn a_slow_but_steady_streamed_answer_finishes_with_the_servers_usage() {
    for flavor in [Flavor::OpenAi, Flavor::Anthropic] {
        let s = Scratch::new();
        let slow = Reply::Slow {
            reply: Box::new(Reply::Draft {
                sections: 12,
                tokens_in: Some(1234),
                tokens_out: 567,
            }),
            gap: Duration::from_millis(40),
        };
        let fake = FakeLlm::start(flavor, slow);
        let model = match flavor {
            Flavor::OpenAi => "gpt-4o-mini",
            Flavor::Anthropic => "claude-3-5-haiku-latest",
        };
        let env = fake.env(model);
        let mut pairs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pairs.extend_from_slice(&[
            ("PROCEDUREWRITER_LLM_TIMEOUT_S", "1"),
            ("PROCEDUREWRITER_LLM_IDLE_TIMEOUT_S", "1"),
            ("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "off"),
        ]);
        let d = Daemon::spawn(s.command(&pairs));
        let h = d.http();
        let started = std::time::Instant::now();
        let id = h.submit(ANAPHYLAXIS);
        let run = h.wait_finished(&id, T);
        assert_eq!(run["status"], "DONE", "{flavor:?}: {run:#}");
        assert!(started.elapsed() > Duration::from_secs(1), "{flavor:?}");
        let got = fake.received();
        assert_eq!(got.len(), 1, "{flavor:?}");
        assert_eq!(got[0].body["stream"], true);
        // The usage is the stream's own, from its last chunk (message_start/message_delta).
        assert_eq!(run["tokens_in"], 1234, "{flavor:?}: {run:#}");
        assert_eq!(run["tokens_out"], 567, "{flavor:?}: {run:#}");
    }
}

/// A stream that stops after a few chunks is cut at `llm_idle_timeout_s`, retried once at
/// most, and recorded at its reserved worst case, marked as estimated; the error names the key.
#[test]
fn a_stuck_stream_is_cut_at_the_idle_timeout_retried_once_and_its_cost_estimated() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::Stall { chunks: 3 });
    let d = start(
        &s,
        &fake,
        &[
            ("PROCEDUREWRITER_LLM_IDLE_TIMEOUT_S", "0.5"),
            ("PROCEDUREWRITER_MAX_ATTEMPTS", "1"),
        ],
    );
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "FAILED", "{run:#}");
    let err = run["error"].as_str().unwrap();
    assert!(
        err.contains("llm_idle_timeout_s = 0.5 s") && err.contains("timed out twice"),
        "{err}"
    );
    assert_eq!(fake.count(), 2, "a timeout is retried once, not more");
    let calls = h.details(&id, "llm_call");
    assert_eq!(calls.len(), 2);
    for c in &calls {
        assert_eq!(c["estimated"], true, "{c:#}");
        // The whole output limit is counted: what streamed and the rest, unseen.
        assert_eq!(c["tokens_out"], 4096, "{c:#}");
        assert!(c["cost_usd"].as_f64().unwrap() > 0.0, "{c:#}");
    }
    assert!(run["cost_usd"].as_f64().unwrap() > 0.0, "{run:#}");
    // The costs say how much of that is an estimate.
    let costs = h.get("/api/costs").body;
    assert_eq!(costs["total"]["calls"], 2, "{costs:#}");
    assert_eq!(costs["total"]["estimated_calls"], 2, "{costs:#}");
    assert_eq!(costs["by_run"][0]["estimated_calls"], 2, "{costs:#}");
    assert_eq!(costs["total"]["truncated_calls"], 0, "{costs:#}");
}

/// With one call slot and four workers, the runs' calls go one at a time: the others wait
/// for the slot (an event, and the metrics say so) instead of piling onto the server.
#[test]
fn calls_wait_for_a_slot_and_the_wait_is_visible() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::Held(Box::new(Reply::draft(12, 500))));
    let d = start(
        &s,
        &fake,
        &[
            ("PROCEDUREWRITER_WORKERS", "4"),
            ("PROCEDUREWRITER_LLM_MAX_CONCURRENT_CALLS", "1"),
            ("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "off"),
        ],
    );
    let h = d.http();
    let ids: Vec<String> = (0..3).map(|_| h.submit(ANAPHYLAXIS)).collect();
    wait_for("two calls waiting for the slot", T, || {
        let m = h
            .get("/metrics")
            .body
            .as_str()
            .unwrap_or_default()
            .to_string();
        m.contains("procedurewriter_llm_slot_waiting 2")
            .then_some(())
    });
    // The holder takes the slot before its request lands: wait for the request, then check
    // that it is the only one.
    wait_for("the slot's holder to reach the server", T, || {
        (fake.count() >= 1).then_some(())
    });
    assert_eq!(fake.count(), 1, "only the slot's holder reached the server");
    let runs: Vec<Value> = wait_for("every run to finish", T, || {
        fake.release();
        let runs: Vec<Value> = ids.iter().map(|id| h.run(id)).collect();
        runs.iter()
            .all(|r| r["status"] == "DONE" || r["status"] == "FAILED")
            .then_some(runs)
    });
    for r in &runs {
        assert_eq!(r["status"], "DONE", "{r:#}");
    }
    assert_eq!(fake.count(), 3, "one request per run, none wasted");
    let waited: usize = ids
        .iter()
        .map(|id| h.details(id, "llm_slot_waited").len())
        .sum();
    assert!(waited >= 2, "{waited}");
    let m = h
        .get("/metrics")
        .body
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(m.contains("procedurewriter_llm_slot_waits_total"), "{m}");
}

/// A server that is not there: the message names `llm_base_url` and says nothing listens.
#[test]
fn an_unreachable_server_is_named_with_what_to_check() {
    let s = Scratch::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/v1");
    let d = Daemon::spawn(s.command(&[
        ("PROCEDUREWRITER_JOB_RUNNER", "pipeline"),
        ("PROCEDUREWRITER_LLM_PROVIDER", "openai"),
        ("PROCEDUREWRITER_LLM_MODEL", "gpt-4o-mini"),
        ("PROCEDUREWRITER_LLM_BASE_URL", &url),
        ("PROCEDUREWRITER_LLM_MAX_RETRIES", "1"),
        ("PROCEDUREWRITER_LLM_RETRY_BASE_DELAY_S", "0.02"),
        ("PROCEDUREWRITER_LLM_REQUEUE_DELAY_S", "0.2"),
        ("PROCEDUREWRITER_MAX_ATTEMPTS", "2"),
    ]));
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "FAILED", "{run:#}");
    let err = run["error"].as_str().unwrap();
    assert!(
        err.contains(&format!("llm_base_url = {url}"))
            && err.contains("nothing listens on 127.0.0.1")
            && err.contains("attempts exhausted (2 of 2)"),
        "{err}"
    );
    // The provider being down failed the attempt: the run waited in the queue, then tried again.
    let requeued = h.details(&id, "requeued");
    assert_eq!(requeued.len(), 1, "{requeued:?}");
    assert_eq!(requeued[0]["delay_s"], 0.2);
    assert!(requeued[0]["reason"]
        .as_str()
        .unwrap()
        .contains("nothing listens"));
    assert_eq!(run["cost_usd"], 0.0, "nothing was sent, nothing is owed");
}

/// A revision the server refuses (its prompt is over the context window) ends the loop, not
/// the run: the draft already paid for is kept and judged.
#[test]
fn a_refused_revision_keeps_the_draft() {
    let s = Scratch::new();
    let fake = FakeLlm::start(
        Flavor::OpenAi,
        Reply::status(
            400,
            "the request exceeds the available context size, try increasing it",
        ),
    );
    fake.push([Reply::draft(12, 500)]);
    let d = start(
        &s,
        &fake,
        &[("PROCEDUREWRITER_QUALITY_LOOP_QUALITY_THRESHOLD", "10")],
    );
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "DONE", "{run:#}");
    assert_eq!(run["stop_reason"], "revision_failed", "{run:#}");
    assert_eq!(run["iterations"], 1);
    let failed = h.details(&id, "revision_failed");
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("context size"),
        "{failed:?}"
    );
    assert_eq!(fake.count(), 2, "a refusal is not retried");
}

/// A draft cut at `max_tokens` is never released: the finding says so.
#[test]
fn a_truncated_draft_is_not_released() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::Anthropic, Reply::draft(12, 100_000));
    let env = fake.env("claude-3-5-haiku-latest");
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.extend_from_slice(&[
        ("PROCEDUREWRITER_LLM_MAX_TOKENS", "300"),
        ("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "off"),
    ]);
    let d = Daemon::spawn(s.command(&pairs));
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "FAILED", "{run:#}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .starts_with("not_releasable:"),
        "{run:#}"
    );
    let report = h.get(&format!("/api/runs/{id}/evidence")).body;
    let findings = report["verification"]["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["kind"] == "truncated" && f["severity"] == "blocking"),
        "{findings:#?}"
    );
    let calls = h.details(&id, "llm_call");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["truncated"], true, "{calls:#?}");
    let costs = h.get("/api/costs").body;
    assert_eq!(costs["total"]["truncated_calls"], 1, "{costs:#}");
    assert_eq!(costs["total"]["estimated_calls"], 0, "{costs:#}");
}

/// Settings for a provider that is down (answers 503) through a short retry window, and a run
/// that then waits `delay` in the queue before its next attempt.
fn down_for_a_while(fake: &FakeLlm, delay: &str) -> Vec<(String, String)> {
    let mut env = fake.env("gpt-4o-mini");
    for (k, v) in [
        ("PROCEDUREWRITER_LLM_MAX_RETRIES", "2"),
        ("PROCEDUREWRITER_LLM_RETRY_WINDOW_S", "0.3"),
        ("PROCEDUREWRITER_LLM_REQUEUE_DELAY_S", delay),
        ("PROCEDUREWRITER_MAX_ATTEMPTS", "3"),
        ("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "off"),
    ] {
        env.push((k.into(), v.into()));
    }
    env
}

fn time(v: &Value) -> SystemTime {
    humantime::parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap()
}

/// Waits for the run's `requeued` event and checks that `GET /api/runs/{id}` shows the wait:
/// QUEUED, one attempt spent, until the time the event names. Returns that time.
fn requeued_until(h: &Http, id: &str, delay_s: f64) -> Value {
    let requeued = wait_for("the run to be re-queued", T, || {
        h.details(id, "requeued").pop()
    });
    assert_eq!(requeued["delay_s"], delay_s, "{requeued:#}");
    assert_eq!(requeued["attempt"], 1, "{requeued:#}");
    let reason = requeued["reason"].as_str().unwrap();
    assert!(
        reason.contains("503") && reason.contains("after 3 attempts"),
        "{reason}"
    );
    let run = h.run(id);
    assert_eq!(run["status"], "QUEUED", "{run:#}");
    assert_eq!(run["attempts"], 1, "the attempt is spent: {run:#}");
    assert_eq!(run["not_before"], requeued["not_before"], "{run:#}");
    requeued["not_before"].clone()
}

/// The run's claims, in order: when each was made.
fn claims(h: &Http, id: &str) -> Vec<SystemTime> {
    h.events(id)
        .iter()
        .filter(|e| e["kind"] == "claimed")
        .map(|e| time(&e["at"]))
        .collect()
}

/// A provider down through the retry window: the attempt fails and the run waits in the queue
/// for `llm_requeue_delay_s` (not claimed before its `not_before`, though the worker is idle),
/// then the queue wakes by itself, and the run completes once the provider is back.
#[test]
fn a_run_whose_provider_stays_down_waits_in_the_queue_then_completes() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::status(503, "loading model"));
    let env = down_for_a_while(&fake, "2");
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let d = Daemon::spawn(s.command(&pairs));
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let not_before = requeued_until(&h, &id, 2.0);
    let asked_while_down = fake.count();
    assert_eq!(asked_while_down, 3, "the first try and two retries");
    fake.set_default(Reply::draft(12, 500));
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "DONE", "{run:#}");
    assert_eq!(run["attempts"], 2, "{run:#}");
    assert!(run["not_before"].is_null(), "cleared at the claim: {run:#}");
    let claimed = claims(&h, &id);
    assert_eq!(claimed.len(), 2);
    assert!(
        claimed[1] >= time(&not_before),
        "claimed at {:?}, before its not_before {not_before}",
        claimed[1]
    );
    let waited = claimed[1].duration_since(claimed[0]).unwrap();
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert_eq!(
        fake.count(),
        asked_while_down + 1,
        "one request once it was back"
    );
}

/// A run waiting for its provider survives a restart: the wait is in the database, the new
/// daemon does not claim the run before it (nor spend an attempt), and wakes by itself when
/// it falls due.
#[test]
fn a_waiting_run_keeps_its_time_across_a_restart() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::status(503, "loading model"));
    let env = down_for_a_while(&fake, "4");
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let d = Daemon::spawn(s.command(&pairs));
    let id = d.http().submit(ANAPHYLAXIS);
    let not_before = requeued_until(&d.http(), &id, 4.0);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(T).success());
    fake.set_default(Reply::draft(12, 500));

    let d = Daemon::spawn(s.command(&pairs));
    let h = d.http();
    let run = h.run(&id);
    assert!(
        SystemTime::now() < time(&not_before),
        "the restart took longer than the wait; the test proves nothing"
    );
    assert_eq!(run["status"], "QUEUED", "{run:#}");
    assert_eq!(run["not_before"], not_before, "{run:#}");
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "DONE", "{run:#}");
    assert_eq!(run["attempts"], 2, "{run:#}");
    let claimed = claims(&h, &id);
    assert_eq!(claimed.len(), 2, "{:?}", h.event_kinds(&id));
    assert!(
        claimed[1] >= time(&not_before),
        "claimed before its not_before"
    );
}

/// With `llm_max_concurrent_calls` not set, the daemon takes the server's own slot count
/// (llama.cpp's `GET /props` → `total_slots`, at the root, not under `/v1`): one here, so of
/// three runs one call reaches the server and two wait. A SIGHUP setting three lets the waiting
/// calls in at once while the first keeps its slot; the reload reports both the key and the
/// slots. Then a SIGHUP back to 0 asks the server again.
#[test]
fn slots_come_from_the_server_and_a_sighup_resizes_them() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::Held(Box::new(Reply::draft(12, 500))));
    fake.set_total_slots(Some(1));
    let config = write_config(s.dir.path(), "workers = 4\n");
    let env = fake.env("gpt-4o-mini");
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.push(("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "off"));
    let mut cmd = s.command(&pairs);
    cmd.arg("--config").arg(&config);
    let d = Daemon::spawn(cmd);
    assert_eq!(fake.props_asked(), 1);
    let h = d.http();
    let metrics = || {
        h.get("/metrics")
            .body
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let ids: Vec<String> = (0..3).map(|_| h.submit(ANAPHYLAXIS)).collect();
    wait_for("two calls waiting for the server's one slot", T, || {
        metrics()
            .contains("procedurewriter_llm_slot_waiting 2")
            .then_some(())
    });
    assert_eq!(fake.count(), 1, "one slot, as the server said");

    write_config(s.dir.path(), "workers = 4\nllm_max_concurrent_calls = 3\n");
    d.signal(libc::SIGHUP);
    wait_for("the waiting calls to reach the server", T, || {
        (fake.count() == 3).then_some(())
    });
    assert!(
        metrics().contains("procedurewriter_llm_slots_in_use 3"),
        "{}",
        metrics()
    );
    let reload = &h.get("/api/reloads").body["reloads"][0];
    assert_eq!(
        reload["applied"]["llm_max_concurrent_calls"],
        serde_json::json!([0, 3]),
        "{reload:#}"
    );
    assert_eq!(
        reload["applied"]["llm_call_slots"],
        serde_json::json!([1, 3]),
        "{reload:#}"
    );
    let runs: Vec<Value> = wait_for("every run to finish", T, || {
        fake.release();
        let runs: Vec<Value> = ids.iter().map(|id| h.run(id)).collect();
        runs.iter()
            .all(|r| r["status"] == "DONE" || r["status"] == "FAILED")
            .then_some(runs)
    });
    for r in &runs {
        assert_eq!(r["status"], "DONE", "{r:#}");
    }
    assert_eq!(fake.count(), 3, "one request per run, none wasted");

    // Back to 0: the server is asked again and now says two.
    fake.set_total_slots(Some(2));
    write_config(s.dir.path(), "workers = 4\n");
    d.signal(libc::SIGHUP);
    let reload = wait_for("the reload back to the server's count", T, || {
        let r = h.get("/api/reloads").body["reloads"][0].clone();
        (r["applied"]["llm_max_concurrent_calls"] == serde_json::json!([3, 0])).then_some(r)
    });
    assert_eq!(
        reload["applied"]["llm_call_slots"],
        serde_json::json!([3, 2]),
        "{reload:#}"
    );
    assert_eq!(
        fake.props_asked(),
        2,
        "at start and at the reload to 0, not with a value set"
    );
}
