//! The metadata store trait and its backends.

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, Upload};

pub(crate) mod any;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// Where uploads' metadata lives (their bytes are in a [`Storage`](crate::Storage)).
///
/// Reads take the owner they act for: another owner's upload is [`Error::NotFound`], as is a
/// deleted one. An owner's usage is the sum of the sizes of their live (not deleted)
/// uploads; [`insert`](Self::insert) checks it against the allowance and stores in one
/// atomic step (a lock in memory, a `BEGIN IMMEDIATE` transaction on SQLite, a transaction
/// holding an advisory lock on the owner on PostgreSQL), so two uploads racing can never
/// both pass the last free bytes.
///
/// [`Error::NotFound`]: crate::Error::NotFound
pub trait UploadStore: Send + Sync + fmt::Debug {
    /// Stores `upload` when the owner's usage plus its size stays within `limit_bytes`.
    ///
    /// # Errors
    ///
    /// [`Error::QuotaExceeded`](crate::Error::QuotaExceeded) and nothing stored; storage
    /// errors.
    fn insert(&self, upload: &Upload, limit_bytes: u64) -> impl Future<Output = Result<()>> + Send;

    /// The owner's live upload.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`](crate::Error::NotFound); storage errors.
    fn get(&self, owner: Uuid, id: Uuid) -> impl Future<Output = Result<Upload>> + Send;

    /// The owner's live uploads, newest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn list(&self, owner: Uuid, limit: u32) -> impl Future<Output = Result<Vec<Upload>>> + Send;

    /// Marks the owner's live upload deleted at `at`: it is not found any more and stops
    /// counting towards the owner's usage; its bytes stay until [`forget`](Self::forget).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`](crate::Error::NotFound); storage errors.
    fn soft_delete(
        &self,
        owner: Uuid,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<Upload>> + Send;

    /// Marks deleted at `at` every live upload created before `before` (retention), and
    /// returns how many.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn expire_created_before(
        &self,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// The bytes the owner's live uploads take.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn usage(&self, owner: Uuid) -> impl Future<Output = Result<u64>> + Send;

    /// Uploads deleted before `before`, oldest deletion first, at most `limit`: those whose
    /// bytes a purge removes.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn deleted_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Upload>>> + Send;

    /// Removes the record of upload `id` for good, live or deleted; a missing one is not an
    /// error.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn forget(&self, id: Uuid) -> impl Future<Output = Result<()>> + Send;
}
