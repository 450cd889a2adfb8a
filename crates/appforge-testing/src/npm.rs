//! Real npm tarballs for the preview tests, fetched once outside the tests.

use std::path::PathBuf;

/// What fills the directory: `npm pack` of React 18 and what it needs.
pub const NPM_PACK: &str =
    "npm pack react@18 react-dom@18 scheduler@0.23 loose-envify@1 js-tokens@4";

/// The directory of npm tarballs named by `APPFORGE_NPM_TARBALLS` (filled by [`NPM_PACK`]),
/// for the tests that preview apps with the real React. Without it the caller skips: this
/// prints why and answers `None`. With `CI` set it panics instead: CI must run those tests
/// (`.ci/run` packs the tarballs).
///
/// # Panics
///
/// When `CI` is set and `APPFORGE_NPM_TARBALLS` does not name a directory.
#[must_use]
pub fn npm_tarballs() -> Option<PathBuf> {
    let dir = std::env::var_os("APPFORGE_NPM_TARBALLS").map(PathBuf::from);
    if dir.as_ref().is_some_and(|d| d.is_dir()) {
        return dir;
    }
    assert!(
        std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        "CI is set but APPFORGE_NPM_TARBALLS does not name a directory of npm tarballs: \
         `.ci/run` fills one with `{NPM_PACK}`"
    );
    eprintln!(
        "skipped: APPFORGE_NPM_TARBALLS is not set to a directory of npm tarballs ({NPM_PACK})"
    );
    None
}
