//! The seam between the queue and the work: a [`JobRunner`] turns a claimed run into an
//! [`Outcome`]. The queue supplies the run and a cancellation flag; it never looks inside.

use crate::model::{Outcome, Run};
use crate::store::Store;
use futures_util::future::LocalBoxFuture;
use std::sync::Arc;
use tokio::sync::watch;

/// A claimed run, as handed to the runner.
#[derive(Debug, Clone)]
pub struct Job {
    /// The run as claimed: `attempts` is this attempt's number, `lease_token` its fence.
    pub run: Run,
}

/// The lease a job runs under: which run, and the fence it writes with. Whatever a job
/// records under it goes through the store's fenced calls (`job_event`, `record_llm_call`),
/// which take these three values; the lease itself carries no store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub run_id: String,
    /// The claim's fencing token.
    pub token: i64,
    /// `<instance>/w<n>`, the worker holding the lease.
    pub owner: String,
}

/// What a running job can ask of the runtime.
#[derive(Clone)]
pub struct JobContext {
    /// Becomes `true` when a cancel was requested. The worker waits [`CANCEL_GRACE`] for the
    /// job to stop on its own (recording why) before dropping its future.
    cancelled: watch::Receiver<bool>,
    /// The job's lease (None outside the queue).
    lease: Option<Lease>,
    /// Where progress events go, under the lease.
    store: Option<Store>,
    /// Outside the worker nobody cancels: this sender only keeps `cancelled` open.
    _never: Option<Arc<watch::Sender<bool>>>,
}

/// How long a cancelled job may take to wind down (record an in-flight call, say why it
/// stopped) before its future is dropped at its next await.
pub const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("run_id", &self.lease.as_ref().map(|l| &l.run_id))
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl JobContext {
    pub(crate) fn new(cancelled: watch::Receiver<bool>, store: Store, lease: Lease) -> Self {
        JobContext {
            cancelled,
            lease: Some(lease),
            store: Some(store),
            _never: None,
        }
    }

    /// A context that is never cancelled and records no events, for running a job outside the
    /// queue (benchmarks, tools).
    pub fn detached() -> Self {
        let (tx, rx) = watch::channel(false);
        JobContext {
            cancelled: rx,
            lease: None,
            store: None,
            _never: Some(Arc::new(tx)),
        }
    }

    /// A context that records under `lease` and is never cancelled, for driving a runner on a
    /// claimed run outside the worker (benchmarks, tools).
    pub fn leased(store: Store, lease: Lease) -> Self {
        let (tx, rx) = watch::channel(false);
        JobContext {
            cancelled: rx,
            lease: Some(lease),
            store: Some(store),
            _never: Some(Arc::new(tx)),
        }
    }

    /// The job's lease (None outside the queue).
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Appends a progress event to the run's history (a pipeline stage finishing, say), if
    /// the job still holds its lease. Returns whether it was recorded.
    pub async fn event(&self, kind: &str, details: serde_json::Value) -> crate::Result<bool> {
        self.event_citing(kind, details, Vec::new()).await
    }

    /// [`JobContext::event`], recording with it that the run used these library sources (id,
    /// the tier it judged each by): a source a run used is retired, never erased.
    pub async fn event_citing(
        &self,
        kind: &str,
        details: serde_json::Value,
        cited: Vec<(String, String)>,
    ) -> crate::Result<bool> {
        match (&self.lease, &self.store) {
            (Some(l), Some(store)) => {
                store
                    .job_event_citing(
                        l.run_id.clone(),
                        l.token,
                        l.owner.clone(),
                        kind.to_string(),
                        details,
                        cited,
                    )
                    .await
            }
            _ => Ok(false),
        }
    }

    /// Whether a cancel of this run was requested.
    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// Resolves when a cancel of this run is requested (never, if none is).
    pub async fn cancelled(&self) {
        let mut rx = self.cancelled.clone();
        if rx.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs one job attempt. Implementations must be deterministic about side effects they make
/// outside the store: execution is at-least-once (a crash re-runs the attempt).
///
/// The future runs on the actor system's thread, which also serves HTTP: CPU-heavy or blocking
/// work belongs on a blocking pool (the pipeline's `blocking::run`). A panic inside it fails
/// this run only.
pub trait JobRunner: Send + Sync + 'static {
    fn run(&self, job: Job, ctx: JobContext) -> LocalBoxFuture<'static, Outcome>;
}
