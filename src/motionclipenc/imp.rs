// SPDX-License-Identifier: MPL-2.0
//! The element: the streaming thread decides which frames belong to a
//! capture window ([`Windows`]) and drops all others at once; a worker
//! thread feeds each window's frames to a private encoding pipeline
//! ([`super::encode`]), makes the clip file, writes it, and pushes it on the
//! src pad. Pads, flushes, back-pressure, the worker thread and the files
//! are the shared frame worker's ([`crate::frames`]).

use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::subclass::prelude::*;

use crate::core::NS;
use crate::core::motion::{Trigger, Windows};
use crate::frames::{self, Feed, FrameElement, Frames, Outputs, Ticket};

mod settings;
mod worker;

use super::ClipFormat;
use super::encode;
use settings::{Settings, clip_size};
use worker::Encoder;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "motionclipenc",
        gst::DebugColorFlags::empty(),
        Some("Motion clips (MP4, GIF) of raw video"),
    )
});

/// Frames waiting for the worker at most. With a live source more are
/// dropped (with a warning) rather than letting the streaming thread wait;
/// without one the streaming thread waits, so that every clip gets all its
/// frames however fast the input comes.
const MAX_QUEUED: usize = 8;

/// A window that opened: what its clip needs to know.
pub struct ClipStart {
    caps: gst::Caps,
    size: (u32, u32),
    settings: Settings,
    pts: Option<gst::ClockTime>,
    running_time: i64,
    utc: Option<chrono::DateTime<chrono::Utc>>,
    trigger: Trigger,
    frames: u32,
}

/// One step of a clip, for the worker.
pub enum Step {
    /// A window opened.
    Start(Box<ClipStart>),
    /// An output frame, its offset from the clip start (ns).
    Frame(gst::Buffer, u64),
    /// The window ended: the clip lasts this many ns.
    End(u64),
}

struct State {
    windows: Windows,
    /// Frames dropped in the open window (live input, slow encoder).
    dropped: u32,
}

impl Default for State {
    fn default() -> Self {
        Self {
            windows: Settings::default().windows(),
            dropped: 0,
        }
    }
}

#[derive(Default)]
pub struct MotionClipEnc {
    frames: Frames<Self>,
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

#[glib::object_subclass]
impl ObjectSubclass for MotionClipEnc {
    const NAME: &'static str = "GstMotionClipEnc";
    type Type = super::MotionClipEnc;
    type ParentType = gst::Element;
}

impl ObjectImpl for MotionClipEnc {
    fn properties() -> &'static [glib::ParamSpec] {
        settings::properties()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        settings.set(self, pspec.name(), value);
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
        self.settings.lock().unwrap().get(pspec.name())
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            // A clip starts at the next frame (or right after the one being
            // captured). Returns false when the element is not running.
            vec![frames::action_signal(
                "capture-now",
                MotionClipEnc::capture_now,
            )]
        });
        SIGNALS.as_ref()
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.frames.add_pads(&*self.obj());
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
            frames::pad_templates(
                &gst::Caps::new_empty_simple("video/x-raw"),
                &ClipFormat::template_caps(),
            )
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::NullToReady {
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
        frames::change_state(self, transition)
    }
}

impl MotionClipEnc {
    fn capture_now(&self) -> bool {
        if !self.frames.is_running() {
            return false;
        }
        self.state.lock().unwrap().windows.request();
        true
    }

    /// Ends the open window, if any: its clip is made of what it got.
    fn close_window(&self, state: &mut State, feed: &Feed<'_, Self>) {
        if let Some(duration) = state.windows.close_now() {
            gst::debug!(CAT, imp = self, "window ends early after {duration} ns");
            feed.job(Step::End(duration));
        }
    }
}

impl FrameElement for MotionClipEnc {
    const ELEMENT: &'static str = "motionclipenc";
    const OUTPUT: &'static str = "motion clip";
    /// A clip cut short by a stop is not made.
    const STOP_DROPS_QUEUED: bool = true;
    const MAX_QUEUED: usize = MAX_QUEUED;

    type Input = gst::Caps;
    type Job = Step;
    type Worker = Encoder;

    fn cat() -> gst::DebugCategory {
        *CAT
    }

    fn frames(&self) -> &Frames<Self> {
        &self.frames
    }

    fn src_caps(&self) -> gst::Caps {
        self.settings.lock().unwrap().format.caps()
    }

    fn reset(&self) {
        let windows = self.settings.lock().unwrap().windows();
        *self.state.lock().unwrap() = State {
            windows,
            ..State::default()
        };
    }

    fn input(&self, caps: &gst::Caps, feed: &Feed<'_, Self>) -> Option<gst::Caps> {
        // A new format ends the window: its clip keeps one format.
        self.close_window(&mut self.state.lock().unwrap(), feed);
        Some(caps.clone())
    }

    fn pick(
        &self,
        feed: &Feed<'_, Self>,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(at) = feed.place(&buffer)? else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let rt = at.running_time;
        let mut state = self.state.lock().unwrap();
        let decision = state.windows.offer(rt);
        if feed.nothing_out() {
            // Let downstream sinks preroll at once rather than when the
            // first clip is done: a live pipeline goes to PLAYING only when
            // every sink has prerolled, and meanwhile a sink on another
            // branch of a tee upstream may hold the input back.
            feed.gap(&at, None);
        }
        if let Some(duration) = decision.closed {
            feed.job(Step::End(duration));
        }
        if let Some(trigger) = decision.opened {
            let settings = self.settings.lock().unwrap().clone();
            let Some(size) = clip_size(&at.input, &settings) else {
                state.windows.close_now();
                drop(state);
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    ("Input caps have no usable width and height; no clip")
                );
                return Ok(gst::FlowSuccess::Ok);
            };
            gst::debug!(
                CAT,
                imp = self,
                "window opens at {} ({})",
                at.at(),
                trigger.as_str()
            );
            let start = ClipStart {
                caps: (*at.input).clone(),
                size,
                frames: state.windows.slots().min(u64::from(u32::MAX)) as u32,
                settings,
                pts: buffer.pts(),
                running_time: rt,
                utc: Some(at.utc),
                trigger,
            };
            state.dropped = 0;
            feed.mark_out(rt);
            feed.job(Step::Start(Box::new(start)));
        }
        let Some(offset) = decision.take else {
            if !state.windows.is_open() {
                feed.gap_if_idle(&at, buffer.duration());
            }
            // Outside a window (or a frame between two output slots): dropped
            // here, before any conversion, scaling or encoding.
            return Ok(gst::FlowSuccess::Ok);
        };
        drop(state);
        if !feed.wait_for_room() {
            let mut state = self.state.lock().unwrap();
            state.dropped += 1;
            if state.dropped == 1 {
                drop(state);
                gst::element_imp_warning!(
                    self,
                    gst::CoreError::TooLazy,
                    (
                        "The clip encoder is slower than the input; dropping frames of the clip at {}",
                        at.at()
                    )
                );
            }
            return Ok(gst::FlowSuccess::Ok);
        }
        // Do not pin a frame of upstream's buffer pool (a capture device may
        // have only a few) while it waits for the encoder: one copy per
        // output frame, none for the frames dropped.
        feed.frame(Step::Frame(buffer.copy_deep().unwrap_or(buffer), offset));
        Ok(gst::FlowSuccess::Ok)
    }

    fn interrupt(&self, feed: &Feed<'_, Self>) {
        self.close_window(&mut self.state.lock().unwrap(), feed);
    }

    fn passes_events(&self) -> bool {
        // Not in the middle of a clip.
        !self.state.lock().unwrap().windows.is_open()
    }

    fn flushed(&self) {
        self.state.lock().unwrap().windows.reset();
    }

    fn work(&self, worker: &mut Encoder, out: &mut Outputs, job: Step, ticket: Ticket) {
        match job {
            Step::Start(start) => {
                // A window still open here was abandoned (a flush).
                worker.capture = None;
                if ticket.current {
                    worker.open(self, start);
                }
            }
            Step::Frame(buffer, offset) => {
                if ticket.current {
                    worker.feed(self, buffer, offset);
                }
            }
            Step::End(duration) => {
                let capture = worker.capture.take();
                if ticket.current
                    && let Some(capture) = capture
                {
                    worker.finish(self, out, capture, duration, ticket.generation);
                }
            }
        }
    }
}
