// SPDX-License-Identifier: MPL-2.0
//! Cuts MP4 clips out of a 10-minute 1080p hlsclipsink recording, in one
//! run, three ways on the same ranges:
//!
//! - liveclip: `hls::clip::clip_mp4` reads the fragments it needs straight
//!   from the stored segments and writes a faststart MP4 (frame accuracy:
//!   from the keyframe before the start, edit list to the exact instant);
//! - ffmpeg: `ffmpeg -ss S -t D -c copy` from the same recording remuxed
//!   once into a single MP4 beforehand (ffmpeg 5.1 cannot seek inside fMP4
//!   HLS);
//! - copy: `cat` of the segment files liveclip reads (the physical limit).
//!
//! Then liveclip's latency against clip length. Warm page cache throughout.
//!
//! `cargo bench --bench clip_cut` (inputs are made once and cached under
//! target/bench-input/).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gstliveclip::hls::clip::{Accuracy, Range, clip_mp4};
use gstliveclip::hls::index::SessionIndex;

const RUNS: usize = 5;
const NS: u64 = 1_000_000_000;

/// The 60 s input looped to 10 minutes, recorded by hlsclipsink (6 s
/// segments), and the recording remuxed into one MP4 by ffmpeg.
fn recording(dir: &Path) -> (PathBuf, PathBuf) {
    let long = dir.join("1080p-600s.mp4");
    if !long.exists() {
        let tmp = dir.join("1080p-600s.tmp.mp4");
        let st = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y", "-stream_loop", "9", "-i"])
            .arg(common::input())
            .args(["-c", "copy"])
            .arg(&tmp)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::rename(&tmp, &long).unwrap();
    }
    let session = common::recorded_once(&long, &dir.join("rec-600s"));
    let mp4 = dir.join("rec-600s.mp4");
    if !mp4.exists() {
        let tmp = dir.join("rec-600s.tmp.mp4");
        let st = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y", "-i"])
            .arg(session.join("replay.m3u8"))
            .args(["-c", "copy"])
            .arg(&tmp)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::rename(&tmp, &mp4).unwrap();
    }
    (session, mp4)
}

fn time(mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn median_of(mut f: impl FnMut() -> Duration) -> Duration {
    f(); // warm-up
    common::median((0..RUNS).map(|_| f()).collect())
}

/// A new output name per run, with the previous one deleted before the
/// run: every method writes a fresh file (on ext4, replacing or truncating
/// an existing file starts writeback early, which would not be a fair
/// comparison and is not what a clip request does).
struct Fresh {
    dir: PathBuf,
    n: u64,
}

impl Fresh {
    fn next(&mut self, name: &str) -> PathBuf {
        let old = self.dir.join(format!("{name}-{}.mp4", self.n));
        let _ = std::fs::remove_file(old);
        self.n += 1;
        self.dir.join(format!("{name}-{}.mp4", self.n))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// liveclip: load the session, cut, write (no fsync, like the others).
fn liveclip(session: &Path, start: u64, len: u64, out: &Path) -> u64 {
    let index = SessionIndex::load(session, "bench").expect("recording");
    let (clip, _) = clip_mp4(
        std::slice::from_ref(&index),
        Range {
            start,
            end: start + len,
        },
        Accuracy::Frame,
    )
    .unwrap();
    clip.write_file(out, false).unwrap().bytes
}

/// `cat` of the segment files liveclip reads for the same clip.
fn copy_command(session: &Path, start: u64, len: u64, out: &Path) -> (Command, u64) {
    let _ = std::fs::remove_file(out);
    let index = SessionIndex::load(session, "bench").unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    for (seg, _) in index.fragments_for(start, start + len).unwrap() {
        let path = session.join(&seg.segment.uri);
        if files.last() != Some(&path) {
            files.push(path);
        }
    }
    let bytes = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let mut c = Command::new("cat");
    c.args(&files).stdout(std::fs::File::create(out).unwrap());
    (c, bytes)
}

fn main() {
    gst::init().unwrap();
    gstliveclip::plugin_register_static().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-input");
    std::fs::create_dir_all(&dir).unwrap();
    let (session, mp4) = recording(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let mut fresh = Fresh {
        dir: tmp.path().to_path_buf(),
        n: 0,
    };

    println!("60 s clips from a 10-minute 1080p recording (median of {RUNS}, warm cache)");
    println!(
        "{:>8} {:>10} {:>12} {:>10} {:>10} {:>12} {:>12}",
        "start s", "MB", "liveclip ms", "copy ms", "ffmpeg ms", "vs copy", "vs ffmpeg"
    );
    let mut ratios_copy = Vec::new();
    let mut ratios_ffmpeg = Vec::new();
    for start_ms in [61_500u64, 187_250, 305_000, 422_700, 539_900] {
        let start = start_ms * 1_000_000;
        let len = 60 * NS;
        let mut bytes = 0;
        let t_live = median_of(|| {
            let out = fresh.next("clip");
            time(|| bytes = liveclip(&session, start, len, &out))
        });
        let mut copied = 0;
        let t_copy = median_of(|| {
            let (mut cat, n) = copy_command(&session, start, len, &fresh.next("copy"));
            copied = n;
            time(|| assert!(cat.status().unwrap().success()))
        });
        let t_ffmpeg = median_of(|| {
            let out = fresh.next("ffmpeg");
            time(|| {
                let st = Command::new("ffmpeg")
                    .args(["-nostdin", "-v", "error", "-y", "-ss"])
                    .arg(format!("{:.3}", start as f64 / 1e9))
                    .arg("-i")
                    .arg(&mp4)
                    .args(["-t", "60", "-c", "copy"])
                    .arg(&out)
                    .status()
                    .unwrap();
                assert!(st.success());
            })
        });
        let (rc, rf) = (
            t_live.as_secs_f64() / t_copy.as_secs_f64(),
            t_live.as_secs_f64() / t_ffmpeg.as_secs_f64(),
        );
        ratios_copy.push(rc);
        ratios_ffmpeg.push(rf);
        println!(
            "{:>8.3} {:>10.1} {:>12.1} {:>10.1} {:>10.1} {:>11.2}x {:>11.2}x",
            start as f64 / 1e9,
            copied as f64 / 1e6,
            ms(t_live),
            ms(t_copy),
            ms(t_ffmpeg),
            rc,
            rf
        );
        assert!(bytes > copied / 2, "the clip holds the media");
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median: liveclip = {:.2}x the raw copy, {:.2}x ffmpeg's time (aim: <= 2x copy, <= 0.25x ffmpeg)",
        median(ratios_copy),
        median(ratios_ffmpeg)
    );

    println!();
    println!("latency against clip length (start 200.5 s), ms");
    println!(
        "{:>8} {:>12} {:>10} {:>10} {:>10}",
        "length s", "liveclip", "copy", "ffmpeg", "MB"
    );
    let start = 200_500_000_000u64;
    let mut rows = Vec::new();
    for len_s in [1u64, 2, 5, 10, 20, 30, 60, 120, 300] {
        let mut bytes = 0;
        let t = median_of(|| {
            let out = fresh.next("len");
            time(|| bytes = liveclip(&session, start, len_s * NS, &out))
        });
        let c = median_of(|| {
            let (mut cat, _) = copy_command(&session, start, len_s * NS, &fresh.next("lencopy"));
            time(|| assert!(cat.status().unwrap().success()))
        });
        let f = median_of(|| {
            let out = fresh.next("lenffmpeg");
            time(|| {
                let st = Command::new("ffmpeg")
                    .args(["-nostdin", "-v", "error", "-y", "-ss"])
                    .arg(format!("{:.3}", start as f64 / 1e9))
                    .arg("-i")
                    .arg(&mp4)
                    .arg("-t")
                    .arg(len_s.to_string())
                    .args(["-c", "copy"])
                    .arg(&out)
                    .status()
                    .unwrap();
                assert!(st.success());
            })
        });
        println!(
            "{:>8} {:>12.2} {:>10.2} {:>10.2} {:>10.1}",
            len_s,
            ms(t),
            ms(c),
            ms(f),
            bytes as f64 / 1e6
        );
        rows.push((len_s as f64, ms(t), ms(c), ms(f)));
    }
    let svg = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clip-latency.svg");
    std::fs::write(&svg, plot(&rows)).unwrap();
    println!(
        "plot: {} (docs/clip-latency.png is its rendering)",
        svg.display()
    );
}

/// (length s, liveclip ms, copy ms, ffmpeg ms).
type Row = (f64, f64, f64, f64);

/// A series of the chart: name, colour, and its value in a row.
type Series = (&'static str, &'static str, fn(&Row) -> f64);

/// A log-log SVG line chart of latency against clip length.
fn plot(rows: &[Row]) -> String {
    let (w, h, left, bottom, top, right) = (900.0, 560.0, 80.0, 60.0, 50.0, 30.0);
    let (x0, x1) = (1f64.log10(), 300f64.log10());
    let (y0, y1) = (0.5f64.log10(), 2000f64.log10());
    let px = |x: f64| left + (x.log10() - x0) / (x1 - x0) * (w - left - right);
    let py = |y: f64| h - bottom - (y.max(0.5).log10() - y0) / (y1 - y0) * (h - top - bottom);
    let mut out = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='14'>\
         <rect width='100%' height='100%' fill='white'/>\
         <text x='{}' y='28' font-size='18' text-anchor='middle'>MP4 clip from a 1080p recording: time against clip length (log-log)</text>",
        w / 2.0
    );
    for x in [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0] {
        out += &format!(
            "<line x1='{0}' y1='{1}' x2='{0}' y2='{2}' stroke='#ddd'/><text x='{0}' y='{3}' text-anchor='middle'>{x}</text>",
            px(x),
            top,
            h - bottom,
            h - bottom + 20.0
        );
    }
    for y in [1.0, 10.0, 100.0, 1000.0] {
        out += &format!(
            "<line x1='{1}' y1='{0}' x2='{2}' y2='{0}' stroke='#ddd'/><text x='{3}' y='{4}' text-anchor='end'>{y} ms</text>",
            py(y),
            left,
            w - right,
            left - 8.0,
            py(y) + 5.0
        );
    }
    out += &format!(
        "<text x='{}' y='{}' text-anchor='middle'>clip length (s)</text>",
        (left + w - right) / 2.0,
        h - 15.0
    );
    let series: [Series; 3] = [
        ("liveclip", "#d62728", |r| r.1),
        ("cat of the segments", "#1f77b4", |r| r.2),
        ("ffmpeg -c copy", "#7f7f7f", |r| r.3),
    ];
    for (k, (name, color, f)) in series.iter().enumerate() {
        let points: Vec<String> = rows
            .iter()
            .map(|r| format!("{:.1},{:.1}", px(r.0), py(f(r))))
            .collect();
        out += &format!(
            "<polyline points='{}' fill='none' stroke='{color}' stroke-width='3'/>",
            points.join(" ")
        );
        for r in rows {
            out += &format!(
                "<circle cx='{:.1}' cy='{:.1}' r='4' fill='{color}'/>",
                px(r.0),
                py(f(r))
            );
        }
        let ly = top + 20.0 + 22.0 * k as f64;
        out += &format!(
            "<line x1='{0}' y1='{ly}' x2='{1}' y2='{ly}' stroke='{color}' stroke-width='3'/><text x='{2}' y='{3}'>{name}</text>",
            left + 20.0,
            left + 50.0,
            left + 58.0,
            ly + 5.0
        );
    }
    out + "</svg>"
}
