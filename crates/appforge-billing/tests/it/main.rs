//! Integration tests of appforge-billing: one binary, one module per concern.

mod api;
#[cfg(feature = "axum")]
mod axum_handler;
mod lifecycle;
mod signature;
mod store;
mod stripe_shapes;
mod support;
