//! `EventSource`: the reconnecting stream of events.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::{body::Body, BoxError};
use bytes::Bytes;
use futures_util::stream::{FusedStream, Stream};
use http::{
    header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE},
    HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri,
};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;
use tower_http::follow_redirect::{
    policy::{Action, Attempt, Policy, Standard},
    FollowRedirect,
};

use super::{backoff::reconnect_delay, builder::HttpClient, ClientError, EventSourceBuilder};
use crate::{
    decode::{BodyChunks, DecodedEvent, Decoder},
    util::headers,
};

const LAST_EVENT_ID: HeaderName = HeaderName::from_static(crate::last_event_id::LAST_EVENT_ID);

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

/// A reconnecting Server-Sent Events client, like a browser's
/// `EventSource`: a [`Stream`] of the events of one URL, across
/// reconnections. See the [module docs](super) for what it does and when.
///
/// Items are `Result<DecodedEvent, ClientError>`; an error is always the
/// last item. Dropping the `EventSource` closes the connection.
#[must_use = "streams do nothing unless polled"]
pub struct EventSource {
    url: Uri,
    method: Method,
    headers: http::HeaderMap,
    body: Option<Bytes>,
    retry: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    reset_backoff_after: Duration,
    read_timeout: Option<Duration>,
    max_retries: Option<u32>,
    client: HttpClient,
    decoder: Decoder,
    /// Connections in a row that were not healthy; 0 after a healthy one.
    failures: u32,
    /// Reconnection attempts since the last healthy stream, counting the one
    /// being waited for or made.
    retries: u32,
    /// When the current stream opened (`200`, `text/event-stream`).
    opened_at: Option<Instant>,
    /// Whether the current stream dispatched an event.
    dispatched: bool,
    /// The read timeout's timer, made once and reset.
    read_deadline: Option<Pin<Box<Sleep>>>,
    state: State,
}

enum State {
    /// Not polled yet, or waiting no more: the next poll connects.
    Connect,
    Connecting(ResponseFuture),
    Open(BodyChunks<Body>),
    Waiting(Pin<Box<Sleep>>),
    /// Yields this error, then ends.
    Failed(ClientError),
    Done,
}

/// Redirects as tower-http's standard policy (at most 20, credentials
/// dropped across origins), re-sending the request body.
#[derive(Clone)]
struct RedirectPolicy {
    standard: Standard,
    body: Option<Bytes>,
}

impl<E> Policy<Body, E> for RedirectPolicy {
    fn redirect(&mut self, attempt: &Attempt<'_>) -> Result<Action, E> {
        Policy::<Body, E>::redirect(&mut self.standard, attempt)
    }

    fn on_request(&mut self, request: &mut Request<Body>) {
        Policy::<Body, E>::on_request(&mut self.standard, request);
    }

    fn clone_body(&self, _: &Body) -> Option<Body> {
        self.body.clone().map(Body::from)
    }
}

impl EventSource {
    /// An `EventSource` for `url` with the default settings (see
    /// [`EventSourceBuilder`]). It connects when first polled.
    ///
    /// ```
    /// use axum_sse::client::EventSource;
    ///
    /// let events = EventSource::new("http://127.0.0.1:3000/events".parse().unwrap());
    /// assert_eq!(events.url(), "http://127.0.0.1:3000/events");
    /// ```
    pub fn new(url: Uri) -> Self {
        Self::builder(url).build()
    }

    /// Starts configuring an `EventSource` for `url`.
    pub fn builder(url: Uri) -> EventSourceBuilder {
        EventSourceBuilder::new(url)
    }

    pub(super) fn from_builder(builder: EventSourceBuilder) -> Self {
        let EventSourceBuilder {
            url,
            method,
            headers,
            body,
            last_event_id,
            retry,
            min_backoff,
            max_backoff,
            reset_backoff_after,
            read_timeout,
            max_retries,
            client,
        } = builder;
        let mut state = State::Connect;
        if url.scheme().is_none() || url.authority().is_none() {
            state = State::Failed(ClientError::InvalidUrl {
                url: url.clone(),
                reason: "the URL is not absolute",
            });
        } else if client.is_none() && url.scheme() != Some(&http::uri::Scheme::HTTP) {
            state = State::Failed(ClientError::InvalidUrl {
                url: url.clone(),
                reason: "the built-in client speaks plain `http` only; \
                         use `EventSourceBuilder::client` with a TLS connector",
            });
        }
        let client = client.unwrap_or_else(|| {
            let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
            HttpClient::new(
                client
                    .map_response(|response| response.map(Body::new))
                    .map_err(BoxError::from),
            )
        });
        Self {
            url,
            method,
            headers,
            body,
            retry,
            min_backoff,
            max_backoff,
            reset_backoff_after,
            read_timeout,
            max_retries,
            client,
            decoder: decoder_with_last_event_id(&last_event_id),
            failures: 0,
            retries: 0,
            opened_at: None,
            dispatched: false,
            read_deadline: None,
            state,
        }
    }

    /// The URL the events come from.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// The last event ID string: the one the next reconnection sends as
    /// `Last-Event-ID` (`""`: none).
    ///
    /// It starts as [`EventSourceBuilder::last_event_id`] and follows the
    /// `id` fields of the stream, across reconnections, as of the latest
    /// dispatch: an `id` in an event that the stream never finished (the
    /// connection broke before its empty line) is not taken, so that event
    /// is asked for again instead of being lost.
    pub fn last_event_id(&self) -> &str {
        self.decoder.last_event_id()
    }

    /// The reconnection time: the latest `retry` field of the stream (taken
    /// when its line is parsed, as the spec says), or
    /// [`EventSourceBuilder::retry`] before the server sent one. A wait is
    /// never longer than [`max_backoff`](EventSourceBuilder::max_backoff),
    /// whatever this says.
    pub fn retry(&self) -> Duration {
        self.decoder.retry().unwrap_or(self.retry)
    }

    fn request(&self) -> Request<Body> {
        let body = self.body.clone().map_or_else(Body::empty, Body::from);
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.url.clone();
        let headers = request.headers_mut();
        headers.clone_from(&self.headers);
        headers.insert(ACCEPT, crate::util::headers::TEXT_EVENT_STREAM);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        let id = self.decoder.last_event_id();
        if !id.is_empty() {
            match HeaderValue::from_bytes(id.as_bytes()) {
                Ok(value) => {
                    headers.insert(LAST_EVENT_ID, value);
                }
                // Control characters other than CR, LF and NUL can be in an
                // ID but not in a header: the server cannot resume from it.
                Err(_) => tracing::warn!(id, "last event ID cannot be a header; not sent"),
            }
        }
        request
    }

    /// Starts the read timeout over again, if there is one.
    fn restart_read_timeout(&mut self) {
        if let Some(timeout) = self.read_timeout {
            // A timeout too large for the clock never fires.
            let deadline = Instant::now()
                .checked_add(timeout)
                .unwrap_or_else(far_future);
            match &mut self.read_deadline {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.read_deadline = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
    }

    /// Whether the read timeout expired (registering for a wake-up if not).
    fn read_timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.read_deadline {
            Some(sleep) if self.read_timeout.is_some() => sleep.as_mut().poll(cx).is_ready(),
            _ => false,
        }
    }

    /// Handles the answer to a request: the next state.
    fn on_response(&mut self, response: Response<Body>) -> State {
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            tracing::debug!(url = %self.url, "204 No Content: the server ended the stream");
            return State::Done;
        }
        if status != StatusCode::OK {
            return State::Failed(ClientError::Status(status));
        }
        if !headers::is_event_stream(response.headers()) {
            let content_type = response.headers().get(CONTENT_TYPE).cloned();
            return State::Failed(ClientError::ContentType(content_type));
        }
        tracing::debug!(url = %self.url, "event stream open");
        self.opened_at = Some(Instant::now());
        self.dispatched = false;
        self.restart_read_timeout();
        State::Open(BodyChunks::new(response.into_body()))
    }

    /// The connection failed or ended because of `cause`: wait, or give up.
    fn reconnect(&mut self, cause: ClientError) -> State {
        debug_assert!(cause.is_retried());
        // Whatever the last stream left incomplete is dropped, and its last
        // event ID buffer falls back to the last dispatched ID.
        self.decoder.finish();
        let _ = self.decoder.next_event();
        let healthy = self.dispatched
            || self
                .opened_at
                .is_some_and(|at| at.elapsed() >= self.reset_backoff_after);
        self.opened_at = None;
        self.dispatched = false;
        if healthy {
            self.failures = 0;
            self.retries = 1;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.retries = self.retries.saturating_add(1);
        }
        if let Some(max_retries) = self.max_retries {
            if self.retries > max_retries {
                return State::Failed(ClientError::RetriesExhausted {
                    max_retries,
                    source: Box::new(cause),
                });
            }
        }
        let delay = reconnect_delay(
            self.retry(),
            self.min_backoff,
            self.max_backoff,
            self.failures,
            fastrand::f64(),
        );
        tracing::debug!(
            url = %self.url,
            cause = %DisplayChain(&cause),
            healthy,
            failures = self.failures,
            ?delay,
            "reconnecting"
        );
        State::Waiting(Box::pin(tokio::time::sleep(delay)))
    }
}

/// An instant about 30 years from now, as tokio itself uses for "never".
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

/// An error and its sources, joined by `: `.
struct DisplayChain<'a>(&'a ClientError);

impl fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(self.0);
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

impl Stream for EventSource {
    type Item = Result<DecodedEvent, ClientError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Connect => {
                    let request = this.request();
                    let policy = RedirectPolicy {
                        standard: Standard::default(),
                        body: this.body.clone(),
                    };
                    let client = FollowRedirect::with_policy(this.client.clone(), policy);
                    this.state = State::Connecting(Box::pin(client.oneshot(request)));
                    this.restart_read_timeout();
                }
                State::Connecting(future) => match future.as_mut().poll(cx) {
                    Poll::Ready(Ok(response)) => this.state = this.on_response(response),
                    Poll::Ready(Err(e)) => this.state = this.reconnect(ClientError::Connect(e)),
                    Poll::Pending => {
                        if !this.read_timed_out(cx) {
                            return Poll::Pending;
                        }
                        let timeout = this.read_timeout.unwrap_or_default();
                        this.state = this.reconnect(ClientError::ReadTimeout(timeout));
                    }
                },
                State::Open(body) => {
                    match this.decoder.next_event() {
                        Ok(Some(event)) => {
                            this.dispatched = true;
                            return Poll::Ready(Some(Ok(event)));
                        }
                        Ok(None) => {}
                        Err(e) => {
                            this.state = State::Done;
                            return Poll::Ready(Some(Err(ClientError::Decode(e))));
                        }
                    }
                    match Pin::new(body).poll_next(cx) {
                        Poll::Ready(Some(Ok(chunk))) => {
                            this.decoder.feed(chunk);
                            this.restart_read_timeout();
                        }
                        Poll::Ready(Some(Err(e))) => {
                            this.state = this.reconnect(ClientError::Body(e.into()));
                        }
                        Poll::Ready(None) => this.state = this.reconnect(ClientError::Ended),
                        Poll::Pending => {
                            if !this.read_timed_out(cx) {
                                return Poll::Pending;
                            }
                            let timeout = this.read_timeout.unwrap_or_default();
                            this.state = this.reconnect(ClientError::ReadTimeout(timeout));
                        }
                    }
                }
                State::Waiting(sleep) => {
                    std::task::ready!(sleep.as_mut().poll(cx));
                    this.state = State::Connect;
                }
                State::Failed(_) => {
                    let State::Failed(e) = std::mem::replace(&mut this.state, State::Done) else {
                        unreachable!()
                    };
                    return Poll::Ready(Some(Err(e)));
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }
}

impl FusedStream for EventSource {
    fn is_terminated(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

impl fmt::Debug for EventSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Connect | State::Connecting(_) => "connecting",
            State::Open(_) => "open",
            State::Waiting(_) => "waiting to reconnect",
            State::Failed(_) | State::Done => "closed",
        };
        f.debug_struct("EventSource")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("state", &state)
            .field("last_event_id", &self.last_event_id())
            .field("retry", &self.retry())
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// A decoder whose last event ID buffer is `id` (without CR, LF or NUL), as
/// if a stream that set it had ended.
fn decoder_with_last_event_id(id: &str) -> Decoder {
    let mut decoder = Decoder::new();
    if !id.is_empty() {
        // One space after the colon is removed, so `id` comes back whole.
        // The empty line makes it the last event ID string.
        decoder.feed(format!("id: {id}\n\n"));
        decoder.finish();
        while let Ok(Some(_)) = decoder.next_event() {}
    }
    decoder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_last_event_id_is_kept_whole() {
        for id in ["", "1", " leading space", "ünïcode", "a:b"] {
            assert_eq!(decoder_with_last_event_id(id).last_event_id(), id);
        }
        let mut decoder = decoder_with_last_event_id("7");
        decoder.feed("data: x\n\n");
        assert_eq!(
            decoder.next_event().unwrap(),
            Some(DecodedEvent::new("message", "x", "7"))
        );
    }

    #[test]
    fn request_headers() {
        let source = EventSource::builder(Uri::from_static("http://127.0.0.1:1/sse"))
            .header(
                http::header::AUTHORIZATION,
                HeaderValue::from_static("Bearer t"),
            )
            .last_event_id("ünï 1")
            .build();
        let request = source.request();
        assert_eq!(request.uri(), "http://127.0.0.1:1/sse");
        let headers = request.headers();
        assert_eq!(headers[ACCEPT], "text/event-stream");
        assert_eq!(headers[CACHE_CONTROL], "no-cache");
        assert_eq!(headers[http::header::AUTHORIZATION], "Bearer t");
        assert_eq!(headers[LAST_EVENT_ID].as_bytes(), "ünï 1".as_bytes());
        // An ID that cannot be a header value is left out.
        let source = EventSource::builder(Uri::from_static("http://127.0.0.1:1/"))
            .last_event_id("a\u{7}b")
            .build();
        assert!(!source.request().headers().contains_key(LAST_EVENT_ID));
    }

    #[test]
    fn request_method_and_body_every_time() {
        let source = EventSource::builder(Uri::from_static("http://127.0.0.1:1/mcp"))
            .method(Method::POST)
            .body("{}")
            .build();
        for _ in 0..2 {
            let request = source.request();
            assert_eq!(request.method(), Method::POST);
            assert_eq!(http_body::Body::size_hint(request.body()).exact(), Some(2));
        }
        let source = EventSource::new(Uri::from_static("http://127.0.0.1:1/"));
        let request = source.request();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(http_body::Body::size_hint(request.body()).exact(), Some(0));
    }

    #[test]
    fn is_send_and_unpin() {
        fn check<T: Send + Unpin>() {}
        check::<EventSource>();
        check::<EventSourceBuilder>();
    }
}
