// SPDX-License-Identifier: MPL-2.0
//! Load on the HTTP API: many parallel `clip.mp4` requests (10 s clips at
//! random starts of the 10-minute 1080p recording made by the clip_cut
//! benchmark), through loopback with a hyper client, at several
//! concurrency levels. Prints throughput and p50/p99 latency (request sent
//! to last body byte received).
//!
//! `cargo bench --bench http_load` (run `cargo bench --bench clip_cut` once
//! first: it makes the recording).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use gstliveclip::hls::index::LiveIndex;
use gstliveclip::hls::service::{ClipService, Limits};

const NS: u64 = 1_000_000_000;
const PER_LEVEL: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let stream = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-input/rec-600s/cam");
    let session = std::fs::read_dir(&stream)
        .ok()
        .and_then(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .find(|p| p.join("replay.m3u8").exists())
        })
        .expect("run `cargo bench --bench clip_cut` first: it records the input");
    let mid = session.file_name().unwrap().to_string_lossy().into_owned();
    let workers = 2;
    let service = ClipService::new(
        stream.clone(),
        Arc::new(LiveIndex::default()),
        Limits {
            max_clip: 60 * NS,
            max_preview: 300 * NS,
            workers,
            queue: 1024,
            ..Limits::default()
        },
    );
    let registration = gstliveclip::http::register(
        "127.0.0.1:0",
        None,
        gstliveclip::http::Endpoint::Stream {
            stream_id: "cam".into(),
            service,
            web_root: None,
        },
    )
    .unwrap();
    let base = format!("http://{}", registration.bound);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "clip.mp4 load: 10 s 1080p clips (~8 MB) at random starts, {PER_LEVEL} requests per level, \
         {workers} clip workers, loopback"
    );
    println!(
        "{:>11} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "concurrency", "req/s", "MB/s", "p50 ms", "p99 ms", "errors"
    );
    let mut seed = 0x1234_5678u64;
    for concurrency in [1usize, 4, 16, 64] {
        let starts: Vec<u64> = (0..PER_LEVEL)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (seed >> 33) % 580_000
            })
            .collect();
        let (elapsed, mut latencies, bytes, errors) = runtime.block_on(async {
            let client: Client<_, Full<bytes::Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            let queue = Arc::new(tokio::sync::Mutex::new(starts));
            let t0 = Instant::now();
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..concurrency {
                let client = client.clone();
                let queue = queue.clone();
                let url = format!("{base}/{mid}/clip.mp4");
                set.spawn(async move {
                    let mut out = (Vec::new(), 0u64, 0usize);
                    loop {
                        let Some(ms) = queue.lock().await.pop() else {
                            return out;
                        };
                        let uri = format!("{url}?time={}.{:03}&duration=10s", ms / 1000, ms % 1000);
                        let t = Instant::now();
                        let req = hyper::Request::get(uri)
                            .body(Full::new(bytes::Bytes::new()))
                            .unwrap();
                        match client.request(req).await {
                            Ok(resp) if resp.status() == 200 => {
                                let body = resp.into_body().collect().await.unwrap().to_bytes();
                                out.0.push(t.elapsed());
                                out.1 += body.len() as u64;
                            }
                            _ => out.2 += 1,
                        }
                    }
                });
            }
            let mut lat = Vec::new();
            let (mut bytes, mut errors) = (0, 0);
            for r in set.join_all().await {
                lat.extend(r.0);
                bytes += r.1;
                errors += r.2;
            }
            (t0.elapsed(), lat, bytes, errors)
        });
        latencies.sort();
        let ok = latencies.len();
        println!(
            "{:>11} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9}",
            concurrency,
            ok as f64 / elapsed.as_secs_f64(),
            bytes as f64 / 1e6 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            errors
        );
    }
    drop(registration);
}
