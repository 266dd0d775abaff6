//! One Server-Sent Events message, encoded as it is built.
//!
//! ```
//! use axum_sse::Event;
//! use std::time::Duration;
//!
//! let event = Event::new()
//!     .event("token")
//!     .id(7)
//!     .retry(Duration::from_secs(3))
//!     .data("line one\nline two");
//! assert_eq!(
//!     event.to_bytes().unwrap(),
//!     "event: token\nid: 7\nretry: 3000\ndata: line one\ndata: line two\n\n"
//! );
//! ```

use std::{
    fmt::{self, Write as _},
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

/// The first allocation of an event's buffer: most events fit, so building
/// one costs a single allocation.
const INITIAL_CAPACITY: usize = 128;

/// A Server-Sent Events message under construction.
///
/// Fields are written to the wire in the order their setters are called, each
/// as `name: value\n` with one space after the colon (`name:` alone when the
/// value is empty), and the event ends with a blank line. The event is encoded
/// while it is built: sending it costs no further formatting.
///
/// Setters never panic. `event` and `id` cannot hold a line break (that would
/// let a value inject fields of its own) and `id` cannot hold NUL: such a value
/// makes the event invalid, and sending it fails with
/// [`SseError::InvalidEvent`](crate::SseError::InvalidEvent) before anything
/// reaches the client. [`try_event`](Event::try_event) and
/// [`try_id`](Event::try_id) report the problem at once instead.
///
/// Clients dispatch an event only if it has at least one `data` line;
/// an event with only `event`, `id` or `retry` updates the client's state
/// without a visible message. `data("")` does dispatch, with empty data.
#[derive(Clone, Default)]
#[must_use = "an event does nothing until it is sent"]
pub struct Event {
    buf: BytesMut,
    invalid: Option<InvalidField>,
}

impl Event {
    /// An event with no fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the event's data.
    ///
    /// Text with line breaks (CR, LF or CRLF) becomes one `data:` line per
    /// line, which clients join back with LF. Calling `data` again appends
    /// more lines to the same event.
    ///
    /// ```
    /// # use axum_sse::Event;
    /// let event = Event::new().data("a\r\nb");
    /// assert_eq!(event.to_bytes().unwrap(), "data: a\ndata: b\n\n");
    /// ```
    pub fn data(mut self, data: impl AsRef<str>) -> Self {
        self.multiline_field("data", data.as_ref());
        self
    }

    /// Adds `data` holding `value` serialized as JSON.
    ///
    /// Compact JSON never contains a raw line break, so it is always a single
    /// `data:` line.
    ///
    /// ```
    /// # use axum_sse::Event;
    /// let event = Event::new().json(&serde_json::json!({ "token": "hi" })).unwrap();
    /// assert_eq!(event.to_bytes().unwrap(), "data: {\"token\":\"hi\"}\n\n");
    /// ```
    ///
    /// # Errors
    ///
    /// [`EventError::Json`] when `value` fails to serialize.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, EventError> {
        self.reserve(INITIAL_CAPACITY);
        let start = self.buf.len();
        self.buf.put_slice(b"data: ");
        if let Err(err) = serde_json::to_writer((&mut self.buf).writer(), value) {
            self.buf.truncate(start);
            return Err(EventError::Json(err));
        }
        self.buf.put_u8(b'\n');
        Ok(self)
    }

    /// Sets the event type (`event:`), which clients use to route the message
    /// (`addEventListener(type, ..)` in a browser).
    ///
    /// A value with CR or LF makes the event invalid; see
    /// [`try_event`](Event::try_event).
    pub fn event(mut self, event_type: impl AsRef<str>) -> Self {
        let value = event_type.as_ref();
        self.checked_field(Field::Event, |buf| buf.push_str(value));
        self
    }

    /// Sets the event type, or reports a value with CR or LF.
    ///
    /// ```
    /// # use axum_sse::{Event, EventError};
    /// let err = Event::new().try_event("a\nretry: 1").unwrap_err();
    /// assert!(matches!(err, EventError::LineBreak { .. }));
    /// ```
    ///
    /// # Errors
    ///
    /// [`EventError::LineBreak`] when the value holds CR or LF.
    pub fn try_event(self, event_type: impl AsRef<str>) -> Result<Self, EventError> {
        self.event(event_type).check()
    }

    /// Sets the event id (`id:`), which a reconnecting client sends back as
    /// `Last-Event-ID`. Anything printable works: `id(42)` writes the integer
    /// straight into the event, with no intermediate `String`.
    ///
    /// A value with CR, LF or NUL makes the event invalid; see
    /// [`try_id`](Event::try_id). An empty id resets the client's last event id.
    pub fn id(mut self, id: impl fmt::Display) -> Self {
        self.checked_field(Field::Id, |buf| {
            write!(buf, "{id}").expect("writing to memory")
        });
        self
    }

    /// Sets the event id, or reports a value with CR, LF or NUL.
    ///
    /// # Errors
    ///
    /// [`EventError::LineBreak`] or [`EventError::Nul`].
    pub fn try_id(self, id: impl fmt::Display) -> Result<Self, EventError> {
        self.id(id).check()
    }

    /// Sets the client's reconnection delay (`retry:`, in whole milliseconds).
    pub fn retry(mut self, delay: Duration) -> Self {
        let millis = delay.as_millis();
        self.checked_field(Field::Retry, |buf| {
            write!(buf, "{millis}").expect("writing to memory")
        });
        self
    }

    /// Adds a comment line (`: text`), which clients ignore. Text with line
    /// breaks becomes several comment lines; an empty comment is `:` alone.
    pub fn comment(mut self, text: impl AsRef<str>) -> Self {
        self.multiline_field("", text.as_ref());
        self
    }

    /// Reports whether every field is valid.
    ///
    /// # Errors
    ///
    /// The first problem found while the event was built.
    pub fn check(self) -> Result<Self, EventError> {
        match self.invalid {
            Some(invalid) => Err(invalid.into()),
            None => Ok(self),
        }
    }

    /// The exact bytes this event puts on the wire, blank line included.
    ///
    /// # Errors
    ///
    /// The first invalid field, as [`check`](Event::check) reports it.
    pub fn to_bytes(&self) -> Result<Bytes, EventError> {
        self.clone().into_bytes()
    }

    /// Finishes the event into the bytes it puts on the wire. Cloning the
    /// result is free, so one event can be sent to many streams.
    ///
    /// # Errors
    ///
    /// The first invalid field, as [`check`](Event::check) reports it.
    pub fn into_bytes(self) -> Result<Bytes, EventError> {
        let mut buf = self.check()?.buf;
        buf.put_u8(b'\n');
        Ok(buf.freeze())
    }

    fn reserve(&mut self, additional: usize) {
        if self.buf.capacity() == 0 {
            self.buf.reserve(additional.max(INITIAL_CAPACITY));
        } else {
            self.buf.reserve(additional);
        }
    }

    /// Writes `name: value` for a value that must stay on one line; a value
    /// that does not is removed again and recorded as the event's error.
    fn checked_field(&mut self, field: Field, write_value: impl FnOnce(&mut Writer<'_>)) {
        let name = field.name();
        self.reserve(name.len() + 16);
        let start = self.buf.len();
        self.buf.put_slice(name.as_bytes());
        self.buf.put_slice(b": ");
        let value_start = self.buf.len();
        write_value(&mut Writer(&mut self.buf));
        let value = &self.buf[value_start..];
        let problem = if memchr::memchr2(b'\r', b'\n', value).is_some() {
            Some(Problem::LineBreak)
        } else if field == Field::Id && memchr::memchr(0, value).is_some() {
            Some(Problem::Nul)
        } else {
            None
        };
        if let Some(problem) = problem {
            self.buf.truncate(start);
            self.invalid.get_or_insert(InvalidField { field, problem });
        } else if value.is_empty() {
            self.buf.truncate(value_start - 1);
            self.buf.put_u8(b'\n');
        } else {
            self.buf.put_u8(b'\n');
        }
    }

    /// Writes one `name: line` per line of `text` (a comment when `name` is
    /// empty).
    fn multiline_field(&mut self, name: &str, text: &str) {
        self.reserve(text.len() + 8);
        let mut rest = text.as_bytes();
        loop {
            let (line, next) = match memchr::memchr2(b'\r', b'\n', rest) {
                Some(at) => {
                    let skip = if rest[at..].starts_with(b"\r\n") {
                        2
                    } else {
                        1
                    };
                    (&rest[..at], Some(&rest[at + skip..]))
                }
                None => (rest, None),
            };
            self.buf.put_slice(name.as_bytes());
            self.buf.put_u8(b':');
            if !line.is_empty() {
                self.buf.put_u8(b' ');
                self.buf.put_slice(line);
            }
            self.buf.put_u8(b'\n');
            match next {
                Some(next) => rest = next,
                None => break,
            }
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("encoded", &String::from_utf8_lossy(&self.buf))
            .field("invalid", &self.invalid)
            .finish()
    }
}

/// `fmt::Write` into the event's buffer.
struct Writer<'a>(&'a mut BytesMut);

impl Writer<'_> {
    fn push_str(&mut self, s: &str) {
        self.0.put_slice(s.as_bytes());
    }
}

impl fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// A field of an event that holds a single line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// `event:`, the event type.
    Event,
    /// `id:`, the event id.
    Id,
    /// `retry:`, the reconnection delay.
    Retry,
}

impl Field {
    /// The field's name on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Id => "id",
            Self::Retry => "retry",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy)]
enum Problem {
    LineBreak,
    Nul,
}

#[derive(Debug, Clone, Copy)]
struct InvalidField {
    field: Field,
    problem: Problem,
}

impl From<InvalidField> for EventError {
    fn from(invalid: InvalidField) -> Self {
        match invalid.problem {
            Problem::LineBreak => Self::LineBreak {
                field: invalid.field,
            },
            Problem::Nul => Self::Nul {
                field: invalid.field,
            },
        }
    }
}

/// Why an [`Event`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum EventError {
    /// A single-line field (`event` or `id`) was given CR or LF.
    LineBreak {
        /// The field that was refused.
        field: Field,
    },
    /// The `id` field was given NUL, which clients ignore.
    Nul {
        /// The field that was refused.
        field: Field,
    },
    /// The value given to [`Event::json`] failed to serialize.
    Json(serde_json::Error),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineBreak { field } => {
                write!(f, "the `{field}` field of an event cannot contain CR or LF")
            }
            Self::Nul { field } => write!(f, "the `{field}` field of an event cannot contain NUL"),
            Self::Json(err) => write!(f, "event data failed to serialize as JSON: {err}"),
        }
    }
}

impl std::error::Error for EventError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Json(err) => Some(err),
            Self::LineBreak { .. } | Self::Nul { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(event: Event) -> String {
        String::from_utf8(event.into_bytes().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn fields_in_call_order_with_a_space_after_the_colon() {
        let event = Event::new().event("tick").id(12).data("abc");
        assert_eq!(wire(event), "event: tick\nid: 12\ndata: abc\n\n");
    }

    #[test]
    fn data_splits_on_every_line_ending() {
        assert_eq!(wire(Event::new().data("a\nb")), "data: a\ndata: b\n\n");
        assert_eq!(wire(Event::new().data("a\rb")), "data: a\ndata: b\n\n");
        assert_eq!(wire(Event::new().data("a\r\nb")), "data: a\ndata: b\n\n");
        assert_eq!(
            wire(Event::new().data("a\n\r\n\rb")),
            "data: a\ndata:\ndata:\ndata: b\n\n"
        );
        assert_eq!(wire(Event::new().data("a\n")), "data: a\ndata:\n\n");
    }

    #[test]
    fn empty_data_still_dispatches() {
        assert_eq!(wire(Event::new().data("")), "data:\n\n");
    }

    #[test]
    fn leading_spaces_survive_the_one_space_clients_strip() {
        assert_eq!(wire(Event::new().data("  x")), "data:   x\n\n");
    }

    #[test]
    fn data_called_twice_appends_lines() {
        assert_eq!(
            wire(Event::new().data("a").data("b")),
            "data: a\ndata: b\n\n"
        );
    }

    #[test]
    fn json_is_one_data_line_even_with_newlines_in_strings() {
        let event = Event::new()
            .event("token")
            .json(&serde_json::json!({ "token": "a\nb" }))
            .unwrap();
        assert_eq!(wire(event), "event: token\ndata: {\"token\":\"a\\nb\"}\n\n");
    }

    #[test]
    fn json_error_is_reported() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1u8], 1);
        let err = Event::new().json(&map).unwrap_err();
        assert!(matches!(err, EventError::Json(_)), "{err}");
    }

    #[test]
    fn comments_and_retry() {
        assert_eq!(wire(Event::new().comment("")), ":\n\n");
        assert_eq!(wire(Event::new().comment("hi\nthere")), ": hi\n: there\n\n");
        assert_eq!(
            wire(Event::new().retry(Duration::from_millis(1500))),
            "retry: 1500\n\n"
        );
    }

    #[test]
    fn empty_id_resets_the_clients_last_event_id() {
        assert_eq!(wire(Event::new().id("")), "id:\n\n");
    }

    #[test]
    fn line_breaks_in_single_line_fields_are_refused() {
        for bad in ["a\nb", "a\rb", "a\r\nb", "\n"] {
            let err = Event::new().event(bad).data("x").into_bytes().unwrap_err();
            assert!(
                matches!(
                    err,
                    EventError::LineBreak {
                        field: Field::Event
                    }
                ),
                "{err}"
            );
            let err = Event::new().id(bad).data("x").into_bytes().unwrap_err();
            assert!(
                matches!(err, EventError::LineBreak { field: Field::Id }),
                "{err}"
            );
        }
    }

    #[test]
    fn nul_in_id_is_refused_but_allowed_in_data() {
        let err = Event::new().try_id("a\0b").unwrap_err();
        assert!(matches!(err, EventError::Nul { field: Field::Id }), "{err}");
        assert_eq!(wire(Event::new().event("a\0b")), "event: a\0b\n\n");
        assert_eq!(wire(Event::new().data("a\0b")), "data: a\0b\n\n");
    }

    #[test]
    fn an_invalid_field_leaves_nothing_on_the_wire_and_keeps_the_first_error() {
        let event = Event::new().id("x\0").event("a\nb").data("d");
        assert_eq!(&event.buf[..], b"data: d\n");
        let err = event.check().unwrap_err();
        assert!(matches!(err, EventError::Nul { .. }));
        assert_eq!(
            err.to_string(),
            "the `id` field of an event cannot contain NUL"
        );
    }
}
