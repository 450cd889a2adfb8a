//! Every request gets an id (the caller's `x-request-id` when it is sane, else a new UUID): it is
//! on the tracing span, in the `x-request-id` answer header, and in the body of error answers.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use tracing::Instrument;

use crate::error::ErrorBody;

/// The header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// The request id of a request, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Middleware: assigns the id, opens the request span, stamps the answer.
/// The path as logged: an invitation's token (`/api/invitations/{token}/accept`) is a
/// credential, so it is replaced.
fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/api/invitations/") {
        Some(rest) => {
            let tail = rest.split_once('/').map_or("", |(_, tail)| tail);
            format!("/api/invitations/[REDACTED]/{tail}").into()
        }
        None => path.into(),
    }
}

pub(crate) async fn layer(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %logged_path(request.uri().path()),
        request_id = %id,
        status = tracing::field::Empty,
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    // An error of the library's router carries its own body; it is answered as the server's.
    let library = response
        .extensions_mut()
        .remove::<appforge::axum::ErrorBody>()
        .map(ErrorBody::from);
    if let Some(mut body) = response.extensions_mut().remove::<ErrorBody>().or(library) {
        body.request_id = Some(id.clone());
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(http::header::CONTENT_LENGTH);
        let rebuilt = axum::Json(body).into_response();
        let (rebuilt_parts, rebuilt_body) = rebuilt.into_parts();
        parts.headers.extend(rebuilt_parts.headers);
        response = Response::from_parts(parts, rebuilt_body);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::logged_path;

    #[test]
    fn invitation_tokens_are_not_logged() {
        assert_eq!(
            logged_path("/api/invitations/afi_secret123/accept"),
            "/api/invitations/[REDACTED]/accept"
        );
        assert_eq!(logged_path("/api/jobs/1"), "/api/jobs/1");
    }
}
