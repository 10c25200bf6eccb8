// SPDX-License-Identifier: MPL-2.0
//! Clip requests against a session: the request model shared by the action
//! signals and the HTTP API, and the three answers: a preview manifest (the
//! last minutes), a clip manifest (the stored fragments, by byte range: no
//! new file) and an MP4 clip cut straight from the stored fragments (no
//! demux/remux pipeline), starting at the keyframe at or before the start
//! with an edit list that begins presentation at the requested instant.
//!
//! Everything here is pure over a [`SessionIndex`] plus reads of the stored
//! files; waiting for the live edge and concurrency are the caller's
//! (`hls::service`).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use m3u8_rs::{ByteRange, MediaPlaylist, MediaPlaylistType, MediaSegment};

use super::index::SessionIndex;
use super::sessions::is_safe_id;
use crate::core::TrackKind;
use crate::core::timespec::{TimePoint, parse_duration, parse_time_point};
use crate::mp4::scan::read_moov;
use crate::mp4::scan::{StoredTrack, fragment_samples};
use crate::mp4::{ClipTrack, CodecConfig, Mp4Clip};

/// Where presentation of a clip begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accuracy {
    /// At the requested instant (the pre-roll from the keyframe is hidden).
    #[default]
    Frame,
    /// At the keyframe at or before the requested instant.
    Keyframe,
    /// At the requested instant without an edit list: the frames from it
    /// to the next keyframe are re-encoded (a smart cut), every later GOP
    /// is copied, and a mid-GOP end that copying would carry past the
    /// requested end (B-frames) is re-encoded from the last keyframe.
    Exact,
    /// Like [`Accuracy::Exact`] at the start; the end is copied, so with
    /// B-frames it may run over by the reordering depth (a frame or two):
    /// one GOP re-encoded at most instead of two.
    ExactStart,
}

impl Accuracy {
    /// Whether the clip is a smart cut without an edit list.
    pub fn is_exact(self) -> bool {
        matches!(self, Accuracy::Exact | Accuracy::ExactStart)
    }
}

/// Why a request can't be answered. Each kind has an HTTP status
/// ([`ClipError::status`]) and a reason a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClipError {
    /// A parameter is missing, malformed or beyond a limit (400).
    BadRequest(String),
    /// No such session (404).
    NotFound(String),
    /// The media was deleted by retention (410).
    Gone(String),
    /// The range lies outside what the session recorded (416).
    OutOfRange(String),
    /// The range crosses a codec change (422).
    CrossesCodecChange,
    /// The range is further in the future than a request waits for (425).
    NotYet(String),
    /// Too many clips are being made (429).
    Busy(String),
    /// The request contradicts what exists (409), e.g. a marker id that
    /// is taken.
    Conflict(String),
    /// The request asks for something this media can't be given (422),
    /// e.g. an exact cut of a codec profile no encoder here matches.
    Unsupported(String),
    /// A stored file could not be read or written (500).
    Storage(String),
}

impl ClipError {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            ClipError::BadRequest(_) => 400,
            ClipError::NotFound(_) => 404,
            ClipError::Gone(_) => 410,
            ClipError::OutOfRange(_) => 416,
            ClipError::CrossesCodecChange => 422,
            ClipError::NotYet(_) => 425,
            ClipError::Busy(_) => 429,
            ClipError::Conflict(_) => 409,
            ClipError::Unsupported(_) => 422,
            ClipError::Storage(_) => 500,
        }
    }

    /// A short machine-readable name: `bad-request`, `not-found`, `gone`,
    /// `out-of-range`, `codec-change`, `not-yet`, `busy`, `conflict`,
    /// `unsupported`, `storage`.
    pub fn kind(&self) -> &'static str {
        match self {
            ClipError::BadRequest(_) => "bad-request",
            ClipError::NotFound(_) => "not-found",
            ClipError::Gone(_) => "gone",
            ClipError::OutOfRange(_) => "out-of-range",
            ClipError::CrossesCodecChange => "codec-change",
            ClipError::NotYet(_) => "not-yet",
            ClipError::Busy(_) => "busy",
            ClipError::Conflict(_) => "conflict",
            ClipError::Unsupported(_) => "unsupported",
            ClipError::Storage(_) => "storage",
        }
    }
}

impl std::fmt::Display for ClipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClipError::BadRequest(s)
            | ClipError::NotFound(s)
            | ClipError::Gone(s)
            | ClipError::OutOfRange(s)
            | ClipError::NotYet(s)
            | ClipError::Busy(s)
            | ClipError::Conflict(s)
            | ClipError::Unsupported(s) => f.write_str(s),
            ClipError::CrossesCodecChange => {
                f.write_str("the range crosses a codec change; clip each side separately")
            }
            ClipError::Storage(s) => write!(f, "stored media unreadable: {s}"),
        }
    }
}

impl std::error::Error for ClipError {}

fn storage(e: impl std::fmt::Display) -> ClipError {
    ClipError::Storage(e.to_string())
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// A clip request: a start (recording time or UTC instant) and a duration
/// or an end. Without a start, the clip is the last `duration` of what is
/// recorded (or the `duration` before `end`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClipRequest {
    pub start: Option<TimePoint>,
    /// ns.
    pub duration: Option<u64>,
    pub end: Option<TimePoint>,
    pub accuracy: Accuracy,
    /// Where to write an MP4 clip (action signal only).
    pub location: Option<String>,
    /// Download name of an MP4 clip (HTTP only).
    pub filename: Option<String>,
    /// The rendition of a ladder session.
    pub rendition: super::ladder::Pick,
    /// Clip the range of this marker (instead of a start and duration).
    pub marker: Option<String>,
    /// Padding before and after a marker's range (ns).
    pub before: Option<u64>,
    pub after: Option<u64>,
    /// Re-encode the clip with this export profile.
    pub profile: Option<String>,
    /// Where an export's crop is taken across the picture, in thousandths
    /// (0: the left edge, 500: the middle, 1000: the right edge).
    pub crop_x: Option<u16>,
}

impl ClipRequest {
    /// The parameters a clip request may have.
    pub const PARAMS: &[&str] = &[
        "time",
        "start",
        "duration",
        "end",
        "accuracy",
        "location",
        "filename",
        "rendition",
        "height",
        "marker",
        "before",
        "after",
        "profile",
        "crop_x",
        "token",
    ];

    /// Parses URL query parameters (`time=600s&duration=30s`), the same for
    /// the action signals and the HTTP API, under [`crate::core::query`]'s
    /// rules. Names: `time` (or `start`), `duration`, `end`, `accuracy`
    /// (`frame`, `keyframe`, `exact` or `exact-start`), `location`, `filename`; `token` is ignored
    /// (the HTTP layer checks it).
    pub fn parse_query(query: &str) -> Result<ClipRequest, ClipError> {
        let pairs =
            crate::core::query::known_pairs(query, Self::PARAMS).map_err(ClipError::BadRequest)?;
        let mut req = ClipRequest::default();
        let bad = |name: &str, e: &dyn std::fmt::Display| {
            ClipError::BadRequest(format!("parameter {name}: {e}"))
        };
        for (name, value) in pairs {
            match name.as_str() {
                "time" | "start" => {
                    if req.start.is_some() {
                        return Err(ClipError::BadRequest(
                            "parameters time and start name the same thing: give one".into(),
                        ));
                    }
                    req.start = Some(parse_time_point(&value).map_err(|e| bad(&name, &e))?);
                }
                "duration" => {
                    let d = parse_duration(&value).map_err(|e| bad(&name, &e))?;
                    req.duration = Some(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                }
                "end" => {
                    req.end = Some(parse_time_point(&value).map_err(|e| bad(&name, &e))?);
                }
                "accuracy" => {
                    req.accuracy = match value.as_str() {
                        "frame" => Accuracy::Frame,
                        "keyframe" => Accuracy::Keyframe,
                        "exact" => Accuracy::Exact,
                        "exact-start" => Accuracy::ExactStart,
                        other => {
                            return Err(ClipError::BadRequest(format!(
                                "parameter accuracy: {other:?} is not \"frame\", \"keyframe\", \"exact\" \
                                 or \"exact-start\""
                            )));
                        }
                    }
                }
                "location" => req.location = Some(value),
                "rendition" | "height" => {
                    req.rendition = parse_pick(&name, &value, req.rendition)?;
                }
                "filename" => req.filename = Some(value),
                "marker" if super::markers::is_marker_id(&value) => req.marker = Some(value),
                "marker" => {
                    return Err(ClipError::BadRequest(format!(
                        "parameter marker: {value:?} is not a marker id"
                    )));
                }
                "profile" if is_safe_id(&value) => req.profile = Some(value),
                "profile" => {
                    return Err(ClipError::BadRequest(format!(
                        "parameter profile: {value:?} is not a profile name"
                    )));
                }
                "crop_x" => {
                    let x = value
                        .parse::<f64>()
                        .ok()
                        .filter(|x| (0.0..=1.0).contains(x))
                        .ok_or_else(|| {
                            ClipError::BadRequest(format!(
                                "parameter crop_x: {value:?} is not a number from 0 (left) to 1 (right)"
                            ))
                        })?;
                    req.crop_x = Some((x * 1000.0).round() as u16);
                }
                "before" | "after" => {
                    let d = parse_duration(&value).map_err(|e| bad(&name, &e))?;
                    let d = Some(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                    if name == "before" {
                        req.before = d;
                    } else {
                        req.after = d;
                    }
                }
                // `token`; other names were refused above.
                _ => {}
            }
        }
        if req.crop_x.is_some() && req.profile.is_none() {
            return Err(ClipError::BadRequest(
                "crop_x places an export's crop: give profile= too".into(),
            ));
        }
        if req.marker.is_some() {
            if req.start.is_some() || req.duration.is_some() || req.end.is_some() {
                return Err(ClipError::BadRequest(
                    "a marker gives the range: leave out time, start, duration and end \
                     (before= and after= pad it)"
                        .into(),
                ));
            }
            return Ok(req);
        }
        if req.before.is_some() || req.after.is_some() {
            return Err(ClipError::BadRequest(
                "before and after pad a marker's range: give marker=ID".into(),
            ));
        }
        if req.duration.is_some() && req.end.is_some() {
            return Err(ClipError::BadRequest(
                "give either duration or end, not both".into(),
            ));
        }
        if req.duration.is_none() && req.end.is_none() {
            return Err(ClipError::BadRequest(
                "missing duration (or end), e.g. duration=30s".into(),
            ));
        }
        if req.duration == Some(0) {
            return Err(ClipError::BadRequest("duration must be more than 0".into()));
        }
        Ok(req)
    }
}

/// Adds `rendition=` or `height=` to a pick.
pub fn parse_pick(
    name: &str,
    value: &str,
    mut pick: super::ladder::Pick,
) -> Result<super::ladder::Pick, ClipError> {
    match name {
        "rendition" if is_safe_id(value) => pick.name = Some(value.to_string()),
        "rendition" => {
            return Err(ClipError::BadRequest(format!(
                "parameter rendition: {value:?} is not a rendition name"
            )));
        }
        _ => match value.parse::<u32>() {
            Ok(h) if h > 0 => pick.height = Some(h),
            _ => {
                return Err(ClipError::BadRequest(format!(
                    "parameter height: {value:?} is not a picture height in lines, e.g. 720"
                )));
            }
        },
    }
    if pick.name.is_some() && pick.height.is_some() {
        return Err(ClipError::BadRequest(
            "give either rendition or height, not both".into(),
        ));
    }
    Ok(pick)
}

/// A request placed on a session's recording-time axis (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

/// How a request stands against what is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Everything in the range is recorded.
    Ready(Range),
    /// The session is live and the range ends at most the wait allowance
    /// past the live edge: it will be recorded shortly.
    Wait(Range),
}

pub(crate) fn point(index: &SessionIndex, p: TimePoint, what: &str) -> Result<i128, ClipError> {
    match p {
        TimePoint::Recording(d) => Ok(d.as_nanos() as i128),
        TimePoint::Utc(t) => index.recording_time_at(t).ok_or_else(|| {
            ClipError::BadRequest(format!(
                "{what} is a UTC instant but session {} has no program date times; give a recording time (e.g. 600s)",
                index.media_id
            ))
        }),
    }
}

/// Places `req` on `index`: checks the limits and where the range lies.
/// `wait` is how far past the live edge a live session's request may end
/// and still wait (ns).
pub fn place(
    req: &ClipRequest,
    index: &SessionIndex,
    max_duration: u64,
    wait: u64,
) -> Result<Placement, ClipError> {
    let recorded = index.end();
    let (start, end) = match (&req.marker, req.start, req.duration, req.end) {
        (Some(id), ..) => {
            let m = index.markers.iter().find(|m| m.id == *id).ok_or_else(|| {
                ClipError::NotFound(format!(
                    "session {} has no marker {id:?} (GET /{}/markers lists them)",
                    index.media_id, index.media_id
                ))
            })?;
            let (start, end) = m.clip_range(req.before, req.after);
            // The padding reaches at most what is recorded; a marker that
            // lasts past the end of a session that ended ends there.
            let start = start.max(index.begin().min(m.start));
            let end = if index.live { end } else { end.min(recorded) };
            (i128::from(start), i128::from(end))
        }
        (None, s, d, e) => match (s, d, e) {
            (Some(s), Some(d), _) => {
                let s = point(index, s, "time")?;
                (s, s.saturating_add(i128::from(d)))
            }
            (Some(s), None, Some(e)) => (point(index, s, "time")?, point(index, e, "end")?),
            (None, Some(d), e) => {
                let e = match e {
                    Some(e) => point(index, e, "end")?,
                    None => i128::from(recorded),
                };
                (e - i128::from(d), e)
            }
            _ => {
                return Err(ClipError::BadRequest(
                    "missing duration (or end), e.g. duration=30s".into(),
                ));
            }
        },
    };
    if end <= start {
        return Err(ClipError::BadRequest(format!(
            "end ({:.3} s) must be after the start ({:.3} s)",
            end as f64 / 1e9,
            start as f64 / 1e9
        )));
    }
    let length = (end - start) as u64;
    if length > max_duration {
        return Err(ClipError::BadRequest(format!(
            "the clip is {:.3} s long; at most {:.3} s are allowed (max-clip-duration)",
            secs(length),
            secs(max_duration)
        )));
    }
    let begin = i128::from(index.begin());
    if start < begin {
        if start >= 0 && index.trimmed {
            return Err(ClipError::Gone(format!(
                "media before {:.3} s of session {} was deleted (retention)",
                secs(index.begin()),
                index.media_id
            )));
        }
        return Err(ClipError::OutOfRange(format!(
            "the clip starts at {:.3} s, before the recording of session {} (which begins at {:.3} s)",
            start as f64 / 1e9,
            index.media_id,
            secs(index.begin())
        )));
    }
    let range = Range {
        start: start as u64,
        end: end.min(i128::from(u64::MAX)) as u64,
    };
    if range.end <= recorded {
        return Ok(Placement::Ready(range));
    }
    if !index.live {
        return Err(ClipError::OutOfRange(format!(
            "the clip ends at {:.3} s but session {} recorded {:.3} s",
            secs(range.end),
            index.media_id,
            secs(recorded)
        )));
    }
    if range.end - recorded <= wait {
        return Ok(Placement::Wait(range));
    }
    Err(ClipError::NotYet(format!(
        "the clip ends at {:.3} s but session {} is live at {:.3} s; ask again when it is recorded",
        secs(range.end),
        index.media_id,
        secs(recorded)
    )))
}

/// A preview manifest and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub manifest: String,
    /// The ladder rendition it is of (its directory), if any.
    pub rendition: Option<String>,
    /// Recording time of its first segment, seconds.
    pub start_seconds: f64,
    pub media_id: String,
}

/// The last `duration` (ns) of the session as a playlist of its segments: a
/// sliding live playlist while the session is live, VOD once ended. URIs
/// are `base` + the stored file names.
pub fn preview(
    index: &SessionIndex,
    duration: u64,
    max_duration: u64,
) -> Result<Preview, ClipError> {
    if duration == 0 {
        return Err(ClipError::BadRequest("duration must be more than 0".into()));
    }
    if duration > max_duration {
        return Err(ClipError::BadRequest(format!(
            "a preview of {:.3} s was asked; at most {:.3} s are allowed (max-preview-duration)",
            secs(duration),
            secs(max_duration)
        )));
    }
    if index.segments.is_empty() {
        return Err(ClipError::NotYet(format!(
            "session {} has no complete segment yet",
            index.media_id
        )));
    }
    let from = index.segments_end().saturating_sub(duration);
    let first = index
        .segments
        .iter()
        .rposition(|s| s.segment.start <= from)
        .unwrap_or(0);
    let all: Vec<_> = index.segments.iter().map(|s| s.segment.clone()).collect();
    let window = all.len() - first;
    let manifest = super::playlist::render(
        &all,
        super::playlist::Kind::Live { window },
        &super::playlist::Options {
            target_duration: index.target_duration.max(1),
            removed_discontinuities: index.removed_discontinuities,
            complete: !index.live,
            trimmed: true,
            pdt: true,
        },
        &index.markers,
    );
    Ok(Preview {
        manifest,
        rendition: index.rendition.as_ref().map(|r| r.name.clone()),
        start_seconds: secs(index.segments[first].segment.start),
        media_id: index.media_id.clone(),
    })
}

/// A VOD playlist of `range` that reuses the stored fragments through
/// EXT-X-BYTERANGE: from the fragment whose keyframe is at or before the
/// start to the one holding the end, with EXT-X-START (PRECISE) at the
/// requested start in frame accuracy. Writes nothing.
pub fn clip_manifest(
    index: &SessionIndex,
    range: Range,
    accuracy: Accuracy,
) -> Result<String, ClipError> {
    if accuracy.is_exact() {
        return Err(ClipError::BadRequest(
            "accuracy=exact re-encodes the ends of an MP4 clip: ask for clip.mp4 \
             (a clip manifest reuses the stored fragments: frame or keyframe)"
                .into(),
        ));
    }
    let frags = index
        .fragments_for(range.start, range.end)
        .map_err(storage)?;
    let Some((_, first)) = frags.first() else {
        return Err(ClipError::OutOfRange(format!(
            "nothing of session {} is recorded between {:.3} s and {:.3} s",
            index.media_id,
            secs(range.start),
            secs(range.end)
        )));
    };
    let first_start = first.start;
    let mut segments = Vec::with_capacity(frags.len());
    let mut spans = Vec::with_capacity(frags.len());
    let mut last_map: Option<&str> = None;
    let mut last_uri: Option<&str> = None;
    let mut max_extinf = 0u64;
    for (seg, f) in &frags {
        let s = &seg.segment;
        let new_segment = last_uri != Some(s.uri.as_str());
        let map = (last_map != Some(s.map.as_str())).then(|| m3u8_rs::Map {
            uri: s.map.clone(),
            ..Default::default()
        });
        let discontinuity = last_map.is_some() && new_segment && (s.discontinuity || map.is_some());
        let pdt = (last_map.is_none() || discontinuity)
            .then(|| index.utc_at(f.start))
            .flatten();
        last_map = Some(&s.map);
        last_uri = Some(&s.uri);
        let d = f.end.saturating_sub(f.start);
        max_extinf = max_extinf.max((d as f64 / 1e9).round() as u64);
        // The first fragment of an open GOP: its leading pictures (they
        // refer to media before the clip) are left out, so the players'
        // decoders start at the random-access point itself. The part with
        // the random-access point (and the audio) carries the fragment's
        // time but a millisecond, which the rest of the video carries.
        let parts: Vec<(u64, u64, u64)> = match f.lead {
            Some((from, to)) if segments.is_empty() && d > 2_000_000 && to < f.offset + f.size => {
                vec![
                    (f.offset, from - f.offset, d - 1_000_000),
                    (to, f.offset + f.size - to, 1_000_000),
                ]
            }
            _ => vec![(f.offset, f.size, d)],
        };
        for (i, (offset, length, d)) in parts.into_iter().enumerate() {
            spans.push((f.start, f.end));
            segments.push(MediaSegment {
                uri: s.uri.clone(),
                duration: secs(d) as f32,
                byte_range: Some(ByteRange {
                    length,
                    offset: Some(offset),
                }),
                discontinuity: discontinuity && i == 0,
                map: if i == 0 { map.clone() } else { None },
                program_date_time: if i == 0 {
                    pdt.map(|t| t.fixed_offset())
                } else {
                    None
                },
                ..Default::default()
            });
        }
    }
    // A marker that began before the clip is dated back from its first
    // program date time.
    let tags = super::markers::daterange_tags(&index.markers, &spans, false, |t| {
        index.utc_at(t).or_else(|| {
            let s = &index
                .segments
                .iter()
                .chain(index.open.iter())
                .next()?
                .segment;
            Some(s.pdt? - chrono::Duration::nanoseconds(s.start.saturating_sub(t) as i64))
        })
    });
    for (segment, tags) in segments.iter_mut().zip(tags) {
        segment.unknown_tags = tags;
    }
    let start = (accuracy == Accuracy::Frame).then(|| m3u8_rs::Start {
        time_offset: secs(range.start.saturating_sub(first_start)),
        precise: Some(true),
        other_attributes: Default::default(),
    });
    let playlist = MediaPlaylist {
        version: Some(7),
        target_duration: max_extinf.max(1),
        media_sequence: 0,
        segments,
        end_list: true,
        playlist_type: Some(MediaPlaylistType::Vod),
        independent_segments: true,
        start,
        ..Default::default()
    };
    let mut out = Vec::new();
    playlist
        .write_to(&mut out)
        .map_err(|e| ClipError::Storage(e.to_string()))?;
    String::from_utf8(out).map_err(storage)
}

/// The bytes `[from, to)` of a stored segment, memory-mapped: the clip is
/// written from the page cache with one copy (by the kernel), where reading
/// into a buffer first would copy twice.
fn map_range(file: &std::fs::File, from: u64, to: u64) -> std::io::Result<Bytes> {
    let len = file.metadata()?.len();
    if to > len || from > to {
        return Err(std::io::Error::other(format!(
            "segment holds {len} bytes, the fragments end at {to}"
        )));
    }
    if from == to {
        return Ok(Bytes::new());
    }
    // SAFETY: segment files are only ever appended to while recorded (and
    // the mapped range is complete fragments below the end seen above);
    // retention unlinks files, which leaves a mapping valid. Truncation
    // happens only to a torn tail at start-up, past every complete fragment.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(from)
            .len((to - from) as usize)
            .populate()
            .map(file)?
    };
    Ok(Bytes::from_owner(map))
}

/// What a clip holds, on the session's recording-time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipInfo {
    pub media_id: String,
    /// The requested start, ns.
    pub requested_start: u64,
    /// Where presentation begins (in frame accuracy the first frame at or
    /// after the requested start, in keyframe accuracy the keyframe), ns.
    pub start: u64,
    /// Where presentation ends (where the first frame at or after the
    /// requested end begins, or the recording's last frame ends), ns.
    pub end: u64,
    /// The keyframe the clip decodes from, ns; `start - keyframe` is the
    /// hidden pre-roll.
    pub keyframe: u64,
    /// Wall clock of `start`.
    pub utc: Option<DateTime<Utc>>,
}

impl ClipInfo {
    pub fn duration(&self) -> u64 {
        self.end - self.start
    }

    /// Decoded but not presented, ns.
    pub fn preroll(&self) -> u64 {
        self.start - self.keyframe
    }
}

/// The track configurations of stored fragments and their samples, per
/// track.
pub type StoredSamples = (Vec<Arc<CodecConfig>>, Vec<Vec<crate::core::Sample>>);

/// The samples of `frags` (fragments of one session, in order), per track,
/// with the track configurations: one memory mapping per segment, from its
/// first needed fragment to the end of its last one; payloads are slices of
/// the mappings, times are presentation times with each init segment's edit
/// list taken off. Every init segment the fragments use must describe the
/// same tracks (a resumed session writes a new but identical one), else
/// [`ClipError::CrossesCodecChange`]. Shared by MP4 clips and stills.
pub fn read_samples(
    index: &SessionIndex,
    frags: &[(&super::index::SegmentInfo, super::index::FragmentInfo)],
) -> Result<StoredSamples, ClipError> {
    let Some((first_seg, _)) = frags.first() else {
        return Err(ClipError::OutOfRange(format!(
            "nothing of session {} is recorded there",
            index.media_id
        )));
    };
    // Every init segment the range uses must describe the same tracks (a
    // resumed session writes a new but identical one); each has its own
    // edit list (the composition delay of its run).
    type Init = (Vec<Arc<CodecConfig>>, Vec<StoredTrack>);
    let load = |map: &str| -> Result<Init, ClipError> {
        let init = std::fs::read(index.dir.join(map)).map_err(storage)?;
        let moov = read_moov(&init).ok_or_else(|| storage(format!("{map} has no moov")))?;
        let configs = moov
            .trak
            .iter()
            .map(|t| CodecConfig::from_trak(t).map(Arc::new))
            .collect::<Result<_, _>>()
            .map_err(storage)?;
        Ok((configs, moov.trak.iter().map(StoredTrack::of).collect()))
    };
    let mut inits: Vec<(&str, Init)> = Vec::new();
    inits.push((
        first_seg.segment.map.as_str(),
        load(&first_seg.segment.map)?,
    ));
    for (seg, _) in frags {
        let map = seg.segment.map.as_str();
        if inits.iter().any(|(m, _)| *m == map) {
            continue;
        }
        let other = load(map)?;
        let configs = &inits[0].1.0;
        let same = other.0.len() == configs.len()
            && other.0.iter().zip(configs).all(|(a, b)| a.same_entry(b));
        if !same {
            return Err(ClipError::CrossesCodecChange);
        }
        inits.push((map, other));
    }
    let configs = inits[0].1.0.clone();

    // One read per segment: from its first needed fragment to the end of
    // its last one.
    let mut per_track: Vec<Vec<crate::core::Sample>> = vec![Vec::new(); configs.len()];
    let mut i = 0;
    while i < frags.len() {
        let uri = &frags[i].0.segment.uri;
        let map = frags[i].0.segment.map.as_str();
        let mut j = i;
        while j + 1 < frags.len() && frags[j + 1].0.segment.uri == *uri {
            j += 1;
        }
        let from = frags[i].1.offset;
        let to = frags[j].1.offset + frags[j].1.size;
        let file = std::fs::File::open(index.dir.join(uri)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ClipError::Gone(format!("{uri} was deleted (retention)"))
            } else {
                storage(e)
            }
        })?;
        let data = map_range(&file, from, to).map_err(storage)?;
        let stored = inits
            .iter()
            .find(|(m, _)| *m == map)
            .map(|(_, (_, t))| t.as_slice())
            .unwrap_or_default();
        for (k, samples) in fragment_samples(&data, stored).into_iter().enumerate() {
            per_track[k].extend(samples);
        }
        i = j + 1;
    }
    Ok((configs, per_track))
}

/// Cuts `range` out of the stored fragments of `renditions` (one, or in a
/// ladder a video rendition and its audio): only the bytes of the
/// fragments it needs are read (one read per segment).
pub fn clip_mp4(
    renditions: &[SessionIndex],
    range: Range,
    accuracy: Accuracy,
) -> Result<(Mp4Clip, ClipInfo), ClipError> {
    let Some(index) = renditions.first() else {
        return Err(ClipError::NotFound("no rendition to clip".into()));
    };
    let (mut configs, mut per_track) = (Vec::new(), Vec::new());
    for (i, rendition) in renditions.iter().enumerate() {
        let frags = rendition
            .fragments_for(range.start, range.end)
            .map_err(storage)?;
        if frags.is_empty() {
            if i > 0 {
                continue;
            }
            return Err(ClipError::OutOfRange(format!(
                "nothing of session {} is recorded between {:.3} s and {:.3} s",
                index.media_id,
                secs(range.start),
                secs(range.end)
            )));
        }
        let (c, p) = read_samples(rendition, &frags)?;
        configs.extend(c);
        per_track.extend(p);
    }

    let (start_ns, end_ns) = (range.start as i64, range.end as i64);
    let mut presentation_start = start_ns;
    let mut presentation_end = end_ns;
    let mut keyframe = start_ns;
    let mut tracks = Vec::new();
    let mut reencoded = Vec::new();
    // Video first: in keyframe accuracy it moves the start for every track.
    let mut order: Vec<_> = configs.iter().zip(per_track).collect();
    order.sort_by_key(|(c, _)| c.kind != TrackKind::Video);
    for (config, samples) in order {
        let kept: Vec<_> = if config.kind == TrackKind::Video {
            // Random access from the bitstream, whatever the stored flags
            // say (recordings made before they were exact).
            let mut samples = samples;
            if let Some((codec, framing)) = config.nal_format() {
                for s in &mut samples {
                    s.classify(codec, framing);
                }
            }
            // From the keyframe at or before the start, in decode order, to
            // the last sample presented before the end, without the
            // keyframe's leading pictures (presented before it, they may
            // refer to pictures before it).
            let key = samples
                .iter()
                .rposition(|s| s.keyframe && s.pts <= start_ns)
                .or_else(|| samples.iter().position(|s| s.keyframe));
            let Some(key) = key else { continue };
            keyframe = keyframe.min(samples[key].pts);
            if accuracy == Accuracy::Keyframe {
                presentation_start = presentation_start.min(samples[key].pts);
            }
            let last = samples.iter().rposition(|s| s.pts < end_ns).unwrap_or(key);
            let k = samples[key].clone();
            let kept: Vec<_> = samples[key..=last.max(key)]
                .iter()
                .enumerate()
                .filter(|&(n, s)| n == 0 || !s.leads(&k))
                .map(|(_, s)| s.clone())
                .collect();
            // Presentation starts and ends on frame boundaries: at the first
            // frame presented at or after the start, and where the first
            // frame at or after the end begins. Readers disagree about a
            // frame that an edit cuts through (ffmpeg drops it, GStreamer
            // shows it); on a boundary every reader shows the same frames.
            let at_or_after = |t: i64| move |s: &crate::core::Sample| (s.pts >= t).then_some(s.pts);
            if accuracy != Accuracy::Keyframe
                && let Some(first) = kept.iter().filter_map(at_or_after(start_ns)).min()
            {
                presentation_start = first;
            }
            presentation_end = match samples.iter().filter_map(at_or_after(end_ns)).min() {
                Some(next) => next,
                // The recording ends within the last frame: at its end.
                None => kept.iter().map(|s| s.pts_end()).max().unwrap_or(end_ns),
            };
            if accuracy.is_exact() {
                let cut = super::exact::cut(
                    config,
                    &samples[key..],
                    presentation_start,
                    presentation_end,
                    accuracy == Accuracy::Exact,
                )?;
                presentation_end = cut.end;
                reencoded.extend(cut.reencoded.into_iter().map(|(samples, config)| {
                    crate::mp4::Reencoded {
                        track: tracks.len(),
                        samples,
                        config,
                    }
                }));
                cut.samples
            } else {
                kept
            }
        } else if accuracy.is_exact() {
            // No edit list: the first audio frame starts at or just after
            // the first frame.
            samples
                .into_iter()
                .filter(|s| s.pts >= presentation_start && s.pts < presentation_end)
                .collect()
        } else {
            samples
                .into_iter()
                .filter(|s| s.pts_end() > presentation_start && s.pts < presentation_end)
                .collect()
        };
        if !kept.is_empty() {
            tracks.push(ClipTrack {
                config: config.clone(),
                samples: kept,
                next_dts: None,
            });
        }
    }
    if tracks.is_empty() {
        return Err(ClipError::Storage(format!(
            "no samples found between {:.3} s and {:.3} s",
            secs(range.start),
            secs(range.end)
        )));
    }
    let start = presentation_start.max(0) as u64;
    let info = ClipInfo {
        media_id: index.media_id.clone(),
        requested_start: range.start,
        start,
        end: (presentation_end.max(0) as u64).max(start),
        // An exact cut hides nothing: its first frame is its first sample.
        keyframe: if accuracy.is_exact() {
            start
        } else {
            keyframe.max(0) as u64
        },
        utc: index.utc_at(start),
    };
    Ok((
        Mp4Clip {
            tracks,
            start: presentation_start,
            end: Some(presentation_end),
            creation_time: info.utc,
            exact: accuracy
                .is_exact()
                .then_some(crate::mp4::ExactCut { reencoded }),
        },
        info,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::index::{FragmentInfo, SegmentInfo};
    use crate::hls::playlist::Segment;
    use std::time::Duration;

    const NS: u64 = 1_000_000_000;

    fn index(live: bool) -> SessionIndex {
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .to_utc();
        let segments = (0..5u64)
            .map(|i| SegmentInfo {
                parts: Vec::new(),
                segment: Segment {
                    sequence: i,
                    uri: format!("segment-{i:05}.m4s"),
                    start: i * 6 * NS,
                    duration: 6 * NS,
                    discontinuity: i == 3,
                    map: "init.mp4".into(),
                    pdt: Some(t0 + chrono::Duration::seconds(6 * i as i64)),
                    bytes: 0,
                },
                // Three 2 s fragments of 1000 bytes each.
                fragments: Some(
                    (0..3u64)
                        .map(|k| FragmentInfo {
                            lead: None,
                            offset: 24 + k * 1000,
                            size: 1000,
                            start: i * 6 * NS + k * 2 * NS,
                            end: i * 6 * NS + (k + 1) * 2 * NS,
                        })
                        .collect(),
                ),
            })
            .collect();
        SessionIndex {
            media_id: "m1".into(),
            dir: "/nonexistent".into(),
            segments,
            open: None,
            live,
            target_duration: 6,
            removed_discontinuities: 0,
            trimmed: false,
            rendition: None,
            part_target: 0,
            live_window: 0,
            markers: Default::default(),
        }
    }

    fn q(s: &str) -> Result<ClipRequest, ClipError> {
        ClipRequest::parse_query(s)
    }

    #[test]
    fn parses_requests_in_every_form() {
        let r = q("time=600s&duration=30s").unwrap();
        assert_eq!(
            r.start,
            Some(TimePoint::Recording(Duration::from_secs(600)))
        );
        assert_eq!(r.duration, Some(30 * NS));
        assert_eq!(r.accuracy, Accuracy::Frame);
        let r = q("?start=10&end=40.5&accuracy=keyframe").unwrap();
        assert_eq!(
            r.end,
            Some(TimePoint::Recording(Duration::from_millis(40_500)))
        );
        assert_eq!(r.accuracy, Accuracy::Keyframe);
        let r = q("time=10s&duration=5s&accuracy=exact").unwrap();
        assert_eq!(r.accuracy, Accuracy::Exact);
        let r = q("time=10s&duration=5s&accuracy=exact-start").unwrap();
        assert_eq!(r.accuracy, Accuracy::ExactStart);
        let r = q("time=2026-11-23T12%3A00%3A10%2B00%3A00&duration=5s").unwrap();
        assert!(matches!(r.start, Some(TimePoint::Utc(_))));
        assert_eq!(q("duration=10s").unwrap().start, None);
        for bad in [
            "time=10s",
            "time=10s&duration=5s&end=20s",
            "time=-5s&duration=5s",
            "time=10s&duration=0",
            "time=10s&duration=5s&accuracy=exactly",
            "time=10s&duration=5s&colour=red",
            "time=10s&time=11s&duration=5s",
            "time=abc&duration=5s",
        ] {
            assert!(matches!(q(bad), Err(ClipError::BadRequest(_))), "{bad}");
        }
        let long = format!("time={}&duration=5s", "1".repeat(300));
        assert!(matches!(q(&long), Err(ClipError::BadRequest(_))));
    }

    #[test]
    fn places_ranges_and_names_what_is_wrong() {
        let ended = index(false);
        let max = 60 * NS;
        let place_q = |i: &SessionIndex, s: &str| place(&q(s).unwrap(), i, max, 10 * NS);
        assert_eq!(
            place_q(&ended, "time=3s&duration=4s"),
            Ok(Placement::Ready(Range {
                start: 3 * NS,
                end: 7 * NS
            }))
        );
        assert_eq!(
            place_q(&ended, "duration=10s"),
            Ok(Placement::Ready(Range {
                start: 20 * NS,
                end: 30 * NS
            })),
            "no start: the last 10 s"
        );
        assert_eq!(
            place_q(&ended, "time=2026-11-23T12:00:13.5Z&duration=1s"),
            Ok(Placement::Ready(Range {
                start: 13_500_000_000,
                end: 14_500_000_000
            })),
            "UTC through the program date times"
        );
        assert_eq!(place_q(&ended, "time=5&end=3").unwrap_err().status(), 400);
        assert_eq!(
            place_q(&ended, "time=0&duration=61s").unwrap_err().status(),
            400
        );
        assert_eq!(
            place_q(&ended, "time=25s&duration=10s")
                .unwrap_err()
                .status(),
            416
        );
        assert_eq!(
            place_q(&ended, "time=40s&duration=1s")
                .unwrap_err()
                .status(),
            416
        );
        assert_eq!(
            place_q(&ended, "time=2026-11-23T11:59:00Z&duration=1s")
                .unwrap_err()
                .status(),
            416,
            "before the session"
        );
        let live = index(true);
        assert_eq!(
            place_q(&live, "time=25s&duration=10s"),
            Ok(Placement::Wait(Range {
                start: 25 * NS,
                end: 35 * NS
            }))
        );
        assert_eq!(
            place_q(&live, "time=35s&duration=10s")
                .unwrap_err()
                .status(),
            425
        );
        let mut trimmed = index(false);
        trimmed.segments.drain(..2);
        trimmed.trimmed = true;
        assert_eq!(
            place_q(&trimmed, "time=1s&duration=1s")
                .unwrap_err()
                .status(),
            410
        );
    }

    #[test]
    fn preview_is_the_last_segments_with_their_start() {
        let p = preview(&index(false), 10 * NS, 300 * NS).unwrap();
        assert_eq!(
            p.start_seconds, 18.0,
            "the segment holding 20 s starts at 18 s"
        );
        let pl = m3u8_rs::parse_media_playlist_res(p.manifest.as_bytes()).unwrap();
        assert_eq!(pl.segments.len(), 2);
        assert_eq!(pl.media_sequence, 3);
        assert!(pl.end_list);
        assert_eq!(pl.segments[0].map.as_ref().unwrap().uri, "init.mp4");
        let live = preview(&index(true), 10 * NS, 300 * NS).unwrap();
        let pl = m3u8_rs::parse_media_playlist_res(live.manifest.as_bytes()).unwrap();
        assert!(!pl.end_list, "live preview slides");
        assert_eq!(pl.segments[0].uri, "segment-00003.m4s");
        assert_eq!(
            preview(&index(false), 301 * NS, 300 * NS)
                .unwrap_err()
                .status(),
            400
        );
        let whole = preview(&index(false), 300 * NS, 300 * NS).unwrap();
        assert_eq!(whole.start_seconds, 0.0);
    }

    #[test]
    fn clip_manifest_reuses_fragments_by_byte_range() {
        let text = clip_manifest(
            &index(false),
            Range {
                start: 5 * NS,
                end: 19 * NS,
            },
            Accuracy::Frame,
        )
        .unwrap();
        let pl = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(pl.playlist_type, Some(MediaPlaylistType::Vod));
        assert!(pl.end_list);
        // Fragments [4,6) [6,8) ... [18,20): 8 of them.
        assert_eq!(pl.segments.len(), 8);
        let first = &pl.segments[0];
        assert_eq!(first.uri, "segment-00000.m4s");
        assert_eq!(
            first.byte_range,
            Some(ByteRange {
                length: 1000,
                offset: Some(2024)
            })
        );
        assert!(first.program_date_time.is_some());
        let start = pl.start.expect("EXT-X-START");
        assert!((start.time_offset - 1.0).abs() < 1e-9);
        assert_eq!(start.precise, Some(true));
        // Segment 3 starts after a discontinuity.
        let disc: Vec<_> = pl.segments.iter().filter(|s| s.discontinuity).collect();
        assert_eq!(disc.len(), 1);
        assert_eq!(disc[0].uri, "segment-00003.m4s");
        assert!(disc[0].program_date_time.is_some());
        let key = clip_manifest(
            &index(false),
            Range {
                start: 5 * NS,
                end: 19 * NS,
            },
            Accuracy::Keyframe,
        )
        .unwrap();
        assert!(!key.contains("EXT-X-START"));
    }

    /// The first fragment of an open GOP is listed without its leading
    /// pictures: two byte ranges around them; later ones stay whole.
    #[test]
    fn clip_manifest_leaves_out_the_first_fragments_leading_pictures() {
        let mut idx = index(false);
        for seg in &mut idx.segments {
            for f in seg.fragments.as_mut().unwrap() {
                // 200 bytes of key picture and audio, 100 of leading
                // pictures, 700 of the rest.
                f.lead = Some((f.offset + 200, f.offset + 300));
            }
        }
        let range = Range {
            start: 5 * NS,
            end: 9 * NS,
        };
        let text = clip_manifest(&idx, range, Accuracy::Frame).unwrap();
        let pl = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        let ranges: Vec<(u64, Option<u64>, f32)> = pl
            .segments
            .iter()
            .map(|s| {
                let b = s.byte_range.as_ref().unwrap();
                (b.length, b.offset, s.duration)
            })
            .collect();
        // Fragments [4,6) [6,8) [8,10): the first split around its lead.
        assert_eq!(
            ranges,
            vec![
                (200, Some(2024), 1.999),
                (700, Some(2324), 0.001),
                (1000, Some(24), 2.0),
                (1000, Some(1024), 2.0),
            ]
        );
        // Only the first part carries the map and the date.
        assert!(pl.segments[0].map.is_some() && pl.segments[0].program_date_time.is_some());
        assert!(pl.segments[1].map.is_none() && pl.segments[1].program_date_time.is_none());
        // Presentation starts 1 s into the fragment, as before.
        assert!((pl.start.unwrap().time_offset - 1.0).abs() < 1e-9);
    }

    fn with_markers(live: bool) -> SessionIndex {
        let m = crate::hls::markers::Marker::test;
        let mut i = index(live);
        i.markers = std::sync::Arc::new(vec![
            m("early", 3 * NS, None),
            m("goal", 13 * NS, Some(4 * NS)),
            m("late", 28 * NS, Some(5 * NS)),
        ]);
        i
    }

    #[test]
    fn a_marker_gives_the_range_with_its_padding() {
        let i = with_markers(false);
        let placed = |query: &str| place(&q(query).unwrap(), &i, 3600 * NS, 0);
        assert_eq!(
            placed("marker=goal").unwrap(),
            Placement::Ready(Range {
                start: 13 * NS,
                end: 17 * NS
            })
        );
        assert_eq!(
            placed("marker=goal&before=1s&after=2s").unwrap(),
            Placement::Ready(Range {
                start: 12 * NS,
                end: 19 * NS
            })
        );
        // A point: 10 s before, 5 s after by default, from 0 at the start.
        assert_eq!(
            placed("marker=early").unwrap(),
            Placement::Ready(Range {
                start: 0,
                end: 8 * NS
            })
        );
        // Past the end of a stored session: up to its end.
        assert_eq!(
            placed("marker=late").unwrap(),
            Placement::Ready(Range {
                start: 28 * NS,
                end: 30 * NS
            })
        );
        let e = placed("marker=nope").unwrap_err();
        assert_eq!(e.status(), 404, "{e}");
        // A live session waits for the marker's end.
        let live = with_markers(true);
        assert_eq!(
            place(&q("marker=late").unwrap(), &live, 3600 * NS, 6 * NS).unwrap(),
            Placement::Wait(Range {
                start: 28 * NS,
                end: 33 * NS
            })
        );
        // Its tags go into a clip manifest that covers it.
        let text = clip_manifest(
            &i,
            Range {
                start: 12 * NS,
                end: 18 * NS,
            },
            Accuracy::Frame,
        )
        .unwrap();
        let p = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        let ids: Vec<_> = p
            .segments
            .iter()
            .filter_map(|s| s.daterange.as_ref().map(|d| d.id.clone()))
            .collect();
        assert_eq!(ids, ["goal"], "{text}");
    }

    #[test]
    fn marker_requests_refuse_other_ranges() {
        for bad in [
            "marker=goal&time=10s",
            "marker=goal&duration=5s",
            "marker=goal&end=5s",
            "before=5s&time=1s&duration=2s",
            "marker=a%20b",
            "marker=goal&before=soon",
        ] {
            let e = q(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}: {e}");
        }
        let r = q("marker=goal&before=2s&after=500ms").unwrap();
        assert_eq!(r.marker.as_deref(), Some("goal"));
        assert_eq!(r.before, Some(2 * NS));
        assert_eq!(r.after, Some(NS / 2));
    }
}
