use std::{
    fmt,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// A handle that ends every open event stream of the layers it was given
/// to, when triggered. Cloning it gives another handle to the same
/// shutdown. See the [module docs](crate::shutdown).
#[derive(Clone, Default)]
pub struct SseShutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    // Read on every poll of every stream: a plain atomic, where the token
    // would take a lock.
    triggered: AtomicBool,
    token: CancellationToken,
}

impl SseShutdown {
    /// A handle not triggered yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ends every open stream (after its farewell event) and refuses new
    /// ones with `503`. Triggering again does nothing more.
    pub fn trigger(&self) {
        if !self.inner.triggered.swap(true, Ordering::AcqRel) {
            tracing::debug!("SSE shutdown triggered");
        }
        self.inner.token.cancel();
    }

    /// Whether [`trigger`](Self::trigger) was called.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::Acquire)
    }

    /// Resolves once the shutdown is triggered.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let shutdown = axum_sse::SseShutdown::new();
    /// let waiter = tokio::spawn({
    ///     let shutdown = shutdown.clone();
    ///     async move { shutdown.triggered().await }
    /// });
    /// shutdown.trigger();
    /// waiter.await.unwrap();
    /// # }
    /// ```
    pub async fn triggered(&self) {
        self.inner.token.cancelled().await;
    }

    pub(crate) fn wait(&self) -> WaitForCancellationFutureOwned {
        self.inner.token.clone().cancelled_owned()
    }
}

impl fmt::Debug for SseShutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseShutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}
