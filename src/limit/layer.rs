use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use http::{request::Parts, HeaderValue};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Layer;

use super::{
    key::{peer_ip, KeyFn},
    ClientKey, StreamLimitService,
};
use crate::{
    util::answer::{retry_after_value, DEFAULT_RETRY_AFTER},
    SseStats,
};

/// Open streams per client, for clients that have one.
#[derive(Debug, Default)]
struct Clients {
    open: Mutex<HashMap<ClientKey, usize>>,
}

impl Clients {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, usize>> {
        crate::util::sync::lock(&self.open)
    }
}

/// Limits the event streams open at once, in all and per client, holding
/// each permit for the life of the stream. See the
/// [module docs](crate::limit).
///
/// It applies wherever it is mounted, around an [`SseLayer`](crate::SseLayer)
/// or inside it, with either handler style: inside one, the `SseLayer`
/// holds the permit in the stream's body, so a handler that hands its
/// writer to a task and returns still counts until the stream ends. Two
/// limits on one stream are two budgets: both count it, either refuses.
/// See [layer ordering](crate#layer-ordering-and-tower-http).
#[derive(Clone)]
#[must_use]
pub struct StreamLimitLayer {
    global: Option<Arc<Semaphore>>,
    per_client: Option<usize>,
    key: KeyFn,
    clients: Arc<Clients>,
    pub(super) retry_after: HeaderValue,
    pub(super) stats: Option<SseStats>,
}

impl Default for StreamLimitLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamLimitLayer {
    /// No limit until one is set; clients keyed by peer IP address.
    pub fn new() -> Self {
        Self {
            global: None,
            per_client: None,
            key: Arc::new(peer_ip),
            clients: Arc::default(),
            retry_after: retry_after_value(DEFAULT_RETRY_AFTER),
            stats: None,
        }
    }

    /// Allows at most `streams` open at once, in all. Default: no limit.
    pub fn max_streams(mut self, streams: usize) -> Self {
        let permits = streams.min(Semaphore::MAX_PERMITS);
        self.global = Some(Arc::new(Semaphore::new(permits)));
        self
    }

    /// Allows each client at most `streams` open at once. Default: no
    /// limit. A request whose [key](Self::client_key) is `None` is only
    /// counted in the global limit.
    pub fn max_streams_per_client(mut self, streams: usize) -> Self {
        self.per_client = Some(streams);
        self
    }

    /// Sets how a request names its client for
    /// [`max_streams_per_client`](Self::max_streams_per_client). Default:
    /// the peer's IP address from `ConnectInfo<SocketAddr>`, and `None`
    /// (with a warning, once) when the app is not served with it.
    pub fn client_key<F, K>(mut self, key: F) -> Self
    where
        F: Fn(&Parts) -> Option<K> + Send + Sync + 'static,
        K: Into<ClientKey>,
    {
        self.key = Arc::new(move |parts| key(parts).map(Into::into));
        self
    }

    /// Sets the `Retry-After` of the `429` answers (whole seconds, rounded
    /// up). Default: 5 seconds.
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = retry_after_value(delay);
        self
    }

    pub(crate) fn stats(mut self, stats: SseStats) -> Self {
        self.stats = Some(stats);
        self
    }

    /// Whether any limit is set.
    pub(crate) fn is_set(&self) -> bool {
        self.global.is_some() || self.per_client.is_some()
    }

    /// The permits for one more stream from the client of `parts`, or which
    /// limit refuses it.
    pub(super) fn admit(&self, parts: &Parts) -> Result<StreamPermit, &'static str> {
        let global = match &self.global {
            Some(semaphore) => Some(
                Arc::clone(semaphore)
                    .try_acquire_owned()
                    .map_err(|_| "too many open event streams")?,
            ),
            None => None,
        };
        let client = match self.per_client {
            Some(max) => match (self.key)(parts) {
                Some(key) => Some(self.admit_client(key, max)?),
                None => None,
            },
            None => None,
        };
        Ok(StreamPermit {
            _global: global,
            _client: client,
        })
    }

    fn admit_client(&self, key: ClientKey, max: usize) -> Result<ClientPermit, &'static str> {
        let mut open = self.clients.lock();
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= max {
            if *count == 0 {
                open.remove(&key);
            }
            return Err("too many open event streams from this client");
        }
        *count += 1;
        Ok(ClientPermit {
            clients: Arc::clone(&self.clients),
            key,
        })
    }
}

impl fmt::Debug for StreamLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamLimitLayer")
            .field(
                "available",
                &self.global.as_ref().map(|s| s.available_permits()),
            )
            .field("per_client", &self.per_client)
            .field("clients", &self.clients.lock().len())
            .field("retry_after", &self.retry_after)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for StreamLimitLayer {
    type Service = StreamLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StreamLimitService::new(inner, Some(self.clone()))
    }
}

/// What one open stream holds: released when dropped.
#[derive(Debug)]
pub(crate) struct StreamPermit {
    _global: Option<OwnedSemaphorePermit>,
    _client: Option<ClientPermit>,
}

#[derive(Debug)]
struct ClientPermit {
    clients: Arc<Clients>,
    key: ClientKey,
}

impl Drop for ClientPermit {
    fn drop(&mut self) {
        let mut open = self.clients.lock();
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(user: &str) -> Parts {
        http::Request::get("/")
            .header("user", user)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn by_user() -> StreamLimitLayer {
        StreamLimitLayer::new().client_key(|parts: &Parts| {
            parts
                .headers
                .get("user")
                .map(|user| user.to_str().unwrap().to_owned())
        })
    }

    #[test]
    fn per_client_counts_are_dropped_at_zero() {
        let layer = by_user().max_streams_per_client(2);
        let a1 = layer.admit(&parts("a")).unwrap();
        let a2 = layer.admit(&parts("a")).unwrap();
        assert!(layer.admit(&parts("a")).is_err());
        let b = layer.admit(&parts("b")).unwrap();
        assert_eq!(layer.clients.lock().len(), 2);
        drop((a1, b));
        assert_eq!(layer.clients.lock().len(), 1);
        let a3 = layer.admit(&parts("a")).unwrap();
        drop((a2, a3));
        assert!(layer.clients.lock().is_empty());
    }

    #[test]
    fn a_refused_client_releases_its_global_permit() {
        let layer = by_user().max_streams(2).max_streams_per_client(1);
        let a = layer.admit(&parts("a")).unwrap();
        assert!(layer.admit(&parts("a")).is_err());
        let b = layer.admit(&parts("b")).unwrap();
        assert_eq!(
            layer.admit(&parts("c")).unwrap_err(),
            "too many open event streams"
        );
        drop(a);
        let _c = layer.admit(&parts("c")).unwrap();
        drop(b);
        // Zero per client refuses every keyed request, and keeps no entry.
        let none = by_user().max_streams_per_client(0);
        assert!(none.admit(&parts("a")).is_err());
        assert!(none.clients.lock().is_empty());
    }
}
