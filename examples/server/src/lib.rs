//! `appforge-server`: an Axum server assembling the appforge crates: generation jobs on a
//! durable queue, plan quotas where money follows the job, Stripe billing, chat streaming, and
//! a library of saved apps with version history, diffs and a public preview, usage analytics
//! with an operator metrics report, and error reports to Sentry when `SENTRY_DSN` is set.
//!
//! Run it with `cargo run -p appforge-server` (SQLite file, offline demo provider, a printed
//! token); see the workspace README for `curl` lines and `docs/deployment.md` for every
//! setting. The library is what the binary, the `appforge-worker` process and the tests use:
//!
//! ```no_run
//! use appforge_server::{Config, server};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_env()?;
//! let (state, demo_token) = server::assemble(config).await?;
//! let listener = tokio::net::TcpListener::bind(state.config().addr).await?;
//! server::serve(state, listener, appforge_server::shutdown::signal()).await?;
//! # drop(demo_token); Ok(()) }
//! ```
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`server`] | assembling the state, serving, in-process workers, shutdown |
//! | [`cli`] | the binary's subcommands: `worker`, `migrate`, `check-config` |
//! | [`work`] | the job handlers (shared with `appforge-worker`) |
//! | [`reconcile`] | settling the reservations of jobs a stopped process left unsettled |
//! | [`maintenance`] | job retention, purging deleted apps, queue alerts |
//! | [`routes`] | the router, its route list, the admin API and the web pages |

mod analytics;
mod auth;
pub mod cli;
mod config;
mod connections;
mod db;
mod error;
mod extract;
mod guarded;
mod layers;
mod limits;
pub mod maintenance;
mod metrics;
pub mod openapi;
pub mod reconcile;
mod reporting;
mod request_id;
pub mod routes;
pub mod server;
/// Who pays for a model call: the rules of `appforge::settlement`.
pub(crate) use appforge::settlement;
pub mod shutdown;
pub mod sso;
mod state;
pub mod telemetry;
pub mod work;

pub use analytics::Analytics;
pub use auth::{AdminAuth, AdminToken, AuthPrincipal, AuthUser, Claims, JwtKeys, MIN_SECRET_BYTES};
pub use config::{
    Config, ConfigError, DatabaseUrl, EdgeConfig, LogFormat, MaintenanceConfig, OrgsConfig,
    PreviewConfig, ProviderConfig, RELEASE, SmtpConfig, StripeConfig, UploadsConfig,
};
pub use connections::ClientAddr;
pub use db::Database;
pub use error::ApiError;
pub use extract::Json;
pub use metrics::Metrics;
pub use openapi::DOCUMENT as OPENAPI_DOCUMENT;
pub use reporting::Reporting;
pub use request_id::{REQUEST_ID, RequestId};
pub use state::{AppState, StartError};
