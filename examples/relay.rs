//! The relay pattern: read an upstream event stream, transform it, re-emit it.
//!
//! ```text
//! cargo run --example chat                      # the upstream, on port 3000
//! UPSTREAM='http://127.0.0.1:3000/chat?prompt=hi' cargo run --example relay
//! curl -N http://127.0.0.1:3001/relay
//! curl -N -H 'Last-Event-ID: 3' http://127.0.0.1:3001/relay
//! curl -N 'http://127.0.0.1:3001/relay?prompt=bye'
//! ```
//!
//! `GET /relay` opens one upstream connection per client and sends every
//! upstream event on through an `SseWriter`, with its type, data and id,
//! after the `transform` hook (which drops `internal` events here):
//!
//! - The query string of `/relay` is merged into `UPSTREAM`'s: a parameter
//!   of the relay request replaces every upstream parameter of the same
//!   name, the others are kept (so `?prompt=bye` above asks the chat demo
//!   something else).
//! - The client's `Last-Event-ID` goes upstream, so a reconnecting client
//!   resumes where it stopped; when the upstream ends or breaks, so does the
//!   relayed stream, and the client reconnects through the relay.
//! - A `retry` field of the upstream is passed on in the next event it
//!   relays (a block of its own, without data, would be dispatched as an
//!   empty event by loose parsers); comments (heartbeats) are not: the relay
//!   sends its own.
//! - An upstream that cannot be reached, or that answers anything but
//!   `200 OK` with `text/event-stream`, gets the client a `502 Bad Gateway`
//!   with a short explanation; an upstream `204 No Content` (nothing more to
//!   send) is passed on as it is.
//! - When the client leaves, the relay notices at its next write (an
//!   upstream event, or a heartbeat while the upstream is quiet): the send
//!   fails or `SseWriter::closed` resolves, and it drops the upstream
//!   connection.
//!
//! Environment: `UPSTREAM` (`http://127.0.0.1:3000/chat?prompt=hi`, the chat
//! demo), `PORT` (3001, beside the chat demo).

use std::{collections::HashSet, time::Duration};

use axum::{
    body::Body,
    extract::{RawQuery, State},
    http::{header, HeaderValue, Request, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use axum_sse::{
    decode::{DecodedEvent, EventStream},
    Event, SseLayer, SseWriter,
};
use futures_util::StreamExt;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};

#[path = "support/mod.rs"]
mod support;

/// The transform hook: what to relay for one upstream event, or `None` to
/// drop it. This one relays everything unchanged except the upstream's
/// `internal` events; it could as well rename types or rewrite the data
/// (say, parse an LLM provider's JSON and keep the text).
pub fn transform(event: DecodedEvent) -> Option<DecodedEvent> {
    (event.event != "internal").then_some(event)
}

/// Encodes `event` again: `event` (left out for `message`, the default),
/// `id` when it differs from `previous_id` (the last one relayed), `retry`
/// if the block had one, then `data`. That is the order `Event` writes them
/// in when built that way, so events built like that upstream come out
/// byte for byte as they went in.
pub fn encode(event: &DecodedEvent, previous_id: &str) -> Event {
    let mut out = Event::new();
    if event.event != "message" {
        out = out.event(&event.event);
    }
    if event.last_event_id != previous_id {
        out = out.id(event.last_event_id.as_str());
    }
    if let Some(retry) = event.retry {
        out = out.retry(retry);
    }
    out.data(&event.data)
}

#[derive(Clone)]
struct Relay {
    upstream: Uri,
    client: Client<HttpConnector, Body>,
}

/// The relay's routes: `GET /relay`, relaying `upstream`.
pub fn app(upstream: Uri) -> Router {
    let client = Client::builder(TokioExecutor::new()).build_http();
    Router::new()
        .route("/relay", get(relay))
        .with_state(Relay { upstream, client })
        .layer(
            SseLayer::builder()
                .heartbeat(Duration::from_secs(15))
                .build(),
        )
}

async fn relay(
    State(relay): State<Relay>,
    RawQuery(query): RawQuery,
    mut sse: SseWriter,
) -> Response {
    let uri = upstream_uri(&relay.upstream, query.as_deref());
    let mut request = Request::get(&uri)
        .header(header::ACCEPT, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache");
    if let Some(id) = sse.last_event_id() {
        request = request.header("last-event-id", id);
    }
    let request = request.body(Body::empty()).expect("a valid request");

    let response = match relay.client.request(request).await {
        Ok(response) => response,
        Err(err) => return bad_gateway(format!("cannot reach the upstream {uri}: {err}")),
    };
    match response.status() {
        StatusCode::OK => {}
        // The upstream has nothing more: tell the client to stop too.
        StatusCode::NO_CONTENT => return StatusCode::NO_CONTENT.into_response(),
        status => return bad_gateway(format!("the upstream {uri} answered {status}")),
    }
    let content_type = response.headers().get(header::CONTENT_TYPE);
    if !is_event_stream(content_type) {
        return bad_gateway(format!(
            "the upstream {uri} answered with content type {content_type:?}, \
             not text/event-stream"
        ));
    }

    // The client gets its 200 now, even if the upstream is slow to speak.
    if sse.start().is_err() {
        return ().into_response();
    }
    tracing::info!(%uri, last_event_id = ?sse.last_event_id(), "relaying");
    let mut events = EventStream::from_body(response.into_body());
    let mut relayed_id = String::new();
    let mut relayed_retry = None;
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            () = sse.closed() => break,
        };
        let event = match next {
            Some(Ok(event)) => event,
            Some(Err(err)) => {
                tracing::warn!(%uri, %err, "upstream stream failed; ending the relayed stream");
                break;
            }
            None => break,
        };
        let Some(mut event) = transform(event) else {
            continue;
        };
        // A reconnection time set by a block without data rides along.
        if event.retry.is_none() && events.retry() != relayed_retry {
            event.retry = events.retry();
        }
        if sse.send(encode(&event, &relayed_id)).await.is_err() {
            break;
        }
        relayed_retry = events.retry();
        relayed_id = event.last_event_id;
    }
    // Dropping `events` here drops the upstream connection.
    tracing::info!(%uri, "relay done");
    ().into_response()
}

/// `upstream` with the relay request's query merged in: its parameters
/// replace the upstream's of the same name.
fn upstream_uri(upstream: &Uri, query: Option<&str>) -> Uri {
    let Some(query) = query.filter(|query| !query.is_empty()) else {
        return upstream.clone();
    };
    let replaced: HashSet<_> = form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| name)
        .collect();
    let mut merged = form_urlencoded::Serializer::new(String::new());
    let kept = form_urlencoded::parse(upstream.query().unwrap_or_default().as_bytes())
        .filter(|(name, _)| !replaced.contains(name));
    merged.extend_pairs(kept);
    merged.extend_pairs(form_urlencoded::parse(query.as_bytes()));
    let mut parts = upstream.clone().into_parts();
    parts.path_and_query = Some(
        format!("{}?{}", upstream.path(), merged.finish())
            .parse()
            .expect("a form-urlencoded query is a valid URI query"),
    );
    Uri::from_parts(parts).expect("the upstream URI with another query")
}

fn is_event_stream(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/event-stream"))
}

fn bad_gateway(message: String) -> Response {
    tracing::warn!("{message}");
    (StatusCode::BAD_GATEWAY, format!("{message}\n")).into_response()
}

#[tokio::main]
async fn main() {
    support::init_logging();
    let upstream: Uri = std::env::var("UPSTREAM")
        .unwrap_or_else(|_| "http://127.0.0.1:3000/chat?prompt=hi".into())
        .parse()
        .expect("UPSTREAM must be a URL such as http://127.0.0.1:3000/chat?prompt=hi");

    let port: u16 = support::env_or("PORT", 3001);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|err| panic!("cannot bind 127.0.0.1:{port}: {err}"));
    tracing::info!(
        "relaying {upstream} on http://{}/relay",
        listener.local_addr().unwrap()
    );
    axum_sse::serve(listener, app(upstream))
        .with_graceful_shutdown(support::shutdown_signal())
        .await
        .expect("server error");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_merge() {
        let upstream = Uri::from_static("http://up:3000/chat?prompt=hi&lang=en");
        assert_eq!(upstream_uri(&upstream, None), upstream);
        assert_eq!(upstream_uri(&upstream, Some("")), upstream);
        assert_eq!(
            upstream_uri(&upstream, Some("prompt=bye+now&x=1")),
            "http://up:3000/chat?lang=en&prompt=bye+now&x=1"
        );
        let bare = Uri::from_static("http://up/events");
        assert_eq!(
            upstream_uri(&bare, Some("a=%C3%BC")),
            "http://up/events?a=%C3%BC"
        );
    }
}
