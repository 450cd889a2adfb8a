//! The model provider chosen by the settings: Anthropic, an OpenAI-compatible server, or the
//! offline demo transcripts.

use std::sync::Arc;

use appforge_core::ExposeSecret;
use appforge_llm::{Client, OpenAiProvider, Pipelines, Provider, demo};

use crate::config::ProviderConfig;

/// Builds the pipelines over the configured provider, with the provider's name (it goes in
/// every result: `"offline-demo"`, `"anthropic"`, ...). `demo_pace` slows the offline demo.
///
/// # Errors
///
/// A provider client that cannot be built (an invalid base URL).
pub fn pipelines(
    config: &ProviderConfig,
    demo_pace: std::time::Duration,
) -> Result<(Pipelines, String), appforge_llm::Error> {
    let mut effort = None;
    let (provider, model): (Arc<dyn Provider>, Option<&String>) = match config {
        ProviderConfig::Anthropic {
            api_key,
            base_url,
            model,
            effort: configured,
        } => {
            let mut builder = Client::builder().api_key(api_key.expose_secret());
            if let Some(url) = base_url {
                builder = builder.base_url(url.clone());
            }
            let id = model.as_deref().unwrap_or(Pipelines::DEFAULT_MODEL);
            let check = appforge_llm::models::check_model(id, chrono::Utc::now().date_naive());
            if check.needs_attention() {
                tracing::warn!(model = id, "{check}");
            }
            effort.clone_from(configured);
            (Arc::new(builder.build()?), model.as_ref())
        }
        ProviderConfig::OpenAiCompatible {
            base_url,
            api_key,
            model,
        } => {
            let mut builder = OpenAiProvider::builder().base_url(base_url.clone());
            if let Some(key) = api_key {
                builder = builder.api_key(key.expose_secret());
            }
            (Arc::new(builder.build()?), model.as_ref())
        }
        ProviderConfig::OfflineDemo => (Arc::new(demo::offline_provider().pace(demo_pace)), None),
    };
    let name = provider.name().to_owned();
    let mut pipelines = Pipelines::new(provider);
    if let Some(model) = model {
        pipelines = pipelines.model(model.clone());
    }
    if let Some(effort) = effort {
        pipelines = pipelines.effort(effort);
    }
    Ok((pipelines, name))
}
