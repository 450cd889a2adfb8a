//! `Stripe-Signature` verification: every check, against an injected clock.

use std::time::Duration;

use appforge_billing::{SignatureError, WebhookVerifier, sign_payload};
use appforge_core::{Clock, ManualClock, SecretString};

use crate::support::{event_fixture, secret};

fn setup() -> (ManualClock, WebhookVerifier, String) {
    let clock = ManualClock::at(appforge_testing::fixed_now());
    let verifier = WebhookVerifier::builder()
        .secret(secret())
        .clock(clock.shared())
        .build()
        .unwrap();
    (
        clock,
        verifier,
        event_fixture("03-customer.subscription.updated-pro"),
    )
}

fn now(clock: &ManualClock) -> i64 {
    clock.now().timestamp()
}

#[test]
fn a_valid_signature_passes() {
    let (clock, verifier, body) = setup();
    let header = sign_payload(&secret(), now(&clock), body.as_bytes());
    assert_eq!(
        verifier.verify(body.as_bytes(), Some(&header)),
        Ok(now(&clock))
    );
}

#[test]
fn a_tampered_body_fails() {
    let (clock, verifier, body) = setup();
    let header = sign_payload(&secret(), now(&clock), body.as_bytes());
    let tampered = body.replace("\"active\"", "\"canceled\"");
    assert_ne!(tampered, body);
    assert_eq!(
        verifier.verify(tampered.as_bytes(), Some(&header)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_wrong_secret_fails() {
    let (clock, verifier, body) = setup();
    let header = sign_payload(
        &SecretString::from("whsec_other"),
        now(&clock),
        body.as_bytes(),
    );
    assert_eq!(
        verifier.verify(body.as_bytes(), Some(&header)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn the_second_of_two_secrets_passes_during_rotation() {
    let (clock, _, body) = setup();
    let new = SecretString::from("whsec_new_rotated");
    let verifier = WebhookVerifier::builder()
        .secret(secret())
        .secret(new.clone())
        .clock(clock.shared())
        .build()
        .unwrap();
    let header = sign_payload(&new, now(&clock), body.as_bytes());
    assert!(verifier.verify(body.as_bytes(), Some(&header)).is_ok());
    let old = sign_payload(&secret(), now(&clock), body.as_bytes());
    assert!(verifier.verify(body.as_bytes(), Some(&old)).is_ok());
}

#[test]
fn several_v1_with_the_valid_one_last_passes() {
    let (clock, verifier, body) = setup();
    let valid = sign_payload(&secret(), now(&clock), body.as_bytes());
    let valid_sig = valid.split_once(",v1=").unwrap().1;
    let header = format!(
        "t={},v1={},v1={},v0={},v1={valid_sig}",
        now(&clock),
        "0".repeat(64),
        "not-hex",
        "ab".repeat(32)
    );
    assert!(verifier.verify(body.as_bytes(), Some(&header)).is_ok());
}

#[test]
fn only_v0_fails() {
    let (clock, verifier, body) = setup();
    let valid = sign_payload(&secret(), now(&clock), body.as_bytes());
    let sig = valid.split_once(",v1=").unwrap().1;
    let header = format!("t={},v0={sig}", now(&clock));
    assert_eq!(
        verifier.verify(body.as_bytes(), Some(&header)),
        Err(SignatureError::NoV1Signature)
    );
}

#[test]
fn a_missing_header_fails() {
    let (_, verifier, body) = setup();
    assert_eq!(
        verifier.verify(body.as_bytes(), None),
        Err(SignatureError::MissingHeader)
    );
}

#[test]
fn malformed_headers_fail() {
    let (clock, verifier, body) = setup();
    let sig = "ab".repeat(32);
    for header in [
        String::new(),
        "garbage".to_owned(),
        format!("v1={sig}"),
        format!("t=soon,v1={sig}"),
        format!("t={},t={},v1={sig}", now(&clock), now(&clock)),
        format!("t={};v1={sig}", now(&clock)),
    ] {
        assert_eq!(
            verifier.verify(body.as_bytes(), Some(&header)),
            Err(SignatureError::MalformedHeader),
            "{header:?}"
        );
    }
}

#[test]
fn a_timestamp_300_s_old_passes_and_301_s_fails() {
    let (clock, verifier, body) = setup();
    let signed_at = now(&clock);
    let header = sign_payload(&secret(), signed_at, body.as_bytes());
    clock.advance(Duration::from_secs(300));
    assert_eq!(
        verifier.verify(body.as_bytes(), Some(&header)),
        Ok(signed_at)
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        verifier.verify(body.as_bytes(), Some(&header)),
        Err(SignatureError::OutsideTolerance {
            age_secs: 301,
            tolerance_secs: 300
        })
    );
}

#[test]
fn a_timestamp_from_the_future_is_held_to_the_same_tolerance() {
    let (clock, verifier, body) = setup();
    let header = sign_payload(&secret(), now(&clock) + 301, body.as_bytes());
    assert!(matches!(
        verifier.verify(body.as_bytes(), Some(&header)),
        Err(SignatureError::OutsideTolerance { age_secs: 301, .. })
    ));
}

#[test]
fn the_tolerance_is_a_setting() {
    let (clock, _, body) = setup();
    let verifier = WebhookVerifier::builder()
        .secret(secret())
        .tolerance(Duration::from_secs(10))
        .clock(clock.shared())
        .build()
        .unwrap();
    let header = sign_payload(&secret(), now(&clock), body.as_bytes());
    clock.advance(Duration::from_secs(11));
    assert!(matches!(
        verifier.verify(body.as_bytes(), Some(&header)),
        Err(SignatureError::OutsideTolerance {
            tolerance_secs: 10,
            ..
        })
    ));
}

#[test]
fn an_oversized_body_fails_before_anything_else() {
    let (clock, _, body) = setup();
    let verifier = WebhookVerifier::builder()
        .secret(secret())
        .max_body(1024)
        .clock(clock.shared())
        .build()
        .unwrap();
    let header = sign_payload(&secret(), now(&clock), body.as_bytes());
    assert_eq!(
        verifier.verify(body.as_bytes(), Some(&header)),
        Err(SignatureError::BodyTooLarge {
            size: body.len(),
            limit: 1024
        })
    );
    assert!(matches!(
        verifier.verify(body.as_bytes(), None),
        Err(SignatureError::BodyTooLarge { .. })
    ));
}

#[test]
fn errors_never_name_a_secret() {
    let (clock, verifier, body) = setup();
    let header = sign_payload(
        &SecretString::from("whsec_other"),
        now(&clock),
        body.as_bytes(),
    );
    let err = verifier.verify(body.as_bytes(), Some(&header)).unwrap_err();
    let shown = format!("{err} {err:?} {verifier:?}");
    assert!(!shown.contains("whsec"), "{shown}");
}

#[test]
fn building_without_a_secret_is_refused() {
    assert!(WebhookVerifier::builder().build().is_err());
    assert!(
        WebhookVerifier::builder()
            .secret(SecretString::from(""))
            .build()
            .is_err()
    );
}

#[test]
fn verified_events_parse_with_both_parsers() {
    let (clock, verifier, body) = setup();
    let header = sign_payload(&secret(), now(&clock), body.as_bytes());
    let generic = verifier
        .verify_event(body.as_bytes(), Some(&header))
        .unwrap();
    assert_eq!(generic.id(), "evt_1RqA8pKfT7xYw2QeSubActive");
    assert_eq!(generic.api_version(), Some("2026-09-30.endive"));
    let typed = generic.typed().expect("async-stripe reads its own version");
    assert_eq!(typed.id.as_str(), "evt_1RqA8pKfT7xYw2QeSubActive");
    assert!(matches!(
        typed.data.object,
        appforge_billing::stripe_webhook::EventObject::CustomerSubscriptionUpdated(_)
    ));
    let billing = verifier
        .verify_billing_event(body.as_bytes(), Some(&header))
        .unwrap();
    assert_eq!(billing.id(), "evt_1RqA8pKfT7xYw2QeSubActive");
    assert_eq!(billing.event_type(), "customer.subscription.updated");
    assert_eq!(billing.api_version(), Some("2026-09-30.endive"));
    let appforge_billing::BillingObject::SubscriptionChanged(sub) = billing.object else {
        panic!("{:?}", billing.object);
    };
    assert_eq!(sub.id.as_str(), "sub_1RqA8mKfT7xYw2Qe3LzN5bVd");
    // A forged body is refused by both.
    assert!(verifier.verify_event(b"{}", Some(&header)).is_err());
    assert!(verifier.verify_billing_event(b"{}", Some(&header)).is_err());
}
