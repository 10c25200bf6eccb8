// SPDX-License-Identifier: MPL-2.0
//! CPU time of motion clips (interval 60 s, duration 3 s) against encoding
//! the whole stream with the same settings, for MP4 and GIF, in one run.
//!
//! Input: 1920x1080 I420 at 30 fps, SECONDS of media (default 120: clips
//! at 0 and 60 s), not live: 90 different frames of moving SMPTE bars with
//! a bouncing ball, rendered once by `videotestsrc` before measuring and
//! pushed again and again by an `appsrc` (by reference), so that making
//! the input costs next to nothing and what is measured is what each case
//! does with it. Cases (after `appsrc`):
//! - floor: `fakesink`
//! - `motionclipenc interval=60 duration=3` (MP4, then GIF)
//! - continuous: `motionclipenc interval=3 duration=3` (back-to-back
//!   windows: every second of media encoded, same code and settings)
//! - continuous GStreamer reference (MP4): `videorate ! 10 fps !
//!   videoconvert ! videoscale ! 320x180 ! x264enc (same settings) !
//!   h264parse ! fakesink`
//!
//! CPU time is user + system time of the process (all threads, including
//! the elements' workers and private pipelines) around each run, reported
//! per hour of media.
//!
//! `cargo bench --bench motionclip` (`MOTIONCLIP_SECONDS=600` for longer).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{median, run_to_eos, self_cpu};
use gst::prelude::*;

const CAPS: &str = "video/x-raw,format=I420,width=1920,height=1080,framerate=30/1";
const RUNS: usize = 3;

/// 90 frames of moving test pattern, rendered once.
fn render_frames() -> Vec<gst::Buffer> {
    let p = gst::parse::launch(&format!(
        "videotestsrc num-buffers=90 pattern=smpte horizontal-speed=4 ! {CAPS} ! \
         videoconvert ! timeoverlay ! {CAPS} ! appsink name=sink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        frames.push(s.buffer_owned().unwrap());
    }
    p.set_state(gst::State::Null).unwrap();
    frames
}

/// Runs `appsrc ! {tail}` over `seconds` of the frames; returns the CPU
/// time it took.
fn measure(tail: &str, frames: &Arc<Vec<gst::Buffer>>, seconds: u32) -> Duration {
    let desc = format!("appsrc name=src format=time caps={CAPS} ! {tail}");
    let pipeline = gst::parse::launch(&desc)
        .unwrap_or_else(|e| panic!("{desc}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let total = u64::from(seconds) * 30;
    let next = AtomicU64::new(0);
    let frames = frames.clone();
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= total {
                    let _ = src.end_of_stream();
                    return;
                }
                // A shallow copy: the picture memory is shared.
                let mut b = frames[(n % frames.len() as u64) as usize].copy();
                {
                    let b = b.get_mut().unwrap();
                    b.set_pts(gst::ClockTime::from_nseconds(n * 1_000_000_000 / 30));
                    b.set_duration(gst::ClockTime::from_nseconds(1_000_000_000 / 30));
                }
                let _ = src.push_buffer(b);
            })
            .build(),
    );
    let before = self_cpu();
    run_to_eos(pipeline.upcast_ref());
    self_cpu() - before
}

fn main() {
    gst::init().unwrap();
    gstliveclip::plugin_register_static().unwrap();
    let seconds: u32 = std::env::var("MOTIONCLIP_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let frames = Arc::new(render_frames());
    let cases = [
        ("floor: fakesink", "fakesink".to_string()),
        (
            "mp4: motionclipenc interval=60 duration=3",
            "motionclipenc interval=60 duration=3 ! fakesink".to_string(),
        ),
        (
            "mp4: motionclipenc interval=3 duration=3 (continuous)",
            "motionclipenc interval=3 duration=3 ! fakesink".to_string(),
        ),
        (
            "mp4: videorate ! videoscale ! x264enc (continuous)",
            "videorate ! video/x-raw,framerate=10/1 ! videoconvert ! videoscale ! \
             video/x-raw,width=320,height=180 ! x264enc tune=zerolatency speed-preset=veryfast \
             bitrate=400 key-int-max=30 ! h264parse ! fakesink"
                .to_string(),
        ),
        (
            "gif: motionclipenc interval=60 duration=3",
            "motionclipenc format=gif interval=60 duration=3 ! fakesink".to_string(),
        ),
        (
            "gif: motionclipenc interval=3 duration=3 (continuous)",
            "motionclipenc format=gif interval=3 duration=3 ! fakesink".to_string(),
        ),
    ];
    // Warm the plugins and libraries once, on a short input.
    for (_, tail) in &cases {
        measure(tail, &frames, 4);
    }
    let per_hour = 3600.0 / f64::from(seconds);
    let results: Vec<(&str, f64)> = cases
        .iter()
        .map(|(name, tail)| {
            let runs = (0..RUNS).map(|_| measure(tail, &frames, seconds)).collect();
            (*name, median(runs).as_secs_f64() * per_hour)
        })
        .collect();
    println!(
        "motionclip: {seconds} s of 1920x1080 30 fps raw video -> 320x180 10 fps clips; \
         CPU time (user+sys) per media hour, median of {RUNS}"
    );
    for (name, t) in &results {
        println!("  {name:<58} {t:>9.1} s/h");
    }
    let t = |i: usize| results[i].1;
    let floor = t(0);
    for (fmt, motion, continuous) in [("mp4", 1, 2), ("gif", 4, 5)] {
        println!(
            "  {fmt}: continuous / motion clips = {:.1}x ({:.1}x above the floor)",
            t(continuous) / t(motion),
            (t(continuous) - floor) / (t(motion) - floor).max(1e-9)
        );
    }
    println!(
        "  mp4: GStreamer continuous reference / motion clips = {:.1}x ({:.1}x above the floor)",
        t(3) / t(1),
        (t(3) - floor) / (t(1) - floor).max(1e-9)
    );
}
