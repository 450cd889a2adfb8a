//! `GET /api/admin/metrics?from=YYYY-MM-DD&to=YYYY-MM-DD`: the analytics report (active
//! users, generations, failure rate, generation time, tokens and cost, revenue, retention)
//! over the UTC days `from` to `to`, both included, behind the admin token.

use appforge_analytics::Metrics;
use axum::extract::{Query, State};
use chrono::{Days, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::state::AppState;

/// The longest range the route reports on, in days: a report reads every event of its range
/// (and a month around it), so a year bounds the work of one request.
pub(crate) const MAX_DAYS: u64 = 366;
/// The range without `from` and `to`: the last 7 days, today included.
const DEFAULT_DAYS: u64 = 7;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

fn day(name: &str, raw: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(format!(
            "`{name}` must be a date written YYYY-MM-DD, not {raw:?}"
        ))
    })
}

/// The days `[from, to)` a query asks for (its `to` is the last day included).
pub(crate) fn range(
    query: &RangeQuery,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let last = match &query.to {
        Some(raw) => day("to", raw)?,
        None => today,
    };
    let from = match &query.from {
        Some(raw) => day("from", raw)?,
        None => last
            .checked_sub_days(Days::new(DEFAULT_DAYS - 1))
            .unwrap_or(last),
    };
    if from > last {
        return Err(ApiError::bad_request(format!(
            "`from` ({from}) is after `to` ({last})"
        )));
    }
    let days = u64::try_from((last - from).num_days()).unwrap_or(u64::MAX) + 1;
    if days > MAX_DAYS {
        return Err(ApiError::bad_request(format!(
            "the range covers {days} days; at most {MAX_DAYS} are allowed"
        )));
    }
    let end = last
        .checked_add_days(Days::new(1))
        .ok_or_else(|| ApiError::bad_request("`to` is out of the calendar"))?;
    Ok((from, end))
}

/// The report in camelCase. The report's `to` is the day after the last day included.
pub(crate) async fn metrics(
    State(state): State<AppState>,
    _admin: AdminAuth,
    query: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    let (from, to) = range(&query, Utc::now().date_naive())?;
    let report = Metrics::new(state.analytics().store().clone())
        .report(from, to)
        .await
        .map_err(|e| match e {
            appforge_analytics::Error::InvalidRange { .. }
            | appforge_analytics::Error::Config(_) => ApiError::bad_request(e.to_string()),
            other => ApiError::internal(&other),
        })?;
    let value = serde_json::to_value(&report).map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(camel_case(value, None, None)))
}

/// Maps whose keys are data (job kinds, plans, currencies), not field names: by the key they
/// sit under, and for `totals` only under `revenue` (`generations.totals` is a struct).
fn is_data_map(parent: Option<&str>, key: &str) -> bool {
    matches!(key, "by_kind" | "by_plan" | "amounts")
        || (key == "totals" && parent == Some("revenue"))
}

/// Renames the keys of `value` from snake_case to camelCase, except the keys of data maps
/// (`full_app` stays a job kind). `name` is the key `value` sits under, `parent` the key its
/// object sits under.
fn camel_case(value: Value, parent: Option<&str>, name: Option<&str>) -> Value {
    let data = name.is_some_and(|name| is_data_map(parent, name));
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let inner = camel_case(value, name, Some(&key));
                    let key = if data { key } else { crate::work::camel(&key) };
                    (key, inner)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| camel_case(v, parent, None))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(from: Option<&str>, to: Option<&str>) -> RangeQuery {
        RangeQuery {
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
        }
    }

    #[test]
    fn ranges_include_both_days_and_are_checked() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 14).unwrap();
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            range(&query(Some("2026-03-01"), Some("2026-03-01")), today).unwrap(),
            (d("2026-03-01"), d("2026-03-02"))
        );
        assert_eq!(
            range(&query(None, None), today).unwrap(),
            (d("2026-03-08"), d("2026-03-15"))
        );
        for (from, to, says) in [
            (Some("2026-03-02"), Some("2026-03-01"), "is after"),
            (Some("14/03/2026"), None, "YYYY-MM-DD"),
            (Some("2024-01-01"), Some("2026-01-01"), "at most 366"),
        ] {
            let err = range(&query(from, to), today).unwrap_err();
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
            let response = axum::response::IntoResponse::into_response(err);
            let body = response
                .extensions()
                .get::<crate::error::ErrorBody>()
                .unwrap();
            assert!(body.message.contains(says), "{}", body.message);
        }
    }

    #[test]
    fn field_names_become_camel_case_but_data_keys_do_not() {
        let value = json!({
            "distinct_users": 1,
            "by_kind": { "full_app": { "requested": 1 } },
            "days": [{ "cost_micro_usd": 2, "by_plan": { "team_plus": { "cache_write": 3 } } }],
            "usage": { "totals": { "cache_write": 1 } },
            "revenue": { "totals": { "usd_x": 1 } },
        });
        assert_eq!(
            camel_case(value, None, None),
            json!({
                "distinctUsers": 1,
                "byKind": { "full_app": { "requested": 1 } },
                "days": [{ "costMicroUsd": 2, "byPlan": { "team_plus": { "cacheWrite": 3 } } }],
                "usage": { "totals": { "cacheWrite": 1 } },
                "revenue": { "totals": { "usd_x": 1 } },
            })
        );
    }
}
