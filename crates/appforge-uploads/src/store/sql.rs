//! What the SQL stores share: the migration table, the row type and its conversion.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Error, MediaType, Result, Upload};

/// The migration table of this crate, so that several crates share one database.
pub(crate) const MIGRATIONS_TABLE: &str = "_appforge_uploads_migrations";

/// A stored time: microseconds since the epoch on SQLite
/// ([`appforge_core::db::decode_time`]), `timestamptz` on PostgreSQL.
pub(crate) trait Stamp {
    fn time(self) -> Result<DateTime<Utc>>;
}

#[cfg(feature = "sqlite")]
impl Stamp for i64 {
    fn time(self) -> Result<DateTime<Utc>> {
        appforge_core::db::decode_time(self).map_err(|e| Error::CorruptMetadata(e.to_string()))
    }
}

impl Stamp for DateTime<Utc> {
    fn time(self) -> Result<DateTime<Utc>> {
        Ok(self)
    }
}

/// An `uploads` row, in the order of `SELECT *`.
#[derive(sqlx::FromRow)]
pub(crate) struct Row<T> {
    id: Uuid,
    owner_id: Uuid,
    content_type: String,
    size_bytes: i64,
    width: i64,
    height: i64,
    sha256: String,
    created_at: T,
    deleted_at: Option<T>,
}

impl<T: Stamp> TryFrom<Row<T>> for Upload {
    type Error = Error;

    fn try_from(row: Row<T>) -> Result<Self> {
        let bad = |what: &str| Error::CorruptMetadata(format!("upload {}: bad {what}", row.id));
        let media_type =
            MediaType::from_mime(&row.content_type).ok_or_else(|| bad("content type"))?;
        let size_bytes = u64::try_from(row.size_bytes).map_err(|_| bad("size"))?;
        let width = u32::try_from(row.width).map_err(|_| bad("width"))?;
        let height = u32::try_from(row.height).map_err(|_| bad("height"))?;
        let mut upload = Upload::new(
            row.id,
            row.owner_id,
            media_type,
            size_bytes,
            width,
            height,
            row.sha256,
            row.created_at.time()?,
        );
        upload.deleted_at = row.deleted_at.map(Stamp::time).transpose()?;
        Ok(upload)
    }
}

/// A size or count as a signed database integer.
pub(crate) fn signed(value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::InvalidArgument(format!("{value} is too large")))
}

/// A sum or count read back from the database.
pub(crate) fn unsigned(value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::CorruptMetadata(format!("negative total {value}")))
}

pub(crate) fn rows<T: Stamp>(rows: Vec<Row<T>>) -> Result<Vec<Upload>> {
    rows.into_iter().map(Upload::try_from).collect()
}
