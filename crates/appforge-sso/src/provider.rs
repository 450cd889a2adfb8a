//! Provider metadata and key sets, cached per issuer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use openidconnect::core::CoreProviderMetadata;
use openidconnect::{DiscoveryError, IssuerUrl, JsonWebKeySet};
use parking_lot::Mutex;

use crate::http::HttpClient;
use crate::{Error, Result};

/// How long a discovery document (and its key set) is used before it is fetched again.
pub const DEFAULT_DISCOVERY_TTL: Duration = Duration::from_secs(60 * 60);

/// The discovery documents and key sets of the providers in use, by issuer.
#[derive(Debug)]
pub(crate) struct Providers {
    http: HttpClient,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    metadata: Arc<CoreProviderMetadata>,
    fetched_at: DateTime<Utc>,
}

impl Providers {
    pub(crate) fn new(http: HttpClient, ttl: Duration) -> Self {
        Self {
            http,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The issuer's metadata and key set: from the cache while younger than the TTL, else
    /// discovered (openidconnect checks that the document's `issuer` is `issuer`, and fetches
    /// its `jwks_uri`).
    pub(crate) async fn metadata(
        &self,
        issuer: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<CoreProviderMetadata>> {
        let fresh = self.cache.lock().get(issuer).and_then(|cached| {
            let age = (now - cached.fetched_at).to_std().unwrap_or_default();
            (age < self.ttl).then(|| cached.metadata.clone())
        });
        if let Some(metadata) = fresh {
            return Ok(metadata);
        }
        let issuer_url = IssuerUrl::new(issuer.to_owned()).map_err(|e| discovery(issuer, e))?;
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &self.http)
            .await
            .map_err(|e| discovery(issuer, describe(&e)))?;
        let metadata = Arc::new(metadata);
        self.store(issuer, &metadata, now);
        Ok(metadata)
    }

    /// Fetches the issuer's key set again (a token named a key it did not have: the provider
    /// rotated its keys) and caches the metadata with it.
    pub(crate) async fn refresh_jwks(
        &self,
        issuer: &str,
        stale: &CoreProviderMetadata,
        now: DateTime<Utc>,
    ) -> Result<Arc<CoreProviderMetadata>> {
        let jwks = JsonWebKeySet::fetch_async(stale.jwks_uri(), &self.http)
            .await
            .map_err(|e| discovery(issuer, describe(&e)))?;
        let metadata = Arc::new(stale.clone().set_jwks(jwks));
        self.store(issuer, &metadata, now);
        Ok(metadata)
    }

    fn store(&self, issuer: &str, metadata: &Arc<CoreProviderMetadata>, now: DateTime<Utc>) {
        self.cache.lock().insert(
            issuer.to_owned(),
            Cached {
                metadata: metadata.clone(),
                fetched_at: now,
            },
        );
    }
}

fn discovery(issuer: &str, reason: impl std::fmt::Display) -> Error {
    Error::Discovery {
        issuer: issuer.to_owned(),
        reason: reason.to_string(),
    }
}

/// A discovery error with its cause (openidconnect's `Display` stops at "request failed").
fn describe<E: std::error::Error>(error: &DiscoveryError<E>) -> String {
    match error {
        DiscoveryError::Request(e) => format!("request failed: {e}"),
        DiscoveryError::Parse(e) => format!("malformed document at {}: {}", e.path(), e.inner()),
        DiscoveryError::Response(status, _, reason) => format!("HTTP {status}: {reason}"),
        other => other.to_string(),
    }
}
