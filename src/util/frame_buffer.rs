//! The buffer a stream's frames are cut from.

use bytes::{Bytes, BytesMut};

/// The least a frame buffer allocates.
const MIN_ALLOCATION: usize = 512;

/// Bytes gathered for a stream's next frame, in a buffer sized by the
/// stream's traffic: room for twice the last frame, at least 512 bytes and
/// at most `max` (more only for a larger event). A stream that sends in
/// bursts gets one allocation per frame, reused once the frame is written;
/// a quiet one holds a small buffer, and lets go of a burst-sized one.
#[derive(Debug)]
pub(crate) struct FrameBuffer {
    buf: BytesMut,
    max: usize,
    /// The capacity last allocated, and the length of the last frame.
    allocated: usize,
    last_frame: usize,
}

impl FrameBuffer {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max: max.max(MIN_ALLOCATION),
            allocated: 0,
            last_frame: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if self.buf.capacity() - self.buf.len() < bytes.len() {
            // A new frame starts with room for a frame like the last; one
            // that outgrows its buffer grows the usual way.
            let wanted = if self.buf.is_empty() {
                let burst = self.last_frame.saturating_mul(2);
                bytes.len().max(burst.clamp(MIN_ALLOCATION, self.max))
            } else {
                bytes.len()
            };
            self.buf.reserve(wanted);
            self.allocated = self.buf.capacity();
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Everything gathered, as one frame.
    pub(crate) fn take(&mut self) -> Bytes {
        self.last_frame = self.buf.len();
        let frame = self.buf.split().freeze();
        if self.allocated > 4 * MIN_ALLOCATION && self.last_frame * 8 < self.allocated {
            // The stream went quiet: let go of a buffer sized for a burst
            // (freed once the frames cut from it are written).
            self.buf = BytesMut::new();
            self.allocated = 0;
        }
        frame
    }

    /// Drops what was gathered, and the allocation with it.
    pub(crate) fn clear(&mut self) {
        *self = Self::new(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_hold_what_was_gathered() {
        let mut buffer = FrameBuffer::new(1024);
        buffer.extend(b"a\n\n");
        buffer.extend(b"b\n\n");
        assert_eq!(buffer.take(), "a\n\nb\n\n");
        assert!(buffer.is_empty());
        buffer.extend(&[b'x'; 5000]);
        assert_eq!(buffer.take().len(), 5000, "an event larger than max");
    }

    #[test]
    fn a_quiet_stream_holds_a_small_buffer_after_a_burst() {
        let mut buffer = FrameBuffer::new(64 * 1024);
        let event = [b'x'; 40];
        // A burst: frames of about 64 KiB.
        for _ in 0..3 {
            while buffer.len() < 64 * 1024 - event.len() {
                buffer.extend(&event);
            }
            let _ = buffer.take();
        }
        assert!(buffer.allocated >= 60 * 1024, "{}", buffer.allocated);
        // Then one event per frame.
        for _ in 0..1000 {
            buffer.extend(&event);
            assert_eq!(buffer.take(), &event[..]);
        }
        assert!(
            buffer.allocated <= 2 * MIN_ALLOCATION,
            "{}",
            buffer.allocated
        );
    }
}
