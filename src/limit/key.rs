use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::request::Parts;

/// How a request names its client.
pub(super) type KeyFn = Arc<dyn Fn(&Parts) -> Option<ClientKey> + Send + Sync>;

/// Names the client of a request, for the per-client limit of a
/// [`StreamLimitLayer`](super::StreamLimitLayer): an IP address, a token, a
/// user id.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use axum_sse::ClientKey;
///
/// let by_ip = ClientKey::from(IpAddr::V4(Ipv4Addr::LOCALHOST));
/// let by_user = ClientKey::from("user-17");
/// assert_ne!(by_ip, by_user);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(Repr);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repr {
    Ip(IpAddr),
    Number(u64),
    Bytes(Bytes),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        Self(Repr::Ip(ip))
    }
}

impl From<u64> for ClientKey {
    fn from(id: u64) -> Self {
        Self(Repr::Number(id))
    }
}

impl From<Bytes> for ClientKey {
    fn from(bytes: Bytes) -> Self {
        Self(Repr::Bytes(bytes))
    }
}

impl From<Vec<u8>> for ClientKey {
    fn from(bytes: Vec<u8>) -> Self {
        Self(Repr::Bytes(bytes.into()))
    }
}

impl From<String> for ClientKey {
    fn from(text: String) -> Self {
        Self(Repr::Bytes(text.into()))
    }
}

impl From<&str> for ClientKey {
    fn from(text: &str) -> Self {
        Self(Repr::Bytes(Bytes::copy_from_slice(text.as_bytes())))
    }
}

/// The default key: the peer's IP address, if the app is served with
/// `ConnectInfo<SocketAddr>`.
pub(super) fn peer_ip(parts: &Parts) -> Option<ClientKey> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => Some(addr.ip().into()),
        None => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "max_streams_per_client needs the peer address: serve the app with \
                     `into_make_service_with_connect_info::<SocketAddr>()` or set a client_key; \
                     the per-client limit is not applied"
                );
            }
            None
        }
    }
}
