//! The HTTP edge over real sockets: a client that trickles its request head is closed within
//! the header-read timeout, an idle kept-alive connection within the keep-alive timeout, the
//! connection cap holds, and a graceful shutdown still ends every connection. `/metrics`
//! needs its token (or its own address) and computes the queue gauges once per refresh.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;
use uuid::Uuid;

use crate::support::{Db, FULL_APP, METRICS_TOKEN, Options, TestServer};

/// Long enough for anything that should happen at once, on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(10);

/// A server listening on a local port, as `appforge-server` runs it.
struct Listening {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Listening {
    async fn start(server: &TestServer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(appforge_server::server::serve(
            server.state.clone(),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Self { addr, stop, task }
    }

    /// Stops the server; it must be done within [`PATIENCE`].
    async fn shut_down(self) {
        let _ = self.stop.send(());
        timeout(PATIENCE, self.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

fn edge_options(vars: &[(&'static str, &str)]) -> Options {
    Options {
        env: vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        ..Options::api_only()
    }
}

/// Sends `GET path` on `stream` (kept alive) and reads the answer: its status line and body.
async fn get(stream: &mut TcpStream, path: &str) -> (String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}

/// Reads one response with a `content-length` body.
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed before the answer");
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(data[..head_end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("a content-length");
    while data.len() < head_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed inside the body");
        data.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8(data[head_end..head_end + length].to_vec()).unwrap();
    (head.lines().next().unwrap().to_owned(), body)
}

/// Whether the server closes `stream` within `within` (end of stream or a reset).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn a_client_trickling_its_request_head_is_closed_within_the_header_timeout() {
    let server = TestServer::start(
        Db::sqlite().await,
        edge_options(&[
            ("APPFORGE_HEADER_READ_TIMEOUT_SECS", "0.2"),
            ("APPFORGE_KEEP_ALIVE_SECS", "60"),
        ]),
    )
    .await;
    let listening = Listening::start(&server).await;

    // A well-behaved client is served.
    let mut fine = TcpStream::connect(listening.addr).await.unwrap();
    let (status, body) = get(&mut fine, "/healthz").await;
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok"));

    // A byte every 20 ms: the connection stays busy, the head never completes.
    let mut slow = TcpStream::connect(listening.addr).await.unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: ";
    let trickle = async {
        for byte in head.iter().chain(std::iter::repeat(&b'a')) {
            if slow.write_all(&[*byte]).await.is_err() {
                return;
            }
            let mut buf = [0u8; 1];
            if let Ok(Ok(0) | Err(_)) =
                timeout(Duration::from_millis(20), slow.read(&mut buf)).await
            {
                return;
            }
        }
    };
    assert!(
        timeout(PATIENCE, trickle).await.is_ok(),
        "the trickling client was never closed"
    );

    // A client that connects and sends nothing is closed too.
    let mut silent = TcpStream::connect(listening.addr).await.unwrap();
    assert!(closed_within(&mut silent, PATIENCE).await);

    let metrics = metrics(&server, Some(METRICS_TOKEN)).await;
    assert!(
        metrics.1.contains("appforge_http_header_timeouts_total 2"),
        "{}",
        metrics.1
    );
    listening.shut_down().await;
    server.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_within_the_keep_alive_timeout() {
    let server = TestServer::start(
        Db::sqlite().await,
        edge_options(&[
            ("APPFORGE_HEADER_READ_TIMEOUT_SECS", "30"),
            ("APPFORGE_KEEP_ALIVE_SECS", "0.2"),
        ]),
    )
    .await;
    let listening = Listening::start(&server).await;
    let mut stream = TcpStream::connect(listening.addr).await.unwrap();
    for _ in 0..3 {
        let (status, _) = get(&mut stream, "/healthz").await;
        assert_eq!(status, "HTTP/1.1 200 OK", "kept alive between requests");
    }
    assert!(closed_within(&mut stream, PATIENCE).await);
    listening.shut_down().await;
    server.stop().await;
}

#[tokio::test]
async fn the_connection_cap_holds_until_a_connection_closes() {
    let server = TestServer::start(
        Db::sqlite().await,
        edge_options(&[("APPFORGE_MAX_CONNECTIONS", "2")]),
    )
    .await;
    let listening = Listening::start(&server).await;
    let mut first = TcpStream::connect(listening.addr).await.unwrap();
    let mut second = TcpStream::connect(listening.addr).await.unwrap();
    assert_eq!(get(&mut first, "/healthz").await.0, "HTTP/1.1 200 OK");
    assert_eq!(get(&mut second, "/healthz").await.0, "HTTP/1.1 200 OK");

    // The third waits in the listen backlog: its request is not read.
    let mut third = TcpStream::connect(listening.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        timeout(Duration::from_millis(300), third.read(&mut buf))
            .await
            .is_err(),
        "a third connection was served past the cap of 2"
    );
    // The first two still are.
    assert_eq!(get(&mut second, "/healthz").await.0, "HTTP/1.1 200 OK");

    drop(first);
    let (status, body) = timeout(PATIENCE, read_response(&mut third))
        .await
        .expect("served once a connection closed");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok"));
    listening.shut_down().await;
    server.stop().await;
}

#[tokio::test]
async fn a_graceful_shutdown_ends_idle_connections_streams_and_stalled_heads() {
    let server = TestServer::start(
        Db::sqlite().await,
        edge_options(&[
            ("APPFORGE_HEADER_READ_TIMEOUT_SECS", "60"),
            ("APPFORGE_SHUTDOWN_GRACE_SECS", "1"),
        ]),
    )
    .await;
    let listening = Listening::start(&server).await;
    let user = Uuid::new_v4();
    // A pending job (no workers) and its open event stream.
    let job = server
        .generate(user, FULL_APP, serde_json::json!({ "prompt": "an app" }))
        .await;
    let client = reqwest::Client::new();
    let mut events = client
        .get(format!("http://{}/api/jobs/{job}/events", listening.addr))
        .bearer_auth(server.token(user))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), reqwest::StatusCode::OK);
    let first = events.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: state"));
    // An idle kept-alive connection, and one stuck half-way through its head.
    let mut idle = TcpStream::connect(listening.addr).await.unwrap();
    assert_eq!(get(&mut idle, "/healthz").await.0, "HTTP/1.1 200 OK");
    let mut stalled = TcpStream::connect(listening.addr).await.unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();

    listening.shut_down().await;
    assert!(closed_within(&mut idle, PATIENCE).await);
    assert!(closed_within(&mut stalled, PATIENCE).await);
    let rest = timeout(PATIENCE, async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(rest.is_ok(), "the event stream ended");
    server.stop().await;
}

/// `GET /metrics` through the router, with `token` as the bearer.
async fn metrics(server: &TestServer, token: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::builder().uri("/metrics");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = server.send(request.body(Body::empty()).unwrap()).await;
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn metrics_need_the_token() {
    let server = TestServer::start(Db::sqlite().await, Options::api_only()).await;
    assert_eq!(metrics(&server, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        metrics(&server, Some("not-the-token")).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A user's token is not the metrics token.
    let user_token = server.token(Uuid::new_v4());
    assert_eq!(
        metrics(&server, Some(&user_token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, text) = metrics(&server, Some(METRICS_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("appforge_queue_depth"), "{text}");
    server.stop().await;

    // Without a token configured the route is closed.
    let open = Options {
        env: vec![("APPFORGE_METRICS_TOKEN", String::new())],
        ..Options::api_only()
    };
    let server = TestServer::start(Db::sqlite().await, open).await;
    assert_eq!(metrics(&server, None).await.0, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn metrics_on_their_own_address_are_not_on_the_api() {
    // A free port for the metrics listener.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_addr = format!("127.0.0.1:{port}");
    let server = TestServer::start(
        Db::sqlite().await,
        Options {
            env: vec![
                ("APPFORGE_METRICS_ADDR", metrics_addr.clone()),
                ("APPFORGE_METRICS_TOKEN", String::new()),
            ],
            ..Options::api_only()
        },
    )
    .await;
    assert_eq!(metrics(&server, None).await.0, StatusCode::NOT_FOUND);
    let listening = Listening::start(&server).await;
    // The metrics listener is bound as the server starts.
    let answer = timeout(PATIENCE, async {
        loop {
            if let Ok(answer) = reqwest::get(format!("http://{metrics_addr}/metrics")).await {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the metrics address answers");
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("appforge_queue_depth")
    );
    let api = reqwest::get(format!("http://{}/metrics", listening.addr))
        .await
        .unwrap();
    assert_eq!(api.status(), reqwest::StatusCode::NOT_FOUND);
    // Only /metrics is served there.
    let other = reqwest::get(format!("http://{metrics_addr}/api/quota"))
        .await
        .unwrap();
    assert_eq!(other.status(), reqwest::StatusCode::NOT_FOUND);
    listening.shut_down().await;
    server.stop().await;
}

#[tokio::test]
async fn concurrent_scrapes_compute_the_queue_gauges_once_per_refresh() {
    let server = TestServer::start(
        Db::sqlite().await,
        edge_options(&[("APPFORGE_METRICS_REFRESH_SECS", "3600")]),
    )
    .await;
    let user = Uuid::new_v4();
    server
        .generate(user, FULL_APP, serde_json::json!({ "prompt": "an app" }))
        .await;
    let scrapes = (0..32).map(|_| metrics(&server, Some(METRICS_TOKEN)));
    let answers = futures::future::join_all(scrapes).await;
    for (status, text) in &answers {
        assert_eq!(*status, StatusCode::OK);
        assert!(text.contains("appforge_queue_depth 1"), "{text}");
    }
    // Another job, scraped within the refresh interval: the cached figures, no computation.
    server
        .generate(user, FULL_APP, serde_json::json!({ "prompt": "another" }))
        .await;
    let (_, text) = metrics(&server, Some(METRICS_TOKEN)).await;
    assert!(text.contains("appforge_queue_depth 1"), "{text}");
    assert!(
        text.contains("appforge_queue_stats_refreshes_total 1"),
        "{text}"
    );
    server.stop().await;
}
