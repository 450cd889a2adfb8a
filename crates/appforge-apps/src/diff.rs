//! Per-file differences between two versions.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use appforge_files::AppFile;
use serde::{Deserialize, Serialize};
use similar::TextDiff;

use crate::app::Version;
use crate::{Error, Result};

/// Bounds on the work of a diff, for diffs computed on behalf of users: the bytes of the
/// files that differ (both sides counted), and the time the line matching may take.
///
/// Past the time cap the matching stops looking for the shortest diff and finishes with a
/// coarser one: the diff is still correct (applying it gives the later version), only longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffLimits {
    /// The most bytes of differing files to compare (default 4 MiB).
    pub max_bytes: u64,
    /// How long the line matching may take over all files (default 2 s).
    pub timeout: Duration,
}

impl Default for DiffLimits {
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024,
            timeout: Duration::from_secs(2),
        }
    }
}

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
    /// The differences from `from` to `to`, without bounds: see [`bounded`](Self::bounded)
    /// for diffs computed on behalf of users.
    #[must_use]
    pub fn between(from: &Version, to: &Version) -> Self {
        Self {
            from: from.info.number,
            to: to.info.number,
            files: diff_files(&from.files, &to.files),
        }
    }

    /// The differences from `from` to `to` within `limits`. CPU-bound: run it on a blocking
    /// thread (`tokio::task::spawn_blocking`) in an async server.
    ///
    /// # Errors
    ///
    /// [`Error::DiffTooLarge`] when the files that differ hold more than
    /// `limits.max_bytes`, checked before any matching starts.
    pub fn bounded(from: &Version, to: &Version, limits: &DiffLimits) -> Result<Self> {
        Ok(Self {
            from: from.info.number,
            to: to.info.number,
            files: diff_files_bounded(&from.files, &to.files, limits)?,
        })
    }
}

/// The files of `old` and `new` by path, with the status of each one that differs.
fn pairs<'a>(
    old: &'a [AppFile],
    new: &'a [AppFile],
) -> Vec<(&'a str, FileStatus, &'a str, &'a str)> {
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
            Some((
                path,
                status,
                pair.0.unwrap_or_default(),
                pair.1.unwrap_or_default(),
            ))
        })
        .collect()
}

fn file_diff<'a>(path: &str, status: FileStatus, diff: &'a TextDiff<'a, 'a, 'a, str>) -> FileDiff {
    FileDiff {
        path: path.to_owned(),
        status,
        diff: diff
            .unified_diff()
            .context_radius(3)
            .header(&format!("a/{path}"), &format!("b/{path}"))
            .to_string(),
    }
}

/// The per-file differences from `old` to `new`, in path order, without bounds.
#[must_use]
pub fn diff_files(old: &[AppFile], new: &[AppFile]) -> Vec<FileDiff> {
    pairs(old, new)
        .into_iter()
        .map(|(path, status, a, b)| file_diff(path, status, &TextDiff::from_lines(a, b)))
        .collect()
}

/// The per-file differences from `old` to `new`, in path order, within `limits`: the files
/// that differ may hold at most `limits.max_bytes` (both sides counted), and the line
/// matching of all of them shares one deadline, `limits.timeout` from the call.
///
/// # Errors
///
/// [`Error::DiffTooLarge`] when the files that differ are too large.
pub fn diff_files_bounded(
    old: &[AppFile],
    new: &[AppFile],
    limits: &DiffLimits,
) -> Result<Vec<FileDiff>> {
    let deadline = Instant::now() + limits.timeout;
    let pairs = pairs(old, new);
    let bytes: u64 = pairs
        .iter()
        .map(|(_, _, a, b)| u64::try_from(a.len() + b.len()).unwrap_or(u64::MAX))
        .fold(0, u64::saturating_add);
    if bytes > limits.max_bytes {
        return Err(Error::DiffTooLarge {
            bytes,
            limit: limits.max_bytes,
        });
    }
    Ok(pairs
        .into_iter()
        .map(|(path, status, a, b)| {
            let diff = TextDiff::configure().deadline(deadline).diff_lines(a, b);
            file_diff(path, status, &diff)
        })
        .collect())
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
        let bounded = diff_files_bounded(&old, &new, &DiffLimits::default()).unwrap();
        assert_eq!(bounded, diffs);
    }

    #[test]
    fn a_bounded_diff_refuses_files_past_the_size_cap() {
        let old = [
            AppFile::new("same.txt", "x".repeat(1_000)),
            AppFile::new("a", "1\n"),
        ];
        let new = [
            AppFile::new("same.txt", "x".repeat(1_000)),
            AppFile::new("a", "2\n"),
        ];
        // Unchanged files do not count: 4 bytes differ.
        let limits = DiffLimits {
            max_bytes: 4,
            ..DiffLimits::default()
        };
        assert_eq!(diff_files_bounded(&old, &new, &limits).unwrap().len(), 1);
        let limits = DiffLimits {
            max_bytes: 3,
            ..DiffLimits::default()
        };
        let err = diff_files_bounded(&old, &new, &limits).unwrap_err();
        assert!(
            matches!(err, Error::DiffTooLarge { bytes: 4, limit: 3 }),
            "{err}"
        );
    }

    #[test]
    fn a_diff_past_its_deadline_is_still_correct() {
        // Many lines, every other one changed: the shortest diff takes the matcher a while;
        // with no time at all it finishes coarsely, and the diff still turns old into new.
        let old: String = (0..4_000).map(|i| format!("line {i}\n")).collect();
        let new: String = (0..4_000)
            .map(|i| {
                if i % 2 == 0 {
                    format!("line {i}\n")
                } else {
                    format!("changed {i}\n")
                }
            })
            .collect();
        let limits = DiffLimits {
            timeout: Duration::ZERO,
            ..DiffLimits::default()
        };
        let files = [AppFile::new("a.txt", old)];
        let changed = [AppFile::new("a.txt", new.clone())];
        let diffs = diff_files_bounded(&files, &changed, &limits).unwrap();
        let mut rebuilt = String::new();
        for line in diffs[0].diff.lines().skip(2) {
            if let Some(kept) = line.strip_prefix(' ').or_else(|| line.strip_prefix('+')) {
                rebuilt.push_str(kept);
                rebuilt.push('\n');
            }
        }
        // Context radius 3 with every other line changed: one hunk covers the whole file.
        assert_eq!(rebuilt, new);
        // The deadline took effect: all but the common first line are removed and written
        // again, where the shortest diff removes the 2,000 changed lines only.
        let removed = |diff: &str| {
            diff.lines()
                .filter(|l| l.starts_with('-') && !l.starts_with("---"))
                .count()
        };
        assert_eq!(removed(&diffs[0].diff), 3_999);
        let minimal = diff_files(&files, &changed);
        assert_eq!(removed(&minimal[0].diff), 2_000);
    }
}
