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
//! The [`cookbook`] has recipes for what users ask most: LLM token
//! streaming, progress, a live feed with resume, relaying, authorization,
//! CORS, proxies, compression and testing.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `client` | no | `client::EventSource`: a reconnecting SSE client (`retry`, `Last-Event-ID`, back-off from a floor, POST bodies, a read timeout) over hyper-util's HTTP client |
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
//!   Its return value is then discarded (an error status is logged). The
//!   handler is polled from the response body, on the connection's own
//!   task: no task is spawned per stream, and when the connection goes the
//!   handler goes with it.
//! - A handler may move the writer into a task of its own and return a
//!   success: the stream starts then, and ends when the last writer is
//!   dropped.
//! - The queue from writer to client is bounded: `send` waits while the
//!   client is slow. When the client leaves, sends fail with
//!   [`SseError::ConnectionClosed`] and [`closed`](SseWriter::closed)
//!   resolves.
//! - The queue is one byte buffer per stream: a send appends the event's
//!   bytes, the body takes everything queued as one frame. A burst of small
//!   events costs one write, and sending allocates nothing.
//!
//! A handler that already has a `Stream` of events returns an [`SseBody`]
//! instead; it needs no writer.
//!
//! # Headers
//!
//! Every `text/event-stream` response under [`SseLayer`] gets
//! `Cache-Control: no-cache, no-transform` (compressing proxies and dev
//! servers such as express `compression`, webpack-dev-server, Traefik and
//! Caddy honour `no-transform`, and would otherwise buffer or compress the
//! stream), `X-Accel-Buffering: no` (so nginx does not buffer it), and
//! `Connection: keep-alive` on HTTP/1.x requests only (the header is illegal
//! in HTTP/2). Values the handler set itself are kept. Other responses pass
//! through untouched.
//!
//! # Framing: what every client reads alike
//!
//! Browsers parse event streams by the WHATWG algorithm ("9.2.6
//! Interpreting an event stream"), which dispatches a block only if it has
//! `data`. Many clients do not: the `openai` SDKs' parser, and others written
//! by hand like it, dispatch a block as soon as it holds any field (and,
//! once an `id` was seen, at every blank line), and hand the empty data to
//! `JSON.parse`. So nothing the crate adds by itself forms a block of its
//! own:
//!
//! - the `retry` advice ([`RetryLayer`]) is a `retry: <ms>` line put at the
//!   head of the block of the first event that has `data` (a `retry` the
//!   event sets itself comes after it, and wins);
//! - a heartbeat ([`HeartbeatLayer`]) is a comment line, `:\n`, with no blank
//!   line after it: it joins the block of the next event;
//! - both go in only between whole events, never inside one.
//!
//! What the crate sends on purpose as an event carries `data`: a shutdown
//! farewell, the broadcast missed-events signal. An [`Event`] a handler
//! sends goes out exactly as built, so give it `data`: a block with only a
//! comment, an `id` or a `retry` is dispatched by loose clients as an empty
//! event. `tests/framing.rs` reads the crate's output with such a parser at
//! every position.
//!
//! # Layer ordering, and tower-http
//!
//! [`SseLayer`] stacks its parts in the one order that works, outermost
//! first: Last-Event-ID (it may answer `400` before anything runs),
//! shutdown (`503`), stream limits (`429`), retry (its field must come
//! first on the wire), heartbeat, time limits (inside the heartbeat, so a
//! heartbeat is not activity), then the writer and the headers.
//!
//! Every layer of this crate takes effect wherever it is mounted: around
//! the `SseLayer` or inside it, router-wide (`Router::layer`,
//! `Router::route_layer`), on one route (`get(handler).layer(..)`) or on a
//! nested router, for a handler that sends with an [`SseWriter`] and for
//! one that returns an [`SseBody`] or axum's `Sse`. When two apply to one
//! stream:
//!
//! - **The layer closest to the handler wins; the handler's own setting
//!   wins over all.** Of two [`RetryLayer`]s, [`HeartbeatLayer`]s,
//!   [`TimeLimitLayer`]s or [`LastEventIdLayer`]s on one stream, the inner
//!   one applies and the outer one adds nothing (one `retry:` line, one
//!   heartbeat timer): a route's layer overrides a router's, a router's
//!   overrides the `SseLayer` around it, the `SseLayer`'s own setting
//!   overrides a layer around the `SseLayer`. A setting replaces the whole
//!   setting of its kind (a route's idle timeout drops the `SseLayer`'s
//!   maximum duration too). [`SseWriter::set_retry`] and
//!   [`SseWriter::set_heartbeat`] set them for one stream, over every
//!   layer.
//! - **Gates all apply.** Each [`StreamLimitLayer`] is a budget of its own
//!   and each [`ShutdownLayer`] a handle of its own: a stream counts
//!   against every limit around it (its permits held until the stream
//!   ends) and ends when any of its shutdowns is triggered; a request is
//!   refused (`429`, `503`, or `400` from a [`LastEventIdLayer`] with
//!   [`reject_invalid`](LastEventIdLayer::reject_invalid)) by any of them.
//!
//! Inside an `SseLayer`, a retry, heartbeat or time-limit layer does not
//! wrap the body itself (a writer stream is answered by the `SseLayer`
//! before the route's layers see a response): it records its setting for
//! the request's stream, and the `SseLayer` applies it at its place in the
//! order above. So a heartbeat on a route never counts as activity for a
//! time limit either. Outside an `SseLayer`, each layer wraps the event
//! streams that reach it, unless a layer of its kind closer to the handler
//! did.
//!
//! ```
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, HeartbeatLayer, RetryLayer, SseLayer, SseWriter};
//! use tower::ServiceBuilder;
//!
//! async fn feed(mut sse: SseWriter) {
//!     let _ = sse.send(Event::new().data("hello")).await;
//! }
//!
//! let app: Router = Router::new()
//!     // This route's streams: `retry: 10000` and a heartbeat every 5 s.
//!     .route(
//!         "/slow",
//!         get(feed).layer(
//!             ServiceBuilder::new()
//!                 .layer(RetryLayer::new(Duration::from_secs(10)))
//!                 .layer(HeartbeatLayer::new(Duration::from_secs(5))),
//!         ),
//!     )
//!     // Every other route's: `retry: 3000` and a heartbeat every 15 s.
//!     .route("/feed", get(feed))
//!     .layer(
//!         SseLayer::builder()
//!             .retry(Duration::from_secs(3))
//!             .heartbeat(Duration::from_secs(15))
//!             .build(),
//!     );
//! ```
//!
//! `tests/compose.rs` checks every layer at every one of these positions
//! with both handler styles, on the wire.
//!
//! With tower-http:
//!
//! - **Compression**: `CompressionLayer` skips `text/event-stream` by
//!   default (its `DefaultPredicate`), and should: a compressor buffers, and
//!   a buffered event arrives late. A custom predicate must keep excluding
//!   event streams:
//!
//!   ```
//!   use tower_http::compression::{
//!       predicate::{NotForContentType, SizeAbove},
//!       CompressionLayer, Predicate,
//!   };
//!
//!   let compression = CompressionLayer::new()
//!       .compress_when(SizeAbove::new(256).and(NotForContentType::SSE));
//!   # let _: axum::Router = axum::Router::new().layer(compression);
//!   ```
//! - **Timeouts**: `TimeoutLayer` bounds the time until the response
//!   future resolves. Ours resolves as soon as the handler starts the
//!   stream, so it never cuts a stream, only a handler slow to start one.
//!   A body timeout (`ResponseBodyTimeoutLayer`) ends a stream silent for
//!   longer than its limit: give such streams a shorter heartbeat, or use
//!   [`TimeLimitLayer`] for stream lifetimes instead.
//! - **CORS**: a cross-origin `EventSource` sends a simple `GET` (with
//!   credentials when `withCredentials` is set); `CorsLayer` on the route
//!   answers it like any other request. Mount CORS outside [`SseLayer`] so
//!   its headers also reach the `429`/`503` answers.
//!
//! # Running in production
//!
//! Everything a long-lived stream needs in production is a setting of
//! [`SseLayer::builder`], and each piece is also a layer of its own
//! ([`HeartbeatLayer`], [`TimeLimitLayer`], [`StreamLimitLayer`],
//! [`ShutdownLayer`]) that works on any `text/event-stream` response:
//!
//! ```no_run
//! use std::{net::SocketAddr, time::Duration};
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, SseLayer, SseShutdown, SseWriter};
//!
//! # async fn feed(_sse: SseWriter) {}
//! # async fn run() {
//! let shutdown = SseShutdown::new();
//! let layer = SseLayer::builder()
//!     .heartbeat(Duration::from_secs(15))
//!     .send_timeout(Duration::from_secs(30))
//!     .idle_timeout(Duration::from_secs(15 * 60))
//!     .max_duration(Duration::from_secs(60 * 60))
//!     .max_duration_jitter(Duration::from_secs(5 * 60))
//!     .max_streams(10_000)
//!     .max_streams_per_client(16)
//!     .shutdown(shutdown.clone())
//!     .farewell(Event::new().event("shutdown").data("restarting"))
//!     .build();
//! let stats = layer.stats(); // for your metrics
//! let app: Router = Router::new().route("/feed", get(feed)).layer(layer);
//!
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await.unwrap();
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
//!     .with_graceful_shutdown(async move {
//!         tokio::signal::ctrl_c().await.ok();
//!         shutdown.trigger();
//!     })
//!     .await
//!     .unwrap();
//! # }
//! ```
//!
//! | policy | settings | default | what happens |
//! | --- | --- | --- | --- |
//! | slow consumer | [`max_queued_events`](SseLayerBuilder::max_queued_events), [`max_queued_bytes`](SseLayerBuilder::max_queued_bytes), [`send_timeout`](SseLayerBuilder::send_timeout) | 1024 events, 64 KiB, 30 s | `send` waits while the queue is full; a send that waited the whole timeout closes the stream: what was queued is dropped, the send returns [`SseError::Timeout`], the client gets a clean end |
//! | disconnect | [`heartbeat`](SseLayerBuilder::heartbeat) | none | see below |
//! | idle streams | [`idle_timeout`](SseLayerBuilder::idle_timeout) | none | a clean end after that long without an event (heartbeats do not count) |
//! | long streams | [`max_duration`](SseLayerBuilder::max_duration), [`max_duration_jitter`](SseLayerBuilder::max_duration_jitter) | none, 0 | a clean end that long after the start, less a random jitter per stream |
//! | open streams | [`max_streams`](SseLayerBuilder::max_streams), [`max_streams_per_client`](SseLayerBuilder::max_streams_per_client), [`client_key`](SseLayerBuilder::client_key) | none, none, peer IP | `429 Too Many Requests` with `Retry-After: 5` before the handler runs; a permit lives as long as its stream |
//! | shutdown | [`shutdown`](SseLayerBuilder::shutdown), [`farewell`](SseLayerBuilder::farewell) | none | every stream sends the farewell and ends; new requests get `503` with `Retry-After: 5`; a graceful shutdown completes at once |
//! | stats | [`stats`](SseLayerBuilder::stats) | the layer's own | [`SseStats`]: open, accepted, refused, closed by [reason](CloseReason), events and bytes; a debug log per stream open and close |
//!
//! A clean end is what a finished handler gives: an `EventSource`
//! reconnects after its `retry` delay and sends `Last-Event-ID`, so a
//! handler that can replay resumes without a gap.
//!
//! **Disconnects.** hyper notices at once a client that closes its
//! connection (a FIN or a reset), even on a silent stream: [`closed`]
//! resolves, sends fail with [`SseError::ConnectionClosed`], and a handler
//! running inline is dropped with the connection. A client that vanishes
//! without closing (a lost network, a dead host) is only found when a write
//! fails; the heartbeat makes those writes, and the kernel reports the
//! failure on the first write that meets a reset, or once TCP gives up
//! retransmitting if the peer is unreachable.
//!
//! **Clients that read nothing.** Memory per stream stays bounded by the
//! queue plus what hyper and the kernel buffer for the socket. A writer
//! running in a task of its own gets [`SseError::Timeout`] after the send
//! timeout. A handler sending inline runs only when the connection takes
//! its next frame, so while the socket stays full it is paused (and so are
//! the heartbeat and the time limits of that stream); it gets `Timeout` as
//! soon as the client reads again, or is dropped when the connection closes.
//! Such a client also holds up a graceful shutdown: bound the server's
//! shutdown with a timeout of your own.
//!
//! **Where the layer goes.** The limits and the `503` apply to every request
//! the layer wraps, so put `SseLayer` on the streaming routes rather than on
//! the whole app. A browser's `EventSource` gives up for good on any status
//! but `200`: after a `429` or a `503`, the page decides when to try again.
//!
//! **Many open connections.** Most of what an idle stream costs in memory
//! belongs to the server, and one part is avoidable: given the router
//! itself, `axum::serve(listener, app)` converts every route again for each
//! connection, while `app.into_make_service()` (or
//! `into_make_service_with_connect_info`, as above) converts them once:
//! 4.6 KiB less per connection in `BENCHMARKS.md`'s 10,000-stream check. A
//! stream served in the stream style (an [`SseBody`] over a subscription)
//! keeps no handler alive: about 2 KiB less than a handler waiting in
//! [`closed`].
//!
//! [`closed`]: SseWriter::closed
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod answer;
mod body;
pub mod broadcast;
#[doc = include_str!("docs/cookbook.md")]
pub mod cookbook {}
#[cfg(feature = "client")]
pub mod client;
pub mod decode;
mod event;
mod extract;
mod frame_buffer;
mod headers;
pub mod heartbeat;
pub mod last_event_id;
pub mod layer;
pub mod limit;
mod position;
mod queue;
pub mod retry;
pub mod shutdown;
pub mod stats;
pub mod stream_service;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod time_limit;
mod writer;

use axum::BoxError;

/// The README's code blocks, compiled and run as doc tests so the first
/// code a user reads keeps working.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use crate::{
    answer::AnswerBody,
    body::{SseBody, SseItem},
    event::{EncodedEvent, Event, EventError, EventField, EventIdValue},
    extract::SseWriterRejection,
    heartbeat::{HeartbeatBody, HeartbeatLayer},
    last_event_id::{
        InvalidLastEventId, LastEventId, LastEventIdLayer, LastEventIdRejection, LastEventIdService,
    },
    layer::{SseLayer, SseLayerBuilder},
    limit::{ClientKey, StreamLimitLayer},
    retry::{RetryBody, RetryLayer},
    shutdown::{ShutdownLayer, SseShutdown},
    stats::{CloseReason, SseStats, SseStatsSnapshot},
    time_limit::{TimeLimitBody, TimeLimitLayer},
    writer::{SseError, SseWriter, TrySendError},
};
