//! What a subscriber may see and a publisher may publish.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::{selector::Topic, TopicSelector};

/// What one client may do on a [`Hub`](super::Hub): the topics it may read
/// private updates of, the topics it may publish to, and until when.
///
/// The hub applies it; how a credential maps to it is the app's (a JWT's
/// claims are one way, see `examples/mercure.rs`).
///
/// - **Subscribe**: a private update reaches a subscriber only if one of
///   its `subscribe` selectors matches one of the update's topics. Public
///   updates need no authorization. The subscription's own selectors only
///   choose what it follows; they never widen what it may read.
/// - **Publish**: every topic of an update must match one of the `publish`
///   selectors, or [`Hub::publish`](super::Hub::publish) refuses it
///   ([`HubError::Forbidden`](super::HubError::Forbidden), `403`).
/// - **Expiry**: a subscription ends at [`expires_at`](Self::expires_at)
///   with the expired event ([`HubBuilder::expired_event`](super::HubBuilder::expired_event));
///   an authorization already expired is refused
///   ([`HubError::Expired`](super::HubError::Expired), `401`).
///
/// [`Authorization::anonymous`] (also `default()`) may read public updates
/// only and publish nothing, and never expires.
///
/// ```
/// use std::time::Duration;
/// use axum_sse::hub::{Authorization, TopicSelector};
///
/// let user = Authorization::anonymous()
///     .subscribe(TopicSelector::url_pattern("https://example.com/users/42/*")?)
///     .expires_in(Duration::from_secs(3600));
/// assert!(user.may_read(["https://example.com/users/42/inbox"]));
/// assert!(!user.may_read(["https://example.com/users/43/inbox"]));
/// assert!(!user.may_publish(["https://example.com/users/42/inbox"]));
/// # Ok::<(), axum_sse::hub::SelectorError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Authorization {
    subscribe: Vec<TopicSelector>,
    publish: Vec<TopicSelector>,
    expires_at: Option<Instant>,
}

impl Authorization {
    /// Public updates only, no publishing, no expiry.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Everything: every topic, private or public, read and publish; no
    /// expiry. For trusted code (a server publishing its own updates).
    pub fn full() -> Self {
        Self::anonymous()
            .subscribe(TopicSelector::any())
            .publish(TopicSelector::any())
    }

    /// Adds a selector of topics whose private updates may be read.
    pub fn subscribe(mut self, selector: TopicSelector) -> Self {
        self.subscribe.push(selector);
        self
    }

    /// Adds a selector of topics that may be published to.
    pub fn publish(mut self, selector: TopicSelector) -> Self {
        self.publish.push(selector);
        self
    }

    /// Sets the instant the authorization ends (a token's `exp`). Default:
    /// never. A [`tokio::time::Instant`], so tests can pause the clock.
    pub fn expires_at(mut self, at: Instant) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the end `after` from now.
    pub fn expires_in(self, after: Duration) -> Self {
        let at = Instant::now().checked_add(after).unwrap_or_else(far_future);
        self.expires_at(at)
    }

    /// Sets the end at the wall-clock time `at` (a JWT `exp` is seconds
    /// since the Unix epoch: `UNIX_EPOCH + Duration::from_secs(exp)`); a
    /// time already past makes the authorization expired.
    pub fn expires_at_system(self, at: SystemTime) -> Self {
        match at.duration_since(SystemTime::now()) {
            Ok(left) => self.expires_in(left),
            Err(_) => self.expires_at(Instant::now()),
        }
    }

    /// When the authorization ends, if it does.
    pub fn expiry(&self) -> Option<Instant> {
        self.expires_at
    }

    /// Whether it has ended.
    pub fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|at| at <= Instant::now())
    }

    /// The selectors of topics whose private updates may be read.
    pub fn subscribe_selectors(&self) -> &[TopicSelector] {
        &self.subscribe
    }

    /// The selectors of topics that may be published to.
    pub fn publish_selectors(&self) -> &[TopicSelector] {
        &self.publish
    }

    /// Whether a private update with these topics may be read: one of them
    /// matches a `subscribe` selector. (Expiry is not checked here.)
    pub fn may_read<'a>(&self, topics: impl IntoIterator<Item = &'a str>) -> bool {
        topics
            .into_iter()
            .any(|topic| self.subscribe.iter().any(|s| s.matches(topic)))
    }

    /// Whether an update with these topics may be published: every one
    /// matches a `publish` selector, and there is at least one. (Expiry is
    /// not checked here.)
    pub fn may_publish<'a>(&self, topics: impl IntoIterator<Item = &'a str>) -> bool {
        let mut any = false;
        for topic in topics {
            any = true;
            if !self.publish.iter().any(|s| s.matches(topic)) {
                return false;
            }
        }
        any
    }

    pub(crate) fn may_read_topics(&self, topics: &[Topic]) -> bool {
        topics
            .iter()
            .any(|topic| self.subscribe.iter().any(|s| s.matches_topic(topic)))
    }
}

/// An instant no authorization outlives (about 30 years from now).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(30 * 365 * 24 * 60 * 60)
}
