use appforge_core::{SharedClock, SystemClock};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::store::UploadStore;
use crate::{AnyUploadStore, Error, ImagePolicy, Result, Storage, Upload};

/// How many deleted uploads one round of [`Uploads::purge_deleted`] removes at most.
const PURGE_BATCH: u32 = 500;

/// Uploads: validation, the bytes in a [`Storage`] and the metadata in an [`UploadStore`].
///
/// Cheap to clone (the stores are handles).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_uploads::Result<()> {
/// use appforge_uploads::{AnyUploadStore, Storage, Uploads};
///
/// let uploads = Uploads::new(Storage::in_memory(), AnyUploadStore::default());
/// let owner = uuid::Uuid::new_v4();
/// // An SVG is refused whatever its name or claimed type: nothing is stored.
/// let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
/// let refused = uploads.upload(owner, svg, 50 << 20).await.unwrap_err();
/// assert_eq!(refused.code(), "unsupported_format");
/// assert_eq!(uploads.usage(owner).await?, 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Uploads<S = AnyUploadStore> {
    storage: Storage,
    store: S,
    policy: ImagePolicy,
    clock: SharedClock,
}

impl<S: UploadStore + 'static> Uploads<S> {
    /// Uploads kept in `storage` with their metadata in `store`, checked against the default
    /// [`ImagePolicy`], on the system clock.
    #[must_use]
    pub fn new(storage: Storage, store: S) -> Self {
        Self {
            storage,
            store,
            policy: ImagePolicy::default(),
            clock: SystemClock::shared(),
        }
    }

    /// Checks uploads against `policy`.
    #[must_use]
    pub fn with_policy(mut self, policy: ImagePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Reads time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The policy uploads are checked against.
    #[must_use]
    pub fn policy(&self) -> &ImagePolicy {
        &self.policy
    }

    /// The metadata store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The storage.
    #[must_use]
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Validates `bytes` ([`ImagePolicy::validate`], off the async threads), then records the
    /// upload against the owner's allowance of `limit_bytes` and writes the re-encoded image
    /// to storage. If the write fails the record is removed: an upload is stored whole or
    /// not at all.
    ///
    /// # Errors
    ///
    /// The validation errors ([`Error::TooLarge`] before anything else,
    /// [`Error::UnsupportedFormat`], [`Error::DimensionsTooLarge`], [`Error::TooManyPixels`],
    /// [`Error::Corrupt`]), [`Error::QuotaExceeded`]; storage errors.
    pub async fn upload(&self, owner: Uuid, bytes: &[u8], limit_bytes: u64) -> Result<Upload> {
        let policy = self.policy;
        // Refuse an oversized body before copying it to the blocking pool.
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > policy.max_bytes_limit() {
            return Err(Error::TooLarge {
                size,
                max: policy.max_bytes_limit(),
            });
        }
        let owned = bytes.to_vec();
        let image = tokio::task::spawn_blocking(move || policy.validate(&owned))
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        let upload = Upload::new(
            Uuid::new_v4(),
            owner,
            image.media_type,
            u64::try_from(image.bytes.len()).unwrap_or(u64::MAX),
            image.width,
            image.height,
            image.sha256,
            self.clock.now(),
        );
        self.store.insert(&upload, limit_bytes).await?;
        if let Err(e) = self.storage.put(&upload.key(), image.bytes).await {
            if let Err(undo) = self.store.forget(upload.id).await {
                tracing::error!(upload = %upload.id, error = %undo, "cannot remove the record of an upload whose bytes were not stored");
            }
            return Err(e);
        }
        Ok(upload)
    }

    /// The owner's live upload's metadata.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (another owner's, a deleted one); storage errors.
    pub async fn get(&self, owner: Uuid, id: Uuid) -> Result<Upload> {
        self.store.get(owner, id).await
    }

    /// The owner's live upload with its bytes.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] (another owner's, a deleted one, or bytes missing from storage);
    /// storage errors.
    pub async fn read(&self, owner: Uuid, id: Uuid) -> Result<(Upload, Bytes)> {
        let upload = self.store.get(owner, id).await?;
        let bytes = self
            .storage
            .get(&upload.key())
            .await?
            .ok_or(Error::NotFound(id))?;
        Ok((upload, bytes))
    }

    /// The owner's live uploads, newest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn list(&self, owner: Uuid, limit: u32) -> Result<Vec<Upload>> {
        self.store.list(owner, limit).await
    }

    /// Deletes the owner's upload: it is not found from now on and frees its bytes of the
    /// allowance at once; its bytes leave storage at the next [`purge_deleted`](Self::purge_deleted).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; storage errors.
    pub async fn delete(&self, owner: Uuid, id: Uuid) -> Result<Upload> {
        let now = self.clock.now();
        self.store.soft_delete(owner, id, now).await
    }

    /// The bytes the owner's live uploads take.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn usage(&self, owner: Uuid) -> Result<u64> {
        self.store.usage(owner).await
    }

    /// Deletes every live upload created before `before` (an upload older than the
    /// retention period), and returns how many.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn expire_created_before(&self, before: DateTime<Utc>) -> Result<u64> {
        let now = self.clock.now();
        self.store.expire_created_before(before, now).await
    }

    /// Removes for good every upload deleted longer than `retention` ago, by this service's
    /// clock ([`purge_deleted`](Self::purge_deleted)).
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn purge_deleted_older_than(&self, retention: std::time::Duration) -> Result<u64> {
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let before = self
            .clock
            .now()
            .checked_sub_signed(retention)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        self.purge_deleted(before).await
    }

    /// Removes for good, bytes and record, every upload deleted before `before`, and returns
    /// how many. Bytes go first: a record outlives its bytes only while a purge runs, and an
    /// object whose removal failed keeps its record for the next purge.
    ///
    /// # Errors
    ///
    /// Storage errors (what was purged before stays purged).
    pub async fn purge_deleted(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut purged = 0;
        loop {
            let batch = self.store.deleted_before(before, PURGE_BATCH).await?;
            let full = batch.len() == usize::try_from(PURGE_BATCH).unwrap_or(usize::MAX);
            for upload in batch {
                self.storage.delete(&upload.key()).await?;
                self.store.forget(upload.id).await?;
                purged += 1;
            }
            if !full {
                return Ok(purged);
            }
        }
    }
}
