// SPDX-License-Identifier: MPL-2.0
//! Still images of a recorded moment:
//!
//! ```text
//! GET /{id}/thumbnails/thumbnail.{jpg|png|webp}?time=&width=&height=&fit_mode=
//! ```
//!
//! The request model and the errors are the `get-thumbnail` signal's
//! (`hls::still`, `frames::still`); the work runs on tokio's blocking pool,
//! decoding under the stream's clip permits.

use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::{Uri, header};
use axum::response::Response;

use super::{Params, StreamTarget, clip_error, error, no_route};
use crate::hls::clip::ClipError;
use crate::hls::still::{StillFormat, StillRequest};

/// How long a still of an ended session may be kept: it never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET /{id}/thumbnails/{file}`: the still at `time`, `file` being
/// `thumbnail.jpg`, `thumbnail.png` or `thumbnail.webp`.
pub(crate) async fn thumbnail(
    StreamTarget { service, media }: StreamTarget,
    Params((_, file)): Params<(String, String)>,
    RawQuery(query): RawQuery,
    uri: Uri,
) -> Response {
    let Some(format) = file
        .strip_prefix("thumbnail.")
        .and_then(StillFormat::from_extension)
    else {
        if file.starts_with("thumbnail.") {
            return error(
                404,
                "not-found",
                &format!(
                    "no image format {file:?}: thumbnail.jpg, thumbnail.png or thumbnail.webp"
                ),
            );
        }
        return no_route(&uri);
    };
    let request = match StillRequest::parse_query(&query.unwrap_or_default(), Some(format)) {
        Ok(r) => r,
        Err(e) => return clip_error(&e),
    };
    // A URL that names the session and a time in it always means the same
    // frame once the session has ended.
    let fixed = media.is_some() && request.clip.start.is_some();
    let result = tokio::task::spawn_blocking(move || {
        crate::frames::still::thumbnail(&service, media.as_deref(), &request)
    })
    .await
    .unwrap_or_else(|e| Err(ClipError::Storage(format!("request failed: {e}"))));
    let still = match result {
        Ok(s) => s,
        Err(e) => return clip_error(&e),
    };
    let cache = if fixed && !still.live {
        IMMUTABLE
    } else {
        "no-cache"
    };
    Response::builder()
        .header(header::CONTENT_TYPE, still.format.media_type())
        .header(header::CONTENT_LENGTH, still.image.len())
        .header(header::CACHE_CONTROL, cache)
        .header("stream-media-id", still.media_id.as_str())
        .header(
            "thumbnail-time-seconds",
            format!("{:.6}", still.frame as f64 / 1e9),
        )
        .body(Body::from(still.image))
        .expect("valid response")
}
