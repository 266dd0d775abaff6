//! Resumable responses: a reply that survives its client, resumed from
//! `Last-Event-ID` on this instance or, with Redis, on any.
//!
//! A handler [`start`](ResumableResponses::start)s a response: a producer
//! (an async closure given an [`EventSink`]) runs on a task of its own and
//! writes the response's events into a log. It goes on when the client
//! leaves, and no reader ever slows it. The HTTP stream is only a reader of
//! that log ([`resume`](ResumableResponses::resume)): a client that
//! reconnects with the WHATWG "last event ID string" (the `Last-Event-ID`
//! header) gets the events it missed, then the live rest, with no gap and
//! no duplicate, and the stream ends when the response does. Once the
//! client has read a complete response to its end, a resume answers
//! `204 No Content`, which tells an `EventSource` to stop reconnecting.
//!
//! ```
//! use axum::{extract::{Path, State}, routing::{get, post}, Router};
//! use axum_sse::{
//!     resumable::{ResumableError, ResumableResponses, Resume},
//!     Event, LastEventId, SseLayer,
//! };
//!
//! // POST /replies: starts a reply, answers its id.
//! async fn start(State(responses): State<ResumableResponses>) -> Result<String, ResumableError> {
//!     responses
//!         .start(|mut sink| async move {
//!             for token in ["Hello", ", ", "world"] {
//!                 sink.send(Event::new().event("token").data(token)).await?;
//!             }
//!             sink.send(Event::new().event("done").data("")).await
//!         })
//!         .await
//! }
//!
//! // GET /replies/{id}: reads it, from the client's Last-Event-ID if any.
//! async fn read(
//!     State(responses): State<ResumableResponses>,
//!     Path(id): Path<String>,
//!     last_event_id: Option<LastEventId>,
//! ) -> Result<Resume, ResumableError> {
//!     responses.resume(&id, last_event_id.as_ref().map(LastEventId::as_str)).await
//! }
//!
//! let app: Router = Router::new()
//!     .route("/replies", post(start))
//!     .route("/replies/{id}", get(read).layer(SseLayer::new()))
//!     .with_state(ResumableResponses::new());
//! ```
//!
//! In process, with the shapes on the wire:
//!
//! ```
//! use axum_sse::{resumable::{ResumableResponses, Resume}, Event};
//! use futures_util::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let responses = ResumableResponses::new();
//! let id = responses
//!     .start(|mut sink| async move {
//!         sink.send(Event::new().data("a")).await?;
//!         sink.send(Event::new().data("b")).await
//!     })
//!     .await?;
//!
//! // From the start: both events (each with its id, `{response id}/{log id}`),
//! // then the end.
//! let Resume::Stream(stream) = responses.resume(&id, None).await? else { panic!() };
//! let events: Vec<_> = stream.collect().await;
//! assert!(events[0].as_bytes().starts_with(b"data: a\nid: "));
//! assert!(events[1].as_bytes().starts_with(b"data: b\nid: "));
//! assert_eq!(events.len(), 2);
//!
//! // After "a": only "b". After "b": nothing left, `204 No Content`.
//! let id_a = std::str::from_utf8(&events[0].as_bytes()[12..]).unwrap().trim_end();
//! let Resume::Stream(rest) = responses.resume(&id, Some(id_a)).await? else { panic!() };
//! assert_eq!(rest.collect::<Vec<_>>().await, events[1..]);
//! let id_b = std::str::from_utf8(&events[1].as_bytes()[12..]).unwrap().trim_end();
//! assert!(matches!(responses.resume(&id, Some(id_b)).await?, Resume::Complete));
//!
//! // An id the store never had: `204` too.
//! assert!(matches!(responses.resume("nope", None).await?, Resume::NotFound));
//! # Ok(())
//! # }
//! ```
//!
//! # The log
//!
//! Each response's log is a [`Broadcast`](crate::broadcast::Broadcast)
//! topic, so it has the broadcast's guarantees: ids are opaque and bound to
//! this response's history (an id of another response, of a restarted
//! process, of an expired log is never taken for a position in it), and a
//! resume is exact. The log holds the whole response: a producer may write
//! at most [`max_events`](ResumableBuilder::max_events) events and
//! [`max_bytes`](ResumableBuilder::max_bytes) bytes, and the event past
//! either ends the response, incomplete ([`SinkError::TooLarge`]). A
//! producer runs at most [`max_duration`](ResumableBuilder::max_duration),
//! and an instance runs at most [`max_live`](ResumableBuilder::max_live)
//! producers ([`ResumableError::TooManyLive`], `503` with `Retry-After`).
//!
//! - **In memory** ([`ResumableBuilder::build`]): one instance. Each
//!   response has a broadcast of its own; a finished one is kept for the
//!   [`ttl`](ResumableBuilder::ttl) (at most
//!   [`max_retained`](ResumableBuilder::max_retained) of them), then
//!   dropped with its memory.
//! - **Redis** ([`ResumableBuilder::connect_redis`], feature `redis`): each
//!   log is a Redis stream (key `sse:response:{id}`), shared by every
//!   instance; its expiry (`PEXPIRE`) is pushed back to the TTL by every
//!   event, so a finished log expires a TTL after its end. Choose a TTL
//!   longer than the longest silence of a producer.
//!   [`cancel`](ResumableResponses::cancel) works from any instance: a
//!   request on the stream `{key prefix}{id}/cancel` reaches the instance
//!   that runs the producer.
//!
//! A reader never holds the response: it reads the log as the producer
//! writes it; one that falls more than
//! [`reader_buffer`](ResumableBuilder::reader_buffer) events behind rereads
//! the log from where it was.
//!
//! # Event ids
//!
//! Every event a reader sends carries the id `{response id}/{log id}`: the
//! response's id, a `/` (which a response id never holds), then the log's
//! own opaque id. So a client's `Last-Event-ID` names the response it
//! belongs to, and [`ResumableResponses::resume_by_event_id`] resumes from
//! it alone: an MCP client resumes with a `GET` that carries nothing else.
//! [`resume`](ResumableResponses::resume) takes the same ids, and treats one
//! of another response like any id not in the log (an `event: missed`,
//! then the whole response). A response id is at most 64 bytes and a log
//! id at most 64 (some 12 in practice), so an event id is at most 129.
//!
//! # The end marker
//!
//! The store writes two control events into every log: a start marker
//! first (so a reader on any instance can tell an existing log from a
//! missing one) and an end marker last (`end` for a complete response,
//! `cut` for one cancelled, failed, timed out or too large). They are
//! events of the reserved type `axum-sse-resumable`:
//!
//! ```text
//! event: axum-sse-resumable
//! data: end
//! id: …
//! ```
//!
//! A reader strips them: the client never sees one, its stream just ends
//! after the response's last event. A `cut` response ends with the
//! [incomplete event](ResumableBuilder::incomplete_event) instead (by
//! default `event: incomplete` with a JSON error the `openai` SDKs raise),
//! so no client takes a cut reply for a whole one. A producer cannot forge
//! a marker: the sink
//! refuses any event of that type ([`SinkError::ReservedType`]) and any
//! event with an `id` of its own ([`SinkError::IdNotAllowed`]).
//!
//! # Expiry and `204`
//!
//! A resume answers [`Resume::Complete`] when the client's `Last-Event-ID`
//! is the last event of a finished response, and [`Resume::NotFound`] for
//! an id the store does not know or whose log expired; both are
//! `204 No Content`. A response cut short ends its stream the same way: the
//! client's next resume is `204`.
//!
//! # MCP: priming and closing early
//!
//! An MCP server (Streamable HTTP transport) may free a connection during a
//! long call: [`EventSink::prime`] writes an event with an id and empty data
//! first, [`ResponseStream::close_after`] ends the HTTP stream early with a
//! `retry`, and the client reconnects with `Last-Event-ID` and reads on from
//! the log. See the example there, and `examples/mcp.rs` in the repository
//! for a whole server that the official MCP SDKs (TypeScript and Python)
//! resume.
//!
//! # Shutdown that drains
//!
//! With [`ResumableBuilder::shutdown`], triggering the [`SseShutdown`]
//! handle ends every open reader with a `retry` line (WHATWG "reconnection
//! time"; a line with no blank line after it, which sets the time and
//! dispatches nothing, even in loose parsers) drawn evenly from
//! [`drain_window`](ResumableBuilder::drain_window), so the clients come
//! back spread over it, and refuses new responses.
//! Producers go on; [`ResumableResponses::drain`] waits for them up to a
//! deadline, then cancels the rest. With Redis every event is in Redis when
//! it is written: a client that reconnects to another instance reads on.
//! Do not give that handle to the [`SseLayer`](crate::SseLayer) of these
//! routes too: it would end their streams at once. Clients that do not
//! reconnect (the `openai` SDKs) take a stream ended this way for a whole
//! reply: serve them from a store without the handle.
//!
//! [`SseShutdown`]: crate::SseShutdown

mod builder;
mod control;
mod error;
mod sink;
mod store;
mod stream;

pub use self::{
    builder::ResumableBuilder,
    error::{ResumableError, SinkError},
    sink::EventSink,
    store::ResumableResponses,
    stream::{ResponseStream, Resume},
};
