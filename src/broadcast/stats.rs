//! Counters of a broadcast instance.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
#[cfg(feature = "metrics")]
use std::sync::Arc;

use super::builder::Config;

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
    #[cfg(feature = "metrics")]
    metrics: Option<Arc<crate::metrics::BroadcastMetrics>>,
}

/// When a live event was published, carried with it to its subscribers for
/// the delivery-time metric; nothing without the `metrics` feature.
#[cfg(feature = "metrics")]
pub(super) type Stamp = crate::metrics::Published;
/// When a live event was published: nothing without the `metrics` feature.
#[cfg(not(feature = "metrics"))]
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamp;

/// The stamp of an entry sent now (only called when metrics are on).
#[inline]
pub(super) fn stamp_now() -> Stamp {
    #[cfg(feature = "metrics")]
    return Stamp::Local(tokio::time::Instant::now());
    #[cfg(not(feature = "metrics"))]
    Stamp
}

/// No stamp: metrics are off, or the entry's position tells its time.
#[cfg(feature = "metrics")]
pub(super) const NO_STAMP: Stamp = Stamp::None;
/// No stamp: metrics are off.
#[cfg(not(feature = "metrics"))]
pub(super) const NO_STAMP: Stamp = Stamp;

/// Runs `$body` with the broadcast's metrics, if it has any.
macro_rules! with_metrics {
    ($counters:expr, |$metrics:ident| $body:expr) => {
        #[cfg(feature = "metrics")]
        if let Some($metrics) = &$counters.metrics {
            $body;
        }
    };
}

impl Counters {
    /// Counters of a broadcast built with `config`; registers its metrics.
    pub(super) fn new(config: &Config) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = config;
        Self {
            #[cfg(feature = "metrics")]
            metrics: config
                .metrics
                .as_ref()
                .map(crate::metrics::BroadcastMetrics::register),
            ..Self::default()
        }
    }

    /// Whether the broadcast has metrics: live entries need a stamp.
    pub(super) fn timed(&self) -> bool {
        #[cfg(feature = "metrics")]
        return self.metrics.is_some();
        #[cfg(not(feature = "metrics"))]
        false
    }

    /// A live event stamped `at` reached a subscription.
    #[inline]
    pub(super) fn delivered(&self, at: Stamp) {
        #[cfg(not(feature = "metrics"))]
        let _ = at;
        with_metrics!(self, |metrics| metrics.delivered(at));
    }

    /// A live event that Redis took at `ms` (its clock, milliseconds since
    /// the Unix epoch) reached a subscription.
    #[cfg(feature = "redis")]
    #[inline]
    pub(super) fn delivered_from_redis(&self, ms: u64) {
        #[cfg(not(feature = "metrics"))]
        let _ = ms;
        with_metrics!(self, |metrics| metrics.delivered(Stamp::Wall(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
        )));
    }

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
        with_metrics!(self, |metrics| metrics.subscribed(missed));
    }

    pub(super) fn unsubscribed(&self) {
        self.subscribers.fetch_sub(1, Relaxed);
        with_metrics!(self, |metrics| metrics.unsubscribed());
    }

    pub(super) fn published(&self) {
        self.published.fetch_add(1, Relaxed);
        with_metrics!(self, |metrics| metrics.published());
    }

    pub(super) fn slow_disconnect(&self) {
        self.slow_disconnects.fetch_add(1, Relaxed);
        with_metrics!(self, |metrics| metrics.slow_disconnect());
    }
}
