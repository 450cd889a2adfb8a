//! The JSON body extractor of the routes: `appforge::axum::JsonBody` (a bad body is a
//! `400 invalid_body` naming the field at fault in `details.field`), answered as an
//! [`ApiError`] so that the request id is added to it.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Like `axum::Json`, but a bad body is a `400 invalid_body` with the serde path of the field
/// at fault in `details.field` ([`appforge::axum::JsonBody`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        appforge::axum::JsonBody::from_request(request, state)
            .await
            .map(|appforge::axum::JsonBody(body)| Self(body))
            .map_err(ApiError::from)
    }
}

/// Parses `body` as `T`, naming the field at fault.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    appforge::axum::parse_json(body).map_err(ApiError::from)
}

impl From<appforge::axum::BodyRejection> for ApiError {
    fn from(rejection: appforge::axum::BodyRejection) -> Self {
        let error = Self::new(rejection.status, rejection.code, rejection.message.clone());
        match rejection.details() {
            Some(details) => error.with_details(details),
            None => error,
        }
    }
}
