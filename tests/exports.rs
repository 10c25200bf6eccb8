// SPDX-License-Identifier: MPL-2.0
//! Export profiles: clips re-encoded to a vertical, square or landscape
//! shape, through the `clip-mp4` signal and `POST /{id}/exports`; read back
//! with ffprobe (size, codec profiles, frames, duration) and decoded by
//! ffmpeg.

mod common;

use std::path::Path;
use std::time::Duration;

use common::http::*;
use common::numbered::*;
use common::*;
use gst::prelude::*;

const PROFILES: &str =
    "tiny-v=180x320,fit=crop,video-kbps=400;tiny-sq=240x240,fit=pad,max-duration=5";

/// The codec profile ffprobe reads of each stream (`High`, `LC`).
fn codec_profiles(file: &Path) -> Vec<String> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=profile",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// An export is a clean, faststart H.264 High + AAC-LC MP4 of `w`x`h`
/// lasting `seconds` (within a frame).
fn check_export(file: &Path, w: u32, h: u32, seconds: f64) {
    assert_eq!(decode_errors(file), "", "{}", file.display());
    let all = streams(file);
    let v = stream(&all, "video").expect("video");
    assert_eq!(
        (v.codec_name.as_str(), v.width, v.height),
        ("h264", w, h),
        "{v:?}"
    );
    let frames = seconds * FPS as f64;
    assert!((v.frames as f64 - frames).abs() <= 1.0, "{v:?}");
    let a = stream(&all, "audio").expect("audio");
    assert_eq!(a.codec_name, "aac");
    assert!((a.duration - seconds).abs() < 0.1, "{a:?}");
    let mut profiles = codec_profiles(file);
    profiles.sort();
    assert_eq!(profiles, ["High", "LC"], "{}", file.display());
    let boxes = top_level_boxes(file);
    let (moov, mdat) = (
        boxes.iter().position(|b| b == "moov").unwrap(),
        boxes.iter().position(|b| b == "mdat").unwrap(),
    );
    assert!(moov < mdat, "faststart: {boxes:?}");
}

#[test]
fn exports_by_signal_and_over_http() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let hook = hook_server(200);
    let pipeline = numbered_av(
        dir.path(),
        &format!(
            "target-duration=2 http-address=127.0.0.1:{port} export-profiles={PROFILES} webhook-url={}",
            hook.url
        ),
        10,
        30,
        false,
    );
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    let base = format!("http://127.0.0.1:{port}");
    let sink = pipeline.by_name("h").unwrap();
    sink.set_bus(Some(&bus));

    // The signal: a vertical crop, announced with its profile.
    let out = dir.path().join("vertical.mp4");
    let id = sink.emit_by_name::<u64>(
        "clip-mp4",
        &[
            &None::<String>,
            &format!(
                "time=2.5s&duration=3s&profile=tiny-v&crop_x=0.25&location={}",
                out.display()
            ),
        ],
    );
    let done = clip_done(&bus, id);
    assert!(!done.has_field("error"), "{done}");
    assert_eq!(done.get::<&str>("profile").unwrap(), "tiny-v");
    check_export(&out, 180, 320, 3.0);
    // An unknown profile, a clip longer than the profile allows.
    for (query, status) in [
        ("time=1s&duration=2s&profile=nope", 400u32),
        ("time=1s&duration=6s&profile=tiny-sq", 400),
    ] {
        let id = sink.emit_by_name::<u64>(
            "clip-mp4",
            &[
                &None::<String>,
                &format!("{query}&location={}", dir.path().join("x.mp4").display()),
            ],
        );
        let done = clip_done(&bus, id);
        assert_eq!(
            done.get::<u32>("status").ok(),
            Some(status),
            "{query}: {done}"
        );
    }

    // HTTP: the profiles, built-in and from the property.
    let listed = get(&format!("{base}/cam/exports")).json();
    let names: Vec<&str> = listed["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["landscape", "vertical", "square", "tiny-v", "tiny-sq"] {
        assert!(names.contains(&name), "{name} in {listed}");
    }
    let tiny = listed["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tiny-sq")
        .unwrap();
    assert_eq!(
        (tiny["width"].as_u64(), tiny["fit"].as_str()),
        (Some(240), Some("pad"))
    );

    // HTTP: queued, followed, downloaded.
    let r = request(
        "POST",
        &format!("{base}/cam/exports?time=1s&duration=2s&profile=tiny-sq"),
        &[],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let job = r.json();
    let status = format!("http://127.0.0.1:{port}{}", job["status"].as_str().unwrap());
    let file = format!("http://127.0.0.1:{port}{}", job["file"].as_str().unwrap());
    let mut seen_states = std::collections::BTreeSet::new();
    assert!(
        wait_for(Duration::from_secs(60), || {
            let s = get(&status).json();
            seen_states.insert(s["state"].as_str().unwrap_or_default().to_string());
            assert_ne!(s["state"], "failed", "{s}");
            let p = s["progress"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p), "{s}");
            s["state"] == "done"
        }),
        "the export finished"
    );
    let done = get(&status).json();
    assert_eq!(done["profile"], "tiny-sq");
    assert!(
        (done["duration"].as_f64().unwrap() - 2.0).abs() < 0.04,
        "{done}"
    );
    // The webhook heard of both exports.
    let notices = |event: &str| {
        hook.received
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n["event"] == event)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        wait_for(Duration::from_secs(10), || notices("export").len() >= 2),
        "{:?}",
        hook.received.lock().unwrap()
    );
    let heard = notices("export");
    assert!(heard.iter().any(|n| n["profile"] == "tiny-v"
        && n["success"] == true
        && n["location"] == out.display().to_string()));
    assert!(heard.iter().any(|n| n["export_id"] == job["export_id"]
        && n["state"] == "done"
        && n["stream_id"] == "cam"));
    let r = get(&file);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("video/mp4"));
    let path = dir.path().join("square.mp4");
    std::fs::write(&path, &r.body).unwrap();
    check_export(&path, 240, 240, 2.0);
    // Padded: the bars above and below are black, the picture in between
    // is not.
    let gray = gray_pixels(&path, "scale=240:240");
    let row = |y: usize| {
        gray[y * 240..(y + 1) * 240]
            .iter()
            .map(|&p| u32::from(p))
            .sum::<u32>()
            / 240
    };
    assert!(
        row(2) < 24 && row(237) < 24,
        "black bars: {} {}",
        row(2),
        row(237)
    );
    assert!(row(120) > 40, "the picture: {}", row(120));

    // Errors: JSON, with the right codes.
    for (method, url, status) in [
        (
            "POST",
            format!("{base}/cam/exports?time=1s&duration=2s"),
            400,
        ),
        (
            "POST",
            format!("{base}/cam/exports?time=1s&duration=2s&profile=nope"),
            400,
        ),
        (
            "POST",
            format!("{base}/cam/exports?time=1s&duration=2s&crop_x=2&profile=tiny-v"),
            400,
        ),
        (
            "GET",
            format!("{base}/cam/clip.mp4?time=1s&duration=2s&profile=tiny-v"),
            400,
        ),
        (
            "GET",
            format!("{base}/cam/manifest/clip.m3u8?time=1s&duration=2s&profile=tiny-v"),
            400,
        ),
        ("GET", format!("{base}/cam/exports/999999"), 404),
        ("GET", format!("{base}/cam/exports/999999/clip.mp4"), 404),
    ] {
        let r = request(method, &url, &[]);
        assert_eq!(r.status, status, "{method} {url}: {}", r.text());
        assert_eq!(r.json()["status"], status);
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

/// A bad `export-profiles` list stops the element at start with an error
/// that says what is wrong.
#[test]
fn a_bad_profile_list_is_an_error_at_start() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = numbered_av(dir.path(), "export-profiles=story=720", 1, 30, false);
    assert!(pipeline.set_state(gst::State::Playing).is_err());
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Error])
        .expect("an error message");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    let text = e.error().to_string();
    assert!(
        text.contains("export-profiles") && text.contains("WIDTHxHEIGHT"),
        "{text}"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}
