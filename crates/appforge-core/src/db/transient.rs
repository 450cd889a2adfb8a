//! The one check of whether a database error is worth retrying.

/// Whether retrying the same operation later may succeed: the error came from the connection
/// or from contention, not from the statement or the data.
///
/// Transient:
/// - I/O errors: connection refused or reset, a broken pipe, a timeout at the socket;
/// - [`PoolTimedOut`](sqlx::Error::PoolTimedOut) (every connection busy) and
///   [`WorkerCrashed`](sqlx::Error::WorkerCrashed) (SQLite's worker thread, restarted with the
///   next connection);
/// - the database codes of [`is_transient_code`]: PostgreSQL serialization failures,
///   deadlocks, a server shutting down or starting, connection failures, too many
///   connections; SQLite's `BUSY` and `LOCKED` (with their extended codes).
///
/// Not transient: [`PoolClosed`](sqlx::Error::PoolClosed), because the application closed the
/// pool (it is shutting down) and no retry on that pool can succeed; TLS and configuration
/// errors; protocol errors (a server or driver that does not agree with itself); constraint
/// violations, decoding errors, rows not found.
///
/// ```
/// assert!(appforge_core::db::is_transient(&sqlx::Error::PoolTimedOut));
/// assert!(!appforge_core::db::is_transient(&sqlx::Error::PoolClosed));
/// assert!(!appforge_core::db::is_transient(&sqlx::Error::RowNotFound));
/// ```
#[must_use]
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_transient_code(&code)),
        sqlx::Error::Migrate(e) => match &**e {
            sqlx::migrate::MigrateError::Execute(e)
            | sqlx::migrate::MigrateError::ExecuteMigration(e, _) => is_transient(e),
            _ => false,
        },
        _ => false,
    }
}

/// Whether a database error code is transient. PostgreSQL reports a five-character SQLSTATE;
/// SQLite an extended result code in decimal (the primary code in its low byte).
///
/// | backend | codes |
/// | --- | --- |
/// | PostgreSQL | `40001` serialization_failure, `40P01` deadlock_detected, `57P01` admin_shutdown, `57P02` crash_shutdown, `57P03` cannot_connect_now, `53300` too_many_connections, class `08` connection exceptions |
/// | SQLite | `SQLITE_BUSY` (5) and `SQLITE_LOCKED` (6), with their extended codes (`517` `BUSY_SNAPSHOT`, `262` `LOCKED_SHAREDCACHE`, ...) |
#[must_use]
pub fn is_transient_code(code: &str) -> bool {
    if code.len() == 5 {
        // A SQLSTATE (SQLite's extended codes stay below 10,000).
        return matches!(
            code,
            "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300"
        ) || code.starts_with("08");
    }
    code.parse::<u32>()
        .is_ok_and(|extended| matches!(extended & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::error::Error as StdError;
    use std::fmt;
    use std::io;

    use sqlx::error::{DatabaseError, ErrorKind};

    use super::*;

    /// A database error with only a code, as a driver reports one.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl fmt::Display for Coded {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl StdError for Coded {}

    impl DatabaseError for Coded {
        fn message(&self) -> &str {
            "error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn db(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Coded(code)))
    }

    fn io(kind: io::ErrorKind) -> sqlx::Error {
        sqlx::Error::Io(io::Error::from(kind))
    }

    #[test]
    fn classifies_every_kind_of_error() {
        let table: Vec<(&str, sqlx::Error, bool)> = vec![
            (
                "connection refused",
                io(io::ErrorKind::ConnectionRefused),
                true,
            ),
            ("connection reset", io(io::ErrorKind::ConnectionReset), true),
            ("broken pipe", io(io::ErrorKind::BrokenPipe), true),
            ("pool timed out", sqlx::Error::PoolTimedOut, true),
            ("worker crashed", sqlx::Error::WorkerCrashed, true),
            ("pool closed", sqlx::Error::PoolClosed, false),
            ("row not found", sqlx::Error::RowNotFound, false),
            (
                "protocol",
                sqlx::Error::Protocol("unexpected".into()),
                false,
            ),
            (
                "configuration",
                sqlx::Error::Configuration("bad url".into()),
                false,
            ),
            ("tls", sqlx::Error::Tls("bad certificate".into()), false),
            ("pg serialization_failure", db("40001"), true),
            ("pg deadlock_detected", db("40P01"), true),
            ("pg admin_shutdown", db("57P01"), true),
            ("pg crash_shutdown", db("57P02"), true),
            ("pg cannot_connect_now", db("57P03"), true),
            ("pg too_many_connections", db("53300"), true),
            ("pg connection_failure", db("08006"), true),
            ("pg unique_violation", db("23505"), false),
            ("pg syntax_error", db("42601"), false),
            ("pg query_canceled", db("57014"), false),
            ("sqlite BUSY", db("5"), true),
            ("sqlite LOCKED", db("6"), true),
            ("sqlite BUSY_RECOVERY", db("261"), true),
            ("sqlite BUSY_SNAPSHOT", db("517"), true),
            ("sqlite BUSY_TIMEOUT", db("773"), true),
            ("sqlite LOCKED_SHAREDCACHE", db("262"), true),
            ("sqlite CONSTRAINT_UNIQUE", db("2067"), false),
            ("sqlite ERROR", db("1"), false),
            ("sqlite READONLY", db("8"), false),
            ("sqlite IOERR_SHORT_READ", db("522"), false),
            (
                "migration of a busy database",
                sqlx::Error::Migrate(Box::new(sqlx::migrate::MigrateError::Execute(db("5")))),
                true,
            ),
            (
                "migration with a changed checksum",
                sqlx::Error::Migrate(Box::new(sqlx::migrate::MigrateError::VersionMismatch(1))),
                false,
            ),
        ];
        let wrong: Vec<_> = table
            .iter()
            .filter(|(_, error, transient)| is_transient(error) != *transient)
            .map(|(name, _, transient)| format!("{name}: expected transient = {transient}"))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn codes_of_neither_shape_are_not_transient() {
        for code in ["", "4000", "HY000", "abc", "400011"] {
            assert!(!is_transient_code(code), "{code}");
        }
    }
}
