// SPDX-License-Identifier: MPL-2.0
//! Still images of a recorded moment:
//!
//! ```text
//! GET /{id}/thumbnails/thumbnail.{jpg|png|webp}?time=&width=&height=&fit_mode=
//! GET /{id}/storyboard.{vtt|json|jpg}
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

/// The three files of a storyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoryboardFile {
    Vtt,
    Json,
    Sprite,
}

/// `GET /{id}/storyboard.vtt`: WebVTT cues pointing at the sprite's tiles.
pub(crate) async fn storyboard_vtt(target: StreamTarget, RawQuery(query): RawQuery) -> Response {
    storyboard(target, query, StoryboardFile::Vtt).await
}

/// `GET /{id}/storyboard.json`: the tiles in Mux's shape.
pub(crate) async fn storyboard_json(target: StreamTarget, RawQuery(query): RawQuery) -> Response {
    storyboard(target, query, StoryboardFile::Json).await
}

/// `GET /{id}/storyboard.jpg`: the sprite.
pub(crate) async fn storyboard_jpg(target: StreamTarget, RawQuery(query): RawQuery) -> Response {
    storyboard(target, query, StoryboardFile::Sprite).await
}

/// A storyboard of the session (`frames::storyboard`): the VTT and the
/// JSON name the sprite relative to themselves (`storyboard.jpg`, with the
/// request's `token=`); an ended session's, named by its id, never changes.
async fn storyboard(
    StreamTarget { service, media }: StreamTarget,
    query: Option<String>,
    file: StoryboardFile,
) -> Response {
    let named = media.is_some();
    let result = tokio::task::spawn_blocking(move || {
        use crate::frames::storyboard::{layout, sprite};
        match file {
            StoryboardFile::Sprite => sprite(&service, media.as_deref()).map(|(p, j)| (p, Some(j))),
            _ => layout(&service, media.as_deref()).map(|p| (p, None)),
        }
    })
    .await
    .unwrap_or_else(|e| Err(ClipError::Storage(format!("request failed: {e}"))));
    let (plan, jpeg) = match result {
        Ok(r) => r,
        Err(e) => return clip_error(&e),
    };
    let url = format!(
        "storyboard.jpg{}",
        super::hls::token_suffix(&query.unwrap_or_default())
    );
    let (media_type, body) = match (file, jpeg) {
        (StoryboardFile::Sprite, Some(jpeg)) => ("image/jpeg", jpeg),
        (StoryboardFile::Json, _) => (
            "application/json",
            bytes::Bytes::from(plan.json(&url).to_string()),
        ),
        _ => (
            "text/vtt; charset=utf-8",
            bytes::Bytes::from(plan.vtt(&url)),
        ),
    };
    let cache = if named && !plan.live {
        IMMUTABLE
    } else {
        "no-cache"
    };
    Response::builder()
        .header(header::CONTENT_TYPE, media_type)
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, cache)
        .header("stream-media-id", plan.media_id.as_str())
        .body(Body::from(body))
        .expect("valid response")
}

/// `GET /{id}/animated.gif`.
pub(crate) async fn animated_gif(target: StreamTarget, RawQuery(query): RawQuery) -> Response {
    animated(target, query, crate::motionclipenc::ClipFormat::Gif).await
}

/// `GET /{id}/animated.mp4`.
pub(crate) async fn animated_mp4(target: StreamTarget, RawQuery(query): RawQuery) -> Response {
    animated(target, query, crate::motionclipenc::ClipFormat::Mp4).await
}

/// `GET /{id}/animated.webp`: not made here (GStreamer's webpenc of this
/// platform writes still images only).
pub(crate) async fn animated_webp(_: StreamTarget) -> Response {
    error(
        404,
        "not-found",
        "animated WebP is not available (this GStreamer's webpenc makes still images): use animated.gif or animated.mp4",
    )
}

/// A muted motion clip of a range (`start`/`time`, `end` or `duration`,
/// `width`, `height`, `fit_mode`, `fps`).
async fn animated(
    StreamTarget { service, media }: StreamTarget,
    query: Option<String>,
    format: crate::motionclipenc::ClipFormat,
) -> Response {
    use crate::frames::animated::{AnimatedRequest, animation};
    let content_type = match format {
        crate::motionclipenc::ClipFormat::Gif => "image/gif",
        crate::motionclipenc::ClipFormat::Mp4 => "video/mp4",
    };
    let request = match AnimatedRequest::parse_query(&query.unwrap_or_default(), format) {
        Ok(r) => r,
        Err(e) => return clip_error(&e),
    };
    let result = tokio::task::spawn_blocking(move || {
        let max = service.limits().max_animated;
        animation(&service, media.as_deref(), &request, max)
    })
    .await
    .unwrap_or_else(|e| Err(ClipError::Storage(format!("request failed: {e}"))));
    let made = match result {
        Ok(m) => m,
        Err(e) => return clip_error(&e),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, made.bytes.len())
        .header(header::CACHE_CONTROL, "no-cache")
        .header("stream-media-id", made.media_id.as_str())
        .header(
            "clip-start-seconds",
            format!("{:.6}", made.start as f64 / 1e9),
        )
        .header(
            "clip-duration-seconds",
            format!("{:.6}", made.duration as f64 / 1e9),
        )
        .header("animation-frames", made.frames)
        .body(Body::from(made.bytes))
        .expect("valid response")
}
