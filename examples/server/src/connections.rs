//! The listener: HTTP/1.1 connections with a header-read timeout, a keep-alive idle timeout
//! and a cap on open connections, and a graceful drain.
//!
//! * **Header read.** A connection must deliver each request's head within
//!   `header_read_timeout`, counted from the connection's start or from the first byte of
//!   the next request: a client trickling a byte every few seconds is closed.
//! * **Keep-alive.** Between requests a connection may stay idle for `keep_alive_timeout`.
//!
//! Both are kept by a watchdog beside each connection; hyper's own header-read timer (it runs
//! from the end of the previous response) is set to their sum, as a backstop.
//! * **Cap.** At most `max_connections` are open; the next client is not accepted (it waits
//!   in the kernel's listen backlog) until one closes.
//! * **Drain.** On shutdown the listener closes, idle connections close, busy ones finish
//!   their response (open event streams end: the caller cancels them), and whatever is still
//!   open after `drain` is closed.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::EdgeConfig;
use crate::metrics::Metrics;

/// The address of the client a request came from (the TCP peer), a request extension. The
/// audit log records its IP; behind a proxy it is the proxy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// The timers and cap of a listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) max_connections: usize,
    /// How long open connections may take to finish after shutdown begins.
    pub(crate) drain: Duration,
}

impl Limits {
    pub(crate) fn new(edge: &EdgeConfig, drain: Duration) -> Self {
        Self {
            header_read_timeout: edge.header_read_timeout,
            keep_alive_timeout: edge.keep_alive_timeout,
            max_connections: edge.max_connections.max(1),
            drain,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains the open connections
/// (up to `limits.drain`).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let (closing, closing_rx) = watch::channel(false);
    let force = CancellationToken::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // A permit first: past the cap, the next connection stays in the listen backlog.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::error!(%error, "accepting a connection failed");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            app: app.clone(),
            limits,
            metrics: metrics.clone(),
            closing: closing_rx.clone(),
            force: force.clone(),
        };
        connections.spawn(async move {
            let _permit = permit;
            connection.run(stream).await;
        });
    }
    drop(listener);
    let _ = closing.send(true);
    connections.close();
    if tokio::time::timeout(limits.drain, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "closing the connections still open after the drain period"
        );
        force.cancel();
        connections.wait().await;
    }
}

/// Errors about one connection, which the listener survives.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A request's head is being read, since then (or the connection is new).
    Head(Instant),
    /// This many requests are being answered.
    Busy(usize),
    /// Waiting for the next request, since then.
    Idle(Instant),
}

struct Connection {
    app: Router,
    limits: Limits,
    metrics: Metrics,
    closing: watch::Receiver<bool>,
    force: CancellationToken,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let peer = stream.peer_addr().ok().map(ClientAddr);
        let _open = self.metrics.connection_opened();
        let (phase, mut watched) = watch::channel(Phase::Head(Instant::now()));
        let phase = Arc::new(phase);
        let io = TokioIo::new(Watched {
            inner: stream,
            phase: phase.clone(),
        });
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let app = app.clone();
            let in_flight = InFlight::start(phase.clone());
            if let Some(peer) = peer {
                request.extensions_mut().insert(peer);
            }
            async move {
                let Ok(response) = app.oneshot(request.map(Body::new)).await;
                Ok::<_, Infallible>(response.map(|body| crate::guarded::guarded(body, in_flight)))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        // hyper's header-read timer runs from the end of the previous response, over the idle
        // wait and the head together: the sum of both timeouts, a backstop to the watchdog's.
        builder.timer(TokioTimer::new()).header_read_timeout(
            self.limits
                .keep_alive_timeout
                .saturating_add(self.limits.header_read_timeout),
        );
        let mut connection = pin!(builder.serve_connection(io, service));
        let mut overdue = pin!(watchdog(&mut watched, self.limits));
        let mut draining = *self.closing.borrow();
        if draining {
            connection.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    break;
                }
                late = &mut overdue => {
                    if late == Overdue::Head {
                        tracing::debug!("closing a connection whose request head did not arrive in time");
                        self.metrics.header_timeout();
                    }
                    break;
                }
                changed = self.closing.changed(), if !draining => {
                    draining = true;
                    if changed.is_ok() {
                        connection.as_mut().graceful_shutdown();
                    }
                }
                () = self.force.cancelled() => break,
            }
        }
    }
}

/// What a connection took too long for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overdue {
    /// A request's head.
    Head,
    /// The next request, on an idle connection.
    Idle,
}

/// Resolves when a request head has been in progress for longer than the header-read
/// timeout, or the connection idle for longer than the keep-alive timeout.
async fn watchdog(phase: &mut watch::Receiver<Phase>, limits: Limits) -> Overdue {
    loop {
        let current = *phase.borrow_and_update();
        let deadline = match current {
            Phase::Head(since) => Some((since + limits.header_read_timeout, Overdue::Head)),
            Phase::Idle(since) => Some((since + limits.keep_alive_timeout, Overdue::Idle)),
            Phase::Busy(_) => None,
        };
        let wait_deadline = async {
            match deadline {
                Some((at, overdue)) => {
                    tokio::time::sleep_until(at).await;
                    overdue
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            overdue = wait_deadline => {
                if *phase.borrow() == current {
                    return overdue;
                }
            }
            changed = phase.changed() => {
                if changed.is_err() {
                    // The connection is ending: nothing more to watch.
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// One request being answered: from its head until its response body ends.
struct InFlight(Arc<watch::Sender<Phase>>);

impl InFlight {
    fn start(phase: Arc<watch::Sender<Phase>>) -> Self {
        phase.send_modify(|p| {
            *p = match *p {
                Phase::Busy(n) => Phase::Busy(n + 1),
                Phase::Head(_) | Phase::Idle(_) => Phase::Busy(1),
            };
        });
        Self(phase)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|p| {
            *p = match *p {
                Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                _ => Phase::Idle(Instant::now()),
            };
        });
    }
}

/// The socket, noting the first byte of each request head.
struct Watched {
    inner: TcpStream,
    phase: Arc<watch::Sender<Phase>>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.phase.send_if_modified(|p| {
                let starts = matches!(*p, Phase::Idle(_));
                if starts {
                    *p = Phase::Head(Instant::now());
                }
                starts
            });
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
