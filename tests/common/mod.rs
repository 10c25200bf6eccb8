// SPDX-License-Identifier: MPL-2.0
//! Shared helpers: pipelines, bus collection, and independent readers
//! (ffprobe, ffmpeg, mp4-atom) to check what the elements wrote.
#![allow(dead_code)]

pub mod browser;
pub mod http;
pub mod numbered;
pub mod scte35;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use gst::prelude::*;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstliveclip::plugin_register_static().expect("register liveclip");
    });
}

/// What a pipeline run posted on its bus.
pub struct Run {
    pub messages: Vec<gst::Structure>,
    pub error: Option<String>,
    /// Warning messages: "element: text (debug)".
    pub warnings: Vec<String>,
    pub eos: bool,
}

impl Run {
    /// Element messages with the given structure name, in order.
    pub fn named(&self, name: &str) -> Vec<&gst::Structure> {
        self.messages.iter().filter(|s| s.name() == name).collect()
    }
}

/// Runs `pipeline` until EOS or an error (at most `timeout`).
pub fn run(pipeline: &gst::Pipeline, timeout: Duration) -> Run {
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).expect("PLAYING");
    let mut out = Run {
        messages: Vec::new(),
        error: None,
        warnings: Vec::new(),
        eos: false,
    };
    let deadline = std::time::Instant::now() + timeout;
    while let Some(remaining) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(remaining.as_nanos() as u64))
        else {
            break;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                out.eos = true;
                break;
            }
            gst::MessageView::Error(e) => {
                out.error = Some(format!(
                    "{} ({})",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
                break;
            }
            gst::MessageView::Warning(w) => {
                out.warnings.push(format!(
                    "{}: {} ({})",
                    w.src().map(|s| s.name().to_string()).unwrap_or_default(),
                    w.error(),
                    w.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
            }
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure() {
                    out.messages.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

pub fn launch(desc: &str) -> gst::Pipeline {
    init();
    gst::parse::launch(desc)
        .unwrap_or_else(|e| panic!("cannot build {desc}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap()
}

fn ffprobe(args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {args:?} {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ffmpeg -v error -i file -f null -`: decodes every frame; returns what
/// ffmpeg complained about (empty when the file is clean).
pub fn decode_errors(file: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let mut s = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        s.push_str(&format!(" (exit {})", out.status));
    }
    s
}

/// Codec name, width and height of a still image, from ffprobe (`mjpeg`,
/// `png`, `webp`).
pub fn image_info(file: &Path) -> (String, u32, u32) {
    let out = ffprobe(
        &[
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ],
        file,
    );
    let line = out.lines().next().unwrap_or("").to_string();
    let mut it = line.split(',');
    let codec = it.next().unwrap_or("").to_string();
    let w = it.next().and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let h = it.next().and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    (codec, w, h)
}

/// Decodes an image (or a region of it) to 8-bit gray pixels with ffmpeg.
pub fn gray_pixels(file: &Path, filter: &str) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-vf", filter, "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Per-stream facts from ffprobe.
#[derive(Debug, Clone)]
pub struct Stream {
    pub codec_type: String,
    pub codec_name: String,
    pub start_time: f64,
    pub duration: f64,
    /// Frames counted by decoding (`-count_frames`).
    pub frames: u64,
    /// Video only (0 and empty for audio).
    pub width: u32,
    pub height: u32,
    /// `r_frame_rate`, e.g. `10/1`.
    pub frame_rate: String,
}

pub fn streams(file: &Path) -> Vec<Stream> {
    let out = ffprobe(
        &[
            "-count_frames",
            "-show_entries",
            "stream=codec_type,codec_name,start_time,duration,nb_read_frames,width,height,r_frame_rate",
            "-of",
            "compact=p=0:nk=0",
        ],
        file,
    );
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let field = |k: &str| {
                l.split('|')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .unwrap_or("")
                    .to_string()
            };
            Stream {
                codec_type: field("codec_type"),
                codec_name: field("codec_name"),
                start_time: field("start_time").parse().unwrap_or(f64::NAN),
                duration: field("duration").parse().unwrap_or(f64::NAN),
                frames: field("nb_read_frames").parse().unwrap_or(0),
                width: field("width").parse().unwrap_or(0),
                height: field("height").parse().unwrap_or(0),
                frame_rate: field("r_frame_rate"),
            }
        })
        .collect()
}

pub fn stream<'a>(streams: &'a [Stream], kind: &str) -> Option<&'a Stream> {
    streams.iter().find(|s| s.codec_type == kind)
}

/// Picture types of the video frames in presentation order ("I", "P", "B").
pub fn picture_types(file: &Path) -> Vec<(String, bool)> {
    ffprobe(
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pict_type,key_frame",
            "-of",
            "csv=p=0",
        ],
        file,
    )
    .lines()
    .filter(|l| !l.is_empty())
    .map(|l| {
        let mut it = l.split(',');
        let key = it.next().unwrap_or("0") == "1";
        let t = it.next().unwrap_or("").to_string();
        (t, key)
    })
    .collect()
}

/// Top-level box types of an MP4, read with mp4-atom's header reader.
pub fn top_level_boxes(file: &Path) -> Vec<String> {
    use mp4_atom::ReadFrom;
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(file).unwrap();
    let len = f.metadata().unwrap().len();
    let mut kinds = Vec::new();
    loop {
        let pos = f.stream_position().unwrap();
        if pos >= len {
            break;
        }
        let Some(h) = Option::<mp4_atom::Header>::read_from(&mut f).unwrap() else {
            break;
        };
        kinds.push(h.kind.to_string());
        let Some(size) = h.size else { break };
        f.seek(SeekFrom::Current(size as i64)).unwrap();
    }
    kinds
}

/// The decoded moov of an MP4 (mp4-atom), without reading the media data.
pub fn moov(file: &Path) -> mp4_atom::Moov {
    use mp4_atom::{Atom, ReadFrom};
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(file).unwrap();
    loop {
        let h = mp4_atom::Header::read_from(&mut f).expect("a box header before moov");
        let size = h.size.expect("sized box");
        if h.kind == mp4_atom::Moov::KIND {
            let mut body = vec![0u8; size];
            f.read_exact(&mut body).unwrap();
            return mp4_atom::Moov::decode_body(&mut body.as_slice()).expect("moov decodes");
        }
        f.seek(SeekFrom::Current(size as i64)).unwrap();
    }
}

/// Parses a media playlist with m3u8-rs.
pub fn media_playlist(path: &Path) -> m3u8_rs::MediaPlaylist {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    m3u8_rs::parse_media_playlist_res(&bytes)
        .unwrap_or_else(|e| panic!("{} does not parse: {e:?}", path.display()))
}

/// The one session directory under `{location}/{stream}`.
pub fn session_dirs(stream_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(stream_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Directory of the plugin library the tests were built with (for
/// subprocess pipelines through gst-launch-1.0).
///
/// The freshest `libgstliveclip.so` of the build (cargo leaves it in the
/// profile directory or only in `deps/`) is copied alone into a directory,
/// so that GStreamer's registry scan sees nothing else.
pub fn plugin_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let deps = exe.parent().unwrap();
        let profile = deps.parent().unwrap();
        let lib = [
            profile.join("libgstliveclip.so"),
            deps.join("libgstliveclip.so"),
        ]
        .into_iter()
        .filter(|p| p.exists())
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .expect("libgstliveclip.so is built with the tests");
        let dir = std::env::temp_dir().join(format!("liveclip-plugin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&lib, dir.join("libgstliveclip.so")).unwrap();
        dir
    })
    .clone()
}

/// Waits until `f` holds (polling), at most `timeout`.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

pub fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Output buffers of the `appsink name=out`: (running time of the PTS in
/// ns, bytes, caps name). x264enc moves PTS by 1000 h; running time is what
/// the intervals count.
pub type Outputs = Arc<Mutex<Vec<(u64, usize, String)>>>;

pub fn collect(pipeline: &gst::Pipeline) -> Outputs {
    let out: Outputs = Arc::default();
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let o = out.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let name = sample
                    .caps()
                    .and_then(|c| c.structure(0).map(|s| s.name().to_string()))
                    .unwrap_or_default();
                let b = sample.buffer().unwrap();
                let segment = sample
                    .segment()
                    .unwrap()
                    .downcast_ref::<gst::ClockTime>()
                    .unwrap()
                    .clone();
                let rt = b
                    .pts()
                    .and_then(|t| segment.to_running_time(t))
                    .map_or(u64::MAX, |t| t.nseconds());
                o.lock().unwrap().push((rt, b.size(), name));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    out
}

pub fn ns(s: &gst::StructureRef, field: &str) -> u64 {
    s.get::<gst::ClockTime>(field).unwrap().nseconds()
}

pub fn ok(run: &Run) {
    assert!(run.error.is_none(), "{:?}", run.error);
    assert!(run.eos, "no EOS");
}

/// Sets `pipeline` PLAYING and waits (at most 30 s) for `n`
/// `hlsclipsink-segment-added` messages, which it returns; an error message
/// fails the test.
pub fn play_until_segments(pipeline: &gst::Pipeline, n: usize) -> Vec<gst::Structure> {
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut added = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while added.len() < n && std::time::Instant::now() < deadline {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        if let gst::MessageView::Error(e) = msg.view() {
            panic!("{e:?}");
        }
        if let Some(s) = msg.structure()
            && s.name() == "hlsclipsink-segment-added"
        {
            added.push(s.to_owned());
        }
    }
    assert_eq!(added.len(), n, "{n} segments within 30 s");
    added
}

/// Changes the caps of the capsfilter `size` to `width`x`height` when the
/// source `src` produces frame `frame` (a resolution change mid-stream).
pub fn switch_resolution_at(pipeline: &gst::Pipeline, frame: u64, width: i32, height: i32) {
    let size = pipeline.by_name("size").unwrap();
    let switched = std::sync::atomic::AtomicBool::new(false);
    pipeline
        .by_name("src")
        .unwrap()
        .static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer()
                && b.offset() == frame
                && !switched.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                size.set_property(
                    "caps",
                    gst::Caps::builder("video/x-raw")
                        .field("width", width)
                        .field("height", height)
                        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                        .build(),
                );
            }
            gst::PadProbeReturn::Ok
        });
}

/// A stopped hlsclipsink on the same location: clip requests read the
/// stored sessions. Its messages go to the returned bus.
pub fn requester(location: &Path) -> (gst::Element, gst::Bus) {
    init();
    let sink = gst::ElementFactory::make("hlsclipsink")
        .property("location", location.display().to_string())
        .property("stream-id", "cam")
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    sink.set_bus(Some(&bus));
    (sink, bus)
}

/// Waits for the `hlsclipsink-clip-done` message of request `id`.
pub fn clip_done(bus: &gst::Bus, id: u64) -> gst::Structure {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
            continue;
        };
        if let Some(s) = msg.structure()
            && s.name() == "hlsclipsink-clip-done"
            && s.get::<u64>("request-id").unwrap() == id
        {
            return s.to_owned();
        }
    }
    panic!("no hlsclipsink-clip-done for request {id}");
}

/// A small deterministic generator (no dependency), so failures reproduce.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// Milliseconds in `[lo, hi)`.
    pub fn ms(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Plays `pipeline` until EOS (it stays PLAYING, so its server stays up).
pub fn play_to_eos(pipeline: &gst::Pipeline, timeout: Duration) {
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS");
    if let gst::MessageView::Error(e) = msg.view() {
        panic!("{e:?}");
    }
}
