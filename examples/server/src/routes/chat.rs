//! `POST /api/chat`: the reply streamed as SSE, `delta` events then `done` with usage.
//!
//! A chat message costs quota like a generation: the request is checked against the plan's
//! request limits (`400`), a chat message is reserved against the plan's daily count before
//! the model is called (`429` with the quota body when none is left), and the reservation is
//! settled by the rules of [`crate::settlement`] when the model call ends. The call and its
//! settlement run on a task of their own: a client that goes away mid-reply stops the model
//! call, and the message is still charged with the tokens it spent.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use appforge_analytics::{AnalyticsEvent, EventType, GenerationFacts};
use appforge_llm::{ChatMode, ChatRequest, HistoryMessage, Usage};
use appforge_quota::Resource;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Json;
use crate::routes::Space;
use crate::routes::generate::{CurrentApp, check_files, check_history, check_prompt, plan_of};
use crate::routes::uploads::{
    check_attachments, check_request_tokens, load_attachments, text_bytes,
};
use crate::settlement::{ChatEnd, settle_chat};
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

enum Chunk {
    Delta(String),
    Done(serde_json::Value),
    Failed(&'static str),
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
    let attachments = load_attachments(state.uploads(), space.owner.id(), &body.attachments)
        .await
        .map_err(|e| match e {
            appforge_uploads::Error::NotFound(_) => ApiError::not_found("attachment"),
            e => ApiError::internal(&e),
        })?;
    let reservation = match crate::routes::generate::reserve(
        &state,
        space.quota_subject(),
        Resource::ChatMessage,
        CHAT,
    )
    .await?
    {
        Ok(reservation) => reservation,
        Err(denied) => return Ok(denied),
    };
    let request = ChatRequest {
        mode: body.mode,
        message: body.prompt,
        history: body.conversation_history,
        current_app: body.current_app_state.map(|a| a.files),
        attachments,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let pipelines = crate::work::pipelines_for(&state, &plan);
    let provider = state.provider().to_owned();
    let quota = state.quota().clone();
    let analytics = state.analytics().clone();
    let model = pipelines.model_name().to_owned();
    let user_id = space.actor;
    let plan_id = plan.id.clone();
    // The model call and its settlement outlive the response: dropping the stream (the client
    // went away) cancels the call, and this task still settles what it spent.
    state.spawn_settled(async move {
        let streamed = Arc::new(AtomicBool::new(false));
        let reported = Arc::new(Mutex::new(Usage::default()));
        let deltas = tx.clone();
        let (seen, last_usage) = (Arc::clone(&streamed), Arc::clone(&reported));
        let report = move |progress| match progress {
            appforge_llm::Progress::TextDelta { text } => {
                seen.store(true, Ordering::Relaxed);
                let _ = deltas.send(Chunk::Delta(text));
            }
            appforge_llm::Progress::Usage { usage } => *last_usage.lock() = usage,
            _ => {}
        };
        let result = pipelines.chat(&request, report, &token).await;
        let reported = *reported.lock();
        let (end, usage, last) = match result {
            Ok(reply) => (
                ChatEnd::Replied,
                reply.usage,
                Some(Chunk::Done(json!({
                    "usage": crate::work::camel_case_keys(json!(reply.usage)),
                    "stopReason": reply.stop_reason,
                    "provider": provider,
                }))),
            ),
            Err(appforge_llm::Error::Cancelled { usage, .. }) => (ChatEnd::Stopped, usage, None),
            Err(error @ appforge_llm::Error::Refused { .. }) => {
                tracing::info!(%error, "chat refused");
                (
                    ChatEnd::Refused,
                    reported,
                    Some(Chunk::Failed("the model declined to answer this message")),
                )
            }
            Err(error) => {
                tracing::warn!(%error, "chat failed");
                let usage = error.partial_message().map_or(reported, |m| m.usage);
                (
                    ChatEnd::Failed,
                    usage,
                    Some(Chunk::Failed(
                        "the reply failed; this message does not count against your plan",
                    )),
                )
            }
        };
        if let Some(last) = last {
            let _ = tx.send(last);
        }
        let tokens = usage.input_tokens.saturating_add(usage.output_tokens);
        let spent = streamed.load(Ordering::Relaxed) || tokens > 0;
        let charged = end.charged(spent);
        if let Err(error) = settle_chat(&quota, reservation.id, charged, tokens).await {
            tracing::warn!(reservation = %reservation.id, %error, "settling a chat message failed");
        }
        record(&analytics, user_id, &plan_id, &model, end, charged, usage);
    });
    let stream = async_stream::stream! {
        // Dropping the stream (the client went away) stops the model call.
        let _guard = cancel.drop_guard();
        while let Some(chunk) = rx.recv().await {
            match chunk {
                Chunk::Delta(text) => {
                    yield Ok::<_, Infallible>(Event::default().event("delta").data(json!({ "text": text }).to_string()));
                }
                Chunk::Done(body) => {
                    yield Ok(Event::default().event("done").data(body.to_string()));
                    break;
                }
                Chunk::Failed(message) => {
                    yield Ok(Event::default().event("error").data(json!({ "message": message }).to_string()));
                    break;
                }
            }
        }
    };
    let stream = stream.take_until(state.shutdown_token().clone().cancelled_owned());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Records a `chat_message` event: how the reply ended, whether it counted, the plan, the
/// model and the tokens (priced like a generation's).
fn record(
    analytics: &crate::Analytics,
    user: Uuid,
    plan: &appforge_quota::PlanId,
    model: &str,
    end: ChatEnd,
    charged: bool,
    usage: Usage,
) {
    let facts = GenerationFacts::new(CHAT, plan.as_str()).usage(
        model,
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    );
    let mut properties = facts.to_properties();
    if let Some(map) = properties.as_object_mut() {
        map.insert("outcome".into(), json!(end.as_str()));
        map.insert("charged".into(), json!(charged));
    }
    analytics.recorder().record(
        AnalyticsEvent::new(
            user,
            EventType::Other("chat_message".into()),
            chrono::Utc::now(),
        )
        .with_properties(properties),
    );
}
