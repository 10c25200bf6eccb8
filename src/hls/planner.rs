// SPDX-License-Identifier: MPL-2.0
//! The recording planner: samples in, [`Recorder`](super::recorder::Recorder)
//! commands out, with no I/O and no GStreamer.
//!
//! It owns everything hlsclipsink decides between a sample's arrival and
//! the disk:
//! - the cut into fragments ([`Cutter`]: one per GOP of the leading track,
//!   every second for audio alone);
//! - timestamp gaps and jumps backwards, closed per track: later samples are
//!   shifted so that recording time continues (every frame stays
//!   decodable), and a gap on the leading track puts an
//!   EXT-X-DISCONTINUITY before the next segment;
//! - recording time: a session's timeline, from 0 at its first keyframe (or
//!   from where a resumed session ended), without holes;
//! - codec configuration changes, which take effect at the first keyframe
//!   coded with them and start a new init segment;
//! - segment ends (at the first fragment end past the target duration),
//!   program date times and the keyframe requests that end segments on
//!   time.
//!
//! Times are typed: [`RunningTime`] is the pipeline's (after the gaps were
//! closed, unless said otherwise), [`RecordingTime`] the session's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::core::nal::{self, Access};
use crate::core::periodic::{Cutter, Notice, Selection, TrackSelection, Trigger};
use crate::core::{NS, Sample, TrackKind};
use crate::mp4::{ClipTrack, CodecConfig};

/// A jump in decode time larger than this (or backwards) is a gap.
const GAP: i64 = 1_000_000_000;
/// Audio-only streams are fragmented every this many ns.
const AUDIO_FRAGMENT: u64 = 1_000_000_000;
/// The cutter holds at most this much media without a keyframe.
const MAX_PENDING: u64 = 30 * NS;
/// A segment closes at the first fragment end past the target duration
/// less this (keyframes a frame early still end it).
const CLOSE_SLACK: i64 = NS as i64 / 10;
/// A part ends at the first sample end past its duration less this.
const PART_SLACK: i64 = 1_000_000;

/// A pipeline running time (ns; may be negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RunningTime(pub i64);

/// A time on a session's recording timeline (ns from its start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RecordingTime(pub i64);

impl RecordingTime {
    pub fn ns(self) -> u64 {
        self.0.max(0) as u64
    }
}

/// Where program date times come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PdtClock {
    /// The wall clock when the first sample arrived (corrected by the
    /// pipeline clock), advancing with running time.
    #[default]
    Pipeline,
    /// The wall clock when each fragment is planned, less what the newest
    /// sample is ahead of it.
    System,
    /// The UTC of reference timestamps on keyframes (else as `Pipeline`).
    Reference,
}

#[derive(Debug, Clone, Copy)]
pub struct PlannerConfig {
    pub target_duration: Duration,
    pub pdt_clock: PdtClock,
    /// Recording time where this run starts (the end of a resumed session).
    pub base: RecordingTime,
    /// Fragments are also written in parts of this length (low-latency
    /// HLS; zero: whole fragments only).
    pub part_duration: Duration,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            target_duration: Duration::from_secs(6),
            pdt_clock: PdtClock::Pipeline,
            base: RecordingTime(0),
            part_duration: Duration::ZERO,
        }
    }
}

/// The clocks when something arrives.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// For stall detection.
    pub instant: Instant,
    pub utc: DateTime<Utc>,
    /// The pipeline's running time by its clock, if it has one.
    pub running_time: Option<RunningTime>,
}

impl Now {
    pub fn system() -> Self {
        Self {
            instant: Instant::now(),
            utc: Utc::now(),
            running_time: None,
        }
    }

    /// The wall clock at running time `rt` (now, for a time not yet
    /// reached or without a pipeline clock).
    fn utc_at(&self, rt: RunningTime) -> DateTime<Utc> {
        match self.running_time {
            Some(cur) if cur >= rt => self.utc - chrono::Duration::nanoseconds(cur.0 - rt.0),
            _ => self.utc,
        }
    }
}

/// A fragment to append.
#[derive(Debug)]
pub struct Fragment {
    /// The tracks in init order.
    pub tracks: Vec<ClipTrack>,
    /// Running time minus recording time: the samples' times onto the
    /// session's timeline.
    pub offset: i64,
    /// Initial composition delay per init track (ns), for the edit lists.
    pub delays: Vec<i64>,
    pub pdt: Option<DateTime<Utc>>,
    /// Where the fragment starts.
    pub start: RunningTime,
    /// Where its media ends: the next fragment's start (for a part, where
    /// its samples' decoding ends).
    pub end: RecordingTime,
    /// A part that continues the fragment an earlier append started
    /// (low-latency HLS parts); the first part, or a whole fragment, does
    /// not.
    pub continues: bool,
}

#[derive(Debug)]
pub enum Command {
    /// A new init segment (the tracks, and their initial composition
    /// delays in ns for its edit list); the next segment starts after it.
    Init {
        configs: Vec<Arc<CodecConfig>>,
        delays: Vec<i64>,
        /// The planner's track of each entry.
        tracks: Vec<usize>,
    },
    Append(Fragment),
    /// End the open segment.
    Close,
    /// The next segment starts after an EXT-X-DISCONTINUITY.
    Discontinuity,
    /// End of the session: every track ended (`eos`), or the element
    /// stopped.
    Finish {
        eos: bool,
    },
    /// A marker (its start on the recording-time axis; a SCTE-35 one with
    /// `splice`: whether it is an out), answered on `reply` when someone
    /// waits for it.
    Mark {
        marker: super::markers::Marker,
        splice: Option<Option<bool>>,
        reply: Option<
            std::sync::mpsc::SyncSender<Result<super::markers::Marker, super::clip::ClipError>>,
        >,
    },
}

/// What one input produced.
#[derive(Debug, Default)]
pub struct Plan {
    pub commands: Vec<Command>,
    pub notices: Vec<Notice>,
    /// Ask upstream for a keyframe at this (real) running time: where the
    /// open segment should end. Given once per segment.
    pub keyframe_at: Option<RunningTime>,
    /// The first H.264 open-GOP random-access point: browsers' Media
    /// Source players start only at IDR pictures.
    pub open_gop: bool,
}

struct Track {
    kind: TrackKind,
    config: Option<Arc<CodecConfig>>,
    /// A configuration from caps, taking effect at the next keyframe (the
    /// first frame coded with it); later caps before that replace it.
    pending: Option<Arc<CodecConfig>>,
    /// Last decode time as received (before closing gaps), and the step
    /// before it.
    last_dts: Option<i64>,
    last_step: i64,
    /// Subtracted from this track's timestamps: the gaps closed so far.
    shift: i64,
}

/// A gap closed on the leading track: from this (shifted) running time on,
/// `total` was taken off.
#[derive(Debug, Clone, Copy)]
struct Shift {
    from: RunningTime,
    total: i64,
}

pub struct Planner {
    cfg: PlannerConfig,
    cutter: Cutter,
    tracks: Vec<Track>,
    /// Configurations of the current init segment, in init order.
    init: Vec<Arc<CodecConfig>>,
    /// Track index per init track.
    order: Vec<usize>,
    /// Initial composition delay per init track (ns).
    delays: Vec<i64>,
    /// Running time minus recording time.
    offset: Option<i64>,
    /// End of the last fragment.
    end: RecordingTime,
    /// Start of the open segment.
    segment_start: RecordingTime,
    /// A gap was closed on the leading track at this running time: the
    /// first fragment from there starts after a discontinuity.
    discontinuity: Option<RunningTime>,
    /// (Real running time, UTC) anchors of program date times: the first
    /// sample's, and the newest reference timestamp's.
    utc_anchor: Option<(RunningTime, DateTime<Utc>)>,
    reference: Option<(RunningTime, DateTime<Utc>)>,
    warned_open_gop: bool,
    /// Newest leading-track presentation time.
    latest: RunningTime,
    shifts: Vec<Shift>,
    requested_for: Option<RunningTime>,
    finished: bool,
    /// Video tracks reported as cut off the leading one's keyframes.
    misaligned: std::collections::HashSet<usize>,
    /// Samples of the pending media written as parts, per track.
    parted: Vec<usize>,
    /// Markers that came before recording time was placed: (real running
    /// time, marker, splice).
    early_marks: Vec<(
        Option<RunningTime>,
        super::markers::Marker,
        Option<Option<bool>>,
    )>,
}

impl Planner {
    /// A planner for a run with tracks of `kinds` (track `i` is `kinds[i]`).
    pub fn new(cfg: PlannerConfig, kinds: &[TrackKind]) -> Self {
        let has_video = kinds.contains(&TrackKind::Video);
        let interval = if has_video { 1 } else { AUDIO_FRAGMENT };
        let mut planner = Self {
            cfg,
            cutter: Cutter::new(interval, MAX_PENDING),
            tracks: Vec::new(),
            init: Vec::new(),
            order: Vec::new(),
            delays: Vec::new(),
            offset: None,
            end: cfg.base,
            segment_start: cfg.base,
            discontinuity: None,
            utc_anchor: None,
            reference: None,
            warned_open_gop: false,
            latest: RunningTime(0),
            shifts: Vec::new(),
            requested_for: None,
            early_marks: Vec::new(),
            finished: false,
            misaligned: Default::default(),
            parted: Vec::new(),
        };
        for &kind in kinds {
            planner.add_track(kind);
        }
        planner
    }

    /// Adds a track; returns its index.
    pub fn add_track(&mut self, kind: TrackKind) -> usize {
        self.tracks.push(Track {
            kind,
            config: None,
            pending: None,
            last_dts: None,
            last_step: 0,
            shift: 0,
        });
        self.cutter.add_track(kind)
    }

    /// A codec configuration from caps: the track's first, or the next one
    /// (from its next keyframe).
    pub fn set_config(&mut self, track: usize, config: Arc<CodecConfig>) {
        let t = &mut self.tracks[track];
        if t.config.is_none() {
            t.config = Some(config);
        } else {
            t.pending = Some(config);
        }
    }

    /// Whether the track leads the cuts: the first video track (other
    /// video tracks are renditions of it, cut at its keyframes), or any
    /// track of a stream without video.
    fn leads(&self, track: usize) -> bool {
        match self.tracks.iter().position(|t| t.kind == TrackKind::Video) {
            Some(first) => first == track,
            None => true,
        }
    }

    /// Plans a sample of `track` (times in running time as received);
    /// `reference` is the UTC of its reference timestamp, if any.
    pub fn push(
        &mut self,
        track: usize,
        mut sample: Sample,
        reference: Option<DateTime<Utc>>,
        now: &Now,
    ) -> Plan {
        let mut plan = Plan::default();
        let t = &mut self.tracks[track];
        let codec = t
            .pending
            .as_ref()
            .or(t.config.as_ref())
            .and_then(|c| c.nal_format())
            .map(|(codec, _)| codec);
        plan.open_gop = sample.access == Access::Open
            && codec == Some(nal::Codec::H264)
            && !std::mem::replace(&mut self.warned_open_gop, true);
        // A new configuration takes effect at its first keyframe: what came
        // before is written with the old init segment.
        let pending = t.pending.take_if(|_| sample.keyframe);
        if let Some(new) = pending {
            let changed = t.config.as_ref().is_some_and(|old| !old.same_entry(&new));
            if changed {
                let held = self.cutter.flush(Trigger::CapsChange);
                self.prepare(held, now, &mut plan.commands);
            }
            self.tracks[track].config = Some(new);
        }
        let pts = RunningTime(sample.pts);
        if let Some(utc) = reference {
            self.reference = Some((pts, utc));
        }
        if self.utc_anchor.is_none() {
            self.utc_anchor = Some((pts, now.utc_at(pts)));
        }
        let leads = self.leads(track);
        if let Some(closed) = self.close_gap(track, &mut sample)
            && leads
        {
            self.shifts.push(closed);
            self.discontinuity = Some(closed.from);
        }
        if leads {
            self.latest = self.latest.max(RunningTime(sample.pts));
        }
        let selections = self
            .cutter
            .push(track, sample, now.instant, &mut plan.notices);
        // The first keyframe starts recording time: the keyframe that ends
        // the first segment can be asked for right away.
        if self.offset.is_none() {
            self.offset = self.cutter.pending_start().map(|s| s - self.cfg.base.0);
        }
        self.place_marks(&mut plan.commands);
        let closed = self.prepare(selections, now, &mut plan.commands);
        self.part(now, &mut plan.commands);
        // A rendition cut off the leading video's keyframes matters where a
        // segment ends (its segments are then its own), once per track.
        let warned = &mut self.misaligned;
        plan.notices.retain(|n| match *n {
            Notice::Misaligned { track, at } => closed.contains(&at) && warned.insert(track),
            _ => true,
        });
        plan.keyframe_at = self.keyframe_request();
        plan
    }

    /// Closes a jump in `track`'s decode time: the sample (and those after
    /// it) are shifted to follow the previous one. Returns the shift, if
    /// this sample made one.
    fn close_gap(&mut self, track: usize, sample: &mut Sample) -> Option<Shift> {
        let t = &mut self.tracks[track];
        let raw = sample.dts;
        let mut closed = None;
        if let Some(last) = t.last_dts {
            let step = raw - last;
            let gap = (sample.duration as i64 * 3).max(GAP);
            if step < 0 || step > gap {
                let expected = if sample.duration > 0 {
                    sample.duration as i64
                } else {
                    t.last_step
                };
                t.shift += step - expected;
                closed = Some(Shift {
                    from: RunningTime(sample.pts - t.shift),
                    total: t.shift,
                });
            } else {
                t.last_step = step;
            }
        }
        t.last_dts = Some(raw);
        sample.pts -= t.shift;
        sample.dts -= t.shift;
        closed
    }

    /// A track ended (`eos`), or its pad went away: what it completes is
    /// planned, and the session ends with the last track.
    pub fn end_track(&mut self, track: usize, eos: bool, now: &Now) -> Plan {
        let selections = self.cutter.set_eos(track, now.instant);
        self.plan(selections, eos, now)
    }

    /// A flush: the held media is written as it is (when the leading track
    /// flushes); recording starts again at the next keyframe, and the jump
    /// in time that follows is closed like any other gap (the last decode
    /// times are kept).
    pub fn flush(&mut self, track: usize, now: &Now) -> Plan {
        if !self.leads(track) {
            return Plan::default();
        }
        let selections = self.cutter.flush(Trigger::Flush);
        self.plan(selections, false, now)
    }

    /// The element stops: what was received is written and the session
    /// ends.
    pub fn finish(&mut self, now: &Now) -> Plan {
        let selections = if self.finished {
            Vec::new()
        } else {
            self.cutter.finish()
        };
        self.plan(selections, false, now)
    }

    /// The recording time of the real running time `rt` (`None`: the
    /// newest leading-track presentation time, the stream's "now"), once
    /// the first keyframe placed recording time on running time.
    pub fn recording_time_of(&self, rt: Option<RunningTime>) -> Option<RecordingTime> {
        let closed = rt.map_or(self.latest, |r| self.closed(r));
        self.offset
            .map(|offset| RecordingTime((closed.0 - offset).max(0)))
    }

    /// A marker at real running time `rt` (`None`: the stream's "now"),
    /// placed on recording time: at once, or, when it comes before the
    /// first keyframe (on another pad, or ahead of the video), as soon as
    /// that keyframe places recording time (a marker of "now" then goes to
    /// where recording starts).
    pub fn mark(
        &mut self,
        rt: Option<RunningTime>,
        marker: super::markers::Marker,
        splice: Option<Option<bool>>,
    ) -> Plan {
        let mut plan = Plan::default();
        self.early_marks.push((rt, marker, splice));
        self.place_marks(&mut plan.commands);
        plan
    }

    fn place_marks(&mut self, cmds: &mut Vec<Command>) {
        if self.offset.is_none() {
            return;
        }
        for (rt, mut marker, splice) in std::mem::take(&mut self.early_marks) {
            let at = match rt {
                Some(_) => self.recording_time_of(rt),
                None => self.recording_time_of(None).map(|t| t.max(self.cfg.base)),
            };
            marker.start = at.unwrap_or(self.cfg.base).ns();
            cmds.push(Command::Mark {
                marker,
                splice,
                reply: None,
            });
        }
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn plan(&mut self, selections: Vec<Selection>, eos: bool, now: &Now) -> Plan {
        let mut plan = Plan::default();
        self.prepare(selections, now, &mut plan.commands);
        if self.cutter.is_done() && !self.finished {
            self.finished = true;
            plan.commands.push(Command::Finish { eos });
        }
        plan.keyframe_at = self.keyframe_request();
        plan
    }

    /// The gap shift in effect at (shifted) running time `rt`.
    fn shift_at(&self, rt: RunningTime) -> i64 {
        self.shifts
            .iter()
            .rev()
            .find(|s| s.from <= rt)
            .map_or(0, |s| s.total)
    }

    /// The (shifted) running time of a real running time.
    fn closed(&self, real: RunningTime) -> RunningTime {
        let total = self
            .shifts
            .iter()
            .rev()
            .find(|s| real.0 - s.total >= s.from.0)
            .map_or(0, |s| s.total);
        RunningTime(real.0 - total)
    }

    /// The real running time of a (shifted) running time.
    fn real(&self, rt: RunningTime) -> RunningTime {
        RunningTime(rt.0 + self.shift_at(rt))
    }

    fn pdt_at(&self, rt: RunningTime, now: &Now) -> Option<DateTime<Utc>> {
        let rt = self.real(rt);
        let since = |(at, utc): (RunningTime, DateTime<Utc>)| {
            utc + chrono::Duration::nanoseconds(rt.0 - at.0)
        };
        match self.cfg.pdt_clock {
            PdtClock::Reference if self.reference.is_some() => self.reference.map(since),
            PdtClock::System => {
                let ahead = (self.real(self.latest).0 - rt.0).max(0);
                Some(now.utc - chrono::Duration::nanoseconds(ahead))
            }
            _ => self.utc_anchor.map(since),
        }
    }

    /// Where the open segment should end, if not asked yet.
    fn keyframe_request(&mut self) -> Option<RunningTime> {
        if self.finished {
            return None;
        }
        let target = self.cfg.target_duration.as_nanos() as i64;
        let at = self.real(RunningTime(self.offset? + self.segment_start.0 + target));
        if self.requested_for == Some(at) || at.0 < 0 {
            return None;
        }
        self.requested_for = Some(at);
        Some(at)
    }

    /// Selections to commands: init segments, fragments, segment ends.
    /// The media of a selection already written as parts is left out: the
    /// rest ends the fragment. Returns the (running time) ends of the
    /// fragments that ended a segment.
    fn prepare(
        &mut self,
        selections: Vec<Selection>,
        now: &Now,
        cmds: &mut Vec<Command>,
    ) -> Vec<i64> {
        let mut closed = Vec::new();
        let leader = self.cutter.leader_track();
        for sel in selections {
            // Parts are written of the pending media only: of the first
            // selection that follows them.
            let written = std::mem::take(&mut self.parted);
            let first = written.iter().all(|&n| n == 0);
            // The fragment's composition delay (its keyframe's).
            let delay = sel
                .tracks
                .iter()
                .find(|t| Some(t.track) == leader)
                .and_then(|t| t.samples.first())
                .map_or(0, |k| (k.pts - k.dts).max(0));
            let tracks = sel
                .tracks
                .into_iter()
                .map(|mut t| {
                    let n = written.get(t.track).copied().unwrap_or(0);
                    t.samples.drain(..n.min(t.samples.len()));
                    t
                })
                .collect();
            for piece in self.split(sel.start, sel.end, tracks, first, leader, delay) {
                if let Some(end) = self.write_piece(piece, now, cmds) {
                    closed.push(end);
                }
            }
        }
        closed
    }

    /// The rest of a fragment as pieces: one, or with parts on, parts of
    /// at most the part duration (when parts could not be written as the
    /// media came, e.g. while the cut waited for the audio), the last one
    /// ending the fragment.
    fn split(
        &self,
        start: i64,
        end: i64,
        mut tracks: Vec<TrackSelection>,
        mut first: bool,
        leader: Option<usize>,
        delay: i64,
    ) -> Vec<Piece> {
        let part = self.cfg.part_duration.as_nanos() as i64;
        let mut pieces = Vec::new();
        if part > 0
            && let Some(leader) = leader
        {
            while let Some(lead) = tracks.iter().find(|t| t.track == leader) {
                let Some(head) = lead.samples.first() else {
                    break;
                };
                let limit = head.dts + part + PART_SLACK;
                let count = lead
                    .samples
                    .iter()
                    .take_while(|s| s.dts + s.duration as i64 <= limit)
                    .count()
                    .max(1);
                if count >= lead.samples.len() {
                    // The rest fits in the last piece.
                    break;
                }
                let last = &lead.samples[count - 1];
                let boundary = last.dts + last.duration as i64 + delay;
                let mut taken = Vec::new();
                for t in &mut tracks {
                    let kind = self.tracks[t.track].kind;
                    let n = if t.track == leader {
                        count
                    } else if kind == TrackKind::Video {
                        t.samples
                            .iter()
                            .take_while(|s| s.dts + delay < boundary)
                            .count()
                    } else {
                        t.samples
                            .iter()
                            .take_while(|s| s.pts_mid() < boundary)
                            .count()
                    };
                    if n > 0 {
                        taken.push(TrackSelection {
                            track: t.track,
                            samples: t.samples.drain(..n).collect(),
                            next_dts: t.samples.first().map(|s| s.dts),
                        });
                    }
                }
                pieces.push(Piece {
                    start,
                    end: boundary,
                    tracks: taken,
                    first,
                    last: false,
                });
                first = false;
            }
        }
        pieces.push(Piece {
            start,
            end,
            tracks,
            first,
            last: true,
        });
        pieces
    }

    /// With parts on, writes the pending media in parts as the leading
    /// track brings a part's worth of it: its samples up to the last one
    /// that ends within the part, the other video tracks' decoded before
    /// that end, the audio presented before it. Part ends are the leading
    /// track's decode times moved by the fragment's composition delay, so
    /// that the parts of a fragment add up to its presentation span and
    /// none is longer than the part duration.
    fn part(&mut self, now: &Now, cmds: &mut Vec<Command>) {
        let part = self.cfg.part_duration.as_nanos() as i64;
        if part == 0 || self.finished {
            return;
        }
        let Some(leader) = self.cutter.leader_track() else {
            return;
        };
        let Some(start) = self.cutter.pending_start() else {
            return;
        };
        self.parted.resize(self.tracks.len(), 0);
        loop {
            let (count, boundary) = {
                let Some(lead) = self.cutter.pending_samples(leader) else {
                    return;
                };
                let Some(key) = lead.first() else { return };
                let delay = (key.pts - key.dts).max(0);
                let fresh = &lead[self.parted[leader].min(lead.len())..];
                let Some(first) = fresh.first() else { return };
                let limit = first.dts + part + PART_SLACK;
                let count = fresh
                    .iter()
                    .take_while(|s| s.dts + s.duration as i64 <= limit)
                    .count();
                let last = fresh[count.max(1) - 1];
                // Not a part's worth yet.
                let end = last.dts + last.duration as i64;
                if count == 0 || (count == fresh.len() && end + PART_SLACK < first.dts + part) {
                    return;
                }
                (count, last.dts + last.duration as i64 + delay)
            };
            // The audio presented before the part's end has all arrived
            // (or its track ended or stalled): a fragment's parts hold all
            // of its media, and none is left for a part of no duration.
            let waiting = self.tracks.iter().enumerate().any(|(t, track)| {
                track.kind != TrackKind::Video && !self.cutter.reached(t, boundary, now.instant)
            });
            if waiting {
                return;
            }
            let first = self.parted.iter().all(|&n| n == 0);
            let mut tracks = Vec::new();
            for (t, track) in self.tracks.iter().enumerate() {
                let Some(pending) = self.cutter.pending_samples(t) else {
                    continue;
                };
                let fresh = pending[self.parted[t].min(pending.len())..].iter();
                let samples: Vec<Sample> = if t == leader {
                    fresh.take(count).map(|s| (*s).clone()).collect()
                } else if track.kind == TrackKind::Video {
                    let delay = pending.first().map_or(0, |k| (k.pts - k.dts).max(0));
                    fresh
                        .take_while(|s| s.dts + delay < boundary)
                        .map(|s| (*s).clone())
                        .collect()
                } else {
                    fresh
                        .take_while(|s| s.pts_mid() < boundary)
                        .map(|s| (*s).clone())
                        .collect()
                };
                self.parted[t] += samples.len();
                if !samples.is_empty() {
                    tracks.push(TrackSelection {
                        track: t,
                        samples,
                        next_dts: None,
                    });
                }
            }
            let piece = Piece {
                start,
                end: boundary,
                tracks,
                first,
                last: false,
            };
            self.write_piece(piece, now, cmds);
        }
    }

    /// One piece to commands: an init segment when the tracks changed and a
    /// discontinuity where a gap was closed (at a fragment's start), the
    /// fragment (or its part), a segment end (after a fragment's last
    /// piece). Returns the piece's end when it ended a segment.
    fn write_piece(&mut self, piece: Piece, now: &Now, cmds: &mut Vec<Command>) -> Option<i64> {
        let target = self.cfg.target_duration.as_nanos() as i64;
        let Piece {
            start: sel_start,
            end: sel_end,
            tracks: selected,
            first,
            last,
        } = piece;
        let mut init_changed = false;
        if first {
            // Tracks in init order: video first, then audio.
            let mut tracks: Vec<(usize, Arc<CodecConfig>)> = self
                .tracks
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.config.clone().map(|c| (i, c)))
                .collect();
            tracks.sort_by_key(|(i, c)| (c.kind != TrackKind::Video, *i));
            init_changed = self.init.len() != tracks.len()
                || self
                    .init
                    .iter()
                    .zip(&tracks)
                    .any(|(a, (_, b))| !a.same_entry(b));
            if init_changed {
                self.order = tracks.iter().map(|(i, _)| *i).collect();
                self.init = tracks.into_iter().map(|(_, c)| c).collect();
                self.delays = self
                    .order
                    .iter()
                    .map(|&i| {
                        selected
                            .iter()
                            .find(|t| t.track == i)
                            .and_then(|t| t.samples.first())
                            .map_or(0, |s| (s.pts - s.dts).max(0))
                    })
                    .collect();
                cmds.push(Command::Init {
                    configs: self.init.clone(),
                    delays: self.delays.clone(),
                    tracks: self.order.clone(),
                });
                // A new init segment also starts a new media segment.
                self.segment_start = self.end;
            }
        }
        let start = RunningTime(sel_start);
        if self.offset.is_none() {
            self.offset = Some(sel_start - self.cfg.base.0);
        }
        if first && self.discontinuity.is_some_and(|at| start >= at) {
            // Recording time goes on where it was.
            self.discontinuity = None;
            self.offset = Some(sel_start - self.end.0);
            self.segment_start = self.end;
            if !init_changed {
                cmds.push(Command::Discontinuity);
            }
        }
        let offset = self.offset.unwrap_or(sel_start);
        let mut selected = selected;
        let tracks = self
            .order
            .iter()
            .zip(&self.init)
            .map(|(&i, config)| {
                let (samples, next_dts) = match selected.iter().position(|t| t.track == i) {
                    Some(p) => {
                        let t = selected.swap_remove(p);
                        (t.samples, t.next_dts)
                    }
                    None => (Vec::new(), None),
                };
                ClipTrack {
                    config: config.clone(),
                    samples,
                    next_dts,
                }
            })
            .collect::<Vec<ClipTrack>>();
        self.end = RecordingTime((sel_end - offset).max(self.end.0));
        // The last piece of a fragment whose parts took every sample.
        let empty = tracks.iter().all(|t: &ClipTrack| t.samples.is_empty());
        if !empty || first {
            cmds.push(Command::Append(Fragment {
                tracks,
                offset,
                delays: self.delays.clone(),
                pdt: self.pdt_at(start, now),
                start,
                end: self.end,
                continues: !first,
            }));
        }
        if last && self.end.0 - self.segment_start.0 + CLOSE_SLACK >= target {
            cmds.push(Command::Close);
            self.segment_start = self.end;
            return Some(sel_end);
        }
        None
    }
}

/// What a planned fragment is written in: the whole fragment of a cut, or
/// one of its parts.
struct Piece {
    /// Where the fragment starts (its keyframe's pts), where the piece ends.
    start: i64,
    end: i64,
    tracks: Vec<TrackSelection>,
    /// It starts the fragment; it ends it.
    first: bool,
    last: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::testing;
    use bytes::Bytes;

    const MS: i64 = 1_000_000;
    const S: i64 = 1_000 * MS;
    const FRAME: i64 = 40 * MS;

    fn now() -> Now {
        Now {
            instant: Instant::now(),
            utc: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            running_time: None,
        }
    }

    fn sample(pts: i64, dts: i64, duration: i64, keyframe: bool) -> Sample {
        Sample {
            pts,
            dts,
            duration: duration as u64,
            keyframe,
            access: Access::Unknown,
            data: Bytes::from_static(&[0; 16]),
        }
    }

    fn cfg(target: u64) -> PlannerConfig {
        PlannerConfig {
            target_duration: Duration::from_secs(target),
            ..Default::default()
        }
    }

    /// A planner with a video track (0) and an audio track (1).
    fn av(target: u64) -> Planner {
        let mut p = Planner::new(cfg(target), &[TrackKind::Video, TrackKind::Audio]);
        p.set_config(0, Arc::new(testing::h264()));
        p.set_config(1, Arc::new(testing::aac()));
        p
    }

    /// A planner with a video track alone.
    fn video(cfg: PlannerConfig) -> Planner {
        let mut p = Planner::new(cfg, &[TrackKind::Video]);
        p.set_config(0, Arc::new(testing::h264()));
        p
    }

    /// Video frames `from..to` (25 fps, a keyframe every second, no
    /// reordering) with running time `shift` added, and the audio (20 ms
    /// frames) of the same span, interleaved.
    fn feed(p: &mut Planner, from: i64, to: i64, shift: i64, out: &mut Vec<Command>) {
        for f in from..to {
            let t = f * FRAME + shift;
            out.extend(
                p.push(0, sample(t, t, FRAME, f % 25 == 0), None, &now())
                    .commands,
            );
            for a in 0..2 {
                let t = t + a * 20 * MS;
                out.extend(
                    p.push(1, sample(t, t, 20 * MS, true), None, &now())
                        .commands,
                );
            }
        }
    }

    fn ends(cmds: &[Command]) -> Vec<i64> {
        cmds.iter()
            .filter_map(|c| match c {
                Command::Append(f) => Some(f.end.0),
                _ => None,
            })
            .collect()
    }

    /// Command kinds, in order: I(nit), A(ppend), C(lose), D(iscontinuity),
    /// F(inish).
    fn shape(cmds: &[Command]) -> String {
        cmds.iter()
            .map(|c| match c {
                Command::Init { .. } => 'I',
                Command::Append(_) => 'A',
                Command::Close => 'C',
                Command::Discontinuity => 'D',
                Command::Finish { .. } => 'F',
                Command::Mark { .. } => 'K',
            })
            .collect()
    }

    /// Decode times of a track across the appended fragments, in recording
    /// time.
    fn recorded_dts(cmds: &[Command], kind: TrackKind) -> Vec<i64> {
        cmds.iter()
            .filter_map(|c| match c {
                Command::Append(f) => Some(f),
                _ => None,
            })
            .flat_map(|f| {
                f.tracks
                    .iter()
                    .filter(|t| t.config.kind == kind)
                    .flat_map(move |t| t.samples.iter().map(move |s| s.dts - f.offset))
            })
            .collect()
    }

    fn assert_continuous(dts: &[i64], step: i64) {
        for w in dts.windows(2) {
            assert_eq!(w[1] - w[0], step, "decode times {dts:?}");
        }
    }

    #[test]
    fn fragments_per_gop_and_segments_at_the_target() {
        let mut p = av(2);
        let mut cmds = Vec::new();
        feed(&mut p, 0, 125, 10 * S, &mut cmds);
        cmds.extend(p.end_track(0, true, &now()).commands);
        cmds.extend(p.end_track(1, true, &now()).commands);
        assert_eq!(shape(&cmds), "IAACAACAF");
        assert_eq!(ends(&cmds), vec![S, 2 * S, 3 * S, 4 * S, 5 * S]);
        assert!(matches!(cmds.last(), Some(Command::Finish { eos: true })));
        // Nothing after the end, not even at stop.
        assert!(p.finish(&now()).commands.is_empty());
        assert_continuous(&recorded_dts(&cmds, TrackKind::Video), FRAME);
        assert_continuous(&recorded_dts(&cmds, TrackKind::Audio), 20 * MS);
    }

    /// Two renditions (video tracks 0 and 1), the second keyed every
    /// `gop` frames (the first every 25): the warnings the planner gives.
    fn renditions(gop: i64) -> Vec<Notice> {
        let mut p = Planner::new(cfg(2), &[TrackKind::Video, TrackKind::Video]);
        p.set_config(0, Arc::new(testing::h264()));
        p.set_config(1, Arc::new(testing::h264()));
        let mut notices = Vec::new();
        let mut closes = 0;
        for f in 0..250 {
            let t = f * FRAME;
            for (track, key) in [(0, f % 25 == 0), (1, f % gop == 0)] {
                let plan = p.push(track, sample(t, t, FRAME, key), None, &now());
                closes += plan
                    .commands
                    .iter()
                    .filter(|c| matches!(c, Command::Close))
                    .count();
                notices.extend(plan.notices);
            }
        }
        assert_eq!(closes, 4, "segments end every 2 s");
        notices
            .into_iter()
            .filter(|n| matches!(n, Notice::Misaligned { .. }))
            .collect()
    }

    #[test]
    fn a_rendition_off_the_segment_boundaries_is_reported_once() {
        // Keyed at every segment boundary (not at every fragment): aligned
        // segments, nothing to say.
        assert!(renditions(50).is_empty());
        // Keyed on its own: said once.
        let said = renditions(35);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(matches!(said[0], Notice::Misaligned { track: 1, at } if at == 2 * S));
    }

    #[test]
    fn parts_write_each_fragment_early_and_exactly_once() {
        let mut p = Planner::new(
            PlannerConfig {
                part_duration: Duration::from_millis(200),
                ..cfg(2)
            },
            &[TrackKind::Video, TrackKind::Audio],
        );
        p.set_config(0, Arc::new(testing::h264()));
        p.set_config(1, Arc::new(testing::aac()));
        let mut cmds = Vec::new();
        feed(&mut p, 0, 125, 0, &mut cmds);
        cmds.extend(p.end_track(0, true, &now()).commands);
        cmds.extend(p.end_track(1, true, &now()).commands);
        // Every frame and audio frame once, in order.
        assert_continuous(&recorded_dts(&cmds, TrackKind::Video), FRAME);
        assert_eq!(recorded_dts(&cmds, TrackKind::Video).len(), 125);
        assert_continuous(&recorded_dts(&cmds, TrackKind::Audio), 20 * MS);
        assert_eq!(recorded_dts(&cmds, TrackKind::Audio).len(), 250);
        // Five parts of 200 ms per one-second fragment: the first starts
        // the fragment (its keyframe), the others continue it; segments
        // end after a fragment's last part only.
        let mut fragments: Vec<Vec<(bool, i64, usize)>> = Vec::new();
        for c in &cmds {
            match c {
                Command::Append(f) => {
                    let video = f.tracks[0].samples.len();
                    if !f.continues {
                        assert!(f.tracks[0].samples[0].keyframe);
                        fragments.push(Vec::new());
                    }
                    fragments
                        .last_mut()
                        .unwrap()
                        .push((f.continues, f.end.0, video));
                }
                Command::Close => {
                    let last = fragments.last().unwrap().last().unwrap();
                    assert_eq!(last.1 % S, 0, "a segment ends at a keyframe: {last:?}");
                }
                _ => {}
            }
        }
        assert_eq!(fragments.len(), 5);
        for f in &fragments[..4] {
            // The audio that arrives after the last part's video ends the
            // fragment.
            let frames: Vec<usize> = f.iter().map(|p| p.2).filter(|&n| n > 0).collect();
            assert_eq!(frames, [5, 5, 5, 5, 5], "{f:?}");
            assert!(f.len() <= 6 && f[..5].iter().all(|p| p.2 == 5), "{f:?}");
            assert!(
                f.windows(2)
                    .all(|w| w[0].1 <= w[1].1 && w[1].1 - w[0].1 <= 200 * MS),
                "ends ascend, parts at most 200 ms apart: {f:?}"
            );
        }
        assert_eq!(shape(&cmds).matches('C').count(), 2);
    }

    #[test]
    fn parts_stay_within_the_part_duration_when_the_audio_lags() {
        let mut p = Planner::new(
            PlannerConfig {
                part_duration: Duration::from_millis(200),
                ..cfg(2)
            },
            &[TrackKind::Video, TrackKind::Audio],
        );
        p.set_config(0, Arc::new(testing::h264()));
        p.set_config(1, Arc::new(testing::aac()));
        let mut cmds = Vec::new();
        // Two seconds of video before any audio: no part can be written
        // until the audio comes, then the held media goes out in parts.
        for f in 0..51 {
            let t = f * FRAME;
            cmds.extend(
                p.push(0, sample(t, t, FRAME, f % 25 == 0), None, &now())
                    .commands,
            );
        }
        // (Up to 2.02 s: the second cut waits for audio at 2 s.)
        for a in 0..102 {
            let t = a * 20 * MS;
            cmds.extend(
                p.push(1, sample(t, t, 20 * MS, true), None, &now())
                    .commands,
            );
        }
        let mut last_end = 0;
        let mut video = 0;
        for c in &cmds {
            if let Command::Append(f) = c {
                assert!(
                    f.end.0 - last_end <= 200 * MS,
                    "a part of {} ns",
                    f.end.0 - last_end
                );
                last_end = f.end.0;
                video += f.tracks[0].samples.len();
            }
        }
        assert_eq!(video, 50, "both fragments, every frame once");
        assert_continuous(&recorded_dts(&cmds, TrackKind::Video), FRAME);
    }

    #[test]
    fn a_resumed_session_goes_on_from_its_end() {
        let mut p = video(PlannerConfig {
            base: RecordingTime(7 * S),
            ..cfg(2)
        });
        let mut cmds = Vec::new();
        for f in 0..51 {
            let t = 100 * S + f * FRAME;
            cmds.extend(
                p.push(0, sample(t, t, FRAME, f % 25 == 0), None, &now())
                    .commands,
            );
        }
        assert_eq!(ends(&cmds), vec![8 * S, 9 * S]);
        assert_eq!(recorded_dts(&cmds, TrackKind::Video)[0], 7 * S);
    }

    #[test]
    fn keyframe_requests_ask_for_each_segment_end_once() {
        let mut p = video(cfg(2));
        let mut asked = Vec::new();
        for f in 0..150 {
            let t = 5 * S + f * FRAME;
            asked.extend(
                p.push(0, sample(t, t, FRAME, f % 25 == 0), None, &now())
                    .keyframe_at,
            );
        }
        assert_eq!(
            asked,
            vec![RunningTime(7 * S), RunningTime(9 * S), RunningTime(11 * S)]
        );
    }

    #[test]
    fn a_gap_on_the_leading_track_is_closed_with_a_discontinuity() {
        let mut p = av(6);
        let mut cmds = Vec::new();
        feed(&mut p, 0, 50, 0, &mut cmds);
        // Ten seconds of nothing, then the stream goes on.
        feed(&mut p, 50, 100, 10 * S, &mut cmds);
        cmds.extend(p.finish(&now()).commands);
        assert_eq!(shape(&cmds), "IAADAAF");
        // Recording time has no hole: 4 s of media end at 4 s.
        assert_eq!(ends(&cmds), vec![S, 2 * S, 3 * S, 4 * S]);
        assert_continuous(&recorded_dts(&cmds, TrackKind::Video), FRAME);
        assert_continuous(&recorded_dts(&cmds, TrackKind::Audio), 20 * MS);
        // Keyframe requests and program date times are in real time.
        let appended: Vec<&Fragment> = cmds
            .iter()
            .filter_map(|c| match c {
                Command::Append(f) => Some(f),
                _ => None,
            })
            .collect();
        let pdt0 = appended[0].pdt.unwrap();
        let pdt2 = appended[2].pdt.unwrap();
        assert_eq!((pdt2 - pdt0).num_milliseconds(), 12_000);
    }

    #[test]
    fn time_going_backwards_is_closed_like_a_gap() {
        let mut p = av(6);
        let mut cmds = Vec::new();
        feed(&mut p, 0, 50, 60 * S, &mut cmds);
        feed(&mut p, 0, 50, 0, &mut cmds);
        cmds.extend(p.finish(&now()).commands);
        assert_eq!(shape(&cmds), "IAADAAF");
        assert_eq!(ends(&cmds), vec![S, 2 * S, 3 * S, 4 * S]);
        assert_continuous(&recorded_dts(&cmds, TrackKind::Video), FRAME);
    }

    #[test]
    fn a_gap_on_the_audio_track_alone_shifts_audio_without_a_discontinuity() {
        let mut p = av(6);
        let mut cmds = Vec::new();
        for f in 0..100 {
            let t = f * FRAME;
            cmds.extend(
                p.push(0, sample(t, t, FRAME, f % 25 == 0), None, &now())
                    .commands,
            );
            // Audio stops for two seconds at frame 25, its timestamps jump.
            if !(25..75).contains(&f) {
                for a in 0..2 {
                    let at = t + a * 20 * MS;
                    let s = sample(at, at, 20 * MS, true);
                    cmds.extend(p.push(1, s, None, &now()).commands);
                }
            }
        }
        cmds.extend(p.finish(&now()).commands);
        assert!(!shape(&cmds).contains('D'), "{}", shape(&cmds));
        assert_eq!(ends(&cmds), vec![S, 2 * S, 3 * S, 4 * S]);
        assert_continuous(&recorded_dts(&cmds, TrackKind::Video), FRAME);
        // The audio continues where it stopped.
        assert_continuous(&recorded_dts(&cmds, TrackKind::Audio), 20 * MS);
    }

    #[test]
    fn caps_mid_gop_take_effect_at_the_next_keyframe() {
        let mut p = av(6);
        let mut cmds = Vec::new();
        feed(&mut p, 0, 35, 0, &mut cmds);
        // New caps in the middle of the second GOP: its last frames are
        // still coded with the old configuration.
        let mut caps = testing::h264_caps("avc", true);
        caps.make_mut().set("width", 1280i32);
        p.set_config(0, Arc::new(CodecConfig::from_caps(&caps).unwrap()));
        feed(&mut p, 35, 75, 0, &mut cmds);
        cmds.extend(p.finish(&now()).commands);
        assert_eq!(shape(&cmds), "IAAIAF");
        let widths: Vec<(char, u32)> = cmds
            .iter()
            .filter_map(|c| match c {
                Command::Init { configs, .. } => Some(('I', configs[0].width)),
                Command::Append(f) => Some(('A', f.tracks[0].config.width)),
                _ => None,
            })
            .collect();
        let old = testing::h264().width;
        assert_eq!(
            widths,
            vec![('I', old), ('A', old), ('A', old), ('I', 1280), ('A', 1280)]
        );
        assert_eq!(ends(&cmds), vec![S, 2 * S, 3 * S]);
    }

    #[test]
    fn same_caps_again_change_nothing() {
        let mut p = av(6);
        let mut cmds = Vec::new();
        feed(&mut p, 0, 30, 0, &mut cmds);
        p.set_config(0, Arc::new(testing::h264()));
        feed(&mut p, 30, 60, 0, &mut cmds);
        cmds.extend(p.finish(&now()).commands);
        assert_eq!(shape(&cmds), "IAAAF");
    }

    #[test]
    fn a_flush_writes_what_was_held_and_restarts_at_a_keyframe() {
        let mut p = av(6);
        let mut cmds = Vec::new();
        feed(&mut p, 0, 40, 0, &mut cmds);
        // The audio flushes alone: nothing happens.
        assert!(p.flush(1, &now()).commands.is_empty());
        cmds.extend(p.flush(0, &now()).commands);
        assert_eq!(shape(&cmds), "IAA");
        assert_eq!(ends(&cmds), vec![S, 40 * FRAME]);
        // Running time starts again; P frames before the next keyframe
        // are dropped, then recording goes on without a hole.
        for f in 0..10 {
            let t = f * FRAME;
            p.push(0, sample(t, t, FRAME, false), None, &now());
        }
        feed(&mut p, 10, 60, 0, &mut cmds);
        cmds.extend(p.finish(&now()).commands);
        assert_eq!(shape(&cmds), "IAADAAF");
        let e = ends(&cmds);
        assert_eq!(e[2], 40 * FRAME + 25 * FRAME);
        assert_continuous(&recorded_dts(&cmds, TrackKind::Video), FRAME);
    }

    #[test]
    fn audio_alone_is_fragmented_every_second() {
        let mut p = Planner::new(cfg(2), &[TrackKind::Audio]);
        p.set_config(0, Arc::new(testing::aac()));
        let mut cmds = Vec::new();
        // 1024-sample AAC frames at 48 kHz.
        let d = 1024 * S / 48_000;
        for i in 0..300 {
            cmds.extend(
                p.push(0, sample(i * d, i * d, d, true), None, &now())
                    .commands,
            );
        }
        cmds.extend(p.end_track(0, true, &now()).commands);
        let e = ends(&cmds);
        assert!(e.len() >= 6, "{e:?}");
        for w in e.windows(2).take(e.len() - 2) {
            assert!((w[1] - w[0] - S).abs() <= d, "{e:?}");
        }
        assert_eq!(*e.last().unwrap(), 300 * d);
        assert!(shape(&cmds).starts_with("IAAC"));
        assert_continuous(&recorded_dts(&cmds, TrackKind::Audio), d);
    }

    #[test]
    fn program_date_times_follow_the_pipeline_clock() {
        let mut p = video(cfg(6));
        let clock = Now {
            running_time: Some(RunningTime(11 * S)),
            ..now()
        };
        let mut cmds = Vec::new();
        for f in 0..30 {
            let t = 10 * S + f * FRAME;
            cmds.extend(
                p.push(0, sample(t, t, FRAME, f % 25 == 0), None, &clock)
                    .commands,
            );
        }
        let Some(Command::Append(f)) = cmds.iter().find(|c| matches!(c, Command::Append(_))) else {
            panic!("no fragment: {}", shape(&cmds));
        };
        // The first sample arrived a second after its running time.
        assert_eq!(f.pdt, Some(now().utc - chrono::Duration::seconds(1)));
    }

    #[test]
    fn reference_timestamps_anchor_program_date_times() {
        let mut p = video(PlannerConfig {
            pdt_clock: PdtClock::Reference,
            ..cfg(6)
        });
        let utc = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut cmds = Vec::new();
        for f in 0..30 {
            let t = f * FRAME;
            let reference = (f % 25 == 0).then(|| utc + chrono::Duration::nanoseconds(t));
            cmds.extend(
                p.push(0, sample(t, t, FRAME, f % 25 == 0), reference, &now())
                    .commands,
            );
        }
        let Some(Command::Append(f)) = cmds.iter().find(|c| matches!(c, Command::Append(_))) else {
            panic!("no fragment: {}", shape(&cmds));
        };
        assert_eq!(f.pdt, Some(utc));
    }

    #[test]
    fn markers_before_the_first_keyframe_wait_for_recording_time() {
        use crate::hls::markers::{Marker, Source};
        let marker = |id: &str| Marker {
            id: id.into(),
            class: None,
            start: 0,
            duration: None,
            planned_duration: None,
            start_utc: None,
            attributes: Default::default(),
            source: Source::Event,
            scte35: None,
        };
        let starts = |cmds: &[Command]| -> Vec<(String, u64)> {
            cmds.iter()
                .filter_map(|c| match c {
                    Command::Mark { marker, .. } => Some((marker.id.clone(), marker.start)),
                    _ => None,
                })
                .collect()
        };
        let mut p = av(2);
        // Running time starts at 10 s; a cue for 13 s arrives first.
        let early = p.mark(Some(RunningTime(13 * S)), marker("cue"), Some(Some(true)));
        assert!(starts(&early.commands).is_empty());
        assert_eq!(p.recording_time_of(None), None);
        let mut cmds = Vec::new();
        feed(&mut p, 0, 50, 10 * S, &mut cmds);
        assert_eq!(starts(&cmds), vec![("cue".to_string(), 3 * S as u64)]);
        // Once placed: at once, "now" at the newest frame.
        let now = p.mark(None, marker("now"), None);
        assert_eq!(
            starts(&now.commands),
            vec![("now".to_string(), 49 * FRAME as u64)]
        );
    }
}
