//! HeartbeatActor: on every interval, asks the queue to refresh the leases its workers hold.
//! It holds only an address and never touches the database.

use crate::queue::{Beat, QueueActor};
use actix::prelude::*;
use std::time::Duration;

/// Sends [`Beat`] to the queue every `interval`.
pub struct HeartbeatActor {
    queue: Addr<QueueActor>,
    /// From `heartbeat_interval_s`; tests shorten it.
    interval: Duration,
}

impl HeartbeatActor {
    pub fn new(queue: Addr<QueueActor>, interval: Duration) -> Self {
        HeartbeatActor { queue, interval }
    }
}

impl Actor for HeartbeatActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.interval, |act, _ctx| act.queue.do_send(Beat));
    }
}
