//! A hub: one connection follows many topics with one cursor, topic
//! selectors, authorization and private updates (feature `hub`).
//!
//! A [`Hub`] keeps **one history**, the hub log: one topic of a
//! [`Broadcast`](crate::broadcast::Broadcast) (memory, or Redis for several
//! instances), like Mercure's single update history. Every
//! [`Update`] is published once into that log with its topics, private
//! flag, type, retry and data. Every subscription reads the log from its
//! `Last-Event-ID`, keeps the updates its [`TopicSelector`]s match and its
//! [`Authorization`] lets it see, and sends them without the metadata. So
//! resume, replay, the missed-events signal, sharing across instances
//! through Redis and the binding of an id to its history are the
//! broadcast's, and hold for every topic of a subscription at once.
//!
//! ```
//! use axum::{extract::State, routing::{get, post}, Router};
//! use axum_sse::{
//!     broadcast::Broadcast,
//!     hub::{Authorization, Hub, HubError, HubSubscription, TopicSelector, Update},
//!     LastEventId, SseBody, SseLayer,
//! };
//!
//! async fn events(
//!     State(hub): State<Hub>,
//!     last_event_id: Option<LastEventId>,
//! ) -> Result<SseBody<HubSubscription>, HubError> {
//!     let selectors = [
//!         TopicSelector::exact("https://example.com/news"),
//!         TopicSelector::url_pattern("https://example.com/books/:id")?,
//!     ];
//!     let last = last_event_id.as_ref().map(LastEventId::as_str);
//!     // Anonymous: public updates only. Map your credential to an
//!     // `Authorization` to let a subscriber see private ones.
//!     let updates = hub.subscribe(selectors, Authorization::anonymous(), last).await?;
//!     Ok(SseBody::new(updates))
//! }
//!
//! async fn publish(State(hub): State<Hub>, text: String) -> Result<String, HubError> {
//!     let update = Update::new("https://example.com/books/1")
//!         .topic("https://example.com/news")
//!         .data(text);
//!     // A server publishing its own updates may do anything.
//!     hub.publish(update, &Authorization::full()).await // the id
//! }
//!
//! // A `HubError` answers with its status: 400, 401, 403, 503.
//! let app: Router = Router::new()
//!     .route("/events", get(events))
//!     .route("/publish", post(publish))
//!     .with_state(Hub::new(Broadcast::new()))
//!     .layer(SseLayer::new());
//! ```
//!
//! # Selectors
//!
//! A subscription follows the topics matched by any of its selectors (at
//! most [`HubBuilder::max_selectors`], 64 by default): exact topics, the
//! wildcard `*`, [WHATWG URL patterns](https://urlpattern.spec.whatwg.org/)
//! (`https://example.com/books/:id`, the Mercure `urlpattern` matcher, via
//! the `urlpattern` crate) and RFC 6570 level-1 URI templates
//! (`https://example.com/books/{id}`, Mercure's older `topic` selectors).
//! See [`TopicSelector`] for exactly what each matches. An update may have
//! several topics (the first is canonical, the others alternate); a
//! subscriber that matches more than one of them gets the update once.
//!
//! # Authorization and private updates
//!
//! Each subscription carries an [`Authorization`]: the selectors of topics
//! whose private updates it may read, and an expiry.
//!
//! - A public update reaches every subscription that follows one of its
//!   topics.
//! - A private update ([`Update::private`]) reaches a subscription only if
//!   it follows one of its topics **and** its authorization covers one of
//!   its topics (Mercure's rule: the audience is the union of the
//!   audiences of its topics). Following a topic never grants reading it.
//! - The rule is applied to every event a subscription is offered: live,
//!   replayed after a `Last-Event-ID`, after the missed-events event, from
//!   `earliest`. A subscriber that resumes from a guessed or stolen id of a
//!   private update gets only what its own authorization lets it see; the
//!   private update's data, id and topics never reach it.
//! - At the authorization's expiry the stream sends the expired event
//!   ([`HubBuilder::expired_event`], no id) and ends, at that instant.
//! - Publishing checks [`Authorization::publish_selectors`]: every topic
//!   of the update must be covered, or [`HubError::Forbidden`] (`403`).
//!
//! What an id does reveal: ids are positions in one log shared by all
//! topics, so a subscriber can see that ids were skipped (updates it does
//! not follow or may not read happened in between), as Mercure's spec notes
//! for cursors.
//!
//! # The id
//!
//! A hub event's id is the hub log's id: the broadcast's opaque id (at most
//! **64 ASCII bytes**: 13 to 32 in memory, about 27 with Redis), whatever
//! the number of topics or selectors of the subscription, since one cursor
//! in one log resumes all of them. An update published with its own id
//! ([`Update::id`], Mercure's `id`) is sent with that id verbatim and
//! resumes from it: 1 to 64 bytes of visible ASCII, and publishing it again
//! while it is in the log's history stores and sends nothing.
//! `earliest` asks for every retained update.
//!
//! # Cost
//!
//! The log holds every update of every topic: size its history
//! ([`BroadcastBuilder::history`](crate::broadcast::BroadcastBuilder::history))
//! for all topics together. Metadata travels in the logged event as a
//! one-line JSON envelope in its data (see the source of `update.rs`),
//! which every instance can read back. A process decodes an update once
//! (a JSON parse, the topics parsed as URLs, the outgoing event encoded)
//! and caches it by id ([`HubBuilder::decode_cache`]); each subscriber
//! then costs a cache lookup (a lock and a hash of the id) and the
//! selector matching: selectors × topics comparisons, a URL pattern being
//! a few regex matches. Every subscriber of a process reads the whole log
//! and drops what it does not follow: fine for thousands of topics and
//! subscribers per instance, not a partitioned fan-out.
//!
//! # Presence
//!
//! Who follows what is not tracked here. [`HubSubscription::hold`] is the
//! plug: give it a presence "joined" handle; it is dropped when the stream
//! is (the client left, the authorization expired, the stream was cut).
//! [`HubSubscription::selectors`] says what the subscriber follows.

mod auth;
mod channel;
mod error;
mod selector;
mod subscription;
mod update;

pub(crate) use self::selector::Topic;
pub use self::{
    auth::Authorization,
    channel::{Hub, HubBuilder},
    error::HubError,
    selector::{SelectorError, TopicSelector, MAX_SELECTOR_LEN},
    subscription::HubSubscription,
    update::Update,
};
