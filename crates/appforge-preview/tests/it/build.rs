//! Builds without npm dependencies: entries, CSS, JSON, `import.meta.env`, errors.

use std::sync::Arc;
use std::time::Duration;

use appforge_preview::{
    BuildErrorKind, BuildOptions, Error, Previewer, ResolvedDeps, build, build_with, overlay_html,
};

fn files(entries: &[(&str, &str)]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
        .collect()
}

#[test]
fn index_html_names_the_entry_and_gets_the_bundle_and_the_stylesheet() {
    let app = files(&[
        (
            "index.html",
            "<!doctype html><html><head><title>Demo</title></head><body><div id=\"root\"></div>\
             <script type=\"module\" src=\"/src/boot.ts\"></script></body></html>",
        ),
        (
            "src/boot.ts",
            "import './base.css';\nimport data from './data.json';\nimport { label } from '/src/lib/label';\n\
             document.getElementById('root')!.textContent = label(data.title) + import.meta.env.MODE + String(import.meta.env.PROD) + import.meta.env.BASE_URL;\n",
        ),
        (
            "src/lib/label.ts",
            "import './label.css';\nexport const label = (s: string): string => `[${s}]`;\n",
        ),
        ("src/base.css", "body { margin: 0 }"),
        ("src/lib/label.css", ".label { color: red }"),
        ("src/data.json", "{\"title\": \"Hello JSON\"}"),
        ("src/main.tsx", "throw new Error('not the entry')"),
    ]);
    let bundle = build(&app, &ResolvedDeps::empty()).unwrap();
    assert_eq!(bundle.entry, "src/boot.ts");
    assert!(!bundle.generated_entry);
    assert_eq!(
        bundle.modules,
        [
            "src/base.css",
            "src/data.json",
            "src/lib/label.css",
            "src/lib/label.ts",
            "src/boot.ts"
        ]
    );
    assert!(bundle.js.contains("Hello JSON"));
    assert!(!bundle.js.contains("not the entry"));
    // import.meta.env is replaced at build time.
    assert!(!bundle.js.contains("import.meta"), "{}", bundle.js);
    assert!(bundle.js.contains("\"production\""));
    // CSS in import order: base.css before label.css.
    let base = bundle.css.find("margin: 0").unwrap();
    let label = bundle.css.find("color: red").unwrap();
    assert!(base < label);
    let html = bundle.html();
    assert!(html.contains("<title>Demo</title>"));
    assert!(!html.contains("src=\"/src/boot.ts\""));
    assert!(html.contains("<script type=\"module\">"));
    assert!(html.find("<style>").unwrap() < html.find("</head>").unwrap());
}

#[test]
fn a_component_module_without_an_entry_is_mounted_into_root() {
    let app = files(&[(
        "src/App.jsx",
        "export default function App() { return null; }\n",
    )]);
    // Without react the generated entry cannot resolve: the error names the import.
    let error = build(&app, &ResolvedDeps::empty()).unwrap_err();
    assert_eq!(error.kind, BuildErrorKind::Unresolved);
    assert!(
        error.message.contains("\"react\" is not a dependency"),
        "{error}"
    );
    assert_eq!(error.file, "__appforge_entry__.jsx");

    let app = files(&[(
        "src/main.tsx",
        "import { motion } from 'framer-motion';\nconsole.log(motion);\n",
    )]);
    let error = build(&app, &ResolvedDeps::empty()).unwrap_err();
    assert_eq!(error.kind, BuildErrorKind::Unresolved);
    assert_eq!(
        (error.file.as_str(), error.line, error.column),
        ("src/main.tsx", 1, 24)
    );
    assert!(error.message.contains("framer-motion"), "{error}");
}

#[test]
fn no_entry_is_a_named_error() {
    let error = build(&files(&[("README.md", "# hi")]), &ResolvedDeps::empty()).unwrap_err();
    assert_eq!(error.kind, BuildErrorKind::NoEntry);
}

#[test]
fn a_build_stops_past_its_budget_of_source() {
    let big = format!("export const text = {:?};\n", "x".repeat(4_000));
    let app = files(&[
        (
            "src/main.ts",
            "import { text } from './big';\nconsole.log(text);\n",
        ),
        ("src/big.ts", &big),
    ]);
    let tight = BuildOptions {
        max_module_bytes: 1_000,
        ..BuildOptions::default()
    };
    let error = build_with(&app, &ResolvedDeps::empty(), &tight).unwrap_err();
    assert_eq!(error.kind, BuildErrorKind::InvalidInput, "{error:?}");
    assert!(
        error
            .message
            .contains("more than 1000 bytes of source (at src/big.ts)"),
        "{}",
        error.message
    );
    // The same app within the default budget builds.
    assert!(build(&app, &ResolvedDeps::empty()).is_ok());
}

#[test]
fn a_syntax_error_names_the_file_line_and_column() {
    let app = files(&[
        (
            "src/main.tsx",
            "import App from './App';\nconsole.log(App);\n",
        ),
        (
            "src/App.tsx",
            "export default function App() {\n  const n: number = 1;\n  return <div>{n +}</div>;\n}\n",
        ),
    ]);
    let error = build(&app, &ResolvedDeps::empty()).unwrap_err();
    assert_eq!(error.kind, BuildErrorKind::Syntax);
    assert_eq!(
        (error.file.as_str(), error.line, error.column),
        ("src/App.tsx", 3, 19)
    );
    let overlay = overlay_html(&error, Some(&app[1].1));
    assert!(overlay.contains("src/App.tsx:3:19"));
    assert!(overlay.contains("data-line=\"3\""));
    assert!(overlay.contains("{n +}"));
}

#[test]
fn a_json_syntax_error_names_the_json_file() {
    let app = files(&[
        (
            "src/main.ts",
            "import data from './data.json';\nconsole.log(data);\n",
        ),
        ("src/data.json", "{\n  \"a\": 1,\n  \"b\": \n}\n"),
    ]);
    let error = build(&app, &ResolvedDeps::empty()).unwrap_err();
    assert_eq!(error.kind, BuildErrorKind::Syntax, "{error}");
    assert_eq!(error.file, "src/data.json");
    assert_eq!(error.line, 4);
}

#[test]
fn a_missing_module_is_unresolved_in_the_importing_file() {
    let app = files(&[(
        "src/main.ts",
        "\nimport { x } from './nope';\nconsole.log(x);\n",
    )]);
    let error = build(&app, &ResolvedDeps::empty()).unwrap_err();
    assert_eq!(error.kind, BuildErrorKind::Unresolved);
    assert_eq!((error.file.as_str(), error.line), ("src/main.ts", 2));
    assert!(error.message.contains("./nope"), "{error}");
}

#[tokio::test]
async fn the_previewer_caches_by_content_and_limits_time() {
    let app: Vec<(String, Vec<u8>)> = vec![(
        "src/main.ts".to_owned(),
        b"document.title = 'cached';".to_vec(),
    )];
    let previewer = Previewer::default();
    assert!(previewer.cached(&app, &ResolvedDeps::empty()).is_none());
    let first = previewer
        .build(app.clone(), ResolvedDeps::empty())
        .await
        .unwrap();
    let again = previewer
        .build(app.clone(), ResolvedDeps::empty())
        .await
        .unwrap();
    assert!(
        Arc::ptr_eq(&first, &again),
        "the second build comes from the cache"
    );
    let mut changed = app.clone();
    changed[0].1 = b"document.title = 'changed';".to_vec();
    let other = previewer
        .build(changed, ResolvedDeps::empty())
        .await
        .unwrap();
    assert!(!Arc::ptr_eq(&first, &other));

    let hasty = Previewer::builder().timeout(Duration::ZERO).build();
    let error = hasty.build(app, ResolvedDeps::empty()).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error}");
}
