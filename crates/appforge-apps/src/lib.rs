//! Saved apps and their version history, in a user's personal space or an organization's.
//!
//! Every generation lands in a library as an [`App`]; each `modify` (or later
//! phase) adds a [`Version`] holding the app's full file set, the job that produced it, the
//! prompt, the uploads (reference images) it attached, the change summary, tokens and time.
//! Versions can be listed, compared file by file ([`VersionDiff`], unified diffs), restored (as
//! a new version) and exported as a zip; an app can be renamed, deleted softly and restored
//! within a retention period, and published at an unguessable preview slug that serves the
//! published version only.
//!
//! An app belongs to an [`Owner`]: a user's personal space, or an org's, whoever of its
//! members created it ([`App::user_id`] records the creator). Every store call is scoped to
//! an owner and the store checks it in its query: an app outside the space is
//! [`Error::AppNotFound`].
//!
//! ```
//! use appforge_apps::{AppStore, ListApps, MemoryAppStore, NewApp, NewVersion, Owner};
//! use appforge_files::{AppFile, ChangeSet, Edit, FileChange};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_apps::Result<()> {
//! let store = MemoryAppStore::new();
//! let user = Owner::User(uuid::Uuid::new_v4());
//!
//! // A full-app generation creates the app at version 1.
//! let files = vec![AppFile::new("src/App.tsx", "<header>Habits</header>\n")];
//! let saved = store
//!     .create_app(user, NewApp::new("Habit tracker", NewVersion::files(files)))
//!     .await?;
//! let app = saved.app.id;
//!
//! // A modification made from version 1 becomes version 2.
//! let sticky = ChangeSet {
//!     summary: Some("Sticky header".into()),
//!     changes: vec![FileChange::Update {
//!         path: "src/App.tsx".into(),
//!         edits: vec![Edit::Replace {
//!             find: "<header>".into(),
//!             with: "<header className=\"sticky\">".into(),
//!         }],
//!     }],
//! };
//! let v2 = store.add_version(user, app, 1, NewVersion::change_set(sticky)).await?;
//! assert_eq!(v2.version.info.number, 2);
//!
//! let diff = store.diff(user, app, 1, 2).await?;
//! assert!(diff.files[0].diff.contains("+<header className=\"sticky\">Habits</header>"));
//!
//! // Another user sees nothing, nor does an org.
//! assert!(store.get_app(Owner::User(uuid::Uuid::new_v4()), app).await.unwrap_err().is_not_found());
//! assert!(store.get_app(Owner::Org(uuid::Uuid::new_v4()), app).await.unwrap_err().is_not_found());
//! assert_eq!(store.list_apps(user, &ListApps::first(10).search("HABIT")).await?.items.len(), 1);
//! # Ok(()) }
//! ```
//!
//! # Concurrent modifications
//!
//! [`AppStore::add_version`] takes the version a change was made from. When another version
//! was stored meanwhile, the change is re-applied on top of it only if every file it touches
//! is unchanged since its base, or its edits still fit (each anchor found exactly once);
//! otherwise nothing is stored and the answer is [`Error::Conflict`] naming the file. The
//! decision and the write are one atomic step on every backend. A job's version is stored
//! once, however often its worker retries.
//!
//! # Paths
//!
//! File paths are untrusted: every path is checked as the generation parser checks model
//! output ([`appforge_files::validate_path`]: relative, no `..`, no absolute or drive path, no
//! NUL or control character, sane length) and a hostile one is [`Error::InvalidPath`].
//! A zip archive ([`zip_files`], [`AppStore::export_zip`]) checks every path again and writes a
//! path given twice once.
//!
//! # Limits
//!
//! A user's description is at most [`MAX_DESCRIPTION_CHARS`] characters and metadata at most
//! [`MAX_METADATA_BYTES`] bytes of JSON. A diff computed for a user
//! ([`VersionDiff::bounded`]) compares at most [`DiffLimits::max_bytes`] of changed files
//! within [`DiffLimits::timeout`]; it is CPU work, for a blocking thread.
//!
//! # Stores
//!
//! An [`AppLibrary<S = AnyAppStore>`](AppLibrary) is the service a host holds, as
//! `JobQueue<S = AnyJobStore>` is for jobs: generic over the public [`AppStore`] trait, with
//! the built-in backends as the default. The backends are [`MemoryAppStore`],
//! [`SqliteAppStore`] (one `BEGIN IMMEDIATE` transaction per write) and `PgAppStore` (the
//! app's row locked for the write), or [`AnyAppStore`] chosen at run time; a host's own
//! backend implements [`AppStore`] and runs the crate's behavioural suite with
//! `app_store_suite!` (feature `testing`).
//! The SQL stores own the tables `generated_apps` and `app_versions` (migration table
//! `_appforge_apps_migrations`). Time comes from the [`SharedClock`](appforge_core::SharedClock)
//! given to `with_clock`.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sqlite` | yes | [`SqliteAppStore`], the embedded store (`sqlx` with the bundled SQLite) |
//! | `postgres` | no | `PgAppStore`, for many processes on one database |
//! | `testing` | no | `testing` and `app_store_suite!`: the conformance suite every [`AppStore`] passes, for a store outside this crate |
//!
//! With `default-features = false` the crate builds [`MemoryAppStore`] only, without `sqlx`
//! or a TLS stack.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod app;
mod change;
mod diff;
mod error;
mod export;
mod library;
mod request;
mod slug;
mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use app::{App, PublishedApp, Saved, Version, VersionInfo};
pub use appforge_core::Owner;
pub use change::{MAX_DESCRIPTION_CHARS, MAX_METADATA_BYTES, MAX_TITLE_CHARS};
pub use diff::{DiffLimits, FileDiff, FileStatus, VersionDiff, diff_files, diff_files_bounded};
pub use error::{Error, Result};
pub use export::{export_zip, zip_files};
pub use library::AppLibrary;
pub use request::{AppPage, AppPatch, Change, Cursor, ListApps, NewApp, NewVersion};
pub use store::any::AnyAppStore;
pub use store::memory::MemoryAppStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::postgres::PgAppStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::sqlite::SqliteAppStore;
pub use store::{AppStore, DEFAULT_RETENTION};
