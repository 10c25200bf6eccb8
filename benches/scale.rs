// SPDX-License-Identifier: MPL-2.0
//! Scale: N live 1080p30 H.264 + AAC streams (6 Mb/s, 2 s GOP), each its
//! own pipeline and hlsclipsink, in one process, fed at real-time pace.
//!
//! Every measurement runs in a child process of its own (this binary
//! again, with `SCALE_CHILD` set), so that its CPU time, RSS, threads and
//! descriptors are its own. The child demuxes the cached 60 s input once
//! and builds N pipelines `appsrc ! hlsclipsink` (video and audio). Each
//! appsrc is fed from its own streaming thread, as a live source's thread
//! is fed by its socket or device: when the appsrc wants data, the thread
//! waits until the next buffer is due (decode time for video, presentation
//! time for audio), makes it and pushes it downstream, looping the input.
//! Each buffer is a copy of the demuxed one in fresh memory (as a network
//! source receives it; `SCALE_COPY=0` pushes them by reference),
//! re-timestamped. The streams start spread over one GOP, as independent
//! cameras do. A pad probe behind each appsrc notes how long after its due
//! time each buffer went downstream; one more than 1 s late counts as lost
//! (a live source held that long by what is downstream loses data).
//!
//! Measured per N, over a window after a warm-up: CPU time (getrusage of
//! the child, all threads, and per thread kind from /proc), RSS, threads
//! and open descriptors (sampled every second, maximum), frames lost (every
//! stream's replay playlist counted with `ffprobe -count_packets` against
//! what was pushed, plus late buffers). Cases:
//! - record: `appsrc ! hlsclipsink` for N in `SCALE_N` (default
//!   1,25,50,100,200), stopping at the first N that loses a frame or uses
//!   both cores;
//! - floor: the same feed into `fakesink` at the largest N (what the input
//!   costs);
//! - clipper: hlsclipsink + periodicclipper (interval 30 s) + thumbnailer
//!   (every 10 s, 320 px) per stream, behind a tee, for N in
//!   `SCALE_CLIPPER_N` (default 25,50);
//! - clips: record at `SCALE_CLIP_N` (default 100) with the HTTP API on one
//!   shared listener, while this process asks for `SCALE_CLIP_RATE`
//!   (default 20) `clip.mp4?duration=10s` per second across the streams;
//! - long: one stream, `SCALE_LONG_SECONDS` (default 7200) of media at
//!   `SCALE_LONG_SPEED` (default 24) times real time, RSS, descriptors and
//!   CPU sampled every minute of media;
//! - disk: `dd oflag=direct` of 2000 MB, and appends of 1.5 MB (a fragment)
//!   each followed by fdatasync from 1 and from 16 threads;
//! - hls_record: the ingest comparison of `benches/hls_record.rs`
//!   (`SCALE_HLS_RECORD_RUNS`, default 3).
//!
//! - playlist: what a segment close costs in a session of 2 h, 24 h and 7
//!   days: rendering the replay playlist (whole, or from the text kept
//!   between segments as the recorder does) and replacing it on disk.
//!
//! `SCALE_SECONDS` sets the window (default 30 s); `SCALE_SKIP` names
//! parts to leave out (disk,playlist,hls_record,record,floor,clipper,clips,
//! long).
//!
//! `cargo bench --bench scale`

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use gst::prelude::*;
use serde_json::{Value, json};

const NS: u64 = 1_000_000_000;
/// The input loops every 60 s (1800 frames at 30 fps).
const LOOP_NS: u64 = 60 * NS;
const GOP_NS: u64 = 2 * NS;
/// AAC frames of 1024 samples at 48 kHz.
const AUDIO_SAMPLES: u64 = 1024;
const AUDIO_RATE: u64 = 48_000;
/// A buffer pushed this much after its due time counts as lost.
const LATE_NS: u64 = NS;
/// Histogram of delays: 1 ms buckets up to 5 s.
const HIST_MS: usize = 5000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn main() {
    if let Ok(spec) = std::env::var("SCALE_CHILD") {
        child::run(&Spec::parse(&spec));
        return;
    }
    parent::run();
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Record,
    Floor,
    Clipper,
    Long,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Record => "record",
            Case::Floor => "floor",
            Case::Clipper => "clipper",
            Case::Long => "long",
        }
    }

    fn from_name(s: &str) -> Self {
        match s {
            "record" => Case::Record,
            "floor" => Case::Floor,
            "clipper" => Case::Clipper,
            "long" => Case::Long,
            _ => panic!("unknown case {s}"),
        }
    }
}

/// What a child measures (passed as `key=value` words in `SCALE_CHILD`).
#[derive(Clone, Debug)]
struct Spec {
    case: Case,
    n: usize,
    /// Seconds of wall time before the window.
    warmup: u64,
    /// Seconds of wall time measured.
    seconds: u64,
    /// Media seconds per wall second.
    speed: u64,
    /// Copy every buffer into fresh memory.
    copy: bool,
    http: Option<String>,
    out: PathBuf,
}

impl Spec {
    fn encode(&self) -> String {
        format!(
            "case={} n={} warmup={} seconds={} speed={} copy={} out={}{}",
            self.case.name(),
            self.n,
            self.warmup,
            self.seconds,
            self.speed,
            u8::from(self.copy),
            self.out.display(),
            self.http
                .as_deref()
                .map(|h| format!(" http={h}"))
                .unwrap_or_default()
        )
    }

    fn parse(s: &str) -> Self {
        let kv: HashMap<&str, &str> = s
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        Spec {
            case: Case::from_name(kv["case"]),
            n: kv["n"].parse().unwrap(),
            warmup: kv["warmup"].parse().unwrap(),
            seconds: kv["seconds"].parse().unwrap(),
            speed: kv["speed"].parse().unwrap(),
            copy: kv["copy"] == "1",
            http: kv.get("http").map(|h| h.to_string()),
            out: PathBuf::from(kv["out"]),
        }
    }
}

fn stream_id(i: usize) -> String {
    format!("cam-{i:03}")
}

/// The child: builds the pipelines, feeds them, measures, prints one
/// `result {json}` line.
mod child {
    use super::*;

    /// The demuxed input, in decode order.
    pub struct Input {
        pub vcaps: gst::Caps,
        pub acaps: gst::Caps,
        pub video: Vec<gst::Buffer>,
        pub audio: Vec<gst::Buffer>,
    }

    pub fn load(path: &Path) -> Input {
        let unbounded = "queue max-size-time=0 max-size-buffers=0 max-size-bytes=0";
        let p = gst::parse::launch(&format!(
            "filesrc location={} ! qtdemux name=d \
             d.video_0 ! {unbounded} ! h264parse ! appsink name=v sync=false wait-on-eos=false \
             d.audio_0 ! {unbounded} ! aacparse ! appsink name=a sync=false wait-on-eos=false",
            path.display()
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        p.set_state(gst::State::Playing).unwrap();
        let bus = p.bus().unwrap();
        for msg in bus.iter_timed(gst::ClockTime::NONE) {
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => panic!("{e:?}"),
                _ => {}
            }
        }
        let pull = |name: &str| {
            let sink = p
                .by_name(name)
                .unwrap()
                .downcast::<gst_app::AppSink>()
                .unwrap();
            let mut caps = None;
            let mut buffers = Vec::new();
            while let Some(s) = sink.try_pull_sample(gst::ClockTime::ZERO) {
                caps = caps.or_else(|| s.caps_owned());
                buffers.push(s.buffer_owned().unwrap());
            }
            (caps.unwrap(), buffers)
        };
        let (vcaps, video) = pull("v");
        let (acaps, audio) = pull("a");
        p.set_state(gst::State::Null).unwrap();
        assert_eq!(video.len(), 1800);
        Input {
            vcaps,
            acaps,
            video,
            audio,
        }
    }

    /// Counters every stream's probe adds to.
    pub struct Stats {
        hist: Vec<AtomicU32>,
        max_ns: AtomicU64,
        late: AtomicU64,
        arrived: AtomicU64,
        pub eos: AtomicUsize,
        pub errors: Mutex<Vec<String>>,
        pub warnings: Mutex<Vec<String>>,
    }

    impl Stats {
        fn new() -> Self {
            Self {
                hist: (0..=HIST_MS).map(|_| AtomicU32::new(0)).collect(),
                max_ns: AtomicU64::new(0),
                late: AtomicU64::new(0),
                arrived: AtomicU64::new(0),
                eos: AtomicUsize::new(0),
                errors: Mutex::new(Vec::new()),
                warnings: Mutex::new(Vec::new()),
            }
        }

        fn delay(&self, ns: u64) {
            self.arrived.fetch_add(1, Ordering::Relaxed);
            self.max_ns.fetch_max(ns, Ordering::Relaxed);
            if ns > LATE_NS {
                self.late.fetch_add(1, Ordering::Relaxed);
            }
            let ms = ((ns / 1_000_000) as usize).min(HIST_MS);
            self.hist[ms].fetch_add(1, Ordering::Relaxed);
        }

        /// The delay (ms) that a fraction `q` of the buffers stayed under.
        fn quantile_ms(&self, q: f64) -> f64 {
            let counts: Vec<u64> = self
                .hist
                .iter()
                .map(|c| u64::from(c.load(Ordering::Relaxed)))
                .collect();
            let total: u64 = counts.iter().sum();
            let want = (total as f64 * q).ceil() as u64;
            let mut seen = 0;
            for (ms, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= want.max(1) {
                    return ms as f64 + 1.0;
                }
            }
            HIST_MS as f64
        }
    }

    pub struct Stream {
        pipeline: gst::Pipeline,
        video: gst_app::AppSrc,
        audio: gst_app::AppSrc,
        /// Running time (ns) of its first video decode time and audio
        /// frame.
        start: u64,
    }

    fn make(factory: &str, name: &str) -> gst::Element {
        gst::ElementFactory::make(factory)
            .name(name)
            .build()
            .unwrap_or_else(|e| panic!("{factory}: {e}"))
    }

    fn appsrc(name: &str, caps: &gst::Caps) -> gst_app::AppSrc {
        gst_app::AppSrc::builder()
            .name(name)
            .caps(caps)
            .format(gst::Format::Time)
            .is_live(true)
            .do_timestamp(false)
            .stream_type(gst_app::AppStreamType::Stream)
            .build()
    }

    fn link(src: &gst::Element, sink: &gst::Element, request: Option<&str>) {
        let sinkpad = match request {
            Some(name) => sink.request_pad_simple(name).unwrap(),
            None => sink.static_pad("sink").unwrap(),
        };
        let srcpad = src
            .static_pad("src")
            .or_else(|| src.request_pad_simple("src_%u"))
            .unwrap();
        srcpad.link(&sinkpad).unwrap();
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        i: usize,
        spec: &Spec,
        input: &Input,
        clock: &gst::Clock,
        base: gst::ClockTime,
        start: u64,
        stats: &Arc<Stats>,
    ) -> Stream {
        let id = stream_id(i);
        let pipeline = gst::Pipeline::with_name(&id);
        pipeline.use_clock(Some(clock));
        pipeline.set_start_time(gst::ClockTime::NONE);
        pipeline.set_base_time(base);
        let video = appsrc(&format!("v{i}"), &input.vcaps);
        let audio = appsrc(&format!("a{i}"), &input.acaps);
        pipeline
            .add_many([video.upcast_ref::<gst::Element>(), audio.upcast_ref()])
            .unwrap();
        let record = |pipeline: &gst::Pipeline| {
            let h = make("hlsclipsink", &format!("h{i}"));
            h.set_property("location", spec.out.join("rec").display().to_string());
            h.set_property("stream-id", &id);
            h.set_property("target-duration", 6u32);
            h.set_property("send-keyframe-requests", false);
            if let Some(addr) = &spec.http {
                h.set_property("http-address", addr);
            }
            pipeline.add(&h).unwrap();
            h
        };
        match spec.case {
            Case::Record | Case::Long => {
                let h = record(&pipeline);
                link(video.upcast_ref(), &h, Some("video"));
                link(audio.upcast_ref(), &h, Some("audio"));
            }
            Case::Floor => {
                for src in [&video, &audio] {
                    let sink = gst::ElementFactory::make("fakesink")
                        .property("sync", false)
                        .property("async", false)
                        .build()
                        .unwrap();
                    pipeline.add(&sink).unwrap();
                    link(src.upcast_ref(), &sink, None);
                }
            }
            Case::Clipper => {
                let h = record(&pipeline);
                let clips = spec.out.join("clips").join(&id);
                let thumbs = spec.out.join("thumbs").join(&id);
                std::fs::create_dir_all(&clips).unwrap();
                std::fs::create_dir_all(&thumbs).unwrap();
                let pc = gst::ElementFactory::make("periodicclipper")
                    .property(
                        "location",
                        clips.join("clip-%05d.mp4").display().to_string(),
                    )
                    .property("interval", 30u32)
                    .property("max-clip-duration", 60u32)
                    .property("send-keyframe-requests", false)
                    .build()
                    .unwrap();
                let th = gst::ElementFactory::make("thumbnailer")
                    .property(
                        "location",
                        thumbs.join("thumb-%05d.jpg").display().to_string(),
                    )
                    .property("interval", 10u32)
                    .property("width", 320u32)
                    .build()
                    .unwrap();
                let tv = gst::ElementFactory::make("tee")
                    .property("allow-not-linked", true)
                    .build()
                    .unwrap();
                let ta = gst::ElementFactory::make("tee")
                    .property("allow-not-linked", true)
                    .build()
                    .unwrap();
                pipeline.add_many([&pc, &th, &tv, &ta]).unwrap();
                link(video.upcast_ref(), &tv, None);
                link(audio.upcast_ref(), &ta, None);
                link(&tv, &h, Some("video"));
                link(&tv, &pc, Some("video"));
                link(&tv, &th, None);
                link(&ta, &h, Some("audio"));
                link(&ta, &pc, Some("audio"));
            }
        }
        // How late each buffer goes downstream of its appsrc.
        for (src, is_video) in [(&video, true), (&audio, false)] {
            let stats = stats.clone();
            let clock = clock.clone();
            let speed = spec.speed;
            src.static_pad("src")
                .unwrap()
                .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                    if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                        let t = if is_video { b.dts() } else { b.pts() };
                        if let Some(t) = t {
                            let due = base.nseconds() + start + (t.nseconds() - start) / speed;
                            stats.delay(clock.time().nseconds().saturating_sub(due));
                        }
                    }
                    gst::PadProbeReturn::Ok
                });
        }
        let bus = pipeline.bus().unwrap();
        let stats = stats.clone();
        bus.set_sync_handler(move |_, msg| {
            match msg.view() {
                gst::MessageView::Eos(_) => {
                    stats.eos.fetch_add(1, Ordering::SeqCst);
                }
                gst::MessageView::Error(e) => {
                    stats.errors.lock().unwrap().push(format!(
                        "{}: {} ({:?})",
                        msg.src()
                            .map(|s| s.path_string().to_string())
                            .unwrap_or_default(),
                        e.error(),
                        e.debug()
                    ));
                }
                gst::MessageView::Warning(w) => {
                    stats.warnings.lock().unwrap().push(format!(
                        "{}: {}",
                        msg.src()
                            .map(|s| s.path_string().to_string())
                            .unwrap_or_default(),
                        w.error()
                    ));
                }
                _ => {}
            }
            gst::BusSyncReply::Drop
        });
        Stream {
            pipeline,
            video,
            audio,
            start,
        }
    }

    /// Buffer number `k` of the video or audio track of the stream that
    /// starts at `start`.
    fn buffer(input: &Input, copy: bool, start: u64, video: bool, k: u64) -> gst::Buffer {
        if video {
            let len = input.video.len() as u64;
            let src = &input.video[(k % len) as usize];
            let shift = start + (k / len) * LOOP_NS;
            let mut b = if copy {
                src.copy_deep().unwrap()
            } else {
                src.copy()
            };
            let dts = src.dts().unwrap().nseconds() + shift;
            {
                let b = b.get_mut().unwrap();
                b.set_dts(gst::ClockTime::from_nseconds(dts));
                b.set_pts(src.pts().map(|p| p + gst::ClockTime::from_nseconds(shift)));
                if k > 0 {
                    b.unset_flags(gst::BufferFlags::DISCONT);
                }
            }
            b
        } else {
            // Audio is numbered on: 1024 samples a frame, whatever the
            // input's length (its last frame passes 60 s).
            let src = &input.audio[(k % input.audio.len() as u64) as usize];
            let mut b = if copy {
                src.copy_deep().unwrap()
            } else {
                src.copy()
            };
            let pts = start + k * AUDIO_SAMPLES * NS / AUDIO_RATE;
            let end = start + (k + 1) * AUDIO_SAMPLES * NS / AUDIO_RATE;
            {
                let b = b.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_nseconds(pts));
                b.set_dts(gst::ClockTime::from_nseconds(pts));
                b.set_duration(gst::ClockTime::from_nseconds(end - pts));
                if k > 0 {
                    b.unset_flags(gst::BufferFlags::DISCONT);
                }
            }
            b
        }
    }

    /// What feeds one appsrc from its own streaming thread, as a live
    /// source's thread does: when the appsrc wants data, the thread waits
    /// until the next buffer is due, makes it (a copy of the input's, in
    /// fresh memory) and pushes it; past the window's end, EOS.
    struct Source {
        input: Arc<Input>,
        copy: bool,
        start: u64,
        video: bool,
        speed: u64,
        clock: gst::Clock,
        base: u64,
        /// Running time (ns) at which the track ends.
        end: u64,
        pushed: Arc<Vec<[AtomicU64; 2]>>,
        stream: usize,
        refused: Arc<AtomicU64>,
    }

    impl Source {
        fn attach(self, src: &gst_app::AppSrc) {
            let mut k = 0u64;
            src.set_callbacks(
                gst_app::AppSrcCallbacks::builder()
                    .need_data(move |src, _| {
                        let t = due_time(&self.input, self.start, self.video, k);
                        // The wall time it is due at (later media comes
                        // sooner at a speed above 1).
                        let due = self.start + (t - self.start) / self.speed;
                        if due >= self.end {
                            let _ = src.end_of_stream();
                            return;
                        }
                        let now = self.clock.time().nseconds().saturating_sub(self.base);
                        if due > now {
                            std::thread::sleep(Duration::from_nanos(due - now));
                        }
                        let b = buffer(&self.input, self.copy, self.start, self.video, k);
                        if src.push_buffer(b).is_err() {
                            self.refused.fetch_add(1, Ordering::SeqCst);
                        }
                        k += 1;
                        self.pushed[self.stream][usize::from(!self.video)]
                            .fetch_add(1, Ordering::SeqCst);
                    })
                    .build(),
            );
        }
    }

    /// Bytes of the C heap in use (malloc's own count: what is allocated,
    /// not what the allocator keeps).
    pub fn heap_in_use() -> u64 {
        // SAFETY: mallinfo2 only reads the allocator's counters.
        let m = unsafe { libc::mallinfo2() };
        (m.uordblks + m.hblkhd) as u64
    }

    /// One process sample: (RSS kB, threads, open descriptors).
    pub fn usage() -> (u64, u64, u64) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        (field("VmRSS:"), field("Threads:"), fds)
    }

    /// CPU seconds (user + system) of each thread now, by thread id, with
    /// its name.
    fn thread_cpu() -> HashMap<u64, (String, f64)> {
        // SAFETY: sysconf has no preconditions.
        let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let mut out = HashMap::new();
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return out;
        };
        for e in dir.flatten() {
            let Ok(tid) = e.file_name().to_string_lossy().parse::<u64>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let name: String = if tid == std::process::id() as u64 {
                "main".into()
            } else {
                stat[open + 1..close]
                    .chars()
                    .filter(|c| !c.is_ascii_digit())
                    .collect()
            };
            let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            out.insert(tid, (name, (ticks(11) + ticks(12)) / tick));
        }
        out
    }

    pub fn run(spec: &Spec) {
        gst::init().unwrap();
        gstliveclip::plugin_register_static().unwrap();
        let input = load(&common::input());
        let first_video_pts = input.video[0].pts().unwrap().nseconds();
        let clock = gst::SystemClock::obtain();
        let base = clock.time();
        let stats = Arc::new(Stats::new());
        // Streams start a second or more from now (setting up many takes
        // a while), spread over one GOP.
        let begin = (1 + spec.n as u64 / 50) * NS;
        let window_start = begin + spec.warmup * NS;
        let window_end = window_start + spec.seconds * NS;
        let input = Arc::new(input);
        let pushed: Arc<Vec<[AtomicU64; 2]>> = Arc::new(
            (0..spec.n)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
        );
        let refused = Arc::new(AtomicU64::new(0));
        let streams: Vec<Stream> = (0..spec.n)
            .map(|i| {
                let start = begin + GOP_NS * i as u64 / spec.n as u64;
                let s = build(i, spec, &input, &clock, base, start, &stats);
                for (src, video) in [(&s.video, true), (&s.audio, false)] {
                    let source = Source {
                        input: input.clone(),
                        copy: spec.copy,
                        start,
                        video,
                        speed: spec.speed,
                        clock: clock.clone(),
                        base: base.nseconds(),
                        end: window_end,
                        pushed: pushed.clone(),
                        stream: i,
                        refused: refused.clone(),
                    };
                    source.attach(src);
                }
                s
            })
            .collect();
        for s in &streams {
            s.pipeline
                .set_state(gst::State::Playing)
                .unwrap_or_else(|e| panic!("{}: {e}", s.pipeline.name()));
        }
        let now_rt = || clock.time().nseconds().saturating_sub(base.nseconds());
        assert!(now_rt() < begin, "setting up took longer than planned");

        // Samples every second; the window's CPU; a long run's series.
        let minute = 60 * NS / spec.speed;
        let mut samples: Vec<(u64, u64, u64)> = Vec::new();
        let mut series: Vec<Value> = Vec::new();
        let mut next_sample = begin;
        let mut next_minute = begin + minute;
        let mut at_start = None;
        let mut last_cpu = rusage_split();
        let at_end = loop {
            let now = now_rt();
            if now >= next_sample {
                samples.push(usage());
                next_sample += NS;
            }
            if spec.case == Case::Long && now >= next_minute {
                let (rss, threads, fds) = usage();
                let cpu = rusage_split();
                series.push(json!({
                    "media_min": (now - begin) * spec.speed / (60 * NS),
                    "rss_kb": rss, "fds": fds, "threads": threads,
                    "heap_kb": heap_in_use() / 1024,
                    "user_s": cpu.0 - last_cpu.0,
                    "sys_s": cpu.1 - last_cpu.1,
                }));
                last_cpu = cpu;
                next_minute += minute;
            }
            if at_start.is_none() && now >= window_start {
                at_start = Some((
                    common::self_cpu(),
                    rusage_split(),
                    thread_cpu(),
                    now,
                    kernel_cpu(),
                ));
                println!("window-start");
                std::io::stdout().flush().unwrap();
            }
            if now >= window_end {
                let at_end = (
                    common::self_cpu(),
                    rusage_split(),
                    thread_cpu(),
                    now,
                    kernel_cpu(),
                );
                println!("window-end");
                std::io::stdout().flush().unwrap();
                break at_end;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The sources end their tracks at the window's end.
        let drain = Instant::now();
        while stats.eos.load(Ordering::SeqCst) < streams.len()
            && drain.elapsed() < Duration::from_secs(180)
            && stats.errors.lock().unwrap().is_empty()
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let drained = drain.elapsed().as_secs_f64();
        let eos = stats.eos.load(Ordering::SeqCst);
        for s in &streams {
            s.pipeline.set_state(gst::State::Null).unwrap();
        }

        let (cpu0, (u0, s0), threads0, t0, k0) = at_start.unwrap();
        let (cpu1, (u1, s1), threads1, t1, k1) = at_end;
        let mut by_kind: BTreeMap<String, f64> = BTreeMap::new();
        for (tid, (name, c1)) in &threads1 {
            let c0 = threads0.get(tid).map_or(0.0, |t| t.1);
            *by_kind.entry(name.clone()).or_default() += c1 - c0;
        }
        let max = |f: fn(&(u64, u64, u64)) -> u64| samples.iter().map(f).max().unwrap_or(0);
        let errors = stats.errors.lock().unwrap().clone();
        let warnings = stats.warnings.lock().unwrap().clone();
        let result = json!({
            "case": spec.case.name(),
            "n": spec.n,
            "window_s": (t1 - t0) as f64 / NS as f64,
            "cpu_s": (cpu1 - cpu0).as_secs_f64(),
            "user_s": u1 - u0,
            "sys_s": s1 - s0,
            "kernel_s": k1 - k0,
            "rss_max_kb": max(|s| s.0),
            "rss_end_kb": samples.last().map_or(0, |s| s.0),
            "threads_max": max(|s| s.1),
            "fds_max": max(|s| s.2),
            "pushed": pushed
                .iter()
                .map(|p| json!([p[0].load(Ordering::SeqCst), p[1].load(Ordering::SeqCst)]))
                .collect::<Vec<_>>(),
            "starts": streams.iter().map(|s| s.start).collect::<Vec<_>>(),
            "first_video_pts": first_video_pts,
            "feed_s": (window_end - begin) as f64 / NS as f64,
            "refused": refused.load(Ordering::SeqCst),
            "arrived": stats.arrived.load(Ordering::Relaxed),
            "late": stats.late.load(Ordering::Relaxed),
            "delay_p50_ms": stats.quantile_ms(0.5),
            "delay_p99_ms": stats.quantile_ms(0.99),
            "delay_max_ms": stats.max_ns.load(Ordering::Relaxed) as f64 / 1e6,
            "eos": eos,
            "drain_s": drained,
            "errors": errors,
            "warnings": warnings,
            "threads_cpu": by_kind,
            "series": series,
        });
        println!("result {result}");
        std::io::stdout().flush().unwrap();
    }

    /// The due time (media running time, ns) of buffer `k` of a track:
    /// video by decode time, audio by presentation time.
    fn due_time(input: &Input, start: u64, video: bool, k: u64) -> u64 {
        if video {
            let len = input.video.len() as u64;
            let src = &input.video[(k % len) as usize];
            start + (k / len) * LOOP_NS + src.dts().unwrap().nseconds()
        } else {
            start + k * AUDIO_SAMPLES * NS / AUDIO_RATE
        }
    }

    /// CPU seconds of the kernel's threads so far (writeback, journal,
    /// block I/O: work the process's writes cause but are not charged
    /// to it; other processes' I/O counts too).
    pub fn kernel_cpu() -> f64 {
        // SAFETY: sysconf has no preconditions.
        let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 0.0;
        };
        let mut total = 0.0;
        for e in dir.flatten() {
            if !e
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
            {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let Some(close) = stat.rfind(')') else {
                continue;
            };
            let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
            // Field 4 (ppid) is 2 for kernel threads (kthreadd's children).
            if fields.get(1) != Some(&"2") {
                continue;
            }
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            total += (ticks(11) + ticks(12)) / tick;
        }
        total
    }

    /// User and system CPU seconds of the process so far.
    fn rusage_split() -> (f64, f64) {
        // SAFETY: getrusage only writes into the struct it is given.
        let u = unsafe {
            let mut u: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut u);
            u
        };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        (tv(u.ru_utime), tv(u.ru_stime))
    }
}

/// The parent: runs the children, counts the recordings, prints the
/// tables.
mod parent {
    use super::*;

    /// A child process, killed if it is still running when dropped.
    struct Guard(Child);

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
            }
            let _ = self.0.wait();
        }
    }

    fn loadavg() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs a child for `spec`; `during` is called once its window starts
    /// (with a flag that says when the window has ended). Returns its
    /// result and the load average before it started.
    fn run_child(spec: &Spec, during: impl FnOnce(&AtomicBool) + Send) -> (Value, String) {
        let load = loadavg();
        let _ = std::fs::remove_dir_all(&spec.out);
        std::fs::create_dir_all(&spec.out).unwrap();
        eprintln!("[scale] {} (load average {load})", spec.encode());
        let child = Command::new(std::env::current_exe().unwrap())
            .env("SCALE_CHILD", spec.encode())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the benchmark binary");
        let mut guard = Guard(child);
        let stdout = guard.0.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let ended = AtomicBool::new(false);
        let mut result = None;
        std::thread::scope(|scope| {
            let mut during = Some(during);
            let mut worker = None;
            for line in rx.iter() {
                if line == "window-start" {
                    if let Some(f) = during.take() {
                        let ended = &ended;
                        worker = Some(scope.spawn(move || f(ended)));
                    }
                } else if line == "window-end" {
                    ended.store(true, Ordering::SeqCst);
                } else if let Some(json) = line.strip_prefix("result ") {
                    result = Some(serde_json::from_str::<Value>(json).unwrap());
                } else {
                    println!("{line}");
                }
            }
            ended.store(true, Ordering::SeqCst);
            if let Some(w) = worker {
                w.join().unwrap();
            }
        });
        let _ = reader.join();
        let status = guard.0.wait().unwrap();
        assert!(
            status.success(),
            "the child for {} failed: {status}",
            spec.encode()
        );
        (result.expect("the child's result"), load)
    }

    /// (video, audio) packets of a replay playlist, by ffprobe.
    fn count(replay: &Path) -> (u64, u64) {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-count_packets"])
            .args(["-show_entries", "stream=codec_type,nb_read_packets"])
            .args(["-of", "csv=p=0"])
            .arg(replay)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut v = 0;
        let mut a = 0;
        for line in text.lines() {
            match line.split_once(',') {
                Some(("video", n)) => v = n.trim().parse().unwrap_or(0),
                Some(("audio", n)) => a = n.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
        (v, a)
    }

    /// What a run lost, stream by stream: recorded (video, audio) against
    /// pushed.
    struct Counted {
        video_pushed: u64,
        video_lost: u64,
        audio_pushed: u64,
        audio_lost: u64,
        bytes: u64,
    }

    fn dir_bytes(dir: &Path) -> u64 {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return 0;
        };
        rd.flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    dir_bytes(&p)
                } else {
                    e.metadata().map_or(0, |m| m.len())
                }
            })
            .sum()
    }

    /// Audio frames of a stream that the recording starts with: those
    /// presented mostly from its first keyframe on (the first video
    /// frame's presentation time; followers are cut by frame middle).
    fn audio_expected(pushed: u64, first_video_pts: u64) -> u64 {
        let frame = AUDIO_SAMPLES * NS / AUDIO_RATE;
        let before = (0..pushed)
            .take_while(|k| k * AUDIO_SAMPLES * NS / AUDIO_RATE + frame / 2 < first_video_pts)
            .count() as u64;
        pushed - before
    }

    fn count_run(result: &Value, out: &Path) -> Counted {
        let first_video_pts = result["first_video_pts"].as_u64().unwrap();
        let pushed: Vec<(u64, u64)> = result["pushed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
            .collect();
        let rec = out.join("rec");
        let next = AtomicUsize::new(0);
        let counts: Mutex<Vec<(usize, (u64, u64))>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= pushed.len() {
                            break;
                        }
                        let c = common::recorded_session(&rec.join(stream_id(i)))
                            .map_or((0, 0), |s| count(&s.join("replay.m3u8")));
                        counts.lock().unwrap().push((i, c));
                    }
                });
            }
        });
        let counts = counts.into_inner().unwrap();
        let mut c = Counted {
            video_pushed: 0,
            video_lost: 0,
            audio_pushed: 0,
            audio_lost: 0,
            bytes: dir_bytes(&rec),
        };
        for (i, (v, a)) in counts {
            let (pv, pa) = pushed[i];
            let ea = audio_expected(pa, first_video_pts);
            c.video_pushed += pv;
            c.audio_pushed += ea;
            c.video_lost += pv.saturating_sub(v);
            c.audio_lost += ea.saturating_sub(a);
            if v > pv || a > ea {
                println!(
                    "  {}: recorded {v} video / {a} audio frames of {pv} / {ea} pushed: more than pushed",
                    stream_id(i)
                );
            }
        }
        c
    }

    /// One row of the scale table.
    struct Row {
        case: String,
        n: usize,
        load: String,
        result: Value,
        counted: Option<Counted>,
        extra: String,
    }

    impl Row {
        fn cpu_pct(&self) -> f64 {
            100.0 * self.result["cpu_s"].as_f64().unwrap()
                / self.result["window_s"].as_f64().unwrap()
        }

        fn per_stream_hour(&self) -> f64 {
            self.result["cpu_s"].as_f64().unwrap()
                / self.result["window_s"].as_f64().unwrap()
                / self.n as f64
                * 3600.0
        }

        fn lost(&self) -> u64 {
            self.result["late"].as_u64().unwrap()
                + self
                    .counted
                    .as_ref()
                    .map_or(0, |c| c.video_lost + c.audio_lost)
        }
    }

    fn print_rows(rows: &[Row], dd_mb_s: Option<f64>, window: u64) {
        println!();
        println!(
            "scale: live 1080p30 H.264 6 Mb/s (GOP 2 s) + AAC streams in one process, {window} s window; \
             CPU % of one core (200 % = both cores); \
             kthr %: the kernel's own threads (writeback, journal), the whole machine's"
        );
        println!(
            "  {:<8} {:>4} {:>15} {:>7} {:>7} {:>12} {:>8} {:>8} {:>6} {:>6} {:>8} {:>6} {:>14} {:>8}",
            "case",
            "N",
            "load avg",
            "CPU %",
            "kthr %",
            "CPU s/str·h",
            "RSS MB",
            "MB/str",
            "thr",
            "fds",
            "frames",
            "lost",
            "delay p99/max",
            "MB/s"
        );
        for r in rows {
            let rss = r.result["rss_max_kb"].as_f64().unwrap() / 1024.0;
            let frames = r
                .counted
                .as_ref()
                .map_or(0, |c| c.video_pushed + c.audio_pushed);
            let mbs = r.counted.as_ref().map_or(0.0, |c| {
                c.bytes as f64 / 1e6 / r.result["feed_s"].as_f64().unwrap()
            });
            println!(
                "  {:<8} {:>4} {:>15} {:>7.1} {:>7.1} {:>12.2} {:>8.0} {:>8.2} {:>6} {:>6} {:>8} {:>6} {:>14} {:>8.1}{}",
                r.case,
                r.n,
                r.load,
                r.cpu_pct(),
                100.0 * r.result["kernel_s"].as_f64().unwrap()
                    / r.result["window_s"].as_f64().unwrap(),
                r.per_stream_hour(),
                rss,
                rss / r.n as f64,
                r.result["threads_max"].as_u64().unwrap(),
                r.result["fds_max"].as_u64().unwrap(),
                frames,
                r.lost(),
                format!(
                    "{:.0}/{:.0} ms",
                    r.result["delay_p99_ms"].as_f64().unwrap(),
                    r.result["delay_max_ms"].as_f64().unwrap()
                ),
                mbs,
                r.extra
            );
        }
        if let Some(dd) = dd_mb_s {
            println!(
                "  (MB/s: bytes recorded over the time fed; the disk's direct write bandwidth: {dd:.0} MB/s)"
            );
        }
    }

    fn print_details(row: &Row) {
        let r = &row.result;
        if let Some(c) = &row.counted {
            println!(
                "  {} N={}: video {} pushed, {} missing; audio {} pushed, {} missing; {} late (> {} s), {} refused; \
                 user {:.2} s, system {:.2} s; drain {:.1} s; EOS {}/{}",
                row.case,
                row.n,
                c.video_pushed,
                c.video_lost,
                c.audio_pushed,
                c.audio_lost,
                r["late"],
                LATE_NS / NS,
                r["refused"],
                r["user_s"].as_f64().unwrap(),
                r["sys_s"].as_f64().unwrap(),
                r["drain_s"].as_f64().unwrap(),
                r["eos"],
                row.n
            );
        }
        let mut kinds: Vec<(String, f64)> = r["threads_cpu"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
            .filter(|(_, v)| *v > 0.0)
            .collect();
        kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = kinds.iter().map(|k| k.1).sum();
        let list: Vec<String> = kinds
            .iter()
            .take(8)
            .map(|(k, v)| format!("{k} {:.0} %", 100.0 * v / total.max(1e-9)))
            .collect();
        println!("    CPU by thread: {}", list.join(", "));
        for (what, key) in [("errors", "errors"), ("warnings", "warnings")] {
            let list = r[key].as_array().unwrap();
            if !list.is_empty() {
                println!("    {} {what}, first: {}", list.len(), list[0]);
            }
        }
    }

    /// Disk: direct write bandwidth (dd) and fragment appends with
    /// fdatasync from 1 and 16 threads. Returns dd's MB/s.
    fn disk(dir: &Path) -> f64 {
        std::fs::create_dir_all(dir).unwrap();
        let target = dir.join("dd.bin");
        let out = Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", target.display()))
            .args(["bs=1M", "count=2000", "oflag=direct"])
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&target);
        let text = String::from_utf8_lossy(&out.stderr);
        let line = text.lines().last().unwrap_or_default().to_string();
        let bytes: f64 = line
            .split_whitespace()
            .next()
            .and_then(|b| b.parse().ok())
            .unwrap_or(0.0);
        let secs: f64 = line
            .split(", ")
            .find_map(|s| s.strip_suffix(" s"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN);
        let dd = bytes / 1e6 / secs;
        println!("disk: dd if=/dev/zero bs=1M count=2000 oflag=direct: {dd:.0} MB/s ({line})");
        for threads in [1usize, 16] {
            let total = AtomicU64::new(0);
            let t0 = Instant::now();
            std::thread::scope(|s| {
                for t in 0..threads {
                    let (total, dir) = (&total, dir);
                    s.spawn(move || {
                        let path = dir.join(format!("sync-{t}.bin"));
                        let mut f = std::fs::File::create(&path).unwrap();
                        let chunk = vec![0x5au8; 1_500_000];
                        while t0.elapsed() < Duration::from_secs(3) {
                            f.write_all(&chunk).unwrap();
                            f.sync_data().unwrap();
                            total.fetch_add(1, Ordering::Relaxed);
                        }
                        drop(f);
                        let _ = std::fs::remove_file(&path);
                    });
                }
            });
            let n = total.load(Ordering::Relaxed) as f64;
            let secs = t0.elapsed().as_secs_f64();
            println!(
                "disk: 1.5 MB appends each followed by fdatasync, {threads} thread(s): {:.0} per second, {:.0} MB/s",
                n / secs,
                n * 1.5 / secs
            );
        }
        dd
    }

    /// One HTTP GET on its own connection: (status, body bytes).
    fn get(addr: &str, target: &str) -> Result<(u16, u64), String> {
        let mut c = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
        c.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        write!(
            c,
            "GET {target} HTTP/1.1\r\nhost: scale\r\nconnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut all = Vec::new();
        c.read_to_end(&mut all).map_err(|e| e.to_string())?;
        let head_end = all
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no header end")?;
        let head = String::from_utf8_lossy(&all[..head_end]).to_ascii_lowercase();
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or("no status")?;
        let body = (all.len() - head_end - 4) as u64;
        if status == 200 {
            let len: u64 = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or("no content-length")?;
            if len != body {
                return Err(format!("{body} bytes of {len}"));
            }
            if all.get(head_end + 8..head_end + 12) != Some(b"ftyp") {
                return Err("not an MP4".into());
            }
        }
        Ok((status, body))
    }

    /// Clip requests at `rate` per second on random streams until `ended`;
    /// returns (latencies ms of the 200s, outcomes).
    fn clip_load(
        addr: &str,
        n: usize,
        rate: u64,
        ended: &AtomicBool,
    ) -> (Vec<f64>, BTreeMap<String, u64>, u64) {
        let (tx, rx) = mpsc::channel::<(Instant, usize)>();
        let rx = Mutex::new(rx);
        let latencies = Mutex::new(Vec::new());
        let outcomes = Mutex::new(BTreeMap::new());
        let bytes = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..32 {
                s.spawn(|| {
                    loop {
                        let job = rx.lock().unwrap().recv();
                        let Ok((due, stream)) = job else { break };
                        let target = format!("/{}/clip.mp4?duration=10s", stream_id(stream));
                        let outcome = match get(addr, &target) {
                            Ok((200, body)) => {
                                latencies
                                    .lock()
                                    .unwrap()
                                    .push(due.elapsed().as_secs_f64() * 1000.0);
                                bytes.fetch_add(body, Ordering::Relaxed);
                                "200".to_string()
                            }
                            Ok((status, _)) => status.to_string(),
                            Err(e) => format!("error: {e}"),
                        };
                        *outcomes.lock().unwrap().entry(outcome).or_insert(0u64) += 1;
                    }
                });
            }
            let t0 = Instant::now();
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let mut k = 0u64;
            while !ended.load(Ordering::SeqCst) {
                let due = t0 + Duration::from_nanos(k * NS / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                tx.send((due, (x % n as u64) as usize)).unwrap();
                k += 1;
            }
            drop(tx);
        });
        (
            latencies.into_inner().unwrap(),
            outcomes.into_inner().unwrap(),
            bytes.load(Ordering::Relaxed),
        )
    }

    fn quantile(v: &[f64], q: f64) -> f64 {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]
    }

    /// CPU time of this thread so far (s).
    fn thread_cpu_s() -> f64 {
        // SAFETY: clock_gettime only writes into the struct it is given.
        let t = unsafe {
            let mut t: libc::timespec = std::mem::zeroed();
            libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t);
            t
        };
        t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
    }

    /// What a segment close costs in a long session: rendering the replay
    /// playlist again (the whole render, and the text kept between
    /// segments), and replacing it on disk (write, fsync, rename).
    fn playlist_costs(dir: &Path) {
        use gstliveclip::hls::playlist::{Kind, Options, ReplayText, Segment, render};
        std::fs::create_dir_all(dir).unwrap();
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let seg = |i: u64| Segment {
            sequence: i,
            uri: format!("segment-{i:05}.m4s"),
            start: i * 6 * NS,
            duration: 6 * NS,
            discontinuity: false,
            map: "init-1.mp4".into(),
            pdt: Some(t0 + chrono::Duration::seconds(6 * i as i64)),
            bytes: 4_600_000,
        };
        let o = |trimmed| Options {
            target_duration: 6,
            removed_discontinuities: 0,
            complete: false,
            trimmed,
            pdt: true,
        };
        println!(
            "playlist: a segment close in a long session (6 s segments, PDT on), median of 5, ms"
        );
        println!(
            "  {:>9} {:>9} {:>11} {:>15} {:>16} {:>14} {:>14}",
            "segments",
            "media",
            "replay KB",
            "whole render",
            "kept text",
            "kept, trimmed",
            "replace (CPU)"
        );
        for (n, media) in [(1200u64, "2 h"), (14_400, "24 h"), (100_800, "7 days")] {
            let all: Vec<Segment> = (0..n + 6).map(seg).collect();
            let ms = |f: &mut dyn FnMut(usize) -> String| {
                let mut v: Vec<f64> = (0..5)
                    .map(|k| {
                        let t = Instant::now();
                        std::hint::black_box(f(k));
                        t.elapsed().as_secs_f64() * 1000.0
                    })
                    .collect();
                v.sort_by(f64::total_cmp);
                v[2]
            };
            let n = n as usize;
            let whole = ms(&mut |k| render(&all[..n + k], Kind::Replay, &o(false), &[]));
            let mut kept = ReplayText::default();
            kept.render(&all[..n], &o(false), &[]);
            let append = ms(&mut |k| {
                kept.update(&all[..n + 1 + k], &o(false), &[]);
                String::new()
            });
            let mut trim = ReplayText::default();
            trim.render(&all[..n], &o(true), &[]);
            let trimmed = ms(&mut |k| {
                trim.update(&all[1 + k..n + 1 + k], &o(true), &[]);
                String::new()
            });
            let text = render(&all[..n], Kind::Replay, &o(false), &[]);
            let path = dir.join("replay.m3u8");
            let mut cpu: Vec<f64> = (0..5)
                .map(|_| {
                    let c = thread_cpu_s();
                    gstliveclip::core::atomic::write_atomic(&path, text.as_bytes(), true).unwrap();
                    (thread_cpu_s() - c) * 1000.0
                })
                .collect();
            cpu.sort_by(f64::total_cmp);
            println!(
                "  {n:>9} {media:>9} {:>11.0} {whole:>15.2} {append:>16.3} {trimmed:>14.3} {:>14.2}",
                text.len() as f64 / 1024.0,
                cpu[2]
            );
        }
    }

    pub fn run() {
        let skip: Vec<String> = std::env::var("SCALE_SKIP")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        let wants = |part: &str| !skip.iter().any(|s| s == part);
        let seconds = env_u64("SCALE_SECONDS", 30);
        let copy = env_u64("SCALE_COPY", 1) == 1;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scale");
        std::fs::create_dir_all(&root).unwrap();
        let started = Instant::now();
        println!("uptime at start: load average {}", loadavg());
        // The input is made (or found) before any measurement.
        let input = common::input();
        println!("input: {}", input.display());

        let dd = wants("disk").then(|| disk(&root.join("disk")));
        if wants("playlist") {
            playlist_costs(&root.join("playlist"));
        }

        if wants("hls_record") {
            let runs = env_u64("SCALE_HLS_RECORD_RUNS", 3) as usize;
            println!("hls_record (load average {})", loadavg());
            let out = tempfile::tempdir_in(&root).unwrap();
            let results = common::hls_record::measure(runs, out.path());
            common::hls_record::print(&results, runs);
        }

        let spec = |case: Case, n: usize, warmup: u64, seconds: u64| Spec {
            case,
            n,
            warmup,
            seconds,
            speed: 1,
            copy,
            http: None,
            out: root.join(format!("{}-{n}", case.name())),
        };
        let mut rows: Vec<Row> = Vec::new();
        let mut held = 0usize;
        if wants("record") {
            for n in env_list("SCALE_N", "1,25,50,100,200") {
                let s = spec(Case::Record, n, 5, seconds);
                let (result, load) = run_child(&s, |_| {});
                let counted = count_run(&result, &s.out);
                let row = Row {
                    case: "record".into(),
                    n,
                    load,
                    result,
                    counted: Some(counted),
                    extra: String::new(),
                };
                print_rows(std::slice::from_ref(&row), dd, seconds);
                print_details(&row);
                let _ = std::fs::remove_dir_all(&s.out);
                let (lost, cpu) = (row.lost(), row.cpu_pct());
                rows.push(row);
                if lost > 0 {
                    println!("  N={n} lost {lost} frames: not raising N further");
                    break;
                }
                held = n;
                if cpu > 180.0 {
                    println!(
                        "  N={n} used {cpu:.0} % of the 200 % the two cores have: not raising N further"
                    );
                    break;
                }
            }
        }
        if wants("floor") {
            let n = held.max(1);
            let s = spec(Case::Floor, n, 5, seconds.min(20));
            let (result, load) = run_child(&s, |_| {});
            let row = Row {
                case: "floor".into(),
                n,
                load,
                result,
                counted: None,
                extra: "  (appsrc ! fakesink: the input alone)".into(),
            };
            print_rows(std::slice::from_ref(&row), None, seconds.min(20));
            print_details(&row);
            let _ = std::fs::remove_dir_all(&s.out);
            rows.push(row);
        }
        if wants("clipper") {
            for n in env_list("SCALE_CLIPPER_N", "25,50") {
                let s = spec(Case::Clipper, n, 5, seconds.max(35));
                let (result, load) = run_child(&s, |_| {});
                let counted = count_run(&result, &s.out);
                let clips = dir_count(&s.out.join("clips"), ".mp4");
                let thumbs = dir_count(&s.out.join("thumbs"), ".jpg");
                let row = Row {
                    case: "clipper".into(),
                    n,
                    load,
                    result,
                    counted: Some(counted),
                    extra: format!("  ({clips} periodic clips, {thumbs} thumbnails)"),
                };
                print_rows(std::slice::from_ref(&row), dd, seconds.max(35));
                print_details(&row);
                let _ = std::fs::remove_dir_all(&s.out);
                let lost = row.lost();
                rows.push(row);
                if lost > 0 {
                    break;
                }
            }
        }
        let mut clip_summary = None;
        if wants("clips") {
            let n = env_u64("SCALE_CLIP_N", 100) as usize;
            let rate = env_u64("SCALE_CLIP_RATE", 20);
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let addr = format!("127.0.0.1:{port}");
            let mut s = spec(Case::Record, n, 15, seconds);
            s.http = Some(addr.clone());
            s.out = root.join(format!("clips-{n}"));
            let load_result = Mutex::new(None);
            let (result, load) = run_child(&s, |ended| {
                *load_result.lock().unwrap() = Some(clip_load(&addr, n, rate, ended));
            });
            let counted = count_run(&result, &s.out);
            let (lat, outcomes, bytes) = load_result.into_inner().unwrap().unwrap();
            let ok = lat.len();
            let summary = format!(
                "clips: {ok} clip.mp4?duration=10s answered 200 ({:.1}/s, {:.0} MB/s) across {n} streams at {rate}/s asked: \
                 p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; outcomes {outcomes:?}",
                ok as f64 / result["window_s"].as_f64().unwrap(),
                bytes as f64 / 1e6 / result["window_s"].as_f64().unwrap(),
                quantile(&lat, 0.5),
                quantile(&lat, 0.99),
                quantile(&lat, 1.0),
            );
            let row = Row {
                case: "clips".into(),
                n,
                load,
                result,
                counted: Some(counted),
                extra: format!(
                    "  (p50 {:.0} ms, p99 {:.0} ms)",
                    quantile(&lat, 0.5),
                    quantile(&lat, 0.99)
                ),
            };
            print_rows(std::slice::from_ref(&row), dd, seconds);
            print_details(&row);
            println!("  {summary}");
            let _ = std::fs::remove_dir_all(&s.out);
            rows.push(row);
            clip_summary = Some(summary);
        }
        let mut long = None;
        if wants("long") {
            let media = env_u64("SCALE_LONG_SECONDS", 7200);
            let speed = env_u64("SCALE_LONG_SPEED", 24);
            let mut s = spec(Case::Long, 1, 0, media / speed);
            s.speed = speed;
            let (result, load) = run_child(&s, |_| {});
            let counted = count_run(&result, &s.out);
            println!(
                "long: 1 stream, {media} s of media at {speed}x (load average {load}): video {} pushed, {} missing; \
                 audio {} pushed, {} missing; {} late",
                counted.video_pushed,
                counted.video_lost,
                counted.audio_pushed,
                counted.audio_lost,
                result["late"]
            );
            // CPU split: the user part is the process's own work; the
            // system part is mostly the kernel copying writes into the
            // page cache, whose cost depends on the machine's memory (on
            // this VM it steps up when the page cache grows into memory
            // not touched before, whatever writes it).
            println!("  media min   RSS kB  heap kB   fds  threads  user s   sys s");
            for p in result["series"].as_array().unwrap() {
                let v = |k: &str| p[k].as_u64().unwrap();
                println!(
                    "  {:>9} {:>8} {:>8} {:>5} {:>8} {:>7.2} {:>7.2}",
                    v("media_min"),
                    v("rss_kb"),
                    v("heap_kb"),
                    v("fds"),
                    v("threads"),
                    p["user_s"].as_f64().unwrap(),
                    p["sys_s"].as_f64().unwrap()
                );
            }
            let _ = std::fs::remove_dir_all(&s.out);
            long = Some(result);
        }

        print_rows(&rows, dd, seconds);
        if let Some(s) = &clip_summary {
            println!("  {s}");
        }
        if let Some(l) = &long {
            let series = l["series"].as_array().unwrap();
            if let (Some(a), Some(b)) = (series.get(4), series.last()) {
                let growth = b["rss_kb"].as_i64().unwrap() - a["rss_kb"].as_i64().unwrap();
                println!(
                    "  long run: RSS {} kB at media minute {} and {} kB at minute {} ({growth:+} kB), fds {} and {}",
                    a["rss_kb"], a["media_min"], b["rss_kb"], b["media_min"], a["fds"], b["fds"]
                );
            }
        }
        println!(
            "reproduce: cargo bench --bench scale (SCALE_SECONDS={seconds}, SCALE_N, SCALE_CLIPPER_N, SCALE_CLIP_N, \
             SCALE_CLIP_RATE, SCALE_LONG_SECONDS, SCALE_LONG_SPEED, SCALE_COPY, SCALE_SKIP); took {:.0} s; load average now {}",
            started.elapsed().as_secs_f64(),
            loadavg()
        );
    }

    fn dir_count(dir: &Path, ext: &str) -> usize {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return 0;
        };
        rd.flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    dir_count(&p, ext)
                } else {
                    usize::from(p.to_string_lossy().ends_with(ext))
                }
            })
            .sum()
    }
}
