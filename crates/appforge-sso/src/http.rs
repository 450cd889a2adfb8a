//! openidconnect's HTTP client trait over the workspace's `reqwest`.
//!
//! openidconnect 4 (through oauth2 5) ships a client for `reqwest` 0.12; the workspace uses
//! 0.13, so its `reqwest` feature stays off and this adapter carries its requests instead.

use std::future::Future;
use std::pin::Pin;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// How long one request to a provider may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A `reqwest` 0.13 client as openidconnect's [`AsyncHttpClient`].
#[derive(Debug, Clone)]
pub(crate) struct HttpClient(reqwest::Client);

impl HttpClient {
    /// A client following no redirects (a provider's endpoints answer directly; following
    /// them would let a discovery document point requests anywhere).
    pub(crate) fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .expect("a reqwest client with a redirect policy and a timeout builds");
        Self(client)
    }

    /// The host's client (proxy, TLS roots, timeouts). It should not follow redirects.
    pub(crate) fn from_client(client: reqwest::Client) -> Self {
        Self(client)
    }
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response = self
                .0
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut builder = http::Response::builder().status(response.status());
            if let Some(headers) = builder.headers_mut() {
                headers.extend(response.headers().clone());
            }
            let body = response.bytes().await?.to_vec();
            Ok(builder
                .body(body)
                .expect("a response with a status and valid headers builds"))
        })
    }
}
