//! The errors of a preview: a build error a user can act on (file, line, column), a refused
//! import, and the failures of dependency resolution.

use std::fmt;
use std::path::PathBuf;

/// Why an import was refused before anything was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefusedImport {
    /// A Node.js builtin (`node:fs`, `fs`, `child_process`...): a preview runs in a browser.
    NodeBuiltin,
    /// An absolute path that is not a file of the app (`/etc/passwd`).
    AbsolutePath,
    /// A relative path that leaves the app (`../../x` from `src/App.tsx`).
    EscapesApp,
    /// A URL or another scheme (`https://...`, `file:`, `data:`): a preview bundles only the
    /// app's files and its resolved dependencies.
    Url,
}

impl RefusedImport {
    /// A short name, stable across releases (`node_builtin`, `absolute_path`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NodeBuiltin => "node_builtin",
            Self::AbsolutePath => "absolute_path",
            Self::EscapesApp => "escapes_app",
            Self::Url => "url",
        }
    }
}

/// What kind of build error this is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
#[non_exhaustive]
pub enum BuildErrorKind {
    /// The source does not parse (JavaScript, TypeScript, JSX or JSON).
    Syntax,
    /// An import names a file or a package that is not there.
    Unresolved,
    /// An import was refused (see [`RefusedImport`]).
    Refused(RefusedImport),
    /// The app has no entry: no `index.html` module script, no `src/main.tsx` (or a
    /// variant), and no component module to mount.
    NoEntry,
    /// The app's files are not acceptable (a path, a size or a count over the limits).
    InvalidInput,
    /// Any other error of the bundler.
    Bundler,
}

/// A build error with the place in the app it is about.
///
/// `line` and `column` are 1-based; both are 0 when the error is not about one place (a
/// missing entry, a limit). `file` is the app-relative path (`src/App.tsx`), or a package
/// path (`node_modules/react/index.js`), or empty.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BuildError {
    /// What went wrong, as a category.
    #[serde(flatten)]
    pub kind: BuildErrorKind,
    /// The file, relative to the app.
    pub file: String,
    /// The line, 1-based (0: unknown).
    pub line: u32,
    /// The column, 1-based (0: unknown).
    pub column: u32,
    /// What a user can act on, one or a few lines.
    pub message: String,
}

impl BuildError {
    /// A build error without a place.
    pub(crate) fn new(kind: BuildErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            file: String::new(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }

    /// The same error at `file:line:column`.
    pub(crate) fn at(mut self, file: impl Into<String>, line: u32, column: u32) -> Self {
        self.file = file.into();
        self.line = line;
        self.column = column;
        self
    }

    /// The refusal, when the error is a refused import.
    #[must_use]
    pub fn refused(&self) -> Option<RefusedImport> {
        match self.kind {
            BuildErrorKind::Refused(reason) => Some(reason),
            _ => None,
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.is_empty() {
            f.write_str(&self.file)?;
            if self.line > 0 {
                write!(f, ":{}:{}", self.line, self.column)?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for BuildError {}

/// Why a package's tarball was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TarballError {
    /// The tarball's digest is not the one the registry published.
    IntegrityMismatch {
        /// The `integrity` of the packument.
        expected: String,
        /// The digest of the bytes received, in the same form.
        actual: String,
    },
    /// The packument gives no `sha512` integrity to check the tarball against.
    MissingIntegrity,
    /// An entry's path leaves the package (`../`, an absolute path, a link out of it).
    UnsafePath(String),
    /// More files than the limit.
    TooManyFiles {
        /// The limit.
        limit: usize,
    },
    /// More bytes, compressed or expanded, than the limit.
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The tarball is not a gzip-compressed tar archive.
    Corrupt(String),
}

impl fmt::Display for TarballError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IntegrityMismatch { expected, actual } => {
                write!(f, "integrity mismatch: expected {expected}, got {actual}")
            }
            Self::MissingIntegrity => f.write_str("the registry gives no sha512 integrity"),
            Self::UnsafePath(path) => write!(f, "entry {path:?} leaves the package"),
            Self::TooManyFiles { limit } => write!(f, "more than {limit} files"),
            Self::TooLarge { limit } => write!(f, "more than {limit} bytes"),
            Self::Corrupt(why) => write!(f, "not a gzip tar archive: {why}"),
        }
    }
}

/// The error of this crate.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The app does not build; the error says where.
    Build(BuildError),
    /// A dependency cannot be resolved: no such package, no version in the range, a
    /// registry error.
    Dependency {
        /// The package name.
        name: String,
        /// The range asked for.
        range: String,
        /// Why.
        reason: String,
    },
    /// A package's tarball was refused; nothing of it was unpacked or used.
    Tarball {
        /// `name@version`.
        package: String,
        /// Why.
        error: TarballError,
    },
    /// The build took longer than the limit.
    Timeout {
        /// The limit, in milliseconds.
        limit_ms: u64,
    },
    /// The registry could not be reached or answered with an error.
    Registry {
        /// The URL asked (never with credentials).
        url: String,
        /// Why.
        reason: String,
    },
    /// A file of the dependency cache or the build directory could not be read or written.
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The build error, when the app itself does not build.
    #[must_use]
    pub fn as_build_error(&self) -> Option<&BuildError> {
        match self {
            Self::Build(e) => Some(e),
            _ => None,
        }
    }

    /// The error as a [`BuildError`] to show in the preview's overlay: a build error as it
    /// is, a dependency or tarball error naming the package and `package.json`.
    #[must_use]
    pub fn to_build_error(&self) -> BuildError {
        match self {
            Self::Build(e) => e.clone(),
            Self::Dependency { .. } | Self::Tarball { .. } => BuildError::new(
                BuildErrorKind::Unresolved,
                self.to_string(),
            )
            .at("package.json", 0, 0),
            other => BuildError::new(BuildErrorKind::Bundler, other.to_string()),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Build(e) => e.fmt(f),
            Self::Dependency {
                name,
                range,
                reason,
            } => write!(f, "dependency {name}@{range} cannot be resolved: {reason}"),
            Self::Tarball { package, error } => write!(f, "package {package} refused: {error}"),
            Self::Timeout { limit_ms } => write!(f, "the build took longer than {limit_ms} ms"),
            Self::Registry { url, reason } => write!(f, "registry request {url} failed: {reason}"),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Build(e) => Some(e),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<BuildError> for Error {
    fn from(e: BuildError) -> Self {
        Self::Build(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_errors_serialize_flat_for_the_api() {
        let syntax =
            BuildError::new(BuildErrorKind::Syntax, "Unexpected token").at("src/App.tsx", 3, 19);
        assert_eq!(
            serde_json::to_value(&syntax).unwrap(),
            serde_json::json!({"kind": "syntax", "file": "src/App.tsx", "line": 3, "column": 19, "message": "Unexpected token"})
        );
        let refused = BuildError::new(BuildErrorKind::Refused(RefusedImport::NodeBuiltin), "no")
            .at("src/a.ts", 1, 1);
        let json = serde_json::to_value(&refused).unwrap();
        assert_eq!(json["kind"], "refused");
        assert_eq!(json["detail"], "node_builtin");
        assert_eq!(refused.to_string(), "src/a.ts:1:1: no");
        assert_eq!(
            BuildError::new(BuildErrorKind::NoEntry, "no entry").to_string(),
            "no entry"
        );
    }
}
