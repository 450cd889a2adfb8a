//! A JSON body extractor whose rejections are [`ApiError`]s naming the offending field.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::header;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::ApiError;

/// Like `axum::Json`, but a bad body is a `400 invalid_body` with the serde path of the field
/// at fault in `details.field`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::new(
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let body = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    http::StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is larger than the server accepts",
                )
            } else {
                ApiError::bad_request(format!("cannot read the body: {e}"))
            }
        })?;
        parse(&body).map(Self)
    }
}

/// Parses `body` as `T`, naming the field at fault.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let message = if field == "." {
            format!("invalid JSON body: {inner}")
        } else {
            format!("invalid field `{field}`: {inner}")
        };
        ApiError::new(http::StatusCode::BAD_REQUEST, "invalid_body", message)
            .with_details(json!({ "field": field }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let error = parse::<Body>(br#"{"prompt":"x","nested":{"count":"many"}}"#).unwrap_err();
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
        let text = format!("{error:?}");
        assert!(text.contains("nested.count"), "{text}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let error = parse::<Body>(br"{}").unwrap_err();
        assert!(format!("{error:?}").contains("prompt"));
    }
}
