use crate::plan::PlanId;
use crate::reservation::{ReservationId, ReservationState};

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// An argument is invalid (a zero cost, a billing period that ends before it starts, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A plan id is not in the catalogue.
    #[error("plan {0} is not in the plan catalogue")]
    UnknownPlan(PlanId),

    /// No reservation has this id.
    #[error("reservation {0} does not exist")]
    ReservationNotFound(ReservationId),

    /// The reservation was settled the other way: committing a refunded (or expired)
    /// reservation, or refunding a committed one.
    #[error("reservation {id} is already {state}")]
    AlreadySettled {
        /// The reservation.
        id: ReservationId,
        /// The state it is in.
        state: ReservationState,
    },

    /// The store kept losing races on one user or reservation; trying again may succeed.
    #[error("quota store busy: {0}")]
    Busy(String),

    /// Stored data cannot be read back (a negative counter, an unknown state, bad JSON).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),

    /// The store's database failed. The SQL stores put their `sqlx::Error` here; a store
    /// implemented outside this crate puts its own error.
    #[error("quota database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A migration failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("quota migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Error {
    /// Whether trying the same call again may succeed (a lost connection, a pool timeout, a
    /// deadlock or serialization failure on PostgreSQL, a busy SQLite file: the database errors
    /// `appforge_core::db::is_transient` accepts), or a store that stayed busy.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Self::Database(e) => e
                .downcast_ref::<sqlx::Error>()
                .is_some_and(appforge_core::db::is_transient),
            Self::Busy(_) => true,
            _ => false,
        }
    }

    /// Whether the error says that something does not exist (a reservation or a plan).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::ReservationNotFound(_) | Self::UnknownPlan(_))
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(Box::new(e))
    }
}

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
