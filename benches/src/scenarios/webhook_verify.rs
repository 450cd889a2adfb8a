//! `webhook-verify`: `Stripe-Signature` verification plus async-stripe parsing, per payload.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use appforge_billing::{WebhookVerifier, sign_payload};
use appforge_core::{Clock, SecretString, SystemClock};

use crate::report::Report;

/// Flags of the `webhook-verify` scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The event payload to sign and verify (for example
    /// `benches/fixtures/customer.subscription.updated.json`).
    #[arg(long)]
    payload: PathBuf,
    /// How many signed copies to verify and parse.
    #[arg(long, default_value_t = 100_000)]
    n: u64,
}

pub(crate) fn run(args: &Args) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
    let body = std::fs::read(&args.payload)?;
    let secret = SecretString::from("whsec_bench_0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    let verifier = WebhookVerifier::builder().secret(secret.clone()).build()?;
    // The signatures are computed before timing: Stripe's side of the exchange. Copies carry
    // distinct timestamps (within the tolerance), so each has its own signature.
    let now = SystemClock.now().timestamp();
    let headers: Vec<String> = (0..args.n.min(1024))
        .map(|i| sign_payload(&secret, now - i64::try_from(i % 200).unwrap_or(0), &body))
        .collect();
    let start = Instant::now();
    let mut parsed = 0u64;
    for i in 0..args.n {
        let header = &headers[usize::try_from(i).unwrap_or(0) % headers.len()];
        let event = verifier.verify_event(black_box(&body), Some(header))?;
        parsed += u64::from(!event.id.as_str().is_empty());
        black_box(event);
    }
    let elapsed = start.elapsed();
    Ok(Report::new("webhook-verify", args.n, elapsed)
        .with("payload_bytes", body.len())
        .with("parsed", parsed)
        .with("threads", 1))
}
