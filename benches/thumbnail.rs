// SPDX-License-Identifier: MPL-2.0
//! CPU time of thumbnails every 10 s of a 60 s 1080p H.264 input, in one
//! run:
//! - floor: `filesrc ! qtdemux ! h264parse ! fakesink` (demux and parse only)
//! - thumbnailer: `... ! h264parse ! thumbnailer interval=10 ! fakesink`
//!   (decodes only the keyframe at or after each tick)
//! - full decode: `... ! h264parse ! avdec_h264 ! videorate ! 1/10 fps !
//!   videoscale ! jpegenc ! fakesink` (decodes every frame)
//!
//! at the source size and at 320x180. CPU time is user + system time of the
//! process (getrusage, all threads) around each pipeline run; median of
//! RUNS.
//!
//! `cargo bench --bench thumbnail` (the input is encoded once and cached
//! under target/bench-input/).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{input, median, run_to_eos, self_cpu};
use gst::prelude::*;

const RUNS: usize = 5;

/// Runs `desc` to EOS; returns (CPU time, buffers that reached `out`).
fn measure(desc: &str) -> (Duration, usize) {
    let pipeline = gst::parse::launch(desc)
        .unwrap_or_else(|e| panic!("{desc}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    pipeline
        .by_name("out")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            c.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    let before = self_cpu();
    run_to_eos(pipeline.upcast_ref());
    let spent = self_cpu() - before;
    (spent, count.load(Ordering::SeqCst))
}

fn main() {
    gst::init().unwrap();
    gstliveclip::plugin_register_static().unwrap();
    let input = input();
    let src = format!("filesrc location={} ! qtdemux ! h264parse", input.display());
    let cases = [
        ("floor: demux + parse", format!("{src} ! fakesink name=out")),
        (
            "thumbnailer interval=10 (1920x1080)",
            format!("{src} ! thumbnailer interval=10 ! fakesink name=out"),
        ),
        (
            "full decode + videorate + jpegenc (1920x1080)",
            format!(
                "{src} ! avdec_h264 ! videorate ! video/x-raw,framerate=1/10 ! videoscale ! \
                 videoconvert ! jpegenc quality=85 ! fakesink name=out"
            ),
        ),
        (
            "thumbnailer interval=10 width=320 (320x180)",
            format!("{src} ! thumbnailer interval=10 width=320 ! fakesink name=out"),
        ),
        (
            "full decode + videorate + videoscale + jpegenc (320x180)",
            format!(
                "{src} ! avdec_h264 ! videorate ! video/x-raw,framerate=1/10 ! videoscale ! \
                 video/x-raw,width=320,height=180 ! videoconvert ! jpegenc quality=85 ! fakesink name=out"
            ),
        ),
    ];
    // Warm the page cache, the plugins and the decoder libraries once.
    for (_, desc) in &cases {
        measure(desc);
    }
    let mut results = Vec::new();
    for (name, desc) in &cases {
        let mut times = Vec::new();
        let mut images = 0;
        for _ in 0..RUNS {
            let (t, n) = measure(desc);
            times.push(t);
            images = n;
        }
        results.push((*name, median(times), images));
    }
    println!(
        "thumbnail: 60 s 1080p30 H.264 (GOP 2 s), one image per 10 s, CPU time (user+sys), median of {RUNS}"
    );
    for (name, t, n) in &results {
        let images = if name.starts_with("floor") {
            String::new()
        } else {
            format!("{n} images")
        };
        println!("  {name:<58} {:>8.1} ms  {images}", t.as_secs_f64() * 1e3);
    }
    let ms = |i: usize| results[i].1.as_secs_f64();
    println!(
        "  ratio full decode / thumbnailer: {:.1}x at 1920x1080, {:.1}x at 320x180",
        ms(2) / ms(1),
        ms(4) / ms(3)
    );
    println!(
        "  above the demux+parse floor: {:.1}x at 1920x1080, {:.1}x at 320x180",
        (ms(2) - ms(0)) / (ms(1) - ms(0)),
        (ms(4) - ms(0)) / (ms(3) - ms(0))
    );
}
