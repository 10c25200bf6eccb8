// SPDX-License-Identifier: MPL-2.0
//! Everything hlsclipsink keeps on disk for one stream: session directories,
//! init and media segments, playlists, sessions.json, recovery after a crash
//! and retention. Runs on the element's writer thread, never on a streaming
//! thread.
//!
//! Durability: a fragment is appended and synced before the playlist names
//! its segment; playlists and sessions.json are replaced atomically. After a
//! crash at any point the replay playlist parses and names only complete
//! segments; on the next start the segment that was being written is checked
//! with the box scanner and its complete fragments are kept.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::index::{FragmentInfo, LiveIndex, SegmentInfo, SessionIndex};
use super::planner::Fragment;
use super::playlist::{self, Kind, Segment};
use super::sessions::{SessionRecord, SessionsFile, State, new_media_id};
use crate::core::atomic::{sync_dir, write_atomic};
use crate::core::{Sample, TrackKind};
use crate::mp4::ClipTrack;
use crate::mp4::fragmented::{self, FragTrack};
use crate::mp4::progressive::WriteError;
use crate::mp4::scan::scan_segment;

use super::playlist::{LIVE, REPLAY};

/// What the recorder is asked to keep.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub playlist_length: usize,
    pub target_duration: u32,
    pub enable_pdt: bool,
    pub reconnect_window: Duration,
    /// 0 keeps everything.
    pub max_age: Duration,
    /// 0 keeps everything.
    pub max_bytes: u64,
}

/// What `start` found and did.
#[derive(Debug, Clone, Default)]
pub struct StartReport {
    pub media_id: String,
    /// The session continues one that ended within the reconnect window.
    pub resumed: bool,
    /// Sessions a crash left open that were closed.
    pub closed: Vec<String>,
    /// Torn bytes cut off segment files.
    pub truncated_bytes: u64,
}

struct OpenSegment {
    sequence: u64,
    uri: String,
    file: File,
    start: u64,
    end: u64,
    pdt: Option<DateTime<Utc>>,
    discontinuity: bool,
    map: String,
    bytes: u64,
    fragments: Vec<FragmentInfo>,
}

/// A session on disk, as recovery finds it.
struct Found {
    media_id: String,
    segments: Vec<Segment>,
    removed_discontinuities: u64,
    trimmed: bool,
    init_count: u32,
    ended: bool,
    last_activity: SystemTime,
    truncated: u64,
}

pub struct Recorder {
    stream_dir: PathBuf,
    cfg: RecorderConfig,
    sessions: SessionsFile,
    media_id: String,
    dir: PathBuf,
    segments: Vec<Segment>,
    removed_discontinuities: u64,
    trimmed: bool,
    next_sequence: u64,
    init_count: u32,
    map: Option<String>,
    pending_discontinuity: bool,
    open: Option<OpenSegment>,
    fragment_sequence: u32,
    ended: bool,
    /// Whether the session's directory and sessions.json entry exist: a
    /// new session appears only with its first durable fragment, so a
    /// start that fails (bad caps, garbage, a full disk) leaves nothing.
    on_disk: bool,
    /// When the session started, for its sessions.json entry.
    started: DateTime<Utc>,
    /// An init segment waiting for the session to appear on disk.
    pending_init: Option<(String, Vec<u8>)>,
    /// Where clip requests see the session being recorded.
    live: Option<Arc<LiveIndex>>,
}

fn segment_uri(sequence: u64) -> String {
    format!("segment-{sequence:05}.m4s")
}

fn io_err(e: WriteError) -> io::Error {
    match e {
        WriteError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl Recorder {
    /// Opens `{location}/{stream_id}`: recovers what a crash left, closes or
    /// resumes the last session, and starts recording.
    pub fn start(
        location: &Path,
        stream_id: &str,
        cfg: RecorderConfig,
        now: DateTime<Utc>,
    ) -> io::Result<(Recorder, StartReport)> {
        let stream_dir = location.join(stream_id);
        std::fs::create_dir_all(&stream_dir)?;
        let mut sessions = SessionsFile::load(&stream_dir, stream_id);
        sessions.stream_id = stream_id.to_string();
        let mut report = StartReport::default();

        // Every session directory that is not known to be ended.
        let mut found = Vec::new();
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&stream_dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let id = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if let Some(f) = recover(&dir, &id)? {
                report.truncated_bytes += f.truncated;
                found.push(f);
            }
        }
        found.sort_by(|a, b| a.media_id.cmp(&b.media_id));
        let newest = found.pop();
        let now_sys = SystemTime::now();
        let mut recorder = Recorder {
            stream_dir: stream_dir.clone(),
            cfg,
            sessions,
            media_id: String::new(),
            dir: PathBuf::new(),
            segments: Vec::new(),
            removed_discontinuities: 0,
            trimmed: false,
            next_sequence: 0,
            init_count: 0,
            map: None,
            pending_discontinuity: false,
            open: None,
            fragment_sequence: 0,
            ended: false,
            on_disk: false,
            started: now,
            pending_init: None,
            live: None,
        };
        // Older sessions a crash left open are closed.
        for f in found {
            recorder.close_if_open(f, now, &mut report)?;
        }
        let within_window = |f: &Found| {
            !recorder.cfg.reconnect_window.is_zero()
                && !f.segments.is_empty()
                && now_sys.duration_since(f.last_activity).unwrap_or_default()
                    <= recorder.cfg.reconnect_window
        };
        match newest {
            Some(f) if within_window(&f) => {
                report.resumed = true;
                recorder.adopt(f);
                recorder.pending_discontinuity = true;
                if let Some(r) = recorder.sessions.get_mut(&recorder.media_id) {
                    r.state = State::Live;
                    r.end_utc = None;
                }
            }
            Some(f) => {
                recorder.close_if_open(f, now, &mut report)?;
                recorder.new_session(now)?;
            }
            None => recorder.new_session(now)?,
        }
        report.media_id = recorder.media_id.clone();
        recorder.sessions.save(&stream_dir)?;
        if report.resumed {
            recorder.write_playlists()?;
        }
        Ok((recorder, report))
    }

    /// Closes a recovered session unless it had ended cleanly.
    fn close_if_open(
        &mut self,
        f: Found,
        now: DateTime<Utc>,
        report: &mut StartReport,
    ) -> io::Result<()> {
        let live = self
            .sessions
            .get(&f.media_id)
            .is_none_or(|r| r.state == State::Live);
        if f.ended && !live {
            return Ok(());
        }
        report.closed.push(f.media_id.clone());
        self.adopt(f);
        self.finish_session(now)
    }

    fn adopt(&mut self, f: Found) {
        self.media_id = f.media_id;
        self.dir = self.stream_dir.join(&self.media_id);
        self.next_sequence = f.segments.last().map_or(0, |s| s.sequence + 1);
        self.map = f.segments.last().map(|s| s.map.clone());
        self.segments = f.segments;
        self.removed_discontinuities = f.removed_discontinuities;
        self.trimmed = f.trimmed;
        self.init_count = f.init_count;
        self.pending_discontinuity = false;
        self.open = None;
        self.ended = false;
        self.on_disk = true;
        self.pending_init = None;
        let bytes = self.segments.iter().map(|s| s.bytes).sum();
        let duration = self.segments.last().map_or(0, Segment::end) as f64 / 1e9;
        let start_utc = self.segments.first().and_then(|s| s.pdt);
        let segments = self.segments.len() as u64;
        match self.sessions.get_mut(&self.media_id) {
            Some(r) => {
                r.bytes = bytes;
                r.duration = duration;
                r.segments = segments;
            }
            None => self.sessions.sessions.push(SessionRecord {
                media_id: self.media_id.clone(),
                start_utc,
                end_utc: None,
                duration,
                state: State::Live,
                segments,
                bytes,
            }),
        }
    }

    fn new_session(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        let media_id = new_media_id(now);
        self.dir = self.stream_dir.join(&media_id);
        self.media_id = media_id;
        self.segments.clear();
        self.removed_discontinuities = 0;
        self.trimmed = false;
        self.next_sequence = 0;
        self.init_count = 0;
        self.map = None;
        self.pending_discontinuity = false;
        self.open = None;
        self.ended = false;
        self.on_disk = false;
        self.started = now;
        self.pending_init = None;
        Ok(())
    }

    /// Makes the session's directory with its init segment, before its
    /// first fragment is written.
    fn materialize(&mut self) -> io::Result<()> {
        if self.on_disk {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        sync_dir(&self.dir);
        if let Some((name, data)) = self.pending_init.take() {
            write_atomic(&self.dir.join(&name), &data, true)?;
        }
        self.on_disk = true;
        Ok(())
    }

    /// Adds the session to sessions.json once its first fragment is on
    /// disk.
    fn announce(&mut self) -> io::Result<()> {
        if self.sessions.get(&self.media_id).is_some() {
            return Ok(());
        }
        self.sessions.sessions.push(SessionRecord {
            media_id: self.media_id.clone(),
            start_utc: Some(self.started),
            end_utc: None,
            duration: 0.0,
            state: State::Live,
            segments: 0,
            bytes: 0,
        });
        self.sessions.save(&self.stream_dir)
    }

    /// Publishes the session into `live` from now on (clip requests read
    /// it there, including the fragments of the segment being written).
    pub fn publish_to(&mut self, live: Arc<LiveIndex>) {
        self.live = Some(live);
        self.publish(true);
    }

    /// Brings the live index up to date: the open segment always, the list
    /// of complete segments when `segments` (after a close or retention).
    fn publish(&mut self, segments: bool) {
        let Some(live) = &self.live else { return };
        let open = self.open.as_ref().map(|o| SegmentInfo {
            segment: Segment {
                sequence: o.sequence,
                uri: o.uri.clone(),
                start: o.start,
                duration: o.end - o.start,
                discontinuity: o.discontinuity,
                map: o.map.clone(),
                pdt: o.pdt,
                bytes: o.bytes,
            },
            fragments: Some(o.fragments.clone()),
        });
        live.update(|slot| {
            if slot.as_ref().is_none_or(|s| s.media_id != self.media_id) {
                *slot = Some(SessionIndex {
                    media_id: self.media_id.clone(),
                    dir: self.dir.clone(),
                    segments: self
                        .segments
                        .iter()
                        .map(|s| SegmentInfo {
                            segment: s.clone(),
                            fragments: None,
                        })
                        .collect(),
                    ..Default::default()
                });
            }
            let idx = slot.as_mut().expect("set above");
            if segments {
                let first = self.segments.first().map_or(u64::MAX, |s| s.sequence);
                let keep_from = idx
                    .segments
                    .iter()
                    .position(|s| s.segment.sequence >= first)
                    .unwrap_or(idx.segments.len());
                idx.segments.drain(..keep_from);
                let last = idx.segments.last().map(|s| s.segment.sequence);
                let closed_fragments = idx.open.take().and_then(|o| o.fragments);
                for s in &self.segments {
                    if last.is_none_or(|l| s.sequence > l) {
                        idx.segments.push(SegmentInfo {
                            segment: s.clone(),
                            fragments: closed_fragments.clone().filter(|_| {
                                Some(s.sequence) == self.segments.last().map(|l| l.sequence)
                            }),
                        });
                    }
                }
            }
            idx.open = open;
            idx.live = !self.ended;
            idx.target_duration = self.cfg.target_duration;
            idx.removed_discontinuities = self.removed_discontinuities;
            idx.trimmed = self.trimmed;
        });
    }

    pub fn media_id(&self) -> &str {
        &self.media_id
    }

    pub fn session_dir(&self) -> &Path {
        &self.dir
    }

    pub fn stream_dir(&self) -> &Path {
        &self.stream_dir
    }

    /// Recording time (ns) at which this run's media starts.
    /// Recording time (ns) of the end of what was written so far.
    pub fn end(&self) -> u64 {
        self.open
            .as_ref()
            .map(|o| o.end)
            .or_else(|| self.segments.last().map(Segment::end))
            .unwrap_or(0)
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Writes a new init segment; the next segment starts with EXT-X-MAP (and
    /// a discontinuity, unless it is the session's first init).
    pub fn write_init(&mut self, data: &[u8]) -> io::Result<String> {
        if self.open.is_some() {
            self.close_segment()?;
        }
        if !self.on_disk && self.pending_init.is_some() {
            // The first init was never used: this one replaces it.
            self.pending_init = Some(("init.mp4".into(), data.to_vec()));
            return Ok("init.mp4".into());
        }
        let name = if self.init_count == 0 {
            "init.mp4".to_string()
        } else {
            format!("init-{}.mp4", self.init_count)
        };
        if self.on_disk {
            write_atomic(&self.dir.join(&name), data, true)?;
        } else {
            self.pending_init = Some((name.clone(), data.to_vec()));
        }
        if self.init_count > 0 {
            self.pending_discontinuity = true;
        }
        self.init_count += 1;
        self.map = Some(name.clone());
        Ok(name)
    }

    /// The next segment starts after an EXT-X-DISCONTINUITY.
    pub fn discontinuity(&mut self) -> io::Result<()> {
        if self.open.is_some() {
            self.close_segment()?;
        }
        self.pending_discontinuity = true;
        Ok(())
    }

    /// Appends a fragment (its times are the planner's: recording time is
    /// the session's). Returns where it was written.
    pub fn append(&mut self, fragment: &Fragment) -> io::Result<Option<FragmentInfo>> {
        let Some(map) = self.map.clone() else {
            return Err(io::Error::other("no init segment written before media"));
        };
        let Fragment {
            tracks,
            offset,
            delays,
            pdt,
            end,
            ..
        } = fragment;
        let (offset, pdt) = (*offset, *pdt);
        // An open random-access point's leading pictures refer to the GOP
        // before it: they get a fragment of their own, between one with the
        // random-access point (and the other tracks) and one with the rest
        // of the video, so that a clip manifest starting here can leave
        // them out by byte ranges (players then decode from the point
        // alone). The playlists see one contiguous fragment group.
        let mut frags = Vec::with_capacity(3);
        for part in split_leading(tracks) {
            let frag_tracks: Vec<FragTrack> = part
                .iter()
                .map(|&(i, samples, next_dts, rap)| FragTrack {
                    track_id: i as u32 + 1,
                    config: &tracks[i].config,
                    samples,
                    next_dts,
                    offset,
                    delay: delays.get(i).copied().unwrap_or(0),
                    rap,
                })
                .collect();
            match fragmented::fragment(self.fragment_sequence + 1, &frag_tracks) {
                Ok(f) => {
                    self.fragment_sequence += 1;
                    frags.push(f);
                }
                Err(WriteError::Empty) => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        if frags.is_empty() {
            return Ok(None);
        }
        if self.open.is_none() {
            self.materialize()?;
            let sequence = self.next_sequence;
            let uri = segment_uri(sequence);
            let path = self.dir.join(&uri);
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&path)?;
            // Segments follow each other: recording time has no holes.
            let start = self.end();
            self.open = Some(OpenSegment {
                sequence,
                uri,
                file,
                start,
                end: start,
                pdt,
                discontinuity: std::mem::take(&mut self.pending_discontinuity),
                map,
                bytes: 0,
                fragments: Vec::new(),
            });
        }
        let open = self.open.as_mut().expect("opened above");
        // One writev per batch of samples: the data goes from the buffers
        // GStreamer filled straight to the file, without another copy.
        let mut slices: Vec<io::IoSlice> = frags
            .iter()
            .flat_map(|f| std::iter::once(&f.header[..]).chain(f.payload.iter().map(|p| &p[..])))
            .map(io::IoSlice::new)
            .collect();
        let written = (|| {
            let mut rest = &mut slices[..];
            while !rest.is_empty() {
                let n = (&open.file).write_vectored(&rest[..rest.len().min(1024)])?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                io::IoSlice::advance_slices(&mut rest, n);
            }
            open.file.sync_data()
        })();
        if let Err(e) = written {
            // A full disk: the segment keeps its complete fragments only,
            // so that closing it later (or recovery) finds no torn tail.
            let _ = open.file.set_len(open.bytes);
            return Err(e);
        }
        let fragment_start = open.end;
        open.end = open.end.max(end.ns());
        let size: u64 = frags.iter().map(|f| f.size).sum();
        let lead = (frags.len() >= 2).then(|| {
            let from = open.bytes + frags[0].size;
            (from, from + frags[1].size)
        });
        let info = FragmentInfo {
            offset: open.bytes,
            size,
            start: fragment_start,
            end: open.end,
            lead,
        };
        open.fragments.push(info);
        open.bytes += size;
        self.announce()?;
        self.publish(false);
        Ok(Some(info))
    }

    /// Duration (ns) of the segment being written, 0 if none.
    pub fn open_duration(&self) -> u64 {
        self.open.as_ref().map_or(0, |o| o.end - o.start)
    }

    /// Ends the segment being written: it enters the playlists.
    pub fn close_segment(&mut self) -> io::Result<Option<Segment>> {
        let Some(open) = self.open.take() else {
            return Ok(None);
        };
        if open.bytes == 0 {
            // Its first fragment never made it to disk: no segment.
            self.pending_discontinuity |= open.discontinuity;
            drop(open.file);
            let _ = std::fs::remove_file(self.dir.join(&open.uri));
            return Ok(None);
        }
        open.file.sync_all()?;
        drop(open.file);
        let seg = Segment {
            sequence: open.sequence,
            uri: open.uri,
            start: open.start,
            duration: open.end - open.start,
            discontinuity: open.discontinuity,
            map: open.map,
            pdt: open.pdt,
            bytes: open.bytes,
        };
        self.next_sequence = seg.sequence + 1;
        self.segments.push(seg.clone());
        self.write_playlists()?;
        self.publish(true);
        self.update_record(None);
        self.sessions.save(&self.stream_dir)?;
        self.apply_retention()?;
        Ok(Some(seg))
    }

    fn update_record(&mut self, ended: Option<DateTime<Utc>>) {
        let bytes = self.segments.iter().map(|s| s.bytes).sum();
        let duration = self.segments.last().map_or(0, Segment::end) as f64 / 1e9;
        let segments = self.segments.len() as u64;
        let end_utc = self.segments.last().and_then(|s| {
            s.pdt
                .map(|p| p + chrono::Duration::nanoseconds(s.duration as i64))
        });
        if let Some(r) = self.sessions.get_mut(&self.media_id) {
            r.bytes = bytes;
            r.duration = duration;
            r.segments = segments;
            if r.start_utc.is_none() {
                r.start_utc = self.segments.first().and_then(|s| s.pdt);
            }
            if let Some(now) = ended {
                r.state = State::Ended;
                r.end_utc = end_utc.or(Some(now));
            }
        }
    }

    fn write_playlists(&self) -> io::Result<()> {
        let t = self.cfg.target_duration;
        let live = playlist::render(
            &self.segments,
            Kind::Live {
                window: self.cfg.playlist_length,
            },
            t,
            self.removed_discontinuities,
            self.ended,
            self.trimmed,
            self.cfg.enable_pdt,
        );
        let replay = playlist::render(
            &self.segments,
            Kind::Replay,
            t,
            self.removed_discontinuities,
            self.ended,
            self.trimmed,
            self.cfg.enable_pdt,
        );
        write_atomic(&self.dir.join(REPLAY), replay.as_bytes(), true)?;
        write_atomic(&self.dir.join(LIVE), live.as_bytes(), true)
    }

    /// Ends the session: the open segment is closed, the playlists get
    /// EXT-X-ENDLIST, sessions.json says "ended".
    pub fn finish_session(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        if self.ended {
            return Ok(());
        }
        if self.open.is_some() {
            self.close_segment()?;
        }
        if !self.on_disk {
            // Nothing was ever written: the session never appeared.
            self.ended = true;
            self.publish(true);
            return Ok(());
        }
        self.ended = true;
        if !self.segments.is_empty() || self.dir.join(REPLAY).exists() {
            self.write_playlists()?;
        }
        self.publish(true);
        self.update_record(Some(now));
        self.sessions.save(&self.stream_dir)
    }

    /// Deletes what `max-age` and `max-bytes` no longer allow: whole ended
    /// sessions first, then the oldest segments of the current one (never
    /// the newest). Playlists are rewritten before files are deleted, so no
    /// playlist ever names a deleted segment.
    pub fn apply_retention(&mut self) -> io::Result<()> {
        let (max_age, max_bytes) = (self.cfg.max_age, self.cfg.max_bytes);
        if max_age.is_zero() && max_bytes == 0 {
            return Ok(());
        }
        let now = Utc::now();
        let too_old = |r: &SessionRecord| {
            !max_age.is_zero()
                && r.end_utc
                    .is_some_and(|e| (now - e).to_std().unwrap_or_default() > max_age)
        };
        let mut changed = false;
        // Ended sessions, oldest first.
        loop {
            let total: u64 = self.sessions.sessions.iter().map(|r| r.bytes).sum();
            let victim = self
                .sessions
                .sessions
                .iter()
                .filter(|r| r.state == State::Ended && r.media_id != self.media_id)
                .find(|r| too_old(r) || (max_bytes > 0 && total > max_bytes))
                .map(|r| r.media_id.clone());
            let Some(id) = victim else { break };
            // A tombstone stays, so a request for it answers "gone".
            if let Some(r) = self.sessions.get_mut(&id) {
                r.state = State::Deleted;
                r.bytes = 0;
                r.segments = 0;
            }
            let _ = std::fs::remove_dir_all(self.stream_dir.join(&id));
            self.sessions.forget_old_tombstones();
            changed = true;
        }
        // Then the current session's oldest segments.
        let mut deleted = Vec::new();
        loop {
            if self.segments.len() <= 1 {
                break;
            }
            let total: u64 = self.sessions.sessions.iter().map(|r| r.bytes).sum::<u64>()
                - deleted.iter().map(|s: &Segment| s.bytes).sum::<u64>();
            let newest_end = self.segments.last().map_or(0, Segment::end);
            let first = &self.segments[0];
            let old = !max_age.is_zero()
                && Duration::from_nanos(newest_end.saturating_sub(first.end())) > max_age;
            if !(old || (max_bytes > 0 && total > max_bytes)) {
                break;
            }
            let seg = self.segments.remove(0);
            if seg.discontinuity {
                self.removed_discontinuities += 1;
            }
            // The next first segment must carry its map.
            deleted.push(seg);
        }
        if !deleted.is_empty() {
            self.trimmed = true;
            self.write_playlists()?;
            self.publish(true);
            for seg in &deleted {
                let _ = std::fs::remove_file(self.dir.join(&seg.uri));
            }
            // Init segments no remaining segment needs.
            let maps: Vec<&str> = self.segments.iter().map(|s| s.map.as_str()).collect();
            for seg in &deleted {
                if !maps.contains(&seg.map.as_str()) && Some(&seg.map) != self.map.as_ref() {
                    let _ = std::fs::remove_file(self.dir.join(&seg.map));
                }
            }
            self.update_record(None);
            changed = true;
        }
        if changed {
            self.sessions.save(&self.stream_dir)?;
        }
        Ok(())
    }
}

/// Reads a session directory back: the replay playlist's segments, plus the
/// complete fragments of the segment that was being written.
fn recover(dir: &Path, media_id: &str) -> io::Result<Option<Found>> {
    let replay_path = dir.join(REPLAY);
    // Leftovers of atomic writes that never completed.
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_name().to_string_lossy().ends_with(".partial") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let (mut segments, removed_discontinuities, trimmed, ended) = match std::fs::read(&replay_path)
        .ok()
        .and_then(|b| m3u8_rs::parse_media_playlist_res(&b).ok())
    {
        Some(p) => {
            let mut map = String::from("init.mp4");
            let mut start = 0u64;
            let mut segs = Vec::new();
            for (i, s) in p.segments.iter().enumerate() {
                if let Some(m) = &s.map {
                    map = m.uri.clone();
                }
                let duration = (f64::from(s.duration) * 1e9).round() as u64;
                segs.push(Segment {
                    sequence: p.media_sequence + i as u64,
                    uri: s.uri.clone(),
                    start,
                    duration,
                    discontinuity: s.discontinuity,
                    map: map.clone(),
                    pdt: s.program_date_time.map(|t| t.to_utc()),
                    bytes: std::fs::metadata(dir.join(&s.uri)).map_or(0, |m| m.len()),
                });
                start += duration;
            }
            // Recording time restarts from 0 at the first stored segment when
            // older ones were deleted; keep the stored starts consistent.
            (
                segs,
                p.discontinuity_sequence,
                p.media_sequence > 0,
                p.end_list,
            )
        }
        None => (Vec::new(), 0, false, false),
    };
    let init_count = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("init") && n.ends_with(".mp4")
        })
        .count() as u32;
    if init_count == 0 && segments.is_empty() {
        return Ok(None);
    }
    let mut truncated = 0;
    let next = segments.last().map_or(0, |s| s.sequence + 1);
    let next_path = dir.join(segment_uri(next));
    if !ended && next_path.exists() {
        let scan = scan_segment(&next_path)?;
        let map = segments
            .last()
            .map_or_else(|| "init.mp4".to_string(), |s| s.map.clone());
        let timescale = init_timescale(&dir.join(&map));
        truncated = scan.file_len - scan.valid_len;
        match (scan.fragments.first(), scan.fragments.last(), timescale) {
            (Some(first), Some(last), Some(ts)) if scan.valid_len > 0 => {
                let r0 = first.runs.iter().find(|r| r.track_id == 1);
                let r1 = last.runs.iter().find(|r| r.track_id == 1);
                if let (Some(r0), Some(r1)) = (r0, r1) {
                    let f = OpenOptions::new().write(true).open(&next_path)?;
                    f.set_len(scan.valid_len)?;
                    f.sync_all()?;
                    let ticks =
                        (r1.base_decode_time + r1.duration).saturating_sub(r0.base_decode_time);
                    let duration = (ticks as u128 * 1_000_000_000 / u128::from(ts)) as u64;
                    let prev = segments.last();
                    let start = prev.map_or(0, Segment::end);
                    let pdt = prev.and_then(|p| {
                        p.pdt
                            .map(|t| t + chrono::Duration::nanoseconds(p.duration as i64))
                    });
                    segments.push(Segment {
                        sequence: next,
                        uri: segment_uri(next),
                        start,
                        duration,
                        discontinuity: false,
                        map,
                        pdt,
                        bytes: scan.valid_len,
                    });
                } else {
                    let _ = std::fs::remove_file(&next_path);
                }
            }
            _ => {
                let _ = std::fs::remove_file(&next_path);
            }
        }
    }
    let last_activity = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    Ok(Some(Found {
        media_id: media_id.to_string(),
        segments,
        removed_discontinuities,
        trimmed,
        init_count: init_count.max(1),
        ended,
        last_activity,
        truncated,
    }))
}

/// Timescale of track 1 of an init segment.
fn init_timescale(path: &Path) -> Option<u32> {
    use mp4_atom::{Atom, ReadFrom};
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    loop {
        let h = mp4_atom::Header::read_from(&mut f).ok()?;
        let size = h.size?;
        if h.kind == mp4_atom::Moov::KIND {
            let mut body = vec![0u8; size.min(16 << 20)];
            f.read_exact(&mut body).ok()?;
            let moov = mp4_atom::Moov::decode_body(&mut body.as_slice()).ok()?;
            return moov.trak.first().map(|t| t.mdia.mdhd.timescale);
        }
        f.seek(SeekFrom::Current(size as i64)).ok()?;
    }
}

/// One fragment's worth of a track: (track index, samples, decode time of
/// the sample after them, the random-access point they follow when it is
/// in an earlier fragment).
type Part<'a> = (usize, &'a [Sample], Option<i64>, Option<&'a Sample>);

/// The fragments to write for `tracks`: one, or three when the video
/// starts at a random-access point followed by leading pictures (presented
/// before it): the point with every other track, the leading pictures, the
/// rest of the video.
fn split_leading(tracks: &[ClipTrack]) -> Vec<Vec<Part<'_>>> {
    let whole = || -> Vec<Part<'_>> {
        tracks
            .iter()
            .enumerate()
            .map(|(i, t)| (i, &t.samples[..], t.next_dts, None))
            .collect()
    };
    let Some(v) = tracks
        .iter()
        .position(|t| t.config.kind == TrackKind::Video && !t.samples.is_empty())
    else {
        return vec![whole()];
    };
    let samples = &tracks[v].samples;
    let k = &samples[0];
    let leading = samples[1..].iter().take_while(|s| s.leads(k)).count();
    if !k.keyframe || leading == 0 {
        return vec![whole()];
    }
    let next = |at: usize| samples.get(at).map(|s| s.dts).or(tracks[v].next_dts);
    let mut head = whole();
    head[v] = (v, &samples[..1], next(1), None);
    vec![
        head,
        vec![(v, &samples[1..=leading], next(leading + 1), Some(k))],
        vec![(v, &samples[leading + 1..], tracks[v].next_dts, Some(k))],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Sample;
    use crate::hls::planner::{RecordingTime, RunningTime};
    use crate::mp4::CodecConfig;
    use bytes::Bytes;
    use std::sync::Arc;

    fn audio() -> Arc<CodecConfig> {
        Arc::new(crate::mp4::testing::aac())
    }

    fn cfg(reconnect: u64) -> RecorderConfig {
        RecorderConfig {
            playlist_length: 2,
            target_duration: 1,
            enable_pdt: true,
            reconnect_window: Duration::from_secs(reconnect),
            max_age: Duration::ZERO,
            max_bytes: 0,
        }
    }

    /// One second of AAC frames starting at `second`.
    fn second(config: &Arc<CodecConfig>, second: i64) -> ClipTrack {
        let frame = 1024 * 1_000_000_000 / 48_000;
        let start = second * 1_000_000_000;
        let samples: Vec<Sample> = (0..)
            .map(|i| start + i * frame)
            .take_while(|&t| t < start + 1_000_000_000)
            .map(|t| Sample {
                pts: t,
                dts: t,
                duration: frame as u64,
                keyframe: true,
                access: crate::core::nal::Access::Unknown,
                data: Bytes::from(vec![7u8; 200]),
            })
            .collect();
        ClipTrack {
            config: config.clone(),
            samples,
            next_dts: Some(start + 1_000_000_000),
        }
    }

    /// A fragment of `track` at recording time `at` (ns) ending at `end`.
    fn fragment(track: ClipTrack, at: i64, end: i64, pdt: Option<DateTime<Utc>>) -> Fragment {
        let start = track.samples.first().map_or(0, |s| s.dts);
        Fragment {
            tracks: vec![track],
            offset: start - at,
            delays: vec![0],
            pdt,
            start: RunningTime(start),
            end: RecordingTime(end),
        }
    }

    /// One-second segments of running time `seconds`, recorded from
    /// recording time `base` on.
    fn record(r: &mut Recorder, a: &Arc<CodecConfig>, seconds: std::ops::Range<i64>, base: i64) {
        for (k, s) in seconds.enumerate() {
            let at = base + k as i64 * 1_000_000_000;
            let f = fragment(second(a, s), at, at + 1_000_000_000, Some(Utc::now()));
            r.append(&f).unwrap();
            r.close_segment().unwrap();
        }
    }

    #[test]
    fn recovers_a_torn_segment_then_closes_or_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let a = audio();
        let init = fragmented::init_segment(&[&a], &[0], None).unwrap();
        let (mut r, report) = Recorder::start(dir.path(), "cam", cfg(0), Utc::now()).unwrap();
        assert!(!report.resumed);
        let id = report.media_id.clone();
        r.write_init(&init).unwrap();
        record(&mut r, &a, 0..3, 0);
        // A fourth segment is being written: two complete fragments and
        // a torn third when the process dies.
        for s in 3..5 {
            let f = fragment(
                second(&a, s),
                s * 1_000_000_000,
                (s + 1) * 1_000_000_000,
                None,
            );
            r.append(&f).unwrap();
        }
        let torn_path = r.session_dir().join("segment-00003.m4s");
        let complete = std::fs::metadata(&torn_path).unwrap().len();
        {
            let mut f = OpenOptions::new().append(true).open(&torn_path).unwrap();
            f.write_all(&[0, 0, 1, 0, b'm', b'o', b'o', b'f', 1, 2, 3])
                .unwrap();
        }
        drop(r);
        let live = m3u8_rs::parse_media_playlist_res(
            &std::fs::read(dir.path().join("cam").join(&id).join(LIVE)).unwrap(),
        )
        .unwrap();
        assert_eq!(live.segments.len(), 2, "sliding window");
        assert_eq!(live.media_sequence, 1);

        // Restart within the window: the session continues.
        let (mut r, report) = Recorder::start(dir.path(), "cam", cfg(60), Utc::now()).unwrap();
        assert!(report.resumed);
        assert_eq!(report.media_id, id);
        assert_eq!(report.truncated_bytes, 11);
        assert_eq!(std::fs::metadata(&torn_path).unwrap().len(), complete);
        assert_eq!(
            r.segments().len(),
            4,
            "the torn segment's complete fragments are kept"
        );
        assert_eq!(r.segments()[3].duration, 2_000_000_000);
        assert_eq!(r.end(), 5_000_000_000);
        r.write_init(&init).unwrap();
        record(&mut r, &a, 0..1, 5_000_000_000);
        r.finish_session(Utc::now()).unwrap();
        let replay = m3u8_rs::parse_media_playlist_res(
            &std::fs::read(r.session_dir().join(REPLAY)).unwrap(),
        )
        .unwrap();
        assert!(replay.end_list);
        assert_eq!(replay.segments.len(), 5);
        assert!(replay.segments[4].discontinuity);
        assert_eq!(replay.segments[4].map.as_ref().unwrap().uri, "init-1.mp4");
        let total: f32 = replay.segments.iter().map(|s| s.duration).sum();
        assert!((total - 6.0).abs() < 0.01, "{total}");

        // A later start outside the window: a new session; the old one is
        // listed as ended. The new one appears (directory, sessions.json)
        // only with its first durable fragment.
        let (mut r, report) = Recorder::start(dir.path(), "cam", cfg(0), Utc::now()).unwrap();
        assert!(!report.resumed);
        assert_ne!(report.media_id, id);
        let sessions = SessionsFile::load(&dir.path().join("cam"), "cam");
        assert_eq!(sessions.sessions.len(), 1);
        assert_eq!(sessions.get(&id).unwrap().state, State::Ended);
        assert_eq!(sessions.get(&id).unwrap().segments, 5);
        r.write_init(&init).unwrap();
        assert!(!r.session_dir().exists());
        let f = fragment(second(&a, 0), 0, 1_000_000_000, None);
        r.append(&f).unwrap();
        assert!(r.session_dir().join("init.mp4").exists());
        let sessions = SessionsFile::load(&dir.path().join("cam"), "cam");
        assert_eq!(sessions.sessions.len(), 2);
        assert_eq!(sessions.get(&report.media_id).unwrap().state, State::Live);
    }

    #[test]
    fn a_start_that_writes_nothing_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = audio();
        let init = fragmented::init_segment(&[&a], &[0], None).unwrap();
        let (mut r, report) = Recorder::start(dir.path(), "cam", cfg(0), Utc::now()).unwrap();
        r.write_init(&init).unwrap();
        r.finish_session(Utc::now()).unwrap();
        assert!(!dir.path().join("cam").join(&report.media_id).exists());
        let sessions = SessionsFile::load(&dir.path().join("cam"), "cam");
        assert!(sessions.sessions.is_empty(), "{:?}", sessions.sessions);
        // And the next start is not troubled by it.
        let (_r, report2) = Recorder::start(dir.path(), "cam", cfg(60), Utc::now()).unwrap();
        assert!(!report2.resumed);
        assert!(report2.closed.is_empty());
    }
}
