//! The binary's subcommands: `worker`, `migrate` and `check-config`, beside running the API.
//!
//! `migrate` applies every crate's migrations the way the server does at start (it builds the
//! same [`AppState`], then closes it) and exits, so an upgrade can migrate before the new
//! version's processes start. `check-config` reads every setting, checks the provider and the
//! database, and prints the settings in effect through their `Debug`, in which every secret is
//! `[redacted]`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::auth::JwtKeys;
use crate::config::{Config, ConfigError, ProviderConfig};
use crate::db::Database;
use crate::state::{AppState, StartError};

/// The usage text of `appforge-server --help`.
pub const USAGE: &str = "\
appforge-server: the appforge API server and its job workers

Usage:
  appforge-server                run the API, with APPFORGE_WORKERS in-process job slots
  appforge-server worker         run only the job handlers, as appforge-worker does
  appforge-server migrate        apply every crate's database migrations, then exit
  appforge-server check-config   check the settings and the database, print the settings
                                 in effect (secrets redacted), then exit
  appforge-server preview-cache [--import DIR]
                                 fill the previews' npm cache (APPFORGE_PREVIEW_CACHE) with
                                 the offline demo apps' dependencies from the registry, or
                                 with every .tgz in DIR (from `npm pack`), then exit
  appforge-server help           print this text (also -h, --help)
  appforge-server --version      print the version (also -V)

Settings come from the environment (DATABASE_URL, APPFORGE_ADDR, ANTHROPIC_API_KEY, ...):
see docs/deployment.md. Exit status: 0 on success, 2 for an unusable setting or a bad
command line, 1 for any other failure (an unreachable database, a failed migration).
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// No argument: the API (and in-process workers).
    Serve,
    /// `worker`: the job handlers only.
    Worker,
    /// `migrate`: apply the migrations and exit.
    Migrate,
    /// `check-config`: check and print the settings and exit.
    CheckConfig,
    /// `preview-cache [--import DIR]`: fill the previews' npm cache and exit.
    PreviewCache {
        /// `--import DIR`: the directory of tarballs to import, instead of the registry.
        import: Option<std::path::PathBuf>,
    },
    /// `help`, `-h` or `--help`: print [`USAGE`].
    Help,
    /// `--version` or `-V`.
    Version,
}

/// A command line the binary does not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} (see appforge-server --help)")]
pub struct UsageError(String);

impl Command {
    /// Reads the arguments after the program name. `-h`/`--help` anywhere asks for help.
    ///
    /// # Errors
    ///
    /// [`UsageError`] for an unknown command or an argument after the command.
    pub fn parse<I>(args: I) -> Result<Self, UsageError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let args: Vec<I::Item> = args.into_iter().collect();
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        if args.iter().any(|arg| matches!(*arg, "-h" | "--help")) {
            return Ok(Self::Help);
        }
        let Some((first, rest)) = args.split_first() else {
            return Ok(Self::Serve);
        };
        let command = match *first {
            "worker" => Self::Worker,
            "migrate" => Self::Migrate,
            "check-config" => Self::CheckConfig,
            "preview-cache" => {
                return match rest {
                    [] => Ok(Self::PreviewCache { import: None }),
                    ["--import", dir] => Ok(Self::PreviewCache {
                        import: Some(std::path::PathBuf::from(dir)),
                    }),
                    [extra, ..] => Err(UsageError(format!(
                        "unexpected argument {extra:?} after \"preview-cache\" \
                         (preview-cache [--import DIR])"
                    ))),
                };
            }
            "help" => Self::Help,
            "-V" | "--version" => Self::Version,
            other => return Err(UsageError(format!("unknown command {other:?}"))),
        };
        match rest.first() {
            None => Ok(command),
            Some(extra) => Err(UsageError(format!(
                "unexpected argument {extra:?} after {first:?}"
            ))),
        }
    }
}

/// The dependencies of the offline demo apps (`react` and `react-dom`), which
/// [`preview_cache`] fetches so that they preview without a registry.
pub const DEMO_DEPENDENCIES: [(&str, &str); 2] = [("react", "^18.3.1"), ("react-dom", "^18.3.1")];

/// Fills the previews' npm cache: with every `.tgz` of `import` (tarballs from `npm pack`,
/// unpacked with the cache's limits), or, without it, with [`DEMO_DEPENDENCIES`] and what
/// they need, resolved through the configured registry and checked against their integrity.
/// Writes one `name@version` line a package to `out` and returns how many there are.
///
/// # Errors
///
/// [`StartError`] when the cache cannot be opened, a tarball is refused or the registry
/// fails; what was stored before stays.
pub async fn preview_cache(
    config: &Config,
    import: Option<&std::path::Path>,
    out: &mut String,
) -> Result<usize, StartError> {
    let previews = crate::state::previews(&config.preview)?;
    let cache = previews.registry().cache();
    let mut packages = Vec::new();
    match import {
        Some(dir) => {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| StartError::setup("preview-cache --import", e))?;
            let mut tarballs: Vec<std::path::PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "tgz"))
                .collect();
            tarballs.sort();
            for path in tarballs {
                let bytes = std::fs::read(&path)
                    .map_err(|e| StartError::setup("preview-cache --import", e))?;
                let (name, version, _) = cache
                    .import_tarball(&bytes, appforge_preview::TarballLimits::default())
                    .map_err(|e| StartError::setup("preview-cache --import", e))?;
                packages.push(format!("{name}@{version}"));
            }
        }
        None => {
            let wanted = DEMO_DEPENDENCIES
                .iter()
                .map(|(name, range)| ((*name).to_owned(), (*range).to_owned()))
                .collect();
            let resolved = previews
                .registry()
                .resolve(&wanted)
                .await
                .map_err(|e| StartError::setup("preview-cache", e))?;
            for package in resolved.packages() {
                packages.push(format!("{}@{}", package.name, package.version));
            }
        }
    }
    for package in &packages {
        let _ = writeln!(out, "{package}");
    }
    let _ = writeln!(
        out,
        "{} packages in {}",
        packages.len(),
        cache.root().display()
    );
    Ok(packages.len())
}

/// The version line of `appforge-server --version`.
#[must_use]
pub fn version() -> String {
    format!("appforge-server {}", env!("CARGO_PKG_VERSION"))
}

/// Applies every crate's migrations to the configured database, as the server does at start
/// (the same [`AppState::build`]: nothing else runs, no job is reconciled or claimed), checks
/// that every migration table then holds applied migrations, and closes the database.
/// Returns the backend (`"sqlite"` or `"postgres"`).
///
/// Migrations only go forward: a database migrated by a newer version is not taken back.
///
/// # Errors
///
/// [`StartError`] when the database cannot be opened or a crate's migrations fail.
pub async fn migrate(config: Config) -> Result<&'static str, StartError> {
    // The provider plays no part in migrating: the offline one needs no network.
    let (pipelines, provider) = ProviderConfig::OfflineDemo
        .pipelines(Duration::ZERO)
        .map_err(|e| StartError::setup("provider", e))?;
    let state = AppState::build(config, pipelines, provider, JwtKeys::random()).await?;
    let applied = state.db().migrated().await;
    state.analytics().shutdown().await;
    state.db().close().await;
    match applied {
        Ok(true) => Ok(state.db().backend()),
        Ok(false) => Err(StartError::setup(
            "migrations",
            "a crate's migration table is empty after migrating",
        )),
        Err(error) => Err(StartError::Database(error)),
    }
}

/// A problem `check-config` found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// A setting cannot be used: the error names it.
    #[error(transparent)]
    Setting(#[from] ConfigError),
    /// The provider's client cannot be built from its settings.
    #[error("the provider cannot be set up: {0}")]
    Provider(String),
    /// The database cannot be reached (its URL shown with the password redacted).
    #[error("the database {database} cannot be reached: {message}")]
    Database {
        /// `DATABASE_URL`, redacted.
        database: String,
        /// Why.
        message: String,
    },
}

impl CheckError {
    /// The exit status: 2 for a setting (as when the server refuses to start), 1 otherwise.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Setting(_) | Self::Provider(_) => 2,
            Self::Database { .. } => 1,
        }
    }
}

/// How long `check-config` waits for the database.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks `settings` (as [`Config::from_env`] read them), the provider and the database,
/// writing a report to `out`: the settings in effect (their `Debug`, every secret redacted),
/// the provider, whether the database answers, and whether every crate's migration table
/// holds applied migrations. A SQLite file that does not exist yet is not created: it is
/// reported with its migrations pending.
///
/// # Errors
///
/// The first [`CheckError`] found; `out` holds what was checked before it.
pub async fn check_config(
    settings: Result<Config, ConfigError>,
    out: &mut String,
) -> Result<(), CheckError> {
    let config = settings?;
    let _ = writeln!(out, "settings: valid\n{config:#?}");
    let (_, provider) = config
        .provider
        .pipelines(config.demo_pace)
        .map_err(|e| CheckError::Provider(e.to_string()))?;
    let _ = writeln!(out, "provider: {provider}");
    let _ = writeln!(out, "{}", sso_line(&config));
    let _ = writeln!(out, "{}", preview_line(&config.preview));
    let shown = format!("{:?}", config.database_url);
    let unreachable = |message: String| CheckError::Database {
        // The URL itself is never repeated (it may hold a password), in case a driver's
        // message quotes it.
        message: message.replace(config.database_url.as_str(), &shown),
        database: shown.clone(),
    };
    let db = match open(&config).await.map_err(unreachable)? {
        Opened::Database(db) => db,
        Opened::NoFileYet(path) => {
            let _ = writeln!(
                out,
                "database: sqlite {shown}: the file {} does not exist yet (`appforge-server \
                 migrate` or the server's start creates it)\nmigrations: pending",
                path.display()
            );
            return Ok(());
        }
    };
    let ping = db.ping().await;
    let migrated = db.migrated().await;
    db.close().await;
    ping.map_err(|e| unreachable(e.to_string()))?;
    let _ = writeln!(out, "database: {} {shown}, reachable", db.backend());
    let _ = match migrated {
        Ok(true) => writeln!(
            out,
            "migrations: applied (`appforge-server migrate` applies a newer version's)"
        ),
        Ok(false) => writeln!(out, "migrations: pending (run `appforge-server migrate`)"),
        // A database nothing has migrated yet has no migration tables.
        Err(error) => writeln!(
            out,
            "migrations: pending (run `appforge-server migrate`; the migration tables cannot \
             be read: {error})"
        ),
    };
    Ok(())
}

/// What `check-config` says of previews: the npm cache, where packages come from, and the
/// origin previews are served from.
fn preview_line(config: &crate::config::PreviewConfig) -> String {
    let source = if config.offline {
        "offline (the cache only)".to_owned()
    } else {
        format!("registry {}", config.registry)
    };
    let origin = config
        .origin
        .as_deref()
        .unwrap_or("the server's own, sandboxed");
    format!(
        "preview: npm cache {} ({} MiB cap), {source}, origin {origin}",
        config.cache_dir.display(),
        config.cache_bytes >> 20
    )
}

/// What `check-config` says of single sign-on: off without a secrets key; on with the
/// callback address the org's provider must allow; and when the public URL is missing, that
/// sign-ins answer `503` (SCIM and the settings routes work without it).
fn sso_line(config: &Config) -> String {
    match (&config.secrets_key, config.orgs.public_url.as_deref()) {
        (None, _) => "sso: off (APPFORGE_SECRETS_KEY is not set)".to_owned(),
        (Some(_), Some(base)) => format!("sso: on, callback {base}/auth/sso/callback"),
        (Some(_), None) => "sso: on, but APPFORGE_PUBLIC_URL is not set: sign-ins through \
                            /auth/sso/start answer 503 until it is (SCIM works)"
            .to_owned(),
    }
}

enum Opened {
    Database(Database),
    /// A SQLite file that is not there (its directory is).
    NoFileYet(std::path::PathBuf),
}

/// Opens the database without creating a SQLite file, within [`CONNECT_TIMEOUT`].
async fn open(config: &Config) -> Result<Opened, String> {
    let connect = appforge_core::db::Connect::new(config.database_url.as_str());
    let opening = async {
        if connect.backend() != Some(appforge_core::db::Backend::Sqlite) {
            // One connection first: a pool retries a refused connection until its timeout,
            // and then reports the timeout instead of the cause.
            let options: sqlx::postgres::PgConnectOptions = config
                .database_url
                .parse()
                .map_err(|e: sqlx::Error| e.to_string())?;
            let probe = <sqlx::PgConnection as sqlx::Connection>::connect_with(&options)
                .await
                .map_err(|e| e.to_string())?;
            let _ = sqlx::Connection::close(probe).await;
            return Database::connect(&config.database_url)
                .await
                .map(Opened::Database)
                .map_err(|e| e.to_string());
        }
        let options = connect
            .sqlite_options()
            .map_err(|e| e.to_string())?
            .create_if_missing(false);
        let path = options.get_filename().to_path_buf();
        let in_memory = path.as_os_str().is_empty() || path.as_os_str() == ":memory:";
        if !in_memory && !path.exists() {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => std::path::PathBuf::from("."),
            };
            return if dir.is_dir() {
                Ok(Opened::NoFileYet(path))
            } else {
                Err(format!(
                    "the directory {} of the SQLite file does not exist",
                    dir.display()
                ))
            };
        }
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map(|pool| Opened::Database(Database::Sqlite(pool)))
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(CONNECT_TIMEOUT, opening)
        .await
        .map_err(|_| format!("no answer within {} seconds", CONNECT_TIMEOUT.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_anything_else_is_a_usage_error() {
        let none: [&str; 0] = [];
        assert_eq!(Command::parse(none), Ok(Command::Serve));
        assert_eq!(Command::parse(["worker"]), Ok(Command::Worker));
        assert_eq!(Command::parse(["migrate"]), Ok(Command::Migrate));
        assert_eq!(Command::parse(["check-config"]), Ok(Command::CheckConfig));
        for help in [&["help"][..], &["--help"], &["-h"], &["migrate", "--help"]] {
            assert_eq!(Command::parse(help), Ok(Command::Help), "{help:?}");
        }
        assert_eq!(Command::parse(["--version"]), Ok(Command::Version));
        let unknown = Command::parse(["migrat"]).unwrap_err().to_string();
        assert!(
            unknown.starts_with("unknown command \"migrat\""),
            "{unknown}"
        );
        let extra = Command::parse(["migrate", "now"]).unwrap_err().to_string();
        assert!(
            extra.starts_with("unexpected argument \"now\" after \"migrate\""),
            "{extra}"
        );
    }

    #[test]
    fn the_usage_names_every_command() {
        for command in ["worker", "migrate", "check-config", "help", "--version"] {
            assert!(
                USAGE.contains(&format!("appforge-server {command}")),
                "{command}"
            );
        }
    }
}
