// SPDX-License-Identifier: MPL-2.0
//! hlsclipsink's settings and the properties that set them.

use gst::glib;
use gst::prelude::*;

use std::time::Duration;

use crate::core::NS;
use crate::hls::planner::{PdtClock, PlannerConfig, RecordingTime};
use crate::hls::recorder::RecorderConfig;
use crate::hls::service::Limits;
use crate::hlsclipsink::PdtSource;

const DEFAULT_LOCATION: &str = "recordings";
const DEFAULT_TARGET_DURATION: u32 = 6;
const DEFAULT_PLAYLIST_LENGTH: u32 = 5;
const MAX_PART_DURATION: f64 = 10.0;
const DEFAULT_RECONNECT_WINDOW: u32 = 60;
const DEFAULT_MAX_CLIP_DURATION: u32 = 60;
const DEFAULT_MAX_PREVIEW_DURATION: u32 = 300;
const DEFAULT_MAX_ANIMATED_DURATION: u32 = 10;
const DEFAULT_MAX_CONCURRENT_CLIPS: u32 = 2;
/// Clip requests that may wait for a worker, per worker.
const QUEUED_CLIPS_PER_WORKER: usize = 16;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) location: String,
    pub(super) stream_id: Option<String>,
    pub(super) target_duration: u32,
    pub(super) playlist_length: u32,
    /// Seconds; 0: no low-latency parts.
    pub(super) part_duration: f64,
    pub(super) enable_pdt: bool,
    pub(super) pdt_source: PdtSource,
    pub(super) send_keyframe_requests: bool,
    pub(super) reconnect_window: u32,
    pub(super) max_age: u64,
    pub(super) max_bytes: u64,
    pub(super) max_clip_duration: u32,
    pub(super) max_preview_duration: u32,
    pub(super) max_animated_duration: u32,
    pub(super) max_concurrent_clips: u32,
    pub(super) clip_location: Option<String>,
    pub(super) http_address: Option<String>,
    pub(super) http_token: Option<String>,
    pub(super) http_web_root: Option<String>,
    pub(super) marker_clips: Option<String>,
    pub(super) webhook_url: Option<String>,
    pub(super) export_profiles: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            location: DEFAULT_LOCATION.into(),
            stream_id: None,
            target_duration: DEFAULT_TARGET_DURATION,
            playlist_length: DEFAULT_PLAYLIST_LENGTH,
            part_duration: 0.0,
            enable_pdt: true,
            pdt_source: PdtSource::PipelineClock,
            send_keyframe_requests: true,
            reconnect_window: DEFAULT_RECONNECT_WINDOW,
            max_age: 0,
            max_bytes: 0,
            max_clip_duration: DEFAULT_MAX_CLIP_DURATION,
            max_preview_duration: DEFAULT_MAX_PREVIEW_DURATION,
            max_animated_duration: DEFAULT_MAX_ANIMATED_DURATION,
            max_concurrent_clips: DEFAULT_MAX_CONCURRENT_CLIPS,
            clip_location: None,
            http_address: None,
            http_token: None,
            http_web_root: None,
            marker_clips: None,
            webhook_url: None,
            export_profiles: None,
        }
    }
}

/// The properties (`media-id` is the element's, read-only; `stream-id`
/// reads back as the element's name when unset).
pub(super) fn properties() -> Vec<glib::ParamSpec> {
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
            glib::ParamSpecDouble::builder("part-duration")
                .nick("Part duration")
                .blurb("Low-latency HLS: write each fragment also in parts of this many seconds (e.g. 0.5), served by the HTTP API's live playlist with EXT-X-PART and blocking reload; clips then reach the last complete part (0 = off)")
                .minimum(0.0)
                .maximum(MAX_PART_DURATION)
                .default_value(0.0)
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
            glib::ParamSpecUInt::builder("max-animated-duration")
                .nick("Max animated duration")
                .blurb("Longest range an animated.gif or animated.mp4 request may ask for, in seconds")
                .minimum(1)
                .maximum(600)
                .default_value(DEFAULT_MAX_ANIMATED_DURATION)
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
            glib::ParamSpecString::builder("marker-clips")
                .nick("Marker clips")
                .blurb("Classes of markers (comma-separated; * = every marker) clipped automatically as MP4 once their range is recorded: to clip-location, announced by hlsclipsink-clip-done with the marker's id, and to webhook-url; unset = none")
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("webhook-url")
                .nick("Webhook URL")
                .blurb("POST a JSON notice for every automatic marker clip and every export to this http:// URL (off the streaming thread, with retries; unset = none)")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("export-profiles")
                .nick("Export profiles")
                .blurb("Export profiles besides (or replacing, by name) the built-in landscape, vertical, square, vertical-pad and small: name=WIDTHxHEIGHT[,fit=crop|pad][,video-kbps=N][,audio-kbps=N][,max-duration=SECONDS], separated by ';'")
                .mutable_ready()
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
}

impl Settings {
    pub(super) fn recorder_config(&self) -> RecorderConfig {
        RecorderConfig {
            playlist_length: self.playlist_length as usize,
            part_duration: self.part(),
            target_duration: self.target_duration,
            enable_pdt: self.enable_pdt,
            reconnect_window: Duration::from_secs(u64::from(self.reconnect_window)),
            max_age: Duration::from_secs(self.max_age),
            max_bytes: self.max_bytes,
        }
    }

    /// The planner's configuration for a run from recording time `base`.
    pub(super) fn planner_config(&self, base: RecordingTime) -> PlannerConfig {
        PlannerConfig {
            target_duration: Duration::from_secs(u64::from(self.target_duration)),
            pdt_clock: match self.pdt_source {
                PdtSource::PipelineClock => PdtClock::Pipeline,
                PdtSource::SystemClock => PdtClock::System,
                PdtSource::ReferenceTimestamp => PdtClock::Reference,
            },
            base,
            part_duration: self.part(),
        }
    }

    /// The part duration, at most half the target duration.
    pub(super) fn part(&self) -> Duration {
        let most = f64::from(self.target_duration.max(1)) / 2.0;
        Duration::from_secs_f64(self.part_duration.clamp(0.0, most))
    }

    /// Clip request limits (the same permits for signals and HTTP).
    pub(super) fn limits(&self) -> Limits {
        let workers = self.max_concurrent_clips.max(1) as usize;
        Limits {
            max_clip: u64::from(self.max_clip_duration) * NS,
            max_preview: u64::from(self.max_preview_duration) * NS,
            max_animated: u64::from(self.max_animated_duration) * NS,
            workers,
            queue: workers * QUEUED_CLIPS_PER_WORKER,
        }
    }

    pub(super) fn set(&mut self, value: &glib::Value, pspec: &glib::ParamSpec) {
        let s = self;
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
            "part-duration" => s.part_duration = value.get().unwrap(),
            "enable-program-date-time" => s.enable_pdt = value.get().unwrap(),
            "program-date-time-source" => s.pdt_source = value.get().unwrap(),
            "send-keyframe-requests" => s.send_keyframe_requests = value.get().unwrap(),
            "reconnect-window" => s.reconnect_window = value.get().unwrap(),
            "max-age" => s.max_age = value.get().unwrap(),
            "max-bytes" => s.max_bytes = value.get().unwrap(),
            "max-clip-duration" => s.max_clip_duration = value.get().unwrap(),
            "max-preview-duration" => s.max_preview_duration = value.get().unwrap(),
            "max-animated-duration" => s.max_animated_duration = value.get().unwrap(),
            "max-concurrent-clips" => s.max_concurrent_clips = value.get().unwrap(),
            "clip-location" => s.clip_location = value.get().unwrap(),
            "http-address" => s.http_address = value.get().unwrap(),
            "http-token" => s.http_token = value.get().unwrap(),
            "http-web-root" => s.http_web_root = value.get().unwrap(),
            "marker-clips" => s.marker_clips = value.get().unwrap(),
            "webhook-url" => s.webhook_url = value.get().unwrap(),
            "export-profiles" => s.export_profiles = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    pub(super) fn get(&self, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self;
        match pspec.name() {
            "location" => s.location.to_value(),
            "target-duration" => s.target_duration.to_value(),
            "playlist-length" => s.playlist_length.to_value(),
            "part-duration" => s.part_duration.to_value(),
            "enable-program-date-time" => s.enable_pdt.to_value(),
            "program-date-time-source" => s.pdt_source.to_value(),
            "send-keyframe-requests" => s.send_keyframe_requests.to_value(),
            "reconnect-window" => s.reconnect_window.to_value(),
            "max-age" => s.max_age.to_value(),
            "max-bytes" => s.max_bytes.to_value(),
            "max-clip-duration" => s.max_clip_duration.to_value(),
            "max-preview-duration" => s.max_preview_duration.to_value(),
            "max-animated-duration" => s.max_animated_duration.to_value(),
            "max-concurrent-clips" => s.max_concurrent_clips.to_value(),
            "clip-location" => s.clip_location.to_value(),
            "http-address" => s.http_address.to_value(),
            "http-token" => s.http_token.to_value(),
            "http-web-root" => s.http_web_root.to_value(),
            "marker-clips" => s.marker_clips.to_value(),
            "webhook-url" => s.webhook_url.to_value(),
            "export-profiles" => s.export_profiles.to_value(),
            _ => unimplemented!(),
        }
    }
}
