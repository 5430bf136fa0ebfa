//! The data the queue speaks in: run statuses, run rows, events and job outcomes.
//!
//! These types carry no behaviour beyond (de)serialisation and status predicates; the store
//! decides transitions and the actors decide when to ask for them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The lifecycle status of a run. `DONE`, `FAILED` and `CANCELLED` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Queued,
    Running,
    NeedsAck,
    Done,
    Failed,
    Cancelled,
}

impl RunStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::NeedsAck,
        RunStatus::Done,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// The spelling stored in SQLite and shown to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "QUEUED",
            RunStatus::Running => "RUNNING",
            RunStatus::NeedsAck => "NEEDS_ACK",
            RunStatus::Done => "DONE",
            RunStatus::Failed => "FAILED",
            RunStatus::Cancelled => "CANCELLED",
        }
    }

    /// Parses the stored spelling (exact, upper case).
    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A final status: nothing happens to the run unless someone retries it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Done | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request to enqueue a run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// What to write: the procedure title.
    pub procedure: String,
    /// Free text that narrows the procedure (department, setting).
    pub context: String,
    /// Per-run options for the job runner, a JSON object the queue does not interpret.
    pub params: serde_json::Value,
    /// Higher runs are claimed first.
    pub priority: i64,
    /// A client-chosen key: enqueueing twice with it yields the same run.
    pub idempotency_key: Option<String>,
    /// The attempt budget of this run.
    pub max_attempts: u32,
}

/// A run as stored: the single source of truth about one job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    #[serde(rename = "run_id")]
    pub id: String,
    /// Position in the insertion order; the pagination cursor.
    #[serde(skip)]
    pub seq: i64,
    pub procedure: String,
    pub context: String,
    pub params: serde_json::Value,
    pub priority: i64,
    pub status: RunStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub lease_owner: Option<String>,
    pub lease_token: i64,
    #[serde(serialize_with = "time::opt")]
    pub locked_at: Option<i64>,
    #[serde(serialize_with = "time::opt")]
    pub heartbeat_at: Option<i64>,
    pub cancel_requested: bool,
    pub error: Option<String>,
    pub result: Option<serde_json::Value>,
    /// Evidence-gap details while (or after) the run waited for acknowledgement.
    pub ack_required: Option<serde_json::Value>,
    pub ack: Option<Ack>,
    pub idempotency_key: Option<String>,
    #[serde(serialize_with = "time::req")]
    pub created_at: i64,
    #[serde(serialize_with = "time::req")]
    pub updated_at: i64,
    #[serde(serialize_with = "time::opt")]
    pub started_at: Option<i64>,
    #[serde(serialize_with = "time::opt")]
    pub finished_at: Option<i64>,
    /// What the run's language-model calls cost, over all its attempts (pico-USD; shown in USD).
    #[serde(rename = "cost_usd", serialize_with = "money::usd")]
    pub cost_pusd: i64,
    /// Language-model calls made for the run, failed ones included.
    pub llm_calls: u64,
    /// Tokens the provider reported, in and out, over those calls.
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// A QUEUED run that waits is not claimed before this time (a provider that was down:
    /// see [`Outcome::RetryLater`]); None for a run that may be claimed at once.
    #[serde(serialize_with = "time::opt")]
    pub not_before: Option<i64>,
}

/// Who acknowledged an evidence gap, when, why and for which tiers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ack {
    pub acknowledged_by: String,
    pub note: String,
    pub tiers: serde_json::Value,
    #[serde(serialize_with = "time::req")]
    pub at: i64,
}

/// An acknowledgement as a person gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAck {
    pub acknowledged_by: String,
    pub note: String,
    /// What is acknowledged; must cover every item in the run's `ack_required.missing_tiers`.
    pub tiers: Vec<String>,
}

/// One row of the append-only event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Monotonic across all runs: the SSE id and the replay point.
    pub id: i64,
    pub run_id: String,
    #[serde(serialize_with = "time::req")]
    pub at: i64,
    pub kind: String,
    /// The run's status after this event.
    pub status: RunStatus,
    pub actor: String,
    pub details: serde_json::Value,
}

/// A page of runs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunPage {
    pub runs: Vec<Run>,
    /// Pass as `cursor` to get the next (older) page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// How a job attempt ended, as the runner reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The job finished; `result` is stored on the run.
    Done { result: serde_json::Value },
    /// The job failed. A `retryable` failure is retried while attempts remain.
    Failed { error: String, retryable: bool },
    /// The job needs a person to acknowledge something (an evidence gap) before it resumes.
    NeedsAck { details: serde_json::Value },
    /// The job observed a cancel request and stopped.
    Cancelled,
    /// The job could not go on for a reason outside the run — the database refused a write
    /// (a full disk, the size limit) — and should run again later. Not an attempt: the run goes
    /// back to the queue with the attempt refunded, and the queue waits before claiming again.
    /// `reason` says what failed, for the run's history.
    Deferred { reason: String },
    /// The job failed for a reason that may clear up with time but not at once (a model
    /// server down through the whole retry window). Like a retryable failure it spends the
    /// attempt; while attempts remain the run goes back to the queue, and is not claimed again
    /// before `delay` has passed (its `not_before`, kept in the database).
    RetryLater {
        error: String,
        delay: std::time::Duration,
    },
}

impl Outcome {
    /// How a job ends when one of its store calls failed: waiting for the database
    /// ([`Error::Unavailable`](crate::Error::Unavailable)) is a deferral, anything else a bug
    /// that trying again will not fix.
    pub fn of_store_error(err: &crate::Error) -> Outcome {
        match err {
            crate::Error::Unavailable(_) => Outcome::Deferred {
                reason: err.to_string(),
            },
            _ => Outcome::Failed {
                error: err.to_string(),
                retryable: false,
            },
        }
    }
}

/// Money. Amounts are integer pico-USD (1e-12 USD) so that sums and the cost cap compare
/// exactly; clients see USD.
pub mod money {
    use serde::Serializer;

    /// Pico-USD in one USD.
    pub const PICO_PER_USD: i64 = 1_000_000_000_000;

    /// Pico-USD as USD, for display.
    pub fn to_usd(pico: i64) -> f64 {
        pico as f64 / PICO_PER_USD as f64
    }

    /// USD as pico-USD, rounded to the nearest; `None` if negative, not finite or too large.
    pub fn from_usd(usd: f64) -> Option<i64> {
        let p = (usd * PICO_PER_USD as f64).round();
        (usd.is_finite() && usd >= 0.0 && p < i64::MAX as f64 / 2.0).then_some(p as i64)
    }

    pub fn usd<S: Serializer>(pico: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(to_usd(*pico))
    }
}

/// Unix-millisecond timestamps rendered as RFC 3339 for clients.
pub mod time {
    use serde::Serializer;
    use std::time::{Duration, UNIX_EPOCH};

    pub fn rfc3339(ms: i64) -> String {
        let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
        humantime::format_rfc3339_millis(t).to_string()
    }

    pub fn req<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*ms))
    }

    pub fn opt<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => s.serialize_str(&rfc3339(*ms)),
            None => s.serialize_none(),
        }
    }
}

/// Milliseconds since the Unix epoch, the unit of every stored timestamp.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
