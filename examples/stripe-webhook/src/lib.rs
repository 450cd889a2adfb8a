//! A Stripe webhook endpoint on Axum: `POST /stripe/webhook` verifies the `Stripe-Signature`
//! of each delivery with [`StripeEvent`] (feature `webhook` + `axum` of `appforge-billing`)
//! and handles `customer.subscription.updated`. A forged or unsigned delivery never reaches
//! the handler: it is answered `400` with the reason.

// The example shows what it received on stdout.
#![allow(clippy::print_stdout)]

use appforge_billing::{BillingObject, StripeEvent, WebhookVerifier};
use axum::Router;
use axum::routing::post;

/// The app: one route, the verifier as its state.
pub fn app(verifier: WebhookVerifier) -> Router {
    Router::new()
        .route("/stripe/webhook", post(webhook))
        .with_state(verifier)
}

/// Runs only for verified deliveries; answers what it did (Stripe reads only the status).
async fn webhook(StripeEvent(event): StripeEvent) -> String {
    let done = match (&event.object, event.event_type()) {
        (BillingObject::SubscriptionChanged(sub), "customer.subscription.updated") => {
            let item = sub.items.first();
            format!(
                "subscription {} of {} is {} on {} ({} seats)",
                sub.id,
                sub.customer,
                sub.status,
                item.map_or("no price", |i| i.price_id.as_str()),
                item.and_then(|i| i.quantity).unwrap_or(1),
            )
        }
        (_, other) => format!("{} {other}: not handled here", event.id()),
    };
    println!("{done}");
    done
}
