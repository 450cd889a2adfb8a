use appforge_files::{ApplyError, PathError};
use uuid::Uuid;

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No app in the space the call is scoped to has this id (or it is deleted): another
    /// user's app, an org's app read from a personal space (its creator's included) and a
    /// personal app read from an org are not found either.
    #[error("app {0} not found")]
    AppNotFound(Uuid),

    /// The app has no such version.
    #[error("app {app} has no version {version}")]
    VersionNotFound {
        /// The app.
        app: Uuid,
        /// The version asked for.
        version: u32,
    },

    /// No published app has this preview slug.
    #[error("no published app at this preview address")]
    PreviewNotFound,

    /// The app moved on since the base version and the change touches a file that changed
    /// meanwhile in a way the change no longer fits; nothing was stored.
    #[error(
        "conflict on {path:?}: the file changed since version {base} (now at version {current})"
    )]
    Conflict {
        /// The file the change cannot be applied to.
        path: String,
        /// The version the change was made from.
        base: u32,
        /// The app's current version.
        current: u32,
    },

    /// The change does not apply to the version it was made from (a missing or ambiguous
    /// anchor, an update of a file that does not exist).
    #[error("the change does not apply to its base version: {0}")]
    ChangeDoesNotApply(ApplyError),

    /// A file path is hostile or malformed (absolute, `..`, a drive, NUL, too long, ...).
    #[error("invalid file path: {0}")]
    InvalidPath(PathError),

    /// An argument is invalid (an empty title, two files at one path, a bad cursor, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Stored data cannot be read back.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),

    /// Two versions are too large to compare within the limits of a bounded diff
    /// ([`DiffLimits`](crate::DiffLimits)).
    #[error(
        "the versions are too large to compare: {bytes} bytes of changed files, the limit is {limit}"
    )]
    DiffTooLarge {
        /// The bytes of the files that differ, both sides counted.
        bytes: u64,
        /// The limit.
        limit: u64,
    },

    /// The zip archive could not be written.
    #[error("cannot write the zip archive: {0}")]
    Zip(String),

    /// The database failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("apps database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A migration failed.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
    #[error("apps migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Error {
    /// Whether the error says that something does not exist (an app, a version, a preview).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::AppNotFound(_) | Self::VersionNotFound { .. } | Self::PreviewNotFound
        )
    }

    /// Whether the error is a conflict between concurrent changes.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// Whether the caller's input is at fault (a hostile path, a change that does not apply,
    /// an invalid argument): retrying the same call fails the same way.
    #[must_use]
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::InvalidPath(_) | Self::InvalidArgument(_) | Self::ChangeDoesNotApply(_)
        )
    }

    /// The file a conflict is about.
    #[must_use]
    pub fn conflict_path(&self) -> Option<&str> {
        match self {
            Self::Conflict { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Whether trying the same call again may succeed (a lost connection, a pool timeout, a
    /// deadlock or serialization failure, a busy SQLite file):
    /// [`appforge_core::db::is_transient`] on the database error.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            #[cfg(any(feature = "sqlite", feature = "postgres"))]
            Self::Database(e) => appforge_core::db::is_transient(e),
            _ => false,
        }
    }
}

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
