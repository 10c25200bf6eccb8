// SPDX-License-Identifier: MPL-2.0
//! The element: request pads ([`crate::media::sink`]) into the recording
//! planner ([`crate::hls::planner::Planner`]), whose commands a writer
//! thread carries out on the [`Recorder`] (`writer`); clip requests go to the
//! [`ClipService`] (`actions`).

mod actions;
mod settings;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use chrono::Utc;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::core::{Sample, TrackKind};
use crate::hls::clip::ClipError;
use crate::hls::index::LiveIndex;
use crate::hls::ladder::RenditionSpec;
use crate::hls::markers::Source;
use crate::hls::planner::{Command, Now, Plan, Planner, PlannerConfig, RecordingTime, RunningTime};
use crate::hls::recorder::Recorder;
use crate::hls::service::ClipService;
use crate::media::{SinkPads, Worker, sink};
use crate::mp4::CodecConfig;
use settings::Settings;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "hlsclipsink",
        gst::DebugColorFlags::empty(),
        Some("CMAF HLS recording for instant clips"),
    )
});

/// Fragments waiting for the disk before the streaming threads wait too.
const QUEUE_FRAGMENTS: usize = 256;
/// Bytes of media waiting for the disk before the streaming threads wait
/// too: what bounds an element's memory when its disk stalls (256 GOPs of
/// 6 Mb/s 2 s GOPs would hold 384 MB; this is about 90 s of such a stream).
const QUEUE_BYTES: usize = 64 << 20;

/// The media bytes a command holds.
fn weigh(command: &Command) -> usize {
    match command {
        Command::Append(fragment) => fragment
            .tracks
            .iter()
            .flat_map(|t| &t.samples)
            .map(|s| s.data.len())
            .sum(),
        _ => 0,
    }
}

struct State {
    planner: Planner,
    worker: Option<Worker<Command>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            planner: Planner::new(PlannerConfig::default(), &[]),
            worker: None,
        }
    }
}

#[derive(Default)]
pub struct HlsClipSink {
    settings: Mutex<Settings>,
    pads: SinkPads,
    state: Mutex<State>,
    media_id: Arc<Mutex<Option<String>>>,
    failed: Arc<AtomicBool>,
    dispatch_lock: Mutex<()>,
    /// The session being recorded, as clip requests see it.
    live: Arc<LiveIndex>,
    /// Clip requests (made when first needed, renewed at each start).
    service: Mutex<Option<Arc<ClipService>>>,
    /// Routes on the HTTP listener while running.
    http: Mutex<Option<crate::http::Registration>>,
    /// Where automatic marker clips are announced, while running.
    webhook: Mutex<Option<crate::http::webhook::Webhook>>,
}

#[glib::object_subclass]
impl ObjectSubclass for HlsClipSink {
    const NAME: &'static str = "GstHlsClipSink";
    type Type = super::HlsClipSink;
    type ParentType = gst::Element;
    type Interfaces = (gst::ChildProxy,);
}

/// The request pads as children, so that gst-launch can set their
/// properties: `hlsclipsink name=h video_0::rendition=1080p`.
impl ChildProxyImpl for HlsClipSink {
    fn child_by_index(&self, index: u32) -> Option<glib::Object> {
        self.obj()
            .sink_pads()
            .into_iter()
            .nth(index as usize)
            .map(|p| p.upcast())
    }

    fn children_count(&self) -> u32 {
        self.obj().num_sink_pads() as u32
    }

    fn child_by_name(&self, name: &str) -> Option<glib::Object> {
        self.obj().static_pad(name).map(|p| p.upcast())
    }
}

impl ObjectImpl for HlsClipSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(settings::properties);
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if pspec.name() != "clip-location" {
            // Made again from the new settings when next needed (with
            // the writer's queue, which the old one lets go).
            if let Some(old) = self.service.lock().unwrap().take() {
                old.set_writer(None);
            }
        }
        self.settings.lock().unwrap().set(value, pspec);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "stream-id" => self.stream_id().to_value(),
            "media-id" => self.media_id.lock().unwrap().to_value(),
            _ => self.settings.lock().unwrap().get(pspec),
        }
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        /// An action signal taking (media-id or NULL, text) and returning
        /// what `f` makes of them.
        fn action<R: StaticType>(
            name: &str,
            f: fn(&HlsClipSink, Option<String>, String) -> glib::Value,
        ) -> glib::subclass::Signal {
            glib::subclass::Signal::builder(name)
                .param_types([String::static_type(), String::static_type()])
                .return_type::<R>()
                .action()
                .class_handler(move |args| {
                    let obj = args[0].get::<super::HlsClipSink>().ok()?;
                    let text = |v: &glib::Value| v.get::<Option<String>>().ok().flatten();
                    Some(f(
                        obj.imp(),
                        text(&args[1]),
                        text(&args[2]).unwrap_or_default(),
                    ))
                })
                .build()
        }
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![
                // (media-id or NULL for the current session, duration such as
                // "5m") -> GstStructure hlsclipsink-preview: manifest,
                // preview-start-seconds, stream-media-id; or error, status.
                action::<gst::Structure>("get-preview-manifest", |imp, id, d| {
                    imp.preview(id, d).to_value()
                }),
                // (media-id or NULL, query such as "time=600s&duration=30s")
                // -> GstStructure hlsclipsink-clip-manifest: manifest,
                // media-id, start, duration; or error, status.
                action::<gst::Structure>("get-clip-manifest", |imp, id, q| {
                    imp.clip_manifest(id, q).to_value()
                }),
                // (media-id or NULL, query such as
                // "time=600s&duration=30s&accuracy=frame&location=x.mp4")
                // -> request id; the result comes as an hlsclipsink-clip-done
                // element message.
                action::<u64>("clip-mp4", |imp, id, q| imp.clip_mp4(id, q).to_value()),
                // (media-id or NULL, query such as
                // "time=600s&width=320&fit_mode=crop&format=png") ->
                // GstStructure hlsclipsink-thumbnail: image (GstBuffer),
                // content-type, media-id, time, frame-time, width, height;
                // or error, status, kind. Blocks while it decodes.
                action::<gst::Structure>("get-thumbnail", |imp, id, q| {
                    imp.thumbnail(id, q).to_value()
                }),
                // (id or NULL, class or NULL, duration in seconds (0: a
                // point), attributes GstStructure or NULL: its fields are
                // X- attributes, except time, ago and planned-duration) ->
                // GstStructure hlsclipsink-mark: media-id, id, class, start,
                // duration, utc, source, json; or error, status, kind.
                glib::subclass::Signal::builder("mark")
                    .param_types([
                        String::static_type(),
                        String::static_type(),
                        f64::static_type(),
                        gst::Structure::static_type(),
                    ])
                    .return_type::<gst::Structure>()
                    .action()
                    .class_handler(|args| {
                        let obj = args[0].get::<super::HlsClipSink>().ok()?;
                        let text = |v: &glib::Value| v.get::<Option<String>>().ok().flatten();
                        let duration = args[3].get::<f64>().unwrap_or(0.0);
                        let attributes = args[4].get::<Option<gst::Structure>>().ok().flatten();
                        Some(
                            obj.imp()
                                .mark(text(&args[1]), text(&args[2]), duration, attributes)
                                .to_value(),
                        )
                    })
                    .build(),
                // (media-id or NULL) -> GstStructure hlsclipsink-markers:
                // media-id, live, count, json (as GET /{id}/markers); or
                // error, status, kind.
                glib::subclass::Signal::builder("get-markers")
                    .param_types([String::static_type()])
                    .return_type::<gst::Structure>()
                    .action()
                    .class_handler(|args| {
                        let obj = args[0].get::<super::HlsClipSink>().ok()?;
                        let id = args[1].get::<Option<String>>().ok().flatten();
                        Some(obj.imp().markers(id).to_value())
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

impl GstObjectImpl for HlsClipSink {}

impl ElementImpl for HlsClipSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "HLS clip sink",
                "Sink/Muxer/Video/Audio",
                "Records live media as crash-safe CMAF HLS with live and replay playlists per session",
                "liveclip developers",
            )
        });
        Some(&*META)
    }

    sink::request_pad_methods!(|| crate::media::rendition_pad_templates(
        crate::hlsclipsink::RenditionPad::static_type()
    ));

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            self.start().map_err(|_| gst::StateChangeError)?;
        }
        // Going down, the pads stop first (no streaming thread is left in
        // the element), then the session ends with what was received.
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            self.stop();
        }
        Ok(ret)
    }
}

impl HlsClipSink {
    /// The `stream-id` setting, else the element's name.
    pub(super) fn stream_id(&self) -> String {
        let id = self.settings.lock().unwrap().stream_id.clone();
        id.unwrap_or_else(|| self.obj().name().to_string())
    }

    fn start(&self) -> Result<(), ()> {
        let settings = self.settings.lock().unwrap().clone();
        let stream_id = self.stream_id();
        if !crate::hls::sessions::is_safe_id(&stream_id) {
            gst::element_imp_error!(
                self,
                gst::LibraryError::Settings,
                ("stream-id {stream_id:?} is not usable as a directory name (letters, digits, '-', '_', '.')")
            );
            return Err(());
        }
        if let Err(e) = crate::frames::export::parse_profiles(
            settings.export_profiles.as_deref().unwrap_or_default(),
        ) {
            gst::element_imp_error!(self, gst::LibraryError::Settings, ("export-profiles: {e}"));
            return Err(());
        }
        let location = PathBuf::from(&settings.location);
        let cfg = settings.recorder_config();
        let tracks = self.pads.restart();
        let layout = match self.layout(&tracks) {
            Ok(l) => l,
            Err(e) => {
                gst::element_imp_error!(self, gst::LibraryError::Settings, ("{e}"));
                return Err(());
            }
        };
        let service = self.new_service(&settings, &stream_id);
        *self.service.lock().unwrap() = Some(service.clone());
        if let Some(address) = settings.http_address.as_deref().filter(|a| !a.is_empty()) {
            let endpoint = crate::http::Endpoint::Stream {
                stream_id: stream_id.clone(),
                service,
                web_root: settings.http_web_root.clone().map(PathBuf::from),
            };
            match crate::http::register(address, settings.http_token.clone(), endpoint) {
                Ok(r) => {
                    gst::info!(
                        CAT,
                        imp = self,
                        "HTTP API on http://{}/{stream_id}/",
                        r.bound
                    );
                    *self.http.lock().unwrap() = Some(r);
                }
                Err(e) => {
                    gst::element_imp_error!(self, gst::ResourceError::OpenRead, ("{}", e));
                    return Err(());
                }
            }
        }
        if let Some(url) = settings.webhook_url.as_deref().filter(|u| !u.is_empty()) {
            match crate::http::webhook::Webhook::start_for(url, self.obj().upcast_ref()) {
                Ok(h) => *self.webhook.lock().unwrap() = Some(h),
                Err(e) => {
                    self.http.lock().unwrap().take();
                    gst::element_imp_error!(self, gst::LibraryError::Settings, ("{}", e));
                    return Err(());
                }
            }
        }
        let (recorder, report) =
            match Recorder::start(&location, &stream_id, cfg, layout, Utc::now()) {
                Ok(r) => r,
                Err(e) => {
                    self.http.lock().unwrap().take();
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::OpenWrite,
                        (
                            "Could not open the recording directory {}: {e}",
                            location.join(&stream_id).display()
                        )
                    );
                    return Err(());
                }
            };
        for closed in &report.closed {
            gst::info!(
                CAT,
                imp = self,
                "closed session {closed} that a crash left open"
            );
        }
        if report.truncated_bytes > 0 {
            gst::warning!(
                CAT,
                imp = self,
                "cut {} torn bytes off the last segment of a crashed session",
                report.truncated_bytes
            );
        }
        *self.media_id.lock().unwrap() = Some(report.media_id.clone());
        let session_dir = recorder.session_dir().to_path_buf();
        let mut recorder = recorder;
        recorder.publish_to(self.live.clone());

        let kinds: Vec<TrackKind> = tracks.iter().map(|(kind, _)| *kind).collect();
        let base = RecordingTime(recorder.end() as i64);
        let mut planner = Planner::new(settings.planner_config(base), &kinds);
        for (track, (_, config)) in tracks.into_iter().enumerate() {
            if let Some(config) = config {
                planner.set_config(track, config);
            }
        }
        self.failed.store(false, Ordering::SeqCst);
        let weak = self.obj().downgrade();
        let failed = self.failed.clone();
        let worker = Worker::spawn_bounded(
            "hlsclipsink-writer",
            QUEUE_FRAGMENTS,
            QUEUE_BYTES,
            weigh,
            move |rx| writer::run(weak, recorder, rx, failed),
        );
        let worker = match worker {
            Ok(w) => w,
            Err(e) => {
                self.http.lock().unwrap().take();
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Failed,
                    ("Could not start the writer thread: {e}")
                );
                return Err(());
            }
        };
        if let Some(service) = self.service.lock().unwrap().as_ref() {
            service.set_writer(Some(worker.sender()));
            let weak = self.obj().downgrade();
            let stream = stream_id.clone();
            service.set_export_notify(Some(Arc::new(move |mut notice| {
                if let Some(obj) = weak.upgrade() {
                    notice["stream_id"] = stream.clone().into();
                    obj.imp().notify(notice);
                }
            })));
        }
        *self.state.lock().unwrap() = State {
            planner,
            worker: Some(worker),
        };

        let s = gst::Structure::builder("hlsclipsink-session-started")
            .field("media-id", report.media_id.as_str())
            .field("stream-id", stream_id.as_str())
            .field("location", session_dir.display().to_string())
            .field("resumed", report.resumed)
            .build();
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        Ok(())
    }

    fn stop(&self) {
        // A stop without EOS still ends the session cleanly: what was
        // received is written, the playlists get their ENDLIST.
        self.plan(|planner, now| planner.finish(now));
        // The writer's queue closes only when no one holds a sender.
        if let Some(service) = self.service.lock().unwrap().as_ref() {
            service.set_writer(None);
        }
        let worker = self.state.lock().unwrap().worker.take();
        if let Some(worker) = worker {
            worker.stop();
        }
        // The session is on disk now: requests read it from there.
        self.live.update(Vec::clear);
        self.http.lock().unwrap().take();
        self.webhook.lock().unwrap().take();
    }

    /// The renditions the pads make: one (every track in the session's
    /// directory) for at most one video and one audio pad, else a ladder
    /// of each video pad (the first leads) and each audio pad.
    fn layout(
        &self,
        tracks: &[(TrackKind, Option<Arc<CodecConfig>>)],
    ) -> Result<Vec<RenditionSpec>, String> {
        let count = |k| tracks.iter().filter(|(kind, _)| *kind == k).count();
        if count(TrackKind::Video) <= 1 && count(TrackKind::Audio) <= 1 {
            return Ok(RenditionSpec::single(tracks.len()));
        }
        let names = self.pads.names();
        let mut layout = Vec::new();
        for kind in [TrackKind::Video, TrackKind::Audio] {
            for (track, (k, _)) in tracks.iter().enumerate() {
                if *k != kind {
                    continue;
                }
                let pad = names
                    .get(track)
                    .and_then(|n| self.obj().static_pad(n))
                    .and_then(|p| p.downcast::<crate::hlsclipsink::RenditionPad>().ok())
                    .ok_or_else(|| format!("no pad for track {track}"))?;
                let name = pad.rendition();
                if !crate::hls::sessions::is_safe_id(&name) {
                    return Err(format!(
                        "rendition {name:?} of pad {} is not usable as a directory name \
                         (letters, digits, '-', '_', '.')",
                        pad.name()
                    ));
                }
                if layout.iter().any(|r: &RenditionSpec| r.name == name) {
                    return Err(format!("two pads name the rendition {name:?}"));
                }
                layout.push(RenditionSpec {
                    name,
                    tracks: vec![track],
                    bandwidth: pad.bandwidth(),
                    language: pad.language(),
                });
            }
        }
        Ok(layout)
    }

    fn new_service(&self, settings: &Settings, stream_id: &str) -> Arc<ClipService> {
        let service = ClipService::new(
            PathBuf::from(&settings.location).join(stream_id),
            self.live.clone(),
            settings.limits(),
        );
        // A bad list is an error at start; until then the built-in ones.
        if let Ok(profiles) = crate::frames::export::parse_profiles(
            settings.export_profiles.as_deref().unwrap_or_default(),
        ) {
            service.set_profiles(profiles);
        }
        service
    }

    /// The clip service; made from the settings when the element has not
    /// started (clips of stored sessions work in any state).
    fn service(&self) -> Result<Arc<ClipService>, ClipError> {
        if let Some(s) = self.service.lock().unwrap().as_ref() {
            return Ok(s.clone());
        }
        let settings = self.settings.lock().unwrap().clone();
        let stream_id = self.stream_id();
        if !crate::hls::sessions::is_safe_id(&stream_id) {
            return Err(ClipError::NotFound(format!("no stream {stream_id:?}")));
        }
        let service = self.new_service(&settings, &stream_id);
        let writer = self
            .state
            .lock()
            .unwrap()
            .worker
            .as_ref()
            .map(Worker::sender);
        service.set_writer(writer);
        *self.service.lock().unwrap() = Some(service.clone());
        Ok(service)
    }

    /// The clocks now: the instant, the wall clock and the pipeline's
    /// running time.
    fn now(&self) -> Now {
        let obj = self.obj();
        let running_time = obj
            .clock()
            .zip(obj.base_time())
            .map(|(c, b)| RunningTime(c.time().nseconds() as i64 - b.nseconds() as i64));
        Now {
            running_time,
            ..Now::system()
        }
    }

    /// Plans with the planner, then carries out the plan: commands to the
    /// writer (in planner order: one thread at a time), notices, a
    /// keyframe request.
    fn plan(&self, f: impl FnOnce(&mut Planner, &Now) -> Plan) {
        let now = self.now();
        let _order = self.dispatch_lock.lock().unwrap();
        let (plan, tx) = {
            let mut state = self.state.lock().unwrap();
            let plan = f(&mut state.planner, &now);
            (plan, state.worker.as_ref().map(Worker::sender))
        };
        sink::report(self, plan.notices);
        if plan.open_gop {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                [
                    "the H.264 video's keyframes are open-GOP I pictures, not IDR: ffmpeg, \
                     GStreamer and MP4 clips start at them, but browsers' Media Source players \
                     (hls.js, Shaka, video.js in Chromium) can start a clip manifest or preview \
                     only at an IDR; for those, have the encoder make IDR keyframes (x264: no \
                     open-gop)"
                ]
            );
        }
        crate::media::send_all(tx, plan.commands);
        let send = self.settings.lock().unwrap().send_keyframe_requests;
        if let Some(at) = plan.keyframe_at.filter(|_| send) {
            let at = gst::ClockTime::from_nseconds(at.0.max(0) as u64);
            crate::media::request_keyframe(self.obj().upcast_ref(), Some(at));
        }
    }
}

impl HlsClipSink {
    /// A SCTE-35 cue from tsdemux: a marker at its splice point (see
    /// [`crate::hls::markers::Marker::from_splice`]); a cue that can't be
    /// used is a warning.
    fn splice(&self, pad: &gst::Pad, cue: Result<crate::media::scte35::Scte35Event, String>) {
        let cue = match cue {
            Ok(c) => c,
            Err(e) => {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    ("{}: a SCTE-35 cue was left out: {e}", pad.name())
                );
                return;
            }
        };
        if matches!(cue.info.command, crate::core::scte35::SpliceCommand::Null) {
            // Heartbeats.
            return;
        }
        let rt = cue.running_time.map(|t| RunningTime(t.nseconds() as i64));
        // Placed by the planner (the start is filled in there).
        let (marker, out) = crate::hls::markers::Marker::from_splice(&cue.info, 0);
        self.plan(|planner, _| planner.mark(rt, marker, Some(out)));
    }
}

impl sink::EncodedSink for HlsClipSink {
    const FORMAT: &'static str = "CMAF";

    fn sink_pads(&self) -> &SinkPads {
        &self.pads
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    fn add_track(&self, kind: TrackKind) -> usize {
        self.state.lock().unwrap().planner.add_track(kind)
    }

    fn set_config(&self, _pad: &gst::Pad, track: usize, config: Arc<CodecConfig>) {
        self.state.lock().unwrap().planner.set_config(track, config);
    }

    fn push(
        &self,
        _pad: &gst::Pad,
        track: usize,
        sample: Sample,
        reference: Option<chrono::DateTime<Utc>>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.plan(|planner, now| planner.push(track, sample, reference, now));
        Ok(gst::FlowSuccess::Ok)
    }

    fn end_track(&self, track: usize, eos: bool) {
        self.plan(|planner, now| planner.end_track(track, eos, now));
    }

    fn flush(&self, track: usize) {
        self.plan(|planner, now| planner.flush(track, now));
    }

    fn custom_event(&self, pad: &gst::Pad, _track: usize, event: &gst::Event) {
        if let Some(cue) = crate::media::scte35::from_event(event) {
            self.splice(pad, cue);
            return;
        }
        let Some(s) = event.structure() else { return };
        if s.name() != crate::hls::markers::EVENT {
            return;
        }
        let input = actions::mark_fields(s, &["running-time", "time", "ago"]);
        let rt = s
            .get::<gst::ClockTime>("running-time")
            .ok()
            .or_else(|| {
                s.get::<u64>("running-time")
                    .ok()
                    .map(gst::ClockTime::from_nseconds)
            })
            .map(|t| RunningTime(t.nseconds() as i64));
        self.plan(|planner, _| {
            let start = planner.recording_time_of(rt).map_or(0, RecordingTime::ns);
            let marker = input.and_then(|i| {
                i.to_marker(start, Source::Event, || {
                    format!("event-{}", start / 1_000_000)
                })
            });
            match marker {
                Ok(marker) => planner.mark(rt, marker, None),
                Err(e) => {
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Format,
                        (
                            "{}: a {} event was left out: {e}",
                            pad.name(),
                            crate::hls::markers::EVENT
                        )
                    );
                    Plan::default()
                }
            }
        });
    }
}
