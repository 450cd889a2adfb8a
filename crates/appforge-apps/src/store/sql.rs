//! What the SQL stores share: the migration table, row types and conversions.

use appforge_core::Owner;
use appforge_files::AppFile;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::app::{App, PublishedApp, Version, VersionInfo};
use crate::{Error, Result};

/// The migration table of this crate, so that several crates share one database.
pub(crate) const MIGRATIONS_TABLE: &str = "_appforge_apps_migrations";

/// The columns of an app row, in [`AppRow`]'s order.
pub(crate) const APP_COLUMNS: &str = "id, user_id, org_id, title, description, metadata, is_public, \
     preview_slug, preview_enabled, published_version, current_version, created_at, \
     updated_at, deleted_at";

/// The apps in `owner`'s space, as a condition on `generated_apps` whose one parameter,
/// `param` (`?` or `$n`), is bound to [`Owner::id`]: a user's personal apps (not those they
/// created in an org), or an org's apps whoever created them.
pub(crate) fn in_space(owner: Owner, param: &str) -> String {
    match owner {
        Owner::User(_) => format!("user_id = {param} AND org_id IS NULL"),
        Owner::Org(_) => format!("org_id = {param}"),
    }
}

/// A stored time: microseconds since the epoch on SQLite
/// ([`appforge_core::db::decode_time`]), `timestamptz` on PostgreSQL.
pub(crate) trait Stamp {
    fn time(self, column: &str) -> Result<DateTime<Utc>>;
}

impl Stamp for i64 {
    fn time(self, column: &str) -> Result<DateTime<Utc>> {
        appforge_core::db::decode_time(self).map_err(|e| Error::Corrupt(format!("{column}: {e}")))
    }
}

impl Stamp for DateTime<Utc> {
    fn time(self, _column: &str) -> Result<DateTime<Utc>> {
        Ok(self)
    }
}

fn number(column: &str, v: i32) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt(format!("{column} is negative ({v})")))
}

fn count(column: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("{column} is negative ({v})")))
}

/// A version number as stored.
pub(crate) fn stored_number(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// A counter as stored.
pub(crate) fn stored_count(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A `generated_apps` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AppRow<T> {
    id: Uuid,
    user_id: Uuid,
    org_id: Option<Uuid>,
    title: String,
    description: String,
    metadata: Json<Value>,
    is_public: bool,
    preview_slug: Option<String>,
    preview_enabled: bool,
    published_version: Option<i32>,
    current_version: i32,
    created_at: T,
    updated_at: T,
    deleted_at: Option<T>,
}

impl<T: Stamp> AppRow<T> {
    pub(crate) fn into_app(self) -> Result<App> {
        Ok(App {
            id: self.id,
            user_id: self.user_id,
            org_id: self.org_id,
            title: self.title,
            description: self.description,
            metadata: self.metadata.0,
            is_public: self.is_public,
            preview_slug: self.preview_slug,
            preview_enabled: self.preview_enabled,
            published_version: self
                .published_version
                .map(|v| number("published_version", v))
                .transpose()?,
            current_version: number("current_version", self.current_version)?,
            created_at: self.created_at.time("created_at")?,
            updated_at: self.updated_at.time("updated_at")?,
            deleted_at: self.deleted_at.map(|t| t.time("deleted_at")).transpose()?,
        })
    }
}

/// An `app_versions` row without its files (`file_count` computed by the query).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct InfoRow<T> {
    app_id: Uuid,
    number: i32,
    base_version: Option<i32>,
    job_id: Option<Uuid>,
    prompt: Option<String>,
    change_summary: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    duration_ms: i64,
    file_count: i64,
    attachments: Json<Vec<Uuid>>,
    created_at: T,
}

impl<T: Stamp> InfoRow<T> {
    pub(crate) fn into_info(self) -> Result<VersionInfo> {
        Ok(VersionInfo {
            app_id: self.app_id,
            number: number("number", self.number)?,
            base_version: self
                .base_version
                .map(|v| number("base_version", v))
                .transpose()?,
            job_id: self.job_id,
            prompt: self.prompt,
            change_summary: self.change_summary,
            input_tokens: count("input_tokens", self.input_tokens)?,
            output_tokens: count("output_tokens", self.output_tokens)?,
            duration_ms: count("duration_ms", self.duration_ms)?,
            file_count: u32::try_from(self.file_count)
                .map_err(|_| Error::Corrupt(format!("file count {}", self.file_count)))?,
            attachments: self.attachments.0,
            created_at: self.created_at.time("created_at")?,
        })
    }
}

/// An `app_versions` row with its files.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct VersionRow<T> {
    #[sqlx(flatten)]
    info: InfoRow<T>,
    files: Json<Vec<AppFile>>,
}

impl<T: Stamp> VersionRow<T> {
    pub(crate) fn into_version(self) -> Result<Version> {
        Ok(Version {
            info: self.info.into_info()?,
            files: self.files.0,
        })
    }
}

/// The published version behind a preview slug.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PublishedRow<T> {
    title: String,
    description: String,
    published_version: i32,
    files: Json<Vec<AppFile>>,
    created_at: T,
    metadata: Json<Value>,
}

impl<T: Stamp> PublishedRow<T> {
    pub(crate) fn into_published(self, slug: &str) -> Result<PublishedApp> {
        Ok(PublishedApp {
            slug: slug.to_owned(),
            title: self.title,
            description: self.description,
            version: number("published_version", self.published_version)?,
            files: self.files.0,
            created_at: self.created_at.time("created_at")?,
            metadata: self.metadata.0,
        })
    }
}
