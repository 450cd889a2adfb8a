//! Project scaffolding: the files an exported app needs to install and build as delivered.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::AppFile;

/// Build tools, installed as `devDependencies` when the app names them (and added with
/// [`DEFAULT_TOOL_VERSIONS`] when it needs them and does not).
const BUILD_TOOL_PREFIXES: &[&str] = &["@types/", "@vitejs/"];
const BUILD_TOOLS: &[&str] = &["vite", "typescript"];

/// Versions of the build tools added when an app needs them and does not name them.
pub const DEFAULT_TOOL_VERSIONS: &[(&str, &str)] = &[
    ("vite", "^5.4.0"),
    ("@vitejs/plugin-react", "^4.3.1"),
    ("typescript", "^5.5.4"),
];

/// A dependency left out of the generated `package.json`, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedDependency {
    /// The package name as the model wrote it.
    pub name: String,
    /// The version as the model wrote it.
    pub version: String,
    /// Why it was refused.
    pub reason: &'static str,
}

/// The project files an export adds, from [`scaffold`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaffold {
    /// The files to add, none of which the app has.
    pub files: Vec<AppFile>,
    /// Dependencies not written into `package.json` (a URL, a path, a git or `file:` source,
    /// an invalid name): installing them could fetch or run anything.
    pub refused: Vec<RefusedDependency>,
    /// The commands that install and run the app, as the generated README says them.
    pub commands: Vec<String>,
}

impl Scaffold {
    /// The paths of the added files, in order.
    #[must_use]
    pub fn paths(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.path.as_str()).collect()
    }

    /// The app's files with the scaffold's added after them.
    #[must_use]
    pub fn complete(&self, files: &[AppFile]) -> Vec<AppFile> {
        files.iter().chain(&self.files).cloned().collect()
    }

    /// The setup steps, one numbered line each, as the README and the CLI print them.
    #[must_use]
    pub fn setup_text(&self) -> String {
        let mut out = String::new();
        for (number, command) in (1..).zip(&self.commands) {
            let _ = writeln!(out, "{number}. {command}");
        }
        out
    }
}

/// What kind of project the files make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    typescript: bool,
    react: bool,
    /// A web app bundled by Vite (it has or gets an `index.html` entry).
    vite: bool,
}

fn kind(files: &[AppFile], dependencies: &BTreeMap<String, String>) -> Kind {
    let ends = |suffixes: &[&str]| {
        files
            .iter()
            .any(|f| suffixes.iter().any(|s| f.path.ends_with(s)))
    };
    let typescript = ends(&[".ts", ".tsx"]);
    let react = dependencies.contains_key("react") || ends(&[".tsx", ".jsx"]);
    let vite = files.iter().any(|f| f.path == "index.html") || dependencies.contains_key("vite");
    Kind {
        typescript,
        react,
        vite,
    }
}

/// The project files `files` lack, derived from the app's `name`, its files and the
/// dependencies the model named (`package: version`), so that an export installs and builds
/// as delivered.
///
/// Models write source files and name their packages; they often leave out `package.json`,
/// `tsconfig.json` and the bundler's config, so `npm install` fails on the export. this function
/// derives those files from the app itself (its files, its name, its dependencies) and adds
/// only what the app does not already have: a file the model wrote is never replaced.
///
/// ```
/// use std::collections::BTreeMap;
/// use appforge_files::protocol::{AppFile, scaffold};
///
/// let files = vec![
///     AppFile::new("index.html", "<div id=\"root\"></div>"),
///     AppFile::new("src/main.tsx", "import App from './App';"),
///     AppFile::new("src/App.tsx", "export default function App() { return null; }"),
/// ];
/// let deps = BTreeMap::from([
///     ("react".to_owned(), "^18.3.1".to_owned()),
///     ("vite".to_owned(), "^5.4.0".to_owned()),
/// ]);
/// let scaffold = scaffold("Habit Tracker", &files, &deps);
/// assert_eq!(
///     scaffold.paths(),
///     ["package.json", "tsconfig.json", "vite.config.ts", ".gitignore", "README.md"]
/// );
/// let package: serde_json::Value = serde_json::from_str(&scaffold.files[0].content).unwrap();
/// assert_eq!(package["name"], "habit-tracker");
/// assert_eq!(package["dependencies"]["react"], "^18.3.1");
/// assert_eq!(package["devDependencies"]["vite"], "^5.4.0");
/// ```
#[must_use]
pub fn scaffold(
    name: &str,
    files: &[AppFile],
    dependencies: &BTreeMap<String, String>,
) -> Scaffold {
    let has = |path: &str| files.iter().any(|f| f.path.eq_ignore_ascii_case(path));
    let kind = kind(files, dependencies);
    let mut added = Vec::new();
    let mut refused = Vec::new();
    let model_package = files
        .iter()
        .find(|f| f.path == "package.json")
        .and_then(|f| serde_json::from_str::<Value>(&f.content).ok());
    if !has("package.json") {
        let (package, dropped) = package_json(name, kind, dependencies);
        refused = dropped;
        added.push(AppFile::new("package.json", package));
    }
    if kind.typescript && !has("tsconfig.json") {
        added.push(AppFile::new("tsconfig.json", tsconfig(kind)));
    }
    let has_vite_config = [
        "vite.config.ts",
        "vite.config.js",
        "vite.config.mjs",
        "vite.config.mts",
    ]
    .iter()
    .any(|p| has(p));
    if kind.vite && kind.react && !has_vite_config {
        let path = if kind.typescript {
            "vite.config.ts"
        } else {
            "vite.config.js"
        };
        added.push(AppFile::new(path, VITE_CONFIG_REACT));
    }
    if !has(".gitignore") {
        added.push(AppFile::new(".gitignore", GITIGNORE));
    }
    let scripts = match (&model_package, added.first()) {
        (Some(package), _) => package.get("scripts").cloned(),
        (None, Some(generated)) if generated.path == "package.json" => {
            serde_json::from_str::<Value>(&generated.content)
                .ok()
                .and_then(|p| p.get("scripts").cloned())
        }
        _ => None,
    };
    let commands = commands(scripts.as_ref());
    if !has("README.md") {
        added.push(AppFile::new("README.md", readme(name, &commands)));
    }
    Scaffold {
        files: added,
        refused,
        commands,
    }
}

fn is_build_tool(name: &str) -> bool {
    BUILD_TOOLS.contains(&name) || BUILD_TOOL_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn package_json(
    name: &str,
    kind: Kind,
    dependencies: &BTreeMap<String, String>,
) -> (String, Vec<RefusedDependency>) {
    let mut runtime = Map::new();
    let mut dev = Map::new();
    let mut refused = Vec::new();
    for (package, version) in dependencies {
        if let Err(reason) = check_dependency(package, version) {
            refused.push(RefusedDependency {
                name: package.clone(),
                version: version.clone(),
                reason,
            });
            continue;
        }
        let into = if is_build_tool(package) {
            &mut dev
        } else {
            &mut runtime
        };
        into.insert(package.clone(), Value::String(version.trim().to_owned()));
    }
    let mut need = |package: &str, version: String| {
        if !runtime.contains_key(package) && !dev.contains_key(package) {
            dev.insert(package.to_owned(), Value::String(version));
        }
    };
    let default = |package: &str| {
        DEFAULT_TOOL_VERSIONS
            .iter()
            .find(|(name, _)| *name == package)
            .map(|(_, version)| (*version).to_owned())
            .unwrap_or_else(|| "*".to_owned())
    };
    if kind.vite {
        need("vite", default("vite"));
        if kind.react {
            need("@vitejs/plugin-react", default("@vitejs/plugin-react"));
        }
    }
    if kind.typescript {
        need("typescript", default("typescript"));
        if kind.react {
            let major = runtime
                .get("react")
                .and_then(Value::as_str)
                .and_then(major_of)
                .unwrap_or(18);
            need("@types/react", format!("^{major}.0.0"));
            need("@types/react-dom", format!("^{major}.0.0"));
        }
    }
    let scripts = if kind.vite {
        let build = if kind.typescript {
            "tsc --noEmit && vite build"
        } else {
            "vite build"
        };
        json!({"dev": "vite", "build": build, "preview": "vite preview"})
    } else {
        json!({})
    };
    let mut package = Map::new();
    package.insert("name".into(), Value::String(package_name(name)));
    package.insert("private".into(), Value::Bool(true));
    package.insert("version".into(), Value::String("0.0.0".into()));
    package.insert("type".into(), Value::String("module".into()));
    package.insert("scripts".into(), scripts);
    package.insert("dependencies".into(), Value::Object(runtime));
    package.insert("devDependencies".into(), Value::Object(dev));
    let text = serde_json::to_string_pretty(&Value::Object(package)).unwrap_or_default() + "\n";
    (text, refused)
}

fn major_of(version: &str) -> Option<u32> {
    let digits: String = version
        .trim_start_matches(['^', '~', '=', '>', 'v', ' '])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// An npm package name from an app's display name: lowercase letters, digits and dashes.
#[must_use]
pub fn package_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let out: String = out.chars().take(64).collect();
    if out.is_empty() {
        "app".to_owned()
    } else {
        out
    }
}

/// Whether `name@version` may go into a `package.json` that a user will `npm install`: a
/// registry package with a semver range or a dist tag, never a URL, a path, a git or `file:`
/// source or an alias.
///
/// # Errors
///
/// Why the dependency is refused.
pub fn check_dependency(name: &str, version: &str) -> Result<(), &'static str> {
    check_package_name(name)?;
    let version = version.trim();
    if version.is_empty() || version.len() > 64 {
        return Err("the version is empty or too long");
    }
    if version.contains(':') {
        return Err(
            "the version names a source (a URL, file:, git, npm: or workspace:), not a registry release",
        );
    }
    if version.contains(['/', '\\']) {
        return Err("the version is a path or a repository, not a registry release");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || " .^~<>=|*-+_".contains(c);
    if !version.chars().all(allowed) {
        return Err("the version is not a semver range or a dist tag");
    }
    Ok(())
}

fn check_package_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 214 {
        return Err("the package name is empty or too long");
    }
    let (scope, bare) = match name.strip_prefix('@') {
        Some(rest) => match rest.split_once('/') {
            Some((scope, bare)) => (Some(scope), bare),
            None => return Err("a scoped package name needs @scope/name"),
        },
        None => (None, name),
    };
    let part_ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with(['.', '_'])
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._~".contains(c))
    };
    if scope.is_some_and(|s| !part_ok(s)) || !part_ok(bare) {
        return Err("the package name is not a valid npm name (a URL or a path?)");
    }
    Ok(())
}

fn tsconfig(kind: Kind) -> String {
    let mut options = json!({
        "target": "ES2020",
        "useDefineForClassFields": true,
        "lib": ["ES2020", "DOM", "DOM.Iterable"],
        "module": "ESNext",
        "moduleResolution": "bundler",
        "resolveJsonModule": true,
        "isolatedModules": true,
        "noEmit": true,
        "strict": true,
        "skipLibCheck": true
    });
    if kind.react {
        options["jsx"] = json!("react-jsx");
    }
    if kind.vite {
        options["types"] = json!(["vite/client"]);
    }
    let config = json!({"compilerOptions": options, "include": ["src"]});
    serde_json::to_string_pretty(&config).unwrap_or_default() + "\n"
}

const VITE_CONFIG_REACT: &str = "\
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
});
";

const GITIGNORE: &str = "node_modules\ndist\n.env\n.env.*\n*.log\n.DS_Store\n";

fn commands(scripts: Option<&Value>) -> Vec<String> {
    let has = |script: &str| scripts.and_then(|s| s.get(script)).is_some();
    let mut commands = vec!["npm install".to_owned()];
    if has("dev") {
        commands.push("npm run dev".to_owned());
    } else if has("start") {
        commands.push("npm start".to_owned());
    }
    if has("build") {
        commands.push("npm run build".to_owned());
    }
    commands
}

fn readme(name: &str, commands: &[String]) -> String {
    let title = name.trim();
    let title = if title.is_empty() { "App" } else { title };
    let mut out = format!("# {title}\n\nGenerated with appforge.\n\n## Setup\n\n```sh\n");
    for command in commands {
        out.push_str(command);
        out.push('\n');
    }
    out.push_str("```\n");
    if commands.iter().any(|c| c == "npm run dev") {
        out.push_str("\n`npm run dev` serves the app at http://localhost:5173.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn react_app() -> Vec<AppFile> {
        vec![
            AppFile::new("index.html", "<div id=\"root\"></div>"),
            AppFile::new("src/main.tsx", "import App from './App';"),
            AppFile::new(
                "src/App.tsx",
                "export default function App() { return null; }",
            ),
        ]
    }

    fn package(scaffold: &Scaffold) -> Value {
        let file = scaffold
            .files
            .iter()
            .find(|f| f.path == "package.json")
            .expect("a package.json");
        serde_json::from_str(&file.content).unwrap()
    }

    #[test]
    fn build_tools_go_to_dev_dependencies_with_the_results_versions() {
        let scaffold = scaffold(
            "Focus Todo!",
            &react_app(),
            &deps(&[
                ("react", "^18.3.1"),
                ("react-dom", "^18.3.1"),
                ("vite", "^5.4.0"),
                ("typescript", "^5.5.4"),
                ("@types/react", "^18.3.3"),
                ("@vitejs/plugin-react", "^4.3.1"),
                ("date-fns", "^3.6.0"),
            ]),
        );
        let package = package(&scaffold);
        assert_eq!(package["name"], "focus-todo");
        assert_eq!(package["private"], true);
        assert_eq!(package["type"], "module");
        assert_eq!(
            package["scripts"],
            json!({"dev": "vite", "build": "tsc --noEmit && vite build", "preview": "vite preview"})
        );
        assert_eq!(
            package["dependencies"],
            json!({"date-fns": "^3.6.0", "react": "^18.3.1", "react-dom": "^18.3.1"})
        );
        assert_eq!(
            package["devDependencies"],
            json!({
                "@types/react": "^18.3.3", "@types/react-dom": "^18.0.0",
                "@vitejs/plugin-react": "^4.3.1", "typescript": "^5.5.4", "vite": "^5.4.0"
            })
        );
        assert!(scaffold.refused.is_empty());
        assert_eq!(
            scaffold.commands,
            ["npm install", "npm run dev", "npm run build"]
        );
    }

    #[test]
    fn what_the_model_wrote_is_kept_and_only_the_rest_is_added() {
        let mut files = react_app();
        files.push(AppFile::new(
            "package.json",
            r#"{"name": "mine", "scripts": {"start": "vite"}}"#,
        ));
        files.push(AppFile::new("vite.config.ts", "export default {};"));
        let scaffold = scaffold("X", &files, &deps(&[("react", "^18.3.1")]));
        assert_eq!(
            scaffold.paths(),
            ["tsconfig.json", ".gitignore", "README.md"]
        );
        // The setup follows the model's own scripts.
        assert_eq!(scaffold.commands, ["npm install", "npm start"]);
        assert!(scaffold.files[2].content.contains("npm start"));
        let complete = scaffold.complete(&files);
        assert_eq!(complete.len(), files.len() + 3);
        assert_eq!(
            complete
                .iter()
                .find(|f| f.path == "package.json")
                .unwrap()
                .content,
            r#"{"name": "mine", "scripts": {"start": "vite"}}"#
        );
    }

    #[test]
    fn a_javascript_app_gets_no_tsconfig_and_a_js_vite_config() {
        let files = vec![
            AppFile::new("index.html", "<div id=\"root\"></div>"),
            AppFile::new("src/main.jsx", "import App from './App';"),
        ];
        let scaffold = scaffold("js", &files, &deps(&[("react", "^19.0.0")]));
        assert_eq!(
            scaffold.paths(),
            ["package.json", "vite.config.js", ".gitignore", "README.md"]
        );
        let package = package(&scaffold);
        assert_eq!(package["scripts"]["build"], "vite build");
        assert!(package["devDependencies"].get("typescript").is_none());
        assert!(package["devDependencies"].get("@types/react").is_none());
    }

    #[test]
    fn react_types_follow_the_react_major() {
        let scaffold = scaffold("a", &react_app(), &deps(&[("react", "^19.1.0")]));
        assert_eq!(
            package(&scaffold)["devDependencies"]["@types/react"],
            "^19.0.0"
        );
    }

    #[test]
    fn hostile_names_and_versions_are_refused_from_package_json() {
        let hostile = [
            ("evil", "https://attacker.example/evil.tgz"),
            ("local", "file:../../.ssh"),
            ("git-dep", "git+ssh://git@github.com/x/y.git"),
            ("shorthand", "user/repo"),
            ("path", "../vendor/pkg"),
            ("alias", "npm:lodash@4"),
            ("../escape", "^1.0.0"),
            ("https://x.example/p", "1.0.0"),
            ("Upper", "1.0.0"),
            ("semi", "1.0.0; rm -rf /"),
        ];
        let mut dependencies = deps(&hostile);
        dependencies.insert("react".into(), "^18.3.1".into());
        let scaffold = scaffold("a", &react_app(), &dependencies);
        let refused: Vec<&str> = scaffold.refused.iter().map(|r| r.name.as_str()).collect();
        let mut expected: Vec<&str> = hostile.iter().map(|(name, _)| *name).collect();
        expected.sort_unstable();
        assert_eq!(refused, expected);
        let package = package(&scaffold);
        assert_eq!(package["dependencies"], json!({"react": "^18.3.1"}));
        for ok in [
            "^1.2.3",
            "~1.2",
            "1.x",
            ">=1.0.0 <2",
            "1.0.0 || 2.0.0",
            "latest",
            "*",
            "1.0.0-beta.1",
        ] {
            check_dependency("@scope/pkg-name.js", ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn package_names_are_npm_safe() {
        assert_eq!(
            package_name("  Habit Tracker: Streaks!  "),
            "habit-tracker-streaks"
        );
        assert_eq!(package_name("日本"), "app");
        check_package_name(&package_name("Ünïcode App 2")).unwrap();
    }
}
