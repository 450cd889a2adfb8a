use appforge_core::Owner;
use appforge_files::AppFile;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnection, PgPool};
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
     input_tokens, output_tokens, duration_ms, jsonb_array_length(files)::bigint AS file_count, \
     attachments, created_at";

fn sql(text: String) -> impl SqlSafeStr {
    AssertSqlSafe(text)
}

/// An app store in PostgreSQL, for many processes on one database.
///
/// A write locks the app's row (`SELECT ... FOR UPDATE`) for its transaction, so two
/// versions racing on one app are decided one after the other, in any number of processes.
/// Time is the store's clock, bound as a parameter.
#[derive(Debug, Clone)]
pub struct PgAppStore {
    pool: PgPool,
    settings: Settings,
}

impl PgAppStore {
    /// Connects to `url` with a pool of 10 connections ([`appforge_core::db::Connect`]). Call [`migrate`](Self::migrate)
    /// before use.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = appforge_core::db::Connect::new(url)
            .max_connections(10)
            .postgres()
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// A store on an existing pool (shared with other crates).
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            settings: Settings::default(),
        }
    }

    settings_setters!();

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or updates this crate's tables (migration table `_appforge_apps_migrations`).
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] when a migration fails.
    pub async fn migrate(&self) -> Result<()> {
        appforge_core::db::migrate(
            sqlx::migrate!("./migrations/postgres"),
            MIGRATIONS_TABLE,
            &self.pool,
        )
        .await?;
        Ok(())
    }
}

/// The live app in `owner`'s space; `lock` holds its row until the transaction ends.
async fn live_app(conn: &mut PgConnection, owner: Owner, app: Uuid, lock: bool) -> Result<App> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let scope = in_space(owner, "$2");
    let row: Option<AppRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
        "SELECT {APP_COLUMNS} FROM generated_apps \
         WHERE id = $1 AND {scope} AND deleted_at IS NULL{lock}"
    )))
    .bind(app)
    .bind(owner.id())
    .fetch_optional(conn)
    .await?;
    row.ok_or(Error::AppNotFound(app))?.into_app()
}

async fn read_version(conn: &mut PgConnection, app: Uuid, number: u32) -> Result<Version> {
    let row: Option<VersionRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
        "SELECT {INFO_COLUMNS}, files FROM app_versions WHERE app_id = $1 AND number = $2"
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

async fn insert_version(conn: &mut PgConnection, version: &Version) -> Result<()> {
    let info = &version.info;
    sqlx::query(
        "INSERT INTO app_versions (app_id, number, base_version, files, job_id, prompt, \
         change_summary, input_tokens, output_tokens, duration_ms, attachments, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
    .bind(info.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

fn files_of(version: Version) -> Vec<AppFile> {
    version.files
}

impl AppStore for PgAppStore {
    async fn create_app(&self, owner: Owner, mut new: NewApp) -> Result<Saved> {
        let files = prepare_app(&mut new)?;
        let now = self.settings.now();
        let app = new_app(owner, &new, now);
        let version = new_version(app.id, 1, None, &new.version, files, now);
        let mut tx = self.pool.begin().await?;
        // A retried job finds the app its first attempt created in this space: the unique
        // index on (user_id, origin_job_id) of personal apps, or on (org_id, origin_job_id)
        // of an org's, decides between concurrent attempts.
        let origin = match owner {
            Owner::User(_) => "(user_id, origin_job_id) WHERE org_id IS NULL",
            Owner::Org(_) => "(org_id, origin_job_id) WHERE org_id IS NOT NULL",
        };
        let inserted = sqlx::query(sql(format!(
            "INSERT INTO generated_apps (id, user_id, org_id, title, title_folded, \
             description, metadata, current_version, origin_job_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $9) \
             ON CONFLICT {origin} AND origin_job_id IS NOT NULL DO NOTHING"
        )))
        .bind(app.id)
        .bind(app.user_id)
        .bind(app.org_id)
        .bind(&app.title)
        .bind(fold(&app.title))
        .bind(&app.description)
        .bind(Json(&app.metadata))
        .bind(new.version.job_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            let scope = in_space(owner, "$1");
            let row: AppRow<DateTime<Utc>> = sqlx::query_as(sql(format!(
                "SELECT {APP_COLUMNS} FROM generated_apps \
                 WHERE {scope} AND origin_job_id = $2"
            )))
            .bind(owner.id())
            .bind(new.version.job_id)
            .fetch_one(&self.pool)
            .await?;
            let app = row.into_app()?;
            let mut conn = self.pool.acquire().await?;
            let version = read_version(&mut conn, app.id, 1).await?;
            return Ok(Saved {
                app,
                version,
                created: false,
            });
        }
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
        let mut tx = self.pool.begin().await?;
        let mut record = live_app(&mut tx, owner, app, true).await?;
        // The row lock is held from here: the clock is read after it.
        let now = self.settings.now();
        if let Some(job) = new.job_id {
            let done: Option<i32> = sqlx::query_scalar(
                "SELECT number FROM app_versions WHERE app_id = $1 AND job_id = $2",
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
        sqlx::query(
            "UPDATE generated_apps SET current_version = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(stored_number(number))
        .bind(now)
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
        live_app(&mut conn, owner, app, false).await
    }

    async fn get_version(&self, owner: Owner, app: Uuid, number: Option<u32>) -> Result<Version> {
        let mut conn = self.pool.acquire().await?;
        let record = live_app(&mut conn, owner, app, false).await?;
        read_version(&mut conn, app, number.unwrap_or(record.current_version)).await
    }

    async fn list_apps(&self, owner: Owner, request: &ListApps) -> Result<AppPage> {
        let limit = request.checked_limit()?;
        let search = request.folded_search();
        let kept_since = self.settings.purge_before(self.settings.now());
        let scope = in_space(owner, "$1");
        let rows: Vec<AppRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "SELECT {APP_COLUMNS} FROM generated_apps WHERE {scope} \
             AND ((NOT $2 AND deleted_at IS NULL) OR ($2 AND deleted_at > $3)) \
             AND ($4::text IS NULL OR strpos(title_folded, $4) > 0) \
             AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6)) \
             ORDER BY created_at DESC, id DESC LIMIT $7"
        )))
        .bind(owner.id())
        .bind(request.deleted)
        .bind(kept_since)
        .bind(search.as_deref())
        .bind(request.after.map(|c| c.created_at))
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
        live_app(&mut conn, owner, app, false).await?;
        let rows: Vec<InfoRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "SELECT {INFO_COLUMNS} FROM app_versions WHERE app_id = $1 ORDER BY number DESC"
        )))
        .bind(app)
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter().map(InfoRow::into_info).collect()
    }

    async fn update_app(&self, owner: Owner, app: Uuid, patch: AppPatch) -> Result<App> {
        let mut tx = self.pool.begin().await?;
        let mut record = live_app(&mut tx, owner, app, true).await?;
        let now = self.settings.now();
        patch_app(&mut record, patch, now)?;
        sqlx::query(
            "UPDATE generated_apps SET title = $1, title_folded = $2, description = $3, \
             metadata = $4, is_public = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(&record.title)
        .bind(fold(&record.title))
        .bind(&record.description)
        .bind(Json(&record.metadata))
        .bind(record.is_public)
        .bind(now)
        .bind(app)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn delete_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        let now = self.settings.now();
        let scope = in_space(owner, "$3");
        let row: Option<AppRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "UPDATE generated_apps SET deleted_at = $1, updated_at = $1 \
             WHERE id = $2 AND {scope} AND deleted_at IS NULL RETURNING {APP_COLUMNS}"
        )))
        .bind(now)
        .bind(app)
        .bind(owner.id())
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(Error::AppNotFound(app))?.into_app()
    }

    async fn undelete_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        let now = self.settings.now();
        let kept_since = self.settings.purge_before(now);
        let scope = in_space(owner, "$3");
        let row: Option<AppRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "UPDATE generated_apps SET deleted_at = NULL, updated_at = $1 \
             WHERE id = $2 AND {scope} AND deleted_at > $4 RETURNING {APP_COLUMNS}"
        )))
        .bind(now)
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
        let before = self.settings.purge_before(self.settings.now());
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM app_versions WHERE app_id IN \
             (SELECT id FROM generated_apps WHERE deleted_at <= $1)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM generated_apps WHERE deleted_at <= $1")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn expired_apps(&self, limit: u32) -> Result<Vec<App>> {
        let before = self.settings.purge_before(self.settings.now());
        let rows: Vec<AppRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "SELECT {APP_COLUMNS} FROM generated_apps WHERE deleted_at <= $1 \
             ORDER BY deleted_at, id LIMIT $2"
        )))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AppRow::into_app).collect()
    }

    async fn purge_apps(&self, apps: &[Uuid]) -> Result<u64> {
        let before = self.settings.purge_before(self.settings.now());
        let mut tx = self.pool.begin().await?;
        // Versions first: app_versions refers to generated_apps.
        sqlx::query(
            "DELETE FROM app_versions WHERE app_id IN \
             (SELECT id FROM generated_apps WHERE id = ANY($1) AND deleted_at <= $2)",
        )
        .bind(apps)
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let done =
            sqlx::query("DELETE FROM generated_apps WHERE id = ANY($1) AND deleted_at <= $2")
                .bind(apps)
                .bind(before)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn publish(&self, owner: Owner, app: Uuid, number: Option<u32>) -> Result<App> {
        let mut tx = self.pool.begin().await?;
        let mut record = live_app(&mut tx, owner, app, true).await?;
        let now = self.settings.now();
        let number = number.unwrap_or(record.current_version);
        check_base(app, number, record.current_version)?;
        let slug = record
            .preview_slug
            .clone()
            .unwrap_or_else(crate::slug::new_slug);
        sqlx::query(
            "UPDATE generated_apps SET preview_slug = $1, preview_enabled = true, \
             published_version = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&slug)
        .bind(stored_number(number))
        .bind(now)
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
        let now = self.settings.now();
        let scope = in_space(owner, "$3");
        let row: Option<AppRow<DateTime<Utc>>> = sqlx::query_as(sql(format!(
            "UPDATE generated_apps SET preview_enabled = false, updated_at = $1 \
             WHERE id = $2 AND {scope} AND deleted_at IS NULL RETURNING {APP_COLUMNS}"
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
        let row: Option<PublishedRow<DateTime<Utc>>> = sqlx::query_as(
            "SELECT a.title, a.description, a.published_version, v.files, v.created_at, a.metadata \
             FROM generated_apps a \
             JOIN app_versions v ON v.app_id = a.id AND v.number = a.published_version \
             WHERE a.preview_slug = $1 AND a.preview_enabled AND a.deleted_at IS NULL",
        )
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?;
        row.ok_or(Error::PreviewNotFound)?.into_published(slug)
    }
}
