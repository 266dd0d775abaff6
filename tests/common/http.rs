//! A real server on loopback and a real HTTP client reading as bytes arrive.

use std::{net::SocketAddr, time::Duration};

use axum::Router;
use bytes::{Bytes, BytesMut};
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpSocket, TcpStream},
    time::Instant,
};

/// The body frames `app` answers `request` with, each with the whole
/// seconds since the request when it arrived, until the body ends or
/// `until` has passed. For tests under a paused clock.
pub async fn frames(
    app: Router,
    request: Request<axum::body::Body>,
    until: Duration,
) -> Vec<(u64, String)> {
    use tower::ServiceExt;
    let start = Instant::now();
    let response = app.oneshot(request).await.unwrap();
    let mut body = response.into_body();
    let mut frames = Vec::new();
    while let Ok(Some(frame)) = tokio::time::timeout_at(start + until, body.frame()).await {
        let data = frame.unwrap().into_data().unwrap();
        let at = start.elapsed().as_secs();
        frames.push((at, String::from_utf8(data.to_vec()).unwrap()));
    }
    frames
}

/// Serves `app` with `axum::serve` on `127.0.0.1:0`.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Serves `app` and sends it one `GET path`: the preamble of most tests.
pub async fn serve_and_get(app: Router, path: &str) -> Response<Incoming> {
    fetch(serve(app).await, path).await
}

/// A `GET` over a fresh HTTP/1.1 connection.
pub async fn fetch(addr: SocketAddr, path: &str) -> Response<Incoming> {
    request(
        addr,
        Request::get(path).body(Empty::<Bytes>::new()).unwrap(),
    )
    .await
}

pub async fn request(addr: SocketAddr, mut req: Request<Empty<Bytes>>) -> Response<Incoming> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    req.headers_mut()
        .insert(http::header::HOST, addr.to_string().parse().unwrap());
    sender.send_request(req).await.unwrap()
}

/// A `GET` over a fresh HTTP/2 connection with prior knowledge (h2c).
pub async fn get_h2(addr: SocketAddr, path: &str) -> Response<Incoming> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let uri = format!("http://{addr}{path}");
    let req = Request::get(uri)
        .version(Version::HTTP_2)
        .body(Empty::<Bytes>::new())
        .unwrap();
    sender.send_request(req).await.unwrap()
}

/// The next data the client receives, or `None` at the end of the body.
pub async fn next_data(body: &mut Incoming) -> Option<Bytes> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("no data within 10 s")?
            .expect("body error");
        if let Ok(data) = frame.into_data() {
            return Some(data);
        }
    }
}

/// Reads until the received bytes end with `suffix`, and returns them all.
pub async fn read_until(body: &mut Incoming, suffix: &str) -> String {
    let mut received = BytesMut::new();
    while !received.ends_with(suffix.as_bytes()) {
        match next_data(body).await {
            Some(data) => received.extend_from_slice(&data),
            None => panic!(
                "the body ended before {suffix:?}; received {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
    String::from_utf8(received.to_vec()).unwrap()
}

/// Everything until the end of the body.
pub async fn read_to_end(body: Incoming) -> String {
    let bytes = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .expect("body did not end within 10 s")
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Serves `app` on `127.0.0.1:0` with the peer address available to
/// handlers and layers (`ConnectInfo`, for per-client limits).
pub async fn serve_with_peer_addr(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A client that sends `GET path` and then reads nothing, with a small
/// receive buffer.
pub async fn never_reading_client(addr: SocketAddr, path: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut client = socket.connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
    client.write_all(request.as_bytes()).await.unwrap();
    client
}
