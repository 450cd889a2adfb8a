//! Writing generated files under the output directory, and nowhere else.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use appforge_llm::validate_path;

/// Why a file was not written.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The path is absolute, climbs out, or is otherwise hostile.
    Refused(String),
    /// The file system said no.
    Io(io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(why) => write!(f, "refused: {why}"),
            Self::Io(e) => write!(f, "cannot write: {e}"),
        }
    }
}

/// Writes `content` at the model-given `path` inside `root` (created if needed); returns
/// where it went. A path that would land outside `root`, also through a symlink, is refused.
pub(crate) fn write_under(root: &Path, path: &str, content: &str) -> Result<PathBuf, WriteError> {
    let clean = validate_path(path).map_err(|e| WriteError::Refused(e.to_string()))?;
    fs::create_dir_all(root).map_err(WriteError::Io)?;
    let root = root.canonicalize().map_err(WriteError::Io)?;
    let target = root.join(&clean);
    let parent = target
        .parent()
        .ok_or_else(|| WriteError::Refused(format!("{path}: no parent directory")))?;
    fs::create_dir_all(parent).map_err(WriteError::Io)?;
    let real_parent = parent.canonicalize().map_err(WriteError::Io)?;
    if !real_parent.starts_with(&root) {
        return Err(WriteError::Refused(format!(
            "{path}: leaves the output directory"
        )));
    }
    if fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(WriteError::Refused(format!("{path}: is a symlink")));
    }
    fs::write(&target, content).map_err(WriteError::Io)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_files_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let at = write_under(dir.path(), "src/components/List.tsx", "x").unwrap();
        assert!(at.starts_with(dir.path().canonicalize().unwrap()));
        assert_eq!(fs::read_to_string(at).unwrap(), "x");
    }

    #[test]
    fn hostile_paths_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        for path in ["../escape.txt", "/etc/passwd", "src/../../x", "C:\\x", ""] {
            assert!(
                matches!(write_under(&out, path, "x"), Err(WriteError::Refused(_))),
                "{path}"
            );
        }
        assert!(!dir.path().join("escape.txt").exists());
        assert!(!dir.path().join("x").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_directory_cannot_lead_out() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let outside = dir.path().join("outside");
        fs::create_dir_all(&out).unwrap();
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("src")).unwrap();
        assert!(matches!(
            write_under(&out, "src/App.tsx", "x"),
            Err(WriteError::Refused(_))
        ));
        assert!(!outside.join("App.tsx").exists());
    }
}
