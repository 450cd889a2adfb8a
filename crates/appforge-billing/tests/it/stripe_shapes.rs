//! What Stripe really sends: Stripe's own example objects (stripe/openapi's `fixtures3.json`,
//! the current API version) wrapped in events of the types billing handles and of some it
//! does not, and a subscription update rendered with API version `2025-08-27.basil`, through
//! every parse path. The handlers run over the same events in the store suite
//! (`stripe_example_events_are_handled`).

use appforge_billing::testing::{
    BASIL_EVENT, Kind, STRIPE_CUSTOMER, STRIPE_INVOICE, STRIPE_INVOICE_SUBSCRIPTION, STRIPE_PRICE,
    STRIPE_SUBSCRIPTION, basil_event, example_events,
};
use appforge_billing::{
    BillingObject, Error, SignatureError, WebhookVerifier, sign_payload, stripe_object,
};
use appforge_core::{Clock, ManualClock};
use serde_json::Value;

use crate::support::secret;

fn verifier() -> (ManualClock, WebhookVerifier) {
    let clock = ManualClock::at(appforge_testing::fixed_now());
    let verifier = WebhookVerifier::builder()
        .secret(secret())
        .clock(clock.shared())
        .build()
        .unwrap();
    (clock, verifier)
}

#[test]
fn every_example_event_reads_into_its_kind() {
    let (clock, verifier) = verifier();
    for example in example_events(1_721_954_100) {
        let header = sign_payload(&secret(), clock.now().timestamp(), example.body.as_bytes());
        let event = verifier
            .verify_billing_event(example.body.as_bytes(), Some(&header))
            .unwrap_or_else(|e| panic!("{}: {e}", example.event_type));
        assert_eq!(event.id(), example.id);
        assert_eq!(event.event_type(), example.event_type);
        assert_eq!(
            Kind::of(&event.object),
            Some(example.kind),
            "{}: {:?}",
            example.event_type,
            event.object
        );
    }
}

#[test]
fn the_example_objects_read_the_fields_billing_keeps() {
    let (clock, verifier) = verifier();
    let events = example_events(1_721_954_100);
    let read = |event_type: &str| {
        let example = events.iter().find(|e| e.event_type == event_type).unwrap();
        let header = sign_payload(&secret(), clock.now().timestamp(), example.body.as_bytes());
        verifier
            .verify_billing_event(example.body.as_bytes(), Some(&header))
            .unwrap()
            .object
    };
    let BillingObject::SubscriptionChanged(sub) = read("customer.subscription.updated") else {
        panic!("not a subscription");
    };
    assert_eq!(sub.id, STRIPE_SUBSCRIPTION);
    assert_eq!(sub.customer, STRIPE_CUSTOMER);
    assert_eq!(
        (sub.status.as_str(), sub.cancel_at_period_end),
        ("active", true)
    );
    assert_eq!(sub.items.len(), 1);
    assert_eq!(sub.items[0].price_id, STRIPE_PRICE);
    assert_eq!(sub.items[0].quantity, Some(1));
    let BillingObject::InvoicePaymentFailed(invoice) = read("invoice.payment_failed") else {
        panic!("not an invoice");
    };
    assert_eq!(invoice.id.as_deref(), Some(STRIPE_INVOICE));
    assert_eq!(invoice.customer.as_deref(), Some(STRIPE_CUSTOMER));
    assert_eq!(
        invoice.subscription.as_deref(),
        Some(STRIPE_INVOICE_SUBSCRIPTION)
    );
    assert_eq!((invoice.amount_due, invoice.amount_paid), (1000, 0));
    let BillingObject::CheckoutSessionCompleted(session) = read("checkout.session.completed")
    else {
        panic!("not a checkout session");
    };
    assert_eq!((session.customer, session.subscription), (None, None));
}

/// async-stripe's parser, through `verify_event`, over every example: none fails.
#[test]
fn verify_event_reads_every_example() {
    let (clock, verifier) = verifier();
    for example in example_events(1_721_954_100) {
        let header = sign_payload(&secret(), clock.now().timestamp(), example.body.as_bytes());
        let event = verifier
            .verify_event(example.body.as_bytes(), Some(&header))
            .unwrap_or_else(|e| panic!("{}: {e}", example.event_type));
        assert_eq!(event.id(), example.id);
        assert_eq!(event.event_type(), example.event_type);
        let object: Value = serde_json::from_str(event.object_json()).unwrap();
        assert!(object["id"].is_string(), "{}", example.event_type);
        if example.id == BASIL_EVENT {
            assert!(event.typed().is_none());
            assert!(event.typed_error().is_some());
        } else {
            // The current version's objects are read by async-stripe's types too.
            let typed = event
                .typed()
                .unwrap_or_else(|| panic!("{}: {:?}", example.event_type, event.typed_error()));
            assert_eq!(typed.id.as_str(), example.id);
            assert_eq!(event.typed_error(), None);
        }
    }
}

/// `stripe_object` reads each handled example into async-stripe's full type.
#[test]
fn stripe_object_reads_every_handled_example() {
    for example in example_events(1_721_954_100) {
        if example.id == BASIL_EVENT {
            continue;
        }
        let read = match example.kind {
            Kind::Checkout => {
                stripe_object::<stripe_checkout::CheckoutSession>(&example.body).map(|_| ())
            }
            Kind::Subscription | Kind::TrialWillEnd => {
                stripe_object::<stripe_billing::Subscription>(&example.body).map(|_| ())
            }
            Kind::InvoicePaid | Kind::InvoiceFailed => {
                stripe_object::<stripe_billing::Invoice>(&example.body).map(|_| ())
            }
            Kind::Unhandled => continue,
        };
        read.unwrap_or_else(|e| panic!("{}: {e}", example.event_type));
    }
}

/// The `2025-08-27.basil` subscription update: async-stripe's types cannot read it (they
/// require `billing_schedules`), yet neither billing's parse nor `verify_event` fails on it.
#[test]
fn a_basil_subscription_update_is_read() {
    let (clock, verifier) = verifier();
    let body = basil_event();
    let header = sign_payload(&secret(), clock.now().timestamp(), body.as_bytes());
    assert!(
        stripe_object::<stripe_billing::Subscription>(&body).is_err(),
        "async-stripe's types cannot read this version"
    );

    let event = verifier
        .verify_event(body.as_bytes(), Some(&header))
        .expect("verify_event does not fail on what Stripe sends");
    assert_eq!(event.id(), BASIL_EVENT);
    assert_eq!(event.event_type(), "customer.subscription.updated");
    assert_eq!(event.api_version(), Some("2025-08-27.basil"));
    assert_eq!(event.created(), 1_758_919_058);
    assert!(event.typed().is_none());
    assert!(
        event.typed_error().unwrap().contains("could not parse"),
        "{:?}",
        event.typed_error()
    );
    let object: Value = serde_json::from_str(event.object_json()).unwrap();
    assert_eq!(object["id"], crate::support::SUB);
    assert!(event.into_typed().is_none());

    let billing = verifier
        .verify_billing_event(body.as_bytes(), Some(&header))
        .unwrap();
    let BillingObject::SubscriptionChanged(sub) = billing.object else {
        panic!("{:?}", billing.object);
    };
    assert_eq!(sub.id, crate::support::SUB);
    assert_eq!(sub.items[0].price_id, crate::support::PRO_MONTHLY);
    assert_eq!(
        (
            sub.items[0].current_period_start,
            sub.items[0].current_period_end
        ),
        (1_758_573_442, 1_761_251_842)
    );
}

/// `verify_event` still refuses what is not a signed Stripe event.
#[test]
fn verify_event_refuses_forgeries_and_non_events() {
    let (clock, verifier) = verifier();
    let body = basil_event();
    let header = sign_payload(&secret(), clock.now().timestamp(), body.as_bytes());
    assert!(matches!(
        verifier.verify_event(b"{}", Some(&header)),
        Err(Error::Signature(SignatureError::Mismatch))
    ));
    let not_an_event = br#"{"hello":"world"}"#;
    let header = sign_payload(&secret(), clock.now().timestamp(), not_an_event);
    assert!(matches!(
        verifier.verify_event(not_an_event, Some(&header)),
        Err(Error::Parse(_))
    ));
}
