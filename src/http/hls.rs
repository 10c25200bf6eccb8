// SPDX-License-Identifier: MPL-2.0
//! hlsclipsink's routes:
//!
//! ```text
//! GET /{id}/manifest/video.m3u8               live playlist (stream-id) or replay (media-id)
//! GET /{id}/manifest/video.m3u8?duration=5m   preview manifest; headers preview-start-seconds, stream-media-id
//! GET /{id}/manifest/clip.m3u8?time=&duration=  clip manifest (byte ranges, no new file)
//! GET /{id}/clip.mp4?time=&duration=&filename=  MP4 clip, streamed with a Content-Length
//! GET /{id}.m3u8?start=&end=                  the clip manifest, FastPix style
//! GET /{stream-id}/sessions                   sessions.json
//! GET /{id}/markers                           a session's markers
//! POST /{stream-id}/markers                   a marker on the live session
//! GET /{media-id}/{init-N.mp4|segment-N.m4s}  media, with Range
//! ```
//!
//! Each handler takes a [`StreamTarget`], the stream or session `{id}`
//! names; other methods get 405 (`router` in the parent module).

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;

use super::{Params, StreamTarget, clip_error, error, json, no_route, param};
use crate::hls::clip::{ClipError, ClipRequest};
use crate::hls::ladder::Pick;
use crate::hls::markers::{MarkInput, Source, markers_json};
use crate::hls::sessions::is_safe_id;

const M3U8: &str = "application/vnd.apple.mpegurl";

/// Runs blocking work (file reads, waiting for the live edge) off the
/// runtime's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ClipError> + Send + 'static,
) -> Result<T, ClipError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ClipError::Storage(format!("request failed: {e}"))))
}

/// `?token=…` for the URIs of a playlist fetched with a `token=` parameter,
/// so that a player that can't set headers keeps using it.
pub(crate) fn token_suffix(query: &str) -> String {
    match param(query, "token") {
        Some(t) => format!(
            "?token={}",
            form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
        ),
        None => String::new(),
    }
}

/// Points a playlist's relative URIs (segments and EXT-X-MAP) at `prefix`
/// and appends `suffix` to each.
pub(crate) fn rebase_with(text: &str, prefix: &str, suffix: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line.is_empty() {
            out.push('\n');
            continue;
        }
        if !line.starts_with('#') {
            out.push_str(prefix);
            out.push_str(line);
            out.push_str(suffix);
        } else if let Some(i) = line.find("URI=\"") {
            out.push_str(&line[..i + 5]);
            out.push_str(prefix);
            let rest = &line[i + 5..];
            match rest.find('"') {
                Some(q) => {
                    out.push_str(&rest[..q]);
                    out.push_str(suffix);
                    out.push_str(&rest[q..]);
                }
                None => out.push_str(rest),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn playlist(text: String) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, M3U8)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(text))
        .expect("valid response")
}

/// The rendition a query picks (`rendition=`, `height=`).
fn query_pick(query: &str) -> Result<Pick, ClipError> {
    let mut pick = Pick::default();
    for name in ["rendition", "height"] {
        if let Some(v) = param(query, name) {
            pick = crate::hls::clip::parse_pick(name, &v, pick)?;
        }
    }
    Ok(pick)
}

/// A ladder's multivariant playlist whose variants are `file` (the route
/// asked, relative to it) with the request's `query` and `rendition=`.
fn variants(master: &str, file: &str, query: &str) -> String {
    let sep = if query.is_empty() { "" } else { "&" };
    crate::hls::ladder::rewrite_master(master, |name| {
        format!("{file}?{query}{sep}rendition={name}")
    })
}

/// The prefix that takes a playlist's URIs from `up` to the files of
/// session `media_id` (of its ladder's `rendition`).
fn files_of(up: &str, media_id: &str, rendition: Option<&str>) -> String {
    match rendition {
        Some(r) => format!("{up}{media_id}/{r}/"),
        None => format!("{up}{media_id}/"),
    }
}

fn with_media_id(mut r: Response, id: &str) -> Response {
    if let Ok(v) = id.parse() {
        r.headers_mut().insert("stream-media-id", v);
    }
    r
}

/// `GET /{id}/manifest/video.m3u8`: the live or replay playlist, or with
/// `duration` a preview manifest. A ladder session answers a multivariant
/// playlist whose variants are the same request with `rendition=`.
pub(crate) async fn video(
    StreamTarget { service, media }: StreamTarget,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let pick = match query_pick(&query) {
        Ok(p) => p,
        Err(e) => return clip_error(&e),
    };
    let block = match blocking_reload(&query) {
        Ok(b) => b,
        Err(e) => return clip_error(&e),
    };
    if let Some(d) = param(&query, "duration") {
        let duration = match crate::core::timespec::parse_duration(&d) {
            Ok(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Err(e) => return error(400, "bad-request", &format!("duration: {e}")),
        };
        let q = query.clone();
        let result = blocking(move || {
            let p = service.preview(media.as_deref(), duration, &pick)?;
            let master = match pick.is_default() {
                true => service.master(Some(&p.media_id))?,
                false => None,
            };
            // The live session recorded with parts: a low-latency preview
            // of the same segments and the parts after them.
            let from = (p.start_seconds * 1e9).round() as u64;
            let ll = match master {
                None if service.live_media_id().as_deref() == Some(p.media_id.as_str()) => {
                    service.low_latency(&pick, block, Some(from))?
                }
                _ => None,
            };
            if block.is_some() && ll.is_none() {
                return Err(ClipError::BadRequest(
                    "_HLS_msn and _HLS_part are for the live playlists of a stream recorded with part-duration".into(),
                ));
            }
            Ok(match (master, ll) {
                (Some((_, m)), _) => (variants(&m, "video.m3u8", &q), p),
                (None, Some(ll)) => (low_latency_playlist(&ll, &q), p),
                (None, None) => (
                    rebase_with(
                        &p.manifest,
                        &files_of("../../", &p.media_id, p.rendition.as_deref()),
                        &token_suffix(&q),
                    ),
                    p,
                ),
            })
        })
        .await;
        return match result {
            Ok((text, p)) => {
                let mut r = playlist(text);
                if let Ok(v) = format!("{:.3}", p.start_seconds).parse() {
                    r.headers_mut().insert("preview-start-seconds", v);
                }
                with_media_id(r, &p.media_id)
            }
            Err(e) => clip_error(&e),
        };
    }
    let q = query.clone();
    let result = blocking(move || {
        let (id, dir, live) = service.session_dir(media.as_deref())?;
        if pick.is_default()
            && let Some((_, m)) = service.master(Some(&id))?
        {
            return Ok((id, variants(&m, "video.m3u8", &q)));
        }
        // A stream's live playlist with parts: low-latency HLS, from the
        // live index.
        if live
            && media.is_none()
            && let Some(ll) = service.low_latency(&pick, block, None)?
        {
            return Ok((ll.media_id.clone(), low_latency_playlist(&ll, &q)));
        }
        if block.is_some() {
            return Err(ClipError::BadRequest(
                "_HLS_msn and _HLS_part are for the live playlist of a stream recorded with part-duration".into(),
            ));
        }
        // A stream's playlist is the live window while it is recorded.
        let name = if live && media.is_none() {
            crate::hls::playlist::LIVE
        } else {
            crate::hls::playlist::REPLAY
        };
        let index = service.pick_rendition(Some(&id), &pick)?;
        let (dir, prefix) = match &index {
            Some(r) => (dir.join(r), format!("../../{id}/{r}/")),
            None => (dir, format!("../../{id}/")),
        };
        match std::fs::read_to_string(dir.join(name)) {
            Ok(text) => Ok((id, rebase_with(&text, &prefix, &token_suffix(&q)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ClipError::NotYet(format!(
                "session {id} has no complete segment yet"
            ))),
            Err(e) => Err(ClipError::Storage(e.to_string())),
        }
    })
    .await;
    match result {
        Ok((id, text)) => with_media_id(playlist(text), &id),
        Err(e) => clip_error(&e),
    }
}

/// `_HLS_msn` and `_HLS_part` of a blocking playlist reload.
fn blocking_reload(query: &str) -> Result<Option<(u64, Option<u64>)>, ClipError> {
    let number = |name: &str| -> Result<Option<u64>, ClipError> {
        param(query, name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ClipError::BadRequest(format!("{name}: {v:?} is not a whole number"))
                })
            })
            .transpose()
    };
    match (number("_HLS_msn")?, number("_HLS_part")?) {
        (Some(msn), part) => Ok(Some((msn, part))),
        (None, Some(_)) => Err(ClipError::BadRequest("_HLS_part needs _HLS_msn".into())),
        (None, None) => Ok(None),
    }
}

/// A low-latency playlist with its URIs pointed at the session's files and
/// the other renditions reported as the same route (`query` keeps the
/// token).
fn low_latency_playlist(ll: &crate::hls::service::LowLatency, query: &str) -> String {
    let text = crate::hls::lowlatency::render(&ll.index, 0, true, &[]);
    let mut out = rebase_with(
        &text,
        &files_of("../../", &ll.media_id, ll.rendition.as_deref()),
        &token_suffix(query),
    );
    let token = param(query, "token")
        .map(|t| {
            format!(
                "&token={}",
                form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
            )
        })
        .unwrap_or_default();
    let reports: Vec<crate::hls::lowlatency::RenditionReport> = ll
        .reports
        .iter()
        .map(
            |(name, msn, part)| crate::hls::lowlatency::RenditionReport {
                uri: format!("video.m3u8?rendition={name}{token}"),
                last_msn: *msn,
                last_part: *part,
            },
        )
        .collect();
    out.push_str(&crate::hls::lowlatency::report_lines(&reports));
    out
}

/// `GET /{id}/manifest/clip.m3u8`: a clip manifest.
pub(crate) async fn clip_manifest(target: StreamTarget, RawQuery(query): RawQuery) -> Response {
    manifest(target, &query.unwrap_or_default(), "../../", "clip.m3u8").await
}

/// A clip manifest whose URIs go `up` to the listener's root; `file` is
/// the route's last path segment (a ladder's variants are it again, with
/// `rendition=`).
pub(crate) async fn manifest(
    StreamTarget { service, media }: StreamTarget,
    query: &str,
    up: &str,
    file: &str,
) -> Response {
    let request = match ClipRequest::parse_query(query) {
        Ok(r) if r.profile.is_some() => {
            return error(
                400,
                "bad-request",
                "a clip manifest reuses the stored segments: profile is for exports (POST /{id}/exports)",
            );
        }
        Ok(r) => r,
        Err(e) => return clip_error(&e),
    };
    let (q, up, file) = (query.to_string(), up.to_string(), file.to_string());
    let result = blocking(move || {
        let (text, index, _) = service.clip_manifest(media.as_deref(), &request)?;
        let master = match request.rendition.is_default() {
            true => service.master(Some(&index.media_id))?,
            false => None,
        };
        Ok(match master {
            Some((_, m)) => (variants(&m, &file, &q), index.media_id),
            None => (
                rebase_with(
                    &text,
                    &files_of(
                        &up,
                        &index.media_id,
                        index.rendition.as_ref().map(|r| r.name.as_str()),
                    ),
                    &token_suffix(&q),
                ),
                index.media_id,
            ),
        })
    })
    .await;
    match result {
        Ok((text, id)) => with_media_id(playlist(text), &id),
        Err(e) => clip_error(&e),
    }
}

/// A download name: letters, digits, `-`, `_`, `.`; at most 100 bytes;
/// ending in `.mp4`.
pub(crate) fn sanitize_filename(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    out = out.trim_start_matches('.').to_string();
    out.truncate(100);
    if !out.to_ascii_lowercase().ends_with(".mp4") {
        out.push_str(".mp4");
    }
    if out == ".mp4" {
        out = "clip.mp4".into();
    }
    out
}

/// `GET /{id}/clip.mp4`: an MP4 clip, streamed with a Content-Length.
pub(crate) async fn clip_mp4(
    StreamTarget { service, media }: StreamTarget,
    RawQuery(query): RawQuery,
) -> Response {
    let request = match ClipRequest::parse_query(&query.unwrap_or_default()) {
        Ok(r) => r,
        Err(e) => return clip_error(&e),
    };
    if request.location.is_some() {
        return error(
            400,
            "bad-request",
            "location is for the clip-mp4 signal; over HTTP the clip is the response (use filename)",
        );
    }
    if request.profile.is_some() {
        return error(
            400,
            "bad-request",
            "an export takes seconds: POST /{id}/exports with the same query, then follow it",
        );
    }
    let req_clone = request.clone();
    // On the blocking pool, under the same permits as the clip-mp4 signal.
    let result = blocking(move || {
        service.with_permit(|| {
            let (clip, info) = service.make_clip(media.as_deref(), &req_clone)?;
            let (size, chunks) = clip
                .chunks()
                .map_err(|e| ClipError::Storage(e.to_string()))?;
            Ok((size, chunks, info))
        })
    })
    .await;
    let (size, chunks, info) = match result {
        Ok(r) => r,
        Err(e) => return clip_error(&e),
    };
    let filename = sanitize_filename(request.filename.as_deref().unwrap_or(&format!(
        "{}-{:.3}s.mp4",
        info.media_id,
        info.start as f64 / 1e9
    )));
    let body = Body::from_stream(futures_util::stream::iter(
        chunks.into_iter().map(Ok::<_, Infallible>),
    ));
    Response::builder()
        .header(header::CONTENT_TYPE, "video/mp4")
        .header(header::CONTENT_LENGTH, size)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        )
        .header(header::CACHE_CONTROL, "no-store")
        .header("stream-media-id", info.media_id.as_str())
        .header(
            "clip-start-seconds",
            format!("{:.6}", info.start as f64 / 1e9),
        )
        .header(
            "clip-duration-seconds",
            format!("{:.6}", info.duration() as f64 / 1e9),
        )
        .header(
            "clip-preroll-seconds",
            format!("{:.6}", info.preroll() as f64 / 1e9),
        )
        .body(body)
        .expect("valid response")
}

/// `GET /{stream-id}/sessions`: sessions.json.
pub(crate) async fn sessions(StreamTarget { service, media }: StreamTarget, uri: Uri) -> Response {
    if media.is_some() {
        return no_route(&uri);
    }
    let dir = service.stream_dir().to_path_buf();
    let Ok(sessions) =
        tokio::task::spawn_blocking(move || crate::hls::sessions::SessionsFile::load(&dir, ""))
            .await
    else {
        return error(500, "storage", "sessions.json could not be read");
    };
    match serde_json::to_value(&sessions) {
        Ok(v) => json(&v),
        Err(e) => error(500, "storage", &e.to_string()),
    }
}

/// `POST /{id}/exports?profile=&time=&duration=`: queues an export (202
/// with where to follow it).
pub(crate) async fn start_export(
    StreamTarget { service, media }: StreamTarget,
    RawQuery(query): RawQuery,
    uri: Uri,
) -> Response {
    let request = match ClipRequest::parse_query(&query.unwrap_or_default()) {
        Ok(r) => r,
        Err(e) => return clip_error(&e),
    };
    if request.location.is_some() {
        return error(400, "bad-request", "location is for the clip-mp4 signal");
    }
    let base = uri.path().trim_end_matches('/').to_string();
    match service.start_export(media, request) {
        Ok(id) => {
            let mut r = json(&serde_json::json!({
                "export_id": id,
                "status": format!("{base}/{id}"),
                "file": format!("{base}/{id}/clip.mp4"),
            }));
            *r.status_mut() = StatusCode::ACCEPTED;
            r
        }
        Err(e) => clip_error(&e),
    }
}

/// `GET /{id}/exports`: the export profiles.
pub(crate) async fn export_profiles(StreamTarget { service, .. }: StreamTarget) -> Response {
    let profiles: Vec<serde_json::Value> = service
        .profiles()
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "width": p.width,
                "height": p.height,
                "fit": match p.fit {
                    crate::core::thumbs::Fit::Pad => "pad",
                    _ => "crop",
                },
                "video_kbps": p.video_kbps,
                "audio_kbps": p.audio_kbps,
                "max_duration": p.max_duration.as_secs(),
            })
        })
        .collect();
    json(&serde_json::json!({ "profiles": profiles }))
}

/// `GET /{id}/exports/{n}`: where export `n` stands.
pub(crate) async fn export_status(
    StreamTarget { service, .. }: StreamTarget,
    Params((_, n)): Params<(String, u64)>,
) -> Response {
    match service.export_job(n) {
        Some(job) => json(&job.to_json()),
        None => error(
            404,
            "not-found",
            &format!("no export {n} (the newest 32 are kept)"),
        ),
    }
}

/// `GET /{id}/exports/{n}/clip.mp4`: the exported file once done (425
/// before, the export's error if it failed).
pub(crate) async fn export_file(
    StreamTarget { service, .. }: StreamTarget,
    Params((_, n)): Params<(String, u64)>,
) -> Response {
    use crate::hls::service::ExportState;
    let Some(job) = service.export_job(n) else {
        return error(
            404,
            "not-found",
            &format!("no export {n} (the newest 32 are kept)"),
        );
    };
    match job.state {
        ExportState::Done { path, .. } => {
            match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
                Ok(Ok(bytes)) => Response::builder()
                    .header(header::CONTENT_TYPE, "video/mp4")
                    .header(
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"export-{n}-{}.mp4\"", job.profile),
                    )
                    .body(Body::from(bytes))
                    .expect("valid response"),
                _ => error(410, "gone", &format!("export {n}'s file is gone")),
            }
        }
        ExportState::Failed(e) => clip_error(&e),
        _ => error(
            425,
            "not-yet",
            &format!("export {n} is not done yet: follow /{{id}}/exports/{n}"),
        ),
    }
}

/// Longest marker request body.
const MAX_MARKER_BODY: usize = 64 * 1024;

/// `GET /{id}/markers`: the markers of the live or newest session of a
/// stream, or of a session.
pub(crate) async fn markers(StreamTarget { service, media }: StreamTarget) -> Response {
    match blocking(move || service.markers(media.as_deref())).await {
        Ok((id, live, markers)) => json(&markers_json(&id, live, &markers)),
        Err(e) => clip_error(&e),
    }
}

/// `POST /{stream-id}/markers`: a marker on the session being recorded
/// (201 with it, or a JSON error).
pub(crate) async fn add_marker(
    StreamTarget { service, media }: StreamTarget,
    body: axum::body::Bytes,
) -> Response {
    if let Some(id) = media {
        return error(
            405,
            "method-not-allowed",
            &format!(
                "{id} is a session: markers are added to the session being recorded, with \
                 POST /{{stream-id}}/markers"
            ),
        );
    }
    if body.len() > MAX_MARKER_BODY {
        return error(
            413,
            "too-large",
            &format!("a marker is at most {MAX_MARKER_BODY} bytes of JSON"),
        );
    }
    let input = match MarkInput::from_json(&body) {
        Ok(i) => i,
        Err(e) => return clip_error(&e),
    };
    match blocking(move || service.mark(&input, Source::Api)).await {
        Ok((media_id, marker)) => {
            let mut r = json(&serde_json::json!({
                "media_id": media_id,
                "marker": marker.to_json(),
            }));
            *r.status_mut() = StatusCode::CREATED;
            r
        }
        Err(e) => clip_error(&e),
    }
}

/// Whether `path` is a file a session directory serves: a file of the
/// session's own directory, or of a ladder rendition's (`720p/init.mp4`),
/// or a ladder's `master.m3u8`.
fn servable(path: &str) -> Option<&'static str> {
    match path.split_once('/') {
        Some((rendition, name)) if is_safe_id(rendition) && !name.contains('/') => {
            servable_name(name)
        }
        Some(_) => None,
        None if path == crate::hls::ladder::MASTER => Some(M3U8),
        None => servable_name(path),
    }
}

/// Whether `name` is a file a rendition's directory serves.
fn servable_name(name: &str) -> Option<&'static str> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if name == "init.mp4"
        || name
            .strip_prefix("init-")
            .and_then(|r| r.strip_suffix(".mp4"))
            .is_some_and(digits)
    {
        return Some("video/mp4");
    }
    if name
        .strip_prefix("segment-")
        .and_then(|r| r.strip_suffix(".m4s"))
        .is_some_and(digits)
    {
        return Some("video/iso.segment");
    }
    match name {
        "replay.m3u8" | "live.m3u8" => Some(M3U8),
        _ => None,
    }
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range of a `len`-byte
/// file: `Ok(None)` for no Range header, `Err` when it can't be satisfied.
pub(crate) fn parse_range(value: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = value else { return Ok(None) };
    let spec = v.trim().strip_prefix("bytes=").ok_or(())?;
    if spec.contains(',') {
        return Err(());
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            len
        } else {
            b.parse::<u64>().map_err(|_| ())?.saturating_add(1).min(len)
        };
        (start, end)
    };
    if start >= end || start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// `GET /{media-id}/{file}`: a session's init segment, media segment or
/// playlist, with Range.
pub(crate) async fn media_file(
    StreamTarget { service, media }: StreamTarget,
    Params((_, file)): Params<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(media) = media else {
        return no_route(&uri);
    };
    let Some(content_type) = servable(&file) else {
        return error(
            404,
            "not-found",
            &format!("{file:?} is not an init segment, media segment or playlist"),
        );
    };
    let dir = service.stream_dir().to_path_buf();
    let range = headers
        .get(header::RANGE)
        .map(|v| v.to_str().unwrap_or("invalid").to_string());
    // `bytes=N-` at the end of the segment being written: a player's
    // preload hint of the next low-latency part, answered when it is
    // written.
    let hinted = range
        .as_deref()
        .and_then(|r| r.trim().strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<u64>().ok());
    let (m, f) = (media, file.clone());
    let data = tokio::task::spawn_blocking(move || {
        let data = read_media(&dir, &m, &f);
        match (hinted, &data) {
            (Some(at), Ok(d)) if at >= d.len() as u64 && service.wait_grown(&m, &f, at) => {
                read_media(&dir, &m, &f)
            }
            (Some(_), Err(ClipError::NotFound(_))) if service.wait_grown(&m, &f, 0) => {
                read_media(&dir, &m, &f)
            }
            _ => data,
        }
    })
    .await;
    let data = match data {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return clip_error(&e),
        Err(e) => return error(500, "storage", &format!("request failed: {e}")),
    };
    let range = range.as_deref();
    ranged(data, content_type, range, &file)
}

/// `data` as the answer to a request with an optional `Range` header: the
/// whole file, one range (206), or 416 with the size.
fn ranged(data: Vec<u8>, content_type: &str, range: Option<&str>, name: &str) -> Response {
    let len = data.len() as u64;
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT_RANGES, "bytes");
    match parse_range(range, len) {
        Ok(None) => builder
            .header(header::CONTENT_LENGTH, len)
            .body(Body::from(data))
            .expect("valid response"),
        Ok(Some((a, b))) => builder
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {a}-{}/{len}", b - 1))
            .header(header::CONTENT_LENGTH, b - a)
            .body(Body::from(data[a as usize..b as usize].to_vec()))
            .expect("valid response"),
        Err(()) => {
            let mut r = error(
                416,
                "out-of-range",
                &format!("the range {range:?} is outside the {len} bytes of {name}"),
            );
            if let Ok(v) = format!("bytes */{len}").parse() {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
    }
}

/// A session file's bytes (read on a blocking thread), or why it is not
/// there: gone (410) for what retention deleted, else not found (404).
fn read_media(stream_dir: &std::path::Path, media: &str, path: &str) -> Result<Vec<u8>, ClipError> {
    let session = stream_dir.join(media);
    let (dir, file) = match path.split_once('/') {
        Some((rendition, file)) => (session.join(rendition), file),
        None => (session.clone(), path),
    };
    match std::fs::read(dir.join(file)) {
        Ok(d) => Ok(d),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !session.exists() {
                return Err(ClipError::Gone(format!(
                    "session {media} was deleted (retention)"
                )));
            }
            // A segment numbered below the replay's first was deleted.
            let deleted = file.starts_with("segment-")
                && std::fs::read_to_string(dir.join(crate::hls::playlist::REPLAY))
                    .ok()
                    .and_then(|t| m3u8_rs::parse_media_playlist_res(t.as_bytes()).ok())
                    .and_then(|p| {
                        let n: u64 = file
                            .trim_start_matches("segment-")
                            .trim_end_matches(".m4s")
                            .parse()
                            .ok()?;
                        Some(n < p.media_sequence)
                    })
                    .unwrap_or(false);
            Err(if deleted {
                ClipError::Gone(format!("{media}/{path} was deleted (retention)"))
            } else {
                ClipError::NotFound(format!("session {media} has no {path}"))
            })
        }
        Err(e) => Err(ClipError::Storage(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 10))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 100))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 100))));
        assert_eq!(parse_range(Some("bytes=95-200"), 100), Ok(Some((95, 100))));
        for bad in [
            "bytes=100-",
            "bytes=5-2",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=-0",
            "bytes=x-",
        ] {
            assert_eq!(parse_range(Some(bad), 100), Err(()), "{bad}");
        }
    }

    #[test]
    fn filenames_are_sanitised() {
        assert_eq!(sanitize_filename("goal.mp4"), "goal.mp4");
        assert_eq!(sanitize_filename("../../etc/passwd"), "_.._etc_passwd.mp4");
        assert_eq!(sanitize_filename("a\"b\r\nc"), "a_b__c.mp4");
        assert_eq!(sanitize_filename(""), "clip.mp4");
        assert!(sanitize_filename(&"x".repeat(500)).len() <= 104);
    }

    #[test]
    fn tokens_follow_the_uris() {
        let text = "#EXT-X-MAP:URI=\"init.mp4\"\nsegment-00000.m4s\n";
        assert_eq!(
            rebase_with(text, "m/", "?token=a%2Bb"),
            "#EXT-X-MAP:URI=\"m/init.mp4?token=a%2Bb\"\nm/segment-00000.m4s?token=a%2Bb\n"
        );
    }

    #[test]
    fn playlists_are_rebased() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\nsegment-00000.m4s\n";
        assert_eq!(
            rebase_with(text, "../../m1/", ""),
            "#EXTM3U\n#EXT-X-MAP:URI=\"../../m1/init.mp4\"\n#EXTINF:2,\n../../m1/segment-00000.m4s\n"
        );
    }

    #[test]
    fn only_session_files_are_served() {
        assert_eq!(servable("init.mp4"), Some("video/mp4"));
        assert_eq!(servable("init-3.mp4"), Some("video/mp4"));
        assert_eq!(servable("segment-00012.m4s"), Some("video/iso.segment"));
        for bad in [
            "sessions.json",
            "init-.mp4",
            "segment-1.m4s.partial",
            "..",
            "x.mp4",
        ] {
            assert_eq!(servable(bad), None, "{bad}");
        }
    }
}
