//! The pipeline's one error type. Each variant says whose fault it was, so the daemon can
//! decide whether the run may succeed if tried again.

use crate::ports::PortError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A port failed (the library, the ledger, the run's history): usually the database.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The run's artifacts could not be written (a full disk, a read-only data directory).
    #[error("cannot write the run's artifacts in {dir}: {source}; check the disk and the data directory's permissions")]
    Artifacts {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

impl PipelineError {
    /// Whether the run may succeed if tried again later. A full disk or a database that
    /// refused a write clears up; a bug or a refused request does not.
    pub fn retryable(&self) -> bool {
        match self {
            PipelineError::Port(e) => e.retryable,
            PipelineError::Artifacts { .. } => true,
        }
    }
}
