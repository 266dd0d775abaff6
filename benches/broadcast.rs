//! Fan-out: one event to 1,000 subscribers. This crate's `Broadcast`
//! encodes an event once and hands every subscriber the same bytes; the
//! incumbent (a `tokio::sync::broadcast` of the message, as axum's examples
//! do) builds an `axum::response::sse::Event` per subscriber.

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

criterion_group!(benches, publish_to_subscribers);
criterion_main!(benches);
