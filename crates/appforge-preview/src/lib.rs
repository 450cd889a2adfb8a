//! Live previews of generated apps, built natively in Rust: an app's files (TypeScript, TSX,
//! JSX, JavaScript, CSS, JSON, images) bundled for the browser by
//! [rolldown](https://rolldown.rs) into one HTML document, with no Node.js and no third-party
//! bundling service.
//!
//! - [`build`]: files and resolved dependencies in, a [`Bundle`] out (an HTML document, its
//!   script and its stylesheet, and the module graph), or a [`BuildError`] with the file, the
//!   line and the column, which [`overlay_html`] renders for the preview frame.
//! - [`Registry`] (feature `registry`): an app's `dependencies` resolved against an npm
//!   registry, each tarball checked against its `integrity` before it is unpacked with size,
//!   file-count and path limits into a shared [`DepCache`]; install scripts are never run.
//! - [`Previewer`]: builds on a bounded blocking pool with a time limit, cached by the digest
//!   of the files and the dependency set.
//! - [`Previews`] (feature `registry`): both for a server, an app's `package.json`
//!   resolved and its files built in one call, with [`frame_csp`] and [`FRAME_HEADERS`] for
//!   serving the document apart from the product.
//!
//! Imports that leave the app are refused by name ([`RefusedImport`]): Node.js builtins
//! (`node:fs`), absolute paths (`/etc/passwd`) and relative paths out of the app
//! (`../../x`). See `docs/preview.md` for the pipeline and the threat model of serving a
//! preview.
//!
//! ```
//! use appforge_preview::{ResolvedDeps, build};
//!
//! let files = [
//!     ("index.html", "<div id=\"root\"></div><script type=\"module\" src=\"/src/main.ts\"></script>"),
//!     ("src/main.ts", "import './style.css';\nimport { greet } from './greet';\ndocument.getElementById('root')!.textContent = greet(import.meta.env.MODE);"),
//!     ("src/greet.ts", "export const greet = (mode: string): string => `Hello from ${mode}`;"),
//!     ("src/style.css", "#root { color: teal; }"),
//! ];
//! let bundle = build(&files, &ResolvedDeps::empty())?;
//! assert_eq!(bundle.modules, ["src/style.css", "src/greet.ts", "src/main.ts"]);
//! assert!(bundle.js.contains("Hello from"));
//! assert!(bundle.css.contains("color: teal"));
//! assert!(bundle.html().contains("<style>"));
//!
//! let error = build(&[("src/main.ts", "let x = ;")], &ResolvedDeps::empty()).unwrap_err();
//! assert_eq!((error.file.as_str(), error.line, error.column), ("src/main.ts", 1, 9));
//! # Ok::<(), appforge_preview::BuildError>(())
//! ```
//!
//! With npm dependencies (this reaches the registry, so it is not run here):
//!
//! ```no_run
//! # async fn run() -> Result<(), appforge_preview::Error> {
//! use appforge_preview::{DepCache, Previewer, Registry, dependencies_of};
//!
//! let cache = DepCache::new("/var/cache/appforge/npm", 2 << 30)?;
//! let registry = Registry::builder(cache).build()?; // APPFORGE_NPM_REGISTRY or npmjs.org
//! let package_json = r#"{"dependencies": {"react": "^18.3.1", "react-dom": "^18.3.1"}}"#;
//! let deps = registry.resolve(&dependencies_of(package_json)).await?;
//! let files = vec![
//!     ("package.json".to_owned(), package_json.as_bytes().to_vec()),
//!     ("src/App.tsx".to_owned(), b"export default function App() { return <h1>Hi</h1>; }".to_vec()),
//! ];
//! let bundle = Previewer::default().build(files, deps).await?;
//! println!("{}", bundle.html());
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `registry` | yes | [`Registry`]: resolving and downloading npm dependencies (reqwest) |
//!
//! # Why rolldown, and this release
//!
//! rolldown bundles ES modules and CommonJS (React ships CommonJS) with oxc's parser and
//! transformer, resolves `node_modules` like Node and Vite, and takes plugins for what a
//! preview needs on top (the import guard, CSS as a stylesheet). Writing a module graph over
//! oxc alone would mean re-doing CommonJS interop, `exports` maps and tree shaking. It is
//! pinned at 1.1.5, the last release whose oxc (0.139) builds with the workspace's minimum
//! Rust (1.94); later releases need Rust 1.95 to 1.97.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bundle;
mod entry;
mod error;
mod guard;
mod html;
mod lru;
mod npm;
mod previewer;
#[cfg(feature = "registry")]
mod service;

pub use bundle::{BuildOptions, Bundle, Mode, build, build_with};
pub use error::{BuildError, BuildErrorKind, Error, RefusedImport, Result, TarballError};
pub use html::overlay_html;
#[cfg(feature = "registry")]
pub use npm::{DEFAULT_REGISTRY, Registry, RegistryBuilder, ResolveLimits};
pub use npm::{
    DepCache, ResolvedDeps, ResolvedPackage, TarballLimits, dependencies_of, integrity_of,
    is_build_only, verify_integrity,
};
pub use previewer::{BuildKey, Previewer, PreviewerBuilder};
#[cfg(feature = "registry")]
pub use service::{FRAME_HEADERS, Previews, SANDBOX, frame_csp};

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
