//! Integration tests of appforge-quota: one behavioural suite, run on every backend.

mod suite;

mod memory {
    use appforge_quota::{AnyUsageStore, MemoryUsageStore};

    async fn store() -> (AnyUsageStore, super::suite::Guard) {
        (MemoryUsageStore::new().into(), Box::new(()))
    }

    crate::backend_suite!(store);
}
