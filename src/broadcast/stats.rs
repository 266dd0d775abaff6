//! Counters of a broadcast instance.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A snapshot of a [`Broadcast`](super::Broadcast)'s counters, from
/// [`Broadcast::stats`](super::Broadcast::stats). With Redis, the counts are
/// this instance's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastStatsSnapshot {
    subscribers: usize,
    published: u64,
    slow_disconnects: u64,
    missed_resumes: u64,
}

impl BroadcastStatsSnapshot {
    /// Subscriptions open now.
    pub const fn subscribers(&self) -> usize {
        self.subscribers
    }

    /// Events published successfully through this instance.
    pub const fn published(&self) -> u64 {
        self.published
    }

    /// Subscriptions ended because they fell further behind than their
    /// buffer.
    pub const fn slow_disconnects(&self) -> u64 {
        self.slow_disconnects
    }

    /// Subscriptions that resumed from an id no longer (or never) in the
    /// history, and so started with the missed-events event.
    pub const fn missed_resumes(&self) -> u64 {
        self.missed_resumes
    }
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    subscribers: AtomicUsize,
    published: AtomicU64,
    slow_disconnects: AtomicU64,
    missed_resumes: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> BroadcastStatsSnapshot {
        BroadcastStatsSnapshot {
            subscribers: self.subscribers.load(Relaxed),
            published: self.published.load(Relaxed),
            slow_disconnects: self.slow_disconnects.load(Relaxed),
            missed_resumes: self.missed_resumes.load(Relaxed),
        }
    }

    pub(super) fn subscribed(&self, missed: bool) {
        self.subscribers.fetch_add(1, Relaxed);
        if missed {
            self.missed_resumes.fetch_add(1, Relaxed);
        }
    }

    pub(super) fn unsubscribed(&self) {
        self.subscribers.fetch_sub(1, Relaxed);
    }

    pub(super) fn published(&self) {
        self.published.fetch_add(1, Relaxed);
    }

    pub(super) fn slow_disconnect(&self) {
        self.slow_disconnects.fetch_add(1, Relaxed);
    }
}
