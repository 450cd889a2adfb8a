//! HTTP machinery shared by the providers that call a server (the Anthropic client and the
//! OpenAI-compatible provider): transport with retries and timeouts, streaming, encoding.

#[cfg(feature = "anthropic")]
mod anthropic;
mod stream;
mod transport;

use bytes::Bytes;
use serde::Serialize;

use crate::error::{Error, Result};

#[cfg(feature = "anthropic")]
pub use anthropic::{Client, ClientBuilder, DEFAULT_API_VERSION, DEFAULT_BASE_URL, TokenCount};
pub(crate) use stream::FrameMapper;
pub use stream::MessageStream;
pub(crate) use transport::Transport;
#[cfg(feature = "openai")]
pub(crate) use transport::error_body;
pub use transport::{ApiResponse, Timeouts};

pub(crate) fn validate_base_url(url: &str) -> Result<String> {
    let parsed = url::Url::parse(url)
        .map_err(|e| Error::Config(format!("invalid base URL `{url}`: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "invalid base URL `{url}`: the scheme must be http or https"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

pub(crate) fn encode(body: &impl Serialize) -> Result<Bytes> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| Error::Config(format!("cannot encode the request: {e}")))
}
