// SPDX-License-Identifier: MPL-2.0
//! hlsclipsink's action signals: preview and clip manifests, MP4 clips,
//! stills, with their results as structures and element messages.

use std::path::PathBuf;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{CAT, HlsClipSink};
use crate::hls::clip::{ClipError, ClipRequest};
use crate::hls::ladder::Pick;
use crate::hls::markers::{MarkInput, Marker, Source, markers_json};
use crate::hls::service::ClipDone;
use crate::hls::still::StillRequest;

/// A ladder rendition's directory under the session's ("" for one
/// rendition): where a manifest's relative URIs are.
fn rendition_of(index: &crate::hls::index::SessionIndex) -> String {
    index
        .rendition
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_default()
}

/// The preview signal's text: a duration, or a query of `duration` and
/// `rendition` or `height`.
fn preview_request(text: &str) -> Result<(std::time::Duration, Pick), ClipError> {
    let parse = |d: &str| {
        crate::core::timespec::parse_duration(d)
            .map_err(|e| ClipError::BadRequest(format!("duration: {e}")))
    };
    if !text.contains('=') {
        return Ok((parse(text)?, Pick::default()));
    }
    let pairs = crate::core::query::known_pairs(text, &["duration", "rendition", "height"])
        .map_err(ClipError::BadRequest)?;
    let mut duration = None;
    let mut pick = Pick::default();
    for (name, value) in pairs {
        match name.as_str() {
            "duration" => duration = Some(parse(&value)?),
            _ => pick = crate::hls::clip::parse_pick(&name, &value, pick)?,
        }
    }
    let duration =
        duration.ok_or_else(|| ClipError::BadRequest("missing duration, e.g. 5m".into()))?;
    Ok((duration, pick))
}

/// A marker as a structure `name`: media-id, id, class, start, duration,
/// planned-duration (GstClockTime, NONE when absent), utc, source, json
/// (the marker as the HTTP API shows it).
pub(super) fn marker_structure(name: &str, media_id: &str, m: &Marker) -> gst::Structure {
    let time = |ns: Option<u64>| gst::ClockTime::from_nseconds(ns.unwrap_or(0));
    let opt = |ns: Option<u64>| ns.map(gst::ClockTime::from_nseconds);
    gst::Structure::builder(name)
        .field("media-id", media_id)
        .field("id", m.id.as_str())
        .field("class", m.class.clone().unwrap_or_default())
        .field("start", time(Some(m.start)))
        .field("duration", opt(m.duration))
        .field("planned-duration", opt(m.planned_duration))
        .field(
            "utc",
            m.start_utc
                .map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
        )
        .field("source", m.to_json()["source"].as_str().unwrap_or_default())
        .field("json", m.to_json().to_string())
        .build()
}

/// A structure field as a marker request value: text or a number.
fn field_value(name: &str, value: &glib::SendValue) -> Result<serde_json::Value, ClipError> {
    if let Ok(t) = value.get::<String>() {
        return Ok(serde_json::Value::String(t));
    }
    if let Ok(f) = value.get::<f64>() {
        return Ok(serde_json::json!(f));
    }
    if let Ok(i) = value.get::<i32>() {
        return Ok(serde_json::json!(i));
    }
    if let Ok(i) = value.get::<u32>() {
        return Ok(serde_json::json!(i));
    }
    if let Ok(i) = value.get::<i64>() {
        return Ok(serde_json::json!(i));
    }
    if let Ok(i) = value.get::<u64>() {
        return Ok(serde_json::json!(i));
    }
    Err(ClipError::BadRequest(format!(
        "field {name}: a string or a number, not a {}",
        value.type_()
    )))
}

/// The fields of `s` as a marker request: `id`, `class`, `duration` and
/// `planned-duration` (seconds), `time` and `ago` (text, as the HTTP API
/// takes them), and the rest client attributes (`X-` added to names
/// without it); fields of `skip` are left out.
pub(super) fn mark_fields(s: &gst::StructureRef, skip: &[&str]) -> Result<MarkInput, ClipError> {
    let mut input = MarkInput::default();
    for (name, value) in s.iter() {
        if skip.contains(&name.as_str()) {
            continue;
        }
        let v = field_value(name, value)?;
        let text = || {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| ClipError::BadRequest(format!("field {name}: a string")))
        };
        match name.as_str() {
            "id" => input.id = Some(text()?),
            "class" => input.class = Some(text()?),
            "time" => input.time = Some(text()?),
            "ago" => input.ago = Some(text()?),
            "duration" => input.duration = Some(v),
            "planned-duration" => input.planned_duration = Some(v),
            _ => {
                input.attributes.insert(name.to_string(), v);
            }
        }
    }
    Ok(input)
}

/// The `mark` signal's arguments as a marker request: `attributes`'
/// fields are client attributes, except `time`, `ago` and
/// `planned-duration`.
fn mark_input(
    id: Option<String>,
    class: Option<String>,
    duration: f64,
    attributes: Option<gst::Structure>,
) -> Result<MarkInput, ClipError> {
    let mut input = match &attributes {
        Some(s) => mark_fields(s, &["id", "class", "duration"])?,
        None => MarkInput::default(),
    };
    input.id = id.filter(|i| !i.is_empty());
    input.class = class.filter(|c| !c.is_empty());
    input.duration = (duration > 0.0).then(|| serde_json::json!(duration));
    Ok(input)
}

impl HlsClipSink {
    /// The webhook notice of an automatic marker clip (`marker`) or an
    /// export (`profile`).
    fn notify_clip(
        &self,
        marker: Option<&str>,
        profile: &str,
        done: &ClipDone,
        media_id: Option<&str>,
        location: &std::path::Path,
    ) {
        let mut v = serde_json::json!({
            "event": if marker.is_some() { "marker-clip" } else { "export" },
            "stream_id": self.stream_id(),
            "request_id": done.id,
            "location": location.display().to_string(),
        });
        if let Some(m) = marker {
            v["marker"] = m.into();
        }
        if !profile.is_empty() {
            v["profile"] = profile.into();
        }
        match &done.result {
            Ok((_, info, bytes)) => {
                v["success"] = true.into();
                v["media_id"] = info.media_id.clone().into();
                v["start"] = (info.start as f64 / 1e9).into();
                v["duration"] = (info.duration() as f64 / 1e9).into();
                v["bytes"] = (*bytes).into();
            }
            Err(e) => {
                v["success"] = false.into();
                v["media_id"] = media_id.unwrap_or_default().into();
                v["error"] = e.to_string().into();
            }
        }
        self.notify(v);
    }

    /// Sends `notice` to `webhook-url`, if set.
    pub(super) fn notify(&self, notice: serde_json::Value) {
        let hook = self.webhook.lock().unwrap();
        if let Some(hook) = hook.as_ref()
            && !hook.notify(notice)
        {
            gst::warning!(CAT, imp = self, "webhook queue full: a notice was dropped");
        }
    }

    /// Adds a marker to the live session (the `mark` signal).
    pub(super) fn mark(
        &self,
        id: Option<String>,
        class: Option<String>,
        duration: f64,
        attributes: Option<gst::Structure>,
    ) -> gst::Structure {
        const NAME: &str = "hlsclipsink-mark";
        let result = mark_input(id, class, duration, attributes)
            .and_then(|input| self.service()?.mark(&input, Source::Signal));
        match result {
            Ok((media_id, m)) => marker_structure(NAME, &media_id, &m),
            Err(e) => {
                gst::info!(CAT, imp = self, "marker refused: {e}");
                Self::error_structure(NAME, &e)
            }
        }
    }

    /// The markers of a session as JSON (the `get-markers` signal).
    pub(super) fn markers(&self, media_id: Option<String>) -> gst::Structure {
        const NAME: &str = "hlsclipsink-markers";
        match self.service().and_then(|s| s.markers(media_id.as_deref())) {
            Ok((id, live, markers)) => gst::Structure::builder(NAME)
                .field("media-id", id.as_str())
                .field("live", live)
                .field("count", markers.len() as u32)
                .field("json", markers_json(&id, live, &markers).to_string())
                .build(),
            Err(e) => Self::error_structure(NAME, &e),
        }
    }

    fn error_structure(name: &str, e: &ClipError) -> gst::Structure {
        gst::Structure::builder(name)
            .field("error", e.to_string())
            .field("status", u32::from(e.status()))
            .field("kind", e.kind())
            .build()
    }

    /// `duration` is a duration ("5m"), or a query with one and the
    /// rendition of a ladder ("duration=5m&rendition=360p").
    pub(super) fn preview(&self, media_id: Option<String>, duration: String) -> gst::Structure {
        const NAME: &str = "hlsclipsink-preview";
        let result = preview_request(&duration).and_then(|(d, pick)| {
            let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            self.service()?.preview(media_id.as_deref(), d, &pick)
        });
        match result {
            Ok(p) => gst::Structure::builder(NAME)
                .field("manifest", p.manifest)
                .field("preview-start-seconds", p.start_seconds)
                .field("stream-media-id", p.media_id)
                .field("rendition", p.rendition.unwrap_or_default())
                .build(),
            Err(e) => {
                gst::info!(CAT, imp = self, "preview manifest refused: {e}");
                Self::error_structure(NAME, &e)
            }
        }
    }

    pub(super) fn clip_manifest(&self, media_id: Option<String>, query: String) -> gst::Structure {
        const NAME: &str = "hlsclipsink-clip-manifest";
        let result = ClipRequest::parse_query(&query)
            .and_then(|req| self.service()?.clip_manifest(media_id.as_deref(), &req));
        match result {
            Ok((text, index, range)) => gst::Structure::builder(NAME)
                .field("manifest", text)
                .field("rendition", rendition_of(&index))
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

    pub(super) fn thumbnail(&self, media_id: Option<String>, query: String) -> gst::Structure {
        const NAME: &str = "hlsclipsink-thumbnail";
        let result = StillRequest::parse_query(&query, None).and_then(|req| {
            crate::frames::still::thumbnail(&*self.service()?, media_id.as_deref(), &req)
        });
        match result {
            Ok(still) => gst::Structure::builder(NAME)
                .field("image", gst::Buffer::from_slice(still.image))
                .field("content-type", still.format.media_type())
                .field("media-id", still.media_id)
                .field("time", gst::ClockTime::from_nseconds(still.requested))
                .field("frame-time", gst::ClockTime::from_nseconds(still.frame))
                .field("width", still.width)
                .field("height", still.height)
                .field(
                    "utc",
                    still
                        .utc
                        .map(|u| u.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                        .unwrap_or_default(),
                )
                .build(),
            Err(e) => {
                gst::info!(CAT, imp = self, "thumbnail refused: {e}");
                Self::error_structure(NAME, &e)
            }
        }
    }

    pub(super) fn clip_mp4(&self, media_id: Option<String>, query: String) -> u64 {
        self.clip_mp4_of(media_id, query, None)
    }

    /// Whether `marker-clips` asks for markers like `m` to be clipped.
    pub(super) fn wants_clip(&self, m: &Marker) -> bool {
        let settings = self.settings.lock().unwrap();
        let Some(classes) = settings.marker_clips.as_deref() else {
            return false;
        };
        classes
            .split(',')
            .map(str::trim)
            .any(|c| c == "*" || (!c.is_empty() && m.class.as_deref() == Some(c)))
    }

    /// Clips marker `m` of session `media_id` into a file (an automatic
    /// marker clip): the result is an hlsclipsink-clip-done message with
    /// the marker's id, and a webhook notice.
    pub(super) fn marker_clip(&self, media_id: &str, m: &Marker) -> u64 {
        let id = self.clip_mp4_of(
            Some(media_id.to_string()),
            format!("marker={}", m.id),
            Some(m.id.clone()),
        );
        gst::info!(CAT, imp = self, "clip {id}: marker {} of {media_id}", m.id);
        id
    }

    fn clip_mp4_of(&self, media_id: Option<String>, query: String, marker: Option<String>) -> u64 {
        let weak = self.obj().downgrade();
        let profile = ClipRequest::parse_query(&query)
            .ok()
            .and_then(|r| r.profile)
            .unwrap_or_default();
        let post = move |done: ClipDone, media_id: Option<&str>, location: &std::path::Path| {
            let Some(obj) = weak.upgrade() else { return };
            if marker.is_some() || !profile.is_empty() {
                obj.imp()
                    .notify_clip(marker.as_deref(), &profile, &done, media_id, location);
            }
            let b = gst::Structure::builder("hlsclipsink-clip-done")
                .field("request-id", done.id)
                .field("marker", marker.clone().unwrap_or_default())
                .field("profile", profile.clone())
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
}
