//! Helpers to test event stream handlers (feature `test-util`).
//!
//! [`sse_events`] sends one request to a [`Router`](axum::Router) (or any
//! tower service) in process, with no network, and returns the events of
//! the answer as a [`Stream`] of [`DecodedEvent`]s, decoded by the
//! spec-exact [`decode`](crate::decode) module. It works with
//! [`SseLayer`](crate::SseLayer) routes: polling the stream drives the
//! handler.
//!
//! It is made for tests, so it panics with a clear message instead of
//! returning errors: when the answer is not `200 OK` with the content type
//! `text/event-stream` (the message quotes the start of the body), when no
//! event comes within the [timeout](SseEvents::timeout) (5 s by default, per
//! event), or when the body fails. Under `#[tokio::test(start_paused = true)]`
//! the timeout counts paused time, so a handler that waits on tokio timers
//! still gets its events.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use axum_sse::{decode::DecodedEvent, test_util::sse_events, Event, SseLayer, SseWriter};
//! use futures_util::StreamExt;
//!
//! async fn count(mut sse: SseWriter) {
//!     for i in 1.. {
//!         if sse.send(Event::new().id(i).data(i.to_string())).await.is_err() {
//!             break; // the test dropped the stream
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new().route("/count", get(count)).layer(SseLayer::new());
//! let events: Vec<DecodedEvent> = sse_events(app, "/count").take(2).collect().await;
//! assert_eq!(
//!     events,
//!     [DecodedEvent::new("message", "1", "1"), DecodedEvent::new("message", "2", "2")]
//! );
//! # }
//! ```
//!
//! With request headers, a shorter timeout, and a look at the `retry` field:
//!
//! ```
//! use std::time::Duration;
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use axum_sse::{test_util::sse_events, Event, SseLayer, SseWriter};
//! use futures_util::StreamExt;
//!
//! async fn resume(mut sse: SseWriter) {
//!     let next: u64 = sse.last_event_id().and_then(|id| id.parse().ok()).unwrap_or(0) + 1;
//!     let _ = sse.send(Event::new().id(next).data("resumed")).await;
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new()
//!     .route("/", get(resume))
//!     .layer(SseLayer::builder().retry(Duration::from_secs(2)).build());
//! let request = Request::get("/").header("last-event-id", "41").body(Body::empty()).unwrap();
//! let mut events = sse_events(app, request).timeout(Duration::from_secs(1));
//! assert_eq!(events.next().await.unwrap().last_event_id, "42");
//! assert_eq!(events.retry(), Some(Duration::from_secs(2)));
//! assert!(events.next().await.is_none()); // the handler returned
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::{body::Body, BoxError};
use bytes::Bytes;
use futures_util::stream::{FusedStream, Stream};
use http::{header, HeaderValue, Request, Response, StatusCode, Uri};
use tokio::time::{Instant, Sleep};
use tower::{Service, ServiceExt};

use crate::decode::{BodyEventStream, DecodedEvent, EventStream};

/// How much of a non-SSE answer's body a panic message quotes.
const QUOTED_BODY_LIMIT: usize = 1024;

/// Sends `request` to `app` in process and returns the events of the answer.
///
/// `app` is a [`Router`](axum::Router) or any tower service from
/// `http::Request<axum::body::Body>` to an `http::Response`. `request` is a
/// path such as `"/chat?prompt=hi"` (a `GET` with
/// `Accept: text/event-stream`), or a whole [`Request`] sent as it is; see
/// [`IntoRequest`]. Nothing is sent until the stream is first polled.
/// See the [module docs](self) for an example and for when it panics.
pub fn sse_events<S, B>(app: S, request: impl IntoRequest) -> SseEvents
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: fmt::Debug,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let request = request.into_request();
    let what = format!("{} {}", request.method(), request.uri());
    let what2 = what.clone();
    SseEvents::responding(what, async move {
        let response = app
            .oneshot(request)
            .await
            .unwrap_or_else(|e| panic!("{what2}: the service failed: {e:?}"));
        checked(response.map(Body::new), &what2).await
    })
}

/// What [`sse_events`] accepts as a request: a path or URI (`&str`,
/// `String`, [`Uri`]) to `GET` with `Accept: text/event-stream`, or a
/// whole [`Request`], sent as it is.
pub trait IntoRequest {
    /// The request to send.
    ///
    /// # Panics
    ///
    /// A `&str` or `String` that is not a valid URI panics.
    fn into_request(self) -> Request<Body>;
}

impl IntoRequest for Uri {
    fn into_request(self) -> Request<Body> {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = self;
        request.headers_mut().insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        request
    }
}

impl IntoRequest for &str {
    #[track_caller]
    fn into_request(self) -> Request<Body> {
        match self.parse::<Uri>() {
            Ok(uri) => uri.into_request(),
            Err(e) => panic!("{self:?} is not a valid URI: {e}"),
        }
    }
}

impl IntoRequest for String {
    #[track_caller]
    fn into_request(self) -> Request<Body> {
        self.as_str().into_request()
    }
}

impl IntoRequest for Request<Body> {
    fn into_request(self) -> Request<Body> {
        self
    }
}

/// The events of one answer, made by [`sse_events`] or
/// [`SseEvents::from_response`]: a [`Stream`] of [`DecodedEvent`]s that ends
/// with the body and panics on a timeout or an error (see the
/// [module docs](self)).
///
/// Dropping it drops the body, so the handler sees the client leave.
#[must_use = "streams do nothing unless polled"]
pub struct SseEvents {
    what: String,
    state: State,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    received: usize,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

enum State {
    Responding(ResponseFuture),
    /// Until the end, and after: the decoder keeps `retry` and the ID.
    Streaming(Box<BodyEventStream<Body>>),
}

impl SseEvents {
    /// The default [`timeout`](Self::timeout): 5 seconds.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// The events of `response`, such as one a test got from
    /// `ServiceExt::oneshot` after checking its headers. Panics like
    /// [`sse_events`] if it is not a `200 OK` event stream.
    ///
    /// ```
    /// use axum::{body::Body, http::Request, routing::get, Router};
    /// use axum_sse::{test_util::SseEvents, Event, SseLayer, SseWriter};
    /// use futures_util::StreamExt;
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let app = Router::new()
    ///     .route("/", get(|mut sse: SseWriter| async move {
    ///         let _ = sse.send(Event::new().event("hello").data("world")).await;
    ///     }))
    ///     .layer(SseLayer::new());
    /// let response = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    /// assert_eq!(response.headers()["cache-control"], "no-cache, no-transform");
    /// let events: Vec<_> = SseEvents::from_response(response).collect().await;
    /// assert_eq!((events[0].event.as_str(), events[0].data.as_str()), ("hello", "world"));
    /// # }
    /// ```
    pub fn from_response<B>(response: Response<B>) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let what = String::from("the response");
        let response = response.map(Body::new);
        SseEvents::responding(what.clone(), async move { checked(response, &what).await })
    }

    fn responding(
        what: String,
        response: impl Future<Output = Response<Body>> + Send + 'static,
    ) -> Self {
        Self {
            what,
            state: State::Responding(Box::pin(response)),
            timeout: Self::DEFAULT_TIMEOUT,
            deadline: None,
            received: 0,
        }
    }

    /// Sets how long to wait for each event, the first one counting from the
    /// first poll (default [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT), 5 s).
    /// When it passes, the stream panics.
    ///
    /// ```should_panic
    /// use std::time::Duration;
    /// use axum::{routing::get, Router};
    /// use axum_sse::{test_util::sse_events, SseLayer, SseWriter};
    /// use futures_util::StreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let app = Router::new()
    ///     .route("/", get(|mut sse: SseWriter| async move {
    ///         sse.start().unwrap(); // the stream starts, but no event ever comes
    ///         sse.closed().await;
    ///     }))
    ///     .layer(SseLayer::new());
    /// // Panics: "GET /: no event within 1s (0 events received)"
    /// let _ = sse_events(app, "/").timeout(Duration::from_secs(1)).next().await;
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The last event ID of the events dispatched so far (`""` if none); see
    /// [`Decoder::last_event_id`](crate::decode::Decoder::last_event_id).
    pub fn last_event_id(&self) -> &str {
        match &self.state {
            State::Streaming(events) => events.last_event_id(),
            State::Responding(_) => "",
        }
    }

    /// The latest `retry` field of the stream so far, if any, such as the
    /// one a [`RetryLayer`](crate::RetryLayer) sends first.
    pub fn retry(&self) -> Option<Duration> {
        match &self.state {
            State::Streaming(events) => events.retry(),
            State::Responding(_) => None,
        }
    }
}

impl Stream for SseEvents {
    type Item = DecodedEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<DecodedEvent>> {
        let this = self.get_mut();
        let timeout = this.timeout;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        loop {
            match &mut this.state {
                State::Responding(response) => match response.as_mut().poll(cx) {
                    Poll::Ready(response) => {
                        this.state = State::Streaming(Box::new(EventStream::from_body(
                            response.into_body(),
                        )));
                    }
                    Poll::Pending => break,
                },
                State::Streaming(events) => match Pin::new(events).poll_next(cx) {
                    Poll::Ready(Some(Ok(event))) => {
                        this.received += 1;
                        deadline.as_mut().reset(Instant::now() + timeout);
                        return Poll::Ready(Some(event));
                    }
                    Poll::Ready(Some(Err(e))) => panic!(
                        "{}: the event stream failed after {} events: {e} ({:?})",
                        this.what, this.received, e
                    ),
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => break,
                },
            }
        }
        if deadline.as_mut().poll(cx).is_ready() {
            panic!(
                "{}: no event within {:?} ({} events received)",
                this.what, timeout, this.received
            );
        }
        Poll::Pending
    }
}

impl FusedStream for SseEvents {
    fn is_terminated(&self) -> bool {
        match &self.state {
            State::Streaming(events) => events.is_terminated(),
            State::Responding(_) => false,
        }
    }
}

impl fmt::Debug for SseEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseEvents")
            .field("request", &self.what)
            .field("timeout", &self.timeout)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

/// Returns `response` if it is a `200 OK` event stream; panics otherwise,
/// quoting the start of the body.
async fn checked(response: Response<Body>, what: &str) -> Response<Body> {
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let is_event_stream = crate::util::headers::is_event_stream(response.headers());
    let status = response.status();
    if status == StatusCode::OK && is_event_stream {
        return response;
    }
    let body = match axum::body::to_bytes(response.into_body(), QUOTED_BODY_LIMIT).await {
        Ok(body) => format!("{:?}", String::from_utf8_lossy(&body)),
        Err(_) => format!("(longer than {QUOTED_BODY_LIMIT} bytes, or failed)"),
    };
    panic!(
        "{what}: expected `200 OK` with `content-type: text/event-stream`, \
         got `{status}` with content type {content_type:?} and body {body}"
    );
}
