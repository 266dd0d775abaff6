//! Decoding: this crate's spec-exact decoder beside the `eventsource-stream`
//! crate, on the same bytes in the same chunks.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eventsource_stream::Eventsource;
use futures_util::{stream, StreamExt};

/// Inputs shaped like real streams: small JSON events with ids, and LLM-style
/// completion chunks.
fn workload(name: &str) -> Vec<u8> {
    let mut text = String::new();
    match name {
        "small" => {
            for i in 0..20_000 {
                text.push_str(&format!(
                    "id: {i}\ndata: {{\"n\":{i},\"text\":\"hello world\"}}\n\n"
                ));
            }
        }
        "completion" => {
            let delta = "tok ".repeat(40);
            for _ in 0..10_000 {
                text.push_str("event: completion\ndata: {\"choices\":[{\"delta\":{\"content\":\"");
                text.push_str(&delta);
                text.push_str("\"}}]}\n\n");
            }
        }
        _ => unreachable!("unknown workload {name}"),
    }
    text.into_bytes()
}

fn decode(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("decode");
    for name in ["small", "completion"] {
        let input = workload(name);
        let chunks: Vec<Bytes> = input.chunks(4096).map(Bytes::copy_from_slice).collect();
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::new("axum-sse", name), &chunks, |b, chunks| {
            b.iter(|| {
                let bytes = stream::iter(chunks.iter().cloned().map(Ok::<_, ()>));
                let events = axum_sse::decode::EventStream::new(bytes);
                runtime.block_on(
                    events.fold(0, |n, event| async move { n + event.unwrap().data.len() }),
                )
            })
        });
        group.bench_with_input(
            BenchmarkId::new("eventsource-stream", name),
            &chunks,
            |b, chunks| {
                b.iter(|| {
                    let bytes = stream::iter(chunks.iter().cloned().map(Ok::<_, ()>));
                    let events = bytes.eventsource();
                    runtime.block_on(
                        events.fold(0, |n, event| async move { n + event.unwrap().data.len() }),
                    )
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
