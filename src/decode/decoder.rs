//! The push-style decoder core.

use std::collections::VecDeque;
use std::mem;
use std::time::Duration;

use bytes::{Buf, Bytes};

use super::{DecodeError, DecodedEvent};

/// The UTF-8 encoding of U+FEFF BYTE ORDER MARK.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Something queued by [`Decoder::feed`] or [`Decoder::finish`].
#[derive(Debug)]
enum Input {
    Data(Bytes),
    End,
}

/// Push-style event stream decoder without I/O: feed it chunks, pull events.
///
/// Chunks may be split anywhere. [`next_event`](Self::next_event) returns
/// the events of the complete lines fed so far, one per call, then
/// `Ok(None)` until more input arrives. [`finish`](Self::finish) marks the
/// end of the stream, whose incomplete last line and undispatched event are
/// then discarded, as the spec requires.
///
/// ```
/// use axum_sse::decode::{DecodedEvent, Decoder};
///
/// let mut decoder = Decoder::new();
/// decoder.feed("id: 7\ndata: one\n\ndata: tw");
/// assert_eq!(decoder.next_event()?, Some(DecodedEvent::new("message", "one", "7")));
/// assert_eq!(decoder.next_event()?, None); // "data: tw" is not complete yet
///
/// decoder.feed("o\n\ndata: never dispatched\n");
/// assert_eq!(decoder.next_event()?, Some(DecodedEvent::new("message", "two", "7")));
/// decoder.finish();
/// assert_eq!(decoder.next_event()?, None);
/// assert_eq!(decoder.last_event_id(), "7");
/// # Ok::<(), axum_sse::decode::DecodeError>(())
/// ```
///
/// # Limits and errors
///
/// A line longer than [`max_line_len`](Self::max_line_len) (default
/// [`DEFAULT_MAX_LINE_LEN`](Self::DEFAULT_MAX_LINE_LEN)) or an event whose
/// data grows past [`max_event_len`](Self::max_event_len) (default
/// [`DEFAULT_MAX_EVENT_LEN`](Self::DEFAULT_MAX_EVENT_LEN)) makes
/// `next_event` return an error once, at the point of the stream where it
/// happens, whatever the chunking. The decoder then drops the rest of that
/// stream, so memory stays bounded: input fed later is ignored until
/// [`finish`](Self::finish), which resets the decoder for a new stream (if
/// `finish` was called before the error surfaced, input fed after it is
/// already the new stream).
///
/// # Reuse across reconnections
///
/// After `finish`, the next chunk fed starts a new stream (its leading byte
/// order mark is skipped again), while [`last_event_id`](Self::last_event_id)
/// and [`retry`](Self::retry) are kept, like an `EventSource`'s last event ID
/// string and reconnection time: the new stream's last event ID buffer starts
/// from the last event ID string, so an `id` of a block the old stream never
/// finished is forgotten.
#[derive(Debug)]
pub struct Decoder {
    input: VecDeque<Input>,
    state: State,
}

/// Everything but the input queue, so both can be borrowed at once.
#[derive(Debug)]
struct State {
    max_line_len: usize,
    max_event_len: usize,
    /// How many bytes of a leading BOM were seen; `BOM.len()` once past it.
    bom_seen: usize,
    /// The last line ended with CR at the end of a chunk: skip a leading LF.
    skip_lf: bool,
    /// The start of a line split across chunks.
    line: Vec<u8>,
    /// The data buffer, as bytes: UTF-8 decoding commutes with joining on
    /// `\n`, so it is decoded once per event.
    data: Vec<u8>,
    event_type: String,
    /// The spec's last event ID buffer: set by `id` fields.
    id_buffer: String,
    /// The spec's last event ID string: the buffer as of the latest
    /// dispatch (empty line), kept across streams.
    last_event_id: String,
    /// A valid `retry` of the current block.
    block_retry: Option<Duration>,
    retry: Option<Duration>,
    /// A limit error was returned; input is ignored until `finish`.
    failed: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// The default [`max_line_len`](Self::max_line_len): 1 MiB.
    pub const DEFAULT_MAX_LINE_LEN: usize = 1024 * 1024;
    /// The default [`max_event_len`](Self::max_event_len): 4 MiB.
    pub const DEFAULT_MAX_EVENT_LEN: usize = 4 * 1024 * 1024;

    /// A decoder with the default limits
    /// ([`DEFAULT_MAX_LINE_LEN`](Self::DEFAULT_MAX_LINE_LEN),
    /// [`DEFAULT_MAX_EVENT_LEN`](Self::DEFAULT_MAX_EVENT_LEN)).
    ///
    /// ```
    /// let decoder = axum_sse::decode::Decoder::new();
    /// assert_eq!(decoder.last_event_id(), "");
    /// assert_eq!(decoder.retry(), None);
    /// ```
    pub fn new() -> Self {
        Self {
            input: VecDeque::new(),
            state: State {
                max_line_len: Self::DEFAULT_MAX_LINE_LEN,
                max_event_len: Self::DEFAULT_MAX_EVENT_LEN,
                bom_seen: 0,
                skip_lf: false,
                line: Vec::new(),
                data: Vec::new(),
                event_type: String::new(),
                id_buffer: String::new(),
                last_event_id: String::new(),
                block_retry: None,
                retry: None,
                failed: false,
            },
        }
    }

    /// Sets the longest line accepted, in bytes without the line ending
    /// (default [`DEFAULT_MAX_LINE_LEN`](Self::DEFAULT_MAX_LINE_LEN), 1 MiB).
    /// A longer line is a [`DecodeError::LineTooLong`]; at most this many
    /// bytes of a line split across chunks are buffered.
    ///
    /// ```
    /// use axum_sse::decode::{DecodeError, Decoder};
    ///
    /// let mut decoder = Decoder::new().max_line_len(8);
    /// decoder.feed(": this comment is too long");
    /// assert_eq!(decoder.next_event(), Err(DecodeError::LineTooLong { limit: 8 }));
    /// ```
    pub fn max_line_len(mut self, n: usize) -> Self {
        self.state.max_line_len = n;
        self
    }

    /// Sets the largest event data accepted, in bytes, counting one byte per
    /// `data` line for the `\n` that ends it in the data buffer (default
    /// [`DEFAULT_MAX_EVENT_LEN`](Self::DEFAULT_MAX_EVENT_LEN), 4 MiB). More is
    /// a [`DecodeError::EventTooLarge`].
    ///
    /// ```
    /// use axum_sse::decode::{DecodeError, Decoder};
    ///
    /// let mut decoder = Decoder::new().max_event_len(8);
    /// decoder.feed("data: 1234\ndata: 567\n"); // 5 + 4 bytes
    /// assert_eq!(decoder.next_event(), Err(DecodeError::EventTooLarge { limit: 8 }));
    /// ```
    pub fn max_event_len(mut self, n: usize) -> Self {
        self.state.max_event_len = n;
        self
    }

    /// Queues a chunk of the stream. It is not copied: complete lines are
    /// parsed where they are, only a line split across chunks is buffered.
    /// Ignored after an error until [`finish`](Self::finish).
    ///
    /// ```
    /// use axum_sse::decode::Decoder;
    /// use bytes::Bytes;
    ///
    /// let mut decoder = Decoder::new();
    /// decoder.feed(Bytes::from_static(b"data: a\n"));
    /// decoder.feed(vec![b'\n']);
    /// assert_eq!(decoder.next_event().unwrap().unwrap().data, "a");
    /// ```
    pub fn feed(&mut self, chunk: impl Into<Bytes>) {
        let chunk = chunk.into();
        if !chunk.is_empty() && !self.state.failed {
            self.input.push_back(Input::Data(chunk));
        }
    }

    /// Marks the end of the stream. Events of the complete lines fed before
    /// are still returned by [`next_event`](Self::next_event); the incomplete
    /// last line and an undispatched event are discarded. Input fed
    /// afterwards is a new stream; the last event ID (of the last dispatch)
    /// and retry are kept. After an error, `finish` resets the decoder at
    /// once.
    ///
    /// ```
    /// use axum_sse::decode::Decoder;
    ///
    /// let mut decoder = Decoder::new();
    /// decoder.feed("id: 1\ndata: one\n\nid: 2\ndata: unterminated block\n");
    /// assert_eq!(decoder.next_event().unwrap().unwrap().data, "one");
    /// decoder.finish();
    /// assert_eq!(decoder.next_event().unwrap(), None);
    /// // Event 2 was never dispatched: a client resuming from here must ask
    /// // for what follows event 1, or event 2 is lost.
    /// assert_eq!(decoder.last_event_id(), "1");
    /// ```
    pub fn finish(&mut self) {
        if self.state.failed {
            self.state.failed = false;
            self.state.end_of_stream();
        } else {
            self.input.push_back(Input::End);
        }
    }

    /// Returns the next event of the input fed so far, `Ok(None)` when more
    /// input is needed, or a limit error (once; see the
    /// [type-level docs](Self#limits-and-errors)).
    ///
    /// ```
    /// use axum_sse::decode::Decoder;
    ///
    /// let mut decoder = Decoder::new();
    /// decoder.feed("data: 1\n\ndata: 2\n\n");
    /// let mut seen = Vec::new();
    /// while let Some(event) = decoder.next_event()? {
    ///     seen.push(event.data);
    /// }
    /// assert_eq!(seen, ["1", "2"]);
    /// # Ok::<(), axum_sse::decode::DecodeError>(())
    /// ```
    pub fn next_event(&mut self) -> Result<Option<DecodedEvent>, DecodeError> {
        while let Some(input) = self.input.front_mut() {
            let result = match input {
                Input::Data(chunk) => {
                    let result = self.state.process(chunk);
                    if chunk.is_empty() {
                        self.input.pop_front();
                    }
                    result
                }
                Input::End => {
                    self.input.pop_front();
                    self.state.end_of_stream();
                    Ok(None)
                }
            };
            match result {
                Ok(None) => {}
                Ok(Some(event)) => return Ok(Some(event)),
                Err(e) => {
                    // Drop the rest of this stream; if its end was queued
                    // already, what follows is a new stream.
                    match self.input.iter().position(|i| matches!(i, Input::End)) {
                        Some(end) => {
                            self.input.drain(..=end);
                            self.state.end_of_stream();
                        }
                        None => {
                            self.input.clear();
                            self.state.failed = true;
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// The last event ID string, as the spec's `EventSource` keeps it: the
    /// last event ID buffer as of the latest dispatch, that is the latest
    /// valid `id` field of a block that was ended by an empty line and
    /// returned by [`next_event`](Self::next_event); `""` if none (or if it
    /// was empty). This is the ID to resume from (`Last-Event-ID`): it never
    /// names an event that was not dispatched.
    ///
    /// Following the spec's "dispatch the event" step, an empty line sets it
    /// even when the block has no data and so dispatches no event.
    ///
    /// ```
    /// use axum_sse::decode::Decoder;
    ///
    /// let mut decoder = Decoder::new();
    /// decoder.feed("id: 42\n\n"); // an id-only block dispatches no event...
    /// assert_eq!(decoder.next_event().unwrap(), None);
    /// assert_eq!(decoder.last_event_id(), "42"); // ...but sets the ID
    ///
    /// decoder.feed("id: 43\ndata: not yet dispatched\n");
    /// assert_eq!(decoder.next_event().unwrap(), None);
    /// assert_eq!(decoder.last_event_id(), "42"); // not until its empty line
    /// ```
    pub fn last_event_id(&self) -> &str {
        &self.state.last_event_id
    }

    /// The reconnection time set by the latest valid `retry` field, if any.
    ///
    /// As the spec says, a `retry` field takes effect when its line is
    /// parsed, even in a block that is never dispatched (unlike `id`).
    ///
    /// ```
    /// use axum_sse::decode::Decoder;
    /// use std::time::Duration;
    ///
    /// let mut decoder = Decoder::new();
    /// decoder.feed("retry: 2500\nretry: 1e3\n");
    /// assert_eq!(decoder.next_event().unwrap(), None);
    /// assert_eq!(decoder.retry(), Some(Duration::from_millis(2500)));
    /// ```
    pub fn retry(&self) -> Option<Duration> {
        self.state.retry
    }
}

impl State {
    /// Processes `chunk` up to the next dispatched event or error,
    /// advancing it past what was consumed.
    fn process(&mut self, chunk: &mut Bytes) -> Result<Option<DecodedEvent>, DecodeError> {
        let (consumed, result) = self.scan(chunk);
        chunk.advance(consumed);
        result
    }

    /// Returns how many bytes of `buf` were consumed, and the outcome.
    fn scan(&mut self, buf: &[u8]) -> (usize, Result<Option<DecodedEvent>, DecodeError>) {
        let mut pos = 0;
        while self.bom_seen < BOM.len() {
            match buf.get(pos) {
                None => return (pos, Ok(None)),
                Some(&b) if b == BOM[self.bom_seen] => {
                    self.bom_seen += 1;
                    pos += 1;
                }
                Some(_) => {
                    // Not a BOM after all: what matched starts the first line.
                    self.line.extend_from_slice(&BOM[..self.bom_seen]);
                    self.bom_seen = BOM.len();
                }
            }
        }
        if self.skip_lf && pos < buf.len() {
            self.skip_lf = false;
            if buf[pos] == b'\n' {
                pos += 1;
            }
        }
        loop {
            let rest = &buf[pos..];
            let Some(end) = memchr::memchr2(b'\n', b'\r', rest) else {
                if self.line.len() + rest.len() > self.max_line_len {
                    return (buf.len(), Err(self.line_too_long()));
                }
                self.line.extend_from_slice(rest);
                return (buf.len(), Ok(None));
            };
            pos += end + 1;
            if rest[end] == b'\r' {
                match buf.get(pos) {
                    Some(b'\n') => pos += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            let result = if self.line.is_empty() {
                self.process_line(&rest[..end])
            } else if self.line.len() + end > self.max_line_len {
                Err(self.line_too_long())
            } else {
                let mut line = mem::take(&mut self.line);
                line.extend_from_slice(&rest[..end]);
                let result = self.process_line(&line);
                line.clear();
                self.line = line;
                result
            };
            if !matches!(result, Ok(None)) {
                return (pos, result);
            }
        }
    }

    fn line_too_long(&self) -> DecodeError {
        DecodeError::LineTooLong {
            limit: self.max_line_len,
        }
    }

    /// Processes one complete line, without its line ending.
    fn process_line(&mut self, line: &[u8]) -> Result<Option<DecodedEvent>, DecodeError> {
        if line.len() > self.max_line_len {
            return Err(self.line_too_long());
        }
        // ':' and ' ' are ASCII, never part of a multi-byte sequence, so
        // splitting before decoding gives the same text as the spec's
        // decode-then-split.
        let (name, value) = match memchr::memchr(b':', line) {
            Some(0) => return Ok(None),
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None if line.is_empty() => return Ok(self.dispatch()),
            None => (line, &[][..]),
        };
        match name {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max_event_len {
                    return Err(DecodeError::EventTooLarge {
                        limit: self.max_event_len,
                    });
                }
                self.data.reserve(value.len() + 1);
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&String::from_utf8_lossy(value));
            }
            b"id" if memchr::memchr(0, value).is_none() => {
                self.id_buffer.clear();
                self.id_buffer.push_str(&String::from_utf8_lossy(value));
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let ms = value.iter().fold(0u64, |ms, &d| {
                    ms.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                self.retry = Some(Duration::from_millis(ms));
                self.block_retry = self.retry;
            }
            _ => {}
        }
        Ok(None)
    }

    /// Handles an empty line: dispatches the event, if any, and resets the
    /// buffers of the block.
    fn dispatch(&mut self) -> Option<DecodedEvent> {
        // "Set the last event ID string of the event source to the value of
        // the last event ID buffer", before the check for data.
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        let retry = self.block_retry.take();
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        self.data.pop();
        let data = match String::from_utf8(mem::take(&mut self.data)) {
            Ok(data) => data,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        let event = if self.event_type.is_empty() {
            String::from("message")
        } else {
            mem::take(&mut self.event_type)
        };
        Some(DecodedEvent {
            event,
            data,
            last_event_id: self.last_event_id.clone(),
            retry,
        })
    }

    /// Discards what is left of the stream and gets ready for a new one,
    /// whose last event ID buffer starts as the last event ID string.
    fn end_of_stream(&mut self) {
        if self.id_buffer != self.last_event_id {
            self.id_buffer.clone_from(&self.last_event_id);
        }
        self.bom_seen = 0;
        self.skip_lf = false;
        self.line.clear();
        self.data.clear();
        self.event_type.clear();
        self.block_retry = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(decoder: &mut Decoder) -> Vec<DecodedEvent> {
        let mut out = Vec::new();
        while let Some(ev) = decoder.next_event().unwrap() {
            out.push(ev);
        }
        out
    }

    #[test]
    fn per_event_retry() {
        let mut d = Decoder::new();
        d.feed("retry: 5\ndata: a\n\ndata: b\n\nretry: 7\n\ndata: c\nretry: 9\n\n");
        let evs = all(&mut d);
        let retries: Vec<_> = evs.iter().map(|e| e.retry.map(|r| r.as_millis())).collect();
        assert_eq!(retries, [Some(5), None, Some(9)]);
        assert_eq!(d.retry(), Some(Duration::from_millis(9)));
    }

    #[test]
    fn retry_saturates() {
        let mut d = Decoder::new();
        d.feed("retry: 99999999999999999999999999999\n");
        assert_eq!(d.next_event(), Ok(None));
        assert_eq!(d.retry(), Some(Duration::from_millis(u64::MAX)));
    }

    #[test]
    fn events_already_fed_survive_finish_and_new_stream_strips_bom() {
        let mut d = Decoder::new();
        d.feed("id: x\ndata: 1\n\ndata: 2");
        d.finish();
        d.feed("\u{feff}data: 3\n\n");
        let evs = all(&mut d);
        assert_eq!(
            evs,
            [
                DecodedEvent::new("message", "1", "x"),
                DecodedEvent::new("message", "3", "x"),
            ]
        );
    }

    #[test]
    fn partial_line_buffer_stays_bounded() {
        let limit = 64 * 1024;
        let mut d = Decoder::new().max_line_len(limit);
        d.feed("data: ok\n\n");
        assert_eq!(all(&mut d).len(), 1);
        let chunk = Bytes::from(vec![b'x'; 4096]);
        let mut fed = 0;
        let err = loop {
            d.feed(chunk.clone());
            fed += chunk.len();
            match d.next_event() {
                Ok(None) => assert!(fed <= limit),
                Ok(Some(_)) => panic!("no event expected"),
                Err(e) => break e,
            }
            assert!(d.state.line.capacity() <= limit);
        };
        assert_eq!(err, DecodeError::LineTooLong { limit });
        assert!(fed <= limit + chunk.len());
        // Input is dropped after the error, until finish.
        d.feed(chunk.clone());
        assert!(d.input.is_empty());
        assert_eq!(d.next_event(), Ok(None));
        d.finish();
        d.feed("data: again\n\n");
        assert_eq!(all(&mut d), [DecodedEvent::new("message", "again", "")]);
    }

    #[test]
    fn only_a_dispatch_sets_the_last_event_id() {
        let mut d = Decoder::new();
        d.feed("retry: 10\n\nid: 1\ndata: one\n\nid: 2\ndata: tw");
        assert_eq!(all(&mut d), [DecodedEvent::new("message", "one", "1")]);
        assert_eq!(d.last_event_id(), "1");
        // The stream breaks in the middle of event 2.
        d.finish();
        assert_eq!(all(&mut d), []);
        assert_eq!(d.last_event_id(), "1");
        // The next stream starts from the dispatched ID, not from 2.
        d.feed("data: replayed\n\n");
        assert_eq!(all(&mut d), [DecodedEvent::new("message", "replayed", "1")]);
        // `retry` took effect when parsed, as the spec says.
        assert_eq!(d.retry(), Some(Duration::from_millis(10)));

        // An `id` that clears the ID is no different.
        d.feed("id\ndata: x");
        assert_eq!(all(&mut d), []);
        assert_eq!(d.last_event_id(), "1");
        d.finish();
        d.feed("data: y\n\n");
        assert_eq!(all(&mut d), [DecodedEvent::new("message", "y", "1")]);

        // A block without data still sets it at its empty line.
        d.feed("id: 9\n\n");
        assert_eq!(all(&mut d), []);
        assert_eq!(d.last_event_id(), "9");
    }

    #[test]
    fn a_limit_error_forgets_the_undispatched_id() {
        for finish_first in [false, true] {
            let mut d = Decoder::new().max_line_len(16);
            d.feed("id: 1\ndata: a\n\nid: 2\ndata: far too long a line\n\n");
            if finish_first {
                d.finish();
            }
            assert_eq!(
                all_until_error(&mut d),
                [DecodedEvent::new("message", "a", "1")]
            );
            if !finish_first {
                d.finish();
            }
            d.feed("data: b\n\n");
            assert_eq!(all(&mut d), [DecodedEvent::new("message", "b", "1")]);
            assert_eq!(d.last_event_id(), "1");
        }
    }

    fn all_until_error(decoder: &mut Decoder) -> Vec<DecodedEvent> {
        let mut out = Vec::new();
        while let Ok(Some(ev)) = decoder.next_event() {
            out.push(ev);
        }
        out
    }

    #[test]
    fn error_with_queued_finish_resets() {
        let mut d = Decoder::new().max_line_len(4);
        d.feed("data: too long\n");
        d.finish();
        d.feed("data\n\n");
        assert_eq!(d.next_event(), Err(DecodeError::LineTooLong { limit: 4 }));
        // The finish queued before the error ends the failed stream: what
        // was fed after it is a new stream.
        assert_eq!(all(&mut d), [DecodedEvent::new("message", "", "")]);
    }
}
