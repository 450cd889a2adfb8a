//! Hostile input, each refused with a named error: imports out of the app, tarballs that do
//! not match their integrity, leave their package or expand past the limits, install scripts.

use appforge_preview::{
    BuildErrorKind, Error, RefusedImport, ResolveLimits, ResolvedDeps, TarballError, TarballLimits,
    build,
};
use serde_json::json;

use crate::support::{Entry, StandIn, pack};

fn refusal(source: &str) -> appforge_preview::BuildError {
    let app = [
        ("src/main.ts", "import './evil';\n"),
        ("src/evil.ts", source),
    ];
    build(&app, &ResolvedDeps::empty()).unwrap_err()
}

#[test]
fn node_builtins_are_refused_from_app_code() {
    let error = refusal(
        "// reads a file\nimport { readFileSync } from 'node:fs';\nconsole.log(readFileSync);\n",
    );
    assert_eq!(
        error.kind,
        BuildErrorKind::Refused(RefusedImport::NodeBuiltin)
    );
    assert_eq!(
        (error.file.as_str(), error.line, error.column),
        ("src/evil.ts", 2, 30)
    );
    assert!(error.message.contains("node:fs"));
    let error = refusal("import cp from 'child_process';\nconsole.log(cp);\n");
    assert_eq!(error.refused(), Some(RefusedImport::NodeBuiltin));
}

#[test]
fn absolute_paths_out_of_the_app_are_refused() {
    let error = refusal("import secret from '/etc/passwd';\nconsole.log(secret);\n");
    assert_eq!(
        error.kind,
        BuildErrorKind::Refused(RefusedImport::AbsolutePath)
    );
    assert_eq!((error.file.as_str(), error.line), ("src/evil.ts", 1));
}

#[test]
fn relative_paths_out_of_the_app_are_refused() {
    let error = refusal("import x from '../../x';\nconsole.log(x);\n");
    assert_eq!(
        error.kind,
        BuildErrorKind::Refused(RefusedImport::EscapesApp)
    );
    assert_eq!(
        (error.file.as_str(), error.line, error.column),
        ("src/evil.ts", 1, 15)
    );
    // Even dynamically and with a detour through the app.
    let error = refusal("export const load = () => import('./../../../etc/hosts');\n");
    assert_eq!(error.refused(), Some(RefusedImport::EscapesApp));
}

#[test]
fn file_urls_are_refused() {
    let error = refusal("import x from 'file:///etc/passwd';\nconsole.log(x);\n");
    assert_eq!(error.refused(), Some(RefusedImport::Url));
}

fn limits(tarball: TarballLimits) -> ResolveLimits {
    ResolveLimits {
        tarball,
        ..ResolveLimits::default()
    }
}

async fn resolve_one(
    registry: &StandIn,
    name: &str,
    limits: ResolveLimits,
) -> (
    Result<appforge_preview::ResolvedDeps, Error>,
    tempfile::TempDir,
) {
    let cache = tempfile::tempdir().unwrap();
    let client = registry.registry(cache.path(), limits);
    let deps = [(name.to_owned(), "^1.0.0".to_owned())].into();
    (client.resolve(&deps).await, cache)
}

fn cache_is_empty(cache: &tempfile::TempDir) -> bool {
    std::fs::read_dir(cache.path()).unwrap().next().is_none()
}

#[tokio::test]
async fn a_tarball_whose_integrity_does_not_match_is_refused_before_unpacking() {
    let registry = StandIn::start().await;
    registry.publish_package(
        &json!({"name": "tampered", "version": "1.0.0"}),
        &[("index.js", "module.exports = 1;")],
    );
    let other = pack(&[Entry::File("package/index.js", b"module.exports = 2;")]);
    registry.set_integrity("tampered", "1.0.0", &appforge_preview::integrity_of(&other));
    let (result, cache) = resolve_one(&registry, "tampered", ResolveLimits::default()).await;
    match result.unwrap_err() {
        Error::Tarball {
            package,
            error: TarballError::IntegrityMismatch { .. },
        } => {
            assert_eq!(package, "tampered@1.0.0");
        }
        other => panic!("expected an integrity mismatch, got {other}"),
    }
    assert!(cache_is_empty(&cache), "nothing was unpacked");
}

#[tokio::test]
async fn a_tarball_without_sha512_integrity_is_refused() {
    let registry = StandIn::start().await;
    registry.publish_package(
        &json!({"name": "old", "version": "1.0.0"}),
        &[("index.js", "")],
    );
    registry.set_integrity("old", "1.0.0", "sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
    let (result, _cache) = resolve_one(&registry, "old", ResolveLimits::default()).await;
    assert!(matches!(
        result.unwrap_err(),
        Error::Tarball {
            error: TarballError::MissingIntegrity,
            ..
        }
    ));
}

#[tokio::test]
async fn a_tarball_with_paths_out_of_the_package_is_refused() {
    let registry = StandIn::start().await;
    let manifest = br#"{"name": "escape", "version": "1.0.0"}"#;
    registry.publish(pack(&[
        Entry::File("package/package.json", manifest),
        Entry::File("package/../../../tmp/appforge-escaped", b"owned"),
    ]));
    let (result, cache) = resolve_one(&registry, "escape", ResolveLimits::default()).await;
    match result.unwrap_err() {
        Error::Tarball {
            error: TarballError::UnsafePath(path),
            ..
        } => assert!(path.contains("..")),
        other => panic!("expected an unsafe path, got {other}"),
    }
    assert!(cache_is_empty(&cache));

    let registry = StandIn::start().await;
    registry.publish(pack(&[
        Entry::File(
            "package/package.json",
            br#"{"name": "link", "version": "1.0.0"}"#,
        ),
        Entry::Symlink("package/passwd", "../../../../etc/passwd"),
    ]));
    let (result, _cache) = resolve_one(&registry, "link", ResolveLimits::default()).await;
    assert!(matches!(
        result.unwrap_err(),
        Error::Tarball {
            error: TarballError::UnsafePath(_),
            ..
        }
    ));
}

#[tokio::test]
async fn a_tarball_bomb_is_refused() {
    // Many files.
    let registry = StandIn::start().await;
    let names: Vec<String> = (0..200).map(|i| format!("package/f{i}.js")).collect();
    let mut entries = vec![Entry::File(
        "package/package.json",
        br#"{"name": "many", "version": "1.0.0"}"#,
    )];
    entries.extend(names.iter().map(|n| Entry::File(n, b"")));
    registry.publish(pack(&entries));
    let small = TarballLimits {
        max_files: 100,
        ..TarballLimits::default()
    };
    let (result, cache) = resolve_one(&registry, "many", limits(small)).await;
    assert!(matches!(
        result.unwrap_err(),
        Error::Tarball {
            error: TarballError::TooManyFiles { limit: 100 },
            ..
        }
    ));
    assert!(cache_is_empty(&cache));

    // A small tarball that expands to much more.
    let registry = StandIn::start().await;
    let zeros = vec![0u8; 4 << 20];
    let bomb = pack(&[
        Entry::File(
            "package/package.json",
            br#"{"name": "bomb", "version": "1.0.0"}"#,
        ),
        Entry::File("package/zeros.bin", &zeros),
    ]);
    assert!(
        bomb.len() < 64 << 10,
        "compresses well: {} bytes",
        bomb.len()
    );
    registry.publish(bomb);
    let small = TarballLimits {
        max_expanded: 1 << 20,
        ..TarballLimits::default()
    };
    let (result, cache) = resolve_one(&registry, "bomb", limits(small)).await;
    assert!(matches!(
        result.unwrap_err(),
        Error::Tarball {
            error: TarballError::TooLarge { .. },
            ..
        }
    ));
    assert!(cache_is_empty(&cache));
}

#[tokio::test]
async fn install_scripts_are_never_run() {
    let registry = StandIn::start().await;
    let marker = tempfile::tempdir().unwrap();
    let marker_path = marker.path().join("postinstall-ran");
    let script = format!("touch {}", marker_path.display());
    registry.publish_package(
        &json!({
            "name": "scripted",
            "version": "1.0.0",
            "main": "index.js",
            "scripts": {"preinstall": script, "install": script, "postinstall": script}
        }),
        &[("index.js", "module.exports = 'scripted';")],
    );
    let (result, _cache) = resolve_one(&registry, "scripted", ResolveLimits::default()).await;
    let deps = result.unwrap();
    assert!(
        deps.packages()[0].has_install_script,
        "the registry said it has one"
    );
    let app = [(
        "src/main.js",
        "import s from 'scripted';\nconsole.log(s);\n",
    )];
    let bundle = build(&app, &deps).unwrap();
    assert!(bundle.js.contains("scripted"));
    assert!(!marker_path.exists(), "no install script ran");
}

#[tokio::test]
async fn packages_may_not_reach_out_of_the_build_either() {
    let registry = StandIn::start().await;
    registry.publish_package(
        &json!({"name": "sneaky", "version": "1.0.0", "main": "index.js"}),
        &[(
            "index.js",
            "module.exports = require('../../../../../../etc/passwd');",
        )],
    );
    let (result, _cache) = resolve_one(&registry, "sneaky", ResolveLimits::default()).await;
    let deps = result.unwrap();
    let app = [("src/main.js", "import s from 'sneaky';\nconsole.log(s);\n")];
    let error = build(&app, &deps).unwrap_err();
    assert_eq!(error.refused(), Some(RefusedImport::EscapesApp));
    assert_eq!(error.file, "node_modules/sneaky/index.js");
}
