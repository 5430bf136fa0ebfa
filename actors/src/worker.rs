//! WorkerActor: runs one job at a time and records how it ended, fenced by its lease token.
//!
//! The job's future runs as its own task, so a panic inside it fails that run only. A cancel
//! tells the job (which may stop on its own and say why) and drops its future at its next
//! await after [`CANCEL_GRACE`]; the end of the shutdown grace drops it at once.

use crate::metrics::QueueMetrics;
use crate::model::{Outcome, RunStatus};
use crate::queue::{QueueActor, WorkerIdle};
use crate::runner::{Job, JobContext, JobRunner, Lease, CANCEL_GRACE};
use crate::store::{ClaimedRun, Fenced, Store};
use actix::prelude::*;
use std::sync::Arc;
use tokio::sync::watch;

/// Start the claimed run.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RunJob(pub ClaimedRun);

/// Stop the current job because its run was cancelled.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CancelJob {
    pub run_id: String,
}

/// Drop the current job at shutdown and hand its lease (run id, token) to the caller, which
/// releases it back to the queue.
#[derive(Message)]
#[rtype(result = "Option<(String, i64)>")]
pub struct Abandon;

/// Why a job's task was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    Cancel,
    Abandon,
}

struct Current {
    run_id: String,
    token: i64,
    abort: tokio::task::AbortHandle,
    cancelled: watch::Sender<bool>,
    stop: Option<Stop>,
}

/// Runs jobs handed to it by the [`QueueActor`], one at a time.
pub struct WorkerActor {
    /// Index in the queue's worker table.
    idx: usize,
    /// `<instance>/w<idx>`: the lease owner recorded on runs this worker holds.
    owner: String,
    store: Store,
    queue: Addr<QueueActor>,
    runner: Arc<dyn JobRunner>,
    metrics: QueueMetrics,
    /// The job in progress, if any.
    current: Option<Current>,
}

impl WorkerActor {
    pub(crate) fn new(
        idx: usize,
        owner: String,
        store: Store,
        queue: Addr<QueueActor>,
        runner: Arc<dyn JobRunner>,
        metrics: QueueMetrics,
    ) -> Self {
        WorkerActor {
            idx,
            owner,
            store,
            queue,
            runner,
            metrics,
            current: None,
        }
    }
}

impl Actor for WorkerActor {
    type Context = Context<Self>;
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

impl Handler<RunJob> for WorkerActor {
    type Result = ();

    fn handle(&mut self, msg: RunJob, ctx: &mut Context<Self>) {
        let run = msg.0.run;
        let run_id = run.id.clone();
        let token = run.lease_token;
        let (cancelled, cancel_rx) = watch::channel(false);
        let span = tracing::info_span!("job", run_id = %run_id, attempt = run.attempts);
        let job = self.runner.run(
            Job { run },
            JobContext::new(
                cancel_rx,
                self.store.clone(),
                Lease {
                    run_id: run_id.clone(),
                    token,
                    owner: self.owner.clone(),
                },
            ),
        );
        let handle = tokio::task::spawn_local(tracing::Instrument::instrument(job, span));
        self.current = Some(Current {
            run_id: run_id.clone(),
            token,
            abort: handle.abort_handle(),
            cancelled,
            stop: None,
        });
        ctx.spawn(
            handle
                .into_actor(self)
                .then(move |joined, act, _ctx| {
                    let stop = act.current.take().and_then(|c| c.stop);
                    let outcome = match joined {
                        Ok(outcome) => Some(outcome),
                        Err(e) if e.is_panic() => {
                            let msg = panic_message(e.into_panic());
                            tracing::error!(run_id = %run_id, panic = %msg, "job panicked");
                            Some(Outcome::Failed {
                                error: format!("the job panicked: {msg}"),
                                retryable: false,
                            })
                        }
                        // Aborted: a cancel records CANCELLED; an abandon is released by
                        // the queue, which holds the lease list.
                        Err(_) => (stop == Some(Stop::Cancel)).then_some(Outcome::Cancelled),
                    };
                    let store = act.store.clone();
                    let queue = act.queue.clone();
                    let owner = act.owner.clone();
                    let metrics = act.metrics.clone();
                    let idx = act.idx;
                    async move {
                        let mut requeued = false;
                        let mut deferred = false;
                        if let Some(outcome) = outcome {
                            let failed = matches!(outcome, Outcome::Failed { .. } | Outcome::RetryLater { .. });
                            let done = matches!(outcome, Outcome::Done { .. });
                            if let Outcome::Deferred { reason } = &outcome {
                                tracing::warn!(run_id = %run_id, %reason, "the job cannot go on while the database refuses writes; handing the run back without spending its attempt");
                            }
                            let deferring = matches!(outcome, Outcome::Deferred { .. });
                            match finish_with_retry(&store, &run_id, token, &owner, outcome).await {
                                Ok(Fenced::Applied(status)) => {
                                    requeued = status == RunStatus::Queued;
                                    deferred = deferring && requeued;
                                    if deferred {
                                        metrics.deferrals.inc();
                                    }
                                    // Counted by what was recorded: a pending cancel
                                    // turns any outcome into CANCELLED.
                                    if done && status == RunStatus::Done {
                                        metrics.completions.inc();
                                    }
                                    if failed && status != RunStatus::Cancelled {
                                        metrics.failures.inc();
                                    }
                                }
                                Ok(Fenced::Refused { status, token: current }) => {
                                    metrics.late_results_refused.inc();
                                    tracing::warn!(
                                        run_id = %run_id, lease_token = token, current_token = current,
                                        status = %status, "late result refused: the lease was taken over"
                                    );
                                }
                                Err(e) => {
                                    // Not a database outage (those are retried above) but a
                                    // bug: the lease stays RUNNING and unrefreshed, so the
                                    // reaper (or the next start) re-queues the run.
                                    tracing::error!(run_id = %run_id, cause = %e, "cannot record the job's outcome; the run will be retried");
                                }
                            }
                        }
                        queue.do_send(WorkerIdle {
                            worker: idx,
                            requeued,
                            deferred,
                        });
                    }
                    .into_actor(act)
                }),
        );
    }
}

/// How far apart at most a worker retries recording an outcome the database could not take
/// (a full disk, the size limit, a read-only file).
const FINISH_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Records an outcome, retrying with backoff for as long as the database is unavailable: the
/// result, perhaps minutes of work and money, is kept until there is room for it. The worker
/// stays busy meanwhile and its lease keeps being refreshed (when the database takes that);
/// if the lease is taken over anyway, the late result is refused like any other.
async fn finish_with_retry(
    store: &Store,
    run_id: &str,
    token: i64,
    owner: &str,
    outcome: Outcome,
) -> crate::Result<Fenced> {
    let mut delay = std::time::Duration::from_millis(100);
    let mut attempt: u32 = 0;
    loop {
        match store
            .finish(
                run_id.to_string(),
                token,
                owner.to_string(),
                outcome.clone(),
            )
            .await
        {
            Err(crate::Error::Unavailable(cause)) => {
                attempt += 1;
                tracing::warn!(run_id, %cause, attempt, "cannot record the job's outcome yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(FINISH_BACKOFF_MAX);
            }
            other => return other,
        }
    }
}

impl Handler<CancelJob> for WorkerActor {
    type Result = ();

    fn handle(&mut self, msg: CancelJob, ctx: &mut Context<Self>) {
        if let Some(cur) = self.current.as_mut() {
            if cur.run_id == msg.run_id && cur.stop.is_none() {
                cur.stop = Some(Stop::Cancel);
                cur.cancelled.send_replace(true);
                let token = cur.token;
                // A job that ignores the request is dropped after the grace.
                ctx.run_later(CANCEL_GRACE, move |act, _| {
                    if let Some(cur) = act.current.as_ref() {
                        if cur.token == token && cur.run_id == msg.run_id {
                            cur.abort.abort();
                        }
                    }
                });
            }
        }
    }
}

impl Handler<Abandon> for WorkerActor {
    type Result = Option<(String, i64)>;

    fn handle(&mut self, _msg: Abandon, _ctx: &mut Context<Self>) -> Self::Result {
        let cur = self.current.as_mut()?;
        if cur.stop != Some(Stop::Cancel) {
            cur.stop = Some(Stop::Abandon);
        }
        cur.cancelled.send_replace(true);
        cur.abort.abort();
        Some((cur.run_id.clone(), cur.token))
    }
}
