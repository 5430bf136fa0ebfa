//! The seam between the queue and the work: a [`JobRunner`] turns a claimed run into an
//! [`Outcome`]. The queue supplies the run and a cancellation flag; it never looks inside.

use crate::model::{Outcome, Run};
use crate::store::Store;
use futures_util::future::LocalBoxFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A claimed run, as handed to the runner.
#[derive(Debug, Clone)]
pub struct Job {
    /// The run as claimed: `attempts` is this attempt's number, `lease_token` its fence.
    pub run: Run,
}

/// What a running job can ask of the runtime.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// Set when a cancel was requested. The job's future is also dropped at its next await,
    /// so only long synchronous sections (inside `spawn_blocking`) need to poll this.
    cancelled: Arc<AtomicBool>,
    /// Where progress events go, under the job's lease (None outside the queue).
    lease: Option<(Store, String, i64, String)>,
}

impl JobContext {
    pub(crate) fn new(
        cancelled: Arc<AtomicBool>,
        store: Store,
        run_id: String,
        token: i64,
        owner: String,
    ) -> Self {
        JobContext {
            cancelled,
            lease: Some((store, run_id, token, owner)),
        }
    }

    /// A context that is never cancelled and records no events, for running a job outside the
    /// queue (benchmarks, tools).
    pub fn detached() -> Self {
        JobContext {
            cancelled: Arc::new(AtomicBool::new(false)),
            lease: None,
        }
    }

    /// Appends a progress event to the run's history (a pipeline stage finishing, say), if
    /// the job still holds its lease. Returns whether it was recorded.
    pub async fn event(&self, kind: &str, details: serde_json::Value) -> crate::Result<bool> {
        match &self.lease {
            Some((store, run_id, token, owner)) => {
                store
                    .job_event(
                        run_id.clone(),
                        *token,
                        owner.clone(),
                        kind.to_string(),
                        details,
                    )
                    .await
            }
            None => Ok(false),
        }
    }

    /// Whether a cancel of this run was requested.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

/// Runs one job attempt. Implementations must be deterministic about side effects they make
/// outside the store: execution is at-least-once (a crash re-runs the attempt).
///
/// The future runs on the actor system's thread; CPU-heavy work belongs in
/// `tokio::task::spawn_blocking`. A panic inside it fails this run only.
pub trait JobRunner: Send + Sync + 'static {
    fn run(&self, job: Job, ctx: JobContext) -> LocalBoxFuture<'static, Outcome>;
}
