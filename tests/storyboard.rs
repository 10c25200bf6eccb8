// SPDX-License-Identifier: MPL-2.0
//! Storyboards of a recorded session: `GET /{id}/storyboard.json`,
//! `/{id}/storyboard.vtt` and the sprite `/{id}/storyboard.jpg`, over a
//! recording of numbered frames with a keyframe every 2 s, so that each
//! tile's picture says which frame it shows.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::http::*;
use common::numbered::*;
use common::*;
use gst::prelude::*;

/// The one frame number the region `w`×`h` at (`x`, `y`) of `sprite` shows.
fn tile_number(sprite: &Path, (x, y, w, h): (u64, u64, u64, u64), out: &Path) -> u32 {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(sprite)
        .args(["-vf", &format!("crop={w}:{h}:{x}:{y}")])
        .arg(out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    let n = frame_numbers(out);
    assert_eq!(n.len(), 1, "{}", out.display());
    n[0]
}

/// `HH:MM:SS.mmm` in seconds.
fn vtt_seconds(s: &str) -> f64 {
    let parts: Vec<f64> = s.split(':').map(|p| p.parse().unwrap()).collect();
    parts.iter().fold(0.0, |acc, p| acc * 60.0 + p)
}

/// 20 s with a keyframe every 2 s: a tile every 2 s of 256x192 from 0 s
/// (the audio ends at 20.01 s: 11 tiles), in a sprite of 5 columns; the VTT's cues follow each other and point inside
/// the sprite; each tile is its keyframe's picture; an ended session's
/// files never change; the token goes along; unknown media is a 404.
#[test]
fn storyboard_of_an_ended_session() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let pipeline = numbered_av(
        dir.path(),
        &format!("target-duration=2 http-address=127.0.0.1:{port}"),
        20,
        60,
        false,
    );
    play_to_eos(&pipeline, Duration::from_secs(120));
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let mid = session.file_name().unwrap().to_string_lossy().into_owned();

    // The JSON.
    let r = get(&format!("{base}/{mid}/storyboard.json"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(r.header("stream-media-id").as_deref(), Some(mid.as_str()));
    let j = r.json();
    assert_eq!(j["url"], "storyboard.jpg");
    assert_eq!(
        (j["tile_width"].as_u64(), j["tile_height"].as_u64()),
        (Some(256), Some(192))
    );
    let duration = j["duration"].as_f64().unwrap();
    assert!((duration - 20.0).abs() < 0.1, "duration {duration}");
    let tiles = j["tiles"].as_array().unwrap();
    let interval = 2.0;
    assert_eq!(tiles.len() as f64, (duration / interval).ceil());
    for (i, t) in tiles.iter().enumerate() {
        let i = i as u64;
        assert!((t["start"].as_f64().unwrap() - i as f64 * interval).abs() < 1e-6);
        assert_eq!(t["x"].as_u64().unwrap(), i % 5 * 256);
        assert_eq!(t["y"].as_u64().unwrap(), i / 5 * 192);
    }

    // The sprite: 5 columns, as many rows as needed.
    let r = get(&format!("{base}/{mid}/storyboard.jpg"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("image/jpeg"));
    let sprite = dir.path().join("storyboard.jpg");
    std::fs::write(&sprite, &r.body).unwrap();
    let (codec, sw, sh) = image_info(&sprite);
    assert_eq!(codec, "mjpeg");
    let rows = tiles.len().div_ceil(5) as u32;
    assert_eq!((sw, sh), (5 * 256, rows * 192));
    // Answered again from the cache, the same bytes.
    assert_eq!(get(&format!("{base}/{mid}/storyboard.jpg")).body, r.body);

    // The VTT: contiguous cues from 0 to the end, each inside the sprite
    // and showing the keyframe at its start (one every 2 s, frame 60 i).
    let r = get(&format!("{base}/{mid}/storyboard.vtt"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/vtt"));
    let text = r.text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("WEBVTT"));
    let mut cues = Vec::new();
    while let Some(line) = lines.next() {
        if let Some((a, b)) = line.split_once(" --> ") {
            let target = lines.next().unwrap();
            let (file, xywh) = target.split_once("#xywh=").unwrap();
            assert_eq!(file, "storyboard.jpg");
            let v: Vec<u64> = xywh.split(',').map(|n| n.parse().unwrap()).collect();
            cues.push((vtt_seconds(a), vtt_seconds(b), (v[0], v[1], v[2], v[3])));
        }
    }
    assert_eq!(cues.len(), tiles.len());
    // Frame n is presented n-th: the keyframes' numbers.
    let keys: Vec<u32> = picture_types(&session.join("replay.m3u8"))
        .iter()
        .enumerate()
        .filter(|(_, (_, key))| *key)
        .map(|(n, _)| n as u32)
        .collect();
    assert_eq!(keys[0], 0);
    assert_eq!(cues[0].0, 0.0);
    for w in cues.windows(2) {
        assert_eq!(w[0].1, w[1].0, "contiguous cues");
    }
    assert!((cues.last().unwrap().1 - duration).abs() < 0.01);
    for (i, (_, _, (x, y, w, h))) in cues.iter().enumerate() {
        assert_eq!((*w, *h), (256, 192));
        assert!(x + w <= u64::from(sw) && y + h <= u64::from(sh));
        let n = tile_number(
            &sprite,
            (*x, *y, *w, *h),
            &dir.path().join(format!("t{i}.png")),
        );
        // The recording's keyframe at or before the tile's start (every
        // 60 frames, unless a keyframe request for a segment end reached
        // the encoder late on a busy machine and moved one).
        let key = keys
            .iter()
            .copied()
            .filter(|&k| k <= 60 * i as u32)
            .max()
            .unwrap();
        assert_eq!(n, key, "tile {i} at {} s: the keyframe at or before", 2 * i);
    }

    // The stream id: its newest session, not immutable; the token follows.
    let r = get(&format!("{base}/cam/storyboard.json?token=a%20b"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(r.json()["url"], "storyboard.jpg?token=a+b");
    let r = get(&format!("{base}/cam/storyboard.vtt?token=t"));
    assert!(
        r.text()
            .contains("\nstoryboard.jpg?token=t#xywh=0,0,256,192\n")
    );

    // Errors: unknown media, unknown parameters.
    for file in ["storyboard.json", "storyboard.vtt", "storyboard.jpg"] {
        let r = get(&format!("{base}/no-such-session/{file}"));
        assert_eq!(r.status, 404, "{file}");
        assert_eq!(r.json()["kind"], "not-found");
        let r = get(&format!("{base}/{mid}/{file}?time=3"));
        assert_eq!(r.status, 400, "{file}");
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

/// While the session is recorded: the storyboard covers what is recorded so
/// far, is not cached for long, and grows as more is recorded; the sprite
/// always matches the layout asked at the same time.
#[test]
fn storyboard_of_a_live_session_grows() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, base) = live_numbered_with_http(dir.path());
    let session = session_dirs(&dir.path().join("cam"))[0].clone();
    let mid = session.file_name().unwrap().to_string_lossy().into_owned();

    let board = |file: &str| {
        let r = get(&format!("{base}/{mid}/{file}"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
        assert_eq!(r.header("stream-media-id").as_deref(), Some(mid.as_str()));
        r
    };
    let first = board("storyboard.json").json();
    let d1 = first["duration"].as_f64().unwrap();
    let n1 = first["tiles"].as_array().unwrap().len();
    assert!(d1 > 0.0 && d1 < 30.0, "{d1}");
    assert_eq!(n1 as f64, (d1 / 2.0).ceil(), "a tile every 2 s of {d1} s");
    assert_eq!(first["tiles"][0]["start"], 0.0);
    let sprite = dir.path().join("live.jpg");
    std::fs::write(&sprite, &board("storyboard.jpg").body).unwrap();
    let (_, w, h) = image_info(&sprite);
    assert_eq!(w % 256, 0);
    assert_eq!(h % 192, 0);
    assert!(w >= 256 && h >= 192);
    // A keyframe every second here: the first tile is frame 0.
    let n = frame_numbers(&{
        let out = dir.path().join("first.png");
        let status = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y", "-i"])
            .arg(&sprite)
            .args(["-vf", "crop=256:192:0:0"])
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        out
    });
    assert_eq!(n, vec![0]);

    // Some seconds later: more recorded, more tiles.
    assert!(wait_for(Duration::from_secs(20), || {
        let j = board("storyboard.json").json();
        j["duration"].as_f64().unwrap() > d1 + 4.0 && j["tiles"].as_array().unwrap().len() > n1
    }));
    let vtt = board("storyboard.vtt").text();
    assert!(
        vtt.starts_with(
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nstoryboard.jpg#xywh=0,0,256,192\n"
        )
    );
    pipeline.set_state(gst::State::Null).unwrap();
}
