//! `POST /api/chat`: the reply streamed as SSE, `delta` events then `done` with usage.

use std::convert::Infallible;
use std::time::Duration;

use appforge_llm::{ChatMode, ChatRequest, HistoryMessage};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;
use crate::routes::generate::{CurrentApp, check_prompt};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChatBody {
    prompt: String,
    #[serde(default)]
    mode: ChatMode,
    #[serde(default)]
    conversation_history: Vec<HistoryMessage>,
    current_app_state: Option<CurrentApp>,
}

enum Chunk {
    Delta(String),
    Done(serde_json::Value),
    Failed(String),
}

pub(crate) async fn chat(
    State(state): State<AppState>,
    _user: AuthUser,
    Json(body): Json<ChatBody>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    check_prompt(&state, &body.prompt)?;
    let request = ChatRequest {
        mode: body.mode,
        message: body.prompt,
        history: body.conversation_history,
        current_app: body.current_app_state.map(|a| a.files),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let pipelines = state.pipelines().clone();
    let provider = state.provider().to_owned();
    tokio::spawn(async move {
        let deltas = tx.clone();
        let report = move |progress| {
            if let appforge_llm::Progress::TextDelta { text } = progress {
                let _ = deltas.send(Chunk::Delta(text));
            }
        };
        let last = match pipelines.chat(&request, report, &token).await {
            Ok(reply) => Chunk::Done(json!({
                "usage": crate::work::camel_case_keys(json!(reply.usage)),
                "stopReason": reply.stop_reason,
                "provider": provider,
            })),
            Err(error) => {
                tracing::warn!(%error, "chat failed");
                Chunk::Failed(error.to_string())
            }
        };
        let _ = tx.send(last);
    });
    let stream = async_stream::stream! {
        // Dropping the stream (the client went away) stops the model call.
        let _guard = cancel.drop_guard();
        while let Some(chunk) = rx.recv().await {
            match chunk {
                Chunk::Delta(text) => {
                    yield Ok(Event::default().event("delta").data(json!({ "text": text }).to_string()));
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
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
