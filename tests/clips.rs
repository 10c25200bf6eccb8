// SPDX-License-Identifier: MPL-2.0
//! hlsclipsink clip requests (preview manifests, clip manifests, MP4 clips)
//! over real recordings with B-frames and audio. Every video frame carries
//! its own number (four gray bands, one base-5 digit each), so the checks
//! read back which frames a clip presents with ffmpeg, independent of any
//! timestamp arithmetic of the project.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use gst::prelude::*;

use common::numbered::*;

fn clip(
    sink: &gst::Element,
    bus: &gst::Bus,
    media_id: Option<&str>,
    query: &str,
) -> gst::Structure {
    let id = sink.emit_by_name::<u64>("clip-mp4", &[&media_id, &query]);
    assert!(id > 0);
    clip_done(bus, id)
}

fn secs(s: &gst::StructureRef, field: &str) -> f64 {
    ns(s, field) as f64 / 1e9
}

fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path(), e.metadata().unwrap().len())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn numbered_frames_read_back() {
    // The reader itself: frames straight from the encoder, no hlsclipsink.
    init();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("n.mp4");
    let pipeline = launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=I420,width={W},height={H},framerate={FPS}/1 ! \
         x264enc bframes=2 speed-preset=ultrafast ! h264parse ! mp4mux ! filesink location={}",
        out.display()
    ));
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    for (i, n) in [0u32, 1, 4, 5, 24, 124, 125, 311, 599, 624]
        .into_iter()
        .enumerate()
    {
        let mut b = gst::Buffer::from_mut_slice(numbered_frame(n));
        let b_mut = b.get_mut().unwrap();
        b_mut.set_pts(gst::ClockTime::from_nseconds(i as u64 * NS / FPS));
        b_mut.set_duration(gst::ClockTime::from_nseconds(NS / FPS));
        src.push_buffer(b).unwrap();
    }
    src.end_of_stream().unwrap();
    ok(&run(&pipeline, Duration::from_secs(30)));
    assert_eq!(
        frame_numbers(&out),
        vec![0, 1, 4, 5, 24, 124, 125, 311, 599, 624]
    );
}

/// Many clips at random starts and durations over a stored recording with
/// B-frames and audio: each decodes cleanly, presents exactly the frames of
/// the requested range (frame accuracy) or from the keyframe before it
/// (keyframe accuracy), has audio aligned with video, and its clip manifest
/// plays the same frames from the same keyframe without writing a file.
#[test]
fn random_clips_present_the_requested_frames() {
    let dir = tempfile::tempdir().unwrap();
    let total = 20u64;
    // A keyframe every 1.5 s (and one at each 2 s segment boundary).
    let pipeline = numbered_av(dir.path(), "target-duration=2", total, 45, false);
    ok(&run(&pipeline, Duration::from_secs(120)));
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let media_id = session.file_name().unwrap().to_string_lossy().into_owned();
    let (sink, bus) = requester(dir.path());
    let out_dir = dir.path().join("out");

    let mut rng = Lcg(0x5eed);
    let frame = 1.0 / FPS as f64;
    for i in 0..14 {
        // Every fourth clip starts and ends exactly on frame boundaries
        // (where readers used to disagree by a frame), the others anywhere
        // (ms).
        let (start_ns, dur_ns) = if i % 4 == 3 {
            let k = rng.ms(0, (total - 1) * FPS);
            let m = rng.ms(10, 120).min(total * FPS - k);
            (k * NS / FPS, (k + m) * NS / FPS - k * NS / FPS)
        } else {
            let start_ms = rng.ms(0, (total - 1) * 1000);
            let dur_ms = rng.ms(300, 4000).min(total * 1000 - start_ms);
            (start_ms * 1_000_000, dur_ms * 1_000_000)
        };
        let keyframe_mode = i % 3 == 2;
        let accuracy = if keyframe_mode { "keyframe" } else { "frame" };
        let query = format!(
            "time={}.{:09}s&duration={}.{:09}s&accuracy={accuracy}&location={}",
            start_ns / NS,
            start_ns % NS,
            dur_ns / NS,
            dur_ns % NS,
            out_dir.join(format!("clip-{i}.mp4")).display()
        );
        let ctx = format!("clip {i}: {query}");
        let done = clip(&sink, &bus, Some(&media_id), &query);
        assert!(!done.has_field("error"), "{ctx}: {done:?}");
        let file = PathBuf::from(done.get::<String>("location").unwrap());
        assert_eq!(done.get::<String>("media-id").unwrap(), media_id);
        let (start, end) = (start_ns as f64 / 1e9, (start_ns + dur_ns) as f64 / 1e9);
        assert!(
            (secs(&done, "requested-start") - start).abs() < 1e-6,
            "{ctx}"
        );
        let keyframe = secs(&done, "keyframe");
        assert!(
            keyframe <= start + 1e-9 && start - keyframe < 1.5 + 1e-6,
            "{ctx}: {done:?}"
        );

        let errors = decode_errors(&file);
        assert!(errors.is_empty(), "{ctx}: {errors}");
        assert_eq!(
            top_level_boxes(&file)[..3],
            ["ftyp", "moov", "mdat"],
            "{ctx}"
        );
        let frames = frame_numbers(&file);
        // The frames whose presentation time is in the range.
        let first_in = (start * FPS as f64 - 1e-9).ceil() as u32;
        let end_frame = (end * FPS as f64 - 1e-9).ceil() as u32;
        let key_frame = (keyframe * FPS as f64).round() as u32;
        let expected: Vec<u32> = if keyframe_mode {
            (key_frame..end_frame).collect()
        } else {
            (first_in..end_frame).collect()
        };
        assert_eq!(frames, expected, "{ctx}");
        // GStreamer (its demuxer applies the edit list as a segment)
        // presents the same frames.
        assert_eq!(frame_numbers_gst(&file), expected, "{ctx}: GStreamer");
        // Presented from the requested instant (within one frame) or from
        // the keyframe, for the requested duration (within one frame).
        let presented_from = if keyframe_mode { keyframe } else { start };
        assert!(
            (f64::from(frames[0]) * frame - presented_from).abs() < frame,
            "{ctx}: first frame {} at {presented_from}",
            frames[0]
        );
        let st = streams(&file);
        let v = stream(&st, "video").unwrap();
        let a = stream(&st, "audio").expect("audio");
        let want = end - presented_from;
        assert!(
            (v.duration - want).abs() <= frame + 1e-3,
            "{ctx}: {v:?} vs {want}"
        );
        // Presentation runs exactly from the first frame's start to the
        // start of the frame after the last one (to the ns: 1/30 s is not
        // a whole number of them).
        let first_pts = u64::from(expected[0]) * NS / FPS;
        let end_pts = u64::from(end_frame) * NS / FPS;
        assert!(ns(&done, "start").abs_diff(first_pts) <= 1, "{ctx}");
        assert!(
            ns(&done, "duration").abs_diff(end_pts - first_pts) <= 1,
            "{ctx}: {done:?}"
        );
        // Audio covers the same instants, within one AAC frame.
        let aac = 1024.0 / 48_000.0;
        assert!(
            (a.start_time - v.start_time).abs() <= aac + 1e-3,
            "{ctx}: {a:?} {v:?}"
        );
        assert!((a.duration - want).abs() <= aac + frame, "{ctx}: {a:?}");

        // The clip manifest: the same range, no new file; it plays from
        // the same keyframe through the requested frames.
        let before = listing(&session);
        let m = sink.emit_by_name::<gst::Structure>(
            "get-clip-manifest",
            &[
                &Some(media_id.as_str()),
                &format!("time={start}&duration={}", end - start),
            ],
        );
        assert!(!m.has_field("error"), "{ctx}: {m:?}");
        assert_eq!(
            listing(&session),
            before,
            "{ctx}: a clip manifest wrote a file"
        );
        let text = m.get::<String>("manifest").unwrap();
        let pl = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
        assert!(pl.end_list);
        assert!(pl.segments.iter().all(|s| s.byte_range.is_some()));
        let offset = pl.start.as_ref().expect("EXT-X-START").time_offset;
        assert!(
            (offset - (start - keyframe)).abs() < 1e-3,
            "{ctx}: EXT-X-START {offset} vs {}",
            start - keyframe
        );
        let manifest = out_dir.join(format!("clip-{i}.m3u8"));
        let relocated = text
            .replace("URI=\"", &format!("URI=\"{}/", session.display()))
            .lines()
            .map(|l| {
                if l.starts_with("segment-") {
                    format!("{}/{l}", session.display())
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&manifest, relocated).unwrap();
        let played = frame_numbers(&manifest);
        assert_eq!(
            played.first(),
            Some(&key_frame),
            "{ctx}: manifest starts at the keyframe"
        );
        let tail: Vec<u32> = played.iter().copied().filter(|&n| n >= first_in).collect();
        assert!(
            tail.starts_with(&(first_in..end_frame).collect::<Vec<_>>()),
            "{ctx}: manifest frames {played:?}"
        );
        let errors = decode_errors(&manifest);
        assert!(errors.is_empty(), "{ctx}: {errors}");
    }
}

/// Requests that can't be answered get their specific errors.
#[test]
fn bad_requests_get_specific_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = numbered_av(
        dir.path(),
        "target-duration=2 max-clip-duration=5",
        6,
        30,
        false,
    );
    ok(&run(&pipeline, Duration::from_secs(60)));
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let media_id = session.file_name().unwrap().to_string_lossy().into_owned();
    let (sink, bus) = requester(dir.path());
    sink.set_property("max-clip-duration", 5u32);
    sink.set_property("max-preview-duration", 60u32);
    let id = Some(media_id.as_str());

    let manifest_status = |media: Option<&str>, query: &str| -> (u32, String) {
        let s = sink.emit_by_name::<gst::Structure>("get-clip-manifest", &[&media, &query]);
        (
            s.get::<u32>("status").unwrap_or(200),
            s.get::<String>("error").unwrap_or_default(),
        )
    };
    for (media, query, status) in [
        (id, "time=1s", 400),
        (id, "time=1s&duration=2s&end=3s", 400),
        (id, "time=1s&duration=nope", 400),
        (id, "time=-1s&duration=2s", 400),
        (id, "time=1s&duration=6s", 400),
        (id, "time=3s&end=2s", 400),
        (id, "time=1s&duration=2s&accuracy=exact", 400),
        (id, "time=7s&duration=1s", 416),
        (id, "time=5s&duration=2s", 416),
        (id, "time=2020-01-01T00:00:00Z&duration=2s", 416),
        (Some("20200101T000000000Z-0000"), "time=1s&duration=1s", 404),
        (Some("../cam"), "time=1s&duration=1s", 404),
        (Some("..%2F..%2Fetc"), "time=1s&duration=1s", 404),
        (id, "time=1s&duration=2s", 200),
        (None, "duration=2s", 200),
    ] {
        let (got, reason) = manifest_status(media, query);
        assert_eq!(got, status, "{media:?} {query}: {reason}");
        if status != 200 {
            assert!(reason.len() > 10, "{query}: a reason a person can act on");
        }
    }
    // The reasons say what to do.
    assert!(
        manifest_status(id, "time=1s&duration=6s")
            .1
            .contains("max-clip-duration")
    );
    assert!(
        manifest_status(id, "time=7s&duration=1s")
            .1
            .contains("recorded")
    );

    // MP4 requests report the same errors in their message.
    let done = clip(&sink, &bus, id, "time=7s&duration=1s");
    assert_eq!(done.get::<u32>("status").unwrap(), 416);
    assert_eq!(done.get::<String>("kind").unwrap(), "out-of-range");
    let done = clip(&sink, &bus, Some("nope"), "time=1s&duration=1s");
    assert_eq!(done.get::<u32>("status").unwrap(), 404);
    let done = clip(&sink, &bus, id, "time=1s&durat=1s");
    assert_eq!(done.get::<u32>("status").unwrap(), 400);

    // Preview manifests: the last part of the session, where it starts.
    let p = sink.emit_by_name::<gst::Structure>("get-preview-manifest", &[&id, &"3s"]);
    assert!(!p.has_field("error"), "{p:?}");
    assert_eq!(p.get::<String>("stream-media-id").unwrap(), media_id);
    let start = p.get::<f64>("preview-start-seconds").unwrap();
    let pl =
        m3u8_rs::parse_media_playlist_res(p.get::<String>("manifest").unwrap().as_bytes()).unwrap();
    let covered: f64 = pl.segments.iter().map(|s| f64::from(s.duration)).sum();
    assert!(covered >= 3.0 - 1e-3, "{covered}");
    assert!((start + covered - 6.0).abs() < 0.05, "{start} + {covered}");
    assert!(pl.end_list, "the session ended");
    let p = sink.emit_by_name::<gst::Structure>("get-preview-manifest", &[&id, &"2m"]);
    assert_eq!(p.get::<u32>("status").unwrap(), 400, "{p:?}");
    let p = sink.emit_by_name::<gst::Structure>("get-preview-manifest", &[&id, &"soon"]);
    assert_eq!(p.get::<u32>("status").unwrap(), 400, "{p:?}");
}

/// While the pipeline is live: a clip of the last 10 s reaches to within
/// one GOP of the request, and a range ending a little in the future waits
/// until it is recorded.
#[test]
fn live_clips_reach_the_live_edge() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = numbered_av(dir.path(), "target-duration=2", 40, 30, true);
    let sink = pipeline.by_name("h").unwrap();
    let bus = pipeline.bus().unwrap();
    // Recording time 0 is running time `offset`: the first segment says so.
    let first = play_until_segments(&pipeline, 6).remove(0);
    let offset = ns(&first, "running-time") as i64 - ns(&first, "recording-time") as i64;
    let out = dir.path().join("out");

    // The last 10 s.
    let now = pipeline.current_running_time().unwrap().nseconds() as i64;
    let id = sink.emit_by_name::<u64>(
        "clip-mp4",
        &[
            &None::<String>,
            &format!("duration=10s&location={}/last.mp4", out.display()),
        ],
    );
    let done = clip_done(&bus, id);
    assert!(!done.has_field("error"), "{done:?}");
    let end = (ns(&done, "start") + ns(&done, "duration")) as i64 + offset;
    let behind = (now - end) as f64 / 1e9;
    assert!(
        (-0.05..=1.0 + 0.1).contains(&behind),
        "the clip ends {behind:.3} s before the request (GOP 1 s)"
    );
    assert!((secs(&done, "duration") - 10.0).abs() < 1e-6);
    let file = PathBuf::from(done.get::<String>("location").unwrap());
    let errors = decode_errors(&file);
    assert!(errors.is_empty(), "{errors}");
    let frames = frame_numbers(&file);
    assert!(
        (299..=301).contains(&frames.len()),
        "10 s of 30 fps: {}",
        frames.len()
    );
    assert!(frames.windows(2).all(|w| w[1] == w[0] + 1), "{frames:?}");

    // A range ending 3 s past what is recorded waits for it.
    let recorded = (now - offset) as u64;
    let start = recorded - 2 * NS;
    let id = sink.emit_by_name::<u64>(
        "clip-mp4",
        &[
            &None::<String>,
            &format!(
                "time={:.3}&duration=5s&location={}/ahead.mp4",
                start as f64 / 1e9,
                out.display()
            ),
        ],
    );
    let done = clip_done(&bus, id);
    assert!(!done.has_field("error"), "{done:?}");
    assert!((secs(&done, "duration") - 5.0).abs() < 1e-6);
    let file = PathBuf::from(done.get::<String>("location").unwrap());
    let frames = frame_numbers(&file);
    assert!((149..=151).contains(&frames.len()), "{frames:?}");
    assert!(frames.windows(2).all(|w| w[1] == w[0] + 1), "{frames:?}");
    // Far in the future: not recorded yet.
    let id = sink.emit_by_name::<u64>(
        "clip-mp4",
        &[
            &None::<String>,
            &format!("time={}&duration=5s", (recorded + 60 * NS) / NS),
        ],
    );
    let done = clip_done(&bus, id);
    assert_eq!(done.get::<u32>("status").unwrap(), 425, "{done:?}");
    // A live preview slides (no ENDLIST) and names the live session.
    let p = sink.emit_by_name::<gst::Structure>("get-preview-manifest", &[&None::<String>, &"6s"]);
    let pl =
        m3u8_rs::parse_media_playlist_res(p.get::<String>("manifest").unwrap().as_bytes()).unwrap();
    assert!(!pl.end_list);
    assert_eq!(
        p.get::<String>("stream-media-id").unwrap(),
        sink.property::<Option<String>>("media-id").unwrap()
    );
    pipeline.set_state(gst::State::Null).unwrap();
}
