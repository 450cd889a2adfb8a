//! One build: an app's files and resolved dependencies written to a build directory, bundled
//! by rolldown for the browser, and put together as one HTML document.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rolldown::{Bundler, BundlerOptions, InputItem, Platform, ResolveOptions};
use rolldown_common::{
    CodeSplittingMode, GlobalsOutputOption, ModuleType, Output as RolldownOutput, OutputFormat,
};
use rolldown_error::{BuildDiagnostic, DiagnosticOptions, EventKind};
use rolldown_utils::indexmap::FxIndexMap;
use sha2::{Digest, Sha256};

use crate::entry::{self, Entry, GENERATED_ENTRY};
use crate::error::{BuildError, BuildErrorKind};
use crate::guard::{self, Findings, Guard};
use crate::html;
use crate::lru::Lru;
use crate::npm::ResolvedDeps;

/// `import.meta.env.MODE` and `process.env.NODE_ENV` of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// `production`: React's production build, `import.meta.env.PROD` true.
    #[default]
    Production,
    /// `development`: React's development build (warnings, slower), `import.meta.env.DEV` true.
    Development,
}

impl Mode {
    /// `production` or `development`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Development => "development",
        }
    }
}

/// Options of a build.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BuildOptions {
    /// The mode (default: production).
    pub mode: Mode,
    /// `import.meta.env.BASE_URL` (default `/`).
    pub base_url: String,
    /// The most files an app may have.
    pub max_files: usize,
    /// The largest total size of an app's files, in bytes.
    pub max_bytes: usize,
    /// The most source a build may read, in bytes: the app's modules and every package module
    /// it imports. The bundler's memory grows with the source it parses, so this bounds a
    /// build's memory (a few times this figure) whatever the packages hold.
    pub max_module_bytes: u64,
}

impl Default for BuildOptions {
    /// Production, base `/`, 2 000 files, 16 MiB of app files, 64 MiB of source read.
    fn default() -> Self {
        Self {
            mode: Mode::Production,
            base_url: "/".to_owned(),
            max_files: 2_000,
            max_bytes: 16 << 20,
            max_module_bytes: 64 << 20,
        }
    }
}

/// A built preview: one HTML document and the script and stylesheet it is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub(crate) template: html::Template,
    /// The bundled script (an ES module).
    pub js: String,
    /// The app's stylesheet: every imported CSS file, in import order.
    pub css: String,
    /// The modules of the bundle in evaluation order, relative to the app
    /// (`src/App.tsx`, `node_modules/react/index.js`; the generated entry, when there is one,
    /// is `__appforge_entry__.jsx`).
    pub modules: Vec<String>,
    /// The entry module (app path), or the component the generated entry mounts.
    pub entry: String,
    /// Whether the entry was generated to mount a default-exported component.
    pub generated_entry: bool,
    /// Bundler warnings (an import that is never used, a circular dependency...).
    pub warnings: Vec<String>,
    /// Whether the app's packages came prebuilt from an earlier build (a [`Previewer`]
    /// keeps them per dependency set), so that only the app's own modules were bundled.
    ///
    /// [`Previewer`]: crate::Previewer
    pub reused_dependencies: bool,
}

impl Bundle {
    /// The preview as one self-contained HTML document: the app's `index.html` (or a minimal
    /// page with `#root`) with the stylesheet and the script inlined, and a small script that
    /// reports runtime errors to the parent frame (`postMessage`).
    #[must_use]
    pub fn html(&self) -> String {
        self.template.render_inline(&self.js, &self.css)
    }

    /// The preview as an HTML document referencing the script and the stylesheet at the given
    /// URLs (to serve them as files with their own caching).
    #[must_use]
    pub fn html_with_assets(&self, js_url: &str, css_url: &str) -> String {
        self.template.render_linked(js_url, css_url)
    }
}

/// Builds an app: `files` are `(path, contents)` pairs as stored for an app version, `deps`
/// its resolved npm dependencies.
///
/// The entry is found as Vite finds it (`index.html`'s module script, else `src/main.tsx`,
/// `src/index.tsx` and their `.jsx`, `.ts`, `.js` variants); an app with only a component
/// module (`src/App.tsx`, `App.tsx`, ...) that default-exports the app gets a generated entry
/// mounting it into `#root`.
///
/// This blocks the calling thread for the build (tens to hundreds of milliseconds); the
/// bundler runs on a thread of its own, so it may be called from anywhere, but from async
/// code prefer [`Previewer`](crate::Previewer), which runs builds on a bounded blocking pool
/// with a time limit and a cache.
///
/// # Errors
///
/// A [`BuildError`] with the file, line and column: a syntax error, an unresolved or refused
/// import, no entry.
pub fn build<P: AsRef<str>, C: AsRef<[u8]>>(
    files: &[(P, C)],
    deps: &ResolvedDeps,
) -> Result<Bundle, BuildError> {
    build_with(files, deps, &BuildOptions::default())
}

/// [`build`] with options.
///
/// # Errors
///
/// As [`build`].
pub fn build_with<P: AsRef<str>, C: AsRef<[u8]>>(
    files: &[(P, C)],
    deps: &ResolvedDeps,
    options: &BuildOptions,
) -> Result<Bundle, BuildError> {
    build_inner(files, deps, options, None)
}

/// The dependencies of a build, bundled on their own: what the app imports of its packages,
/// each package module once, published as globals the app's bundle reads.
#[derive(Debug)]
pub(crate) struct Vendor {
    js: String,
    css: String,
    modules: Vec<String>,
    warnings: Vec<String>,
}

/// Prebuilt dependencies, kept across builds: an app's next version, or another app with the
/// same packages, bundles only its own modules (as Vite prebundles dependencies once). Keyed
/// by the resolved dependency set, the imported specifiers and the options.
#[derive(Debug)]
pub(crate) struct VendorCache {
    entries: Mutex<Lru<Arc<Vendor>>>,
}

/// How many prebuilt dependency sets a cache keeps.
const VENDORS_KEPT: usize = 16;

impl Default for VendorCache {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Lru::new(VENDORS_KEPT)),
        }
    }
}

impl VendorCache {
    fn get(&self, key: &[u8; 32]) -> Option<Arc<Vendor>> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
    }

    fn put(&self, key: [u8; 32], vendor: Arc<Vendor>) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(key, vendor);
    }
}

/// The generated entry of a dependencies pass.
const VENDOR_ENTRY: &str = "__appforge_vendor__.js";

/// The global through which the app's bundle reads the package module `specifier`.
fn global_name(specifier: &str) -> String {
    let digest = Sha256::digest(specifier.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("__appforge_dep_{hex}")
}

/// Builds in two passes when the app has packages: its own modules, with its imports of
/// packages left external, then the packages it imports (from `vendors` when built before),
/// which run first and hand their modules to the app through globals.
pub(crate) fn build_inner<P: AsRef<str>, C: AsRef<[u8]>>(
    files: &[(P, C)],
    deps: &ResolvedDeps,
    options: &BuildOptions,
    vendors: Option<&VendorCache>,
) -> Result<Bundle, BuildError> {
    let files = checked_files(files, options)?;
    let entry = entry::find(&files).ok_or_else(|| {
        BuildError::new(
            BuildErrorKind::NoEntry,
            "no entry: index.html has no module script and there is no src/main.tsx, \
             src/index.tsx (or .jsx, .ts, .js), nor a src/App.tsx with a default export",
        )
    })?;
    let dir = tempfile::Builder::new()
        .prefix("appforge-preview-")
        .tempdir()
        .map_err(|e| bundler_error(format!("cannot create the build directory: {e}")))?;
    let root = dir.path().join("app");
    write_app(&root, &files, &entry, deps)
        .map_err(|e| bundler_error(format!("cannot write the build directory: {e}")))?;
    let sources: BTreeMap<String, String> = files
        .iter()
        .map(|(p, c)| (p.clone(), String::from_utf8_lossy(c).into_owned()))
        .collect();
    let entry_path = match &entry {
        Entry::Module(p) => p.clone(),
        Entry::Mount(_) => GENERATED_ENTRY.to_owned(),
    };
    let pass = Pass {
        root: &root,
        files: &files,
        deps,
        options,
        sources: &sources,
    };
    let split = !deps.packages().is_empty();
    let mut output = pass.run(&entry_path, split)?;
    let mut reused_dependencies = false;
    if split && !output.externals.is_empty() {
        let key = vendor_key(deps, &output.externals, options);
        let vendor = match vendors.and_then(|cache| cache.get(&key)) {
            Some(vendor) => {
                reused_dependencies = true;
                vendor
            }
            None => {
                let vendor = Arc::new(pass.vendor(&output.externals)?);
                if let Some(cache) = vendors {
                    cache.put(key, Arc::clone(&vendor));
                }
                vendor
            }
        };
        output.js = format!("{}\n{}", vendor.js, output.js);
        if !vendor.css.is_empty() {
            output.css = if output.css.is_empty() {
                vendor.css.clone()
            } else {
                format!("{}\n{}", vendor.css, output.css)
            };
        }
        let mut modules = vendor.modules.clone();
        modules.append(&mut output.modules);
        output.modules = modules;
        output.warnings.extend(vendor.warnings.iter().cloned());
    }
    let page = files
        .get("index.html")
        .map(|h| String::from_utf8_lossy(h).into_owned());
    let template = html::Template::new(
        page.clone(),
        entry::module_script_src(&page.unwrap_or_default()),
    );
    Ok(Bundle {
        template,
        js: output.js,
        css: output.css,
        modules: output.modules,
        entry: entry.path().to_owned(),
        generated_entry: matches!(entry, Entry::Mount(_)),
        warnings: output.warnings,
        reused_dependencies,
    })
}

/// The key of a prebuilt dependency set.
fn vendor_key(deps: &ResolvedDeps, externals: &[String], options: &BuildOptions) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(deps.fingerprint());
    for specifier in externals {
        hasher.update((specifier.len() as u64).to_le_bytes());
        hasher.update(specifier.as_bytes());
    }
    hasher.update(format!("{options:?}").as_bytes());
    hasher.finalize().into()
}

fn bundler_error(message: String) -> BuildError {
    BuildError::new(BuildErrorKind::Bundler, message)
}

/// The app's files by validated path; `node_modules/` and build outputs are left out.
fn checked_files<'a, P: AsRef<str>, C: AsRef<[u8]>>(
    files: &'a [(P, C)],
    options: &BuildOptions,
) -> Result<BTreeMap<String, &'a [u8]>, BuildError> {
    if files.len() > options.max_files {
        return Err(BuildError::new(
            BuildErrorKind::InvalidInput,
            format!(
                "the app has {} files, more than {}",
                files.len(),
                options.max_files
            ),
        ));
    }
    let total: usize = files.iter().map(|(_, c)| c.as_ref().len()).sum();
    if total > options.max_bytes {
        return Err(BuildError::new(
            BuildErrorKind::InvalidInput,
            format!(
                "the app's files are {total} bytes, more than {}",
                options.max_bytes
            ),
        ));
    }
    let mut out = BTreeMap::new();
    for (path, content) in files {
        let path = appforge_files::validate_path(path.as_ref()).map_err(|e| {
            BuildError::new(BuildErrorKind::InvalidInput, e.to_string()).at(path.as_ref(), 0, 0)
        })?;
        if path.starts_with("node_modules/") || path.starts_with("dist/") || path == GENERATED_ENTRY
        {
            continue;
        }
        out.insert(path, content.as_ref());
    }
    Ok(out)
}

/// Writes the app and a `node_modules` of links to the unpacked packages.
fn write_app(
    root: &Path,
    files: &BTreeMap<String, &[u8]>,
    entry: &Entry,
    deps: &ResolvedDeps,
) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    for (path, content) in files {
        let target = root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, content)?;
    }
    if let Entry::Mount(component) = entry {
        std::fs::write(root.join(GENERATED_ENTRY), entry::mount_source(component))?;
    }
    let paths: Vec<&str> = deps
        .packages()
        .iter()
        .map(|p| p.install_path.as_str())
        .collect();
    for package in deps.packages() {
        let target = root.join(&package.install_path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let nested = format!("{}/node_modules/", package.install_path);
        if paths.iter().any(|p| p.starts_with(&nested)) {
            // Packages nest inside this one: a directory of links, with a real
            // `node_modules` for them (the cache entry is never written to).
            std::fs::create_dir_all(&target)?;
            for child in std::fs::read_dir(&package.dir)? {
                let child = child?;
                if child.file_name() != "node_modules" {
                    link(&child.path(), &target.join(child.file_name()))?;
                }
            }
        } else {
            link(&package.dir, &target)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn link(from: &Path, to: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(from, to)
}

#[cfg(not(unix))]
fn link(from: &Path, to: &Path) -> std::io::Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for child in std::fs::read_dir(from)? {
            let child = child?;
            link(&child.path(), &to.join(child.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}

struct Output {
    js: String,
    css: String,
    modules: Vec<String>,
    warnings: Vec<String>,
    /// The package imports left external (an app pass), in the order the app evaluates them.
    externals: Vec<String>,
}

/// What every rolldown pass of one build shares.
struct Pass<'a> {
    root: &'a Path,
    files: &'a BTreeMap<String, &'a [u8]>,
    deps: &'a ResolvedDeps,
    options: &'a BuildOptions,
    sources: &'a BTreeMap<String, String>,
}

impl Pass<'_> {
    /// The packages the app imports (`externals`), bundled from a generated entry that
    /// publishes each module's namespace as the global the app's bundle reads.
    fn vendor(&self, externals: &[String]) -> Result<Vendor, BuildError> {
        let mut source = String::new();
        for (i, specifier) in externals.iter().enumerate() {
            let quoted = serde_json::to_string(specifier).unwrap_or_default();
            source.push_str(&format!("import * as m{i} from {quoted};\n"));
        }
        for (i, specifier) in externals.iter().enumerate() {
            source.push_str(&format!("globalThis.{} = m{i};\n", global_name(specifier)));
        }
        std::fs::write(self.root.join(VENDOR_ENTRY), source)
            .map_err(|e| bundler_error(format!("cannot write the build directory: {e}")))?;
        let output = self.run(VENDOR_ENTRY, false)?;
        Ok(Vendor {
            js: output.js,
            css: output.css,
            modules: output
                .modules
                .into_iter()
                .filter(|m| m != VENDOR_ENTRY)
                .collect(),
            warnings: output.warnings,
        })
    }

    /// One rolldown run from `entry_path`; with `externalize`, the app's imports of its
    /// packages are left to the globals of the prebuilt dependencies.
    fn run(&self, entry_path: &str, externalize: bool) -> Result<Output, BuildError> {
        let (root, files, deps, options, sources) =
            (self.root, self.files, self.deps, self.options, self.sources);
        let findings = Arc::new(Mutex::new(Findings::default()));
        let guard = Guard::new(
            root.to_path_buf(),
            files.keys().cloned().collect(),
            deps.packages()
                .iter()
                .filter(|p| !p.install_path.contains("/node_modules/"))
                .map(|p| p.name.clone())
                .collect::<HashSet<_>>(),
            Arc::clone(&findings),
            options.max_module_bytes,
            externalize,
        );
        let mut bundler_options = bundler_options(root, entry_path, options);
        // IIFEs in the document's one script: the dependencies' runs first and sets the globals
        // the app's reads.
        bundler_options.format = Some(OutputFormat::Iife);
        if externalize {
            bundler_options.globals = Some(GlobalsOutputOption::Fn(Arc::new(|specifier: &str| {
                let name = global_name(specifier);
                Box::pin(async move { Ok(name) })
            })));
        }
        // rolldown spawns tokio tasks: it gets a runtime of its own on a thread of its own, so
        // a build may be started from a blocking pool thread or a plain thread alike.
        let result = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| bundler_error(format!("cannot start the bundler: {e}")))?;
                    runtime.block_on(async {
                        let mut bundler =
                            Bundler::with_plugins(bundler_options, vec![Arc::new(guard)])
                                .map_err(|e| first_error(&e.into_vec(), root, sources))?;
                        let result = bundler.generate().await;
                        let _ = bundler.close().await;
                        result.map_err(|e| first_error(&e.into_vec(), root, sources))
                    })
                })
                .join()
        });
        let findings =
            std::mem::take(&mut *findings.lock().unwrap_or_else(PoisonError::into_inner));
        let output = match result {
            Err(_) => return Err(bundler_error("the bundler stopped unexpectedly".to_owned())),
            // A refused import fails the build through the plugin: the refusal says why.
            Ok(Err(error)) => return Err(findings.refusals.into_iter().next().unwrap_or(error)),
            Ok(Ok(output)) => output,
        };
        // A package importing something that is not there would fail in the browser: the
        // build fails instead, naming it.
        if let Some(unresolved) = output
            .warnings
            .iter()
            .find(|w| matches!(w.kind(), EventKind::UnresolvedImport))
        {
            return Err(first_error(std::slice::from_ref(unresolved), root, sources));
        }
        let mut js = String::new();
        for asset in &output.assets {
            if let RolldownOutput::Chunk(chunk) = asset
                && chunk.is_entry
            {
                js.clone_from(&chunk.code);
            }
        }
        let entry_id = root.join(entry_path).to_string_lossy().into_owned();
        let order = guard::evaluation_order(&entry_id, &findings.imports);
        let mut css = String::new();
        for id in &order {
            if let Some(text) = findings.css.get(id) {
                if !css.is_empty() {
                    css.push('\n');
                }
                css.push_str(&format!("/* {} */\n", Guard::relative(root, id)));
                css.push_str(text);
            }
        }
        // The packages in the order the app imports them: its modules in evaluation order,
        // each one's imports in source order (an import the JSX transform adds comes first,
        // where the transform puts it).
        let mut externals: Vec<String> = Vec::new();
        for id in &order {
            let source = sources.get(&Guard::relative(root, id));
            let mut here: Vec<((u32, u32), &String)> = findings
                .external_sites
                .iter()
                .filter(|(importer, _)| importer == id)
                .map(|(_, specifier)| {
                    let place = source
                        .and_then(|text| guard::locate_specifier(text, specifier))
                        .unwrap_or((0, 0));
                    (place, specifier)
                })
                .collect();
            here.sort();
            for (_, specifier) in here {
                if !externals.contains(specifier) {
                    externals.push(specifier.clone());
                }
            }
        }
        let modules = order
            .iter()
            .filter(|id| !findings.externals.contains(id.as_str()))
            .map(|id| match id.strip_prefix('\0') {
                Some(virtual_id) => format!("virtual:{virtual_id}"),
                None => Guard::relative(root, id),
            })
            .collect();
        let warnings = output
            .warnings
            .iter()
            .map(|w| {
                w.to_message_with(&DiagnosticOptions {
                    cwd: root.to_path_buf(),
                })
            })
            .collect();
        Ok(Output {
            js,
            css,
            modules,
            warnings,
            externals,
        })
    }
}

fn bundler_options(root: &Path, entry: &str, options: &BuildOptions) -> BundlerOptions {
    let mode = options.mode.as_str();
    let production = options.mode == Mode::Production;
    let base = serde_json::to_string(&options.base_url).unwrap_or_else(|_| "\"/\"".to_owned());
    let mut define = FxIndexMap::default();
    define.insert("process.env.NODE_ENV".to_owned(), format!("\"{mode}\""));
    define.insert("import.meta.env.MODE".to_owned(), format!("\"{mode}\""));
    define.insert("import.meta.env.DEV".to_owned(), (!production).to_string());
    define.insert("import.meta.env.PROD".to_owned(), production.to_string());
    define.insert("import.meta.env.SSR".to_owned(), "false".to_owned());
    define.insert("import.meta.env.BASE_URL".to_owned(), base.clone());
    define.insert(
        "import.meta.env".to_owned(),
        format!(
            "{{\"MODE\":\"{mode}\",\"DEV\":{},\"PROD\":{production},\"SSR\":false,\"BASE_URL\":{base}}}",
            !production
        ),
    );
    let module_types = [
        "png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "woff", "woff2", "ttf",
    ]
    .into_iter()
    .map(|ext| (format!(".{ext}"), ModuleType::Dataurl))
    .chain([(".txt".to_owned(), ModuleType::Text)])
    .collect();
    BundlerOptions {
        input: Some(vec![InputItem {
            name: Some("app".to_owned()),
            import: format!("./{entry}"),
        }]),
        cwd: Some(root.to_path_buf()),
        platform: Some(Platform::Browser),
        define: Some(define),
        module_types: Some(module_types),
        // One script for one document: dynamic imports are inlined.
        code_splitting: Some(CodeSplittingMode::Bool(false)),
        resolve: Some(ResolveOptions {
            // Paths stay under the build directory (`node_modules/react/...`): errors name
            // them as a user would, and packages find their own dependencies there.
            symlinks: Some(false),
            ..ResolveOptions::default()
        }),
        ..BundlerOptions::default()
    }
}

/// The first diagnostic of a failed build as a [`BuildError`] at its app path.
fn first_error(
    diagnostics: &[BuildDiagnostic],
    root: &Path,
    sources: &BTreeMap<String, String>,
) -> BuildError {
    let Some(first) = diagnostics.first() else {
        return bundler_error("the build failed without a diagnostic".to_owned());
    };
    let kind = match first.kind() {
        EventKind::ParseError | EventKind::JsonParseError | EventKind::TransformError => {
            BuildErrorKind::Syntax
        }
        EventKind::UnresolvedImport
        | EventKind::UnresolvedEntry
        | EventKind::ResolveError
        | EventKind::MissingExportError
        | EventKind::UnloadableDependencyError => BuildErrorKind::Unresolved,
        _ => BuildErrorKind::Bundler,
    };
    let message = first.to_message_with(&DiagnosticOptions {
        cwd: root.to_path_buf(),
    });
    let (file, line, column) = first
        .to_diagnostic()
        .get_primary_location()
        .map_or((String::new(), 0, 0), |(f, l, c, _)| (f, l, c + 1));
    let file = app_path(&file, root, sources);
    BuildError::new(kind, message.trim()).at(
        file,
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// The app path of a file a diagnostic names (absolute, or relative to the build directory
/// or to its parent).
fn app_path(file: &str, root: &Path, sources: &BTreeMap<String, String>) -> String {
    if file.is_empty() {
        return String::new();
    }
    let relative = Guard::relative(root, file);
    if sources.contains_key(&relative) {
        return relative;
    }
    if let Some(known) = sources
        .keys()
        .filter(|p| file.ends_with(&format!("/{p}")))
        .max_by_key(|p| p.len())
    {
        return known.clone();
    }
    match file.find("node_modules/") {
        Some(i) => file[i..].to_owned(),
        None => relative,
    }
}
