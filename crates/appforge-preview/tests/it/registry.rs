//! Dependency resolution against a registry stand-in: ranges, transitive dependencies,
//! nesting, the cache, skipped build tools, CommonJS and ES module packages in a bundle.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use appforge_preview::{Error, ResolveLimits, build};
use serde_json::json;

use crate::support::StandIn;

fn deps(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(n, r)| ((*n).to_owned(), (*r).to_owned()))
        .collect()
}

async fn small_registry() -> StandIn {
    let registry = StandIn::start().await;
    // A CommonJS package with a dependency, and an ES module package.
    registry.publish_package(&json!({"name": "cjs-greet", "version": "1.2.0", "main": "lib/index.js", "dependencies": {"shout": "~2.0"}}),
        &[("lib/index.js", "const shout = require('shout');\nexports.greet = (n) => shout('hello ' + n);\n")],
    );
    registry.publish_package(
        &json!({"name": "cjs-greet", "version": "2.0.0", "main": "lib/index.js"}),
        &[("lib/index.js", "exports.greet = () => 'v2';\n")],
    );
    for version in ["2.0.1", "2.0.3", "2.1.0"] {
        registry.publish_package(
            &json!({"name": "shout", "version": version, "main": "index.js"}),
            &[(
                "index.js",
                &format!("module.exports = (s) => s.toUpperCase() + '!'; // {version}\n"),
            )],
        );
    }
    registry.publish_package(
        &json!({"name": "shout", "version": "1.0.0", "main": "index.js"}),
        &[("index.js", "module.exports = (s) => s + ' (shout 1)';\n")],
    );
    registry.publish_package(&json!({"name": "esm-pad", "version": "0.3.0", "type": "module", "exports": {".": "./index.js"}}),
        &[("index.js", "export function pad(s, n) { return String(s).padStart(n); }\n")],
    );
    registry.publish_package(&json!({"name": "@acme/colors", "version": "1.0.0", "type": "module", "exports": {".": "./index.js"}}),
        &[("index.js", "export const teal = '#008080';\n")],
    );
    registry
}

#[tokio::test]
async fn ranges_transitive_dependencies_and_a_bundle_of_commonjs_and_esm() {
    let registry = small_registry().await;
    let cache = tempfile::tempdir().unwrap();
    let client = registry.registry(cache.path(), ResolveLimits::default());
    let resolved = client
        .resolve(&deps(&[
            ("cjs-greet", "^1.0.0"),
            ("esm-pad", "0.3.x"),
            ("@acme/colors", "latest"),
            ("vite", "^5.4.0"),
            ("@types/react", "^18"),
            ("@vitejs/plugin-react", "^4"),
            ("typescript", "^5"),
        ]))
        .await
        .unwrap();
    let layout: Vec<(String, String)> = resolved
        .packages()
        .iter()
        .map(|p| (p.install_path.clone(), p.version.clone()))
        .collect();
    assert_eq!(
        layout,
        [
            ("node_modules/@acme/colors".to_owned(), "1.0.0".to_owned()),
            ("node_modules/cjs-greet".to_owned(), "1.2.0".to_owned()),
            ("node_modules/esm-pad".to_owned(), "0.3.0".to_owned()),
            ("node_modules/shout".to_owned(), "2.0.3".to_owned()),
        ]
    );
    assert_eq!(
        resolved.skipped(),
        ["@types/react", "@vitejs/plugin-react", "typescript", "vite"]
    );

    let app = [
        ("package.json", "{}"),
        (
            "src/main.ts",
            "import { greet } from 'cjs-greet';\nimport { pad } from 'esm-pad';\nimport { teal } from '@acme/colors';\n\
             document.body.textContent = pad(greet('you'), 20) + teal;\n",
        ),
    ];
    let bundle = build(&app, &resolved).unwrap();
    assert_eq!(
        bundle.modules,
        [
            "node_modules/shout/index.js",
            "node_modules/cjs-greet/lib/index.js",
            "node_modules/esm-pad/index.js",
            "node_modules/@acme/colors/index.js",
            "src/main.ts",
        ]
    );
    assert!(bundle.js.contains("// 2.0.3") || bundle.js.contains("toUpperCase"));
    assert!(bundle.js.contains("padStart"));

    // A second resolution is served from the cache: packuments again, no tarball.
    let tarballs = registry.tarball_requests.load(Ordering::SeqCst);
    assert_eq!(tarballs, 4);
    let again = client
        .resolve(&deps(&[
            ("cjs-greet", "^1.0.0"),
            ("esm-pad", "0.3.x"),
            ("@acme/colors", "latest"),
        ]))
        .await
        .unwrap();
    assert_eq!(again.fingerprint(), resolved.fingerprint());
    assert_eq!(registry.tarball_requests.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn conflicting_versions_nest_under_their_dependent() {
    let registry = small_registry().await;
    let cache = tempfile::tempdir().unwrap();
    let client = registry.registry(cache.path(), ResolveLimits::default());
    // The app wants shout 1; cjs-greet wants shout ~2.0: it gets its own copy.
    let resolved = client
        .resolve(&deps(&[("cjs-greet", "1"), ("shout", "^1.0.0")]))
        .await
        .unwrap();
    let layout: Vec<(&str, &str)> = resolved
        .packages()
        .iter()
        .map(|p| (p.install_path.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(
        layout,
        [
            ("node_modules/cjs-greet", "1.2.0"),
            ("node_modules/cjs-greet/node_modules/shout", "2.0.3"),
            ("node_modules/shout", "1.0.0"),
        ]
    );
    let app = [(
        "src/main.js",
        "import shout from 'shout';\nimport { greet } from 'cjs-greet';\nconsole.log(shout('a'), greet('b'));\n",
    )];
    let bundle = build(&app, &resolved).unwrap();
    assert!(
        bundle
            .modules
            .contains(&"node_modules/shout/index.js".to_owned())
    );
    assert!(
        bundle
            .modules
            .contains(&"node_modules/cjs-greet/node_modules/shout/index.js".to_owned())
    );
    assert!(bundle.js.contains("(shout 1)") && bundle.js.contains("toUpperCase"));
}

#[tokio::test]
async fn an_unresolvable_dependency_is_an_error_naming_it() {
    let registry = small_registry().await;
    let cache = tempfile::tempdir().unwrap();
    let client = registry.registry(cache.path(), ResolveLimits::default());
    match client
        .resolve(&deps(&[("left-padd", "^1.0.0")]))
        .await
        .unwrap_err()
    {
        Error::Dependency { name, reason, .. } => {
            assert_eq!(name, "left-padd");
            assert!(reason.contains("no such package"), "{reason}");
        }
        other => panic!("{other}"),
    }
    let error = client
        .resolve(&deps(&[("esm-pad", "^9")]))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("esm-pad@^9"), "{error}");
    assert!(
        error.to_string().contains("no published version"),
        "{error}"
    );
    let overlay = error.to_build_error();
    assert_eq!(overlay.file, "package.json");
    let error = client
        .resolve(&deps(&[("evil", "file:../../etc")]))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Dependency { .. }), "{error}");
}

#[tokio::test]
async fn the_package_count_is_limited() {
    let registry = small_registry().await;
    let cache = tempfile::tempdir().unwrap();
    let limits = ResolveLimits {
        max_packages: 1,
        ..ResolveLimits::default()
    };
    let client = registry.registry(cache.path(), limits);
    let error = client
        .resolve(&deps(&[("cjs-greet", "^1")]))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("more than 1 packages"),
        "{error}"
    );
}

#[tokio::test]
async fn a_cache_filled_from_local_tarballs_resolves_offline() {
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = appforge_preview::DepCache::new(cache_dir.path(), 64 << 20).unwrap();
    for (name, version, deps) in [
        ("cjs-greet", "1.2.0", json!({"shout": "^2"})),
        ("shout", "2.0.3", json!({})),
        ("shout", "1.0.0", json!({})),
    ] {
        let tgz = crate::support::package(
            &json!({"name": name, "version": version, "main": "index.js", "dependencies": deps}),
            &[("index.js", "module.exports = require('shout') || 1;")],
        );
        let (n, v, dir) = cache
            .import_tarball(&tgz, appforge_preview::TarballLimits::default())
            .unwrap();
        assert_eq!((n.as_str(), v.as_str()), (name, version));
        assert!(dir.join("index.js").is_file());
    }
    let wanted = deps(&[("cjs-greet", "^1.0.0")]);
    let offline = appforge_preview::Registry::builder(cache.clone())
        .offline(true)
        .build()
        .unwrap();
    let resolved = offline.resolve(&wanted).await.unwrap();
    let layout: Vec<(&str, &str)> = resolved
        .packages()
        .iter()
        .map(|p| (p.install_path.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(
        layout,
        [
            ("node_modules/cjs-greet", "1.2.0"),
            ("node_modules/shout", "2.0.3")
        ]
    );
    assert!(resolved.packages()[0].integrity.starts_with("sha512-"));
    // A registry that cannot be reached falls back to the cache too.
    let unreachable = appforge_preview::Registry::builder(cache)
        .url("http://127.0.0.1:9")
        .build()
        .unwrap();
    assert_eq!(unreachable.resolve(&wanted).await.unwrap(), resolved);
    let error = offline
        .resolve(&deps(&[("react", "^18")]))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("not in the dependency cache"),
        "{error}"
    );
}
