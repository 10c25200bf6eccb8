// SPDX-License-Identifier: MPL-2.0
//! CPU time of motion clips (interval 60 s, duration 3 s) against encoding
//! the whole stream with the same settings, for MP4 and GIF, in one run.
//!
//! Input: `videotestsrc` 1920x1080 at 30 fps (raw, not live), SECONDS of
//! media (default 120: clips at 0 and 60 s). Cases:
//! - floor: `videotestsrc ! fakesink` (making the input frames)
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

use std::time::Duration;

use common::{run_to_eos, self_cpu};

fn measure(desc: &str) -> Duration {
    let pipeline = gst::parse::launch(desc).unwrap_or_else(|e| panic!("{desc}: {e}"));
    let before = self_cpu();
    run_to_eos(&pipeline);
    self_cpu() - before
}

fn main() {
    gst::init().unwrap();
    gstliveclip::plugin_register_static().unwrap();
    let seconds: u32 = std::env::var("MOTIONCLIP_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let src = |s: u32| {
        format!(
            "videotestsrc num-buffers={} pattern=smpte ! \
             video/x-raw,format=I420,width=1920,height=1080,framerate=30/1",
            s * 30
        )
    };
    let input = src(seconds);
    let cases = [
        (
            "floor: videotestsrc ! fakesink",
            format!("{input} ! fakesink"),
        ),
        (
            "mp4: motionclipenc interval=60 duration=3",
            format!("{input} ! motionclipenc interval=60 duration=3 ! fakesink"),
        ),
        (
            "mp4: motionclipenc interval=3 duration=3 (continuous)",
            format!("{input} ! motionclipenc interval=3 duration=3 ! fakesink"),
        ),
        (
            "mp4: videorate ! videoscale ! x264enc (continuous)",
            format!(
                "{input} ! videorate ! video/x-raw,framerate=10/1 ! videoconvert ! videoscale ! \
                 video/x-raw,width=320,height=180 ! x264enc tune=zerolatency speed-preset=veryfast \
                 bitrate=400 key-int-max=30 ! h264parse ! fakesink"
            ),
        ),
        (
            "gif: motionclipenc interval=60 duration=3",
            format!("{input} ! motionclipenc format=gif interval=60 duration=3 ! fakesink"),
        ),
        (
            "gif: motionclipenc interval=3 duration=3 (continuous)",
            format!("{input} ! motionclipenc format=gif interval=3 duration=3 ! fakesink"),
        ),
    ];
    // Warm the plugins and libraries once, on a short input.
    let short = src(4);
    for (_, desc) in &cases {
        measure(&desc.replacen(&input, &short, 1));
    }
    let per_hour = 3600.0 / f64::from(seconds);
    let results: Vec<(&str, f64)> = cases
        .iter()
        .map(|(name, desc)| (*name, measure(desc).as_secs_f64() * per_hour))
        .collect();
    println!(
        "motionclip: {seconds} s of 1920x1080 30 fps raw video -> 320x180 10 fps clips; \
         CPU time (user+sys) per media hour"
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
