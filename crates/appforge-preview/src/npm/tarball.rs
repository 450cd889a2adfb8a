//! A package tarball: its integrity checked before anything is read from it, then unpacked
//! with a file-count limit, an expanded-size limit and path checks. Nothing in it is run.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha512};

use crate::error::{Error, TarballError};

/// Limits on one package's tarball.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarballLimits {
    /// The largest compressed tarball accepted, in bytes.
    pub max_compressed: u64,
    /// The largest total of the unpacked files, in bytes.
    pub max_expanded: u64,
    /// The most files (and directories) in one package.
    pub max_files: usize,
}

impl Default for TarballLimits {
    /// 32 MiB compressed, 128 MiB expanded, 10 000 entries: `react-dom` is 1 MiB compressed,
    /// 4.5 MiB and 60 files expanded.
    fn default() -> Self {
        Self {
            max_compressed: 32 << 20,
            max_expanded: 128 << 20,
            max_files: 10_000,
        }
    }
}

/// Checks `bytes` against an npm `integrity` string (`sha512-<base64>`, possibly several
/// hashes separated by spaces: the `sha512` one is used).
///
/// # Errors
///
/// [`TarballError::MissingIntegrity`] without a `sha512` hash,
/// [`TarballError::IntegrityMismatch`] when the digest differs.
pub fn verify_integrity(bytes: &[u8], integrity: Option<&str>) -> Result<(), TarballError> {
    let expected = integrity
        .unwrap_or_default()
        .split_whitespace()
        .find_map(|h| h.strip_prefix("sha512-"))
        .ok_or(TarballError::MissingIntegrity)?;
    let digest = Sha512::digest(bytes);
    let actual = base64::engine::general_purpose::STANDARD.encode(digest);
    // The options suffix (`?foo`) of a Subresource Integrity hash is ignored, as npm does.
    let expected = expected.split('?').next().unwrap_or_default();
    if expected == actual {
        Ok(())
    } else {
        Err(TarballError::IntegrityMismatch {
            expected: format!("sha512-{expected}"),
            actual: format!("sha512-{actual}"),
        })
    }
}

/// The npm `integrity` string of `bytes` (`sha512-<base64>`).
#[must_use]
pub fn integrity_of(bytes: &[u8]) -> String {
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes))
    )
}

/// What [`unpack`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unpacked {
    pub(crate) files: usize,
    pub(crate) bytes: u64,
}

/// Unpacks a `.tgz` into `dest` (which must exist and be empty). The first path component
/// of every entry (`package/` in npm tarballs) is dropped. Only regular files and
/// directories are written; a link is refused when it points out of the package and
/// skipped otherwise; nothing is made executable.
///
/// # Errors
///
/// A [`TarballError`] for an unsafe path or a limit, an I/O error for `dest`.
pub(crate) fn unpack(
    package: &str,
    tgz: &[u8],
    dest: &Path,
    limits: TarballLimits,
) -> Result<Unpacked, Error> {
    let refuse = |error: TarballError| Error::Tarball {
        package: package.to_owned(),
        error,
    };
    let corrupt = |e: std::io::Error| refuse(TarballError::Corrupt(e.to_string()));
    let decoder = flate2::read::GzDecoder::new(tgz);
    // The decoder reads at most one byte past the limit, so a bomb is cut short.
    let mut archive = tar::Archive::new(decoder.take(limits.max_expanded.saturating_add(1 << 20)));
    let mut files = 0usize;
    let mut bytes = 0u64;
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path().map_err(corrupt)?.into_owned();
        let display = raw.to_string_lossy().into_owned();
        let relative =
            strip_first(&raw).ok_or_else(|| refuse(TarballError::UnsafePath(display.clone())))?;
        let kind = entry.header().entry_type();
        files += 1;
        if files > limits.max_files {
            return Err(refuse(TarballError::TooManyFiles {
                limit: limits.max_files,
            }));
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name().map_err(corrupt)?.unwrap_or_default();
            let base = relative.parent().unwrap_or(Path::new(""));
            if !link_stays_inside(base, &target, kind.is_hard_link()) {
                return Err(refuse(TarballError::UnsafePath(format!(
                    "{display} -> {}",
                    target.display()
                ))));
            }
            continue;
        }
        if relative.as_os_str().is_empty() {
            continue;
        }
        let path = dest.join(&relative);
        if kind.is_dir() {
            std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            continue;
        }
        if !kind.is_file() {
            // pax headers, FIFOs, devices: nothing to write.
            continue;
        }
        let size = entry.header().size().map_err(corrupt)?;
        bytes = bytes.saturating_add(size);
        if bytes > limits.max_expanded {
            return Err(refuse(TarballError::TooLarge {
                limit: limits.max_expanded,
            }));
        }
        let mut content = Vec::with_capacity(usize::try_from(size.min(1 << 20)).unwrap_or(0));
        (&mut entry)
            .take(size)
            .read_to_end(&mut content)
            .map_err(corrupt)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, &content).map_err(|e| Error::io(&path, e))?;
    }
    Ok(Unpacked { files, bytes })
}

/// The path without its first component, when every component is a plain name.
fn strip_first(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for (i, component) in path.components().enumerate() {
        match component {
            Component::Normal(name) if i > 0 => out.push(name),
            Component::Normal(_) => {}
            Component::CurDir if i == 0 => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Whether a link at `base/<name>` to `target` stays inside the package. A hard link's
/// target is relative to the archive root, a symlink's to the link's directory.
fn link_stays_inside(base: &Path, target: &Path, hard: bool) -> bool {
    let mut depth: usize = if hard { 0 } else { base.components().count() };
    let mut components = target.components();
    if hard {
        // Hard link targets carry the archive's first component too (`package/x`).
        if !matches!(components.next(), Some(Component::Normal(_))) {
            return false;
        }
    }
    for component in components {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_round_trips_and_detects_a_change() {
        let integrity = integrity_of(b"abc");
        assert!(verify_integrity(b"abc", Some(&integrity)).is_ok());
        assert!(matches!(
            verify_integrity(b"abd", Some(&integrity)),
            Err(TarballError::IntegrityMismatch { .. })
        ));
        assert_eq!(
            verify_integrity(b"abc", Some("sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0=")),
            Err(TarballError::MissingIntegrity)
        );
        let both = format!("sha1-x {integrity}");
        assert!(verify_integrity(b"abc", Some(&both)).is_ok());
    }

    #[test]
    fn entry_paths_are_checked() {
        assert_eq!(
            strip_first(Path::new("package/lib/index.js")),
            Some(PathBuf::from("lib/index.js"))
        );
        assert_eq!(strip_first(Path::new("package/../../x")), None);
        assert_eq!(strip_first(Path::new("/etc/passwd")), None);
        assert!(link_stays_inside(
            Path::new("lib"),
            Path::new("../index.js"),
            false
        ));
        assert!(!link_stays_inside(
            Path::new("lib"),
            Path::new("../../x"),
            false
        ));
        assert!(!link_stays_inside(
            Path::new(""),
            Path::new("/etc/passwd"),
            false
        ));
        assert!(link_stays_inside(
            Path::new("lib"),
            Path::new("package/a.js"),
            true
        ));
        assert!(!link_stays_inside(
            Path::new(""),
            Path::new("package/../../a"),
            true
        ));
    }
}
