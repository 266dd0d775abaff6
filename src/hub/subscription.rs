//! The stream one hub subscriber reads.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::Stream;
use tokio::time::Sleep;

use crate::{broadcast::Subscription, EncodedEvent};

use super::{channel::Shared, Authorization, TopicSelector};

/// Log events a subscription skips in one poll before it yields to the
/// runtime (a long replay of updates it may not see stays cooperative).
const SKIP_BUDGET: usize = 128;

/// The updates one subscriber follows: a [`Stream`] of [`EncodedEvent`]s
/// for [`SseBody::new`](crate::SseBody::new), from
/// [`Hub::subscribe`](super::Hub::subscribe).
///
/// Each event is an update's own fields (`event`, `retry`, `data`) and its
/// `id`; an update matched by several selectors, or through several of its
/// topics, comes once. The stream ends when its authorization expires
/// (after the expired event), and, as a broadcast subscription does, when
/// the subscriber falls too far behind (the client reconnects and
/// resumes).
#[must_use = "a subscription does nothing unless polled"]
pub struct HubSubscription {
    inner: Subscription,
    shared: Arc<Shared>,
    selectors: Box<[TopicSelector]>,
    auth: Authorization,
    expiry: Option<Pin<Box<Sleep>>>,
    /// The next log event is the broadcast's missed-events event.
    missed_first: bool,
    /// Skip that event (the client asked for `earliest`: nothing it knew
    /// of was missed).
    earliest: bool,
    missed: bool,
    done: bool,
    guards: Vec<Box<dyn Send + Sync>>,
}

impl HubSubscription {
    pub(super) fn new(
        inner: Subscription,
        shared: Arc<Shared>,
        selectors: Vec<TopicSelector>,
        auth: Authorization,
        earliest: bool,
    ) -> Self {
        let missed = inner.missed_events();
        Self {
            expiry: auth
                .expiry()
                .map(|at| Box::pin(tokio::time::sleep_until(at))),
            inner,
            shared,
            selectors: selectors.into_boxed_slice(),
            auth,
            missed_first: missed,
            earliest: earliest && missed,
            missed: missed && !earliest,
            done: false,
            guards: Vec::new(),
        }
    }

    /// Whether the resume id was not in the hub log (too old, another
    /// hub's, forged), so updates may have been missed; the stream then
    /// starts with the broadcast's missed-events event. `false` for
    /// `earliest`.
    pub fn missed_events(&self) -> bool {
        self.missed
    }

    /// The selectors it follows (duplicates removed).
    pub fn selectors(&self) -> &[TopicSelector] {
        &self.selectors
    }

    /// What its subscriber may see.
    pub fn authorization(&self) -> &Authorization {
        &self.auth
    }

    /// Keeps `guard` for as long as the subscription lives and drops it
    /// when the stream is dropped (the client left, the authorization
    /// expired, the stream was cut). This is where presence plugs in: a
    /// presence module's "joined" handle, whose drop says "left".
    pub fn hold(mut self, guard: impl Send + Sync + 'static) -> Self {
        self.guards.push(Box::new(guard));
        self
    }

    fn wants(&self, topics: &[super::Topic], private: bool) -> bool {
        let followed = self
            .selectors
            .iter()
            .any(|selector| topics.iter().any(|topic| selector.matches_topic(topic)));
        followed && (!private || self.auth.may_read_topics(topics))
    }
}

impl Stream for HubSubscription {
    type Item = EncodedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EncodedEvent>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        // The expiry comes first: nothing is delivered at or after it.
        if let Some(expiry) = this.expiry.as_mut() {
            if expiry.as_mut().poll(cx).is_ready() {
                this.done = true;
                this.expiry = None;
                return Poll::Ready(Some(this.shared.expired.clone()));
            }
        }
        for _ in 0..SKIP_BUDGET {
            let event = match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(event)) => event,
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            };
            if std::mem::take(&mut this.missed_first) {
                // The missed-events event: no id, no update in it.
                if this.earliest {
                    continue;
                }
                return Poll::Ready(Some(event));
            }
            if let Some(decoded) = this.shared.decode(&event) {
                if this.wants(&decoded.topics, decoded.private) {
                    return Poll::Ready(Some(decoded.out.clone()));
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl fmt::Debug for HubSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubSubscription")
            .field("selectors", &self.selectors)
            .field("authorization", &self.auth)
            .field("missed_events", &self.missed_events())
            .finish_non_exhaustive()
    }
}
