//! `POST /api/chat`: the reply streamed as SSE, `delta` events then `done` with usage.
//!
//! A chat message costs quota like a generation: the request is checked against the plan's
//! request limits (`400`), a chat message is reserved against the plan's daily count before
//! the model is called (`429` with the quota body when none is left), and the reservation is
//! settled by the rules of [`crate::settlement`] when the model call ends. The call and its
//! settlement run on a task of their own: a client that goes away mid-reply stops the model
//! call, and the message is still charged with the tokens it spent.

use std::convert::Infallible;
use std::time::Duration;

use appforge::generation::{ChatChunk, ChatEnded, ChatMessage, SubmitError};
use appforge_analytics::{AnalyticsEvent, EventType, GenerationFacts};
use appforge_llm::{ChatMode, ChatRequest, HistoryMessage};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Json;
use crate::routes::Space;
use crate::routes::generate::{
    CurrentApp, check_files, check_history, check_prompt, plan_of, quota_denied,
};
use appforge::generation::limits::text_bytes;

use crate::routes::uploads::{check_attachments, check_request_tokens};
use crate::state::AppState;

/// The job kind chat messages are recorded under (analytics, quota denials).
const CHAT: &str = "chat";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatBody {
    prompt: String,
    #[serde(default)]
    mode: ChatMode,
    #[serde(default)]
    conversation_history: Vec<HistoryMessage>,
    current_app_state: Option<CurrentApp>,
    /// Uploads (reference images) to send with the message.
    #[serde(default)]
    attachments: Vec<Uuid>,
}

pub(crate) async fn chat(
    State(state): State<AppState>,
    space: Space,
    Json(mut body): Json<ChatBody>,
) -> Result<Response, ApiError> {
    check_prompt(&state, &body.prompt)?;
    let plan = plan_of(&state, space.quota_subject()).await?;
    check_history(&body.conversation_history, &plan)?;
    if let Some(current) = &mut body.current_app_state {
        check_files("currentAppState.files", &mut current.files, &plan)?;
    }
    let uploads = check_attachments(&state, &space, &plan, &body.attachments).await?;
    let text = text_bytes(
        &body.prompt,
        &body.conversation_history,
        body.current_app_state.as_ref().map(|a| a.files.as_slice()),
        None,
    );
    check_request_tokens(&state, &plan, text, &uploads)?;
    let attachments = appforge::generation::load_attachments(
        state.uploads(),
        space.owner.id(),
        &body.attachments,
    )
    .await
    .map_err(|e| match e {
        appforge_uploads::Error::NotFound(_) => ApiError::not_found("attachment"),
        e => ApiError::internal(&e),
    })?;
    let message = ChatMessage::new(ChatRequest {
        mode: body.mode,
        message: body.prompt,
        history: body.conversation_history,
        current_app: body.current_app_state.map(|a| a.files),
        attachments,
    });
    let message = match space.owner.org() {
        Some(org) => message.in_org(org),
        None => message,
    };
    let provider = state.provider().to_owned();
    let mut reply = match state.generation().chat(space.actor, message).await {
        Ok(reply) => reply,
        Err(SubmitError::Denied(status)) => {
            return Ok(quota_denied(&state, space.actor, CHAT, &status));
        }
        Err(error) => return Err(ApiError::internal(&error)),
    };
    let stream = async_stream::stream! {
        // Dropping the stream (the client went away) drops the reply, which stops the model
        // call; the service still settles what it spent.
        while let Some(chunk) = reply.next().await {
            match chunk {
                ChatChunk::Text(text) => {
                    yield Ok::<_, Infallible>(Event::default().event("delta").data(json!({ "text": text }).to_string()));
                }
                ChatChunk::Done { usage, stop_reason } => {
                    let body = json!({
                        "usage": crate::work::camel_case_keys(json!(usage)),
                        "stopReason": stop_reason,
                        "provider": provider,
                    });
                    yield Ok(Event::default().event("done").data(body.to_string()));
                    break;
                }
                ChatChunk::Failed { message, .. } => {
                    yield Ok(Event::default().event("error").data(json!({ "message": message }).to_string()));
                    break;
                }
                _ => {}
            }
        }
    };
    let stream = stream.take_until(state.shutdown_token().clone().cancelled_owned());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

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
