//! Stalls and cut connections, from a raw loopback server in the test's own runtime, with
//! the clock paused: a stall lets the runtime jump straight to the timeout.

use std::time::Duration;

use appforge_llm::{Client, Error, MessageRequest, RetryPolicy, TimeoutKind, Timeouts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::support::{drain, text_of, transcript};

#[derive(Clone)]
enum Step {
    Write(String),
    Hang,
    Close,
}

const HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nrequest-id: req_raw\r\ncontent-length: 1000000\r\n\r\n";

/// Serves one scripted connection per entry, in order of arrival.
async fn raw_server(connections: Vec<Vec<Step>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        for steps in connections {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                read_request(&mut socket).await;
                for step in steps {
                    match step {
                        Step::Write(bytes) => socket.write_all(bytes.as_bytes()).await.unwrap(),
                        Step::Hang => std::future::pending::<()>().await,
                        Step::Close => return,
                    }
                }
            });
        }
    });
    url
}

async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                return;
            }
        }
        if n == 0 {
            return;
        }
    }
}

fn client(url: &str, timeouts: Timeouts) -> Client {
    Client::builder()
        .api_key("k")
        .base_url(url)
        .timeouts(timeouts)
        .retry_policy(RetryPolicy::default().jitter(0.0))
        .build()
        .unwrap()
}

fn request() -> MessageRequest {
    MessageRequest::new("m", 64).user("hi")
}

/// The text transcript up to and including its first text delta.
fn up_to_first_delta() -> String {
    let full = transcript("text");
    let start = full.find("event: content_block_delta").unwrap();
    let end = start + full[start..].find("\n\n").unwrap() + 2;
    full[..end].to_owned()
}

fn up_to_message_start() -> String {
    let full = transcript("text");
    full[..full.find("\n\n").unwrap() + 2].to_owned()
}

#[tokio::test(start_paused = true)]
async fn a_stall_after_content_hits_the_idle_timeout() {
    let url = raw_server(vec![vec![
        Step::Write(format!("{HEAD}{}", up_to_first_delta())),
        Step::Hang,
    ]])
    .await;
    let mut timeouts = Timeouts::none();
    timeouts.idle = Some(Duration::from_secs(5));
    let stream = client(&url, timeouts)
        .create_stream(&request())
        .await
        .unwrap();
    let started = Instant::now();
    let events = drain(stream).await;
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!(text_of(&events), "Hello");
    let err = events.last().unwrap().as_ref().unwrap_err();
    let Error::Interrupted { source, events, .. } = err else {
        panic!("expected an interruption, got {err:?}");
    };
    assert_eq!(*events, 4, "message_start, block start, ping, delta");
    assert!(
        matches!(
            **source,
            Error::Timeout {
                kind: TimeoutKind::Idle,
                ..
            }
        ),
        "{source:?}"
    );
    assert_eq!(err.request_id(), Some("req_raw"));
}

#[tokio::test(start_paused = true)]
async fn a_stall_before_the_first_event_times_out_and_is_retried() {
    let url = raw_server(vec![
        vec![Step::Write(HEAD.to_owned()), Step::Hang],
        vec![
            Step::Write(format!("{HEAD}{}", transcript("text"))),
            Step::Close,
        ],
    ])
    .await;
    let mut timeouts = Timeouts::none();
    timeouts.first_byte = Some(Duration::from_secs(20));
    let started = Instant::now();
    let stream = client(&url, timeouts)
        .create_stream(&request())
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(20));
    assert_eq!(stream.retries(), 1);
    let events = drain(stream).await;
    assert_eq!(text_of(&events), "Hello, w\u{f6}rld \u{1f600}\n");
    // The second response was cut short of its content-length, but after message_stop.
    assert!(events.iter().take(events.len() - 1).all(Result::is_ok));
}

#[tokio::test(start_paused = true)]
async fn a_cut_after_content_is_an_interruption() {
    let url = raw_server(vec![vec![
        Step::Write(format!("{HEAD}{}", up_to_first_delta())),
        Step::Close,
    ]])
    .await;
    let stream = client(&url, Timeouts::none())
        .create_stream(&request())
        .await
        .unwrap();
    let events = drain(stream).await;
    assert_eq!(text_of(&events), "Hello");
    let err = events.last().unwrap().as_ref().unwrap_err();
    let Error::Interrupted { source, .. } = err else {
        panic!("expected an interruption, got {err:?}");
    };
    assert!(matches!(**source, Error::Connection { .. }), "{source:?}");
}

#[tokio::test(start_paused = true)]
async fn a_cut_before_content_is_retried() {
    let url = raw_server(vec![
        vec![
            Step::Write(format!("{HEAD}{}", up_to_message_start())),
            Step::Close,
        ],
        vec![
            Step::Write(format!("{HEAD}{}", transcript("text"))),
            Step::Hang,
        ],
    ])
    .await;
    let stream = client(&url, Timeouts::none())
        .create_stream(&request())
        .await
        .unwrap();
    assert_eq!(stream.retries(), 1);
    let message = stream.final_message().await.unwrap();
    assert_eq!(message.id, "msg_01Text");
    assert_eq!(message.text(), "Hello, w\u{f6}rld \u{1f600}\n");
}

#[tokio::test(start_paused = true)]
async fn a_total_timeout_bounds_everything() {
    let url = raw_server(vec![vec![
        Step::Write(format!("{HEAD}{}", up_to_first_delta())),
        Step::Hang,
    ]])
    .await;
    let mut timeouts = Timeouts::none();
    timeouts.total = Some(Duration::from_secs(30));
    timeouts.idle = Some(Duration::from_secs(3600));
    let stream = client(&url, timeouts)
        .create_stream(&request())
        .await
        .unwrap();
    let events = drain(stream).await;
    let err = events.last().unwrap().as_ref().unwrap_err();
    let Error::Interrupted { source, .. } = err else {
        panic!("expected an interruption, got {err:?}");
    };
    assert!(
        matches!(
            **source,
            Error::Timeout {
                kind: TimeoutKind::Total,
                ..
            }
        ),
        "{source:?}"
    );
}

/// Serves `body` as the whole (content-length) answer of one streamed request.
async fn whole_body(body: String) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(crate::support::sse_response(body))
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_last_event_without_its_blank_line_is_delivered() {
    let full = transcript("text");
    for ending in ["", "\n", "\r\n"] {
        let body = format!("{}{ending}", full.trim_end());
        let server = whole_body(body).await;
        let message = crate::support::client(&server.uri())
            .create_stream(&request())
            .await
            .unwrap()
            .final_message()
            .await
            .unwrap_or_else(|e| panic!("ending {ending:?}: {e}"));
        assert_eq!(message.text(), "Hello, w\u{f6}rld \u{1f600}\n");
    }
}

#[tokio::test]
async fn a_stream_cut_inside_an_event_is_an_interruption() {
    let full = transcript("text");
    let second = full.rfind("event: content_block_delta").unwrap();
    let cut_in_delta = &full[..second + "event: content_block_delta\ndata: {\"type\":\"con".len()];
    let stop = full.find("event: message_stop").unwrap();
    let cut_in_stop = &full[..stop + "event: message_stop\ndata: {\"type\":\"message_s".len()];
    for (body, text) in [
        (cut_in_delta, "Hello"),
        (cut_in_stop, "Hello, w\u{f6}rld \u{1f600}\n"),
    ] {
        let server = whole_body(body.to_owned()).await;
        let stream = crate::support::client(&server.uri())
            .create_stream(&request())
            .await
            .unwrap();
        let events = drain(stream).await;
        assert_eq!(text_of(&events), text);
        let err = events.last().unwrap().as_ref().unwrap_err();
        let Error::Interrupted { source, .. } = err else {
            panic!("expected an interruption, got {err:?}");
        };
        assert!(source.to_string().contains("inside an event"), "{source}");
    }
}
