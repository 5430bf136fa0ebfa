//! The one error type of the actor runtime and its store.
//!
//! Each variant is a category a caller can act on (the HTTP layer maps them to status codes in
//! one place); the message is lowercase and says what to do next where there is something to do.

use crate::model::RunStatus;

/// What went wrong in the queue, its store or an actor conversation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No run has this id.
    #[error("run {0} not found")]
    NotFound(String),
    /// No source has this id.
    #[error("source {0} not found")]
    SourceNotFound(String),
    /// The source was retired: it is kept as it is for the runs that used it.
    #[error(
        "source {id} was retired ({reason}); it is kept unchanged for the runs that used it \
         and is never retrieved again; add a corrected document as a new source"
    )]
    SourceRetired { id: String, reason: String },
    /// The requested transition is not allowed from the run's current status.
    #[error("cannot {action} run {run_id}: it is {status}")]
    Conflict {
        run_id: String,
        action: &'static str,
        status: RunStatus,
    },
    /// The same idempotency key was used before for a different request.
    #[error("idempotency key {0:?} was already used for a different request; use a new key")]
    IdempotencyMismatch(String),
    /// An acknowledgement does not cover everything the run is waiting on.
    #[error(
        "the acknowledgement does not cover {uncovered:?}; list every missing item in `tiers`"
    )]
    AckIncomplete { uncovered: Vec<String> },
    /// The caller supplied something the store cannot accept.
    #[error("{0}")]
    Invalid(String),
    /// The daemon is draining: it takes no new work.
    #[error(
        "the daemon is shutting down and accepts no new work; retry against the restarted daemon"
    )]
    ShuttingDown,
    /// The database could not be read or written (full disk, read-only file, I/O error).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The schema or the database file is not what this binary can work with.
    #[error("database schema: {0}")]
    Schema(String),
    /// The configured secret key is not the one the stored secrets were encrypted with.
    #[error(
        "the secret key (id {configured}) is not the key this database's secrets were encrypted \
         with (id {recorded}); start with the right key, or finish a rotation with its new key"
    )]
    KeyMismatch {
        recorded: String,
        configured: String,
    },
    /// A stored secret could not be decrypted while rotating.
    #[error("{0}")]
    Secret(#[from] crate::crypto::OpenError),
    /// A bug: an invariant did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<actix::MailboxError> for Error {
    fn from(err: actix::MailboxError) -> Self {
        Error::Internal(format!("actor mailbox: {err}"))
    }
}

/// Result alias for the actor runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;
