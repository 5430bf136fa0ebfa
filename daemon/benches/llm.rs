//! Language-model benchmark on the fake OpenAI-compatible provider of the test suite.
//!
//!     cargo bench -p procedurewriter --bench llm             # 20 procedures per mode, 400 calls
//!     cargo bench -p procedurewriter --bench llm -- --quick  # 3 procedures, 60 calls
//!
//! 1. Per procedure, gpt-4o prices: calls, tokens and cost with the quality loop (auto,
//!    threshold 9.5, 4 iterations) against the same procedure without it (policy off). The
//!    fake's revisions fill five more sections than the draft they revise has citations
//!    (scores 8.2, 9.0, 9.8), as a model that follows the issue list would.
//! 2. What the daemon adds to one call: `Llm::call` under a lease (replay lookup, the HTTP
//!    request through the provider client, the call's row, run totals and event committed)
//!    against a bare HTTP request with the same body to the same fake, interleaved, medians.

#[path = "../../tests/support/fake_llm.rs"]
mod fake_llm;

use fake_llm::{FakeLlm, Flavor, Reply};
use procedurewriter::job::{JobProgress, LeaseLedger, PipelineJob};
use procedurewriter::library::{load_demo_library, StoreLibrary};
use procedurewriter::settings::Settings;
use procedurewriter_actors::{Job, JobContext, JobRunner, Lease, NewRun, Store, Synchronous};
use procedurewriter_pipeline::llm::openai::OpenAi;
use procedurewriter_pipeline::llm::{Llm, RetryPolicy, Stage, Step};
use procedurewriter_pipeline::llm_writer::{system_prompt, LlmWriter};
use procedurewriter_pipeline::ports::RunPorts;
use procedurewriter_pipeline::quality::{LoopPolicy, LoopSettings};
use procedurewriter_pipeline::tiers::TierRules;
use procedurewriter_pipeline::Pipeline;
use serde_json::{json, Value};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const MODEL: &str = "gpt-4o";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Revisions fill five more sections than the draft they revise has citations.
fn improving(body: &Value) -> Reply {
    let user = body["messages"][1]["content"].as_str().unwrap_or_default();
    let sections = match user.find("<draft>") {
        None => 1,
        Some(i) => (user[i..].matches("[S:").count() + 5).min(12),
    };
    Reply::draft(sections, 1500)
}

fn llm(fake: &FakeLlm, settings: &Settings) -> Llm {
    let client = reqwest::Client::builder().build().unwrap();
    Llm {
        provider: Arc::new(OpenAi::new(
            client,
            &fake.base_url(),
            MODEL,
            procedurewriter_pipeline::llm::Timeouts {
                first_token: Duration::from_secs(30),
                idle: Duration::from_secs(30),
            },
        )),
        price: settings.prices().unwrap().lookup(MODEL).unwrap().1,
        keys: Arc::new(|| Box::pin(async { Ok(None) })),
        known_keys: procedurewriter_pipeline::llm::no_other_keys(),
        retry: RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            window: Duration::from_secs(60),
        },
        max_tokens: 4096,
        min_output_tokens: 256,
        slots: procedurewriter_pipeline::llm::Slots::new(64),
    }
}

async fn claim(store: &Store, procedure: &str) -> (procedurewriter_actors::Run, JobContext) {
    store
        .enqueue(NewRun {
            procedure: procedure.into(),
            context: String::new(),
            params: json!({}),
            priority: 0,
            idempotency_key: None,
            max_attempts: 1,
        })
        .await
        .unwrap();
    let claimed = store
        .claim(vec!["bench/w0".into()])
        .await
        .unwrap()
        .remove(0);
    let ctx = JobContext::leased(
        store.clone(),
        Lease {
            run_id: claimed.run.id.clone(),
            token: claimed.run.lease_token,
            owner: claimed.owner.clone(),
        },
    );
    (claimed.run, ctx)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (procedures, calls) = if quick { (3, 60) } else { (20, 400) };
    println!(
        "procedurewriter LLM benchmark ({} mode, fake OpenAI-compatible provider, {MODEL} prices)",
        if quick { "quick" } else { "full" }
    );
    println!(
        "reproduce: cargo bench -p procedurewriter --bench llm{}\n",
        if quick { " -- --quick" } else { "" }
    );
    let dir = tempfile::tempdir().unwrap();
    let env = [(
        "PROCEDUREWRITER_DATA_DIR".to_string(),
        dir.path().display().to_string(),
    )]
    .into();
    let settings = Settings::load_from(None, env).unwrap();
    let fake = FakeLlm::start(Flavor::OpenAi, Reply::By(Arc::new(improving)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open(&dir.path().join("bench.db"), Synchronous::Normal).unwrap();
        let rules = Arc::new(TierRules::embedded());
        load_demo_library(&store, &rules).await.unwrap();
        procedurewriter::library::refeature(&store).await.unwrap();

        // 1. The loop against no loop.
        println!("| mode | calls/procedure | tokens in | tokens out | cost USD/procedure | score | wall ms p50 |");
        println!("| --- | --- | --- | --- | --- | --- | --- |");
        for (label, policy) in [("loop off", LoopPolicy::Off), ("loop auto", LoopPolicy::Auto)] {
            let loop_settings = LoopSettings {
                policy,
                threshold: 9.5,
                max_iterations: 4,
                max_additional_cost_pusd: 2_000_000_000_000,
                min_improvement: 0.5,
            };
            let runner = PipelineJob {
                pipeline: Pipeline::new(
                    Arc::new(StoreLibrary(store.clone())),
                    Arc::clone(&rules),
                    settings.pipeline(),
                    Arc::new(LlmWriter {
                        llm: llm(&fake, &settings),
                        evidence_tokens: settings.llm_evidence_tokens,
                    }),
                    Arc::new(RwLock::new(loop_settings)),
                ),
                store: store.clone(),
                metrics: None,
                requeue: settings.requeue_delay(),
            };
            let (mut n, mut tin, mut tout, mut cost, mut score, mut wall) =
                (0u64, 0u64, 0u64, 0f64, 0f64, Vec::new());
            for _ in 0..procedures {
                let (run, ctx) = claim(&store, "Anafylaksi behandling").await;
                let t = Instant::now();
                let outcome = runner.run(Job { run: run.clone() }, ctx).await;
                wall.push(t.elapsed().as_secs_f64() * 1e3);
                let result = match outcome {
                    procedurewriter_actors::Outcome::Done { result } => result,
                    other => panic!("{label}: {other:?}"),
                };
                let after = store.get_run(run.id.clone()).await.unwrap();
                n += after.llm_calls;
                tin += after.tokens_in;
                tout += after.tokens_out;
                cost += procedurewriter_actors::model::money::to_usd(after.cost_pusd);
                score += result["score"].as_f64().unwrap();
            }
            let p = procedures as f64;
            println!(
                "| {label} | {:.1} | {:.0} | {:.0} | {:.4} | {:.1} | {:.1} |",
                n as f64 / p,
                tin as f64 / p,
                tout as f64 / p,
                cost / p,
                score / p,
                median(&mut wall)
            );
        }

        // 2. Overhead per call.
        let client = reqwest::Client::new();
        let llm = llm(&fake, &settings);
        let (_, ctx) = claim(&store, "Anafylaksi behandling").await;
        let ledger = LeaseLedger {
            store: store.clone(),
            lease: ctx.lease().cloned(),
            metrics: None,
        };
        let progress = JobProgress(ctx);
        let ports = RunPorts {
            ledger: &ledger,
            progress: &progress,
        };
        let system = system_prompt();
        let user = "Procedure: Anafylaksi\n\nSources:\n<source id=\"SRC0001\" tier=\"danish_guideline\" year=\"2024\">\nTitle: Anafylaksi\nAdrenalin 0,5 mg gives intramuskulært i låret ved mistanke om anafylaksi.\n</source>\n\nWrite the procedure.\n".to_string();
        let body = json!({
            "model": MODEL,
            "messages": [{ "role": "system", "content": system }, { "role": "user", "content": user }],
            "max_tokens": 4096, "temperature": 0,
        });
        let (mut raw, mut daemon) = (Vec::new(), Vec::new());
        for i in 0..calls {
            let t = Instant::now();
            let resp = client
                .post(format!("{}/chat/completions", fake.base_url()))
                .json(&body)
                .send()
                .await
                .unwrap();
            let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
            assert!(v["usage"]["prompt_tokens"].as_u64().is_some());
            raw.push(t.elapsed().as_secs_f64() * 1e3);

            let step = Step {
                stage: Stage::Draft,
                iteration: i as u32 + 1,
                attempt: 1,
            };
            let t = Instant::now();
            llm.call(ports, step, &system, &user, None).await.unwrap();
            daemon.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (r50, d50) = (median(&mut raw), median(&mut daemon));
        let (r90, d90) = (pct(&mut raw, 0.9), pct(&mut daemon, 0.9));
        println!();
        println!("| per call ({calls} calls, interleaved) | p50 ms | p90 ms |");
        println!("| --- | --- | --- |");
        println!("| bare HTTP request to the fake | {r50:.3} | {r90:.3} |");
        println!("| Llm::call: replay lookup + request + recorded call | {d50:.3} | {d90:.3} |");
        println!(
            "| overhead the daemon adds (target < 1 ms) | {:.3} | {:.3} |",
            d50 - r50,
            d90 - r90
        );
    });
}
