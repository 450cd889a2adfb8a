//! A JSON body extractor whose rejection names the field at fault.
//!
//! axum's `Json` answers a body that does not match its type with `422` and serde's text; an
//! API whose clients fix their requests field by field wants the field's path. `JsonBody`
//! reads the body with `serde_path_to_error` (which axum does not use) and rejects with a
//! [`BodyRejection`]: `400 invalid_body` with `details.field` (`conversationHistory[2].role`),
//! `415 unsupported_media_type` without `Content-Type: application/json`, `413 body_too_large`
//! past the body limit.
//!
//! ```
//! use appforge::axum::JsonBody;
//! use axum::routing::post;
//!
//! #[derive(serde::Deserialize)]
//! struct Rename {
//!     title: String,
//! }
//!
//! let app: axum::Router = axum::Router::new()
//!     .route("/rename", post(|JsonBody(body): JsonBody<Rename>| async move { body.title }));
//! # let _ = app;
//! ```

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A JSON request body of type `T`, rejected with a [`BodyRejection`] that names the field at
/// fault.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

/// Why a body was refused: its status, a stable code (`invalid_body`,
/// `unsupported_media_type`, `body_too_large`, `bad_request`), a message and, for a field
/// that does not fit its type, the field's path (`.` for the body as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct BodyRejection {
    /// The status to answer.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// What is wrong, for people.
    pub message: String,
    /// The path of the field at fault.
    pub field: Option<String>,
}

impl BodyRejection {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// `{"field": ...}` for a field at fault.
    #[must_use]
    pub fn details(&self) -> Option<Value> {
        self.field.as_ref().map(|field| json!({ "field": field }))
    }
}

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code, "message": self.message });
        if let Some(details) = self.details() {
            body["details"] = details;
        }
        (self.status, axum::Json(body)).into_response()
    }
}

/// Parses `body` as `T`, naming the field at fault.
///
/// # Errors
///
/// `400 invalid_body` with the field's path.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, BodyRejection> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let message = if field == "." {
            format!("invalid JSON body: {inner}")
        } else {
            format!("invalid field `{field}`: {inner}")
        };
        BodyRejection {
            field: Some(field),
            ..BodyRejection::new(StatusCode::BAD_REQUEST, "invalid_body", message)
        }
    })
}

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BodyRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(BodyRejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let body = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                BodyRejection::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is larger than the server accepts",
                )
            } else {
                BodyRejection::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("cannot read the body: {e}"),
                )
            }
        })?;
        parse_json(&body).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_json;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        prompt: String,
        nested: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn names_the_field_at_fault() {
        let error = parse_json::<Body>(br#"{"prompt":"x","nested":{"count":"many"}}"#).unwrap_err();
        assert_eq!(error.status, http::StatusCode::BAD_REQUEST);
        assert_eq!(error.field.as_deref(), Some("nested.count"));
        assert!(
            error.message.starts_with("invalid field `nested.count`: "),
            "{}",
            error.message
        );
        let whole = parse_json::<Body>(b"not json").unwrap_err();
        assert_eq!(whole.field.as_deref(), Some("."));
        assert!(
            whole.message.starts_with("invalid JSON body: "),
            "{}",
            whole.message
        );
    }
}
