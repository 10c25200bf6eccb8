// SPDX-License-Identifier: MPL-2.0
//! Stills of a 1080p hlsclipsink recording (H.264, 2 B-frames, a keyframe
//! every 2 s, 6 s segments) at random times: the latency of one still,
//! cold (decoded from its keyframe) and cached (the same frame and
//! parameters again), p50 and p99, for a full-size JPEG and a 320-wide
//! one; then the throughput of 4 clients asking at once (distinct frames,
//! `max-concurrent-clips` 2, the default). The work is what the HTTP route
//! and the `get-thumbnail` signal do (`frames::still::thumbnail`), without
//! the HTTP transfer. Warm page cache.
//!
//! `cargo bench --bench still` (the recording is made once and cached under
//! target/bench-input/).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gstliveclip::hls::index::LiveIndex;
use gstliveclip::hls::service::{ClipService, Limits};
use gstliveclip::hls::still::StillRequest;

const COLD: usize = 40;
const CLIENTS: usize = 4;
const PER_CLIENT: usize = 10;

/// The 60 s input recorded by hlsclipsink; returns the stream directory
/// and the media id.
fn recording(dir: &Path) -> (PathBuf, String) {
    let rec = dir.join("rec-stills-420");
    let session = common::recorded_once(&common::input(), &rec);
    let stream = rec.join("cam");
    let id = session.file_name().unwrap().to_string_lossy().into_owned();
    (stream, id)
}

/// A small deterministic generator, so runs are comparable.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A time in ms within the 60 s recording.
    fn time(&mut self) -> f64 {
        (self.next() % 59_900) as f64 / 1000.0
    }
}

fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn service(stream: &Path) -> Arc<ClipService> {
    ClipService::new(
        stream.to_path_buf(),
        Arc::new(LiveIndex::default()),
        Limits::default(),
    )
}

fn still(service: &ClipService, media: &str, query: &str) -> Duration {
    let req = StillRequest::parse_query(query, None).unwrap();
    let t = Instant::now();
    let s = gstliveclip::frames::still::thumbnail(service, Some(media), &req).unwrap();
    assert!(!s.image.is_empty());
    t.elapsed()
}

fn main() {
    gst::init().unwrap();
    gstliveclip::plugin_register_static().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-input");
    std::fs::create_dir_all(&dir).unwrap();
    let (stream, media) = recording(&dir);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "stills of a 60 s 1080p H.264 recording (GOP 2 s, 2 B-frames), {COLD} random times, {cpus} CPUs, load average {}",
        load().split_whitespace().next().unwrap_or("?")
    );
    // Finding the samples alone (no decoding): what every request costs
    // before the cache is asked.
    {
        let service = service(&stream);
        let mut rng = Lcg(0x57111);
        let mut pictures = 0;
        let select: Vec<Duration> = (0..COLD)
            .map(|_| {
                let req =
                    StillRequest::parse_query(&format!("time={:.3}", rng.time()), None).unwrap();
                let t = Instant::now();
                let f = service.still_frames(Some(&media), &req.clip).unwrap();
                let took = t.elapsed();
                pictures += f.samples.len();
                took
            })
            .collect();
        println!(
            "finding the samples: p50 {} ms, p99 {} ms; {:.1} pictures decoded per still on average",
            ms(percentile(&select, 0.5)),
            ms(percentile(&select, 0.99)),
            pictures as f64 / COLD as f64
        );
    }
    println!(
        "{:>18} {:>10} {:>10} {:>12} {:>12}",
        "still", "cold p50", "cold p99", "cached p50", "cached p99"
    );
    for (name, params) in [
        ("1920x1080 JPEG", "format=jpeg"),
        ("320x180 JPEG", "format=jpeg&width=320"),
        ("320x180 WebP", "format=webp&width=320"),
    ] {
        let service = service(&stream);
        let mut rng = Lcg(0x57111);
        // Warm-up: the page cache and GStreamer's plugins.
        still(&service, &media, &format!("time=30.01&{params}"));
        let queries: Vec<String> = (0..COLD)
            .map(|_| format!("time={:.3}&{params}", rng.time()))
            .collect();
        let cold: Vec<Duration> = queries.iter().map(|q| still(&service, &media, q)).collect();
        let cached: Vec<Duration> = queries.iter().map(|q| still(&service, &media, q)).collect();
        println!(
            "{:>18} {:>10} {:>10} {:>12} {:>12}",
            name,
            ms(percentile(&cold, 0.5)),
            ms(percentile(&cold, 0.99)),
            ms(percentile(&cached, 0.5)),
            ms(percentile(&cached, 0.99)),
        );
    }

    // Throughput: 4 clients, distinct frames, no cache hits.
    for (name, params) in [
        ("1920x1080 JPEG", "format=jpeg"),
        ("320x180 JPEG", "format=jpeg&width=320"),
    ] {
        let service = service(&stream);
        let t = Instant::now();
        let latencies: Vec<Duration> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..CLIENTS)
                .map(|c| {
                    let (service, media) = (&service, &media);
                    scope.spawn(move || {
                        let mut rng = Lcg(0xc11e47 + c as u64);
                        (0..PER_CLIENT)
                            .map(|_| {
                                let q = format!("time={:.3}&{params}", rng.time());
                                still(service, media, &q)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let wall = t.elapsed();
        println!(
            "{CLIENTS} clients, {name}: {:.1} stills/s ({} in {:.2} s), latency p50 {} ms, p99 {} ms",
            latencies.len() as f64 / wall.as_secs_f64(),
            latencies.len(),
            wall.as_secs_f64(),
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
        );
    }
    println!(
        "load average at the end: {}",
        load().split_whitespace().next().unwrap_or("?")
    );
}
