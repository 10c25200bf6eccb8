// SPDX-License-Identifier: MPL-2.0
//! Export profiles (`profile=vertical|square|small`) against ffmpeg doing
//! the same re-encode, on clips of a 60 s 1080p30 H.264 + AAC hlsclipsink
//! recording (the one `exact_cut` uses, moving content):
//!
//! - liveclip: what an export job does, timed whole: the copy clip cut from
//!   the stored fragments and written (`clip_mp4`, `Accuracy::Frame`), then
//!   `frames::export::export` (decodebin, crop, videoscale, x264enc
//!   `speed-preset=faster` at the profile's bitrate, GOP 60, voaacenc,
//!   mp4mux faststart);
//! - ffmpeg: `ffmpeg -ss S -i input -t D -vf crop=…,scale=W:H -c:v libx264
//!   -preset faster -b:v K -g 60 -c:a aac -b:a 128k -movflags +faststart`,
//!   the same shape, bitrate and settings from the recorded input.
//!
//! Both outputs are checked: ffprobe's size, frame count (duration × fps)
//! and a clean decode. One run each (an export takes seconds).
//!
//! `cargo bench --bench export` (inputs cached under target/bench-input/).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gstliveclip::core::thumbs::Fit;
use gstliveclip::frames::export::{Profile, builtin, export};
use gstliveclip::hls::clip::{Accuracy, Range, clip_mp4};
use gstliveclip::hls::index::SessionIndex;

const NS: u64 = 1_000_000_000;

/// The liveclip export of `len_s` seconds from `start_s`, timed.
fn liveclip(session: &Path, start_s: f64, len_s: u64, p: &Profile, out: &Path) -> Duration {
    let t = Instant::now();
    let index = SessionIndex::load(session, "bench").expect("recording");
    let start = (start_s * 1e9) as u64;
    let (clip, _) = clip_mp4(
        std::slice::from_ref(&index),
        Range {
            start,
            end: start + len_s * NS,
        },
        Accuracy::Frame,
    )
    .unwrap();
    let src = out.with_extension("src.mp4");
    clip.write_file(&src, false).unwrap();
    let made = export(
        &src,
        out,
        p,
        ((1920, 1080), (1, 1)),
        None,
        Duration::from_secs(len_s),
        &|_| {},
    )
    .unwrap();
    let took = t.elapsed();
    assert_eq!((made.width, made.height), (p.width, p.height));
    took
}

/// ffmpeg's filter for the profile's shape from 1920×1080: crop the
/// middle to its aspect (crop profiles) or pad (pad profiles), then scale.
fn ffmpeg_filter(p: &Profile) -> String {
    let (w, h) = (p.width as f64, p.height as f64);
    if p.fit == Fit::Pad || w / h >= 1920.0 / 1080.0 - 1e-6 {
        format!(
            "scale={}:{}:force_original_aspect_ratio=decrease,pad={}:{}:(ow-iw)/2:(oh-ih)/2",
            p.width, p.height, p.width, p.height
        )
    } else {
        let cw = ((1080.0 * w / h) / 2.0).round() as u32 * 2;
        format!("crop={cw}:1080,scale={}:{}", p.width, p.height)
    }
}

fn ffmpeg(input: &Path, start_s: f64, len_s: u64, p: &Profile, out: &Path) -> Duration {
    let t = Instant::now();
    let st = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-ss"])
        .arg(format!("{start_s:.3}"))
        .arg("-i")
        .arg(input)
        .args(["-t", &len_s.to_string(), "-vf", &ffmpeg_filter(p)])
        .args(["-c:v", "libx264", "-preset", "faster", "-profile:v", "high"])
        .args(["-b:v", &format!("{}k", p.video_kbps), "-g", "60"])
        .args(["-c:a", "aac", "-b:a", &format!("{}k", p.audio_kbps)])
        .args(["-movflags", "+faststart"])
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success());
    t.elapsed()
}

/// Width, height and decoded frame count of the video, after checking
/// that ffmpeg decodes it cleanly.
fn probe(file: &Path) -> (u32, u32, u64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height,nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text.trim().split(',').map(|x| x.parse().unwrap()).collect();
    (v[0] as u32, v[1] as u32, v[2])
}

fn main() {
    gst::init().unwrap();
    gstliveclip::plugin_register_static().unwrap();
    let (input, session) = common::ball_recording();
    let tmp = tempfile::tempdir().unwrap();
    let profiles = builtin();
    let profile = |name: &str| profiles.iter().find(|p| p.name == name).unwrap().clone();
    println!(
        "| profile | clip | liveclip export | ffmpeg re-encode | ratio | realtime (liveclip) | size liveclip / ffmpeg |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, len_s) in [
        ("vertical", 10u64),
        ("vertical", 30),
        ("square", 10),
        ("small", 10),
    ] {
        let p = profile(name);
        // 1.5 s into the GOP at 10 s.
        let start_s = 11.5;
        let ours = tmp.path().join(format!("{name}-{len_s}.mp4"));
        let theirs = tmp.path().join(format!("{name}-{len_s}-ffmpeg.mp4"));
        let a = liveclip(&session, start_s, len_s, &p, &ours);
        let b = ffmpeg(&input, start_s, len_s, &p, &theirs);
        let want = len_s * 30;
        for (who, f) in [("liveclip", &ours), ("ffmpeg", &theirs)] {
            let (w, h, n) = probe(f);
            assert_eq!((w, h), (p.width, p.height), "{who} {name}");
            assert!(
                n.abs_diff(want) <= 1,
                "{who} {name}: {n} frames, not {want}"
            );
        }
        let size = |f: &Path| std::fs::metadata(f).unwrap().len() as f64 / 1e6;
        println!(
            "| {name} {}×{} | {len_s} s | {:.2} s | {:.2} s | {:.2}× | {:.1}× | {:.1} / {:.1} MB |",
            p.width,
            p.height,
            a.as_secs_f64(),
            b.as_secs_f64(),
            a.as_secs_f64() / b.as_secs_f64(),
            len_s as f64 / a.as_secs_f64(),
            size(&ours),
            size(&theirs),
        );
    }
}
