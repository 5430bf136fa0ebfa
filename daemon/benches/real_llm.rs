//! Against a real model server (llama.cpp's `llama-server`, SmolLM2-135M-Instruct, one CPU
//! thread): four runs with one and with four server slots, each with four workers and
//! `llm_max_concurrent_calls` left at 0, so the daemon takes the server's own slot count
//! (`GET /props` → `total_slots`). Prints the wall time, the requests the daemon
//! sent against the answers it used and the server generated (the goal: no generation
//! wasted), and the daemon's overhead per call (its call latency minus the server's own
//! prompt and generation time).
//!
//! ```sh
//! eval "$(../shared/tools/real-llm/setup.sh --env)"
//! cargo bench -p procedurewriter --bench real_llm            # 200 output tokens a call
//! cargo bench -p procedurewriter --bench real_llm -- --quick # 64 (CI)
//! ```
//!
//! Without `LLAMA_SERVER` and `LLM_MODEL_GGUF` it says so and exits 0.

#[path = "support/daemon.rs"]
mod daemon;

use daemon::{new_key, Conn, Proc};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 4;

struct Server {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut c = Conn::open_checked(addr).await?;
    let (code, body) = c.request("GET", path, None).await.ok()?;
    Some((code, String::from_utf8_lossy(&body).into_owned()))
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("llamacpp:{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn server(bin: &str, model: &str, dir: &std::path::Path, slots: u32) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = dir.join(format!("llama-{slots}.log"));
    let child = Command::new(bin)
        .args([
            "-m",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .args(["-c", &(4096 * slots).to_string(), "-np", &slots.to_string()])
        .args(["-t", "1", "-a", "smollm2", "--metrics"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start llama-server");
    let s = Server { child, port, log };
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(300);
    while get(&addr, "/health").await.map(|(c, _)| c) != Some(200) {
        assert!(Instant::now() < deadline, "llama-server did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s
}

async fn json_of(addr: &str, path: &str) -> Value {
    let (_, body) = get(addr, path).await.expect("daemon answers");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

async fn scenario(bin: &str, model: &str, slots: u32, max_tokens: u32) {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(bin, model, dir.path(), slots).await;
    let srv_addr = format!("127.0.0.1:{}", srv.port);
    let prices = dir.path().join("prices.toml");
    std::fs::write(&prices, "[models.smollm2]\ninput = 0.1\noutput = 0.2\n").unwrap();
    let (base, max_s, prices_s) = (
        format!("http://127.0.0.1:{}/v1", srv.port),
        max_tokens.to_string(),
        prices.display().to_string(),
    );
    let env = [
        ("PROCEDUREWRITER_JOB_RUNNER", "pipeline"),
        ("PROCEDUREWRITER_WORKERS", "4"),
        ("PROCEDUREWRITER_LLM_PROVIDER", "openai"),
        ("PROCEDUREWRITER_LLM_MODEL", "smollm2"),
        ("PROCEDUREWRITER_LLM_BASE_URL", base.as_str()),
        ("PROCEDUREWRITER_PRICES_FILE", prices_s.as_str()),
        ("PROCEDUREWRITER_LLM_MAX_TOKENS", max_s.as_str()),
        ("PROCEDUREWRITER_LLM_MIN_OUTPUT_TOKENS", "32"),
        ("PROCEDUREWRITER_LLM_EVIDENCE_TOKENS", "600"),
        ("PROCEDUREWRITER_LLM_TIMEOUT_S", "600"),
        ("PROCEDUREWRITER_QUALITY_LOOP_POLICY", "off"),
    ];
    let (d, _) = Proc::start(&dir.path().join("data"), &new_key(), &env);
    let addr = d.url_addr.clone();
    let before = get(&srv_addr, "/metrics").await.unwrap_or_default().1;
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..RUNS {
        let mut c = Conn::open(&addr).await;
        let body = json!({ "procedure": "Anafylaksi behandling", "context": format!("run {i}") });
        let (code, b) = c
            .request("POST", "/api/write", Some(&body.to_string()))
            .await
            .unwrap();
        assert_eq!(code, 202, "{}", String::from_utf8_lossy(&b));
        let v: Value = serde_json::from_slice(&b).unwrap();
        ids.push(v["run_id"].as_str().unwrap().to_string());
    }
    let mut done = [false; RUNS];
    while done.iter().any(|d| !d) {
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "runs did not finish"
        );
        for (i, id) in ids.iter().enumerate() {
            let r = json_of(&addr, &format!("/api/runs/{id}")).await;
            let st = r["status"].as_str().unwrap_or_default();
            done[i] = ["DONE", "FAILED", "CANCELLED"].contains(&st);
            assert_ne!(st, "DONE", "a poor, uncited draft was released: {r:#}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let after = get(&srv_addr, "/metrics").await.unwrap_or_default().1;
    let (mut sent, mut used, mut latency_ms) = (0usize, 0usize, 0f64);
    for id in &ids {
        let ev = json_of(&addr, &format!("/api/runs/{id}/events")).await;
        for e in ev["events"].as_array().cloned().unwrap_or_default() {
            if e["kind"] == "llm_call" {
                sent += 1;
                latency_ms += e["details"]["latency_ms"].as_f64().unwrap_or(0.0);
                used += usize::from(e["details"]["outcome"] == "ok");
            }
        }
    }
    let generated = std::fs::read_to_string(&srv.log)
        .unwrap_or_default()
        .matches("launch_slot_")
        .count();
    let server_s = (metric(&after, "prompt_seconds_total")
        - metric(&before, "prompt_seconds_total"))
        + (metric(&after, "tokens_predicted_seconds_total")
            - metric(&before, "tokens_predicted_seconds_total"));
    let call_s = latency_ms / 1000.0;
    // With one slot the server works on one request at a time, so a call's latency minus the
    // server's own prompt and generation time is the daemon's (and HTTP's) overhead. With more
    // slots sharing one CPU thread the server's per-request times overlap and no longer add up
    // to wall time: the difference is then time the requests shared the server.
    let per_call = if slots == 1 {
        format!(
            "daemon overhead {:.0} ms a call ({:.2} %)",
            (call_s - server_s) / sent.max(1) as f64 * 1000.0,
            100.0 * (call_s - server_s) / call_s.max(1e-9)
        )
    } else {
        format!(
            "calls overlapped on the server (its times exceed no wall clock): {:.1} s of call \
             time beyond the server's own",
            call_s - server_s
        )
    };
    println!(
        "slots {slots}: {RUNS} runs in {wall:.1} s; requests sent {sent}, answers used {used}, \
         generations on the server {generated} (wasted {}); call time {call_s:.1} s, server time \
         {server_s:.1} s; {per_call}",
        generated.saturating_sub(used),
    );
    assert_eq!(used, RUNS, "every run used one answer");
    drop(d);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (Ok(bin), Ok(model)) = (
        std::env::var("LLAMA_SERVER"),
        std::env::var("LLM_MODEL_GGUF"),
    ) else {
        println!(
            "real_llm: skipped (LLAMA_SERVER and LLM_MODEL_GGUF are not set; run \
             eval \"$(../shared/tools/real-llm/setup.sh --env)\" first)"
        );
        return;
    };
    let max_tokens = if quick { 64 } else { 200 };
    println!(
        "real_llm: {RUNS} runs, 4 workers, max_tokens {max_tokens}, SmolLM2-135M on 1 thread \
         (cargo bench -p procedurewriter --bench real_llm{})",
        if quick { " -- --quick" } else { "" }
    );
    daemon::block_on(async {
        for slots in [1, 4] {
            scenario(&bin, &model, slots, max_tokens).await;
        }
    });
}
