//! An MCP server over the Streamable HTTP transport (MCP specification
//! 2025-11-25, "Transports"), whose long tool calls are resumable responses
//! split over several connections ("SSE polling").
//!
//! ```text
//! cargo run --example mcp
//! ```
//!
//! One endpoint, `/mcp` (and `GET /`, a line of text, for health checks):
//!
//! - `POST` a JSON-RPC message. `initialize` answers `application/json` and
//!   an `Mcp-Session-Id` header, which every later request must carry
//!   (`400` without it, `404` for a session this server does not know);
//!   `tools/list` and `ping` answer `application/json`; notifications and
//!   responses `202 Accepted`. `tools/call` of the one tool, `slow_count`
//!   (`{"n": 1..=100, "delay_ms": 0..=10000}`), answers an SSE stream: a
//!   priming event (an id and empty data), a `notifications/progress` per
//!   step if the request has a progress token, then the JSON-RPC result.
//! - `GET` with `Last-Event-ID` resumes such a stream after that event;
//!   without one, `405` (this server has no stream of its own to offer).
//! - `DELETE` ends the session. Sessions live until then (at most 10 000
//!   at once: `initialize` past that is `503`).
//!
//! The call runs as a [`ResumableResponses`] response: a producer writes its
//! events into a log, and every HTTP stream is a reader of it. Each stream
//! ends after `CLOSE_AFTER_MS` with a lone `retry: RETRY_MS` line
//! ([`close_after`](axum_sse::resumable::ResponseStream::close_after)):
//! the client waits that long and comes back with `GET` and its last event
//! id, so a long call holds no connection for long, and a dropped
//! connection loses nothing. The wire:
//!
//! ```text
//! $ curl -si localhost:3000/mcp -H 'Content-Type: application/json' \
//!     -H 'Accept: application/json, text/event-stream' \
//!     -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
//! HTTP/1.1 200 OK
//! content-type: application/json
//! mcp-session-id: 5b0c…
//!
//! {"id":1,"jsonrpc":"2.0","result":{"capabilities":{"tools":{}},"protocolVersion":"2025-11-25",…}}
//!
//! $ curl -sN localhost:3000/mcp -H 'Mcp-Session-Id: 5b0c…' -H 'Content-Type: application/json' \
//!     -H 'Accept: application/json, text/event-stream' \
//!     -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow_count","arguments":{"n":3,"delay_ms":600},"_meta":{"progressToken":7}}}'
//! data:
//! id: 5b0c…:0/GBECqqNPWPn.2
//!
//! data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1,"progressToken":7,"total":3}}
//! id: 5b0c…:0/GBECqqNPWPn.3
//!
//! retry: 100
//!
//! $ curl -sN localhost:3000/mcp -H 'Mcp-Session-Id: 5b0c…' -H 'Accept: text/event-stream' \
//!     -H 'Last-Event-ID: 5b0c…:0/GBECqqNPWPn.3'
//! data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":2,"progressToken":7,"total":3}}
//! id: 5b0c…:0/GBECqqNPWPn.4
//! …
//! data: {"id":2,"jsonrpc":"2.0","result":{"content":[{"text":"counted to 3","type":"text"}]}}
//! id: 5b0c…:0/GBECqqNPWPn.6
//! ```
//!
//! The `retry` line has no blank line after it, so no parser dispatches an
//! event for it (WHATWG: it sets the "reconnection time"). A `GET` after
//! the last event answers `204 No Content`.
//!
//! Event ids: a `GET` carries nothing but `Last-Event-ID` to find the
//! response by, and a resumable response's event ids are
//! `{response id}/{log id}`, so
//! [`ResumableResponses::resume_by_event_id`] finds it. This server's
//! response ids start with the session id (`{session}:{call}`): a stream
//! of another session is refused (`400`), as the spec's "MUST NOT replay
//! messages that would have been delivered on a different stream" asks.
//!
//! A step without a progress token still writes an event with an id (a
//! priming event again), so that every connection brings one:
//! `@modelcontextprotocol/sdk` 1.32 forgets the `Last-Event-ID` it resumed
//! with when that `GET` ends before a new id (typescript-sdk issue #2499),
//! and comes back without one. A call whose steps are longer than
//! `CLOSE_AFTER_MS` still loses its stream with that client.
//!
//! Requests with an `Origin` header other than a loopback one are refused
//! (`403`), as the spec asks against DNS rebinding; an `MCP-Protocol-Version`
//! header this server does not speak is `400`.
//!
//! Environment: `PORT` (3000), `CLOSE_AFTER_MS` (1000), `RETRY_MS` (100).

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use axum_sse::{
    resumable::{EventSink, ResumableResponses, Resume, SinkError},
    Event, LastEventId, SseBody, SseLayer, SseShutdown,
};
use serde_json::{json, Value};

#[path = "support/mod.rs"]
mod support;

/// The newest revision first: what `initialize` answers when the client
/// asks for one this server does not speak.
const PROTOCOL_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// At most this many sessions at once: `initialize` past it is `503`.
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone)]
struct AppState {
    responses: ResumableResponses,
    sessions: Arc<Mutex<HashSet<String>>>,
    calls: Arc<AtomicU64>,
    close_after: Duration,
    retry: Duration,
}

/// A request refused before any stream: a status and a short text.
type Refusal = (StatusCode, &'static str);

/// A JSON-RPC answer as `application/json`.
fn json_rpc(id: &Value, outcome: Result<Value, (i64, String)>) -> Response {
    let message = match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
    };
    Json(message).into_response()
}

/// `400` with a JSON-RPC error that answers no request.
fn bad_message(code: i64, message: &str) -> Response {
    let error = Err((code, message.to_owned()));
    (StatusCode::BAD_REQUEST, json_rpc(&Value::Null, error)).into_response()
}

/// Checks what every request must carry: a loopback `Origin` if any, a
/// protocol version this server speaks if any, and (unless `initialize`) a
/// session this server knows. Returns the session id.
fn check(state: &AppState, headers: &HeaderMap, needs_session: bool) -> Result<String, Refusal> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|host| {
                origin
                    .strip_prefix(host)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
            });
        if !loopback {
            return Err((StatusCode::FORBIDDEN, "origin not allowed"));
        }
    }
    if let Some(version) = headers.get(VERSION_HEADER) {
        if !PROTOCOL_VERSIONS.iter().any(|v| version == v) {
            return Err((StatusCode::BAD_REQUEST, "unsupported MCP-Protocol-Version"));
        }
    }
    if !needs_session {
        return Ok(String::new());
    }
    let Some(session) = headers.get(SESSION_HEADER) else {
        return Err((StatusCode::BAD_REQUEST, "Mcp-Session-Id missing"));
    };
    let session = session.to_str().unwrap_or_default();
    if !state.sessions.lock().unwrap().contains(session) {
        return Err((StatusCode::NOT_FOUND, "no such session"));
    }
    Ok(session.to_owned())
}

/// Whether the `Accept` header lists `media_type`.
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.split(';').next().unwrap_or_default().trim() == media_type)
}

/// `POST /mcp`: one JSON-RPC message.
async fn post_message(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !accepts(&headers, "application/json") || !accepts(&headers, "text/event-stream") {
        return (
            StatusCode::NOT_ACCEPTABLE,
            "Accept must list application/json and text/event-stream",
        )
            .into_response();
    }
    let message = match serde_json::from_slice::<Value>(&body) {
        // One message: JSON-RPC batches are gone since 2025-06-18.
        Ok(message) if message.is_object() && message["jsonrpc"] == "2.0" => message,
        Ok(_) => return bad_message(-32600, "invalid request"),
        Err(_) => return bad_message(-32700, "parse error"),
    };
    let method = message["method"].as_str();
    let session = match check(&state, &headers, method != Some("initialize")) {
        Ok(session) => session,
        Err(refusal) => return refusal.into_response(),
    };
    let id = Some(&message["id"]).filter(|id| id.is_string() || id.is_number());
    let (Some(method), Some(id)) = (method, id) else {
        // A notification or a response of the client: nothing to answer.
        return StatusCode::ACCEPTED.into_response();
    };
    let params = message.get("params").cloned().unwrap_or(Value::Null);
    match method {
        "initialize" => initialize(&state, id, &params),
        "ping" => json_rpc(id, Ok(json!({}))),
        "tools/list" => json_rpc(id, Ok(json!({"tools": [slow_count_tool()]}))),
        "tools/call" => call_tool(&state, &session, id, &params).await,
        _ => json_rpc(id, Err((-32601, format!("method not found: {method}")))),
    }
}

fn initialize(state: &AppState, id: &Value, params: &Value) -> Response {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = PROTOCOL_VERSIONS
        .into_iter()
        .find(|v| Some(*v) == asked)
        .unwrap_or(PROTOCOL_VERSIONS[0]);
    // Not to be guessed: 128 bits from the OS ("cryptographically secure",
    // as the spec asks of session ids).
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "no randomness").into_response();
    }
    let session: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    {
        let mut sessions = state.sessions.lock().unwrap();
        if sessions.len() >= MAX_SESSIONS {
            return (StatusCode::SERVICE_UNAVAILABLE, "too many sessions").into_response();
        }
        sessions.insert(session.clone());
    }
    let result = json!({
        "protocolVersion": version,
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "axum-sse-mcp-example", "version": env!("CARGO_PKG_VERSION")},
    });
    let mut response = json_rpc(id, Ok(result));
    let session = HeaderValue::from_str(&session).expect("hex digits");
    response.headers_mut().insert(SESSION_HEADER, session);
    response
}

fn slow_count_tool() -> Value {
    json!({
        "name": "slow_count",
        "description": "Counts from 1 to n, one step every delay_ms milliseconds.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "n": {"type": "integer", "minimum": 1, "maximum": 100},
                "delay_ms": {"type": "integer", "minimum": 0, "maximum": 10000, "default": 500},
            },
            "required": ["n"],
        },
    })
}

/// `tools/call`: `slow_count` runs as a resumable response, read by this
/// POST's stream first.
async fn call_tool(state: &AppState, session: &str, id: &Value, params: &Value) -> Response {
    if params.get("name").and_then(Value::as_str) != Some("slow_count") {
        return json_rpc(id, Err((-32602, "unknown tool".to_owned())));
    }
    let arguments = &params["arguments"];
    let n = arguments["n"].as_u64().filter(|n| (1..=100).contains(n));
    let delay_ms = match &arguments["delay_ms"] {
        Value::Null => Some(500),
        delay => delay.as_u64().filter(|ms| *ms <= 10_000),
    };
    let (Some(n), Some(delay_ms)) = (n, delay_ms) else {
        // Bad arguments are a tool error the model can read, not a
        // protocol error.
        let text = "n must be an integer from 1 to 100, delay_ms from 0 to 10000";
        let result = json!({"content": [{"type": "text", "text": text}], "isError": true});
        return json_rpc(id, Ok(result));
    };
    let progress_token = params["_meta"]["progressToken"].clone();
    let request_id = id.clone();
    let delay = Duration::from_millis(delay_ms);
    let producer = move |sink| slow_count(sink, request_id, progress_token, n, delay);
    // The response id names the session: a GET of another session's stream
    // is refused.
    let response = format!("{session}:{}", state.calls.fetch_add(1, Ordering::Relaxed));
    if let Err(err) = state.responses.start_with_id(&response, producer).await {
        return err.into_response();
    }
    match state.responses.resume(&response, None).await {
        Ok(resume) => stream_response(state, resume),
        Err(err) => err.into_response(),
    }
}

/// The producer: a priming event, a step every `delay`, then the result.
async fn slow_count(
    mut sink: EventSink,
    id: Value,
    progress_token: Value,
    n: u64,
    delay: Duration,
) -> Result<(), SinkError> {
    sink.prime().await?;
    for step in 1..=n {
        tokio::time::sleep(delay).await;
        if progress_token.is_null() {
            // An id for the client to come back with (see the module docs).
            sink.prime().await?;
        } else {
            let params = json!({"progressToken": progress_token, "progress": step, "total": n});
            let note =
                json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": params});
            sink.send(Event::new().data(note.to_string())).await?;
        }
    }
    let text = format!("counted to {n}");
    let result = json!({"content": [{"type": "text", "text": text}]});
    let answer = json!({"jsonrpc": "2.0", "id": id, "result": result});
    sink.send(Event::new().data(answer.to_string())).await
}

/// A reader of a response as the HTTP answer, closed early with a `retry`.
fn stream_response(state: &AppState, resume: Resume) -> Response {
    match resume {
        Resume::Stream(stream) => {
            let stream = stream.close_after(state.close_after, state.retry);
            SseBody::new(stream).into_response()
        }
        // Nothing left to read: the client has the whole answer.
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

/// `GET /mcp`: resumes a tool call's stream after `Last-Event-ID`.
async fn resume(
    State(state): State<AppState>,
    headers: HeaderMap,
    last_event_id: Option<LastEventId>,
) -> Response {
    if !accepts(&headers, "text/event-stream") {
        return (
            StatusCode::NOT_ACCEPTABLE,
            "Accept must list text/event-stream",
        )
            .into_response();
    }
    let session = match check(&state, &headers, true) {
        Ok(session) => session,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(last_event_id) = last_event_id else {
        let mut response = (StatusCode::METHOD_NOT_ALLOWED, "no standalone stream").into_response();
        let allow = HeaderValue::from_static("POST, DELETE");
        response.headers_mut().insert(header::ALLOW, allow);
        return response;
    };
    // The id names its response, `{session}:{call}/…`: one of this
    // session's, or none of its business.
    let last_event_id = last_event_id.as_str();
    if !last_event_id.starts_with(&format!("{session}:")) {
        return (StatusCode::BAD_REQUEST, "not a stream of this session").into_response();
    }
    match state.responses.resume_by_event_id(last_event_id).await {
        Ok(resume) => stream_response(&state, resume),
        Err(err) => err.into_response(),
    }
}

/// `DELETE /mcp`: ends the session. Its calls run on until they end.
async fn end_session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match check(&state, &headers, true) {
        Ok(session) => {
            state.sessions.lock().unwrap().remove(&session);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

#[tokio::main]
async fn main() {
    support::init_logging();
    let shutdown = SseShutdown::new();
    let responses = ResumableResponses::builder()
        .shutdown(shutdown.clone())
        .build();
    let state = AppState {
        responses: responses.clone(),
        sessions: Arc::default(),
        calls: Arc::default(),
        close_after: Duration::from_millis(support::env_or("CLOSE_AFTER_MS", 1000)),
        retry: Duration::from_millis(support::env_or("RETRY_MS", 100)),
    };
    // The layer sets the SSE headers and heartbeats on the event streams
    // and leaves the JSON answers alone. The store's `shutdown` ends the
    // streams (with a spread `retry`): not the layer's.
    let sse = SseLayer::builder()
        .heartbeat(Duration::from_secs(15))
        .build();
    let app = Router::new()
        .route(
            "/",
            get(|| async { "An MCP server (Streamable HTTP) at /mcp\n" }),
        )
        .route(
            "/mcp",
            get(resume)
                .post(post_message)
                .delete(end_session)
                .layer(sse),
        )
        .with_state(state);

    let listener = support::bind().await;
    tracing::info!(
        "MCP server on http://{}/mcp",
        listener.local_addr().unwrap()
    );
    support::serve_until_signal(listener, app, shutdown).await;
    if !responses.drain(Duration::from_secs(10)).await {
        tracing::warn!("tool calls still running after 10 s were cut");
    }
}
