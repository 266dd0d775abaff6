//! A server made for holding many long-lived streams: [`serve`].
//!
//! `axum_sse::serve(listener, router)` is used like `axum::serve`, and
//! costs about half its memory per open stream ([below](#memory)). Every
//! setting has a default fit for event streams:
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use axum_sse::{Event, SseLayer, SseShutdown, SseWriter};
//!
//! async fn feed(mut sse: SseWriter) {
//!     let _ = sse.send(Event::new().data("hello")).await;
//!     sse.closed().await;
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let shutdown = SseShutdown::new();
//! let app: Router = Router::new().route("/feed", get(feed)).layer(
//!     SseLayer::builder()
//!         .heartbeat(Duration::from_secs(15))
//!         .shutdown(shutdown.clone())
//!         .farewell(Event::new().event("shutdown").data("restarting"))
//!         .build(),
//! );
//!
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! axum_sse::serve(listener, app)
//!     .shutdown(shutdown) // triggered when the signal comes: streams say goodbye and end
//!     .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap_or(()) })
//!     .shutdown_timeout(Duration::from_secs(10)) // then close what is still open
//!     .await
//! # }
//! ```
//!
//! Customised:
//!
//! ```no_run
//! use std::time::Duration;
//! # async fn run(app: axum::Router) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//! axum_sse::serve(listener, app)
//!     .max_connections(20_000) // then accepting waits until one closes
//!     .header_read_timeout(Duration::from_secs(10))
//!     .max_buf_size(16 * 1024)
//!     .tcp_keepalive(Some(Duration::from_secs(120)))
//!     .http2(false) // HTTP/1.1 only
//!     .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap_or(()) })
//!     .shutdown_timeout(Duration::from_secs(20))
//!     .await
//! # }
//! ```
//!
//! # What it does
//!
//! - **Protocols.** HTTP/1.1 (with upgrades, for WebSockets) and HTTP/2
//!   over cleartext with prior knowledge (h2c), told apart by the
//!   connection's first bytes. An HTTP/1.1 connection pays nothing for
//!   HTTP/2 being available: the HTTP/2 state lives on the heap of the
//!   connections that use it (measured: the same memory per HTTP/1.1
//!   stream with detection on or off). Cleartext only: terminate TLS in a
//!   proxy, which usually speaks HTTP/1.1 to the server.
//! - **The router, once.** The router is converted once
//!   (`Router::with_state(())`), and every connection shares it: a clone is
//!   one reference count. `axum::serve(listener, router)` converts every
//!   route again for each connection.
//! - **Peer address.** Every request carries the peer's
//!   `ConnectInfo<SocketAddr>` in its extensions, as with axum's
//!   `into_make_service_with_connect_info::<SocketAddr>()`: the default
//!   [`ClientKey`](crate::ClientKey) of per-client stream limits uses it.
//! - **Buffers for streams that mostly write.** hyper keeps one read buffer
//!   (8 KiB, grown up to [`max_buf_size`](Serve::max_buf_size) for large
//!   request heads and bodies) and queues the body's frames for a vectored
//!   write ([`writev`](Serve::writev)) rather than copying them.
//! - **TCP.** `TCP_NODELAY` on every accepted socket (an event goes out at
//!   once, not after the peer's delayed ACK), and TCP keepalive probes
//!   after 60 s of silence ([`tcp_keepalive`](Serve::tcp_keepalive)).
//! - **Slow clients.** A request head must arrive within
//!   [`header_read_timeout`](Serve::header_read_timeout) (30 s), or the
//!   connection is closed: a client sending a byte a minute does not hold a
//!   connection. The same bound applies, before that, to the bytes that
//!   tell the protocol.
//! - **A connection limit.** With
//!   [`max_connections`](Serve::max_connections), the server stops
//!   accepting at the limit and accepts again when a connection closes; new
//!   clients wait in the kernel's listen backlog meanwhile (and, once it is
//!   full, their connection attempts are dropped and retried by their TCP
//!   stack). Streams per route are limited by
//!   [`SseLayerBuilder::max_streams`](crate::SseLayerBuilder::max_streams),
//!   which answers `429` instead.
//! - **Accept errors** (running out of file descriptors, `EMFILE`, and the
//!   like) are logged and retried after a back-off (from 5 ms, doubling, up
//!   to 1 s), never in a busy loop; errors of a single connection that went
//!   away before it was accepted are skipped.
//! - **Graceful shutdown.** With
//!   [`with_graceful_shutdown`](Serve::with_graceful_shutdown), when the
//!   signal resolves the server stops accepting (the listener is closed),
//!   triggers the [`SseShutdown`] given to [`shutdown`](Serve::shutdown)
//!   (every stream sends its farewell and ends), lets every connection
//!   finish the response in flight (HTTP/1.1 closes after it, HTTP/2 sends
//!   `GOAWAY`), and resolves when all are closed, or when
//!   [`shutdown_timeout`](Serve::shutdown_timeout) has passed, closing
//!   those still open.
//!
//! # Memory
//!
//! Measured with the project's load harness (`idle-10k`: 10,000 idle event
//! streams with a heartbeat and the full [`SseLayer`](crate::SseLayer),
//! growth of the server's resident memory per stream): 11.0 KiB through
//! `serve`, HTTP/2 detection on or off alike, against 22.0 KiB for the
//! same router through `axum::serve(listener, router)`, and 20.2 KiB for
//! axum's own `Sse` through `axum::serve`; the same per stream at 18,000
//! streams. The kernel's side comes on top of all of them: about 4 KiB per
//! idle TCP socket, and its buffers while they hold bytes a client has not
//! read (`BENCHMARKS.md` has the figures for 100,000 and 1,000,000
//! streams).
//!
//! # HTTP/2 and slow clients
//!
//! hyper's HTTP/2 server has no header-read timeout of its own: after the
//! preface, a connection that opens no stream stays open until the client
//! closes it or the server shuts down. Where that matters, turn HTTP/2 off
//! ([`http2(false)`](Serve::http2)) or terminate it in a proxy.

mod conn;
mod detect;

use std::{
    fmt,
    future::{Future, IntoFuture},
    io,
    pin::{pin, Pin},
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::Router;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use socket2::{SockRef, TcpKeepalive};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use self::conn::{serve_connection, Shared};
use crate::SseShutdown;

/// hyper's smallest `max_buf_size`: its initial read buffer.
const MIN_BUF_SIZE: usize = 8 * 1024;
/// The first wait after an accept error; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `router` on `listener`: HTTP/1.1 and HTTP/2, made for holding
/// many long-lived streams. See the [module docs](mod@crate::serve) for what it
/// does and its defaults.
///
/// The returned [`Serve`] is a builder: set what you need, then `.await`
/// it. Without [`with_graceful_shutdown`](Serve::with_graceful_shutdown) it
/// runs forever.
pub fn serve(listener: TcpListener, router: Router) -> Serve {
    Serve {
        listener,
        router,
        signal: std::future::pending(),
        config: Config::default(),
    }
}

/// The server [`serve`] returns: a builder, and a future once `.await`ed
/// (it resolves only after a graceful shutdown, always with `Ok(())`:
/// errors of connections and of `accept` are logged, not returned).
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve<F = std::future::Pending<()>> {
    listener: TcpListener,
    router: Router,
    signal: F,
    config: Config,
}

#[derive(Debug, Clone)]
struct Config {
    http2: bool,
    header_read_timeout: Option<Duration>,
    max_connections: Option<usize>,
    max_buf_size: usize,
    writev: Option<bool>,
    tcp_nodelay: bool,
    tcp_keepalive: Option<Duration>,
    shutdown: Option<SseShutdown>,
    shutdown_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http2: true,
            header_read_timeout: Some(Duration::from_secs(30)),
            max_connections: None,
            max_buf_size: 64 * 1024,
            writev: None,
            tcp_nodelay: true,
            tcp_keepalive: Some(Duration::from_secs(60)),
            shutdown: None,
            shutdown_timeout: None,
        }
    }
}

impl<F> Serve<F> {
    /// Whether HTTP/2 over cleartext (h2c, with prior knowledge) is served
    /// beside HTTP/1.1, told apart by the first bytes of each connection.
    /// Default: `true`. With `false`, every connection is HTTP/1.1.
    pub fn http2(mut self, enabled: bool) -> Self {
        self.config.http2 = enabled;
        self
    }

    /// How long a client may take to send a request head, from the
    /// connection's start or the end of the previous response on a kept-
    /// alive connection; after that the connection is closed without an
    /// answer. `None` waits forever. Default: 30 seconds.
    pub fn header_read_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.config.header_read_timeout = timeout.into();
        self
    }

    /// The most connections open at once. At the limit the server stops
    /// accepting, and accepts the next connection when one closes (new
    /// clients wait in the listen backlog meanwhile). `None`: no limit.
    /// Default: `None`. A limit of `0` is raised to `1`.
    pub fn max_connections(mut self, max: impl Into<Option<usize>>) -> Self {
        self.config.max_connections = max.into().map(|max| max.clamp(1, Semaphore::MAX_PERMITS));
        self
    }

    /// The most bytes hyper buffers for one connection, in bytes: the read
    /// buffer (so also the largest request head) and, for HTTP/1.1, the
    /// response bytes queued for the socket before the body is asked for
    /// more (one frame larger than this is still written whole); for
    /// HTTP/2, the send buffer of each stream. Values below 8 KiB (hyper's
    /// smallest) are raised to 8 KiB. Default: 64 KiB (hyper's own is about
    /// 400 KiB).
    pub fn max_buf_size(mut self, bytes: usize) -> Self {
        self.config.max_buf_size = bytes.max(MIN_BUF_SIZE);
        self
    }

    /// HTTP/1.1: `true` queues the body's frames and writes them with one
    /// vectored write (no copy); `false` copies them into one buffer first.
    /// Default: hyper's choice, which is vectored writes on TCP sockets.
    pub fn writev(mut self, enabled: bool) -> Self {
        self.config.writev = Some(enabled);
        self
    }

    /// Whether accepted sockets get `TCP_NODELAY`, so a small event is sent
    /// at once rather than held back by Nagle's algorithm. Default: `true`.
    pub fn tcp_nodelay(mut self, enabled: bool) -> Self {
        self.config.tcp_nodelay = enabled;
        self
    }

    /// TCP keepalive on accepted sockets: after this long without traffic
    /// the kernel probes the peer (at the system's interval and count), and
    /// a connection whose peer is gone is closed. `None` leaves keepalive
    /// off. Default: 60 seconds.
    pub fn tcp_keepalive(mut self, idle: impl Into<Option<Duration>>) -> Self {
        self.config.tcp_keepalive = idle.into();
        self
    }

    /// The [`SseShutdown`] to trigger when the graceful-shutdown signal
    /// comes, so open event streams send their farewell and end, and the
    /// shutdown completes. Give the same handle to
    /// [`SseLayerBuilder::shutdown`](crate::SseLayerBuilder::shutdown).
    /// Default: none (streams end only if the handle is triggered
    /// elsewhere).
    pub fn shutdown(mut self, shutdown: SseShutdown) -> Self {
        self.config.shutdown = Some(shutdown);
        self
    }

    /// After the graceful-shutdown signal, how long to wait for open
    /// connections to finish before closing them; `None` waits for all.
    /// A client that reads nothing can hold its connection until its
    /// socket gives up, so bound the wait where that matters. Default:
    /// `None`.
    pub fn shutdown_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.config.shutdown_timeout = timeout.into();
        self
    }

    /// Stops the server gracefully when `signal` resolves: see the
    /// [module docs](mod@crate::serve#what-it-does). To stop when an
    /// [`SseShutdown`] is triggered elsewhere:
    /// `.with_graceful_shutdown(async move { handle.triggered().await })`.
    pub fn with_graceful_shutdown<G>(self, signal: G) -> Serve<G>
    where
        G: Future<Output = ()> + Send + 'static,
    {
        Serve {
            listener: self.listener,
            router: self.router,
            signal,
            config: self.config,
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

impl<F> fmt::Debug for Serve<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<F> IntoFuture for Serve<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = ServeFuture;

    fn into_future(self) -> ServeFuture {
        ServeFuture(Box::pin(run(self)))
    }
}

/// The future of a [`Serve`]: resolves after a graceful shutdown.
#[must_use = "a server does nothing until it is awaited"]
pub struct ServeFuture(Pin<Box<dyn Future<Output = io::Result<()>> + Send>>);

impl Future for ServeFuture {
    type Output = io::Result<()>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for ServeFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeFuture").finish_non_exhaustive()
    }
}

async fn run<F>(serve: Serve<F>) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let Serve {
        listener,
        router,
        signal,
        config,
    } = serve;
    let shared = Arc::new(shared(router, &config));
    let limit = config
        .max_connections
        .map(|max| Arc::new(Semaphore::new(max)));
    let keepalive = config
        .tcp_keepalive
        .map(|idle| TcpKeepalive::new().with_time(idle));
    let connections = TaskTracker::new();
    let mut signal = pin!(signal);
    let mut backoff = MIN_BACKOFF;

    loop {
        let permit = match &limit {
            Some(limit) => tokio::select! {
                permit = Arc::clone(limit).acquire_owned() => permit.ok(),
                () = signal.as_mut() => break,
            },
            None => None,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = signal.as_mut() => break,
        };
        match accepted {
            Ok((tcp, peer)) => {
                backoff = MIN_BACKOFF;
                configure(&tcp, &config, keepalive.as_ref());
                connections.spawn(serve_connection(tcp, peer, Arc::clone(&shared), permit));
            }
            // The connection went away before it was accepted.
            Err(err) if is_connection_error(&err) => {}
            Err(err) => {
                tracing::error!(%err, retry_in = ?backoff, "accept error");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = signal.as_mut() => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    drop(listener);
    tracing::debug!(
        open = connections.len(),
        "graceful shutdown: not accepting, waiting for open connections"
    );
    if let Some(shutdown) = &config.shutdown {
        shutdown.trigger();
    }
    shared.phase.store(conn::STOPPING, Ordering::Release);
    shared.stop.cancel();
    connections.close();
    match config.shutdown_timeout {
        None => connections.wait().await,
        Some(limit) => {
            if tokio::time::timeout(limit, connections.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    open = connections.len(),
                    "connections still open after {limit:?}; closing them"
                );
                shared.phase.store(conn::FORCED, Ordering::Release);
                shared.force.cancel();
                connections.wait().await;
            }
        }
    }
    Ok(())
}

fn shared(router: Router, config: &Config) -> Shared {
    let mut http1 = http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_buf_size);
    if let Some(writev) = config.writev {
        http1.writev(writev);
    }
    let http2 = config.http2.then(|| {
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_send_buf_size(config.max_buf_size)
            .enable_connect_protocol();
        http2
    });
    Shared {
        router: router.with_state(()),
        http1,
        http2,
        header_read_timeout: config.header_read_timeout,
        stop: CancellationToken::new(),
        force: CancellationToken::new(),
        phase: AtomicU8::new(conn::RUNNING),
    }
}

fn configure(tcp: &TcpStream, config: &Config, keepalive: Option<&TcpKeepalive>) {
    if config.tcp_nodelay {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY");
        }
    }
    if let Some(keepalive) = keepalive {
        if let Err(err) = SockRef::from(tcp).set_tcp_keepalive(keepalive) {
            tracing::debug!(%err, "cannot set TCP keepalive");
        }
    }
}

/// Errors about one connection, not the listener: nothing to wait for.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
