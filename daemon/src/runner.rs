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
                    _ = tokio::time::sleep(Duration::from_millis(spec.duration_ms)) => {}
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
