//! Change sets: what a `modify` generation returns, and how it is applied to an app.

mod apply;
pub(crate) mod json;

use serde::{Deserialize, Serialize};

pub use apply::{ApplyError, ApplyErrorKind};
pub use json::{ChangeSetError, json_candidates};

/// Edits to an app's files, applied all or nothing by [`ChangeSet::apply`].
///
/// # Example
///
/// ```
/// use appforge_files::{AppFile, ChangeSet};
///
/// let model_output = r#"Here you go:
/// ```json
/// {"summary": "Sticky header", "changes": [
///   {"action": "update", "path": "src/App.tsx", "edits": [
///     {"op": "replace", "find": "<header>", "with": "<header className=\"sticky top-0\">"}
///   ]}
/// ]}
/// ```"#;
/// let change_set = ChangeSet::from_model_output(model_output)?;
/// let app = [AppFile::new("src/App.tsx", "<header>Todo</header>\n")];
/// let updated = change_set.apply(&app)?;
/// assert_eq!(updated[0].content, "<header className=\"sticky top-0\">Todo</header>\n");
/// # Ok::<(), appforge_files::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "json-schema",
    schemars(description = "Edits to an app's files, applied in order, all or nothing.")
)]
pub struct ChangeSet {
    /// What the change does, for the version history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The changes, applied in order.
    pub changes: Vec<FileChange>,
}

/// One file's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FileChange {
    /// Writes a file with the given content (replacing it when it exists).
    Create {
        /// The file's path.
        path: String,
        /// The whole content.
        content: String,
    },
    /// Deletes a file, which must exist.
    Delete {
        /// The file's path.
        path: String,
    },
    /// Edits a file, which must exist.
    Update {
        /// The file's path.
        path: String,
        /// The edits, applied in order.
        edits: Vec<Edit>,
    },
}

impl FileChange {
    /// The path this change touches.
    #[must_use]
    pub fn path(&self) -> &str {
        match self {
            Self::Create { path, .. } | Self::Delete { path } | Self::Update { path, .. } => path,
        }
    }

    fn path_mut(&mut self) -> &mut String {
        match self {
            Self::Create { path, .. } | Self::Delete { path } | Self::Update { path, .. } => path,
        }
    }
}

/// One edit inside a file. Anchors and `find` texts must occur exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Edit {
    /// Replaces the one occurrence of `find` with `with`.
    Replace {
        /// The text to find.
        find: String,
        /// Its replacement.
        with: String,
    },
    /// Inserts `content` just before the one occurrence of `anchor`.
    InsertBefore {
        /// The text to find.
        anchor: String,
        /// The text to insert.
        content: String,
    },
    /// Inserts `content` just after the one occurrence of `anchor`.
    InsertAfter {
        /// The text to find.
        anchor: String,
        /// The text to insert.
        content: String,
    },
    /// Removes the one occurrence of `find`.
    Delete {
        /// The text to remove.
        find: String,
    },
    /// Adds `content` at the end of the file, on a new line.
    Append {
        /// The text to add.
        content: String,
    },
    /// Adds an import line after the existing imports, unless the file already has it.
    AddImport {
        /// The whole import statement.
        line: String,
    },
}

impl Edit {
    /// The operation's name, as in the JSON (`replace`, `insert_before`, ...).
    #[must_use]
    pub fn op(&self) -> &'static str {
        match self {
            Self::Replace { .. } => "replace",
            Self::InsertBefore { .. } => "insert_before",
            Self::InsertAfter { .. } => "insert_after",
            Self::Delete { .. } => "delete",
            Self::Append { .. } => "append",
            Self::AddImport { .. } => "add_import",
        }
    }
}
