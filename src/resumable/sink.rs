//! The producer's side: writes events into the response's log.

use std::{fmt, sync::Arc};

use tokio::sync::Mutex;

use crate::{broadcast::Broadcast, Event};

use super::{
    control::{self, Control},
    SinkError,
};

/// Where a producer writes its response: every event goes into the
/// response's log, at once, whoever reads it (or nobody).
///
/// Given to the producer by
/// [`ResumableResponses::start`](super::ResumableResponses::start). A send
/// never waits for a reader: in memory it takes a lock and returns; with
/// Redis it waits for Redis to take the event (one round trip).
pub struct EventSink {
    shared: Arc<Shared>,
}

/// What the sink and the task that runs the producer share: the log, and
/// under one lock, what has been written (so the final marker is the last
/// event of the log even if a send is in flight).
pub(super) struct Shared {
    pub(super) log: Broadcast,
    pub(super) topic: String,
    pub(super) max_events: usize,
    pub(super) max_bytes: usize,
    pub(super) state: Mutex<Written>,
}

#[derive(Default)]
pub(super) struct Written {
    events: usize,
    bytes: usize,
    /// The end (or cut) marker is written: nothing more is.
    closed: bool,
}

impl Shared {
    /// Writes the final marker, unless the response already ended.
    pub(super) async fn finish(&self, control: Control) -> Result<(), SinkError> {
        let mut written = self.state.lock().await;
        if written.closed {
            return Ok(());
        }
        written.closed = true;
        self.log.publish(&self.topic, control.event()).await?;
        Ok(())
    }
}

impl EventSink {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Writes `event` into the response's log, which gives it its `id`.
    ///
    /// # Errors
    ///
    /// - [`SinkError::InvalidEvent`] (an invalid field, or no `data` field:
    ///   [`EventError::NoData`](crate::EventError::NoData)),
    ///   [`SinkError::ReservedType`] (its type is `axum-sse-resumable`),
    ///   [`SinkError::IdNotAllowed`]: this event was refused, the response
    ///   goes on.
    /// - [`SinkError::TooLarge`]: it would take the response past
    ///   [`max_events`](super::ResumableBuilder::max_events) or
    ///   [`max_bytes`](super::ResumableBuilder::max_bytes) (its encoded
    ///   bytes, without the id the log adds); the response is ended before
    ///   it, incomplete, and later sends return [`SinkError::Closed`].
    /// - [`SinkError::Closed`]: the response was cancelled or has ended.
    /// - [`SinkError::Backend`]: Redis did not take it.
    pub async fn send(&mut self, event: Event) -> Result<(), SinkError> {
        event.check_dispatchable()?;
        let wire = event.wire();
        if control::is_reserved(wire) {
            return Err(SinkError::ReservedType);
        }
        if control::has_id(wire) {
            return Err(SinkError::IdNotAllowed);
        }
        let len = wire.len();
        let shared = &*self.shared;
        let mut written = shared.state.lock().await;
        if written.closed {
            return Err(SinkError::Closed);
        }
        if written.events >= shared.max_events || written.bytes + len > shared.max_bytes {
            written.closed = true;
            shared
                .log
                .publish(&shared.topic, Control::Cut.event())
                .await?;
            return Err(SinkError::TooLarge);
        }
        shared.log.publish(&shared.topic, event).await?;
        written.events += 1;
        written.bytes += len;
        Ok(())
    }

    /// Writes every event of `events`, in order; see [`send`](Self::send).
    ///
    /// # Errors
    ///
    /// The first error of [`send`](Self::send); the events before it are
    /// written.
    pub async fn send_all(
        &mut self,
        events: impl IntoIterator<Item = Event>,
    ) -> Result<(), SinkError> {
        for event in events {
            self.send(event).await?;
        }
        Ok(())
    }

    /// Writes a priming event: empty data, and the `id` the log gives it
    /// (`data:` then `id: …`). A client that reads it has a last event id
    /// before the first real event, so it can resume even if the stream is
    /// closed before then; the MCP Streamable HTTP transport asks a server
    /// to send one first. A browser's `EventSource` dispatches it as a
    /// `message` with empty data; clients that parse every event's data as
    /// JSON (the `openai` SDKs, the AI SDK) fail on it, so prime only for
    /// clients that expect it. See
    /// [`ResponseStream::close_after`](super::ResponseStream::close_after).
    ///
    /// # Errors
    ///
    /// Those of [`send`](Self::send).
    pub async fn prime(&mut self) -> Result<(), SinkError> {
        self.send(Event::new().data("")).await
    }

    /// The response's id.
    pub fn response_id(&self) -> &str {
        &self.shared.topic
    }
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSink")
            .field("response_id", &self.shared.topic)
            .finish_non_exhaustive()
    }
}
