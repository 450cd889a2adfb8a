//! Builds for a server: a cache keyed by the files and the resolved dependency set, and a
//! bounded pool of blocking threads with a time limit.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::bundle::{self, BuildOptions, Bundle};
use crate::error::{Error, Result};
use crate::lru::Lru;
use crate::npm::ResolvedDeps;

/// Runs builds on a bounded blocking pool with a time limit and keeps the latest results.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Previewer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    permits: Arc<Semaphore>,
    timeout: Duration,
    options: BuildOptions,
    cache: Mutex<Lru<Arc<Bundle>>>,
    /// Prebuilt dependencies, shared by every build of this previewer.
    vendors: Arc<bundle::VendorCache>,
}

/// A build key: a digest of the files, the dependency set and the options.
pub type BuildKey = [u8; 32];

/// Builds a [`Previewer`].
#[derive(Debug, Clone)]
pub struct PreviewerBuilder {
    concurrency: usize,
    timeout: Duration,
    cache_entries: usize,
    options: BuildOptions,
}

impl Default for PreviewerBuilder {
    fn default() -> Self {
        Self {
            concurrency: 2,
            timeout: Duration::from_secs(30),
            cache_entries: 64,
            options: BuildOptions::default(),
        }
    }
}

impl PreviewerBuilder {
    /// How many builds run at once (default 2); more wait for a slot.
    #[must_use]
    pub fn concurrency(mut self, builds: usize) -> Self {
        self.concurrency = builds.max(1);
        self
    }

    /// How long a build may take (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many bundles the cache keeps (default 64; 0 disables it).
    #[must_use]
    pub fn cache_entries(mut self, entries: usize) -> Self {
        self.cache_entries = entries;
        self
    }

    /// The build options.
    #[must_use]
    pub fn options(mut self, options: BuildOptions) -> Self {
        self.options = options;
        self
    }

    /// The previewer.
    #[must_use]
    pub fn build(self) -> Previewer {
        Previewer {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(self.concurrency)),
                timeout: self.timeout,
                options: self.options,
                cache: Mutex::new(Lru::new(self.cache_entries)),
                vendors: Arc::default(),
            }),
        }
    }
}

impl Default for Previewer {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl Previewer {
    /// A builder with 2 concurrent builds, a 30 s limit and 64 cached bundles.
    #[must_use]
    pub fn builder() -> PreviewerBuilder {
        PreviewerBuilder::default()
    }

    /// The key a build of `files` with `deps` is cached under.
    #[must_use]
    pub fn key<P: AsRef<str>, C: AsRef<[u8]>>(
        &self,
        files: &[(P, C)],
        deps: &ResolvedDeps,
    ) -> BuildKey {
        let mut sorted: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, c)| (p.as_ref(), c.as_ref()))
            .collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut hasher = Sha256::new();
        for (path, content) in sorted {
            hasher.update((path.len() as u64).to_le_bytes());
            hasher.update(path.as_bytes());
            hasher.update((content.len() as u64).to_le_bytes());
            hasher.update(content);
        }
        hasher.update(deps.fingerprint());
        hasher.update(format!("{:?}", self.inner.options).as_bytes());
        hasher.finalize().into()
    }

    /// The cached bundle of `files` with `deps`, if built before.
    #[must_use]
    pub fn cached<P: AsRef<str>, C: AsRef<[u8]>>(
        &self,
        files: &[(P, C)],
        deps: &ResolvedDeps,
    ) -> Option<Arc<Bundle>> {
        let key = self.key(files, deps);
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
    }

    /// Builds `files` with `deps`, or returns the cached bundle of the same files and
    /// dependencies. The build waits for a slot of the pool, then runs on a blocking thread;
    /// past the time limit the caller gets [`Error::Timeout`] (the build's thread finishes
    /// on its own and keeps its slot until then, so a stalled build cannot make the server
    /// start more).
    ///
    /// # Errors
    ///
    /// [`Error::Build`] when the app does not build, [`Error::Timeout`].
    pub async fn build(
        &self,
        files: Vec<(String, Vec<u8>)>,
        deps: ResolvedDeps,
    ) -> Result<Arc<Bundle>> {
        let key = self.key(&files, &deps);
        if let Some(bundle) = self.cache().get(&key) {
            return Ok(bundle);
        }
        let limit_ms = u64::try_from(self.inner.timeout.as_millis()).unwrap_or(u64::MAX);
        let deadline = tokio::time::Instant::now() + self.inner.timeout;
        let permit =
            tokio::time::timeout_at(deadline, Arc::clone(&self.inner.permits).acquire_owned())
                .await
                .map_err(|_| Error::Timeout { limit_ms })?
                .map_err(|_| Error::Timeout { limit_ms })?;
        let options = self.inner.options.clone();
        let vendors = Arc::clone(&self.inner.vendors);
        let task = tokio::task::spawn_blocking(move || {
            let result = bundle::build_inner(&files, &deps, &options, Some(&vendors));
            drop(permit);
            result
        });
        let bundle = tokio::time::timeout_at(deadline, task)
            .await
            .map_err(|_| Error::Timeout { limit_ms })?
            .map_err(|e| {
                Error::Build(crate::error::BuildError::new(
                    crate::error::BuildErrorKind::Bundler,
                    format!("the build stopped: {e}"),
                ))
            })??;
        let bundle = Arc::new(bundle);
        self.cache().put(key, Arc::clone(&bundle));
        Ok(bundle)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Lru<Arc<Bundle>>> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_depends_on_contents_not_order() {
        let p = Previewer::default();
        let deps = ResolvedDeps::empty();
        let a = p.key(&[("a.js", "1"), ("b.js", "2")], &deps);
        let b = p.key(&[("b.js", "2"), ("a.js", "1")], &deps);
        let c = p.key(&[("a.js", "1"), ("b.js", "3")], &deps);
        let d = p.key(&[("a.js1", ""), ("b.js", "2")], &deps);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
