use std::str::FromStr;
use std::time::Duration;

use appforge_core::db::encode_time;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;

use super::UploadStore;
use super::sql::{MIGRATIONS_TABLE, Row, rows, signed, unsigned};
use crate::{Error, Result, Upload};

/// Upload metadata in a SQLite database: the embedded default.
///
/// An insert runs in one `BEGIN IMMEDIATE` transaction, which takes the database's write
/// lock first, so the usage it checks cannot move before its row is in.
#[derive(Debug, Clone)]
pub struct SqliteUploadStore {
    pool: SqlitePool,
}

impl SqliteUploadStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/file.db`) in WAL
    /// mode with a 5 s busy timeout. Call [`migrate`](Self::migrate) before use.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a bad URL, [`Error::Database`] when it cannot be
    /// opened.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::InvalidArgument(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// A store on an existing pool (shared with other crates).
    #[must_use]
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates or updates this crate's tables (its own migration table,
    /// `_appforge_uploads_migrations`, so it shares a database with the other crates).
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`].
    pub async fn migrate(&self) -> Result<()> {
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&self.pool).await?;
        Ok(())
    }
}

const USAGE: &str =
    "SELECT COALESCE(SUM(size_bytes), 0) FROM uploads WHERE owner_id = ? AND deleted_at IS NULL";

impl UploadStore for SqliteUploadStore {
    async fn insert(&self, upload: &Upload, limit_bytes: u64) -> Result<()> {
        let size = signed(upload.size_bytes)?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let used: i64 = sqlx::query_scalar(USAGE)
            .bind(upload.owner)
            .fetch_one(&mut *tx)
            .await?;
        let used = unsigned(used)?;
        if used.saturating_add(upload.size_bytes) > limit_bytes {
            return Err(Error::QuotaExceeded {
                used,
                size: upload.size_bytes,
                limit: limit_bytes,
            });
        }
        sqlx::query(
            "INSERT INTO uploads (id, owner_id, content_type, size_bytes, width, height, sha256, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(upload.id)
        .bind(upload.owner)
        .bind(upload.media_type.as_str())
        .bind(size)
        .bind(i64::from(upload.width))
        .bind(i64::from(upload.height))
        .bind(&upload.sha256)
        .bind(encode_time(upload.created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get(&self, owner: Uuid, id: Uuid) -> Result<Upload> {
        let row: Option<Row<i64>> = sqlx::query_as(
            "SELECT * FROM uploads WHERE id = ? AND owner_id = ? AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(Error::NotFound(id))?.try_into()
    }

    async fn list(&self, owner: Uuid, limit: u32) -> Result<Vec<Upload>> {
        let list: Vec<Row<i64>> = sqlx::query_as(
            "SELECT * FROM uploads WHERE owner_id = ? AND deleted_at IS NULL \
             ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(owner)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows(list)
    }

    async fn soft_delete(&self, owner: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<Upload> {
        let row: Option<Row<i64>> = sqlx::query_as(
            "UPDATE uploads SET deleted_at = ? \
             WHERE id = ? AND owner_id = ? AND deleted_at IS NULL RETURNING *",
        )
        .bind(encode_time(at))
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(Error::NotFound(id))?.try_into()
    }

    async fn expire_created_before(&self, before: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE uploads SET deleted_at = ? WHERE deleted_at IS NULL AND created_at < ?",
        )
        .bind(encode_time(at))
        .bind(encode_time(before))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn usage(&self, owner: Uuid) -> Result<u64> {
        let used: i64 = sqlx::query_scalar(USAGE)
            .bind(owner)
            .fetch_one(&self.pool)
            .await?;
        unsigned(used)
    }

    async fn deleted_before(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Upload>> {
        let list: Vec<Row<i64>> = sqlx::query_as(
            "SELECT * FROM uploads WHERE deleted_at IS NOT NULL AND deleted_at < ? \
             ORDER BY deleted_at, id LIMIT ?",
        )
        .bind(encode_time(before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows(list)
    }

    async fn forget(&self, id: Uuid) -> Result<()> {
        sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
