// SPDX-License-Identifier: MPL-2.0
//! periodicclipper's routes, in the style of Ant Media's REST API:
//!
//! ```text
//! POST   /{name}/periodic-recording/{seconds}   start periodic clips every `seconds`
//! DELETE /{name}/periodic-recording             stop periodic clips
//! POST   /{name}/mp4?returnFile=true|false      a clip since the last one: the MP4, or JSON
//! ```
//!
//! Any other method or path under the name is a 404 that lists these.

use std::time::Duration;

use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::header;
use axum::response::Response;

use super::{ClipperTarget, Params, error, json, param};

/// A clip periodicclipper has written.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipReady {
    pub location: String,
    pub index: u64,
    pub trigger: String,
    /// ns.
    pub duration: u64,
    pub recording_time: u64,
    pub utc: String,
    pub bytes: u64,
}

impl ClipReady {
    /// The JSON a webhook or an HTTP answer carries.
    pub fn to_json(&self, element: &str) -> serde_json::Value {
        serde_json::json!({
            "event": "clip-ready",
            "element": element,
            "location": self.location,
            "index": self.index,
            "trigger": self.trigger,
            "duration": self.duration as f64 / 1e9,
            "recordingTime": self.recording_time as f64 / 1e9,
            "utc": self.utc,
            "bytes": self.bytes,
        })
    }
}

/// What the HTTP API can ask of a periodicclipper.
pub trait Clipper: Send + Sync {
    fn name(&self) -> String;
    /// Starts periodic clips every `seconds` (> 0).
    fn start_periodic(&self, seconds: u32) -> bool;
    fn stop_periodic(&self);
    /// Asks for a clip since the last one; its location, or `None` when the
    /// element is not running.
    fn clip_now(&self) -> Option<String>;
    /// Waits (blocking) until the clip at `location` is written.
    fn wait_ready(&self, location: &str, timeout: Duration) -> Option<ClipReady>;
}

/// How long `POST /{name}/mp4` waits for the next keyframe and the write.
const CLIP_TIMEOUT: Duration = Duration::from_secs(30);

/// 404 for anything else under a clipper's name: what it answers.
pub(crate) fn not_found(name: &str) -> Response {
    error(
        404,
        "not-found",
        &format!(
            "{name} answers POST /{name}/periodic-recording/{{seconds}}, DELETE /{name}/periodic-recording and POST /{name}/mp4"
        ),
    )
}

/// `POST /{name}/periodic-recording/{seconds}`.
pub(crate) async fn start_periodic(
    ClipperTarget(clipper): ClipperTarget,
    Params((_, seconds)): Params<(String, String)>,
) -> Response {
    let name = clipper.name();
    let Ok(seconds) = seconds.parse::<u32>() else {
        return error(
            400,
            "bad-request",
            &format!("{seconds:?} is not a whole number of seconds"),
        );
    };
    if seconds == 0 || seconds > 7 * 24 * 3600 {
        return error(
            400,
            "bad-request",
            "the period must be between 1 and 604800 seconds",
        );
    }
    if !clipper.start_periodic(seconds) {
        return error(503, "not-running", &format!("{name} is not running"));
    }
    json(&serde_json::json!({ "success": true, "element": name, "interval": seconds }))
}

/// `DELETE /{name}/periodic-recording`.
pub(crate) async fn stop_periodic(ClipperTarget(clipper): ClipperTarget) -> Response {
    clipper.stop_periodic();
    json(&serde_json::json!({ "success": true, "element": clipper.name() }))
}

/// `POST /{name}/mp4?returnFile=true|false`: a clip since the last one.
pub(crate) async fn mp4(
    ClipperTarget(clipper): ClipperTarget,
    RawQuery(query): RawQuery,
) -> Response {
    let name = clipper.name();
    let return_file = match param(&query.unwrap_or_default(), "returnFile").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return error(
                400,
                "bad-request",
                &format!("returnFile is {other:?}; use true or false"),
            );
        }
    };
    let ready = tokio::task::spawn_blocking(move || {
        let location = clipper.clip_now()?;
        clipper.wait_ready(&location, CLIP_TIMEOUT)
    })
    .await
    .ok()
    .flatten();
    let Some(ready) = ready else {
        return error(
            503,
            "not-running",
            &format!(
                "{name} made no clip within {} s: is the pipeline playing and receiving keyframes?",
                CLIP_TIMEOUT.as_secs()
            ),
        );
    };
    if !return_file {
        let mut v = ready.to_json(&name);
        v["success"] = true.into();
        return json(&v);
    }
    let location = ready.location.clone();
    let read = tokio::task::spawn_blocking(move || std::fs::read(location)).await;
    match read.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
        Ok(data) => {
            let file = std::path::Path::new(&ready.location)
                .file_name()
                .map(|f| super::hls::sanitize_filename(&f.to_string_lossy()))
                .unwrap_or_else(|| "clip.mp4".into());
            Response::builder()
                .header(header::CONTENT_TYPE, "video/mp4")
                .header(header::CONTENT_LENGTH, data.len())
                .header(
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{file}\""),
                )
                .body(Body::from(data))
                .expect("valid response")
        }
        Err(e) => error(
            410,
            "gone",
            &format!("{} is no longer there: {e}", ready.location),
        ),
    }
}
