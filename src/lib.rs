//! Production-grade Server-Sent Events for axum and tower.
//!
//! Mount [`SseLayer`] on a router, extract an [`SseWriter`] in a handler, and
//! send [`Event`]s:
//!
//! ```
//! use axum::{extract::Query, routing::get, Router};
//! use axum_sse::{Event, SseError, SseLayer, SseWriter};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Prompt { prompt: String }
//!
//! #[derive(Serialize)]
//! struct Token<'a> { token: &'a str }
//!
//! async fn chat(mut sse: SseWriter, Query(q): Query<Prompt>) -> Result<(), SseError> {
//!     let words: Vec<&str> = q.prompt.split_whitespace().collect();
//!     for (i, word) in words.iter().enumerate() {
//!         let event = Event::new().event("token").id(i + 1).json(&Token { token: word })?;
//!         sse.send(event).await?; // the first send answers 200 + SSE headers
//!     }
//!     sse.send(Event::new().event("done").id(words.len() + 1).data("{}")).await
//! }
//!
//! let app: Router = Router::new()
//!     .route("/chat", get(chat))
//!     .layer(SseLayer::new());
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `client` | no | `client::EventSource`: a reconnecting SSE client (`retry`, `Last-Event-ID`, back-off) over hyper-util's HTTP client |
//! | `redis` | no | `broadcast::Broadcast::redis`: broadcast channels over Redis Streams, shared by several instances |
//! | `test-util` | no | `test_util::sse_events`: read a router's event stream in a test, in process, with a timeout per event |
//!
//! # How a request flows
//!
//! - [`SseLayer`] gives each request a slot for a writer. The handler
//!   extracts the [`SseWriter`] from it (without the layer, the extractor
//!   answers `500` naming the missing layer).
//! - Until the first [`send`](SseWriter::send) (or
//!   [`start`](SseWriter::start)) the handler may still answer anything
//!   (`401`, `400`, a JSON error) and that answer reaches the client as is;
//!   a later send returns [`SseError::ResponseAlreadySent`].
//! - The first send starts the stream: the layer answers `200` with the SSE
//!   headers at once and keeps driving the handler, which goes on sending.
//!   Its return value is then discarded (an error status is logged).
//! - A handler may move the writer into a task of its own and return a
//!   success: the stream starts then, and ends when the last writer is
//!   dropped.
//! - The queue from writer to client is bounded: `send` waits while the
//!   client is slow. When the client leaves, sends fail with
//!   [`SseError::ConnectionClosed`] and [`closed`](SseWriter::closed)
//!   resolves.
//! - Events ready at the same time leave as one body frame, up to a byte
//!   budget, so a burst of small events costs one write.
//!
//! A handler that already has a `Stream` of events returns an [`SseBody`]
//! instead; it needs no writer.
//!
//! # Headers
//!
//! Every `text/event-stream` response under [`SseLayer`] gets
//! `Cache-Control: no-cache`, `X-Accel-Buffering: no` (so nginx does not
//! buffer the stream), and `Connection: keep-alive` on HTTP/1.x requests
//! only (the header is illegal in HTTP/2). Values the handler set itself are
//! kept. Other responses pass through untouched.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod answer;
mod body;
pub mod broadcast;
#[cfg(feature = "client")]
pub mod client;
pub mod decode;
mod event;
mod extract;
mod headers;
pub mod heartbeat;
pub mod last_event_id;
pub mod layer;
mod queue;
pub mod retry;
pub mod stream_service;
#[cfg(feature = "test-util")]
pub mod test_util;
mod writer;

use axum::BoxError;

pub use crate::{
    answer::AnswerBody,
    body::{SseBody, SseItem},
    event::{EncodedEvent, Event, EventError, EventIdValue, Field},
    extract::SseWriterRejection,
    heartbeat::{HeartbeatBody, HeartbeatLayer},
    last_event_id::{
        InvalidLastEventId, LastEventId, LastEventIdLayer, LastEventIdRejection, LastEventIdService,
    },
    layer::{SseLayer, SseLayerBuilder},
    retry::{RetryBody, RetryLayer},
    writer::{SseError, SseWriter, TrySendError},
};
