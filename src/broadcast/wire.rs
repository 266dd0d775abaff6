//! Channel events on the wire: encoded once when published, shared after.

use std::time::Duration;

use crate::{EncodedEvent, Event};

use super::{
    error::IdError,
    position::{self, MAX_ID_LEN},
    BroadcastError,
};

/// `event`, finished, after checking that it carries no `id` of its own.
pub(super) fn encode_without_id(event: Event) -> Result<EncodedEvent, BroadcastError> {
    let encoded = event.encode_dispatchable()?;
    if id_lines(encoded.as_bytes()) > 0 {
        return Err(BroadcastError::IdNotAllowed);
    }
    Ok(encoded)
}

/// `event` with the channel's `id` appended, finished: the one encode of a
/// published event that [`prepare`] found without an id of its own.
pub(super) fn encode_with_id(
    event: Event,
    id: impl crate::EventIdValue,
) -> Result<EncodedEvent, BroadcastError> {
    Ok(event.id(id).encode()?)
}

/// A publish, as the backends take it.
pub(super) enum Prepared {
    /// No id of its own: the channel gives it one (with [`encode_with_id`]).
    Channel(Event),
    /// The publisher's own id (checked by [`publisher_id`]), the event's
    /// wire form without it, and as the publisher encoded it.
    Publisher {
        id: String,
        stored: Vec<u8>,
        encoded: EncodedEvent,
    },
}

/// Checks `event` and sorts it by whether it carries a publisher id.
pub(super) fn prepare(event: Event) -> Result<Prepared, BroadcastError> {
    event.check_dispatchable()?;
    // Events encode every field on a line of its own ending in LF.
    let mut ids = event.wire().split(|&b| b == b'\n').filter_map(id_value);
    let Some(id) = ids.next() else {
        return Ok(Prepared::Channel(event));
    };
    if ids.next().is_some() {
        return Err(IdError::new("the event sets `id` more than once").into());
    }
    let id = publisher_id(id)?.to_owned();
    let encoded = event.encode()?;
    let stored = encoded
        .as_bytes()
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| id_value(line.strip_suffix(b"\n").unwrap_or(line)).is_none())
        .flatten()
        .copied()
        .collect();
    Ok(Prepared::Publisher {
        id,
        stored,
        encoded,
    })
}

/// A publisher's event on the wire: its fields, then its `id`, as the
/// channel writes every event.
pub(super) fn with_publisher_id(stored: &[u8], id: &str, encoded: EncodedEvent) -> EncodedEvent {
    // The stored form is the event's own, so it always rebuilds; if it ever
    // did not, the event as the publisher encoded it is as valid.
    with_id(stored, id).unwrap_or(encoded)
}

/// The value of an `id` line (`id: value` or `id:`), `None` for other lines.
fn id_value(line: &[u8]) -> Option<&[u8]> {
    if line == b"id:" {
        return Some(b"");
    }
    line.strip_prefix(b"id: ")
}

/// `id` if it can be a publisher's id: 1 to [`MAX_ID_LEN`] bytes of visible
/// ASCII, not of the form of the channel's own ids.
pub(super) fn publisher_id(id: &[u8]) -> Result<&str, IdError> {
    if id.is_empty() {
        return Err(IdError::new(
            "the id is empty (an empty id resets the client's last event id)",
        ));
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::new("the id is longer than 64 bytes"));
    }
    if !id.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(IdError::new(
            "the id holds a byte that is not visible ASCII (0x21 to 0x7E)",
        ));
    }
    let id = std::str::from_utf8(id).expect("ASCII");
    if position::split_id(id).is_some() {
        return Err(IdError::new(
            "the id has the form of the channel's own ids (11 characters, a dot, a position)",
        ));
    }
    Ok(id)
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
    fn the_missed_event_refuses_an_id() {
        let err = encode_without_id(Event::new().id(3).data("x")).unwrap_err();
        assert!(matches!(err, BroadcastError::IdNotAllowed));
    }

    fn publisher(event: Event) -> (String, String) {
        match prepare(event).unwrap() {
            Prepared::Publisher { id, stored, .. } => (id, String::from_utf8(stored).unwrap()),
            Prepared::Channel(_) => panic!("no publisher id found"),
        }
    }

    #[test]
    fn a_publisher_id_is_taken_out_of_the_stored_form() {
        let (id, stored) = publisher(Event::new().id("order-17").event("e").data("id: 1"));
        assert_eq!(id, "order-17");
        assert_eq!(stored, "event: e\ndata: id: 1\n\n");
        assert_eq!(
            with_id(stored.as_bytes(), &id).unwrap().as_bytes(),
            b"event: e\ndata: id: 1\nid: order-17\n\n"
        );
        let longest = "~".repeat(MAX_ID_LEN);
        assert_eq!(publisher(Event::new().id(&longest).data("x")).0, longest);
        assert!(matches!(
            prepare(Event::new().data("id: 2")).unwrap(),
            Prepared::Channel(_)
        ));
    }

    #[test]
    fn publisher_ids_are_short_visible_ascii_and_not_the_channels_form() {
        let too_long = "x".repeat(MAX_ID_LEN + 1);
        let channel_form = position::format_id(position::Generation::random(), 5);
        for bad in [
            "",
            too_long.as_str(),
            "with space",
            "caf\u{e9}",
            "tab\there",
            "del\u{7f}",
            channel_form.as_str(),
        ] {
            let err = prepare(Event::new().id(bad).data("x")).err().unwrap();
            assert!(
                matches!(err, BroadcastError::InvalidId(_)),
                "{bad:?}: {err}"
            );
        }
        let err = prepare(Event::new().id("a").id("b").data("x"))
            .err()
            .unwrap();
        assert!(matches!(err, BroadcastError::InvalidId(_)), "{err}");
        // A field the event builder refused stays that error.
        let err = prepare(Event::new().id("a\nb").data("x")).err().unwrap();
        assert!(matches!(err, BroadcastError::InvalidEvent(_)), "{err}");
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
