//! One connection: protocol detection, then hyper's HTTP/1 or HTTP/2
//! connection over the shared router, and its part in a graceful shutdown.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{extract::ConnectInfo, response::Response, routing::future::RouteFuture, Router};
use hyper::{
    body::Incoming,
    server::conn::{http1, http2},
    Request,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use pin_project_lite::pin_project;
use tokio::{net::TcpStream, sync::OwnedSemaphorePermit};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tower::Service as _;

use super::detect::{Protocol, Rewind};

/// What every connection shares, built once by the accept loop.
#[derive(Debug)]
pub(super) struct Shared {
    /// Converted once (`with_state(())`): a clone is one reference count.
    pub(super) router: Router,
    pub(super) http1: http1::Builder,
    pub(super) http2: Option<http2::Builder<TokioExecutor>>,
    pub(super) header_read_timeout: Option<Duration>,
    /// Cancelled when the server stops accepting: connections finish what
    /// they serve, then close.
    pub(super) stop: CancellationToken,
    /// Cancelled when the grace period is over: connections close at once.
    pub(super) force: CancellationToken,
    /// How far the shutdown went ([`RUNNING`], [`STOPPING`], [`FORCED`]),
    /// set before the matching token is cancelled: a connection reads this
    /// atomic on each poll instead of polling its token's future, which
    /// takes two locks.
    pub(super) phase: AtomicU8,
}

pub(super) const RUNNING: u8 = 0;
pub(super) const STOPPING: u8 = 1;
pub(super) const FORCED: u8 = 2;

/// The router as hyper calls it, with the peer's address in the request
/// extensions (`ConnectInfo<SocketAddr>`, as axum's
/// `into_make_service_with_connect_info` gives it).
#[derive(Debug, Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    // Boxed: hyper's HTTP/1 connection keeps a box for the request in
    // flight for as long as the connection lives, sized for this future.
    // The router's future is 320 bytes; boxed here it lives only while the
    // request is handled, and a stream's connection keeps 8 bytes.
    type Future = Pin<Box<RouteFuture<Infallible>>>;

    #[inline]
    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        // A router is always ready; a clone is one reference count.
        Box::pin(self.router.clone().call(req))
    }
}

/// Serves one accepted connection until it closes, or until the shutdown
/// says so. `_permit` is the connection's place under the connection limit,
/// given back when this returns.
///
/// This future is what every connection's task holds for as long as the
/// connection lives, so it is kept small: locals held across the
/// detection are few, the peer address is kept once, and the shutdown
/// signals share one slot.
pub(super) async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    _permit: Option<OwnedSemaphorePermit>,
) {
    let (io, protocol) = if shared.http2.is_some() {
        match detect(tcp, &shared).await {
            Ok(detected) => detected,
            Err(err) => {
                tracing::trace!(%peer, %err, "connection closed before a request");
                return;
            }
        }
    } else {
        (Rewind::plain(tcp), Protocol::Http1)
    };
    let service = ConnService {
        router: shared.router.clone(),
        peer,
    };
    let result = match (protocol, &shared.http2) {
        // Boxed: an HTTP/2 connection's state is large, and inline it would
        // make every HTTP/1 connection's task as large.
        (Protocol::Http2, Some(http2)) => {
            Box::pin(Graceful::new(
                http2.serve_connection(TokioIo::new(io), service),
                &shared,
            ))
            .await
        }
        _ => {
            Graceful::new(
                shared
                    .http1
                    .serve_connection(TokioIo::new(io), service)
                    .with_upgrades(),
                &shared,
            )
            .await
        }
    };
    if let Some(Err(err)) = result {
        tracing::debug!(%peer, %err, ?protocol, "connection error");
    }
}

/// The protocol, from the first bytes, within the header-read timeout
/// (after which HTTP/1's own timeout starts): a client that sends nothing
/// does not hold the connection. A shutdown ends the wait.
async fn detect(tcp: TcpStream, shared: &Shared) -> io::Result<(Rewind, Protocol)> {
    let detect = async {
        match shared.header_read_timeout {
            Some(limit) => tokio::time::timeout(limit, Rewind::detect(tcp))
                .await
                .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
            None => Rewind::detect(tcp).await,
        }
    };
    tokio::select! {
        detected = detect => detected,
        () = shared.stop.cancelled() => Err(io::ErrorKind::Interrupted.into()),
    }
}

/// A hyper connection that can be asked to finish.
trait GracefulConnection: Future<Output = hyper::Result<()>> {
    /// HTTP/1.1: close after the response in flight; HTTP/2: `GOAWAY`, no
    /// new streams, the open ones run to their end.
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl GracefulConnection for http1::UpgradeableConnection<TokioIo<Rewind>, ConnService> {
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

impl GracefulConnection for http2::Connection<TokioIo<Rewind>, ConnService, TokioExecutor> {
    fn graceful_shutdown(self: Pin<&mut Self>) {
        http2::Connection::graceful_shutdown(self);
    }
}

pin_project! {
    /// Drives a connection to its end; when the server stops, asks it to
    /// finish (the response in flight, an event stream that the
    /// `SseShutdown` ends), and when the grace period is over, drops it.
    /// Resolves to `None` when dropped. Hand-written rather than an `async
    /// fn`, which would hold the connection twice (argument and pinned
    /// local) in every connection's task.
    struct Graceful<'a, C> {
        #[pin]
        conn: C,
        // One slot for both signals: `stop`, then `force`.
        #[pin]
        signal: WaitForCancellationFuture<'a>,
        shared: &'a Shared,
        stopping: bool,
        // `signal` was polled and is waiting with this task's waker.
        armed: bool,
    }
}

impl<'a, C: GracefulConnection> Graceful<'a, C> {
    fn new(conn: C, shared: &'a Shared) -> Self {
        Self {
            conn,
            signal: shared.stop.cancelled(),
            shared,
            stopping: false,
            armed: false,
        }
    }
}

impl<C: GracefulConnection> Future for Graceful<'_, C> {
    type Output = Option<hyper::Result<()>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // Once `signal` waits, it wakes this task when its token is
        // cancelled, and the phase says so before: until then, the signal
        // need not be polled again (every event of a stream is one poll of
        // the connection). This future is only ever polled by its
        // connection's task, so the waker registered first wakes the same
        // task as any later one.
        let waiting_for = if *this.stopping { FORCED } else { STOPPING };
        if !*this.armed || this.shared.phase.load(Ordering::Acquire) >= waiting_for {
            if this.signal.as_mut().poll(cx).is_ready() {
                if *this.stopping {
                    return Poll::Ready(None);
                }
                *this.stopping = true;
                this.conn.as_mut().graceful_shutdown();
                this.signal.set(this.shared.force.cancelled());
                if this.signal.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
            }
            *this.armed = true;
        }
        this.conn.poll(cx).map(Some)
    }
}
