// SPDX-License-Identifier: MPL-2.0
//! The element: pads, events, properties and signals around
//! [`crate::core::periodic::Cutter`]; files are written by a worker thread.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::core::pattern::format_index;
use crate::core::periodic::{Cutter, Selection, Trigger};
use crate::core::{Sample, TrackKind};
use crate::media::{SinkPads, Worker, sink};
use crate::mp4::{ClipTrack, CodecConfig, Mp4Clip};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "periodicclipper",
        gst::DebugColorFlags::empty(),
        Some("Periodic and on-demand MP4 clips"),
    )
});

use crate::core::NS;
use settings::{DEFAULT_INTERVAL, DEFAULT_LOCATION, Settings};

mod settings;
mod writer;

use writer::{Command, Job, writer_loop};

/// Clips waiting for the writer before the streaming threads wait too.
const QUEUE_CLIPS: usize = 8;

/// A cutter track's kind and codec configuration.
struct Track {
    kind: TrackKind,
    config: Option<Arc<CodecConfig>>,
    /// The configuration of new caps, taking effect at the track's next
    /// keyframe (the first frame coded with it); later caps before that
    /// replace it.
    pending: Option<Arc<CodecConfig>>,
}

struct State {
    cutter: Cutter,
    /// Per cutter track.
    tracks: Vec<Track>,
    /// Locations promised to on-demand requests, by clip seq.
    promised: HashMap<u64, PathBuf>,
    worker: Option<Worker<Command>>,
    /// Running time and wall clock of the first sample.
    utc_origin: Option<(i64, chrono::DateTime<chrono::Utc>)>,
    next_request: u64,
    /// Pending start for which a keyframe request was sent.
    requested_for: Option<i64>,
    eos_sent: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            cutter: Cutter::new(u64::from(DEFAULT_INTERVAL) * NS, 0),
            tracks: Vec::new(),
            promised: HashMap::new(),
            worker: None,
            utc_origin: None,
            next_request: 0,
            requested_for: None,
            eos_sent: false,
        }
    }
}

#[derive(Default)]
pub struct PeriodicClipper {
    settings: Mutex<Settings>,
    pads: SinkPads,
    state: Mutex<State>,
    /// Set when writing failed: the streaming threads return an error.
    failed: Arc<AtomicBool>,
    /// Keeps jobs in cut order from the streaming threads to the writer.
    dispatch_lock: Mutex<()>,
    /// Clips written lately, for HTTP requests waiting on one.
    board: Arc<ReadyBoard>,
    /// Routes on the HTTP listener while running.
    http: Mutex<Option<crate::http::Registration>>,
    webhook: Mutex<Option<crate::http::webhook::Webhook>>,
}

/// The latest clips written, and a condition variable to wait for one.
#[derive(Default)]
struct ReadyBoard {
    recent: Mutex<std::collections::VecDeque<crate::http::ClipReady>>,
    changed: std::sync::Condvar,
}

/// Clips the board remembers.
const BOARD: usize = 64;

impl ReadyBoard {
    fn post(&self, ready: crate::http::ClipReady) {
        let mut recent = self.recent.lock().unwrap();
        if recent.len() == BOARD {
            recent.pop_front();
        }
        recent.push_back(ready);
        self.changed.notify_all();
    }

    fn wait(&self, location: &str, timeout: Duration) -> Option<crate::http::ClipReady> {
        let deadline = Instant::now() + timeout;
        let mut recent = self.recent.lock().unwrap();
        loop {
            if let Some(r) = recent.iter().find(|r| r.location == location) {
                return Some(r.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            recent = self.changed.wait_timeout(recent, deadline - now).unwrap().0;
        }
    }
}

/// The HTTP API's handle on the element.
struct HttpClipper {
    weak: glib::WeakRef<super::PeriodicClipper>,
    board: Arc<ReadyBoard>,
    name: String,
}

impl crate::http::Clipper for HttpClipper {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn start_periodic(&self, seconds: u32) -> bool {
        match self.weak.upgrade() {
            Some(obj) => obj.emit_by_name::<bool>("start-periodic", &[&seconds]),
            None => false,
        }
    }

    fn stop_periodic(&self) {
        if let Some(obj) = self.weak.upgrade() {
            obj.emit_by_name::<bool>("stop-periodic", &[]);
        }
    }

    fn clip_now(&self) -> Option<String> {
        self.weak.upgrade()?.imp().clip_now()
    }

    fn wait_ready(&self, location: &str, timeout: Duration) -> Option<crate::http::ClipReady> {
        self.board.wait(location, timeout)
    }
}

#[glib::object_subclass]
impl ObjectSubclass for PeriodicClipper {
    const NAME: &'static str = "GstPeriodicClipper";
    type Type = super::PeriodicClipper;
    type ParentType = gst::Element;
}

impl ObjectImpl for PeriodicClipper {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(settings::properties);
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => {
                settings.location = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| DEFAULT_LOCATION.into())
            }
            "start-index" => settings.start_index = value.get().unwrap(),
            "max-files" => settings.max_files = value.get().unwrap(),
            "interval" => {
                settings.interval = value.get().unwrap();
                let s = settings.clone();
                drop(settings);
                self.apply_interval(&s);
            }
            "send-keyframe-requests" => settings.send_keyframe_requests = value.get().unwrap(),
            "max-clip-duration" => {
                settings.max_clip_duration = value.get().unwrap();
                let s = settings.clone();
                drop(settings);
                self.apply_interval(&s);
            }
            "http-address" => settings.http_address = value.get().unwrap(),
            "http-token" => settings.http_token = value.get().unwrap(),
            "webhook-url" => settings.webhook_url = value.get().unwrap(),
            "clip-at-markers" => settings.clip_at_markers = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        self.settings.lock().unwrap().get(pspec)
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![
                // Chooses a clip's location; the first handler that returns a
                // string wins, as in splitmuxsink.
                glib::subclass::Signal::builder("format-location-full")
                    .param_types([u32::static_type(), gst::Sample::static_type()])
                    .return_type::<Option<String>>()
                    .accumulator(|_hint, acc, value| {
                        if value.get::<Option<String>>().ok().flatten().is_some() {
                            std::ops::ControlFlow::Break(value.clone())
                        } else {
                            std::ops::ControlFlow::Continue(acc)
                        }
                    })
                    .build(),
                // Writes the media since the last clip, ending at the next
                // keyframe; returns the clip's location.
                glib::subclass::Signal::builder("clip-now")
                    .return_type::<Option<String>>()
                    .action()
                    .class_handler(|args| {
                        let obj = args[0].get::<super::PeriodicClipper>().unwrap();
                        Some(obj.imp().clip_now().to_value())
                    })
                    .build(),
                // Starts periodic clips every `seconds` (> 0).
                glib::subclass::Signal::builder("start-periodic")
                    .param_types([u32::static_type()])
                    .return_type::<bool>()
                    .action()
                    .class_handler(|args| {
                        let obj = args[0].get::<super::PeriodicClipper>().unwrap();
                        let seconds = args[1].get::<u32>().unwrap();
                        if seconds == 0 {
                            return Some(false.to_value());
                        }
                        obj.set_property("interval", seconds);
                        Some(true.to_value())
                    })
                    .build(),
                // Stops periodic clips (on-demand clips keep working).
                glib::subclass::Signal::builder("stop-periodic")
                    .return_type::<bool>()
                    .action()
                    .class_handler(|args| {
                        let obj = args[0].get::<super::PeriodicClipper>().unwrap();
                        obj.set_property("interval", 0u32);
                        Some(true.to_value())
                    })
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.obj().set_element_flags(gst::ElementFlags::SINK);
    }
}

impl GstObjectImpl for PeriodicClipper {}

impl ElementImpl for PeriodicClipper {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Periodic MP4 clipper",
                "Sink/Video/Audio",
                "Writes gapless, keyframe-aligned MP4 clips of a live stream every N seconds and on demand",
                "liveclip developers",
            )
        });
        Some(&*META)
    }

    sink::request_pad_methods!();

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            self.start_services()?;
            self.start()?;
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            self.stop();
        }
        Ok(ret)
    }
}

impl PeriodicClipper {
    /// The HTTP routes and the webhook, when configured.
    fn start_services(&self) -> Result<(), gst::StateChangeError> {
        let settings = self.settings.lock().unwrap().clone();
        if let Some(url) = settings.webhook_url.as_deref().filter(|u| !u.is_empty()) {
            match crate::http::webhook::Webhook::start_for(url, self.obj().upcast_ref()) {
                Ok(h) => *self.webhook.lock().unwrap() = Some(h),
                Err(e) => {
                    gst::element_imp_error!(self, gst::LibraryError::Settings, ("{}", e));
                    return Err(gst::StateChangeError);
                }
            }
        }
        if let Some(address) = settings.http_address.as_deref().filter(|a| !a.is_empty()) {
            let endpoint = crate::http::Endpoint::Clipper {
                name: self.obj().name().to_string(),
                clipper: Arc::new(HttpClipper {
                    weak: self.obj().downgrade(),
                    board: self.board.clone(),
                    name: self.obj().name().to_string(),
                }),
            };
            match crate::http::register(address, settings.http_token.clone(), endpoint) {
                Ok(r) => {
                    gst::info!(CAT, imp = self, "HTTP API on http://{}", r.bound);
                    *self.http.lock().unwrap() = Some(r);
                }
                Err(e) => {
                    gst::element_imp_error!(self, gst::ResourceError::OpenRead, ("{}", e));
                    return Err(gst::StateChangeError);
                }
            }
        }
        Ok(())
    }

    /// Announces a written clip: HTTP waiters and the webhook.
    fn clip_written(&self, ready: crate::http::ClipReady) {
        if let Some(hook) = self.webhook.lock().unwrap().as_ref()
            && !hook.notify(ready.to_json(&self.obj().name()))
        {
            gst::warning!(
                CAT,
                imp = self,
                "webhook queue full: notice for {} dropped",
                ready.location
            );
        }
        self.board.post(ready);
    }

    fn start(&self) -> Result<(), gst::StateChangeError> {
        let settings = self.settings.lock().unwrap().clone();
        // Fresh cutter with the current tracks.
        let tracks = self.pads.restart();
        let mut cutter = Cutter::new(u64::from(settings.interval) * NS, settings.max_pending());
        cutter.set_self_contained(true);
        let tracks = tracks
            .into_iter()
            .map(|(kind, config)| {
                cutter.add_track(kind);
                Track {
                    kind,
                    config,
                    pending: None,
                }
            })
            .collect();
        self.failed.store(false, Ordering::SeqCst);
        let weak = self.obj().downgrade();
        let failed = self.failed.clone();
        let worker = Worker::spawn("periodicclipper-writer", QUEUE_CLIPS, move |rx| {
            writer_loop(weak, rx, failed)
        })
        .map_err(|e| {
            self.http.lock().unwrap().take();
            gst::element_imp_error!(
                self,
                gst::CoreError::Failed,
                ("Could not start the writer thread: {e}")
            );
            gst::StateChangeError
        })?;
        *self.state.lock().unwrap() = State {
            cutter,
            tracks,
            worker: Some(worker),
            ..Default::default()
        };
        Ok(())
    }

    fn stop(&self) {
        // A stop without EOS loses nothing either: the remainder becomes a
        // last clip (without an EOS message: the pipeline is going down).
        let selections = {
            let mut state = self.state.lock().unwrap();
            state.eos_sent = true;
            state.cutter.finish()
        };
        self.dispatch(selections);
        let worker = self.state.lock().unwrap().worker.take();
        if let Some(worker) = worker {
            worker.stop();
        }
        self.http.lock().unwrap().take();
        self.webhook.lock().unwrap().take();
    }

    fn apply_interval(&self, settings: &Settings) {
        let target = {
            let mut state = self.state.lock().unwrap();
            state.cutter.set_interval(u64::from(settings.interval) * NS);
            state.cutter.set_max_pending(settings.max_pending());
            state.requested_for = None;
            state.cutter.pending_start()
        };
        if let Some(start) = target {
            self.request_keyframe_after(start, settings);
        }
    }

    /// Asks upstream for a keyframe one interval after `start`.
    fn request_keyframe_after(&self, start: i64, settings: &Settings) {
        if settings.interval == 0 || !settings.send_keyframe_requests {
            return;
        }
        let at = start.saturating_add(i64::from(settings.interval) * NS as i64);
        {
            let mut state = self.state.lock().unwrap();
            if state.requested_for == Some(start) {
                return;
            }
            state.requested_for = Some(start);
        }
        if at >= 0 {
            self.send_keyframe_request(Some(gst::ClockTime::from_nseconds(at as u64)));
        }
    }

    fn send_keyframe_request(&self, running_time: Option<gst::ClockTime>) {
        crate::media::request_keyframe(self.obj().upcast_ref(), running_time);
    }

    fn clip_now(&self) -> Option<String> {
        let (seq, first) = {
            let mut state = self.state.lock().unwrap();
            let id = state.next_request;
            if let Some(pending) = state.cutter.request_pending() {
                // One waiting request at a time: the same clip answers both.
                let seq = state.cutter.next_seq();
                gst::debug!(CAT, imp = self, "clip request {pending} already waiting");
                return state.promised.get(&seq).map(|p| p.display().to_string());
            }
            if !state.cutter.request_clip(id) {
                return None;
            }
            state.next_request += 1;
            let seq = state.cutter.next_seq();
            let first = state.cutter.pending_first_sample().cloned();
            (seq, first)
        };
        let location = self.location_for(seq, first.as_ref());
        self.state
            .lock()
            .unwrap()
            .promised
            .insert(seq, location.clone());
        // Cut as soon as the encoder can give a keyframe.
        if self.settings.lock().unwrap().send_keyframe_requests {
            self.send_keyframe_request(None);
        }
        Some(location.display().to_string())
    }

    fn location_for(&self, seq: u64, first: Option<&Sample>) -> PathBuf {
        let settings = self.settings.lock().unwrap().clone();
        let index = u64::from(settings.start_index) + seq;
        let sample = first.map(|s| {
            let mut buffer = gst::Buffer::new();
            {
                let b = buffer.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_nseconds(s.pts.max(0) as u64));
                b.set_dts(gst::ClockTime::from_nseconds(s.dts.max(0) as u64));
            }
            gst::Sample::builder().buffer(&buffer).build()
        });
        let sample = sample.unwrap_or_else(|| gst::Sample::builder().build());
        let chosen = self
            .obj()
            .emit_by_name::<Option<String>>("format-location-full", &[&(index as u32), &sample]);
        let name = match chosen {
            Some(name) => name,
            None => format_index(&settings.location, index).unwrap_or_else(|e| {
                gst::warning!(CAT, imp = self, "{e}");
                format!("clip-{index:05}.mp4")
            }),
        };
        PathBuf::from(name)
    }

    /// Turns selections into jobs and hands them to the writer, in order.
    fn dispatch(&self, selections: Vec<Selection>) {
        let _order = self.dispatch_lock.lock().unwrap();
        let jobs = {
            let mut state = self.state.lock().unwrap();
            self.prepare(&mut state, selections)
        };
        self.send_jobs(jobs);
    }

    /// Builds jobs under the state lock; locations that need the
    /// `format-location-full` signal are chosen later, without the lock.
    fn prepare(&self, state: &mut State, selections: Vec<Selection>) -> Vec<Command> {
        let mut out = Vec::new();
        let origin = state.cutter.origin().unwrap_or(0);
        let start_index = u64::from(self.settings.lock().unwrap().start_index);
        for sel in selections {
            let mut tracks = Vec::new();
            let mut frames = Vec::new();
            for t in sel.tracks {
                let Some((kind, Some(config))) = state
                    .tracks
                    .get(t.track)
                    .map(|t| (t.kind, t.config.clone()))
                else {
                    continue;
                };
                frames.push((kind, t.samples.len()));
                tracks.push(ClipTrack {
                    config,
                    samples: t.samples,
                    next_dts: t.next_dts,
                });
            }
            // Video first, then audio, whatever the pad request order.
            tracks.sort_by_key(|t| t.config.kind != TrackKind::Video);
            frames.sort_by_key(|f| f.0 != TrackKind::Video);
            let utc = state
                .utc_origin
                .map(|(rt, utc)| utc + chrono::Duration::nanoseconds(sel.start.saturating_sub(rt)));
            let end = match sel.trigger {
                Trigger::Eos | Trigger::CapsChange | Trigger::Flush => None,
                _ => Some(sel.end),
            };
            out.push(Command::Write(Box::new(Job {
                clip: Mp4Clip {
                    tracks,
                    start: sel.start,
                    end,
                    creation_time: utc,
                    exact: None,
                },
                seq: sel.seq,
                location: state.promised.remove(&sel.seq),
                index: (start_index + sel.seq) as u32,
                trigger: sel.trigger,
                start_running_time: sel.start,
                recording_time: sel.start - origin,
                duration: sel.end - sel.start,
                utc,
                frames,
            })));
        }
        if state.cutter.is_done() && !state.eos_sent {
            state.eos_sent = true;
            out.push(Command::Eos {
                clips: state.cutter.next_seq(),
            });
        }
        out
    }

    fn send_jobs(&self, mut jobs: Vec<Command>) {
        if jobs.is_empty() {
            return;
        }
        for cmd in &mut jobs {
            if let Command::Write(job) = cmd
                && job.location.is_none()
            {
                let first = job.clip.tracks.first().and_then(|t| t.samples.first());
                job.location = Some(self.location_for(job.seq, first));
            }
        }
        let tx = self
            .state
            .lock()
            .unwrap()
            .worker
            .as_ref()
            .map(Worker::sender);
        crate::media::send_all(tx, jobs);
    }
}

impl sink::EncodedSink for PeriodicClipper {
    const FORMAT: &'static str = "MP4";

    fn sink_pads(&self) -> &SinkPads {
        &self.pads
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    fn add_track(&self, kind: TrackKind) -> usize {
        let mut state = self.state.lock().unwrap();
        state.tracks.push(Track {
            kind,
            config: None,
            pending: None,
        });
        state.cutter.add_track(kind)
    }

    fn set_config(&self, _pad: &gst::Pad, track: usize, config: Arc<CodecConfig>) {
        let mut state = self.state.lock().unwrap();
        if let Some(t) = state.tracks.get_mut(track) {
            if t.config.is_none() {
                t.config = Some(config);
            } else {
                t.pending = Some(config);
            }
        }
    }

    fn push(
        &self,
        pad: &gst::Pad,
        track: usize,
        sample: Sample,
        _reference: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let now = Instant::now();
        let mut notices = Vec::new();
        let order = self.dispatch_lock.lock().unwrap();
        let (jobs, new_start) = {
            let mut state = self.state.lock().unwrap();
            let mut jobs = Vec::new();
            // A new configuration takes effect at its first keyframe: the
            // media held before it becomes a clip with the old one.
            let pending = state
                .tracks
                .get_mut(track)
                .and_then(|t| t.pending.take_if(|_| sample.keyframe));
            if let Some(new) = pending {
                let changed = state.tracks[track]
                    .config
                    .as_ref()
                    .is_some_and(|old| !old.same_entry(&new));
                if changed {
                    gst::info!(
                        CAT,
                        obj = pad,
                        "codec configuration changed: ending the current clip"
                    );
                    let held = state.cutter.flush(Trigger::CapsChange);
                    jobs = self.prepare(&mut state, held);
                }
                state.tracks[track].config = Some(new);
            }
            if state.utc_origin.is_none() {
                state.utc_origin = Some((sample.pts, chrono::Utc::now()));
            }
            let before = state.cutter.pending_start();
            let selections = state.cutter.push(track, sample, now, &mut notices);
            let after = state.cutter.pending_start();
            jobs.extend(self.prepare(&mut state, selections));
            (jobs, after.filter(|_| after != before))
        };
        self.send_jobs(jobs);
        drop(order);
        sink::report(self, notices);
        if let Some(start) = new_start {
            let settings = self.settings.lock().unwrap().clone();
            self.request_keyframe_after(start, &settings);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn end_track(&self, track: usize, _eos: bool) {
        let selections = self
            .state
            .lock()
            .unwrap()
            .cutter
            .set_eos(track, Instant::now());
        self.dispatch(selections);
    }

    fn custom_event(&self, pad: &gst::Pad, _track: usize, event: &gst::Event) {
        if !self.settings.lock().unwrap().clip_at_markers
            || !crate::hls::markers::is_marker_event(event)
        {
            return;
        }
        // The event comes on each pad: the first asks for the clip, the
        // others find it waiting.
        match self.clip_now() {
            Some(location) => {
                gst::info!(
                    CAT,
                    obj = pad,
                    "marker: clipping up to here into {location}"
                )
            }
            None => gst::info!(CAT, obj = pad, "marker: nothing to clip yet"),
        }
    }

    fn flush(&self, track: usize) {
        // Running time starts again after a flush: what was held becomes a
        // clip of its own (when the leading track flushes), and the next
        // starts at the next keyframe.
        if !self.pads.leads(track) {
            return;
        }
        let selections = self.state.lock().unwrap().cutter.flush(Trigger::Flush);
        self.dispatch(selections);
    }
}
