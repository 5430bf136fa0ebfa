//! The pipeline as the queue's job: the [`JobRunner`] that maps a claimed run to the
//! pipeline's typed [`RunRequest`], gives it its ports over the store and the job's lease, and
//! maps its [`RunEnd`] back to an [`Outcome`]. This is the one place that knows both sides:
//! the pipeline knows no lease or store, the actors know no procedure.

use crate::metrics::{JobMetrics, ModelCall};
use futures_util::future::{BoxFuture, LocalBoxFuture};
use procedurewriter_actors::store::{CallOutcome as StoreCallOutcome, NewLlmCall};
use procedurewriter_actors::{Job, JobContext, JobRunner, Lease, Outcome, Run, Store};
use procedurewriter_pipeline::gate::{AckRequest, Acknowledgement};
use procedurewriter_pipeline::ports::{
    CallOutcome, CallRecord, Ledger, PortError, PortResult, PriorSpend, Progress, ReusableCall,
    RunPorts,
};
use procedurewriter_pipeline::{Pipeline, PipelineError, RunEnd, RunOptions, RunRequest};
use serde_json::Value;
use std::time::Duration;

/// A store error as the pipeline sees it: its message, and whether trying later may help (the
/// database refusing writes clears up; anything else does not).
pub fn port_error(e: procedurewriter_actors::Error) -> PortError {
    PortError {
        retryable: matches!(e, procedurewriter_actors::Error::Unavailable(_)),
        message: e.to_string(),
    }
}

/// The acknowledgement check the store runs inside the acknowledging transaction: the
/// pipeline's own coverage test over the stored [`AckRequest`]. An `ack_required` that is not
/// one (written by another runner) is covered by nothing but its `missing_tiers`, read the
/// same way.
pub fn uncovered(ack_required: &Value, acknowledged: &[String]) -> Vec<String> {
    match serde_json::from_value::<AckRequest>(ack_required.clone()) {
        Ok(request) => request.uncovered(acknowledged),
        Err(_) => {
            let missing: Vec<String> = ack_required
                .get("missing_tiers")
                .and_then(|m| serde_json::from_value(m.clone()).ok())
                .unwrap_or_default();
            procedurewriter_pipeline::gate::uncovered(&missing, acknowledged)
        }
    }
}

/// The run's acknowledgement, typed.
fn acknowledgement(run: &Run) -> Option<Acknowledgement> {
    run.ack.as_ref().map(|a| Acknowledgement {
        acknowledged_by: a.acknowledged_by.clone(),
        note: a.note.clone(),
        tiers: serde_json::from_value(a.tiers.clone()).unwrap_or_default(),
    })
}

/// How long a run whose model provider stayed down waits in the queue before its next attempt
/// (`llm_requeue_delay_s`, `llm_requeue_max_delay_s`): the base after the first attempt,
/// doubling with each attempt spent, capped. A model server that is restarting or reloading a
/// model is back within a minute or two; one that is down for good should not be asked every
/// few seconds until the run's attempts are gone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequeueDelay {
    pub base: Duration,
    pub max: Duration,
}

impl RequeueDelay {
    /// The wait after attempt `attempt` (1 for the first) failed.
    pub fn after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// Runs the procedure pipeline on claimed runs.
#[derive(Clone)]
pub struct PipelineJob {
    pub pipeline: Pipeline,
    pub store: Store,
    /// Where model calls and run ends are counted (None: not counted, as in benchmarks).
    pub metrics: Option<JobMetrics>,
    /// How long a run waits after its provider stayed down through the retry window.
    pub requeue: RequeueDelay,
}

impl JobRunner for PipelineJob {
    fn run(&self, job: Job, ctx: JobContext) -> LocalBoxFuture<'static, Outcome> {
        let me = self.clone();
        Box::pin(async move { me.execute(job.run, ctx).await })
    }
}

impl PipelineJob {
    async fn execute(&self, run: Run, ctx: JobContext) -> Outcome {
        let options = match RunOptions::from_json(&run.params) {
            Ok(o) => o,
            Err(error) => {
                return Outcome::Failed {
                    error,
                    retryable: false,
                }
            }
        };
        let attempt = run.attempts;
        let request = RunRequest {
            id: run.id.clone(),
            ack: acknowledgement(&run),
            procedure: run.procedure,
            context: run.context,
            options,
            attempt: run.attempts,
        };
        let ledger = LeaseLedger {
            store: self.store.clone(),
            lease: ctx.lease().cloned(),
            metrics: self.metrics.clone(),
        };
        let progress = JobProgress(ctx);
        let ports = RunPorts {
            ledger: &ledger,
            progress: &progress,
        };
        let end = self.pipeline.execute(request, ports).await;
        if let Some(m) = &self.metrics {
            count_end(m, &end);
        }
        match end {
            Ok(RunEnd::Done(summary)) => match serde_json::to_value(&*summary) {
                Ok(result) => Outcome::Done { result },
                Err(e) => Outcome::Failed {
                    error: format!("internal error: cannot serialise the run's result: {e}"),
                    retryable: false,
                },
            },
            // Never DONE: a distinct failure, final (a retry writes the same), the artifacts
            // kept and marked as not released.
            Ok(RunEnd::NotReleasable { blocking, summary }) => Outcome::Failed {
                error: format!(
                    "not_releasable: the procedure has {blocking} blocking finding(s) (a dose, \
                     unit, route, negation, population or timing that differs from its passage, \
                     clinical content without a citation, a citation to nothing retrieved, or an \
                     answer cut at max_tokens or without the outline's sections); \
                     the findings are in GET /api/runs/{{id}}/evidence and at the end of {}/procedure.md; \
                     add or correct the evidence and write it again",
                    summary.artifact_dir
                ),
                retryable: false,
            },
            Ok(RunEnd::NeedsAck(request)) => Outcome::NeedsAck {
                details: serde_json::to_value(&request).unwrap_or(Value::Null),
            },
            // Only a provider that stayed down through the retry window ends an attempt as
            // retryable: asking again at once would find it down again, so the run waits.
            Ok(RunEnd::Failed {
                error,
                retryable: true,
            }) => Outcome::RetryLater {
                error,
                delay: self.requeue.after(attempt),
            },
            Ok(RunEnd::Failed { error, retryable }) => Outcome::Failed { error, retryable },
            Ok(RunEnd::Cancelled) => Outcome::Cancelled,
            Err(e) if waits_for_infrastructure(&e) => Outcome::Deferred {
                reason: e.to_string(),
            },
            Err(e) => Outcome::Failed {
                retryable: e.retryable(),
                error: e.to_string(),
            },
        }
    }
}

/// Counts how a run ended, and what a run that produced a procedure took and scored.
fn count_end(m: &JobMetrics, end: &Result<RunEnd, PipelineError>) {
    let outcome = match end {
        Ok(RunEnd::Done(summary)) => {
            m.run_produced(&summary.timings_ms, summary.score, summary.stop_reason);
            "done"
        }
        Ok(RunEnd::NotReleasable { summary, .. }) => {
            m.run_produced(&summary.timings_ms, summary.score, summary.stop_reason);
            "not_releasable"
        }
        Ok(RunEnd::NeedsAck(_)) => "needs_ack",
        Ok(RunEnd::Failed { .. }) => "failed",
        Ok(RunEnd::Cancelled) => "cancelled",
        Err(e) if waits_for_infrastructure(e) => "deferred",
        Err(_) => "failed",
    };
    m.run_ended(outcome);
}

/// Whether the run stopped because the machine, not the run, failed: the database refused a
/// write (a port error is retryable exactly when the store said `Unavailable`, see
/// [`port_error`]), or the disk is full under the artifacts. Waiting for that is not an
/// attempt: the run is deferred, not failed.
fn waits_for_infrastructure(e: &PipelineError) -> bool {
    match e {
        PipelineError::Port(p) => p.retryable,
        PipelineError::Artifacts { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ),
    }
}

/// The ledger of one job: model calls recorded under its lease (fenced: the store records a
/// call even when the lease was lost, since the provider was paid, and says so in the event).
pub struct LeaseLedger {
    pub store: Store,
    /// None outside the queue: nothing was spent before and nothing is recorded.
    pub lease: Option<Lease>,
    /// Where recorded calls are counted too.
    pub metrics: Option<JobMetrics>,
}

impl Ledger for LeaseLedger {
    fn prior_spend(&self) -> BoxFuture<'_, PortResult<PriorSpend>> {
        Box::pin(async move {
            let Some(l) = &self.lease else {
                return Ok(PriorSpend::default());
            };
            let (draft_pusd, revision_pusd) = self
                .store
                .llm_spend(l.run_id.clone())
                .await
                .map_err(port_error)?;
            Ok(PriorSpend {
                draft_pusd,
                revision_pusd,
            })
        })
    }

    fn reusable(&self, step_key: String) -> BoxFuture<'_, PortResult<Option<ReusableCall>>> {
        Box::pin(async move {
            let Some(l) = &self.lease else {
                return Ok(None);
            };
            let found = self
                .store
                .reusable_llm_call(l.run_id.clone(), step_key)
                .await
                .map_err(port_error)?;
            Ok(found.map(|c| ReusableCall {
                id: c.id,
                attempt: c.attempt,
                tokens_in: c.tokens_in,
                tokens_out: c.tokens_out,
                cost_pusd: c.cost_pusd,
                response: c.response,
                truncated: c.truncated,
            }))
        })
    }

    fn record(&self, call: CallRecord) -> BoxFuture<'_, PortResult<()>> {
        Box::pin(async move {
            let Some(l) = &self.lease else {
                return Ok(());
            };
            if let Some(m) = &self.metrics {
                m.model_call(&ModelCall {
                    provider: &call.provider,
                    model: &call.model,
                    outcome: match call.outcome {
                        CallOutcome::Ok { .. } => "ok",
                        CallOutcome::Error { .. } => "error",
                        CallOutcome::Cancelled => "cancelled",
                    },
                    tokens_in: call.tokens_in,
                    tokens_out: call.tokens_out,
                    cost_pusd: call.cost_pusd,
                    latency_ms: call.latency_ms,
                });
            }
            let outcome = match call.outcome {
                CallOutcome::Ok { response } => StoreCallOutcome::Ok { response },
                CallOutcome::Error { error } => StoreCallOutcome::Error { error },
                CallOutcome::Cancelled => StoreCallOutcome::Cancelled,
            };
            self.store
                .record_llm_call(NewLlmCall {
                    run_id: l.run_id.clone(),
                    attempt: call.attempt,
                    lease_token: l.token,
                    owner: l.owner.clone(),
                    stage: call.stage.to_string(),
                    iteration: call.iteration,
                    provider: call.provider,
                    model: call.model,
                    step_key: call.step_key,
                    tokens_in: call.tokens_in,
                    tokens_out: call.tokens_out,
                    cost_pusd: call.cost_pusd,
                    latency_ms: call.latency_ms,
                    estimated: call.estimated,
                    truncated: call.truncated,
                    outcome,
                })
                .await
                .map_err(port_error)?;
            Ok(())
        })
    }
}

/// The job's history and cancellation, through its [`JobContext`].
pub struct JobProgress(pub JobContext);

impl Progress for JobProgress {
    fn event(&self, kind: &'static str, details: Value) -> BoxFuture<'_, PortResult<()>> {
        Box::pin(async move {
            self.0.event(kind, details).await.map_err(port_error)?;
            Ok(())
        })
    }

    fn retrieved(
        &self,
        details: Value,
        cited: Vec<(String, String)>,
    ) -> BoxFuture<'_, PortResult<()>> {
        Box::pin(async move {
            self.0
                .event_citing("retrieved", details, cited)
                .await
                .map_err(port_error)?;
            Ok(())
        })
    }

    fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    fn cancelled(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.0.cancelled())
    }
}

#[cfg(test)]
mod tests {
    use super::RequeueDelay;
    use std::time::Duration;

    #[test]
    fn the_requeue_delay_doubles_per_attempt_up_to_its_cap() {
        let d = RequeueDelay {
            base: Duration::from_secs(60),
            max: Duration::from_secs(900),
        };
        let secs: Vec<u64> = (1..=6).map(|a| d.after(a).as_secs()).collect();
        assert_eq!(secs, [60, 120, 240, 480, 900, 900]);
        assert_eq!(d.after(0), Duration::from_secs(60));
        assert_eq!(d.after(u32::MAX), Duration::from_secs(900));
    }
}
