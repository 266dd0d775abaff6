//! An OpenAI-compatible server: the two streaming APIs that LLM clients
//! speak (Chat Completions and Responses), served with this crate, so the
//! official `openai` SDKs, LangChain or any other OpenAI client can read it.
//!
//! ```text
//! cargo run --example openai
//! curl -N http://127.0.0.1:3000/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"echo","stream":true,"messages":[{"role":"user","content":"hello there"}]}'
//! curl -N http://127.0.0.1:3000/v1/responses -H 'content-type: application/json' \
//!   -d '{"model":"echo","stream":true,"input":"hello there"}'
//! ```
//!
//! With the Python SDK:
//!
//! ```text
//! from openai import OpenAI
//! client = OpenAI(base_url="http://127.0.0.1:3000/v1", api_key="unused")
//! stream = client.chat.completions.create(
//!     model="echo", messages=[{"role": "user", "content": "hello there"}], stream=True)
//! print("".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices))
//! ```
//!
//! Routes:
//! - `POST /v1/chat/completions`: with `"stream": true`, one
//!   `chat.completion.chunk` event per token, a last chunk with
//!   `finish_reason`, a usage chunk if `stream_options.include_usage` asks
//!   for it, then `data: [DONE]`. Without, one `chat.completion` answer.
//! - `POST /v1/responses`: with `"stream": true`, the Responses API's named
//!   events (`response.created` … `response.output_text.delta` …
//!   `response.completed`), each with its `sequence_number`. Without, one
//!   `response` object.
//! - `GET /v1/models`: the one model.
//!
//! The reply is `You said: ` and the last user message, one word per token,
//! so the same request always gets the same reply. Every event carries an
//! `id`: its position in the reply, from 0 (for the Responses API, its
//! `sequence_number`). A client that reconnects with `Last-Event-ID: N`
//! (`@microsoft/fetch-event-source` does, for a POST too) gets the events
//! after N; one that already saw the last gets `204 No Content`.
//!
//! A user message that contains `please fail` fails after three tokens, the
//! way OpenAI reports an error once the stream has started: for Chat
//! Completions a `data: {"error": {..}}` event, for Responses an `error`
//! event then `response.failed`; the stream then ends without `[DONE]`. The
//! SDKs raise their `APIError` for it. Without `stream`, the same request
//! is answered `500` with the error as JSON. A request the server cannot
//! read is answered `400` in OpenAI's error shape, before any stream starts.
//!
//! Ctrl-C (or SIGTERM) ends every open stream with an error in that shape
//! (`code: "server_shutdown"`), so no client takes a cut reply for a whole
//! one, and the server stops at once.
//!
//! Environment: `PORT` (3000), `TOKEN_DELAY_MS` (40, the pause before each
//! token), `HEARTBEAT_MS` (15000, the idle time before a heartbeat comment).

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{rejection::JsonRejection, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use axum_sse::{Event, LastEventIdLayer, SseError, SseLayer, SseShutdown, SseWriter};
use serde::Deserialize;
use serde_json::{json, Value};

#[path = "support/mod.rs"]
mod support;

/// The model name when a request names none.
const MODEL: &str = "axum-sse-echo";
/// A user message containing this fails mid-stream (see the module docs).
const FAIL_MARKER: &str = "please fail";
/// How many tokens a failing reply streams before its error.
const TOKENS_BEFORE_ERROR: usize = 3;

// ---------------------------------------------------------------------------
// Requests: only the fields this server uses; the SDKs send more.

#[derive(Deserialize)]
struct ChatRequest {
    model: Option<String>,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    content: Option<Content>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct ResponsesRequest {
    model: Option<String>,
    input: Input,
    #[serde(default)]
    stream: bool,
}

/// The Responses API's `input`: a string, or a list of messages.
#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<InputItem>),
}

#[derive(Deserialize)]
struct InputItem {
    role: Option<String>,
    content: Option<Content>,
}

/// A message's content: a string, or a list of parts (`text`, `input_text`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    text: Option<String>,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Parts(parts) => parts.iter().filter_map(|p| p.text.as_deref()).collect(),
        }
    }
}

/// The last user message's text, if the request has one.
fn last_user_text<'a>(
    messages: impl DoubleEndedIterator<Item = (&'a str, Option<&'a Content>)>,
) -> Option<String> {
    messages
        .rev()
        .find(|(role, _)| *role == "user")
        .and_then(|(_, content)| content.map(Content::text))
}

// ---------------------------------------------------------------------------
// The "model".

/// What the model answers to `prompt`.
struct Reply {
    /// A stable id for this reply, so a resumed stream carries the same one.
    id: String,
    model: String,
    created: u64,
    tokens: Vec<String>,
    prompt_tokens: usize,
    /// The user asked for an error (see [`FAIL_MARKER`]).
    fails: bool,
}

impl Reply {
    fn new(prompt: &str, model: Option<String>) -> Self {
        let mut hasher = DefaultHasher::new();
        prompt.hash(&mut hasher);
        Self {
            id: format!("{:016x}", hasher.finish()),
            model: model.unwrap_or_else(|| MODEL.to_owned()),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            tokens: format!("You said: {prompt}")
                .split_inclusive(' ')
                .map(str::to_owned)
                .collect(),
            prompt_tokens: prompt.split_whitespace().count(),
            fails: prompt.contains(FAIL_MARKER),
        }
    }

    fn text(&self) -> String {
        self.tokens.concat()
    }

    /// The tokens the stream sends: all of them, or the first few before
    /// the error.
    fn streamed_tokens(&self) -> &[String] {
        if self.fails {
            &self.tokens[..TOKENS_BEFORE_ERROR.min(self.tokens.len())]
        } else {
            &self.tokens
        }
    }

    fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.tokens.len(),
            "total_tokens": self.prompt_tokens + self.tokens.len(),
        })
    }
}

/// OpenAI's error object, as in `{"error": {..}}` bodies.
fn error_object(kind: &str, code: Option<&str>, message: &str) -> Value {
    json!({ "message": message, "type": kind, "param": null, "code": code })
}

/// A `400` in OpenAI's shape, for requests that cannot be answered.
fn bad_request(message: &str) -> Response {
    let body = json!({ "error": error_object("invalid_request_error", None, message) });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

const SHUTDOWN_MESSAGE: &str = "The server is restarting; retry the request.";

const FAIL_MESSAGE: &str = "The model failed mid-reply, as the prompt asked.";

/// The `500` that a non-streaming request asking for an error gets.
fn failed_answer() -> Response {
    let body = json!({ "error": error_object("server_error", Some("server_error"), FAIL_MESSAGE) });
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

// ---------------------------------------------------------------------------
// Streaming: a reply is planned as a list of events, then sent one by one.

/// One event of a streamed reply.
struct Step {
    /// The SSE `event` field; Chat Completions sends none.
    name: Option<&'static str>,
    /// The `data`: JSON, or `[DONE]`.
    data: String,
    /// A token: the model "thinks" for the token delay before it.
    token: bool,
}

impl Step {
    fn json(name: Option<&'static str>, value: &Value) -> Self {
        Self {
            name,
            data: value.to_string(),
            token: false,
        }
    }

    /// A token: sent after the token delay.
    fn token(mut self) -> Self {
        self.token = true;
        self
    }
}

/// Sends `steps` with ids from 0, after the client's `Last-Event-ID` if it
/// reconnected.
async fn stream(
    mut sse: SseWriter,
    steps: Vec<Step>,
    token_delay: Duration,
) -> Result<Response, SseError> {
    let start = match sse.last_event_id().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(seen)) => seen.saturating_add(1),
        Some(Err(_)) => {
            return Ok(bad_request(
                "Last-Event-ID is not an event id of this server",
            ))
        }
    };
    if start >= steps.len() {
        // The client saw the whole reply: 204 tells it to stop reconnecting.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    for (id, step) in steps.into_iter().enumerate().skip(start) {
        if step.token {
            tokio::time::sleep(token_delay).await;
        }
        let mut event = Event::new();
        if let Some(name) = step.name {
            event = event.event(name);
        }
        let event = event.id(id).data(step.data);
        sse.send(event).await?;
    }
    Ok(().into_response())
}

// ---------------------------------------------------------------------------
// POST /v1/chat/completions

async fn chat_completions(
    State(token_delay): State<Duration>,
    sse: SseWriter,
    request: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Response, SseError> {
    // Until the first event is sent, the handler can still answer with any
    // status: bad requests get a 400 and no stream.
    let Json(request) = match request {
        Ok(request) => request,
        Err(rejection) => return Ok(bad_request(&rejection.body_text())),
    };
    let messages = request
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_ref()));
    let Some(prompt) = last_user_text(messages) else {
        return Ok(bad_request("messages: no message with role \"user\""));
    };
    let reply = Reply::new(&prompt, request.model);

    if !request.stream {
        if reply.fails {
            return Ok(failed_answer());
        }
        return Ok(Json(json!({
            "id": format!("chatcmpl-{}", reply.id),
            "object": "chat.completion",
            "created": reply.created,
            "model": reply.model,
            "system_fingerprint": null,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": reply.text(), "refusal": null, "annotations": [] },
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": reply.usage(),
        }))
        .into_response());
    }

    let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
    stream(sse, chat_chunks(&reply, include_usage), token_delay).await
}

/// The events of a streamed chat completion.
fn chat_chunks(reply: &Reply, include_usage: bool) -> Vec<Step> {
    let chunk = |choices: Value| {
        let mut chunk = json!({
            "id": format!("chatcmpl-{}", reply.id),
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": reply.model,
            "system_fingerprint": null,
            "choices": choices,
        });
        if include_usage {
            // With `include_usage`, every chunk has `usage`: null until the last.
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let choice = |delta: Value, finish_reason: Option<&str>| json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }]);

    let mut steps = vec![Step::json(
        None,
        &chunk(choice(
            json!({ "role": "assistant", "content": "", "refusal": null }),
            None,
        )),
    )];
    for token in reply.streamed_tokens() {
        steps.push(Step::json(None, &chunk(choice(json!({ "content": token }), None))).token());
    }
    if reply.fails {
        // OpenAI's mid-stream error: a data-only event holding `error`; the
        // stream then ends without `[DONE]`.
        let error = error_object("server_error", Some("server_error"), FAIL_MESSAGE);
        steps.push(Step::json(None, &json!({ "error": error })));
        return steps;
    }
    steps.push(Step::json(None, &chunk(choice(json!({}), Some("stop")))));
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = reply.usage();
        steps.push(Step::json(None, &last));
    }
    steps.push(Step {
        name: None,
        data: "[DONE]".to_owned(),
        token: false,
    });
    steps
}

// ---------------------------------------------------------------------------
// POST /v1/responses

async fn responses(
    State(token_delay): State<Duration>,
    sse: SseWriter,
    request: Result<Json<ResponsesRequest>, JsonRejection>,
) -> Result<Response, SseError> {
    let Json(request) = match request {
        Ok(request) => request,
        Err(rejection) => return Ok(bad_request(&rejection.body_text())),
    };
    let prompt = match &request.input {
        Input::Text(text) => Some(text.clone()),
        Input::Items(items) => last_user_text(
            items
                .iter()
                .map(|i| (i.role.as_deref().unwrap_or("user"), i.content.as_ref())),
        ),
    };
    let Some(prompt) = prompt else {
        return Ok(bad_request("input: no message with role \"user\""));
    };
    let reply = Reply::new(&prompt, request.model);

    if !request.stream {
        if reply.fails {
            return Ok(failed_answer());
        }
        let text = reply.text();
        return Ok(Json(response_object(
            &reply,
            "completed",
            vec![message_item(&reply, "completed", &text)],
        ))
        .into_response());
    }
    stream(sse, response_events(&reply), token_delay).await
}

/// The Responses API's `response` object, in the state `status`.
fn response_object(reply: &Reply, status: &str, output: Vec<Value>) -> Value {
    let usage = (status == "completed").then(|| {
        json!({
            "input_tokens": reply.prompt_tokens,
            "input_tokens_details": { "cached_tokens": 0 },
            "output_tokens": reply.tokens.len(),
            "output_tokens_details": { "reasoning_tokens": 0 },
            "total_tokens": reply.prompt_tokens + reply.tokens.len(),
        })
    });
    let error =
        (status == "failed").then(|| json!({ "code": "server_error", "message": FAIL_MESSAGE }));
    json!({
        "id": format!("resp_{}", reply.id),
        "object": "response",
        "created_at": reply.created,
        "status": status,
        "background": false,
        "error": error,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "model": reply.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": { "effort": null, "summary": null },
        "store": false,
        "temperature": 1.0,
        "text": { "format": { "type": "text" } },
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": null,
        "metadata": {},
    })
}

/// The assistant message item of the output, holding `text`.
fn message_item(reply: &Reply, status: &str, text: &str) -> Value {
    let content = if status == "in_progress" {
        json!([])
    } else {
        json!([output_text(text)])
    };
    json!({
        "id": format!("msg_{}", reply.id),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    })
}

fn output_text(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] })
}

/// The events of a streamed response, numbered as they are added: each
/// `sequence_number` is also the event's SSE id.
#[derive(Default)]
struct ResponseEvents(Vec<Step>);

impl ResponseEvents {
    fn push(&mut self, name: &'static str, mut data: Value) -> &mut Step {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.0.len());
        self.0.push(Step::json(Some(name), &data));
        self.0.last_mut().unwrap()
    }
}

/// The events of a streamed response.
fn response_events(reply: &Reply) -> Vec<Step> {
    let item_id = format!("msg_{}", reply.id);
    // The fields that place an event in the one text part of the one message.
    let in_part = |fields: Value| {
        let mut data = json!({ "item_id": item_id, "output_index": 0, "content_index": 0 });
        if let (Some(data), Value::Object(fields)) = (data.as_object_mut(), fields) {
            data.extend(fields);
        }
        data
    };
    let in_progress = || json!({ "response": response_object(reply, "in_progress", vec![]) });

    let mut events = ResponseEvents::default();
    events.push("response.created", in_progress());
    events.push("response.in_progress", in_progress());
    let item = message_item(reply, "in_progress", "");
    events.push(
        "response.output_item.added",
        json!({ "output_index": 0, "item": item }),
    );
    events.push(
        "response.content_part.added",
        in_part(json!({ "part": output_text("") })),
    );
    let mut text = String::new();
    for token in reply.streamed_tokens() {
        text.push_str(token);
        let delta = in_part(json!({ "delta": token, "logprobs": [] }));
        events.push("response.output_text.delta", delta).token = true;
    }

    if reply.fails {
        // What the API sends when a response fails once streaming: an
        // `error` event, then `response.failed`. The API nests the error
        // under `error` (which the SDKs turn into their `APIError`) while its
        // reference puts `code`/`message`/`param` at the top: both are here,
        // so clients written against either read it.
        let error = error_object("server_error", Some("server_error"), FAIL_MESSAGE);
        events.push(
            "error",
            json!({ "code": "server_error", "message": FAIL_MESSAGE, "param": null, "error": error }),
        );
        let partial = message_item(reply, "incomplete", &text);
        let failed = response_object(reply, "failed", vec![partial]);
        events.push("response.failed", json!({ "response": failed }));
        return events.0;
    }

    events.push(
        "response.output_text.done",
        in_part(json!({ "text": text, "logprobs": [] })),
    );
    events.push(
        "response.content_part.done",
        in_part(json!({ "part": output_text(&text) })),
    );
    let item = message_item(reply, "completed", &text);
    events.push(
        "response.output_item.done",
        json!({ "output_index": 0, "item": item }),
    );
    let completed = response_object(reply, "completed", vec![item]);
    events.push("response.completed", json!({ "response": completed }));
    events.0
}

// ---------------------------------------------------------------------------

async fn models() -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{ "id": MODEL, "object": "model", "created": 0, "owned_by": "axum-sse" }],
    }))
}

#[tokio::main]
async fn main() {
    support::init_logging();
    let token_delay = Duration::from_millis(support::env_or("TOKEN_DELAY_MS", 40));
    let heartbeat = Duration::from_millis(support::env_or("HEARTBEAT_MS", 15_000));

    let shutdown = SseShutdown::new();
    let app = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/responses", post(responses))
        .route("/v1/models", get(models))
        .with_state(token_delay)
        .layer(
            SseLayer::builder()
                .heartbeat(heartbeat)
                .retry(Duration::from_millis(3000))
                .last_event_id(LastEventIdLayer::new())
                .shutdown(shutdown.clone())
                // A reply cut by a restart must not look finished: OpenAI's
                // error shape makes the SDKs raise instead.
                .farewell(Event::new().data(
                    json!({ "error": error_object("server_error", Some("server_shutdown"), SHUTDOWN_MESSAGE) })
                        .to_string(),
                ))
                .build(),
        );

    let listener = support::bind().await;
    tracing::info!(
        "OpenAI-compatible API on http://{}/v1",
        listener.local_addr().unwrap()
    );
    support::serve_until_signal(listener, app, shutdown).await;
}
