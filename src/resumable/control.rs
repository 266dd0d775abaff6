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
}
