//! Durable generation jobs: a priority queue with leases, retries, workers and live events.
//!
//! ```
//! let err = appforge_jobs::Error::Config("concurrency must be positive".into());
//! assert_eq!(err.to_string(), "invalid configuration: concurrency must be positive");
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
