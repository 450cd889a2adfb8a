//! Integration tests of `appforge-preview`: builds, dependency resolution against a registry
//! stand-in (no internet), hostile input, the demo apps.

mod build;
mod demo;
mod hostile;
mod registry;
mod support;
