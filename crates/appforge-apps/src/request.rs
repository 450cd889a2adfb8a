//! What callers hand the store: new apps and versions, patches, list requests.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use appforge_files::{AppFile, ChangeSet};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::app::App;
use crate::{Error, Result};

/// How a new version's files come about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The whole file set (a `full_app` generation, a restore).
    Files(Vec<AppFile>),
    /// Per-file operations on the base version (a `modify` generation).
    ChangeSet(ChangeSet),
}

/// A version to store, with what produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewVersion {
    /// The files, or the change to the base version.
    pub change: Change,
    /// The job that produced it: saving the same job's version twice returns the first.
    pub job_id: Option<Uuid>,
    /// What the user asked for.
    pub prompt: Option<String>,
    /// What changed, in words.
    pub change_summary: Option<String>,
    /// Input tokens used.
    pub input_tokens: u64,
    /// Output tokens used.
    pub output_tokens: u64,
    /// How long the generation took.
    pub duration: Duration,
    /// The uploads (reference images) the generation attached, by id.
    pub attachments: Vec<Uuid>,
}

impl NewVersion {
    /// A version made of `change`.
    #[must_use]
    pub fn new(change: Change) -> Self {
        Self {
            change,
            job_id: None,
            prompt: None,
            change_summary: None,
            input_tokens: 0,
            output_tokens: 0,
            duration: Duration::ZERO,
            attachments: Vec::new(),
        }
    }

    /// A version holding exactly `files`.
    #[must_use]
    pub fn files(files: Vec<AppFile>) -> Self {
        Self::new(Change::Files(files))
    }

    /// A version made by applying `change_set` to the base version. Its summary becomes the
    /// version's change summary unless [`summary`](Self::summary) sets another.
    #[must_use]
    pub fn change_set(change_set: ChangeSet) -> Self {
        let summary = change_set.summary.clone();
        Self {
            change_summary: summary,
            ..Self::new(Change::ChangeSet(change_set))
        }
    }

    /// The job that produced it.
    #[must_use]
    pub fn job(mut self, id: Uuid) -> Self {
        self.job_id = Some(id);
        self
    }

    /// What the user asked for.
    #[must_use]
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// What changed, in words.
    #[must_use]
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.change_summary = Some(summary.into());
        self
    }

    /// Tokens used.
    #[must_use]
    pub fn tokens(mut self, input: u64, output: u64) -> Self {
        self.input_tokens = input;
        self.output_tokens = output;
        self
    }

    /// How long the generation took.
    #[must_use]
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// The uploads (reference images) the generation attached, by id: the version records
    /// them in this order, each once.
    #[must_use]
    pub fn attachments(mut self, ids: Vec<Uuid>) -> Self {
        self.attachments = ids;
        self
    }
}

/// A new app and its first version.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewApp {
    /// The title.
    pub title: String,
    /// The description.
    pub description: String,
    /// Free-form JSON kept with the app.
    pub metadata: Value,
    /// Version 1 (a change set applies to an empty app).
    pub version: NewVersion,
    /// The user creating an app in an org's space ([`Owner::Org`](crate::Owner::Org)),
    /// recorded as its [`user_id`](crate::App::user_id); without it an org's app records the
    /// nil id. Ignored for a personal app, whose creator is the user it is created for.
    pub created_by: Option<Uuid>,
}

impl NewApp {
    /// An app titled `title` whose version 1 is `version`.
    #[must_use]
    pub fn new(title: impl Into<String>, version: NewVersion) -> Self {
        Self {
            title: title.into(),
            description: String::new(),
            metadata: Value::Object(serde_json::Map::new()),
            version,
            created_by: None,
        }
    }

    /// The user creating the app, for an app created in an org's space (see
    /// [`created_by`](Self#structfield.created_by)).
    #[must_use]
    pub fn created_by(mut self, user: Uuid) -> Self {
        self.created_by = Some(user);
        self
    }

    /// The description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Free-form JSON kept with the app.
    #[must_use]
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// Changes to an app's details; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AppPatch {
    /// A new title.
    pub title: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// New metadata (replaces the old).
    pub metadata: Option<Value>,
    /// The host's public flag.
    pub is_public: Option<bool>,
}

impl AppPatch {
    /// Renames the app.
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Replaces the metadata.
    #[must_use]
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Sets the host's public flag.
    #[must_use]
    pub fn is_public(mut self, is_public: bool) -> Self {
        self.is_public = Some(is_public);
        self
    }
}

/// A position in a user's library: the last app of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) id: Uuid,
}

impl Cursor {
    pub(crate) fn of(app: &App) -> Self {
        Self {
            created_at: app.created_at,
            id: app.id,
        }
    }

    /// Whether `app` comes after the cursor, newest first.
    pub(crate) fn precedes(&self, app: &App) -> bool {
        (app.created_at, app.id) < (self.created_at, self.id)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            self.created_at.timestamp_millis(),
            self.id.simple()
        )
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidArgument("invalid cursor".into());
        let (ms, id) = s.split_once('.').ok_or_else(bad)?;
        let created_at = ms
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(bad)?;
        let id = Uuid::parse_str(id).map_err(|_| bad())?;
        Ok(Self { created_at, id })
    }
}

/// Which apps of a user's library to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListApps {
    /// At most this many (1 to 100).
    pub limit: u32,
    /// After this position.
    pub after: Option<Cursor>,
    /// Only apps whose title contains this text, ignoring case.
    pub search: Option<String>,
    /// The deleted apps that can still be restored, instead of the live ones.
    pub deleted: bool,
}

impl Default for ListApps {
    fn default() -> Self {
        Self {
            limit: 20,
            after: None,
            search: None,
            deleted: false,
        }
    }
}

impl ListApps {
    /// The first `limit` apps.
    #[must_use]
    pub fn first(limit: u32) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Continues after `cursor`.
    #[must_use]
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// Only titles containing `text`, ignoring case.
    #[must_use]
    pub fn search(mut self, text: impl Into<String>) -> Self {
        self.search = Some(text.into());
        self
    }

    /// The deleted apps that can still be restored.
    #[must_use]
    pub fn deleted(mut self) -> Self {
        self.deleted = true;
        self
    }

    pub(crate) fn checked_limit(&self) -> Result<u32> {
        if (1..=100).contains(&self.limit) {
            Ok(self.limit)
        } else {
            Err(Error::InvalidArgument(
                "the page size must be between 1 and 100".into(),
            ))
        }
    }

    /// The search text folded for comparison, or `None` when there is none.
    pub(crate) fn folded_search(&self) -> Option<String> {
        self.search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(fold)
    }
}

/// A page of apps.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AppPage {
    /// The apps, newest first.
    pub items: Vec<App>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
}

impl AppPage {
    /// A page of `limit` from up to `limit + 1` fetched apps.
    pub(crate) fn from_fetched(mut items: Vec<App>, limit: u32) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(Cursor::of)
        } else {
            None
        };
        Self { items, next }
    }
}

/// A title folded for case-insensitive search.
pub(crate) fn fold(text: &str) -> String {
    text.to_lowercase()
}
