// SPDX-License-Identifier: MPL-2.0
//! Writes a 60 s 1080p H.264 + AAC clip from memory with liveclip's MP4
//! writer, and remuxes the same media with `ffmpeg -c copy`, in one run.
//!
//! `cargo bench --bench clip_write` (the input is encoded once and cached
//! under target/bench-input/).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gst::prelude::*;
use gstliveclip::core::Sample;
use gstliveclip::mp4::{ClipTrack, CodecConfig, Mp4Clip};

const RUNS: usize = 7;

/// Demuxes the input into memory: what periodicclipper holds for a clip.
fn load(path: &Path) -> Vec<ClipTrack> {
    let desc = format!(
        "filesrc location={} ! qtdemux name=d \
         d.video_0 ! queue ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! appsink name=v sync=false \
         d.audio_0 ! queue ! aacparse ! appsink name=a sync=false",
        path.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let collect = |name: &str| {
        let sink = pipeline
            .by_name(name)
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        let out = Arc::new(std::sync::Mutex::new((None, Vec::new())));
        let out2 = out.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let caps = sample.caps().unwrap();
                    let seg = sample
                        .segment()
                        .unwrap()
                        .downcast_ref::<gst::ClockTime>()
                        .unwrap()
                        .clone();
                    let buffer = sample.buffer_owned().unwrap();
                    let rt = |t: Option<gst::ClockTime>| {
                        t.and_then(|t| seg.to_running_time_full(t))
                            .map(|s| match s {
                                gst::Signed::Positive(t) => t.nseconds() as i64,
                                gst::Signed::Negative(t) => -(t.nseconds() as i64),
                            })
                    };
                    let pts = rt(buffer.pts()).unwrap();
                    let dts = rt(buffer.dts()).unwrap_or(pts);
                    let mut o = out2.lock().unwrap();
                    if o.0.is_none() {
                        o.0 = Some(Arc::new(CodecConfig::from_caps(caps).unwrap()));
                    }
                    o.1.push(Sample {
                        pts,
                        dts,
                        duration: buffer.duration().map_or(0, |d| d.nseconds()),
                        keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                        access: Default::default(),
                        data: Bytes::from_owner(buffer.into_mapped_buffer_readable().unwrap()),
                    });
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        out
    };
    let v = collect("v");
    let a = collect("a");
    common::run_to_eos(pipeline.upcast_ref());
    [v, a]
        .into_iter()
        .map(|t| {
            let (config, samples) = std::mem::take(&mut *t.lock().unwrap());
            ClipTrack {
                config: config.unwrap(),
                samples,
                next_dts: None,
            }
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_ffmpeg(input: &Path, out: &Path, faststart: bool) -> Duration {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-y", "-v", "error", "-i"])
        .arg(input)
        .args(["-map", "0", "-c", "copy"]);
    if faststart {
        cmd.args(["-movflags", "+faststart"]);
    }
    cmd.arg(out);
    let t = Instant::now();
    let status = cmd.status().expect("ffmpeg");
    assert!(status.success());
    t.elapsed()
}

fn main() {
    gst::init().unwrap();
    let input = common::input();
    let tracks = load(&input);
    let start = tracks[0].samples.iter().map(|s| s.pts).min().unwrap();
    let clip = Mp4Clip {
        tracks,
        start,
        end: None,
        creation_time: None,
        exact: None,
    };
    let bytes: usize = clip
        .tracks
        .iter()
        .flat_map(|t| &t.samples)
        .map(|s| s.data.len())
        .sum();
    let frames = clip.tracks[0].samples.len();
    let out_dir = tempfile::tempdir().unwrap();
    let ours = out_dir.path().join("liveclip.mp4");
    let theirs = out_dir.path().join("ffmpeg.mp4");

    // Warm the page cache and the binaries once.
    clip.write_file(&ours, false).unwrap();
    time_ffmpeg(&input, &theirs, true);

    let mut layout_t = Vec::new();
    let mut write_t = Vec::new();
    let mut sync_t = Vec::new();
    let mut ff_t = Vec::new();
    let mut ff_fast_t = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let layout = clip.layout().unwrap();
        layout_t.push(t.elapsed());
        drop(layout);
        let t = Instant::now();
        clip.write_file(&ours, false).unwrap();
        write_t.push(t.elapsed());
        let t = Instant::now();
        clip.write_file(&ours, true).unwrap();
        sync_t.push(t.elapsed());
        ff_t.push(time_ffmpeg(&input, &theirs, false));
        ff_fast_t.push(time_ffmpeg(&input, &theirs, true));
    }
    let (layout, write, sync, ff, ff_fast) = (
        median(layout_t),
        median(write_t),
        median(sync_t),
        median(ff_t),
        median(ff_fast_t),
    );
    let check = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(&ours)
        .output()
        .unwrap();
    let packets = String::from_utf8_lossy(&check.stdout).trim().to_string();
    assert_eq!(packets, frames.to_string(), "the clip holds every frame");

    println!(
        "clip_write: 60 s 1080p H.264 + AAC, {:.1} MB, {frames} video frames, median of {RUNS}",
        bytes as f64 / 1e6
    );
    println!(
        "  liveclip layout (moov only)          {:>8.2} ms",
        layout.as_secs_f64() * 1e3
    );
    println!(
        "  liveclip write_file                  {:>8.2} ms",
        write.as_secs_f64() * 1e3
    );
    println!(
        "  liveclip write_file + fsync          {:>8.2} ms",
        sync.as_secs_f64() * 1e3
    );
    println!(
        "  ffmpeg -c copy                       {:>8.2} ms",
        ff.as_secs_f64() * 1e3
    );
    println!(
        "  ffmpeg -c copy -movflags +faststart  {:>8.2} ms",
        ff_fast.as_secs_f64() * 1e3
    );
    println!(
        "  ratio ffmpeg/liveclip: {:.1}x (faststart: {:.1}x; liveclip with fsync vs ffmpeg faststart: {:.1}x)",
        ff.as_secs_f64() / write.as_secs_f64(),
        ff_fast.as_secs_f64() / write.as_secs_f64(),
        ff_fast.as_secs_f64() / sync.as_secs_f64()
    );
}
