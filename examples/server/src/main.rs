//! The `appforge-server` binary.

fn main() {}
