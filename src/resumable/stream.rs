//! The reader's side: a response's log from a client's `Last-Event-ID`.

use std::{
    collections::VecDeque,
    fmt,
    pin::Pin,
    sync::{Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use axum::response::{IntoResponse, Response};
use futures_util::{stream::BoxStream, FutureExt, Stream, StreamExt};
use http::StatusCode;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::{
    broadcast::{Broadcast, Subscription},
    EncodedEvent, Event, SseBody, SseShutdown,
};

use super::{
    control::{self, Control},
    store::Inner,
    ResumableError,
};

/// Never an id of a log: subscribing "after" it replays the whole log,
/// behind the missed marker.
const FROM_START: &str = "-";

/// What [`ResumableResponses::resume`](super::ResumableResponses::resume)
/// found.
///
/// As a response: [`Stream`](Self::Stream) is the event stream
/// ([`SseBody`], `200 OK` with `Content-Type: text/event-stream`); the
/// others are `204 No Content`, which tells a browser's `EventSource` (and
/// the AI SDK's resume, and MCP clients) that there is nothing to read. The
/// `openai` SDKs do not expect it (Python reads an empty reply, Node
/// throws): for an OpenAI-compatible endpoint, answer these two yourself.
#[derive(Debug)]
#[non_exhaustive]
pub enum Resume {
    /// What is left of the response, then its live rest.
    Stream(ResponseStream),
    /// Nothing is left to read: the response has ended (complete or cut
    /// short) and the client has read it to its end (or it ended with no
    /// event at all).
    Complete,
    /// No such response: never started, or its log expired or was dropped.
    NotFound,
}

impl IntoResponse for Resume {
    fn into_response(self) -> Response {
        match self {
            Self::Stream(stream) => SseBody::new(stream).into_response(),
            Self::Complete | Self::NotFound => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// A reader of one response: a [`Stream`] of [`EncodedEvent`]s for
/// [`SseBody::new`] (or [`SseWriter::send_all`](crate::SseWriter) and the
/// like), each with its `id` from the log.
///
/// It ends when the response does (complete or cut short), and on the
/// store's shutdown after a lone `retry: <ms>` line that ends no block (see
/// [`ResumableBuilder::shutdown`](super::ResumableBuilder::shutdown)). A
/// reader that falls behind the producer rereads the log from where it was:
/// it never holds more than
/// [`reader_buffer`](super::ResumableBuilder::reader_buffer) unread events,
/// and never slows the producer.
#[must_use = "a stream does nothing unless polled"]
pub struct ResponseStream {
    // The mutex only makes the stream `Sync`; polling takes `&mut self`.
    inner: Mutex<BoxStream<'static, EncodedEvent>>,
}

impl ResponseStream {
    /// Ends this stream `after` its start, even though the response goes
    /// on, with a `retry` field of `retry` (WHATWG "reconnection time") on a
    /// line that ends no block, so no client dispatches an event for it: the
    /// client reconnects with its last event id and resumes from the log.
    /// Events written before are sent as usual; the response ending first
    /// ends the stream first.
    ///
    /// Only for clients that reconnect: `EventSource`, MCP clients, the AI
    /// SDK's resume. One that does not (the `openai` SDKs) takes the end of
    /// the stream for the end of the reply.
    ///
    /// This is how an MCP server (Streamable HTTP, "resumability and
    /// redelivery") frees a connection during a long call: the producer
    /// [primes](super::EventSink::prime) the stream with an event that has
    /// an id and empty data, the server closes the stream early with a
    /// `retry`, and the client comes back with `Last-Event-ID`:
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum_sse::{resumable::{ResumableResponses, Resume}, Event};
    /// use futures_util::StreamExt;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let responses = ResumableResponses::new();
    /// // A tool call that takes a minute, answering a JSON-RPC request.
    /// let id = responses
    ///     .start(|mut sink| async move {
    ///         sink.prime().await?;
    ///         tokio::time::sleep(Duration::from_secs(60)).await;
    ///         sink.send(Event::new().data(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#)).await
    ///     })
    ///     .await?;
    ///
    /// // The POST's stream: the priming event, then after 5 s a retry and the end.
    /// let Resume::Stream(stream) = responses.resume(&id, None).await? else { panic!() };
    /// let events: Vec<_> = stream
    ///     .close_after(Duration::from_secs(5), Duration::from_secs(1))
    ///     .collect()
    ///     .await;
    /// let priming = std::str::from_utf8(events[0].as_bytes())?;
    /// assert!(priming.starts_with("data:\nid: ") && priming.ends_with("\n\n"));
    /// // The retry is a line that ends no block: no client dispatches it.
    /// assert_eq!(events[1].as_bytes(), b"retry: 1000\n");
    /// assert_eq!(events.len(), 2);
    ///
    /// // The client's GET with `Last-Event-ID`: the result once it is there.
    /// let last = priming["data:\nid: ".len()..].trim_end();
    /// let Resume::Stream(rest) = responses.resume(&id, Some(last)).await? else { panic!() };
    /// let rest: Vec<_> = rest.collect().await;
    /// assert!(rest[0].as_bytes().starts_with(br#"data: {"jsonrpc":"2.0","id":1,"result":{}}"#));
    /// assert_eq!(rest.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn close_after(self, after: Duration, retry: Duration) -> Self {
        let inner = self
            .inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let deadline = Box::pin(tokio::time::sleep(after));
        let state = (inner, deadline, false);
        let stream = futures_util::stream::unfold(
            state,
            move |(mut inner, mut deadline, done)| async move {
                if done {
                    return None;
                }
                tokio::select! {
                    biased;
                    () = &mut deadline => Some((retry_line(retry), (inner, deadline, true))),
                    event = inner.next() => event.map(|event| (event, (inner, deadline, false))),
                }
            },
        );
        Self {
            inner: Mutex::new(stream.boxed()),
        }
    }
}

/// A lone `retry: <ms>` line for the end of a stream: a `retry` alone
/// ends no block (see [`Event`]), so no parser dispatches anything for it.
fn retry_line(delay: Duration) -> EncodedEvent {
    Event::new()
        .retry(delay)
        .encode()
        .expect("a retry field is always valid")
}

impl Stream for ResponseStream {
    type Item = EncodedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EncodedEvent>> {
        self.inner
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .poll_next_unpin(cx)
    }
}

impl fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStream").finish_non_exhaustive()
    }
}

struct Reader {
    log: Broadcast,
    topic: String,
    sub: Subscription,
    /// The id of the last event of the log read (control events included).
    last_seen: Option<String>,
    head: VecDeque<EncodedEvent>,
    /// The store's shutdown: the handle, and its wait.
    shutdown: Option<(SseShutdown, Pin<Box<WaitForCancellationFutureOwned>>)>,
    drain_window: Duration,
    /// How long the log may stay silent before the reader gives up (Redis:
    /// the producer's instance may be gone); `None` in memory, where the
    /// producer always writes its end.
    idle: Option<Duration>,
    /// The last event for a response that ended incomplete.
    incomplete: Option<EncodedEvent>,
    done: bool,
}

pub(super) async fn open(
    inner: &Inner,
    log: Broadcast,
    id: &str,
    last_event_id: Option<&str>,
) -> Result<Resume, ResumableError> {
    // The log's own id, from the `{response}/{log id}` a client sends; an
    // id of another response, or of no form of ours, resumes nothing.
    let last_event_id = last_event_id.map(|last| match control::split_qualified(last) {
        Some((response, log_id)) if response == id => log_id,
        _ => FROM_START,
    });
    let mut sub = log
        .subscribe(id, Some(last_event_id.unwrap_or(FROM_START)))
        .await
        .map_err(ResumableError::Backend)?;
    let mut head = VecDeque::new();
    let last_seen;
    let foreign = last_event_id.is_some() && sub.missed_events();
    if last_event_id.is_none() || foreign {
        // The missed marker, then the log's start marker if it exists. A
        // subscription that resumes holds the first page of the history
        // when `subscribe` returns (the store was read then), so both are
        // there at once, or the log does not exist.
        let marker = sub.next().now_or_never();
        let start = match marker {
            Some(Some(event)) if control::parse(&event) == Some(Control::Missed) => {
                sub.next().now_or_never()
            }
            _ => return Ok(Resume::NotFound),
        };
        match start {
            Some(Some(event)) if control::parse(&event) == Some(Control::Start) => {
                last_seen = control::event_id(&event).map(str::to_owned);
            }
            _ => return Ok(Resume::NotFound),
        }
    } else {
        last_seen = last_event_id.map(str::to_owned);
    }
    // Nothing left to read (read to its end, or a response that ended
    // with no event, whatever id the client had)? Then there is nothing to
    // stream: `204`, not a stream an `EventSource` would reopen forever.
    if let Some(Some(event)) = sub.next().now_or_never() {
        match control::parse(&event) {
            Some(control) if control.is_end() => return Ok(Resume::Complete),
            _ => head.push_back(event),
        }
    }
    if foreign {
        // An id not of this log: the client learns that it missed
        // events, then gets the whole response.
        if let Some(missed) = inner.config.missed.clone() {
            head.push_front(missed);
        }
    }
    let reader = Reader {
        log,
        topic: id.to_owned(),
        sub,
        last_seen,
        head,
        shutdown: inner
            .config
            .shutdown
            .as_ref()
            .map(|shutdown| (shutdown.clone(), Box::pin(shutdown.wait()))),
        drain_window: inner.config.drain_window,
        idle: inner.is_shared().then_some(inner.config.ttl),
        incomplete: inner.config.incomplete.clone(),
        done: false,
    };
    let stream = futures_util::stream::unfold(reader, |mut reader| async move {
        let event = reader.next().await?;
        Some((event, reader))
    });
    Ok(Resume::Stream(ResponseStream {
        inner: Mutex::new(stream.boxed()),
    }))
}

impl Reader {
    async fn next(&mut self) -> Option<EncodedEvent> {
        // Rereads of the log in a row that brought nothing.
        let mut rereads = 0;
        loop {
            if self.done {
                return None;
            }
            // Once the store shuts down, not one more event: what is left
            // is read from the instance the client reconnects to.
            if self
                .shutdown
                .as_ref()
                .is_some_and(|(handle, _)| handle.is_triggered())
            {
                self.done = true;
                return Some(self.farewell());
            }
            let event = match self.head.pop_front() {
                Some(event) => Some(event),
                None => {
                    let shutdown = async {
                        match &mut self.shutdown {
                            Some((_, wait)) => wait.as_mut().await,
                            None => std::future::pending().await,
                        }
                    };
                    let next = async {
                        match self.idle {
                            Some(idle) => tokio::time::timeout(idle, self.sub.next()).await,
                            None => Ok(self.sub.next().await),
                        }
                    };
                    tokio::select! {
                        biased;
                        () = shutdown => {
                            self.done = true;
                            return Some(self.farewell());
                        }
                        event = next => match event {
                            Ok(event) => event,
                            Err(_) => {
                                // Nothing written for a whole TTL: the
                                // producer's instance is gone (its log
                                // expires now), the response with it.
                                self.done = true;
                                return self.incomplete.clone();
                            }
                        },
                    }
                }
            };
            match event {
                Some(event) => match control::parse(&event) {
                    Some(Control::Cut) => {
                        self.done = true;
                        return self.incomplete.clone();
                    }
                    Some(control) if control.is_end() => {
                        self.done = true;
                        return None;
                    }
                    Some(_) => {
                        self.last_seen = control::event_id(&event).map(str::to_owned);
                    }
                    None => {
                        if let Some(id) = control::event_id(&event) {
                            self.last_seen = Some(id.to_owned());
                        }
                        return Some(control::qualified(event, &self.topic));
                    }
                },
                None => {
                    // The subscription ended: this reader fell behind its
                    // buffer, or Redis failed. The whole response is in
                    // the log: read on from the last event seen.
                    rereads += 1;
                    if rereads > 3 {
                        self.done = true;
                        return None;
                    }
                    let from = self.last_seen.as_deref().unwrap_or(FROM_START);
                    match self.log.subscribe(&self.topic, Some(from)).await {
                        // The log is gone (expired): nothing exact to read.
                        Ok(sub) if sub.missed_events() => {
                            self.done = true;
                            return None;
                        }
                        Ok(sub) => self.sub = sub,
                        Err(err) => {
                            tracing::debug!(error = %err, "rereading a response log failed");
                            self.done = true;
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// The last event on shutdown: a `retry` drawn from the drain window.
    fn farewell(&self) -> EncodedEvent {
        let window = self.drain_window.as_millis().min(u128::from(u64::MAX)) as u64;
        retry_line(Duration::from_millis(fastrand::u64(0..=window)))
    }
}
