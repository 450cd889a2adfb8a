use std::collections::HashMap;
use std::sync::Arc;

use appforge_core::Owner;
use parking_lot::Mutex;
use uuid::Uuid;

use super::{
    AppStore, Settings, check_base, new_app, new_version, next_number, patch_app, settings_setters,
};
use crate::app::{App, PublishedApp, Saved, Version, VersionInfo};
use crate::change::{prepare_app, prepare_version, resolve};
use crate::request::{AppPage, AppPatch, ListApps, NewApp, NewVersion, fold};
use crate::{Error, Result};

/// An app store in process memory, for tests and prototypes. One lock guards every app, so
/// each call is atomic.
#[derive(Debug, Clone, Default)]
pub struct MemoryAppStore {
    state: Arc<Mutex<HashMap<Uuid, Entry>>>,
    settings: Settings,
}

#[derive(Debug)]
struct Entry {
    app: App,
    origin_job: Option<Uuid>,
    versions: Vec<Version>,
}

impl Entry {
    fn version(&self, number: u32) -> Result<&Version> {
        usize::try_from(number)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| self.versions.get(i))
            .ok_or(Error::VersionNotFound {
                app: self.app.id,
                version: number,
            })
    }

    /// Whether the app is in `owner`'s space.
    fn in_space(&self, owner: Owner) -> bool {
        owner.owns(self.app.user_id, self.app.org_id)
    }

    fn current(&self) -> Result<&Version> {
        self.version(self.app.current_version)
    }
}

impl MemoryAppStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    settings_setters!();
}

/// The live app in `owner`'s space, or not found.
fn live(apps: &mut HashMap<Uuid, Entry>, owner: Owner, app: Uuid) -> Result<&mut Entry> {
    apps.get_mut(&app)
        .filter(|e| e.in_space(owner) && e.app.deleted_at.is_none())
        .ok_or(Error::AppNotFound(app))
}

impl AppStore for MemoryAppStore {
    async fn create_app(&self, owner: Owner, mut new: NewApp) -> Result<Saved> {
        let files = prepare_app(&mut new)?;
        let now = self.settings.now();
        let mut apps = self.state.lock();
        if let Some(job) = new.version.job_id
            && let Some(entry) = apps
                .values()
                .find(|e| e.in_space(owner) && e.origin_job == Some(job))
        {
            return Ok(Saved {
                app: entry.app.clone(),
                version: entry.version(1)?.clone(),
                created: false,
            });
        }
        let app = new_app(owner, &new, now);
        let version = new_version(app.id, 1, None, &new.version, files, now);
        apps.insert(
            app.id,
            Entry {
                app: app.clone(),
                origin_job: new.version.job_id,
                versions: vec![version.clone()],
            },
        );
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
        let now = self.settings.now();
        let mut apps = self.state.lock();
        let entry = live(&mut apps, owner, app)?;
        if let Some(job) = new.job_id
            && let Some(done) = entry.versions.iter().find(|v| v.info.job_id == Some(job))
        {
            return Ok(Saved {
                app: entry.app.clone(),
                version: done.clone(),
                created: false,
            });
        }
        let current = entry.app.current_version;
        check_base(app, base_version, current)?;
        let files = resolve(
            &new.change,
            &entry.version(base_version)?.files,
            &entry.current()?.files,
            base_version,
            current,
        )?;
        let number = next_number(app, current)?;
        let version = new_version(app, number, Some(base_version), &new, files, now);
        entry.versions.push(version.clone());
        entry.app.current_version = number;
        entry.app.updated_at = now;
        Ok(Saved {
            app: entry.app.clone(),
            version,
            created: true,
        })
    }

    async fn get_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        Ok(live(&mut self.state.lock(), owner, app)?.app.clone())
    }

    async fn get_version(&self, owner: Owner, app: Uuid, number: Option<u32>) -> Result<Version> {
        let mut apps = self.state.lock();
        let entry = live(&mut apps, owner, app)?;
        Ok(entry
            .version(number.unwrap_or(entry.app.current_version))?
            .clone())
    }

    async fn list_apps(&self, owner: Owner, request: &ListApps) -> Result<AppPage> {
        let limit = request.checked_limit()?;
        let search = request.folded_search();
        let now = self.settings.now();
        let kept_since = self.settings.purge_before(now);
        let apps = self.state.lock();
        let mut items: Vec<App> = apps
            .values()
            .map(|e| &e.app)
            .filter(|a| owner.owns(a.user_id, a.org_id))
            .filter(|a| match a.deleted_at {
                None => !request.deleted,
                Some(at) => request.deleted && at > kept_since,
            })
            .filter(|a| search.as_deref().is_none_or(|s| fold(&a.title).contains(s)))
            .filter(|a| request.after.is_none_or(|c| c.precedes(a)))
            .cloned()
            .collect();
        items.sort_by_key(|a| std::cmp::Reverse((a.created_at, a.id)));
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX) + 1);
        Ok(AppPage::from_fetched(items, limit))
    }

    async fn list_versions(&self, owner: Owner, app: Uuid) -> Result<Vec<VersionInfo>> {
        let mut apps = self.state.lock();
        let entry = live(&mut apps, owner, app)?;
        Ok(entry
            .versions
            .iter()
            .rev()
            .map(|v| v.info.clone())
            .collect())
    }

    async fn update_app(&self, owner: Owner, app: Uuid, patch: AppPatch) -> Result<App> {
        let now = self.settings.now();
        let mut apps = self.state.lock();
        let entry = live(&mut apps, owner, app)?;
        let mut updated = entry.app.clone();
        patch_app(&mut updated, patch, now)?;
        entry.app = updated.clone();
        Ok(updated)
    }

    async fn delete_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        let now = self.settings.now();
        let mut apps = self.state.lock();
        let entry = live(&mut apps, owner, app)?;
        entry.app.deleted_at = Some(now);
        entry.app.updated_at = now;
        Ok(entry.app.clone())
    }

    async fn undelete_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        let now = self.settings.now();
        let kept_since = self.settings.purge_before(now);
        let mut apps = self.state.lock();
        let entry = apps
            .get_mut(&app)
            .filter(|e| e.in_space(owner))
            .filter(|e| e.app.deleted_at.is_none_or(|at| at > kept_since))
            .ok_or(Error::AppNotFound(app))?;
        if entry.app.deleted_at.take().is_some() {
            entry.app.updated_at = now;
        }
        Ok(entry.app.clone())
    }

    async fn purge_deleted(&self) -> Result<u64> {
        let before = self.settings.purge_before(self.settings.now());
        let mut apps = self.state.lock();
        let count = apps.len();
        apps.retain(|_, e| e.app.deleted_at.is_none_or(|at| at > before));
        Ok(u64::try_from(count - apps.len()).unwrap_or(u64::MAX))
    }

    async fn expired_apps(&self, limit: u32) -> Result<Vec<App>> {
        let before = self.settings.purge_before(self.settings.now());
        let apps = self.state.lock();
        let mut expired: Vec<App> = apps
            .values()
            .filter(|e| e.app.deleted_at.is_some_and(|at| at <= before))
            .map(|e| e.app.clone())
            .collect();
        expired.sort_by_key(|app| (app.deleted_at, app.id));
        expired.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(expired)
    }

    async fn purge_apps(&self, ids: &[Uuid]) -> Result<u64> {
        let before = self.settings.purge_before(self.settings.now());
        let mut apps = self.state.lock();
        let mut purged = 0;
        for id in ids {
            if apps
                .get(id)
                .is_some_and(|e| e.app.deleted_at.is_some_and(|at| at <= before))
            {
                apps.remove(id);
                purged += 1;
            }
        }
        Ok(purged)
    }

    async fn publish(&self, owner: Owner, app: Uuid, number: Option<u32>) -> Result<App> {
        let now = self.settings.now();
        let mut apps = self.state.lock();
        let entry = live(&mut apps, owner, app)?;
        let number = entry
            .version(number.unwrap_or(entry.app.current_version))?
            .info
            .number;
        let app = &mut entry.app;
        if app.preview_slug.is_none() {
            app.preview_slug = Some(crate::slug::new_slug());
        }
        app.preview_enabled = true;
        app.published_version = Some(number);
        app.updated_at = now;
        Ok(app.clone())
    }

    async fn unpublish(&self, owner: Owner, app: Uuid) -> Result<App> {
        let now = self.settings.now();
        let mut apps = self.state.lock();
        let app = &mut live(&mut apps, owner, app)?.app;
        app.preview_enabled = false;
        app.updated_at = now;
        Ok(app.clone())
    }

    async fn published(&self, slug: &str) -> Result<PublishedApp> {
        if !crate::slug::is_well_formed(slug) {
            return Err(Error::PreviewNotFound);
        }
        let apps = self.state.lock();
        let entry = apps
            .values()
            .find(|e| {
                e.app.preview_slug.as_deref() == Some(slug)
                    && e.app.preview_enabled
                    && e.app.deleted_at.is_none()
            })
            .ok_or(Error::PreviewNotFound)?;
        let number = entry.app.published_version.ok_or(Error::PreviewNotFound)?;
        let version = entry.version(number)?;
        Ok(PublishedApp {
            slug: slug.to_owned(),
            title: entry.app.title.clone(),
            description: entry.app.description.clone(),
            version: number,
            files: version.files.clone(),
            created_at: version.info.created_at,
            metadata: entry.app.metadata.clone(),
        })
    }
}
