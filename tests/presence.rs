//! Presence in memory, end to end: an SSE stream holds a member's guard on a
//! real `axum::serve`, and its end (the client leaving, or the stream
//! finishing) is the member's leave.

mod common;

use std::{net::SocketAddr, time::Duration};

use axum::{
    extract::{Query, State},
    routing::get,
    Router,
};
use futures_util::{stream, stream::BoxStream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use axum_sse::{
    presence::{Presence, PresenceChange, PresenceError, PresenceEvent, PresenceEvents},
    Event, SseBody, SseLayer,
};

#[derive(Deserialize)]
struct Who {
    name: String,
    /// End the stream after the first event.
    #[serde(default)]
    once: bool,
}

/// Joins "room" and sends the subscriber id; the stream holds the guard and
/// then stays open (or ends, with `once`).
async fn room(
    State(presence): State<Presence>,
    Query(who): Query<Who>,
) -> Result<SseBody<BoxStream<'static, Event>>, PresenceError> {
    let guard = presence.join("room", json!({ "name": who.name })).await?;
    let joined = Event::new().event("joined").data(guard.subscriber());
    let rest = if who.once {
        stream::empty().boxed()
    } else {
        stream::pending().boxed()
    };
    let events = stream::once(async move { joined })
        .chain(rest)
        .map(move |event| {
            let _member = &guard;
            event
        });
    Ok(SseBody::new(events.boxed()))
}

async fn serve_room(presence: Presence) -> SocketAddr {
    common::serve(
        Router::new()
            .route("/room", get(room))
            .with_state(presence)
            .layer(SseLayer::new()),
    )
    .await
}

/// A raw HTTP/1.1 client: sends the request, reads until the first event's
/// `data:` line is whole, returns the connection and that data.
async fn open(addr: SocketAddr, query: &str) -> (TcpStream, String) {
    let mut client = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /room?{query} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    client.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let data = loop {
        let text = String::from_utf8_lossy(&received);
        if let Some(start) = text.find("\ndata: ") {
            if let Some(len) = text[start + 7..].find('\n') {
                break text[start + 7..start + 7 + len].to_owned();
            }
        }
        let mut buf = [0; 4096];
        let read = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
            .await
            .expect("no event within 10 s")
            .unwrap();
        assert_ne!(read, 0, "closed before the first event: {text:?}");
        received.extend_from_slice(&buf[..read]);
    };
    assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200 OK\r\n"));
    (client, data)
}

async fn next(events: &mut PresenceEvents) -> PresenceEvent {
    tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .expect("no presence event within 20 s")
        .expect("the presence events ended")
}

#[tokio::test]
async fn a_client_that_disconnects_leaves() {
    let presence = Presence::new();
    let mut events = presence.events("room");
    let addr = serve_room(presence.clone()).await;

    let (client, subscriber) = open(addr, "name=ada").await;
    let joined = next(&mut events).await;
    assert_eq!(joined.change(), PresenceChange::Joined);
    assert_eq!(joined.subscriber(), subscriber);
    assert_eq!(joined.descriptor(), &json!({"name": "ada"}));
    let listed = presence.list("room").await.unwrap();
    assert_eq!(listed, [joined.member().clone()]);

    // A second client stays while the first leaves.
    let (_other, other) = open(addr, "name=bob").await;
    assert_eq!(next(&mut events).await.subscriber(), other);

    drop(client);
    let left = next(&mut events).await;
    assert_eq!(
        (left.change(), left.subscriber(), left.descriptor()),
        (
            PresenceChange::Left,
            subscriber.as_str(),
            &json!({"name": "ada"})
        )
    );
    let listed = presence.list("room").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].subscriber(), other);
}

#[tokio::test]
async fn a_stream_that_ends_leaves() {
    let presence = Presence::new();
    let mut events = presence.events("room");
    let addr = serve_room(presence.clone()).await;
    let (_client, subscriber) = open(addr, "name=ada&once=true").await;
    assert!(next(&mut events).await.is_active());
    let left = next(&mut events).await;
    assert_eq!(
        (left.change(), left.subscriber()),
        (PresenceChange::Left, subscriber.as_str())
    );
    assert!(presence.list("room").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_join_answers_500_and_nobody_joins() {
    let presence = Presence::builder().max_descriptor_len(16).build();
    let mut events = presence.all_events();
    let addr = serve_room(presence.clone()).await;
    let response = common::fetch(addr, "/room?name=a-name-much-too-long-to-describe").await;
    assert_eq!(response.status(), 500);
    let body = common::read_to_end(response.into_body()).await;
    assert_eq!(
        body,
        "the presence descriptor is 43 bytes long, more than 16"
    );
    assert!(presence.list("room").await.unwrap().is_empty());
    assert!(futures_util::poll!(events.next()).is_pending());
}
