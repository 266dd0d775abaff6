//! The control events of a response's log: written by the store, never by a
//! producer, and stripped before a client sees them.
//!
//! A control event is `event: axum-sse-resumable` with one `data` line
//! naming what it marks, and the log's `id` like every other event:
//!
//! ```text
//! event: axum-sse-resumable
//! data: start
//! id: …
//! ```
//!
//! Events are encoded one field per line, each line ending in LF, so the
//! line `event: axum-sse-resumable` is found exactly; the sink refuses a
//! producer's event with that type, so every event of the log with it is
//! the store's own, on whatever instance reads the log.

use bytes::{BufMut, BytesMut};

use crate::{EncodedEvent, Event};

/// The reserved event type of control events.
pub(super) const RESERVED_TYPE: &str = "axum-sse-resumable";

const RESERVED_LINE: &[u8] = b"event: axum-sse-resumable";

/// What a control event marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Control {
    /// The first event of every log: the log exists.
    Start,
    /// The producer returned: the response is complete.
    End,
    /// The response was cancelled, timed out or outgrew its bound: it ends
    /// here, incomplete.
    Cut,
    /// Put first by the broadcast when a resume id is not in the log.
    Missed,
}

impl Control {
    fn name(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::End => "end",
            Self::Cut => "cut",
            Self::Missed => "missed",
        }
    }

    /// The event to publish (the log adds its id).
    pub(super) fn event(self) -> Event {
        Event::new().event(RESERVED_TYPE).data(self.name())
    }

    /// Whether the control event ends the response.
    pub(super) fn is_end(self) -> bool {
        matches!(self, Self::End | Self::Cut)
    }
}

/// Whether an event's wire form carries the reserved type.
pub(super) fn is_reserved(wire: &[u8]) -> bool {
    lines(wire).any(|line| line == RESERVED_LINE)
}

/// Whether an event's wire form sets the `id` field.
pub(super) fn has_id(wire: &[u8]) -> bool {
    lines(wire).any(|line| line.starts_with(b"id:") || line == b"id")
}

/// The control event `event` is, or `None` for a producer's event.
pub(super) fn parse(event: &EncodedEvent) -> Option<Control> {
    let wire = event.as_bytes();
    if !is_reserved(wire) {
        return None;
    }
    let data = lines(wire).find_map(|line| line.strip_prefix(b"data: "));
    Some(match data {
        Some(b"start") => Control::Start,
        Some(b"end") => Control::End,
        Some(b"missed") => Control::Missed,
        // An unknown marker (a newer version's) ends the response rather
        // than leaking to the client.
        _ => Control::Cut,
    })
}

/// The `id` of an encoded event: its last `id:` line, as the log wrote it.
pub(super) fn event_id(event: &EncodedEvent) -> Option<&str> {
    lines(event.as_bytes())
        .rev()
        .find_map(|line| line.strip_prefix(b"id:"))
        .map(|value| value.strip_prefix(b" ").unwrap_or(value))
        .and_then(|value| std::str::from_utf8(value).ok())
}

/// `event` with the log's `id` written as `{response}/{id}`, the form a
/// client sees (see the module docs of `resumable`, "Event ids"); an event
/// without an id is left as it is.
pub(super) fn qualified(event: EncodedEvent, response: &str) -> EncodedEvent {
    let wire = event.as_bytes();
    // The start of the last `id:` line (the log writes it last).
    let line_starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', wire).map(|at| at + 1));
    let Some(at) = line_starts.rev().find(|&at| wire[at..].starts_with(b"id:")) else {
        return event;
    };
    let value = &wire[at + 3..];
    let value = value.strip_prefix(b" ").unwrap_or(value);
    let mut out = BytesMut::with_capacity(wire.len() + response.len() + 2);
    out.put_slice(&wire[..at]);
    out.put_slice(b"id: ");
    out.put_slice(response.as_bytes());
    out.put_u8(b'/');
    out.put_slice(value);
    EncodedEvent::from_wire(out.freeze())
}

/// The response a client's last event id names, and the log's id in it:
/// `{response}/{log id}`.
pub(super) fn split_qualified(last_event_id: &str) -> Option<(&str, &str)> {
    last_event_id.split_once('/')
}

fn lines(wire: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    wire.split(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_events_round_trip_and_producer_events_are_not_control() {
        for control in [Control::Start, Control::End, Control::Cut, Control::Missed] {
            let encoded = control.event().id("g-1").encode().unwrap();
            assert_eq!(parse(&encoded), Some(control));
            assert_eq!(event_id(&encoded), Some("g-1"));
        }
        let plain = Event::new()
            .event("token")
            .data("event: axum-sse-resumable")
            .comment("event: axum-sse-resumable")
            .id("7")
            .encode()
            .unwrap();
        assert_eq!(parse(&plain), None);
        assert_eq!(event_id(&plain), Some("7"));
        let lookalike = Event::new().event("axum-sse-resumable-x").encode().unwrap();
        assert_eq!(parse(&lookalike), None);
        assert_eq!(
            Control::Start.event().encode().unwrap().as_bytes(),
            b"event: axum-sse-resumable\ndata: start\n\n"
        );
    }

    #[test]
    fn qualified_ids_name_their_response() {
        let event = Event::new().event("t").data("id: not a field").id("Ab.3");
        let event = qualified(event.encode().unwrap(), "r1");
        assert_eq!(
            event.as_bytes(),
            b"event: t\ndata: id: not a field\nid: r1/Ab.3\n\n"
        );
        assert_eq!(split_qualified("r1/Ab.3"), Some(("r1", "Ab.3")));
        assert_eq!(split_qualified("Ab.3"), None);
        let priming = qualified(Event::new().data("").id("x").encode().unwrap(), "r");
        assert_eq!(priming.as_bytes(), b"data:\nid: r/x\n\n");
        let missed = Event::new().event("missed").data("").encode().unwrap();
        assert_eq!(qualified(missed.clone(), "r"), missed);
    }
}
