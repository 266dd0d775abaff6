//! The hub handle, its settings, and the per-process decode cache.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex},
};

use crate::{broadcast::Broadcast, util::sync::lock, EncodedEvent, Event};

use super::{
    update::{self, Decoded},
    Authorization, HubError, HubSubscription, TopicSelector, Update,
};

/// Selectors one subscription may have, by default.
const DEFAULT_MAX_SELECTORS: usize = 64;
/// Topics one update may have, by default.
const DEFAULT_MAX_TOPICS: usize = 64;
/// Decoded events kept per process, by default.
const DEFAULT_DECODE_CACHE: usize = 4096;
/// The hub log's topic in the broadcast, by default.
const DEFAULT_LOG_TOPIC: &str = "hub";

/// A hub: updates with several topics, subscriptions over many topic
/// selectors with one cursor, authorization and private updates.
///
/// A cheap handle (clone it into your state). See the
/// [module docs](super) for the design, the guarantees and examples.
#[derive(Clone)]
pub struct Hub {
    log: Broadcast,
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    log_topic: String,
    max_selectors: usize,
    max_topics: usize,
    pub(crate) expired: EncodedEvent,
    cache: Cache,
}

impl Hub {
    /// A hub over `log` with the default settings (see [`HubBuilder`]).
    pub fn new(log: Broadcast) -> Self {
        Self::builder().build(log)
    }

    /// Settings first, then [`HubBuilder::build`].
    pub fn builder() -> HubBuilder {
        HubBuilder::new()
    }

    /// The broadcast that holds the hub log.
    pub fn broadcast(&self) -> &Broadcast {
        &self.log
    }

    /// Publishes `update` if `auth` may, and returns its id: the hub log's
    /// id (opaque, at most 64 ASCII bytes), or the update's own
    /// ([`Update::id`]).
    ///
    /// # Errors
    ///
    /// [`HubError::Expired`] (`401`), [`HubError::Forbidden`] (`403`) when
    /// a topic is not covered by `auth`'s publish selectors,
    /// [`HubError::InvalidUpdate`] (`400`), [`HubError::Broadcast`] when
    /// the log cannot take it (`503` if Redis is unreachable; nothing was
    /// published then).
    pub async fn publish(&self, update: Update, auth: &Authorization) -> Result<String, HubError> {
        if auth.is_expired() {
            return Err(HubError::Expired);
        }
        if !auth.may_publish(update.topics().iter().map(String::as_str)) {
            return Err(HubError::Forbidden);
        }
        let event = update.into_log_event(self.shared.max_topics)?;
        Ok(self.log.publish(&self.shared.log_topic, event).await?)
    }

    /// Subscribes to every topic matched by one of `selectors`, as `auth`
    /// may see, resuming after `last_event_id` (the client's
    /// `Last-Event-ID`).
    ///
    /// - `None`: live updates only.
    /// - `Some("earliest")`: every retained update it may see, then live.
    /// - an id the hub handed out and still retains: every later update it
    ///   may see, then live; no gap, no duplicate.
    /// - any other id (too old, another hub's, forged): the missed-events
    ///   event of the broadcast, every retained update it may see, then
    ///   live ([`HubSubscription::missed_events`]).
    ///
    /// Private updates reach it only if `auth` covers one of their topics;
    /// that holds for replayed updates too, whatever id it resumes from.
    /// At `auth`'s expiry the stream sends the expired event and ends.
    ///
    /// # Errors
    ///
    /// [`HubError::NoSelector`], [`HubError::TooManySelectors`] (`400`),
    /// [`HubError::Expired`] (`401`), [`HubError::Broadcast`] when Redis
    /// cannot be reached (`503`).
    pub async fn subscribe(
        &self,
        selectors: impl IntoIterator<Item = TopicSelector>,
        auth: Authorization,
        last_event_id: Option<&str>,
    ) -> Result<HubSubscription, HubError> {
        let mut unique: Vec<TopicSelector> = Vec::new();
        for selector in selectors {
            if !unique.contains(&selector) {
                if unique.len() == self.shared.max_selectors {
                    return Err(HubError::TooManySelectors {
                        max: self.shared.max_selectors,
                    });
                }
                unique.push(selector);
            }
        }
        if unique.is_empty() {
            return Err(HubError::NoSelector);
        }
        if auth.is_expired() {
            return Err(HubError::Expired);
        }
        let earliest = last_event_id == Some("earliest");
        let inner = self
            .log
            .subscribe(&self.shared.log_topic, last_event_id)
            .await?;
        Ok(HubSubscription::new(
            inner,
            Arc::clone(&self.shared),
            unique,
            auth,
            earliest,
        ))
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("log", &self.log)
            .field("log_topic", &self.shared.log_topic)
            .field("max_selectors", &self.shared.max_selectors)
            .field("max_topics", &self.shared.max_topics)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Hub`].
///
/// ```
/// use std::time::Duration;
/// use axum_sse::{broadcast::Broadcast, hub::Hub, Event};
///
/// let log = Broadcast::builder().history(100_000).max_age(Duration::from_secs(3600)).build();
/// let hub = Hub::builder()
///     .max_selectors(32)
///     .expired_event(Event::new().event("bye").data("token expired"))
///     .build(log);
/// # drop(hub);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct HubBuilder {
    log_topic: String,
    max_selectors: usize,
    max_topics: usize,
    decode_cache: usize,
    expired: Event,
}

impl Default for HubBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl HubBuilder {
    /// The defaults: log topic `hub`, 64 selectors per subscription, 64
    /// topics per update, 4,096 decoded events cached, expired event
    /// `event: expired` / `data: the authorization expired`.
    pub fn new() -> Self {
        Self {
            log_topic: DEFAULT_LOG_TOPIC.to_owned(),
            max_selectors: DEFAULT_MAX_SELECTORS,
            max_topics: DEFAULT_MAX_TOPICS,
            decode_cache: DEFAULT_DECODE_CACHE,
            expired: Event::new()
                .event("expired")
                .data("the authorization expired"),
        }
    }

    /// The broadcast topic that holds the hub log (with Redis, the stream
    /// key is the broadcast's key prefix and this). Default `hub`. Hubs
    /// over one Redis with the same topic are one hub.
    pub fn log_topic(mut self, topic: impl Into<String>) -> Self {
        self.log_topic = topic.into();
        self
    }

    /// The most selectors one subscription may have (after removing
    /// duplicates). Default 64. Each selector is tried against each topic
    /// of each update a subscriber is offered, so this bounds the matching
    /// cost per update and subscriber.
    pub fn max_selectors(mut self, max: usize) -> Self {
        self.max_selectors = max;
        self
    }

    /// The most topics one update may have. Default 64.
    pub fn max_topics(mut self, max: usize) -> Self {
        self.max_topics = max;
        self
    }

    /// How many decoded updates a process keeps, so that an update is
    /// decoded once per process rather than once per subscriber. Default
    /// 4,096; 0 decodes per subscriber.
    pub fn decode_cache(mut self, entries: usize) -> Self {
        self.decode_cache = entries;
        self
    }

    /// The event a subscription sends when its authorization expires,
    /// just before it ends. It must have `data` (see
    /// [`EventError::NoData`](crate::EventError::NoData)) and should carry
    /// no `id` (the client keeps its last one). Default `event: expired`,
    /// `data: the authorization expired`.
    pub fn expired_event(mut self, event: Event) -> Self {
        self.expired = event;
        self
    }

    /// The hub over `log` (memory or Redis).
    ///
    /// # Panics
    ///
    /// When the expired event has an invalid field (see [`Event::check`]) or
    /// no `data` field.
    pub fn build(self, log: Broadcast) -> Hub {
        let expired = self
            .expired
            .encode_dispatchable()
            .unwrap_or_else(|err| panic!("HubBuilder::expired_event: {err}"));
        Hub {
            log,
            shared: Arc::new(Shared {
                log_topic: self.log_topic,
                max_selectors: self.max_selectors,
                max_topics: self.max_topics,
                expired,
                cache: Cache::new(self.decode_cache),
            }),
        }
    }
}

impl Shared {
    /// The decoded update of a logged event, from the cache when this
    /// process decoded it already. `None` for an event that is not an
    /// update.
    pub(crate) fn decode(&self, wire: &EncodedEvent) -> Option<Arc<Decoded>> {
        self.cache.decode(wire)
    }
}

/// Decoded updates by id, oldest evicted first. A hit is checked against
/// the event's bytes, so an id that names another event (another history)
/// is never taken for this one.
struct Cache {
    capacity: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<Box<str>, (EncodedEvent, Arc<Decoded>)>,
    order: VecDeque<Box<str>>,
}

impl Cache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    fn decode(&self, wire: &EncodedEvent) -> Option<Arc<Decoded>> {
        // A hit reads the id from the end of the event, never its data.
        let last = update::last_id(wire.as_bytes()).filter(|_| self.capacity > 0);
        if let Some(id) = last {
            let inner = lock(&self.inner);
            if let Some((cached, decoded)) = inner.map.get(id) {
                let same = std::ptr::eq(cached.as_bytes(), wire.as_bytes())
                    || cached.as_bytes() == wire.as_bytes();
                if same {
                    return Some(Arc::clone(decoded));
                }
            }
        }
        let (id, envelope) = update::split(wire.as_bytes())?;
        let decoded = Arc::new(update::decode(id, envelope)?);
        if let Some(id) = id.filter(|_| self.capacity > 0) {
            let mut inner = lock(&self.inner);
            if inner
                .map
                .insert(id.into(), (wire.clone(), Arc::clone(&decoded)))
                .is_none()
            {
                inner.order.push_back(id.into());
                while inner.order.len() > self.capacity {
                    if let Some(old) = inner.order.pop_front() {
                        inner.map.remove(&old);
                    }
                }
            }
        }
        Some(decoded)
    }
}
