//! ReaperActor: on every interval, asks the queue to take back leases whose heartbeat is older
//! than the stale timeout. It holds only an address and never touches the database.

use crate::queue::{QueueActor, Reap};
use actix::prelude::*;
use std::time::Duration;

/// Sends [`Reap`] to the queue every `interval`.
pub struct ReaperActor {
    queue: Addr<QueueActor>,
    /// How often to look for stale leases.
    interval: Duration,
    /// A lease without a heartbeat for this long is stale (`stale_timeout_s`).
    stale_after: Duration,
}

impl ReaperActor {
    pub fn new(queue: Addr<QueueActor>, interval: Duration, stale_after: Duration) -> Self {
        ReaperActor {
            queue,
            interval,
            stale_after,
        }
    }
}

impl Actor for ReaperActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.interval, |act, _ctx| {
            act.queue.do_send(Reap {
                stale_after: act.stale_after,
            })
        });
    }
}
