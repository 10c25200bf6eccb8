// SPDX-License-Identifier: MPL-2.0
//! The element: the streaming thread picks frames ([`Picker`]), a worker
//! thread turns them into images with a private GStreamer pipeline
//! ([`super::render`]), writes the files, and pushes the images on the src
//! pad.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, mpsc};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::core::nal::{self, Codec, Framing, ParameterSets};
use crate::core::pattern::format_index;
use crate::core::thumbs::{Geometry, Picker, Storyboard, Trigger};
use crate::output::{FileSeries, SrcOutput, WorkQueue, post_eos_if_sink, write_file};

use super::render::{self, Renderer, Rgbx};
use super::{FitMode, ImageFormat};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "thumbnailer",
        gst::DebugColorFlags::empty(),
        Some("Thumbnails from raw or encoded video"),
    )
});

const DEFAULT_INTERVAL: u32 = 10;
const DEFAULT_QUALITY: u32 = 85;
const DEFAULT_COLUMNS: u32 = 5;
const MAX_SIDE: u32 = 16_384;
use crate::core::NS;
/// Frames waiting for the worker at most. With a live source more are
/// dropped (with a warning) rather than letting the streaming thread wait;
/// without one (files, tests) the streaming thread waits, so that every
/// tick gets its thumbnail however fast the input comes.
const MAX_QUEUED: usize = 4;
/// How long one image may take before it is given up.
const RENDER_TIMEOUT: Duration = Duration::from_secs(20);
/// Without an image for this much running time, a GAP event tells
/// downstream that time went on (so sinks preroll and advance).
const GAP_EVERY: i64 = NS as i64;

#[derive(Debug, Clone)]
struct Settings {
    interval: u32,
    width: u32,
    height: u32,
    fit_mode: FitMode,
    format: ImageFormat,
    quality: u32,
    location: Option<String>,
    start_index: u32,
    max_files: u32,
    latest_location: Option<String>,
    storyboard_location: Option<String>,
    storyboard_vtt: Option<String>,
    storyboard_columns: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            width: 0,
            height: 0,
            fit_mode: FitMode::default(),
            format: ImageFormat::default(),
            quality: DEFAULT_QUALITY,
            location: None,
            start_index: 0,
            max_files: 0,
            latest_location: None,
            storyboard_location: None,
            storyboard_vtt: None,
            storyboard_columns: DEFAULT_COLUMNS,
        }
    }
}

impl Settings {
    fn storyboard(&self) -> bool {
        self.storyboard_location.is_some() || self.storyboard_vtt.is_some()
    }
}

/// What the sink caps say about the input.
#[derive(Debug)]
struct Input {
    caps: gst::Caps,
    encoded: bool,
    /// Width and height, when the caps have them.
    size: Option<(u32, u32)>,
    par: (u32, u32),
    /// Codec and framing when parameter sets travel in band (byte-stream,
    /// avc3, hev1): keyframes may need the last ones put in front.
    in_band: Option<(Codec, Framing)>,
    /// H.264 framing, and the sequence parameter sets of `codec_data`.
    h264: Option<(Framing, Vec<Vec<u8>>)>,
}

impl Input {
    fn from_caps(caps: &gst::Caps) -> Option<Input> {
        let s = caps.structure(0)?;
        let encoded = s.name() != "video/x-raw";
        let size = match (s.get::<i32>("width"), s.get::<i32>("height")) {
            (Ok(w), Ok(h)) if w > 0 && h > 0 => Some((w as u32, h as u32)),
            _ => None,
        };
        let par = s
            .get::<gst::Fraction>("pixel-aspect-ratio")
            .ok()
            .filter(|f| f.numer() > 0 && f.denom() > 0)
            .map_or((1, 1), |f| (f.numer() as u32, f.denom() as u32));
        let codec = match s.name().as_str() {
            "video/x-h264" => Some(Codec::H264),
            "video/x-h265" => Some(Codec::H265),
            _ => None,
        };
        // NAL length size from avcC (byte 4) or hvcC (byte 21).
        let length_size = |at: usize| {
            s.get::<gst::Buffer>("codec_data")
                .ok()
                .and_then(|b| b.map_readable().ok().and_then(|m| m.get(at).copied()))
                .map_or(4, |v| usize::from(v & 3) + 1)
        };
        let in_band = match (codec, s.get::<&str>("stream-format").unwrap_or("")) {
            (Some(c), "byte-stream") => Some((c, Framing::ByteStream)),
            (Some(Codec::H264), "avc3") => Some((Codec::H264, Framing::Length(length_size(4)))),
            (Some(Codec::H265), "hev1") => Some((Codec::H265, Framing::Length(length_size(21)))),
            _ => None,
        };
        let h264 = (codec == Some(Codec::H264)).then(|| {
            let framing = in_band.map_or(Framing::Length(length_size(4)), |(_, f)| f);
            let sps = crate::mp4::CodecConfig::from_caps(caps)
                .ok()
                .and_then(|c| match c.entry {
                    mp4_atom::Codec::Avc1(a) => Some(a.avcc.sequence_parameter_sets),
                    mp4_atom::Codec::Avc3(a) => Some(a.avcc.sequence_parameter_sets),
                    _ => None,
                })
                .unwrap_or_default();
            (framing, sps)
        });
        Some(Input {
            caps: caps.clone(),
            encoded,
            size,
            par,
            in_band,
            h264,
        })
    }
}

/// A frame chosen to become a thumbnail.
/// An H.264 open-GOP I picture made decodable on its own (see
/// [`nal::h264_with_frame_num_zero`]); any other picture as it is.
fn h264_alone(buffer: gst::Buffer, framing: Framing, sps: &[Vec<u8>]) -> gst::Buffer {
    let rewritten = buffer.map_readable().ok().and_then(|m| {
        (nal::classify(&m, Codec::H264, framing) == nal::Access::Open)
            .then(|| {
                let sps: Vec<&[u8]> = sps.iter().map(|s| s.as_slice()).collect();
                nal::h264_with_frame_num_zero(&m, framing, &sps)
            })
            .flatten()
    });
    match rewritten {
        Some(data) => {
            let mut out = gst::Buffer::from_mut_slice(data);
            let _ = buffer.copy_into(
                out.get_mut().unwrap(),
                gst::BufferCopyFlags::FLAGS | gst::BufferCopyFlags::TIMESTAMPS,
                ..,
            );
            out
        }
        None => buffer,
    }
}

struct Job {
    buffer: gst::Buffer,
    input: Arc<Input>,
    pts: Option<gst::ClockTime>,
    running_time: i64,
    recording_time: i64,
    utc: Option<chrono::DateTime<chrono::Utc>>,
    trigger: Trigger,
}

enum Command {
    Render(Box<Job>, u64),
    /// A serialized event for the src pad, in order with the images.
    Event(gst::Event, u64),
    /// Push EOS once everything before it is out.
    Eos(u64),
}

struct State {
    picker: Picker,
    segment: gst::FormattedSegment<gst::ClockTime>,
    input: Option<Arc<Input>>,
    worker: Option<(mpsc::Sender<Command>, std::thread::JoinHandle<()>)>,
    /// Running time and wall clock of the first frame.
    utc_origin: Option<(i64, chrono::DateTime<chrono::Utc>)>,
    /// Running time of the first frame: recording time 0.
    first: Option<i64>,
    /// Running time of the last image or gap sent downstream.
    last_out: Option<i64>,
    warned_no_size: bool,
    /// The last in-band parameter sets (see [`Input::in_band`]).
    params: Option<ParameterSets>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            picker: Picker::new(u64::from(DEFAULT_INTERVAL) * NS),
            segment: gst::FormattedSegment::new(),
            input: None,
            worker: None,
            utc_origin: None,
            first: None,
            last_out: None,
            warned_no_size: false,
            params: None,
        }
    }
}

pub struct Thumbnailer {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Bumped by every flush: commands of an older generation are dropped.
    generation: Arc<AtomicU64>,
    flushing: AtomicBool,
    /// Frames handed to the worker and not yet done.
    queue: WorkQueue,
    /// A file could not be written: the streaming thread returns an error.
    failed: Arc<AtomicBool>,
    /// Held by the worker while it pushes, and by FLUSH_STOP, so that no
    /// image of before a flush goes out after it.
    push_lock: Mutex<()>,
}

#[glib::object_subclass]
impl ObjectSubclass for Thumbnailer {
    const NAME: &'static str = "GstThumbnailer";
    type Type = super::Thumbnailer;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").unwrap())
            .chain_function(|pad, parent, buffer| {
                Thumbnailer::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                Thumbnailer::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                Thumbnailer::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad, query),
                )
            })
            .flags(gst::PadFlags::ACCEPT_TEMPLATE)
            .build();
        let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").unwrap())
            .event_function(|pad, parent, event| {
                Thumbnailer::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                Thumbnailer::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_query(pad, query),
                )
            })
            .build();
        Self {
            sinkpad,
            srcpad,
            settings: Mutex::default(),
            state: Mutex::default(),
            generation: Arc::default(),
            flushing: AtomicBool::new(false),
            queue: WorkQueue::new(MAX_QUEUED),
            failed: Arc::default(),
            push_lock: Mutex::new(()),
        }
    }
}

impl ObjectImpl for Thumbnailer {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb("Seconds of media running time between thumbnails (0 = only on demand, with the snapshot signal)")
                    .maximum(7 * 24 * 3600)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("width")
                    .nick("Width")
                    .blurb("Thumbnail width in pixels (0 = from height keeping the aspect ratio; both 0 = source size)")
                    .maximum(MAX_SIDE)
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("height")
                    .nick("Height")
                    .blurb("Thumbnail height in pixels (0 = from width keeping the aspect ratio; both 0 = source size)")
                    .maximum(MAX_SIDE)
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder::<FitMode>("fit-mode")
                    .nick("Fit mode")
                    .blurb("How the frame fits width x height when both are set")
                    .default_value(FitMode::Preserve)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder::<ImageFormat>("format")
                    .nick("Format")
                    .blurb("Image format of the thumbnails")
                    .default_value(ImageFormat::Jpeg)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("quality")
                    .nick("Quality")
                    .blurb("JPEG and WebP quality (1-100; PNG is lossless and ignores it)")
                    .minimum(1)
                    .maximum(100)
                    .default_value(DEFAULT_QUALITY)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("location")
                    .nick("File location")
                    .blurb("Write every thumbnail to this pattern with one %d for the index (e.g. thumb-%05d.jpg); unset = no files")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("start-index")
                    .nick("Start index")
                    .blurb("Index of the first thumbnail")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-files")
                    .nick("Max files")
                    .blurb("Keep at most this many files of location, deleting the oldest (0 = keep all)")
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("latest-location")
                    .nick("Latest location")
                    .blurb("Path replaced atomically (temporary file, fsync, rename) by every new thumbnail; unset = none")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("storyboard-location")
                    .nick("Storyboard sprite location")
                    .blurb("JPEG sprite sheet of all thumbnails as tiles (tile size = width x height), replaced atomically as tiles are added; unset = none")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("storyboard-vtt")
                    .nick("Storyboard WebVTT location")
                    .blurb("WebVTT file with one #xywh= cue per storyboard tile, replaced atomically as tiles are added; unset = none")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("storyboard-columns")
                    .nick("Storyboard columns")
                    .blurb("Tiles per row of the storyboard sprite")
                    .minimum(1)
                    .maximum(100)
                    .default_value(DEFAULT_COLUMNS)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        let path = |v: &glib::Value| v.get::<Option<String>>().unwrap().filter(|s| !s.is_empty());
        match pspec.name() {
            "interval" => {
                settings.interval = value.get().unwrap();
                let interval = u64::from(settings.interval) * NS;
                drop(settings);
                self.state.lock().unwrap().picker.set_interval(interval);
            }
            "width" => settings.width = value.get().unwrap(),
            "height" => settings.height = value.get().unwrap(),
            "fit-mode" => settings.fit_mode = value.get().unwrap(),
            "format" => settings.format = value.get().unwrap(),
            "quality" => settings.quality = value.get().unwrap(),
            "location" => {
                let location = path(value);
                if let Some(l) = &location
                    && let Err(e) = format_index(l, 0)
                {
                    gst::warning!(CAT, imp = self, "location: {e}");
                }
                settings.location = location;
            }
            "start-index" => settings.start_index = value.get().unwrap(),
            "max-files" => settings.max_files = value.get().unwrap(),
            "latest-location" => settings.latest_location = path(value),
            "storyboard-location" => settings.storyboard_location = path(value),
            "storyboard-vtt" => settings.storyboard_vtt = path(value),
            "storyboard-columns" => settings.storyboard_columns = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "interval" => settings.interval.to_value(),
            "width" => settings.width.to_value(),
            "height" => settings.height.to_value(),
            "fit-mode" => settings.fit_mode.to_value(),
            "format" => settings.format.to_value(),
            "quality" => settings.quality.to_value(),
            "location" => settings.location.to_value(),
            "start-index" => settings.start_index.to_value(),
            "max-files" => settings.max_files.to_value(),
            "latest-location" => settings.latest_location.to_value(),
            "storyboard-location" => settings.storyboard_location.to_value(),
            "storyboard-vtt" => settings.storyboard_vtt.to_value(),
            "storyboard-columns" => settings.storyboard_columns.to_value(),
            _ => unimplemented!(),
        }
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            // The next usable frame (raw: the next frame; encoded: the next
            // keyframe, which is requested from upstream) becomes a
            // thumbnail. Returns false when the element is not running.
            vec![
                glib::subclass::Signal::builder("snapshot")
                    .return_type::<bool>()
                    .action()
                    .class_handler(|args| {
                        let obj = args[0].get::<super::Thumbnailer>().unwrap();
                        Some(obj.imp().snapshot().to_value())
                    })
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).unwrap();
        obj.add_pad(&self.srcpad).unwrap();
    }
}

impl GstObjectImpl for Thumbnailer {}

impl ElementImpl for Thumbnailer {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Thumbnailer",
                "Filter/Converter/Video/Image",
                "Still images at intervals and on demand from raw or H.264/H.265 video (decoding only the keyframes it needs), with a latest image and a storyboard",
                "liveclip developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let sink = gst::Caps::builder_full()
                .structure(gst::Structure::new_empty("video/x-raw"))
                .structure(
                    gst::Structure::builder("video/x-h264")
                        .field(
                            "stream-format",
                            gst::List::new(["avc", "avc3", "byte-stream"]),
                        )
                        .field("alignment", "au")
                        .build(),
                )
                .structure(
                    gst::Structure::builder("video/x-h265")
                        .field(
                            "stream-format",
                            gst::List::new(["hvc1", "hev1", "byte-stream"]),
                        )
                        .field("alignment", "au")
                        .build(),
                )
                .build();
            let src = gst::Caps::builder_full()
                .structure(gst::Structure::new_empty("image/jpeg"))
                .structure(gst::Structure::new_empty("image/png"))
                .structure(gst::Structure::new_empty("image/webp"))
                .build();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &sink,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &src,
                )
                .unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::ReadyToPaused => {
                // With nothing linked to the src pad (only files wanted), the
                // element is where the stream ends: a sink for the bin, which
                // then waits for its EOS message.
                let obj = self.obj();
                if self.srcpad.is_linked() {
                    obj.unset_element_flags(gst::ElementFlags::SINK);
                } else {
                    obj.set_element_flags(gst::ElementFlags::SINK);
                }
                self.start();
            }
            gst::StateChange::PausedToReady => {
                // A streaming thread waiting for room must let go.
                self.flushing.store(true, Ordering::SeqCst);
                self.queue.wake();
            }
            _ => {}
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            self.stop();
        }
        Ok(ret)
    }
}

impl Thumbnailer {
    fn start(&self) {
        let interval = u64::from(self.settings.lock().unwrap().interval) * NS;
        let mut state = self.state.lock().unwrap();
        *state = State {
            picker: Picker::new(interval),
            ..State::default()
        };
        self.failed.store(false, Ordering::SeqCst);
        self.flushing.store(false, Ordering::SeqCst);
        self.queue.reset();
        let (tx, rx) = mpsc::channel();
        let weak = self.obj().downgrade();
        let handle = std::thread::Builder::new()
            .name("thumbnailer-worker".into())
            .spawn(move || Worker::new(weak).run(rx))
            .expect("spawn the thumbnailer worker");
        state.worker = Some((tx, handle));
    }

    fn stop(&self) {
        // The pads are inactive: a push in progress returns at once.
        let worker = self.state.lock().unwrap().worker.take();
        if let Some((tx, handle)) = worker {
            drop(tx);
            let _ = handle.join();
        }
    }

    fn send(&self, state: &State, cmd: Command) {
        if let Some((tx, _)) = &state.worker {
            let _ = tx.send(cmd);
        }
    }

    fn snapshot(&self) -> bool {
        let encoded = {
            let mut state = self.state.lock().unwrap();
            if state.worker.is_none() {
                return false;
            }
            state.picker.request_snapshot();
            state.input.as_ref().is_none_or(|i| i.encoded)
        };
        if encoded {
            // A live encoder upstream makes the keyframe now.
            gst::debug!(CAT, imp = self, "snapshot: asking upstream for a keyframe");
            let event = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            self.sinkpad.push_event(event);
        }
        true
    }

    fn chain(
        &self,
        _pad: &gst::Pad,
        mut buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(gst::FlowError::Error);
        }
        if self.flushing.load(Ordering::SeqCst) {
            return Err(gst::FlowError::Flushing);
        }
        self.queue.wait_for_room(&self.sinkpad, &self.flushing);
        let mut state = self.state.lock().unwrap();
        let Some(input) = state.input.clone() else {
            drop(state);
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("thumbnailer got a buffer before caps")
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let Some(pts) = buffer.pts().or(buffer.dts()) else {
            gst::debug!(CAT, imp = self, "ignoring a buffer without timestamps");
            return Ok(gst::FlowSuccess::Ok);
        };
        let Some(rt) = state.segment.to_running_time_full(pts).map(|rt| match rt {
            gst::Signed::Positive(t) => t.nseconds() as i64,
            gst::Signed::Negative(t) => -(t.nseconds() as i64),
        }) else {
            return Ok(gst::FlowSuccess::Ok);
        };
        if state.utc_origin.is_none() {
            state.utc_origin = Some((rt, chrono::Utc::now()));
        }
        let first = *state.first.get_or_insert(rt);
        let flags = buffer.flags();
        // Encoded input: only keyframes can be decoded alone, so a stream
        // that starts mid-GOP waits for its first keyframe.
        let usable = !flags.contains(gst::BufferFlags::CORRUPTED)
            && !flags.contains(gst::BufferFlags::DECODE_ONLY)
            && (!input.encoded || !flags.contains(gst::BufferFlags::DELTA_UNIT));
        // Keep the parameter sets of in-band streams current (only the head
        // of keyframes and header buffers is read).
        let mut has_sps = true;
        if let Some(params) = state.params.as_mut()
            && (usable || flags.contains(gst::BufferFlags::HEADER))
            && let Ok(map) = buffer.map_readable()
        {
            has_sps = params.observe(&map);
        }
        let trigger = if usable { state.picker.offer(rt) } else { None };
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(trigger) = trigger {
            if input.size.is_none() {
                if !std::mem::replace(&mut state.warned_no_size, true) {
                    drop(state);
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Format,
                        ("Input caps have no width and height; no thumbnails until they do"),
                        ["caps: {}", input.caps]
                    );
                }
                return Ok(gst::FlowSuccess::Ok);
            }
            if self.queue.is_full() {
                drop(state);
                gst::element_imp_warning!(
                    self,
                    gst::CoreError::TooLazy,
                    (
                        "Thumbnails are made slower than requested; dropping the frame at {}",
                        gst::ClockTime::from_nseconds(rt.max(0) as u64)
                    )
                );
                return Ok(gst::FlowSuccess::Ok);
            }
            let utc = state
                .utc_origin
                .map(|(o, utc)| utc + chrono::Duration::nanoseconds(rt.saturating_sub(o)));
            gst::debug!(
                CAT,
                imp = self,
                "frame at {} becomes a thumbnail ({})",
                gst::ClockTime::from_nseconds(rt.max(0) as u64),
                trigger.as_str()
            );
            // A keyframe without its parameter sets gets the last ones in
            // front: a memory prepended, the picture is not copied.
            if !has_sps && let Some(params) = state.params.as_ref().filter(|p| !p.is_empty()) {
                let prefix = params.prepend(&[]);
                buffer
                    .make_mut()
                    .prepend_memory(gst::Memory::from_slice(prefix));
            }
            if !input.encoded {
                // Do not pin a frame of upstream's buffer pool (a capture
                // device may have only a few) while it waits for the
                // worker: one copy per thumbnail, not per frame.
                buffer = buffer.copy_deep().unwrap_or(buffer);
            }
            self.queue.add();
            state.last_out = Some(rt);
            let job = Job {
                pts: buffer.pts(),
                buffer,
                input,
                running_time: rt,
                recording_time: rt - first,
                utc,
                trigger,
            };
            self.send(&state, Command::Render(Box::new(job), generation));
        } else if state.last_out.is_none_or(|last| rt - last >= GAP_EVERY) {
            // Nothing to show for a while: tell downstream time went on, so
            // that a sink prerolls and a live one does not wait.
            state.last_out = Some(rt);
            let gap = gst::event::Gap::builder(pts)
                .duration(buffer.duration())
                .build();
            self.send(&state, Command::Event(gap, generation));
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        let generation = self.generation.load(Ordering::SeqCst);
        match event.view() {
            EventView::Caps(c) => {
                let caps = c.caps_owned();
                let Some(input) = Input::from_caps(&caps) else {
                    return false;
                };
                gst::debug!(CAT, obj = pad, "input caps {caps}");
                let mut state = self.state.lock().unwrap();
                if state.input.as_ref().is_some_and(|i| i.caps == caps) {
                    // The same caps again: keep the parameter sets seen.
                    return true;
                }
                state.params = input
                    .in_band
                    .map(|(codec, framing)| ParameterSets::new(codec, framing));
                state.input = Some(Arc::new(input));
                state.warned_no_size = false;
                true
            }
            EventView::Segment(s) => {
                let Ok(seg) = s.segment().clone().downcast::<gst::ClockTime>() else {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ("thumbnailer: only TIME segments are supported")
                    );
                    return false;
                };
                let mut state = self.state.lock().unwrap();
                state.segment = seg;
                self.send(&state, Command::Event(event, generation));
                true
            }
            EventView::StreamStart(_) | EventView::Gap(_) => {
                let state = self.state.lock().unwrap();
                self.send(&state, Command::Event(event, generation));
                true
            }
            EventView::Eos(_) => {
                let state = self.state.lock().unwrap();
                self.send(&state, Command::Eos(generation));
                true
            }
            EventView::FlushStart(_) => {
                self.flushing.store(true, Ordering::SeqCst);
                self.generation.fetch_add(1, Ordering::SeqCst);
                self.queue.wake();
                self.srcpad.push_event(event)
            }
            EventView::FlushStop(_) => {
                let _push = self.push_lock.lock().unwrap();
                {
                    let mut state = self.state.lock().unwrap();
                    state.picker.reset();
                    state.last_out = None;
                    state.first = None;
                    state.utc_origin = None;
                }
                self.flushing.store(false, Ordering::SeqCst);
                self.srcpad.push_event(event)
            }
            // Tags describe the video, not the images; other serialized
            // events have no meaning for a stream of stills.
            _ if event.is_serialized() => true,
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        crate::output::sink_query(self.obj().upcast_ref(), pad, query)
    }

    fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        crate::output::src_event(self.obj().upcast_ref(), pad, event)
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        crate::output::src_query(self.obj().upcast_ref(), pad, query, self.src_caps())
    }

    fn src_caps(&self) -> gst::Caps {
        let format = self.settings.lock().unwrap().format;
        gst::Caps::new_empty_simple(format.media_type())
    }
}

/// The worker thread: renders, writes, pushes, in command order.
struct Worker {
    weak: glib::WeakRef<super::Thumbnailer>,
    renderer: Option<Renderer>,
    out: SrcOutput,
    next_index: Option<u64>,
    files: FileSeries,
    storyboard: Option<(Storyboard, Rgbx)>,
    storyboard_full: bool,
    /// Settings for which no private pipeline could be built.
    unusable: Option<render::Spec>,
}

impl Worker {
    fn new(weak: glib::WeakRef<super::Thumbnailer>) -> Self {
        Self {
            weak,
            renderer: None,
            out: SrcOutput::new("thumbnailer"),
            next_index: None,
            files: FileSeries::default(),
            storyboard: None,
            storyboard_full: false,
            unusable: None,
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Command>) {
        while let Ok(cmd) = rx.recv() {
            let Some(obj) = self.weak.upgrade() else {
                break;
            };
            let imp = obj.imp();
            let current = imp.generation.load(Ordering::SeqCst);
            match cmd {
                Command::Render(job, generation) => {
                    if generation == current && !imp.failed.load(Ordering::SeqCst) {
                        self.thumbnail(imp, *job, generation);
                    }
                    imp.queue.done();
                }
                Command::Event(event, generation) => {
                    if generation == current {
                        self.push_event(imp, event, generation);
                    }
                }
                Command::Eos(generation) => {
                    if generation == current {
                        gst::debug!(CAT, imp = imp, "all thumbnails out, pushing EOS");
                        self.push_event(imp, gst::event::Eos::new(), generation);
                        post_eos_if_sink(obj.upcast_ref());
                    }
                }
            }
        }
    }

    fn push_event(&mut self, imp: &Thumbnailer, event: gst::Event, generation: u64) {
        self.out.push_event(
            &imp.srcpad,
            &imp.push_lock,
            &imp.generation,
            generation,
            event,
            imp.src_caps(),
        );
    }

    fn thumbnail(&mut self, imp: &Thumbnailer, mut job: Job, generation: u64) {
        let settings = imp.settings.lock().unwrap().clone();
        let Some(size) = job.input.size else { return };
        let geometry = Geometry::compute(
            size,
            job.input.par,
            settings.width,
            settings.height,
            settings.fit_mode.into(),
        );
        let spec = render::Spec {
            caps: job.input.caps.clone(),
            encoded: job.input.encoded,
            geometry,
            format: settings.format,
            quality: settings.quality,
            tiles: settings.storyboard(),
        };
        let at = gst::ClockTime::from_nseconds(job.running_time.max(0) as u64);
        if self.renderer.as_ref().is_none_or(|r| *r.spec() != spec) {
            self.renderer = None;
            if self.unusable.as_ref() == Some(&spec) {
                gst::debug!(CAT, imp = imp, "no pipeline for these caps, skipping {at}");
                return;
            }
            match Renderer::new(spec.clone()) {
                Ok(r) => {
                    self.renderer = Some(r);
                    self.unusable = None;
                }
                Err(e) => {
                    // Warned once per input and settings, not per frame.
                    self.unusable = Some(spec);
                    gst::element_imp_warning!(
                        imp,
                        gst::CoreError::MissingPlugin,
                        ("Cannot make thumbnails: {}", e)
                    );
                    return;
                }
            }
        }
        let started = Instant::now();
        let renderer = self.renderer.as_mut().unwrap();
        let mut buffer = std::mem::take(&mut job.buffer);
        if let Some((framing, sps)) = &job.input.h264 {
            buffer = h264_alone(buffer, *framing, sps);
        }
        let rendered = match renderer.render(buffer, RENDER_TIMEOUT) {
            Ok(r) => r,
            Err(e) => {
                // A fresh pipeline for the next frame; this one is skipped.
                self.renderer = None;
                gst::element_imp_warning!(
                    imp,
                    gst::StreamError::Decode,
                    ("Skipped the thumbnail of the frame at {}: {}", at, e)
                );
                return;
            }
        };
        if settings.format == ImageFormat::Webp {
            // webpenc of GStreamer 1.22 releases its input state twice when
            // it is stopped and started again: a fresh pipeline per image.
            self.renderer = None;
        }
        let (width, height) = geometry.out;
        gst::debug!(
            CAT,
            imp = imp,
            "thumbnail of {} ({}x{}) in {:?}",
            at,
            width,
            height,
            started.elapsed()
        );
        let bytes = match rendered.image.map_readable() {
            Ok(m) => m.to_vec(),
            Err(_) => return,
        };
        let index = *self
            .next_index
            .get_or_insert(u64::from(settings.start_index));
        self.next_index = Some(index + 1);

        // Files first, so that the message and the buffer announce files
        // that are there.
        let mut location = None;
        if let Some(pattern) = &settings.location {
            let fallback = format!("thumb-%05d.{}", settings.format.nick());
            let (path, bad) = FileSeries::path(pattern, index, &fallback);
            if let Some(e) = bad {
                gst::warning!(CAT, imp = imp, "{e}");
            }
            if !self.write(imp, &path, &bytes, false) {
                return;
            }
            for e in self.files.add(path.clone(), settings.max_files) {
                gst::warning!(CAT, imp = imp, "{e}");
            }
            location = Some(path);
        }
        if let Some(latest) = &settings.latest_location
            && !self.write(imp, Path::new(latest), &bytes, true)
        {
            return;
        }
        if let Some(tile) = rendered.tile
            && !self.add_tile(imp, &settings, &job, tile)
        {
            return;
        }

        let s = gst::Structure::builder("thumbnailer-thumbnail")
            .field(
                "location",
                location
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .or_else(|| settings.latest_location.clone())
                    .unwrap_or_default(),
            )
            .field("index", index as u32)
            .field("trigger", job.trigger.as_str())
            .field("pts", job.pts)
            .field("running-time", at)
            .field(
                "recording-time",
                gst::ClockTime::from_nseconds(job.recording_time.max(0) as u64),
            )
            .field(
                "utc",
                job.utc
                    .map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default(),
            )
            .field("width", width as i32)
            .field("height", height as i32)
            .field("format", settings.format.nick())
            .field("bytes", bytes.len() as u64)
            .build();
        let obj = imp.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());

        let mut image = rendered.image;
        {
            let b = image.make_mut();
            b.set_pts(job.pts);
            b.set_dts(gst::ClockTime::NONE);
            b.set_duration(gst::ClockTime::NONE);
            b.set_offset(index);
        }
        if let Err(e) = self.out.push(
            &imp.srcpad,
            &imp.push_lock,
            &imp.generation,
            generation,
            image,
            imp.src_caps(),
        ) {
            imp.failed.store(true, Ordering::SeqCst);
            gst::element_imp_error!(
                imp,
                gst::StreamError::Failed,
                ("Downstream refused a thumbnail: {:?}", e)
            );
        }
    }

    /// Writes a file atomically; an error is an element error naming it.
    fn write(&self, imp: &Thumbnailer, path: &Path, bytes: &[u8], sync: bool) -> bool {
        match write_file(path, bytes, sync) {
            Ok(()) => true,
            Err(e) => {
                imp.failed.store(true, Ordering::SeqCst);
                gst::element_imp_error!(imp, gst::ResourceError::OpenWrite, ("{}", e));
                false
            }
        }
    }

    /// Adds a tile to the sprite and rewrites the sprite, then the VTT.
    fn add_tile(&mut self, imp: &Thumbnailer, settings: &Settings, job: &Job, tile: Rgbx) -> bool {
        if self.storyboard_full {
            return true;
        }
        let (board, canvas) = self.storyboard.get_or_insert_with(|| {
            (
                Storyboard::new(settings.storyboard_columns, (tile.width, tile.height)),
                Rgbx {
                    width: 0,
                    height: 0,
                    data: Vec::new(),
                },
            )
        });
        let Some(pos) = board.add(job.recording_time) else {
            self.storyboard_full = true;
            gst::element_imp_warning!(
                imp,
                gst::ResourceError::NoSpaceLeft,
                ("The storyboard sprite is full (a JPEG is at most 65535 pixels high); no more tiles")
            );
            return true;
        };
        grow(canvas, board.sprite_size());
        blit(canvas, &tile, pos.x, pos.y, board.cell);
        if let Some(sprite) = &settings.storyboard_location {
            let jpeg = match render::encode_jpeg(canvas, settings.quality, RENDER_TIMEOUT) {
                Ok(j) => j,
                Err(e) => {
                    gst::element_imp_warning!(
                        imp,
                        gst::StreamError::Encode,
                        ("Could not encode the storyboard sprite: {}", e)
                    );
                    return true;
                }
            };
            if !self.write(imp, Path::new(sprite), &jpeg, true) {
                return false;
            }
        }
        if let Some(vtt) = &settings.storyboard_vtt {
            let reference = sprite_reference(settings.storyboard_location.as_deref(), vtt);
            let last = if settings.interval > 0 {
                i64::from(settings.interval) * NS as i64
            } else {
                NS as i64
            };
            let (board, _) = self.storyboard.as_ref().unwrap();
            let text = board.vtt(&reference, last);
            if !self.write(imp, Path::new(vtt), text.as_bytes(), true) {
                return false;
            }
        }
        true
    }
}

/// How the VTT names the sprite: by file name when both are in one
/// directory (so the pair can be served from anywhere), else as configured.
fn sprite_reference(sprite: Option<&str>, vtt: &str) -> String {
    let Some(sprite) = sprite else {
        return "storyboard.jpg".into();
    };
    let (s, v) = (Path::new(sprite), Path::new(vtt));
    let dir = |p: &Path| p.parent().map(Path::to_path_buf).unwrap_or_default();
    match s.file_name() {
        Some(name) if dir(s) == dir(v) => name.to_string_lossy().into_owned(),
        _ => sprite.to_string(),
    }
}

/// Grows `canvas` to `size`, keeping its pixels where they are.
fn grow(canvas: &mut Rgbx, size: (u32, u32)) {
    if (canvas.width, canvas.height) == size {
        return;
    }
    let (w, h) = (size.0.max(canvas.width), size.1.max(canvas.height));
    let mut data = vec![0u8; w as usize * h as usize * 4];
    let (old_row, new_row) = (canvas.width as usize * 4, w as usize * 4);
    for y in 0..canvas.height as usize {
        data[y * new_row..y * new_row + old_row]
            .copy_from_slice(&canvas.data[y * old_row..(y + 1) * old_row]);
    }
    *canvas = Rgbx {
        width: w,
        height: h,
        data,
    };
}

/// Copies `tile` into the cell at (x, y): a tile of another size (after a
/// resolution change) is clipped to the cell, the rest of the cell black.
fn blit(canvas: &mut Rgbx, tile: &Rgbx, x: u32, y: u32, cell: (u32, u32)) {
    let row = canvas.width as usize * 4;
    let w = cell.0.min(tile.width) as usize;
    for cy in 0..cell.1 as usize {
        let dst_y = y as usize + cy;
        if dst_y >= canvas.height as usize {
            break;
        }
        let start = dst_y * row + x as usize * 4;
        let end = (start + cell.0 as usize * 4).min((dst_y + 1) * row);
        let dst = &mut canvas.data[start..end];
        dst.fill(0);
        if cy < tile.height as usize {
            let src = &tile.data[cy * tile.width as usize * 4..][..w * 4];
            let n = src.len().min(dst.len());
            dst[..n].copy_from_slice(&src[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, v: u8) -> Rgbx {
        Rgbx {
            width: w,
            height: h,
            data: vec![v; (w * h * 4) as usize],
        }
    }

    #[test]
    fn canvas_grows_and_tiles_land_in_their_cells() {
        let mut canvas = solid(0, 0, 0);
        grow(&mut canvas, (4, 2));
        blit(&mut canvas, &solid(2, 2, 7), 0, 0, (2, 2));
        grow(&mut canvas, (4, 4));
        // A smaller tile (resolution change): the rest of its cell is black.
        blit(&mut canvas, &solid(1, 1, 9), 2, 2, (2, 2));
        let px = |c: &Rgbx, x: usize, y: usize| c.data[(y * 4 + x) * 4];
        assert_eq!(
            (px(&canvas, 0, 0), px(&canvas, 1, 1), px(&canvas, 2, 0)),
            (7, 7, 0)
        );
        assert_eq!(
            (px(&canvas, 2, 2), px(&canvas, 3, 2), px(&canvas, 2, 3)),
            (9, 0, 0)
        );
        // A bigger tile is clipped to its cell.
        blit(&mut canvas, &solid(3, 3, 5), 0, 2, (2, 2));
        assert_eq!((px(&canvas, 1, 3), px(&canvas, 2, 3)), (5, 0));
    }

    #[test]
    fn vtt_names_the_sprite_relative_when_it_can() {
        assert_eq!(sprite_reference(Some("/a/s.jpg"), "/a/s.vtt"), "s.jpg");
        assert_eq!(sprite_reference(Some("s.jpg"), "s.vtt"), "s.jpg");
        assert_eq!(sprite_reference(Some("/b/s.jpg"), "/a/s.vtt"), "/b/s.jpg");
    }
}
