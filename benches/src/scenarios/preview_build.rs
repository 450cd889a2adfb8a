//! `preview-build`: the offline demo apps bundled by `appforge-preview` with a cold dependency
//! cache, a warm one (the packages unpacked; their bundle built with the app), the app's next
//! version (the packages also prebuilt by an earlier build), and from the build cache; beside
//! `esbuild` and `vite build` from npm on the same files in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use appforge_llm::protocol::{AppFile, parse, scaffold};
use appforge_preview::{
    DepCache, Previewer, Registry, ResolvedDeps, TarballLimits, build, dependencies_of,
};
use serde_json::json;

use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Flags of the `preview-build` scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A directory of npm tarballs (`npm pack react@18 react-dom@18 scheduler@0.23
    /// loose-envify@1 js-tokens@4`): the cold cache is filled from them, with no network.
    #[arg(long, env = "APPFORGE_NPM_TARBALLS")]
    tarballs: PathBuf,
    /// A directory where `esbuild`, `vite`, `@vitejs/plugin-react`, `react` and `react-dom`
    /// are installed with npm (`node_modules/.bin/esbuild`, `node_modules/.bin/vite`);
    /// without it only appforge-preview is measured.
    #[arg(long, env = "APPFORGE_BENCH_NODE")]
    node_dir: Option<PathBuf>,
    /// Runs of each measurement; the fastest is reported (the machine is shared).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

const APPS: [&str; 3] = ["todo-app", "habit-tracker", "landing-page"];

/// A demo app's files, with the `package.json` and Vite config an export adds.
fn demo_app(name: &str) -> Result<Vec<AppFile>, BoxError> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/appforge-llm/transcripts/src")
        .join(format!("{name}.txt"));
    let generation = parse(&std::fs::read_to_string(path)?);
    let extra = scaffold(
        generation.name.as_deref().unwrap_or(name),
        &generation.files,
        &generation.dependencies,
    );
    Ok(generation.files.into_iter().chain(extra.files).collect())
}

fn pairs(files: &[AppFile]) -> Vec<(String, Vec<u8>)> {
    files
        .iter()
        .map(|f| (f.path.clone(), f.content.clone().into_bytes()))
        .collect()
}

/// Fills `cache` from the tarballs directory and resolves the app's dependencies from it.
async fn fill_and_resolve(
    tarballs: &Path,
    cache: &DepCache,
    package_json: &str,
) -> Result<ResolvedDeps, BoxError> {
    for entry in std::fs::read_dir(tarballs)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tgz") {
            cache.import_tarball(&std::fs::read(&path)?, TarballLimits::default())?;
        }
    }
    resolve(cache, package_json).await
}

async fn resolve(cache: &DepCache, package_json: &str) -> Result<ResolvedDeps, BoxError> {
    let registry = Registry::builder(cache.clone()).offline(true).build()?;
    Ok(registry.resolve(&dependencies_of(package_json)).await?)
}

/// The dependency set through a registry made once, as a server keeps it.
async fn resolve_with(registry: &Registry, package_json: &str) -> Result<ResolvedDeps, BoxError> {
    Ok(registry.resolve(&dependencies_of(package_json)).await?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The fastest of `runs` timings of `f`, with the value of the last run.
async fn fastest<T, F, Fut>(runs: usize, mut f: F) -> Result<(Duration, T), BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BoxError>>,
{
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        last = Some(f().await?);
        best = best.min(start.elapsed());
    }
    Ok((best, last.ok_or("no run")?))
}

/// Writes the app under `node_dir/apps/<name>`, where `node_modules` resolves to the npm
/// install of `node_dir`.
fn write_node_project(node_dir: &Path, name: &str, files: &[AppFile]) -> Result<PathBuf, BoxError> {
    let dir = node_dir.join("apps").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    for file in files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, &file.content)?;
    }
    Ok(dir)
}

fn run_tool(dir: &Path, program: &Path, args: &[&str]) -> Result<Duration, BoxError> {
    let start = Instant::now();
    let output = Command::new(program).args(args).current_dir(dir).output()?;
    let elapsed = start.elapsed();
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(elapsed)
}

fn fastest_tool(
    runs: usize,
    dir: &Path,
    program: &Path,
    args: &[&str],
) -> Result<Duration, BoxError> {
    let mut best = Duration::MAX;
    for _ in 0..runs.max(1) {
        best = best.min(run_tool(dir, program, args)?);
    }
    Ok(best)
}

pub(crate) async fn run(args: &Args) -> Result<Report, BoxError> {
    let start = Instant::now();
    let mut results = Vec::new();
    let mut builds = 0u64;
    let (mut warm_total, mut next_total, mut esbuild_total) = (0.0, 0.0, 0.0);
    for name in APPS {
        let files = demo_app(name)?;
        let package_json = files
            .iter()
            .find(|f| f.path == "package.json")
            .map(|f| f.content.clone())
            .unwrap_or_default();
        let app = &pairs(&files);
        let (tarballs, package_json) = (&args.tarballs, &package_json);

        // Cold: an empty dependency cache, filled from the tarballs (hash and unpack), then
        // resolve and build.
        let (cold, ()) = fastest(args.runs, || async move {
            let dir = tempfile::tempdir()?;
            let cache = DepCache::new(dir.path(), 1 << 30)?;
            let deps = fill_and_resolve(tarballs, &cache, package_json).await?;
            let app = app.clone();
            tokio::task::spawn_blocking(move || build(&app, &deps)).await??;
            Ok(())
        })
        .await?;

        // Warm: the packages are cached; resolve (offline, through the server's long-lived
        // registry client) and build.
        let cache_dir = tempfile::tempdir()?;
        let cache = &DepCache::new(cache_dir.path(), 1 << 30)?;
        let deps = fill_and_resolve(tarballs, cache, package_json).await?;
        let registry = &Registry::builder(cache.clone()).offline(true).build()?;
        let (warm, js_bytes) = fastest(args.runs, || async move {
            let deps = resolve_with(registry, package_json).await?;
            let app = app.clone();
            let bundle = tokio::task::spawn_blocking(move || build(&app, &deps)).await??;
            Ok(bundle.js.len())
        })
        .await?;

        // Next version: the packages prebuilt by an earlier build of the previewer (as after
        // an app's first preview); each run changes the entry, so the build cache misses and
        // only the app's own modules are bundled. Resolve and build.
        let previewer = &Previewer::default();
        previewer.build(app.clone(), deps.clone()).await?;
        let edits = &std::sync::atomic::AtomicUsize::new(0);
        let (next_version, ()) = fastest(args.runs, || async move {
            let n = edits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut files = app.clone();
            if let Some((_, content)) = files.iter_mut().find(|(p, _)| p.starts_with("src/main.")) {
                content.extend_from_slice(format!("\n// edit {n}\n").as_bytes());
            }
            let deps = resolve_with(registry, package_json).await?;
            let bundle = previewer.build(files, deps).await?;
            if !bundle.reused_dependencies {
                return Err("the next version did not reuse the prebuilt packages".into());
            }
            Ok(())
        })
        .await?;

        // Cached: the same files and dependency set again.
        let deps = &deps;
        let (cached, ()) = fastest(args.runs, || async move {
            previewer.build(app.clone(), deps.clone()).await?;
            Ok(())
        })
        .await?;
        builds += 4 * u64::try_from(args.runs.max(1)).unwrap_or(1);

        let mut result = json!({
            "app": name,
            "cold_ms": ms(cold),
            "warm_ms": ms(warm),
            "next_version_ms": ms(next_version),
            "cached_ms": ms(cached),
            "js_bytes": js_bytes,
        });
        warm_total += ms(warm);
        next_total += ms(next_version);

        if let Some(node_dir) = &args.node_dir {
            let dir = write_node_project(node_dir, name, &files)?;
            let bin = node_dir.join("node_modules/.bin");
            let esbuild = fastest_tool(
                args.runs,
                &dir,
                &bin.join("esbuild"),
                &[
                    "src/main.tsx",
                    "--bundle",
                    "--format=esm",
                    "--jsx=automatic",
                    "--define:process.env.NODE_ENV=\"production\"",
                    "--outdir=dist-esbuild",
                    "--log-level=error",
                ],
            )?;
            let vite = fastest_tool(
                args.runs,
                &dir,
                &bin.join("vite"),
                &["build", "--logLevel", "error", "--minify", "false"],
            )?;
            esbuild_total += ms(esbuild);
            result["esbuild_ms"] = json!(ms(esbuild));
            result["vite_build_ms"] = json!(ms(vite));
            std::fs::remove_dir_all(&dir)?;
        }
        eprintln!("preview-build: {result}");
        results.push(result);
    }
    let mut report = Report::new("preview-build", builds, start.elapsed())
        .with("runs", args.runs)
        .with("warm_ms_total", warm_total)
        .with("next_version_ms_total", next_total)
        .with("apps", results);
    if args.node_dir.is_some() {
        report = report.with("esbuild_ms_total", esbuild_total);
    }
    Ok(report)
}
