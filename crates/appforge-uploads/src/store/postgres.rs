use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use uuid::Uuid;

use super::UploadStore;
use super::sql::{MIGRATIONS_TABLE, Row, rows, signed, unsigned};
use crate::{Error, Result, Upload};

/// Upload metadata in PostgreSQL: many API nodes on one database.
///
/// An insert runs in one transaction that first takes a transaction-scoped advisory lock on
/// the owner, so two uploads of one owner racing through different processes check and add
/// to the usage one after the other.
#[derive(Debug, Clone)]
pub struct PgUploadStore {
    pool: PgPool,
}

impl PgUploadStore {
    /// Connects to `url` with a pool of 10 connections. Call [`migrate`](Self::migrate)
    /// before use.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// A store on an existing pool (shared with other crates).
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or updates this crate's tables (its own migration table,
    /// `_appforge_uploads_migrations`, so it shares a database with the other crates).
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`].
    pub async fn migrate(&self) -> Result<()> {
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&self.pool).await?;
        Ok(())
    }
}

const USAGE: &str = "SELECT COALESCE(SUM(size_bytes), 0)::bigint FROM uploads \
     WHERE owner_id = $1 AND deleted_at IS NULL";

impl UploadStore for PgUploadStore {
    async fn insert(&self, upload: &Upload, limit_bytes: u64) -> Result<()> {
        let size = signed(upload.size_bytes)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('appforge-uploads:' || $1::text, 0))",
        )
        .bind(upload.owner)
        .execute(&mut *tx)
        .await?;
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
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(upload.id)
        .bind(upload.owner)
        .bind(upload.media_type.as_str())
        .bind(size)
        .bind(i64::from(upload.width))
        .bind(i64::from(upload.height))
        .bind(&upload.sha256)
        .bind(upload.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get(&self, owner: Uuid, id: Uuid) -> Result<Upload> {
        let row: Option<Row<DateTime<Utc>>> = sqlx::query_as(
            "SELECT * FROM uploads WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(Error::NotFound(id))?.try_into()
    }

    async fn list(&self, owner: Uuid, limit: u32) -> Result<Vec<Upload>> {
        let list: Vec<Row<DateTime<Utc>>> = sqlx::query_as(
            "SELECT * FROM uploads WHERE owner_id = $1 AND deleted_at IS NULL \
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(owner)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows(list)
    }

    async fn soft_delete(&self, owner: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<Upload> {
        let row: Option<Row<DateTime<Utc>>> = sqlx::query_as(
            "UPDATE uploads SET deleted_at = $1 \
             WHERE id = $2 AND owner_id = $3 AND deleted_at IS NULL RETURNING *",
        )
        .bind(at)
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(Error::NotFound(id))?.try_into()
    }

    async fn expire_created_before(&self, before: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE uploads SET deleted_at = $1 WHERE deleted_at IS NULL AND created_at < $2",
        )
        .bind(at)
        .bind(before)
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
        let list: Vec<Row<DateTime<Utc>>> = sqlx::query_as(
            "SELECT * FROM uploads WHERE deleted_at IS NOT NULL AND deleted_at < $1 \
             ORDER BY deleted_at, id LIMIT $2",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows(list)
    }

    async fn forget(&self, id: Uuid) -> Result<()> {
        sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
