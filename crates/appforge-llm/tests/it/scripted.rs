use appforge_llm::{
    ApiErrorKind, Delta, Error, Fault, MessageRequest, Provider, Script, ScriptedProvider,
    StopReason, StreamEvent,
};
use futures::StreamExt;

fn request() -> MessageRequest {
    MessageRequest::new("claude-test", 256).user("make an app")
}

async fn collect(provider: &dyn Provider) -> Vec<Result<StreamEvent, Error>> {
    provider.stream(request()).await.unwrap().collect().await
}

#[tokio::test]
async fn replays_one_transcript_per_call_in_order_and_records_requests() {
    let provider = ScriptedProvider::new()
        .with(ScriptedProvider::text_transcript(
            ["one"],
            &StopReason::EndTurn,
        ))
        .with(ScriptedProvider::text_transcript(
            ["two"],
            &StopReason::MaxTokens,
        ));
    let first = collect(&provider).await;
    let second = collect(&provider).await;
    let text = |events: &[Result<StreamEvent, Error>]| {
        events
            .iter()
            .filter_map(|e| e.as_ref().unwrap().text().map(str::to_owned))
            .collect::<String>()
    };
    assert_eq!(text(&first), "one");
    assert_eq!(text(&second), "two");
    assert!(matches!(
        second[second.len() - 2],
        Ok(StreamEvent::MessageDelta {
            stop_reason: Some(StopReason::MaxTokens),
            ..
        })
    ));
    assert_eq!(provider.requests().len(), 2);
    assert_eq!(provider.remaining(), 0);
    let err = provider.stream(request()).await.err().unwrap();
    assert_eq!(
        err.to_string(),
        "scripted provider: no transcript queued for request 3"
    );
}

#[tokio::test]
async fn chunking_does_not_change_the_events() {
    let transcript =
        ScriptedProvider::text_transcript(["a\u{e9}", "b\n", "c"], &StopReason::EndTurn)
            .replace('\n', "\r\n");
    let whole = ScriptedProvider::new().with(transcript.as_str());
    let chunked = ScriptedProvider::new().with(Script::new(transcript.as_str()).chunk_size(3));
    let a: Vec<_> = collect(&whole)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let b: Vec<_> = collect(&chunked)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(a.len(), 8);
    assert_eq!(a, b);
}

#[tokio::test]
async fn injects_an_http_status() {
    let provider = ScriptedProvider::new().with(Script::new("").fault(Fault::Status {
        status: 529,
        kind: ApiErrorKind::Overloaded,
        retry_after: None,
    }));
    let err = provider.stream(request()).await.err().unwrap();
    assert_eq!(err.status(), Some(529));
    assert_eq!(err.api_error_kind(), Some(&ApiErrorKind::Overloaded));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn injects_a_mid_stream_error_and_a_cut_connection() {
    let transcript = ScriptedProvider::text_transcript(["x", "y"], &StopReason::EndTurn);
    let provider = ScriptedProvider::new()
        .with(Script::new(transcript.as_str()).fault(Fault::ErrorEvent {
            after: 3,
            kind: ApiErrorKind::Overloaded,
        }))
        .with(Script::new(transcript.as_str()).fault(Fault::Cut { after: 1 }));
    let events = collect(&provider).await;
    assert_eq!(events.len(), 4);
    assert!(matches!(
        &events[2],
        Ok(StreamEvent::ContentBlockDelta { delta: Delta::Text { text }, .. }) if text == "x"
    ));
    let err = events[3].as_ref().unwrap_err();
    assert_eq!(err.api_error_kind(), Some(&ApiErrorKind::Overloaded));
    let events = collect(&provider).await;
    assert_eq!(events.len(), 2);
    assert!(matches!(events[1], Err(Error::Connection { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_stall_never_yields_again() {
    let transcript = ScriptedProvider::text_transcript(["x"], &StopReason::EndTurn);
    let provider =
        ScriptedProvider::new().with(Script::new(transcript).fault(Fault::Stall { after: 2 }));
    let mut events = provider.stream(request()).await.unwrap();
    assert!(events.next().await.is_some());
    assert!(events.next().await.is_some());
    let next = tokio::time::timeout(std::time::Duration::from_secs(3600), events.next()).await;
    assert!(next.is_err(), "a stalled stream yielded {next:?}");
}

#[tokio::test]
async fn an_error_event_in_a_transcript_ends_the_stream_as_an_error() {
    let transcript = "event: ping\ndata: {\"type\":\"ping\"}\n\n\
        event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n\
        event: ping\ndata: {\"type\":\"ping\"}\n\n";
    let provider = ScriptedProvider::new().with(transcript);
    let events = collect(&provider).await;
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1].as_ref().unwrap_err().to_string(),
        "provider error in stream: overloaded_error: Overloaded (request req_scripted)"
    );
}
