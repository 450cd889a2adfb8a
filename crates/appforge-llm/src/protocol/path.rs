//! Validation of file paths written by a model, which are untrusted input.

use std::fmt;

/// The longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 255;

/// The deepest accepted path, in components.
const MAX_PATH_DEPTH: usize = 32;

/// Why a path was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PathErrorKind {
    /// The path is empty (or only `.` components).
    Empty,
    /// The path starts at the root (`/etc/passwd`).
    Absolute,
    /// The path names a drive (`C:\`), a UNC share (`\\host\share`) or an alternate stream (`a:b`).
    DriveOrUnc,
    /// The path uses `\` as a separator.
    Backslash,
    /// A component is `..`.
    ParentDirectory,
    /// The path contains NUL or another control character.
    ControlCharacter,
    /// The path is longer than [`MAX_PATH_LEN`] bytes or deeper than 32 components.
    TooLong,
    /// The path ends with `/`: it names a directory, not a file.
    Directory,
    /// The path writes inside a `.git` directory.
    GitDirectory,
}

impl PathErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Empty => "is empty",
            Self::Absolute => "is absolute",
            Self::DriveOrUnc => "names a drive, share or stream",
            Self::Backslash => "uses a backslash separator",
            Self::ParentDirectory => "climbs out with `..`",
            Self::ControlCharacter => "contains a control character",
            Self::TooLong => "is too long",
            Self::Directory => "names a directory",
            Self::GitDirectory => "writes inside `.git`",
        }
    }
}

/// A file path from a model that [`validate_path`] refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PathError {
    /// The path as the model wrote it.
    pub path: String,
    /// Why it was refused.
    pub kind: PathErrorKind,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path is untrusted: escape it, and keep a hostile megabyte out of logs.
        let shown: String = self.path.chars().take(120).collect();
        let ellipsis = if shown.len() < self.path.len() {
            "..."
        } else {
            ""
        };
        write!(f, "file path {shown:?}{ellipsis} {}", self.kind.describe())
    }
}

impl std::error::Error for PathError {}

/// Checks a relative file path written by a model and returns it normalised.
///
/// Accepted paths are relative, use `/` separators, and stay inside the app's folder.
/// Leading `./` and empty or `.` components are dropped (`./src//App.tsx` becomes
/// `src/App.tsx`).
///
/// # Errors
///
/// A [`PathError`] naming the path when it is empty, absolute, names a drive, UNC share or
/// stream, uses `\`, contains a `..` component, NUL or another control character, is longer
/// than [`MAX_PATH_LEN`] bytes or 32 components, ends with `/`, or writes inside `.git`.
///
/// # Example
///
/// ```
/// use appforge_llm::protocol::{validate_path, PathErrorKind};
///
/// assert_eq!(validate_path("./src/App.tsx").unwrap(), "src/App.tsx");
/// assert_eq!(validate_path("../etc/passwd").unwrap_err().kind, PathErrorKind::ParentDirectory);
/// ```
pub fn validate_path(path: &str) -> Result<String, PathError> {
    let fail = |kind| {
        Err(PathError {
            path: path.to_owned(),
            kind,
        })
    };
    if path.len() > MAX_PATH_LEN {
        return fail(PathErrorKind::TooLong);
    }
    if path.chars().any(char::is_control) {
        return fail(PathErrorKind::ControlCharacter);
    }
    if path.starts_with("\\\\") || path.starts_with("//") {
        return fail(PathErrorKind::DriveOrUnc);
    }
    if path.contains('\\') {
        return fail(PathErrorKind::Backslash);
    }
    if path.contains(':') {
        return fail(PathErrorKind::DriveOrUnc);
    }
    if path.starts_with('/') {
        return fail(PathErrorKind::Absolute);
    }
    if path.ends_with('/') {
        return fail(PathErrorKind::Directory);
    }
    let mut normalised = String::with_capacity(path.len());
    let mut depth = 0;
    for component in path.split('/') {
        match component {
            "" | "." => continue,
            ".." => return fail(PathErrorKind::ParentDirectory),
            ".git" => return fail(PathErrorKind::GitDirectory),
            _ => {}
        }
        depth += 1;
        if depth > MAX_PATH_DEPTH {
            return fail(PathErrorKind::TooLong);
        }
        if !normalised.is_empty() {
            normalised.push('/');
        }
        normalised.push_str(component);
    }
    if normalised.is_empty() {
        return fail(PathErrorKind::Empty);
    }
    Ok(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(path: &str) -> PathErrorKind {
        validate_path(path).expect_err(path).kind
    }

    #[test]
    fn accepts_and_normalises_relative_paths() {
        assert_eq!(validate_path("src/App.tsx").unwrap(), "src/App.tsx");
        assert_eq!(
            validate_path("./src//components/./Button.tsx").unwrap(),
            "src/components/Button.tsx"
        );
        assert_eq!(validate_path("pages/[id].tsx").unwrap(), "pages/[id].tsx");
        assert_eq!(validate_path(".env.example").unwrap(), ".env.example");
        assert_eq!(
            validate_path("src/..hidden/a..b.ts").unwrap(),
            "src/..hidden/a..b.ts"
        );
    }

    #[test]
    fn rejects_hostile_paths() {
        assert_eq!(kind(""), PathErrorKind::Empty);
        assert_eq!(kind("./."), PathErrorKind::Empty);
        assert_eq!(kind("/etc/passwd"), PathErrorKind::Absolute);
        assert_eq!(kind("../secrets"), PathErrorKind::ParentDirectory);
        assert_eq!(kind("src/../../x"), PathErrorKind::ParentDirectory);
        assert_eq!(kind("C:/Windows/win.ini"), PathErrorKind::DriveOrUnc);
        assert_eq!(kind("c:evil"), PathErrorKind::DriveOrUnc);
        assert_eq!(kind("\\\\host\\share\\x"), PathErrorKind::DriveOrUnc);
        assert_eq!(kind("//host/share/x"), PathErrorKind::DriveOrUnc);
        assert_eq!(kind("src\\App.tsx"), PathErrorKind::Backslash);
        assert_eq!(kind("a\0b"), PathErrorKind::ControlCharacter);
        assert_eq!(kind("a\nb"), PathErrorKind::ControlCharacter);
        assert_eq!(kind("a\u{1b}[31mb"), PathErrorKind::ControlCharacter);
        assert_eq!(kind(&"a".repeat(MAX_PATH_LEN + 1)), PathErrorKind::TooLong);
        assert_eq!(
            kind("a/".repeat(40).trim_end_matches('/')),
            PathErrorKind::TooLong
        );
        assert_eq!(kind("src/"), PathErrorKind::Directory);
        assert_eq!(kind(".git/hooks/pre-commit"), PathErrorKind::GitDirectory);
    }

    #[test]
    fn error_names_the_path_escaped_and_bounded() {
        let err = validate_path("../x\u{7}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "file path \"../x\\u{7}\" contains a control character"
        );
        let long = format!("/{}", "a".repeat(100));
        assert_eq!(
            validate_path(&long).unwrap_err().to_string(),
            format!("file path {long:?} is absolute")
        );
        let huge = "b".repeat(10_000);
        assert_eq!(
            validate_path(&huge).unwrap_err().to_string(),
            format!("file path {:?}... is too long", "b".repeat(120))
        );
    }
}
