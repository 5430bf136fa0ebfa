//! The quality loop and its cost cap, against fake OpenAI-compatible and Anthropic servers
//! (`support::fake_llm`) whose drafts score higher the more sections they fill: 1 section
//! scores 0.8 on the demo library's anaphylaxis sources, 3 → 2.5, 6 → 4.9, 12 → 9.8 (every
//! part of the score is earned in proportion to the sections filled).

use crate::support::fake_llm::{FakeLlm, Flavor, Received, Reply};
use crate::support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const ANAPHYLAXIS: &str = "Anafylaksi behandling";
const PLEURAL_DRAIN: &str = "Pleuradræn anlæggelse";
/// gpt-4o's price in the shipped table, pico-USD per token.
const GPT4O_IN: i64 = 2_500_000;
const GPT4O_OUT: i64 = 10_000_000;

fn start_with(
    s: &Scratch,
    fake: &FakeLlm,
    model: &str,
    extra: &[(&str, &str)],
    config: Option<&Path>,
) -> Daemon {
    let env = fake.env(model);
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.extend_from_slice(extra);
    let mut cmd = s.command(&pairs);
    if let Some(p) = config {
        cmd.arg("--config").arg(p);
    }
    Daemon::spawn(cmd)
}

fn start(s: &Scratch, fake: &FakeLlm, model: &str, extra: &[(&str, &str)]) -> Daemon {
    start_with(s, fake, model, extra, None)
}

/// Loop settings that keep revising: an unreachable threshold and no plateau.
const KEEP_GOING: &[(&str, &str)] = &[
    ("PROCEDUREWRITER_QUALITY_LOOP_QUALITY_THRESHOLD", "10"),
    ("PROCEDUREWRITER_QUALITY_LOOP_MIN_IMPROVEMENT", "0"),
];

fn stopped(h: &Http, id: &str) -> Value {
    let d = h.details(id, "quality_loop_stopped");
    assert_eq!(d.len(), 1, "{d:?}");
    d[0].clone()
}

fn usd(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The conservative input estimate the daemon plans with (bytes of both prompts + 64).
fn estimated_input(r: &Received) -> i64 {
    let system = r.body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    (system.len() + r.user_prompt().len()) as i64 + 64
}

fn is_revision(r: &Received) -> bool {
    r.user_prompt().contains("<draft>")
}

#[test]
fn the_loop_stops_when_the_threshold_is_met_using_the_stored_key() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::draft(12, 800));
    fake.push([Reply::draft(1, 800)]);
    let d = start(
        &s,
        &fake,
        "gpt-4o-mini",
        &[("PROCEDUREWRITER_QUALITY_LOOP_QUALITY_THRESHOLD", "9")],
    );
    let h = d.http();
    let key = "sk-test-0123456789abcdefghijklmnop";
    assert_eq!(
        h.put_json("/api/keys/openai_api_key", &json!({ "value": key }))
            .status,
        200
    );
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "DONE", "{run:#}");
    assert_eq!(run["stop_reason"], "threshold_met");
    assert_eq!(run["iterations"], 2);
    assert_eq!(run["result"]["scores"], json!([0.8, 9.8]));
    assert_eq!(stopped(&h, &id)["reason"], "threshold_met");
    assert_eq!(h.details(&id, "iteration_started").len(), 2);
    assert_eq!(run["score"], 9.8);
    assert_eq!(fake.count(), 2);
    for r in fake.received() {
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(
            r.credential.as_deref(),
            Some(format!("Bearer {key}").as_str())
        );
        assert_eq!(r.body["model"], "gpt-4o-mini");
    }
    // The revision is asked to fix the evaluator's issues in the first draft.
    let revision = fake.received()[1].user_prompt();
    assert!(
        revision.contains("A reviewer found these issues"),
        "{revision}"
    );
    assert!(
        revision.contains("<draft>") && revision.contains("[S:SRC"),
        "{revision}"
    );
    // The cost on the run is the sum of its calls, as the cost report says too.
    let calls = h.details(&id, "llm_call");
    assert_eq!(calls.len(), 2);
    let sum: f64 = calls.iter().map(|c| usd(&c["cost_usd"])).sum();
    assert!(sum > 0.0);
    assert!((usd(&run["cost_usd"]) - sum).abs() < 1e-12, "{run:#}");
    let costs = h.get("/api/costs").body;
    assert_eq!(costs["total"]["calls"], 2, "{costs:#}");
    assert_eq!(costs["by_model"][0]["key"], "gpt-4o-mini");
    assert_eq!(costs["by_run"][0]["key"], id.as_str());
    assert!((usd(&costs["total"]["cost_usd"]) - sum).abs() < 1e-12);
    // The key is in no event, response or log line.
    let everything = format!(
        "{}{}{}",
        h.get(&format!("/api/runs/{id}/events")).body,
        run,
        costs
    );
    assert!(!everything.contains(key) && !d.log_text().contains(key));
}

#[test]
fn the_loop_stops_at_max_iterations_and_keeps_the_best_draft_not_the_last() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::draft(1, 500));
    fake.push([
        Reply::draft(6, 500),
        Reply::draft(12, 500),
        Reply::draft(1, 500),
    ]);
    let mut env = KEEP_GOING.to_vec();
    env.push(("PROCEDUREWRITER_QUALITY_LOOP_MAX_ITERATIONS", "3"));
    let d = start(&s, &fake, "gpt-4o-mini", &env);
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "DONE", "{run:#}");
    assert_eq!(run["stop_reason"], "max_iterations");
    assert_eq!(run["result"]["scores"], json!([4.9, 9.8, 0.8]));
    assert_eq!(run["result"]["best_iteration"], 2);
    assert_eq!(run["score"], 9.8);
    assert_eq!(fake.count(), 3);
    let manifest = h.get(&format!("/api/runs/{id}/manifest")).body;
    assert_eq!(manifest["score"], 9.8);
    assert_eq!(manifest["quality_loop"]["best_iteration"], 2);
    // The procedure served is the best draft: every evidence section has a citation.
    let md = h.get(&format!("/api/runs/{id}/procedure")).body;
    let md = md.as_str().unwrap();
    assert!(!md.contains("Kilderne siger intet"), "{md}");
}

#[test]
fn the_loop_stops_at_a_plateau() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::draft(12, 500));
    fake.push([Reply::draft(6, 500), Reply::draft(6, 500)]);
    let d = start(
        &s,
        &fake,
        "gpt-4o-mini",
        &[
            ("PROCEDUREWRITER_QUALITY_LOOP_QUALITY_THRESHOLD", "10"),
            ("PROCEDUREWRITER_QUALITY_LOOP_MAX_ITERATIONS", "5"),
        ],
    );
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["stop_reason"], "plateau", "{run:#}");
    assert_eq!(run["iterations"], 2);
    assert_eq!(fake.count(), 2);
    let scored = h.details(&id, "iteration_scored");
    assert_eq!(scored[1]["improvement"], 0.0);
}

#[test]
fn the_cost_cap_is_never_exceeded_and_max_tokens_shrinks_to_what_remains() {
    let s = Scratch::new();
    // Every call asks for more output than it may have; the fake caps it at max_tokens.
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::draft(12, 100_000));
    fake.push([
        Reply::draft(1, 100_000),
        Reply::draft(2, 100_000),
        Reply::draft(3, 100_000),
    ]);
    let cap_usd = 0.1;
    let mut env = KEEP_GOING.to_vec();
    env.push(("PROCEDUREWRITER_QUALITY_LOOP_MAX_ITERATIONS", "50"));
    env.push((
        "PROCEDUREWRITER_QUALITY_LOOP_MAX_ADDITIONAL_COST_USD",
        "0.1",
    ));
    let d = start(&s, &fake, "gpt-4o", &env);
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    // Every answer was cut at its max_tokens: each draft carries a blocking `truncated`
    // finding, so the best of them is not released.
    assert_eq!(run["status"], "FAILED", "{run:#}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .starts_with("not_releasable:"),
        "{run:#}"
    );
    let report = h.get(&format!("/api/runs/{id}/evidence")).body;
    assert_eq!(
        report["verification"]["findings"][0]["kind"], "truncated",
        "{report:#}"
    );
    assert_eq!(stopped(&h, &id)["reason"], "cost_cap");

    // What the revisions spent, from the calls recorded, never exceeds the cap.
    let calls = h.details(&id, "llm_call");
    let revision_spent: f64 = calls
        .iter()
        .filter(|c| c["stage"] == "revision")
        .map(|c| usd(&c["cost_usd"]))
        .sum();
    assert!(
        revision_spent > 0.0 && revision_spent <= cap_usd,
        "{revision_spent}"
    );
    assert!((usd(&stopped(&h, &id)["revision_spent_usd"]) - revision_spent).abs() < 1e-12);

    // Each revision was planned so that its worst case fitted what remained, and at least one
    // got a smaller max_tokens than the configured 4096 because little remained.
    let cap = 100_000_000_000i64; // 0.1 USD in pico-USD
    let mut spent = 0i64;
    let revisions: Vec<Received> = fake.received().into_iter().filter(is_revision).collect();
    assert!(revisions.len() >= 2, "{}", revisions.len());
    for (r, c) in revisions
        .iter()
        .zip(calls.iter().filter(|c| c["stage"] == "revision"))
    {
        let worst = estimated_input(r) * GPT4O_IN + r.max_tokens() as i64 * GPT4O_OUT;
        assert!(
            spent + worst <= cap,
            "worst case {worst} with {spent} spent"
        );
        spent += c["tokens_in"].as_i64().unwrap() * GPT4O_IN
            + c["tokens_out"].as_i64().unwrap() * GPT4O_OUT;
    }
    assert!(revisions.iter().any(|r| r.max_tokens() < 4096));

    // The loop said why it stopped: the next call's worst case did not fit.
    let cap_event = h.details(&id, "cost_cap_reached");
    assert_eq!(cap_event.len(), 1);
    assert_eq!(cap_event[0]["cap_usd"], cap_usd);
    assert!(usd(&cap_event[0]["worst_case_usd"]) > usd(&cap_event[0]["remaining_usd"]));
    assert!(usd(&cap_event[0]["spent_usd"]) + usd(&cap_event[0]["worst_case_usd"]) > cap_usd);
}

#[test]
fn manual_and_off_policies_write_one_draft_and_a_sighup_switches_between_them() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::draft(1, 500));
    let config = write_config(s.dir.path(), "quality_loop_policy = \"manual\"\n");
    let d = start_with(&s, &fake, "gpt-4o-mini", &[], Some(&config));
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["stop_reason"], "policy_manual", "{run:#}");
    assert_eq!(run["iterations"], 1);
    assert_eq!(fake.count(), 1);

    write_config(s.dir.path(), "quality_loop_policy = \"off\"\n");
    d.signal(libc::SIGHUP);
    wait_for("the policy to be reloaded", T, || {
        (h.get("/health").body["quality_loop"]["policy"] == "off").then_some(())
    });
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["stop_reason"], "policy_off", "{run:#}");
    assert_eq!(fake.count(), 2);
    let reloads = h.get("/api/reloads").body;
    assert_eq!(
        reloads["reloads"][0]["applied"]["quality_loop_policy"],
        json!(["manual", "off"]),
        "{reloads:#}"
    );
}

#[test]
fn a_sighup_lowering_the_cap_stops_a_running_job_at_its_next_iteration() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::draft(6, 500));
    fake.push([
        Reply::draft(1, 500),
        Reply::Held(Box::new(Reply::draft(3, 500))),
    ]);
    let loop_keys = "quality_loop_quality_threshold = 10\nquality_loop_min_improvement = 0\n\
                     quality_loop_max_iterations = 10\n";
    let config = write_config(
        s.dir.path(),
        &format!("{loop_keys}quality_loop_max_additional_cost_usd = 1.0\n"),
    );
    let d = start_with(&s, &fake, "gpt-4o-mini", &[], Some(&config));
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    wait_for("the first revision to be in flight", T, || {
        (fake.count() == 2).then_some(())
    });

    write_config(
        s.dir.path(),
        &format!("{loop_keys}quality_loop_max_additional_cost_usd = 0\n"),
    );
    d.signal(libc::SIGHUP);
    wait_for("the lower cap to be in force", T, || {
        (h.get("/health").body["quality_loop"]["max_additional_cost_usd"] == 0.0).then_some(())
    });
    fake.release();

    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "DONE", "{run:#}");
    assert_eq!(run["stop_reason"], "cost_cap");
    assert_eq!(
        run["iterations"], 2,
        "the revision in flight finishes, no other starts"
    );
    assert_eq!(fake.count(), 2);
    let reloaded = h.details(&id, "config_reloaded");
    assert_eq!(reloaded.len(), 1);
    assert_eq!(
        reloaded[0]["applied"]["quality_loop_max_additional_cost_usd"],
        json!([1.0, 0.0])
    );
    assert_eq!(h.details(&id, "cost_cap_reached")[0]["cap_usd"], 0.0);
}

#[test]
fn an_invalid_file_on_sighup_keeps_the_running_settings_and_restart_keys_are_reported() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::draft(12, 500));
    let config = write_config(s.dir.path(), "quality_loop_max_additional_cost_usd = 1.5\n");
    let d = start_with(&s, &fake, "gpt-4o-mini", &[], Some(&config));
    let h = d.http();
    let cap = |h: &Http| h.get("/health").body["quality_loop"]["max_additional_cost_usd"].clone();
    assert_eq!(cap(&h), 1.5);

    write_config(s.dir.path(), "quality_loop_max_additional_cost_usd = -3\n");
    d.signal(libc::SIGHUP);
    let err = wait_for("the reload error", T, || {
        h.get("/health").body["last_reload_error"]
            .as_str()
            .map(str::to_string)
    });
    assert!(
        err.contains("quality_loop_max_additional_cost_usd"),
        "{err}"
    );
    assert_eq!(cap(&h), 1.5);
    assert!(d.log_text().contains("configuration reload failed"));
    let reloads = h.get("/api/reloads").body;
    assert!(reloads["reloads"][0]["error"]
        .as_str()
        .unwrap()
        .contains("quality_loop"));

    // A valid file: the loop key applies, the restart-only key is reported, not applied.
    write_config(
        s.dir.path(),
        "quality_loop_max_additional_cost_usd = 0.5\nworkers = 7\n",
    );
    d.signal(libc::SIGHUP);
    wait_for("the new cap", T, || (cap(&h) == 0.5).then_some(()));
    let health = h.get("/health").body;
    assert!(health["last_reload_error"].is_null());
    assert_eq!(health["workers"], 2);
    let last = &h.get("/api/reloads").body["reloads"][0];
    assert_eq!(
        last["restart_required"]["workers"],
        json!([2, 7]),
        "{last:#}"
    );
    assert_eq!(
        last["applied"]["quality_loop_max_additional_cost_usd"],
        json!([1.5, 0.5])
    );
}

#[test]
fn a_429_is_retried_after_retry_after_and_counted_with_anthropic() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::Anthropic, Reply::draft(12, 500));
    fake.push([Reply::Status {
        code: 429,
        message: "rate limited".into(),
        retry_after: Some("1".into()),
    }]);
    let key = "sk-ant-test-abcdefghijklmnopqrstuvwxyz";
    let d = start(
        &s,
        &fake,
        "claude-3-5-haiku-latest",
        &[
            ("ANTHROPIC_API_KEY", key),
            ("PROCEDUREWRITER_QUALITY_LOOP_QUALITY_THRESHOLD", "9"),
            ("PROCEDUREWRITER_LLM_RETRY_MAX_DELAY_S", "5"),
        ],
    );
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "DONE", "{run:#}");
    assert_eq!(run["stop_reason"], "threshold_met");
    assert_eq!(run["llm_calls"], 2);
    assert_eq!(fake.count(), 2);
    for r in fake.received() {
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(r.credential.as_deref(), Some(key));
    }
    // The retry waited as long as Retry-After asked.
    let got = fake.received();
    let waited = got[1].at - got[0].at;
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    let calls = h.details(&id, "llm_call");
    assert_eq!(calls[0]["outcome"], "error");
    assert!(
        calls[0]["error"].as_str().unwrap().contains("429"),
        "{calls:?}"
    );
    assert_eq!(calls[1]["outcome"], "ok");
    let costs = h.get("/api/costs").body;
    assert_eq!(costs["total"]["failed_calls"], 1);
    // The window filters; bad windows are 400s that say what to send.
    let today = run["created_at"].as_str().unwrap()[..10].to_string();
    let r = h.get(&format!("/api/costs?from={today}&to={today}"));
    assert_eq!(r.body["total"]["calls"], 2, "{r:?}");
    assert_eq!(
        h.get("/api/costs?from=2000-01-01&to=2000-01-02").body["total"]["calls"],
        0
    );
    for q in [
        "from=yesterday",
        "from=2026-12-01&to=2026-11-01",
        "runs=0",
        "colour=red",
    ] {
        h.get(&format!("/api/costs?{q}"))
            .assert_error(400, "invalid_query");
    }
    assert_eq!(costs["by_model"][0]["label"], "anthropic");
}

#[test]
fn a_provider_that_stays_down_during_a_revision_ends_the_loop_and_keeps_the_draft() {
    let s = Scratch::new();
    let fake = FakeLlm::start(
        Flavor::OpenAi,
        Reply::status(503, "the model is overloaded"),
    );
    fake.push([Reply::draft(1, 500)]);
    let mut env = KEEP_GOING.to_vec();
    env.push(("PROCEDUREWRITER_LLM_MAX_RETRIES", "2"));
    let d = start(&s, &fake, "gpt-4o-mini", &env);
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    // The draft was paid for: the failed revision ends the loop, not the run.
    assert_eq!(run["status"], "DONE", "{run:#}");
    assert_eq!(run["stop_reason"], "revision_failed", "{run:#}");
    let failed = h.details(&id, "revision_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let err = failed[0]["error"].as_str().unwrap();
    assert!(
        err.contains("openai model gpt-4o-mini failed (after 3 attempts)")
            && err.contains("503")
            && err.contains("overloaded"),
        "{err}"
    );
    assert_eq!(failed[0]["kept_iteration"], 1);
    assert_eq!(run["llm_calls"], 4);
    assert_eq!(fake.count(), 4);
    let draft_cost = usd(&h.details(&id, "llm_call")[0]["cost_usd"]);
    assert!(draft_cost > 0.0);
    assert_eq!(usd(&run["cost_usd"]), draft_cost);
}

#[test]
fn a_refused_key_fails_at_once_and_the_echoed_key_is_redacted() {
    let s = Scratch::new();
    let key = "sk-live-ZYXWVUTSRQPONMLKJIHGFEDCBA9876";
    let fake = FakeLlm::start(
        Flavor::OpenAi,
        Reply::status(401, &format!("Incorrect API key provided: {key}.")),
    );
    let d = start(&s, &fake, "gpt-4o-mini", &[("OPENAI_API_KEY", key)]);
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "FAILED", "{run:#}");
    assert_eq!(fake.count(), 1, "a 401 is not retried");
    let err = run["error"].as_str().unwrap();
    assert!(
        err.contains("401") && err.contains("Incorrect API key provided: ***"),
        "{err}"
    );
    let everything = format!(
        "{}{}{}",
        run,
        h.get(&format!("/api/runs/{id}/events")).body,
        d.log_text()
    );
    for i in 0..=(key.len() - 8) {
        assert!(
            !everything.contains(&key[i..i + 8]),
            "a piece of the key leaked: {}",
            &key[i..i + 8]
        );
    }
}

/// A provider (or a proxy) that echoes a key back encoded: base64, percent-encoded, upper case,
/// in five-character pieces, or another provider's key. Nothing of either key may reach the
/// run, its events or the log, in any of those forms.
#[test]
fn a_key_echoed_in_any_encoding_never_reaches_the_run_the_events_or_the_log() {
    let s = Scratch::new();
    let key = "sk-live-Q7fLm2ZxW9pRt4VbN8cY1dKe";
    let other = "sk-ant-api03-HJ5kT2mQ9wXz7LpR4vNc";
    let b64 = |t: &str| {
        // A small standard base64 encoder, so the test does not share the daemon's code.
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let b = t.as_bytes();
        let mut out = String::new();
        for c in b.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= c.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    };
    let pct: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
    let pieces = key
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let echoes = vec![
        format!("bad credentials: Basic {}", b64(&format!("user:{key}"))),
        format!("bad key {pct}"),
        format!("bad key {}", key.to_uppercase()),
        format!("bad key {pieces}"),
        format!("wrong provider key {other}"),
    ];
    let by_title = echoes.clone();
    let fake = FakeLlm::start(
        Flavor::OpenAi,
        Reply::By(Arc::new(move |body: &Value| {
            let user = body["messages"][1]["content"].as_str().unwrap_or_default();
            let n = (0..by_title.len())
                .find(|i| user.contains(&format!("Procedure: Anafylaksi {i}")))
                .unwrap_or(0);
            Reply::status(401, &by_title[n])
        })),
    );
    let d = start(
        &s,
        &fake,
        "gpt-4o-mini",
        &[("OPENAI_API_KEY", key), ("ANTHROPIC_API_KEY", other)],
    );
    let h = d.http();
    let ids: Vec<String> = (0..echoes.len())
        .map(|i| h.submit(&format!("Anafylaksi {i}")))
        .collect();
    let mut everything = String::new();
    for id in &ids {
        let run = h.wait_finished(id, T);
        assert_eq!(run["status"], "FAILED", "{run:#}");
        everything.push_str(&run.to_string());
        everything.push_str(&h.get(&format!("/api/runs/{id}/events")).body.to_string());
    }
    everything.push_str(&d.log_text());
    let squeeze = |t: &str| -> String {
        t.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let all = squeeze(&everything);
    for secret in [key, other] {
        let k = squeeze(secret);
        for i in 0..=(k.len() - 8) {
            assert!(!all.contains(&k[i..i + 8]), "a piece of {secret} leaked");
        }
        for encoded in [b64(&format!("user:{secret}")), b64(secret)] {
            for i in 0..=(encoded.len() - 12) {
                assert!(
                    !everything.contains(&encoded[i..i + 12]),
                    "an encoded piece of {secret} leaked"
                );
            }
        }
    }
    assert_eq!(fake.count(), echoes.len(), "a 401 is not retried");
}

#[test]
fn a_run_killed_mid_loop_reuses_its_finished_calls_after_restart() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::draft(12, 500));
    fake.push([
        Reply::draft(1, 500),
        Reply::draft(3, 500),
        Reply::Held(Box::new(Reply::draft(6, 500))),
    ]);
    let env = [
        ("PROCEDUREWRITER_QUALITY_LOOP_QUALITY_THRESHOLD", "9.5"),
        ("PROCEDUREWRITER_QUALITY_LOOP_MIN_IMPROVEMENT", "0"),
        ("PROCEDUREWRITER_QUALITY_LOOP_MAX_ITERATIONS", "5"),
    ];
    let d = start(&s, &fake, "gpt-4o-mini", &env);
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    wait_for("the second revision to be in flight", T, || {
        (fake.count() == 3).then_some(())
    });
    let paid_before: f64 = h
        .details(&id, "llm_call")
        .iter()
        .map(|c| usd(&c["cost_usd"]))
        .sum();
    d.kill9();

    let d = start(&s, &fake, "gpt-4o-mini", &env);
    let h = d.http();
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "DONE", "{run:#}");
    assert_eq!(run["attempts"], 2);
    assert_eq!(run["stop_reason"], "threshold_met");
    assert_eq!(run["result"]["scores"], json!([0.8, 2.5, 9.8]));
    // The draft and the first revision were reused, not bought again: one new request.
    assert_eq!(fake.count(), 4);
    let reused = h.details(&id, "llm_call_reused");
    assert_eq!(reused.len(), 2, "{reused:?}");
    assert_eq!(run["result"]["reused_calls"], 2);
    assert_eq!(run["llm_calls"], 3);
    let calls = h.details(&id, "llm_call");
    assert_eq!(calls.len(), 3);
    let total: f64 = calls.iter().map(|c| usd(&c["cost_usd"])).sum();
    assert!((usd(&run["cost_usd"]) - total).abs() < 1e-12);
    assert!(usd(&run["cost_usd"]) > paid_before);
}

#[test]
fn the_costs_of_concurrent_runs_never_mix() {
    let s = Scratch::new();
    // Tokens out depend on the procedure: 1000 per pleural drain call, 3000 per anaphylaxis.
    let fake = FakeLlm::start(
        Flavor::OpenAi,
        Reply::By(Arc::new(|body: &Value| {
            let pleural = body.to_string().contains("Pleuradr");
            Reply::Held(Box::new(Reply::draft(
                12,
                if pleural { 1000 } else { 3000 },
            )))
        })),
    );
    let mut env = KEEP_GOING.to_vec();
    env.push(("PROCEDUREWRITER_QUALITY_LOOP_MAX_ITERATIONS", "3"));
    let d = start(&s, &fake, "gpt-4o-mini", &env);
    let h = d.http();
    let a = h.submit(ANAPHYLAXIS);
    let p = h.submit(PLEURAL_DRAIN);
    // Both first drafts are in flight at once before either answers.
    wait_for("both runs calling", T, || (fake.count() == 2).then_some(()));
    // From here every held call is let go, a few milliseconds apart, until both finish.
    let done = std::sync::atomic::AtomicBool::new(false);
    let (ra, rp) = std::thread::scope(|sc| {
        sc.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                fake.release();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let ra = h.wait_finished(&a, T);
        let rp = h.wait_finished(&p, T);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (ra, rp)
    });
    assert_eq!(ra["status"], "DONE", "{ra:#}");
    assert_eq!(rp["status"], "DONE", "{rp:#}");
    assert_eq!(ra["llm_calls"], 3);
    assert_eq!(rp["llm_calls"], 3);
    assert_eq!(ra["tokens_out"], 9000);
    assert_eq!(rp["tokens_out"], 3000);
    let costs = h.get("/api/costs").body;
    for run in [&ra, &rp] {
        let row = costs["by_run"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == run["run_id"])
            .unwrap()
            .clone();
        assert_eq!(row["calls"], 3);
        assert_eq!(row["tokens_out"], run["tokens_out"]);
        assert!((usd(&row["cost_usd"]) - usd(&run["cost_usd"])).abs() < 1e-12);
        let own: f64 = h
            .details(run["run_id"].as_str().unwrap(), "llm_call")
            .iter()
            .map(|c| usd(&c["cost_usd"]))
            .sum();
        assert!((own - usd(&run["cost_usd"])).abs() < 1e-12);
    }
    assert!(
        (usd(&costs["total"]["cost_usd"]) - usd(&ra["cost_usd"]) - usd(&rp["cost_usd"])).abs()
            < 1e-12
    );
}

#[test]
fn a_cancel_during_a_call_stops_the_loop_and_records_the_call_as_cancelled() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::draft(12, 500));
    fake.push([Reply::draft(1, 500), Reply::Hang]);
    let d = start(&s, &fake, "gpt-4o-mini", KEEP_GOING);
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    wait_for("the revision to be in flight", T, || {
        (fake.count() == 2).then_some(())
    });
    assert_eq!(h.post_empty(&format!("/api/runs/{id}/cancel")).status, 202);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "CANCELLED", "{run:#}");
    assert_eq!(stopped(&h, &id)["reason"], "cancelled");
    let calls = h.details(&id, "llm_call");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1]["outcome"], "cancelled");
    assert_eq!(run["llm_calls"], 2);
}

#[test]
fn a_call_that_hangs_times_out_is_retried_and_then_fails_the_run() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::Hang);
    let d = start(
        &s,
        &fake,
        "gpt-4o-mini",
        &[
            ("PROCEDUREWRITER_LLM_TIMEOUT_S", "0.3"),
            ("PROCEDUREWRITER_LLM_MAX_RETRIES", "3"),
            ("PROCEDUREWRITER_MAX_ATTEMPTS", "1"),
        ],
    );
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "FAILED", "{run:#}");
    let err = run["error"].as_str().unwrap();
    // The message names the key and how long it waited; a timeout is retried once at most.
    assert!(
        err.contains("timed out twice, after 2 attempts")
            && err.contains("llm_timeout_s = 0.3 s")
            && err.contains("waited 0."),
        "{err}"
    );
    assert_eq!(fake.count(), 2);
    assert_eq!(run["llm_calls"], 2);
    // The server may have generated both answers: each is counted at the reserved worst
    // case, marked as estimated, and the run's cost includes them.
    let calls = h.details(&id, "llm_call");
    assert!(calls.iter().all(|c| c["estimated"] == true), "{calls:#?}");
    assert!(usd(&run["cost_usd"]) > 0.0, "{run:#}");
}

#[test]
fn an_unpriced_model_is_refused_at_start() {
    let s = Scratch::new();
    let (code, stderr) = s.start_failing(&[
        ("PROCEDUREWRITER_JOB_RUNNER", "pipeline"),
        ("PROCEDUREWRITER_LLM_PROVIDER", "openai"),
        ("PROCEDUREWRITER_LLM_MODEL", "gpt-5-turbo-max"),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("llm_model")
            && stderr.contains("gpt-5-turbo-max")
            && stderr.contains("no price"),
        "{stderr}"
    );
}

#[test]
fn a_sighup_storm_under_load_changes_nothing_but_the_settings() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::draft(6, 300));
    let config = write_config(s.dir.path(), "quality_loop_max_additional_cost_usd = 1.0\n");
    let d = start_with(&s, &fake, "gpt-4o-mini", &[], Some(&config));
    let h = d.http();
    let ids: Vec<String> = (0..20).map(|_| h.submit(ANAPHYLAXIS)).collect();
    for i in 0..60 {
        let cap = if i % 2 == 0 { "1.5" } else { "1.0" };
        write_config(
            s.dir.path(),
            &format!("quality_loop_max_additional_cost_usd = {cap}\n"),
        );
        d.signal(libc::SIGHUP);
    }
    write_config(s.dir.path(), "quality_loop_max_additional_cost_usd = 0.7\n");
    d.signal(libc::SIGHUP);
    wait_for("the last file's cap", T, || {
        (h.get("/health").body["quality_loop"]["max_additional_cost_usd"] == 0.7).then_some(())
    });
    for id in &ids {
        let run = h.wait_finished(id, T);
        assert_eq!(run["status"], "DONE", "{run:#}");
        assert_eq!(run["attempts"], 1);
    }
    let health = h.get("/health").body;
    assert_eq!(health["status"], "ok");
    assert!(health["last_reload_error"].is_null());
    assert_eq!(
        h.get("/api/runs?limit=100").body["runs"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
    assert!(!d.log_text().contains("panicked"));
}

#[test]
fn a_connection_reset_by_the_provider_is_retried() {
    let s = Scratch::new();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::draft(12, 500));
    fake.push([Reply::Reset]);
    let d = start(
        &s,
        &fake,
        "gpt-4o-mini",
        &[("PROCEDUREWRITER_QUALITY_LOOP_QUALITY_THRESHOLD", "9")],
    );
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "DONE", "{run:#}");
    assert_eq!(fake.count(), 2);
    let calls = h.details(&id, "llm_call");
    assert_eq!(calls[0]["outcome"], "error", "{calls:?}");
    assert_eq!(calls[1]["outcome"], "ok");
    assert_eq!(run["llm_calls"], 2);
}

/// A model's draft that gives a tenfold adrenaline dose intravenously, citing a source that
/// says 0,5 mg intramuscularly: it is never DONE, whatever its score. The run fails as not
/// releasable, the artifacts are kept and say so, and the finding names the sentence, the
/// passage and what differs.
#[test]
fn a_harmful_draft_is_never_done_and_its_findings_are_shown() {
    let s = Scratch::new();
    let fake = FakeLlm::start(
        Flavor::OpenAi,
        Reply::By(Arc::new(|body: &Value| {
            let user = body["messages"][1]["content"].as_str().unwrap_or_default();
            // The source that gives the adult dose: the prompt's own passage says which.
            let id = user
                .split("<source id=\"")
                .skip(1)
                .find(|block| block.contains("0,5 mg"))
                .and_then(|b| b.split('"').next())
                .unwrap_or("SRC0001")
                .to_string();
            Reply::Markdown(format!(
                "## Indikationer\n\nAnafylaksi hos voksne. [S:{id}]\n\n## Procedure (trin-for-trin)\n\n1. Voksne får 5 mg adrenalin intravenøst. [S:{id}]\n"
            ))
        })),
    );
    let d = start(
        &s,
        &fake,
        "gpt-4o-mini",
        &[("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "off")],
    );
    let h = d.http();
    let id = h.submit(ANAPHYLAXIS);
    let run = h.wait_finished(&id, T);
    assert_eq!(run["status"], "FAILED", "{run:#}");
    let error = run["error"].as_str().unwrap();
    assert!(error.starts_with("not_releasable:"), "{error}");
    let report = h.get(&format!("/api/runs/{id}/evidence")).body;
    assert_eq!(report["released"], false, "{report:#}");
    let findings = report["verification"]["findings"].as_array().unwrap();
    let dose = findings
        .iter()
        .find(|f| f["severity"] == "blocking" && f["sentence"].as_str().unwrap().contains("5 mg"))
        .unwrap_or_else(|| panic!("no blocking finding on the dose: {findings:#?}"));
    assert!(
        ["dose", "route"].contains(&dose["kind"].as_str().unwrap()),
        "{dose:#}"
    );
    // The finding shows the passage sentence it was held against, from the cited source.
    assert_eq!(dose["aligned"]["source_id"], dose["cited"][0], "{dose:#}");
    assert!(!dose["what"].as_str().unwrap().is_empty(), "{dose:#}");
    let md = h.get(&format!("/api/runs/{id}/procedure")).body;
    let md = md.as_str().unwrap();
    assert!(
        md.contains("IKKE FRIGIVET") && md.contains("Blokerende fund"),
        "{md}"
    );
}
