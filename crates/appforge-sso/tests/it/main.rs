//! Integration tests of appforge-sso: the login flow against an OpenID provider stand-in,
//! and the store conformance suite on every backend.

mod idp;
mod login;
mod stores;
