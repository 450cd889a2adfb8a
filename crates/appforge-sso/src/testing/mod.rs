//! The conformance suite every store passes: one behavioural test body per rule, run on
//! memory, SQLite and PostgreSQL here, and on any outside implementation with
//! [`sso_store_suite!`](crate::sso_store_suite).
//!
//! ```no_run
//! use appforge_sso::MemorySsoStore;
//! use appforge_sso::testing::Backend;
//!
//! async fn backend() -> Option<Backend<MemorySsoStore>> {
//!     let clock = appforge_core::ManualClock::at(chrono::Utc::now());
//!     Some(Backend::new(MemorySsoStore::new(), clock))
//! }
//!
//! appforge_sso::sso_store_suite!(backend);
//! # fn main() {}
//! ```

use std::any::Any;
use std::time::Duration;

use appforge_core::{Clock, ExposeSecret, ManualClock};
use appforge_orgs::Role;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    Error, PendingLogin, PendingLogins, SealedSecret, SecretsKey, SsoConfig, SsoConfigStore,
};

/// A store under test, the clock the suite reads, and whatever keeps its database alive.
#[derive(Debug)]
pub struct Backend<S> {
    /// The store.
    pub store: S,
    /// The clock the suite's times come from.
    pub clock: ManualClock,
    guard: Option<Box<dyn Any + Send>>,
}

impl<S> Backend<S> {
    /// A store with `clock`.
    pub fn new(store: S, clock: ManualClock) -> Self {
        Self {
            store,
            clock,
            guard: None,
        }
    }

    /// Keeps `guard` (a temporary file, a test database) alive as long as the backend.
    #[must_use]
    pub fn guard(mut self, guard: impl Any + Send) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }
}

/// Runs every case of the suite as a `#[tokio::test]`, each on a fresh backend from
/// `$make`, an `async fn() -> Option<Backend<S>>` (`None` skips, as a PostgreSQL suite does
/// without `DATABASE_URL`).
#[macro_export]
macro_rules! sso_store_suite {
    ($make:path) => {
        $crate::sso_store_suite!(@cases $make;
            configs_are_stored_replaced_and_deleted,
            stored_client_secrets_are_sealed,
            pending_logins_are_taken_once,
            concurrent_takes_get_a_login_once,
            expired_pending_logins_are_purged
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(backend) = $make().await else {
                    return;
                };
                $crate::testing::$case(backend).await;
            }
        )*
    };
}

/// Times as a SQL store keeps them (whole microseconds).
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).expect("in range")
}

fn config(org: Uuid, key: &SecretsKey, secret: &str, now: DateTime<Utc>) -> SsoConfig {
    SsoConfig {
        org,
        issuer: "https://login.acme.com/realms/acme".into(),
        client_id: "appforge".into(),
        client_secret: key.seal(org, secret),
        allowed_domains: vec!["acme.com".into(), "acme.io".into()],
        default_role: Role::Member,
        enforce_domain: true,
        updated_at: micros(now),
    }
}

fn pending(org: Uuid, now: DateTime<Utc>, ttl: Duration) -> PendingLogin {
    let now = micros(now);
    PendingLogin {
        state: format!("state-{}", Uuid::new_v4().simple()),
        nonce: "nonce".into(),
        pkce_verifier: "verifier".into(),
        org,
        redirect_uri: "https://app.example.com/sso/callback".into(),
        created_at: now,
        expires_at: now + chrono::Duration::from_std(ttl).expect("in range"),
    }
}

/// Settings round-trip, a second write replaces the first, a delete removes them.
///
/// # Panics
///
/// When the store breaks the rule.
pub async fn configs_are_stored_replaced_and_deleted<S: SsoConfigStore>(backend: Backend<S>) {
    let store = &backend.store;
    let key = SecretsKey::generate();
    let (org, other) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(store.get_config(org).await.unwrap(), None);

    let first = config(org, &key, "first-secret", backend.clock.now());
    store.put_config(&first).await.unwrap();
    store
        .put_config(&config(other, &key, "x", backend.clock.now()))
        .await
        .unwrap();
    assert_eq!(store.get_config(org).await.unwrap(), Some(first.clone()));

    backend.clock.advance(Duration::from_secs(60));
    let mut second = config(org, &key, "second-secret", backend.clock.now());
    second.allowed_domains = vec![];
    second.enforce_domain = false;
    second.default_role = Role::Viewer;
    store.put_config(&second).await.unwrap();
    let stored = store.get_config(org).await.unwrap().unwrap();
    assert_eq!(stored, second);
    assert_eq!(
        key.open(org, &stored.client_secret)
            .unwrap()
            .expose_secret(),
        "second-secret"
    );

    assert!(store.delete_config(org).await.unwrap());
    assert!(!store.delete_config(org).await.unwrap());
    assert_eq!(store.get_config(org).await.unwrap(), None);
    assert!(store.get_config(other).await.unwrap().is_some());
}

/// What the store keeps of a client secret is sealed: not the plaintext, opened only with
/// the key it was sealed with and for its own org.
///
/// # Panics
///
/// When the store breaks the rule.
pub async fn stored_client_secrets_are_sealed<S: SsoConfigStore>(backend: Backend<S>) {
    let store = &backend.store;
    let key = SecretsKey::generate();
    let org = Uuid::new_v4();
    let plaintext = "super-secret-client-secret";
    store
        .put_config(&config(org, &key, plaintext, backend.clock.now()))
        .await
        .unwrap();
    let stored = store.get_config(org).await.unwrap().unwrap();
    assert!(!stored.client_secret.as_stored().contains(plaintext));
    assert!(!format!("{stored:?}").contains(plaintext));
    assert_eq!(
        key.open(org, &stored.client_secret)
            .unwrap()
            .expose_secret(),
        plaintext
    );
    let err = SecretsKey::generate()
        .open(org, &stored.client_secret)
        .unwrap_err();
    assert!(
        matches!(err, Error::Decrypt { org: o } if o == org),
        "{err}"
    );

    // Copied to another org's row, it does not open.
    let other = Uuid::new_v4();
    let mut copied = config(other, &key, "other", backend.clock.now());
    copied.client_secret = SealedSecret::from_stored(stored.client_secret.as_stored());
    store.put_config(&copied).await.unwrap();
    let copied = store.get_config(other).await.unwrap().unwrap();
    assert!(key.open(other, &copied.client_secret).is_err());
}

/// A pending login is taken once; a duplicate state is refused.
///
/// # Panics
///
/// When the store breaks the rule.
pub async fn pending_logins_are_taken_once<S: PendingLogins>(backend: Backend<S>) {
    let store = &backend.store;
    let login = pending(
        Uuid::new_v4(),
        backend.clock.now(),
        Duration::from_secs(600),
    );
    store.insert_pending(&login).await.unwrap();
    assert!(store.insert_pending(&login).await.is_err());
    assert_eq!(store.take_pending("unknown").await.unwrap(), None);
    assert_eq!(
        store.take_pending(&login.state).await.unwrap(),
        Some(login.clone())
    );
    assert_eq!(store.take_pending(&login.state).await.unwrap(), None);

    // Taken expired or not: the caller decides.
    let expired = pending(Uuid::new_v4(), backend.clock.now(), Duration::from_secs(1));
    store.insert_pending(&expired).await.unwrap();
    backend.clock.advance(Duration::from_secs(2));
    let taken = store.take_pending(&expired.state).await.unwrap().unwrap();
    assert!(taken.is_expired(backend.clock.now()));
}

/// Of many callbacks racing with one state, exactly one gets the login.
///
/// # Panics
///
/// When the store breaks the rule.
pub async fn concurrent_takes_get_a_login_once<S>(backend: Backend<S>)
where
    S: PendingLogins + Clone + 'static,
{
    let login = pending(
        Uuid::new_v4(),
        backend.clock.now(),
        Duration::from_secs(600),
    );
    backend.store.insert_pending(&login).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = backend.store.clone();
            let state = login.state.clone();
            tokio::spawn(async move { store.take_pending(&state).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        if task.await.unwrap().is_some() {
            taken += 1;
        }
    }
    assert_eq!(taken, 1);
}

/// The purge removes exactly the logins expired at the given time.
///
/// # Panics
///
/// When the store breaks the rule.
pub async fn expired_pending_logins_are_purged<S: PendingLogins>(backend: Backend<S>) {
    let store = &backend.store;
    let now = backend.clock.now();
    let short = pending(Uuid::new_v4(), now, Duration::from_secs(60));
    let long = pending(Uuid::new_v4(), now, Duration::from_secs(600));
    store.insert_pending(&short).await.unwrap();
    store.insert_pending(&long).await.unwrap();
    assert_eq!(store.purge_expired(micros(now)).await.unwrap(), 0);
    assert_eq!(store.purge_expired(short.expires_at).await.unwrap(), 1);
    assert_eq!(store.take_pending(&short.state).await.unwrap(), None);
    assert_eq!(store.take_pending(&long.state).await.unwrap(), Some(long));
}
