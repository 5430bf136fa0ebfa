//! The actor runtime of procedurewriter: a durable SQLite job queue and the actors that run it.
//!
//! The [`Supervisor`] starts, in dependency order, a [`QueueActor`] (owns dispatch: which
//! worker gets which run), `workers` [`WorkerActor`]s (each runs one job at a time through a
//! [`JobRunner`]), a [`HeartbeatActor`] and a [`ReaperActor`] (periodic, they only send
//! messages). Every state change goes through the [`Store`], the single owner of SQLite.
//!
//! This crate knows nothing of procedures, evidence or HTTP: a job is an opaque
//! `procedure`/`context`/`params` triple handed to whatever [`JobRunner`] the daemon supplies.

pub mod crypto;
pub mod error;
pub mod metrics;
pub mod model;
pub mod runner;
pub mod store;

mod heartbeat;
mod queue;
mod reaper;
mod supervisor;
mod worker;

pub use error::{Error, Result};
pub use heartbeat::HeartbeatActor;
pub use metrics::{QueueMetrics, StoreMetrics};
pub use model::{Event, NewAck, NewRun, Outcome, Run, RunPage, RunStatus};
pub use queue::{Acknowledge, Cancel, Enqueue, QueueActor, Retry};
pub use reaper::ReaperActor;
pub use runner::{Job, JobContext, JobRunner, Lease, CANCEL_GRACE};
pub use store::{Store, Synchronous};
pub use supervisor::{QueueConfig, Shutdown, Stats, StatsReport, Supervisor};
pub use worker::WorkerActor;
