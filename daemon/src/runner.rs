//! The programmable test runner (`job_runner = "test"`): each run's `options.test` object says
//! how long the job takes and how it ends, so the queue's behaviour under slow, failing,
//! panicking and gap-raising jobs can be driven from outside over HTTP.

use futures_util::future::LocalBoxFuture;
use procedurewriter_actors::{Job, JobContext, JobRunner, Outcome};
use procedurewriter_pipeline::gate::{AckRequest, Policy};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// What a test job does, from `params.test` (all fields optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestSpec {
    /// How long the job runs, in milliseconds.
    #[serde(default)]
    duration_ms: u64,
    /// How it ends: "ok" (default), "fail", "fail_retryable", "panic", "needs_ack".
    #[serde(default)]
    outcome: Option<String>,
    /// Fail retryably on the first N attempts, then follow `outcome`.
    #[serde(default)]
    fail_attempts: u32,
    /// Pads a successful result with this many bytes (a written procedure is tens of KB).
    #[serde(default)]
    result_bytes: usize,
    /// While it runs, records a `progress` event this often (milliseconds; 0: never), as a
    /// job that writes as it goes does; a write the database refuses defers the run.
    #[serde(default)]
    progress_ms: u64,
}

/// The pretend work: `duration_ms` of waiting, with a `progress` event every `progress_ms`.
/// `Some(outcome)` if a store call stopped it (see [`Outcome::of_store_error`]).
async fn work(ctx: &JobContext, duration_ms: u64, progress_ms: u64) -> Option<Outcome> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(duration_ms);
    if progress_ms == 0 {
        tokio::time::sleep_until(deadline).await;
        return None;
    }
    let mut step: u64 = 0;
    loop {
        let next = tokio::time::Instant::now() + Duration::from_millis(progress_ms);
        if next >= deadline {
            tokio::time::sleep_until(deadline).await;
            return None;
        }
        tokio::time::sleep_until(next).await;
        step += 1;
        if let Err(e) = ctx.event("progress", json!({ "step": step })).await {
            return Some(Outcome::of_store_error(&e));
        }
    }
}

/// Largest `result_bytes` honoured.
const MAX_RESULT_BYTES: usize = 1 << 20;

/// Runs jobs as `options.test` describes; see `etc/procedurewriter.toml`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TestRunner;

impl JobRunner for TestRunner {
    fn run(&self, job: Job, ctx: JobContext) -> LocalBoxFuture<'static, Outcome> {
        let run = job.run;
        Box::pin(async move {
            let spec: TestSpec = match run.params.get("test") {
                None => TestSpec::default(),
                Some(v) => match serde_json::from_value(v.clone()) {
                    Ok(spec) => spec,
                    Err(e) => {
                        return Outcome::Failed {
                            error: format!("invalid options.test: {e}"),
                            retryable: false,
                        }
                    }
                },
            };
            if spec.duration_ms > 0 {
                // A cancel stops the pretend work at once, as a cooperative job does.
                tokio::select! {
                    stopped = work(&ctx, spec.duration_ms, spec.progress_ms) => {
                        if let Some(outcome) = stopped {
                            return outcome;
                        }
                    }
                    _ = ctx.cancelled() => return Outcome::Cancelled,
                }
            }
            if run.attempts <= spec.fail_attempts {
                return Outcome::Failed {
                    error: format!("test failure on attempt {}", run.attempts),
                    retryable: true,
                };
            }
            match spec.outcome.as_deref().unwrap_or("ok") {
                "ok" => Outcome::Done {
                    result: json!({
                        "runner": "test",
                        "attempt": run.attempts,
                        "procedure": run.procedure,
                        "padding": "p".repeat(spec.result_bytes.min(MAX_RESULT_BYTES)),
                    }),
                },
                "fail" => Outcome::Failed {
                    error: "test failure".into(),
                    retryable: false,
                },
                "fail_retryable" => Outcome::Failed {
                    error: format!("test failure on attempt {}", run.attempts),
                    retryable: true,
                },
                "panic" => panic!("test runner panics as asked"),
                // Waits for an acknowledgement of the (pretend) missing tier, then finishes.
                "needs_ack" => {
                    // The same contract and coverage test as the pipeline's gate.
                    let request = AckRequest {
                        missing_tiers: vec!["danish_guideline".into()],
                        found: Default::default(),
                        required_tiers: vec!["danish_guideline".into()],
                        policy: Policy::AllowWithAck,
                    };
                    let acked: Vec<String> = run
                        .ack
                        .as_ref()
                        .and_then(|a| serde_json::from_value(a.tiers.clone()).ok())
                        .unwrap_or_default();
                    if run.ack.is_some() && request.uncovered(&acked).is_empty() {
                        Outcome::Done {
                            result: json!({ "runner": "test", "acknowledged": true }),
                        }
                    } else {
                        Outcome::NeedsAck {
                            details: serde_json::to_value(&request).unwrap_or_default(),
                        }
                    }
                }
                other => Outcome::Failed {
                    error: format!("unknown options.test.outcome {other:?}"),
                    retryable: false,
                },
            }
        })
    }
}
