//! An org's own billing: `GET /api/orgs/{org}/billing`, `POST /billing/checkout`,
//! `POST /billing/portal` and `PUT /api/orgs/{org}/seats`, and the seats a subscription
//! event carries ([`follow_seats`], called by the Stripe webhook).
//!
//! The billing subject of an org is the org's id, as its quota's is: its Stripe customer,
//! checkout and portal belong to the org, and when its subscription changes the billing
//! crate sets the org's plan (one pooled usage for every member). The subscription's
//! quantity is the org's seat count.

use appforge_billing::{
    AnyBillingStore, Billing, BillingStore, CheckoutRequest, Interval, SubscriptionRecord,
};
use appforge_orgs::{Actor, AuditRecord, OrgStore, Organization, Permission};
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{OrgCaller, api_error, path_id};
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

/// The audit action of a seat change, by a person or by a subscription event.
const SEATS_ACTION: &str = "billing.seats";

/// The body of `POST /api/orgs/{org}/billing/checkout`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckoutBody {
    plan: String,
    interval: Interval,
}

/// The body of `PUT /api/orgs/{org}/seats`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SeatsBody {
    seats: u32,
}

/// A Stripe-hosted page to send the caller to.
#[derive(Debug, Serialize)]
pub(super) struct UrlAnswer {
    url: String,
}

/// The org's subscription as the API shows it (no Stripe ids).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionView {
    plan: String,
    status: String,
    /// The subscription's quantity: the seats paid for.
    seats: u64,
    current_period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: bool,
    past_due: bool,
}

impl From<SubscriptionRecord> for SubscriptionView {
    fn from(s: SubscriptionRecord) -> Self {
        Self {
            plan: s.plan,
            status: s.status,
            seats: s.quantity,
            current_period_end: s.current_period_end,
            cancel_at_period_end: s.cancel_at_period_end,
            past_due: s.past_due,
        }
    }
}

/// `GET /api/orgs/{org}/billing` (`read_apps`: every member sees what the org pays for):
/// the org's plan, its seats used of total and its live subscription, if any.
pub(super) async fn get(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let org = path_id(&org, "organization")?;
    let (record, used) = org_and_used(&state, &caller, org, Permission::ReadApps).await?;
    let plan = state
        .quota()
        .plan_of(org)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let subscription = match state.billing() {
        Some(billing) => live_subscription(billing, org)
            .await?
            .map(SubscriptionView::from),
        None => None,
    };
    Ok(axum::Json(json!({
        "plan": plan.id,
        "seats": { "used": used, "total": record.seats },
        "subscription": subscription,
        "billingConfigured": state.billing().is_some(),
    })))
}

/// `POST /api/orgs/{org}/billing/checkout` (`billing`, a signed-in user): a Stripe Checkout
/// page subscribing the org (its own Stripe customer, created with the caller's email) to
/// `plan` for as many seats as the org has, and at least its members plus open invitations.
pub(super) async fn checkout(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
    Json(body): Json<CheckoutBody>,
) -> Result<axum::Json<UrlAnswer>, ApiError> {
    let org = path_id(&org, "organization")?;
    let (record, used) = org_and_used(&state, &caller, org, Permission::Billing).await?;
    caller.user()?;
    let billing = billing(&state)?;
    let seats = u64::from(record.seats.unwrap_or(0).max(used).max(1));
    let base = origin(&headers, &state);
    let request = CheckoutRequest {
        plan: body.plan.clone(),
        interval: body.interval,
        seats,
        success_url: format!("{base}/account/billing?org={org}&checkout=success"),
        cancel_url: format!("{base}/account/billing?org={org}&checkout=cancelled"),
        email: caller.email.clone(),
    };
    let session = billing
        .checkout(org, &request)
        .await
        .map_err(|e| billing_error(&e))?;
    state
        .orgs()
        .record(
            &caller.caller,
            org,
            "billing.checkout",
            Some(format!("org:{org}")),
            json!({ "plan": body.plan, "interval": body.interval, "seats": seats }),
        )
        .await
        .map_err(api_error)?;
    Ok(axum::Json(UrlAnswer { url: session.url }))
}

/// `POST /api/orgs/{org}/billing/portal` (`billing`, a signed-in user): a Stripe billing
/// portal page for the org's customer; `409 no_subscription` before its first checkout.
pub(super) async fn portal(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Result<axum::Json<UrlAnswer>, ApiError> {
    let org = path_id(&org, "organization")?;
    state
        .orgs()
        .authorize(&caller.caller, org, Permission::Billing)
        .await
        .map_err(api_error)?;
    caller.user()?;
    let billing = billing(&state)?;
    let base = origin(&headers, &state);
    let session = billing
        .portal(org, &format!("{base}/account/billing?org={org}"))
        .await
        .map_err(|e| billing_error(&e))?;
    state
        .orgs()
        .record(
            &caller.caller,
            org,
            "billing.portal",
            Some(format!("org:{org}")),
            Value::Null,
        )
        .await
        .map_err(api_error)?;
    Ok(axum::Json(UrlAnswer { url: session.url }))
}

/// `PUT /api/orgs/{org}/seats` (`billing`, a signed-in user): sets the org's seats. Fewer
/// than its members plus open invitations is `409 seats_in_use`. When the org has a live
/// subscription, its quantity is changed first (prorated as configured, idempotently: the
/// same seats again send Stripe nothing); if Stripe fails the org keeps its seats and the
/// answer is `502 stripe_failed`, so the two never disagree. A change is audited as
/// `billing.seats` with the old and new seats.
pub(super) async fn set_seats(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(org): Path<String>,
    Json(body): Json<SeatsBody>,
) -> Result<axum::Json<Value>, ApiError> {
    let org = path_id(&org, "organization")?;
    let (record, used) = org_and_used(&state, &caller, org, Permission::Billing).await?;
    caller.user()?;
    if body.seats == 0 {
        return Err(ApiError::bad_request("seats must be at least 1"));
    }
    if body.seats < used {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "seats_in_use",
            format!(
                "the organization uses {used} seats (members and open invitations): remove some first"
            ),
        )
        .with_details(json!({ "used": used, "seats": body.seats })));
    }
    // Stripe first: a refused change leaves the org as it was, and a change Stripe took whose
    // local write then fails is brought back by the subscription's own event.
    if let Some(billing) = state.billing()
        && live_subscription(billing, org).await?.is_some()
    {
        billing
            .change_seats(org, u64::from(body.seats))
            .await
            .map_err(|e| billing_error(&e))?;
    }
    let total = if record.seats == Some(body.seats) {
        record.seats
    } else {
        let audit = AuditRecord::new(caller.caller.principal.actor(), SEATS_ACTION)
            .target(format!("org:{org}"))
            .request(caller.caller.request.clone())
            .detail(json!({ "from": record.seats, "to": body.seats }));
        state
            .orgs()
            .store()
            .set_seats(org, Some(body.seats), audit)
            .await
            .map_err(api_error)?
            .seats
    };
    Ok(axum::Json(
        json!({ "seats": { "used": used, "total": total } }),
    ))
}

/// After a processed Stripe event: when it is a subscription event of an org (the billing
/// subject is an org's id) whose live subscription's quantity differs from the org's seats,
/// sets the seats to it, as the system (seats bought or changed in the billing portal).
/// Audited as `billing.seats`. Failures are logged: the next event of the subscription
/// tries again.
pub(crate) async fn follow_seats(
    state: &AppState,
    billing: &Billing<AnyBillingStore>,
    body: &[u8],
) {
    let Ok(event) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let subscription = match event.get("type").and_then(Value::as_str) {
        Some("customer.subscription.created" | "customer.subscription.updated") => {
            event.pointer("/data/object/id").and_then(Value::as_str)
        }
        Some("checkout.session.completed") => event
            .pointer("/data/object/subscription")
            .and_then(Value::as_str),
        _ => None,
    };
    let Some(subscription) = subscription else {
        return;
    };
    if let Err(error) = follow(state, billing, subscription).await {
        tracing::warn!(%subscription, %error, "could not set the org's seats from its subscription");
    }
}

async fn follow(
    state: &AppState,
    billing: &Billing<AnyBillingStore>,
    subscription: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let Some(record) = billing.store().subscription(subscription).await? else {
        return Ok(());
    };
    let Some(subject) = record.user_id.filter(|_| record.is_live()) else {
        return Ok(());
    };
    let store = state.orgs().store();
    let Some(org) = store.get_org(subject).await? else {
        // A person's subscription.
        return Ok(());
    };
    let Ok(seats) = u32::try_from(record.quantity) else {
        return Ok(());
    };
    if seats == 0 || org.seats == Some(seats) {
        return Ok(());
    }
    let audit = AuditRecord::new(Actor::System, SEATS_ACTION)
        .target(format!("org:{}", org.id))
        .detail(json!({ "from": org.seats, "to": seats, "source": "stripe" }));
    store.set_seats(org.id, Some(seats), audit).await?;
    tracing::info!(org = %org.id, from = ?org.seats, to = seats, "org seats follow the subscription");
    Ok(())
}

/// The org and its seats used, once the caller has `permission` in it.
async fn org_and_used(
    state: &AppState,
    caller: &OrgCaller,
    org: Uuid,
    permission: Permission,
) -> Result<(Organization, u32), ApiError> {
    let orgs = state.orgs();
    orgs.authorize(&caller.caller, org, permission)
        .await
        .map_err(api_error)?;
    let record = orgs
        .store()
        .get_org(org)
        .await
        .map_err(api_error)?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    let used = orgs.store().seats_used(org).await.map_err(api_error)?;
    Ok((record, used))
}

/// The org's live subscription (the freshest, when there are several).
async fn live_subscription(
    billing: &Billing<AnyBillingStore>,
    org: Uuid,
) -> Result<Option<SubscriptionRecord>, ApiError> {
    Ok(billing
        .store()
        .subscriptions_of_user(org)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .into_iter()
        .filter(SubscriptionRecord::is_live)
        .max_by_key(|s| s.synced_version))
}

fn billing(state: &AppState) -> Result<&Billing<AnyBillingStore>, ApiError> {
    state.billing().ok_or_else(|| {
        ApiError::unavailable(
            "billing is not configured on this server (set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET)",
        )
    })
}

/// The answer to a billing error: bad input `400`, no customer or subscription `409`, a
/// failed Stripe call `502` (the detail is logged, never echoed), else `500`.
fn billing_error(error: &appforge_billing::Error) -> ApiError {
    use appforge_billing::Error as E;

    match error {
        E::NoPrice { .. } | E::Config(_) => ApiError::bad_request(error.to_string()),
        E::NoCustomer(_) | E::NoSubscription(_) => ApiError::new(
            StatusCode::CONFLICT,
            "no_subscription",
            "the organization has no subscription yet: check out first",
        ),
        E::Stripe { .. } => {
            tracing::warn!(%error, "a stripe call for an org failed");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "stripe_failed",
                "stripe did not take the change; nothing was changed, try again",
            )
        }
        other => ApiError::internal(other),
    }
}

/// Where Stripe sends the caller back: the request's allowed origin, else the server.
fn origin(headers: &HeaderMap, state: &AppState) -> String {
    headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| state.config().allowed_origins.iter().any(|a| a == o))
        .map_or_else(|| format!("http://{}", state.config().addr), str::to_owned)
}
