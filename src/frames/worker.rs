// SPDX-License-Identifier: MPL-2.0
//! The worker thread: it takes the streaming thread's commands in order,
//! drops what a flush overtook, and owns the src pad's output side and the
//! numbered files.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use chrono::{DateTime, Utc};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::FrameElement;
use super::files::{FileSeries, FileSettings, write_file};

pub(super) enum Command<J> {
    /// A picked frame (it counts in the work queue).
    Frame(J, u64),
    /// Other work of the element.
    Job(J, u64),
    /// A serialized event for the src pad, in order with the outputs.
    Event(gst::Event, u64),
    /// Push EOS once everything before it is out.
    Eos(u64),
}

/// What a job comes with.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    /// The generation it was queued in.
    pub generation: u64,
    /// Whether it still counts: no flush came since, and nothing failed.
    pub current: bool,
}

pub(super) fn run<T: FrameElement>(
    weak: glib::WeakRef<T::Type>,
    rx: mpsc::Receiver<Command<T::Job>>,
) {
    let mut worker = T::Worker::default();
    let mut out = Outputs::new(T::ELEMENT);
    while let Ok(cmd) = rx.recv() {
        let Some(obj) = weak.upgrade() else {
            break;
        };
        let imp = obj.imp();
        let frames = imp.frames();
        let current = frames.generation.load(Ordering::SeqCst);
        let ticket = |generation| Ticket {
            generation,
            current: generation == current && !frames.failed.load(Ordering::SeqCst),
        };
        match cmd {
            Command::Frame(job, generation) => {
                imp.work(&mut worker, &mut out, job, ticket(generation));
                frames.queue.done();
            }
            Command::Job(job, generation) => {
                imp.work(&mut worker, &mut out, job, ticket(generation));
            }
            Command::Event(event, generation) => {
                if generation == current {
                    out.push_event(imp, event, generation);
                }
            }
            Command::Eos(generation) => {
                if generation == current {
                    gst::debug!(T::cat(), imp = imp, "all {}s out, pushing EOS", T::OUTPUT);
                    out.push_event(imp, gst::event::Eos::new(), generation);
                    // Nothing linked downstream: the bin learns from the
                    // element itself that this branch is done.
                    let element: &gst::Element = obj.upcast_ref();
                    if element.element_flags().contains(gst::ElementFlags::SINK) {
                        let _ =
                            element.post_message(gst::message::Eos::builder().src(element).build());
                    }
                }
            }
        }
    }
}

/// The worker's side of the outputs: the src pad (stream-start and caps
/// before the first event or buffer, nothing of an older generation) and
/// the files.
pub struct Outputs {
    caps_sent: Option<gst::Caps>,
    stream_prefix: &'static str,
    next_index: Option<u64>,
    series: FileSeries,
}

/// An output written to its files.
pub struct Written {
    /// Its number (from `start-index` on).
    pub index: u64,
    /// What the element message names: the numbered file, else
    /// `latest-location`, else nothing.
    pub location: String,
}

impl Written {
    /// The element message announcing the output: `location`, `index` and
    /// `trigger`, and then the element's own fields.
    pub fn message(&self, name: &str, trigger: &str) -> gst::structure::Builder {
        gst::Structure::builder(name)
            .field("location", self.location.as_str())
            .field("index", self.index as u32)
            .field("trigger", trigger)
    }
}

/// A wall clock time for a message: RFC 3339 in ms, or empty.
pub fn utc_text(utc: Option<DateTime<Utc>>) -> String {
    utc.map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Writes a file atomically; an error is an element error naming it, and
/// the element fails.
pub fn write<T: FrameElement>(imp: &T, path: &Path, bytes: &[u8], sync: bool) -> bool {
    match write_file(path, bytes, sync) {
        Ok(()) => true,
        Err(e) => {
            imp.frames().failed.store(true, Ordering::SeqCst);
            gst::element_imp_error!(imp, gst::ResourceError::OpenWrite, ("{}", e));
            false
        }
    }
}

impl Outputs {
    /// `stream_prefix` names the stream id (the element's name).
    fn new(stream_prefix: &'static str) -> Self {
        Self {
            caps_sent: None,
            stream_prefix,
            next_index: None,
            series: FileSeries::default(),
        }
    }

    /// Numbers the next output and writes `bytes` to its files (a
    /// `location` that is not a usable pattern gives `fallback`). `None`
    /// when a write failed (an element error; the element fails).
    pub fn write<T: FrameElement>(
        &mut self,
        imp: &T,
        files: &FileSettings,
        fallback: &str,
        bytes: &[u8],
    ) -> Option<Written> {
        let index = *self.next_index.get_or_insert(u64::from(files.start_index));
        self.next_index = Some(index + 1);
        // Files first, so that the message and the buffer announce files
        // that are there.
        let mut location = None;
        if let Some(pattern) = &files.location {
            let (path, bad) = FileSeries::path(pattern, index, fallback);
            if let Some(e) = bad {
                gst::warning!(T::cat(), imp = imp, "{e}");
            }
            if !write(imp, &path, bytes, false) {
                return None;
            }
            for e in self.series.add(path.clone(), files.max_files) {
                gst::warning!(T::cat(), imp = imp, "{e}");
            }
            location = Some(path);
        }
        if let Some(latest) = &files.latest_location
            && !write(imp, Path::new(latest), bytes, true)
        {
            return None;
        }
        Some(Written {
            index,
            location: location
                .map(|p| p.display().to_string())
                .or_else(|| files.latest_location.clone())
                .unwrap_or_default(),
        })
    }

    /// Posts `message` as an element message, then pushes `buffer` (unless
    /// a flush came after `generation`). Downstream refusing it (other than
    /// flushing, not linked or EOS) is an element error; the element fails.
    pub fn publish<T: FrameElement>(
        &mut self,
        imp: &T,
        message: gst::Structure,
        buffer: gst::Buffer,
        generation: u64,
    ) {
        let obj = imp.obj();
        let _ = obj.post_message(gst::message::Element::builder(message).src(&*obj).build());
        if let Err(e) = self.push(imp, buffer, generation) {
            imp.frames().failed.store(true, Ordering::SeqCst);
            gst::element_imp_error!(
                imp,
                gst::StreamError::Failed,
                ("Downstream refused a {}: {:?}", T::OUTPUT, e)
            );
        }
    }

    /// Pushes stream-start (if none yet) and the caps when they are not out.
    fn ensure_caps(&mut self, srcpad: &gst::Pad, caps: gst::Caps) {
        if self.caps_sent.as_ref() != Some(&caps) {
            if srcpad.sticky_event::<gst::event::StreamStart>(0).is_none() {
                let id = format!("{}-{:p}", self.stream_prefix, srcpad.as_ptr());
                srcpad.push_event(gst::event::StreamStart::new(&id));
            }
            srcpad.push_event(gst::event::Caps::new(&caps));
            self.caps_sent = Some(caps);
        }
    }

    /// Pushes `event` unless a flush came after `generation`; the caps go
    /// first when they are not out yet.
    pub(super) fn push_event<T: FrameElement>(
        &mut self,
        imp: &T,
        event: gst::Event,
        generation: u64,
    ) {
        let frames = imp.frames();
        let _push = frames.push_lock.lock().unwrap();
        if frames.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if !matches!(event.view(), gst::EventView::StreamStart(_)) {
            self.ensure_caps(&frames.srcpad, imp.src_caps());
        }
        frames.srcpad.push_event(event);
    }

    /// Pushes one output buffer (same rules as [`Self::push_event`]).
    /// Flushing, not-linked and EOS downstream are not errors.
    fn push<T: FrameElement>(
        &mut self,
        imp: &T,
        buffer: gst::Buffer,
        generation: u64,
    ) -> Result<(), gst::FlowError> {
        let frames = imp.frames();
        let _push = frames.push_lock.lock().unwrap();
        if frames.generation.load(Ordering::SeqCst) != generation {
            return Ok(());
        }
        self.ensure_caps(&frames.srcpad, imp.src_caps());
        match frames.srcpad.push(buffer) {
            Ok(_)
            | Err(gst::FlowError::Flushing)
            | Err(gst::FlowError::NotLinked)
            | Err(gst::FlowError::Eos) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
