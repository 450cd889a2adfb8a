//! Stripe subscriptions and webhooks that cannot be fooled or reordered.
//!
//! ```
//! let err = appforge_billing::Error::Config("tolerance must be positive".into());
//! assert_eq!(err.to_string(), "invalid configuration: tolerance must be positive");
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sqlite` | yes | the embedded SQLite store |
//! | `postgres` | no | the PostgreSQL store |
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;

pub use error::{Error, Result};
