//! One connection: protocol detection, then hyper's HTTP/1 or HTTP/2
//! connection over the shared router, and its part in a graceful shutdown.

use std::{convert::Infallible, net::SocketAddr, pin::pin, sync::Arc, time::Duration};

use axum::{extract::ConnectInfo, response::Response, routing::future::RouteFuture, Router};
use hyper::{
    body::Incoming,
    server::conn::{http1, http2},
    Request,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{net::TcpStream, sync::OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
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
}

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
    type Future = RouteFuture<Infallible>;

    #[inline]
    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        // A router is always ready; a clone is one reference count.
        self.router.clone().call(req)
    }
}

/// Serves one accepted connection until it closes, or until the shutdown
/// says so. `_permit` is the connection's place under the connection limit,
/// given back when this returns.
pub(super) async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    _permit: Option<OwnedSemaphorePermit>,
) {
    let service = ConnService {
        router: shared.router.clone(),
        peer,
    };
    let (io, protocol) = if shared.http2.is_some() {
        // The first bytes tell the protocol, within the header-read timeout
        // (after which HTTP/1's own timeout starts): a client that sends
        // nothing does not hold the connection.
        let detect = async {
            match shared.header_read_timeout {
                Some(limit) => tokio::time::timeout(limit, Rewind::detect(tcp))
                    .await
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
                None => Rewind::detect(tcp).await,
            }
        };
        let detected = tokio::select! {
            detected = detect => detected,
            () = shared.stop.cancelled() => return,
        };
        match detected {
            Ok(detected) => detected,
            Err(err) => {
                tracing::trace!(%peer, %err, "connection closed before a request");
                return;
            }
        }
    } else {
        (Rewind::plain(tcp), Protocol::Http1)
    };
    match (protocol, &shared.http2) {
        // Boxed: an HTTP/2 connection's state is large, and inline it would
        // make every HTTP/1 connection's task as large.
        (Protocol::Http2, Some(http2)) => {
            Box::pin(serve_http2(http2, io, service, &shared)).await;
        }
        _ => serve_http1(io, service, &shared).await,
    }
}

async fn serve_http1(io: Rewind, service: ConnService, shared: &Shared) {
    let peer = service.peer;
    let conn = shared
        .http1
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shared.stop.cancelled() => {
            // Ends the connection after the response in flight (the event
            // stream, which the `SseShutdown` ends) has been written.
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                result = conn.as_mut() => result,
                () = shared.force.cancelled() => return,
            }
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "HTTP/1 connection error");
    }
}

async fn serve_http2(
    http2: &http2::Builder<TokioExecutor>,
    io: Rewind,
    service: ConnService,
    shared: &Shared,
) {
    let peer = service.peer;
    let conn = http2.serve_connection(TokioIo::new(io), service);
    let mut conn = pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shared.stop.cancelled() => {
            // GOAWAY: no new streams, the open ones run to their end.
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                result = conn.as_mut() => result,
                () = shared.force.cancelled() => return,
            }
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "HTTP/2 connection error");
    }
}
