//! The files of generated apps: what `appforge-llm` streams from a model and `appforge-apps`
//! keeps as versions.
//!
//! - [`protocol`]: the generation protocol (`===FILE:path===` sections) and its incremental
//!   parser, [`validate_path`] for every path a model or a user names, and
//!   [`protocol::scaffold`], the project files an exported app lacks.
//! - [`ChangeSet`]: a modification as edits by anchor, read from a model's reply and applied
//!   all or nothing.
//!
//! ```
//! use appforge_files::protocol::parse;
//! use appforge_files::{AppFile, ChangeSet};
//!
//! let generation = parse("===NAME===\nTodo\n===FILE:src/App.tsx===\n<h1>Todo</h1>\n===END===\n");
//! assert_eq!(generation.files, [AppFile::new("src/App.tsx", "<h1>Todo</h1>\n")]);
//!
//! let change = ChangeSet::from_model_output(
//!     r#"{"changes": [{"action": "update", "path": "src/App.tsx",
//!        "edits": [{"op": "replace", "find": "Todo", "with": "Tasks"}]}]}"#,
//! )?;
//! let files = change.apply(&generation.files)?;
//! assert_eq!(files[0].content, "<h1>Tasks</h1>\n");
//! # Ok::<(), appforge_files::Error>(())
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `json-schema` | no | `schemars::JsonSchema` for [`ChangeSet`] and its parts |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod changeset;
pub mod protocol;

pub use changeset::{
    ApplyError, ApplyErrorKind, ChangeSet, ChangeSetError, Edit, FileChange, json_candidates,
};
pub use protocol::{AppFile, PathError, Warning, validate_path};

/// The error of this crate: a refused path, a reply that is not a change set, or a change set
/// that does not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A file path was refused.
    InvalidPath(PathError),
    /// A model's reply is not a usable change set; the raw text is kept.
    ChangeSet(ChangeSetError),
    /// A change set does not fit the app it was applied to; nothing was applied.
    Apply(ApplyError),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidPath(e) => e.fmt(f),
            Self::ChangeSet(e) => e.fmt(f),
            Self::Apply(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidPath(e) => Some(e),
            Self::ChangeSet(e) => Some(e),
            Self::Apply(e) => Some(e),
        }
    }
}

impl From<PathError> for Error {
    fn from(error: PathError) -> Self {
        Self::InvalidPath(error)
    }
}

impl From<ChangeSetError> for Error {
    fn from(error: ChangeSetError) -> Self {
        Self::ChangeSet(error)
    }
}

impl From<ApplyError> for Error {
    fn from(error: ApplyError) -> Self {
        Self::Apply(error)
    }
}
