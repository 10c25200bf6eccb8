// SPDX-License-Identifier: MPL-2.0
//! motionclipenc with real pipelines (raw videotestsrc in, MP4 and GIF
//! out); every clip checked with ffprobe and ffmpeg, GIFs also with the gif
//! crate's decoder.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use gst::prelude::*;

const S: u64 = 1_000_000_000;
const TIMEOUT: Duration = Duration::from_secs(180);

/// `frames` of raw video at 30 fps.
fn raw(frames: u32, size: &str) -> String {
    format!(
        "videotestsrc name=src num-buffers={frames} ! capsfilter name=cf \
         caps=video/x-raw,{size},framerate=30/1"
    )
}

/// Checks an MP4 clip: one H.264 video stream and nothing else, the size,
/// 10 fps, the duration within one output frame, one keyframe first,
/// faststart, a clean decode. Returns (frames, duration in s).
fn check_mp4(file: &Path, size: (u32, u32), duration: f64) -> (u64, f64) {
    let name = file.display();
    let streams = streams(file);
    assert_eq!(streams.len(), 1, "{name}: {streams:?}");
    assert!(stream(&streams, "audio").is_none(), "{name}: audio");
    let v = stream(&streams, "video").unwrap();
    assert_eq!(v.codec_name, "h264", "{name}");
    assert_eq!((v.width, v.height), size, "{name}");
    assert_eq!(v.frame_rate, "10/1", "{name}");
    assert!(
        (v.duration - duration).abs() <= 0.1 + 1e-6,
        "{name}: {} s, expected {duration} s",
        v.duration
    );
    let boxes = top_level_boxes(file);
    let moov = boxes.iter().position(|b| b == "moov").unwrap();
    let mdat = boxes.iter().position(|b| b == "mdat").unwrap();
    assert!(moov < mdat, "{name}: not faststart: {boxes:?}");
    let types = picture_types(file);
    assert_eq!(types.len() as u64, v.frames, "{name}");
    assert!(types[0].1, "{name}: starts with a keyframe");
    assert_eq!(
        types.iter().filter(|t| t.1).count(),
        1,
        "{name}: one keyframe"
    );
    assert_eq!(decode_errors(file), "", "{name}");
    (v.frames, v.duration)
}

/// A GIF read back with the gif crate: (size, delays in 1/100 s, loops
/// forever, first frame as RGBA).
fn read_gif(file: &Path) -> ((u16, u16), Vec<u16>, bool, Vec<u8>) {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut d = opts
        .read_info(std::fs::File::open(file).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let size = (d.width(), d.height());
    let mut delays = Vec::new();
    let mut first = None;
    while let Some(frame) = d.read_next_frame().unwrap() {
        delays.push(frame.delay);
        if first.is_none() {
            assert_eq!((frame.width, frame.height), size, "full frames");
            first = Some(frame.buffer.to_vec());
        }
    }
    // The loop extension comes before the first frame.
    let forever = d.repeat() == gif::Repeat::Infinite;
    (size, delays, forever, first.unwrap_or_default())
}

#[test]
fn mp4_clips_every_interval() {
    let dir = tempfile::tempdir().unwrap();
    // 10 s at 640x360, a 2 s clip every 4 s: at 0, 4 and 8 s.
    let p = launch(&format!(
        "{} ! motionclipenc interval=4 duration=2 location={} ! appsink name=out sync=false",
        raw(300, "width=640,height=360"),
        dir.path().join("m-%03d.mp4").display()
    ));
    let out = collect(&p);
    let run = run(&p, TIMEOUT);
    ok(&run);
    assert!(run.warnings.is_empty(), "{:?}", run.warnings);
    let clips = files(dir.path(), "mp4");
    assert_eq!(clips.len(), 3, "{clips:?}");
    for f in &clips {
        assert_eq!(check_mp4(f, (320, 180), 2.0), (20, 2.0));
    }
    let msgs = run.named("motionclipenc-clip");
    assert_eq!(msgs.len(), 3);
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(ns(m, "running-time"), 4 * S * i as u64);
        assert_eq!(ns(m, "duration"), 2 * S);
        assert_eq!(m.get::<u32>("frames").unwrap(), 20);
        assert_eq!(m.get::<i32>("width").unwrap(), 320);
        assert_eq!(m.get::<i32>("height").unwrap(), 180);
        assert_eq!(m.get::<String>("trigger").unwrap(), "periodic");
        assert_eq!(
            m.get::<String>("location").unwrap(),
            clips[i].display().to_string()
        );
        assert_eq!(
            m.get::<u64>("bytes").unwrap(),
            std::fs::metadata(&clips[i]).unwrap().len()
        );
        assert!(
            chrono::DateTime::parse_from_rfc3339(&m.get::<String>("utc").unwrap()).is_ok(),
            "utc"
        );
    }
    // The same files go downstream, stamped with their start.
    let out = out.lock().unwrap();
    let pts: Vec<u64> = out.iter().map(|o| o.0).collect();
    assert_eq!(pts, [0, 4 * S, 8 * S]);
    assert!(out.iter().all(|o| o.2 == "video/quicktime"));
    for (o, f) in out.iter().zip(&clips) {
        assert_eq!(o.1 as u64, std::fs::metadata(f).unwrap().len());
    }
}

#[test]
fn clips_per_run_for_duration_and_interval() {
    // (interval, duration, input frames at 30 fps, clips, last duration).
    for (interval, duration, frames, clips, last) in [
        (3, 1, 300, 4, 1.0),
        (5, 2, 300, 2, 2.0),
        // Windows longer than the interval follow each other.
        (1, 2, 150, 3, 1.0),
        (60, 3, 300, 1, 3.0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let p = launch(&format!(
            "{} ! motionclipenc interval={interval} duration={duration} width=160 location={} ! fakesink",
            raw(frames, "width=320,height=240"),
            dir.path().join("m-%03d.mp4").display()
        ));
        let run = run(&p, TIMEOUT);
        ok(&run);
        let made = files(dir.path(), "mp4");
        assert_eq!(made.len(), clips, "interval={interval} duration={duration}");
        for (i, f) in made.iter().enumerate() {
            let expect = if i + 1 == clips {
                last
            } else {
                f64::from(duration)
            };
            check_mp4(f, (160, 120), expect);
        }
    }
}

#[test]
fn gif_frames_delays_loop_and_colours() {
    let dir = tempfile::tempdir().unwrap();
    // 7 s: 2 s clips at 0 and 5 s.
    let p = launch(&format!(
        "{} ! motionclipenc format=gif interval=5 duration=2 location={} ! appsink name=out sync=false",
        raw(210, "width=640,height=360"),
        dir.path().join("m-%03d.gif").display()
    ));
    let out = collect(&p);
    let run = run(&p, TIMEOUT);
    ok(&run);
    let gifs = files(dir.path(), "gif");
    assert_eq!(gifs.len(), 2);
    let reference = first_frame_rgba("width=640,height=360", (320, 180));
    for f in &gifs {
        let (size, delays, forever, rgba) = read_gif(f);
        assert_eq!(size, (320, 180));
        assert_eq!(delays, vec![10; 20], "{}", f.display());
        assert!(forever, "loops");
        // The test pattern keeps its colours: the first frame against the
        // same frame converted without a palette.
        assert_eq!(rgba.len(), reference.len());
        let diff: u64 = rgba
            .iter()
            .zip(&reference)
            .map(|(&a, &b)| u64::from(a.abs_diff(b)))
            .sum();
        let mean = diff as f64 / rgba.len() as f64;
        assert!(mean < 6.0, "{}: mean error {mean}", f.display());
        // The bars' centres (white, yellow, cyan, green, magenta, red,
        // blue) within a few levels.
        for k in 0..7 {
            let i = (40 * 320 + 320 * (2 * k + 1) / 14) * 4;
            let d: u32 = (0..3)
                .map(|c| u32::from(rgba[i + c].abs_diff(reference[i + c])))
                .sum();
            assert!(
                d <= 24,
                "bar {k}: {:?} vs {:?}",
                &rgba[i..i + 3],
                &reference[i..i + 3]
            );
        }
        let s = streams(f);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].codec_name, "gif");
        assert_eq!(s[0].frames, 20);
        assert_eq!(decode_errors(f), "");
    }
    let msgs = run.named("motionclipenc-clip");
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1].get::<String>("format").unwrap(), "gif");
    assert_eq!(ns(msgs[1], "running-time"), 5 * S);
    let out = out.lock().unwrap();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|o| o.2 == "image/gif"));
}

/// The first frame of videotestsrc at `caps`, scaled to `size` in RGBA.
fn first_frame_rgba(caps: &str, size: (u32, u32)) -> Vec<u8> {
    let p = launch(&format!(
        "videotestsrc num-buffers=1 ! video/x-raw,{caps} ! videoconvert ! videoscale ! \
         video/x-raw,format=RGBA,width={},height={} ! appsink name=out sync=false",
        size.0, size.1
    ));
    let sink = p
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let sample = sink.pull_sample().unwrap();
    let data = sample.buffer().unwrap().map_readable().unwrap().to_vec();
    p.set_state(gst::State::Null).unwrap();
    data
}

/// Calls `f(n)` for every buffer leaving `element`'s src pad.
fn on_buffer(p: &gst::Pipeline, element: &str, f: impl Fn(u64) + Send + Sync + 'static) {
    let n = AtomicU64::new(0);
    p.by_name(element)
        .unwrap()
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            f(n.fetch_add(1, Ordering::SeqCst));
            gst::PadProbeReturn::Ok
        });
}

#[test]
fn capture_now_starts_a_clip_at_the_next_frame() {
    for format in ["mp4", "gif"] {
        let p = launch(&format!(
            "{} ! motionclipenc name=m interval=0 duration=1 format={format} ! appsink name=out sync=false",
            raw(150, "width=320,height=240")
        ));
        let m = p.by_name("m").unwrap();
        assert!(!m.emit_by_name::<bool>("capture-now", &[]), "not running");
        // Asked while the 46th frame (1.5 s) is on its way in.
        on_buffer(&p, "cf", move |i| {
            if i == 45 {
                assert!(m.emit_by_name::<bool>("capture-now", &[]));
            }
        });
        let out = collect(&p);
        let run = run(&p, TIMEOUT);
        ok(&run);
        let msgs = run.named("motionclipenc-clip");
        assert_eq!(msgs.len(), 1, "{format}");
        assert_eq!(msgs[0].get::<String>("trigger").unwrap(), "on-demand");
        assert_eq!(ns(msgs[0], "running-time"), 45 * S / 30);
        assert_eq!(msgs[0].get::<u32>("frames").unwrap(), 10);
        assert_eq!(out.lock().unwrap()[0].0, 45 * S / 30);
    }
}

#[test]
fn caps_change_inside_a_window_ends_it_with_a_valid_clip() {
    let dir = tempfile::tempdir().unwrap();
    // 6 s, 2 s clips every 2 s; 320x240 becomes 640x360 at 1.5 s.
    let p = launch(&format!(
        "{} ! motionclipenc interval=2 duration=2 location={} ! fakesink",
        raw(180, "width=320,height=240"),
        dir.path().join("m-%03d.mp4").display()
    ));
    let cf = p.by_name("cf").unwrap();
    on_buffer(&p, "src", move |i| {
        if i + 1 == 45 {
            cf.set_property(
                "caps",
                "video/x-raw,width=640,height=360,framerate=30/1"
                    .parse::<gst::Caps>()
                    .unwrap(),
            );
        }
    });
    let run = run(&p, TIMEOUT);
    ok(&run);
    let clips = files(dir.path(), "mp4");
    assert_eq!(clips.len(), 3, "{clips:?}");
    assert_eq!(check_mp4(&clips[0], (320, 240), 1.5), (15, 1.5));
    check_mp4(&clips[1], (320, 180), 2.0);
    check_mp4(&clips[2], (320, 180), 2.0);
    let msgs = run.named("motionclipenc-clip");
    assert_eq!(ns(msgs[0], "duration"), 1500 * 1_000_000);
}

#[test]
fn eos_inside_a_window_still_writes_the_clip() {
    for format in ["mp4", "gif"] {
        let dir = tempfile::tempdir().unwrap();
        // 100 frames (3.33 s): the second window (at 3 s) gets 4 frames.
        let p = launch(&format!(
            "{} ! motionclipenc interval=3 duration=3 format={format} location={}",
            raw(100, "width=320,height=240"),
            dir.path().join(format!("m-%03d.{format}")).display()
        ));
        let run = run(&p, TIMEOUT);
        ok(&run);
        let clips = files(dir.path(), format);
        assert_eq!(clips.len(), 2, "{format}");
        let msgs = run.named("motionclipenc-clip");
        assert_eq!(msgs[1].get::<u32>("frames").unwrap(), 4);
        assert_eq!(ns(msgs[1], "duration"), 400_000_000);
        if format == "mp4" {
            check_mp4(&clips[0], (320, 240), 3.0);
            check_mp4(&clips[1], (320, 240), 0.4);
        } else {
            let (_, delays, forever, _) = read_gif(&clips[1]);
            assert_eq!(delays, [10, 10, 10, 10]);
            assert!(forever);
            assert_eq!(decode_errors(&clips[1]), "");
        }
    }
}

#[test]
fn latest_location_is_never_seen_partially_written() {
    let dir = tempfile::tempdir().unwrap();
    let latest = dir.path().join("latest.mp4");
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (latest, done) = (latest.clone(), done.clone());
        std::thread::spawn(move || {
            let mut versions = std::collections::HashSet::new();
            while !done.load(Ordering::SeqCst) {
                let Ok(bytes) = std::fs::read(&latest) else {
                    continue;
                };
                // A whole file: its top-level boxes add up to its size.
                let mut at = 0usize;
                while at + 8 <= bytes.len() {
                    let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
                    at += size.max(8) as usize;
                }
                assert_eq!(at, bytes.len(), "partial file");
                assert_eq!(&bytes[4..8], b"ftyp");
                versions.insert(bytes);
            }
            versions.len()
        })
    };
    // 30 clips of 1 s, one a second.
    let p = launch(&format!(
        "videotestsrc num-buffers=900 pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! \
         motionclipenc interval=1 duration=1 latest-location={} ! fakesink",
        latest.display()
    ));
    let run = run(&p, TIMEOUT);
    done.store(true, Ordering::SeqCst);
    let versions = reader.join().unwrap();
    ok(&run);
    assert_eq!(run.named("motionclipenc-clip").len(), 30);
    assert!(versions >= 2, "the reader saw {versions} versions");
    check_mp4(&latest, (320, 180), 1.0);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary file left");
}

#[test]
fn unwritable_location_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let target = blocker.join("m-%d.mp4");
    let p = launch(&format!(
        "{} ! motionclipenc interval=1 duration=1 location={} ! fakesink",
        raw(90, "width=160,height=120"),
        target.display()
    ));
    let run = run(&p, TIMEOUT);
    let error = run.error.expect("an error");
    assert!(
        error.contains(&blocker.join("m-0.mp4").display().to_string()),
        "{error}"
    );
}

#[test]
fn files_only_max_files_and_start_index() {
    // Nothing downstream: the element ends the stream itself.
    let dir = tempfile::tempdir().unwrap();
    let p = launch(&format!(
        "{} ! motionclipenc interval=1 duration=1 width=64 max-files=2 start-index=7 location={}",
        raw(150, "width=320,height=240"),
        dir.path().join("m-%d.mp4").display()
    ));
    ok(&run(&p, TIMEOUT));
    let names: Vec<String> = files(dir.path(), "mp4")
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["m-10.mp4", "m-11.mp4"]);
}

#[test]
fn pixel_aspect_ratio_and_height() {
    let dir = tempfile::tempdir().unwrap();
    // 720x576 at 16:15 shows as 768x576; height=120 keeps that shape.
    let f = dir.path().join("m.mp4");
    let p = launch(&format!(
        "videotestsrc num-buffers=30 ! video/x-raw,width=720,height=576,pixel-aspect-ratio=16/15,framerate=30/1 ! \
         motionclipenc interval=1 duration=1 width=0 height=120 latest-location={} ! fakesink",
        f.display()
    ));
    ok(&run(&p, TIMEOUT));
    check_mp4(&f, (160, 120), 1.0);
}

#[test]
fn openh264_encoder_when_asked() {
    init();
    // scripts/deps.sh installs it (gstreamer1.0-plugins-bad): a missing
    // encoder fails the test rather than skipping it.
    assert!(
        gst::ElementFactory::find("openh264enc").is_some(),
        "openh264enc is missing: install gstreamer1.0-plugins-bad (scripts/deps.sh)"
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.mp4");
    let p = launch(&format!(
        "{} ! motionclipenc name=m encoder=openh264enc interval=0 duration=2 latest-location={} ! fakesink",
        raw(90, "width=320,height=240"),
        f.display()
    ));
    let m = p.by_name("m").unwrap();
    let asked = AtomicBool::new(false);
    on_buffer(&p, "cf", move |_| {
        if !asked.swap(true, Ordering::SeqCst) {
            m.emit_by_name::<bool>("capture-now", &[]);
        }
    });
    ok(&run(&p, TIMEOUT));
    check_mp4(&f, (320, 240), 2.0);
}

#[test]
fn a_missing_encoder_is_an_error_at_start() {
    let p = launch(&format!(
        "{} ! motionclipenc encoder=nosuchenc ! fakesink",
        raw(30, "width=320,height=240")
    ));
    assert!(p.set_state(gst::State::Playing).is_err());
    let _ = p.set_state(gst::State::Null);
}

#[test]
fn live_source() {
    let dir = tempfile::tempdir().unwrap();
    // 3 s of a live source: clips at 0, 1 and 2 s, in real time.
    let p = launch(&format!(
        "videotestsrc is-live=true num-buffers=90 ! video/x-raw,width=640,height=360,framerate=30/1 ! \
         motionclipenc interval=1 duration=1 location={} ! fakesink sync=true",
        dir.path().join("m-%d.mp4").display()
    ));
    let run = run(&p, TIMEOUT);
    ok(&run);
    assert!(run.warnings.is_empty(), "{:?}", run.warnings);
    let clips = files(dir.path(), "mp4");
    assert_eq!(clips.len(), 3);
    for f in &clips {
        check_mp4(f, (320, 180), 1.0);
    }
}

#[test]
fn flushing_seek_restarts_the_schedule() {
    let p = launch(
        "videotestsrc ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         motionclipenc interval=2 duration=1 ! appsink name=out sync=false",
    );
    let out = collect(&p);
    p.set_state(gst::State::Paused).unwrap();
    let (res, _, _) = p.state(gst::ClockTime::from_seconds(30));
    assert!(res.is_ok(), "prerolls");
    p.seek(
        1.0,
        gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
        gst::SeekType::Set,
        gst::ClockTime::from_seconds(5),
        gst::SeekType::Set,
        gst::ClockTime::from_seconds(9),
    )
    .unwrap();
    let run = run(&p, TIMEOUT);
    ok(&run);
    // After the seek running time starts again at 0 (media 5 s): clips at
    // running time 0 and 2 s, 1 s each. (The preroll may have made the
    // clip at 0 s before the seek.)
    let msgs = run.named("motionclipenc-clip");
    let after: Vec<u64> = msgs
        .iter()
        .map(|m| ns(m, "running-time"))
        .collect::<Vec<_>>()
        .split_off(msgs.len().saturating_sub(2));
    assert_eq!(after, [0, 2 * S], "{msgs:?}");
    let out = out.lock().unwrap();
    let last: Vec<u64> = out.iter().rev().take(2).map(|o| o.0).collect();
    assert_eq!(
        last,
        [2 * S, 0],
        "running time of the pushed clips: {out:?}"
    );
}

#[test]
fn live_source_behind_a_tee_with_another_sink() {
    // The other branch's sink waits for PLAYING with its queue full; the
    // pipeline gets there only once motionclipenc's sink has prerolled.
    let dir = tempfile::tempdir().unwrap();
    let p = launch(&format!(
        "videotestsrc is-live=true num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         tee name=t t. ! queue ! fakesink sync=true \
         t. ! queue ! motionclipenc interval=1 duration=1 ! multifilesink location={}",
        dir.path().join("m-%d.mp4").display()
    ));
    let run = run(&p, Duration::from_secs(30));
    ok(&run);
    let clips = files(dir.path(), "mp4");
    assert_eq!(clips.len(), 2);
    for f in &clips {
        check_mp4(f, (320, 240), 1.0);
    }
}
