use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use super::EventStore;
use crate::{AnalyticsEvent, Result};

/// An in-process store for tests and prototypes. Clones share the same events.
#[derive(Debug, Clone, Default)]
pub struct MemoryEventStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    events: Vec<AnalyticsEvent>,
    ids: HashSet<Uuid>,
}

impl MemoryEventStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events are stored.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.lock().events.len()
    }

    /// Whether no event is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of every stored event, in insertion order.
    #[must_use]
    pub fn events(&self) -> Vec<AnalyticsEvent> {
        self.inner.lock().events.clone()
    }
}

impl EventStore for MemoryEventStore {
    async fn insert_batch(&self, events: &[AnalyticsEvent]) -> Result<()> {
        let mut inner = self.inner.lock();
        for event in events {
            if inner.ids.insert(event.id) {
                let mut event = event.clone();
                // The same precision as the SQL stores.
                event.created_at = event.created_at.trunc_subsecs(6);
                inner.events.push(event);
            }
        }
        Ok(())
    }

    async fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AnalyticsEvent>> {
        let mut found: Vec<AnalyticsEvent> = self
            .inner
            .lock()
            .events
            .iter()
            .filter(|e| e.created_at >= from && e.created_at < to)
            .cloned()
            .collect();
        found.sort_by_key(|e| (e.created_at, e.id));
        Ok(found)
    }

    async fn first_seen_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
        let mut first: BTreeMap<Uuid, DateTime<Utc>> = BTreeMap::new();
        for event in &self.inner.lock().events {
            first
                .entry(event.user_id)
                .and_modify(|at| *at = (*at).min(event.created_at))
                .or_insert(event.created_at);
        }
        Ok(first
            .into_iter()
            .filter(|(_, at)| *at >= from && *at < to)
            .collect())
    }
}
