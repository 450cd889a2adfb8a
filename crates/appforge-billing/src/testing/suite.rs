//! The behavioural suite every store runs: the ledger, exactly-once handling, ordering,
//! grace periods, notices. One generic body per behaviour.

use std::time::Duration;

use appforge_core::{Clock, Interval};

use super::{
    BASIL_EVENT, CUSTOMER, Harness, Kind, STRIPE_CUSTOMER, STRIPE_INVOICE,
    STRIPE_INVOICE_SUBSCRIPTION, STRIPE_PRICE, STRIPE_SUBSCRIPTION, SUB, event_fixture,
    example_events, sign, user,
};
use crate::{BillingNotice, BillingStore, EventStatus, PLAN_SYNC_SETTLING, WebhookOutcome};

/// The store suite: processed events are recorded in the ledger.
pub async fn processed_events_are_recorded_in_the_ledger<S: BillingStore>(h: Harness<S>) {
    let outcome = h.deliver("01-checkout.session.completed").await.unwrap();
    assert_eq!(
        outcome,
        WebhookOutcome::Processed {
            event_id: "evt_1RqA8oKfT7xYw2QeCheckDone".into()
        }
    );
    let row = h
        .billing
        .store()
        .event("evt_1RqA8oKfT7xYw2QeCheckDone")
        .await
        .unwrap()
        .expect("ledger row");
    assert_eq!(row.status, EventStatus::Processed);
    assert_eq!(row.event_type, "checkout.session.completed");
    assert_eq!(row.api_version.as_deref(), Some("2026-09-30.endive"));
    assert_eq!(row.created.timestamp(), 1_772_323_205);
    assert_eq!(row.attempts, 1);
    assert_eq!(row.error, None);
    assert_eq!(row.received_at, h.clock.now());
    assert_eq!(row.processed_at, Some(h.clock.now()));
    assert_eq!(row.payload, event_fixture("01-checkout.session.completed"));
    // The customer is linked to the user both ways.
    let store = h.billing.store();
    assert_eq!(
        store.user_of_customer(CUSTOMER).await.unwrap(),
        Some(user())
    );
    assert_eq!(
        store.customer_of_user(user()).await.unwrap().as_deref(),
        Some(CUSTOMER)
    );
}

/// The store suite: a sequential duplicate changes nothing.
pub async fn a_sequential_duplicate_changes_nothing<S: BillingStore>(h: Harness<S>) {
    h.deliver("01-checkout.session.completed").await.unwrap();
    let first = h
        .deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap();
    assert!(matches!(first, WebhookOutcome::Processed { .. }));
    let writes = h.plan_writes();
    let before = h.billing.store().subscription(SUB).await.unwrap().unwrap();
    h.clock.advance(Duration::from_secs(30));
    let second = h
        .deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap();
    assert!(
        matches!(second, WebhookOutcome::Duplicate { .. }),
        "{second:?}"
    );
    assert_eq!(h.plan_writes(), writes);
    let after = h.billing.store().subscription(SUB).await.unwrap().unwrap();
    assert_eq!(after, before);
    let row = h
        .billing
        .store()
        .event("evt_1RqA8pKfT7xYw2QeSubActive")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.attempts, 1);
}

/// The store suite: ten concurrent duplicates apply once.
pub async fn ten_concurrent_duplicates_apply_once<S: BillingStore + 'static>(h: Harness<S>) {
    h.deliver("01-checkout.session.completed").await.unwrap();
    let writes = h.plan_writes();
    let body = event_fixture("03-customer.subscription.updated-pro");
    let header = sign(&h.clock, &body);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let billing = h.billing.clone();
            let body = body.clone();
            let header = header.clone();
            tokio::spawn(
                async move { billing.handle_webhook(body.as_bytes(), Some(&header)).await },
            )
        })
        .collect();
    let mut processed = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            WebhookOutcome::Processed { .. } => processed += 1,
            WebhookOutcome::Duplicate { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(processed, 1);
    assert_eq!(h.plan_writes(), writes + 1, "one plan change");
    assert_eq!(h.quota_plan().await, "pro");
    let row = h
        .billing
        .store()
        .event("evt_1RqA8pKfT7xYw2QeSubActive")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.status, row.attempts), (EventStatus::Processed, 1));
}

/// The store suite: a failed handler is recorded and its retry processed.
pub async fn a_failed_handler_is_recorded_and_its_retry_processed<S: BillingStore>(h: Harness<S>) {
    // A catalogue that does not know the subscription's price: the handler fails.
    h.plans.set_prices(Vec::new());
    let err = h
        .deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap_err();
    assert!(!matches!(err, crate::Error::Signature(_)));
    assert!(err.is_retryable());
    let store = h.billing.store();
    let row = store
        .event("evt_1RqA8pKfT7xYw2QeSubActive")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, EventStatus::Failed);
    assert_eq!(row.attempts, 1);
    assert!(
        row.error
            .as_deref()
            .unwrap()
            .contains("price_1RqA2bKfT7xYw2QeP7oMonthly")
    );
    assert!(
        store.subscription(SUB).await.unwrap().is_none(),
        "nothing applied"
    );

    h.deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap_err();
    let row = store
        .event("evt_1RqA8pKfT7xYw2QeSubActive")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.status, row.attempts), (EventStatus::Failed, 2));

    h.plans.set_prices(super::prices());
    let outcome = h
        .deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap();
    assert!(matches!(outcome, WebhookOutcome::Processed { .. }));
    let row = store
        .event("evt_1RqA8pKfT7xYw2QeSubActive")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.status, row.attempts), (EventStatus::Processed, 3));
    assert_eq!(row.error, None);
    assert_eq!(store.subscription(SUB).await.unwrap().unwrap().plan, "pro");
    assert_eq!(h.quota_plan().await, "pro");
}

/// The store suite: unknown and unparseable events are stored and acknowledged.
pub async fn unknown_and_unparseable_events_are_stored_and_acknowledged<S: BillingStore>(
    h: Harness<S>,
) {
    let store = h.billing.store();
    for (fixture, id, reason) in [
        (
            "unknown-type",
            "evt_1RzZ9zKfT7xYw2QeFutureType",
            "not handled",
        ),
        (
            "customer.created-unhandled",
            "evt_1RqA7zKfT7xYw2QeCustCreate",
            "not handled",
        ),
        (
            "unparseable-subscription",
            "evt_1RqA9aKfT7xYw2QeBrokenObj",
            "unparseable",
        ),
    ] {
        let outcome = h.deliver(fixture).await.unwrap();
        let WebhookOutcome::Skipped {
            event_id,
            reason: why,
        } = outcome
        else {
            panic!("{fixture}: {outcome:?}");
        };
        assert_eq!(event_id, id);
        assert!(why.contains(reason), "{fixture}: {why}");
        let row = store.event(id).await.unwrap().unwrap();
        assert_eq!(row.status, EventStatus::Skipped);
        assert_eq!(row.payload, event_fixture(fixture));
        assert!(matches!(
            h.deliver(fixture).await.unwrap(),
            WebhookOutcome::Duplicate { .. }
        ));
    }
    assert!(store.subscription(SUB).await.unwrap().is_none());
    assert_eq!(h.plan_writes(), 0);
}

/// The store suite: an older copy never overwrites a newer one.
pub async fn an_older_copy_never_overwrites_a_newer_one<S: BillingStore>(h: Harness<S>) {
    h.deliver("01-checkout.session.completed").await.unwrap();
    h.deliver("07-customer.subscription.updated-team")
        .await
        .unwrap();
    h.deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap();
    h.deliver("02-customer.subscription.created").await.unwrap();
    let sub = h.billing.store().subscription(SUB).await.unwrap().unwrap();
    assert_eq!((sub.plan.as_str(), sub.quantity), ("team", 3));
    assert_eq!(sub.status, "active");
    assert_eq!(sub.user_id, Some(user()));
    h.clock.set("2026-04-10T00:00:00Z".parse().unwrap());
    assert_eq!(h.billing.sync_user(user()).await.unwrap(), "team");
    assert_eq!(h.quota_plan().await, "team");
}

/// The store suite: a subscription before its checkout is adopted.
pub async fn a_subscription_before_its_checkout_is_adopted<S: BillingStore>(h: Harness<S>) {
    // The subscription carries no user metadata here: the link comes with the checkout.
    let body = event_fixture("03-customer.subscription.updated-pro").replace(
        "\"appforge_user_id\": \"7d6f0b4e-3a52-4c1e-9f0a-2b8e5d1c9a41\"",
        "\"note\": \"x\"",
    );
    h.clock.set("2026-03-10T00:00:00Z".parse().unwrap());
    let header = sign(&h.clock, &body);
    h.billing
        .handle_webhook(body.as_bytes(), Some(&header))
        .await
        .unwrap();
    let sub = h.billing.store().subscription(SUB).await.unwrap().unwrap();
    assert_eq!(sub.user_id, None);
    assert_eq!(h.plan_writes(), 0);
    h.deliver("01-checkout.session.completed").await.unwrap();
    let sub = h.billing.store().subscription(SUB).await.unwrap().unwrap();
    assert_eq!(sub.user_id, Some(user()));
    assert_eq!(h.quota_plan().await, "pro");
}

/// The store suite: grace period expiry downgrades until paid.
pub async fn grace_period_expiry_downgrades_until_paid<S: BillingStore>(h: Harness<S>) {
    h.clock.set("2026-04-01T00:00:00Z".parse().unwrap());
    for e in [
        "01-checkout.session.completed",
        "02-customer.subscription.created",
        "03-customer.subscription.updated-pro",
    ] {
        h.deliver(e).await.unwrap();
    }
    assert_eq!(h.quota_plan().await, "pro");
    // The payment fails at 01:00; the grace period (3 days) ends 2026-04-04T01:00.
    h.clock.set("2026-04-01T02:00:00Z".parse().unwrap());
    h.deliver("05-invoice.payment_failed").await.unwrap();
    let sub = h.billing.store().subscription(SUB).await.unwrap().unwrap();
    assert!(sub.past_due);
    assert_eq!(
        sub.grace_until,
        Some("2026-04-04T01:00:00Z".parse().unwrap())
    );
    assert_eq!(h.quota_plan().await, "pro", "kept during the grace period");
    let invoice = h
        .billing
        .store()
        .invoice("in_1RrB9pKfT7xYw2QeInv00002")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((invoice.status.as_str(), invoice.amount_paid), ("open", 0));

    h.clock.set("2026-04-04T00:59:59Z".parse().unwrap());
    assert_eq!(h.billing.enforce_grace_periods().await.unwrap(), 0);
    assert_eq!(h.quota_plan().await, "pro");
    h.clock.set("2026-04-04T01:00:00Z".parse().unwrap());
    assert_eq!(h.billing.enforce_grace_periods().await.unwrap(), 1);
    assert_eq!(h.quota_plan().await, "free");
    assert_eq!(h.billing.plan_of(user()).await.unwrap(), "free");

    // A later payment restores the plan.
    h.deliver("06-invoice.paid-retry").await.unwrap();
    let sub = h.billing.store().subscription(SUB).await.unwrap().unwrap();
    assert!(!sub.past_due);
    assert_eq!(sub.grace_until, None);
    assert_eq!(h.quota_plan().await, "pro");
    let invoice = h
        .billing
        .store()
        .invoice("in_1RrB9pKfT7xYw2QeInv00002")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (invoice.status.as_str(), invoice.amount_paid),
        ("paid", 1000)
    );
}

/// The store suite: a late failure after a payment is ignored.
pub async fn a_late_failure_after_a_payment_is_ignored<S: BillingStore>(h: Harness<S>) {
    h.clock.set("2026-04-03T00:00:00Z".parse().unwrap());
    h.deliver("01-checkout.session.completed").await.unwrap();
    h.deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap();
    h.deliver("06-invoice.paid-retry").await.unwrap();
    h.deliver("05-invoice.payment_failed").await.unwrap();
    let sub = h.billing.store().subscription(SUB).await.unwrap().unwrap();
    assert!(!sub.past_due);
    // The invoice keeps its newest state too.
    let invoice = h
        .billing
        .store()
        .invoice("in_1RrB9pKfT7xYw2QeInv00002")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(invoice.status, "paid");
}

/// The store suite: cancel at period end keeps the plan until deleted.
pub async fn cancel_at_period_end_keeps_the_plan_until_deleted<S: BillingStore>(h: Harness<S>) {
    h.clock.set("2026-04-07T00:00:00Z".parse().unwrap());
    for e in [
        "01-checkout.session.completed",
        "03-customer.subscription.updated-pro",
        "07-customer.subscription.updated-team",
        "08-customer.subscription.updated-cancel-at-period-end",
    ] {
        h.deliver(e).await.unwrap();
    }
    let sub = h.billing.store().subscription(SUB).await.unwrap().unwrap();
    assert!(sub.cancel_at_period_end);
    assert_eq!(h.quota_plan().await, "team");
    h.clock.set("2026-05-01T00:00:05Z".parse().unwrap());
    h.deliver("09-customer.subscription.deleted").await.unwrap();
    assert_eq!(h.quota_plan().await, "free");
    let sub = h.billing.store().subscription(SUB).await.unwrap().unwrap();
    assert_eq!(sub.status, "canceled");
}

/// The store suite: trial will end is surfaced to the host.
pub async fn trial_will_end_is_surfaced_to_the_host<S: BillingStore>(h: Harness<S>) {
    let mut notices = h.billing.notices();
    h.clock.set("2026-03-12T00:00:00Z".parse().unwrap());
    h.deliver("customer.subscription.trial_will_end")
        .await
        .unwrap();
    let mut seen = None;
    while let Ok(notice) = notices.try_recv() {
        if let BillingNotice::TrialWillEnd { .. } = notice {
            seen = Some(notice);
        }
    }
    assert_eq!(
        seen,
        Some(BillingNotice::TrialWillEnd {
            user: Some(user()),
            subscription: "sub_1RtT5fKfT7xYw2QeTrialSub1".into(),
            trial_end: Some("2026-03-15T00:00:00Z".parse().unwrap()),
        })
    );
    // A trialing subscription gives the plan.
    assert_eq!(h.quota_plan().await, "pro");
}

/// The store suite: a forged delivery changes nothing.
pub async fn a_forged_delivery_changes_nothing<S: BillingStore>(h: Harness<S>) {
    let body = event_fixture("03-customer.subscription.updated-pro");
    let header = sign(&h.clock, &body);
    let forged = body.replace("\"active\"", "\"trialing\"");
    let err = h
        .billing
        .handle_webhook(forged.as_bytes(), Some(&header))
        .await
        .unwrap_err();
    assert!(matches!(err, crate::Error::Signature(_)));
    assert!(!err.is_retryable());
    assert!(
        h.billing
            .store()
            .event("evt_1RqA8pKfT7xYw2QeSubActive")
            .await
            .unwrap()
            .is_none()
    );
}

/// Checkout, subscription and the Pro plan, as of 2026-04-01; then the payment of 01:00 fails
/// (delivered at 02:00): the grace period (3 days) ends 2026-04-04T01:00.
async fn pro_then_payment_failed<S: BillingStore>(h: &Harness<S>) {
    h.clock.set("2026-04-01T00:00:00Z".parse().unwrap());
    for e in [
        "01-checkout.session.completed",
        "02-customer.subscription.created",
        "03-customer.subscription.updated-pro",
    ] {
        h.deliver(e).await.unwrap();
    }
    h.clock.set("2026-04-01T02:00:00Z".parse().unwrap());
    h.deliver("05-invoice.payment_failed").await.unwrap();
    assert_eq!(h.quota_plan().await, "pro", "kept during the grace period");
}

async fn grace_until<S: BillingStore>(h: &Harness<S>) -> Option<chrono::DateTime<chrono::Utc>> {
    let sub = h.billing.store().subscription(SUB).await.unwrap().unwrap();
    assert!(sub.past_due);
    sub.grace_until
}

/// The store suite: the periodic pass downgrades when the grace period ends.
pub async fn the_periodic_pass_downgrades_when_the_grace_period_ends<S: BillingStore>(
    h: Harness<S>,
) {
    pro_then_payment_failed(&h).await;
    let report = h.billing.run_periodic_pass().await.unwrap();
    assert_eq!(
        (
            report.grace_enforced,
            report.plan_syncs_completed,
            report.errors
        ),
        (0, 0, 0)
    );
    assert_eq!(h.quota_plan().await, "pro");

    h.clock.advance(Duration::from_secs(4 * 24 * 3600));
    let report = h.billing.run_periodic_pass().await.unwrap();
    assert_eq!(
        (
            report.grace_enforced,
            report.plan_syncs_completed,
            report.errors
        ),
        (1, 0, 0)
    );
    assert_eq!(h.quota_plan().await, "free");

    // Enforced once: later passes leave the user alone.
    let writes = h.plan_writes();
    let report = h.billing.run_periodic_pass().await.unwrap();
    assert_eq!(report.grace_enforced, 0);
    assert_eq!(h.plan_writes(), writes);

    // A payment restores the plan; a later failure starts a new grace period, enforced again.
    h.deliver("06-invoice.paid-retry").await.unwrap();
    assert_eq!(h.quota_plan().await, "pro");
}

/// The store suite: a repeated payment failure keeps the first deadline.
pub async fn a_repeated_payment_failure_keeps_the_first_deadline<S: BillingStore>(h: Harness<S>) {
    pro_then_payment_failed(&h).await;
    let first = Some("2026-04-04T01:00:00Z".parse().unwrap());
    assert_eq!(grace_until(&h).await, first);

    // Stripe retries the payment a day later, and it fails again.
    let retry = event_fixture("05-invoice.payment_failed")
        .replace(
            "evt_1RrB9qKfT7xYw2QeInvFail01",
            "evt_1RrB9qKfT7xYw2QeInvFail02",
        )
        .replace("\"created\": 1775005200", "\"created\": 1775091600");
    h.clock.set("2026-04-02T01:00:05Z".parse().unwrap());
    assert!(matches!(
        h.deliver_body(&retry).await.unwrap(),
        WebhookOutcome::Processed { .. }
    ));
    assert_eq!(grace_until(&h).await, first, "the first deadline stands");

    h.clock.set("2026-04-04T01:00:00Z".parse().unwrap());
    let report = h.billing.run_periodic_pass().await.unwrap();
    assert_eq!(report.grace_enforced, 1);
    assert_eq!(h.quota_plan().await, "free");
}

/// The subscription update is committed, then its delivery is cut short while it sets the
/// plan: the event is processed, the plan is still Free, the change is pending.
async fn a_plan_change_cut_short<S: BillingStore>(h: &Harness<S>) {
    h.deliver("01-checkout.session.completed").await.unwrap();
    h.deliver_cut_short("03-customer.subscription.updated-pro")
        .await;
    let store = h.billing.store();
    let row = store
        .event("evt_1RqA8pKfT7xYw2QeSubActive")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, EventStatus::Processed);
    assert_eq!(
        h.quota_plan().await,
        "free",
        "the plan change was cut short"
    );
    let pending = store.pending_plan_syncs(h.clock.now(), 10).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].user_id, user());
    assert_eq!(pending[0].event_id, "evt_1RqA8pKfT7xYw2QeSubActive");
    assert_eq!(pending[0].pending_since, h.clock.now());
}

async fn nothing_pending<S: BillingStore>(h: &Harness<S>) -> bool {
    let later = h.clock.now() + chrono::Duration::days(1);
    h.billing
        .store()
        .pending_plan_syncs(later, 10)
        .await
        .unwrap()
        .is_empty()
}

/// The store suite: a plan change cut short is completed by a redelivery.
pub async fn a_plan_change_cut_short_is_completed_by_a_redelivery<S: BillingStore>(h: Harness<S>) {
    a_plan_change_cut_short(&h).await;
    // Stripe did not get its answer: it delivers the event again, a minute later. (A
    // duplicate delivered at once leaves the change to the delivery that may still run.)
    let outcome = h
        .deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap();
    assert!(matches!(outcome, WebhookOutcome::Duplicate { .. }));
    assert_eq!(h.quota_plan().await, "free");
    h.clock.advance(Duration::from_secs(60));
    let outcome = h
        .deliver("03-customer.subscription.updated-pro")
        .await
        .unwrap();
    assert!(
        matches!(outcome, WebhookOutcome::Duplicate { .. }),
        "{outcome:?}"
    );
    assert_eq!(h.quota_plan().await, "pro");
    assert!(nothing_pending(&h).await);
}

/// The store suite: a plan change cut short is completed by the periodic pass.
pub async fn a_plan_change_cut_short_is_completed_by_the_periodic_pass<S: BillingStore>(
    h: Harness<S>,
) {
    a_plan_change_cut_short(&h).await;
    // A pass right away leaves the change to its delivery, which may still be running.
    let report = h.billing.run_periodic_pass().await.unwrap();
    assert_eq!(report.plan_syncs_completed, 0);
    assert_eq!(h.quota_plan().await, "free");

    h.clock.advance(PLAN_SYNC_SETTLING + Duration::from_secs(1));
    let report = h.billing.run_periodic_pass().await.unwrap();
    assert_eq!(
        (
            report.plan_syncs_completed,
            report.grace_enforced,
            report.errors
        ),
        (1, 0, 0)
    );
    assert_eq!(h.quota_plan().await, "pro");
    assert!(nothing_pending(&h).await);
    let writes = h.plan_writes();
    let report = h.billing.run_periodic_pass().await.unwrap();
    assert_eq!(report.plan_syncs_completed, 0);
    assert_eq!(h.plan_writes(), writes);
}

/// The store suite: completed plan changes leave nothing pending.
pub async fn completed_plan_changes_leave_nothing_pending<S: BillingStore>(h: Harness<S>) {
    for e in super::LIFECYCLE {
        h.deliver(e).await.unwrap();
    }
    assert!(nothing_pending(&h).await);
}

/// Stripe's example objects (and a basil-era update) through the handlers: every delivery is
/// answered without an error, and the handled ones change what they should.
pub async fn stripe_example_events_are_handled<S: BillingStore>(h: Harness<S>) {
    // The catalogue knows Stripe's example price (as Pro, yearly), and the example customer
    // belongs to the user.
    let mut prices = super::prices();
    prices.push((STRIPE_PRICE.into(), "pro".into(), Interval::Yearly));
    h.plans.set_prices(prices);
    let store = h.billing.store();
    store
        .link_customer(STRIPE_CUSTOMER, user(), h.clock.now())
        .await
        .unwrap();
    let mut notices = h.billing.notices();

    let first_created = h.clock.now().timestamp() - 3600;
    for example in example_events(first_created) {
        let outcome = h
            .deliver_body(&example.body)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", example.event_type));
        assert_eq!(outcome.event_id(), example.id);
        match example.kind {
            Kind::Unhandled => assert!(
                matches!(&outcome, WebhookOutcome::Skipped { reason, .. } if reason.contains("not handled")),
                "{}: {outcome:?}",
                example.event_type
            ),
            _ => assert!(
                matches!(outcome, WebhookOutcome::Processed { .. }),
                "{}: {outcome:?}",
                example.event_type
            ),
        }
        let row = store.event(&example.id).await.unwrap().unwrap();
        assert_ne!(row.status, EventStatus::Failed, "{}", example.event_type);
        assert_eq!(row.payload, example.body);
    }

    // Stripe's subscription, kept with the user linked to its customer.
    let sub = store
        .subscription(STRIPE_SUBSCRIPTION)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sub.user_id, Some(user()));
    assert_eq!(sub.stripe_customer_id, STRIPE_CUSTOMER);
    assert_eq!(
        (sub.plan.as_str(), sub.status.as_str(), sub.quantity),
        ("pro", "active", 1)
    );
    assert_eq!(sub.price_id.as_deref(), Some(STRIPE_PRICE));
    assert!(sub.cancel_at_period_end);
    // Stripe's example cancels at the end of a period that ended in 2000: no plan from it.
    assert_eq!(sub.effective_plan(h.clock.now()), "free");

    // Stripe's invoice, recorded; its payment outcomes reach the subscription its parent names.
    let invoice = store.invoice(STRIPE_INVOICE).await.unwrap().unwrap();
    assert_eq!(
        (
            invoice.status.as_str(),
            invoice.amount_due,
            invoice.amount_paid
        ),
        ("draft", 1000, 0)
    );
    assert_eq!(
        invoice.stripe_subscription_id.as_deref(),
        Some(STRIPE_INVOICE_SUBSCRIPTION)
    );
    let billed = store
        .subscription(STRIPE_INVOICE_SUBSCRIPTION)
        .await
        .unwrap()
        .unwrap();
    assert!(billed.past_due, "the failure came after the payment");
    assert!(billed.grace_until.is_some());

    // The trial's end reached the host.
    let mut trial = None;
    while let Ok(notice) = notices.try_recv() {
        if let BillingNotice::TrialWillEnd { subscription, .. } = notice {
            trial = Some(subscription);
        }
    }
    assert_eq!(trial.as_deref(), Some(STRIPE_SUBSCRIPTION));

    // The basil-era update gave the user Pro through the crate's own subscription.
    let row = store.event(BASIL_EVENT).await.unwrap().unwrap();
    assert_eq!(row.status, EventStatus::Processed);
    assert_eq!(row.api_version.as_deref(), Some("2025-08-27.basil"));
    let basil = store.subscription(SUB).await.unwrap().unwrap();
    assert_eq!((basil.plan.as_str(), basil.user_id), ("pro", Some(user())));
    assert_eq!(h.billing.plan_of(user()).await.unwrap(), "pro");
    assert_eq!(h.quota_plan().await, "pro");
    assert!(nothing_pending(&h).await);
}
