// SPDX-License-Identifier: MPL-2.0
//! Everything hlsclipsink keeps on disk for one stream: session directories,
//! init and media segments, playlists, sessions.json, recovery after a crash
//! and retention. Runs on the element's writer thread, never on a streaming
//! thread.
//!
//! A session has one rendition (the single layout: its own directory) or
//! several (a ladder, [`super::ladder`]): one directory each, written from
//! the same fragments and closed at the same boundaries, so that their
//! segments have the same sequence numbers, times and program date times.
//!
//! Durability: a fragment is appended and synced before the playlist names
//! its segment; playlists and sessions.json are replaced atomically. After a
//! crash at any point the replay playlist parses and names only complete
//! segments; on the next start the segment that was being written is checked
//! with the box scanner and its complete fragments are kept (in a ladder,
//! those that every rendition has).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::index::{FragmentInfo, LiveIndex, PartInfo, SegmentInfo, SessionIndex};
use super::ladder::{self, MASTER, Rendition, RenditionSpec};
use super::markers::{self, Added, Marker, MarkerBook};
use super::planner::Fragment;
use super::playlist::{self, Kind, Segment};
use super::sessions::{SessionRecord, SessionsFile, State, new_media_id};
use crate::core::atomic::{sync_dir, write_atomic, write_atomic_with};
use crate::core::{Sample, TrackKind};
use crate::mp4::fragmented::{self, FragTrack};
use crate::mp4::progressive::WriteError;
use crate::mp4::scan::scan_segment;
use crate::mp4::{ClipTrack, CodecConfig};

use super::playlist::{LIVE, REPLAY};

/// What the recorder is asked to keep.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub playlist_length: usize,
    /// Low-latency HLS parts (zero: none).
    pub part_duration: Duration,
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
    /// Torn bytes cut off segment files (and, in a ladder, fragments that
    /// not every rendition had).
    pub truncated_bytes: u64,
}

/// Why a marker was not added.
#[derive(Debug)]
pub enum MarkError {
    /// The request itself (a taken id, a full list).
    Refused(super::clip::ClipError),
    /// markers.json or a playlist could not be written.
    Io(io::Error),
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
    parts: Vec<PartInfo>,
}

/// One rendition on disk, as recovery finds it.
struct Found {
    name: String,
    segments: Vec<Segment>,
    removed_discontinuities: u64,
    trimmed: bool,
    init_count: u32,
    ended: bool,
    last_activity: SystemTime,
    truncated: u64,
    /// The complete fragments of the segment a crash left open (its last
    /// one, when it is not in the playlist): (end in bytes, end in
    /// recording time ns) of each.
    torn: Vec<(u64, u64)>,
}

impl Found {
    fn end(&self) -> u64 {
        self.segments.last().map_or(0, Segment::end)
    }
}

/// A session on disk, as recovery finds it: its renditions.
struct FoundSession {
    media_id: String,
    renditions: Vec<Found>,
}

impl FoundSession {
    fn ended(&self) -> bool {
        self.renditions.iter().all(|r| r.ended)
    }

    fn has_segments(&self) -> bool {
        self.renditions.iter().any(|r| !r.segments.is_empty())
    }

    fn last_activity(&self) -> SystemTime {
        self.renditions
            .iter()
            .map(|r| r.last_activity)
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.renditions.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        names
    }
}

/// One rendition being recorded: its directory, segments and playlists.
struct Media {
    spec: RenditionSpec,
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
    /// Whether its directory exists (with its first init segment).
    on_disk: bool,
    /// An init segment waiting for the directory to be made.
    pending_init: Option<(String, Vec<u8>)>,
    /// The tracks of its current init segment.
    configs: Vec<Arc<CodecConfig>>,
    /// Which entries of the planner's init (and fragments) are its tracks.
    entries: Vec<usize>,
    /// Its init segment is a recovered run's: the next run writes its own
    /// (with its own edit list) even for the same tracks.
    stale_init: bool,
    /// The replay playlist's text, kept between segments.
    replay: playlist::ReplayText,
}

pub struct Recorder {
    stream_dir: PathBuf,
    cfg: RecorderConfig,
    sessions: SessionsFile,
    media_id: String,
    dir: PathBuf,
    /// The renditions, the leading one (whose times are the session's)
    /// first.
    media: Vec<Media>,
    ended: bool,
    /// When the session started, for its sessions.json entry.
    started: DateTime<Utc>,
    /// Where clip requests see the session being recorded.
    live: Option<Arc<LiveIndex>>,
    /// The session's markers, and the copy the live index shares.
    book: MarkerBook,
    markers: Arc<Vec<Marker>>,
    /// The multivariant playlist last written (of this session): written
    /// again only when it changes.
    master: String,
}

/// Closed segments whose parts the live index keeps (for the low-latency
/// playlist's last few segments).
const PARTS_KEPT: usize = 8;

/// Closed segments whose fragment lists the live index keeps (clips near
/// the live edge need no scan); requests reaching further back scan the
/// segment's moofs, as for stored sessions, so that the index does not
/// grow by a fragment list per segment for as long as the session lasts.
const FRAGMENTS_KEPT: usize = 32;

fn segment_uri(sequence: u64) -> String {
    format!("segment-{sequence:05}.m4s")
}

fn io_err(e: WriteError) -> io::Error {
    match e {
        WriteError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl Media {
    fn new(spec: RenditionSpec, session_dir: &Path) -> Self {
        Media {
            dir: if spec.name.is_empty() {
                session_dir.to_path_buf()
            } else {
                session_dir.join(&spec.name)
            },
            spec,
            segments: Vec::new(),
            removed_discontinuities: 0,
            trimmed: false,
            next_sequence: 0,
            init_count: 0,
            map: None,
            pending_discontinuity: false,
            open: None,
            fragment_sequence: 0,
            on_disk: false,
            pending_init: None,
            configs: Vec::new(),
            entries: Vec::new(),
            stale_init: false,
            replay: playlist::ReplayText::default(),
        }
    }

    /// Takes over what recovery found of this rendition.
    fn adopt(&mut self, f: Found) {
        self.next_sequence = f.segments.last().map_or(0, |s| s.sequence + 1);
        self.map = f.segments.last().map(|s| s.map.clone());
        self.segments = f.segments;
        self.removed_discontinuities = f.removed_discontinuities;
        self.trimmed = f.trimmed;
        self.init_count = f.init_count;
        self.on_disk = true;
        self.stale_init = true;
        // For the multivariant playlist of a recovered ladder.
        self.configs = self
            .map
            .as_ref()
            .and_then(|m| std::fs::read(self.dir.join(m)).ok())
            .and_then(|init| crate::mp4::scan::read_moov(&init))
            .map(|moov| {
                moov.trak
                    .iter()
                    .filter_map(|t| CodecConfig::from_trak(t).ok().map(Arc::new))
                    .collect()
            })
            .unwrap_or_default();
    }

    fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Recording time (ns) of the end of what was written so far.
    fn end(&self) -> u64 {
        self.open
            .as_ref()
            .map(|o| o.end)
            .or_else(|| self.segments.last().map(Segment::end))
            .unwrap_or(0)
    }

    /// Makes the rendition's directory with its init segment, before its
    /// first fragment is written.
    fn materialize(&mut self) -> io::Result<()> {
        if self.on_disk {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir)?;
        sync_dir(&self.dir);
        if let Some(parent) = self.dir.parent() {
            sync_dir(parent);
        }
        if let Some((name, data)) = self.pending_init.take() {
            write_atomic(&self.dir.join(&name), &data, true)?;
        }
        self.on_disk = true;
        Ok(())
    }

    /// A new init segment of the planner's `configs` (planner tracks
    /// `tracks`): written when this rendition's tracks changed, else only
    /// the open segment ends (the planner starts a new one for all).
    fn init(
        &mut self,
        configs: &[Arc<CodecConfig>],
        delays: &[i64],
        tracks: &[usize],
    ) -> io::Result<()> {
        // The single layout records every track, including pads added
        // while running.
        let all = self.spec.name.is_empty();
        self.entries = tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| all || self.spec.tracks.contains(t))
            .map(|(i, _)| i)
            .collect();
        let mine: Vec<Arc<CodecConfig>> =
            self.entries.iter().map(|&i| configs[i].clone()).collect();
        let same = mine.len() == self.configs.len()
            && mine.iter().zip(&self.configs).all(|(a, b)| a.same_entry(b));
        if mine.is_empty() || (same && self.map.is_some() && !self.stale_init) {
            return self.close_file().map(|_| ());
        }
        self.stale_init = false;
        let refs: Vec<&CodecConfig> = mine.iter().map(|c| &**c).collect();
        let my_delays: Vec<i64> = self
            .entries
            .iter()
            .map(|&i| delays.get(i).copied().unwrap_or(0))
            .collect();
        let data = fragmented::init_segment(&refs, &my_delays, Some(Utc::now())).map_err(io_err)?;
        self.configs = mine;
        self.write_init(&data)
    }

    fn write_init(&mut self, data: &[u8]) -> io::Result<()> {
        if self.open.is_some() {
            self.close_file()?;
        }
        if !self.on_disk && self.pending_init.is_some() {
            // The first init was never used: this one replaces it.
            self.pending_init = Some(("init.mp4".into(), data.to_vec()));
            return Ok(());
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
        self.map = Some(name);
        Ok(())
    }

    /// Appends this rendition's tracks of `fragment` (at `start`, the
    /// session's end so far, when it opens a segment). Returns whether
    /// anything was written.
    fn append(&mut self, fragment: &Fragment, start: u64) -> io::Result<bool> {
        let Some(map) = self.map.clone() else {
            return Ok(false);
        };
        let tracks: Vec<&ClipTrack> = self
            .entries
            .iter()
            .filter_map(|&i| fragment.tracks.get(i))
            .collect();
        let delays: Vec<i64> = self
            .entries
            .iter()
            .map(|&i| fragment.delays.get(i).copied().unwrap_or(0))
            .collect();
        let (offset, pdt, end) = (fragment.offset, fragment.pdt, fragment.end);
        // An open random-access point's leading pictures refer to the GOP
        // before it: they get a fragment of their own, between one with the
        // random-access point (and the other tracks) and one with the rest
        // of the video, so that a clip manifest starting here can leave
        // them out by byte ranges (players then decode from the point
        // alone). The playlists see one contiguous fragment group.
        let mut frags = Vec::with_capacity(3);
        for part in split_leading(&tracks) {
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
            return Ok(false);
        }
        if self.open.is_none() {
            self.materialize()?;
            let sequence = self.next_sequence;
            let uri = segment_uri(sequence);
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(self.dir.join(&uri))?;
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
                parts: Vec::new(),
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
        let video = tracks
            .iter()
            .find(|t| t.config.kind == TrackKind::Video && !t.samples.is_empty());
        open.parts.push(PartInfo {
            offset: open.bytes,
            size,
            duration: open.end - fragment_start,
            independent: video.is_none_or(|v| v.samples[0].keyframe),
        });
        match open.fragments.last_mut().filter(|_| fragment.continues) {
            // A part of the fragment the last append started.
            Some(last) => {
                last.size += size;
                last.end = open.end;
            }
            None => {
                let lead = (frags.len() >= 2).then(|| {
                    let from = open.bytes + frags[0].size;
                    (from, from + frags[1].size)
                });
                open.fragments.push(FragmentInfo {
                    offset: open.bytes,
                    size,
                    start: fragment_start,
                    end: open.end,
                    lead,
                });
            }
        }
        open.bytes += size;
        Ok(true)
    }

    /// Ends the segment file being written; returns the segment, if it
    /// holds anything (playlists are the caller's).
    fn close_file(&mut self) -> io::Result<Option<Segment>> {
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
        // Every fragment was synced as it was appended (data and size): the
        // file holds nothing more to flush.
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
        Ok(Some(seg))
    }

    fn write_playlists(
        &mut self,
        cfg: &RecorderConfig,
        ended: bool,
        markers: &[Marker],
    ) -> io::Result<()> {
        let options = playlist::Options {
            target_duration: cfg.target_duration,
            removed_discontinuities: self.removed_discontinuities,
            complete: ended,
            trimmed: self.trimmed,
            pdt: cfg.enable_pdt,
        };
        let live = playlist::render(
            &self.segments,
            Kind::Live {
                window: cfg.playlist_length,
            },
            &options,
            markers,
        );
        // The live playlist is replaced atomically for readers but not
        // flushed to disk: it is written again whenever the session goes
        // on or is closed (recovery included), so a crash of the machine
        // loses nothing by it. The replay playlist is what recovery starts
        // from: flushed, and its directory after both renames (one
        // directory sync covers the two).
        write_atomic(&self.dir.join(LIVE), live.as_bytes(), false)?;
        // The kept lines go to the file without another copy.
        let replay = self.replay.update(&self.segments, &options, markers);
        write_atomic_with(&self.dir.join(REPLAY), true, |w| replay.write_to(w))
    }

    /// What the multivariant playlist says of it: codecs and picture from
    /// its init, bandwidth declared or measured over its segments.
    fn rendition(&self) -> Option<Rendition> {
        self.configs.first()?;
        let kind = if self.configs.iter().any(|c| c.kind == TrackKind::Video) {
            TrackKind::Video
        } else {
            TrackKind::Audio
        };
        let video = self.configs.iter().find(|c| c.kind == TrackKind::Video);
        let audio = self.configs.iter().find(|c| c.kind == TrackKind::Audio);
        let bits = |s: &Segment| s.bytes as f64 * 8e9 / s.duration.max(1) as f64;
        // The peak over whole segments (a short last one says little).
        let peak = self
            .segments
            .iter()
            .filter(|s| s.duration >= 500_000_000)
            .map(bits)
            .fold(0.0, f64::max)
            .max(self.segments.first().map_or(0.0, bits));
        let duration: u64 = self.segments.iter().map(|s| s.duration).sum();
        let average = (duration > 0).then(|| (self.bytes() as f64 * 8e9 / duration as f64) as u64);
        Some(Rendition {
            name: self.spec.name.clone(),
            kind,
            codecs: self
                .configs
                .iter()
                .map(|c| c.codec_string.clone())
                .collect::<Vec<_>>()
                .join(","),
            width: video.map_or(0, |v| v.width),
            height: video.map_or(0, |v| v.height),
            frame_rate: video
                .and_then(|v| v.framerate)
                .filter(|&(n, d)| n > 0 && d > 0)
                .map(|(n, d)| f64::from(n) / f64::from(d)),
            bandwidth: if self.spec.bandwidth > 0 {
                self.spec.bandwidth
            } else {
                peak as u64
            },
            average_bandwidth: average,
            language: self.spec.language.clone(),
            channels: audio.map(|a| a.channels).filter(|&c| c > 0),
        })
    }

    /// Its part of the live index.
    fn index(
        &self,
        media_id: &str,
        cfg: &RecorderConfig,
        live: bool,
        markers: &Arc<Vec<Marker>>,
    ) -> SessionIndex {
        SessionIndex {
            media_id: media_id.to_string(),
            dir: self.dir.clone(),
            segments: self
                .segments
                .iter()
                .map(|s| SegmentInfo {
                    segment: s.clone(),
                    fragments: None,
                    parts: Vec::new(),
                })
                .collect(),
            open: self.open_info(),
            live,
            target_duration: cfg.target_duration,
            removed_discontinuities: self.removed_discontinuities,
            trimmed: self.trimmed,
            rendition: (!self.spec.name.is_empty())
                .then(|| self.rendition())
                .flatten(),
            part_target: cfg.part_duration.as_nanos() as u64,
            live_window: cfg.playlist_length,
            markers: markers.clone(),
        }
    }

    /// Brings `idx`'s complete segments up to date: those retention
    /// deleted go, new ones come (the newest with the fragments the open
    /// segment had, so that clips at the live edge need no scan).
    fn publish_segments(&self, idx: &mut SessionIndex) {
        let first = self.segments.first().map_or(u64::MAX, |s| s.sequence);
        let keep_from = idx
            .segments
            .iter()
            .position(|s| s.segment.sequence >= first)
            .unwrap_or(idx.segments.len());
        idx.segments.drain(..keep_from);
        let last = idx.segments.last().map(|s| s.segment.sequence);
        let closed = idx.open.take();
        let newest = self.segments.last().map(|l| l.sequence);
        for s in &self.segments {
            if last.is_none_or(|l| s.sequence > l) {
                let of_newest = |o: &&SegmentInfo| {
                    Some(s.sequence) == newest && o.segment.sequence == s.sequence
                };
                let closed = closed.as_ref().filter(of_newest);
                idx.segments.push(SegmentInfo {
                    segment: s.clone(),
                    fragments: closed.and_then(|o| o.fragments.clone()),
                    parts: closed.map(|o| o.parts.clone()).unwrap_or_default(),
                });
            }
        }
        // Parts are listed for the newest segments only, fragments for a
        // few more.
        let keep = idx.segments.len().saturating_sub(PARTS_KEPT);
        for s in &mut idx.segments[..keep] {
            if !s.parts.is_empty() {
                s.parts = Vec::new();
            }
        }
        let keep = idx.segments.len().saturating_sub(FRAGMENTS_KEPT);
        for s in idx.segments[..keep].iter_mut().rev() {
            if s.fragments.take().is_none() {
                break;
            }
        }
    }

    fn open_info(&self) -> Option<SegmentInfo> {
        self.open.as_ref().map(|o| SegmentInfo {
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
            parts: o.parts.clone(),
        })
    }
}

impl Recorder {
    /// Opens `{location}/{stream_id}`: recovers what a crash left, closes or
    /// resumes the last session, and starts recording the renditions of
    /// `layout` (the leading one first; [`RenditionSpec::single`] for one).
    /// A session resumes only with the same renditions.
    pub fn start(
        location: &Path,
        stream_id: &str,
        cfg: RecorderConfig,
        layout: Vec<RenditionSpec>,
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
            if let Some(f) = recover_session(&dir, &id, &mut report.truncated_bytes)? {
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
            media: Vec::new(),
            ended: false,
            started: now,
            live: None,
            book: MarkerBook::default(),
            master: String::new(),
            markers: Arc::default(),
        };
        // Older sessions a crash left open are closed.
        for f in found {
            recorder.close_if_open(f, now, &mut report)?;
        }
        let mut names: Vec<&str> = layout.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        let resumable = |f: &FoundSession| {
            !recorder.cfg.reconnect_window.is_zero()
                && f.has_segments()
                && f.names() == names
                && now_sys
                    .duration_since(f.last_activity())
                    .unwrap_or_default()
                    <= recorder.cfg.reconnect_window
        };
        match newest {
            Some(f) if resumable(&f) => {
                report.resumed = true;
                recorder.adopt(f, &layout);
                for m in &mut recorder.media {
                    m.pending_discontinuity = true;
                }
                if let Some(r) = recorder.sessions.get_mut(&recorder.media_id) {
                    r.state = State::Live;
                    r.end_utc = None;
                }
            }
            Some(f) => {
                recorder.close_if_open(f, now, &mut report)?;
                recorder.new_session(now, layout);
            }
            None => recorder.new_session(now, layout),
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
        f: FoundSession,
        now: DateTime<Utc>,
        report: &mut StartReport,
    ) -> io::Result<()> {
        let live = self
            .sessions
            .get(&f.media_id)
            .is_none_or(|r| r.state == State::Live);
        if f.ended() && !live {
            return Ok(());
        }
        report.closed.push(f.media_id.clone());
        let layout: Vec<RenditionSpec> = f
            .renditions
            .iter()
            .map(|r| RenditionSpec {
                name: r.name.clone(),
                ..Default::default()
            })
            .collect();
        self.adopt(f, &layout);
        self.finish_session(now)
    }

    /// Takes over a recovered session, with the renditions of `layout`
    /// (those it found keep their segments).
    fn adopt(&mut self, f: FoundSession, layout: &[RenditionSpec]) {
        self.media_id = f.media_id;
        self.dir = self.stream_dir.join(&self.media_id);
        self.master.clear();
        self.ended = false;
        // A marker list a crash could not have torn (it is replaced
        // atomically); one damaged otherwise is set aside, not lost.
        self.book = MarkerBook::load(&self.dir).unwrap_or_else(|_| {
            let _ = std::fs::rename(
                self.dir.join(markers::FILE),
                self.dir.join(format!("{}.damaged", markers::FILE)),
            );
            MarkerBook::default()
        });
        self.markers = Arc::new(self.book.markers.clone());
        let mut found = f.renditions;
        self.media = layout
            .iter()
            .map(|spec| {
                let mut m = Media::new(spec.clone(), &self.dir);
                if let Some(i) = found.iter().position(|r| r.name == spec.name) {
                    m.adopt(found.swap_remove(i));
                }
                m
            })
            .collect();
        let (bytes, duration, segments, start_utc) = self.totals();
        let renditions = self.rendition_names();
        match self.sessions.get_mut(&self.media_id) {
            Some(r) => {
                r.bytes = bytes;
                r.duration = duration;
                r.segments = segments;
                r.renditions = renditions;
            }
            None => self.sessions.sessions.push(SessionRecord {
                media_id: self.media_id.clone(),
                start_utc,
                end_utc: None,
                duration,
                state: State::Live,
                segments,
                bytes,
                renditions,
            }),
        }
    }

    fn new_session(&mut self, now: DateTime<Utc>, layout: Vec<RenditionSpec>) {
        self.book = MarkerBook::default();
        self.markers = Arc::default();
        let media_id = new_media_id(now);
        self.dir = self.stream_dir.join(&media_id);
        self.master.clear();
        self.media_id = media_id;
        self.media = layout
            .into_iter()
            .map(|spec| Media::new(spec, &self.dir))
            .collect();
        self.ended = false;
        self.started = now;
    }

    fn rendition_names(&self) -> Vec<String> {
        self.media
            .iter()
            .map(|m| m.spec.name.clone())
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// Bytes of every rendition, and the leading one's duration (s),
    /// segment count and first program date time.
    fn totals(&self) -> (u64, f64, u64, Option<DateTime<Utc>>) {
        let bytes = self.media.iter().map(Media::bytes).sum();
        let lead = self.media.first();
        let segments = lead.map_or(&[][..], |m| &m.segments[..]);
        (
            bytes,
            segments.last().map_or(0, Segment::end) as f64 / 1e9,
            segments.len() as u64,
            segments.first().and_then(|s| s.pdt),
        )
    }

    fn is_ladder(&self) -> bool {
        self.media.iter().any(|m| !m.spec.name.is_empty())
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
            renditions: self.rendition_names(),
        });
        self.sessions.save(&self.stream_dir)
    }

    /// Publishes the session into `live` from now on (clip requests read
    /// it there, including the fragments of the segment being written).
    pub fn publish_to(&mut self, live: Arc<LiveIndex>) {
        self.live = Some(live);
        self.publish(true);
    }

    /// Brings the live index up to date: the open segments always, the
    /// lists of complete segments when `segments` (after a close or
    /// retention).
    fn publish(&mut self, segments: bool) {
        let Some(live) = &self.live else { return };
        let is_live = !self.ended;
        live.update(|slot| {
            let stale = slot.len() != self.media.len()
                || slot.first().is_some_and(|s| s.media_id != self.media_id);
            if stale {
                *slot = self
                    .media
                    .iter()
                    .map(|m| m.index(&self.media_id, &self.cfg, is_live, &self.markers))
                    .collect();
            }
            for (idx, m) in slot.iter_mut().zip(&self.media) {
                idx.markers = self.markers.clone();
                if segments {
                    m.publish_segments(idx);
                    idx.rendition = (!m.spec.name.is_empty()).then(|| m.rendition()).flatten();
                }
                idx.open = m.open_info();
                idx.live = is_live;
                idx.removed_discontinuities = m.removed_discontinuities;
                idx.trimmed = m.trimmed;
            }
        });
    }

    pub fn media_id(&self) -> &str {
        &self.media_id
    }

    /// Adds a marker to the session (a SCTE-35 one with `splice`: `Some`
    /// of whether it is an out), keeps the list in markers.json and
    /// rewrites the playlists so that their EXT-X-DATERANGE tags show it.
    /// The start is completed with its wall clock. Nothing changes on
    /// error (a taken id, a full list, a write error).
    pub fn mark(
        &mut self,
        mut m: Marker,
        splice: Option<Option<bool>>,
    ) -> Result<Added, MarkError> {
        if m.start_utc.is_none() {
            m.start_utc = playlist::utc_at(self.segments(), m.start);
        }
        let before = self.book.clone();
        let added = match splice {
            Some(out) => self.book.add_splice(m, out),
            None => self.book.add(m),
        }
        .map_err(MarkError::Refused)?;
        if added == Added::Repeat {
            return Ok(added);
        }
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| self.book.save(&self.dir))
            .and_then(|()| self.write_playlists());
        if let Err(e) = written {
            self.book = before;
            return Err(MarkError::Io(e));
        }
        self.markers = Arc::new(self.book.markers.clone());
        self.publish(false);
        Ok(added)
    }

    pub fn session_dir(&self) -> &Path {
        &self.dir
    }

    pub fn stream_dir(&self) -> &Path {
        &self.stream_dir
    }

    /// Recording time (ns) of the end of what was written so far (of the
    /// leading rendition).
    pub fn end(&self) -> u64 {
        self.media.first().map_or(0, Media::end)
    }

    /// The leading rendition's complete segments.
    pub fn segments(&self) -> &[Segment] {
        self.media.first().map_or(&[], |m| &m.segments)
    }

    /// The renditions' names, leading first (one empty name for the
    /// single layout).
    pub fn renditions(&self) -> Vec<&str> {
        self.media.iter().map(|m| m.spec.name.as_str()).collect()
    }

    /// A new init segment: the planner's `configs` (its tracks `tracks`,
    /// initial composition delays `delays`). Each rendition whose tracks
    /// changed gets its own, and its next segment starts with EXT-X-MAP (and
    /// a discontinuity, unless it is its first); every rendition's open
    /// segment ends.
    pub fn write_init(
        &mut self,
        configs: &[Arc<CodecConfig>],
        delays: &[i64],
        tracks: &[usize],
    ) -> io::Result<()> {
        let closing = self.media.iter().any(|m| m.open.is_some());
        for m in &mut self.media {
            m.init(configs, delays, tracks)?;
        }
        if closing {
            self.segments_closed()?;
        }
        Ok(())
    }

    /// The next segment starts after an EXT-X-DISCONTINUITY.
    pub fn discontinuity(&mut self) -> io::Result<()> {
        self.close_segment()?;
        for m in &mut self.media {
            m.pending_discontinuity = true;
        }
        Ok(())
    }

    /// Appends a fragment to every rendition (its times are the planner's:
    /// recording time is the session's).
    pub fn append(&mut self, fragment: &Fragment) -> io::Result<()> {
        if self.media.iter().all(|m| m.map.is_none()) {
            return Err(io::Error::other("no init segment written before media"));
        }
        let start = self.end();
        let mut wrote = false;
        for m in &mut self.media {
            let first = !m.on_disk;
            if first && !self.dir.exists() {
                std::fs::create_dir_all(&self.dir)?;
                sync_dir(&self.stream_dir);
            }
            wrote |= m.append(fragment, m.open.as_ref().map_or(start, |o| o.start))?;
        }
        if wrote {
            self.announce()?;
            self.publish(false);
        }
        Ok(())
    }

    /// Duration (ns) of the segment being written, 0 if none.
    pub fn open_duration(&self) -> u64 {
        self.media
            .first()
            .and_then(|m| m.open.as_ref())
            .map_or(0, |o| o.end - o.start)
    }

    /// Ends the segments being written: they enter the playlists. Returns
    /// each rendition's new segment (name, segment).
    pub fn close_segment(&mut self) -> io::Result<Vec<(String, Segment)>> {
        let mut closed = Vec::new();
        for m in &mut self.media {
            if let Some(seg) = m.close_file()? {
                closed.push((m.spec.name.clone(), seg));
            }
        }
        if !closed.is_empty() {
            self.segments_closed()?;
        }
        Ok(closed)
    }

    /// After segments closed: playlists, the live index, sessions.json,
    /// retention.
    fn segments_closed(&mut self) -> io::Result<()> {
        self.write_playlists()?;
        self.publish(true);
        self.update_record(None);
        // Only the session's running totals changed, which recovery
        // computes again from the segments: replaced, not flushed.
        self.sessions.save_with(&self.stream_dir, false)?;
        self.apply_retention()
    }

    fn update_record(&mut self, ended: Option<DateTime<Utc>>) {
        let (bytes, duration, segments, start_utc) = self.totals();
        let end_utc = self.segments().last().and_then(|s| {
            s.pdt
                .map(|p| p + chrono::Duration::nanoseconds(s.duration as i64))
        });
        if let Some(r) = self.sessions.get_mut(&self.media_id) {
            r.bytes = bytes;
            r.duration = duration;
            r.segments = segments;
            if r.start_utc.is_none() {
                r.start_utc = start_utc;
            }
            if let Some(now) = ended {
                r.state = State::Ended;
                r.end_utc = end_utc.or(Some(now));
            }
        }
    }

    /// Every rendition's playlists, and a ladder's multivariant playlist.
    fn write_playlists(&mut self) -> io::Result<()> {
        for m in &mut self.media {
            if m.on_disk {
                m.write_playlists(&self.cfg, self.ended, &self.book.markers)?;
            }
        }
        if self.is_ladder() {
            let renditions: Vec<Rendition> = self
                .media
                .iter()
                .filter(|m| m.on_disk && !m.segments.is_empty())
                .filter_map(Media::rendition)
                .collect();
            if !renditions.is_empty() {
                let text = ladder::render_master(&renditions, |n| format!("{n}/{REPLAY}"));
                if text != self.master {
                    write_atomic(&self.dir.join(MASTER), text.as_bytes(), true)?;
                    self.master = text;
                }
            }
        }
        Ok(())
    }

    /// Ends the session: the open segments are closed, the playlists get
    /// EXT-X-ENDLIST, sessions.json says "ended".
    pub fn finish_session(&mut self, now: DateTime<Utc>) -> io::Result<()> {
        if self.ended {
            return Ok(());
        }
        self.close_segment()?;
        self.ended = true;
        if !self.media.iter().any(|m| m.on_disk) {
            // Nothing was ever written: the session never appeared.
            self.publish(true);
            return Ok(());
        }
        self.write_playlists()?;
        self.publish(true);
        self.update_record(Some(now));
        self.sessions.save(&self.stream_dir)
    }

    /// Deletes what `max-age` and `max-bytes` no longer allow: whole ended
    /// sessions first, then the oldest segments of the current one (never
    /// the newest; the same segments of every rendition). Playlists are
    /// rewritten before files are deleted, so no playlist ever names a
    /// deleted segment.
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
        // Then the current session's oldest segments, in every rendition.
        let others: u64 = self
            .sessions
            .sessions
            .iter()
            .filter(|r| r.media_id != self.media_id)
            .map(|r| r.bytes)
            .sum();
        let mut deleted: Vec<Vec<Segment>> = vec![Vec::new(); self.media.len()];
        while let Some(lead) = self.media.first() {
            if lead.segments.len() <= 1 {
                break;
            }
            let total = others + self.media.iter().map(Media::bytes).sum::<u64>();
            let newest_end = lead.segments.last().map_or(0, Segment::end);
            let first = &lead.segments[0];
            let old = !max_age.is_zero()
                && Duration::from_nanos(newest_end.saturating_sub(first.end())) > max_age;
            if !(old || (max_bytes > 0 && total > max_bytes)) {
                break;
            }
            let sequence = first.sequence;
            for (m, gone) in self.media.iter_mut().zip(&mut deleted) {
                while m.segments.len() > 1 && m.segments[0].sequence <= sequence {
                    let seg = m.segments.remove(0);
                    if seg.discontinuity {
                        m.removed_discontinuities += 1;
                    }
                    gone.push(seg);
                }
            }
        }
        if deleted.iter().any(|d| !d.is_empty()) {
            for (m, gone) in self.media.iter_mut().zip(&deleted) {
                m.trimmed |= !gone.is_empty();
            }
            self.write_playlists()?;
            self.publish(true);
            for (m, gone) in self.media.iter().zip(&deleted) {
                for seg in gone {
                    let _ = std::fs::remove_file(m.dir.join(&seg.uri));
                }
                // Init segments no remaining segment needs.
                let maps: Vec<&str> = m.segments.iter().map(|s| s.map.as_str()).collect();
                for seg in gone {
                    if !maps.contains(&seg.map.as_str()) && Some(&seg.map) != m.map.as_ref() {
                        let _ = std::fs::remove_file(m.dir.join(&seg.map));
                    }
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

/// Reads a session directory back: one rendition (the directory itself),
/// or a ladder's (its subdirectories). In a ladder, the segment a crash
/// left open keeps only the fragments every rendition has, so that the
/// renditions end together.
fn recover_session(
    dir: &Path,
    media_id: &str,
    truncated: &mut u64,
) -> io::Result<Option<FoundSession>> {
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    let mut renditions = Vec::new();
    if subdirs.is_empty() && !dir.join(MASTER).exists() {
        if let Some(f) = recover(dir, String::new())? {
            renditions.push(f);
        }
    } else {
        for sub in subdirs {
            let name = sub
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if let Some(f) = recover(&sub, name)? {
                renditions.push(f);
            }
        }
        // The leading rendition first, as the multivariant playlist lists
        // them (video first).
        if let Some(order) = std::fs::read(dir.join(MASTER))
            .ok()
            .and_then(|t| ladder::parse_master(&t))
        {
            renditions.sort_by_key(|r| {
                order
                    .iter()
                    .position(|o| o.name == r.name)
                    .unwrap_or(usize::MAX)
            });
        }
        align_torn(dir, &mut renditions, truncated)?;
    }
    *truncated += renditions.iter().map(|r| r.truncated).sum::<u64>();
    if renditions.is_empty() {
        return Ok(None);
    }
    Ok(Some(FoundSession {
        media_id: media_id.to_string(),
        renditions,
    }))
}

/// Cuts a ladder's recovered open segments back to the fragments every
/// rendition has.
fn align_torn(dir: &Path, renditions: &mut [Found], truncated: &mut u64) -> io::Result<()> {
    let Some(common) = renditions.iter().map(Found::end).min() else {
        return Ok(());
    };
    // Audio fragments end within a frame of the video's cut: the same end
    // within half the shortest fragment (at most 50 ms).
    let shortest = renditions
        .iter()
        .flat_map(|r| {
            let start = r.segments.last().map_or(0, |s| s.start);
            std::iter::once(start)
                .chain(r.torn.iter().map(|&(_, end)| end))
                .collect::<Vec<_>>()
                .windows(2)
                .map(|w| w[1].saturating_sub(w[0]))
                .collect::<Vec<_>>()
        })
        .min()
        .unwrap_or(u64::MAX);
    let tolerance = (shortest / 2).min(50_000_000);
    for r in renditions.iter_mut() {
        if r.torn.is_empty() || r.end() <= common + tolerance {
            continue;
        }
        let Some(last) = r.segments.pop() else {
            continue;
        };
        let path = dir.join(&r.name).join(&last.uri);
        let keep = r
            .torn
            .iter()
            .rev()
            .find(|&&(_, end)| end <= common + tolerance)
            .copied();
        let f = OpenOptions::new().write(true).open(&path)?;
        match keep {
            Some((bytes, end)) => {
                *truncated += last.bytes - bytes;
                f.set_len(bytes)?;
                f.sync_all()?;
                r.segments.push(Segment {
                    duration: end - last.start,
                    bytes,
                    ..last
                });
            }
            None => {
                *truncated += last.bytes;
                drop(f);
                std::fs::remove_file(&path)?;
            }
        }
    }
    // What is left ends where the leading rendition's does (an audio
    // rendition's own samples end within a frame of it).
    let Some(lead) = renditions.first().map(Found::end) else {
        return Ok(());
    };
    for r in renditions.iter_mut().skip(1) {
        let end = r.end();
        if let Some(last) = r.segments.last_mut().filter(|_| !r.torn.is_empty())
            && end.abs_diff(lead) <= tolerance
            && lead > last.start
        {
            last.duration = lead - last.start;
        }
    }
    Ok(())
}

/// Reads a rendition's directory back: the replay playlist's segments,
/// plus the complete fragments of the segment that was being written.
fn recover(dir: &Path, name: String) -> io::Result<Option<Found>> {
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
    let mut torn = Vec::new();
    let next = segments.last().map_or(0, |s| s.sequence + 1);
    let next_path = dir.join(segment_uri(next));
    if !ended && next_path.exists() {
        let scan = scan_segment(&next_path)?;
        let map = segments
            .last()
            .map_or_else(|| "init.mp4".to_string(), |s| s.map.clone());
        let timescale = init_timescale(&dir.join(&map));
        truncated = scan.file_len - scan.valid_len;
        let run = |f: &crate::mp4::scan::ScannedFragment| {
            f.runs.iter().find(|r| r.track_id == 1).cloned()
        };
        match (scan.fragments.first().and_then(run), timescale) {
            (Some(r0), Some(ts)) if scan.valid_len > 0 => {
                let f = OpenOptions::new().write(true).open(&next_path)?;
                f.set_len(scan.valid_len)?;
                f.sync_all()?;
                let prev = segments.last();
                let start = prev.map_or(0, Segment::end);
                let ns = |ticks: u64| (u128::from(ticks) * 1_000_000_000 / u128::from(ts)) as u64;
                for frag in &scan.fragments {
                    if let Some(r) = run(frag) {
                        let ticks =
                            (r.base_decode_time + r.duration).saturating_sub(r0.base_decode_time);
                        torn.push((frag.offset + frag.size, start + ns(ticks)));
                    }
                }
                let duration = torn.last().map_or(0, |&(_, end)| end - start);
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
        name,
        segments,
        removed_discontinuities,
        trimmed,
        init_count: init_count.max(1),
        ended,
        last_activity,
        truncated,
        torn,
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
fn split_leading<'a>(tracks: &[&'a ClipTrack]) -> Vec<Vec<Part<'a>>> {
    let whole = || -> Vec<Part<'a>> {
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
            part_duration: Duration::ZERO,
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
            continues: false,
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

    /// A recorder of one rendition with `tracks` tracks for stream `cam`
    /// under `dir`, with `cfg(reconnect)`.
    fn start_single(dir: &Path, reconnect: u64, tracks: usize) -> (Recorder, StartReport) {
        Recorder::start(
            dir,
            "cam",
            cfg(reconnect),
            RenditionSpec::single(tracks),
            Utc::now(),
        )
        .unwrap()
    }

    #[test]
    fn recovers_a_torn_segment_then_closes_or_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let a = audio();
        let (mut r, report) = start_single(dir.path(), 0, 1);
        assert!(!report.resumed);
        let id = report.media_id.clone();
        r.write_init(std::slice::from_ref(&a), &[0], &[0]).unwrap();
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
        let (mut r, report) = start_single(dir.path(), 60, 1);
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
        r.write_init(std::slice::from_ref(&a), &[0], &[0]).unwrap();
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
        let (mut r, report) = start_single(dir.path(), 0, 1);
        assert!(!report.resumed);
        assert_ne!(report.media_id, id);
        let sessions = SessionsFile::load(&dir.path().join("cam"), "cam");
        assert_eq!(sessions.sessions.len(), 1);
        assert_eq!(sessions.get(&id).unwrap().state, State::Ended);
        assert_eq!(sessions.get(&id).unwrap().segments, 5);
        r.write_init(std::slice::from_ref(&a), &[0], &[0]).unwrap();
        assert!(!r.session_dir().exists());
        let f = fragment(second(&a, 0), 0, 1_000_000_000, None);
        r.append(&f).unwrap();
        assert!(r.session_dir().join("init.mp4").exists());
        let sessions = SessionsFile::load(&dir.path().join("cam"), "cam");
        assert_eq!(sessions.sessions.len(), 2);
        assert_eq!(sessions.get(&report.media_id).unwrap().state, State::Live);
    }

    /// A ladder of two (audio) renditions.
    fn pair() -> Vec<RenditionSpec> {
        ["a", "b"]
            .iter()
            .enumerate()
            .map(|(i, name)| RenditionSpec {
                name: name.to_string(),
                tracks: vec![i],
                ..Default::default()
            })
            .collect()
    }

    /// One second of both renditions at `second` (recording time `at`).
    fn both(a: &Arc<CodecConfig>, second_of: i64, at: i64) -> Fragment {
        let mut f = fragment(
            second(a, second_of),
            at,
            at + 1_000_000_000,
            Some(Utc::now()),
        );
        f.tracks.push(second(a, second_of));
        f.delays.push(0);
        f
    }

    #[test]
    fn an_unchanged_multivariant_playlist_is_not_written_again() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let a = audio();
        let (mut r, _) = Recorder::start(dir.path(), "cam", cfg(60), pair(), Utc::now()).unwrap();
        r.write_init(&[a.clone(), a.clone()], &[0, 0], &[0, 1])
            .unwrap();
        let session = r.session_dir().to_path_buf();
        let mut seen = Vec::new();
        for s in 0..4 {
            r.append(&both(&a, s, s * 1_000_000_000)).unwrap();
            r.close_segment().unwrap();
            let path = session.join(MASTER);
            seen.push((
                std::fs::read_to_string(&path).unwrap(),
                std::fs::metadata(&path).unwrap().ino(),
            ));
        }
        // The same renditions and rates: one file, never replaced.
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
        // The live playlist is still replaced at every segment.
        let live = std::fs::read_to_string(session.join("a").join(LIVE)).unwrap();
        assert!(live.contains("segment-00003.m4s"), "{live}");
    }

    #[test]
    fn a_ladder_crash_keeps_what_every_rendition_has() {
        let dir = tempfile::tempdir().unwrap();
        let a = audio();
        let (mut r, report) =
            Recorder::start(dir.path(), "cam", cfg(60), pair(), Utc::now()).unwrap();
        r.write_init(&[a.clone(), a.clone()], &[0, 0], &[0, 1])
            .unwrap();
        for s in 0..2 {
            r.append(&both(&a, s, s * 1_000_000_000)).unwrap();
            r.close_segment().unwrap();
        }
        // The third segment is being written: rendition a got three
        // fragments, b two, when the process dies.
        for s in 2..5 {
            r.append(&both(&a, s, s * 1_000_000_000)).unwrap();
        }
        let session = r.session_dir().to_path_buf();
        let master = ladder::parse_master(&std::fs::read(session.join(MASTER)).unwrap()).unwrap();
        assert_eq!(master.len(), 2);
        drop(r);
        let b = session.join("b/segment-00002.m4s");
        let scan = scan_segment(&b).unwrap();
        let f = OpenOptions::new().write(true).open(&b).unwrap();
        f.set_len(scan.fragments[2].offset).unwrap();
        drop(f);

        let (r, again) = Recorder::start(dir.path(), "cam", cfg(60), pair(), Utc::now()).unwrap();
        assert!(again.resumed);
        assert_eq!(again.media_id, report.media_id);
        assert!(again.truncated_bytes > 0);
        assert_eq!(r.end(), 4_000_000_000, "where both end");
        let a_len = std::fs::metadata(session.join("a/segment-00002.m4s"))
            .unwrap()
            .len();
        assert_eq!(a_len, scan.fragments[2].offset, "a lost its extra fragment");
        for name in ["a", "b"] {
            let p = m3u8_rs::parse_media_playlist_res(
                &std::fs::read(session.join(name).join(REPLAY)).unwrap(),
            )
            .unwrap();
            let durations: Vec<f32> = p.segments.iter().map(|s| s.duration).collect();
            assert_eq!(durations, [1.0, 1.0, 2.0], "{name}");
        }

        // A different set of renditions starts a new session instead.
        drop(r);
        let (_r, other) = start_single(dir.path(), 60, 2);
        assert!(!other.resumed);
        assert_eq!(other.closed, std::slice::from_ref(&report.media_id));
        let sessions = SessionsFile::load(&dir.path().join("cam"), "cam");
        let old = sessions.get(&report.media_id).unwrap();
        assert_eq!(old.state, State::Ended);
        assert_eq!(old.renditions, ["a", "b"]);
    }

    #[test]
    fn ladder_retention_deletes_the_same_segments_of_every_rendition() {
        let dir = tempfile::tempdir().unwrap();
        let a = audio();
        // One second of one rendition is 47 frames of 200 bytes plus boxes:
        // about 10 kB; keep about four seconds of both.
        let cfg = RecorderConfig {
            max_bytes: 85_000,
            ..cfg(0)
        };
        let (mut r, _) = Recorder::start(dir.path(), "cam", cfg, pair(), Utc::now()).unwrap();
        r.write_init(&[a.clone(), a.clone()], &[0, 0], &[0, 1])
            .unwrap();
        for s in 0..10 {
            r.append(&both(&a, s, s * 1_000_000_000)).unwrap();
            r.close_segment().unwrap();
        }
        let session = r.session_dir().to_path_buf();
        let replay = |name: &str| {
            m3u8_rs::parse_media_playlist_res(
                &std::fs::read(session.join(name).join(REPLAY)).unwrap(),
            )
            .unwrap()
        };
        let (pa, pb) = (replay("a"), replay("b"));
        assert!(pa.media_sequence > 0, "something was deleted");
        assert!(pa.segments.len() >= 3, "{}", pa.segments.len());
        assert_eq!(pa.media_sequence, pb.media_sequence);
        assert_eq!(pa.segments.len(), pb.segments.len());
        for name in ["a", "b"] {
            let files: Vec<String> = std::fs::read_dir(session.join(name))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("segment-"))
                .collect();
            assert_eq!(files.len(), pa.segments.len(), "{name}: {files:?}");
        }
        let sessions = SessionsFile::load(&dir.path().join("cam"), "cam");
        let record = sessions.get(r.media_id()).unwrap();
        assert!(record.bytes <= 85_000, "{}", record.bytes);
        assert_eq!(record.segments, pa.segments.len() as u64);
    }

    #[test]
    fn the_live_index_keeps_fragment_lists_of_the_newest_segments_only() {
        let dir = tempfile::tempdir().unwrap();
        let a = audio();
        let (mut r, _) = start_single(dir.path(), 0, 1);
        let live = Arc::new(LiveIndex::default());
        r.publish_to(live.clone());
        r.write_init(std::slice::from_ref(&a), &[0], &[0]).unwrap();
        // Segments of two one-second fragments.
        let mut at = 0;
        let mut segment = |r: &mut Recorder| {
            for _ in 0..2 {
                let f = fragment(
                    second(&a, at / 1_000_000_000),
                    at,
                    at + 1_000_000_000,
                    Some(Utc::now()),
                );
                r.append(&f).unwrap();
                at += 1_000_000_000;
            }
            r.close_segment().unwrap();
        };
        for _ in 0..3 {
            segment(&mut r);
        }
        let early = live
            .with(|idx| idx.segments[1].fragments.clone())
            .flatten()
            .expect("the fragments of a new segment are known");
        assert_eq!(early.len(), 2);
        for _ in 0..FRAGMENTS_KEPT + 5 {
            segment(&mut r);
        }
        let idx = live.with(|idx| idx.clone()).unwrap();
        let n = idx.segments.len();
        assert_eq!(n, FRAGMENTS_KEPT + 8);
        assert!(
            idx.segments[..n - FRAGMENTS_KEPT]
                .iter()
                .all(|s| s.fragments.is_none())
        );
        assert!(
            idx.segments[n - FRAGMENTS_KEPT..]
                .iter()
                .all(|s| s.fragments.is_some())
        );
        // A clip of an early range finds the same fragments by scanning.
        let start = idx.segments[1].segment.start;
        let found: Vec<FragmentInfo> = idx
            .fragments_for(start, start + 2_000_000_000)
            .unwrap()
            .into_iter()
            .map(|(_, f)| f)
            .collect();
        assert_eq!(found, early);
    }

    #[test]
    fn a_start_that_writes_nothing_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = audio();
        let (mut r, report) = start_single(dir.path(), 0, 1);
        r.write_init(std::slice::from_ref(&a), &[0], &[0]).unwrap();
        r.finish_session(Utc::now()).unwrap();
        assert!(!dir.path().join("cam").join(&report.media_id).exists());
        let sessions = SessionsFile::load(&dir.path().join("cam"), "cam");
        assert!(sessions.sessions.is_empty(), "{:?}", sessions.sessions);
        // And the next start is not troubled by it.
        let (_r, report2) = start_single(dir.path(), 60, 1);
        assert!(!report2.resumed);
        assert!(report2.closed.is_empty());
    }
}
