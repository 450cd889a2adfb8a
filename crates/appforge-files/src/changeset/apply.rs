//! Applying a change set to an app's files: pure, all or nothing.

use std::fmt;

use super::{ChangeSet, Edit, FileChange};
use crate::protocol::AppFile;

/// Why an edit could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApplyErrorKind {
    /// The anchor (or `find` text) does not occur in the file.
    AnchorMissing,
    /// The anchor occurs more than once, so the place is ambiguous.
    AnchorAmbiguous {
        /// How many times it occurs.
        count: usize,
    },
    /// The anchor (or `find` text) is empty.
    AnchorEmpty,
    /// An update or delete names a file the app does not have.
    FileMissing,
}

/// A change that does not fit the app; nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyError {
    /// The file's path.
    pub path: String,
    /// The operation (`replace`, `insert_after`, `update`, `delete`, ...).
    pub op: &'static str,
    /// The index of the change in the change set.
    pub change: usize,
    /// The index of the edit within the change, for updates.
    pub edit: Option<usize>,
    /// The anchor or `find` text, when the operation has one.
    pub anchor: Option<String>,
    /// What went wrong.
    pub kind: ApplyErrorKind,
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot apply change {} to {:?}", self.change, self.path)?;
        if let Some(edit) = self.edit {
            write!(f, ", edit {edit}")?;
        }
        write!(f, " ({})", self.op)?;
        let anchor = self.anchor.as_deref().map(|a| {
            let shown: String = a.chars().take(80).collect();
            let more = if shown.len() < a.len() { "..." } else { "" };
            format!("{shown:?}{more}")
        });
        let anchor = anchor.unwrap_or_default();
        match self.kind {
            ApplyErrorKind::AnchorMissing => write!(f, ": anchor {anchor} not found"),
            ApplyErrorKind::AnchorAmbiguous { count } => {
                write!(f, ": anchor {anchor} occurs {count} times")
            }
            ApplyErrorKind::AnchorEmpty => write!(f, ": the anchor is empty"),
            ApplyErrorKind::FileMissing => write!(f, ": no such file"),
        }
    }
}

impl std::error::Error for ApplyError {}

impl ChangeSet {
    /// Applies the change set to `files` and returns the new files: existing files keep their
    /// order, created files are appended.
    ///
    /// # Errors
    ///
    /// [`Error::Apply`](crate::Error::Apply) naming the file, operation and anchor when an
    /// anchor is missing, ambiguous or empty, or a file to update or delete does not exist.
    /// Nothing is applied then.
    pub fn apply(&self, files: &[AppFile]) -> crate::Result<Vec<AppFile>> {
        let mut out = files.to_vec();
        for (change_index, change) in self.changes.iter().enumerate() {
            let position = out.iter().position(|f| f.path == change.path());
            let err = |op, edit, anchor: Option<&str>, kind| ApplyError {
                path: change.path().to_owned(),
                op,
                change: change_index,
                edit,
                anchor: anchor.map(str::to_owned),
                kind,
            };
            match (change, position) {
                (FileChange::Create { content, .. }, Some(i)) => out[i].content.clone_from(content),
                (FileChange::Create { path, content }, None) => {
                    out.push(AppFile::new(path, content.as_str()));
                }
                (FileChange::Delete { .. }, Some(i)) => {
                    out.remove(i);
                }
                (FileChange::Delete { .. }, None) => {
                    return Err(err("delete", None, None, ApplyErrorKind::FileMissing).into());
                }
                (FileChange::Update { .. }, None) => {
                    return Err(err("update", None, None, ApplyErrorKind::FileMissing).into());
                }
                (FileChange::Update { edits, .. }, Some(i)) => {
                    for (edit_index, edit) in edits.iter().enumerate() {
                        let content = &mut out[i].content;
                        apply_edit(content, edit).map_err(|(anchor, kind)| {
                            err(edit.op(), Some(edit_index), Some(anchor), kind)
                        })?;
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Applies one edit in place, or says which anchor failed and how.
fn apply_edit<'e>(content: &mut String, edit: &'e Edit) -> Result<(), (&'e str, ApplyErrorKind)> {
    match edit {
        Edit::Replace { find, with } => {
            let at = locate(content, find)?;
            content.replace_range(at..at + find.len(), with);
        }
        Edit::Delete { find } => {
            let at = locate(content, find)?;
            content.replace_range(at..at + find.len(), "");
        }
        Edit::InsertBefore {
            anchor,
            content: text,
        } => {
            let at = locate(content, anchor)?;
            content.insert_str(at, text);
        }
        Edit::InsertAfter {
            anchor,
            content: text,
        } => {
            let at = locate(content, anchor)? + anchor.len();
            content.insert_str(at, text);
        }
        Edit::Append { content: text } => {
            if !content.is_empty() && !content.ends_with('\n') {
                content.push('\n');
            }
            content.push_str(text);
        }
        Edit::AddImport { line } => add_import(content, line),
    }
    Ok(())
}

/// The byte offset of the one occurrence of `anchor`.
fn locate<'e>(content: &str, anchor: &'e str) -> Result<usize, (&'e str, ApplyErrorKind)> {
    if anchor.is_empty() {
        return Err((anchor, ApplyErrorKind::AnchorEmpty));
    }
    let mut found = content.match_indices(anchor).map(|(i, _)| i);
    match (found.next(), found.count()) {
        (None, _) => Err((anchor, ApplyErrorKind::AnchorMissing)),
        (Some(at), 0) => Ok(at),
        (Some(_), more) => Err((anchor, ApplyErrorKind::AnchorAmbiguous { count: more + 1 })),
    }
}

/// Inserts an import after the file's leading imports (or its directives), once.
fn add_import(content: &mut String, line: &str) {
    let line = line.trim();
    if line.is_empty() || content.lines().any(|l| l.trim() == line) {
        return;
    }
    let mut insert_at = 0;
    let mut offset = 0;
    let mut open_import = false;
    for l in content.split_inclusive('\n') {
        let end = offset + l.len();
        offset = end;
        let t = l.trim();
        if open_import {
            insert_at = end;
            open_import = !(t.contains(" from ") || t.starts_with('}') || t.ends_with(';'));
        } else if t.starts_with("import ") || t.starts_with("import{") {
            insert_at = end;
            open_import = !(t.contains(" from ")
                || t.ends_with(';')
                || t.starts_with("import '")
                || t.starts_with("import \""));
        } else if t.starts_with("'use ") || t.starts_with("\"use ") {
            insert_at = end;
        } else if !(t.is_empty()
            || t.starts_with("//")
            || t.starts_with("/*")
            || t.starts_with('*'))
        {
            break;
        }
    }
    let mut text = String::with_capacity(line.len() + 2);
    if insert_at > 0 && !content[..insert_at].ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    content.insert_str(insert_at, &text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn update(path: &str, edits: Vec<Edit>) -> FileChange {
        FileChange::Update {
            path: path.into(),
            edits,
        }
    }

    fn apply_one(content: &str, edit: Edit) -> crate::Result<String> {
        let set = ChangeSet {
            summary: None,
            changes: vec![update("a.tsx", vec![edit])],
        };
        Ok(set
            .apply(&[AppFile::new("a.tsx", content)])?
            .remove(0)
            .content)
    }

    #[test]
    fn each_operation() {
        let base =
            "import React from 'react';\n\nexport function A() {\n  return <div>hi</div>;\n}\n";
        let s = |x: &str| x.to_owned();
        assert_eq!(
            apply_one(
                base,
                Edit::Replace {
                    find: s("<div>hi</div>"),
                    with: s("<p>yo</p>")
                }
            )
            .unwrap(),
            base.replace("<div>hi</div>", "<p>yo</p>")
        );
        assert_eq!(
            apply_one(
                base,
                Edit::InsertBefore {
                    anchor: s("export"),
                    content: s("// A\n")
                }
            )
            .unwrap(),
            base.replace("export", "// A\nexport")
        );
        assert_eq!(
            apply_one(
                base,
                Edit::InsertAfter {
                    anchor: s("<div>"),
                    content: s("!")
                }
            )
            .unwrap(),
            base.replace("<div>", "<div>!")
        );
        assert_eq!(
            apply_one(base, Edit::Delete { find: s("hi") }).unwrap(),
            base.replace("hi", "")
        );
        assert_eq!(
            apply_one("x", Edit::Append { content: s("y\n") }).unwrap(),
            "x\ny\n"
        );
        assert_eq!(
            apply_one("", Edit::Append { content: s("y\n") }).unwrap(),
            "y\n"
        );
        assert_eq!(
            apply_one(
                base,
                Edit::AddImport {
                    line: s("import { useState } from 'react';")
                }
            )
            .unwrap(),
            base.replace(
                "'react';\n",
                "'react';\nimport { useState } from 'react';\n"
            )
        );
    }

    #[test]
    fn add_import_is_idempotent_and_finds_its_place() {
        let line = "import { x } from './x';";
        let once = apply_one(
            "'use client';\n// header\nconst a = 1;\n",
            Edit::AddImport { line: line.into() },
        )
        .unwrap();
        assert_eq!(
            once,
            format!("'use client';\n{line}\n// header\nconst a = 1;\n")
        );
        let twice = apply_one(
            &once,
            Edit::AddImport {
                line: format!("  {line}  "),
            },
        )
        .unwrap();
        assert_eq!(twice, once);
        let multi = "import {\n  a,\n  b,\n} from 'ab';\nimport 'side.css';\n\ncode();\n";
        assert_eq!(
            apply_one(multi, Edit::AddImport { line: line.into() }).unwrap(),
            multi.replace("'side.css';\n", &format!("'side.css';\n{line}\n"))
        );
        assert_eq!(
            apply_one("", Edit::AddImport { line: line.into() }).unwrap(),
            format!("{line}\n")
        );
        assert_eq!(
            apply_one("import a from 'a';", Edit::AddImport { line: line.into() }).unwrap(),
            format!("import a from 'a';\n{line}\n")
        );
    }

    #[test]
    fn missing_and_ambiguous_anchors_name_file_op_and_anchor() {
        let err = apply_one(
            "a a",
            Edit::InsertAfter {
                anchor: "a".into(),
                content: "b".into(),
            },
        )
        .unwrap_err();
        let Error::Apply(e) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(e.kind, ApplyErrorKind::AnchorAmbiguous { count: 2 });
        assert_eq!(
            err.to_string(),
            "cannot apply change 0 to \"a.tsx\", edit 0 (insert_after): anchor \"a\" occurs 2 times"
        );
        let err = apply_one(
            "a",
            Edit::Replace {
                find: "<nav>".into(),
                with: String::new(),
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot apply change 0 to \"a.tsx\", edit 0 (replace): anchor \"<nav>\" not found"
        );
        let err = apply_one(
            "a",
            Edit::Delete {
                find: String::new(),
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot apply change 0 to \"a.tsx\", edit 0 (delete): the anchor is empty"
        );
    }

    #[test]
    fn all_or_nothing() {
        let files = vec![AppFile::new("a.ts", "one\n"), AppFile::new("b.ts", "two\n")];
        let set = ChangeSet {
            summary: None,
            changes: vec![
                FileChange::Create {
                    path: "c.ts".into(),
                    content: "three\n".into(),
                },
                update(
                    "a.ts",
                    vec![Edit::Replace {
                        find: "one".into(),
                        with: "1".into(),
                    }],
                ),
                FileChange::Delete {
                    path: "b.ts".into(),
                },
                update(
                    "a.ts",
                    vec![Edit::Replace {
                        find: "one".into(),
                        with: "uno".into(),
                    }],
                ),
            ],
        };
        let err = set.apply(&files).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot apply change 3 to \"a.ts\", edit 0 (replace): anchor \"one\" not found"
        );
        // The input is untouched (apply is pure) and nothing partial came back.
        assert_eq!(files[0].content, "one\n");
        let ok = ChangeSet {
            summary: None,
            changes: set.changes[..3].to_vec(),
        }
        .apply(&files)
        .unwrap();
        assert_eq!(
            ok,
            vec![AppFile::new("a.ts", "1\n"), AppFile::new("c.ts", "three\n")]
        );
        let missing = ChangeSet {
            summary: None,
            changes: vec![FileChange::Delete {
                path: "zz.ts".into(),
            }],
        };
        assert_eq!(
            missing.apply(&files).unwrap_err().to_string(),
            "cannot apply change 0 to \"zz.ts\" (delete): no such file"
        );
    }
}
