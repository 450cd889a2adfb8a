//! The shared on-disk cache of unpacked packages, by `name@version`, with a size cap and
//! eviction of the least recently used entries.
//!
//! An entry is a directory `<root>/<name>@<version>/` (a scope's `/` written as `+`) holding
//! the package's files under `package/` and a marker file `.complete` written last, whose
//! content is the entry's size and the tarball's integrity (one per line) and whose
//! modification time is its last use. A directory
//! without its marker is an interrupted unpack and is neither used nor counted (it is removed
//! by the next eviction).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::tarball::{self, TarballLimits, integrity_of};
use crate::error::{Error, Result, TarballError};

const MARKER: &str = ".complete";

/// The on-disk cache of unpacked packages.
#[derive(Debug, Clone)]
pub struct DepCache {
    root: PathBuf,
    cap_bytes: u64,
}

impl DepCache {
    /// A cache in `root` (created when missing) holding at most about `cap_bytes` of
    /// unpacked files.
    ///
    /// # Errors
    ///
    /// When `root` cannot be created.
    pub fn new(root: impl Into<PathBuf>, cap_bytes: u64) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        Ok(Self { root, cap_bytes })
    }

    /// The cache directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The size cap, in bytes.
    #[must_use]
    pub fn cap_bytes(&self) -> u64 {
        self.cap_bytes
    }

    fn entry_dir(&self, name: &str, version: &str) -> PathBuf {
        self.root
            .join(format!("{}@{version}", name.replace('/', "+")))
    }

    /// The unpacked package directory of `name@version` when cached, marking it used.
    #[must_use]
    pub fn get(&self, name: &str, version: &str) -> Option<PathBuf> {
        let dir = self.entry_dir(name, version);
        let marker = dir.join(MARKER);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&marker)
            .ok()?;
        // Best effort: a failed touch only makes the entry look older to eviction.
        let _ = file.set_modified(SystemTime::now());
        Some(dir.join("package"))
    }

    /// Stores a package: `fill` writes its files into the directory it is given, which
    /// becomes the entry once `fill` succeeds (a rename, so a reader never sees half an
    /// entry). Returns the unpacked package directory.
    ///
    /// # Errors
    ///
    /// The error of `fill` (nothing is kept then), or an I/O error.
    pub(crate) fn insert(
        &self,
        name: &str,
        version: &str,
        integrity: &str,
        fill: impl FnOnce(&Path) -> Result<u64>,
    ) -> Result<PathBuf> {
        let staging = self.staging()?;
        let package = staging.path().join("package");
        let size = fill(&package)?;
        self.commit(staging, name, version, integrity, size)
    }

    fn staging(&self) -> Result<tempfile::TempDir> {
        let staging = tempfile::Builder::new()
            .prefix(".unpack-")
            .tempdir_in(&self.root)
            .map_err(|e| Error::io(&self.root, e))?;
        let package = staging.path().join("package");
        std::fs::create_dir(&package).map_err(|e| Error::io(&package, e))?;
        Ok(staging)
    }

    /// Moves a filled staging directory into place as the entry of `name@version`.
    fn commit(
        &self,
        staging: tempfile::TempDir,
        name: &str,
        version: &str,
        integrity: &str,
        size: u64,
    ) -> Result<PathBuf> {
        let dir = self.entry_dir(name, version);
        let marker = staging.path().join(MARKER);
        std::fs::write(&marker, format!("{size}\n{integrity}\n"))
            .map_err(|e| Error::io(&marker, e))?;
        let staged = staging.keep();
        match std::fs::rename(&staged, &dir) {
            Ok(()) => {}
            // Another build stored the same package first: theirs is as good as ours.
            Err(_) if dir.join(MARKER).exists() => {
                let _ = std::fs::remove_dir_all(&staged);
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staged);
                return Err(Error::io(&dir, e));
            }
        }
        Ok(dir.join("package"))
    }

    /// Stores a package from its tarball: the bytes are checked against `integrity` (npm's
    /// `sha512-<base64>`) before anything is read from them, then unpacked within `limits`.
    /// Returns the unpacked package directory (the cached one when already there).
    ///
    /// # Errors
    ///
    /// [`Error::Tarball`] for a tarball refused (integrity, paths, limits), [`Error::Io`].
    pub fn store_tarball(
        &self,
        name: &str,
        version: &str,
        tgz: &[u8],
        integrity: Option<&str>,
        limits: TarballLimits,
    ) -> Result<PathBuf> {
        if let Some(dir) = self.get(name, version) {
            return Ok(dir);
        }
        let package = format!("{name}@{version}");
        tarball::verify_integrity(tgz, integrity).map_err(|error| Error::Tarball {
            package: package.clone(),
            error,
        })?;
        let integrity = integrity_of(tgz);
        self.insert(name, version, &integrity, |dir| {
            tarball::unpack(&package, tgz, dir, limits).map(|u| u.bytes)
        })
    }

    /// Stores a tarball the caller already trusts (one fetched by `npm pack`, say): its name
    /// and version are read from its `package.json`, its integrity is computed, and it is
    /// unpacked within `limits`. This is how a cache is filled for offline previews.
    ///
    /// # Errors
    ///
    /// [`Error::Tarball`] for a tarball refused (paths, limits, no readable `package.json`),
    /// [`Error::Io`].
    pub fn import_tarball(
        &self,
        tgz: &[u8],
        limits: TarballLimits,
    ) -> Result<(String, String, PathBuf)> {
        let staging = self.staging()?;
        let package = staging.path().join("package");
        let unpacked = tarball::unpack("local tarball", tgz, &package, limits)?;
        let manifest = read_manifest(&package).ok_or_else(|| Error::Tarball {
            package: "local tarball".to_owned(),
            error: TarballError::Corrupt("no package.json with a name and a version".to_owned()),
        })?;
        let (name, version) = (manifest.name, manifest.version);
        if let Some(dir) = self.get(&name, &version) {
            return Ok((name, version, dir));
        }
        let dir = self.commit(staging, &name, &version, &integrity_of(tgz), unpacked.bytes)?;
        Ok((name, version, dir))
    }

    /// The cached versions of `name`: version, integrity and unpacked directory.
    #[must_use]
    pub fn versions(&self, name: &str) -> Vec<(String, String, PathBuf)> {
        let prefix = format!("{}@", name.replace('/', "+"));
        self.entries()
            .into_iter()
            .filter_map(|e| {
                let file = e.dir.file_name()?.to_str()?.to_owned();
                let version = file.strip_prefix(&prefix)?.to_owned();
                Some((version, e.integrity, e.dir.join("package")))
            })
            .collect()
    }

    /// The total size of the complete entries, in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.entries().iter().map(|e| e.size).sum()
    }

    /// Removes the least recently used entries until the cache fits its cap, keeping the
    /// entries named in `keep` (`name@version`, those the current build uses), and removes
    /// interrupted unpacks. Returns how many entries were removed.
    pub fn evict(&self, keep: &[String]) -> usize {
        let mut entries = self.entries();
        entries.sort_by_key(|e| e.used);
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        let mut removed = 0;
        for entry in entries {
            if total <= self.cap_bytes {
                break;
            }
            let kept = keep.iter().any(|k| {
                entry.dir.file_name().and_then(|n| n.to_str()) == Some(&k.replace('/', "+"))
            });
            if kept {
                continue;
            }
            if std::fs::remove_dir_all(&entry.dir).is_ok() {
                total = total.saturating_sub(entry.size);
                removed += 1;
            }
        }
        self.remove_interrupted();
        removed
    }

    fn entries(&self) -> Vec<Entry> {
        let Ok(read) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        read.filter_map(|e| {
            let dir = e.ok()?.path();
            let marker = dir.join(MARKER);
            let used = std::fs::metadata(&marker).ok()?.modified().ok()?;
            let text = std::fs::read_to_string(&marker).ok()?;
            let mut lines = text.lines();
            let size = lines.next()?.trim().parse().ok()?;
            let integrity = lines.next().unwrap_or_default().trim().to_owned();
            Some(Entry {
                dir,
                size,
                used,
                integrity,
            })
        })
        .collect()
    }

    fn remove_interrupted(&self) {
        let Ok(read) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in read.flatten() {
            let path = entry.path();
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            // A staging directory younger than an hour may be another build's unpack.
            if path.is_dir() && !path.join(MARKER).exists() && stale {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

#[derive(Debug)]
struct Entry {
    dir: PathBuf,
    size: u64,
    used: SystemTime,
    integrity: String,
}

/// The `name` and `version` of a `package.json`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Manifest {
    pub(crate) name: String,
    pub(crate) version: String,
    #[serde(default)]
    pub(crate) dependencies: std::collections::BTreeMap<String, String>,
    #[serde(rename = "peerDependencies", default)]
    pub(crate) peer_dependencies: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) scripts: std::collections::BTreeMap<String, String>,
}

/// The manifest of an unpacked package.
pub(crate) fn read_manifest(package: &Path) -> Option<Manifest> {
    let text = std::fs::read_to_string(package.join("package.json")).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(cache: &DepCache, name: &str, size: u64) {
        cache
            .insert(name, "1.0.0", "sha512-x", |dir| {
                std::fs::write(
                    dir.join("index.js"),
                    vec![b'x'; usize::try_from(size).unwrap()],
                )
                .unwrap();
                Ok(size)
            })
            .unwrap();
    }

    fn age(cache: &DepCache, name: &str, secs: u64) {
        let marker = cache.entry_dir(name, "1.0.0").join(MARKER);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(marker)
            .unwrap();
        file.set_modified(SystemTime::now() - std::time::Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn eviction_removes_the_least_recently_used_first_and_keeps_the_current_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = DepCache::new(tmp.path(), 250).unwrap();
        put(&cache, "old", 100);
        put(&cache, "@scope/mid", 100);
        put(&cache, "new", 100);
        age(&cache, "old", 300);
        age(&cache, "@scope/mid", 200);
        age(&cache, "new", 100);
        assert_eq!(cache.size(), 300);
        let versions = cache.versions("@scope/mid");
        assert_eq!(versions.len(), 1);
        assert_eq!(
            (versions[0].0.as_str(), versions[0].1.as_str()),
            ("1.0.0", "sha512-x")
        );
        // `old` is the least recently used but the current build needs it.
        assert_eq!(cache.evict(&["old@1.0.0".to_owned()]), 1);
        assert!(cache.get("old", "1.0.0").is_some());
        assert!(cache.get("@scope/mid", "1.0.0").is_none());
        assert!(cache.get("new", "1.0.0").is_some());
        assert_eq!(cache.size(), 200);
    }

    #[test]
    fn a_failed_fill_leaves_no_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = DepCache::new(tmp.path(), 1 << 20).unwrap();
        let err = cache.insert("bad", "1.0.0", "sha512-x", |_| {
            Err(Error::Timeout { limit_ms: 1 })
        });
        assert!(err.is_err());
        assert!(cache.get("bad", "1.0.0").is_none());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
