use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use super::UploadStore;
use crate::{Error, Result, Upload};

/// Upload metadata in process memory, for tests and prototypes. One lock guards every
/// record, so each call is atomic.
#[derive(Debug, Clone, Default)]
pub struct MemoryUploadStore {
    uploads: Arc<Mutex<HashMap<Uuid, Upload>>>,
}

impl MemoryUploadStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

fn usage_of(uploads: &HashMap<Uuid, Upload>, owner: Uuid) -> u64 {
    uploads
        .values()
        .filter(|u| u.owner == owner && u.deleted_at.is_none())
        .map(|u| u.size_bytes)
        .sum()
}

impl UploadStore for MemoryUploadStore {
    async fn insert(&self, upload: &Upload, limit_bytes: u64) -> Result<()> {
        let mut uploads = self.uploads.lock();
        let used = usage_of(&uploads, upload.owner);
        if used.saturating_add(upload.size_bytes) > limit_bytes {
            return Err(Error::QuotaExceeded {
                used,
                size: upload.size_bytes,
                limit: limit_bytes,
            });
        }
        if uploads.contains_key(&upload.id) {
            return Err(Error::InvalidArgument(format!(
                "upload {} already exists",
                upload.id
            )));
        }
        uploads.insert(upload.id, upload.clone());
        Ok(())
    }

    async fn get(&self, owner: Uuid, id: Uuid) -> Result<Upload> {
        self.uploads
            .lock()
            .get(&id)
            .filter(|u| u.owner == owner && u.deleted_at.is_none())
            .cloned()
            .ok_or(Error::NotFound(id))
    }

    async fn list(&self, owner: Uuid, limit: u32) -> Result<Vec<Upload>> {
        let mut list: Vec<Upload> = self
            .uploads
            .lock()
            .values()
            .filter(|u| u.owner == owner && u.deleted_at.is_none())
            .cloned()
            .collect();
        list.sort_by_key(|u| std::cmp::Reverse((u.created_at, u.id)));
        list.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(list)
    }

    async fn soft_delete(&self, owner: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<Upload> {
        let mut uploads = self.uploads.lock();
        let upload = uploads
            .get_mut(&id)
            .filter(|u| u.owner == owner && u.deleted_at.is_none())
            .ok_or(Error::NotFound(id))?;
        upload.deleted_at = Some(at);
        Ok(upload.clone())
    }

    async fn expire_created_before(&self, before: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64> {
        let mut count = 0;
        for upload in self.uploads.lock().values_mut() {
            if upload.deleted_at.is_none() && upload.created_at < before {
                upload.deleted_at = Some(at);
                count += 1;
            }
        }
        Ok(count)
    }

    async fn usage(&self, owner: Uuid) -> Result<u64> {
        Ok(usage_of(&self.uploads.lock(), owner))
    }

    async fn deleted_before(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Upload>> {
        let mut list: Vec<Upload> = self
            .uploads
            .lock()
            .values()
            .filter(|u| u.deleted_at.is_some_and(|at| at < before))
            .cloned()
            .collect();
        list.sort_by_key(|u| (u.deleted_at, u.id));
        list.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(list)
    }

    async fn forget(&self, id: Uuid) -> Result<()> {
        self.uploads.lock().remove(&id);
        Ok(())
    }
}
