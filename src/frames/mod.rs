// SPDX-License-Identifier: MPL-2.0
//! The frame worker of the elements that pick frames of a video on the
//! streaming thread and turn them into files on a worker thread
//! (`thumbnailer`, `motionclipenc`).
//!
//! [`Frames`] does what both do alike: the `sink` and `src` pads and their
//! functions; the input caps, the segment and the stream's time origin;
//! the generation counter that drops work queued before a flush (or a
//! stop); the flushing and failed flags; the lock held while pushing, so
//! that nothing of before a flush goes out after it; the back-pressure
//! between the threads ([`WorkQueue`]); and the worker thread, started at
//! READY→PAUSED (a thread that cannot be started is an element error and
//! a failed state change) and joined at PAUSED→READY. Serialized events go
//! to the worker through the same channel as the work, so they come out
//! in order with the outputs; EOS goes out after the last output.
//!
//! An element implements [`FrameElement`] for what differs: what its caps
//! mean, how a frame is picked ([`FrameElement::pick`], which hands work
//! over with a [`Feed`]), what the worker does with it
//! ([`FrameElement::work`], which writes files and pushes with
//! [`Outputs`]), and what caps go out. [`pipeline`] builds and runs the
//! private `appsrc ! … ! appsink` pipelines the workers use.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

pub mod animated;
pub mod export;
mod files;
pub mod pipeline;
mod queue;
pub mod still;
pub mod storyboard;
mod worker;

pub use files::{FileSettings, path_value};
pub use queue::WorkQueue;
pub use worker::{Outputs, Ticket, Written, utc_text, write};

use crate::core::NS;
use worker::Command;

/// Without an output for this much running time, a GAP event tells
/// downstream that time went on (so sinks preroll and advance).
const GAP_EVERY: i64 = NS as i64;

/// What an element on the frame worker does its own way.
pub trait FrameElement:
    ElementImpl + ObjectSubclass<Type: IsA<gst::Element> + Send + Sync>
{
    /// The element's name: the worker thread is `ELEMENT-worker`, the stream
    /// id starts with it, messages name it.
    const ELEMENT: &'static str;
    /// One output, in messages ("thumbnail").
    const OUTPUT: &'static str;
    /// Whether PAUSED→READY drops the work still queued; otherwise the
    /// worker does it (writing its files) before it stops.
    const STOP_DROPS_QUEUED: bool;
    /// Frames waiting for the worker at most (see [`WorkQueue`]).
    const MAX_QUEUED: usize;

    /// What the element makes of the sink caps.
    type Input: Send + Sync + 'static;
    /// What the streaming thread hands the worker thread.
    type Job: Send + 'static;
    /// What the worker thread keeps from one job to the next.
    type Worker: Default;

    /// The element's debug category.
    fn cat() -> gst::DebugCategory;

    fn frames(&self) -> &Frames<Self>;

    /// The caps of the src pad (the settings say them).
    fn src_caps(&self) -> gst::Caps;

    /// A new run starts (READY→PAUSED): picking starts afresh.
    fn reset(&self);

    /// New caps on the sink pad: what they mean, or `None` to refuse them.
    fn input(&self, caps: &gst::Caps, feed: &Feed<'_, Self>) -> Option<Self::Input>;

    /// A buffer on the sink pad (nothing failed, not flushing): picks it,
    /// or drops it.
    fn pick(
        &self,
        feed: &Feed<'_, Self>,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError>;

    /// A new segment or EOS comes: what is being collected ends before it.
    fn interrupt(&self, _feed: &Feed<'_, Self>) {}

    /// Whether stream-start and gap events from upstream go out now (not
    /// while an output is being collected).
    fn passes_events(&self) -> bool {
        true
    }

    /// A flush ended: picking starts again.
    fn flushed(&self);

    /// On the worker thread: does `job`, in the order it was queued.
    fn work(&self, worker: &mut Self::Worker, out: &mut Outputs, job: Self::Job, ticket: Ticket);
}

/// What the input says about the stream so far.
struct Stream<I> {
    /// The sink caps and what the element made of them.
    caps: Option<(gst::Caps, Arc<I>)>,
    segment: gst::FormattedSegment<gst::ClockTime>,
    /// Running time and wall clock of the first frame: recording time 0.
    origin: Option<(i64, DateTime<Utc>)>,
    /// Running time of the last output or gap sent downstream.
    last_out: Option<i64>,
}

impl<I> Default for Stream<I> {
    fn default() -> Self {
        Self {
            caps: None,
            segment: gst::FormattedSegment::new(),
            origin: None,
            last_out: None,
        }
    }
}

/// The pads, flags, queue and worker thread of a [`FrameElement`].
pub struct Frames<T: FrameElement> {
    pub sinkpad: gst::Pad,
    pub srcpad: gst::Pad,
    stream: Mutex<Stream<T::Input>>,
    /// Bumped by every flush: commands of an older generation are dropped.
    generation: AtomicU64,
    flushing: AtomicBool,
    /// An output could not be written or pushed: the streaming thread
    /// returns an error.
    failed: AtomicBool,
    /// Held by the worker while it pushes, and by FLUSH_STOP, so that no
    /// output of before a flush goes out after it.
    push_lock: Mutex<()>,
    /// Frames handed to the worker and not yet done.
    queue: WorkQueue,
    worker: Mutex<Option<Worker<T::Job>>>,
}

/// The worker thread and the sending end of its channel.
type Worker<J> = (mpsc::Sender<Command<J>>, JoinHandle<()>);

impl<T: FrameElement> Default for Frames<T> {
    /// The pads of the element's `sink` and `src` templates.
    fn default() -> Self {
        let template = |name: &str| {
            T::pad_templates()
                .iter()
                .find(|t| t.name_template() == name)
                .unwrap_or_else(|| panic!("{} has no {name} pad template", T::ELEMENT))
        };
        let sinkpad = gst::Pad::builder_from_template(template("sink"))
            .chain_function(|_pad, parent, buffer| {
                T::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| chain(imp, buffer),
                )
            })
            .event_function(|pad, parent, event| {
                T::catch_panic_pad_function(parent, || false, |imp| sink_event(imp, pad, event))
            })
            .query_function(|pad, parent, query| {
                T::catch_panic_pad_function(parent, || false, |imp| sink_query(imp, pad, query))
            })
            .flags(gst::PadFlags::ACCEPT_TEMPLATE)
            .build();
        let srcpad = gst::Pad::builder_from_template(template("src"))
            .event_function(|pad, parent, event| {
                T::catch_panic_pad_function(parent, || false, |imp| src_event(imp, pad, event))
            })
            .query_function(|pad, parent, query| {
                T::catch_panic_pad_function(parent, || false, |imp| src_query(imp, pad, query))
            })
            .build();
        Self {
            sinkpad,
            srcpad,
            stream: Mutex::default(),
            generation: AtomicU64::new(0),
            flushing: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            push_lock: Mutex::new(()),
            queue: WorkQueue::new(T::MAX_QUEUED),
            worker: Mutex::new(None),
        }
    }
}

impl<T: FrameElement> Frames<T> {
    /// Adds the pads to `element` (in `constructed`).
    pub fn add_pads(&self, element: &impl IsA<gst::Element>) {
        element.add_pad(&self.sinkpad).unwrap();
        element.add_pad(&self.srcpad).unwrap();
    }

    /// Whether the worker runs (PAUSED or PLAYING).
    pub fn is_running(&self) -> bool {
        self.worker.lock().unwrap().is_some()
    }

    /// What the element made of the current sink caps.
    pub fn input(&self) -> Option<Arc<T::Input>> {
        let stream = self.stream.lock().unwrap();
        stream.caps.as_ref().map(|(_, input)| input.clone())
    }

    fn send(&self, cmd: Command<T::Job>) {
        if let Some((tx, _)) = self.worker.lock().unwrap().as_ref() {
            let _ = tx.send(cmd);
        }
    }

    /// READY→PAUSED: everything afresh, and a new worker thread.
    fn start(&self, imp: &T) -> Result<(), String> {
        imp.reset();
        *self.stream.lock().unwrap() = Stream::default();
        self.failed.store(false, Ordering::SeqCst);
        self.flushing.store(false, Ordering::SeqCst);
        self.queue.reset();
        let (tx, rx) = mpsc::channel();
        let weak = imp.obj().downgrade();
        let handle = std::thread::Builder::new()
            .name(format!("{}-worker", T::ELEMENT))
            .spawn(move || {
                crate::media::background_thread();
                worker::run::<T>(weak, rx)
            })
            .map_err(|e| e.to_string())?;
        *self.worker.lock().unwrap() = Some((tx, handle));
        Ok(())
    }

    /// After PAUSED→READY (the pads are inactive, so a push in progress
    /// returns at once): the worker does what it still holds and ends.
    fn stop(&self) {
        let worker = self.worker.lock().unwrap().take();
        if let Some((tx, handle)) = worker {
            drop(tx);
            let _ = handle.join();
        }
    }
}

/// `change_state` of a [`FrameElement`]: the worker runs from READY→PAUSED
/// to PAUSED→READY.
pub fn change_state<T: FrameElement>(
    imp: &T,
    transition: gst::StateChange,
) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
    let frames = imp.frames();
    match transition {
        gst::StateChange::ReadyToPaused => {
            // With nothing linked to the src pad (only files wanted), the
            // element is where the stream ends: a sink for the bin, which
            // then waits for its EOS message.
            let obj = imp.obj();
            if frames.srcpad.is_linked() {
                obj.unset_element_flags(gst::ElementFlags::SINK);
            } else {
                obj.set_element_flags(gst::ElementFlags::SINK);
            }
            if let Err(e) = frames.start(imp) {
                gst::element_imp_error!(
                    imp,
                    gst::CoreError::Failed,
                    ("Could not start the {} worker thread: {}", T::ELEMENT, e)
                );
                return Err(gst::StateChangeError);
            }
        }
        gst::StateChange::PausedToReady => {
            // A streaming thread waiting for room must let go.
            frames.flushing.store(true, Ordering::SeqCst);
            if T::STOP_DROPS_QUEUED {
                frames.generation.fetch_add(1, Ordering::SeqCst);
            }
            frames.queue.wake();
        }
        _ => {}
    }
    let ret = imp.parent_change_state(transition)?;
    if transition == gst::StateChange::PausedToReady {
        frames.stop();
    }
    Ok(ret)
}

/// Where a buffer stands in the stream.
pub struct Placed<I> {
    /// What the element made of the caps.
    pub input: Arc<I>,
    /// PTS, else DTS.
    pub pts: gst::ClockTime,
    pub running_time: i64,
    /// Running time since the first frame (of the run, or since a flush).
    pub recording_time: i64,
    /// Wall clock: the first frame's, plus the running time since.
    pub utc: DateTime<Utc>,
}

impl<I> Placed<I> {
    /// The running time as a clock time (0 for negative ones).
    pub fn at(&self) -> gst::ClockTime {
        clock_time(self.running_time)
    }
}

/// A signed time in ns as a clock time (0 for negative ones).
pub fn clock_time(ns: i64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(ns.max(0) as u64)
}

/// The streaming thread's side of the worker: what it hands over carries
/// the generation of when the buffer or event came in, so that what a
/// flush overtook is dropped.
pub struct Feed<'a, T: FrameElement> {
    imp: &'a T,
    generation: u64,
}

impl<'a, T: FrameElement> Feed<'a, T> {
    fn new(imp: &'a T) -> Self {
        Self {
            imp,
            generation: imp.frames().generation.load(Ordering::SeqCst),
        }
    }

    fn frames(&self) -> &'a Frames<T> {
        self.imp.frames()
    }

    /// Places `buffer` in the stream. `Ok(None)`: it has no running time
    /// and is skipped; `Err`: no caps came yet (an element error).
    pub fn place(&self, buffer: &gst::Buffer) -> Result<Option<Placed<T::Input>>, gst::FlowError> {
        let mut stream = self.frames().stream.lock().unwrap();
        let Some((_, input)) = stream.caps.as_ref() else {
            drop(stream);
            gst::element_imp_error!(
                self.imp,
                gst::CoreError::Negotiation,
                ("{} got a buffer before caps", T::ELEMENT)
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let input = input.clone();
        let Some(pts) = buffer.pts().or(buffer.dts()) else {
            gst::debug!(
                T::cat(),
                imp = self.imp,
                "ignoring a buffer without timestamps"
            );
            return Ok(None);
        };
        let Some(rt) = crate::media::running_time(&stream.segment, Some(pts)) else {
            gst::debug!(
                T::cat(),
                imp = self.imp,
                "ignoring a buffer without a running time"
            );
            return Ok(None);
        };
        let (first, utc) = *stream.origin.get_or_insert((rt, Utc::now()));
        Ok(Some(Placed {
            input,
            pts,
            running_time: rt,
            recording_time: rt - first,
            utc: utc + chrono::Duration::nanoseconds(rt.saturating_sub(first)),
        }))
    }

    /// Without a live source, waits until the worker has room for a frame;
    /// with one, never waits. Says whether there is room.
    pub fn wait_for_room(&self) -> bool {
        let frames = self.frames();
        frames
            .queue
            .wait_for_room(&frames.sinkpad, &frames.flushing)
    }

    /// Whether as many frames wait for the worker as may.
    pub fn queue_full(&self) -> bool {
        self.frames().queue.is_full()
    }

    /// A frame for the worker (it counts in the work queue).
    pub fn frame(&self, job: T::Job) {
        self.frames().queue.add();
        self.frames().send(Command::Frame(job, self.generation));
    }

    /// Other work for the worker, in order with the frames.
    pub fn job(&self, job: T::Job) {
        self.frames().send(Command::Job(job, self.generation));
    }

    /// A serialized event for the src pad, in order with the outputs.
    fn event(&self, event: gst::Event) {
        self.frames().send(Command::Event(event, self.generation));
    }

    /// An output starts at running time `rt`: the next gap is due a second
    /// after it.
    pub fn mark_out(&self, rt: i64) {
        self.frames().stream.lock().unwrap().last_out = Some(rt);
    }

    /// Whether nothing (no output, no gap) went out yet in this run or
    /// since the last flush.
    pub fn nothing_out(&self) -> bool {
        self.frames().stream.lock().unwrap().last_out.is_none()
    }

    /// Tells downstream that time went on: a GAP event at `at`.
    pub fn gap(&self, at: &Placed<T::Input>, duration: Option<gst::ClockTime>) {
        self.mark_out(at.running_time);
        self.event(gst::event::Gap::builder(at.pts).duration(duration).build());
    }

    /// A GAP at `at` when nothing went out for a second of running time, so
    /// that a sink prerolls and a live one does not wait.
    pub fn gap_if_idle(&self, at: &Placed<T::Input>, duration: Option<gst::ClockTime>) {
        let idle = self
            .frames()
            .stream
            .lock()
            .unwrap()
            .last_out
            .is_none_or(|last| at.running_time - last >= GAP_EVERY);
        if idle {
            self.gap(at, duration);
        }
    }
}

fn chain<T: FrameElement>(
    imp: &T,
    buffer: gst::Buffer,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    let frames = imp.frames();
    if frames.failed.load(Ordering::SeqCst) {
        return Err(gst::FlowError::Error);
    }
    if frames.flushing.load(Ordering::SeqCst) {
        return Err(gst::FlowError::Flushing);
    }
    imp.pick(&Feed::new(imp), buffer)
}

fn sink_event<T: FrameElement>(imp: &T, pad: &gst::Pad, event: gst::Event) -> bool {
    use gst::EventView;
    let frames = imp.frames();
    let feed = Feed::new(imp);
    match event.view() {
        EventView::Caps(c) => {
            let caps = c.caps_owned();
            gst::debug!(T::cat(), obj = pad, "input caps {caps}");
            let same = frames
                .stream
                .lock()
                .unwrap()
                .caps
                .as_ref()
                .is_some_and(|(c, _)| *c == caps);
            if same {
                // The same caps again: what was seen with them stays (the
                // parameter sets, an open window).
                return true;
            }
            let Some(input) = imp.input(&caps, &feed) else {
                return false;
            };
            frames.stream.lock().unwrap().caps = Some((caps, Arc::new(input)));
            true
        }
        EventView::Segment(s) => {
            let Ok(segment) = s.segment().clone().downcast::<gst::ClockTime>() else {
                gst::element_imp_error!(
                    imp,
                    gst::StreamError::Format,
                    ("{}: only TIME segments are supported", T::ELEMENT)
                );
                return false;
            };
            // What is being collected goes out in the segment it belongs to.
            imp.interrupt(&feed);
            frames.stream.lock().unwrap().segment = segment;
            feed.event(event);
            true
        }
        EventView::StreamStart(_) | EventView::Gap(_) => {
            if imp.passes_events() {
                feed.event(event);
            }
            true
        }
        EventView::Eos(_) => {
            imp.interrupt(&feed);
            frames.send(Command::Eos(feed.generation));
            true
        }
        EventView::FlushStart(_) => {
            frames.flushing.store(true, Ordering::SeqCst);
            frames.generation.fetch_add(1, Ordering::SeqCst);
            frames.queue.wake();
            frames.srcpad.push_event(event)
        }
        EventView::FlushStop(_) => {
            let _push = frames.push_lock.lock().unwrap();
            {
                let mut stream = frames.stream.lock().unwrap();
                stream.last_out = None;
                stream.origin = None;
            }
            imp.flushed();
            frames.flushing.store(false, Ordering::SeqCst);
            frames.srcpad.push_event(event)
        }
        // Tags describe the video, not the outputs; other serialized
        // events have no meaning for a stream of files.
        _ if event.is_serialized() => true,
        _ => gst::Pad::event_default(pad, Some(&*imp.obj()), event),
    }
}

/// Sink queries: the input is not passed on, so upstream allocates as it
/// likes; the rest as by default.
fn sink_query<T: FrameElement>(imp: &T, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
    match query.view_mut() {
        gst::QueryViewMut::Allocation(_) => true,
        _ => gst::Pad::query_default(pad, Some(&*imp.obj()), query),
    }
}

/// Src events: QoS and renegotiation concern the outputs, not the video
/// upstream (a late output must not make an encoder drop frames).
fn src_event<T: FrameElement>(imp: &T, pad: &gst::Pad, event: gst::Event) -> bool {
    match event.view() {
        gst::EventView::Qos(_) | gst::EventView::Reconfigure(_) => true,
        _ => gst::Pad::event_default(pad, Some(&*imp.obj()), event),
    }
}

/// Src queries: the caps are what the settings say.
fn src_query<T: FrameElement>(imp: &T, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
    match query.view_mut() {
        gst::QueryViewMut::Caps(q) => {
            let caps = imp.src_caps();
            let caps = match q.filter() {
                Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                None => caps,
            };
            q.set_result(&caps);
            true
        }
        _ => gst::Pad::query_default(pad, Some(&*imp.obj()), query),
    }
}

/// The always `sink` and `src` pad templates.
pub fn pad_templates(sink: &gst::Caps, src: &gst::Caps) -> Vec<gst::PadTemplate> {
    vec![
        gst::PadTemplate::new(
            "sink",
            gst::PadDirection::Sink,
            gst::PadPresence::Always,
            sink,
        )
        .unwrap(),
        gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, src)
            .unwrap(),
    ]
}

/// An action signal `name` that returns what `action` says (false when the
/// element is not running).
pub fn action_signal<T: FrameElement>(
    name: &str,
    action: fn(&T) -> bool,
) -> glib::subclass::Signal {
    glib::subclass::Signal::builder(name)
        .return_type::<bool>()
        .action()
        .class_handler(move |args| {
            let obj = args[0].get::<gst::Element>().unwrap();
            let obj = obj.downcast_ref::<T::Type>().unwrap();
            Some(action(obj.imp()).to_value())
        })
        .build()
}
