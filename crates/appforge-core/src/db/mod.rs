//! What every store crate does with `sqlx` the same way: open a pool from one URL, tell a
//! transient database error from a lasting one, apply its migrations in a table of its own, and
//! write times to SQLite in one encoding ([`encode_time`], [`decode_time`]).
//!
//! Behind the `sqlx` feature; [`Connect::sqlite`] and [`Connect::postgres`] behind the
//! `sqlite` and `postgres` features.
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use appforge_core::db::{Connect, Pool};
//!
//! // `sqlite://app.db` opens (creating it) a file in WAL mode; `postgres://...` a server.
//! let pool = Connect::new("sqlite::memory:").max_connections(1).connect().await?;
//! assert!(matches!(pool, Pool::Sqlite(_)));
//! # Ok::<_, sqlx::Error>(()) }).unwrap();
//! ```
//!
//! # Migrations
//!
//! Each crate ships its migrations (`sqlx::migrate!`) and applies them with [`migrate`], which
//! records them in the crate's own table, `_appforge_<crate>_migrations` (for example
//! `_appforge_jobs_migrations`): several crates share one database without one crate's
//! migrator seeing another's versions as unknown.
//!
//! # Times in SQLite
//!
//! Every SQLite time column of every crate holds `INTEGER` microseconds since the Unix epoch
//! (UTC), written by [`encode_time`] and read by [`decode_time`]; a range is an integer
//! comparison, and tables of different crates in one file compare directly.

#[cfg(feature = "postgres")]
pub mod coalesce;
mod connect;
mod time;
mod transient;

pub use connect::{Backend, Connect, Pool, beside_database};
pub use time::{TimeOutOfRange, decode_time, encode_time};
pub use transient::{is_transient, is_transient_code};

use std::ops::Deref;

use sqlx::Acquire;
use sqlx::migrate::{Migrate, MigrateError, Migrator};

/// The migration table of the crate named `name` (`"jobs"` -> `"_appforge_jobs_migrations"`).
#[must_use]
pub fn migrations_table(name: &str) -> String {
    format!("_appforge_{name}_migrations")
}

/// Applies `migrator`'s pending migrations on `conn` (a pool or a connection), recorded in
/// `table` (see [`migrations_table`]) instead of sqlx's shared `_sqlx_migrations`.
///
/// ```no_run
/// # async fn demo(pool: sqlx::SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
/// let migrator = sqlx::migrate!("../appforge-jobs/migrations/sqlite");
/// appforge_core::db::migrate(migrator, "_appforge_jobs_migrations", &pool).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// A migration that fails, or one already applied whose checksum changed.
pub async fn migrate<'a, A>(
    mut migrator: Migrator,
    table: impl Into<std::borrow::Cow<'static, str>>,
    conn: A,
) -> Result<(), MigrateError>
where
    A: Acquire<'a>,
    <A::Connection as Deref>::Target: Migrate,
{
    migrator.dangerous_set_table_name(table);
    migrator.run(conn).await
}
