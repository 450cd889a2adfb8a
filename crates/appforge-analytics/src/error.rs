/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting or an argument is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A date range whose end lies before its start.
    #[error("invalid date range: {from} is after {to}")]
    InvalidRange {
        /// The first day of the range.
        from: chrono::NaiveDate,
        /// The day after the last day of the range.
        to: chrono::NaiveDate,
    },
    /// The store's database failed or could not be reached. The SQL stores put their
    /// `sqlx::Error` here; a store implemented outside this crate puts its own error.
    #[error("analytics store failed while {context}: {source}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Applying the crate's migrations failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("analytics migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be read back.
    #[error("analytics store holds an unreadable row: {0}")]
    Corrupt(String),
    /// The recorder's background writer is gone (shut down or panicked).
    #[error("the analytics recorder is shut down")]
    RecorderClosed,
}

impl Error {
    /// Whether trying the same operation again may succeed (a connection or pool problem
    /// rather than bad input).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Self::Database { source, .. } => {
                source.downcast_ref::<sqlx::Error>().is_some_and(|source| {
                    matches!(
                        source,
                        sqlx::Error::Io(_)
                            | sqlx::Error::PoolTimedOut
                            | sqlx::Error::PoolClosed
                            | sqlx::Error::WorkerCrashed
                            | sqlx::Error::Tls(_)
                    )
                })
            }
            _ => false,
        }
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database {
            context,
            source: Box::new(source),
        }
    }
}

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_with_context() {
        let from = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let to = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let err = Error::InvalidRange { from, to };
        assert_eq!(
            err.to_string(),
            "invalid date range: 2026-03-02 is after 2026-03-01"
        );
        assert!(!err.is_retryable());
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[test]
    fn database_errors_name_their_context() {
        let err = Error::db("inserting events")(sqlx::Error::PoolTimedOut);
        assert!(err.is_retryable());
        assert!(
            err.to_string()
                .starts_with("analytics store failed while inserting events")
        );
    }
}
