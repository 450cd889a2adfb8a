//! `appforge-server`: an Axum server assembling the appforge crates.
//!
//! Run it with `cargo run -p appforge-server`; see the workspace README for the routes and
//! `docs/deployment.md` for the settings.

mod auth;
mod config;
mod error;
mod layers;
mod metrics;
mod request_id;
pub mod shutdown;
pub mod telemetry;

pub use auth::{AuthUser, Claims, JwtKeys};
pub use config::{Config, ConfigError, LogFormat, ProviderConfig, StripeConfig};
pub use error::ApiError;
pub use metrics::Metrics;
pub use request_id::{REQUEST_ID, RequestId};
