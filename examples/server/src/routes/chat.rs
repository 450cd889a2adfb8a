//! Chat messages' records. `POST /api/chat` (the reply streamed as SSE, `delta` events then
//! `done` with usage) is the library's router's ([`super::generate::router`]).
//!
//! A chat message costs quota like a generation: the request is checked against the plan's
//! request limits (`400`), a chat message is reserved against the plan's daily count before
//! the model is called (`429` with the quota body when none is left), and the reservation is
//! settled by the rules of [`crate::settlement`] when the model call ends. The call and its
//! settlement run on a task of their own: a client that goes away mid-reply stops the model
//! call, and the message is still charged with the tokens it spent.

use appforge::generation::ChatEnded;
use appforge_analytics::{AnalyticsEvent, EventType, GenerationFacts};
use serde_json::json;

/// The job kind chat messages are recorded under (analytics, quota denials).
const CHAT: &str = "chat";

/// Records a `chat_message` event (the service's `on_chat_end` hook): how the reply ended,
/// whether it counted, the plan, the model and the tokens (priced like a generation's).
pub(crate) fn record(analytics: &crate::Analytics, ended: &ChatEnded) {
    let usage = ended.usage;
    let facts = GenerationFacts::new(CHAT, ended.plan.as_str()).usage(
        &ended.model,
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    );
    let mut properties = facts.to_properties();
    if let Some(map) = properties.as_object_mut() {
        map.insert("outcome".into(), json!(ended.end.as_str()));
        map.insert("charged".into(), json!(ended.charged));
    }
    analytics.recorder().record(
        AnalyticsEvent::new(
            ended.user,
            EventType::Other("chat_message".into()),
            chrono::Utc::now(),
        )
        .with_properties(properties),
    );
}
