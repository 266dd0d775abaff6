//! Presence: who is in a room, and a live stream of who comes and goes.
//!
//! ```text
//! cargo run --example presence
//! curl -N 'http://127.0.0.1:3000/room?name=ada'     # ada is in the room while this runs
//! curl -N 'http://127.0.0.1:3000/room?name=bob'     # ada's stream shows bob join; Ctrl-C: bob leaves
//! curl http://127.0.0.1:3000/members                # [{"subscriber":"urn:uuid:…","name":"ada"}]
//! ```
//!
//! `GET /room?name=NAME` joins the room as NAME for as long as the stream is
//! open (any end of it leaves: the client going away, the server shutting
//! down) and sends a `members` event (the room now, a JSON array) and then a
//! `presence` event per join or leave (`{"subscriber", "name", "active",
//! "change"}`). `GET /members` answers the room as JSON.
//!
//! With `REDIS_URL` set (and `--features redis`), presence lives in Redis:
//! several instances share the room, and the members of an instance that
//! crashes leave within `HEARTBEAT_MS + EXPIRY_MS` (defaults 5 s + 15 s).
//!
//! ```text
//! cargo run --features redis --example presence                 # REDIS_URL=redis://127.0.0.1:6379/
//! PORT=3001 cargo run --features redis --example presence
//! curl -N 'http://127.0.0.1:3001/room?name=carol' &             # seen on :3000 as well
//! ```
//!
//! Environment: `PORT` (3000), `REDIS_URL` (unset: in memory),
//! `HEARTBEAT_MS` (5000), `EXPIRY_MS` (15000).

use std::time::Duration;

use axum::{
    extract::{Query, State},
    response::IntoResponse,
    routing::get,
    Json, Router,
};
use axum_sse::{
    presence::{Member, Presence, PresenceError, PresenceEvent},
    Event, SseBody, SseLayer,
};
use futures_util::{stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;

#[path = "support/mod.rs"]
mod support;

/// The one topic of this demo.
const ROOM: &str = "room";

#[derive(Clone)]
struct App {
    presence: Presence,
    /// Turns `true` on shutdown, which ends every open stream.
    shutdown: watch::Receiver<bool>,
}

#[derive(Deserialize)]
struct Join {
    name: String,
}

fn member_json(member: &Member) -> Value {
    json!({ "subscriber": member.subscriber(), "name": member.descriptor()["name"] })
}

fn presence_event(event: &PresenceEvent) -> Event {
    let data = json!({
        "subscriber": event.subscriber(),
        "name": event.descriptor()["name"],
        "active": event.is_active(),
        "change": format!("{:?}", event.change()).to_lowercase(),
    });
    Event::new().event("presence").data(data.to_string())
}

async fn room(
    State(app): State<App>,
    Query(join): Query<Join>,
) -> Result<impl IntoResponse, PresenceError> {
    // Listen first, then join and list: no change is missed.
    let changes = app.presence.events(ROOM);
    let guard = app
        .presence
        .join(ROOM, json!({ "name": join.name }))
        .await?;
    let members: Vec<Value> = app
        .presence
        .list(ROOM)
        .await?
        .iter()
        .map(member_json)
        .collect();
    let first = Event::new()
        .event("members")
        .data(Value::from(members).to_string());
    let mut shutdown = app.shutdown;
    let events = stream::once(async move { first })
        .chain(changes.map(|change| presence_event(&change)))
        .take_until(async move {
            let _ = shutdown.wait_for(|stopping| *stopping).await;
        })
        // The guard lives as long as the stream: its end is the leave.
        .map(move |event| {
            let _member = &guard;
            event
        });
    Ok(SseBody::new(events))
}

async fn members(State(app): State<App>) -> Result<Json<Vec<Value>>, PresenceError> {
    let members = app.presence.list(ROOM).await?;
    Ok(Json(members.iter().map(member_json).collect()))
}

async fn connect() -> Presence {
    let Ok(url) = std::env::var("REDIS_URL") else {
        return Presence::new();
    };
    #[cfg(feature = "redis")]
    {
        let builder = Presence::builder()
            .heartbeat(Duration::from_millis(support::env_or("HEARTBEAT_MS", 5000)))
            .expiry(Duration::from_millis(support::env_or("EXPIRY_MS", 15000)));
        builder
            .connect_redis(&url)
            .await
            .unwrap_or_else(|err| panic!("cannot connect to {url}: {err}"))
    }
    #[cfg(not(feature = "redis"))]
    panic!("REDIS_URL is set to {url}, but this example was built without `--features redis`")
}

#[tokio::main]
async fn main() {
    support::init_logging();
    let presence = connect().await;
    let (stop, shutdown) = watch::channel(false);
    let app = Router::new()
        .route("/room", get(room))
        .route("/members", get(members))
        .with_state(App { presence, shutdown })
        .layer(
            SseLayer::builder()
                .heartbeat(Duration::from_secs(15))
                .build(),
        );
    let listener = support::bind().await;
    tracing::info!(
        "presence demo on http://{}/room?name=ada",
        listener.local_addr().unwrap()
    );
    axum_sse::serve(listener, app)
        .with_graceful_shutdown(async move {
            support::shutdown_signal().await;
            let _ = stop.send(true);
        })
        .await
        .expect("server error");
}
