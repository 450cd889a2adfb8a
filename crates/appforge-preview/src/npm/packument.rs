//! The registry's document for one package (the abbreviated "corgi" form) and the choice of a
//! version in a range.

use std::collections::BTreeMap;

use node_semver::{Range, Version};
use serde::Deserialize;

/// A package document, abbreviated (`Accept: application/vnd.npm.install-v1+json`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Packument {
    #[serde(rename = "dist-tags", default)]
    pub(crate) dist_tags: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) versions: BTreeMap<String, VersionMeta>,
}

/// One published version.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct VersionMeta {
    pub(crate) version: String,
    #[serde(default)]
    pub(crate) dependencies: BTreeMap<String, String>,
    #[serde(rename = "peerDependencies", default)]
    pub(crate) peer_dependencies: BTreeMap<String, String>,
    #[serde(rename = "peerDependenciesMeta", default)]
    pub(crate) peer_dependencies_meta: BTreeMap<String, PeerMeta>,
    #[serde(rename = "hasInstallScript", default)]
    pub(crate) has_install_script: bool,
    pub(crate) dist: Dist,
}

/// `peerDependenciesMeta.<name>`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PeerMeta {
    #[serde(default)]
    pub(crate) optional: bool,
}

/// Where the tarball is and how to check it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Dist {
    pub(crate) tarball: String,
    #[serde(default)]
    pub(crate) integrity: Option<String>,
}

impl VersionMeta {
    /// The runtime dependencies, with the required peers (npm 7+ installs them).
    pub(crate) fn all_dependencies(&self) -> impl Iterator<Item = (&String, &String)> {
        self.dependencies
            .iter()
            .chain(self.peer_dependencies.iter().filter(|(name, _)| {
                !self
                    .peer_dependencies_meta
                    .get(*name)
                    .is_some_and(|m| m.optional)
            }))
    }
}

impl Packument {
    /// The version `spec` selects: a dist tag (`latest`, `next`), or a semver range; within a
    /// range the `latest` tag wins when it is in range (as npm does), otherwise the highest
    /// release (a prerelease only when the range names one).
    pub(crate) fn select(&self, spec: &str) -> Result<&VersionMeta, String> {
        let spec = spec.trim();
        let spec = if spec.is_empty() { "*" } else { spec };
        if let Some(version) = self.dist_tags.get(spec) {
            return self
                .versions
                .get(version)
                .ok_or_else(|| format!("tag {spec} names {version}, which is not published"));
        }
        let range = Range::parse(spec)
            .map_err(|e| format!("{spec:?} is not a semver range or a tag: {e}"))?;
        if let Some(latest) = self.dist_tags.get("latest")
            && let (Ok(v), Some(meta)) = (Version::parse(latest), self.versions.get(latest))
            && range.satisfies(&v)
        {
            return Ok(meta);
        }
        let allow_pre = spec
            .split(|c: char| c.is_whitespace() || c == '|')
            .any(|part| {
                part.trim_start_matches(['^', '~', '>', '<', '=', 'v'])
                    .split_once('-')
                    .is_some_and(|(head, _)| {
                        head.chars().next().is_some_and(|c| c.is_ascii_digit())
                    })
            });
        self.versions
            .iter()
            .filter_map(|(text, meta)| Some((Version::parse(text).ok()?, meta)))
            .filter(|(v, _)| allow_pre || !v.is_prerelease())
            .filter(|(v, _)| range.satisfies(v))
            .max_by(|(a, _), (b, _)| a.cmp(b))
            .map(|(_, meta)| meta)
            .ok_or_else(|| format!("no published version matches {spec}"))
    }
}

/// Whether a version satisfies a spec as [`Packument::select`] reads it (a tag matches only
/// the version it names).
pub(crate) fn satisfies(packument: &Packument, spec: &str, version: &str) -> bool {
    let spec = spec.trim();
    if let Some(tagged) = packument.dist_tags.get(spec) {
        return tagged == version;
    }
    let spec = if spec.is_empty() { "*" } else { spec };
    match (Range::parse(spec), Version::parse(version)) {
        (Ok(range), Ok(v)) => range.satisfies(&v),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packument(versions: &[&str], latest: &str) -> Packument {
        let versions = versions
            .iter()
            .map(|v| {
                (
                    (*v).to_owned(),
                    serde_json::from_value(serde_json::json!({
                        "version": v,
                        "dist": {"tarball": format!("http://r/p/-/p-{v}.tgz"), "integrity": "sha512-x"}
                    }))
                    .unwrap(),
                )
            })
            .collect();
        Packument {
            dist_tags: BTreeMap::from([
                ("latest".to_owned(), latest.to_owned()),
                ("next".to_owned(), "19.0.0-rc.1".to_owned()),
            ]),
            versions,
        }
    }

    #[test]
    fn npm_ranges_and_tags_select_as_npm_does() {
        let p = packument(
            &[
                "1.0.0",
                "1.2.0",
                "1.2.9",
                "1.3.0",
                "2.0.0",
                "18.2.0",
                "18.3.1",
                "19.0.0-rc.1",
            ],
            "18.3.1",
        );
        let pick = |spec: &str| p.select(spec).map(|m| m.version.clone());
        assert_eq!(pick("^18.2.0").unwrap(), "18.3.1");
        assert_eq!(pick("~1.2").unwrap(), "1.2.9");
        assert_eq!(pick(">=1 <2").unwrap(), "1.3.0");
        assert_eq!(pick("1.x || >=2.0.0 <3").unwrap(), "2.0.0");
        assert_eq!(pick("*").unwrap(), "18.3.1");
        assert_eq!(pick("").unwrap(), "18.3.1");
        assert_eq!(pick("latest").unwrap(), "18.3.1");
        assert_eq!(pick("next").unwrap(), "19.0.0-rc.1");
        assert_eq!(pick("1.2.0").unwrap(), "1.2.0");
        // A prerelease only when asked for.
        assert_eq!(pick(">=19.0.0-rc.0").unwrap(), "19.0.0-rc.1");
        assert_eq!(pick(">=18.3.1").unwrap(), "18.3.1");
        assert!(pick("^3").unwrap_err().contains("no published version"));
        assert!(pick("not a range").is_err());
        assert!(satisfies(&p, "^18.2.0", "18.3.1"));
        assert!(!satisfies(&p, "~1.2", "1.3.0"));
    }
}
