//! The API's error answers: a status, a stable code and a plain message. Internal errors are
//! logged with their detail and answered as `internal error` with the request id.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<serde_json::Value>,
}

/// The JSON body of an error answer, kept as a response extension so that the request-id
/// middleware can add the id to it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorBody {
    pub(crate) error: std::borrow::Cow<'static, str>,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) details: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) request_id: Option<String>,
}

impl ApiError {
    /// An error answer with `status`, a stable `code` and a `message` safe to show.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds structured details (field errors, a quota status).
    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: no valid token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404: nothing of this user's at that address.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 503: a part of the service is not configured or not reachable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500: logs `error` with its detail, reports it to Sentry (when configured: on the
    /// request's hub, with its tags) and answers a plain message.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %error, detail = ?error, reported = true, "internal error");
        sentry::capture_error(error);
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.into(),
            message: self.message,
            details: self.details,
            request_id: None,
        };
        let mut response = (self.status, Json(body.clone())).into_response();
        response.extensions_mut().insert(body);
        response
    }
}

impl From<ApiError> for appforge::axum::AuthRejection {
    /// The same answer, through the library's router (the server's `SpaceAuth`).
    fn from(error: ApiError) -> Self {
        let rejection = Self::new(error.status, error.message).code(error.code);
        match error.details {
            Some(details) => rejection.details(details),
            None => rejection,
        }
    }
}

impl From<appforge::axum::ErrorBody> for ErrorBody {
    fn from(body: appforge::axum::ErrorBody) -> Self {
        Self {
            error: body.error.into(),
            message: body.message,
            details: body.details,
            request_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_answer_a_plain_message() {
        let io = std::io::Error::other("SELECT * FROM secrets failed at 10.0.0.3");
        let response = ApiError::internal(&io).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.extensions().get::<ErrorBody>().unwrap();
        assert_eq!(body.message, "internal error");
    }
}
