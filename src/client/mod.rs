//! A reconnecting Server-Sent Events client (feature `client`).
//!
//! [`EventSource`] does what a browser's `EventSource` does, as a
//! [`Stream`](futures_util::Stream) of
//! `Result<`[`DecodedEvent`](crate::decode::DecodedEvent)`, `[`ClientError`]`>`:
//!
//! * it sends `GET` with `Accept: text/event-stream` and
//!   `Cache-Control: no-cache` (and any headers you add), following
//!   redirects;
//! * a `200 OK` answer with the content type `text/event-stream` opens the
//!   stream, decoded by the spec-exact [`decode`](crate::decode) module;
//! * when the stream ends or breaks, or the server cannot be reached, it
//!   waits the reconnection time (the server's latest `retry` field,
//!   3 s until then) and reconnects, sending the last event ID as
//!   `Last-Event-ID`; attempts that fail in a row back off exponentially
//!   with jitter, up to a maximum; an open stream resets the back-off;
//! * `204 No Content` ends the stream (the server says: do not reconnect);
//! * any other status, a `200` with another content type, or a stream that
//!   breaks a decoder limit fails the connection, as the spec says: the
//!   stream yields the [`ClientError`] and ends, without reconnecting.
//!
//! Reconnections are silent: the stream just goes on with the events of the
//! next connection (they are logged with `tracing` at `debug` level). An
//! error is always the last item. Dropping the `EventSource` closes the
//! connection.
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
