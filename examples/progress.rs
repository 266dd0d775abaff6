//! Progress of a long job.
//!
//! ```text
//! cargo run --example progress
//! curl -N 'http://127.0.0.1:3000/task?steps=5'
//! ```
//!
//! `GET /task?steps=N` streams `event: progress` with
//! `{"progress":P,"status":"..."}` after each step, then `event: complete`
//! with `{"complete":true}`. `GET /` is a page with a progress bar.
//! `steps` must be between 1 and 1000: anything else is answered with `400`
//! before the stream starts.
//!
//! Ctrl-C (or SIGTERM) stops the server at once, streams open or not: each
//! open stream gets a last `event: shutdown` and ends, so the graceful
//! shutdown does not wait for jobs to finish.
//!
//! Environment: `PORT` (3000), `STEP_MS` (300).

use std::time::Duration;

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};
use axum_sse::{Event, SseError, SseLayer, SseShutdown, SseWriter};
use serde::{Deserialize, Serialize};

#[path = "support/mod.rs"]
mod support;

#[derive(Deserialize)]
struct TaskQuery {
    steps: Option<u32>,
}

#[derive(Serialize)]
struct Progress {
    progress: u32,
    status: String,
}

async fn task(
    State(step): State<Duration>,
    Query(query): Query<TaskQuery>,
    mut sse: SseWriter,
) -> Result<Response, SseError> {
    let steps = query.steps.unwrap_or(10);
    if !(1..=1000).contains(&steps) {
        // Nothing was sent yet, so this is the answer the client gets.
        return Ok((StatusCode::BAD_REQUEST, "steps must be between 1 and 1000").into_response());
    }
    for done in 1..=steps {
        tokio::time::sleep(step).await;
        let progress = Progress {
            progress: done * 100 / steps,
            status: format!("step {done} of {steps}"),
        };
        sse.send(Event::new().event("progress").json(&progress)?)
            .await?;
    }
    sse.send(Event::new().event("complete").data(r#"{"complete":true}"#))
        .await?;
    Ok(().into_response())
}

#[tokio::main]
async fn main() {
    support::init_logging();
    let step = Duration::from_millis(support::env_or("STEP_MS", 300));

    let shutdown = SseShutdown::new();
    let app = Router::new()
        .route("/task", get(task))
        .with_state(step)
        .layer(
            SseLayer::builder()
                .heartbeat(Duration::from_secs(15))
                .shutdown(shutdown.clone())
                .farewell(
                    Event::new()
                        .event("shutdown")
                        .data(r#"{"reason":"server shutting down"}"#),
                )
                .build(),
        )
        // The page is not an event stream: outside the layer.
        .route("/", get(|| async { Html(PAGE) }));

    let listener = support::bind().await;
    tracing::info!(
        "progress demo on http://{}/",
        listener.local_addr().unwrap()
    );
    support::serve_until_signal(listener, app, shutdown).await;
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>axum-sse progress</title></head>
<body style="font: 16px system-ui, sans-serif; max-width: 30rem; margin: 2rem auto">
<h1>Job progress</h1>
<progress id="bar" max="100" value="0" style="width: 100%"></progress>
<p id="status">starting…</p>
<script>
  const source = new EventSource("/task?steps=20");
  source.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    document.getElementById("bar").value = p.progress;
    document.getElementById("status").textContent = p.status;
  });
  source.addEventListener("shutdown", () => {
    source.close();
    document.getElementById("status").textContent = "the server stopped";
  });
  source.addEventListener("complete", () => {
    source.close();
    document.getElementById("status").textContent = "complete";
  });
</script>
</body>
</html>
"#;
