//! Test support for the appforge crates. Not published.
//!
//! - [`TestDatabase`]: a fresh PostgreSQL database per test, created from `DATABASE_URL` and
//!   dropped when the value is dropped, so suites run in parallel and repeatably.
//! - [`TempSqlite`]: a SQLite file in a temporary directory, removed on drop.
//! - [`ManualClock`]: re-exported from `appforge-core`, for moving time in tests.
//!
//! # PostgreSQL suites
//!
//! A PostgreSQL test starts with [`TestDatabase::create_or_skip`]: without `DATABASE_URL` it
//! returns early and says why on standard error, so a machine without PostgreSQL runs every other
//! test; with `CI` set and no `DATABASE_URL` it fails instead, so CI never passes by skipping.
//! Nothing is decided at build time: no `build.rs`, no rebuild when `DATABASE_URL` changes.
//!
//! ```no_run
//! # async fn demo() {
//! let db = appforge_testing::TestDatabase::create().await;
//! let pool = db.pool().await;
//! sqlx::query("SELECT 1").execute(&pool).await.unwrap();
//! // The database is dropped with `db`.
//! # }
//! ```

mod json;
mod npm;
mod postgres;
mod sqlite;

pub use appforge_core::ManualClock;
pub use json::sorted_json;
pub use npm::{NPM_PACK, npm_tarballs};
pub use postgres::{TestDatabase, database_url};
pub use sqlite::TempSqlite;

/// A fixed instant for tests: 2026-03-14 12:00:00 UTC, a Saturday in the middle of a month.
#[must_use]
pub fn fixed_now() -> chrono::DateTime<chrono::Utc> {
    "2026-03-14T12:00:00Z".parse().expect("valid timestamp")
}
