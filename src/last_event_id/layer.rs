//! `LastEventIdLayer`: the rules for reading a request's last event id.

use std::sync::Arc;

use http::{HeaderMap, Uri};
use percent_encoding::percent_decode_str;
use tower::Layer;

use super::{
    service::LastEventIdService, InvalidLastEventId, LastEventId, DEFAULT_MAX_LEN, LAST_EVENT_ID,
};

/// Reads and checks the `Last-Event-ID` of each request for the
/// [`LastEventId`] extractor and [`SseWriter::last_event_id`].
/// See the [module docs](crate::last_event_id).
///
/// It applies wherever it is mounted, around an [`SseLayer`](crate::SseLayer)
/// or inside it. Of two on one request, the id handlers see follows the
/// rules of the one closest to the handler; each one with
/// [`reject_invalid`](Self::reject_invalid) answers `400` to an id invalid
/// under its own rules. See [layer ordering](crate#layer-ordering-and-tower-http).
///
/// [`SseWriter::last_event_id`]: crate::SseWriter::last_event_id
#[derive(Debug, Clone)]
#[must_use]
pub struct LastEventIdLayer {
    query_param: Option<Arc<str>>,
    max_len: usize,
    pub(super) reject_invalid: bool,
}

impl Default for LastEventIdLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl LastEventIdLayer {
    /// The default rules: the header only, at most 1024 bytes, an invalid id
    /// treated as absent.
    pub fn new() -> Self {
        Self {
            query_param: None,
            max_len: DEFAULT_MAX_LEN,
            reject_invalid: false,
        }
    }

    /// Also reads the query parameter `name` when the header is absent,
    /// decoded as browsers encode it (`URLSearchParams`: `+` is a space,
    /// `%XX` a byte; so `?lastEventId=order+17` is `order 17`).
    /// Default: none.
    pub fn query_param(mut self, name: impl Into<String>) -> Self {
        self.query_param = Some(name.into().into());
        self
    }

    /// Sets the longest id accepted, in bytes. Default: 1024.
    pub fn max_len(mut self, bytes: usize) -> Self {
        self.max_len = bytes;
        self
    }

    /// Answers `400 Bad Request` to a request with an invalid id, before the
    /// handler runs. Default: an invalid id is treated as absent.
    pub fn reject_invalid(mut self) -> Self {
        self.reject_invalid = true;
        self
    }

    /// The id of a request: the header, else the query parameter if one is
    /// set. A present but invalid header is not replaced by the query.
    pub(super) fn read(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Option<LastEventId>, InvalidLastEventId> {
        if let Some(value) = headers.get(LAST_EVENT_ID) {
            return self.check(value.as_bytes());
        }
        let (Some(name), Some(query)) = (&self.query_param, uri.query()) else {
            return Ok(None);
        };
        let Some(raw) = query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(key) == name.as_bytes()).then_some(value)
        }) else {
            return Ok(None);
        };
        if raw.len() > self.max_len.saturating_mul(3) {
            // Even fully percent-encoded it would be too long: do not decode.
            return Err(InvalidLastEventId::TooLong {
                max_len: self.max_len,
            });
        }
        self.check(&form_decode(raw))
    }

    fn check(&self, bytes: &[u8]) -> Result<Option<LastEventId>, InvalidLastEventId> {
        if bytes.len() > self.max_len {
            return Err(InvalidLastEventId::TooLong {
                max_len: self.max_len,
            });
        }
        let id = std::str::from_utf8(bytes).map_err(|_| InvalidLastEventId::NotUtf8)?;
        if id.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
            return Err(InvalidLastEventId::ForbiddenCharacter);
        }
        Ok((!id.is_empty()).then(|| LastEventId(id.to_owned())))
    }
}

/// Decodes a query string name or value as browsers encode it
/// (`URLSearchParams`, the WHATWG URL standard's
/// `application/x-www-form-urlencoded`): `+` is a space, `%XX` a byte.
fn form_decode(raw: &str) -> Vec<u8> {
    if raw.contains('+') {
        // Before percent-decoding, so that `%2B` stays a plus.
        percent_decode_str(&raw.replace('+', " ")).collect()
    } else {
        percent_decode_str(raw).collect()
    }
}

impl<S> Layer<S> for LastEventIdLayer {
    type Service = LastEventIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LastEventIdService::new(inner, Some(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        layer: &LastEventIdLayer,
        header: Option<&[u8]>,
        uri: &str,
    ) -> Result<Option<String>, InvalidLastEventId> {
        let mut headers = HeaderMap::new();
        if let Some(value) = header {
            headers.insert(LAST_EVENT_ID, http::HeaderValue::from_bytes(value).unwrap());
        }
        layer
            .read(&headers, &uri.parse().unwrap())
            .map(|id| id.map(|LastEventId(id)| id))
    }

    #[test]
    fn the_header_wins_over_the_query() {
        let layer = LastEventIdLayer::new().query_param("lastEventId");
        assert_eq!(
            read(&layer, Some(b"7"), "/?lastEventId=3"),
            Ok(Some("7".into()))
        );
        assert_eq!(
            read(&layer, None, "/?a=1&lastEventId=3"),
            Ok(Some("3".into()))
        );
        assert_eq!(
            read(&layer, None, "/?lastEventId=%E2%9C%93%20x"),
            Ok(Some("✓ x".into()))
        );
        assert_eq!(read(&layer, None, "/?other=3"), Ok(None));
        assert_eq!(
            read(&LastEventIdLayer::new(), None, "/?lastEventId=3"),
            Ok(None)
        );
    }

    #[test]
    fn the_query_is_decoded_as_browsers_encode_it() {
        // `new URLSearchParams({ lastEventId: "order 17+1/ü" }).toString()`
        let layer = LastEventIdLayer::new().query_param("lastEventId");
        assert_eq!(
            read(&layer, None, "/?lastEventId=order+17%2B1%2F%C3%BC"),
            Ok(Some("order 17+1/ü".into()))
        );
        assert_eq!(
            read(&layer, None, "/?a=1&lastEventId=order%2017"),
            Ok(Some("order 17".into()))
        );
        // Names are decoded too.
        assert_eq!(
            read(&layer, None, "/?last%45ventId=7"),
            Ok(Some("7".into()))
        );
        let spaced = LastEventIdLayer::new().query_param("last id");
        assert_eq!(read(&spaced, None, "/?last+id=8"), Ok(Some("8".into())));
    }

    #[test]
    fn empty_is_absent() {
        let layer = LastEventIdLayer::new().query_param("lastEventId");
        assert_eq!(read(&layer, Some(b""), "/"), Ok(None));
        assert_eq!(read(&layer, None, "/?lastEventId="), Ok(None));
        assert_eq!(read(&layer, None, "/?lastEventId"), Ok(None));
    }

    #[test]
    fn invalid_ids_are_reported() {
        let layer = LastEventIdLayer::new().query_param("id").max_len(8);
        assert_eq!(
            read(&layer, Some(b"\xff\xfe"), "/"),
            Err(InvalidLastEventId::NotUtf8)
        );
        assert_eq!(
            read(&layer, Some(b"123456789"), "/"),
            Err(InvalidLastEventId::TooLong { max_len: 8 })
        );
        for bad in ["/?id=a%0Ab", "/?id=a%0Db", "/?id=a%00b"] {
            assert_eq!(
                read(&layer, None, bad),
                Err(InvalidLastEventId::ForbiddenCharacter),
                "{bad}"
            );
        }
        assert_eq!(
            read(&layer, None, "/?id=%FF"),
            Err(InvalidLastEventId::NotUtf8)
        );
        let long = format!("/?id={}", "%41".repeat(9));
        assert_eq!(
            read(&layer, None, &long),
            Err(InvalidLastEventId::TooLong { max_len: 8 })
        );
    }
}
