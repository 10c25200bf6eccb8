// SPDX-License-Identifier: MPL-2.0
//! The element: the streaming thread decides which frames belong to a
//! capture window ([`Windows`]) and drops all others at once; a worker
//! thread feeds each window's frames to a private encoding pipeline
//! ([`super::encode`]), makes the clip file, writes it, and pushes it on the
//! src pad.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, mpsc};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::core::motion::{Trigger, Windows};
use crate::core::pattern::format_index;
use crate::core::thumbs::{Fit, Geometry};
use crate::output::{FileSeries, SrcOutput, WorkQueue, post_eos_if_sink, write_file};

use super::ClipFormat;
use super::encode::{self, ClipPipeline, Spec};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "motionclipenc",
        gst::DebugColorFlags::empty(),
        Some("Motion clips (MP4, GIF) of raw video"),
    )
});

const DEFAULT_INTERVAL: u32 = 60;
const DEFAULT_DURATION: u32 = 3;
const DEFAULT_WIDTH: u32 = 320;
const DEFAULT_FRAMERATE: u32 = 10;
const DEFAULT_BITRATE: u32 = 400;
const MAX_SIDE: u32 = 7680;
use crate::core::NS;
/// Frames waiting for the worker at most. With a live source more are
/// dropped (with a warning) rather than letting the streaming thread wait;
/// without one the streaming thread waits, so that every clip gets all its
/// frames however fast the input comes.
const MAX_QUEUED: usize = 8;
/// How long draining one clip's encoder may take.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);
/// Without a clip for this much running time, a GAP event tells downstream
/// that time went on (so sinks preroll and advance).
const GAP_EVERY: i64 = NS as i64;

#[derive(Debug, Clone)]
struct Settings {
    interval: u32,
    duration: u32,
    width: u32,
    height: u32,
    framerate: u32,
    format: ClipFormat,
    bitrate: u32,
    encoder: Option<String>,
    location: Option<String>,
    start_index: u32,
    max_files: u32,
    latest_location: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            duration: DEFAULT_DURATION,
            width: DEFAULT_WIDTH,
            height: 0,
            framerate: DEFAULT_FRAMERATE,
            format: ClipFormat::default(),
            bitrate: DEFAULT_BITRATE,
            encoder: None,
            location: None,
            start_index: 0,
            max_files: 0,
            latest_location: None,
        }
    }
}

impl Settings {
    fn windows(&self) -> Windows {
        Windows::new(
            u64::from(self.interval) * NS,
            u64::from(self.duration) * NS,
            self.framerate,
        )
    }
}

/// A window that opened: what its clip needs to know.
struct ClipStart {
    caps: gst::Caps,
    size: (u32, u32),
    settings: Settings,
    pts: Option<gst::ClockTime>,
    running_time: i64,
    utc: Option<chrono::DateTime<chrono::Utc>>,
    trigger: Trigger,
    frames: u32,
}

enum Command {
    Start(Box<ClipStart>, u64),
    /// An output frame, its offset from the clip start (ns).
    Frame(gst::Buffer, u64, u64),
    /// The window ended: the clip lasts this many ns.
    End(u64, u64),
    /// A serialized event for the src pad, in order with the clips.
    Event(gst::Event, u64),
    /// Push EOS once everything before it is out.
    Eos(u64),
}

struct State {
    windows: Windows,
    segment: gst::FormattedSegment<gst::ClockTime>,
    caps: Option<gst::Caps>,
    worker: Option<(mpsc::Sender<Command>, std::thread::JoinHandle<()>)>,
    /// Running time and wall clock of the first frame.
    utc_origin: Option<(i64, chrono::DateTime<chrono::Utc>)>,
    /// Running time of the last clip start or gap sent downstream.
    last_out: Option<i64>,
    /// Frames dropped in the open window (live input, slow encoder).
    dropped: u32,
}

impl Default for State {
    fn default() -> Self {
        Self {
            windows: Settings::default().windows(),
            segment: gst::FormattedSegment::new(),
            caps: None,
            worker: None,
            utc_origin: None,
            last_out: None,
            dropped: 0,
        }
    }
}

pub struct MotionClipEnc {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Bumped by every flush: commands of an older generation are dropped.
    generation: AtomicU64,
    flushing: AtomicBool,
    /// Frames handed to the worker and not yet fed.
    queue: WorkQueue,
    /// A file could not be written: the streaming thread returns an error.
    failed: AtomicBool,
    /// Held by the worker while it pushes, and by FLUSH_STOP, so that no
    /// clip of before a flush goes out after it.
    push_lock: Mutex<()>,
}

#[glib::object_subclass]
impl ObjectSubclass for MotionClipEnc {
    const NAME: &'static str = "GstMotionClipEnc";
    type Type = super::MotionClipEnc;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").unwrap())
            .chain_function(|pad, parent, buffer| {
                MotionClipEnc::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.chain(pad, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                MotionClipEnc::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                MotionClipEnc::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad, query),
                )
            })
            .flags(gst::PadFlags::ACCEPT_TEMPLATE)
            .build();
        let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").unwrap())
            .event_function(|pad, parent, event| {
                MotionClipEnc::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_event(pad, event),
                )
            })
            .query_function(|pad, parent, query| {
                MotionClipEnc::catch_panic_pad_function(
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
            generation: AtomicU64::new(0),
            flushing: AtomicBool::new(false),
            queue: WorkQueue::new(MAX_QUEUED),
            failed: AtomicBool::new(false),
            push_lock: Mutex::new(()),
        }
    }
}

impl ObjectImpl for MotionClipEnc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb("Seconds of media running time between clip starts (0 = only on demand, with the capture-now signal)")
                    .maximum(7 * 24 * 3600)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("duration")
                    .nick("Duration")
                    .blurb("Seconds of media in each clip")
                    .minimum(1)
                    .maximum(600)
                    .default_value(DEFAULT_DURATION)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("width")
                    .nick("Width")
                    .blurb("Clip width in pixels (0 = from height keeping the aspect ratio; both 0 = source size)")
                    .maximum(MAX_SIDE)
                    .default_value(DEFAULT_WIDTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("height")
                    .nick("Height")
                    .blurb("Clip height in pixels (0 = from width keeping the aspect ratio)")
                    .maximum(MAX_SIDE)
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("framerate")
                    .nick("Frame rate")
                    .blurb("Frames per second of the clips (frames are picked evenly in time)")
                    .minimum(1)
                    .maximum(60)
                    .default_value(DEFAULT_FRAMERATE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder::<ClipFormat>("format")
                    .nick("Format")
                    .blurb("File format of the clips")
                    .default_value(ClipFormat::Mp4)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("bitrate")
                    .nick("Bitrate")
                    .blurb("H.264 bitrate in kbit/s (MP4)")
                    .minimum(16)
                    .maximum(100_000)
                    .default_value(DEFAULT_BITRATE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("encoder")
                    .nick("Encoder")
                    .blurb("H.264 encoder element factory for MP4 (unset = the best available: x264enc, else openh264enc)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("location")
                    .nick("File location")
                    .blurb("Write every clip to this pattern with one %d for the index (e.g. clip-%05d.mp4); unset = no files")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("start-index")
                    .nick("Start index")
                    .blurb("Index of the first clip")
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
                    .blurb("Path replaced atomically by every clip (unset = none)")
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        let path = |v: &glib::Value| v.get::<Option<String>>().unwrap().filter(|s| !s.is_empty());
        match pspec.name() {
            "interval" => settings.interval = value.get().unwrap(),
            "duration" => settings.duration = value.get().unwrap(),
            "width" => settings.width = value.get().unwrap(),
            "height" => settings.height = value.get().unwrap(),
            "framerate" => settings.framerate = value.get().unwrap(),
            "format" => settings.format = value.get().unwrap(),
            "bitrate" => settings.bitrate = value.get().unwrap(),
            "encoder" => settings.encoder = path(value),
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
            _ => unimplemented!(),
        }
        if matches!(pspec.name(), "interval" | "duration" | "framerate") {
            let (i, d, f) = (settings.interval, settings.duration, settings.framerate);
            drop(settings);
            self.state
                .lock()
                .unwrap()
                .windows
                .configure(u64::from(i) * NS, u64::from(d) * NS, f);
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "interval" => settings.interval.to_value(),
            "duration" => settings.duration.to_value(),
            "width" => settings.width.to_value(),
            "height" => settings.height.to_value(),
            "framerate" => settings.framerate.to_value(),
            "format" => settings.format.to_value(),
            "bitrate" => settings.bitrate.to_value(),
            "encoder" => settings.encoder.to_value(),
            "location" => settings.location.to_value(),
            "start-index" => settings.start_index.to_value(),
            "max-files" => settings.max_files.to_value(),
            "latest-location" => settings.latest_location.to_value(),
            _ => unimplemented!(),
        }
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            // A clip starts at the next frame (or right after the one being
            // captured). Returns false when the element is not running.
            vec![
                glib::subclass::Signal::builder("capture-now")
                    .return_type::<bool>()
                    .action()
                    .class_handler(|args| {
                        let obj = args[0].get::<super::MotionClipEnc>().unwrap();
                        Some(obj.imp().capture_now().to_value())
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

impl GstObjectImpl for MotionClipEnc {}

impl ElementImpl for MotionClipEnc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Motion clip encoder",
                "Encoder/Video",
                "Short muted motion clips (MP4 H.264 or looping GIF) of raw video at intervals and on demand, encoding only inside the capture windows",
                "liveclip developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let sink = gst::Caps::new_empty_simple("video/x-raw");
            let src = gst::Caps::builder_full()
                .structure(ClipFormat::Mp4.caps().structure(0).unwrap().to_owned())
                .structure(ClipFormat::Gif.caps().structure(0).unwrap().to_owned())
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
            gst::StateChange::NullToReady => {
                let settings = self.settings.lock().unwrap().clone();
                if settings.format == ClipFormat::Mp4
                    && encode::pick_encoder(settings.encoder.as_deref()).is_none()
                {
                    gst::element_imp_error!(
                        self,
                        gst::CoreError::MissingPlugin,
                        (
                            "No H.264 encoder {}: install x264enc (gstreamer1.0-plugins-ugly) or openh264enc (gstreamer1.0-plugins-bad)",
                            settings
                                .encoder
                                .as_deref()
                                .map(|e| format!("named {e}"))
                                .unwrap_or_default()
                        )
                    );
                    return Err(gst::StateChangeError);
                }
            }
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
                self.generation.fetch_add(1, Ordering::SeqCst);
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

impl MotionClipEnc {
    fn start(&self) {
        let windows = self.settings.lock().unwrap().windows();
        let mut state = self.state.lock().unwrap();
        *state = State {
            windows,
            ..State::default()
        };
        self.failed.store(false, Ordering::SeqCst);
        self.flushing.store(false, Ordering::SeqCst);
        self.queue.reset();
        let (tx, rx) = mpsc::channel();
        let weak = self.obj().downgrade();
        let handle = std::thread::Builder::new()
            .name("motionclipenc-worker".into())
            .spawn(move || Worker::new(weak).run(rx))
            .expect("spawn the motionclipenc worker");
        state.worker = Some((tx, handle));
    }

    fn stop(&self) {
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

    fn capture_now(&self) -> bool {
        let mut state = self.state.lock().unwrap();
        if state.worker.is_none() {
            return false;
        }
        state.windows.request();
        true
    }

    /// Ends the open window, if any: its clip is made of what it got.
    fn close_window(&self, state: &mut State, generation: u64) {
        if let Some(duration) = state.windows.close_now() {
            gst::debug!(CAT, imp = self, "window ends early after {duration} ns");
            self.send(state, Command::End(duration, generation));
        }
    }

    fn chain(
        &self,
        _pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(gst::FlowError::Error);
        }
        if self.flushing.load(Ordering::SeqCst) {
            return Err(gst::FlowError::Flushing);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let mut state = self.state.lock().unwrap();
        let Some(caps) = state.caps.clone() else {
            drop(state);
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("motionclipenc got a buffer before caps")
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let pts = buffer.pts();
        let Some(rt) = crate::media::running_time(&state.segment, pts) else {
            gst::debug!(CAT, imp = self, "ignoring a buffer without a running time");
            return Ok(gst::FlowSuccess::Ok);
        };
        if state.utc_origin.is_none() {
            state.utc_origin = Some((rt, chrono::Utc::now()));
        }
        let decision = state.windows.offer(rt);
        if state.last_out.is_none() {
            // Let downstream sinks preroll at once rather than when the
            // first clip is done: a live pipeline goes to PLAYING only when
            // every sink has prerolled, and meanwhile a sink on another
            // branch of a tee upstream may hold the input back.
            state.last_out = Some(rt);
            let gap = gst::event::Gap::builder(pts.unwrap_or_default()).build();
            self.send(&state, Command::Event(gap, generation));
        }
        if let Some(duration) = decision.closed {
            self.send(&state, Command::End(duration, generation));
        }
        if let Some(trigger) = decision.opened {
            let settings = self.settings.lock().unwrap().clone();
            match clip_size(&caps, &settings) {
                Some(size) => {
                    let utc = state
                        .utc_origin
                        .map(|(o, utc)| utc + chrono::Duration::nanoseconds(rt.saturating_sub(o)));
                    gst::debug!(
                        CAT,
                        imp = self,
                        "window opens at {} ({})",
                        gst::ClockTime::from_nseconds(rt.max(0) as u64),
                        trigger.as_str()
                    );
                    let start = ClipStart {
                        caps,
                        size,
                        frames: state.windows.slots().min(u64::from(u32::MAX)) as u32,
                        settings,
                        pts,
                        running_time: rt,
                        utc,
                        trigger,
                    };
                    state.dropped = 0;
                    state.last_out = Some(rt);
                    self.send(&state, Command::Start(Box::new(start), generation));
                }
                None => {
                    state.windows.close_now();
                    drop(state);
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Format,
                        ("Input caps have no usable width and height; no clip")
                    );
                    return Ok(gst::FlowSuccess::Ok);
                }
            }
        }
        let Some(offset) = decision.take else {
            if !state.windows.is_open() && state.last_out.is_none_or(|l| rt - l >= GAP_EVERY) {
                // Nothing to show for a while: tell downstream time went on,
                // so that a sink prerolls and a live one does not wait.
                state.last_out = Some(rt);
                let gap = gst::event::Gap::builder(pts.unwrap_or_default())
                    .duration(buffer.duration())
                    .build();
                self.send(&state, Command::Event(gap, generation));
            }
            // Outside a window (or a frame between two output slots): dropped
            // here, before any conversion, scaling or encoding.
            return Ok(gst::FlowSuccess::Ok);
        };
        drop(state);
        if !self.queue.wait_for_room(&self.sinkpad, &self.flushing) {
            let mut state = self.state.lock().unwrap();
            state.dropped += 1;
            if state.dropped == 1 {
                drop(state);
                gst::element_imp_warning!(
                    self,
                    gst::CoreError::TooLazy,
                    (
                        "The clip encoder is slower than the input; dropping frames of the clip at {}",
                        gst::ClockTime::from_nseconds(rt.max(0) as u64)
                    )
                );
            }
            return Ok(gst::FlowSuccess::Ok);
        }
        // Do not pin a frame of upstream's buffer pool (a capture device may
        // have only a few) while it waits for the encoder: one copy per
        // output frame, none for the frames dropped.
        let frame = buffer.copy_deep().unwrap_or(buffer);
        self.queue.add();
        let state = self.state.lock().unwrap();
        self.send(&state, Command::Frame(frame, offset, generation));
        Ok(gst::FlowSuccess::Ok)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        let generation = self.generation.load(Ordering::SeqCst);
        match event.view() {
            EventView::Caps(c) => {
                let caps = c.caps_owned();
                gst::debug!(CAT, obj = pad, "input caps {caps}");
                let mut state = self.state.lock().unwrap();
                if state.caps.as_ref() == Some(&caps) {
                    return true;
                }
                // A new format ends the window: its clip keeps one format.
                self.close_window(&mut state, generation);
                state.caps = Some(caps);
                true
            }
            EventView::Segment(s) => {
                let Ok(seg) = s.segment().clone().downcast::<gst::ClockTime>() else {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ("motionclipenc: only TIME segments are supported")
                    );
                    return false;
                };
                let mut state = self.state.lock().unwrap();
                // The open clip goes out in the segment its PTS belongs to.
                self.close_window(&mut state, generation);
                state.segment = seg;
                self.send(&state, Command::Event(event, generation));
                true
            }
            EventView::StreamStart(_) | EventView::Gap(_) => {
                let state = self.state.lock().unwrap();
                if !state.windows.is_open() {
                    self.send(&state, Command::Event(event, generation));
                }
                true
            }
            EventView::Eos(_) => {
                let mut state = self.state.lock().unwrap();
                self.close_window(&mut state, generation);
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
                    state.windows.reset();
                    state.last_out = None;
                    state.utc_origin = None;
                }
                self.flushing.store(false, Ordering::SeqCst);
                self.srcpad.push_event(event)
            }
            // Tags describe the video, not the clips; other serialized
            // events have no meaning for a stream of files.
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
        self.settings.lock().unwrap().format.caps()
    }
}

/// Output size for input `caps`: `width`/`height` (0 = keep the display
/// aspect ratio), the pixel aspect ratio honoured, square pixels out; even
/// for H.264 (4:2:0).
fn clip_size(caps: &gst::Caps, settings: &Settings) -> Option<(u32, u32)> {
    let info = gst_video::VideoInfo::from_caps(caps).ok()?;
    if info.width() == 0 || info.height() == 0 {
        return None;
    }
    let par = info.par();
    let g = Geometry::compute(
        (info.width(), info.height()),
        (par.numer().max(0) as u32, par.denom().max(0) as u32),
        settings.width,
        settings.height,
        Fit::Preserve,
    );
    let (w, h) = g.out;
    Some(match settings.format {
        ClipFormat::Mp4 => (even(w), even(h)),
        ClipFormat::Gif => (w.min(65_535), h.min(65_535)),
    })
}

/// The nearest even size, at least 2.
fn even(v: u32) -> u32 {
    (v.saturating_add(1) & !1).max(2)
}

/// The clip being captured by the worker.
struct Capture {
    start: Box<ClipStart>,
    /// `None` when the pipeline could not be built or failed: the window's
    /// frames are dropped and no clip is made.
    pipeline: Option<ClipPipeline>,
    fed: u32,
}

/// The worker thread: encodes, writes, pushes, in command order.
struct Worker {
    weak: glib::WeakRef<super::MotionClipEnc>,
    capture: Option<Capture>,
    out: SrcOutput,
    next_index: Option<u64>,
    files: FileSeries,
    /// An encoder that could not be built was warned about once.
    warned: bool,
}

impl Worker {
    fn new(weak: glib::WeakRef<super::MotionClipEnc>) -> Self {
        Self {
            weak,
            capture: None,
            out: SrcOutput::new("motionclipenc"),
            next_index: None,
            files: FileSeries::default(),
            warned: false,
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Command>) {
        while let Ok(cmd) = rx.recv() {
            let Some(obj) = self.weak.upgrade() else {
                break;
            };
            let imp = obj.imp();
            let current = imp.generation.load(Ordering::SeqCst);
            let ok = |generation: u64| generation == current && !imp.failed.load(Ordering::SeqCst);
            match cmd {
                Command::Start(start, generation) => {
                    // A window still open here was abandoned (a flush).
                    self.capture = None;
                    if ok(generation) {
                        self.open(imp, start);
                    }
                }
                Command::Frame(buffer, offset, generation) => {
                    if ok(generation) {
                        self.feed(imp, buffer, offset);
                    }
                    imp.queue.done();
                }
                Command::End(duration, generation) => {
                    let capture = self.capture.take();
                    if ok(generation)
                        && let Some(capture) = capture
                    {
                        self.finish(imp, capture, duration, generation);
                    }
                }
                Command::Event(event, generation) => {
                    if generation == current {
                        self.push_event(imp, event, generation);
                    }
                }
                Command::Eos(generation) => {
                    if generation == current {
                        gst::debug!(CAT, imp = imp, "all clips out, pushing EOS");
                        self.push_event(imp, gst::event::Eos::new(), generation);
                        post_eos_if_sink(obj.upcast_ref());
                    }
                }
            }
        }
    }

    fn open(&mut self, imp: &MotionClipEnc, start: Box<ClipStart>) {
        let s = &start.settings;
        let spec = Spec {
            caps: start.caps.clone(),
            size: start.size,
            framerate: s.framerate,
            format: s.format,
            bitrate: s.bitrate,
            encoder: encode::pick_encoder(s.encoder.as_deref()).unwrap_or_default(),
            frames: start.frames,
        };
        let pipeline = match ClipPipeline::start(spec) {
            Ok(p) => {
                self.warned = false;
                Some(p)
            }
            Err(e) => {
                if !std::mem::replace(&mut self.warned, true) {
                    gst::element_imp_warning!(
                        imp,
                        gst::CoreError::MissingPlugin,
                        ("Cannot make motion clips: {}", e)
                    );
                }
                None
            }
        };
        self.capture = Some(Capture {
            start,
            pipeline,
            fed: 0,
        });
    }

    fn feed(&mut self, imp: &MotionClipEnc, buffer: gst::Buffer, offset: u64) {
        let Some(capture) = self.capture.as_mut() else {
            return;
        };
        let Some(pipeline) = capture.pipeline.as_ref() else {
            return;
        };
        if let Err(e) = pipeline.push(buffer, offset) {
            let e = pipeline.error().unwrap_or(e);
            capture.pipeline = None;
            gst::element_imp_warning!(
                imp,
                gst::StreamError::Encode,
                (
                    "Skipped the clip at {}: {}",
                    gst::ClockTime::from_nseconds(capture.start.running_time.max(0) as u64),
                    e
                )
            );
            return;
        }
        capture.fed += 1;
    }

    fn finish(&mut self, imp: &MotionClipEnc, capture: Capture, duration: u64, generation: u64) {
        let Capture {
            start,
            pipeline,
            fed,
        } = capture;
        let Some(pipeline) = pipeline.filter(|_| fed > 0 && duration > 0) else {
            return;
        };
        let at = gst::ClockTime::from_nseconds(start.running_time.max(0) as u64);
        let started = Instant::now();
        let format = pipeline.spec().format;
        let made = pipeline
            .finish(FINISH_TIMEOUT)
            .and_then(|samples| match format {
                ClipFormat::Mp4 => encode::mp4(&samples, duration, start.utc),
                ClipFormat::Gif => encode::gif(&samples, duration),
            });
        let clip = match made {
            Ok(c) => c,
            Err(e) => {
                gst::element_imp_warning!(
                    imp,
                    gst::StreamError::Encode,
                    ("Skipped the clip at {}: {}", at, e)
                );
                return;
            }
        };
        gst::debug!(
            CAT,
            imp = imp,
            "clip at {at}: {} frames, {} bytes, finished in {:?}",
            clip.frames,
            clip.bytes.len(),
            started.elapsed()
        );
        let settings = imp.settings.lock().unwrap().clone();
        let index = *self
            .next_index
            .get_or_insert(u64::from(settings.start_index));
        self.next_index = Some(index + 1);

        // Files first, so that the message and the buffer announce files
        // that are there.
        let mut location = None;
        if let Some(pattern) = &settings.location {
            let fallback = format!("motion-%05d.{}", format.nick());
            let (path, bad) = FileSeries::path(pattern, index, &fallback);
            if let Some(e) = bad {
                gst::warning!(CAT, imp = imp, "{e}");
            }
            if !write(imp, &path, &clip.bytes, false) {
                return;
            }
            for e in self.files.add(path.clone(), settings.max_files) {
                gst::warning!(CAT, imp = imp, "{e}");
            }
            location = Some(path);
        }
        if let Some(latest) = &settings.latest_location
            && !write(imp, Path::new(latest), &clip.bytes, true)
        {
            return;
        }

        let s = gst::Structure::builder("motionclipenc-clip")
            .field(
                "location",
                location
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .or_else(|| settings.latest_location.clone())
                    .unwrap_or_default(),
            )
            .field("index", index as u32)
            .field("trigger", start.trigger.as_str())
            .field("format", format.nick())
            .field("running-time", at)
            .field(
                "utc",
                start
                    .utc
                    .map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default(),
            )
            .field("duration", gst::ClockTime::from_nseconds(duration))
            .field("frames", clip.frames)
            .field("width", clip.width as i32)
            .field("height", clip.height as i32)
            .field("bytes", clip.bytes.len() as u64)
            .build();
        let obj = imp.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());

        let mut buffer = gst::Buffer::from_mut_slice(clip.bytes);
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(start.pts);
            b.set_duration(gst::ClockTime::from_nseconds(duration));
            b.set_offset(index);
        }
        if let Err(e) = self.out.push(
            &imp.srcpad,
            &imp.push_lock,
            &imp.generation,
            generation,
            buffer,
            imp.src_caps(),
        ) {
            imp.failed.store(true, Ordering::SeqCst);
            gst::element_imp_error!(
                imp,
                gst::StreamError::Failed,
                ("Downstream refused a motion clip: {:?}", e)
            );
        }
    }

    fn push_event(&mut self, imp: &MotionClipEnc, event: gst::Event, generation: u64) {
        self.out.push_event(
            &imp.srcpad,
            &imp.push_lock,
            &imp.generation,
            generation,
            event,
            imp.src_caps(),
        );
    }
}

/// Writes a file atomically; an error is an element error naming it.
fn write(imp: &MotionClipEnc, path: &Path, bytes: &[u8], sync: bool) -> bool {
    match write_file(path, bytes, sync) {
        Ok(()) => true,
        Err(e) => {
            imp.failed.store(true, Ordering::SeqCst);
            gst::element_imp_error!(imp, gst::ResourceError::OpenWrite, ("{}", e));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_the_aspect_and_are_even_for_h264() {
        gst::init().unwrap();
        let caps = |w: i32, h: i32, par: (i32, i32)| {
            gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, w as u32, h as u32)
                .par(gst::Fraction::new(par.0, par.1))
                .build()
                .unwrap()
                .to_caps()
                .unwrap()
        };
        let mut s = Settings::default();
        assert_eq!(clip_size(&caps(1920, 1080, (1, 1)), &s), Some((320, 180)));
        // 720x576 at 16:15 shows as 768x576: 320x240.
        assert_eq!(clip_size(&caps(720, 576, (16, 15)), &s), Some((320, 240)));
        s.width = 0;
        s.height = 101;
        assert_eq!(clip_size(&caps(1280, 720, (1, 1)), &s), Some((180, 102)));
        s.format = ClipFormat::Gif;
        assert_eq!(clip_size(&caps(1280, 720, (1, 1)), &s), Some((180, 101)));
        assert_eq!(even(1), 2);
        assert_eq!(even(0), 2);
        assert_eq!(even(179), 180);
    }
}
