//! Integration tests of appforge-billing: one binary, one module per concern. The store suite
//! runs with the `testing` feature (`cargo test -p appforge-billing --all-features`).

#[cfg(all(feature = "stripe-api", feature = "store"))]
mod api;
#[cfg(all(feature = "axum", feature = "store", feature = "stripe-api"))]
mod axum_handler;
#[cfg(all(feature = "stripe-api", feature = "store"))]
mod lifecycle;
#[cfg(feature = "testing")]
mod outside_store;
#[cfg(all(feature = "stripe-api", feature = "store"))]
mod signature;
#[cfg(feature = "testing")]
mod store;
#[cfg(all(feature = "testing", feature = "stripe-api"))]
mod stripe_shapes;
#[cfg(all(feature = "stripe-api", feature = "store"))]
mod support;
