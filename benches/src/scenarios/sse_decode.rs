//! `sse-decode`: stream a Messages API response through the public client and count events.
//!
//! `--url URL` sends a streaming request to `URL` (the base URL; the path is the API's).
//! `--serve-deltas N` starts a loopback server in-process that answers with a stream of `N`
//! text deltas. Either way the same request is also sent once per run to time reading the
//! raw bytes, for comparison.

use std::time::{Duration, Instant};

use appforge_llm::{Client, MessageRequest, RetryPolicy, StreamEvent, Timeouts};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Flags of the `sse-decode` scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Base URL of a server that answers `POST /v1/messages` with an SSE stream.
    #[arg(
        long,
        conflicts_with = "serve_deltas",
        required_unless_present = "serve_deltas"
    )]
    url: Option<String>,
    /// Serve a stream of this many text deltas from an in-process loopback server instead.
    #[arg(long)]
    serve_deltas: Option<u64>,
    /// How many runs; the best one is reported.
    #[arg(long, default_value_t = 5)]
    runs: u32,
}

struct Run {
    events: u64,
    chars: u64,
    elapsed: Duration,
}

pub(crate) async fn run(args: &Args) -> Result<Report, BoxError> {
    let (url, served) = match (&args.url, args.serve_deltas) {
        (Some(url), _) => (url.clone(), None),
        (None, Some(deltas)) => {
            let body = transcript(deltas);
            let bytes = body.len();
            (serve(body).await?, Some(bytes))
        }
        (None, None) => return Err("give --url or --serve-deltas".into()),
    };
    let client = Client::builder()
        .api_key("bench-key")
        .base_url(&url)
        .timeouts(Timeouts::none())
        .retry_policy(RetryPolicy::never())
        .build()?;
    let request = MessageRequest::new("claude-bench", 1024).user("stream");
    let mut best: Option<Run> = None;
    for _ in 0..args.runs.max(1) {
        let run = decode_once(&client, &request).await?;
        eprintln!("sse-decode: {} events in {:?}", run.events, run.elapsed);
        if best.as_ref().is_none_or(|b| run.elapsed < b.elapsed) {
            best = Some(run);
        }
    }
    let best = best.ok_or("no run")?;
    let mut raw_best = Duration::MAX;
    let mut bytes = 0;
    for _ in 0..args.runs.max(1) {
        let (elapsed, read) = read_raw(&url, &request).await?;
        raw_best = raw_best.min(elapsed);
        bytes = read;
    }
    if let Some(served) = served {
        debug_assert_eq!(served, bytes);
    }
    let mut report = Report::new("sse-decode", best.events, best.elapsed)
        .with("bytes", bytes)
        .with("chars", best.chars)
        .with("raw_read_seconds", raw_best.as_secs_f64())
        .with(
            "decode_over_raw",
            best.elapsed.as_secs_f64() / raw_best.as_secs_f64(),
        );
    if let Some(deltas) = args.serve_deltas {
        let body = transcript(deltas);
        let mut in_memory = Duration::MAX;
        for _ in 0..args.runs.max(1) {
            in_memory = in_memory.min(decode_in_memory(&body)?);
        }
        report = report.with("in_memory_decode_seconds", in_memory.as_secs_f64());
    }
    Ok(report)
}

async fn decode_once(client: &Client, request: &MessageRequest) -> Result<Run, BoxError> {
    let start = Instant::now();
    let mut stream = client.create_stream(request).await?;
    let mut events = 0_u64;
    let mut chars = 0_u64;
    while let Some(event) = stream.next().await {
        let event = event?;
        events += 1;
        if let StreamEvent::ContentBlockDelta { .. } = &event
            && let Some(text) = event.text()
        {
            chars += u64::try_from(text.chars().count())?;
        }
    }
    Ok(Run {
        events,
        chars,
        elapsed: start.elapsed(),
    })
}

/// Decodes the body from memory in 16 KiB chunks: the decoder and event parsing alone.
fn decode_in_memory(body: &[u8]) -> Result<Duration, BoxError> {
    let start = Instant::now();
    let mut decoder = appforge_llm::SseDecoder::new();
    let mut events = 0_u64;
    for chunk in body.chunks(16 * 1024) {
        decoder.feed(chunk, |frame| {
            let event = StreamEvent::from_frame(&frame)?;
            std::hint::black_box(&event);
            events += 1;
            Ok::<_, appforge_llm::Error>(())
        })?;
    }
    std::hint::black_box(events);
    Ok(start.elapsed())
}

/// Sends the same request and reads the response's bytes without decoding them.
async fn read_raw(url: &str, request: &MessageRequest) -> Result<(Duration, usize), BoxError> {
    let mut body = serde_json::to_value(request)?;
    body["stream"] = serde_json::Value::Bool(true);
    let http = reqwest::Client::new();
    let start = Instant::now();
    let response = http
        .post(format!("{url}/v1/messages"))
        .header("x-api-key", "bench-key")
        .header("anthropic-version", appforge_llm::DEFAULT_API_VERSION)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body)?)
        .send()
        .await?
        .error_for_status()?;
    let mut stream = response.bytes_stream();
    let mut bytes = 0_usize;
    while let Some(chunk) = stream.next().await {
        bytes += chunk?.len();
    }
    Ok((start.elapsed(), bytes))
}

/// A Messages API transcript of `deltas` text deltas.
fn transcript(deltas: u64) -> Vec<u8> {
    let words = [
        "Hello", " world", ", this", " is", " a", " stream", " of", " text\\n",
    ];
    let mut out = String::with_capacity(usize::try_from(deltas).unwrap_or(0) * 100 + 1024);
    out.push_str("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-bench\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n");
    out.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    for i in 0..deltas {
        let word = words[usize::try_from(i % 8).unwrap_or(0)];
        out.push_str("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"");
        out.push_str(word);
        out.push_str("\"}}\n\n");
    }
    out.push_str(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    );
    out.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":100}}\n\n");
    out.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    out.into_bytes()
}

/// Serves `body` as the answer to every request, one connection per request.
async fn serve(body: Vec<u8>) -> Result<String, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let body: std::sync::Arc<[u8]> = body.into();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                if read_request(&mut socket).await.is_err() {
                    return;
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nrequest-id: req_bench\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok(url)
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    let mut seen = Vec::new();
    let mut buf = [0_u8; 8192];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                return Ok(());
            }
        }
    }
}
