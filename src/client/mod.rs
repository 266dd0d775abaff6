//! A reconnecting Server-Sent Events client (feature `client`).
//!
//! [`EventSource`] does what a browser's `EventSource` does, as a
//! [`Stream`](futures_util::Stream) of
//! `Result<`[`DecodedEvent`](crate::decode::DecodedEvent)`, `[`ClientError`]`>`,
//! plus what LLM and MCP clients need (a method, a body and headers, a read
//! timeout):
//!
//! * it sends `GET` (or the [`method`](EventSourceBuilder::method) and
//!   [`body`](EventSourceBuilder::body) you set, again on every
//!   reconnection) with `Accept: text/event-stream` and
//!   `Cache-Control: no-cache` (and any headers you add), following
//!   redirects;
//! * a `200 OK` answer with the content type `text/event-stream` opens the
//!   stream, decoded by the spec-exact [`decode`](crate::decode) module;
//! * when the stream ends or breaks, when the server cannot be reached, or
//!   when no byte came for the [`read_timeout`](EventSourceBuilder::read_timeout)
//!   (a half-open connection), it waits and reconnects, sending the last
//!   event ID string as `Last-Event-ID`: the `id` of the latest *dispatched*
//!   event, never that of an event the connection broke in the middle of,
//!   which the server is then asked for again;
//! * `204 No Content` ends the stream (the server says: do not reconnect);
//! * any other status, a `200` with another content type, or a stream that
//!   breaks a decoder limit fails the connection, as the spec says: the
//!   stream yields the [`ClientError`] and ends, without reconnecting.
//!
//! # Reconnection and back-off
//!
//! A connection is **healthy** when the server answered `200` with
//! `text/event-stream` and the stream dispatched at least one event, or
//! stayed open for [`reset_backoff_after`](EventSourceBuilder::reset_backoff_after)
//! (60 s). After a healthy stream the client waits the reconnection time
//! (the server's latest `retry` field, [`retry`](EventSourceBuilder::retry)
//! until then, 3 s by default), as the spec says, even if it is zero.
//! Anything else is a failure, and failures in a row back off exponentially
//! with jitter from [`min_backoff`](EventSourceBuilder::min_backoff) (1 s, or
//! the reconnection time if longer) whatever `retry` says, up to
//! [`max_backoff`](EventSourceBuilder::max_backoff) (60 s), which also caps
//! a huge `retry`. Only a healthy stream resets the back-off, so neither a
//! server that sends `retry: 0` and then fails, nor one that accepts every
//! stream and closes it at once, makes the client reconnect in a loop.
//! [`max_retries`](EventSourceBuilder::max_retries) gives up after so many
//! attempts without a healthy stream.
//!
//! Reconnections are silent: the stream just goes on with the events of the
//! next connection (they are logged with `tracing` at `debug` level, with
//! their cause). An error is always the last item. Dropping the
//! `EventSource` closes the connection.
//!
//! The built-in HTTP client is hyper-util's, over plain HTTP/1.1; for
//! `https`, pass a client with a TLS connector to
//! [`EventSourceBuilder::client`]. An `EventSource` must be polled inside a
//! Tokio runtime (for its timers and the built-in client's connections).
//!
//! # Example
//!
//! ```
//! use axum_sse::client::EventSource;
//! use futures_util::StreamExt;
//! # use axum::{routing::get, Router};
//! # use axum_sse::{Event, SseLayer, SseWriter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let app: Router = Router::new()
//! #     .route("/ticks", get(|mut sse: SseWriter| async move {
//! #         for i in 1..=3 {
//! #             let _ = sse.send(Event::new().event("tick").id(i).data("x")).await;
//! #         }
//! #     }))
//! #     .layer(SseLayer::new());
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let addr = listener.local_addr()?;
//! # tokio::spawn(async move { axum::serve(listener, app).await });
//! // A server sends three `tick` events with ids 1, 2, 3.
//! let mut events = EventSource::new(format!("http://{addr}/ticks").parse()?);
//! while let Some(event) = events.next().await {
//!     let event = event?; // a `ClientError` ends the stream
//!     assert_eq!((event.event.as_str(), event.data.as_str()), ("tick", "x"));
//!     if event.last_event_id == "3" {
//!         break; // or the client reconnects, sending `Last-Event-ID: 3`
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A `POST` stream, as LLM APIs and MCP servers answer, with a read timeout
//! that drops a connection gone silent:
//!
//! ```
//! use std::time::Duration;
//! use axum_sse::client::EventSource;
//! use futures_util::StreamExt;
//! use http::{header, HeaderValue, Method};
//! # use axum::{routing::post, Router};
//! # use axum_sse::{Event, SseLayer, SseWriter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let app: Router = Router::new()
//! #     .route("/v1/chat", post(|mut sse: SseWriter, prompt: String| async move {
//! #         for word in prompt.split(' ') {
//! #             let _ = sse.send(Event::new().event("token").data(word)).await;
//! #         }
//! #         let _ = sse.send(Event::new().event("done").data("")).await;
//! #     }))
//! #     .layer(SseLayer::new());
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let addr = listener.local_addr()?;
//! # tokio::spawn(async move { axum::serve(listener, app).await });
//! // The server streams the words of the prompt as `token` events, then `done`.
//! let mut events = EventSource::builder(format!("http://{addr}/v1/chat").parse()?)
//!     .method(Method::POST)
//!     .header(header::AUTHORIZATION, HeaderValue::from_static("Bearer secret"))
//!     .header(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))
//!     .body("hello streaming world") // sent again if the client reconnects
//!     .read_timeout(Duration::from_secs(30))
//!     .build();
//! let mut words = Vec::new();
//! while let Some(event) = events.next().await {
//!     let event = event?;
//!     match event.event.as_str() {
//!         "token" => words.push(event.data),
//!         "done" => break, // or the client reconnects when the stream ends
//!         _ => {}
//!     }
//! }
//! assert_eq!(words, ["hello", "streaming", "world"]);
//! # Ok(())
//! # }
//! ```
//!
//! Customised, and handling the end of the stream:
//!
//! ```
//! use std::time::Duration;
//! use axum_sse::client::{ClientError, EventSource};
//! use futures_util::StreamExt;
//! # use axum::{http::StatusCode, routing::get, Router};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let app: Router = Router::new()
//! #     .route("/feed", get(|| async { StatusCode::UNAUTHORIZED }));
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let addr = listener.local_addr()?;
//! # tokio::spawn(async move { axum::serve(listener, app).await });
//! let mut events = EventSource::builder(format!("http://{addr}/feed").parse()?)
//!     .last_event_id("41")
//!     .retry(Duration::from_secs(1))
//!     .max_backoff(Duration::from_secs(30))
//!     .max_retries(10)
//!     .build();
//! while let Some(item) = events.next().await {
//!     match item {
//!         Ok(event) => println!("{}: {}", event.event, event.data),
//!         Err(ClientError::Status(status)) => {
//!             assert_eq!(status, StatusCode::UNAUTHORIZED); // not retried
//!         }
//!         Err(ClientError::RetriesExhausted { source, .. }) => {
//!             // `source`: why the last of 11 connections in a row failed,
//!             // such as `ClientError::Connect` or `ClientError::ReadTimeout`.
//!             return Err(source.into());
//!         }
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod backoff;
mod builder;
mod error;
mod event_source;

pub use self::{builder::EventSourceBuilder, error::ClientError, event_source::EventSource};
