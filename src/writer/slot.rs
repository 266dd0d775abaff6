//! The commit rule: what the layer and the writers of one request share.

use std::{
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc, Mutex,
    },
    task::Waker,
};

use futures_util::task::AtomicWaker;

use super::{Refused, SseError, SseWriter};
use crate::{
    layer::StreamSettings,
    util::sync::lock,
    writer::extract::SseWriterRejection,
    writer::queue::{Queue, QueueLimits, QueueReader},
    LastEventId,
};

/// The commit rule: a request's slot is open until a writer starts the
/// stream or the handler answers without it, and never changes after that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Commit {
    /// Nothing sent: the handler may still answer anything.
    Open,
    /// A writer started the stream: the layer answers `200` with it.
    Streaming,
    /// The handler answered without the stream: sends are refused.
    Answered,
}

/// A [`Commit`] that the writers and the layer share.
struct SharedCommit(AtomicU8);

impl SharedCommit {
    fn new() -> Self {
        Self(AtomicU8::new(Commit::Open as u8))
    }

    fn get(&self) -> Commit {
        Self::decode(self.0.load(Ordering::Acquire))
    }

    fn decode(state: u8) -> Commit {
        match state {
            0 => Commit::Open,
            1 => Commit::Streaming,
            _ => Commit::Answered,
        }
    }

    /// Leaves `Open` for `to`, or says where the slot already went.
    fn leave_open(&self, to: Commit) -> Result<(), Commit> {
        match self.0.compare_exchange(
            Commit::Open as u8,
            to as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            Err(actual) => Err(Self::decode(actual)),
        }
    }
}

/// What the layer and the writer(s) of one request share: whether the stream
/// has started, and the receiving end of the queue until the layer takes it.
pub(crate) struct StreamSlot {
    limits: QueueLimits,
    state: SharedCommit,
    /// Wakes the layer's response future when a writer starts the stream from
    /// another task.
    layer_waker: AtomicWaker,
    /// The body's end of the queue, from the writer's extraction until the
    /// layer takes it.
    reader: Mutex<Option<QueueReader>>,
    /// What the layers inside the `SseLayer` and the handler set for this
    /// stream; boxed, so a stream without such settings carries a null
    /// pointer.
    settings: Mutex<Option<Box<StreamSettings>>>,
    /// The layer's metrics, for the writers' waits.
    #[cfg(feature = "metrics")]
    metrics: Option<Arc<crate::metrics::StreamMetrics>>,
}

impl StreamSlot {
    pub(crate) fn new(limits: QueueLimits) -> Self {
        Self {
            limits,
            state: SharedCommit::new(),
            layer_waker: AtomicWaker::new(),
            reader: Mutex::new(None),
            settings: Mutex::new(None),
            #[cfg(feature = "metrics")]
            metrics: None,
        }
    }

    #[cfg(feature = "metrics")]
    pub(crate) fn with_metrics(self, metrics: Option<&Arc<crate::metrics::StreamMetrics>>) -> Self {
        Self {
            metrics: metrics.cloned(),
            ..self
        }
    }

    #[cfg(feature = "metrics")]
    pub(super) fn metrics(&self) -> Option<&crate::metrics::StreamMetrics> {
        self.metrics.as_deref()
    }

    /// Records a per-stream setting (a layer's, at call time).
    pub(crate) fn record(&self, f: impl FnOnce(&mut StreamSettings)) {
        f(self.lock_settings().get_or_insert_with(Box::default));
    }

    /// Records a per-stream setting of the handler's, unless the stream
    /// already started (or the request was answered without it).
    pub(super) fn configure(&self, f: impl FnOnce(&mut StreamSettings)) -> Result<(), SseError> {
        let mut settings = self.lock_settings();
        // Under the lock: the layer takes the settings only once the stream
        // started, so a setting recorded while it was open is taken.
        match self.state.get() {
            Commit::Open => {
                f(settings.get_or_insert_with(Box::default));
                Ok(())
            }
            Commit::Streaming => Err(SseError::StreamStarted),
            Commit::Answered => Err(SseError::ResponseAlreadySent),
        }
    }

    /// The recorded settings, taken once the response is decided.
    pub(crate) fn take_settings(&self) -> Option<Box<StreamSettings>> {
        self.lock_settings().take()
    }

    /// Creates the request's writer. There is one queue per request, so a
    /// second extraction is refused (clone the writer instead).
    pub(crate) fn open_writer(
        self: &Arc<Self>,
        last_event_id: Option<LastEventId>,
    ) -> Result<SseWriter, SseWriterRejection> {
        let mut reader = self.lock_reader();
        if reader.is_some() || self.state.get() != Commit::Open {
            return Err(SseWriterRejection::AlreadyExtracted);
        }
        let queue = Arc::new(Queue::new(self.limits));
        *reader = Some(QueueReader(Arc::clone(&queue)));
        Ok(SseWriter {
            queue,
            slot: Arc::clone(self),
            last_event_id: last_event_id.map(|LastEventId(id)| id.into()),
        })
    }

    pub(crate) fn take_reader(&self) -> Option<QueueReader> {
        self.lock_reader().take()
    }

    /// Whether a writer was extracted (`None` if not), and if so whether one
    /// still exists.
    pub(crate) fn writer_alive(&self) -> Option<bool> {
        self.lock_reader()
            .as_ref()
            .map(|reader| reader.0.has_writers())
    }

    pub(crate) fn is_streaming(&self) -> bool {
        self.state.get() == Commit::Streaming
    }

    /// Called when the handler returned `respond_with_stream` (its writer
    /// lives on and it answered with success) or not. Returns whether the
    /// request streams: a writer may have started the stream first.
    pub(crate) fn settle(&self, respond_with_stream: bool) -> bool {
        let target = if respond_with_stream {
            Commit::Streaming
        } else {
            Commit::Answered
        };
        match self.state.leave_open(target) {
            Ok(()) => respond_with_stream,
            Err(current) => current == Commit::Streaming,
        }
    }

    pub(crate) fn register_layer(&self, waker: &Waker) {
        self.layer_waker.register(waker);
    }

    /// Starts the stream unless the request was already answered.
    #[inline]
    pub(super) fn start(&self) -> Result<(), Refused> {
        if self.is_streaming() {
            return Ok(());
        }
        self.start_now()
    }

    fn start_now(&self) -> Result<(), Refused> {
        match self.state.leave_open(Commit::Streaming) {
            Ok(()) => {
                tracing::debug!("SSE stream started");
                self.layer_waker.wake();
                Ok(())
            }
            Err(Commit::Streaming) => Ok(()),
            Err(Commit::Open | Commit::Answered) => Err(Refused::ResponseAlreadySent),
        }
    }

    fn lock_reader(&self) -> std::sync::MutexGuard<'_, Option<QueueReader>> {
        lock(&self.reader)
    }

    fn lock_settings(&self) -> std::sync::MutexGuard<'_, Option<Box<StreamSettings>>> {
        lock(&self.settings)
    }
}
