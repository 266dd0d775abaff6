//! Encoding events: this crate beside axum's own `axum::response::sse`, in
//! the same run. Two views: building one event (both encode while building),
//! and a whole body of 1,000 events read from a stream frame by frame
//! (encoding plus framing, what a server does per event).

use std::{convert::Infallible, sync::Arc};

use axum::response::{sse, IntoResponse};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::{stream, StreamExt};
use http_body_util::BodyExt;

const DATA: &str = "abcdefghijklmnop";

fn build_one(c: &mut Criterion) {
    let mut group = c.benchmark_group("build one event (event, id, 16 B data)");
    group.throughput(Throughput::Elements(1));
    let mut i = 0_u64;
    group.bench_function("axum-sse", |b| {
        b.iter(|| {
            i += 1;
            axum_sse::Event::new().event("tick").id(i).data(DATA)
        })
    });
    group.bench_function("axum", |b| {
        b.iter(|| {
            i += 1;
            sse::Event::default()
                .event("tick")
                .id(i.to_string())
                .data(DATA)
        })
    });
    group.finish();
}

fn body_of_events(c: &mut Criterion) {
    const N: u64 = 1_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("body of 1,000 events from a stream");
    group.throughput(Throughput::Elements(N));
    for size in [16_usize, 1024] {
        let data: Arc<str> = "x".repeat(size).into();
        group.bench_with_input(BenchmarkId::new("axum-sse", size), &data, |b, data| {
            b.iter(|| {
                let data = Arc::clone(data);
                let events = stream::iter(0..N)
                    .map(move |i| axum_sse::Event::new().event("tick").id(i).data(&*data));
                let body = axum_sse::SseBody::new(events).into_response().into_body();
                runtime.block_on(drain(body))
            })
        });
        group.bench_with_input(BenchmarkId::new("axum", size), &data, |b, data| {
            b.iter(|| {
                let data = Arc::clone(data);
                let events = stream::iter(0..N).map(move |i| {
                    Ok::<_, Infallible>(
                        sse::Event::default()
                            .event("tick")
                            .id(i.to_string())
                            .data(&*data),
                    )
                });
                let body = sse::Sse::new(events).into_response().into_body();
                runtime.block_on(drain(body))
            })
        });
    }
    group.finish();
}

/// Reads a body frame by frame, dropping each as a server does once it is
/// written (collecting them all would measure the allocator giving the
/// memory back and faulting it in again), and returns the bytes read.
async fn drain(mut body: axum::body::Body) -> usize {
    let mut read = 0;
    while let Some(frame) = body.frame().await {
        read += frame.unwrap().into_data().map_or(0, |data| data.len());
    }
    read
}

criterion_group!(benches, build_one, body_of_events);
criterion_main!(benches);
