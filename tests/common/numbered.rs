// SPDX-License-Identifier: MPL-2.0
//! A source of numbered frames: every video frame carries its own number
//! (five gray bands, one base-5 digit each), so tests read back with ffmpeg
//! which frames a clip presents, independent of any timestamp arithmetic of
//! the project.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

use super::launch;

pub const FPS: u64 = 30;
pub const W: usize = 320;
pub const H: usize = 240;
pub const BANDS: usize = 5;
pub const NS: u64 = 1_000_000_000;

pub fn level(digit: u32) -> u8 {
    16 + 55 * digit as u8
}

/// An I420 frame whose five horizontal bands spell `n` in base 5.
pub fn numbered_frame(n: u32) -> Vec<u8> {
    let mut data = vec![128u8; W * H * 3 / 2];
    let mut rest = n;
    for band in 0..BANDS {
        let digit = rest % 5;
        rest /= 5;
        let rows = H / BANDS;
        data[band * rows * W..(band + 1) * rows * W].fill(level(digit));
    }
    data
}

/// Frame numbers of every presented frame of `file` (edit lists applied),
/// read from the pixels.
pub fn frame_numbers(file: &Path) -> Vec<u32> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args([
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-vf",
            "scale=16:240:flags=area",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.chunks(COLS * H).map(number_of).collect()
}

/// Columns of the scaled-down frames the readers decode to.
const COLS: usize = 16;

/// The number a `COLS` by `H` gray frame spells; each band is read from its
/// middle half, away from the coding artefacts at its edges.
fn number_of(frame: &[u8]) -> u32 {
    let rows = H / BANDS;
    (0..BANDS).rev().fold(0u32, |acc, band| {
        let from = band * rows + rows / 4;
        let to = band * rows + rows * 3 / 4;
        let px = &frame[from * COLS..to * COLS];
        let mean = px.iter().map(|&v| f64::from(v)).sum::<f64>() / px.len() as f64;
        let digit = ((mean - 16.0) / 55.0).round().clamp(0.0, 4.0) as u32;
        acc * 5 + digit
    })
}

/// The same, as GStreamer presents `file`: its own demuxer (edit lists as
/// segments) and decoder, and a frame counts when its segment does not clip
/// it away entirely (what a sink renders).
pub fn frame_numbers_gst(file: &Path) -> Vec<u32> {
    let pipeline = launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! \
         video/x-raw,format=GRAY8,width={COLS},height={H} ! appsink name=sink sync=false",
        file.display()
    ));
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let buffer = sample.buffer().unwrap();
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned())
            .unwrap();
        let pts = buffer.pts().unwrap();
        let end = pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO);
        if segment.clip(pts, end).is_none() {
            continue;
        }
        let map = buffer.map_readable().unwrap();
        out.push(number_of(&map[..COLS * H]));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

/// A pipeline that records `seconds` of numbered frames (B-frames, a
/// keyframe every `gop` frames) and AAC audio into hlsclipsink `h`. The
/// source is live (paced by the clock) when `live`.
pub fn numbered_av(
    location: &Path,
    props: &str,
    seconds: u64,
    gop: u32,
    live: bool,
) -> gst::Pipeline {
    numbered_av_with(location, props, "", seconds, gop, live)
}

/// The same, with `extra` elements that may take the encoded streams from
/// the tees `tv.` (video) and `ta.` (audio).
pub fn numbered_av_with(
    location: &Path,
    props: &str,
    extra: &str,
    seconds: u64,
    gop: u32,
    live: bool,
) -> gst::Pipeline {
    let frames = seconds * FPS;
    let audio_frames = (seconds as f64 * 48_000.0 / 1024.0).ceil() as u32;
    let pipeline = launch(&format!(
        "hlsclipsink name=h location={loc} stream-id=cam {props} \
         appsrc name=src format=time is-live={live} do-timestamp={live} \
           caps=video/x-raw,format=I420,width={W},height={H},framerate={FPS}/1 ! \
           x264enc bframes=2 b-adapt=false speed-preset=ultrafast key-int-max={gop} {tune} ! \
           h264parse ! tee name=tv ! queue ! h.video \
         audiotestsrc num-buffers={audio_frames} samplesperbuffer=1024 is-live={live} ! \
           audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! tee name=ta ! queue ! h.audio {extra}",
        loc = location.display(),
        tune = if live { "tune=zerolatency" } else { "" },
    ));
    feed_numbered(&pipeline, frames, live);
    pipeline
}

/// A pipeline that records `seconds` of numbered frames, encoded by
/// `encoder` (a gst-launch fragment ending in a parser, e.g.
/// `x265enc ! h265parse`), without audio, into hlsclipsink `h` (stream
/// `cam`). Not live: it runs as fast as it encodes.
pub fn numbered_video(location: &Path, props: &str, seconds: u64, encoder: &str) -> gst::Pipeline {
    let frames = seconds * FPS;
    let pipeline = launch(&format!(
        "hlsclipsink name=h location={loc} stream-id=cam {props} \
         appsrc name=src format=time \
           caps=video/x-raw,format=I420,width={W},height={H},framerate={FPS}/1 ! \
           {encoder} ! queue ! h.video",
        loc = location.display(),
    ));
    feed_numbered(&pipeline, frames, false);
    pipeline
}

/// Feeds `frames` numbered frames (I420, `W`x`H`, `FPS`) into the appsrc
/// `src` of `pipeline`, then ends its stream; paced by the wall clock when
/// `live` (frame n leaves at n / FPS).
pub fn feed_numbered(pipeline: &gst::Pipeline, frames: u64, live: bool) {
    feed_numbered_counted(pipeline, frames, live);
}

/// [`feed_numbered`], counting the frames pushed so far.
pub fn feed_numbered_counted(
    pipeline: &gst::Pipeline,
    frames: u64,
    live: bool,
) -> Arc<std::sync::atomic::AtomicU64> {
    let pushed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = pushed.clone();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let next = Arc::new(Mutex::new(0u64));
    let mut t0 = None;
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| {
                let mut n = next.lock().unwrap();
                if *n >= frames {
                    let _ = src.end_of_stream();
                    return;
                }
                if live {
                    let t0 = *t0.get_or_insert_with(std::time::Instant::now);
                    let due = t0 + Duration::from_nanos(*n * NS / FPS);
                    if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                let mut buffer = gst::Buffer::from_mut_slice(numbered_frame(*n as u32));
                {
                    let b = buffer.get_mut().unwrap();
                    b.set_pts(gst::ClockTime::from_nseconds(*n * NS / FPS));
                    b.set_duration(gst::ClockTime::from_nseconds(NS / FPS));
                }
                *n += 1;
                let _ = src.push_buffer(buffer);
                count.store(*n, std::sync::atomic::Ordering::SeqCst);
            })
            .build(),
    );
    pushed
}

/// Numbered frames as raw I420 for ffmpeg's `-f rawvideo -pix_fmt yuv420p
/// -s 320x240` input.
pub fn numbered_raw(frames: u32) -> Vec<u8> {
    (0..frames).flat_map(numbered_frame).collect()
}

/// A live recording of numbered frames (with audio, 1 s segments) serving
/// the HTTP API on a free port, played until it has three segments: the
/// pipeline and the API's base URL.
pub fn live_numbered_with_http(location: &Path) -> (gst::Pipeline, String) {
    let port = super::http::free_port();
    let pipeline = numbered_av(
        location,
        &format!("target-duration=1 http-address=127.0.0.1:{port}"),
        30,
        30,
        true,
    );
    super::play_until_segments(&pipeline, 3);
    (pipeline, format!("http://127.0.0.1:{port}"))
}
