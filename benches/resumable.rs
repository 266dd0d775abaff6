//! The cost of a resumable response beside a plain one, in one run:
//! events per second through an `SseBody` to its last byte, and heap bytes
//! per live response (counted by a global allocator that tallies what is
//! live). A bounded measurement, not a criterion bench: a few seconds.
//!
//! ```text
//! cargo bench --bench resumable
//! ```
//!
//! - plain: `SseBody` over a stream of 1,000 `Event`s, as a handler that
//!   streams its reply straight to the client.
//! - resumable: a producer writes the same 1,000 events into a
//!   `ResumableResponses` log (memory) and one reader reads the log through
//!   `SseBody`, as a client that follows the reply live.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::{
        atomic::{AtomicIsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use axum_sse::{
    resumable::{ResumableResponses, Resume},
    Event, SseBody,
};
use futures_util::stream;
use http_body_util::BodyExt;
use tokio::sync::Notify;

/// Tallies the heap bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const EVENTS: usize = 1_000;
const ROUNDS: usize = 200;
const LIVE_RESPONSES: usize = 1_000;

fn token(i: usize) -> Event {
    Event::new()
        .event("token")
        .data(format!("{{\"token\":\"word{i} \"}}"))
}

async fn plain() -> usize {
    let body = SseBody::new(stream::iter((0..EVENTS).map(token)));
    body.collect().await.unwrap().to_bytes().len()
}

async fn resumable(responses: &ResumableResponses) -> usize {
    let id = responses
        .start(|mut sink| async move {
            for i in 0..EVENTS {
                sink.send(token(i)).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let Resume::Stream(stream) = responses.resume(&id, None).await.unwrap() else {
        panic!("no stream")
    };
    SseBody::new(stream)
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .len()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Keep every finished response: what a TTL holds.
        let responses = ResumableResponses::builder()
            .max_retained(ROUNDS * 3)
            .build();
        let mut rows = Vec::new();
        // Interleaved rounds, best of three.
        let mut best = [Duration::MAX; 2];
        for _ in 0..3 {
            let start = Instant::now();
            for _ in 0..ROUNDS {
                plain().await;
            }
            best[0] = best[0].min(start.elapsed());
            let start = Instant::now();
            for _ in 0..ROUNDS {
                resumable(&responses).await;
            }
            best[1] = best[1].min(start.elapsed());
        }
        for (name, time) in [
            ("plain SseBody", best[0]),
            ("resumable (write + read)", best[1]),
        ] {
            let per_s = (ROUNDS * EVENTS) as f64 / time.as_secs_f64();
            rows.push(format!("| {name} | {:.2}M events/s |", per_s / 1e6));
        }
        println!("| response of {EVENTS} events, {ROUNDS} rounds, best of 3 | throughput |");
        println!("|---|---|");
        for row in rows {
            println!("{row}");
        }

        // Memory per live response: producers that wrote `n` events and
        // wait; with one reader each, and with none.
        let gate = Arc::new(Notify::new());
        for (n, readers) in [(0, false), (100, false), (100, true), (0, false)] {
            let responses = ResumableResponses::builder()
                .max_live(LIVE_RESPONSES)
                .build();
            let before = LIVE.load(Ordering::SeqCst);
            let mut held = Vec::new();
            for _ in 0..LIVE_RESPONSES {
                let gate = Arc::clone(&gate);
                let id = responses
                    .start(move |mut sink| async move {
                        for i in 0..n {
                            sink.send(token(i)).await?;
                        }
                        gate.notified().await;
                        Ok(())
                    })
                    .await
                    .unwrap();
                if readers {
                    let Resume::Stream(stream) = responses.resume(&id, None).await.unwrap() else {
                        panic!()
                    };
                    held.push(stream);
                }
            }
            // Let every producer write its events.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            let per = (LIVE.load(Ordering::SeqCst) - before) / LIVE_RESPONSES as isize;
            println!(
                "live resumable response, {n} events in its log, {} reader: {:.1} KiB",
                if readers { "one" } else { "no" },
                per as f64 / 1024.0
            );
            gate.notify_waiters();
            drop(held);
            responses.drain(Duration::from_secs(10)).await;
            drop(responses);
            // Let the expiry timers see the store gone.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}
