//! A response body that holds a guard (a stream slot, a request counted in flight) until the
//! body ends or is dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

/// `body`, holding `guard` until its last frame was read or it is dropped (the client went
/// away).
pub(crate) fn guarded<G: Send + Unpin + 'static>(body: Body, guard: G) -> Body {
    Body::new(Guarded {
        body,
        guard: Some(guard),
    })
}

struct Guarded<G> {
    body: Body,
    guard: Option<G>,
}

impl<G: Send + Unpin> hyper::body::Body for Guarded<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.body).poll_frame(cx);
        if matches!(poll, Poll::Ready(None | Some(Err(_)))) {
            // Released as soon as the body ends, before hyper gets round to dropping it.
            this.guard = None;
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;

    use super::*;

    struct Count(Arc<AtomicUsize>);

    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn the_guard_is_released_when_the_body_ends_or_is_dropped() {
        let released = Arc::new(AtomicUsize::new(0));
        let body = guarded(Body::from("data"), Count(released.clone()));
        let mut body = body.into_data_stream();
        assert_eq!(released.load(Ordering::SeqCst), 0);
        use futures::StreamExt;
        assert_eq!(body.next().await.unwrap().unwrap(), "data");
        assert!(body.next().await.is_none());
        assert_eq!(released.load(Ordering::SeqCst), 1, "released at the end");

        let body = guarded(Body::from("unread"), Count(released.clone()));
        drop(body);
        assert_eq!(released.load(Ordering::SeqCst), 2, "released when dropped");

        let collected = guarded(Body::from("all"), Count(released.clone()))
            .collect()
            .await
            .unwrap();
        assert_eq!(collected.to_bytes(), "all");
        assert_eq!(released.load(Ordering::SeqCst), 3);
    }
}
