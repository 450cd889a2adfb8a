//! A plan limit on a route of a tiny Axum app, with `appforge-quota`'s in-memory store.
//!
//! ```text
//! cargo run -p appforge-example-quota-axum
//! # in another terminal: the first 5 answer 200, the 6th 429 with the quota's status
//! for i in 1 2 3 4 5 6; do
//!   curl -s -X POST http://127.0.0.1:3001/generate -H 'x-user-id: 0196f8c2-0000-7000-8000-000000000001'; echo
//! done
//! ```
//!
//! The route and the header that names the user are in `src/lib.rs` ([`app`]); usage lives in
//! memory, so it starts again with the process.

// A command-line program: the address goes to stdout.
#![allow(clippy::print_stdout)]

use appforge_example_quota_axum::app;
use appforge_quota::{MemoryUsageStore, Quota};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Every user starts on the Free plan: 5 generations a day.
    let quota = Quota::new(MemoryUsageStore::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(quota)).await
}
