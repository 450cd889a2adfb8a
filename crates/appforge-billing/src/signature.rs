//! `Stripe-Signature` verification on the raw request body.

use std::fmt;
use std::time::Duration;

use appforge_core::{ExposeSecret, SecretString, SharedClock, SystemClock};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::error::{Error, Result};
use crate::event::BillingEvent;
#[cfg(feature = "stripe-api")]
use crate::typed::VerifiedEvent;

/// The default tolerance between the signature's timestamp and the clock: 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// The default largest body accepted: 1 MiB (Stripe's events are a few KB).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// The most `v1=` signatures read from one header; more are ignored.
const MAX_SIGNATURES: usize = 8;

/// Why a webhook delivery failed verification. It never says which secret was tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The `Stripe-Signature` header is absent.
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    /// The header is not `t=...,v1=...` (no timestamp, a bad timestamp or a bad pair).
    #[error("malformed Stripe-Signature header")]
    MalformedHeader,
    /// The header has no `v1` signature (only other schemes such as `v0`).
    #[error("no v1 signature in Stripe-Signature header")]
    NoV1Signature,
    /// No `v1` signature matches any configured secret.
    #[error("no signature matches the payload")]
    Mismatch,
    /// The timestamp is further from now than the tolerance.
    #[error(
        "signature timestamp is {age_secs} s away from now, over the {tolerance_secs} s tolerance"
    )]
    OutsideTolerance {
        /// How far the timestamp is from now, in seconds (either direction).
        age_secs: u64,
        /// The configured tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// The body is larger than the configured limit.
    #[error("payload of {size} bytes is over the {limit} byte limit")]
    BodyTooLarge {
        /// The body's size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
}

/// The parts of a `Stripe-Signature` header this crate reads.
#[derive(Debug)]
struct SignatureHeader {
    timestamp: i64,
    v1: Vec<[u8; 32]>,
}

impl SignatureHeader {
    /// Parses `t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=...]`. Unknown schemes are ignored;
    /// a `v1` value that is not 64 hex digits can never match and is skipped.
    fn parse(raw: &str) -> Result<Self, SignatureError> {
        let mut timestamp = None;
        let mut v1 = Vec::new();
        let mut saw_v1 = false;
        for pair in raw.split(',') {
            let (key, value) = pair
                .trim()
                .split_once('=')
                .ok_or(SignatureError::MalformedHeader)?;
            match key {
                "t" => {
                    let t: i64 = value.parse().map_err(|_| SignatureError::MalformedHeader)?;
                    if timestamp.replace(t).is_some() {
                        return Err(SignatureError::MalformedHeader);
                    }
                }
                "v1" => {
                    saw_v1 = true;
                    let mut bytes = [0u8; 32];
                    if v1.len() < MAX_SIGNATURES && hex::decode_to_slice(value, &mut bytes).is_ok()
                    {
                        v1.push(bytes);
                    }
                }
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::MalformedHeader)?;
        if !saw_v1 {
            return Err(SignatureError::NoV1Signature);
        }
        Ok(Self { timestamp, v1 })
    }
}

/// Verifies `Stripe-Signature` headers against one or more webhook secrets.
///
/// Cheap to clone. Build one with [`WebhookVerifier::builder`].
#[derive(Clone)]
pub struct WebhookVerifier {
    secrets: std::sync::Arc<[SecretString]>,
    tolerance: Duration,
    max_body: usize,
    clock: SharedClock,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("tolerance", &self.tolerance)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl WebhookVerifier {
    /// A builder with the default tolerance, body limit and the system clock.
    #[must_use]
    pub fn builder() -> WebhookVerifierBuilder {
        WebhookVerifierBuilder {
            secrets: Vec::new(),
            tolerance: DEFAULT_TOLERANCE,
            max_body: DEFAULT_MAX_BODY,
            clock: None,
        }
    }

    /// The configured tolerance.
    #[must_use]
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// Checks `header` (the `Stripe-Signature` value, `None` when absent) against the raw
    /// `body`: size, header shape, signature (any `v1` against any secret, in constant time),
    /// then timestamp. Returns the signed timestamp.
    ///
    /// # Errors
    ///
    /// A [`SignatureError`] naming the check that failed.
    pub fn verify(&self, body: &[u8], header: Option<&str>) -> Result<i64, SignatureError> {
        self.verify_matching(body, header).map(|(t, _)| t)
    }

    /// Verifies like [`verify`](Self::verify), then reads the event of any type (feature
    /// `stripe-api`): its envelope
    /// and object as sent, and async-stripe's typed event (the types of API version
    /// `2026-09-30.endive`) when those types can read it; for hosts that want the event
    /// without the ledger and handlers of [`Billing`](crate::Billing).
    ///
    /// An event rendered with another API version is not an error: Stripe sends the
    /// endpoint's version, and async-stripe's types refuse objects lacking a field they
    /// require (a `2025-08-27.basil` subscription, for one). Its [`VerifiedEvent::typed`] is
    /// then `None`, with the reason in [`VerifiedEvent::typed_error`].
    ///
    /// # Errors
    ///
    /// [`Error::Signature`] when verification fails, [`Error::Parse`] when the verified body
    /// is not a Stripe event at all (not UTF-8, not JSON, or without `id`, `type`, `created`
    /// and `data.object`).
    #[cfg(feature = "stripe-api")]
    #[cfg_attr(docsrs, doc(cfg(feature = "stripe-api")))]
    pub fn verify_event(&self, body: &[u8], header: Option<&str>) -> Result<VerifiedEvent> {
        let (timestamp, secret) = self.verify_matching(body, header)?;
        let payload =
            std::str::from_utf8(body).map_err(|_| Error::Parse("the body is not UTF-8".into()))?;
        VerifiedEvent::read(payload, || {
            stripe_webhook::Webhook::construct_event_with_timestamp(
                payload,
                header.unwrap_or_default(),
                secret,
                timestamp,
            )
            .map_err(|e| e.to_string())
        })
    }

    /// Verifies like [`verify`](Self::verify), then parses the event the way [`Billing`]
    /// does: the object of a handled type into this crate's reduced type (the fields
    /// billing reads; [`stripe_object`](crate::stripe_object) reads async-stripe's full
    /// types), other types left unparsed.
    ///
    /// [`Billing`]: crate::Billing
    ///
    /// # Errors
    ///
    /// [`Error::Signature`] when verification fails. A payload that cannot be read is not an
    /// error: its object is [`BillingObject::Unparseable`](crate::BillingObject::Unparseable).
    pub fn verify_billing_event(&self, body: &[u8], header: Option<&str>) -> Result<BillingEvent> {
        let timestamp = self.verify(body, header)?;
        Ok(crate::event::parse(&crate::event::text(body), timestamp))
    }

    /// [`verify`](Self::verify), also returning the secret that matched (for the parser).
    pub(crate) fn verify_matching(
        &self,
        body: &[u8],
        header: Option<&str>,
    ) -> Result<(i64, &str), SignatureError> {
        if body.len() > self.max_body {
            return Err(SignatureError::BodyTooLarge {
                size: body.len(),
                limit: self.max_body,
            });
        }
        let header = SignatureHeader::parse(header.ok_or(SignatureError::MissingHeader)?)?;
        let prefix = header.timestamp.to_string();
        // Every secret is tried and every candidate compared, so the time taken does not say
        // which secret (if any) matched.
        let mut matched = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, secret) in (0u32..).zip(self.secrets.iter()) {
            let expected = compute(secret.expose_secret().as_bytes(), prefix.as_bytes(), body);
            let mut this = subtle::Choice::from(0);
            for candidate in &header.v1 {
                this |= expected.ct_eq(candidate);
            }
            index = u32::conditional_select(&index, &i, this & !matched);
            matched |= this;
        }
        if !bool::from(matched) {
            return Err(SignatureError::Mismatch);
        }
        let now = self.clock.now().timestamp();
        let age = now.abs_diff(header.timestamp);
        if age > self.tolerance.as_secs() {
            return Err(SignatureError::OutsideTolerance {
                age_secs: age,
                tolerance_secs: self.tolerance.as_secs(),
            });
        }
        let secret = self.secrets[usize::try_from(index).unwrap_or_default()].expose_secret();
        Ok((header.timestamp, secret))
    }
}

/// HMAC-SHA256 of `"{timestamp}.{body}"`, by RustCrypto's `hmac` and `sha2` (pure Rust, with
/// the CPU's SHA extensions when it has them): no C toolchain for a host that only verifies.
fn compute(secret: &[u8], timestamp: &[u8], body: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    // HMAC takes a key of any length (a longer one is hashed first): this cannot fail.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp);
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The `Stripe-Signature` header Stripe would send for `body` signed with `secret` at
/// `timestamp` (Unix seconds): `t=<timestamp>,v1=<hex HMAC-SHA256>`. For tests, benchmarks
/// and local tools.
#[must_use]
pub fn sign_payload(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    let mac = compute(
        secret.expose_secret().as_bytes(),
        timestamp.to_string().as_bytes(),
        body,
    );
    format!("t={timestamp},v1={}", hex::encode(mac))
}

/// Builds a [`WebhookVerifier`].
#[derive(Debug)]
pub struct WebhookVerifierBuilder {
    secrets: Vec<SecretString>,
    tolerance: Duration,
    max_body: usize,
    clock: Option<SharedClock>,
}

impl WebhookVerifierBuilder {
    /// Adds a webhook signing secret (`whsec_...`). Add the old and the new secret while
    /// rolling one: a signature matching either is accepted.
    #[must_use]
    pub fn secret(mut self, secret: SecretString) -> Self {
        self.secrets.push(secret);
        self
    }

    /// The largest distance between the signed timestamp and now (default 300 s).
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The largest body accepted, in bytes (default 1 MiB).
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The clock timestamps are checked against (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates the settings.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a secret, with an empty secret or with a zero body limit.
    pub fn build(self) -> Result<WebhookVerifier> {
        if self.secrets.is_empty() {
            return Err(Error::Config(
                "at least one webhook secret is required".into(),
            ));
        }
        if self.secrets.iter().any(|s| s.expose_secret().is_empty()) {
            return Err(Error::Config("a webhook secret is empty".into()));
        }
        if self.max_body == 0 {
            return Err(Error::Config("the body limit must be positive".into()));
        }
        Ok(WebhookVerifier {
            secrets: self.secrets.into(),
            tolerance: self.tolerance,
            max_body: self.max_body,
            clock: self.clock.unwrap_or_else(SystemClock::shared),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_keeps_v1_and_ignores_other_schemes() {
        let sig = "a".repeat(64);
        let h = SignatureHeader::parse(&format!("t=12,v0=zz,v1={sig},v2=x")).unwrap();
        assert_eq!(h.timestamp, 12);
        assert_eq!(h.v1.len(), 1);
        assert_eq!(
            SignatureHeader::parse("t=1,v0=ab").unwrap_err(),
            SignatureError::NoV1Signature
        );
        assert_eq!(
            SignatureHeader::parse("v1=ab").unwrap_err(),
            SignatureError::MalformedHeader
        );
        assert_eq!(
            SignatureHeader::parse("t=x,v1=ab").unwrap_err(),
            SignatureError::MalformedHeader
        );
        assert_eq!(
            SignatureHeader::parse("garbage").unwrap_err(),
            SignatureError::MalformedHeader
        );
    }

    /// The signature matches one computed independently (Python's `hmac` module, as Stripe
    /// documents the scheme: HMAC-SHA256 of `"{t}.{body}"`, hex).
    #[test]
    fn signatures_match_an_independent_hmac() {
        let secret = SecretString::from("whsec_test_secret".to_owned());
        let header = sign_payload(
            &secret,
            1_700_000_000,
            br#"{"id":"evt_1","object":"event"}"#,
        );
        assert_eq!(
            header,
            "t=1700000000,v1=0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd"
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let v = WebhookVerifier::builder()
            .secret(SecretString::from("whsec_topsecret"))
            .build()
            .unwrap();
        let shown = format!("{v:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
    }
}
