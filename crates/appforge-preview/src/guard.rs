//! The rolldown plugin of a preview build: it refuses imports that leave the app, turns CSS
//! imports into a stylesheet, stands in an empty module for Node.js builtins that packages
//! name in code the browser never runs, and records the module graph.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rolldown_common::{ModuleInfo, ModuleType, NormalModule};
use rolldown_plugin::{
    HookLoadArgs, HookLoadOutput, HookLoadReturn, HookNoopReturn, HookResolveIdArgs,
    HookResolveIdOutput, HookResolveIdReturn, HookUsage, Plugin, PluginContext,
    SharedLoadPluginContext,
};

use crate::error::{BuildError, BuildErrorKind, RefusedImport};

const EMPTY_PREFIX: &str = "\0appforge:empty:";

/// Node.js builtin modules: refused from app code, an empty module from package code (as
/// Vite's `__vite-browser-external`), unless the app depends on an npm package of that name
/// (`buffer`, `events`, `process`, `util` have browser versions on npm).
const NODE_BUILTINS: &[&str] = &[
    "assert",
    "async_hooks",
    "buffer",
    "child_process",
    "cluster",
    "console",
    "constants",
    "crypto",
    "dgram",
    "diagnostics_channel",
    "dns",
    "domain",
    "events",
    "fs",
    "http",
    "http2",
    "https",
    "inspector",
    "module",
    "net",
    "os",
    "path",
    "perf_hooks",
    "process",
    "punycode",
    "querystring",
    "readline",
    "repl",
    "stream",
    "string_decoder",
    "sys",
    "timers",
    "tls",
    "trace_events",
    "tty",
    "url",
    "util",
    "v8",
    "vm",
    "wasi",
    "worker_threads",
    "zlib",
];

/// What the plugin learnt during a build.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// Refused imports, in the order met.
    pub(crate) refusals: Vec<BuildError>,
    /// CSS by module id.
    pub(crate) css: HashMap<String, String>,
    /// Static imports by module id, in source order.
    pub(crate) imports: HashMap<String, Vec<String>>,
    /// The package imports left to the prebuilt dependencies (an app pass only), by their
    /// specifier (`react`, `react-dom/client`, `react/jsx-runtime`).
    pub(crate) externals: std::collections::BTreeSet<String>,
    /// Where each was imported: (importer id, specifier).
    pub(crate) external_sites: Vec<(String, String)>,
}

#[derive(Debug)]
pub(crate) struct Guard {
    root: PathBuf,
    node_modules: PathBuf,
    app_files: HashSet<String>,
    packages: HashSet<String>,
    findings: Arc<Mutex<Findings>>,
    /// The source read so far, and the most a build may read.
    read: AtomicU64,
    max_module_bytes: u64,
    /// Whether the app's imports of its packages are left external (to the prebuilt
    /// dependencies), not bundled.
    externalize: bool,
}

impl Guard {
    pub(crate) fn new(
        root: PathBuf,
        app_files: HashSet<String>,
        packages: HashSet<String>,
        findings: Arc<Mutex<Findings>>,
        max_module_bytes: u64,
        externalize: bool,
    ) -> Self {
        Self {
            node_modules: root.join("node_modules"),
            root,
            app_files,
            packages,
            findings,
            read: AtomicU64::new(0),
            max_module_bytes,
            externalize,
        }
    }

    /// Counts a module's size against the build's budget of source; past it, the build
    /// stops with an error saying so.
    fn count(&self, path: &str) -> anyhow::Result<()> {
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let read = self.read.fetch_add(size, Ordering::Relaxed) + size;
        if read <= self.max_module_bytes {
            return Ok(());
        }
        let message = format!(
            "the build reads more than {} of source (at {}): the app or its packages are too large to preview",
            if self.max_module_bytes.is_multiple_of(1 << 20) {
                format!("{} MiB", self.max_module_bytes >> 20)
            } else {
                format!("{} bytes", self.max_module_bytes)
            },
            Self::relative(&self.root, path)
        );
        self.findings().refusals.push(BuildError::new(
            BuildErrorKind::InvalidInput,
            message.clone(),
        ));
        Err(anyhow::anyhow!(message))
    }

    fn findings(&self) -> std::sync::MutexGuard<'_, Findings> {
        self.findings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The app-relative form of a module id (`src/App.tsx`, `node_modules/react/index.js`).
    pub(crate) fn relative(root: &Path, id: &str) -> String {
        Path::new(id).strip_prefix(root).map_or_else(
            |_| id.to_owned(),
            |p| p.to_string_lossy().replace('\\', "/"),
        )
    }

    fn refuse(&self, reason: RefusedImport, specifier: &str, importer: &str) -> anyhow::Error {
        let file = Self::relative(&self.root, importer);
        let (line, column) = std::fs::read_to_string(importer)
            .ok()
            .and_then(|source| locate_specifier(&source, specifier))
            .unwrap_or((0, 0));
        let message = match reason {
            RefusedImport::NodeBuiltin => format!(
                "import {specifier:?} refused: Node.js builtins do not exist in the browser preview"
            ),
            RefusedImport::AbsolutePath => format!(
                "import {specifier:?} refused: an absolute path that is not a file of the app"
            ),
            RefusedImport::EscapesApp => {
                format!("import {specifier:?} refused: the path leaves the app")
            }
            RefusedImport::Url => format!(
                "import {specifier:?} refused: only the app's files and its npm dependencies can be imported"
            ),
        };
        let error = BuildError::new(BuildErrorKind::Refused(reason), message.clone())
            .at(file, line, column);
        self.findings().refusals.push(error);
        anyhow::anyhow!(message)
    }

    fn is_app_module(&self, importer: &str) -> bool {
        let path = Path::new(importer);
        path.starts_with(&self.root) && !path.starts_with(&self.node_modules)
    }

    /// The app file a root-relative specifier (`/src/utils`) names, as Vite resolves them.
    fn root_relative(&self, specifier: &str) -> Option<PathBuf> {
        let path = normalize(Path::new(specifier.trim_start_matches('/')))?;
        let path = path.to_string_lossy().replace('\\', "/");
        let candidates = std::iter::once(path.clone())
            .chain(
                ["tsx", "ts", "jsx", "js", "json", "css"]
                    .iter()
                    .map(|e| format!("{path}.{e}")),
            )
            .chain(
                ["tsx", "ts", "jsx", "js"]
                    .iter()
                    .map(|e| format!("{path}/index.{e}")),
            );
        for candidate in candidates {
            if self.app_files.contains(&candidate) {
                return Some(self.root.join(candidate));
            }
        }
        None
    }
}

impl Plugin for Guard {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("appforge-preview")
    }

    async fn resolve_id(
        &self,
        _ctx: &PluginContext,
        args: &HookResolveIdArgs<'_>,
    ) -> HookResolveIdReturn {
        let specifier = args.specifier;
        let Some(importer) = args.importer else {
            return Ok(None);
        };
        if args.is_entry || importer.starts_with('\0') {
            return Ok(None);
        }
        let from_app = self.is_app_module(importer);
        let bare = specifier.strip_prefix("node:");
        let package = bare
            .unwrap_or(specifier)
            .split('/')
            .next()
            .unwrap_or_default();
        let builtin = bare.is_some()
            || (NODE_BUILTINS.contains(&package) && !self.packages.contains(package));
        if builtin {
            if from_app {
                return Err(self.refuse(RefusedImport::NodeBuiltin, specifier, importer));
            }
            return Ok(Some(HookResolveIdOutput::from_id(format!(
                "{EMPTY_PREFIX}{specifier}"
            ))));
        }
        if specifier.starts_with('/') && !specifier.starts_with("//") {
            return match self.root_relative(specifier) {
                Some(path) => Ok(Some(HookResolveIdOutput::from_id(
                    path.to_string_lossy().into_owned(),
                ))),
                None => Err(self.refuse(RefusedImport::AbsolutePath, specifier, importer)),
            };
        }
        if let Some((scheme, _)) = specifier.split_once(':')
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !matches!(scheme, "http" | "https" | "data")
        {
            return Err(self.refuse(RefusedImport::Url, specifier, importer));
        }
        let relative = specifier.starts_with('.') || specifier.contains('\\');
        if from_app && !relative {
            let name = package_name(specifier);
            if !self.packages.contains(name) {
                let file = Self::relative(&self.root, importer);
                let (line, column) = std::fs::read_to_string(importer)
                    .ok()
                    .and_then(|source| locate_specifier(&source, specifier))
                    .unwrap_or((0, 0));
                let message = format!(
                    "package {name:?} is not a dependency of the app: add it to the dependencies of package.json"
                );
                self.findings().refusals.push(
                    BuildError::new(BuildErrorKind::Unresolved, message.clone())
                        .at(file, line, column),
                );
                return Err(anyhow::anyhow!(message));
            }
            if self.externalize && !specifier.starts_with("http") && !specifier.contains(':') {
                let mut findings = self.findings();
                findings.externals.insert(specifier.to_owned());
                findings
                    .external_sites
                    .push((importer.to_owned(), specifier.to_owned()));
                drop(findings);
                return Ok(Some(HookResolveIdOutput {
                    id: specifier.into(),
                    external: Some(true.into()),
                    ..HookResolveIdOutput::default()
                }));
            }
        }
        if relative {
            let base = Path::new(importer).parent().unwrap_or(Path::new("/"));
            let inside =
                normalize(&base.join(specifier)).is_some_and(|p| p.starts_with(&self.root));
            if !inside {
                return Err(self.refuse(RefusedImport::EscapesApp, specifier, importer));
            }
        }
        Ok(None)
    }

    async fn load(&self, _ctx: SharedLoadPluginContext, args: &HookLoadArgs<'_>) -> HookLoadReturn {
        let id = args.id;
        if id.starts_with(EMPTY_PREFIX) {
            return Ok(Some(js("export default {};\n")));
        }
        let path = id.split('?').next().unwrap_or(id);
        if id.starts_with('\0') {
            return Ok(None);
        }
        self.count(path)?;
        if !path.ends_with(".css") {
            return Ok(None);
        }
        let text = std::fs::read_to_string(path)?;
        let code = if path.ends_with(".module.css") {
            // Class names are kept as written (not scoped): `styles.card` is "card".
            "export default new Proxy({}, { get: (_, key) => typeof key === 'string' ? key : undefined });\n"
        } else {
            "export {};\n"
        };
        self.findings().css.insert(id.to_owned(), text);
        Ok(Some(js(code)))
    }

    async fn module_parsed(
        &self,
        _ctx: &PluginContext,
        module_info: Arc<ModuleInfo>,
        _normal_module: &NormalModule,
    ) -> HookNoopReturn {
        let imports = module_info
            .imported_ids
            .iter()
            .chain(module_info.dynamically_imported_ids.iter())
            .map(|id| id.to_string())
            .collect();
        self.findings()
            .imports
            .insert(module_info.id.to_string(), imports);
        Ok(())
    }

    fn register_hook_usage(&self) -> HookUsage {
        HookUsage::ResolveId | HookUsage::Load | HookUsage::ModuleParsed
    }
}

fn js(code: &str) -> HookLoadOutput {
    HookLoadOutput {
        code: code.into(),
        module_type: Some(ModuleType::Js),
        side_effects: Some(rolldown_common::side_effects::HookSideEffects::True),
        ..HookLoadOutput::default()
    }
}

/// A path with `.` and `..` resolved lexically; `None` when `..` goes above the start.
pub(crate) fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

/// The package a bare specifier names (`@scope/name/sub` -> `@scope/name`).
fn package_name(specifier: &str) -> &str {
    let mut parts = specifier.splitn(3, '/');
    let first = parts.next().unwrap_or_default();
    match (first.starts_with('@'), parts.next()) {
        (true, Some(second)) => &specifier[..first.len() + 1 + second.len()],
        _ => first,
    }
}

/// The 1-based line and column of the first import of `specifier` in `source`.
pub(crate) fn locate_specifier(source: &str, specifier: &str) -> Option<(u32, u32)> {
    let offset = ['\'', '"', '`']
        .iter()
        .filter_map(|q| source.find(&format!("{q}{specifier}{q}")))
        .min()?;
    Some(line_column(source, offset))
}

/// The 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(source: &str, offset: usize) -> (u32, u32) {
    let mut end = offset.min(source.len());
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    let before = &source[..end];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// The modules in evaluation order: a depth-first walk of the static imports from `entry`,
/// each module after what it imports.
pub(crate) fn evaluation_order(entry: &str, imports: &HashMap<String, Vec<String>>) -> Vec<String> {
    let mut order = Vec::new();
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    // An explicit stack: a deep dependency chain must not overflow the thread's stack.
    let mut stack: Vec<(&str, usize)> = vec![(entry, 0)];
    seen.insert(entry, ());
    while let Some((id, next)) = stack.pop() {
        let children = imports.get(id).map_or(&[][..], Vec::as_slice);
        if let Some(child) = children.get(next) {
            stack.push((id, next + 1));
            if seen.insert(child, ()).is_none() {
                stack.push((child, 0));
            }
        } else {
            order.push(id.to_owned());
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_are_read_from_specifiers() {
        assert_eq!(package_name("react"), "react");
        assert_eq!(package_name("react-dom/client"), "react-dom");
        assert_eq!(package_name("@acme/colors"), "@acme/colors");
        assert_eq!(package_name("@acme/colors/dark.css"), "@acme/colors");
    }

    #[test]
    fn paths_are_normalized_lexically() {
        assert_eq!(
            normalize(Path::new("/b/app/src/../lib/./x")).unwrap(),
            PathBuf::from("/b/app/lib/x")
        );
        assert_eq!(normalize(Path::new("../x")), None);
        assert_eq!(normalize(Path::new("a/../../x")), None);
    }

    #[test]
    fn specifiers_are_located() {
        let source = "import a from 'a';\nimport x from \"../../x\";\n";
        assert_eq!(locate_specifier(source, "../../x"), Some((2, 15)));
        assert_eq!(line_column("héllo\nwörld", 10), (2, 3));
        assert_eq!(line_column("héllo\nwörld", 9), (2, 2));
    }

    #[test]
    fn modules_come_after_their_imports() {
        let imports = HashMap::from([
            ("main".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
            ("a".to_owned(), vec!["c".to_owned()]),
            ("b".to_owned(), vec!["c".to_owned(), "main".to_owned()]),
        ]);
        assert_eq!(evaluation_order("main", &imports), ["c", "a", "b", "main"]);
    }
}
