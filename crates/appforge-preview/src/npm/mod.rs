//! npm dependencies: an app's `dependencies` resolved against a registry, their tarballs
//! verified and unpacked into a shared cache, never running an install script.

mod cache;
#[cfg(feature = "registry")]
mod packument;
#[cfg(feature = "registry")]
mod registry;
mod tarball;

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

pub use cache::DepCache;
#[cfg(feature = "registry")]
pub use registry::{DEFAULT_REGISTRY, Registry, RegistryBuilder, ResolveLimits};
pub use tarball::{TarballLimits, integrity_of, verify_integrity};

/// Packages that only make sense on the machine that builds the app: the bundler does their
/// work (Vite and its plugins, TypeScript, type declarations, linters, Tailwind's CLI).
const BUILD_ONLY: &[&str] = &[
    "vite",
    "typescript",
    "tailwindcss",
    "postcss",
    "autoprefixer",
    "prettier",
    "esbuild",
    "rollup",
    "vitest",
    "ts-node",
    "tsx",
    "@tailwindcss/vite",
    "@tailwindcss/postcss",
    "@tailwindcss/cli",
];
const BUILD_ONLY_PREFIXES: &[&str] = &[
    "@types/",
    "@vitejs/",
    "eslint",
    "@eslint/",
    "@typescript-eslint/",
    "vite-plugin-",
    "@testing-library/",
];

/// Whether a package is skipped as build-only (`vite`, `typescript`, `@types/*`,
/// `@vitejs/*`, `eslint*`, Tailwind's CLI...).
#[must_use]
pub fn is_build_only(name: &str) -> bool {
    BUILD_ONLY.contains(&name) || BUILD_ONLY_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// One package of a resolved dependency set, unpacked in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPackage {
    /// The package name.
    pub name: String,
    /// The exact version.
    pub version: String,
    /// The `integrity` its tarball was checked against.
    pub integrity: String,
    /// Where it goes in a `node_modules` layout (`node_modules/react`, or nested
    /// `node_modules/a/node_modules/b` when two versions are needed).
    pub install_path: String,
    /// The unpacked package directory.
    pub dir: PathBuf,
    /// Whether the package declares install scripts (they are never run).
    pub has_install_script: bool,
}

/// The dependencies of an app, resolved and unpacked: what a build reads `node_modules` from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedDeps {
    pub(crate) packages: Vec<ResolvedPackage>,
    pub(crate) skipped: Vec<String>,
}

impl ResolvedDeps {
    /// No dependencies.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// A set from packages already unpacked (by a test, or from a vendored directory).
    #[must_use]
    pub fn from_packages(mut packages: Vec<ResolvedPackage>) -> Self {
        packages.sort_by(|a, b| a.install_path.cmp(&b.install_path));
        Self {
            packages,
            skipped: Vec::new(),
        }
    }

    /// The packages, by install path.
    #[must_use]
    pub fn packages(&self) -> &[ResolvedPackage] {
        &self.packages
    }

    /// The build-only dependencies that were skipped.
    #[must_use]
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// A digest of the set (install paths, versions, integrities): with the digest of the
    /// files, the key of a cached build.
    #[must_use]
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for p in &self.packages {
            for part in [&p.install_path, &p.name, &p.version, &p.integrity] {
                hasher.update(part.as_bytes());
                hasher.update([0]);
            }
        }
        hasher.finalize().into()
    }
}

/// Reads the `dependencies` of an app's `package.json` (an absent or unreadable file means
/// none; the build reports imports of missing packages).
#[must_use]
pub fn dependencies_of(package_json: &str) -> BTreeMap<String, String> {
    serde_json::from_str::<serde_json::Value>(package_json)
        .ok()
        .and_then(|v| v.get("dependencies").cloned())
        .and_then(|d| serde_json::from_value(d).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_only_packages_are_recognised() {
        for name in [
            "vite",
            "typescript",
            "@types/react",
            "@vitejs/plugin-react",
            "eslint",
            "eslint-plugin-react-hooks",
            "tailwindcss",
        ] {
            assert!(is_build_only(name), "{name}");
        }
        for name in ["react", "react-dom", "lucide-react", "clsx", "zustand"] {
            assert!(!is_build_only(name), "{name}");
        }
    }

    #[test]
    fn dependencies_are_read_from_package_json() {
        let deps = dependencies_of(
            r#"{"dependencies": {"react": "^18.3.1"}, "devDependencies": {"vite": "^5"}}"#,
        );
        assert_eq!(deps.len(), 1);
        assert_eq!(deps["react"], "^18.3.1");
        assert!(dependencies_of("not json").is_empty());
    }
}
