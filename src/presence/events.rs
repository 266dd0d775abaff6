//! Local fan-out of join/leave events, and the stream a listener reads.

use std::{
    collections::HashMap,
    fmt,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
};

use futures_util::{stream::BoxStream, Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

use super::PresenceEvent;
use crate::util::sync::lock;

/// Hands each event to the listeners of its topic and to those of every
/// topic. A topic's channel exists while it has listeners.
pub(super) struct Fanout {
    all: broadcast::Sender<PresenceEvent>,
    topics: Mutex<HashMap<Arc<str>, broadcast::Sender<PresenceEvent>>>,
    buffer: usize,
}

impl Fanout {
    pub(super) fn new(buffer: usize) -> Arc<Self> {
        let buffer = buffer.max(1);
        Arc::new(Self {
            all: broadcast::channel(buffer).0,
            topics: Mutex::default(),
            buffer,
        })
    }

    pub(super) fn send(&self, event: &PresenceEvent) {
        // No listeners is fine.
        let _ = self.all.send(event.clone());
        if let Some(topic) = lock(&self.topics).get(event.topic()) {
            let _ = topic.send(event.clone());
        }
    }

    /// A stream of the events of `topic` (of every topic for `None`);
    /// `keep` is held as long as the stream (the backend it reads from).
    pub(super) fn subscribe(
        self: &Arc<Self>,
        topic: Option<&str>,
        keep: Arc<dyn Send + Sync>,
    ) -> PresenceEvents {
        let (receiver, topic) = match topic {
            None => (self.all.subscribe(), None),
            Some(topic) => {
                let mut topics = lock(&self.topics);
                let receiver = match topics.get(topic) {
                    Some(sender) => sender.subscribe(),
                    None => {
                        let (sender, receiver) = broadcast::channel(self.buffer);
                        topics.insert(topic.into(), sender);
                        receiver
                    }
                };
                (receiver, Some(Arc::<str>::from(topic)))
            }
        };
        let lagged = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&lagged);
        let stream = futures_util::stream::unfold(receiver, move |mut receiver| {
            let flag = Arc::clone(&flag);
            async move {
                match receiver.recv().await {
                    Ok(event) => Some((event, receiver)),
                    Err(RecvError::Lagged(_)) => {
                        flag.store(true, Ordering::SeqCst);
                        None
                    }
                    Err(RecvError::Closed) => None,
                }
            }
        })
        .boxed();
        PresenceEvents {
            stream: Some(stream),
            lagged,
            release: topic.map(|topic| (Arc::clone(self), topic)),
            _keep: keep,
        }
    }

    /// Forgets `topic`'s channel once nobody listens to it.
    fn release(&self, topic: &str) {
        let mut topics = lock(&self.topics);
        // Subscribing happens under the same lock: nobody joins the channel
        // between this count and its removal.
        if topics
            .get(topic)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            topics.remove(topic);
        }
    }

    #[cfg(test)]
    pub(super) fn topics(&self) -> usize {
        lock(&self.topics).len()
    }
}

/// The join and leave events of a topic (or of every topic), as they
/// happen: a `Stream` of [`PresenceEvent`]. From
/// [`Presence::events`](super::Presence::events) and
/// [`Presence::all_events`](super::Presence::all_events).
///
/// Events come in the order they happened (with Redis: the order Redis
/// recorded them, the same on every instance). A listener that falls more
/// than [`PresenceBuilder::buffer`](super::PresenceBuilder::buffer) events
/// behind is ended rather than holding more memory, and
/// [`lagged`](Self::lagged) then says so: read
/// [`list`](super::Presence::list) again and listen anew. Otherwise the
/// stream does not end: it keeps its backend (with Redis, the instance and
/// its reader) alive even after every [`Presence`](super::Presence) clone
/// is dropped.
pub struct PresenceEvents {
    stream: Option<BoxStream<'static, PresenceEvent>>,
    lagged: Arc<AtomicBool>,
    release: Option<(Arc<Fanout>, Arc<str>)>,
    _keep: Arc<dyn Send + Sync>,
}

impl PresenceEvents {
    /// A stream that has ended.
    pub(super) fn ended() -> Self {
        Self {
            stream: None,
            lagged: Arc::new(AtomicBool::new(false)),
            release: None,
            _keep: Arc::new(()),
        }
    }

    /// Whether the stream ended because it fell too far behind.
    pub fn lagged(&self) -> bool {
        self.lagged.load(Ordering::SeqCst)
    }
}

impl Stream for PresenceEvents {
    type Item = PresenceEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PresenceEvent>> {
        match &mut self.stream {
            Some(stream) => stream.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }
}

impl Drop for PresenceEvents {
    fn drop(&mut self) {
        // The receiver first, so the count below no longer holds it.
        self.stream = None;
        if let Some((fanout, topic)) = self.release.take() {
            fanout.release(&topic);
        }
    }
}

impl fmt::Debug for PresenceEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresenceEvents")
            .field("topic", &self.release.as_ref().map(|(_, topic)| topic))
            .field("lagged", &self.lagged())
            .finish_non_exhaustive()
    }
}
