// SPDX-License-Identifier: MPL-2.0
//! Feeds that GStreamer's x264enc did not make: ffmpeg's libx264 with open
//! GOPs and B-pyramid, libx265 with CRA/RASL, in MPEG-TS, parsed only (no
//! encoder upstream to answer keyframe requests). Every clip is checked
//! frame by frame against ffmpeg's decode of the feed itself (framemd5).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use gst::prelude::*;

const SECONDS: u32 = 12;

/// A 12 s, 25 fps feed with AAC audio, made by ffmpeg with `video` codec
/// arguments, as MPEG-TS.
fn feed(dir: &Path, name: &str, video: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.ts"));
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25")
        .args(["-f", "lavfi", "-i", "sine=f=440:r=48000"])
        .args(["-t", &SECONDS.to_string()])
        .args(video)
        .args(["-c:a", "aac", "-f", "mpegts"])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    out
}

fn x264_open_gop(dir: &Path) -> PathBuf {
    feed(
        dir,
        "x264-open",
        &[
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-bf",
            "3",
            "-b_strategy",
            "0",
            "-g",
            "50",
            "-x264opts",
            "open-gop=1:b-pyramid=normal",
        ],
    )
}

fn x265_rasl(dir: &Path) -> PathBuf {
    feed(
        dir,
        "x265-rasl",
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error:keyint=50:min-keyint=50:scenecut=0:bframes=3:b-adapt=0",
        ],
    )
}

/// The md5 of every decoded video frame, in presentation order.
fn frame_md5s(file: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|s| s.trim().to_string()))
        .collect()
}

/// ffmpeg's decode errors, without the one an H.264 decoder reports when
/// it starts at an open-GOP I-frame whose (never presented, dropped)
/// leading reference B-frame a later memory-management command names.
/// The frames themselves are checked bit for bit.
fn h264_open_gop_errors(file: &Path) -> String {
    decode_errors(file)
        .lines()
        .filter(|l| !l.ends_with("mmco: unref short failure"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn parser(feed: &Path) -> &'static str {
    if feed.to_string_lossy().contains("x265") {
        "h265parse"
    } else {
        "h264parse"
    }
}

/// Periodic clips of a feed: sorted paths.
fn periodic(feed: &Path, out: &Path, extra: &str) -> Vec<PathBuf> {
    std::fs::create_dir_all(out).unwrap();
    let p = launch(&format!(
        "filesrc location={} ! tsdemux name=d d. ! {} ! queue ! pc.video \
         d. ! aacparse ! queue ! pc.audio \
         periodicclipper name=pc interval=3 location={}/c%03d.mp4 {extra}",
        feed.display(),
        parser(feed),
        out.display()
    ));
    ok(&run(&p, Duration::from_secs(120)));
    files(out, "mp4")
}

/// Every frame of the feed is presented exactly once across the clips, in
/// order and bit-identical, and every clip starts with a keyframe.
fn assert_gapless_and_exact(feed: &Path, clips: &[PathBuf], h264: bool) {
    let source = frame_md5s(feed);
    assert_eq!(source.len(), SECONDS as usize * 25);
    let mut all = Vec::new();
    for c in clips {
        let errors = if h264 {
            h264_open_gop_errors(c)
        } else {
            decode_errors(c)
        };
        assert!(errors.is_empty(), "{}: {errors}", c.display());
        let types = picture_types(c);
        assert!(
            types.first().is_some_and(|t| t.1),
            "{} starts with {:?}",
            c.display(),
            types.first()
        );
        all.extend(frame_md5s(c));
    }
    assert!(clips.len() >= 3, "{clips:?}");
    assert_eq!(all.len(), source.len(), "frames across the clips");
    let first_diff = all.iter().zip(&source).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "first frame that differs from the feed");
}

#[test]
fn periodic_clips_of_libx264_open_gops_are_gapless_and_exact() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let f = x264_open_gop(dir.path());
    let clips = periodic(&f, &dir.path().join("pc"), "");
    assert_gapless_and_exact(&f, &clips, true);
}

#[test]
fn periodic_clips_of_libx265_rasl_are_gapless_and_exact() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let f = x265_rasl(dir.path());
    let clips = periodic(&f, &dir.path().join("pc"), "");
    assert_gapless_and_exact(&f, &clips, false);
}

/// hlsclipsink and periodicclipper behind one parser: hlsclipsink's
/// keyframe requests make h264parse flag a P frame as a keyframe; neither
/// element may take it for one.
#[test]
fn a_shared_parser_with_keyframe_requests_corrupts_nothing() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let f = x264_open_gop(dir.path());
    let pc = dir.path().join("pc");
    std::fs::create_dir_all(&pc).unwrap();
    let p = launch(&format!(
        "filesrc location={} ! tsdemux name=d d. ! h264parse ! tee name=v \
         d. ! aacparse ! tee name=a \
         v. ! queue ! s.video a. ! queue ! s.audio \
         hlsclipsink name=s location={} stream-id=cam target-duration=2 \
         v. ! queue ! pc.video a. ! queue ! pc.audio \
         periodicclipper name=pc interval=3 location={}/c%03d.mp4",
        f.display(),
        dir.path().display(),
        pc.display()
    ));
    ok(&run(&p, Duration::from_secs(120)));
    assert_gapless_and_exact(&f, &files(&pc, "mp4"), true);

    // The recording: every fragment starts at a sync sample that is an
    // I-frame, and the whole recording decodes to the feed's frames.
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let playlist = session.join("replay.m3u8");
    let source = frame_md5s(&f);
    let recorded = frame_md5s(&playlist);
    assert_eq!(recorded, source, "the recording is the feed");

    // Frame-accurate clips at mid-GOP starts: exactly the requested frames.
    let media_id = session.file_name().unwrap().to_string_lossy().into_owned();
    let sink = gst::ElementFactory::make("hlsclipsink")
        .property("location", dir.path().display().to_string())
        .property("stream-id", "cam")
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    sink.set_bus(Some(&bus));
    for (i, (start, dur)) in [(6.2, 4.0), (2.52, 1.0), (7.0, 2.0)]
        .into_iter()
        .enumerate()
    {
        let out = dir.path().join(format!("clip-{i}.mp4"));
        let query = format!("time={start}s&duration={dur}s&location={}", out.display());
        let id = sink.emit_by_name::<u64>("clip-mp4", &[&Some(media_id.as_str()), &query]);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut done = None;
        while done.is_none() && std::time::Instant::now() < deadline {
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200))
                && let Some(s) = msg.structure()
                && s.name() == "hlsclipsink-clip-done"
                && s.get::<u64>("request-id").unwrap() == id
            {
                done = Some(s.to_owned());
            }
        }
        let done = done.expect("clip done");
        assert!(!done.has_field("error"), "{query}: {done:?}");
        let errors = h264_open_gop_errors(&out);
        assert!(errors.is_empty(), "{query}: {errors}");
        let first = (start * 25.0_f64 - 1e-9).ceil() as usize;
        let end = ((start + dur) * 25.0_f64 - 1e-9).ceil() as usize;
        assert_eq!(frame_md5s(&out), source[first..end], "{query}");
    }
}
