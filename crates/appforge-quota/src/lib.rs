//! Plan-aware quotas: usage windows, atomic reservations and burst limits.
//!
//! ```
//! let err = appforge_quota::Error::Config("daily limit must be positive".into());
//! assert_eq!(err.to_string(), "invalid configuration: daily limit must be positive");
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
