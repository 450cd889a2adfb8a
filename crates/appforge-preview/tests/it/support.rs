//! A registry stand-in over tarballs packed by the test (or read from `APPFORGE_NPM_TARBALLS`),
//! and the demo apps of `appforge-llm`'s transcripts.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use appforge_preview::{DepCache, Registry, ResolveLimits, integrity_of};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One entry of a tarball to pack.
pub(crate) enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
}

/// A `.tgz` of `entries`, each path taken as written (npm tarballs put files under
/// `package/`).
pub(crate) fn pack(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        match entry {
            Entry::File(path, content) => {
                let mut header = tar::Header::new_gnu();
                header.set_size(content.len() as u64);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                // `set_path` refuses `..`: the raw name field is written instead, as a hostile
                // packer would.
                let name = &mut header.as_old_mut().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
                header.set_cksum();
                builder.append(&header, *content).unwrap();
            }
            Entry::Symlink(path, target) => {
                let mut header = tar::Header::new_gnu();
                header.set_size(0);
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                let name = &mut header.as_old_mut().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
                let link = &mut header.as_old_mut().linkname;
                link[..target.len()].copy_from_slice(target.as_bytes());
                header.set_cksum();
                builder.append(&header, &[][..]).unwrap();
            }
        }
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// A package of a few files with a `package.json` made from `manifest`.
pub(crate) fn package(manifest: &Value, files: &[(&str, &str)]) -> Vec<u8> {
    let manifest = serde_json::to_vec_pretty(manifest).unwrap();
    let paths: Vec<String> = files.iter().map(|(p, _)| format!("package/{p}")).collect();
    let mut entries = vec![Entry::File("package/package.json", &manifest)];
    for ((_, content), path) in files.iter().zip(&paths) {
        entries.push(Entry::File(path, content.as_bytes()));
    }
    pack(&entries)
}

#[derive(Default)]
struct Packages {
    /// name -> version -> (manifest, tarball)
    versions: BTreeMap<String, BTreeMap<String, (Value, Vec<u8>)>>,
    /// Overrides of a version's `integrity`.
    integrity: BTreeMap<(String, String), String>,
}

/// A registry stand-in: `GET /{name}` answers the packument, `GET /{name}/-/{file}.tgz` the
/// tarball.
pub(crate) struct StandIn {
    pub(crate) url: String,
    packages: Arc<Mutex<Packages>>,
    pub(crate) tarball_requests: Arc<AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct AppState {
    url: String,
    packages: Arc<Mutex<Packages>>,
    tarball_requests: Arc<AtomicUsize>,
}

impl StandIn {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState {
            url: url.clone(),
            packages: Arc::default(),
            tarball_requests: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/{name}", axum::routing::get(packument))
            .route("/{scope}/{name}", axum::routing::get(scoped))
            .route("/{name}/-/{file}", axum::routing::get(tarball))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            packages: state.packages,
            tarball_requests: state.tarball_requests,
            _server: server,
        }
    }

    /// Publishes a tarball; its `package.json` gives the name, version and dependencies.
    pub(crate) fn publish(&self, tgz: Vec<u8>) -> (String, String) {
        let manifest = manifest_of(&tgz);
        let name = manifest["name"].as_str().unwrap().to_owned();
        let version = manifest["version"].as_str().unwrap().to_owned();
        self.packages
            .lock()
            .unwrap()
            .versions
            .entry(name.clone())
            .or_default()
            .insert(version.clone(), (manifest, tgz));
        (name, version)
    }

    /// Publishes a package made of a manifest and files.
    pub(crate) fn publish_package(&self, manifest: &Value, files: &[(&str, &str)]) {
        self.publish(package(manifest, files));
    }

    /// Makes the packument announce another `integrity` for a version.
    pub(crate) fn set_integrity(&self, name: &str, version: &str, integrity: &str) {
        self.packages
            .lock()
            .unwrap()
            .integrity
            .insert((name.to_owned(), version.to_owned()), integrity.to_owned());
    }

    /// A registry client of this stand-in caching in `cache`.
    pub(crate) fn registry(&self, cache: &std::path::Path, limits: ResolveLimits) -> Registry {
        Registry::builder(DepCache::new(cache, 256 << 20).unwrap())
            .url(&self.url)
            .limits(limits)
            .build()
            .unwrap()
    }
}

fn manifest_of(tgz: &[u8]) -> Value {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        let mut parts = path.components();
        parts.next();
        if parts.as_path() == std::path::Path::new("package.json") {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            return serde_json::from_str(&text).unwrap();
        }
    }
    panic!("no package.json in the tarball");
}

async fn scoped(
    State(state): State<AppState>,
    Path((scope, name)): Path<(String, String)>,
) -> Response {
    render_packument(&state, &format!("{scope}/{name}"))
}

async fn packument(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    render_packument(&state, &name.replace("%2f", "/").replace("%2F", "/"))
}

fn render_packument(state: &AppState, name: &str) -> Response {
    let packages = state.packages.lock().unwrap();
    let Some(versions) = packages.versions.get(name) else {
        return (StatusCode::NOT_FOUND, "{\"error\":\"Not found\"}").into_response();
    };
    let mut out = serde_json::Map::new();
    let mut latest = String::new();
    for (version, (manifest, tgz)) in versions {
        let file = format!("{}-{version}.tgz", name.rsplit('/').next().unwrap());
        let integrity = packages
            .integrity
            .get(&(name.to_owned(), version.clone()))
            .cloned()
            .unwrap_or_else(|| integrity_of(tgz));
        let mut meta = json!({
            "name": name,
            "version": version,
            "dependencies": manifest.get("dependencies").cloned().unwrap_or(json!({})),
            "dist": {
                "tarball": format!("{}/{}/-/{file}", state.url, name.replace('/', "%2f")),
                "integrity": integrity,
            },
        });
        for key in ["peerDependencies", "peerDependenciesMeta"] {
            if let Some(v) = manifest.get(key) {
                meta[key] = v.clone();
            }
        }
        if manifest.get("scripts").is_some_and(|s| {
            ["preinstall", "install", "postinstall"]
                .iter()
                .any(|k| s.get(k).is_some())
        }) {
            meta["hasInstallScript"] = json!(true);
        }
        out.insert(version.clone(), meta);
        latest.clone_from(version);
    }
    axum::Json(json!({
        "name": name,
        "dist-tags": {"latest": latest},
        "versions": out,
    }))
    .into_response()
}

async fn tarball(
    State(state): State<AppState>,
    Path((name, file)): Path<(String, String)>,
) -> Response {
    state.tarball_requests.fetch_add(1, Ordering::SeqCst);
    let name = name.replace("%2f", "/").replace("%2F", "/");
    let packages = state.packages.lock().unwrap();
    let found = packages.versions.get(&name).and_then(|versions| {
        versions.iter().find_map(|(version, (_, tgz))| {
            (file == format!("{}-{version}.tgz", name.rsplit('/').next().unwrap()))
                .then(|| tgz.clone())
        })
    });
    match found {
        Some(tgz) => tgz.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The directory of real npm tarballs, from `APPFORGE_NPM_TARBALLS` (skipping, saying why,
/// without it; failing under `CI`).
pub(crate) use appforge_testing::npm_tarballs;

/// A stand-in publishing every `.tgz` of the real tarballs directory.
pub(crate) async fn real_registry(dir: &std::path::Path) -> StandIn {
    let registry = StandIn::start().await;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tgz") {
            registry.publish(std::fs::read(path).unwrap());
        }
    }
    registry
}

/// A demo app of `appforge-llm`'s offline transcripts: its files and a `package.json` as the
/// export scaffolds it.
pub(crate) fn demo_app(name: &str) -> Vec<(String, String)> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../appforge-llm/transcripts/src"
    );
    let text = std::fs::read_to_string(format!("{dir}/{name}.txt")).unwrap();
    let generation = appforge_files::protocol::parse(&text);
    with_package_json(
        &generation.files,
        &generation.dependencies,
        generation.name.as_deref(),
    )
}

/// The todo app with the recorded dark-mode change set applied.
pub(crate) fn demo_todo_dark_mode() -> Vec<(String, String)> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../appforge-llm/transcripts/src"
    );
    let todo = appforge_files::protocol::parse(
        &std::fs::read_to_string(format!("{dir}/todo-app.txt")).unwrap(),
    );
    let change = appforge_files::ChangeSet::from_model_output(
        &std::fs::read_to_string(format!("{dir}/modify-dark-mode.json")).unwrap(),
    )
    .unwrap();
    let files = change.apply(&todo.files).unwrap();
    with_package_json(&files, &todo.dependencies, todo.name.as_deref())
}

fn with_package_json(
    files: &[appforge_files::AppFile],
    dependencies: &BTreeMap<String, String>,
    name: Option<&str>,
) -> Vec<(String, String)> {
    let scaffold = appforge_files::protocol::scaffold(name.unwrap_or("app"), files, dependencies);
    files
        .iter()
        .chain(scaffold.files.iter())
        .map(|f| (f.path.clone(), f.content.clone()))
        .collect()
}
