//! The store traits and their backends.

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Result;
use crate::config::SsoConfig;
use crate::pending::PendingLogin;

pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// The migration table of this crate's SQL stores.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) const MIGRATIONS_TABLE: &str = "_appforge_sso_migrations";

/// Where each organization's [`SsoConfig`] lives. The client secret arrives sealed: a store
/// never sees it in clear.
pub trait SsoConfigStore: Send + Sync + fmt::Debug {
    /// Stores the org's settings, replacing any.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn put_config(&self, config: &SsoConfig) -> impl Future<Output = Result<()>> + Send;

    /// The org's settings, if any.
    ///
    /// # Errors
    ///
    /// Storage errors; [`Error::Corrupt`](crate::Error::Corrupt) for an unreadable row.
    fn get_config(&self, org: Uuid) -> impl Future<Output = Result<Option<SsoConfig>>> + Send;

    /// Removes the org's settings; whether there were any.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn delete_config(&self, org: Uuid) -> impl Future<Output = Result<bool>> + Send;
}

/// Where started logins wait for their callback.
///
/// [`take_pending`](Self::take_pending) removes the login it returns in one atomic step: of two callbacks
/// with the same `state`, exactly one gets it.
pub trait PendingLogins: Send + Sync + fmt::Debug {
    /// Stores a started login.
    ///
    /// # Errors
    ///
    /// Storage errors (a duplicate `state` among them).
    fn insert_pending(&self, login: &PendingLogin) -> impl Future<Output = Result<()>> + Send;

    /// Removes and returns the login started with `state`, expired or not (the caller tells
    /// an expired one apart); `None` when unknown or already taken.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn take_pending(
        &self,
        state: &str,
    ) -> impl Future<Output = Result<Option<PendingLogin>>> + Send;

    /// Removes the logins expired at `now`; how many.
    ///
    /// # Errors
    ///
    /// Storage errors.
    fn purge_expired(&self, now: DateTime<Utc>) -> impl Future<Output = Result<u64>> + Send;
}
