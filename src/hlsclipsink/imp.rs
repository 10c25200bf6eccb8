// SPDX-License-Identifier: MPL-2.0
//! The element: pads and events around [`crate::core::periodic::Cutter`]
//! (one cut per GOP: a CMAF fragment) and [`crate::hls::recorder::Recorder`]
//! (disk), which runs on a writer thread fed by a bounded queue.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, mpsc};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::PdtSource;
use crate::core::TrackKind;
use crate::core::nal::{self, Access};
use crate::core::periodic::{Cutter, Selection, Trigger};
use crate::hls::clip::{ClipError, ClipRequest};
use crate::hls::index::LiveIndex;
use crate::hls::recorder::{Recorder, RecorderConfig};
use crate::hls::service::{ClipDone, ClipService, Limits};
use crate::media::SampleError;
use crate::mp4::fragmented;
use crate::mp4::{ClipTrack, CodecConfig};

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
/// A jump in decode time larger than this (or backwards) is a discontinuity.
const GAP: i64 = 1_000_000_000;
/// Audio-only streams are fragmented every this many ns.
const AUDIO_FRAGMENT: u64 = 1_000_000_000;
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

struct PadState {
    track: usize,
    kind: TrackKind,
    segment: gst::FormattedSegment<gst::ClockTime>,
    config: Option<Arc<CodecConfig>>,
    /// A new configuration from caps, applied at the next keyframe (the
    /// first frame coded with it); later caps before that replace it.
    pending_config: Option<Arc<CodecConfig>>,
    /// Last decode time as received (before closing gaps), and the step
    /// before it.
    last_dts: Option<i64>,
    last_step: i64,
    /// Subtracted from this track's timestamps: the gaps closed so far.
    shift: i64,
    eos: bool,
}

enum Command {
    /// A new init segment: the tracks, and their initial composition
    /// delays (ns) for its edit list.
    Init(Vec<Arc<CodecConfig>>, Vec<i64>),
    Append {
        tracks: Vec<ClipTrack>,
        offset: i64,
        delays: Vec<i64>,
        pdt: Option<DateTime<Utc>>,
        running_time: i64,
        /// End of the fragment in this run's recording time.
        end: i64,
    },
    Close,
    Discontinuity,
    /// End of the session: close it, post session-ended, then EOS if asked.
    Finish {
        post_eos: bool,
    },
}

struct State {
    cutter: Cutter,
    pads: HashMap<String, PadState>,
    worker: Option<(mpsc::SyncSender<Command>, std::thread::JoinHandle<()>)>,
    /// Configurations of the current init segment, in track order.
    init: Vec<Arc<CodecConfig>>,
    /// Track order of the init segment: cutter track index per init track.
    order: Vec<usize>,
    /// Initial composition delay per init track (ns).
    delays: Vec<i64>,
    /// Running time minus this run's recording time.
    offset: Option<i64>,
    /// Recording time (this run) of the end of the last fragment.
    run_end: i64,
    /// Recording time (this run) where the open segment started.
    segment_start: i64,
    /// A gap was closed at this (shifted) running time: the first segment
    /// that starts at or after it gets an EXT-X-DISCONTINUITY.
    discontinuity: Option<i64>,
    /// Running time and wall clock that anchor program date times.
    utc_anchor: Option<(i64, DateTime<Utc>)>,
    /// Latest (running time, UTC) from reference timestamp meta.
    reference: Option<(i64, DateTime<Utc>)>,
    /// Whether the H.264 open-GOP warning was given.
    warned_open_gop: bool,
    /// Newest leader running time seen.
    latest: i64,
    /// Gaps closed on the leading track: (recording running time from
    /// which, total shift), ascending. Maps back to real running time for
    /// program date times and keyframe requests.
    shifts: Vec<(i64, i64)>,
    requested_for: Option<i64>,
    finished: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            cutter: Cutter::new(1, 0),
            pads: HashMap::new(),
            worker: None,
            init: Vec::new(),
            order: Vec::new(),
            delays: Vec::new(),
            offset: None,
            run_end: 0,
            segment_start: 0,
            discontinuity: None,
            utc_anchor: None,
            reference: None,
            warned_open_gop: false,
            latest: 0,
            shifts: Vec::new(),
            requested_for: None,
            finished: false,
        }
    }
}

#[derive(Default)]
pub struct HlsClipSink {
    settings: Mutex<Settings>,
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
        let name = templ.name_template().to_string();
        let kind = crate::media::kind_of(templ);
        {
            let mut state = self.state.lock().unwrap();
            if state.pads.contains_key(&name) {
                gst::warning!(CAT, imp = self, "only one {name} pad is supported");
                return None;
            }
            let track = state.cutter.add_track(kind);
            state.pads.insert(
                name.clone(),
                PadState {
                    track,
                    kind,
                    segment: gst::FormattedSegment::new(),
                    config: None,
                    pending_config: None,
                    last_dts: None,
                    last_step: 0,
                    shift: 0,
                    eos: false,
                },
            );
        }
        let pad = crate::media::request_pad::<Self>(templ);
        pad.set_active(true).ok();
        self.obj().add_pad(&pad).ok()?;
        Some(pad)
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let selections = {
            let mut state = self.state.lock().unwrap();
            match state.pads.remove(pad.name().as_str()) {
                Some(p) if !p.eos => state.cutter.set_eos(p.track, Instant::now()),
                _ => Vec::new(),
            }
        };
        self.dispatch(selections, false);
        pad.set_active(false).ok();
        self.obj().remove_pad(pad).ok();
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

        let mut state = self.state.lock().unwrap();
        let has_video = state.pads.values().any(|p| p.kind == TrackKind::Video);
        let interval = if has_video { 1 } else { AUDIO_FRAGMENT };
        let mut cutter = Cutter::new(interval, 30 * NS as u64);
        let mut pads: Vec<_> = state.pads.iter_mut().collect();
        pads.sort_by_key(|(_, p)| p.track);
        for (_, p) in pads {
            p.track = cutter.add_track(p.kind);
            p.eos = false;
            p.last_dts = None;
            p.last_step = 0;
            p.shift = 0;
            p.segment = gst::FormattedSegment::new();
        }
        *state = State {
            cutter,
            pads: std::mem::take(&mut state.pads),
            ..Default::default()
        };
        self.failed.store(false, Ordering::SeqCst);
        let (tx, rx) = mpsc::sync_channel(QUEUE_FRAGMENTS);
        let weak = self.obj().downgrade();
        let failed = self.failed.clone();
        let handle = std::thread::Builder::new()
            .name("hlsclipsink-writer".into())
            .spawn(move || writer_loop(weak, recorder, rx, failed))
            .map_err(|_| ())?;
        state.worker = Some((tx, handle));
        drop(state);

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
        let selections = {
            let mut state = self.state.lock().unwrap();
            if state.finished {
                Vec::new()
            } else {
                state.cutter.finish()
            }
        };
        self.dispatch(selections, false);
        let worker = self.state.lock().unwrap().worker.take();
        if let Some((tx, handle)) = worker {
            drop(tx);
            let _ = handle.join();
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

    fn error_structure(name: &str, e: &ClipError) -> gst::Structure {
        gst::Structure::builder(name)
            .field("error", e.to_string())
            .field("status", u32::from(e.status()))
            .field("kind", e.kind())
            .build()
    }

    fn preview(&self, media_id: Option<String>, duration: String) -> gst::Structure {
        const NAME: &str = "hlsclipsink-preview";
        let result = crate::core::timespec::parse_duration(&duration)
            .map_err(|e| ClipError::BadRequest(format!("duration: {e}")))
            .and_then(|d| {
                let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                self.service()?.preview(media_id.as_deref(), d)
            });
        match result {
            Ok(p) => gst::Structure::builder(NAME)
                .field("manifest", p.manifest)
                .field("preview-start-seconds", p.start_seconds)
                .field("stream-media-id", p.media_id)
                .build(),
            Err(e) => {
                gst::info!(CAT, imp = self, "preview manifest refused: {e}");
                Self::error_structure(NAME, &e)
            }
        }
    }

    fn clip_manifest(&self, media_id: Option<String>, query: String) -> gst::Structure {
        const NAME: &str = "hlsclipsink-clip-manifest";
        let result = ClipRequest::parse_query(&query)
            .and_then(|req| self.service()?.clip_manifest(media_id.as_deref(), &req));
        match result {
            Ok((text, index, range)) => gst::Structure::builder(NAME)
                .field("manifest", text)
                .field("media-id", index.media_id)
                .field("start", gst::ClockTime::from_nseconds(range.start))
                .field(
                    "duration",
                    gst::ClockTime::from_nseconds(range.end - range.start),
                )
                .build(),
            Err(e) => {
                gst::info!(CAT, imp = self, "clip manifest refused: {e}");
                Self::error_structure(NAME, &e)
            }
        }
    }

    fn clip_mp4(&self, media_id: Option<String>, query: String) -> u64 {
        let weak = self.obj().downgrade();
        let post = move |done: ClipDone, media_id: Option<&str>, location: &std::path::Path| {
            let Some(obj) = weak.upgrade() else { return };
            let b = gst::Structure::builder("hlsclipsink-clip-done")
                .field("request-id", done.id)
                .field("location", location.display().to_string());
            let s = match done.result {
                Ok((_, info, bytes)) => b
                    .field("media-id", info.media_id.as_str())
                    .field(
                        "requested-start",
                        gst::ClockTime::from_nseconds(info.requested_start),
                    )
                    .field("start", gst::ClockTime::from_nseconds(info.start))
                    .field("duration", gst::ClockTime::from_nseconds(info.duration()))
                    .field("keyframe", gst::ClockTime::from_nseconds(info.keyframe))
                    .field("preroll", gst::ClockTime::from_nseconds(info.preroll()))
                    .field(
                        "utc",
                        info.utc
                            .map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                            .unwrap_or_default(),
                    )
                    .field("bytes", bytes)
                    .build(),
                Err(e) => {
                    gst::info!(CAT, obj = obj, "clip {} failed: {e}", done.id);
                    b.field("media-id", media_id.unwrap_or_default())
                        .field("error", e.to_string())
                        .field("status", u32::from(e.status()))
                        .field("kind", e.kind())
                        .build()
                }
            };
            let _ = obj.post_message(gst::message::Element::builder(s).src(&obj).build());
        };
        let service = match self.service() {
            Ok(s) => s,
            Err(e) => {
                post(
                    ClipDone {
                        id: 0,
                        result: Err(e),
                    },
                    media_id.as_deref(),
                    std::path::Path::new(""),
                );
                return 0;
            }
        };
        let id = service.next_id();
        let location = ClipRequest::parse_query(&query).and_then(|req| {
            let location = match &req.location {
                Some(l) => PathBuf::from(l),
                None => {
                    let settings = self.settings.lock().unwrap();
                    let pattern = settings.clip_location.clone().unwrap_or_else(|| {
                        let stream = service
                            .stream_dir()
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        format!("{}/clips/{stream}-%05d.mp4", settings.location)
                    });
                    crate::core::pattern::format_index(&pattern, id)
                        .map(PathBuf::from)
                        .map_err(|e| ClipError::BadRequest(format!("clip-location: {e}")))?
                }
            };
            Ok((req, location))
        });
        let submitted = location.and_then(|(req, location)| {
            let (m, l) = (media_id.clone(), location.clone());
            let post = post.clone();
            service.clip_to_file(id, media_id.clone(), req, location, move |done| {
                post(done, m.as_deref(), &l)
            })
        });
        if let Err(e) = submitted {
            post(
                ClipDone { id, result: Err(e) },
                media_id.as_deref(),
                std::path::Path::new(""),
            );
        }
        id
    }

    /// Wall clock at running time `rt`, from the pipeline clock.
    fn utc_now_at(&self, rt: i64) -> DateTime<Utc> {
        let now = Utc::now();
        let obj = self.obj();
        let current = obj
            .clock()
            .zip(obj.base_time())
            .map(|(c, b)| c.time().nseconds() as i64 - b.nseconds() as i64);
        match current {
            Some(cur) if cur >= rt => now - chrono::Duration::nanoseconds(cur - rt),
            _ => now,
        }
    }

    fn pdt_at(&self, state: &mut State, rt: i64, source: PdtSource) -> Option<DateTime<Utc>> {
        // Back to the running time the media really had.
        let rt = rt + shift_at(&state.shifts, rt);
        match source {
            PdtSource::ReferenceTimestamp if state.reference.is_some() => state
                .reference
                .map(|(r, utc)| utc + chrono::Duration::nanoseconds(rt - r)),
            PdtSource::SystemClock => {
                let latest = state.latest + shift_at(&state.shifts, state.latest);
                Some(Utc::now() - chrono::Duration::nanoseconds((latest - rt).max(0)))
            }
            _ => state
                .utc_anchor
                .map(|(r, utc)| utc + chrono::Duration::nanoseconds(rt - r)),
        }
    }

    /// Hands the clips that EOS or a released pad completed to the writer.
    fn dispatch(&self, selections: Vec<Selection>, eos: bool) {
        let _order = self.dispatch_lock.lock().unwrap();
        let (cmds, request) = {
            let mut state = self.state.lock().unwrap();
            let mut cmds = self.prepare(&mut state, selections);
            if state.cutter.is_done() && !state.finished {
                state.finished = true;
                cmds.push(Command::Finish { post_eos: eos });
            }
            (cmds, self.keyframe_request(&mut state))
        };
        self.send(cmds);
        self.send_keyframe_request(request);
    }

    /// The running time where the open segment should end, if not asked yet.
    fn keyframe_request(&self, state: &mut State) -> Option<i64> {
        let settings = self.settings.lock().unwrap();
        if !settings.send_keyframe_requests || state.finished {
            return None;
        }
        let offset = state.offset?;
        let at = offset + state.segment_start + i64::from(settings.target_duration) * NS;
        let at = at + shift_at(&state.shifts, at);
        if state.requested_for == Some(at) || at < 0 {
            return None;
        }
        state.requested_for = Some(at);
        Some(at)
    }

    fn send_keyframe_request(&self, at: Option<i64>) {
        let (Some(at), Some(pad)) = (at, self.obj().static_pad("video")) else {
            return;
        };
        gst::debug!(CAT, imp = self, "requesting a keyframe at {at} ns");
        pad.push_event(
            gst_video::UpstreamForceKeyUnitEvent::builder()
                .running_time(gst::ClockTime::from_nseconds(at as u64))
                .all_headers(true)
                .build(),
        );
    }

    /// Turns selections into writer commands (init segments, fragments,
    /// segment ends), keeping recording time and segment boundaries.
    fn prepare(&self, state: &mut State, selections: Vec<Selection>) -> Vec<Command> {
        let settings = self.settings.lock().unwrap().clone();
        let target = i64::from(settings.target_duration) * NS;
        let mut cmds = Vec::new();
        for sel in selections {
            gst::log!(
                CAT,
                imp = self,
                "fragment {}..{} ns ({:?})",
                sel.start,
                sel.end,
                sel.trigger
            );
            // Tracks in init order: video first, then audio.
            let mut tracks: Vec<(usize, Arc<CodecConfig>)> = state
                .pads
                .values()
                .filter_map(|p| p.config.clone().map(|c| (p.track, c)))
                .collect();
            tracks.sort_by_key(|(i, c)| (c.kind != TrackKind::Video, *i));
            let configs: Vec<Arc<CodecConfig>> = tracks.iter().map(|(_, c)| c.clone()).collect();
            let order: Vec<usize> = tracks.iter().map(|(i, _)| *i).collect();
            let init_changed = state.init.len() != configs.len()
                || state
                    .init
                    .iter()
                    .zip(&configs)
                    .any(|(a, b)| !a.same_entry(b));
            if init_changed {
                state.init = configs.clone();
                state.order = order.clone();
                state.delays = order
                    .iter()
                    .map(|&i| {
                        sel.tracks
                            .iter()
                            .find(|t| t.track == i)
                            .and_then(|t| t.samples.first())
                            .map_or(0, |s| (s.pts - s.dts).max(0))
                    })
                    .collect();
                cmds.push(Command::Init(configs.clone(), state.delays.clone()));
                // A new init segment also starts a new media segment.
                state.segment_start = state.run_end;
            }
            // Recording time starts at the first keyframe and continues
            // across gaps.
            if state.offset.is_none() {
                state.offset = Some(sel.start);
            }
            if state.discontinuity.is_some_and(|at| sel.start >= at) {
                state.discontinuity = None;
                state.offset = Some(sel.start - state.run_end);
                state.segment_start = state.run_end;
                if !init_changed {
                    cmds.push(Command::Discontinuity);
                }
            }
            let offset = state.offset.unwrap_or(sel.start);
            let mut clip_tracks = Vec::with_capacity(state.order.len());
            let mut sel_tracks = sel.tracks;
            for (k, &i) in state.order.iter().enumerate() {
                let (samples, next_dts) = match sel_tracks.iter().position(|t| t.track == i) {
                    Some(p) => {
                        let t = sel_tracks.swap_remove(p);
                        (t.samples, t.next_dts)
                    }
                    None => (Vec::new(), None),
                };
                clip_tracks.push(ClipTrack {
                    config: state.init[k].clone(),
                    samples,
                    next_dts,
                });
            }
            let end = sel.end;
            let pdt = self.pdt_at(state, sel.start, settings.pdt_source);
            cmds.push(Command::Append {
                tracks: clip_tracks,
                offset,
                delays: state.delays.clone(),
                pdt,
                running_time: sel.start,
                end: end - offset,
            });
            state.run_end = end - offset;
            if state.run_end - state.segment_start + NS / 10 >= target {
                cmds.push(Command::Close);
                state.segment_start = state.run_end;
            }
        }
        cmds
    }

    fn send(&self, cmds: Vec<Command>) {
        if cmds.is_empty() {
            return;
        }
        let tx = self
            .state
            .lock()
            .unwrap()
            .worker
            .as_ref()
            .map(|w| w.0.clone());
        if let Some(tx) = tx {
            for c in cmds {
                if tx.send(c).is_err() {
                    break;
                }
            }
        }
    }
}

/// The gap shift in effect at (shifted) running time `rt`.
fn shift_at(shifts: &[(i64, i64)], rt: i64) -> i64 {
    shifts
        .iter()
        .rev()
        .find(|(from, _)| *from <= rt)
        .map_or(0, |(_, s)| *s)
}

/// UTC from a reference timestamp meta (`timestamp/x-unix` or NTP), if any.
fn reference_utc(buffer: &gst::BufferRef) -> Option<DateTime<Utc>> {
    for meta in buffer.iter_meta::<gst::ReferenceTimestampMeta>() {
        let name = meta.reference().structure(0)?.name().to_string();
        let ts = meta.timestamp().nseconds() as i64;
        let unix = match name.as_str() {
            "timestamp/x-unix" => ts,
            // NTP epoch (1900) to Unix epoch (1970).
            "timestamp/x-ntp" => ts - 2_208_988_800 * NS,
            _ => continue,
        };
        return DateTime::from_timestamp(unix.div_euclid(NS), unix.rem_euclid(NS) as u32);
    }
    None
}

fn writer_loop(
    weak: glib::WeakRef<super::HlsClipSink>,
    mut recorder: Recorder,
    rx: mpsc::Receiver<Command>,
    failed: Arc<AtomicBool>,
) {
    let mut segment_rt: Option<i64> = None;
    let mut finished = false;
    let fail = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        failed.store(true, Ordering::SeqCst);
        if let Some(obj) = weak.upgrade() {
            gst::element_error!(
                obj,
                gst::ResourceError::Write,
                ("Could not write {what} in {}: {e}", path.display())
            );
        }
    };
    while let Ok(cmd) = rx.recv() {
        if failed.load(Ordering::SeqCst) {
            continue;
        }
        let dir = recorder.session_dir().to_path_buf();
        match cmd {
            Command::Init(configs, delays) => {
                let refs: Vec<&CodecConfig> = configs.iter().map(|c| &**c).collect();
                let result = fragmented::init_segment(&refs, &delays, Some(Utc::now()))
                    .map_err(|e| std::io::Error::other(e.to_string()))
                    .and_then(|data| recorder.write_init(&data));
                if let Err(e) = result {
                    fail("the init segment", &dir, &e);
                }
            }
            Command::Append {
                tracks,
                offset,
                delays,
                pdt,
                running_time,
                end,
            } => {
                segment_rt.get_or_insert(running_time);
                if let Err(e) = recorder.append(&tracks, offset, &delays, pdt, end) {
                    fail("a segment", &dir, &e);
                }
            }
            Command::Discontinuity => {
                if let Err(e) = recorder.discontinuity() {
                    fail("a segment", &dir, &e);
                }
            }
            Command::Close => close(&weak, &mut recorder, &mut segment_rt, &fail),
            Command::Finish { post_eos } => {
                finished = true;
                close(&weak, &mut recorder, &mut segment_rt, &fail);
                if let Err(e) = recorder.finish_session(Utc::now()) {
                    fail("the final playlist", &dir, &e);
                }
                if let Some(obj) = weak.upgrade() {
                    let s = gst::Structure::builder("hlsclipsink-session-ended")
                        .field("media-id", recorder.media_id())
                        .field("location", dir.display().to_string())
                        .field("duration", gst::ClockTime::from_nseconds(recorder.end()))
                        .field("segments", recorder.segments().len() as u64)
                        .build();
                    let _ = obj.post_message(gst::message::Element::builder(s).src(&obj).build());
                    if post_eos {
                        let _ = obj.post_message(gst::message::Eos::builder().src(&obj).build());
                    }
                }
            }
        }
    }
    if !finished && !failed.load(Ordering::SeqCst) {
        let _ = recorder.finish_session(Utc::now());
    }
}

/// Ends the open segment and announces it.
fn close(
    weak: &glib::WeakRef<super::HlsClipSink>,
    recorder: &mut Recorder,
    segment_rt: &mut Option<i64>,
    fail: &dyn Fn(&str, &std::path::Path, &dyn std::fmt::Display),
) {
    let dir = recorder.session_dir().to_path_buf();
    match recorder.close_segment() {
        Ok(Some(seg)) => {
            if let Some(obj) = weak.upgrade() {
                let s = gst::Structure::builder("hlsclipsink-segment-added")
                    .field("location", dir.join(&seg.uri).display().to_string())
                    .field("media-id", recorder.media_id())
                    .field("sequence", seg.sequence)
                    .field(
                        "running-time",
                        gst::ClockTime::from_nseconds(segment_rt.unwrap_or(0).max(0) as u64),
                    )
                    .field("recording-time", gst::ClockTime::from_nseconds(seg.start))
                    .field("duration", gst::ClockTime::from_nseconds(seg.duration))
                    .field(
                        "utc",
                        seg.pdt
                            .map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                            .unwrap_or_default(),
                    )
                    .field("bytes", seg.bytes)
                    .build();
                let _ = obj.post_message(gst::message::Element::builder(s).src(&obj).build());
            }
            *segment_rt = None;
        }
        Ok(None) => {}
        Err(e) => fail("a playlist", &dir, &e),
    }
}

impl crate::media::EncodedSink for HlsClipSink {
    fn chain(
        &self,
        pad: &gst::Pad,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(gst::FlowError::Error);
        }
        let pdt_source = self.settings.lock().unwrap().pdt_source;
        let name = pad.name();
        let mut notices = Vec::new();
        let open_gop: bool;
        let _order = self.dispatch_lock.lock().unwrap();
        let (cmds, request) = {
            let mut state = self.state.lock().unwrap();
            let Some(p) = state.pads.get(name.as_str()) else {
                return Err(gst::FlowError::NotLinked);
            };
            if p.config.is_none() && p.pending_config.is_none() {
                drop(state);
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("{} buffer before caps", name)
                );
                return Err(gst::FlowError::NotNegotiated);
            }
            let (track, kind, segment) = (p.track, p.kind, p.segment.clone());
            let nal = p
                .pending_config
                .as_ref()
                .or(p.config.as_ref())
                .and_then(|c| c.nal_format());
            let reference = (pdt_source == PdtSource::ReferenceTimestamp
                && !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT))
            .then(|| reference_utc(&buffer))
            .flatten();
            let sample = match crate::media::sample_from_buffer(&segment, kind, nal, buffer) {
                Ok(s) => s,
                Err(SampleError::NoTimestamp) => {
                    drop(state);
                    gst::warning!(CAT, obj = pad, "dropping a buffer without timestamps");
                    return Ok(gst::FlowSuccess::Ok);
                }
                Err(SampleError::Unmappable) => {
                    drop(state);
                    gst::element_imp_error!(self, gst::CoreError::Failed, ("cannot map buffer"));
                    return Err(gst::FlowError::Error);
                }
            };
            // Browsers' Media Source players take only IDR pictures as
            // H.264 random-access points: say so once for an open-GOP feed.
            open_gop = sample.access == Access::Open
                && nal.is_some_and(|(codec, _)| codec == nal::Codec::H264)
                && !std::mem::replace(&mut state.warned_open_gop, true);
            let mut cmds = Vec::new();
            // A new codec configuration takes effect at its first keyframe:
            // what came before is written with the old init segment.
            let pending = state
                .pads
                .get_mut(name.as_str())
                .filter(|_| sample.keyframe)
                .and_then(|p| p.pending_config.take());
            if let Some(new) = pending {
                let changed = state
                    .pads
                    .get(name.as_str())
                    .and_then(|p| p.config.as_ref())
                    .is_some_and(|old| !old.same_entry(&new));
                if changed {
                    gst::info!(
                        CAT,
                        obj = pad,
                        "codec configuration changed: new init segment"
                    );
                    let old = state.cutter.flush(Trigger::CapsChange);
                    cmds.extend(self.prepare(&mut state, old));
                }
                if let Some(p) = state.pads.get_mut(name.as_str()) {
                    p.config = Some(new);
                }
            }
            let leads = kind == TrackKind::Video
                || !state.pads.values().any(|p| p.kind == TrackKind::Video);
            if let Some(utc) = reference {
                state.reference = Some((sample.pts, utc));
            }
            if state.utc_anchor.is_none() {
                state.utc_anchor = Some((sample.pts, self.utc_now_at(sample.pts)));
            }
            // A timestamp gap or a jump backwards is closed: later samples
            // are shifted so that recording time continues where it was
            // (every frame stays decodable), and the next segment starts
            // after an EXT-X-DISCONTINUITY.
            let mut sample = sample;
            let mut closed = None;
            if let Some(p) = state.pads.get_mut(name.as_str()) {
                let raw = sample.dts;
                if let Some(last) = p.last_dts {
                    let step = raw - last;
                    let gap = (sample.duration as i64 * 3).max(GAP);
                    if step < 0 || step > gap {
                        let expected = if sample.duration > 0 {
                            sample.duration as i64
                        } else {
                            p.last_step
                        };
                        p.shift += step - expected;
                        gst::info!(
                            CAT,
                            obj = pad,
                            "timestamp jump of {step} ns: closing the gap, discontinuity"
                        );
                        closed = Some((sample.pts - p.shift, p.shift));
                    } else {
                        p.last_step = step;
                    }
                }
                p.last_dts = Some(raw);
                sample.pts -= p.shift;
                sample.dts -= p.shift;
            }
            if leads && let Some(c) = closed {
                state.shifts.push(c);
                state.discontinuity = Some(c.0);
            }
            if leads {
                state.latest = state.latest.max(sample.pts);
            }
            let sels = state
                .cutter
                .push(track, sample, Instant::now(), &mut notices);
            // The first keyframe starts recording time: ask for the keyframe
            // that ends the first segment right away.
            if state.offset.is_none() {
                state.offset = state.cutter.pending_start();
            }
            cmds.extend(self.prepare(&mut state, sels));
            let request = self.keyframe_request(&mut state);
            (cmds, request)
        };
        for n in notices {
            match n.describe() {
                Ok(line) => gst::debug!(CAT, imp = self, "{line}"),
                Err(warning) => {
                    gst::element_imp_warning!(self, gst::StreamError::Format, ["{warning}"])
                }
            }
        }
        if open_gop {
            // Browsers' Media Source players take only IDR pictures as
            // H.264 random-access points.
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
        self.send(cmds);
        self.send_keyframe_request(request);
        Ok(gst::FlowSuccess::Ok)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Caps(c) => {
                let caps = c.caps_owned();
                let config = match CodecConfig::from_caps(&caps) {
                    Ok(config) => Arc::new(config),
                    Err(e) => {
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Format,
                            ("{} caps not usable for CMAF: {}", pad.name(), e),
                            ["caps: {}", caps]
                        );
                        return false;
                    }
                };
                gst::debug!(CAT, obj = pad, "caps {caps}");
                let mut state = self.state.lock().unwrap();
                let Some(p) = state.pads.get_mut(pad.name().as_str()) else {
                    return false;
                };
                if p.config.is_none() {
                    p.config = Some(config);
                } else {
                    p.pending_config = Some(config);
                }
                true
            }
            EventView::Segment(s) => {
                let mut state = self.state.lock().unwrap();
                if let (Some(p), Ok(seg)) = (
                    state.pads.get_mut(pad.name().as_str()),
                    s.segment().clone().downcast::<gst::ClockTime>(),
                ) {
                    p.segment = seg;
                    true
                } else {
                    drop(state);
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ("{}: only TIME segments are supported", pad.name())
                    );
                    false
                }
            }
            EventView::Eos(_) => {
                let selections = {
                    let mut state = self.state.lock().unwrap();
                    let Some(p) = state.pads.get_mut(pad.name().as_str()) else {
                        return true;
                    };
                    p.eos = true;
                    let track = p.track;
                    state.cutter.set_eos(track, Instant::now())
                };
                self.dispatch(selections, true);
                true
            }
            EventView::FlushStop(_) => {
                // After a flush (a seek, a restarted source) the media no
                // longer follows what came before: what was held is written
                // as it is (when the leading track flushes), recording
                // starts again at the next keyframe, and the jump in time is
                // closed like any other gap (the last decode time is kept),
                // with a discontinuity.
                let cmds = {
                    let mut state = self.state.lock().unwrap();
                    let Some(p) = state.pads.get_mut(pad.name().as_str()) else {
                        return true;
                    };
                    p.eos = false;
                    let leads = p.kind == TrackKind::Video
                        || !state.pads.values().any(|p| p.kind == TrackKind::Video);
                    if leads {
                        let held = state.cutter.flush(Trigger::Flush);
                        self.prepare(&mut state, held)
                    } else {
                        Vec::new()
                    }
                };
                self.send(cmds);
                true
            }
            _ => true,
        }
    }
}
