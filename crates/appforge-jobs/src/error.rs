use crate::{JobId, JobStatus, Transition};

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting or an argument is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A new job or a request is malformed; nothing was written.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// No job with this id is visible to the caller.
    #[error("job {0} not found")]
    NotFound(JobId),
    /// The job is not in a state this transition starts from.
    #[error("job {id} cannot {transition} while {from}")]
    IllegalTransition {
        /// The job.
        id: JobId,
        /// Its current status.
        from: JobStatus,
        /// The transition that was refused.
        transition: Transition,
    },
    /// The caller's lease on a running job is gone: it expired and the job was rescued, or
    /// another worker now holds it. The caller must drop its result.
    #[error("lease on job {id} (attempt {attempt}) was lost")]
    LeaseLost {
        /// The job.
        id: JobId,
        /// The attempt the caller was running.
        attempt: u32,
    },
    /// The database failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The queue or worker pool is shutting down.
    #[error("the queue is shutting down")]
    ShuttingDown,
}

impl Error {
    /// Whether retrying the same call later may succeed (a lost connection, a busy database):
    /// [`appforge_core::db::is_transient`] on the database error.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Self::Database(e) => appforge_core::db::is_transient(e),
            _ => false,
        }
    }

    /// Whether the job does not exist or is not the caller's.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// Whether the caller's lease on a running job was lost.
    #[must_use]
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::LeaseLost { .. })
    }

    /// Whether a transition was refused because of the job's current state.
    #[must_use]
    pub fn is_illegal_transition(&self) -> bool {
        matches!(self, Self::IllegalTransition { .. })
    }
}

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
