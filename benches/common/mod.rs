// SPDX-License-Identifier: MPL-2.0
//! Shared by the benchmarks: the cached 1080p input and a pipeline runner.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use gst::prelude::*;

/// 60 s of 1920x1080 30 fps H.264 (x264 ultrafast, 6 Mb/s, 2 B-frames, GOP
/// 60) + AAC, encoded once and cached under target/bench-input/.
pub fn input() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-input");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("1080p-60s.mp4");
    if path.exists() {
        return path;
    }
    eprintln!(
        "encoding the 60 s 1080p input once (cached at {})",
        path.display()
    );
    let tmp = dir.join("1080p-60s.tmp.mp4");
    let desc = format!(
        "mp4mux name=mux ! filesink location={tmp} \
         videotestsrc num-buffers=1800 pattern=smpte ! video/x-raw,width=1920,height=1080,framerate=30/1 ! \
           timeoverlay ! x264enc speed-preset=ultrafast bitrate=6000 bframes=2 key-int-max=60 ! h264parse ! queue ! mux. \
         audiotestsrc num-buffers=2813 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! queue ! mux.",
        tmp = tmp.display()
    );
    run_to_eos(&gst::parse::launch(&desc).unwrap());
    std::fs::rename(&tmp, &path).unwrap();
    path
}

pub fn run_to_eos(pipeline: &gst::Element) {
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{e:?}"),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
}
