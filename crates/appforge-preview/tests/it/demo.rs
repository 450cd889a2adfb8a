//! The offline demo's apps bundled with the real React (tarballs from `APPFORGE_NPM_TARBALLS`,
//! served by a registry stand-in): a snapshot of each module graph.

use appforge_preview::{Previewer, ResolveLimits, ResolvedDeps, build, dependencies_of};

use crate::support::{demo_app, demo_todo_dark_mode, npm_tarballs, real_registry};

async fn react_deps(files: &[(String, String)]) -> Option<(ResolvedDeps, tempfile::TempDir)> {
    let dir = npm_tarballs()?;
    let registry = real_registry(&dir).await;
    let cache = tempfile::tempdir().unwrap();
    let package_json = &files.iter().find(|(p, _)| p == "package.json").unwrap().1;
    let deps = registry
        .registry(cache.path(), ResolveLimits::default())
        .resolve(&dependencies_of(package_json))
        .await
        .unwrap();
    Some((deps, cache))
}

async fn check(name: &str, files: Vec<(String, String)>, expect: &[&str]) {
    let Some((deps, _cache)) = react_deps(&files).await else {
        return;
    };
    let names: Vec<&str> = deps.packages().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "js-tokens",
            "loose-envify",
            "react",
            "react-dom",
            "scheduler"
        ]
    );
    let bundle = build(&files, &deps).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(bundle.entry, "src/main.tsx");
    // The production builds of React, not the development ones.
    assert!(
        bundle
            .modules
            .iter()
            .any(|m| m.ends_with("react-dom.production.min.js"))
    );
    let html = bundle.html();
    for text in expect {
        assert!(html.contains(text), "{name}: {text}");
    }
    insta::assert_yaml_snapshot!(format!("modules-{name}"), bundle.modules);
}

#[tokio::test]
async fn todo_app() {
    check(
        "todo-app",
        demo_app("todo-app"),
        &["cdn.tailwindcss.com", "<div id=\"root\">"],
    )
    .await;
}

#[tokio::test]
async fn habit_tracker() {
    check(
        "habit-tracker",
        demo_app("habit-tracker"),
        &["<title>Streaks</title>", "darkMode"],
    )
    .await;
}

#[tokio::test]
async fn landing_page() {
    check(
        "landing-page",
        demo_app("landing-page"),
        &["<div id=\"root\">"],
    )
    .await;
}

#[tokio::test]
async fn todo_app_with_dark_mode() {
    check(
        "todo-app-dark-mode",
        demo_todo_dark_mode(),
        &["dark:bg-slate-900"],
    )
    .await;
}

#[tokio::test]
async fn a_bare_app_component_is_mounted_with_react() {
    let files = vec![
        ("package.json".to_owned(), r#"{"dependencies": {"react": "^18.3.1", "react-dom": "^18.3.1"}}"#.to_owned()),
        (
            "src/App.tsx".to_owned(),
            "import { useState } from 'react';\nexport default function App() {\n  const [n, setN] = useState(0);\n  return <button onClick={() => setN(n + 1)}>clicked {n}</button>;\n}\n".to_owned(),
        ),
    ];
    let Some((deps, _cache)) = react_deps(&files).await else {
        return;
    };
    let bundle = build(&files, &deps).unwrap();
    assert!(bundle.generated_entry);
    assert_eq!(bundle.entry, "src/App.tsx");
    assert_eq!(bundle.modules.last().unwrap(), "__appforge_entry__.jsx");
    assert!(bundle.js.contains("createRoot"));
    assert!(bundle.html().contains("<div id=\"root\"></div>"));
}

#[tokio::test]
async fn a_new_version_reuses_the_prebuilt_dependencies() {
    let v1 = demo_app("todo-app");
    let Some((deps, _cache)) = react_deps(&v1).await else {
        return;
    };
    let bytes = |files: Vec<(String, String)>| -> Vec<(String, Vec<u8>)> {
        files
            .into_iter()
            .map(|(p, c)| (p, c.into_bytes()))
            .collect()
    };
    let previewer = Previewer::default();
    let first = previewer
        .build(bytes(v1.clone()), deps.clone())
        .await
        .unwrap();
    assert!(!first.reused_dependencies, "nothing was built before");
    // The dark-mode version has the same packages: only its own modules are bundled.
    let v2 = previewer
        .build(bytes(demo_todo_dark_mode()), deps.clone())
        .await
        .unwrap();
    assert!(v2.reused_dependencies);
    // The same module graph as a build from scratch, and React once in the script.
    let scratch = build(&demo_todo_dark_mode(), &deps).unwrap();
    assert!(!scratch.reused_dependencies);
    assert_eq!(v2.modules, scratch.modules);
    assert_eq!(v2.js, scratch.js);
    assert_eq!(
        v2.js.matches("#region node_modules/react/index.js").count(),
        1
    );
}
