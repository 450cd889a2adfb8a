//! Opening a pool from one URL.

use std::time::Duration;

/// The database a URL names, by its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// `sqlite:` (`sqlite://path/to/file.db`, `sqlite::memory:`).
    Sqlite,
    /// `postgres:` or `postgresql:`.
    Postgres,
}

impl Backend {
    /// The backend of `url`, or `None` for any other scheme (`memory:`, `mysql:`, a typo).
    ///
    /// ```
    /// use appforge_core::db::Backend;
    /// assert_eq!(Backend::from_url("postgresql://db/app"), Some(Backend::Postgres));
    /// assert_eq!(Backend::from_url("sqlite://app.db"), Some(Backend::Sqlite));
    /// assert_eq!(Backend::from_url("memory:"), None);
    /// ```
    #[must_use]
    pub fn from_url(url: &str) -> Option<Self> {
        match url.split(':').next()? {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }

    /// `"sqlite"` or `"postgres"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The path `name` next to the SQLite file `url` names (relative paths from the working
/// directory), or in the working directory for any other database (PostgreSQL, an in-memory
/// SQLite). Where a process keeps its files by default, so that every process reading the
/// same `DATABASE_URL` finds the same ones (uploads, caches).
///
/// ```
/// use appforge_core::db::beside_database;
/// let cwd = std::env::current_dir().unwrap();
/// assert_eq!(beside_database("sqlite:///srv/app/app.db?mode=rwc", "uploads"), std::path::Path::new("/srv/app/uploads"));
/// assert_eq!(beside_database("sqlite://data/app.db", "uploads"), cwd.join("data/uploads"));
/// assert_eq!(beside_database("postgres://db/app", "uploads"), cwd.join("uploads"));
/// assert_eq!(beside_database("sqlite::memory:", "uploads"), cwd.join("uploads"));
/// ```
#[must_use]
pub fn beside_database(url: &str, name: &str) -> std::path::PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    let file = url
        .strip_prefix("sqlite:")
        .map(|rest| rest.trim_start_matches("//"))
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .filter(|path| !path.is_empty() && !path.starts_with(':'));
    let dir = match file {
        Some(path) => {
            let path = cwd.join(path);
            path.parent().map_or(cwd, std::path::Path::to_path_buf)
        }
        None => cwd,
    };
    dir.join(name)
}

/// A pool over the database a URL names.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Pool {
    /// A SQLite file.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(sqlx::SqlitePool),
    /// A PostgreSQL server.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(sqlx::PgPool),
}

impl Pool {
    /// The backend.
    #[must_use]
    pub const fn backend(&self) -> Backend {
        match *self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => pool.close().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// How to open a pool from a URL: the settings every appforge store uses, in one place.
///
/// - SQLite: the file is created when missing, in WAL mode (readers never block the writer)
///   with `synchronous = NORMAL` (durable at each checkpoint, safe in WAL mode) and a busy
///   timeout of 10 s, so concurrent writers wait for the lock instead of failing with `BUSY`.
/// - PostgreSQL: the URL's options (host, user, `sslmode`, ...) as they are.
/// - Both: a pooled connection is tested (pinged) before it is handed out, so that one the
///   server closed (a restart, a failover, an administrator) is replaced without a failed
///   statement. That is one more round trip in front of every statement, about half the time
///   of a small PostgreSQL query on the same host: [`test_idle_after`](Self::test_idle_after)
///   tests only connections idle for longer than it, at the price of one failed statement per
///   connection the server closed while it was in use (sqlx also pings every connection when
///   it is returned to the pool, so an untested connection was working when it was last
///   returned).
///
/// ```no_run
/// # async fn demo() -> Result<(), sqlx::Error> {
/// use appforge_core::db::Connect;
/// let pool = Connect::new("postgres://app@db.internal/app").max_connections(32).postgres().await?;
/// # let _ = pool; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Connect {
    url: String,
    max_connections: Option<u32>,
    busy_timeout: Duration,
    test_idle_after: Duration,
}

impl Connect {
    /// Connections in a pool unless [`max_connections`](Self::max_connections) says otherwise:
    /// SQLite has one writer at a time, so a few connections are enough.
    pub const DEFAULT_SQLITE_CONNECTIONS: u32 = 8;
    /// Connections in a PostgreSQL pool unless [`max_connections`](Self::max_connections)
    /// says otherwise.
    pub const DEFAULT_POSTGRES_CONNECTIONS: u32 = 16;
    /// How long a SQLite connection waits for another's write lock before `BUSY`.
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long a connection may sit idle in the pool before it is tested on acquire: zero,
    /// every acquire is tested (sqlx's own default).
    pub const DEFAULT_TEST_IDLE_AFTER: Duration = Duration::ZERO;

    /// Settings for `url` (`sqlite://...` or `postgres://...`).
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: None,
            busy_timeout: Self::DEFAULT_BUSY_TIMEOUT,
            test_idle_after: Self::DEFAULT_TEST_IDLE_AFTER,
        }
    }

    /// The largest number of connections the pool opens.
    #[must_use]
    pub const fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = Some(max);
        self
    }

    /// How long a SQLite connection waits for the write lock (ignored on PostgreSQL).
    #[must_use]
    pub const fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// A pooled connection idle for longer than `idle` is pinged before it is handed out,
    /// and replaced when the ping fails; one used more recently is handed out as it is, and
    /// fails its next statement once if the server closed it meanwhile (a busy service that
    /// retries transient errors gains a round trip per statement). `Duration::ZERO`, the
    /// default, tests every connection on every acquire.
    #[must_use]
    pub const fn test_idle_after(mut self, idle: Duration) -> Self {
        self.test_idle_after = idle;
        self
    }

    /// The backend the URL names.
    #[must_use]
    pub fn backend(&self) -> Option<Backend> {
        Backend::from_url(&self.url)
    }

    /// Opens a pool on whichever backend the URL names.
    ///
    /// # Errors
    ///
    /// [`sqlx::Error::Configuration`] for a scheme that is not `sqlite:` or `postgres:`, or
    /// whose feature is off; connection errors.
    pub async fn connect(self) -> Result<Pool, sqlx::Error> {
        match self.backend() {
            #[cfg(feature = "sqlite")]
            Some(Backend::Sqlite) => Ok(Pool::Sqlite(self.sqlite().await?)),
            #[cfg(feature = "postgres")]
            Some(Backend::Postgres) => Ok(Pool::Postgres(self.postgres().await?)),
            _ => Err(sqlx::Error::Configuration(
                format!(
                    "unsupported database URL scheme {:?} (enabled: {})",
                    self.url.split(':').next().unwrap_or_default(),
                    enabled()
                )
                .into(),
            )),
        }
    }

    /// The SQLite connection settings for the URL (WAL, `synchronous = NORMAL`, the busy
    /// timeout, created when missing), for a host that builds its own pool.
    ///
    /// # Errors
    ///
    /// A URL SQLite cannot parse.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub fn sqlite_options(&self) -> Result<sqlx::sqlite::SqliteConnectOptions, sqlx::Error> {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
        use std::str::FromStr;
        Ok(SqliteConnectOptions::from_str(&self.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(self.busy_timeout))
    }

    /// Opens a SQLite pool.
    ///
    /// # Errors
    ///
    /// A URL SQLite cannot parse; the file cannot be opened or created.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn sqlite(self) -> Result<sqlx::SqlitePool, sqlx::Error> {
        let options = self.sqlite_options()?;
        let idle = self.test_idle_after;
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(
                self.max_connections
                    .unwrap_or(Self::DEFAULT_SQLITE_CONNECTIONS),
            )
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| Box::pin(test_if_idle(conn, meta, idle)))
            .connect_with(options)
            .await
    }

    /// Opens a PostgreSQL pool.
    ///
    /// # Errors
    ///
    /// A URL that is not a PostgreSQL URL; connection errors.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn postgres(self) -> Result<sqlx::PgPool, sqlx::Error> {
        use std::str::FromStr;
        let options = sqlx::postgres::PgConnectOptions::from_str(&self.url)?;
        let idle = self.test_idle_after;
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(
                self.max_connections
                    .unwrap_or(Self::DEFAULT_POSTGRES_CONNECTIONS),
            )
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| Box::pin(test_if_idle(conn, meta, idle)))
            .connect_with(options)
            .await
    }
}

/// The pools' acquire test: a ping for a connection idle longer than `idle`. `Ok(true)`
/// hands the connection out; a failed ping makes sqlx close it and take or open another.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn test_if_idle<C: sqlx::Connection>(
    conn: &mut C,
    meta: sqlx::pool::PoolConnectionMetadata,
    idle: Duration,
) -> Result<bool, sqlx::Error> {
    if meta.idle_for >= idle {
        conn.ping().await?;
    }
    Ok(true)
}

fn enabled() -> &'static str {
    match (cfg!(feature = "sqlite"), cfg!(feature = "postgres")) {
        (true, true) => "sqlite, postgres",
        (true, false) => "sqlite",
        (false, true) => "postgres",
        (false, false) => "none: enable the sqlite or postgres feature",
    }
}
