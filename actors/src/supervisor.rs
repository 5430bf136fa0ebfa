//! Supervisor: starts the actors in dependency order and stops them in reverse.
//!
//! Start-up order: the store is open and recovery has run before [`Supervisor::start`] is
//! called (so a failure happens before any actor exists); then the queue and its workers,
//! then the heartbeat and reaper, which only need the queue's address.

use crate::heartbeat::HeartbeatActor;
use crate::metrics::QueueMetrics;
use crate::queue::{Drain, Occupancy, Occupied, QueueActor};
use crate::reaper::ReaperActor;
use crate::runner::JobRunner;
use crate::store::Store;
use crate::worker::WorkerActor;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// Drain the queue (see [`QueueActor`]). Replies once every lease is finished or handed back.
/// The heartbeat keeps beating during the grace period (a job still running must not look
/// stale); the periodic actors stop with the actix system.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown {
    /// How long running jobs get to finish before their leases are handed back.
    pub grace: Duration,
}

/// Worker occupancy, for `/health`.
#[derive(Message)]
#[rtype(result = "StatsReport")]
pub struct Stats;

/// What [`Stats`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsReport {
    pub workers: usize,
    pub busy: usize,
    pub idle: usize,
}

/// The queue's settings, as the daemon's configuration gives them.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Jobs run at once.
    pub workers: usize,
    /// How often live leases are refreshed.
    pub heartbeat_interval: Duration,
    /// How often the reaper looks for stale leases.
    pub reaper_interval: Duration,
    /// A lease not refreshed for this long is taken back.
    pub stale_timeout: Duration,
    /// This daemon process's identity, the first half of every lease owner.
    pub instance: String,
}

/// Owns the actor tree.
pub struct Supervisor {
    queue: Addr<QueueActor>,
    /// Kept so the periodic actors live as long as the supervisor.
    _heartbeat: Addr<HeartbeatActor>,
    _reaper: Addr<ReaperActor>,
    workers: usize,
}

impl Supervisor {
    /// Starts the actor tree on the current actix system. Returns the supervisor and the
    /// queue's address (where HTTP sends enqueue, cancel and retry).
    pub fn start(
        cfg: QueueConfig,
        store: Store,
        runner: Arc<dyn JobRunner>,
        metrics: QueueMetrics,
    ) -> (Addr<Supervisor>, Addr<QueueActor>) {
        let n = cfg.workers.max(1);
        let owners: Vec<String> = (0..n).map(|i| format!("{}/w{i}", cfg.instance)).collect();
        let queue = QueueActor::create(|ctx| {
            let me = ctx.address();
            let workers = owners
                .iter()
                .enumerate()
                .map(|(i, owner)| {
                    WorkerActor::new(
                        i,
                        owner.clone(),
                        store.clone(),
                        me.clone(),
                        Arc::clone(&runner),
                        metrics.clone(),
                    )
                    .start()
                })
                .collect();
            QueueActor::new(store.clone(), metrics.clone(), workers, owners.clone())
        });
        let heartbeat = HeartbeatActor::new(queue.clone(), cfg.heartbeat_interval).start();
        let reaper =
            ReaperActor::new(queue.clone(), cfg.reaper_interval, cfg.stale_timeout).start();
        let sup = Supervisor {
            queue: queue.clone(),
            _heartbeat: heartbeat,
            _reaper: reaper,
            workers: n,
        }
        .start();
        (sup, queue)
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

impl Handler<Shutdown> for Supervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        let queue = self.queue.clone();
        Box::pin(
            async move {
                if let Err(e) = queue.send(Drain { grace: msg.grace }).await {
                    tracing::error!(cause = %e, "queue did not drain");
                }
            }
            .into_actor(self),
        )
    }
}

impl Handler<Stats> for Supervisor {
    type Result = ResponseFuture<StatsReport>;

    fn handle(&mut self, _msg: Stats, _ctx: &mut Context<Self>) -> Self::Result {
        let queue = self.queue.clone();
        let workers = self.workers;
        Box::pin(async move {
            let Occupied(busy, idle) = queue.send(Occupancy).await.unwrap_or(Occupied(0, 0));
            StatsReport {
                workers,
                busy,
                idle,
            }
        })
    }
}
