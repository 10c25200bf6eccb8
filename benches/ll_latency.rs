// SPDX-License-Identifier: MPL-2.0
//! Latency at the live edge with low-latency HLS: a live 720p30 H.264
//! stream (x264 zerolatency, a keyframe every 2 s) + AAC recorded in
//! process by hlsclipsink (`target-duration=2`) with its HTTP API on
//! loopback.
//!
//! (a) Glass to playlist, with `part-duration=0.5`: a pad probe on
//! hlsclipsink's video pad notes when each frame is pushed into it; a
//! client reloads the live playlist as a low-latency player does (blocking
//! reloads, `_HLS_msn`/`_HLS_part` of the next part) and notes when each
//! part is first listed. A part's frames are placed on the recording
//! timeline from the playlist (EXTINF and EXT-X-PART durations before
//! them). Prints p50/p95 of "frame pushed → its part listed" and of "the
//! part's newest frame pushed → listed" (the server's own delay).
//!
//! (b) Live-edge clips: `GET /cam/clip.mp4?duration=2s` (the last 2 s) at
//! random times; how far the clip's end (`clip-start-seconds` +
//! `clip-duration-seconds`) is behind the end of the newest frame pushed
//! into hlsclipsink when the request was sent, with `part-duration=0.5`
//! and `part-duration=0` (the same pipeline otherwise), and the ratio.
//!
//! `cargo bench --bench ll_latency`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// How long the playlist client runs.
const GLASS_SECONDS: u64 = 30;
/// Live-edge clip requests per configuration.
const CLIPS: usize = 40;
const PART: f64 = 0.5;

/// When each frame (by PTS, ns) was pushed into hlsclipsink's video pad.
type Pushed = Arc<Mutex<Vec<(u64, Instant)>>>;

struct Live {
    pipeline: gst::Pipeline,
    addr: String,
    pushed: Pushed,
    _dir: tempfile::TempDir,
}

impl Live {
    fn start(part_duration: f64) -> Live {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let desc = format!(
            "hlsclipsink name=h location={} stream-id=cam target-duration=2 part-duration={part_duration} \
               http-address={addr} \
             videotestsrc is-live=true pattern=smpte ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! \
               timeoverlay ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=3000 key-int-max=60 ! \
               h264parse ! h.video \
             audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! h.audio",
            dir.path().display()
        );
        let pipeline = gst::parse::launch(&desc)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let sink = pipeline.by_name("h").unwrap();
        let pad = sink
            .sink_pads()
            .into_iter()
            .find(|p| p.name().starts_with("video"))
            .expect("hlsclipsink's video pad");
        let pushed: Pushed = Arc::default();
        let noted = pushed.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                noted.lock().unwrap().push((pts.nseconds(), Instant::now()));
            }
            gst::PadProbeReturn::Ok
        });
        pipeline.set_state(gst::State::Playing).unwrap();
        Live {
            pipeline,
            addr,
            pushed,
            _dir: dir,
        }
    }

    /// Waits `d`, failing on a pipeline error.
    fn run_for(&self, d: Duration) {
        let bus = self.pipeline.bus().unwrap();
        let until = Instant::now() + d;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64))
                && let gst::MessageView::Error(e) = msg.view()
            {
                panic!("{e:?}");
            }
        }
    }

    /// PTS of the first frame: recording time 0 (the recording starts at
    /// the first keyframe, and the encoder starts with one).
    fn origin(&self) -> u64 {
        self.pushed.lock().unwrap()[0].0
    }

    /// Recording time (ns) where the newest frame pushed so far ends.
    fn newest_end(&self) -> u64 {
        let pushed = self.pushed.lock().unwrap();
        pushed.last().unwrap().0 + 1_000_000_000 / 30 - pushed[0].0
    }

    fn stop(self) {
        self.pipeline.set_state(gst::State::Null).unwrap();
    }
}

/// A GET on loopback (one connection per request): status, headers
/// (lower-case names), body.
fn get(addr: &str, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

/// A part of the live playlist: its media sequence number, index in its
/// segment, and recording-time range (ns).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Part {
    msn: u64,
    index: u64,
    start: u64,
    end: u64,
}

fn seconds_attr(line: &str, name: &str) -> Option<f64> {
    let at = line.find(name)? + name.len();
    line[at..]
        .split([',', '\n'])
        .next()
        .and_then(|v| v.trim().parse().ok())
}

/// The parts a low-latency playlist lists, placed on the recording timeline
/// (the sum of the EXTINF before a segment is its start).
fn parts(playlist: &str) -> Vec<Part> {
    let ns = |s: f64| (s * 1e9).round() as u64;
    let mut out = Vec::new();
    let (mut msn, mut seg_start, mut index, mut at) = (0u64, 0u64, 0u64, 0u64);
    for line in playlist.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = v.trim().parse().unwrap();
            // The window starts at the first segment of the session here
            // (the live playlist lists every segment).
            assert_eq!(msn, 0, "a window that slid: place parts otherwise");
        } else if line.starts_with("#EXT-X-PART:") {
            let d = ns(seconds_attr(line, "DURATION=").unwrap());
            out.push(Part {
                msn,
                index,
                start: seg_start + at,
                end: seg_start + at + d,
            });
            index += 1;
            at += d;
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            seg_start += ns(v.trim_end_matches(',').parse().unwrap());
        } else if !line.starts_with('#') && !line.is_empty() {
            msn += 1;
            index = 0;
            at = 0;
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// (a): reloads the playlist as a low-latency player for `GLASS_SECONDS`;
/// returns each part and when it was first listed.
fn follow_playlist(live: &Live) -> Vec<(Part, Instant)> {
    let path = "/cam/manifest/video.m3u8";
    let mut seen: Vec<(Part, Instant)> = Vec::new();
    let mut reloads = 0;
    let until = Instant::now() + Duration::from_secs(GLASS_SECONDS);
    let mut next: Option<(u64, u64)> = None;
    while Instant::now() < until {
        let query = match next {
            Some((msn, part)) => format!("{path}?_HLS_msn={msn}&_HLS_part={part}"),
            None => path.to_string(),
        };
        let (status, _, body) = get(&live.addr, &query);
        let at = Instant::now();
        assert_eq!(status, 200, "{query}: {}", String::from_utf8_lossy(&body));
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.500"), "{text}");
        for p in parts(&text) {
            match seen
                .iter()
                .find(|(s, _)| s.msn == p.msn && s.index == p.index)
            {
                Some((s, _)) => assert_eq!(*s, p, "a part moved"),
                None => seen.push((p, at)),
            }
        }
        let last = seen.last().unwrap().0;
        next = Some((last.msn, last.index + 1));
        reloads += 1;
    }
    println!(
        "  {} playlist reloads, {} parts listed",
        reloads,
        seen.len()
    );
    seen
}

/// (b): `CLIPS` live-edge clips at random times; how far each clip's end is
/// behind the newest frame pushed when it was asked (s), and how long the
/// answer took (s).
fn live_edge_clips(live: &Live, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = seed;
    let mut behind = Vec::new();
    let mut took = Vec::new();
    for _ in 0..CLIPS {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // 0.2 to 1.2 s apart: requests fall anywhere in a GOP.
        live.run_for(Duration::from_millis(200 + (rng >> 33) % 1000));
        let newest = live.newest_end();
        let t = Instant::now();
        let (status, headers, body) = get(&live.addr, "/cam/clip.mp4?duration=2s");
        took.push(t.elapsed().as_secs_f64());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let header = |name: &str| -> f64 {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .unwrap_or_else(|| panic!("no {name} header"))
                .1
                .parse()
                .unwrap()
        };
        let end = header("clip-start-seconds") + header("clip-duration-seconds");
        assert!(body.len() > 1000, "an MP4");
        behind.push(newest as f64 / 1e9 - end);
    }
    (behind, took)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

fn main() {
    gst::init().unwrap();
    gstliveclip::plugin_register_static().unwrap();
    println!(
        "ll_latency: live 1280x720 30 fps H.264 (x264 ultrafast zerolatency, 3 Mb/s, GOP 2 s) + AAC \
         into hlsclipsink target-duration=2, HTTP on loopback; load average {}",
        load()
    );

    // (a) and (b) with parts.
    let live = Live::start(PART);
    live.run_for(Duration::from_secs(5));
    println!("glass to playlist, part-duration={PART}, {GLASS_SECONDS} s of blocking reloads:");
    let listed = follow_playlist(&live);
    let origin = live.origin();
    let pushed = live.pushed.lock().unwrap().clone();
    let (mut frames, mut tails, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    // Parts listed by the first (non-blocking) load were written before the
    // client came: only those it waited for count.
    let first_seen = listed[0].1;
    for (part, at) in listed.iter().filter(|(_, at)| *at > first_seen) {
        let inside: Vec<Instant> = pushed
            .iter()
            .filter(|(pts, _)| {
                let t = pts.saturating_sub(origin);
                // Half a millisecond for the rounding of the listed durations.
                t + 500_000 >= part.start && t + 500_000 < part.end
            })
            .map(|(_, when)| *when)
            .collect();
        assert!(!inside.is_empty(), "no frame in {part:?}");
        counts.push(inside.len());
        for when in &inside {
            frames.push(at.duration_since(*when).as_secs_f64());
        }
        tails.push(
            at.duration_since(*inside.iter().max().unwrap())
                .as_secs_f64(),
        );
    }
    assert!(
        counts.iter().all(|&n| (14..=16).contains(&n)),
        "15 frames a part: {counts:?}"
    );
    let (frames, tails) = (sorted(frames), sorted(tails));
    println!(
        "  frame pushed -> its part listed ({} frames of {} parts): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        frames.len(),
        tails.len(),
        percentile(&frames, 0.5) * 1e3,
        percentile(&frames, 0.95) * 1e3,
        frames.last().unwrap() * 1e3
    );
    println!(
        "  the part's newest frame pushed -> listed: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        percentile(&tails, 0.5) * 1e3,
        percentile(&tails, 0.95) * 1e3,
        tails.last().unwrap() * 1e3
    );

    println!(
        "live-edge clips, GET /cam/clip.mp4?duration=2s at {CLIPS} random times: \
         clip end behind the newest frame pushed"
    );
    let (ll, ll_took) = live_edge_clips(&live, 0x11a7);
    live.stop();
    let live = Live::start(0.0);
    live.run_for(Duration::from_secs(5));
    let (plain, plain_took) = live_edge_clips(&live, 0x11a7);
    live.stop();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let report = |name: &str, behind: &[f64], took: &[f64]| {
        let s = sorted(behind.to_vec());
        let t = sorted(took.to_vec());
        println!(
            "  {name:<18} p50 {:>4.0} ms  p95 {:>4.0} ms  mean {:>4.0} ms  min {:>4.0} ms  max {:>4.0} ms  (answer p50 {:.0} ms)",
            percentile(&s, 0.5) * 1e3,
            percentile(&s, 0.95) * 1e3,
            mean(&s) * 1e3,
            s[0] * 1e3,
            s.last().unwrap() * 1e3,
            percentile(&t, 0.5) * 1e3
        );
        s
    };
    // (Slightly negative: frames pushed while the request was on its way.)
    let a = report(&format!("part-duration={PART}"), &ll, &ll_took);
    let b = report("part-duration=0", &plain, &plain_took);
    println!(
        "  ratio (parts / none): p50 {:.2}x, p95 {:.2}x, mean {:.2}x",
        percentile(&a, 0.5) / percentile(&b, 0.5),
        percentile(&a, 0.95) / percentile(&b, 0.95),
        mean(&a) / mean(&b)
    );
    println!("load average at the end: {}", load());
}
