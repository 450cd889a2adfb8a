//! Previews for a server: an app version's files in, its bundle out, with the `dependencies`
//! of the app's `package.json` resolved through a [`Registry`], and the response headers that
//! keep a preview apart from the product that shows it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::bundle::Bundle;
use crate::error::Result;
use crate::npm::{Registry, ResolvedDeps, dependencies_of};
use crate::previewer::Previewer;

/// The most dependency sets whose resolution is kept.
const RESOLUTIONS_KEPT: usize = 256;

/// Resolves an app's dependencies and builds it: the [`Registry`] and the [`Previewer`] of a
/// server, with each dependency set's resolution kept for a while
/// ([`resolution_ttl`](Self::resolution_ttl), 10 minutes by default), so that showing a
/// version again asks neither the registry nor the bundler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Previews {
    inner: Arc<Inner>,
    ttl: Duration,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    previewer: Previewer,
    resolutions: Mutex<HashMap<BTreeMap<String, String>, (Instant, ResolvedDeps)>>,
}

impl Previews {
    /// Previews over `registry` and `previewer`.
    #[must_use]
    pub fn new(registry: Registry, previewer: Previewer) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                previewer,
                resolutions: Mutex::new(HashMap::new()),
            }),
            ttl: Duration::from_secs(600),
        }
    }

    /// The same previews keeping a dependency set's resolution for `ttl` (zero: resolve on
    /// every build). A range such as `^18.3.1` then picks up a newer release only after it.
    #[must_use]
    pub fn resolution_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The registry dependencies are resolved through.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The build pool.
    #[must_use]
    pub fn previewer(&self) -> &Previewer {
        &self.inner.previewer
    }

    /// The bundle of an app's files: the `dependencies` of its `package.json` (none without
    /// one) resolved, then the files built, or the bundle of the same files and
    /// dependencies built before.
    ///
    /// # Errors
    ///
    /// As [`Registry::resolve`] and [`Previewer::build`]: a dependency that cannot be
    /// resolved or a refused tarball names the package; a build error says where.
    pub async fn bundle(&self, files: Vec<(String, Vec<u8>)>) -> Result<Arc<Bundle>> {
        let dependencies = files
            .iter()
            .find(|(path, _)| path == "package.json")
            .map(|(_, content)| dependencies_of(&String::from_utf8_lossy(content)))
            .unwrap_or_default();
        let deps = self.resolve(dependencies).await?;
        self.inner.previewer.build(files, deps).await
    }

    async fn resolve(&self, dependencies: BTreeMap<String, String>) -> Result<ResolvedDeps> {
        if dependencies.is_empty() {
            return Ok(ResolvedDeps::empty());
        }
        if let Some(deps) = self.kept(&dependencies) {
            return Ok(deps);
        }
        let deps = self.inner.registry.resolve(&dependencies).await?;
        if !self.ttl.is_zero() {
            let mut kept = self.resolutions();
            let now = Instant::now();
            kept.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
            if kept.len() >= RESOLUTIONS_KEPT {
                kept.clear();
            }
            kept.insert(dependencies, (now, deps.clone()));
        }
        Ok(deps)
    }

    fn kept(&self, dependencies: &BTreeMap<String, String>) -> Option<ResolvedDeps> {
        let kept = self.resolutions();
        let (at, deps) = kept.get(dependencies)?;
        (at.elapsed() < self.ttl).then(|| deps.clone())
    }

    fn resolutions(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<BTreeMap<String, String>, (Instant, ResolvedDeps)>> {
        self.inner
            .resolutions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `Content-Security-Policy` of a preview document, whatever origin serves it.
///
/// - `sandbox allow-scripts allow-forms allow-modals` (never `allow-same-origin`): the
///   document runs in an opaque origin of its own even when it is opened outside the
///   product's `<iframe sandbox>` (a link opened in a tab), so it can never read the storage
///   or the cookies of the origin that serves it. Forms are allowed because without
///   `allow-forms` a form's `submit` event never fires, and apps handle their forms in script
///   (a submission that would navigate is stopped by `form-action 'none'`); modals because
///   apps call `confirm()`;
/// - scripts and styles inline (the bundle is inlined) or from `https:` (apps load Tailwind's
///   CDN script, fonts and stylesheets; what such a script can do, the app's own can),
///   images, fonts and media from the document itself or `https:`;
/// - `connect-src 'none'`: no `fetch`, XHR or WebSocket, so a preview cannot call the
///   product's API or send anything anywhere;
/// - `frame-ancestors` as given: the origins that may show the preview in a frame.
#[must_use]
pub fn frame_csp(frame_ancestors: &str) -> String {
    format!(
        "sandbox {SANDBOX}; default-src 'none'; script-src 'unsafe-inline' https:; \
         style-src 'unsafe-inline' https:; img-src data: blob: https:; font-src data: https:; \
         media-src data: blob: https:; connect-src 'none'; base-uri 'none'; \
         form-action 'none'; frame-ancestors {frame_ancestors}"
    )
}

/// The sandbox of a preview: the `sandbox` attribute of its `<iframe>` and the flags of
/// [`frame_csp`]'s `sandbox` directive. Never `allow-same-origin`.
pub const SANDBOX: &str = "allow-scripts allow-forms allow-modals";

/// The headers of a preview document beside [`frame_csp`]: HTML, never sniffed, no
/// referrer, not stored by shared caches.
pub const FRAME_HEADERS: [(&str, &str); 4] = [
    ("content-type", "text/html; charset=utf-8"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "private, no-cache"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_policy_sandboxes_and_forbids_connections() {
        let csp = frame_csp("'self'");
        assert!(csp.starts_with("sandbox allow-scripts allow-forms allow-modals;"));
        assert!(!csp.contains("allow-same-origin"));
        assert!(csp.contains("connect-src 'none'"));
        assert!(csp.ends_with("frame-ancestors 'self'"));
    }
}
