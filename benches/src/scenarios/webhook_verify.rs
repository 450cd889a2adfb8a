//! `webhook-verify`: `Stripe-Signature` verification plus parsing into billing's reduced
//! types (the fields its handlers read), the path `Billing::handle_webhook` takes before the
//! ledger. `parsed` counts the events read into a handled kind. For comparison it also times
//! `verify_event` (async-stripe-webhook's generic parser); `webhook_crate_typed` counts the
//! copies async-stripe's types could read (none for a payload of another API version than
//! theirs, such as a `2025-08-27.basil` event: `verify_event` then returns the event untyped,
//! and the scenario goes on).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use appforge_billing::{BillingObject, WebhookVerifier, sign_payload};
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
    /// How many threads share the N copies (webhook deliveries are independent requests).
    #[arg(long, default_value_t = 1)]
    threads: u64,
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
    let threads = args.threads.max(1);
    let start = Instant::now();
    let parsed = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (verifier, body, headers) = (&verifier, &body, &headers);
                let share = args.n / threads + u64::from(t < args.n % threads);
                scope.spawn(move || {
                    let mut parsed = 0u64;
                    for i in 0..share {
                        let header = &headers[usize::try_from(i).unwrap_or(0) % headers.len()];
                        let event = verifier.verify_billing_event(black_box(body), Some(header))?;
                        parsed += u64::from(!matches!(
                            event.object,
                            BillingObject::Unparseable(_) | BillingObject::Unhandled
                        ));
                        black_box(event);
                    }
                    Ok::<u64, appforge_billing::Error>(parsed)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a verify thread panicked"))
            .sum::<Result<u64, _>>()
    })?;
    let elapsed = start.elapsed();
    // The signature check alone, single-threaded, for the breakdown.
    let sample = (args.n / 10).max(1);
    let verify_start = Instant::now();
    for i in 0..sample {
        let header = &headers[usize::try_from(i).unwrap_or(0) % headers.len()];
        black_box(verifier.verify(black_box(&body), Some(header))?);
    }
    #[allow(clippy::cast_precision_loss)] // a rate
    let verify_only = sample as f64 / verify_start.elapsed().as_secs_f64();
    // For comparison: verification then async-stripe-webhook's generic parser (every event
    // type, through a dynamic JSON value). A payload its types cannot read is returned
    // untyped, not as an error.
    let generic_start = Instant::now();
    let mut typed = 0u64;
    for i in 0..sample {
        let header = &headers[usize::try_from(i).unwrap_or(0) % headers.len()];
        let event = verifier.verify_event(black_box(&body), Some(header))?;
        typed += u64::from(event.typed().is_some());
        black_box(event);
    }
    #[allow(clippy::cast_precision_loss)] // a rate
    let generic = sample as f64 / generic_start.elapsed().as_secs_f64();
    Ok(Report::new("webhook-verify", args.n, elapsed)
        .with("verify_only_ops_per_s", verify_only)
        .with("verify_and_webhook_crate_parse_ops_per_s", generic)
        .with("webhook_crate_sample", sample)
        .with("webhook_crate_typed", typed)
        .with("payload_bytes", body.len())
        .with("parsed", parsed)
        .with("threads", threads))
}
