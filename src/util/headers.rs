//! The response headers every SSE stream needs.

use http::{header, HeaderMap, HeaderName, HeaderValue, Version};

static X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
pub(crate) const TEXT_EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");

/// Whether a response is an event stream (`text/event-stream`, any
/// parameters, any case).
pub(crate) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// Adds what an event stream needs and is missing: the content type,
/// `Cache-Control: no-cache, no-transform` (`no-transform` keeps compressing
/// proxies and dev servers, which honour it, from buffering the stream),
/// `X-Accel-Buffering: no` (nginx would otherwise hold events back), and `Connection: keep-alive` when the request came over
/// HTTP/1.x (the header is illegal in HTTP/2 and later). Values the
/// application set itself are kept.
pub(crate) fn insert_sse_headers(headers: &mut HeaderMap, request_version: Option<Version>) {
    headers
        .entry(header::CONTENT_TYPE)
        .or_insert(TEXT_EVENT_STREAM);
    add_no_transform(headers);
    headers
        .entry(X_ACCEL_BUFFERING.clone())
        .or_insert(HeaderValue::from_static("no"));
    if matches!(request_version, Some(Version::HTTP_10 | Version::HTTP_11)) {
        headers
            .entry(header::CONNECTION)
            .or_insert(HeaderValue::from_static("keep-alive"));
    }
}

/// `Cache-Control: no-cache, no-transform`, or `no-transform` added to the
/// application's own value (axum's `Sse` sets `no-cache`): a compressing
/// proxy that transforms the stream buffers it, and no event stream wants
/// that. The application's other directives are kept.
fn add_no_transform(headers: &mut HeaderMap) {
    let Some(value) = headers.get(header::CACHE_CONTROL) else {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-transform"),
        );
        return;
    };
    let has_no_transform = value.to_str().map_or(true, |text| {
        text.split(',')
            .any(|directive| directive.trim().eq_ignore_ascii_case("no-transform"))
    });
    if has_no_transform {
        return;
    }
    let mut combined = value.as_bytes().to_vec();
    combined.extend_from_slice(b", no-transform");
    if let Ok(combined) = HeaderValue::from_bytes(&combined) {
        headers.insert(header::CACHE_CONTROL, combined);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_event_stream_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!is_event_stream(&headers));
        for value in [
            "text/event-stream",
            "Text/Event-Stream; charset=utf-8",
            " text/event-stream ;charset=utf-8",
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert!(is_event_stream(&headers), "{value}");
        }
        for value in ["text/html", "text/event-streams", ""] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert!(!is_event_stream(&headers), "{value}");
        }
    }

    #[test]
    fn connection_header_only_on_http1() {
        for (version, expected) in [
            (Version::HTTP_10, true),
            (Version::HTTP_11, true),
            (Version::HTTP_2, false),
            (Version::HTTP_3, false),
        ] {
            let mut headers = HeaderMap::new();
            insert_sse_headers(&mut headers, Some(version));
            assert_eq!(
                headers.contains_key(header::CONNECTION),
                expected,
                "{version:?}"
            );
            assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache, no-transform");
            assert_eq!(headers["x-accel-buffering"], "no");
        }
    }

    #[test]
    fn the_applications_own_values_are_kept_and_gain_no_transform() {
        for (own, sent) in [
            ("no-store", "no-store, no-transform"),
            ("no-cache", "no-cache, no-transform"),
            ("No-Transform, private", "No-Transform, private"),
            ("no-cache,no-transform", "no-cache,no-transform"),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(own));
            insert_sse_headers(&mut headers, None);
            assert_eq!(headers[header::CACHE_CONTROL], sent, "{own}");
        }
    }
}
