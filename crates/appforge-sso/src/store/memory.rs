use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use super::{PendingLogins, SsoConfigStore};
use crate::Result;
use crate::config::SsoConfig;
use crate::pending::PendingLogin;

/// Both stores in memory, for tests and single-process hosts. Clones share the data.
#[derive(Debug, Clone, Default)]
pub struct MemorySsoStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    configs: HashMap<Uuid, SsoConfig>,
    pending: HashMap<String, PendingLogin>,
}

impl MemorySsoStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl SsoConfigStore for MemorySsoStore {
    async fn put_config(&self, config: &SsoConfig) -> Result<()> {
        self.inner.lock().configs.insert(config.org, config.clone());
        Ok(())
    }

    async fn get_config(&self, org: Uuid) -> Result<Option<SsoConfig>> {
        Ok(self.inner.lock().configs.get(&org).cloned())
    }

    async fn delete_config(&self, org: Uuid) -> Result<bool> {
        Ok(self.inner.lock().configs.remove(&org).is_some())
    }
}

impl PendingLogins for MemorySsoStore {
    async fn insert_pending(&self, login: &PendingLogin) -> Result<()> {
        let mut inner = self.inner.lock();
        if inner.pending.contains_key(&login.state) {
            return Err(crate::Error::InvalidArgument(
                "a pending login with this state exists".into(),
            ));
        }
        inner.pending.insert(login.state.clone(), login.clone());
        Ok(())
    }

    async fn take_pending(&self, state: &str) -> Result<Option<PendingLogin>> {
        Ok(self.inner.lock().pending.remove(state))
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut inner = self.inner.lock();
        let before = inner.pending.len();
        inner.pending.retain(|_, login| !login.is_expired(now));
        Ok(u64::try_from(before - inner.pending.len()).unwrap_or(u64::MAX))
    }
}
