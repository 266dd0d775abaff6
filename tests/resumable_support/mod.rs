//! A token-generating app over `ResumableResponses`, and a client that
//! drops and resumes it: shared by the memory and Redis tests.
#![allow(dead_code, unreachable_pub)]

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::{
    extract::{Path, Query, State},
    routing::{get, post},
    Router,
};
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use serde::Deserialize;

use axum_sse::{
    resumable::{ResumableError, ResumableResponses, Resume},
    Event, LastEventId, SseLayer,
};

/// What the app shares: the store and how many times each producer ran.
#[derive(Clone)]
pub struct App {
    pub responses: ResumableResponses,
    pub generations: Arc<AtomicUsize>,
    /// Producers wait until this is `true` (it is at first).
    pub gate: tokio::sync::watch::Sender<bool>,
}

#[derive(Deserialize)]
pub struct StartQuery {
    pub n: usize,
    #[serde(default)]
    pub delay_ms: u64,
}

/// The token `i` of every reply.
pub fn token(i: usize) -> String {
    format!("tok{i} ")
}

/// The reply's text, as the client should put it together.
pub fn reply_text(n: usize) -> String {
    (0..n).map(token).collect()
}

/// `POST /replies?n=N&delay_ms=D`: starts a producer that sleeps D ms,
/// then writes a token, N times, then `event: done`. Answers the id.
async fn start(
    State(app): State<App>,
    Query(query): Query<StartQuery>,
) -> Result<String, ResumableError> {
    let generations = Arc::clone(&app.generations);
    let mut gate = app.gate.subscribe();
    app.responses
        .start(move |mut sink| async move {
            generations.fetch_add(1, Ordering::SeqCst);
            let _ = gate.wait_for(|open| *open).await;
            for i in 0..query.n {
                tokio::time::sleep(Duration::from_millis(query.delay_ms)).await;
                sink.send(Event::new().event("token").data(token(i)))
                    .await?;
            }
            sink.send(Event::new().event("done").data("")).await
        })
        .await
}

/// `GET /replies/{id}`: the reply from the client's `Last-Event-ID`.
async fn read(
    State(app): State<App>,
    Path(id): Path<String>,
    last_event_id: Option<LastEventId>,
) -> Result<Resume, ResumableError> {
    let last = last_event_id.as_ref().map(LastEventId::as_str);
    app.responses.resume(&id, last).await
}

/// `GET /resume`: the reply that the client's `Last-Event-ID` names.
async fn read_named(
    State(app): State<App>,
    last_event_id: Option<LastEventId>,
) -> Result<Resume, ResumableError> {
    match last_event_id {
        Some(last) => app.responses.resume_by_event_id(last.as_str()).await,
        None => Ok(Resume::NotFound),
    }
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/replies", post(start))
        .route(
            "/replies/{id}",
            get(read).layer(SseLayer::builder().build()),
        )
        .route(
            "/resume",
            get(read_named).layer(SseLayer::builder().build()),
        )
        .with_state(app)
}

pub fn app(responses: ResumableResponses) -> App {
    App {
        responses,
        generations: Arc::default(),
        gate: tokio::sync::watch::Sender::new(true),
    }
}

pub async fn send(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    last_event_id: Option<&str>,
) -> Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, addr.to_string());
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    sender
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap()
}

/// Starts a reply of `n` tokens on `addr`; its id.
pub async fn start_reply(addr: SocketAddr, n: usize, delay_ms: u64) -> String {
    let response = send(
        addr,
        http::Method::POST,
        &format!("/replies?n={n}&delay_ms={delay_ms}"),
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// The whole events among `bytes` (up to the last blank line) and the
/// `id` of the last of them.
pub fn whole_events(bytes: &[u8]) -> (&[u8], Option<String>) {
    let end = bytes
        .windows(2)
        .rposition(|w| w == b"\n\n")
        .map_or(0, |at| at + 2);
    let whole = &bytes[..end];
    let id = whole
        .split(|&b| b == b'\n')
        .rev()
        .find_map(|line| line.strip_prefix(b"id: "))
        .map(|id| String::from_utf8(id.to_vec()).unwrap());
    (whole, id)
}

/// How many whole events `bytes` holds.
pub fn count_events(bytes: &[u8]) -> usize {
    bytes.windows(2).filter(|w| *w == b"\n\n").count()
}

/// Reads `GET /replies/{id}` from `last` until `stop_after` whole events
/// (then drops the connection) or the end; the whole events read.
pub async fn read_events(
    addr: SocketAddr,
    id: &str,
    last: Option<&str>,
    stop_after: Option<usize>,
) -> (StatusCode, Vec<u8>) {
    read_path(addr, &format!("/replies/{id}"), last, stop_after).await
}

/// [`read_events`] of `GET path`.
pub async fn read_path(
    addr: SocketAddr,
    path: &str,
    last: Option<&str>,
    stop_after: Option<usize>,
) -> (StatusCode, Vec<u8>) {
    let response = send(addr, http::Method::GET, path, last).await;
    let status = response.status();
    let mut body = response.into_body();
    let mut received = Vec::new();
    loop {
        if stop_after.is_some_and(|k| count_events(&received) >= k) {
            break;
        }
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .expect("no data within 30 s");
        match frame {
            Some(frame) => {
                if let Ok(data) = frame.unwrap().into_data() {
                    received.extend_from_slice(&data);
                }
            }
            None => break,
        }
    }
    if let Some(k) = stop_after {
        // Events past the k-th are lost with the connection.
        let mut at = 0;
        for _ in 0..k {
            match received[at..].windows(2).position(|w| w == b"\n\n") {
                Some(end) => at += end + 2,
                None => break,
            }
        }
        received.truncate(at);
    }
    let (whole, _) = whole_events(&received);
    (status, whole.to_vec())
}

/// The data of the `token` events of `bytes`, joined, and checks that the
/// reply ends with `done`.
pub fn reply_of(bytes: &[u8]) -> String {
    let text = std::str::from_utf8(bytes).unwrap();
    let mut reply = String::new();
    let mut done = 0;
    for block in text.split_terminator("\n\n") {
        let mut lines = block.lines();
        match lines.next() {
            Some("event: token") => {
                let data = lines.next().unwrap();
                reply.push_str(data.strip_prefix("data: ").unwrap());
            }
            Some("event: done") => done += 1,
            other => panic!("unexpected event {other:?} in {text:?}"),
        }
        assert!(
            block.lines().last().unwrap().starts_with("id: "),
            "{block:?}"
        );
    }
    assert_eq!(done, 1, "one done event in {text:?}");
    reply
}
