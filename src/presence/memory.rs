//! Presence in one process.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use super::{events::Fanout, Member, PresenceChange, PresenceEvent};
use crate::util::sync::lock;

/// The members of each topic, by join; a topic exists while it has members.
pub(super) struct Memory {
    topics: Mutex<HashMap<Arc<str>, BTreeMap<u64, Member>>>,
    next: AtomicU64,
    pub(super) fanout: Arc<Fanout>,
}

impl Memory {
    pub(super) fn new(buffer: usize) -> Self {
        Self {
            topics: Mutex::default(),
            next: AtomicU64::new(0),
            fanout: Fanout::new(buffer),
        }
    }

    /// Adds `member` to `topic`; the join's number, for [`leave`](Self::leave).
    pub(super) fn join(&self, topic: &Arc<str>, member: Member) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut topics = lock(&self.topics);
        topics
            .entry(Arc::clone(topic))
            .or_default()
            .insert(id, member.clone());
        // Under the lock: listeners see changes in the order `list` does.
        self.fanout.send(&PresenceEvent::new(
            Arc::clone(topic),
            member,
            PresenceChange::Joined,
        ));
        id
    }

    pub(super) fn leave(&self, topic: &Arc<str>, id: u64) {
        let mut topics = lock(&self.topics);
        let Some(members) = topics.get_mut(topic) else {
            return;
        };
        let Some(member) = members.remove(&id) else {
            return;
        };
        if members.is_empty() {
            topics.remove(topic);
        }
        self.fanout.send(&PresenceEvent::new(
            Arc::clone(topic),
            member,
            PresenceChange::Left,
        ));
    }

    /// The members of `topic`, in the order they joined.
    pub(super) fn list(&self, topic: &str) -> Vec<Member> {
        lock(&self.topics)
            .get(topic)
            .map(|members| members.values().cloned().collect())
            .unwrap_or_default()
    }

    #[cfg(test)]
    pub(super) fn topics(&self) -> usize {
        lock(&self.topics).len()
    }
}
