//! Rules every package of the workspace follows (see `STYLE.md`).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

fn manifests() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in ["crates", "examples"] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
        for entry in entries {
            let manifest = entry.expect("a directory entry").path().join("Cargo.toml");
            if manifest.exists() {
                found.push(manifest);
            }
        }
    }
    found.push(root().join("benches/Cargo.toml"));
    found.push(root().join("tests/Cargo.toml"));
    found
}

fn read(path: &Path) -> toml::Table {
    std::fs::read_to_string(path)
        .expect("a readable manifest")
        .parse()
        .expect("a valid manifest")
}

#[test]
fn every_package_inherits_workspace_settings_and_lints() {
    let manifests = manifests();
    assert!(manifests.len() >= 6, "found only {manifests:?}");
    for path in manifests {
        let manifest = read(&path);
        let package = manifest["package"].as_table().expect("[package]");
        for key in ["version", "edition", "license", "rust-version"] {
            assert_eq!(
                package[key].get("workspace").and_then(toml::Value::as_bool),
                Some(true),
                "{}: {key} must be `{key}.workspace = true`",
                path.display()
            );
        }
        assert_eq!(
            manifest
                .get("lints")
                .and_then(|l| l.get("workspace"))
                .and_then(toml::Value::as_bool),
            Some(true),
            "{}: missing `[lints] workspace = true`",
            path.display()
        );
    }
}

#[test]
fn dependencies_come_from_the_workspace_table() {
    for path in manifests() {
        let manifest = read(&path);
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = manifest.get(section).and_then(toml::Value::as_table) else {
                continue;
            };
            let package = manifest["package"]["name"]
                .as_str()
                .expect("a package name");
            for (name, spec) in deps {
                let inherited = spec.get("workspace").and_then(toml::Value::as_bool) == Some(true);
                // A crate's dev-dependency on itself (to turn on its `testing` feature) is a
                // path without a version, which `cargo package` drops: the crate cannot
                // require its own unpublished version from the registry.
                let itself = section == "dev-dependencies"
                    && name == package
                    && spec.get("path").and_then(toml::Value::as_str) == Some(".")
                    && spec.get("version").is_none();
                assert!(
                    inherited || itself,
                    "{}: {section}.{name} must come from [workspace.dependencies]",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn no_openssl_in_the_lock_file() {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("Cargo.lock is committed");
    for banned in [
        "name = \"openssl\"",
        "name = \"openssl-sys\"",
        "name = \"native-tls\"",
    ] {
        assert!(
            !lock.contains(banned),
            "Cargo.lock contains {banned}: one TLS stack, rustls"
        );
    }
}
