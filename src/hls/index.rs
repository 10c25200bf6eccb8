// SPDX-License-Identifier: MPL-2.0
//! What a session holds, as clip requests see it: its segments on the
//! recording-time axis and, where known, the byte ranges and start times of
//! their fragments (one per GOP).
//!
//! A stored session is read back from its replay playlist; fragments of a
//! segment are found with the box scanner when a request needs them. The
//! session being recorded is published by the recorder into a [`LiveIndex`]
//! after every fragment, including the fragments of the segment still being
//! written, so a clip can reach the last complete fragment.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::markers::{Marker, MarkerBook};
use super::playlist::REPLAY;
use super::playlist::Segment;
use crate::mp4::scan::read_moov;

/// One moof+mdat pair: where it is in its segment file and which recording
/// time it covers (its start is a keyframe's presentation time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    pub offset: u64,
    pub size: u64,
    /// Recording time, ns.
    pub start: u64,
    pub end: u64,
    /// Bytes `[from, to)` of the segment file that hold only the leading
    /// pictures of the fragment's random-access point (an open GOP): a
    /// clip that starts at this fragment leaves them out.
    pub lead: Option<(u64, u64)>,
}

/// A low-latency HLS part: a byte range of its segment (one or more
/// moof+mdat pairs of one fragment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartInfo {
    pub offset: u64,
    pub size: u64,
    /// ns.
    pub duration: u64,
    /// It starts with a keyframe (or holds audio alone).
    pub independent: bool,
}

/// A segment and, when known, its fragments.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentInfo {
    pub segment: Segment,
    /// `None` until scanned; always known for the segment being written.
    pub fragments: Option<Vec<FragmentInfo>>,
    /// Its parts, for the newest segments of a live session recorded with
    /// parts (empty otherwise).
    pub parts: Vec<PartInfo>,
}

/// One session as seen by a request. Built from the replay playlist (stored
/// sessions) or copied out of a [`LiveIndex`] (the session being recorded).
#[derive(Debug, Clone, Default)]
pub struct SessionIndex {
    pub media_id: String,
    pub dir: PathBuf,
    /// Complete segments, ascending.
    pub segments: Vec<SegmentInfo>,
    /// The segment being written (live sessions only): its complete
    /// fragments can be clipped but it is not in any playlist yet.
    pub open: Option<SegmentInfo>,
    /// More media will come.
    pub live: bool,
    pub target_duration: u32,
    /// Discontinuities of segments deleted before `segments[0]`.
    pub removed_discontinuities: u64,
    /// Retention deleted segments at the front.
    pub trimmed: bool,
    /// In a ladder session, the rendition this is (its `dir`).
    pub rendition: Option<super::ladder::Rendition>,
    /// The part duration of a live session recorded with parts (ns; 0:
    /// none).
    pub part_target: u64,
    /// Segments in the live playlist's window (`playlist-length`; 0: all).
    pub live_window: usize,
    /// The session's markers, by start.
    pub markers: Arc<Vec<Marker>>,
}

impl SessionIndex {
    /// Reads a stored session from its replay playlist. `None` when the
    /// directory has no readable playlist.
    pub fn load(dir: &Path, media_id: &str) -> Option<SessionIndex> {
        let text = std::fs::read(dir.join(REPLAY)).ok()?;
        let playlist = m3u8_rs::parse_media_playlist_res(&text).ok()?;
        let mut t = 0u64;
        let mut map = String::from("init.mp4");
        let mut segments = Vec::with_capacity(playlist.segments.len());
        let hidden_start = playlist.playlist_type.is_none() && playlist.media_sequence > 0;
        for (i, s) in playlist.segments.iter().enumerate() {
            if let Some(m) = &s.map {
                map = m.uri.clone();
            }
            let duration = (f64::from(s.duration) * 1e9).round() as u64;
            segments.push(SegmentInfo {
                parts: Vec::new(),
                segment: Segment {
                    sequence: playlist.media_sequence + i as u64,
                    uri: s.uri.clone(),
                    start: t,
                    duration,
                    discontinuity: s.discontinuity,
                    map: map.clone(),
                    pdt: s.program_date_time.map(|p| p.to_utc()),
                    bytes: 0,
                },
                fragments: None,
            });
            t += duration;
        }
        let mut index = SessionIndex {
            media_id: media_id.to_string(),
            dir: dir.to_path_buf(),
            segments,
            open: None,
            live: false,
            target_duration: playlist.target_duration as u32,
            removed_discontinuities: playlist.discontinuity_sequence,
            trimmed: hidden_start,
            rendition: None,
            part_target: 0,
            live_window: 0,
            markers: Arc::default(),
        };
        // A trimmed session's first segment doesn't start at recording time
        // 0: its media (tfdt) says where it starts.
        if hidden_start {
            index.rebase_from_media();
        }
        if !playlist.end_list {
            index.find_open();
        }
        Some(index)
    }

    /// A session another process is recording (its replay playlist has no
    /// ENDLIST): the complete fragments of the segment it is writing, read
    /// with the box scanner (a fragment still being written is not
    /// complete), so that clips reach past the playlist's last segment.
    fn find_open(&mut self) {
        let next = self.segments.last().map_or(0, |s| s.segment.sequence + 1);
        let uri = format!("segment-{next:05}.m4s");
        if !self.dir.join(&uri).exists() {
            return;
        }
        let start = self.segments.last().map_or(0, |s| s.segment.end());
        let segment = Segment {
            sequence: next,
            uri,
            start,
            duration: 0,
            discontinuity: false,
            map: self
                .segments
                .last()
                .map_or_else(|| "init.mp4".to_string(), |s| s.segment.map.clone()),
            pdt: self.segments.last().and_then(|s| {
                s.segment
                    .pdt
                    .map(|t| t + chrono::Duration::nanoseconds(s.segment.duration as i64))
            }),
            bytes: 0,
        };
        let Ok(fragments) = scan_fragments(&self.dir, &segment, &mut Vec::new()) else {
            return;
        };
        let (Some(first), Some(last)) = (fragments.first(), fragments.last()) else {
            return;
        };
        // The scanned times are the media's: keep the playlist's axis.
        let shift = first.start as i64 - start as i64;
        let fragments: Vec<FragmentInfo> = fragments
            .iter()
            .map(|f| FragmentInfo {
                start: (f.start as i64 - shift).max(0) as u64,
                end: (f.end as i64 - shift).max(0) as u64,
                ..*f
            })
            .collect();
        let end = (last.end as i64 - shift).max(start as i64) as u64;
        self.open = Some(SegmentInfo {
            segment: Segment {
                duration: end - start,
                bytes: last.offset + last.size,
                ..segment
            },
            fragments: Some(fragments),
            parts: Vec::new(),
        });
        self.live = true;
    }

    /// Reads a stored session: its renditions, the leading one first (one
    /// for the single layout, read from the session's directory).
    pub fn load_session(dir: &Path, media_id: &str) -> Option<Vec<SessionIndex>> {
        let mut all = Self::load_renditions(dir, media_id)?;
        // An unreadable marker list hides the markers, not the media.
        let markers = Arc::new(MarkerBook::load(dir).unwrap_or_default().markers);
        for index in &mut all {
            index.markers = markers.clone();
        }
        Some(all)
    }

    fn load_renditions(dir: &Path, media_id: &str) -> Option<Vec<SessionIndex>> {
        let Ok(text) = std::fs::read(dir.join(super::ladder::MASTER)) else {
            return Self::load(dir, media_id).map(|i| vec![i]);
        };
        let renditions = super::ladder::parse_master(&text)?;
        let all: Vec<SessionIndex> = renditions
            .into_iter()
            .filter_map(|r| {
                let mut index = Self::load(&dir.join(&r.name), media_id)?;
                index.rendition = Some(r);
                Some(index)
            })
            .collect();
        (!all.is_empty()).then_some(all)
    }

    /// Moves the segments onto the time axis their first fragment's media
    /// time gives (for playlists whose front was trimmed).
    fn rebase_from_media(&mut self) {
        let Some(first) = self.segments.first().cloned() else {
            return;
        };
        let Ok(frags) = scan_fragments(&self.dir, &first.segment, &mut Vec::new()) else {
            return;
        };
        if let Some(f) = frags.first() {
            let base = f.start;
            for s in &mut self.segments {
                s.segment.start += base;
            }
            self.segments[0].fragments = None;
        }
    }

    /// A copy holding only the segments that overlap `[from, to)` (with a
    /// millisecond of margin for rounded playlist durations). The live index
    /// is copied this way, so a request holds its lock only briefly and
    /// copies little of a long session.
    pub fn slice(&self, from: u64, to: u64) -> SessionIndex {
        let from = from.saturating_sub(1_000_000);
        let overlaps = |s: &SegmentInfo| {
            let end = s
                .fragments
                .as_ref()
                .and_then(|f| f.last())
                .map_or(s.segment.end(), |f| f.end.max(s.segment.end()));
            end > from && s.segment.start < to
        };
        let first = self
            .segments
            .iter()
            .position(overlaps)
            .unwrap_or(self.segments.len());
        let dropped = self.segments[..first]
            .iter()
            .filter(|s| s.segment.discontinuity)
            .count() as u64;
        SessionIndex {
            media_id: self.media_id.clone(),
            dir: self.dir.clone(),
            segments: self.segments[first..]
                .iter()
                .take_while(|s| s.segment.start < to)
                .cloned()
                .collect(),
            open: self.open.clone().filter(overlaps),
            live: self.live,
            target_duration: self.target_duration,
            removed_discontinuities: self.removed_discontinuities + dropped,
            trimmed: self.trimmed || first > 0,
            rendition: self.rendition.clone(),
            part_target: self.part_target,
            live_window: self.live_window,
            markers: self.markers.clone(),
        }
    }

    /// Recording time (ns) where the stored media begins.
    pub fn begin(&self) -> u64 {
        self.segments
            .first()
            .or(self.open.as_ref())
            .map_or(0, |s| s.segment.start)
    }

    /// Recording time (ns) up to which media can be clipped: the end of the
    /// last complete fragment.
    pub fn end(&self) -> u64 {
        if let Some(open) = &self.open
            && let Some(last) = open.fragments.as_ref().and_then(|f| f.last())
        {
            return last.end;
        }
        self.segments.last().map_or(0, |s| s.segment.end())
    }

    /// Recording time (ns) of the end of the complete segments.
    pub fn segments_end(&self) -> u64 {
        self.segments
            .last()
            .map_or(self.begin(), |s| s.segment.end())
    }

    /// Recording time (ns) of a wall-clock instant, from the program date
    /// times. `None` when no segment carries one.
    pub fn recording_time_at(&self, utc: DateTime<Utc>) -> Option<i128> {
        let all: Vec<&SegmentInfo> = self.segments.iter().chain(self.open.iter()).collect();
        // The last segment whose program date time is at or before the
        // instant; before the first one, the first one.
        let anchor = all
            .iter()
            .rev()
            .find(|s| s.segment.pdt.is_some_and(|p| p <= utc))
            .or_else(|| all.iter().find(|s| s.segment.pdt.is_some()))?;
        let pdt = anchor.segment.pdt?;
        let delta = (utc - pdt).num_nanoseconds()?;
        Some(i128::from(anchor.segment.start) + i128::from(delta))
    }

    /// Wall clock at recording time `t`, from the nearest earlier PDT.
    pub fn utc_at(&self, t: u64) -> Option<DateTime<Utc>> {
        let s = self
            .segments
            .iter()
            .chain(self.open.iter())
            .rev()
            .find(|s| s.segment.start <= t && s.segment.pdt.is_some())?;
        Some(s.segment.pdt? + chrono::Duration::nanoseconds((t - s.segment.start) as i64))
    }

    /// The fragments covering `[start, end)`, in order, with the segment of
    /// each: from the fragment that starts at or before `start` (its first
    /// frame is a keyframe) to the last one starting before `end`. Scans the
    /// segment files it needs.
    pub fn fragments_for(
        &self,
        start: u64,
        end: u64,
    ) -> std::io::Result<Vec<(&SegmentInfo, FragmentInfo)>> {
        let mut out = Vec::new();
        let mut kinds = Vec::new();
        for seg in self.segments.iter().chain(self.open.iter()) {
            let s = &seg.segment;
            // Segments that can't hold a fragment of the range.
            let seg_end = seg
                .fragments
                .as_ref()
                .and_then(|f| f.last())
                .map_or(s.end(), |f| f.end.max(s.end()));
            if seg_end <= start || s.start >= end {
                continue;
            }
            let frags = match &seg.fragments {
                Some(f) => f.clone(),
                None => scan_fragments(&self.dir, s, &mut kinds)?,
            };
            for f in frags {
                if f.start < end {
                    out.push((seg, f));
                }
            }
        }
        // Drop what ends before the start, but keep the fragment holding it.
        let first = out.iter().rposition(|(_, f)| f.start <= start).unwrap_or(0);
        out.drain(..first);
        Ok(out)
    }
}

/// The fragments of a stored segment, on the recording-time axis: start
/// times from the leading track's `tfdt` (video when there is video), the
/// last one ending where the segment ends.
fn scan_fragments(
    dir: &Path,
    seg: &Segment,
    cache: &mut Vec<(String, Vec<InitTrack>)>,
) -> std::io::Result<Vec<FragmentInfo>> {
    let tracks = match cache.iter().find(|(m, _)| *m == seg.map) {
        Some((_, t)) => t.clone(),
        None => {
            let t = init_tracks(&dir.join(&seg.map))?;
            cache.push((seg.map.clone(), t.clone()));
            t
        }
    };
    let leader = tracks
        .iter()
        .find(|(_, _, video)| *video)
        .or(tracks.first())
        .copied()
        .ok_or_else(|| std::io::Error::other(format!("{} has no tracks", seg.map)))?;
    let scanned = crate::mp4::scan::scan_segment(&dir.join(&seg.uri))?;
    // A group starts at every fragment whose leading track starts with a
    // sync sample; the fragments after it (an open GOP's leading pictures,
    // then the rest of its video) belong to it.
    let mut out: Vec<FragmentInfo> = Vec::with_capacity(scanned.fragments.len());
    for f in &scanned.fragments {
        let run = f.runs.iter().find(|r| r.track_id == leader.0);
        match out.last_mut() {
            Some(g) if !run.is_some_and(|r| r.starts_with_sync) => {
                let second = g.offset + g.size == f.offset && g.lead.is_none() && g.size > 0;
                if second && f.runs.len() == 1 && run.is_some_and(|r| r.leading) {
                    g.lead = Some((f.offset, f.offset + f.size));
                }
                g.size = f.offset + f.size - g.offset;
            }
            _ => {
                let Some(run) = run else { continue };
                let start = (u128::from(run.base_decode_time) * 1_000_000_000
                    / u128::from(leader.1.max(1))) as u64;
                if let Some(prev) = out.last_mut() {
                    prev.end = start.max(prev.start);
                }
                out.push(FragmentInfo {
                    offset: f.offset,
                    size: f.size,
                    start,
                    end: start,
                    lead: None,
                });
            }
        }
    }
    let seg_end = seg.end();
    if let Some(last) = out.last_mut() {
        // The playlist's durations are rounded: never end before the media.
        let media_end = scanned
            .fragments
            .last()
            .and_then(|f| f.runs.iter().find(|r| r.track_id == leader.0))
            .map(|r| {
                ((u128::from(r.base_decode_time) + u128::from(r.duration)) * 1_000_000_000
                    / u128::from(leader.1.max(1))) as u64
            })
            .unwrap_or(seg_end);
        last.end = media_end.max(last.start);
    }
    Ok(out)
}

/// (track id, timescale, is video) of one track of an init segment.
pub type InitTrack = (u32, u32, bool);

/// Every track of an init segment.
pub fn init_tracks(path: &Path) -> std::io::Result<Vec<InitTrack>> {
    let data = std::fs::read(path)?;
    let moov = read_moov(&data)
        .ok_or_else(|| std::io::Error::other(format!("{} has no moov", path.display())))?;
    Ok(moov
        .trak
        .iter()
        .map(|t| {
            (
                t.tkhd.track_id,
                t.mdia.mdhd.timescale,
                t.mdia.hdlr.handler == mp4_atom::FourCC::new(b"vide"),
            )
        })
        .collect())
}

/// The session being recorded, shared between the recorder (which updates
/// it after every fragment) and clip requests (which copy out what they
/// need and wait on it for media at the live edge).
#[derive(Debug, Default)]
pub struct LiveIndex {
    /// Its renditions, the leading one first (one for the single layout;
    /// empty when no session is being recorded).
    state: Mutex<Vec<SessionIndex>>,
    changed: Condvar,
}

impl LiveIndex {
    /// Runs `f` on the live session (its leading rendition), if one is
    /// being recorded.
    pub fn with<R>(&self, f: impl FnOnce(&SessionIndex) -> R) -> Option<R> {
        self.state.lock().unwrap().first().map(f)
    }

    /// Runs `f` on every rendition of the live session, if one is being
    /// recorded.
    pub fn with_all<R>(&self, f: impl FnOnce(&[SessionIndex]) -> R) -> Option<R> {
        let state = self.state.lock().unwrap();
        (!state.is_empty()).then(|| f(&state))
    }

    /// Changes the live session's renditions (or sets or clears them) and
    /// wakes waiters.
    pub fn update(&self, f: impl FnOnce(&mut Vec<SessionIndex>)) {
        f(&mut self.state.lock().unwrap());
        self.changed.notify_all();
    }

    /// Waits until `ready` holds of the live session's renditions, the
    /// session ends or changes, or `timeout` passes; returns whether
    /// `ready` held.
    pub fn wait_for(
        &self,
        media_id: &str,
        timeout: Duration,
        ready: impl Fn(&[SessionIndex]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.state.lock().unwrap();
        loop {
            match guard.first() {
                Some(s) if s.media_id == media_id => {
                    if ready(&guard) {
                        return true;
                    }
                    if !s.live {
                        return false;
                    }
                }
                _ => return false,
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self.changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Waits until the live session `media_id` can be clipped up to `end`
    /// (recording ns), it ends, or `timeout` passes. Returns the clippable
    /// end at that point (`None` when the session is no longer live here).
    pub fn wait_until(&self, media_id: &str, end: u64, timeout: Duration) -> Option<u64> {
        let deadline = Instant::now() + timeout;
        let mut guard = self.state.lock().unwrap();
        loop {
            let (reached, live) = match guard.first() {
                Some(s) if s.media_id == media_id => (s.end(), s.live),
                _ => return None,
            };
            if reached >= end || !live {
                return Some(reached);
            }
            let now = Instant::now();
            if now >= deadline {
                return Some(reached);
            }
            guard = self.changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }
}
