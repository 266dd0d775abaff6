//! Channel events on the wire: encoded once when published, shared after.

use std::time::Duration;

use crate::{EncodedEvent, Event};

use super::BroadcastError;

/// `event`, finished, after checking that it carries no `id` of its own.
pub(super) fn encode_without_id(event: Event) -> Result<EncodedEvent, BroadcastError> {
    let encoded = event.encode()?;
    if id_lines(encoded.as_bytes()) > 0 {
        return Err(BroadcastError::IdNotAllowed);
    }
    Ok(encoded)
}

/// `event` with the channel's `id` appended, finished: the one encode of a
/// published event. Refuses an event that already had an id.
pub(super) fn encode_with_id(
    event: Event,
    id: impl crate::EventIdValue,
) -> Result<EncodedEvent, BroadcastError> {
    let encoded = event.id(id).encode()?;
    if id_lines(encoded.as_bytes()) > 1 {
        return Err(BroadcastError::IdNotAllowed);
    }
    Ok(encoded)
}

/// How many lines of an encoded event set the `id` field. Events encode every
/// field on a line of its own ending in LF, so this is exact.
fn id_lines(wire: &[u8]) -> usize {
    wire.split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b"id:") || *line == b"id")
        .count()
}

/// The stored wire form of an event (made by [`encode_without_id`], read back
/// from another instance) with `id` added. `None` for bytes that no
/// [`Event`] can produce.
///
/// The bytes are rebuilt through the [`Event`] builder, which reproduces
/// them field by field; once the stored bytes can be wrapped as an
/// [`EncodedEvent`] directly, this becomes `id: ...` plus the stored bytes.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(super) fn with_id(wire: &[u8], id: &str) -> Option<EncodedEvent> {
    let mut event = Event::new();
    for line in wire.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = std::str::from_utf8(value).ok()?;
        event = match name {
            b"" => event.comment(value),
            b"event" => event.event(value),
            b"data" => event.data(value),
            b"retry" => event.retry(Duration::from_millis(value.parse().ok()?)),
            _ => return None,
        };
    }
    event.id(id).encode().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_event_with_an_id() {
        let err = encode_without_id(Event::new().id(3).data("x")).unwrap_err();
        assert!(matches!(err, BroadcastError::IdNotAllowed));
        let err = encode_with_id(Event::new().id("").data("x"), 4).unwrap_err();
        assert!(matches!(err, BroadcastError::IdNotAllowed));
    }

    #[test]
    fn data_that_looks_like_an_id_is_data() {
        let encoded = encode_with_id(Event::new().data("x\nid: 9"), 4).unwrap();
        assert_eq!(
            encoded.as_bytes(),
            b"data: x\ndata: id: 9\nid: 4\n\n".as_slice()
        );
    }

    #[test]
    fn rebuilding_reproduces_every_field() {
        let event = Event::new()
            .comment("")
            .comment("note: a")
            .event("tick")
            .retry(Duration::from_millis(1500))
            .data("")
            .data(" two\r\nlines:  ");
        let stored = encode_without_id(event.clone()).unwrap();
        let rebuilt = with_id(stored.as_bytes(), "17-0").unwrap();
        assert_eq!(rebuilt, event.id("17-0").encode().unwrap());
    }

    #[test]
    fn bytes_no_event_makes_are_refused() {
        assert!(with_id(b"id: 1\n\n", "2-0").is_none());
        assert!(with_id(b"event: a\rb\n\n", "2-0").is_none());
        assert!(with_id(b"retry: soon\n\n", "2-0").is_none());
        assert!(with_id(b"data: \xff\n\n", "2-0").is_none());
    }
}
