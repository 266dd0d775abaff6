//! Waiting for handlers and writers: counters, live values, one-shot replies.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use tokio::{sync::oneshot, time::Instant};

/// Waits until `counter` stops moving (the same for 200 ms), and returns it:
/// where a writer facing a client that reads nothing comes to a stop.
pub async fn until_steady(counter: &AtomicUsize) -> usize {
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = counter.load(Ordering::SeqCst);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Waits (up to `limit`, in real time) until `done` holds.
pub async fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Counts live values: a handler holds one to show it is still running.
#[derive(Clone, Default)]
pub struct Live(Arc<AtomicUsize>);

pub struct LiveGuard(Arc<AtomicUsize>);

impl Live {
    pub fn enter(&self) -> LiveGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        LiveGuard(Arc::clone(&self.0))
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A one-shot answer a handler (cloned for every request) can give once.
pub type Reply<T> = Arc<Mutex<Option<oneshot::Sender<T>>>>;

pub fn reply<T>() -> (Reply<T>, oneshot::Receiver<T>) {
    let (tx, rx) = oneshot::channel();
    (Arc::new(Mutex::new(Some(tx))), rx)
}

/// Sends `value` through `reply`, if it was not used yet.
pub fn answer<T>(reply: &Reply<T>, value: T) {
    if let Some(tx) = reply.lock().unwrap().take() {
        let _ = tx.send(value);
    }
}
