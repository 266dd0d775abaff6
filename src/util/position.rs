//! Where the bytes of an event stream stand in its grammar (WHATWG HTML,
//! "9.2.6 Interpreting an event stream"): whether a heartbeat, a farewell or
//! the retry advice may be put in between them without changing what any
//! client dispatches.
//!
//! Lines end with CR, LF or CRLF. A blank line dispatches the block of lines
//! before it; a line starting with `:` is a comment. Loose parsers (the
//! `openai` SDKs among them) dispatch a block as soon as it holds any field,
//! so the crate's own lines must never end a block: they are comments and
//! `retry` fields that ride in a block whose event the user sent.

use memchr::memchr2;

/// What kind of line ended, as far as inserting lines is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// An empty line: it dispatches the block.
    Blank,
    /// `:` and anything: ignored by every parser.
    Comment,
    /// The `retry` field: sets the reconnection time, nothing to dispatch.
    Retry,
    /// The `data` field.
    Data,
    /// Any other field (`event`, `id`, unknown names).
    OtherField,
}

/// The first bytes of a line: enough to tell its field name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct LineHead {
    bytes: [u8; 6],
    /// How long the line is so far, up to 7 ("longer than the head").
    len: u8,
}

impl LineHead {
    fn push(&mut self, data: &[u8]) {
        let len = usize::from(self.len);
        if len < self.bytes.len() {
            let take = (self.bytes.len() - len).min(data.len());
            self.bytes[len..len + take].copy_from_slice(&data[..take]);
        }
        // At most 7, so it fits in a u8.
        self.len = (len + data.len()).min(7) as u8;
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn kind(&self) -> LineKind {
        let head = &self.bytes[..usize::from(self.len).min(self.bytes.len())];
        // The field name is the line up to its first colon, or all of it.
        let field_is = |name: &[u8]| {
            head.starts_with(name)
                && (usize::from(self.len) == name.len() || head.get(name.len()) == Some(&b':'))
        };
        match head.first() {
            None => LineKind::Blank,
            Some(b':') => LineKind::Comment,
            Some(_) if field_is(b"data") => LineKind::Data,
            Some(_) if field_is(b"retry") => LineKind::Retry,
            Some(_) => LineKind::OtherField,
        }
    }
}

/// Follows the lines of an event stream across body frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LineWalker {
    /// The line in progress (empty at a line start).
    head: LineHead,
    /// The last byte fed was a CR that ended a line: an LF first in the next
    /// frame belongs to it.
    after_cr: bool,
}

impl LineWalker {
    /// Whether the bytes so far end at the start of a line.
    pub(crate) fn at_line_start(&self) -> bool {
        self.head.is_empty()
    }

    /// How many bytes at the start of `data` still belong to the line ending
    /// fed before it (the LF of a CRLF split between frames).
    pub(crate) fn pending_lf(&self, data: &[u8]) -> usize {
        usize::from(self.after_cr && data.first() == Some(&b'\n'))
    }

    /// Feeds `data`, calling `on_line` at the end of every line with its kind
    /// and the offset in `data` where the next line starts. `on_line` returns
    /// `false` to stop early (the walker then stands after that line).
    pub(crate) fn walk(&mut self, data: &[u8], mut on_line: impl FnMut(LineKind, usize) -> bool) {
        let mut at = self.pending_lf(data);
        if !data.is_empty() {
            self.after_cr = false;
        }
        while at < data.len() {
            let Some(len) = memchr2(b'\r', b'\n', &data[at..]) else {
                self.head.push(&data[at..]);
                return;
            };
            self.head.push(&data[at..at + len]);
            let kind = std::mem::take(&mut self.head).kind();
            let ending = at + len;
            at = ending + 1;
            if data[ending] == b'\r' {
                match data.get(at) {
                    Some(b'\n') => at += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if !on_line(kind, at) {
                return;
            }
        }
    }
}

/// Whether something may be inserted at the end of the bytes sent so far:
/// at a line start, in a block that holds nothing but comments and `retry`
/// lines (inserted lines join that block harmlessly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Position {
    lines: LineWalker,
    /// The current block holds a line that an insertion would split from
    /// the rest of its event.
    in_event: bool,
}

impl Position {
    pub(crate) fn between_events(self) -> bool {
        self.lines.at_line_start() && !self.in_event
    }

    /// Moves past `data`.
    pub(crate) fn advance(&mut self, data: &[u8]) {
        if let Some(after_cr) = ends_with_blank_line(data) {
            // The common case, whole events: only the tail is read.
            *self = Self {
                lines: LineWalker {
                    head: LineHead::default(),
                    after_cr,
                },
                in_event: false,
            };
            return;
        }
        let in_event = &mut self.in_event;
        self.lines.walk(data, |kind, _| {
            match kind {
                LineKind::Blank => *in_event = false,
                LineKind::Comment | LineKind::Retry => {}
                LineKind::Data | LineKind::OtherField => *in_event = true,
            }
            true
        });
    }
}

/// `Some(ends with CR)` if `data` ends with a blank line after some content
/// (a whole block), read from the end only.
fn ends_with_blank_line(data: &[u8]) -> Option<bool> {
    let last_content = data.iter().rposition(|&b| b != b'\r' && b != b'\n')?;
    let tail = &data[last_content + 1..];
    let mut endings = 0;
    let mut previous = 0;
    for &byte in tail {
        if !(byte == b'\n' && previous == b'\r') {
            endings += 1;
        }
        previous = byte;
    }
    (endings >= 2).then_some(previous == b'\r')
}

#[cfg(test)]
mod tests {
    use super::{LineKind, LineWalker, Position};

    fn after(chunks: &[&str]) -> Position {
        let mut position = Position::default();
        for chunk in chunks {
            position.advance(chunk.as_bytes());
        }
        position
    }

    #[test]
    fn whole_events_end_between_events() {
        for ending in ["\n\n", "\r\r", "\r\n\r\n", "\n\r\n", "\r\n\n", "\n\r"] {
            let event = format!("data: x{ending}");
            assert!(after(&[&event]).between_events(), "{ending:?}");
        }
        assert!(after(&[]).between_events());
        assert!(after(&[":\n\n", "data: a\n\ndata: b\n\n"]).between_events());
    }

    #[test]
    fn split_events_are_not_between_events() {
        assert!(!after(&["data: x"]).between_events());
        assert!(!after(&["data: x\n"]).between_events());
        assert!(!after(&["data: x\r"]).between_events());
        // An LF after a CR only completes the line ending.
        assert!(!after(&["data: x\r", "\n"]).between_events());
        assert!(!after(&["data: x\n\n", "event: y\n"]).between_events());
        assert!(!after(&["id: 1\n"]).between_events());
        assert!(!after(&["retryx: 1\n"]).between_events());
        assert!(!after(&["data"]).between_events());
        assert!(!after(&[":", "\n", "da"]).between_events());
    }

    #[test]
    fn an_event_completed_by_a_later_frame_is_between_events() {
        assert!(after(&["data: x\n", "\n"]).between_events());
        assert!(after(&["data: x\r", "\r"]).between_events());
        assert!(after(&["data: x\r", "\n", "\r\n"]).between_events());
        assert!(after(&["data: x", "\n\n"]).between_events());
        assert!(after(&["da", "ta: x\n", "\n"]).between_events());
    }

    #[test]
    fn comments_and_retry_lines_leave_the_block_open_to_insertions() {
        // What the crate itself sends: the retry advice and heartbeats.
        assert!(after(&["retry: 3000\n"]).between_events());
        assert!(after(&["retry: 3000\n", ":\n", ":\n"]).between_events());
        assert!(after(&["data: a\n\n", ":\n"]).between_events());
        assert!(after(&["re", "try", ":", " 1\r", "\n", ": hi\r"]).between_events());
        assert!(after(&["retry\n"]).between_events());
        // ...but not once a field of an event joined them.
        assert!(!after(&["retry: 3000\n", "id: 1\n"]).between_events());
        assert!(!after(&[":\n", "data:\n"]).between_events());
    }

    fn kinds(chunks: &[&str]) -> Vec<LineKind> {
        let mut walker = LineWalker::default();
        let mut kinds = Vec::new();
        for chunk in chunks {
            walker.walk(chunk.as_bytes(), |kind, _| {
                kinds.push(kind);
                true
            });
        }
        kinds
    }

    #[test]
    fn lines_are_classified_by_field_name_across_frames() {
        use LineKind::*;
        assert_eq!(
            kinds(&["data\ndata:x\ndatax: y\n: c\nretry\nretry:1\nid: 2\n\n"]),
            [Data, Data, OtherField, Comment, Retry, Retry, OtherField, Blank]
        );
        assert_eq!(
            kinds(&["d", "a", "t", "a", ":", "\r", "\n", "\r"]),
            [Data, Blank]
        );
        assert_eq!(kinds(&["data: x\r", "\n\r\n"]), [Data, Blank]);
        assert_eq!(kinds(&["data: x\r\r\r"]), [Data, Blank, Blank]);
    }

    #[test]
    fn offsets_point_at_the_next_line() {
        let mut walker = LineWalker::default();
        let mut offsets = Vec::new();
        walker.walk(b"a\r\nb\rc\n\n", |_, at| {
            offsets.push(at);
            true
        });
        assert_eq!(offsets, [3, 5, 7, 8]);
    }
}
