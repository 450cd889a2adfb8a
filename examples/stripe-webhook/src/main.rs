//! Verifies Stripe webhooks on `http://127.0.0.1:3002/stripe/webhook`.
//!
//! ```text
//! STRIPE_WEBHOOK_SECRET=whsec_... cargo run -p appforge-example-stripe-webhook
//! # in another terminal, with the Stripe CLI:
//! stripe listen --forward-to 127.0.0.1:3002/stripe/webhook   # prints the whsec_ to use
//! stripe trigger customer.subscription.updated
//! ```

// A command-line program: the address goes to stdout.
#![allow(clippy::print_stdout)]

use appforge_billing::WebhookVerifier;
use appforge_core::SecretString;
use appforge_example_stripe_webhook::app;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("STRIPE_WEBHOOK_SECRET")
        .map_err(|_| "set STRIPE_WEBHOOK_SECRET (whsec_...) to the endpoint's signing secret")?;
    let verifier = WebhookVerifier::builder()
        .secret(SecretString::from(secret))
        .build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3002").await?;
    println!(
        "listening on http://{}/stripe/webhook",
        listener.local_addr()?
    );
    axum::serve(listener, app(verifier)).await?;
    Ok(())
}
