// SPDX-License-Identifier: MPL-2.0
//! hlsclipsink with real encoders; recordings checked with ffprobe/ffmpeg
//! (playing the replay playlist), m3u8-rs and mp4-atom.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use gst::prelude::*;

fn av(location: &Path, props: &str, seconds: u32, gop: u32) -> gst::Pipeline {
    let frames = seconds * 30;
    let audio_frames = (f64::from(seconds) * 48_000.0 / 1024.0).ceil() as u32;
    launch(&format!(
        "hlsclipsink name=h location={loc} stream-id=cam {props} \
         videotestsrc name=vsrc num-buffers={frames} ! video/x-raw,width=320,height=240,framerate=30/1 ! \
           x264enc bframes=2 b-adapt=false speed-preset=ultrafast key-int-max={gop} ! h264parse name=parse ! queue ! h.video \
         audiotestsrc num-buffers={audio_frames} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! \
           voaacenc ! aacparse ! queue ! h.audio",
        loc = location.display()
    ))
}

fn the_session(location: &Path) -> PathBuf {
    let dirs = session_dirs(&location.join("cam"));
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// Init + segment as one file, for per-segment checks.
fn joined(session: &Path, map: &str, uri: &str, out: &Path) -> PathBuf {
    let mut data = std::fs::read(session.join(map)).unwrap();
    data.extend(std::fs::read(session.join(uri)).unwrap());
    std::fs::write(out, data).unwrap();
    out.to_path_buf()
}

fn frames_of(playlist: &Path) -> (u64, u64) {
    let st = streams(playlist);
    (
        stream(&st, "video").map_or(0, |s| s.frames),
        stream(&st, "audio").map_or(0, |s| s.frames),
    )
}

#[test]
fn records_a_replay_that_plays_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = av(dir.path(), "target-duration=4", 10, 60);
    let run = run(&pipeline, Duration::from_secs(120));
    assert!(run.error.is_none(), "{:?}", run.error);
    assert!(run.eos);
    let session = the_session(dir.path());
    let media_id = session.file_name().unwrap().to_string_lossy().into_owned();

    let replay = media_playlist(&session.join("replay.m3u8"));
    assert_eq!(replay.version, Some(7));
    assert!(replay.independent_segments);
    assert!(replay.end_list);
    assert_eq!(replay.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
    let durations: Vec<f32> = replay.segments.iter().map(|s| s.duration).collect();
    assert_eq!(durations.len(), 3, "{durations:?}");
    assert!((durations[0] - 4.0).abs() < 0.01 && (durations[1] - 4.0).abs() < 0.01);
    assert!((durations.iter().sum::<f32>() - 10.0).abs() < 0.05);
    for s in &replay.segments {
        assert!(s.duration.round() as u64 <= replay.target_duration);
    }
    // PDT advances with the media.
    let pdts: Vec<_> = replay
        .segments
        .iter()
        .map(|s| s.program_date_time.expect("PDT"))
        .collect();
    for (i, w) in pdts.windows(2).enumerate() {
        let step = (w[1] - w[0]).num_milliseconds();
        assert!((step - (durations[i] * 1000.0) as i64).abs() <= 2, "{step}");
    }
    assert_eq!(replay.segments[0].map.as_ref().unwrap().uri, "init.mp4");

    let live = media_playlist(&session.join("live.m3u8"));
    assert!(live.end_list);
    assert_eq!(live.segments.len(), 3);

    // Every input frame plays back through the replay playlist, cleanly.
    let playlist = session.join("replay.m3u8");
    assert_eq!(frames_of(&playlist), (300, 469));
    let errors = decode_errors(&playlist);
    assert!(errors.is_empty(), "{errors}");

    // Each segment starts with a keyframe and holds one fragment per GOP.
    for s in &replay.segments {
        let one = joined(&session, "init.mp4", &s.uri, &dir.path().join("one.mp4"));
        assert!(picture_types(&one)[0].1, "{} starts with a keyframe", s.uri);
        let scan = gstliveclip::mp4::scan::scan_segment(&session.join(&s.uri)).unwrap();
        assert_eq!(scan.valid_len, scan.file_len);
        assert_eq!(
            scan.fragments.len(),
            (s.duration / 2.0).round() as usize,
            "{}: {} s",
            s.uri,
            s.duration
        );
        assert!(scan.fragments.iter().all(|f| f.runs[0].starts_with_sync));
    }

    let sessions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cam/sessions.json")).unwrap())
            .unwrap();
    let s0 = &sessions["sessions"][0];
    assert_eq!(s0["media_id"], media_id.as_str());
    assert_eq!(s0["state"], "ended");
    assert_eq!(s0["segments"], 3);
    assert!((s0["duration"].as_f64().unwrap() - 10.0).abs() < 0.05);

    let added = run.named("hlsclipsink-segment-added");
    assert_eq!(added.len(), 3);
    assert_eq!(added[2].get::<u64>("sequence").unwrap(), 2);
    assert_eq!(
        added[1].get::<gst::ClockTime>("recording-time").unwrap(),
        gst::ClockTime::from_seconds(4)
    );
    assert_eq!(run.named("hlsclipsink-session-started").len(), 1);
    assert_eq!(run.named("hlsclipsink-session-ended").len(), 1);
    assert_eq!(
        pipeline
            .by_name("h")
            .unwrap()
            .property::<Option<String>>("media-id"),
        Some(media_id)
    );
}

#[test]
fn live_playlist_slides_and_keyframe_requests_cut_on_target() {
    let dir = tempfile::tempdir().unwrap();
    // Natural GOP of 5 s; the sink asks for keyframes every 2 s.
    let pipeline = av(dir.path(), "target-duration=2 playlist-length=3", 12, 150);
    let run = run(&pipeline, Duration::from_secs(120));
    assert!(run.error.is_none(), "{:?}", run.error);
    let session = the_session(dir.path());
    let replay = media_playlist(&session.join("replay.m3u8"));
    assert_eq!(replay.segments.len(), 6);
    // The last one also holds the audio that outlasts the video (< 1 frame).
    assert!(
        replay
            .segments
            .iter()
            .all(|s| (s.duration - 2.0).abs() < 0.025),
        "{:?}",
        replay
            .segments
            .iter()
            .map(|s| s.duration)
            .collect::<Vec<_>>()
    );
    let live = media_playlist(&session.join("live.m3u8"));
    assert_eq!(live.segments.len(), 3);
    assert_eq!(live.media_sequence, 3);
    assert_eq!(live.segments[0].uri, "segment-00003.m4s");
    assert!(
        live.segments[0].map.is_some(),
        "the window's first segment names its init"
    );
    assert_eq!(frames_of(&session.join("live.m3u8")).0, 180);
}

#[test]
fn caps_change_and_timestamp_gap_give_discontinuities_and_still_play() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = launch(&format!(
        "hlsclipsink name=h location={loc} stream-id=cam target-duration=2 \
         videotestsrc name=src num-buffers=240 ! video/x-raw,framerate=30/1,pixel-aspect-ratio=1/1 ! videoscale ! \
           capsfilter name=size caps=video/x-raw,width=320,height=240,pixel-aspect-ratio=1/1 ! \
           x264enc speed-preset=ultrafast key-int-max=30 ! h264parse name=parse ! queue ! h.video",
        loc = dir.path().display()
    ));
    // Frame 90: the resolution changes. Frame 150 on: timestamps jump 10 s.
    switch_resolution_at(&pipeline, 90, 640, 360);
    pipeline
        .by_name("parse")
        .unwrap()
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let ev = pad.sticky_event::<gst::event::Segment>(0);
            let seg = ev.and_then(|e| e.segment().downcast_ref::<gst::ClockTime>().cloned());
            if let (Some(seg), Some(gst::PadProbeData::Buffer(b))) = (seg, info.data.as_mut())
                && b.pts()
                    .and_then(|p| seg.to_running_time(p))
                    .is_some_and(|rt| rt >= gst::ClockTime::from_seconds(5))
            {
                let b = b.make_mut();
                let shift = gst::ClockTime::from_seconds(10);
                b.set_pts(b.pts().map(|p| p + shift));
                b.set_dts(b.dts().map(|d| d + shift));
            }
            gst::PadProbeReturn::Ok
        });
    let run = run(&pipeline, Duration::from_secs(120));
    assert!(run.error.is_none(), "{:?}", run.error);
    let session = the_session(dir.path());
    let replay = media_playlist(&session.join("replay.m3u8"));
    let discont: Vec<usize> = replay
        .segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.discontinuity)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(discont.len(), 2, "{replay:?}");
    let maps: Vec<&str> = replay
        .segments
        .iter()
        .filter_map(|s| s.map.as_ref().map(|m| m.uri.as_str()))
        .collect();
    assert_eq!(maps, ["init.mp4", "init-1.mp4"]);
    // The wall clock jumps with the gap; recording time does not.
    let gap_at = discont[1];
    let pdt = |i: usize| replay.segments[i].program_date_time.unwrap();
    let jump = (pdt(gap_at) - pdt(gap_at - 1)).num_milliseconds() as f32 / 1000.0;
    assert!(
        (jump - replay.segments[gap_at - 1].duration - 10.0).abs() < 0.1,
        "PDT advances by the gap: {jump}"
    );
    let total: f32 = replay.segments.iter().map(|s| s.duration).sum();
    assert!(
        (total - 8.0).abs() < 0.1,
        "{total}: {:?}",
        replay
            .segments
            .iter()
            .map(|s| (s.duration, s.discontinuity))
            .collect::<Vec<_>>()
    );
    let playlist = session.join("replay.m3u8");
    assert_eq!(frames_of(&playlist).0, 240);
    let errors = decode_errors(&playlist);
    assert!(errors.is_empty(), "{errors}");
}

#[test]
fn retention_deletes_old_sessions_then_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    // First session, ended.
    let run1 = run(
        &av(dir.path(), "target-duration=1 reconnect-window=0", 4, 30),
        Duration::from_secs(60),
    );
    assert!(run1.error.is_none(), "{:?}", run1.error);
    let first = the_session(dir.path());
    let first_bytes: u64 = std::fs::read_dir(&first)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    // Second session with a byte budget smaller than the first one.
    let budget = first_bytes / 2;
    let run2 = run(
        &av(
            dir.path(),
            &format!("target-duration=1 reconnect-window=0 max-bytes={budget}"),
            4,
            30,
        ),
        Duration::from_secs(60),
    );
    assert!(run2.error.is_none(), "{:?}", run2.error);
    let dirs = session_dirs(&dir.path().join("cam"));
    assert_eq!(dirs.len(), 1, "the first session is gone");
    assert_ne!(dirs[0], first);
    let replay = media_playlist(&dirs[0].join("replay.m3u8"));
    let live = media_playlist(&dirs[0].join("live.m3u8"));
    assert!(
        replay.media_sequence > 0,
        "old segments of the live session were deleted"
    );
    for p in [&replay, &live] {
        for s in &p.segments {
            assert!(
                dirs[0].join(&s.uri).exists(),
                "{} is named but deleted",
                s.uri
            );
        }
    }
    let kept: u64 = replay
        .segments
        .iter()
        .map(|s| std::fs::metadata(dirs[0].join(&s.uri)).unwrap().len())
        .sum();
    assert!(
        kept <= budget || replay.segments.len() == 1,
        "{kept} > {budget}"
    );
    let errors = decode_errors(&dirs[0].join("replay.m3u8"));
    assert!(errors.is_empty(), "{errors}");
}

#[test]
fn unwritable_location_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let pipeline = av(&blocker, "", 2, 30);
    let bus = pipeline.bus().unwrap();
    let _ = pipeline.set_state(gst::State::Playing);
    let msg = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(20), &[gst::MessageType::Error])
        .expect("an error");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    assert!(
        e.error()
            .to_string()
            .contains(&blocker.display().to_string()),
        "{}",
        e.error()
    );
    pipeline.set_state(gst::State::Null).unwrap();
}

fn session_count(location: &Path) -> usize {
    std::fs::read_dir(location.join("cam")).map_or(0, |d| {
        d.filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
            .count()
    })
}

/// A recording process killed with SIGKILL at several moments: after a
/// restart the old session is closed (or continued within the reconnect
/// window), its playlists parse, and no complete segment is lost.
#[test]
fn survives_sigkill_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path();
    let spawn = |reconnect: u32| {
        std::process::Command::new("gst-launch-1.0")
            .env("GST_PLUGIN_PATH", plugin_dir())
            .args(["-q", "-e"])
            .args(
                format!(
                    "hlsclipsink name=h location={} stream-id=cam target-duration=1 reconnect-window={reconnect} \
                     videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! \
                     x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! h264parse ! queue ! h.video \
                     audiotestsrc is-live=true ! audio/x-raw,rate=48000 ! voaacenc ! aacparse ! queue ! h.audio",
                    loc.display()
                )
                .split_whitespace(),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("gst-launch-1.0")
    };
    let mut seen_sessions = Vec::new();
    for (round, wait_ms) in [2300u64, 3100, 1700].into_iter().enumerate() {
        let before = session_count(loc);
        let mut child = spawn(0);
        // Recording has started (the registry scan of a fresh machine may
        // take a while), then runs for `wait_ms`.
        assert!(
            wait_for(Duration::from_secs(60), || session_count(loc) > before),
            "gst-launch-1.0 did not start recording"
        );
        std::thread::sleep(Duration::from_millis(wait_ms));
        // What a player could see just before the crash.
        let sessions = session_dirs(&loc.join("cam"));
        let current = sessions.last().unwrap().clone();
        let listed_before = std::fs::read(current.join("replay.m3u8"))
            .ok()
            .map_or(0, |b| {
                m3u8_rs::parse_media_playlist_res(&b)
                    .unwrap()
                    .segments
                    .len()
            });
        child.kill().unwrap();
        child.wait().unwrap();
        // The playlist a crash left is valid.
        let left = media_playlist(&current.join("replay.m3u8"));
        assert!(!left.end_list);
        assert!(left.segments.len() >= listed_before);
        seen_sessions.push((current, left.segments.len()));
        assert!(round < 3);
    }
    // A normal short run recovers all of them.
    init();
    let pipeline = av(loc, "target-duration=1 reconnect-window=0", 2, 30);
    let recovered = run(&pipeline, Duration::from_secs(60));
    assert!(recovered.error.is_none(), "{:?}", recovered.error);
    let sessions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(loc.join("cam/sessions.json")).unwrap()).unwrap();
    let list = sessions["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    assert!(list.iter().all(|s| s["state"] == "ended"), "{list:?}");
    for (session, listed) in &seen_sessions {
        let p = media_playlist(&session.join("replay.m3u8"));
        assert!(p.end_list, "{} closed", session.display());
        assert!(p.segments.len() >= *listed, "no listed segment lost");
        for s in &p.segments {
            let scan = gstliveclip::mp4::scan::scan_segment(&session.join(&s.uri)).unwrap();
            assert_eq!(scan.valid_len, scan.file_len, "no torn tail served");
            assert!(!scan.fragments.is_empty());
        }
        let errors = decode_errors(&session.join("replay.m3u8"));
        assert!(errors.is_empty(), "{}: {errors}", session.display());
        assert!(frames_of(&session.join("replay.m3u8")).0 > 0);
    }

    // A crash followed by a restart within the reconnect window continues
    // the session after a discontinuity.
    let mut child = spawn(60);
    let before = std::fs::metadata(loc.join("cam/sessions.json"))
        .and_then(|m| m.modified())
        .ok();
    assert!(wait_for(Duration::from_secs(60), || {
        std::fs::metadata(loc.join("cam/sessions.json"))
            .and_then(|m| m.modified())
            .ok()
            != before
    }));
    std::thread::sleep(Duration::from_millis(2500));
    child.kill().unwrap();
    child.wait().unwrap();
    let before = session_dirs(&loc.join("cam"));
    let last = before.last().unwrap().clone();
    let pipeline = av(loc, "target-duration=1 reconnect-window=60", 2, 30);
    let run = run(&pipeline, Duration::from_secs(60));
    assert!(run.error.is_none(), "{:?}", run.error);
    let started = run.named("hlsclipsink-session-started");
    assert!(started[0].get::<bool>("resumed").unwrap());
    assert_eq!(session_dirs(&loc.join("cam")), before, "no new session");
    let p = media_playlist(&last.join("replay.m3u8"));
    assert!(p.end_list);
    assert!(p.segments.iter().skip(1).any(|s| s.discontinuity));
    assert!(
        p.segments
            .iter()
            .any(|s| s.map.as_ref().is_some_and(|m| m.uri == "init-1.mp4"))
    );
    let errors = decode_errors(&last.join("replay.m3u8"));
    assert!(errors.is_empty(), "{errors}");

    // The recovered session clips like any other: in the part recorded
    // before the crash, and in the resumed part. The resumed run encodes
    // differently (B-frames, stereo), so a range across the resume is a
    // codec change.
    let sink = gst::ElementFactory::make("hlsclipsink")
        .property("location", loc.display().to_string())
        .property("stream-id", "cam")
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    sink.set_bus(Some(&bus));
    let media_id = last.file_name().unwrap().to_string_lossy().into_owned();
    let total: f64 = p.segments.iter().map(|s| f64::from(s.duration)).sum();
    let clip = |time: f64, name: &str| {
        let out = loc.join(name);
        let id = sink.emit_by_name::<u64>(
            "clip-mp4",
            &[
                &Some(media_id.as_str()),
                &format!("time={time:.3}&duration=1s&location={}", out.display()),
            ],
        );
        loop {
            let msg = bus
                .timed_pop(gst::ClockTime::from_seconds(30))
                .expect("clip-done");
            if let Some(s) = msg.structure()
                && s.name() == "hlsclipsink-clip-done"
                && s.get::<u64>("request-id").unwrap() == id
            {
                break (s.to_owned(), out);
            }
        }
    };
    for (time, name) in [(0.5, "before.mp4"), (total - 1.5, "resumed.mp4")] {
        let (done, out) = clip(time, name);
        assert!(!done.has_field("error"), "{done:?}");
        let errors = decode_errors(&out);
        assert!(errors.is_empty(), "{errors}");
        let st = streams(&out);
        let v = stream(&st, "video").unwrap();
        assert!(
            (v.duration - 1.0).abs() <= 1.0 / 30.0 + 1e-3,
            "{name}: {v:?}"
        );
    }
    let (done, _) = clip(total - 2.5, "across.mp4");
    assert_eq!(done.get::<u32>("status").unwrap(), 422, "{done:?}");
    let m = sink.emit_by_name::<gst::Structure>(
        "get-clip-manifest",
        &[
            &Some(media_id.as_str()),
            &format!("time={:.3}&duration=2s", total - 2.5),
        ],
    );
    let text = m
        .get::<String>("manifest")
        .expect("a manifest may cross it");
    assert!(text.contains("#EXT-X-DISCONTINUITY"), "{text}");
}

/// When one stream ends (or stalls) the other keeps being recorded.
#[test]
fn either_stream_keeps_recording_when_the_other_stops() {
    for (video_s, audio_s) in [(2u32, 6u32), (5, 1)] {
        let dir = tempfile::tempdir().unwrap();
        let frames = video_s * 30;
        let audio_frames = (f64::from(audio_s) * 48_000.0 / 1024.0).ceil() as u32;
        let pipeline = launch(&format!(
            "hlsclipsink name=h location={} stream-id=cam target-duration=2 \
             videotestsrc num-buffers={frames} ! video/x-raw,width=320,height=240,framerate=30/1 ! \
               x264enc speed-preset=ultrafast key-int-max=30 ! h264parse ! queue ! h.video \
             audiotestsrc num-buffers={audio_frames} samplesperbuffer=1024 ! audio/x-raw,rate=48000 ! \
               voaacenc ! aacparse ! queue ! h.audio",
            dir.path().display()
        ));
        let run = run(&pipeline, Duration::from_secs(60));
        assert!(run.error.is_none(), "{:?}", run.error);
        let session = the_session(dir.path());
        let replay = media_playlist(&session.join("replay.m3u8"));
        let total: f32 = replay.segments.iter().map(|s| s.duration).sum();
        let longest = video_s.max(audio_s) as f32;
        assert!(
            (total - longest).abs() < 0.2,
            "{video_s}/{audio_s}: {total} s recorded"
        );
        let (v, a) = frames_of(&session.join("replay.m3u8"));
        assert_eq!(v, u64::from(frames));
        assert!(
            a + 1 >= u64::from(audio_frames),
            "{a} of {audio_frames} audio frames"
        );
        let errors = decode_errors(&session.join("replay.m3u8"));
        assert!(errors.is_empty(), "{errors}");
    }
}

/// A small file system of its own (tmpfs), unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn new(dir: &Path, size: &str) -> SmallDisk {
        let path = dir.join("disk");
        std::fs::create_dir_all(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("mount");
        assert!(
            status.success(),
            "mounting a {size} tmpfs at {} needs root (as CI and the dev machines run)",
            path.display()
        );
        SmallDisk(path)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The disk fills up while recording: an error naming the session's
/// directory, and the session is closed as far as the disk allows once the
/// element stops: the segment being written keeps its complete fragments
/// only, the replay playlist ends (ENDLIST) and decodes, sessions.json says
/// `ended`, and no empty segment is listed.
#[test]
fn a_full_disk_is_an_error_and_the_session_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::new(dir.path(), "6m");
    let pipeline = launch(&format!(
        "hlsclipsink name=h location={} stream-id=cam target-duration=1 \
         videotestsrc pattern=snow num-buffers=900 ! video/x-raw,width=640,height=480,framerate=30/1 ! \
           x264enc speed-preset=ultrafast key-int-max=15 bitrate=8000 ! h264parse ! queue ! h.video",
        disk.0.display()
    ));
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .expect("an error");
    let gst::MessageView::Error(e) = msg.view() else {
        panic!("the disk did not fill up: {msg:?}");
    };
    let text = e.error().to_string();
    pipeline.set_state(gst::State::Null).unwrap();
    let session = the_session(&disk.0);
    assert!(text.contains(&session.display().to_string()), "{text}");
    assert!(text.contains("No space left"), "{text}");

    let playlist = media_playlist(&session.join("replay.m3u8"));
    assert!(playlist.end_list, "{playlist:?}");
    assert!(playlist.segments.len() >= 2, "{playlist:?}");
    for s in &playlist.segments {
        let len = std::fs::metadata(session.join(&s.uri)).unwrap().len();
        assert!(len > 0, "{} is empty", s.uri);
    }
    let errors = decode_errors(&session.join("replay.m3u8"));
    assert!(errors.is_empty(), "{errors}");
    let sessions = std::fs::read_to_string(disk.0.join("cam/sessions.json")).unwrap();
    assert!(sessions.contains("\"ended\""), "{sessions}");
    assert!(!sessions.contains("\"live\""), "{sessions}");
}

/// ADTS AAC: framed (an encoder's ADTS output) is recorded with its
/// headers stripped and plays; unframed (a file read as it is) links and
/// gets an error that says to put aacparse before the element.
#[test]
fn adts_aac_is_taken_framed_and_explained_unframed() {
    let dir = tempfile::tempdir().unwrap();
    let p = launch(&format!(
        "hlsclipsink name=h location={} stream-id=cam target-duration=1 \
         videotestsrc num-buffers=60 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
           x264enc speed-preset=ultrafast key-int-max=15 ! h264parse ! queue ! h.video \
         audiotestsrc num-buffers=94 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! \
           voaacenc ! audio/mpeg,stream-format=adts ! queue ! h.audio",
        dir.path().display()
    ));
    let result = run(&p, Duration::from_secs(60));
    assert!(result.error.is_none(), "{:?}", result.error);
    let playlist = the_session(dir.path()).join("replay.m3u8");
    let errors = decode_errors(&playlist);
    assert!(errors.is_empty(), "{errors}");
    let st = streams(&playlist);
    assert_eq!(stream(&st, "audio").unwrap().frames, 94);
    assert_eq!(stream(&st, "video").unwrap().frames, 60);

    // The same audio as a file of ADTS frames, read without a parser.
    let aac = dir.path().join("tone.aac");
    let w = launch(&format!(
        "audiotestsrc num-buffers=50 ! voaacenc ! audio/mpeg,stream-format=adts ! filesink location={}",
        aac.display()
    ));
    assert!(run(&w, Duration::from_secs(30)).error.is_none());
    let p = launch(&format!(
        "hlsclipsink name=h location={} stream-id=file \
         filesrc location={} ! typefind ! queue ! h.audio",
        dir.path().display(),
        aac.display()
    ));
    let error = run(&p, Duration::from_secs(30)).error.expect("an error");
    assert!(error.contains("aacparse"), "{error}");
    assert!(session_dirs(&dir.path().join("file")).is_empty());
}
