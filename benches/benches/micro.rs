//! Criterion micro-benchmarks; `cargo bench -p appforge-benches`.

use std::hint::black_box;

use appforge_billing::{WebhookVerifier, sign_payload};
use appforge_core::{Clock, SecretString, SystemClock};
use criterion::{Criterion, criterion_group, criterion_main};

fn noop(c: &mut Criterion) {
    c.bench_function("noop", |b| b.iter(|| black_box(1u64) + 1));
}

/// Where the time of `webhook-verify` goes: the signature check alone, then with parsing.
fn webhook(c: &mut Criterion) {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/customer.subscription.updated.json"
    ))
    .expect("the fixture");
    let secret = SecretString::from("whsec_bench_0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    let verifier = WebhookVerifier::builder()
        .secret(secret.clone())
        .build()
        .expect("a verifier");
    let header = sign_payload(&secret, SystemClock.now().timestamp(), &body);
    c.bench_function("webhook_verify", |b| {
        b.iter(|| verifier.verify(black_box(&body), Some(&header)));
    });
    c.bench_function("webhook_verify_and_parse", |b| {
        b.iter(|| verifier.verify_billing_event(black_box(&body), Some(&header)));
    });
}

criterion_group!(benches, noop, webhook);
criterion_main!(benches);
