//! Where the bytes of an event stream stand in its grammar: whether a
//! heartbeat or a farewell may be put in between them.

/// Where the bytes sent so far stand in the event-stream grammar: only at
/// the start of a block may anything be inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position {
    /// After a blank line (or at the very start).
    BlockStart,
    /// After a blank line that ended with CR: an LF next completes it.
    BlockStartAfterCr,
    /// Inside a line with content.
    InLine,
    /// After a line with content, ended with LF.
    LineEnd,
    /// After a line with content, ended with CR: an LF next completes it.
    LineEndAfterCr,
}

impl Position {
    pub(crate) fn between_events(self) -> bool {
        matches!(self, Self::BlockStart | Self::BlockStartAfterCr)
    }

    /// Moves past `data`. Only the trailing run of line breaks matters, so
    /// only that is read.
    pub(crate) fn advance(&mut self, data: &[u8]) {
        let tail = match data.iter().rposition(|&b| b != b'\r' && b != b'\n') {
            Some(last_content) => {
                *self = Self::InLine;
                &data[last_content + 1..]
            }
            None => data,
        };
        for &byte in tail {
            *self = match (byte, *self) {
                (b'\r', Self::InLine) => Self::LineEndAfterCr,
                (b'\r', _) => Self::BlockStartAfterCr,
                (_, Self::BlockStartAfterCr | Self::BlockStart | Self::LineEnd) => Self::BlockStart,
                (_, Self::InLine | Self::LineEndAfterCr) => Self::LineEnd,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Position;

    fn after(chunks: &[&str]) -> Position {
        let mut position = Position::BlockStart;
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
    }

    #[test]
    fn an_event_completed_by_a_later_frame_is_between_events() {
        assert!(after(&["data: x\n", "\n"]).between_events());
        assert!(after(&["data: x\r", "\r"]).between_events());
        assert!(after(&["data: x\r", "\n", "\r\n"]).between_events());
        assert!(after(&["data: x", "\n\n"]).between_events());
    }
}
