//! Per-file differences between two versions.

use std::collections::BTreeMap;

use appforge_llm::AppFile;
use serde::{Deserialize, Serialize};
use similar::TextDiff;

use crate::app::Version;

/// How a file differs between two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FileStatus {
    /// Only in the later version.
    Added,
    /// Only in the earlier version.
    Removed,
    /// In both, with different content.
    Changed,
}

/// One file's difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FileDiff {
    /// The file.
    pub path: String,
    /// Added, removed or changed.
    pub status: FileStatus,
    /// A unified diff (`--- a/path`, `+++ b/path`, hunks with three lines of context).
    pub diff: String,
}

/// The differences between two versions of an app, file by file in path order; files that
/// are the same in both are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VersionDiff {
    /// The earlier version's number.
    pub from: u32,
    /// The later version's number.
    pub to: u32,
    /// The files that differ.
    pub files: Vec<FileDiff>,
}

impl VersionDiff {
    /// The differences from `from` to `to`.
    #[must_use]
    pub fn between(from: &Version, to: &Version) -> Self {
        Self {
            from: from.info.number,
            to: to.info.number,
            files: diff_files(&from.files, &to.files),
        }
    }
}

/// The per-file differences from `old` to `new`, in path order.
#[must_use]
pub fn diff_files(old: &[AppFile], new: &[AppFile]) -> Vec<FileDiff> {
    let mut paths: BTreeMap<&str, (Option<&str>, Option<&str>)> = BTreeMap::new();
    for file in old {
        paths.entry(&file.path).or_default().0 = Some(&file.content);
    }
    for file in new {
        paths.entry(&file.path).or_default().1 = Some(&file.content);
    }
    paths
        .into_iter()
        .filter_map(|(path, pair)| {
            let status = match pair {
                (None, Some(_)) => FileStatus::Added,
                (Some(_), None) => FileStatus::Removed,
                (Some(a), Some(b)) if a != b => FileStatus::Changed,
                _ => return None,
            };
            let (a, b) = (pair.0.unwrap_or_default(), pair.1.unwrap_or_default());
            let diff = TextDiff::from_lines(a, b)
                .unified_diff()
                .context_radius(3)
                .header(&format!("a/{path}"), &format!("b/{path}"))
                .to_string();
            Some(FileDiff {
                path: path.to_owned(),
                status,
                diff,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_removed_and_changed_files_with_unified_diffs() {
        let old = [
            AppFile::new("same.txt", "x\n"),
            AppFile::new("gone.txt", "bye\n"),
            AppFile::new("app.tsx", "a\nb\nc\n"),
        ];
        let new = [
            AppFile::new("same.txt", "x\n"),
            AppFile::new("app.tsx", "a\nB\nc\n"),
            AppFile::new("new.txt", "hi\n"),
        ];
        let diffs = diff_files(&old, &new);
        let summary: Vec<_> = diffs.iter().map(|d| (d.path.as_str(), d.status)).collect();
        assert_eq!(
            summary,
            [
                ("app.tsx", FileStatus::Changed),
                ("gone.txt", FileStatus::Removed),
                ("new.txt", FileStatus::Added),
            ]
        );
        assert_eq!(
            diffs[0].diff,
            "--- a/app.tsx\n+++ b/app.tsx\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
        assert_eq!(
            diffs[2].diff,
            "--- a/new.txt\n+++ b/new.txt\n@@ -0,0 +1 @@\n+hi\n"
        );
    }
}
