//! QueueActor: pushes queued runs to idle workers and routes run-level commands.
//!
//! Claims are pushed, not polled: an enqueue, a retry, a re-queue by the reaper or a worker
//! becoming idle triggers a dispatch, which claims as many runs as there are idle workers in
//! one store call. At most one claim is in flight, so no worker is handed two runs.
//!
//! One exception waits on a timer rather than an event: a run re-queued with a `not_before`
//! (its provider was down) is claimed when that time comes. Each claim that leaves workers idle
//! also reads the earliest such time, and one timer is kept to it (see `wake_at`): nothing
//! polls, and a restart finds the times in the database at its first claim.
//!
//! The in-memory tables here (idle workers, which worker holds which lease) are derived
//! state: the runs table stays the authority, and a restart rebuilds everything from it.

use crate::error::{Error, Result};
use crate::metrics::QueueMetrics;
use crate::model::{now_ms, NewAck, NewRun, Run, RunStatus};
use crate::store::{AckCheck, Store};
use crate::worker::{Abandon, CancelJob, RunJob, WorkerActor};
use actix::prelude::*;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::oneshot;

/// After a failed claim (database unavailable), wait this long before claiming again.
const CLAIM_RETRY: Duration = Duration::from_millis(500);

/// After a run is deferred (its job met a database refusing writes), claims wait this long
/// before the next one, doubling while deferrals keep coming, up to [`DEFER_BACKOFF_MAX`]:
/// a database that takes the small writes of a claim but refuses a job's must not turn the
/// queue into a claim-fail-requeue loop. The first outcome that is not a deferral resets it.
const DEFER_BACKOFF_MIN: Duration = Duration::from_secs(1);
const DEFER_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Enqueue a run; replies with the run and whether it was created now (`false`: an
/// idempotent replay).
#[derive(Message)]
#[rtype(result = "Result<(Run, bool)>")]
pub struct Enqueue(pub NewRun);

/// Cancel a run: at once, or, if it is running, by telling its job; either way it ends
/// CANCELLED (a running run's outcome, whatever it is, is recorded as CANCELLED).
#[derive(Message)]
#[rtype(result = "Result<Run>")]
pub struct Cancel {
    pub run_id: String,
}

/// Re-queue a FAILED or CANCELLED run with a fresh attempt budget.
#[derive(Message)]
#[rtype(result = "Result<Run>")]
pub struct Retry {
    pub run_id: String,
}

/// Acknowledge a NEEDS_ACK run's gaps; it returns to the queue and resumes.
#[derive(Message)]
#[rtype(result = "Result<Run>")]
pub struct Acknowledge {
    pub run_id: String,
    pub ack: NewAck,
    /// The runner's coverage test (see [`AckCheck`]).
    pub uncovered: AckCheck,
}

/// A worker finished its job (its outcome is already committed) and can take another.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct WorkerIdle {
    pub worker: usize,
    /// The outcome put the run back in the queue (a retryable failure, a deferral): there is
    /// work.
    pub requeued: bool,
    /// The run was deferred (the database refused its job's writes): wait before claiming.
    pub deferred: bool,
}

/// Refresh the heartbeat of every lease this daemon's workers hold (sent by the
/// HeartbeatActor).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Beat;

/// Take back leases whose heartbeat is older than the stale timeout (sent by the
/// ReaperActor).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Reap {
    pub stale_after: Duration,
}

/// Stop claiming; give running jobs `grace` to finish, then hand their leases back.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Drain {
    pub grace: Duration,
}

/// How many workers are busy and idle.
#[derive(Message)]
#[rtype(result = "Occupied")]
pub(crate) struct Occupancy;

/// What [`Occupancy`] reports: (busy, idle) workers.
#[derive(MessageResponse)]
pub(crate) struct Occupied(pub usize, pub usize);

/// Dispatches runs to workers.
pub struct QueueActor {
    store: Store,
    metrics: QueueMetrics,
    /// Every worker, by index.
    workers: Vec<Addr<WorkerActor>>,
    /// Lease owner names, by worker index.
    owners: Vec<String>,
    /// Workers with nothing to do.
    idle: Vec<usize>,
    /// Worker index → the (run id, lease token) it holds.
    busy: HashMap<usize, (String, i64)>,
    /// False only after a claim found fewer runs than idle workers and nothing was enqueued
    /// since: saves a claim round-trip per idle event on an empty queue.
    maybe_work: bool,
    /// A claim is in flight.
    claiming: bool,
    /// Work arrived while a claim was in flight: do not conclude the queue is empty.
    recheck: bool,
    /// Claims wait for the database after a deferral (see [`DEFER_BACKOFF_MIN`]).
    paused: bool,
    /// The next pause after a deferral.
    defer_backoff: Duration,
    /// The timer to the earliest run waiting for its `not_before` (Unix ms), if one is set.
    wake: Option<(i64, SpawnHandle)>,
    /// Shutting down: no more claims.
    draining: bool,
    /// Runs claimed after the drain began are being handed back.
    releasing: bool,
    /// Runs cancelled while RUNNING whose claim had not reached us yet: their worker is told
    /// as soon as it gets them.
    pending_cancels: std::collections::HashSet<String>,
    /// Told when the last busy worker goes idle during a drain.
    drained: Vec<oneshot::Sender<()>>,
}

impl QueueActor {
    pub(crate) fn new(
        store: Store,
        metrics: QueueMetrics,
        workers: Vec<Addr<WorkerActor>>,
        owners: Vec<String>,
    ) -> Self {
        let idle = (0..workers.len()).rev().collect();
        QueueActor {
            store,
            metrics,
            workers,
            owners,
            idle,
            busy: HashMap::new(),
            // Recovery may have re-queued runs before we started.
            maybe_work: true,
            claiming: false,
            recheck: false,
            paused: false,
            defer_backoff: DEFER_BACKOFF_MIN,
            wake: None,
            draining: false,
            releasing: false,
            pending_cancels: Default::default(),
            drained: Vec::new(),
        }
    }

    fn work_arrived(&mut self, ctx: &mut Context<Self>) {
        self.maybe_work = true;
        if self.claiming {
            self.recheck = true;
        }
        self.dispatch(ctx);
    }

    /// During a drain: tells the waiters once no worker holds a lease and no claim or
    /// hand-back is in flight.
    fn notify_if_drained(&mut self) {
        if self.draining && self.busy.is_empty() && !self.claiming && !self.releasing {
            for tx in self.drained.drain(..) {
                let _ = tx.send(());
            }
        }
    }

    /// After a deferral: no claims for the current backoff, which doubles for the next one.
    /// Deferrals during a pause do not extend it (several jobs meet the same outage).
    fn pause_claims(&mut self, ctx: &mut Context<Self>) {
        if self.paused {
            return;
        }
        self.paused = true;
        let delay = self.defer_backoff;
        self.defer_backoff = (delay * 2).min(DEFER_BACKOFF_MAX);
        tracing::warn!(
            delay_ms = delay.as_millis() as u64,
            "a run was deferred while the database refuses writes; claiming again after a pause"
        );
        ctx.run_later(delay, |act, ctx| {
            act.paused = false;
            act.dispatch(ctx);
        });
    }

    /// Keeps one timer, to the earliest time a waiting run falls due: when it fires, the
    /// queue claims as if work had arrived. A later time than the timer's changes nothing (the
    /// claim at the earlier one reads it again).
    fn wake_at(&mut self, due: i64, ctx: &mut Context<Self>) {
        if let Some((at, handle)) = self.wake {
            if at <= due {
                return;
            }
            ctx.cancel_future(handle);
        }
        let wait = Duration::from_millis(due.saturating_sub(now_ms()).max(0) as u64);
        let handle = ctx.run_later(wait, |act, ctx| {
            act.wake = None;
            act.work_arrived(ctx);
        });
        self.wake = Some((due, handle));
    }

    /// Claims runs for all idle workers in one store call and hands them out.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        if self.draining || self.claiming || self.paused || !self.maybe_work || self.idle.is_empty()
        {
            return;
        }
        self.claiming = true;
        self.recheck = false;
        let idle = std::mem::take(&mut self.idle);
        let owners = idle.iter().map(|&i| self.owners[i].clone()).collect();
        let store = self.store.clone();
        ctx.spawn(
            async move { store.claim_due(owners).await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    act.claiming = false;
                    let requested = idle.len();
                    let mut idle = idle;
                    match res {
                        // The drain began while this claim was in flight: hand the runs
                        // straight back rather than start jobs the shutdown would abandon.
                        Ok(claim) if act.draining => {
                            let claimed = claim.runs;
                            act.idle.extend(idle);
                            if claimed.is_empty() {
                                act.notify_if_drained();
                                return;
                            }
                            let leases: Vec<(String, i64)> = claimed
                                .into_iter()
                                .map(|c| (c.run.id, c.run.lease_token))
                                .collect();
                            act.releasing = true;
                            let store = act.store.clone();
                            ctx.spawn(
                                async move {
                                    if let Err(e) = store.release(leases, "shutdown").await {
                                        tracing::error!(cause = %e, "cannot hand claimed runs back; the next start recovers them");
                                    }
                                }
                                .into_actor(act)
                                .map(|(), act, _ctx| {
                                    act.releasing = false;
                                    act.notify_if_drained();
                                }),
                            );
                        }
                        Ok(claim) => {
                            if let Some(due) = claim.next_due {
                                act.wake_at(due, ctx);
                            }
                            let claimed = claim.runs;
                            let n = claimed.len();
                            let now = now_ms();
                            for (c, w) in claimed.into_iter().zip(idle.drain(..n)) {
                                act.metrics.claims.inc();
                                act.metrics
                                    .enqueue_to_claim
                                    .observe((now - c.queued_at).max(0) as f64 / 1000.0);
                                act.busy.insert(w, (c.run.id.clone(), c.run.lease_token));
                                let cancel = act.pending_cancels.remove(&c.run.id);
                                let run_id = c.run.id.clone();
                                act.workers[w].do_send(RunJob(c));
                                if cancel {
                                    act.workers[w].do_send(CancelJob { run_id });
                                }
                            }
                            act.idle.extend(idle);
                            if n < requested && !act.recheck {
                                act.maybe_work = false;
                            }
                            act.dispatch(ctx);
                        }
                        Err(e) => {
                            tracing::error!(cause = %e, "claim failed; retrying shortly");
                            act.idle.extend(idle);
                            act.notify_if_drained();
                            ctx.run_later(CLAIM_RETRY, |act, ctx| act.dispatch(ctx));
                        }
                    }
                }),
        );
    }
}

impl Actor for QueueActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.dispatch(ctx);
    }
}

impl Handler<Enqueue> for QueueActor {
    type Result = ResponseActFuture<Self, Result<(Run, bool)>>;

    fn handle(&mut self, msg: Enqueue, _ctx: &mut Context<Self>) -> Self::Result {
        if self.draining {
            return Box::pin(fut::ready(Err(Error::ShuttingDown)));
        }
        let store = self.store.clone();
        Box::pin(
            async move { store.enqueue(msg.0).await }
                .into_actor(self)
                .map(|res, act, ctx| {
                    if let Ok((_, true)) = &res {
                        act.work_arrived(ctx);
                    }
                    res
                }),
        )
    }
}

impl Handler<Cancel> for QueueActor {
    type Result = ResponseActFuture<Self, Result<Run>>;

    fn handle(&mut self, msg: Cancel, _ctx: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        Box::pin(
            async move { store.cancel(msg.run_id).await }
                .into_actor(self)
                .map(|res, act, _ctx| {
                    if let Ok(run) = &res {
                        if run.status == RunStatus::Running {
                            let holder = act
                                .busy
                                .iter()
                                .find(|(_, (id, _))| *id == run.id)
                                .map(|(w, _)| *w);
                            match holder {
                                Some(w) => act.workers[w].do_send(CancelJob {
                                    run_id: run.id.clone(),
                                }),
                                // Claimed, but the claim's reply is still on its way here.
                                None => {
                                    act.pending_cancels.insert(run.id.clone());
                                }
                            }
                        }
                    }
                    res
                }),
        )
    }
}

impl Handler<Retry> for QueueActor {
    type Result = ResponseActFuture<Self, Result<Run>>;

    fn handle(&mut self, msg: Retry, _ctx: &mut Context<Self>) -> Self::Result {
        if self.draining {
            return Box::pin(fut::ready(Err(Error::ShuttingDown)));
        }
        let store = self.store.clone();
        Box::pin(
            async move { store.retry(msg.run_id).await }
                .into_actor(self)
                .map(|res, act, ctx| {
                    if res.is_ok() {
                        act.work_arrived(ctx);
                    }
                    res
                }),
        )
    }
}

impl Handler<Acknowledge> for QueueActor {
    type Result = ResponseActFuture<Self, Result<Run>>;

    fn handle(&mut self, msg: Acknowledge, _ctx: &mut Context<Self>) -> Self::Result {
        if self.draining {
            return Box::pin(fut::ready(Err(Error::ShuttingDown)));
        }
        let store = self.store.clone();
        Box::pin(
            async move { store.ack(msg.run_id, msg.ack, msg.uncovered).await }
                .into_actor(self)
                .map(|res, act, ctx| {
                    if res.is_ok() {
                        act.work_arrived(ctx);
                    }
                    res
                }),
        )
    }
}

impl Handler<WorkerIdle> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: WorkerIdle, ctx: &mut Context<Self>) {
        self.busy.remove(&msg.worker);
        self.idle.push(msg.worker);
        if msg.requeued {
            self.maybe_work = true;
            if self.claiming {
                self.recheck = true;
            }
        }
        if msg.deferred {
            self.pause_claims(ctx);
        } else {
            self.defer_backoff = DEFER_BACKOFF_MIN;
        }
        if self.draining {
            self.notify_if_drained();
            return;
        }
        self.dispatch(ctx);
    }
}

impl Handler<Beat> for QueueActor {
    type Result = ();

    fn handle(&mut self, _msg: Beat, ctx: &mut Context<Self>) {
        let leases: Vec<(String, i64)> = self.busy.values().cloned().collect();
        if leases.is_empty() {
            return;
        }
        let store = self.store.clone();
        ctx.spawn(
            async move {
                if let Err(e) = store.heartbeat(leases).await {
                    tracing::error!(cause = %e, "heartbeat failed");
                }
            }
            .into_actor(self),
        );
    }
}

impl Handler<Reap> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: Reap, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let stale_before = now_ms() - msg.stale_after.as_millis() as i64;
        ctx.spawn(async move { store.reap(stale_before).await }.into_actor(self).map(
            |res, act, ctx| match res {
                Ok(reaped) if !reaped.is_empty() => {
                    act.metrics.reaps.inc_by(reaped.len() as u64);
                    for run in &reaped {
                        act.pending_cancels.remove(&run.id);
                        tracing::warn!(run_id = %run.id, status = %run.status, "stale lease reaped");
                    }
                    act.work_arrived(ctx);
                }
                Ok(_) => {}
                Err(e) => tracing::error!(cause = %e, "reap failed"),
            },
        ));
    }
}

impl Handler<Drain> for QueueActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Drain, _ctx: &mut Context<Self>) -> Self::Result {
        self.draining = true;
        let (tx, rx) = oneshot::channel();
        self.drained.push(tx);
        self.notify_if_drained();
        let grace = msg.grace;
        Box::pin(
            async move {
                if tokio::time::timeout(grace, rx).await.is_err() {
                    tracing::warn!(grace_s = grace.as_secs_f64(), "shutdown grace over; handing leases back");
                }
            }
            .into_actor(self)
            .then(|(), act, _ctx| {
                let holders: Vec<Addr<WorkerActor>> =
                    act.busy.keys().map(|&w| act.workers[w].clone()).collect();
                let store = act.store.clone();
                async move {
                    let mut leases = Vec::new();
                    for w in holders {
                        if let Ok(Some(lease)) = w.send(Abandon).await {
                            leases.push(lease);
                        }
                    }
                    if !leases.is_empty() {
                        match store.release(leases, "shutdown").await {
                            Ok(n) => tracing::info!(released = n, "leases handed back to the queue"),
                            Err(e) => tracing::error!(cause = %e, "cannot hand leases back; the next start recovers them"),
                        }
                    }
                }
                .into_actor(act)
            }),
        )
    }
}

impl Handler<Occupancy> for QueueActor {
    type Result = Occupied;

    fn handle(&mut self, _msg: Occupancy, _ctx: &mut Context<Self>) -> Self::Result {
        Occupied(self.busy.len(), self.idle.len())
    }
}
