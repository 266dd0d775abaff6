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
//!     event.encode().unwrap().as_bytes(),
//!     b"event: token\nid: 7\nretry: 3000\ndata: line one\ndata: line two\n\n"
//! );
//! ```

use std::{fmt, time::Duration};

use bytes::Bytes;
use serde::Serialize;

mod error;
mod id;
mod scan;
mod spare;

use self::error::{InvalidField, Problem};
pub use self::{
    error::{EventError, EventField},
    id::EventIdValue,
};

/// The first allocation of an event's buffer: most events fit.
const INITIAL_CAPACITY: usize = 128;

/// Spare bytes an encoded event may keep before its buffer is trimmed.
const SPARE_KEPT: usize = 64;

/// A Server-Sent Events message under construction.
///
/// Fields are written to the wire in the order their setters are called, each
/// as `name: value\n` with one space after the colon (`name:` alone when the
/// value is empty), and the event ends with a blank line. The event is encoded
/// while it is built: sending it costs no further formatting.
///
/// An event of only comments and `retry` (or of nothing) is not a block: it
/// goes out without the blank line, so its lines join the next event's
/// block. `EventSource` reads it the same either way (comments are skipped,
/// and `retry` sets the reconnection time when its line is parsed, WHATWG
/// HTML 9.2.6), but loose parsers (the `openai` SDKs) dispatch every block
/// once an id was seen, and would hand the application an empty event.
///
/// ```
/// # use axum_sse::Event;
/// # use std::time::Duration;
/// let keepalive = Event::new().comment("still working");
/// assert_eq!(keepalive.encode().unwrap().as_bytes(), b": still working\n");
/// let advice = Event::new().retry(Duration::from_secs(2));
/// assert_eq!(advice.encode().unwrap().as_bytes(), b"retry: 2000\n");
/// ```
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
///
/// Sending an event costs no allocation: its bytes are copied into the
/// stream's queue, and its buffer goes on to build the next event on the
/// same thread, so a loop of sends allocates nothing.
/// [`encode`](Event::encode) finishes it into an [`EncodedEvent`] to send
/// the same bytes to many streams.
#[derive(Clone)]
#[must_use = "an event does nothing until it is sent"]
pub struct Event {
    /// Behind a pointer, so moving the event from one builder call to the
    /// next moves one word. `None` only once the event is finished.
    encoding: Option<Box<Encoding>>,
}

/// An event's bytes so far, and what was refused.
#[derive(Clone, Default)]
struct Encoding {
    /// The wire form, always ending with the blank line's `\n`.
    buf: Vec<u8>,
    invalid: Option<InvalidField>,
    /// Whether a `data`, `event` or `id` line was written: only then is the
    /// event a block that the blank line ends. Comments and `retry` alone
    /// go out without it.
    opens_block: bool,
}

impl Encoding {
    /// The wire form: with the closing blank line if the event is a block.
    #[inline]
    fn wire(&self) -> &[u8] {
        if self.opens_block {
            &self.buf
        } else {
            &self.buf[..self.buf.len().saturating_sub(1)]
        }
    }
}

/// The encoding goes on to build the next event on this thread.
impl Drop for Event {
    #[inline]
    fn drop(&mut self) {
        if let Some(encoding) = self.encoding.take() {
            spare::give_back(encoding);
        }
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl Event {
    /// An event with no fields.
    #[inline]
    pub fn new() -> Self {
        let mut encoding = spare::take();
        encoding.buf.push(b'\n');
        Self {
            encoding: Some(encoding),
        }
    }

    /// The encoding, which a live event always has.
    #[inline]
    fn encoding(&mut self) -> &mut Encoding {
        self.encoding.get_or_insert_with(spare::take)
    }

    /// The finished encoding, taken out of the event.
    fn into_encoding(mut self) -> Box<Encoding> {
        self.encoding.take().unwrap_or_else(spare::take)
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
    /// assert_eq!(event.encode().unwrap().as_bytes(), b"data: a\ndata: b\n\n");
    /// ```
    #[inline]
    pub fn data(mut self, data: impl AsRef<str>) -> Self {
        self.encoding().text_field(DATA, data.as_ref());
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
    /// assert_eq!(event.encode().unwrap().as_bytes(), b"data: {\"token\":\"hi\"}\n\n");
    /// ```
    ///
    /// # Errors
    ///
    /// [`EventError::Json`] when `value` fails to serialize.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, EventError> {
        let buf = &mut self.encoding().buf;
        // The line takes the place of the closing `\n`.
        let start = buf.len().saturating_sub(1);
        buf.truncate(start);
        buf.extend_from_slice(b"data: ");
        if let Err(err) = serde_json::to_writer(&mut Writer(buf), value) {
            buf.truncate(start);
            buf.push(b'\n');
            return Err(EventError::Json(Box::new(err)));
        }
        buf.extend_from_slice(b"\n\n");
        self.encoding().opens_block = true;
        Ok(self)
    }

    /// Sets the event type (`event:`), which clients use to route the message
    /// (`addEventListener(type, ..)` in a browser).
    ///
    /// A value with CR or LF makes the event invalid; see
    /// [`try_event`](Event::try_event).
    #[inline]
    pub fn event(mut self, event_type: impl AsRef<str>) -> Self {
        self.encoding()
            .single_line_field(EventField::Event, event_type.as_ref());
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
    /// `Last-Event-ID`. Integers are written straight into the event, with no
    /// intermediate `String`; text works as it is; anything else printable
    /// goes through [`format_args!`]:
    ///
    /// ```
    /// # use axum_sse::Event;
    /// let by_number = Event::new().id(42_u64);
    /// let by_text = Event::new().id("order-17");
    /// let by_display = Event::new().id(format_args!("{}-{}", "order", 17));
    /// assert_eq!(by_display.encode().unwrap().as_bytes(), b"id: order-17\n\n");
    /// ```
    ///
    /// A value with CR, LF or NUL makes the event invalid; see
    /// [`try_id`](Event::try_id). An empty id resets the client's last event id.
    #[inline]
    pub fn id(mut self, id: impl EventIdValue) -> Self {
        let encoding = self.encoding();
        id.with_str(|id| encoding.single_line_field(EventField::Id, id));
        self
    }

    /// Sets the event id, or reports a value with CR, LF or NUL.
    ///
    /// # Errors
    ///
    /// [`EventError::LineBreak`] or [`EventError::Nul`].
    pub fn try_id(self, id: impl EventIdValue) -> Result<Self, EventError> {
        self.id(id).check()
    }

    /// Sets the client's reconnection delay (`retry:`, in whole milliseconds;
    /// the WHATWG "reconnection time"). An event with nothing else but
    /// comments ends no block (see [`Event`]).
    pub fn retry(mut self, delay: Duration) -> Self {
        let mut digits = itoa::Buffer::new();
        self.encoding()
            .single_line_field(EventField::Retry, digits.format(delay.as_millis()));
        self
    }

    /// Adds a comment line (`: text`), which clients ignore. Text with line
    /// breaks becomes several comment lines; an empty comment is `:` alone.
    /// An event of only comments (and `retry`) ends no block (see [`Event`]),
    /// so a keep-alive sent by hand never looks like an event to a loose
    /// parser.
    pub fn comment(mut self, text: impl AsRef<str>) -> Self {
        self.encoding().text_field(COMMENT, text.as_ref());
        self
    }

    /// Reports whether every field is valid.
    ///
    /// # Errors
    ///
    /// The first problem found while the event was built.
    pub fn check(self) -> Result<Self, EventError> {
        match self.invalid() {
            Some(invalid) => Err(invalid.into()),
            None => Ok(self),
        }
    }

    /// Finishes the event into the bytes it puts on the wire. Cloning the
    /// result is free, so one event can be sent to many streams.
    ///
    /// # Errors
    ///
    /// The first invalid field, as [`check`](Event::check) reports it.
    pub fn encode(self) -> Result<EncodedEvent, EventError> {
        let mut encoding = self.check()?.into_encoding();
        if !encoding.opens_block {
            encoding.buf.pop();
        }
        let buf = &mut encoding.buf;
        // An encoded event is meant to be kept and shared (a history, a
        // fan-out): it should not keep the builder's spare room. Such a
        // buffer is copied out and goes on to build the next event.
        let bytes = if buf.capacity() - buf.len() > SPARE_KEPT {
            Bytes::copy_from_slice(buf)
        } else {
            Bytes::from(std::mem::take(buf))
        };
        spare::give_back(encoding);
        Ok(EncodedEvent { bytes })
    }

    /// [`encode`](Self::encode), for an event the crate sends on the
    /// user's behalf: it must also have a `data` field, or clients disagree
    /// on whether it is an event at all ([`EventError::NoData`]).
    pub(crate) fn encode_dispatchable(self) -> Result<EncodedEvent, EventError> {
        self.check_dispatchable()?;
        self.encode()
    }

    /// The first invalid field, or [`EventError::NoData`] for an event with
    /// no `data` field; see [`encode_dispatchable`](Self::encode_dispatchable).
    pub(crate) fn check_dispatchable(&self) -> Result<(), EventError> {
        if let Some(err) = self.error() {
            return Err(err);
        }
        // Each field is a line of its own, its name at the line's start.
        let wire = self.wire();
        if wire.starts_with(b"data:") || memchr::memmem::find(wire, b"\ndata:").is_some() {
            Ok(())
        } else {
            Err(EventError::NoData)
        }
    }

    /// The bytes on the wire, whether valid or not.
    #[inline]
    pub(crate) fn wire(&self) -> &[u8] {
        self.encoding.as_deref().map_or(&[], Encoding::wire)
    }

    /// The first problem found while the event was built, if any.
    #[inline]
    pub(crate) fn error(&self) -> Option<EventError> {
        self.invalid().map(EventError::from)
    }

    #[inline]
    fn invalid(&self) -> Option<InvalidField> {
        self.encoding
            .as_deref()
            .and_then(|encoding| encoding.invalid)
    }
}

impl Encoding {
    /// Writes `name: value` for a value that must stay on one line; a value
    /// that does not is left out and recorded as the event's error.
    #[inline(always)]
    fn single_line_field(&mut self, field: EventField, value: &str) {
        let value = value.as_bytes();
        // Only an id refuses NUL.
        if scan::holds_forbidden(value, field == EventField::Id) {
            self.refuse(field, value);
        } else {
            self.append_line(field.line_name(), value);
        }
    }

    /// Records why `value` was left out of the event.
    #[cold]
    fn refuse(&mut self, field: EventField, value: &[u8]) {
        let problem = if scan::find_line_break(value).is_some() {
            Problem::LineBreak
        } else {
            Problem::Nul
        };
        self.invalid.get_or_insert(InvalidField { field, problem });
    }

    /// Writes one `name: line` per line of `text` (CR, LF and CRLF all end
    /// a line).
    #[inline(always)]
    fn text_field(&mut self, name: LineName, text: &str) {
        let text = text.as_bytes();
        match scan::find_line_break(text) {
            None => self.append_line(name, text),
            Some(at) => self.split_lines(name, text, at),
        }
    }

    /// [`text_field`](Self::text_field) for text with a line break at
    /// `first_break`.
    fn split_lines(&mut self, name: LineName, text: &[u8], first_break: usize) {
        let mut rest = text;
        let mut at = Some(first_break);
        while let Some(end) = at {
            self.append_line(name, &rest[..end]);
            let skip = if rest[end..].starts_with(b"\r\n") {
                2
            } else {
                1
            };
            rest = &rest[end + skip..];
            at = memchr::memchr2(b'\r', b'\n', rest);
        }
        self.append_line(name, rest);
    }

    /// Appends the line `name: value` (`name:` for an empty value), which
    /// takes the place of the closing `\n` and is followed by it.
    #[inline(always)]
    fn append_line(&mut self, name: LineName, value: &[u8]) {
        self.opens_block |= name.opens_block;
        let name = if value.is_empty() {
            name.alone
        } else {
            name.before_value
        };
        self.buf.pop();
        self.buf.reserve(name.len() + value.len() + 2);
        self.buf.extend_from_slice(name);
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(b"\n\n");
    }
}

/// How a line starts: `name: ` before a value, `name:` alone; and whether
/// the line makes the event a block the blank line must end.
#[derive(Clone, Copy)]
struct LineName {
    before_value: &'static [u8],
    alone: &'static [u8],
    opens_block: bool,
}

const DATA: LineName = LineName {
    before_value: b"data: ",
    alone: b"data:",
    opens_block: true,
};

const COMMENT: LineName = LineName {
    before_value: b": ",
    alone: b":",
    opens_block: false,
};

/// A finished event: the exact bytes it puts on the wire, its blank line
/// included (an event of only comments and `retry` has none: see
/// [`Event`]). Cloning is free (the bytes are shared), so one event can go to
/// any number of streams without being encoded again.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    bytes: Bytes,
}

impl EncodedEvent {
    /// The bytes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes on the wire, shared.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Bytes already in the wire form of one event (made from an
    /// [`EncodedEvent`] by rewriting a field the crate wrote itself).
    pub(crate) fn from_wire(bytes: Bytes) -> Self {
        Self { bytes }
    }
}

impl fmt::Debug for EncodedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EncodedEvent")
            .field(&String::from_utf8_lossy(&self.bytes))
            .finish()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("encoded", &String::from_utf8_lossy(self.wire()))
            .field("invalid", &self.invalid())
            .finish()
    }
}

/// `io::Write` into the event's buffer, for serde_json.
struct Writer<'a>(&'a mut Vec<u8>);

impl std::io::Write for Writer<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl EventField {
    /// How the field's line starts, with and without a value.
    const fn line_name(self) -> LineName {
        match self {
            Self::Event => LineName {
                before_value: b"event: ",
                alone: b"event:",
                opens_block: true,
            },
            Self::Id => LineName {
                before_value: b"id: ",
                alone: b"id:",
                opens_block: true,
            },
            // The reconnection time is taken when the line is parsed.
            Self::Retry => LineName {
                before_value: b"retry: ",
                alone: b"retry:",
                opens_block: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(event: Event) -> String {
        String::from_utf8(event.encode().unwrap().as_bytes().to_vec()).unwrap()
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
        let EventError::Json(source) = &err else {
            panic!("not a JSON error: {err}");
        };
        // The serializer's error is the source, reachable by downcasting as
        // the variant's docs say, and its message is in ours.
        let json = source.downcast_ref::<serde_json::Error>().unwrap();
        assert!(err.to_string().ends_with(&json.to_string()), "{err}");
        let chained = std::error::Error::source(&err).unwrap();
        assert_eq!(chained.to_string(), json.to_string());
    }

    #[test]
    fn events_larger_than_the_first_allocation_are_whole() {
        let data = "x".repeat(1000);
        let event = Event::new()
            .event("big")
            .id(u64::MAX)
            .data(&data)
            .comment("end");
        assert_eq!(
            wire(event),
            format!("event: big\nid: 18446744073709551615\ndata: {data}\n: end\n\n")
        );
    }

    #[test]
    fn an_encoded_event_keeps_no_spare_room() {
        let data = "x".repeat(4096);
        let encoded = Event::new().data(&data).encode().unwrap();
        assert_eq!(encoded.as_bytes().len(), 4096 + 8);
        let spare = encoded.into_bytes().try_into_mut().unwrap();
        assert!(spare.capacity() - spare.len() <= SPARE_KEPT);
    }

    #[test]
    fn ids_of_every_kind() {
        assert_eq!(wire(Event::new().id(-5_i8)), "id: -5\n\n");
        assert_eq!(wire(Event::new().id(7_usize)), "id: 7\n\n");
        assert_eq!(wire(Event::new().id(String::from("s"))), "id: s\n\n");
        assert_eq!(
            wire(Event::new().id(std::sync::Arc::<str>::from("a"))),
            "id: a\n\n"
        );
        let value = 3.5;
        assert_eq!(
            wire(Event::new().id(format_args!("v{value}"))),
            "id: v3.5\n\n"
        );
        let err = Event::new().try_id(format_args!("{}", "a\nb")).unwrap_err();
        assert!(matches!(
            err,
            EventError::LineBreak {
                field: EventField::Id
            }
        ));
    }

    #[test]
    fn comments_and_retry() {
        // Comments and `retry` alone end no block.
        assert_eq!(wire(Event::new()), "");
        assert_eq!(wire(Event::new().comment("")), ":\n");
        assert_eq!(wire(Event::new().comment("hi\nthere")), ": hi\n: there\n");
        assert_eq!(
            wire(Event::new().retry(Duration::from_millis(1500))),
            "retry: 1500\n"
        );
        assert_eq!(
            wire(Event::new().comment("c").retry(Duration::from_millis(1))),
            ": c\nretry: 1\n"
        );
        // Any other field makes a block, wherever it comes.
        assert_eq!(wire(Event::new().comment("c").data("")), ": c\ndata:\n\n");
        assert_eq!(
            wire(Event::new().retry(Duration::ZERO).id(1)),
            "retry: 0\nid: 1\n\n"
        );
        assert_eq!(
            wire(Event::new().comment("c").event("e")),
            ": c\nevent: e\n\n"
        );
        let json = Event::new().comment("c").json(&1).unwrap();
        assert_eq!(wire(json), ": c\ndata: 1\n\n");
    }

    #[test]
    fn empty_id_resets_the_clients_last_event_id() {
        assert_eq!(wire(Event::new().id("")), "id:\n\n");
    }

    #[test]
    fn line_breaks_in_single_line_fields_are_refused() {
        for bad in ["a\nb", "a\rb", "a\r\nb", "\n"] {
            let err = Event::new().event(bad).data("x").encode().unwrap_err();
            assert!(
                matches!(
                    err,
                    EventError::LineBreak {
                        field: EventField::Event
                    }
                ),
                "{err}"
            );
            let err = Event::new().id(bad).data("x").encode().unwrap_err();
            assert!(
                matches!(
                    err,
                    EventError::LineBreak {
                        field: EventField::Id
                    }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn nul_in_id_is_refused_but_allowed_in_data() {
        let err = Event::new().try_id("a\0b").unwrap_err();
        assert!(
            matches!(
                err,
                EventError::Nul {
                    field: EventField::Id
                }
            ),
            "{err}"
        );
        assert_eq!(wire(Event::new().event("a\0b")), "event: a\0b\n\n");
        assert_eq!(wire(Event::new().data("a\0b")), "data: a\0b\n\n");
    }

    #[test]
    fn an_invalid_field_leaves_nothing_on_the_wire_and_keeps_the_first_error() {
        let event = Event::new().id("x\0").event("a\nb").data("d");
        assert_eq!(event.wire(), b"data: d\n\n");
        let err = event.check().unwrap_err();
        assert!(matches!(err, EventError::Nul { .. }));
        assert_eq!(
            err.to_string(),
            "the `id` field of an event cannot contain NUL"
        );
    }
}
