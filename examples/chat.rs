//! LLM-style token streaming with resume.
//!
//! ```text
//! cargo run --example chat
//! open http://127.0.0.1:3000/?prompt=hi
//! curl -N 'http://127.0.0.1:3000/chat?prompt=hi'
//! curl -N -H 'Last-Event-ID: 3' 'http://127.0.0.1:3000/chat?prompt=hi'
//! ```
//!
//! `GET /chat?prompt=TEXT` streams a canned reply, one `token` event per
//! word (`id` = the token's 1-based index), then a `done` event with the next
//! id. A client that reconnects with `Last-Event-ID: N` gets the tokens
//! after N; one that already saw `done` gets `204 No Content`, which tells a
//! browser's `EventSource` to stop reconnecting.
//!
//! `POST /api/chat` streams the same reply to the Vercel AI SDK (`useChat`,
//! `DefaultChatTransport`) in its UI message stream protocol: header
//! `x-vercel-ai-ui-message-stream: v1`, one JSON part per event (`start`,
//! `text-start`, `text-delta`…, `text-end`, `finish`), then `data: [DONE]`.
//! The prompt is the text of the last user message of the request's
//! `messages`; one that contains `please fail` gets an `error` part after
//! three tokens instead of the rest.
//!
//! ```text
//! curl -N http://127.0.0.1:3000/api/chat -H 'content-type: application/json' \
//!   -d '{"id":"c1","messages":[{"id":"m1","role":"user","parts":[{"type":"text","text":"hi"}]}]}'
//! ```
//!
//! Ctrl-C (or SIGTERM) ends every open stream with `event: shutdown`, and
//! the server stops at once.
//!
//! Environment: `PORT` (3000), `TOKEN_DELAY_MS` (40). Two query parameters
//! exist for the end-to-end tests: `drop_after=K` ends the first connection
//! right after token K (the client reconnects and resumes), `retry_ms=M`
//! advises a shorter reconnection delay than the default 3 s.

use std::time::Duration;

use axum::{
    extract::{Query, State},
    http::{HeaderValue, StatusCode},
    middleware::map_response,
    response::{Html, IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use axum_sse::{Event, LastEventIdLayer, SseError, SseLayer, SseShutdown, SseWriter};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[path = "support/mod.rs"]
mod support;

#[derive(Deserialize)]
struct ChatQuery {
    prompt: String,
    drop_after: Option<usize>,
    retry_ms: Option<u64>,
}

#[derive(Serialize)]
struct Token<'a> {
    token: &'a str,
}

/// The reply to `prompt`: the same words every time, so a resumed stream
/// continues exactly where the first one stopped.
fn reply(prompt: &str) -> Vec<String> {
    format!(
        "You asked: \"{prompt}\". This reply streams one token at a time over \
         Server-Sent Events, and picks up where it stopped if the connection drops."
    )
    .split_inclusive(' ')
    .map(str::to_owned)
    .collect()
}

async fn chat(
    State(token_delay): State<Duration>,
    Query(query): Query<ChatQuery>,
    mut sse: SseWriter,
) -> Result<Response, SseError> {
    let tokens = reply(&query.prompt);
    let done_id = tokens.len() + 1;
    // Ids are token indexes, so the last one seen says where to resume.
    let resume_after = sse
        .last_event_id()
        .and_then(|id| id.parse::<usize>().ok())
        .unwrap_or(0);
    if resume_after >= done_id {
        // The client saw `done`: nothing left, and 204 stops `EventSource`.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    // A `retry` asked for rides in the first event: a block of its own,
    // without data, would be dispatched as an empty event by loose parsers.
    let mut retry = query.retry_ms.map(Duration::from_millis);
    for (index, token) in tokens.iter().enumerate().skip(resume_after) {
        let id = index + 1;
        tokio::time::sleep(token_delay).await;
        let mut event = Event::new().event("token").id(id);
        if let Some(retry) = retry.take() {
            event = event.retry(retry);
        }
        sse.send(event.json(&Token { token })?).await?;
        if query.drop_after == Some(id) {
            tracing::info!(id, "dropping the connection, as asked");
            return Ok(().into_response());
        }
    }
    sse.send(
        Event::new()
            .event("done")
            .id(done_id)
            .data(r#"{"finished":true}"#),
    )
    .await?;
    Ok(().into_response())
}

/// The AI SDK's chat request: `{ id, messages: [{ id, role, parts }], trigger, .. }`.
#[derive(Deserialize)]
struct UiChatRequest {
    /// The chat's id.
    #[serde(default)]
    id: String,
    messages: Vec<UiMessage>,
}

#[derive(Deserialize)]
struct UiMessage {
    role: String,
    #[serde(default)]
    parts: Vec<UiPart>,
}

#[derive(Deserialize)]
struct UiPart {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

/// `POST /api/chat`: the reply as a Vercel AI SDK UI message stream.
async fn ai_sdk_chat(
    State(token_delay): State<Duration>,
    mut sse: SseWriter,
    Json(request): Json<UiChatRequest>,
) -> Result<Response, SseError> {
    let prompt: String = request
        .messages
        .iter()
        .rev()
        .find(|message| message.role == "user")
        .map(|message| {
            let texts = message.parts.iter().filter(|part| part.kind == "text");
            texts.filter_map(|part| part.text.as_deref()).collect()
        })
        .unwrap_or_default();
    // Each part is one `data:` JSON event; the protocol uses no other field.
    let part = |value: serde_json::Value| Event::new().json(&value);

    // The assistant message's id: one per chat and turn.
    let message_id = format!("{}-{}", request.id, request.messages.len());
    sse.send(part(json!({ "type": "start", "messageId": message_id }))?)
        .await?;
    sse.send(part(json!({ "type": "start-step" }))?).await?;
    sse.send(part(json!({ "type": "text-start", "id": "text-1" }))?)
        .await?;
    for (index, token) in reply(&prompt).iter().enumerate() {
        tokio::time::sleep(token_delay).await;
        if index == 3 && prompt.contains("please fail") {
            // An error part; the client's `onError` gets `errorText`.
            let error =
                json!({ "type": "error", "errorText": "The reply failed, as the prompt asked." });
            sse.send(part(error)?).await?;
            sse.send(Event::new().data("[DONE]")).await?;
            return Ok(().into_response());
        }
        let delta = json!({ "type": "text-delta", "id": "text-1", "delta": token });
        sse.send(part(delta)?).await?;
    }
    sse.send(part(json!({ "type": "text-end", "id": "text-1" }))?)
        .await?;
    sse.send(part(json!({ "type": "finish-step" }))?).await?;
    sse.send(part(json!({ "type": "finish", "finishReason": "stop" }))?)
        .await?;
    sse.send(Event::new().data("[DONE]")).await?;
    Ok(().into_response())
}

/// Marks a response as a UI message stream, as the AI SDK's own servers do.
async fn ui_message_stream_header(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-vercel-ai-ui-message-stream",
        HeaderValue::from_static("v1"),
    );
    response
}

#[tokio::main]
async fn main() {
    support::init_logging();
    let token_delay = Duration::from_millis(support::env_or("TOKEN_DELAY_MS", 40));

    let shutdown = SseShutdown::new();
    let sse = SseLayer::builder()
        .heartbeat(Duration::from_secs(15))
        .retry(Duration::from_millis(3000))
        .last_event_id(LastEventIdLayer::new().query_param("lastEventId"))
        .shutdown(shutdown.clone())
        .farewell(Event::new().event("shutdown").data("server restarting"))
        .build();
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/chat", get(chat).layer(sse.clone()))
        // The SSE layer answers as soon as the stream starts, so a header of
        // this route's own is added by a layer outside it.
        .route(
            "/api/chat",
            post(ai_sdk_chat)
                .layer(sse)
                .layer(map_response(ui_message_stream_header)),
        )
        .with_state(token_delay);

    let listener = support::bind().await;
    tracing::info!("chat demo on http://{}/", listener.local_addr().unwrap());
    support::serve_until_signal(listener, app, shutdown).await;
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>axum-sse chat</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  #reply { white-space: pre-wrap; border: 1px solid #ccc; border-radius: 6px; padding: 1rem; min-height: 4rem; }
  #status { color: #666; font-size: 0.9em; }
</style>
</head>
<body>
<h1>axum-sse chat</h1>
<form id="ask"><input id="prompt" name="prompt" size="40"> <button>Ask</button></form>
<p id="status">connecting…</p>
<div id="reply"></div>
<script>
  const params = new URLSearchParams(location.search);
  const prompt = params.get("prompt") || "hello";
  document.getElementById("prompt").value = prompt;
  // Every other parameter of the page goes on to /chat (test knobs).
  const query = new URLSearchParams(params);
  query.set("prompt", prompt);
  const status = document.getElementById("status");
  const reply = document.getElementById("reply");
  const source = new EventSource("/chat?" + query);
  source.addEventListener("open", () => { status.textContent = "streaming"; });
  source.addEventListener("error", () => { status.textContent = "reconnecting…"; });
  source.addEventListener("shutdown", () => { status.textContent = "server restarting…"; });
  source.addEventListener("token", (e) => { reply.textContent += JSON.parse(e.data).token; });
  source.addEventListener("done", () => {
    source.close();
    status.textContent = "done";
    document.body.dataset.done = "1";
  });
</script>
</body>
</html>
"#;
