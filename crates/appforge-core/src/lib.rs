//! Shared vocabulary of the appforge crates.
//!
//! Every appforge crate reads time through a [`Clock`] so that tests can move it, and keeps
//! secrets (API keys, webhook secrets, tokens) in a [`SecretString`] whose `Debug` prints
//! `[REDACTED]`. The [`models`] table describes every Claude model (limits, thinking, effort,
//! prices, end of life), and [`ModelPrice`] prices [`TokenCounts`] in micro-dollars.
//!
//! ```
//! use appforge_core::{Clock, ManualClock};
//! use std::time::Duration;
//!
//! let clock = ManualClock::at("2026-01-31T23:59:59Z".parse().unwrap());
//! clock.advance(Duration::from_secs(1));
//! assert_eq!(clock.now().to_rfc3339(), "2026-02-01T00:00:00+00:00");
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sqlx` | no | [`db`]: the transient-error check, connect-by-URL, per-crate migration tables, the SQLite time encoding |
//! | `sqlite` | no | `sqlx` and [`db::Connect::sqlite`] (WAL, busy timeout, created when missing) |
//! | `postgres` | no | `sqlx` and [`db::Connect::postgres`] |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod clock;
#[cfg(feature = "sqlx")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub mod db;
pub mod models;
mod owner;
mod plan_sync;
mod price;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use models::ModelInfo;
pub use owner::Owner;
pub use plan_sync::{
    BillingPeriod, BoxFuture, Interval, InvalidBillingPeriod, PlanSync, PlanSyncError,
};
pub use price::{LongContextTier, ModelPrice, Rates, TokenCounts};
pub use secrecy::{ExposeSecret, SecretString};
