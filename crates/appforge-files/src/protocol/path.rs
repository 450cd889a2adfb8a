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
    /// The path writes inside a `.git` directory (in any case, with trailing dots or spaces,
    /// or as its 8.3 short name `git~1`), or writes a `.git` file.
    GitDirectory,
    /// A component ends with a dot or a space (`src./`, `a.txt `), which Windows drops: two
    /// different paths would name one file.
    TrailingDotOrSpace,
    /// A component is a name Windows reserves for a device (`CON`, `nul.txt`, `COM1`, `LPT9`).
    ReservedName,
    /// The path contains a bidirectional or invisible formatting character (U+202E, U+200B,
    /// U+FEFF, ...), which can make a name display as another.
    Bidirectional,
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
            Self::TrailingDotOrSpace => "has a component ending with a dot or a space",
            Self::ReservedName => "uses a name Windows reserves for a device",
            Self::Bidirectional => "contains a bidirectional or invisible formatting character",
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
/// stream, uses `\`, contains a `..` component, NUL or another control character, a
/// bidirectional or invisible formatting character, is longer than [`MAX_PATH_LEN`] bytes or
/// 32 components, ends with `/`, writes inside `.git` (compared case-insensitively, trailing
/// dots and spaces ignored, `git~1` included), has a component ending with a dot or a space,
/// or uses a name Windows reserves (`CON`, `PRN`, `AUX`, `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9`,
/// with or without an extension).
///
/// # Example
///
/// ```
/// use appforge_files::protocol::{validate_path, PathErrorKind};
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
    if path.chars().any(is_format_character) {
        return fail(PathErrorKind::Bidirectional);
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
            _ => {}
        }
        if is_git(component) {
            return fail(PathErrorKind::GitDirectory);
        }
        if component.ends_with(['.', ' ']) {
            return fail(PathErrorKind::TrailingDotOrSpace);
        }
        if is_reserved_on_windows(component) {
            return fail(PathErrorKind::ReservedName);
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

/// `.git` as Windows and macOS may read the component: any case, trailing dots and spaces
/// dropped, or the 8.3 short name `git~1`.
fn is_git(component: &str) -> bool {
    let trimmed = component.trim_end_matches(['.', ' ']);
    trimmed.eq_ignore_ascii_case(".git") || trimmed.eq_ignore_ascii_case("git~1")
}

/// The device names Windows reserves in every folder, with any extension: `CON`, `PRN`,
/// `AUX`, `NUL`, `COM0`-`COM9`, `LPT0`-`LPT9` (and the superscript digits ¹²³), `CONIN$`,
/// `CONOUT$`; compared case-insensitively, on the part before the first dot with trailing
/// spaces dropped.
fn is_reserved_on_windows(component: &str) -> bool {
    let stem = component
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end_matches(' ');
    let upper = stem.to_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => {
            let mut chars = upper.chars();
            let prefix: String = chars.by_ref().take(3).collect();
            let digit = chars.next();
            (prefix == "COM" || prefix == "LPT")
                && chars.next().is_none()
                && digit.is_some_and(|d| d.is_ascii_digit() || matches!(d, '¹' | '²' | '³'))
        }
    }
}

/// Bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) and the
/// invisible characters some file systems ignore in names (U+00AD, U+180E, U+200B-U+200D,
/// U+2060-U+2064, U+FEFF).
fn is_format_character(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{00AD}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
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
    fn refuses_git_in_any_component_and_any_case() {
        for path in [
            ".GIT/config",
            ".Git/hooks/post-checkout",
            ".git./config",
            ".git /config",
            ".git.. /config",
            "sub/.git/config",
            "vendor/lib/.GiT/HEAD",
            "GIT~1/config",
            "sub/git~1/hooks/x",
            ".git",
            "sub/.git",
        ] {
            assert_eq!(kind(path), PathErrorKind::GitDirectory, "{path}");
        }
        for fine in [".gitignore", ".github/ci.yml", "src/git/x.ts", ".gitkeep"] {
            assert_eq!(validate_path(fine).unwrap(), fine);
        }
    }

    #[test]
    fn refuses_trailing_dots_and_spaces() {
        for path in [
            "src./App.tsx",
            "a.txt.",
            "a.txt ",
            "dir /x",
            "...",
            "src/...",
            "x. /y",
        ] {
            assert_eq!(kind(path), PathErrorKind::TrailingDotOrSpace, "{path:?}");
        }
        assert_eq!(validate_path("a b/c d.txt").unwrap(), "a b/c d.txt");
        assert_eq!(validate_path(".env").unwrap(), ".env");
    }

    #[test]
    fn refuses_windows_reserved_names() {
        for path in [
            "CON",
            "con",
            "nul.txt",
            "src/NUL.tsx",
            "aux.d.ts",
            "Prn",
            "COM1",
            "com9.log",
            "LPT1",
            "lpt0.txt",
            "COM\u{b9}",
            "conin$",
            "CONOUT$.txt",
            "con .txt",
            "docs/Con/readme.md",
        ] {
            assert_eq!(kind(path), PathErrorKind::ReservedName, "{path:?}");
        }
        for fine in [
            "console.ts",
            "icon.svg",
            "nullable.ts",
            "COM10",
            "com.json",
            "lpt.md",
            "auxiliary/x",
            "src/components/Con_tact.tsx",
        ] {
            assert_eq!(validate_path(fine).unwrap(), fine);
        }
    }

    #[test]
    fn refuses_control_and_bidirectional_characters() {
        for path in ["a\u{7f}b", "a\rb", "a\tb", "x\u{85}y", "x\u{9b}y"] {
            assert_eq!(kind(path), PathErrorKind::ControlCharacter, "{path:?}");
        }
        for path in [
            "invoice\u{202E}fdp.exe",
            "a\u{202A}b",
            "a\u{2066}b",
            "a\u{2069}b",
            "a\u{200E}b",
            "a\u{200F}b",
            "a\u{061C}b",
            ".g\u{200C}it/config",
            "\u{FEFF}index.ts",
            "zero\u{200B}width",
        ] {
            assert_eq!(kind(path), PathErrorKind::Bidirectional, "{path:?}");
        }
        let accented = "src/\u{e9}t\u{e9}/\u{65e5}\u{672c}.ts";
        assert_eq!(validate_path(accented).unwrap(), accented);
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
