// SPDX-License-Identifier: MPL-2.0
//! Buffer-level cases driven with `gst_check::Harness`: the exact buffers
//! and events an element gets on each of its pads (real H.264 and AAC
//! access units, recorded once from x264enc and voaacenc), in the order a
//! test chooses: EOS on one pad, a flush mid-GOP, a gap on one pad.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use gst::prelude::*;
use gst_check::Harness;

/// Encoded media: its caps and its buffers in order.
struct Encoded {
    caps: gst::Caps,
    buffers: Vec<gst::Buffer>,
}

/// The buffers `desc` (a pipeline ending in `appsink name=out`) makes.
fn encode(desc: &str) -> Encoded {
    let p = launch(desc);
    let sink = p
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut caps = None;
    let mut buffers = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        caps.get_or_insert_with(|| s.caps().unwrap().to_owned());
        buffers.push(s.buffer_owned().unwrap());
    }
    p.set_state(gst::State::Null).unwrap();
    // Times from 0, as the harness's segment has them (x264enc starts its
    // output 1000 h in).
    let base = buffers[0].dts().or(buffers[0].pts()).unwrap();
    for b in &mut buffers {
        let b = b.make_mut();
        if let Some(t) = b.pts() {
            b.set_pts(t - base);
        }
        if let Some(t) = b.dts() {
            b.set_dts(t - base);
        }
    }
    Encoded {
        caps: caps.unwrap(),
        buffers,
    }
}

/// 8 s of 25 fps H.264 at `width`x`height` with a keyframe every 25 frames
/// (no B-frames).
fn video_of(width: u32, height: u32) -> Encoded {
    encode(&format!(
        "videotestsrc num-buffers=200 pattern=ball ! \
         video/x-raw,width={width},height={height},framerate=25/1 ! \
         x264enc bframes=0 key-int-max=25 speed-preset=ultrafast ! h264parse ! \
         video/x-h264,stream-format=avc,alignment=au ! appsink name=out sync=false"
    ))
}

/// 8 s of 160x120 video (as `video_of`), and 8 s of AAC.
fn media() -> (Encoded, Encoded) {
    init();
    let video = video_of(160, 120);
    let audio = encode(
        "audiotestsrc num-buffers=375 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! \
         voaacenc ! aacparse ! appsink name=out sync=false",
    );
    (video, audio)
}

/// A periodicclipper (2 s interval) writing to `dir`, with a harness on
/// each of its pads, playing.
fn clipper(dir: &Path, video: &Encoded, audio: &Encoded) -> (gst::Element, Harness, Harness) {
    let el = gst::ElementFactory::make("periodicclipper")
        .property("interval", 2u32)
        .property("send-keyframe-requests", false)
        .property("location", dir.join("c%03d.mp4").display().to_string())
        .build()
        .unwrap();
    let (hv, ha) = harnesses(&el, video, audio);
    (el, hv, ha)
}

/// A playing harness on each of `el`'s pads, with the media's caps.
fn harnesses(el: &gst::Element, video: &Encoded, audio: &Encoded) -> (Harness, Harness) {
    let mut hv = Harness::with_element(el, Some("video"), None);
    let mut ha = Harness::with_element(el, Some("audio"), None);
    hv.set_src_caps(video.caps.clone());
    ha.set_src_caps(audio.caps.clone());
    hv.play();
    ha.play();
    (hv, ha)
}

fn pts(b: &gst::Buffer) -> gst::ClockTime {
    b.pts().unwrap()
}

/// Pushes video and audio in presentation order until `until` (exclusive).
fn push_until(
    hv: &mut Harness,
    ha: &mut Harness,
    video: &mut std::iter::Peekable<impl Iterator<Item = gst::Buffer>>,
    audio: &mut std::iter::Peekable<impl Iterator<Item = gst::Buffer>>,
    until: gst::ClockTime,
) {
    loop {
        let v = video.peek().map(pts).filter(|&t| t < until);
        let a = audio.peek().map(pts).filter(|&t| t < until);
        match (v, a) {
            (Some(tv), Some(ta)) if tv <= ta => {
                hv.push(video.next().unwrap()).unwrap();
            }
            (Some(_), None) => {
                hv.push(video.next().unwrap()).unwrap();
            }
            (_, Some(_)) => {
                ha.push(audio.next().unwrap()).unwrap();
            }
            (None, None) => break,
        }
    }
}

/// Pushes the rest of the media, then ends both pads.
fn push_rest(
    hv: &mut Harness,
    ha: &mut Harness,
    video: &mut std::iter::Peekable<impl Iterator<Item = gst::Buffer>>,
    audio: &mut std::iter::Peekable<impl Iterator<Item = gst::Buffer>>,
) {
    push_until(hv, ha, video, audio, gst::ClockTime::from_seconds(100));
    assert!(hv.push_event(gst::event::Eos::new()));
    assert!(ha.push_event(gst::event::Eos::new()));
}

/// Pushes the media up to 4.4 s, flushes both pads (running time starts
/// again) with a segment from 5.2 s, as a seek forward does, pushes the rest
/// from there (the first video frames are the GOP's P frames) and ends both
/// pads.
fn push_with_a_flush_mid_gop(hv: &mut Harness, ha: &mut Harness, video: &Encoded, audio: &Encoded) {
    let mut vi = video.buffers.clone().into_iter().peekable();
    let mut ai = audio.buffers.clone().into_iter().peekable();
    push_until(
        hv,
        ha,
        &mut vi,
        &mut ai,
        gst::ClockTime::from_mseconds(4400),
    );
    let resume = gst::ClockTime::from_mseconds(5200);
    for h in [&mut *hv, &mut *ha] {
        assert!(h.push_event(gst::event::FlushStart::new()));
        assert!(h.push_event(gst::event::FlushStop::new(true)));
        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        segment.set_start(resume);
        segment.set_time(resume);
        assert!(h.push_event(gst::event::Segment::new(&segment)));
    }
    let mut vi = vi.skip_while(|b| pts(b) < resume).peekable();
    let mut ai = ai.skip_while(|b| pts(b) < resume).peekable();
    push_rest(hv, ha, &mut vi, &mut ai);
}

/// Waits until `n` clips are in `dir` and no `.partial` file is left.
fn wait_clips(dir: &Path, n: usize) -> Vec<std::path::PathBuf> {
    assert!(
        wait_for(Duration::from_secs(30), || {
            let names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.iter().filter(|n| n.ends_with(".mp4")).count() >= n
                && !names.iter().any(|n| n.ends_with(".partial"))
        }),
        "{n} clips in {}: {:?}",
        dir.display(),
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>()
    );
    files(dir, "mp4")
}

/// The audio pad ends after 3 s; the video goes on to 8 s. Cuts stop
/// waiting for the ended track: every 2 s clip is written, video-only after
/// the audio's end, and together they hold every video frame once.
#[test]
fn eos_on_the_audio_pad_alone_keeps_the_video_cut() {
    let (video, audio) = media();
    let dir = tempfile::tempdir().unwrap();
    let (_el, mut hv, mut ha) = clipper(dir.path(), &video, &audio);
    let mut vi = video.buffers.clone().into_iter().peekable();
    let mut ai = audio.buffers.clone().into_iter().peekable();
    push_until(
        &mut hv,
        &mut ha,
        &mut vi,
        &mut ai,
        gst::ClockTime::from_seconds(3),
    );
    assert!(ha.push_event(gst::event::Eos::new()));
    for b in vi {
        hv.push(b).unwrap();
    }
    assert!(hv.push_event(gst::event::Eos::new()));
    let clips = wait_clips(dir.path(), 4);
    assert_eq!(clips.len(), 4, "{clips:?}");
    let mut frames = 0;
    for (i, c) in clips.iter().enumerate() {
        let errors = decode_errors(c);
        assert!(errors.is_empty(), "{}: {errors}", c.display());
        let st = streams(c);
        let v = stream(&st, "video").unwrap();
        frames += v.frames;
        // Audio in the clips before its end (0-2 s, 2-4 s), none after.
        assert_eq!(
            stream(&st, "audio").is_some(),
            i < 2,
            "{}: {st:?}",
            c.display()
        );
        assert!(
            picture_types(c)[0].1,
            "{} starts with a keyframe",
            c.display()
        );
    }
    assert_eq!(frames, 200, "every video frame once");
}

/// A flush in the middle of a GOP (running time starts again): what came
/// before becomes a clip of its own, nothing after the flush is kept before
/// the next keyframe, and every clip starts with a keyframe.
#[test]
fn a_flush_mid_gop_restarts_at_the_next_keyframe() {
    let (video, audio) = media();
    let dir = tempfile::tempdir().unwrap();
    let (_el, mut hv, mut ha) = clipper(dir.path(), &video, &audio);
    push_with_a_flush_mid_gop(&mut hv, &mut ha, &video, &audio);
    // Before the flush: 0-2, 2-4 and the rest up to 4.4 s; after it: from
    // the keyframe at 6 s to the end.
    let clips = wait_clips(dir.path(), 4);
    assert_eq!(clips.len(), 4, "{clips:?}");
    let (total, _) = check_clips(&clips);
    // 0..4.4 s is 110 frames, 6..8 s is 50: the P frames between the flush
    // and the next keyframe (5.2-6 s) can't be decoded and are not kept.
    assert_eq!(total, 110 + 50, "{clips:?}");
}

/// The same flush into hlsclipsink: the recording goes on (recording time
/// continues, the jump closed with a discontinuity), decodes cleanly, and
/// holds the frames before the flush and from the next keyframe after it
/// (before, the P frames after the flush were recorded onto the GOP before
/// it).
#[test]
fn hlsclipsink_recording_survives_a_flush_mid_gop() {
    let (video, audio) = media();
    let dir = tempfile::tempdir().unwrap();
    let el = gst::ElementFactory::make("hlsclipsink")
        .property("location", dir.path().display().to_string())
        .property("stream-id", "cam")
        .property("target-duration", 2u32)
        .build()
        .unwrap();
    let (mut hv, mut ha) = harnesses(&el, &video, &audio);
    push_with_a_flush_mid_gop(&mut hv, &mut ha, &video, &audio);
    let sessions = dir.path().join("cam/sessions.json");
    assert!(wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(&sessions).is_ok_and(|t| t.contains("\"ended\""))
    }));
    drop(hv);
    drop(ha);
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let playlist = session.join("replay.m3u8");
    let errors = decode_errors(&playlist);
    assert!(errors.is_empty(), "{errors}");
    let v = stream(&streams(&playlist), "video").unwrap().frames;
    assert_eq!(v, 110 + 50);
    // The jump is marked for players.
    let pl = media_playlist(&playlist);
    assert!(
        pl.segments.iter().skip(1).any(|s| s.discontinuity),
        "{pl:?}"
    );
}

/// The recordings and clips that `run` makes of the media, pushed by
/// `push` into an hlsclipsink (2 s segments) and a periodicclipper (2 s
/// clips): the hlsclipsink's replay playlist and the clips.
fn record_both(
    video: &Encoded,
    audio: &Encoded,
    push: impl Fn(&mut Harness, &mut Harness),
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Vec<std::path::PathBuf>,
) {
    let dir = tempfile::tempdir().unwrap();
    let el = gst::ElementFactory::make("hlsclipsink")
        .property("location", dir.path().join("hls").display().to_string())
        .property("stream-id", "cam")
        .property("target-duration", 2u32)
        .build()
        .unwrap();
    let (mut hv, mut ha) = harnesses(&el, video, audio);
    push(&mut hv, &mut ha);
    let sessions = dir.path().join("hls/cam/sessions.json");
    assert!(wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(&sessions).is_ok_and(|t| t.contains("\"ended\""))
    }));
    drop((hv, ha));
    let session = session_dirs(&dir.path().join("hls/cam"))[0].clone();

    let clips_dir = dir.path().join("clips");
    std::fs::create_dir_all(&clips_dir).unwrap();
    let (_el, mut hv, mut ha) = clipper(&clips_dir, video, audio);
    push(&mut hv, &mut ha);
    let sent = |name: &str| {
        std::fs::read_dir(&clips_dir)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains(name))
    };
    // The last clip is written once both pads ended.
    assert!(wait_for(Duration::from_secs(30), || sent(".mp4")
        && !sent(".partial")));
    std::thread::sleep(Duration::from_millis(500));
    let clips = files(&clips_dir, "mp4");
    (dir, session.join("replay.m3u8"), clips)
}

/// Every clip decodes and starts with a keyframe; returns the video and
/// audio frames they hold in all.
fn check_clips(clips: &[std::path::PathBuf]) -> (u64, u64) {
    let (mut v, mut a) = (0, 0);
    for c in clips {
        let errors = decode_errors(c);
        assert!(errors.is_empty(), "{}: {errors}", c.display());
        assert!(
            picture_types(c)[0].1,
            "{} starts with a keyframe",
            c.display()
        );
        let st = streams(c);
        v += stream(&st, "video").map_or(0, |s| s.frames);
        a += stream(&st, "audio").map_or(0, |s| s.frames);
    }
    (v, a)
}

/// The audio pad's timestamps jump 2 s forward at 3 s (a hole on that pad
/// alone; the video goes on). The recording closes the hole on the audio
/// track only: no discontinuity, every frame of both kept, and it decodes;
/// the clips hold every frame once.
#[test]
fn a_gap_on_the_audio_pad_alone() {
    let (video, audio) = media();
    let hole = gst::ClockTime::from_seconds(3)..gst::ClockTime::from_seconds(5);
    let kept: Vec<gst::Buffer> = audio
        .buffers
        .iter()
        .filter(|b| !hole.contains(&pts(b)))
        .cloned()
        .collect();
    let push = |hv: &mut Harness, ha: &mut Harness| {
        let mut vi = video.buffers.clone().into_iter().peekable();
        let mut ai = kept.clone().into_iter().peekable();
        push_rest(hv, ha, &mut vi, &mut ai);
    };
    let (_dir, playlist, clips) = record_both(&video, &audio, push);

    let errors = decode_errors(&playlist);
    assert!(errors.is_empty(), "{errors}");
    let st = streams(&playlist);
    assert_eq!(stream(&st, "video").unwrap().frames, 200);
    assert_eq!(stream(&st, "audio").unwrap().frames, kept.len() as u64);
    let pl = media_playlist(&playlist);
    assert!(!pl.segments.iter().any(|s| s.discontinuity), "{pl:?}");

    let (v, a) = check_clips(&clips);
    assert_eq!(v, 200, "{clips:?}");
    assert_eq!(a, kept.len() as u64, "{clips:?}");
}

/// New caps (another resolution) arrive in the middle of a GOP, 0.6 s
/// before the keyframe that is the first frame coded with them: the frames
/// between are still the old stream's. Both elements switch at that
/// keyframe: the recording gets a second init segment there (and plays
/// across it), the clip before it ends there, and every frame is kept and
/// decodes at its own size.
#[test]
fn caps_change_mid_gop_takes_effect_at_the_next_keyframe() {
    let (small, audio) = media();
    let large = video_of(320, 240);
    let switch = gst::ClockTime::from_seconds(5);
    let caps_at = gst::ClockTime::from_mseconds(4400);
    let push = |hv: &mut Harness, ha: &mut Harness| {
        let mut vi = small.buffers.clone().into_iter().peekable();
        let mut ai = audio.buffers.clone().into_iter().peekable();
        push_until(hv, ha, &mut vi, &mut ai, caps_at);
        assert!(hv.push_event(gst::event::Caps::new(&large.caps)));
        push_until(hv, ha, &mut vi, &mut ai, switch);
        let mut vi = large
            .buffers
            .clone()
            .into_iter()
            .skip_while(|b| pts(b) < switch)
            .peekable();
        push_rest(hv, ha, &mut vi, &mut ai);
    };
    let (_dir, playlist, clips) = record_both(&small, &audio, push);

    let errors = decode_errors(&playlist);
    assert!(errors.is_empty(), "{errors}");
    assert_eq!(stream(&streams(&playlist), "video").unwrap().frames, 200);
    let pl = media_playlist(&playlist);
    let maps: Vec<String> = pl
        .segments
        .iter()
        .filter_map(|s| s.map.as_ref().map(|m| m.uri.clone()))
        .collect();
    let mut distinct = maps.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 2, "{maps:?}");

    let (v, _) = check_clips(&clips);
    assert_eq!(v, 200, "{clips:?}");
    let sizes: Vec<(u32, u64)> = clips
        .iter()
        .map(|c| {
            let st = streams(c);
            let s = stream(&st, "video").unwrap();
            (s.width, s.frames)
        })
        .collect();
    // 0-2, 2-4, 4-5 (ended by the change), 5-7, 7-8.
    assert_eq!(
        sizes,
        vec![(160, 50), (160, 50), (160, 25), (320, 50), (320, 25)],
        "{clips:?}"
    );
}

/// Random bytes under valid H.264 caps (and codec_data): the first is
/// dropped with a warning naming the problem, a run of them is an error,
/// and the start that failed leaves no session behind (no directory, no
/// sessions.json entry).
#[test]
fn random_bytes_under_h264_caps_are_an_error_and_leave_no_session() {
    let (video, _) = media();
    let dir = tempfile::tempdir().unwrap();
    let el = gst::ElementFactory::make("hlsclipsink")
        .property("location", dir.path().display().to_string())
        .property("stream-id", "cam")
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    el.set_bus(Some(&bus));
    let mut h = Harness::with_element(&el, Some("video"), None);
    h.set_src_caps(video.caps.clone());
    h.play();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut result = Ok(gst::FlowSuccess::Ok);
    let mut pushed = 0;
    while result.is_ok() && pushed < 100 {
        let data: Vec<u8> = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut b = gst::Buffer::from_mut_slice(data);
        {
            let b = b.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(40 * pushed));
            b.set_dts(gst::ClockTime::from_mseconds(40 * pushed));
            b.set_duration(gst::ClockTime::from_mseconds(40));
        }
        result = h.push(b);
        pushed += 1;
    }
    assert_eq!(result, Err(gst::FlowError::Error));
    assert_eq!(pushed, 25, "an error after 25 in a row");
    let mut warning = None;
    let mut error = None;
    while let Some(m) = bus.pop() {
        match m.view() {
            gst::MessageView::Warning(w) if warning.is_none() => {
                warning = Some(w.error().to_string())
            }
            gst::MessageView::Error(e) => error = Some(e.error().to_string()),
            _ => {}
        }
    }
    let warning = warning.expect("a warning");
    assert!(
        warning.contains("not H.264") && warning.contains("does not fit"),
        "{warning}"
    );
    let error = error.expect("an error");
    assert!(
        error.contains("25 access units in a row") && error.contains("h264parse"),
        "{error}"
    );
    drop(h);
    el.set_state(gst::State::Null).unwrap();
    assert!(session_dirs(&dir.path().join("cam")).is_empty());
    let sessions =
        std::fs::read_to_string(dir.path().join("cam/sessions.json")).unwrap_or_default();
    assert!(!sessions.contains("media_id"), "{sessions}");
}
