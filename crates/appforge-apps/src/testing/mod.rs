//! The conformance suite every [`AppStore`] passes: one behavioural test body per rule, run
//! here on memory, SQLite and PostgreSQL, and on any store outside this crate with
//! [`app_store_suite!`](crate::app_store_suite).
//!
//! Each case takes a fresh [`Backend`]: an empty, migrated store that reads time from the
//! backend's [`ManualClock`] (start it with [`clock`]) and keeps deleted apps for
//! [`RETENTION`]. The cases check what the crate promises: versions and their diffs, rebasing
//! or refusing racing changes, a job saved once, the uploads a version attached, ownership
//! (a user's personal space and an org's: an app outside the call's space is not found),
//! paging and search, soft deletion and purging, the preview, the zip export, hostile paths
//! and size limits, and writers racing on one app. The macro expands every case into a `#[tokio::test]` (the calling crate needs
//! `tokio` with `macros` and `rt-multi-thread`).
//!
//! ```no_run
//! use appforge_apps::MemoryAppStore;
//! use appforge_apps::testing::{Backend, RETENTION, clock};
//!
//! async fn backend() -> Option<Backend<MemoryAppStore>> {
//!     let clock = clock();
//!     let store = MemoryAppStore::new().with_clock(clock.shared()).with_retention(RETENTION);
//!     Some(Backend::new(store, clock))
//! }
//!
//! appforge_apps::app_store_suite!(backend);
//! # fn main() {}
//! ```

mod concurrency;
mod library;
mod lifecycle;
mod orgs;
mod versions;

pub use concurrency::{concurrent_retries_of_a_job_save_once, concurrent_versions_never_overwrite};
pub use library::{
    another_users_app_is_not_found, descriptions_and_metadata_have_size_limits,
    hostile_paths_cannot_be_stored, rename_and_edit_details,
    the_library_is_newest_first_paged_and_searchable,
};
pub use lifecycle::{
    delete_is_soft_until_the_retention_ends, expired_apps_are_listed_then_purged_by_id,
    the_preview_serves_the_published_version_only, the_zip_holds_the_version_files,
};
pub use orgs::{
    a_job_saves_once_per_owner, a_personal_app_is_not_found_in_the_users_orgs,
    an_org_app_expires_and_is_purged, an_org_app_is_not_found_outside_the_org,
    an_org_app_is_shared_by_the_org_whoever_created_it, an_orgs_library_lists_its_apps_only,
    the_creator_of_an_app_is_recorded,
};
pub use versions::{
    a_job_saves_once, a_racing_change_to_other_files_is_rebased,
    a_racing_change_to_the_same_text_conflicts, a_version_records_its_attachments,
    create_and_read_back, restore_adds_a_version, versions_accumulate_and_diff,
};

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use appforge_core::{Clock, ManualClock};
use appforge_files::{AppFile, ChangeSet, Edit, FileChange};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{AppStore, NewApp, NewVersion, Owner};

/// How long the store under test keeps a deleted app restorable: 7 days.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

type Guard = Box<dyn Any + Send + Sync>;

/// The clock a backend's store reads, at the time the cases start from
/// (2026-03-14 12:00:00 UTC).
///
/// # Panics
///
/// Never: the start time is a valid constant.
#[must_use]
pub fn clock() -> ManualClock {
    ManualClock::at("2026-03-14T12:00:00Z".parse().expect("a valid time"))
}

/// A fresh store under test, the clock it reads, and whatever keeps its database alive.
pub struct Backend<S> {
    /// The store: empty, migrated, reading time from `clock`, keeping deleted apps for
    /// [`RETENTION`].
    pub store: S,
    /// The clock the store reads; the cases move it.
    pub clock: ManualClock,
    guard: Guard,
}

impl<S: fmt::Debug> fmt::Debug for Backend<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<S> Backend<S> {
    /// A fresh, migrated `store` that reads time from `clock` and keeps deleted apps for
    /// [`RETENTION`].
    pub fn new(store: S, clock: ManualClock) -> Self {
        Self {
            store,
            clock,
            guard: Box::new(()),
        }
    }

    /// Keeps `guard` (a temporary file, a test database) alive as long as the case runs.
    #[must_use]
    pub fn guard(mut self, guard: impl Any + Send + Sync) -> Self {
        self.guard = Box::new(guard);
        self
    }
}

/// The store of a case (shared with the tasks the concurrent cases spawn), its clock, and
/// the time the case started at.
struct Fixture<S> {
    store: Arc<S>,
    clock: ManualClock,
    start: DateTime<Utc>,
    _guard: Guard,
}

impl<S: AppStore> Fixture<S> {
    fn new(backend: Backend<S>) -> Self {
        let start = backend.clock.now();
        Self {
            store: Arc::new(backend.store),
            clock: backend.clock,
            start,
            _guard: backend.guard,
        }
    }

    fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// An app in `owner`'s space titled `title` holding the demo files.
    async fn app(&self, owner: Owner, title: &str) -> Uuid {
        self.store
            .create_app(owner, NewApp::new(title, NewVersion::files(files())))
            .await
            .unwrap()
            .app
            .id
    }
}

fn f(path: &str, content: &str) -> AppFile {
    AppFile::new(path, content)
}

fn files() -> Vec<AppFile> {
    vec![
        f("src/App.tsx", "<header>Habits</header>\n<main />\n"),
        f("src/theme.ts", "export const dark = false;\n"),
    ]
}

fn replace(path: &str, find: &str, with: &str) -> NewVersion {
    NewVersion::change_set(ChangeSet {
        summary: Some(format!("{find} -> {with}")),
        changes: vec![FileChange::Update {
            path: path.into(),
            edits: vec![Edit::Replace {
                find: find.into(),
                with: with.into(),
            }],
        }],
    })
}

fn create(path: &str, content: &str) -> NewVersion {
    NewVersion::change_set(ChangeSet {
        summary: None,
        changes: vec![FileChange::Create {
            path: path.into(),
            content: content.into(),
        }],
    })
}

/// Runs every case of the suite as a `#[tokio::test]`, each on a fresh backend from
/// `$make`, an `async fn() -> Option<Backend<S>>` (`None` skips the case, as a PostgreSQL
/// backend does without `DATABASE_URL`, having said why).
#[macro_export]
macro_rules! app_store_suite {
    ($make:path $(,)?) => {
        $crate::app_store_suite!(@cases $make, [tokio::test],
            create_and_read_back,
            versions_accumulate_and_diff,
            a_racing_change_to_other_files_is_rebased,
            a_racing_change_to_the_same_text_conflicts,
            a_job_saves_once,
            another_users_app_is_not_found,
            the_library_is_newest_first_paged_and_searchable,
            restore_adds_a_version,
            a_version_records_its_attachments,
            rename_and_edit_details,
            delete_is_soft_until_the_retention_ends,
            expired_apps_are_listed_then_purged_by_id,
            the_preview_serves_the_published_version_only,
            the_zip_holds_the_version_files,
            hostile_paths_cannot_be_stored,
            descriptions_and_metadata_have_size_limits,
            an_org_app_is_shared_by_the_org_whoever_created_it,
            an_org_app_is_not_found_outside_the_org,
            a_personal_app_is_not_found_in_the_users_orgs,
            an_orgs_library_lists_its_apps_only,
            a_job_saves_once_per_owner,
            the_creator_of_an_app_is_recorded,
            an_org_app_expires_and_is_purged,
        );
        $crate::app_store_suite!(@cases $make,
            [tokio::test(flavor = "multi_thread", worker_threads = 4)],
            concurrent_versions_never_overwrite,
            concurrent_retries_of_a_job_save_once,
        );
    };
    (@cases $make:path, [$test:meta], $($case:ident),* $(,)?) => {
        $(
            #[$test]
            async fn $case() {
                let Some(backend) = $make().await else {
                    return;
                };
                $crate::testing::$case(backend).await;
            }
        )*
    };
}
