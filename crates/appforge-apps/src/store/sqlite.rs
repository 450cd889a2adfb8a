use appforge_core::Owner;
use appforge_core::db::encode_time;
use appforge_files::AppFile;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqlitePoolOptions};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, SqlSafeStr};
use uuid::Uuid;

use super::sql::{
    APP_COLUMNS, AppRow, InfoRow, MIGRATIONS_TABLE, PublishedRow, VersionRow, in_space,
    stored_count, stored_number,
};
use super::{
    AppStore, Settings, check_base, new_app, new_version, next_number, patch_app, settings_setters,
};
use crate::app::{App, PublishedApp, Saved, Version, VersionInfo};
use crate::change::{prepare_app, prepare_version, resolve};
use crate::request::{AppPage, AppPatch, ListApps, NewApp, NewVersion, fold};
use crate::{Error, Result};

/// The columns of a version's details, in `InfoRow`'s order.
const INFO_COLUMNS: &str = "app_id, number, base_version, job_id, prompt, change_summary, \
     input_tokens, output_tokens, duration_ms, json_array_length(files) AS file_count, \
     attachments, created_at";

fn sql(text: String) -> impl SqlSafeStr {
    AssertSqlSafe(text)
}

/// An app store in a SQLite database: the embedded default.
///
/// Every write runs in one `BEGIN IMMEDIATE` transaction, which takes the database's write
/// lock first, so two versions racing on one app are decided one after the other.
#[derive(Debug, Clone)]
pub struct SqliteAppStore {
    pool: SqlitePool,
    settings: Settings,
}

impl SqliteAppStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/file.db`) with
    /// the settings of [`appforge_core::db::Connect`] (WAL mode, a 10 s busy timeout), 4
    /// connections. Call [`migrate`](Self::migrate) before use.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a bad URL, [`Error::Database`] when it cannot be
    /// opened.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = appforge_core::db::Connect::new(url)
            .sqlite_options()
            .map_err(|e| Error::InvalidArgument(format!("bad SQLite URL: {e}")))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// A store on an existing pool (shared with other crates).
    #[must_use]
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self {
            pool,
            settings: Settings::default(),
        }
    }

    settings_setters!();

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates or updates this crate's tables (migration table `_appforge_apps_migrations`).
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] when a migration fails.
    pub async fn migrate(&self) -> Result<()> {
        appforge_core::db::migrate(
            sqlx::migrate!("./migrations/sqlite"),
            MIGRATIONS_TABLE,
            &self.pool,
        )
        .await?;
        Ok(())
    }
}

/// The live app in `owner`'s space.
async fn live_app(conn: &mut SqliteConnection, owner: Owner, app: Uuid) -> Result<App> {
    let scope = in_space(owner, "?");
    let row: Option<AppRow<i64>> = sqlx::query_as(sql(format!(
        "SELECT {APP_COLUMNS} FROM generated_apps \
         WHERE id = ? AND {scope} AND deleted_at IS NULL"
    )))
    .bind(app)
    .bind(owner.id())
    .fetch_optional(conn)
    .await?;
    row.ok_or(Error::AppNotFound(app))?.into_app()
}

async fn read_version(conn: &mut SqliteConnection, app: Uuid, number: u32) -> Result<Version> {
    let row: Option<VersionRow<i64>> = sqlx::query_as(sql(format!(
        "SELECT {INFO_COLUMNS}, files FROM app_versions WHERE app_id = ? AND number = ?"
    )))
    .bind(app)
    .bind(stored_number(number))
    .fetch_optional(conn)
    .await?;
    row.ok_or(Error::VersionNotFound {
        app,
        version: number,
    })?
    .into_version()
}

async fn insert_version(conn: &mut SqliteConnection, version: &Version) -> Result<()> {
    let info = &version.info;
    sqlx::query(
        "INSERT INTO app_versions (app_id, number, base_version, files, job_id, prompt, \
         change_summary, input_tokens, output_tokens, duration_ms, attachments, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(info.app_id)
    .bind(stored_number(info.number))
    .bind(info.base_version.map(stored_number))
    .bind(Json(&version.files))
    .bind(info.job_id)
    .bind(info.prompt.as_deref())
    .bind(info.change_summary.as_deref())
    .bind(stored_count(info.input_tokens))
    .bind(stored_count(info.output_tokens))
    .bind(stored_count(info.duration_ms))
    .bind(Json(&info.attachments))
    .bind(encode_time(info.created_at))
    .execute(conn)
    .await?;
    Ok(())
}

fn files_of(version: Version) -> Vec<AppFile> {
    version.files
}

impl AppStore for SqliteAppStore {
    async fn create_app(&self, owner: Owner, mut new: NewApp) -> Result<Saved> {
        let files = prepare_app(&mut new)?;
        let now = self.settings.now();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(job) = new.version.job_id {
            let scope = in_space(owner, "?");
            let row: Option<AppRow<i64>> = sqlx::query_as(sql(format!(
                "SELECT {APP_COLUMNS} FROM generated_apps \
                 WHERE {scope} AND origin_job_id = ?"
            )))
            .bind(owner.id())
            .bind(job)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                let app = row.into_app()?;
                let version = read_version(&mut tx, app.id, 1).await?;
                return Ok(Saved {
                    app,
                    version,
                    created: false,
                });
            }
        }
        let app = new_app(owner, &new, now);
        let version = new_version(app.id, 1, None, &new.version, files, now);
        sqlx::query(
            "INSERT INTO generated_apps (id, user_id, org_id, title, title_folded, \
             description, metadata, current_version, origin_job_id, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        )
        .bind(app.id)
        .bind(app.user_id)
        .bind(app.org_id)
        .bind(&app.title)
        .bind(fold(&app.title))
        .bind(&app.description)
        .bind(Json(&app.metadata))
        .bind(new.version.job_id)
        .bind(encode_time(now))
        .bind(encode_time(now))
        .execute(&mut *tx)
        .await?;
        insert_version(&mut tx, &version).await?;
        tx.commit().await?;
        Ok(Saved {
            app,
            version,
            created: true,
        })
    }

    async fn add_version(
        &self,
        owner: Owner,
        app: Uuid,
        base_version: u32,
        mut new: NewVersion,
    ) -> Result<Saved> {
        prepare_version(&mut new)?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // The write lock is held from here: the clock is read after it.
        let now = self.settings.now();
        let mut record = live_app(&mut tx, owner, app).await?;
        if let Some(job) = new.job_id {
            let done: Option<i32> = sqlx::query_scalar(
                "SELECT number FROM app_versions WHERE app_id = ? AND job_id = ?",
            )
            .bind(app)
            .bind(job)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(number) = done {
                let number = u32::try_from(number).unwrap_or(0);
                let version = read_version(&mut tx, app, number).await?;
                return Ok(Saved {
                    app: record,
                    version,
                    created: false,
                });
            }
        }
        let current = record.current_version;
        check_base(app, base_version, current)?;
        let current_files = files_of(read_version(&mut tx, app, current).await?);
        let base_files = if base_version == current {
            current_files.clone()
        } else {
            files_of(read_version(&mut tx, app, base_version).await?)
        };
        let files = resolve(
            &new.change,
            &base_files,
            &current_files,
            base_version,
            current,
        )?;
        let number = next_number(app, current)?;
        let version = new_version(app, number, Some(base_version), &new, files, now);
        insert_version(&mut tx, &version).await?;
        sqlx::query("UPDATE generated_apps SET current_version = ?, updated_at = ? WHERE id = ?")
            .bind(stored_number(number))
            .bind(encode_time(now))
            .bind(app)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        record.current_version = number;
        record.updated_at = now;
        Ok(Saved {
            app: record,
            version,
            created: true,
        })
    }

    async fn get_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        let mut conn = self.pool.acquire().await?;
        live_app(&mut conn, owner, app).await
    }

    async fn get_version(&self, owner: Owner, app: Uuid, number: Option<u32>) -> Result<Version> {
        let mut conn = self.pool.acquire().await?;
        let record = live_app(&mut conn, owner, app).await?;
        read_version(&mut conn, app, number.unwrap_or(record.current_version)).await
    }

    async fn list_apps(&self, owner: Owner, request: &ListApps) -> Result<AppPage> {
        let limit = request.checked_limit()?;
        let search = request.folded_search();
        let now = self.settings.now();
        let kept_since = encode_time(self.settings.purge_before(now));
        let scope = in_space(owner, "?");
        let rows: Vec<AppRow<i64>> = sqlx::query_as(sql(format!(
            "SELECT {APP_COLUMNS} FROM generated_apps WHERE {scope} \
             AND ((? = 0 AND deleted_at IS NULL) OR (? = 1 AND deleted_at > ?)) \
             AND (? IS NULL OR instr(title_folded, ?) > 0) \
             AND (? IS NULL OR created_at < ? OR (created_at = ? AND id < ?)) \
             ORDER BY created_at DESC, id DESC LIMIT ?"
        )))
        .bind(owner.id())
        .bind(request.deleted)
        .bind(request.deleted)
        .bind(kept_since)
        .bind(search.as_deref())
        .bind(search.as_deref())
        .bind(request.after.map(|c| encode_time(c.created_at)))
        .bind(request.after.map(|c| encode_time(c.created_at)))
        .bind(request.after.map(|c| encode_time(c.created_at)))
        .bind(request.after.map(|c| c.id))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .into_iter()
            .map(AppRow::into_app)
            .collect::<Result<Vec<_>>>()?;
        Ok(AppPage::from_fetched(items, limit))
    }

    async fn list_versions(&self, owner: Owner, app: Uuid) -> Result<Vec<VersionInfo>> {
        let mut conn = self.pool.acquire().await?;
        live_app(&mut conn, owner, app).await?;
        let rows: Vec<InfoRow<i64>> = sqlx::query_as(sql(format!(
            "SELECT {INFO_COLUMNS} FROM app_versions WHERE app_id = ? ORDER BY number DESC"
        )))
        .bind(app)
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter().map(InfoRow::into_info).collect()
    }

    async fn update_app(&self, owner: Owner, app: Uuid, patch: AppPatch) -> Result<App> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = self.settings.now();
        let mut record = live_app(&mut tx, owner, app).await?;
        patch_app(&mut record, patch, now)?;
        sqlx::query(
            "UPDATE generated_apps SET title = ?, title_folded = ?, description = ?, \
             metadata = ?, is_public = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&record.title)
        .bind(fold(&record.title))
        .bind(&record.description)
        .bind(Json(&record.metadata))
        .bind(record.is_public)
        .bind(encode_time(now))
        .bind(app)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn delete_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        let now = encode_time(self.settings.now());
        let scope = in_space(owner, "?");
        let row: Option<AppRow<i64>> = sqlx::query_as(sql(format!(
            "UPDATE generated_apps SET deleted_at = ?, updated_at = ? \
             WHERE id = ? AND {scope} AND deleted_at IS NULL RETURNING {APP_COLUMNS}"
        )))
        .bind(now)
        .bind(now)
        .bind(app)
        .bind(owner.id())
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(Error::AppNotFound(app))?.into_app()
    }

    async fn undelete_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        let now = self.settings.now();
        let kept_since = encode_time(self.settings.purge_before(now));
        let scope = in_space(owner, "?");
        let row: Option<AppRow<i64>> = sqlx::query_as(sql(format!(
            "UPDATE generated_apps SET deleted_at = NULL, updated_at = ? \
             WHERE id = ? AND {scope} AND deleted_at > ? RETURNING {APP_COLUMNS}"
        )))
        .bind(encode_time(now))
        .bind(app)
        .bind(owner.id())
        .bind(kept_since)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => row.into_app(),
            None => self.get_app(owner, app).await,
        }
    }

    async fn purge_deleted(&self) -> Result<u64> {
        let before = encode_time(self.settings.purge_before(self.settings.now()));
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "DELETE FROM app_versions WHERE app_id IN \
             (SELECT id FROM generated_apps WHERE deleted_at <= ?)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM generated_apps WHERE deleted_at <= ?")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn expired_apps(&self, limit: u32) -> Result<Vec<App>> {
        let before = encode_time(self.settings.purge_before(self.settings.now()));
        let rows: Vec<AppRow<i64>> = sqlx::query_as(sql(format!(
            "SELECT {APP_COLUMNS} FROM generated_apps WHERE deleted_at <= ? \
             ORDER BY deleted_at, id LIMIT ?"
        )))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AppRow::into_app).collect()
    }

    async fn purge_apps(&self, apps: &[Uuid]) -> Result<u64> {
        let before = encode_time(self.settings.purge_before(self.settings.now()));
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut purged = 0;
        for app in apps {
            let gone = sqlx::query("DELETE FROM generated_apps WHERE id = ? AND deleted_at <= ?")
                .bind(app)
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone > 0 {
                sqlx::query("DELETE FROM app_versions WHERE app_id = ?")
                    .bind(app)
                    .execute(&mut *tx)
                    .await?;
                purged += gone;
            }
        }
        tx.commit().await?;
        Ok(purged)
    }

    async fn publish(&self, owner: Owner, app: Uuid, number: Option<u32>) -> Result<App> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = self.settings.now();
        let mut record = live_app(&mut tx, owner, app).await?;
        let number = number.unwrap_or(record.current_version);
        check_base(app, number, record.current_version)?;
        let slug = record
            .preview_slug
            .clone()
            .unwrap_or_else(crate::slug::new_slug);
        sqlx::query(
            "UPDATE generated_apps SET preview_slug = ?, preview_enabled = 1, \
             published_version = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&slug)
        .bind(stored_number(number))
        .bind(encode_time(now))
        .bind(app)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        record.preview_slug = Some(slug);
        record.preview_enabled = true;
        record.published_version = Some(number);
        record.updated_at = now;
        Ok(record)
    }

    async fn unpublish(&self, owner: Owner, app: Uuid) -> Result<App> {
        let now = encode_time(self.settings.now());
        let scope = in_space(owner, "?");
        let row: Option<AppRow<i64>> = sqlx::query_as(sql(format!(
            "UPDATE generated_apps SET preview_enabled = 0, updated_at = ? \
             WHERE id = ? AND {scope} AND deleted_at IS NULL RETURNING {APP_COLUMNS}"
        )))
        .bind(now)
        .bind(app)
        .bind(owner.id())
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(Error::AppNotFound(app))?.into_app()
    }

    async fn published(&self, slug: &str) -> Result<PublishedApp> {
        if !crate::slug::is_well_formed(slug) {
            return Err(Error::PreviewNotFound);
        }
        let row: Option<PublishedRow<i64>> = sqlx::query_as(
            "SELECT a.title, a.description, a.published_version, v.files, v.created_at, a.metadata \
             FROM generated_apps a \
             JOIN app_versions v ON v.app_id = a.id AND v.number = a.published_version \
             WHERE a.preview_slug = ? AND a.preview_enabled AND a.deleted_at IS NULL",
        )
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(Error::PreviewNotFound)?.into_published(slug)
    }
}
