//! The registry client: packuments, version selection, a `node_modules` layout, downloads.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;

use super::packument::{self, Packument};
use super::tarball::TarballLimits;
use super::{ResolvedDeps, ResolvedPackage, is_build_only};
use crate::error::{Error, Result};

/// Registry requests in flight at once during one resolution.
const CONCURRENT_REQUESTS: usize = 8;

/// The registry used when `APPFORGE_NPM_REGISTRY` is not set.
pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org";

/// Limits of one resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolveLimits {
    /// The most packages in one app's dependency tree.
    pub max_packages: usize,
    /// Limits on each tarball.
    pub tarball: TarballLimits,
}

impl Default for ResolveLimits {
    /// 300 packages and [`TarballLimits::default`].
    fn default() -> Self {
        Self {
            max_packages: 300,
            tarball: TarballLimits::default(),
        }
    }
}

/// An npm registry client that resolves and caches dependencies. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: String,
    http: reqwest::Client,
    cache: super::DepCache,
    limits: ResolveLimits,
    offline: bool,
}

/// Builds a [`Registry`].
#[derive(Debug, Clone)]
pub struct RegistryBuilder {
    url: String,
    cache: super::DepCache,
    limits: ResolveLimits,
    timeout: Duration,
    offline: bool,
}

impl Registry {
    /// A registry at `APPFORGE_NPM_REGISTRY` (or [`DEFAULT_REGISTRY`]) caching in `cache`.
    #[must_use]
    pub fn builder(cache: super::DepCache) -> RegistryBuilder {
        let url = std::env::var("APPFORGE_NPM_REGISTRY")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_REGISTRY.to_owned());
        RegistryBuilder {
            url,
            cache,
            limits: ResolveLimits::default(),
            timeout: Duration::from_secs(60),
            offline: false,
        }
    }

    /// The registry URL, without a trailing slash.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The cache.
    #[must_use]
    pub fn cache(&self) -> &super::DepCache {
        &self.inner.cache
    }

    /// Resolves `dependencies` (name -> range or tag, as in `package.json`) and their
    /// dependencies, downloads what the cache lacks, checks each tarball's integrity before
    /// unpacking it, and evicts old cache entries past the cap. Build-only packages are
    /// skipped. No install script is ever run.
    ///
    /// # Errors
    ///
    /// [`Error::Dependency`] naming a package that cannot be resolved, [`Error::Tarball`]
    /// for a refused tarball, [`Error::Registry`] when the registry fails.
    pub async fn resolve(&self, dependencies: &BTreeMap<String, String>) -> Result<ResolvedDeps> {
        let mut packuments: HashMap<String, Arc<Packument>> = HashMap::new();
        // install path -> (name, version, spec it was placed for)
        let mut placed: BTreeMap<String, Placed> = BTreeMap::new();
        let mut skipped = Vec::new();
        let mut queue: VecDeque<(String, String, String)> = VecDeque::new();
        for (name, spec) in dependencies {
            if is_build_only(name) {
                skipped.push(name.clone());
                continue;
            }
            if let Err(reason) = appforge_files::protocol::check_dependency(name, spec) {
                return Err(Error::Dependency {
                    name: name.clone(),
                    range: spec.clone(),
                    reason: reason.to_owned(),
                });
            }
            queue.push_back((String::new(), name.clone(), spec.clone()));
        }
        // Breadth first, one level at a time: the level's packuments are fetched together,
        // then its packages are placed in order (the layout does not depend on timing).
        while !queue.is_empty() {
            let mut missing: Vec<(String, String)> = Vec::new();
            for (_, name, spec) in &queue {
                if !packuments.contains_key(name) && !missing.iter().any(|(n, _)| n == name) {
                    missing.push((name.clone(), spec.clone()));
                }
            }
            let fetched: Vec<Result<(String, Packument)>> = futures::stream::iter(missing)
                .map(|(name, spec)| async move {
                    let packument = self.packument(&name, &spec).await?;
                    Ok((name, packument))
                })
                .buffered(CONCURRENT_REQUESTS)
                .collect()
                .await;
            for result in fetched {
                let (name, packument) = result?;
                packuments.insert(name, Arc::new(packument));
            }
            let level = std::mem::take(&mut queue);
            for (parent, name, spec) in level {
                self.place(&packuments, &mut placed, &mut queue, &parent, name, spec)?;
            }
        }
        let packages: Vec<Result<ResolvedPackage>> = futures::stream::iter(placed)
            .map(|(install_path, p)| async move {
                let dir = self.fetch(&p).await?;
                Ok(ResolvedPackage {
                    name: p.name,
                    version: p.version,
                    integrity: p.integrity.unwrap_or_default(),
                    install_path,
                    dir,
                    has_install_script: p.has_install_script,
                })
            })
            .buffered(CONCURRENT_REQUESTS)
            .collect()
            .await;
        let packages = packages.into_iter().collect::<Result<Vec<_>>>()?;
        let keep: Vec<String> = packages
            .iter()
            .map(|p| format!("{}@{}", p.name, p.version))
            .collect();
        let cache = self.inner.cache.clone();
        // Eviction walks the cache directory: off the async threads.
        let _ = tokio::task::spawn_blocking(move || cache.evict(&keep)).await;
        skipped.sort();
        Ok(ResolvedDeps { packages, skipped })
    }

    /// Places `name` (wanted by `parent` with `spec`) in the layout unless an existing copy
    /// that Node would find satisfies it, and queues its dependencies.
    fn place(
        &self,
        packuments: &HashMap<String, Arc<Packument>>,
        placed: &mut BTreeMap<String, Placed>,
        queue: &mut VecDeque<(String, String, String)>,
        parent: &str,
        name: String,
        spec: String,
    ) -> Result<()> {
        let packument = &packuments[&name];
        // Node's lookup: the nearest `node_modules/<name>` up from the parent.
        if let Some(found) = lookup(placed, parent, &name)
            && packument::satisfies(packument, &spec, &placed[&found].version)
        {
            return Ok(());
        }
        let meta = packument
            .select(&spec)
            .map_err(|reason| Error::Dependency {
                name: name.clone(),
                range: spec.clone(),
                reason,
            })?;
        let top = format!("node_modules/{name}");
        let path = if placed.contains_key(&top) {
            format!("{parent}/node_modules/{name}")
        } else {
            top
        };
        if placed.len() >= self.inner.limits.max_packages {
            return Err(Error::Dependency {
                name,
                range: spec,
                reason: format!(
                    "the dependency tree has more than {} packages",
                    self.inner.limits.max_packages
                ),
            });
        }
        for (dep, dep_spec) in meta.all_dependencies() {
            queue.push_back((path.clone(), dep.clone(), dep_spec.clone()));
        }
        placed.insert(
            path,
            Placed {
                name,
                version: meta.version.clone(),
                tarball: meta.dist.tarball.clone(),
                integrity: meta.dist.integrity.clone(),
                has_install_script: meta.has_install_script,
            },
        );
        Ok(())
    }

    async fn packument(&self, name: &str, spec: &str) -> Result<Packument> {
        if self.inner.offline {
            return self
                .cached_packument(name)
                .ok_or_else(|| Error::Dependency {
                    name: name.to_owned(),
                    range: spec.to_owned(),
                    reason: "not in the dependency cache (offline)".to_owned(),
                });
        }
        // A scoped name keeps its `@` and encodes its `/`, as the npm client does.
        let url = format!("{}/{}", self.inner.url, name.replace('/', "%2f"));
        let sent = self
            .inner
            .http
            .get(&url)
            .header(
                reqwest::header::ACCEPT,
                "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8",
            )
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // The registry cannot be reached: what the cache holds is still a resolution.
            Err(e) => {
                return self
                    .cached_packument(name)
                    .ok_or_else(|| registry_error(&url, e));
            }
        };
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(Error::Dependency {
                name: name.to_owned(),
                range: spec.to_owned(),
                reason: "no such package in the registry".to_owned(),
            });
        }
        if !response.status().is_success() {
            return Err(Error::Registry {
                url,
                reason: format!("status {}", response.status()),
            });
        }
        response
            .json::<Packument>()
            .await
            .map_err(|e| Error::Dependency {
                name: name.to_owned(),
                range: spec.to_owned(),
                reason: format!("the registry's document is not readable: {e}"),
            })
    }

    /// A packument made of the cached versions of `name`, for offline resolution.
    fn cached_packument(&self, name: &str) -> Option<Packument> {
        let mut versions = BTreeMap::new();
        for (version, integrity, dir) in self.inner.cache.versions(name) {
            let Some(manifest) = super::cache::read_manifest(&dir) else {
                continue;
            };
            let has_install_script = ["preinstall", "install", "postinstall"]
                .iter()
                .any(|k| manifest.scripts.contains_key(*k));
            versions.insert(
                version.clone(),
                packument::VersionMeta {
                    version,
                    dependencies: manifest.dependencies,
                    peer_dependencies: manifest.peer_dependencies,
                    peer_dependencies_meta: BTreeMap::new(),
                    has_install_script,
                    dist: packument::Dist {
                        tarball: String::new(),
                        integrity: Some(integrity),
                    },
                },
            );
        }
        (!versions.is_empty()).then(|| Packument {
            dist_tags: BTreeMap::new(),
            versions,
        })
    }

    async fn fetch(&self, p: &Placed) -> Result<PathBuf> {
        let cache = &self.inner.cache;
        if let Some(dir) = cache.get(&p.name, &p.version) {
            return Ok(dir);
        }
        // Tarballs come from the registry itself: a packument cannot send the server to
        // another host.
        if !p.tarball.starts_with(&format!("{}/", self.inner.url)) {
            return Err(Error::Dependency {
                name: p.name.clone(),
                range: p.version.clone(),
                reason: format!("the tarball {} is not on the registry", p.tarball),
            });
        }
        let bytes = self.download(&p.tarball).await?;
        let cache = cache.clone();
        let (name, version, integrity) = (p.name.clone(), p.version.clone(), p.integrity.clone());
        let limits = self.inner.limits.tarball;
        // Hashing and unpacking are CPU and disk work: off the async threads.
        tokio::task::spawn_blocking(move || {
            cache.store_tarball(&name, &version, &bytes, integrity.as_deref(), limits)
        })
        .await
        .map_err(|e| Error::Registry {
            url: p.tarball.clone(),
            reason: format!("unpacking stopped: {e}"),
        })?
    }

    async fn download(&self, url: &str) -> Result<Vec<u8>> {
        let limit = self.inner.limits.tarball.max_compressed;
        let response = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| registry_error(url, e))?;
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large(url, limit));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| registry_error(url, e))?;
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large(url, limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn too_large(url: &str, limit: u64) -> Error {
    Error::Tarball {
        package: url.rsplit('/').next().unwrap_or(url).to_owned(),
        error: crate::error::TarballError::TooLarge { limit },
    }
}

fn registry_error(url: &str, e: reqwest::Error) -> Error {
    Error::Registry {
        url: url.to_owned(),
        reason: e.without_url().to_string(),
    }
}

#[derive(Debug, Clone)]
struct Placed {
    name: String,
    version: String,
    tarball: String,
    integrity: Option<String>,
    has_install_script: bool,
}

/// The install path Node would find `name` at from `parent`.
fn lookup(placed: &BTreeMap<String, Placed>, parent: &str, name: &str) -> Option<String> {
    let mut base = parent.to_owned();
    loop {
        let candidate = if base.is_empty() {
            format!("node_modules/{name}")
        } else {
            format!("{base}/node_modules/{name}")
        };
        if placed.contains_key(&candidate) {
            return Some(candidate);
        }
        if base.is_empty() {
            return None;
        }
        base = match base.rfind("/node_modules/") {
            Some(i) => base[..i].to_owned(),
            None => String::new(),
        };
    }
}

impl RegistryBuilder {
    /// The registry URL (default: `APPFORGE_NPM_REGISTRY`, else the public registry).
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Limits on the dependency tree and the tarballs.
    #[must_use]
    pub fn limits(mut self, limits: ResolveLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Resolves from the cache only, never contacting the registry (default: false; a
    /// registry that cannot be reached falls back to the cache anyway). Fill the cache with
    /// [`DepCache::import_tarball`](super::DepCache::import_tarball) for offline previews.
    #[must_use]
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// The timeout of each registry request (default 60 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The registry.
    ///
    /// # Errors
    ///
    /// [`Error::Registry`] when the URL is not an `http(s)` URL or the client cannot be built.
    pub fn build(self) -> Result<Registry> {
        let url = self.url.trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&url).map_err(|e| Error::Registry {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::Registry {
                url,
                reason: "the registry URL is not http(s)".to_owned(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!("appforge-preview/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Registry {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        Ok(Registry {
            inner: Arc::new(Inner {
                url,
                http,
                cache: self.cache,
                limits: self.limits,
                offline: self.offline,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lookup_walks_up_the_tree() {
        let placed = |v: &str| Placed {
            name: String::new(),
            version: v.to_owned(),
            tarball: String::new(),
            integrity: None,
            has_install_script: false,
        };
        let map = BTreeMap::from([
            ("node_modules/b".to_owned(), placed("1")),
            ("node_modules/a/node_modules/b".to_owned(), placed("2")),
        ]);
        assert_eq!(lookup(&map, "", "b").unwrap(), "node_modules/b");
        assert_eq!(
            lookup(&map, "node_modules/a", "b").unwrap(),
            "node_modules/a/node_modules/b"
        );
        assert_eq!(
            lookup(&map, "node_modules/c", "b").unwrap(),
            "node_modules/b"
        );
        assert_eq!(lookup(&map, "node_modules/c", "d"), None);
    }
}
