// SPDX-License-Identifier: MPL-2.0
//! The element: the streaming thread picks frames ([`Picker`]), a worker
//! thread turns them into images with a private GStreamer pipeline
//! ([`super::render`]), writes the files, and pushes the images on the src
//! pad. Pads, flushes, back-pressure, the worker thread and the files are
//! the shared frame worker's ([`crate::frames`]).

use std::sync::{Arc, LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::core::NS;
use crate::core::nal::ParameterSets;
use crate::core::thumbs::{Picker, Trigger};
use crate::frames::{self, Feed, FrameElement, Frames, Outputs, Ticket};

use super::ImageFormat;

mod input;
mod settings;
mod worker;

use input::Input;
use settings::{DEFAULT_INTERVAL, Settings};
use worker::Worker;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "thumbnailer",
        gst::DebugColorFlags::empty(),
        Some("Thumbnails from raw or encoded video"),
    )
});

/// Frames waiting for the worker at most. With a live source more are
/// dropped (with a warning) rather than letting the streaming thread wait;
/// without one (files, tests) the streaming thread waits, so that every
/// tick gets its thumbnail however fast the input comes.
const MAX_QUEUED: usize = 4;

/// A frame chosen to become a thumbnail.
pub struct Job {
    buffer: gst::Buffer,
    input: Arc<Input>,
    pts: Option<gst::ClockTime>,
    running_time: i64,
    recording_time: i64,
    utc: Option<chrono::DateTime<chrono::Utc>>,
    trigger: Trigger,
}

struct State {
    picker: Picker,
    warned_no_size: bool,
    /// The last in-band parameter sets (see [`Input::in_band`]).
    params: Option<ParameterSets>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            picker: Picker::new(u64::from(DEFAULT_INTERVAL) * NS),
            warned_no_size: false,
            params: None,
        }
    }
}

#[derive(Default)]
pub struct Thumbnailer {
    frames: Frames<Self>,
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

#[glib::object_subclass]
impl ObjectSubclass for Thumbnailer {
    const NAME: &'static str = "GstThumbnailer";
    type Type = super::Thumbnailer;
    type ParentType = gst::Element;
}

impl ObjectImpl for Thumbnailer {
    fn properties() -> &'static [glib::ParamSpec] {
        settings::properties()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        settings.set(self, pspec.name(), value);
        if pspec.name() == "interval" {
            let interval = u64::from(settings.interval) * NS;
            drop(settings);
            self.state.lock().unwrap().picker.set_interval(interval);
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        self.settings.lock().unwrap().get(pspec.name())
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            // The next usable frame (raw: the next frame; encoded: the next
            // keyframe, which is requested from upstream) becomes a
            // thumbnail. Returns false when the element is not running.
            vec![frames::action_signal("snapshot", Thumbnailer::snapshot)]
        });
        SIGNALS.as_ref()
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.frames.add_pads(&*self.obj());
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
            frames::pad_templates(&Input::template_caps(), &ImageFormat::template_caps())
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        frames::change_state(self, transition)
    }
}

impl Thumbnailer {
    fn snapshot(&self) -> bool {
        if !self.frames.is_running() {
            return false;
        }
        self.state.lock().unwrap().picker.request_snapshot();
        if self.frames.input().is_none_or(|i| i.encoded) {
            // A live encoder upstream makes the keyframe now.
            gst::debug!(CAT, imp = self, "snapshot: asking upstream for a keyframe");
            let event = gst_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            self.frames.sinkpad.push_event(event);
        }
        true
    }
}

impl FrameElement for Thumbnailer {
    const ELEMENT: &'static str = "thumbnailer";
    const OUTPUT: &'static str = "thumbnail";
    /// The worker makes the thumbnails it was handed before it stops.
    const STOP_DROPS_QUEUED: bool = false;
    const MAX_QUEUED: usize = MAX_QUEUED;

    type Input = Input;
    type Job = Job;
    type Worker = Worker;

    fn cat() -> gst::DebugCategory {
        *CAT
    }

    fn frames(&self) -> &Frames<Self> {
        &self.frames
    }

    fn src_caps(&self) -> gst::Caps {
        let format = self.settings.lock().unwrap().format;
        gst::Caps::new_empty_simple(format.media_type())
    }

    fn reset(&self) {
        let interval = u64::from(self.settings.lock().unwrap().interval) * NS;
        *self.state.lock().unwrap() = State {
            picker: Picker::new(interval),
            ..State::default()
        };
    }

    fn input(&self, caps: &gst::Caps, _feed: &Feed<'_, Self>) -> Option<Input> {
        let input = Input::from_caps(caps)?;
        let mut state = self.state.lock().unwrap();
        state.params = input
            .in_band
            .map(|(codec, framing)| ParameterSets::new(codec, framing));
        state.warned_no_size = false;
        Some(input)
    }

    fn pick(
        &self,
        feed: &Feed<'_, Self>,
        mut buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        feed.wait_for_room();
        let Some(at) = feed.place(&buffer)? else {
            return Ok(gst::FlowSuccess::Ok);
        };
        let input = at.input.clone();
        let flags = buffer.flags();
        // Encoded input: only keyframes can be decoded alone, so a stream
        // that starts mid-GOP waits for its first keyframe.
        let usable = !flags.contains(gst::BufferFlags::CORRUPTED)
            && !flags.contains(gst::BufferFlags::DECODE_ONLY)
            && (!input.encoded || !flags.contains(gst::BufferFlags::DELTA_UNIT));
        let mut state = self.state.lock().unwrap();
        // Keep the parameter sets of in-band streams current (only the head
        // of keyframes and header buffers is read).
        let mut has_sps = true;
        if let Some(params) = state.params.as_mut()
            && (usable || flags.contains(gst::BufferFlags::HEADER))
            && let Ok(map) = buffer.map_readable()
        {
            has_sps = params.observe(&map);
        }
        let trigger = if usable {
            state.picker.offer(at.running_time)
        } else {
            None
        };
        let Some(trigger) = trigger else {
            feed.gap_if_idle(&at, buffer.duration());
            return Ok(gst::FlowSuccess::Ok);
        };
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
        if feed.queue_full() {
            drop(state);
            gst::element_imp_warning!(
                self,
                gst::CoreError::TooLazy,
                (
                    "Thumbnails are made slower than requested; dropping the frame at {}",
                    at.at()
                )
            );
            return Ok(gst::FlowSuccess::Ok);
        }
        gst::debug!(
            CAT,
            imp = self,
            "frame at {} becomes a thumbnail ({})",
            at.at(),
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
        drop(state);
        if !input.encoded {
            // Do not pin a frame of upstream's buffer pool (a capture
            // device may have only a few) while it waits for the worker:
            // one copy per thumbnail, not per frame.
            buffer = buffer.copy_deep().unwrap_or(buffer);
        }
        feed.mark_out(at.running_time);
        feed.frame(Job {
            pts: buffer.pts(),
            buffer,
            input,
            running_time: at.running_time,
            recording_time: at.recording_time,
            utc: Some(at.utc),
            trigger,
        });
        Ok(gst::FlowSuccess::Ok)
    }

    fn flushed(&self) {
        self.state.lock().unwrap().picker.reset();
    }

    fn work(&self, worker: &mut Worker, out: &mut Outputs, job: Job, ticket: Ticket) {
        if ticket.current {
            worker.thumbnail(self, out, job, ticket.generation);
        }
    }
}
