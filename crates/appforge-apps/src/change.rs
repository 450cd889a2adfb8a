//! Turning a change into a version's files: path checks, and re-applying a change made from
//! an older version on top of the current one without losing anyone's work.

use std::collections::{BTreeMap, HashSet};

use appforge_files::{AppFile, ChangeSet, FileChange, validate_path};

use crate::request::{Change, NewApp, NewVersion};
use crate::{Error, Result};

/// The longest accepted app title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// The longest accepted app description, in characters. A longer description given by a user
/// ([`AppPatch`](crate::AppPatch)) is refused; one given to a new app
/// ([`NewApp`]: generations write it) is cut to this length.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// The largest accepted app metadata, in bytes of compact JSON.
pub const MAX_METADATA_BYTES: usize = 32 * 1024;

/// Checks every path of `change` (relative, no `..`, no absolute or drive path, no NUL, sane
/// length) and writes it back normalised; a file set may not hold a path twice.
pub(crate) fn check_change(change: &mut Change) -> Result<()> {
    match change {
        Change::Files(files) => {
            let mut seen = HashSet::with_capacity(files.len());
            for file in files.iter_mut() {
                file.path = validate_path(&file.path).map_err(Error::InvalidPath)?;
                if !seen.insert(file.path.clone()) {
                    return Err(Error::InvalidArgument(format!(
                        "the file {:?} appears twice",
                        file.path
                    )));
                }
            }
        }
        Change::ChangeSet(set) => {
            for change in &mut set.changes {
                let checked = validate_path(change.path()).map_err(Error::InvalidPath)?;
                set_path(change, checked);
            }
        }
    }
    Ok(())
}

fn set_path(change: &mut FileChange, checked: String) {
    match change {
        FileChange::Create { path, .. }
        | FileChange::Delete { path }
        | FileChange::Update { path, .. } => *path = checked,
        // `FileChange` is non-exhaustive: a new kind of change keeps the path validate_path
        // accepted (it differs only when normalised), which apply() then looks up.
        _ => {}
    }
}

/// Checks a title: not blank, not too long; returns it trimmed.
pub(crate) fn check_title(title: &str) -> Result<String> {
    let title = title.trim();
    if title.is_empty() {
        return Err(Error::InvalidArgument("the title must not be empty".into()));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(Error::InvalidArgument(format!(
            "the title is longer than {MAX_TITLE_CHARS} characters"
        )));
    }
    if title.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(
            "the title contains a control character".into(),
        ));
    }
    Ok(title.to_owned())
}

/// Checks a description a user sets: at most [`MAX_DESCRIPTION_CHARS`] characters.
pub(crate) fn check_description(description: &str) -> Result<()> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::InvalidArgument(format!(
            "the description is longer than {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(())
}

/// Checks metadata: at most [`MAX_METADATA_BYTES`] bytes of compact JSON.
pub(crate) fn check_metadata(metadata: &serde_json::Value) -> Result<()> {
    let mut counter = ByteCounter(0);
    // Counting stops at the first byte past the limit: a huge value is not serialized whole.
    let within = serde_json::to_writer(&mut counter, metadata).is_ok();
    if !within || counter.0 > MAX_METADATA_BYTES {
        return Err(Error::InvalidArgument(format!(
            "the metadata is larger than {MAX_METADATA_BYTES} bytes of JSON"
        )));
    }
    Ok(())
}

/// Counts bytes written, failing past [`MAX_METADATA_BYTES`].
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        if self.0 > MAX_METADATA_BYTES {
            return Err(std::io::Error::other("metadata too large"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `text` cut to at most `max` characters.
fn cut(text: &mut String, max: usize) {
    if let Some((end, _)) = text.char_indices().nth(max) {
        text.truncate(end);
    }
}

/// A new app, checked: its title trimmed, its description cut to
/// [`MAX_DESCRIPTION_CHARS`], its metadata within [`MAX_METADATA_BYTES`], its paths valid;
/// returns version 1's files.
pub(crate) fn prepare_app(new: &mut NewApp) -> Result<Vec<AppFile>> {
    new.title = check_title(&new.title)?;
    cut(&mut new.description, MAX_DESCRIPTION_CHARS);
    check_metadata(&new.metadata)?;
    check_change(&mut new.version.change)?;
    resolve(&new.version.change, &[], &[], 0, 0)
}

/// A new version, checked (paths valid) before the store looks at the app.
pub(crate) fn prepare_version(version: &mut NewVersion) -> Result<()> {
    check_change(&mut version.change)
}

/// The files of the version that `change`, made from version `base_number` with files
/// `base`, gives when stored on top of version `current_number` with files `current`.
///
/// When the base is the current version the change is applied as it is. Otherwise it is
/// re-applied on top of the current files, and every file it touches must either be the
/// same in the base and the current version, or (for edits) still take the edits: anchors
/// found once, as when it was made. Writing or deleting a file that changed meanwhile, or an
/// edit that no longer fits, is a [`Error::Conflict`] naming the file. Nothing is ever
/// overwritten silently.
///
/// # Errors
///
/// [`Error::ChangeDoesNotApply`] when the change does not even apply to its base;
/// [`Error::Conflict`] as above.
pub(crate) fn resolve(
    change: &Change,
    base: &[AppFile],
    current: &[AppFile],
    base_number: u32,
    current_number: u32,
) -> Result<Vec<AppFile>> {
    let set = match change {
        Change::Files(files) if base_number == current_number => return Ok(files.clone()),
        Change::Files(files) => file_set_change(base, files),
        Change::ChangeSet(set) => set.clone(),
    };
    let on_base = set.apply(base).map_err(apply_error)?;
    if base_number == current_number {
        return Ok(on_base);
    }
    let conflict = |path: &str| Error::Conflict {
        path: path.to_owned(),
        base: base_number,
        current: current_number,
    };
    let base_files = by_path(base);
    let current_files = by_path(current);
    let mut rebased = ChangeSet {
        summary: set.summary.clone(),
        changes: Vec::with_capacity(set.changes.len()),
    };
    for change in set.changes {
        let path = change.path();
        let then = base_files.get(path).copied();
        let now = current_files.get(path).copied();
        if then == now {
            rebased.changes.push(change);
            continue;
        }
        match &change {
            // An edit is tried on the file as it is now: anchors must still be found once.
            FileChange::Update { .. } => rebased.changes.push(change),
            // Writing what is already there changes nothing.
            FileChange::Create { content, .. } if now == Some(content.as_str()) => {}
            // Deleting what is already gone changes nothing.
            FileChange::Delete { .. } if now.is_none() => {}
            _ => return Err(conflict(path)),
        }
    }
    rebased.apply(current).map_err(|e| match e {
        appforge_files::Error::Apply(e) => conflict(&e.path),
        other => Error::InvalidArgument(other.to_string()),
    })
}

fn apply_error(error: appforge_files::Error) -> Error {
    match error {
        appforge_files::Error::Apply(e) => Error::ChangeDoesNotApply(e),
        other => Error::InvalidArgument(other.to_string()),
    }
}

fn by_path(files: &[AppFile]) -> BTreeMap<&str, &str> {
    files
        .iter()
        .map(|f| (f.path.as_str(), f.content.as_str()))
        .collect()
}

/// The change set that turns `base` into `files`: each new or changed file written whole,
/// each missing one deleted.
fn file_set_change(base: &[AppFile], files: &[AppFile]) -> ChangeSet {
    let before = by_path(base);
    let after = by_path(files);
    let mut changes = Vec::new();
    for file in files {
        if before.get(file.path.as_str()) != Some(&file.content.as_str()) {
            changes.push(FileChange::Create {
                path: file.path.clone(),
                content: file.content.clone(),
            });
        }
    }
    for file in base {
        if !after.contains_key(file.path.as_str()) {
            changes.push(FileChange::Delete {
                path: file.path.clone(),
            });
        }
    }
    ChangeSet {
        summary: None,
        changes,
    }
}

#[cfg(test)]
mod tests {
    use appforge_files::Edit;

    use super::*;

    fn f(path: &str, content: &str) -> AppFile {
        AppFile::new(path, content)
    }

    fn replace(path: &str, find: &str, with: &str) -> Change {
        Change::ChangeSet(ChangeSet {
            summary: None,
            changes: vec![FileChange::Update {
                path: path.into(),
                edits: vec![Edit::Replace {
                    find: find.into(),
                    with: with.into(),
                }],
            }],
        })
    }

    #[test]
    fn a_change_on_the_current_version_applies_as_it_is() {
        let v1 = [f("a", "one\n"), f("b", "two\n")];
        let out = resolve(&replace("a", "one", "ONE"), &v1, &v1, 1, 1).unwrap();
        assert_eq!(out, [f("a", "ONE\n"), f("b", "two\n")]);
    }

    #[test]
    fn a_change_to_an_untouched_file_is_rebased() {
        let v1 = [f("a", "one\n"), f("b", "two\n")];
        let v2 = [f("a", "one\n"), f("b", "TWO\n")];
        let out = resolve(&replace("a", "one", "ONE"), &v1, &v2, 1, 2).unwrap();
        assert_eq!(out, [f("a", "ONE\n"), f("b", "TWO\n")]);
    }

    #[test]
    fn an_edit_that_still_fits_a_changed_file_is_applied() {
        let v1 = [f("a", "header\nbody\n")];
        let v2 = [f("a", "header\nbody\nfooter\n")];
        let out = resolve(&replace("a", "header", "HEADER"), &v1, &v2, 1, 2).unwrap();
        assert_eq!(out, [f("a", "HEADER\nbody\nfooter\n")]);
    }

    #[test]
    fn an_edit_that_no_longer_fits_is_a_conflict_naming_the_file() {
        let v1 = [f("src/App.tsx", "<header>\n"), f("b", "x")];
        let v2 = [f("src/App.tsx", "<header className=\"a\">\n"), f("b", "x")];
        let err = resolve(&replace("src/App.tsx", "<header>", "<h>"), &v1, &v2, 1, 2).unwrap_err();
        assert_eq!(err.conflict_path(), Some("src/App.tsx"), "{err}");
    }

    #[test]
    fn rewriting_or_deleting_a_changed_file_is_a_conflict() {
        let v1 = [f("a", "1"), f("b", "1")];
        let v2 = [f("a", "2"), f("b", "1")];
        let rewrite = Change::Files(vec![f("a", "3"), f("b", "1")]);
        let err = resolve(&rewrite, &v1, &v2, 1, 2).unwrap_err();
        assert_eq!(err.conflict_path(), Some("a"));
        let delete = Change::Files(vec![f("b", "1")]);
        let err = resolve(&delete, &v1, &v2, 1, 2).unwrap_err();
        assert_eq!(err.conflict_path(), Some("a"));
        // A file set that leaves `a` alone rebases: only `b` changes.
        let other = Change::Files(vec![f("a", "1"), f("b", "9")]);
        assert_eq!(
            resolve(&other, &v1, &v2, 1, 2).unwrap(),
            [f("a", "2"), f("b", "9")]
        );
    }

    #[test]
    fn a_file_created_on_both_sides_conflicts_unless_identical() {
        let v1 = [f("a", "1")];
        let v2 = [f("a", "1"), f("new", "theirs")];
        let mine = Change::Files(vec![f("a", "1"), f("new", "mine")]);
        assert_eq!(
            resolve(&mine, &v1, &v2, 1, 2).unwrap_err().conflict_path(),
            Some("new")
        );
        let same = Change::Files(vec![f("a", "1"), f("new", "theirs")]);
        assert_eq!(resolve(&same, &v1, &v2, 1, 2).unwrap(), v2);
    }

    #[test]
    fn a_change_that_does_not_fit_its_base_is_not_a_conflict() {
        let v1 = [f("a", "1")];
        let err = resolve(&replace("a", "missing", "x"), &v1, &v1, 1, 1).unwrap_err();
        assert!(matches!(err, Error::ChangeDoesNotApply(_)), "{err}");
    }

    #[test]
    fn hostile_paths_are_refused_and_others_normalised() {
        for path in ["../etc/passwd", "/abs", "C:/x", "a\0b", ".git/config"] {
            let mut change = Change::Files(vec![f(path, "x")]);
            assert!(
                matches!(check_change(&mut change), Err(Error::InvalidPath(_))),
                "{path}"
            );
            let mut change = replace(path, "a", "b");
            assert!(
                matches!(check_change(&mut change), Err(Error::InvalidPath(_))),
                "{path}"
            );
        }
        let mut change = Change::Files(vec![f("./src//a.ts", "x")]);
        check_change(&mut change).unwrap();
        assert_eq!(change, Change::Files(vec![f("src/a.ts", "x")]));
        let mut twice = Change::Files(vec![f("a", "1"), f("./a", "2")]);
        assert!(matches!(
            check_change(&mut twice),
            Err(Error::InvalidArgument(_))
        ));
    }

    mod rebase {
        use std::collections::BTreeMap;

        use proptest::prelude::*;

        use super::*;

        const PATHS: [&str; 3] = ["a.ts", "b.ts", "src/c.ts"];

        /// One file's content in the base, in my version and in theirs (`None`: absent).
        type Triple = (Option<u8>, Option<u8>, Option<u8>);

        fn set(contents: &[Option<u8>]) -> Vec<AppFile> {
            PATHS
                .iter()
                .zip(contents)
                .filter_map(|(p, c)| c.map(|c| f(p, &format!("v{c}\n"))))
                .collect()
        }

        fn map(files: &[AppFile]) -> BTreeMap<String, String> {
            files
                .iter()
                .map(|f| (f.path.clone(), f.content.clone()))
                .collect()
        }

        proptest! {
            /// A whole file set made from an old version lands on the current one exactly
            /// when no file was changed differently on both sides; then every file holds the
            /// side that changed it (or the common content), so no one's change is lost.
            #[test]
            fn file_sets_rebase_without_losing_a_change(
                triples in proptest::collection::vec(
                    (proptest::option::of(0u8..3), proptest::option::of(0u8..3), proptest::option::of(0u8..3)),
                    3,
                )
            ) {
                let triples: Vec<Triple> = triples;
                let base = set(&triples.iter().map(|t| t.0).collect::<Vec<_>>());
                let mine = set(&triples.iter().map(|t| t.1).collect::<Vec<_>>());
                let theirs = set(&triples.iter().map(|t| t.2).collect::<Vec<_>>());
                let clash = PATHS.iter().zip(&triples).find(|(_, (b, m, t))| m != b && t != b && m != t);
                match resolve(&Change::Files(mine), &base, &theirs, 1, 2) {
                    Ok(out) => {
                        prop_assert!(clash.is_none());
                        let out = map(&out);
                        for (path, (b, m, t)) in PATHS.iter().zip(&triples) {
                            let expected = if m != b { *m } else { *t };
                            let expected = expected.map(|c| format!("v{c}\n"));
                            prop_assert_eq!(out.get(*path).cloned(), expected, "{}", path);
                        }
                    }
                    Err(Error::Conflict { path, .. }) => {
                        let (_, (b, m, t)) = PATHS
                            .iter()
                            .zip(&triples)
                            .find(|(p, _)| **p == path)
                            .unwrap();
                        prop_assert!(m != b && t != b && m != t, "{} {:?}", path, triples);
                    }
                    Err(other) => prop_assert!(false, "{}", other),
                }
            }
        }
    }
}
