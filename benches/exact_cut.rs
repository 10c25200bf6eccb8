// SPDX-License-Identifier: MPL-2.0
//! `accuracy=exact` (smart cut) against a full re-encode and against
//! today's copy clip, for clips of growing length from a 60 s 1080p30
//! H.264 High (4:2:0, 2 B-frames, 2 s GOP) + AAC hlsclipsink recording,
//! every start 1.5 s into a GOP (decoded from its keyframe, the last 15
//! frames before the next one re-encoded) and every end inside one (0.5 s
//! into it for the 5 s clip, 1.5 s for the others): when a B-frame before
//! the end needs a frame after it, the frames after the last mini-GOP
//! boundary are re-encoded too, decoded from that GOP's keyframe:
//!
//! - exact: `hls::clip::clip_mp4` with `Accuracy::Exact` (decode and
//!   x264enc of the partial GOPs, copy of the rest), written to a file;
//! - exact-start: `Accuracy::ExactStart` (the end copied);
//! - frame: the same with `Accuracy::Frame` (copy, edit list);
//! - ffmpeg re-encode: `ffmpeg -ss S -i input -t D -c:v libx264 -preset
//!   veryfast -crf 18 -c:a aac` (what a frame-exact clip costs without a
//!   smart cut).
//!
//! `cargo bench --bench exact_cut` (inputs cached under
//! target/bench-input/).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gstliveclip::hls::clip::{Accuracy, Range, clip_mp4};
use gstliveclip::hls::index::SessionIndex;

const NS: u64 = 1_000_000_000;
const RUNS: usize = 3;

fn cut(session: &Path, start: u64, len: u64, accuracy: Accuracy, out: &Path) -> u64 {
    let index = SessionIndex::load(session, "bench").expect("recording");
    let (clip, _) = clip_mp4(
        std::slice::from_ref(&index),
        Range {
            start,
            end: start + len,
        },
        accuracy,
    )
    .unwrap();
    clip.write_file(out, false).unwrap().bytes
}

fn median_of(mut f: impl FnMut() -> Duration) -> Duration {
    f(); // warm-up
    common::median((0..RUNS).map(|_| f()).collect())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The exact clip decodes cleanly in ffmpeg, and its `frames` frames
/// against ffmpeg's decode of the input from frame `first`: PSNR per frame.
/// Copied frames decode bit-exact (infinite PSNR); the others are the
/// re-encoded ones (head and tail): how many, and their PSNR, printed.
fn check(clip: &Path, input: &Path, first: usize, frames: usize) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(clip)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = clip.with_extension("psnr.log");
    let graph = format!(
        "[0:v]trim=end_frame={frames},setpts=PTS-STARTPTS[a];\
         [1:v]trim=start_frame={first}:end_frame={},setpts=PTS-STARTPTS[b];\
         [a][b]psnr=stats_file={}",
        first + frames,
        stats.display()
    );
    let st = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(clip)
        .arg("-i")
        .arg(input)
        .args(["-lavfi", &graph, "-f", "null", "-"])
        .status()
        .unwrap();
    assert!(st.success());
    let values: Vec<f64> = std::fs::read_to_string(&stats)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v = l
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix("psnr_avg:"))?;
            v.parse().ok()
        })
        .collect();
    assert_eq!(values.len(), frames);
    let reencoded: Vec<(usize, f64)> = values
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .collect();
    let min = reencoded.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
    let mean = reencoded.iter().map(|r| r.1).sum::<f64>() / reencoded.len().max(1) as f64;
    println!(
        "{frames} frames against the input: {} re-encoded (frames {}), PSNR min {min:.1} dB, \
         mean {mean:.1} dB; the rest bit-exact; clean ffmpeg decode",
        reencoded.len(),
        runs(reencoded.iter().map(|r| r.0)),
    );
}

/// `0..15, 149..150` for the frame numbers 0..=14 and 149.
fn runs(numbers: impl Iterator<Item = usize>) -> String {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for n in numbers {
        match out.last_mut() {
            Some((_, end)) if *end == n => *end += 1,
            _ => out.push((n, n + 1)),
        }
    }
    out.iter()
        .map(|(a, b)| format!("{a}..{b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() {
    gst::init().unwrap();
    gstliveclip::plugin_register_static().unwrap();
    let (input, session) = common::ball_recording();
    let tmp = tempfile::tempdir().unwrap();
    let out = |name: &str| tmp.path().join(format!("{name}.mp4"));
    println!(
        "| clip length | exact (smart cut) | exact-start | frame (copy + edit list) | ffmpeg full re-encode | exact size | frame size |"
    );
    println!("|---|---|---|---|---|---|---|");
    for len_s in [5u64, 10, 20, 40] {
        // 1.5 s into the GOP at 10 s.
        let start = 11 * NS + NS / 2;
        let len = len_s * NS;
        let mut exact_bytes = 0;
        let exact = median_of(|| {
            let t = Instant::now();
            exact_bytes = cut(&session, start, len, Accuracy::Exact, &out("exact"));
            t.elapsed()
        });
        let exact_start = median_of(|| {
            let t = Instant::now();
            cut(
                &session,
                start,
                len,
                Accuracy::ExactStart,
                &out("exact-start"),
            );
            t.elapsed()
        });
        let mut frame_bytes = 0;
        let frame = median_of(|| {
            let t = Instant::now();
            frame_bytes = cut(&session, start, len, Accuracy::Frame, &out("frame"));
            t.elapsed()
        });
        // One run: it takes seconds.
        let t = Instant::now();
        let st = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y", "-ss"])
            .arg(format!("{:.3}", start as f64 / 1e9))
            .arg("-i")
            .arg(&input)
            .args(["-t", &len_s.to_string()])
            .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"])
            .args(["-c:a", "aac"])
            .arg(out("ffmpeg"))
            .status()
            .unwrap();
        assert!(st.success());
        let ffmpeg = t.elapsed();
        if len_s == 5 {
            check(&out("exact"), &input, 345, 150);
        }
        println!(
            "| {len_s} s | {:.0} ms | {:.0} ms | {:.1} ms | {:.0} ms | {:.1} MB | {:.1} MB |",
            ms(exact),
            ms(exact_start),
            ms(frame),
            ms(ffmpeg),
            exact_bytes as f64 / 1e6,
            frame_bytes as f64 / 1e6
        );
    }
}
