// SPDX-License-Identifier: MPL-2.0
//! hlsclipsink recording an ABR ladder (three video renditions of one
//! numbered source, scaled and encoded apart, and AAC): the renditions are
//! aligned, each plays every frame, the multivariant playlist parses, and
//! clips of every rendition show the same frames. Read back with ffmpeg,
//! ffprobe and m3u8-rs.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::http::*;
use common::numbered::*;
use common::*;
use gst::prelude::*;

const SECONDS: u64 = 10;
/// (rendition, width, height)
const LADDER: [(&str, u32, u32); 3] = [
    ("1080p", 1920, 1080),
    ("720p", 1280, 720),
    ("360p", 640, 360),
];

/// Numbered frames scaled to every rung of [`LADDER`], each with its own
/// x264enc (B-frames, a keyframe every second), and AAC, into hlsclipsink
/// `h` (stream `cam`), the rendition names set the gst-launch way.
fn ladder(location: &Path, props: &str, live: bool) -> gst::Pipeline {
    let mut desc = format!(
        "hlsclipsink name=h location={} stream-id=cam target-duration=2 {props} \
         audio_0::rendition=aac audio_0::language=en ",
        location.display()
    );
    for (i, (name, ..)) in LADDER.iter().enumerate() {
        desc += &format!("video_{i}::rendition={name} ");
    }
    desc += &format!(
        "appsrc name=src format=time is-live={live} \
           caps=video/x-raw,format=I420,width={W},height={H},framerate={FPS}/1 ! tee name=raw "
    );
    let tune = if live { "tune=zerolatency" } else { "" };
    for (i, (_, w, h)) in LADDER.iter().enumerate() {
        desc += &format!(
            "raw. ! queue ! videoscale ! video/x-raw,width={w},height={h} ! \
             x264enc bframes=2 b-adapt=false speed-preset=ultrafast key-int-max={FPS} {tune} ! \
             h264parse ! queue ! h.video_{i} "
        );
    }
    let audio_frames = (SECONDS as f64 * 48_000.0 / 1024.0).ceil() as u32;
    desc += &format!(
        "audiotestsrc num-buffers={audio_frames} samplesperbuffer=1024 is-live={live} ! \
         audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! queue ! h.audio_0"
    );
    let pipeline = launch(&desc);
    feed_numbered(&pipeline, SECONDS * FPS, live);
    pipeline
}

/// Init + segment of a rendition as one file.
fn joined(dir: &Path, map: &str, uri: &str, out: &Path) -> PathBuf {
    let mut data = std::fs::read(dir.join(map)).unwrap();
    data.extend(std::fs::read(dir.join(uri)).unwrap());
    std::fs::write(out, data).unwrap();
    out.to_path_buf()
}

fn master(text: &[u8]) -> m3u8_rs::MasterPlaylist {
    match m3u8_rs::parse_playlist_res(text) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => m,
        other => panic!(
            "not a multivariant playlist ({other:?}): {}",
            String::from_utf8_lossy(text)
        ),
    }
}

/// (EXTINF, program date time) of each segment of a replay playlist.
fn timeline(p: &m3u8_rs::MediaPlaylist) -> Vec<(String, Option<String>)> {
    p.segments
        .iter()
        .map(|s| {
            (
                format!("{:.6}", s.duration),
                s.program_date_time.map(|t| t.to_rfc3339()),
            )
        })
        .collect()
}

/// The renditions' replay playlists are aligned and each plays; returns
/// the number of segments.
fn check_aligned(session: &Path, scratch: &Path) -> usize {
    let audio = media_playlist(&session.join("aac/replay.m3u8"));
    let reference = timeline(&audio);
    assert!(reference.len() >= 2, "{reference:?}");
    let mut firsts: Vec<Vec<u32>> = Vec::new();
    for (name, ..) in LADDER {
        let dir = session.join(name);
        let p = media_playlist(&dir.join("replay.m3u8"));
        assert!(p.end_list);
        assert_eq!(
            timeline(&p),
            reference,
            "{name}: the same boundaries and PDTs as the audio"
        );
        // Every segment of every rendition starts with the same frame.
        let mut map = String::new();
        firsts.push(
            p.segments
                .iter()
                .map(|s| {
                    if let Some(m) = &s.map {
                        map = m.uri.clone();
                    }
                    let file = joined(&dir, &map, &s.uri, &scratch.join("seg.mp4"));
                    frame_numbers(&file)[0]
                })
                .collect(),
        );
    }
    assert!(
        firsts.windows(2).all(|w| w[0] == w[1]),
        "first frames {firsts:?}"
    );
    assert_eq!(firsts[0][0], 0);
    reference.len()
}

#[test]
fn a_ladder_records_aligned_renditions_and_serves_them() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path();
    let port = free_port();
    let pipeline = ladder(loc, &format!("http-address=127.0.0.1:{port}"), false);
    play_to_eos(&pipeline, Duration::from_secs(180));
    let sessions = session_dirs(&loc.join("cam"));
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    let media_id = session.file_name().unwrap().to_string_lossy().into_owned();

    // The multivariant playlist on disk.
    let m = master(&std::fs::read(session.join("master.m3u8")).unwrap());
    assert_eq!(m.variants.len(), 3);
    for (v, (name, w, h)) in m.variants.iter().zip(LADDER) {
        assert_eq!(v.uri, format!("{name}/replay.m3u8"));
        let r = v.resolution.unwrap();
        assert_eq!((r.width, r.height), (u64::from(w), u64::from(h)));
        let codecs = v.codecs.as_deref().unwrap();
        assert!(
            codecs.starts_with("avc1.") && codecs.ends_with(",mp4a.40.2"),
            "{codecs}"
        );
        assert_eq!(v.frame_rate, Some(30.0));
        assert_eq!(v.audio.as_deref(), Some("audio"));
        assert!(v.bandwidth > 10_000, "{v:?}");
        assert!(v.average_bandwidth.unwrap() <= v.bandwidth);
    }
    assert!(
        m.variants[0].average_bandwidth > m.variants[2].average_bandwidth,
        "1080p takes more than 360p: {:?}",
        m.variants
    );
    assert_eq!(m.alternatives.len(), 1);
    let a = &m.alternatives[0];
    assert_eq!(a.media_type, m3u8_rs::AlternativeMediaType::Audio);
    assert_eq!(
        (a.name.as_str(), a.language.as_deref()),
        ("aac", Some("en"))
    );
    assert_eq!(a.uri.as_deref(), Some("aac/replay.m3u8"));

    // Aligned, and every rendition plays every frame.
    let segments = check_aligned(session, loc);
    assert!(segments >= 4, "{segments}");
    let all: Vec<u32> = (0..(SECONDS * FPS) as u32).collect();
    for (name, w, h) in LADDER {
        let replay = session.join(name).join("replay.m3u8");
        let errors = decode_errors(&replay);
        assert!(errors.is_empty(), "{name}: {errors}");
        assert_eq!(frame_numbers(&replay), all, "{name}");
        let st = streams(&replay);
        let v = stream(&st, "video").unwrap();
        assert_eq!((v.width, v.height), (w, h));
        assert!(stream(&st, "audio").is_none(), "audio is its own rendition");
    }
    let st = streams(&session.join("aac/replay.m3u8"));
    let a = stream(&st, "audio").unwrap();
    let expected = (SECONDS * 48_000).div_ceil(1024);
    assert!(a.frames + 2 >= expected, "every AAC frame: {a:?}");
    let sessions_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(loc.join("cam/sessions.json")).unwrap()).unwrap();
    assert_eq!(
        sessions_json["sessions"][0]["renditions"],
        serde_json::json!(["1080p", "720p", "360p", "aac"])
    );

    // Over HTTP: the session's playlist is the multivariant one, its
    // variants the same request for one rendition.
    let base = format!("http://127.0.0.1:{port}/cam");
    let r = get(&format!("{base}/manifest/video.m3u8"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("stream-media-id").as_deref(),
        Some(media_id.as_str())
    );
    let m = master(&r.body);
    let uris: Vec<&str> = m.variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "video.m3u8?rendition=1080p",
            "video.m3u8?rendition=720p",
            "video.m3u8?rendition=360p"
        ]
    );
    assert_eq!(
        m.alternatives[0].uri.as_deref(),
        Some("video.m3u8?rendition=aac")
    );
    let r = get(&format!("{base}/manifest/video.m3u8?rendition=720p"));
    assert_eq!(r.status, 200, "{}", r.text());
    let p = m3u8_rs::parse_media_playlist_res(&r.body).unwrap();
    assert_eq!(p.segments.len(), segments);
    let seg = &p.segments[1].uri;
    assert_eq!(seg, &format!("../../{media_id}/720p/segment-00001.m4s"));
    let file = get(&format!(
        "http://127.0.0.1:{port}/{}",
        seg.trim_start_matches("../../")
    ));
    assert_eq!(file.status, 200);
    assert_eq!(
        file.body,
        std::fs::read(session.join("720p/segment-00001.m4s")).unwrap()
    );
    let r = get(&format!("{base}/manifest/video.m3u8?height=300"));
    assert!(r.text().contains("/360p/segment-00000.m4s"), "{}", r.text());

    // A preview is multivariant too, with its headers.
    let r = get(&format!("{base}/manifest/video.m3u8?duration=4s"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("preview-start-seconds").is_some());
    let m = master(&r.body);
    assert_eq!(m.variants[2].uri, "video.m3u8?duration=4s&rendition=360p");
    let r = get(&format!("{base}/manifest/{}", m.variants[2].uri));
    let p = m3u8_rs::parse_media_playlist_res(&r.body).unwrap();
    assert!(p.segments[0].uri.contains("/360p/"), "{}", r.text());

    // A clip manifest: multivariant, and every rendition's variant shows
    // the same frames (from the keyframe before the start; ffmpeg does
    // not apply EXT-X-START).
    let q = "time=3.5s&duration=3s";
    let r = get(&format!("{base}/manifest/clip.m3u8?{q}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let m = master(&r.body);
    assert_eq!(m.variants.len(), 3);
    let mut shown = Vec::new();
    for v in &m.variants {
        assert!(v.uri.starts_with(&format!("clip.m3u8?{q}&rendition=")));
        let frames = frame_numbers(Path::new(&format!("{base}/manifest/{}", v.uri)));
        assert_eq!(frames.first(), Some(&90), "{}", v.uri);
        shown.push(frames);
    }
    assert!(shown.windows(2).all(|w| w[0] == w[1]));
    assert!(shown[0].contains(&194) && !shown[0].contains(&240));

    // MP4 clips: the highest by default, another by name or height; each
    // with the audio and exactly the frames asked for.
    let mut clips = Vec::new();
    for (query, w, h) in [
        ("", 1920, 1080),
        ("&rendition=720p", 1280, 720),
        ("&height=350", 640, 360),
    ] {
        let r = get(&format!("{base}/clip.mp4?{q}{query}"));
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        let out = loc.join(format!("clip{}.mp4", clips.len()));
        std::fs::write(&out, &r.body).unwrap();
        let errors = decode_errors(&out);
        assert!(errors.is_empty(), "{errors}");
        let st = streams(&out);
        let v = stream(&st, "video").unwrap();
        assert_eq!((v.width, v.height), (w, h), "{query}");
        assert!(stream(&st, "audio").is_some(), "{query}: with its audio");
        let frames = frame_numbers(&out);
        assert_eq!(frames, (105..195).collect::<Vec<u32>>(), "{query}");
        clips.push(frames);
    }

    // An exact clip (smart cut) of a rendition: no edit list, the same
    // frames, at that rendition's size, with the audio.
    let r = get(&format!(
        "{base}/clip.mp4?{q}&rendition=720p&accuracy=exact"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("clip-preroll-seconds").as_deref(),
        Some("0.000000")
    );
    let out = loc.join("exact-720p.mp4");
    std::fs::write(&out, &r.body).unwrap();
    assert!(moov(&out).trak.iter().all(|t| t.edts.is_none()));
    let errors = decode_errors(&out);
    assert!(errors.is_empty(), "{errors}");
    let st = streams(&out);
    let v = stream(&st, "video").unwrap();
    assert_eq!((v.width, v.height), (1280, 720));
    assert!(stream(&st, "audio").is_some());
    assert_eq!(frame_numbers(&out), (105..195).collect::<Vec<u32>>());

    // Bad picks say why.
    let r = get(&format!("{base}/clip.mp4?{q}&rendition=4k"));
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("1080p, 720p, 360p, aac")
    );
    let r = get(&format!("{base}/clip.mp4?{q}&height=tall"));
    assert_eq!(r.status, 400, "{}", r.text());
    let r = get(&format!(
        "{base}/manifest/video.m3u8?rendition=360p&height=360"
    ));
    assert_eq!(r.status, 400, "{}", r.text());
    pipeline.set_state(gst::State::Null).unwrap();

    // The stored session (element stopped) answers the same way.
    let sink = gst::ElementFactory::make("hlsclipsink")
        .property("location", loc.display().to_string())
        .property("stream-id", "cam")
        .build()
        .unwrap();
    let m = sink.emit_by_name::<gst::Structure>(
        "get-clip-manifest",
        &[&Some(media_id.as_str()), &format!("{q}&rendition=360p")],
    );
    assert_eq!(m.get::<String>("rendition").unwrap(), "360p");
    let text = m.get::<String>("manifest").unwrap();
    assert!(text.contains("segment-00001.m4s"), "{text}");
    let p = sink.emit_by_name::<gst::Structure>(
        "get-preview-manifest",
        &[&Some(media_id.as_str()), &"duration=4s&height=720"],
    );
    assert_eq!(p.get::<String>("rendition").unwrap(), "720p", "{p:?}");
}

/// A ladder's recording process killed with SIGKILL, then restarted within
/// the reconnect window: the session goes on with every rendition, still
/// aligned, and each plays.
#[test]
fn a_ladder_survives_sigkill_and_resumes_aligned() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path();
    let mut renditions = String::new();
    let mut branches = String::new();
    for (i, (name, w, h)) in [("a", 320, 240), ("b", 240, 180), ("c", 160, 120)]
        .iter()
        .enumerate()
    {
        renditions += &format!("video_{i}::rendition={name} ");
        branches += &format!(
            "t. ! queue ! videoscale ! video/x-raw,width={w},height={h} ! \
             x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! h264parse ! queue ! h.video_{i} "
        );
    }
    let desc = |video: &str, audio: &str| {
        format!(
            "hlsclipsink name=h location={} stream-id=cam target-duration=1 reconnect-window=60 \
             {renditions} audio_0::rendition=aac \
             videotestsrc is-live=true {video} ! video/x-raw,width=320,height=240,framerate=30/1 ! \
             tee name=t {branches} \
             audiotestsrc is-live=true {audio} ! audio/x-raw,rate=48000 ! voaacenc ! aacparse ! queue ! h.audio_0",
            loc.display()
        )
    };
    /// Kills the recording process however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Killed(
        std::process::Command::new("gst-launch-1.0")
            .env("GST_PLUGIN_PATH", plugin_dir())
            .args(["-q", "-e"])
            .args(desc("", "").split_whitespace())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("gst-launch-1.0"),
    );
    let segments = |r: &str| {
        if !loc.join("cam").exists() {
            return 0;
        }
        session_dirs(&loc.join("cam")).first().map_or(0, |s| {
            std::fs::read(s.join(r).join("replay.m3u8"))
                .ok()
                .and_then(|b| m3u8_rs::parse_media_playlist_res(&b).ok())
                .map_or(0, |p| p.segments.len())
        })
    };
    assert!(
        wait_for(Duration::from_secs(60), || segments("a") >= 3),
        "gst-launch-1.0 did not record"
    );
    std::thread::sleep(Duration::from_millis(700));
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let session = session_dirs(&loc.join("cam"))[0].clone();
    let before = segments("a");

    // The restart continues it: every rendition, still aligned.
    let pipeline = launch(&desc("num-buffers=75", "num-buffers=118"));
    let run = run(&pipeline, Duration::from_secs(60));
    assert!(run.error.is_none(), "{:?}", run.error);
    let started = run.named("hlsclipsink-session-started");
    assert!(started[0].get::<bool>("resumed").unwrap());
    assert_eq!(
        session_dirs(&loc.join("cam")),
        std::slice::from_ref(&session)
    );
    let reference = media_playlist(&session.join("aac/replay.m3u8"));
    assert!(reference.end_list);
    assert!(reference.segments.len() > before);
    for r in ["a", "b", "c"] {
        let p = media_playlist(&session.join(r).join("replay.m3u8"));
        assert_eq!(timeline(&p), timeline(&reference), "{r}");
        assert!(p.segments.iter().skip(1).any(|s| s.discontinuity), "{r}");
        for s in &p.segments {
            let scan = gstliveclip::mp4::scan::scan_segment(&session.join(r).join(&s.uri)).unwrap();
            assert_eq!(scan.valid_len, scan.file_len, "{r}: no torn tail");
        }
        let errors = decode_errors(&session.join(r).join("replay.m3u8"));
        assert!(errors.is_empty(), "{r}: {errors}");
    }
    let m = master(&std::fs::read(session.join("master.m3u8")).unwrap());
    assert_eq!(m.variants.len(), 3);
    let sessions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(loc.join("cam/sessions.json")).unwrap()).unwrap();
    assert_eq!(sessions["sessions"][0]["state"], "ended");
    assert_eq!(
        sessions["sessions"][0]["segments"].as_u64(),
        Some(reference.segments.len() as u64)
    );
}

/// Keyframe requests reach every rendition's encoder: with no keyframe of
/// their own after the first (a 1000-frame GOP), three renditions are
/// still segmented every second, together, without a warning.
#[test]
fn keyframe_requests_go_to_every_rendition() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let mut desc = format!(
        "hlsclipsink name=h location={} stream-id=cam target-duration=1 \
         videotestsrc is-live=true num-buffers=150 ! \
           video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! tee name=t ",
        dir.path().display()
    );
    for (i, (w, h)) in [(320, 240), (240, 180), (160, 120)].iter().enumerate() {
        desc += &format!(
            "t. ! queue ! videoscale ! video/x-raw,width={w},height={h} ! \
             x264enc tune=zerolatency speed-preset=ultrafast key-int-max=1000 ! h264parse ! \
             queue ! h.video_{i} "
        );
    }
    let pipeline = launch(&desc);
    let run = run(&pipeline, Duration::from_secs(60));
    assert!(run.error.is_none(), "{:?}", run.error);
    assert!(run.warnings.is_empty(), "{:?}", run.warnings);
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let reference = timeline(&media_playlist(&session.join("video_0/replay.m3u8")));
    assert!(reference.len() >= 4, "segmented by requests: {reference:?}");
    for r in ["video_1", "video_2"] {
        let p = media_playlist(&session.join(r).join("replay.m3u8"));
        assert_eq!(timeline(&p), reference, "{r}");
    }
}
