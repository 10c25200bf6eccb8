// SPDX-License-Identifier: MPL-2.0
//! periodicclipper's settings and the properties that set them.

use gst::glib;
use gst::prelude::*;

use crate::core::NS;

pub(super) const DEFAULT_LOCATION: &str = "clip-%05d.mp4";
pub(super) const DEFAULT_INTERVAL: u32 = 600;
const DEFAULT_MAX_CLIP_DURATION: u32 = 600;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) location: String,
    pub(super) start_index: u32,
    pub(super) max_files: u32,
    pub(super) interval: u32,
    pub(super) send_keyframe_requests: bool,
    pub(super) max_clip_duration: u32,
    pub(super) http_address: Option<String>,
    pub(super) http_token: Option<String>,
    pub(super) webhook_url: Option<String>,
    pub(super) clip_at_markers: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            location: DEFAULT_LOCATION.into(),
            start_index: 0,
            max_files: 0,
            interval: DEFAULT_INTERVAL,
            send_keyframe_requests: true,
            max_clip_duration: DEFAULT_MAX_CLIP_DURATION,
            http_address: None,
            http_token: None,
            webhook_url: None,
            clip_at_markers: false,
        }
    }
}

impl Settings {
    /// Media held in memory at most when no clip is cut: the longest
    /// on-demand clip, and never less than two intervals.
    pub(super) fn max_pending(&self) -> u64 {
        u64::from(self.max_clip_duration.max(self.interval.saturating_mul(2))) * NS
    }
}

pub(super) fn properties() -> Vec<glib::ParamSpec> {
    vec![
            glib::ParamSpecString::builder("location")
                .nick("File location")
                .blurb("Location of the clip files, with one %d for the clip index (e.g. clip-%05d.mp4)")
                .default_value(Some(DEFAULT_LOCATION))
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("start-index")
                .nick("Start index")
                .blurb("Index of the first clip")
                .default_value(0)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("max-files")
                .nick("Max files")
                .blurb("Keep at most this many clips, deleting the oldest (0 = keep all)")
                .default_value(0)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("interval")
                .nick("Interval")
                .blurb("Write a clip of the media since the previous clip every this many seconds of media (0 = on demand only)")
                .maximum(7 * 24 * 3600)
                .default_value(DEFAULT_INTERVAL)
                .mutable_playing()
                .build(),
            glib::ParamSpecBoolean::builder("send-keyframe-requests")
                .nick("Send keyframe requests")
                .blurb("Ask upstream for a keyframe at each clip boundary, so that cuts land on time")
                .default_value(true)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("max-clip-duration")
                .nick("Max clip duration")
                .blurb("Seconds of media kept for the next clip at most (at least twice the interval); older whole GOPs are dropped")
                .minimum(1)
                .maximum(7 * 24 * 3600)
                .default_value(DEFAULT_MAX_CLIP_DURATION)
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("http-address")
                .nick("HTTP address")
                .blurb("Serve the HTTP API (POST /{name}/periodic-recording/{seconds}, DELETE /{name}/periodic-recording, POST /{name}/mp4) on this address, e.g. 127.0.0.1:8080; unset = no server. Elements naming the same address share one listener")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("http-token")
                .nick("HTTP token")
                .blurb("When set, every HTTP request to this element needs it (Authorization: Bearer <token> or token=<token>)")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("webhook-url")
                .nick("Webhook URL")
                .blurb("POST a JSON clip-ready notice for every clip to this http:// URL (off the streaming thread, with retries; unset = none)")
                .mutable_ready()
                .build(),
            glib::ParamSpecBoolean::builder("clip-at-markers")
                .nick("Clip at markers")
                .blurb("A marker in the stream (a liveclip-marker event, or a SCTE-35 splice event from tsdemux) writes the media since the last clip, cut at the next keyframe, as clip-now does")
                .default_value(false)
                .mutable_playing()
                .build(),
        ]
}

impl Settings {
    pub(super) fn get(&self, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "location" => self.location.to_value(),
            "start-index" => self.start_index.to_value(),
            "max-files" => self.max_files.to_value(),
            "interval" => self.interval.to_value(),
            "send-keyframe-requests" => self.send_keyframe_requests.to_value(),
            "max-clip-duration" => self.max_clip_duration.to_value(),
            "http-address" => self.http_address.to_value(),
            "http-token" => self.http_token.to_value(),
            "webhook-url" => self.webhook_url.to_value(),
            "clip-at-markers" => self.clip_at_markers.to_value(),
            _ => unimplemented!(),
        }
    }
}
