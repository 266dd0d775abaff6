//! Fan-out: one event to 1,000 subscribers. This crate's `Broadcast`
//! encodes an event once and hands every subscriber the same bytes; the
//! incumbent (a `tokio::sync::broadcast` of the message, as axum's examples
//! do) builds an `axum::response::sse::Event` per subscriber.
//!
//! Latency: `publish` on one instance to a subscriber on another, with 1,
//! 1,000 and 100,000 topics of one subscriber each, over Redis (with
//! `--features redis` and `REDIS_URL` set) beside the in-memory backend (one
//! instance).

use std::sync::Arc;

use axum::response::sse;
use axum_sse::{broadcast::Broadcast, Event};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::StreamExt;
use tokio::sync::broadcast;

const SUBSCRIBERS: usize = 1_000;
const DATA: &str = "{\"price\":101.25,\"symbol\":\"ABC\"}";

fn publish_to_subscribers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("publish one event to 1,000 subscribers");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));

    let feed = Broadcast::builder().history(16).buffer(16).build();
    let mut subscriptions: Vec<_> = runtime.block_on(async {
        let mut subscriptions = Vec::new();
        for _ in 0..SUBSCRIBERS {
            subscriptions.push(feed.subscribe("ticks", None).await.unwrap());
        }
        subscriptions
    });
    group.bench_function("axum-sse Broadcast", |b| {
        b.iter(|| {
            runtime.block_on(async {
                feed.publish("ticks", Event::new().event("tick").data(DATA))
                    .await
                    .unwrap();
                let mut bytes = 0;
                for subscription in &mut subscriptions {
                    let event = subscription.next().await.unwrap();
                    bytes += event.as_bytes().len();
                }
                bytes
            })
        })
    });

    let (tx, _) = broadcast::channel::<(u64, Arc<str>)>(16);
    let mut receivers: Vec<_> = (0..SUBSCRIBERS).map(|_| tx.subscribe()).collect();
    let mut seq = 0_u64;
    group.bench_function("tokio broadcast + axum Event per subscriber", |b| {
        b.iter(|| {
            seq += 1;
            tx.send((seq, DATA.into())).unwrap();
            let mut bytes = 0;
            for receiver in &mut receivers {
                let (id, data) = receiver.try_recv().unwrap();
                let event = sse::Event::default()
                    .event("tick")
                    .id(id.to_string())
                    .data(&*data);
                bytes += std::mem::size_of_val(&std::hint::black_box(event));
            }
            bytes
        })
    });
    group.finish();
}

/// Median-friendly latency: publish on a random topic, wait for its one
/// subscriber to get the event.
fn latency_on(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    name: &str,
    publisher: &Broadcast,
    subscriber: &Broadcast,
) {
    let mut group = c.benchmark_group(format!("publish to delivery, {name}"));
    group.sample_size(20);
    for topics in [1, 1_000, 100_000] {
        let prefix = format!("{:08x}-", fastrand::u32(..));
        let mut subscriptions = runtime.block_on(async {
            let mut subscriptions = Vec::with_capacity(topics);
            for n in 0..topics {
                let topic = format!("{prefix}{n}");
                subscriptions.push(subscriber.subscribe(&topic, None).await.unwrap());
            }
            subscriptions
        });
        group.bench_function(format!("{topics} topics"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = std::time::Instant::now();
                    for _ in 0..iters {
                        let n = fastrand::usize(..topics);
                        publisher
                            .publish(&format!("{prefix}{n}"), Event::new().data(DATA))
                            .await
                            .unwrap();
                        subscriptions[n].next().await.unwrap();
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.finish();
}

fn latency(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let memory = Broadcast::builder().history(4).buffer(4).build();
    latency_on(c, &runtime, "in memory", &memory, &memory);
    drop(memory);
    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("REDIS_URL") {
        let connect = || {
            Broadcast::builder()
                .history(4)
                .buffer(4)
                .idle_expiry(std::time::Duration::from_secs(600))
                .key_prefix("axum-sse-bench:")
                .connect_redis(&url)
        };
        let (a, b) =
            runtime.block_on(async { (connect().await.unwrap(), connect().await.unwrap()) });
        latency_on(c, &runtime, "Redis, instance A to instance B", &a, &b);
    }
}

criterion_group!(benches, publish_to_subscribers, latency);
criterion_main!(benches);
