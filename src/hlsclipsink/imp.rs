// SPDX-License-Identifier: MPL-2.0
//! The element: request pads ([`crate::media::sink`]) into the recording
//! planner ([`crate::hls::planner::Planner`]), whose commands a writer
//! thread carries out on the [`Recorder`] (`writer`); clip requests go to the
//! [`ClipService`] (`actions`).

mod actions;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use chrono::Utc;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::PdtSource;
use crate::core::{Sample, TrackKind};
use crate::hls::clip::ClipError;
use crate::hls::index::LiveIndex;
use crate::hls::planner::{
    Command, Now, PdtClock, Plan, Planner, PlannerConfig, RecordingTime, RunningTime,
};
use crate::hls::recorder::{Recorder, RecorderConfig};
use crate::hls::service::{ClipService, Limits};
use crate::media::{SinkPads, Worker, sink};
use crate::mp4::CodecConfig;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "hlsclipsink",
        gst::DebugColorFlags::empty(),
        Some("CMAF HLS recording for instant clips"),
    )
});

const DEFAULT_LOCATION: &str = "recordings";
const DEFAULT_TARGET_DURATION: u32 = 6;
const DEFAULT_PLAYLIST_LENGTH: u32 = 5;
const DEFAULT_RECONNECT_WINDOW: u32 = 60;
const DEFAULT_MAX_CLIP_DURATION: u32 = 60;
const DEFAULT_MAX_PREVIEW_DURATION: u32 = 300;
const DEFAULT_MAX_CONCURRENT_CLIPS: u32 = 2;
/// Clip requests that may wait for a worker, per worker.
const QUEUED_CLIPS_PER_WORKER: usize = 16;
/// Fragments waiting for the disk before the streaming threads wait too.
const QUEUE_FRAGMENTS: usize = 256;
const NS: i64 = crate::core::NS as i64;

#[derive(Debug, Clone)]
struct Settings {
    location: String,
    stream_id: Option<String>,
    target_duration: u32,
    playlist_length: u32,
    enable_pdt: bool,
    pdt_source: PdtSource,
    send_keyframe_requests: bool,
    reconnect_window: u32,
    max_age: u64,
    max_bytes: u64,
    max_clip_duration: u32,
    max_preview_duration: u32,
    max_concurrent_clips: u32,
    clip_location: Option<String>,
    http_address: Option<String>,
    http_token: Option<String>,
    http_web_root: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            location: DEFAULT_LOCATION.into(),
            stream_id: None,
            target_duration: DEFAULT_TARGET_DURATION,
            playlist_length: DEFAULT_PLAYLIST_LENGTH,
            enable_pdt: true,
            pdt_source: PdtSource::PipelineClock,
            send_keyframe_requests: true,
            reconnect_window: DEFAULT_RECONNECT_WINDOW,
            max_age: 0,
            max_bytes: 0,
            max_clip_duration: DEFAULT_MAX_CLIP_DURATION,
            max_preview_duration: DEFAULT_MAX_PREVIEW_DURATION,
            max_concurrent_clips: DEFAULT_MAX_CONCURRENT_CLIPS,
            clip_location: None,
            http_address: None,
            http_token: None,
            http_web_root: None,
        }
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
}

#[glib::object_subclass]
impl ObjectSubclass for HlsClipSink {
    const NAME: &'static str = "GstHlsClipSink";
    type Type = super::HlsClipSink;
    type ParentType = gst::Element;
}

impl ObjectImpl for HlsClipSink {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb("Directory under which {stream-id}/{media-id}/ sessions are recorded")
                    .default_value(Some(DEFAULT_LOCATION))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("stream-id")
                    .nick("Stream ID")
                    .blurb("Name of the input (a path component); defaults to the element's name")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("media-id")
                    .nick("Media ID")
                    .blurb("The current session's id (read-only; set when the element starts)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("target-duration")
                    .nick("Target duration")
                    .blurb("Segment duration to aim for, in seconds (segments end at keyframes)")
                    .minimum(1)
                    .maximum(3600)
                    .default_value(DEFAULT_TARGET_DURATION)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("playlist-length")
                    .nick("Playlist length")
                    .blurb("Segments in the live playlist's sliding window (0 = all)")
                    .default_value(DEFAULT_PLAYLIST_LENGTH)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("enable-program-date-time")
                    .nick("Program date time")
                    .blurb("Write EXT-X-PROGRAM-DATE-TIME for every segment")
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("program-date-time-source", PdtSource::PipelineClock)
                    .nick("Program date time source")
                    .blurb("Where the wall clock of segments comes from")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("send-keyframe-requests")
                    .nick("Send keyframe requests")
                    .blurb("Ask upstream for a keyframe at each segment boundary")
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("reconnect-window")
                    .nick("Reconnect window")
                    .blurb("A restart within this many seconds of the last recording continues its session (0 = always a new session)")
                    .maximum(7 * 24 * 3600)
                    .default_value(DEFAULT_RECONNECT_WINDOW)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("max-age")
                    .nick("Max age")
                    .blurb("Delete sessions, then segments, older than this many seconds (0 = keep all)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("max-bytes")
                    .nick("Max bytes")
                    .blurb("Delete the oldest sessions, then segments, beyond this many bytes per stream (0 = keep all)")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-clip-duration")
                    .nick("Max clip duration")
                    .blurb("Longest clip (MP4 or clip manifest) a request may ask for, in seconds")
                    .minimum(1)
                    .maximum(24 * 3600)
                    .default_value(DEFAULT_MAX_CLIP_DURATION)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-preview-duration")
                    .nick("Max preview duration")
                    .blurb("Longest preview manifest a request may ask for, in seconds")
                    .minimum(1)
                    .maximum(7 * 24 * 3600)
                    .default_value(DEFAULT_MAX_PREVIEW_DURATION)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-concurrent-clips")
                    .nick("Max concurrent clips")
                    .blurb("MP4 clips made at the same time, from the clip-mp4 signal and the HTTP API together; up to 16 per worker more wait, further requests are refused as busy")
                    .minimum(1)
                    .maximum(64)
                    .default_value(DEFAULT_MAX_CONCURRENT_CLIPS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("clip-location")
                    .nick("Clip location")
                    .blurb("File pattern of MP4 clips made by clip-mp4 without a location, with %d for the request id (default: {location}/clips/{stream-id}-%05d.mp4)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("http-address")
                    .nick("HTTP address")
                    .blurb("Serve the HTTP API (playlists, preview and clip manifests, MP4 clips, sessions, media) on this address, e.g. 127.0.0.1:8080; unset = no server. Elements naming the same address share one listener")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("http-token")
                    .nick("HTTP token")
                    .blurb("When set, every HTTP request for this stream needs it (Authorization: Bearer <token> or token=<token>)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("http-web-root")
                    .nick("HTTP web root")
                    .blurb("A directory of static files (the Live Replay page) served at /ui/ on the HTTP listener; a browser opening / is sent there")
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if pspec.name() != "clip-location" {
            // Made again from the new settings when next needed.
            *self.service.lock().unwrap() = None;
        }
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => {
                s.location = value
                    .get::<Option<String>>()
                    .unwrap()
                    .unwrap_or_else(|| DEFAULT_LOCATION.into())
            }
            "stream-id" => s.stream_id = value.get().unwrap(),
            "target-duration" => s.target_duration = value.get().unwrap(),
            "playlist-length" => s.playlist_length = value.get().unwrap(),
            "enable-program-date-time" => s.enable_pdt = value.get().unwrap(),
            "program-date-time-source" => s.pdt_source = value.get().unwrap(),
            "send-keyframe-requests" => s.send_keyframe_requests = value.get().unwrap(),
            "reconnect-window" => s.reconnect_window = value.get().unwrap(),
            "max-age" => s.max_age = value.get().unwrap(),
            "max-bytes" => s.max_bytes = value.get().unwrap(),
            "max-clip-duration" => s.max_clip_duration = value.get().unwrap(),
            "max-preview-duration" => s.max_preview_duration = value.get().unwrap(),
            "max-concurrent-clips" => s.max_concurrent_clips = value.get().unwrap(),
            "clip-location" => s.clip_location = value.get().unwrap(),
            "http-address" => s.http_address = value.get().unwrap(),
            "http-token" => s.http_token = value.get().unwrap(),
            "http-web-root" => s.http_web_root = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => s.location.to_value(),
            "stream-id" => s
                .stream_id
                .clone()
                .unwrap_or_else(|| self.obj().name().to_string())
                .to_value(),
            "media-id" => self.media_id.lock().unwrap().to_value(),
            "target-duration" => s.target_duration.to_value(),
            "playlist-length" => s.playlist_length.to_value(),
            "enable-program-date-time" => s.enable_pdt.to_value(),
            "program-date-time-source" => s.pdt_source.to_value(),
            "send-keyframe-requests" => s.send_keyframe_requests.to_value(),
            "reconnect-window" => s.reconnect_window.to_value(),
            "max-age" => s.max_age.to_value(),
            "max-bytes" => s.max_bytes.to_value(),
            "max-clip-duration" => s.max_clip_duration.to_value(),
            "max-preview-duration" => s.max_preview_duration.to_value(),
            "max-concurrent-clips" => s.max_concurrent_clips.to_value(),
            "clip-location" => s.clip_location.to_value(),
            "http-address" => s.http_address.to_value(),
            "http-token" => s.http_token.to_value(),
            "http-web-root" => s.http_web_root.to_value(),
            _ => unimplemented!(),
        }
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            let obj = |args: &[glib::Value]| args[0].get::<super::HlsClipSink>().unwrap();
            let text = |v: &glib::Value| v.get::<Option<String>>().ok().flatten();
            vec![
                // (media-id or NULL for the current session, duration such as
                // "5m") -> GstStructure hlsclipsink-preview: manifest,
                // preview-start-seconds, stream-media-id; or error, status.
                glib::subclass::Signal::builder("get-preview-manifest")
                    .param_types([String::static_type(), String::static_type()])
                    .return_type::<gst::Structure>()
                    .action()
                    .class_handler(move |args| {
                        let s = obj(args)
                            .imp()
                            .preview(text(&args[1]), text(&args[2]).unwrap_or_default());
                        Some(s.to_value())
                    })
                    .build(),
                // (media-id or NULL, query such as "time=600s&duration=30s")
                // -> GstStructure hlsclipsink-clip-manifest: manifest,
                // media-id, start, duration; or error, status.
                glib::subclass::Signal::builder("get-clip-manifest")
                    .param_types([String::static_type(), String::static_type()])
                    .return_type::<gst::Structure>()
                    .action()
                    .class_handler(move |args| {
                        let s = obj(args)
                            .imp()
                            .clip_manifest(text(&args[1]), text(&args[2]).unwrap_or_default());
                        Some(s.to_value())
                    })
                    .build(),
                // (media-id or NULL, query such as
                // "time=600s&duration=30s&accuracy=frame&location=x.mp4")
                // -> request id; the result comes as an hlsclipsink-clip-done
                // element message.
                glib::subclass::Signal::builder("clip-mp4")
                    .param_types([String::static_type(), String::static_type()])
                    .return_type::<u64>()
                    .action()
                    .class_handler(move |args| {
                        let id = obj(args)
                            .imp()
                            .clip_mp4(text(&args[1]), text(&args[2]).unwrap_or_default());
                        Some(id.to_value())
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

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
            LazyLock::new(crate::media::request_pad_templates);
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        _name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        sink::request_new_pad(self, templ)
    }

    fn release_pad(&self, pad: &gst::Pad) {
        sink::release_pad(self, pad);
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            self.start().map_err(|_| gst::StateChangeError)?;
        }
        if transition == gst::StateChange::PausedToReady {
            self.stop();
        }
        self.parent_change_state(transition)
    }
}

impl HlsClipSink {
    fn start(&self) -> Result<(), ()> {
        let settings = self.settings.lock().unwrap().clone();
        let stream_id = settings
            .stream_id
            .clone()
            .unwrap_or_else(|| self.obj().name().to_string());
        if !crate::hls::sessions::is_safe_id(&stream_id) {
            gst::element_imp_error!(
                self,
                gst::LibraryError::Settings,
                ("stream-id {stream_id:?} is not usable as a directory name (letters, digits, '-', '_', '.')")
            );
            return Err(());
        }
        let location = PathBuf::from(&settings.location);
        let cfg = RecorderConfig {
            playlist_length: settings.playlist_length as usize,
            target_duration: settings.target_duration,
            enable_pdt: settings.enable_pdt,
            reconnect_window: Duration::from_secs(u64::from(settings.reconnect_window)),
            max_age: Duration::from_secs(settings.max_age),
            max_bytes: settings.max_bytes,
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
        let (recorder, report) = match Recorder::start(&location, &stream_id, cfg, Utc::now()) {
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

        let tracks = self.pads.restart();
        let kinds: Vec<TrackKind> = tracks.iter().map(|(kind, _)| *kind).collect();
        let mut planner = Planner::new(
            PlannerConfig {
                target_duration: Duration::from_secs(u64::from(settings.target_duration)),
                pdt_clock: match settings.pdt_source {
                    PdtSource::PipelineClock => PdtClock::Pipeline,
                    PdtSource::SystemClock => PdtClock::System,
                    PdtSource::ReferenceTimestamp => PdtClock::Reference,
                },
                base: RecordingTime(recorder.end() as i64),
            },
            &kinds,
        );
        for (track, (_, config)) in tracks.into_iter().enumerate() {
            if let Some(config) = config {
                planner.set_config(track, config);
            }
        }
        self.failed.store(false, Ordering::SeqCst);
        let weak = self.obj().downgrade();
        let failed = self.failed.clone();
        let worker = Worker::spawn("hlsclipsink-writer", QUEUE_FRAGMENTS, move |rx| {
            writer::run(weak, recorder, rx, failed)
        });
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
        let worker = self.state.lock().unwrap().worker.take();
        if let Some(worker) = worker {
            worker.stop();
        }
        // The session is on disk now: requests read it from there.
        self.live.update(|s| *s = None);
        self.http.lock().unwrap().take();
    }

    fn new_service(&self, settings: &Settings, stream_id: &str) -> Arc<ClipService> {
        let workers = settings.max_concurrent_clips.max(1) as usize;
        ClipService::new(
            PathBuf::from(&settings.location).join(stream_id),
            self.live.clone(),
            Limits {
                max_clip: u64::from(settings.max_clip_duration) * NS as u64,
                max_preview: u64::from(settings.max_preview_duration) * NS as u64,
                workers,
                queue: workers * QUEUED_CLIPS_PER_WORKER,
            },
        )
    }

    /// The clip service; made from the settings when the element has not
    /// started (clips of stored sessions work in any state).
    fn service(&self) -> Result<Arc<ClipService>, ClipError> {
        if let Some(s) = self.service.lock().unwrap().as_ref() {
            return Ok(s.clone());
        }
        let settings = self.settings.lock().unwrap().clone();
        let stream_id = settings
            .stream_id
            .clone()
            .unwrap_or_else(|| self.obj().name().to_string());
        if !crate::hls::sessions::is_safe_id(&stream_id) {
            return Err(ClipError::NotFound(format!("no stream {stream_id:?}")));
        }
        let service = self.new_service(&settings, &stream_id);
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
}
