// SPDX-License-Identifier: MPL-2.0
//! periodicclipper with real encoders; every clip checked by ffprobe/ffmpeg
//! and mp4-atom.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use gst::prelude::*;

/// One AAC frame at 48 kHz.
const AAC_FRAME: f64 = 1024.0 / 48_000.0;

fn av_pipeline(dir: &Path, props: &str, seconds: u32, fps: u32, gop: u32) -> gst::Pipeline {
    let frames = seconds * fps;
    let audio_frames = (f64::from(seconds) * 48_000.0 / 1024.0).ceil() as u32;
    launch(&format!(
        "periodicclipper name=pc location={loc} {props} \
         videotestsrc num-buffers={frames} ! video/x-raw,width=320,height=240,framerate={fps}/1 ! \
           x264enc bframes=2 b-adapt=false speed-preset=ultrafast key-int-max={gop} ! h264parse ! queue ! pc.video \
         audiotestsrc num-buffers={audio_frames} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! \
           voaacenc ! aacparse ! queue ! pc.audio",
        loc = dir.join("clip-%05d.mp4").display()
    ))
}

fn clips(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    v.sort();
    v
}

/// The checks every clip must pass; returns (video frames, video duration).
fn check_clip(clip: &Path) -> (u64, f64) {
    let errors = decode_errors(clip);
    assert!(errors.is_empty(), "{}: {errors}", clip.display());
    let boxes = top_level_boxes(clip);
    let moov = boxes.iter().position(|b| b == "moov").expect("moov");
    let mdat = boxes.iter().position(|b| b == "mdat").expect("mdat");
    assert!(moov < mdat, "{}: faststart, got {boxes:?}", clip.display());
    let st = streams(clip);
    let v = stream(&st, "video").expect("video stream");
    let a = stream(&st, "audio").expect("audio stream");
    assert_eq!(v.codec_name, "h264");
    assert_eq!(a.codec_name, "aac");
    assert!(a.frames > 0);
    assert!(
        (a.start_time - v.start_time).abs() <= AAC_FRAME + 1e-6,
        "{}: audio starts at {} and video at {}",
        clip.display(),
        a.start_time,
        v.start_time
    );
    let types = picture_types(clip);
    assert!(
        types[0].1,
        "{}: first frame is not a keyframe",
        clip.display()
    );
    (v.frames, v.duration)
}

#[test]
fn periodic_clips_are_gapless_keyframe_aligned_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    // 10 s at 30 fps, natural GOP of 45 frames; the clipper asks for a
    // keyframe at every 2 s boundary.
    let pipeline = av_pipeline(dir.path(), "interval=2", 10, 30, 45);
    let run = run(&pipeline, Duration::from_secs(120));
    assert!(run.error.is_none(), "{:?}", run.error);
    assert!(run.eos);
    let files = clips(dir.path());
    let ready = run.named("periodicclipper-clip-ready");
    assert_eq!(ready.len(), files.len());
    assert_eq!(files.len(), 5, "{files:?}");
    let mut total = 0;
    let mut saw_b = false;
    for (i, (file, msg)) in files.iter().zip(&ready).enumerate() {
        assert_eq!(
            msg.get::<String>("location").unwrap(),
            file.display().to_string()
        );
        assert_eq!(msg.get::<u32>("index").unwrap(), i as u32);
        let trigger = msg.get::<String>("trigger").unwrap();
        assert_eq!(trigger, if i == 4 { "eos" } else { "periodic" });
        let (frames, duration) = check_clip(file);
        assert_eq!(msg.get::<u64>("video-frames").unwrap(), frames);
        // Keyframe requests make every cut land on the 2 s tick.
        assert!(
            (duration - 2.0).abs() < 0.02,
            "{}: {duration} s",
            file.display()
        );
        let rec = msg.get::<gst::ClockTime>("recording-time").unwrap();
        assert_eq!(rec.mseconds(), i as u64 * 2000);
        assert!(!msg.get::<String>("utc").unwrap().is_empty());
        saw_b |= picture_types(file).iter().any(|(t, _)| t == "B");
        total += frames;
    }
    assert!(saw_b, "the input has B-frames");
    assert_eq!(total, 300, "every input frame exactly once");
    let moov = moov(&files[1]);
    let stbl = &moov.trak[0].mdia.minf.stbl;
    assert!(stbl.ctts.is_some(), "B-frames need ctts");
    assert!(stbl.stss.is_some());
    assert!(moov.trak[0].edts.is_some());
}

#[test]
fn without_keyframe_requests_clips_end_at_natural_keyframes() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = av_pipeline(
        dir.path(),
        "interval=2 send-keyframe-requests=false",
        8,
        30,
        45,
    );
    let run = run(&pipeline, Duration::from_secs(120));
    assert!(run.error.is_none(), "{:?}", run.error);
    let files = clips(dir.path());
    let mut total = 0;
    for f in &files[..files.len() - 1] {
        let (frames, duration) = check_clip(f);
        // Cuts at the first keyframe at or after each tick: within one GOP.
        assert!((2.0..2.0 + 1.5 + 0.01).contains(&duration), "{duration}");
        assert_eq!(frames % 45, 0, "whole GOPs");
        total += frames;
    }
    total += check_clip(files.last().unwrap()).0;
    assert_eq!(total, 240);
}

#[test]
fn on_demand_clips_keep_the_series_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = av_pipeline(dir.path(), "interval=0", 8, 30, 300);
    let pc = pipeline.by_name("pc").unwrap();
    // Ask for a clip when the encoder output passes 3 s (from another
    // thread, as an application would).
    let parse = pipeline
        .iterate_elements()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "h264parse"))
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let tx = std::sync::Mutex::new(Some(tx));
    parse
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            // Encoders shift timestamps (B-frames): compare running time.
            let running_time = |pts| {
                let ev = pad.sticky_event::<gst::event::Segment>(0)?;
                let seg = ev.segment().downcast_ref::<gst::ClockTime>()?.clone();
                seg.to_running_time(pts)
            };
            if let Some(b) = info.buffer()
                && b.pts()
                    .and_then(running_time)
                    .is_some_and(|rt| rt >= gst::ClockTime::from_seconds(3))
                && let Some(tx) = tx.lock().unwrap().take()
            {
                let _ = tx.send(());
            }
            gst::PadProbeReturn::Ok
        });
    let pc2 = pc.clone();
    let asker = std::thread::spawn(move || {
        rx.recv().ok()?;
        pc2.emit_by_name::<Option<String>>("clip-now", &[])
    });
    let run = run(&pipeline, Duration::from_secs(120));
    assert!(run.error.is_none(), "{:?}", run.error);
    let promised = asker.join().unwrap().expect("clip-now returns a location");
    let ready = run.named("periodicclipper-clip-ready");
    let triggers: Vec<String> = ready.iter().map(|m| m.get("trigger").unwrap()).collect();
    assert_eq!(triggers, ["on-demand", "eos"]);
    assert_eq!(ready[0].get::<String>("location").unwrap(), promised);
    let files = clips(dir.path());
    assert_eq!(files.len(), 2);
    let (first, d0) = check_clip(&files[0]);
    let (second, _) = check_clip(&files[1]);
    // The encoder honoured the keyframe request: the clip ends just after 3 s
    // although the natural GOP is 10 s.
    assert!((3.0..4.0).contains(&d0), "{d0}");
    assert_eq!(first + second, 240);
}

#[test]
fn max_files_keeps_the_newest_and_signals_control_the_period() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = av_pipeline(
        dir.path(),
        "interval=1 max-files=2 start-index=10",
        6,
        30,
        90,
    );
    let run = run(&pipeline, Duration::from_secs(120));
    assert!(run.error.is_none(), "{:?}", run.error);
    let ready = run.named("periodicclipper-clip-ready");
    assert_eq!(ready.len(), 6);
    let files = clips(dir.path());
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["clip-00014.mp4", "clip-00015.mp4"]);
    for f in &files {
        check_clip(f);
    }

    init();
    let pc = gst::ElementFactory::make("periodicclipper")
        .build()
        .unwrap();
    assert!(pc.emit_by_name::<bool>("start-periodic", &[&5u32]));
    assert_eq!(pc.property::<u32>("interval"), 5);
    assert!(!pc.emit_by_name::<bool>("start-periodic", &[&0u32]));
    assert!(pc.emit_by_name::<bool>("stop-periodic", &[]));
    assert_eq!(pc.property::<u32>("interval"), 0);
}

#[test]
fn format_location_full_chooses_names() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = av_pipeline(dir.path(), "interval=2", 4, 30, 60);
    let pc = pipeline.by_name("pc").unwrap();
    let base = dir.path().to_path_buf();
    pc.connect("format-location-full", false, move |args| {
        let index = args[1].get::<u32>().unwrap();
        let sample = args[2].get::<gst::Sample>().unwrap();
        let pts = sample.buffer().and_then(|b| b.pts()).unwrap();
        Some(
            base.join(format!("named-{index}-{}ms.mp4", pts.mseconds()))
                .display()
                .to_string()
                .to_value(),
        )
    });
    let run = run(&pipeline, Duration::from_secs(120));
    assert!(run.error.is_none(), "{:?}", run.error);
    let names: Vec<String> = clips(dir.path())
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["named-0-0ms.mp4", "named-1-2000ms.mp4"]);
}

#[test]
fn caps_without_codec_data_fail_with_a_clear_message() {
    init();
    let pipeline = launch(
        "appsrc name=src format=time caps=video/x-h264,stream-format=avc,alignment=au,width=320,height=240,framerate=30/1 \
         ! periodicclipper name=pc location=/tmp/never-%d.mp4",
    );
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let mut buf = gst::Buffer::from_slice(vec![0u8; 16]);
    buf.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
    let _ = src.push_buffer(buf);
    let _ = src.end_of_stream();
    let run = run(&pipeline, Duration::from_secs(20));
    let err = run.error.expect("an error");
    assert!(
        err.contains("codec_data") && err.contains("h264parse"),
        "{err}"
    );
}

#[test]
fn unwritable_location_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let target = blocker.join("sub");
    let pipeline = av_pipeline(&target, "interval=1", 3, 30, 30);
    let run = run(&pipeline, Duration::from_secs(60));
    let err = run.error.expect("an error");
    assert!(err.contains(&target.display().to_string()), "{err}");
}

#[test]
fn h265_and_opus_clips() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = launch(&format!(
        "periodicclipper name=pc interval=1 location={loc} \
         videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
           x265enc speed-preset=ultrafast key-int-max=30 ! h265parse ! queue ! pc.video \
         audiotestsrc num-buffers=100 samplesperbuffer=960 ! audio/x-raw,rate=48000 ! opusenc ! queue ! pc.audio",
        loc = dir.path().join("clip-%05d.mp4").display()
    ));
    let run = run(&pipeline, Duration::from_secs(120));
    assert!(run.error.is_none(), "{:?}", run.error);
    let files = clips(dir.path());
    assert_eq!(files.len(), 2);
    let mut total = 0;
    for f in &files {
        let errors = decode_errors(f);
        assert!(errors.is_empty(), "{}: {errors}", f.display());
        let st = streams(f);
        assert_eq!(stream(&st, "video").unwrap().codec_name, "hevc");
        assert_eq!(stream(&st, "audio").unwrap().codec_name, "opus");
        total += stream(&st, "video").unwrap().frames;
    }
    assert_eq!(total, 60);
}

#[test]
fn a_resolution_change_ends_the_clip_and_the_next_starts_in_the_new_size() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = launch(&format!(
        "periodicclipper name=pc interval=60 location={loc} \
         videotestsrc name=src num-buffers=90 ! video/x-raw,framerate=30/1 ! videoscale ! \
           capsfilter name=size caps=video/x-raw,width=320,height=240 ! \
           x264enc speed-preset=ultrafast key-int-max=30 ! h264parse ! queue ! pc.video",
        loc = dir.path().join("clip-%05d.mp4").display()
    ));
    let size = pipeline.by_name("size").unwrap();
    let src = pipeline.by_name("src").unwrap();
    let switched = std::sync::atomic::AtomicBool::new(false);
    src.static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer()
                && b.offset() == 45
                && !switched.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                size.set_property(
                    "caps",
                    gst::Caps::builder("video/x-raw")
                        .field("width", 640i32)
                        .field("height", 480i32)
                        .build(),
                );
            }
            gst::PadProbeReturn::Ok
        });
    let run = run(&pipeline, Duration::from_secs(120));
    assert!(run.error.is_none(), "{:?}", run.error);
    let ready = run.named("periodicclipper-clip-ready");
    let triggers: Vec<String> = ready.iter().map(|m| m.get("trigger").unwrap()).collect();
    assert_eq!(triggers, ["caps-change", "eos"]);
    let files = clips(dir.path());
    assert_eq!(files.len(), 2);
    let mut total = 0;
    for (f, (w, h)) in files.iter().zip([(320, 240), (640, 480)]) {
        let errors = decode_errors(f);
        assert!(errors.is_empty(), "{}: {errors}", f.display());
        let moov = moov(f);
        let tkhd = &moov.trak[0].tkhd;
        assert_eq!((tkhd.width.integer(), tkhd.height.integer()), (w, h));
        total += stream(&streams(f), "video").unwrap().frames;
    }
    assert_eq!(total, 90);
}

#[test]
fn stopping_without_eos_still_writes_the_last_clip() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = launch(&format!(
        "periodicclipper name=pc interval=60 location={loc} \
         videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
           x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h264parse ! queue ! pc.video",
        loc = dir.path().join("clip-%05d.mp4").display()
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    pipeline.set_state(gst::State::Null).unwrap();
    let files = clips(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let errors = decode_errors(&files[0]);
    assert!(errors.is_empty(), "{errors}");
    let st = streams(&files[0]);
    assert!(stream(&st, "video").unwrap().frames >= 20);
}
