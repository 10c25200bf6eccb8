// SPDX-License-Identifier: MPL-2.0
//! Clip selection for periodic and on-demand clips of the recent media.
//!
//! The media not yet written ("the pending range") starts at a keyframe of the
//! leading track (video if there is one, else the first track). A clip ends
//! at a later keyframe of the leader, and the next clip starts there, so that
//! the clips, concatenated, hold every frame exactly once. Other tracks are
//! cut at the same presentation instants: a follower sample belongs to the
//! clip whose `[start, end)` holds its pts.
//!
//! A cut waits until every follower has reached the cut instant (or ended, or
//! stalled), so that a late audio branch still lands in the right clip.
//!
//! Open GOPs: the pictures that follow a random-access point K in decode
//! order but come before it in presentation ("leading pictures": open-GOP
//! B-frames of H.264, HEVC RASL/RADL) are presented in the clip that ends at
//! K, and may refer to pictures of that clip. So:
//! - In self-contained mode ([`Cutter::set_self_contained`], for MP4 clips),
//!   the clip that ends at K also carries K and its leading pictures, in
//!   decode order; K decodes as a reference and the edit list, which ends at
//!   K's presentation time, hides it. The clip that starts at K leaves its
//!   leading pictures out. Every frame is presented by exactly one clip, and
//!   every clip decodes from its own samples.
//! - Otherwise (a recording, whose fragments play one after another), cuts
//!   stay contiguous in decode order: the leading pictures follow K.
//! - In both modes the leading pictures of the first keyframe of the media
//!   (after a start, a flush or a stall) are dropped: what they refer to was
//!   never received.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Sample, Timeline, TrackKind};

/// Why a clip was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Periodic,
    /// On-demand request, with the request's id.
    OnDemand(u64),
    /// End of stream: the unwritten remainder.
    Eos,
    /// A track changed its codec configuration: the media before it.
    CapsChange,
    /// A flush (a seek, a restart of the source): the media before it.
    Flush,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Periodic => "periodic",
            Trigger::OnDemand(_) => "on-demand",
            Trigger::Eos => "eos",
            Trigger::CapsChange => "caps-change",
            Trigger::Flush => "flush",
        }
    }
}

/// The samples of one track in a clip.
#[derive(Debug, Clone)]
pub struct TrackSelection {
    pub track: usize,
    pub samples: Vec<Sample>,
    /// Decode time of the sample after the last one, when known.
    pub next_dts: Option<i64>,
}

/// A clip ready to be written.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Position of the clip in the series (0 for the first clip cut).
    pub seq: u64,
    pub trigger: Trigger,
    /// Presentation start (the leader keyframe's pts) and end, ns.
    pub start: i64,
    pub end: i64,
    pub tracks: Vec<TrackSelection>,
}

impl Selection {
    /// Number of samples of `track` in the clip.
    pub fn count(&self, track: usize) -> usize {
        self.tracks
            .iter()
            .find(|t| t.track == track)
            .map_or(0, |t| t.samples.len())
    }
}

/// Something the caller should know about besides clips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Samples were dropped without being written: before the first keyframe,
    /// too late for their clip, or older than the pending-media bound.
    Dropped {
        track: usize,
        samples: usize,
        reason: &'static str,
    },
    /// The leader has brought no random-access point for longer than
    /// [`NO_RANDOM_ACCESS_WARNING`] (an intra-refresh or broken encoder):
    /// nothing after `since` (pts, ns) can start a clip or a fragment until
    /// one comes. Given once per such stretch.
    NoRandomAccess { since: i64, span: i64 },
    /// A video track that follows the leader (another rendition of the
    /// same picture) has no keyframe at a cut instant (`at`, pts): it is cut
    /// at its own keyframe before it (its encoder does not honour keyframe
    /// requests, or keys on its own). Given for every such cut.
    Misaligned { track: usize, at: i64 },
}

/// How far a following video track's keyframe may be from the leader's
/// and still count as the same instant (encoders fed by one `tee` keep
/// the input's timestamps; others round them).
pub const ALIGN_TOLERANCE: i64 = 5_000_000;

/// How long the leader may go without a random-access point before a
/// [`Notice::NoRandomAccess`].
pub const NO_RANDOM_ACCESS_WARNING: i64 = 15_000_000_000;

impl Notice {
    /// What an element says of it: `Err` for a warning the application
    /// should see, `Ok` for a debug line.
    pub fn describe(&self) -> Result<String, String> {
        match *self {
            Notice::Dropped {
                track,
                samples,
                reason,
            } => Ok(format!(
                "dropped {samples} samples of track {track}: {reason}"
            )),
            Notice::NoRandomAccess { since, span } => Err(format!(
                "no keyframe (random-access point) in the video for {:.1} s since {:.3} s \
                 (running time): nothing after it can start a clip or a segment until one \
                 comes; the encoder may use intra refresh, or need a keyframe interval \
                 (e.g. x264enc key-int-max)",
                span as f64 / 1e9,
                since as f64 / 1e9
            )),
            Notice::Misaligned { track, at } => Err(format!(
                "video track {track} has no keyframe at {:.3} s (running time), where the \
                 leading video's segment ends: it is segmented at its own keyframes, and its \
                 segments are not aligned with the other renditions' (have every encoder honour \
                 keyframe requests, e.g. x264enc with key-int-max at least the segment length)",
                at as f64 / 1e9
            )),
        }
    }
}

#[derive(Debug)]
struct TrackState {
    kind: TrackKind,
    timeline: Timeline,
    eos: bool,
    last_push: Option<Instant>,
    /// Highest pts pushed.
    max_pts: Option<i64>,
}

impl TrackState {
    /// Where a follower is cut at `time`: audio at the first sample
    /// presented mostly after it; video (another rendition) at its newest
    /// keyframe at `time`, or before it when it has none there.
    fn split_at(&self, time: i64) -> u64 {
        let tl = &self.timeline;
        if self.kind != TrackKind::Video {
            return tl.first_at_or_after(time);
        }
        let from = self.first_keyframe();
        tl.keyframe_at_or_before(time + ALIGN_TOLERANCE)
            .filter(|&k| k >= from)
            .unwrap_or(from)
    }

    /// The first sample a follower's cut can start with: for video its
    /// first keyframe (what comes before it cannot be decoded).
    fn first_keyframe(&self) -> u64 {
        let tl = &self.timeline;
        if self.kind != TrackKind::Video {
            return tl.start();
        }
        tl.keyframe_at_or_after(i64::MIN).unwrap_or(tl.end())
    }
}

#[derive(Debug, Clone, Copy)]
struct Boundary {
    time: i64,
    leader_index: u64,
}

#[derive(Debug, Clone, Copy)]
struct Cut {
    seq: u64,
    start: Boundary,
    end: Boundary,
    trigger: Trigger,
}

/// Decides periodic, on-demand and end-of-stream clips over in-memory media.
#[derive(Debug)]
pub struct Cutter {
    tracks: Vec<TrackState>,
    leader: Option<usize>,
    /// Start of the media not yet given to a clip.
    range: Option<Boundary>,
    /// The time at which the first range started (recording time origin).
    origin: Option<i64>,
    interval: u64,
    max_pending: u64,
    stall_timeout: Duration,
    cuts: VecDeque<Cut>,
    /// On-demand request waiting for the next leader keyframe: (id, leader
    /// end index when asked).
    request: Option<(u64, u64)>,
    /// When the first sample arrived (stall detection of silent tracks).
    started: Option<Instant>,
    /// Cuts made so far (the next cut's `seq`).
    cut_count: u64,
    /// The leader stalled and followers cut on their own: its next sample
    /// must be a keyframe.
    leader_resync: bool,
    /// Presentation time of the keyframe the media (re)started at, while
    /// its leading pictures may still come (they are dropped).
    fresh_start: Option<i64>,
    /// The leader's last random-access point (or first sample), and
    /// whether its absence since was reported.
    last_rap: Option<i64>,
    rap_warned: bool,
    self_contained: bool,
    done: bool,
    /// Notices of cuts made outside `push` (given with the next push).
    notices: Vec<Notice>,
}

impl Cutter {
    /// `interval` in ns (0: on demand only); `max_pending` bounds the media
    /// held (ns of the leader) when no cut comes.
    pub fn new(interval: u64, max_pending: u64) -> Self {
        Self {
            tracks: Vec::new(),
            leader: None,
            range: None,
            origin: None,
            interval,
            max_pending,
            stall_timeout: Duration::from_secs(3),
            cuts: VecDeque::new(),
            request: None,
            started: None,
            cut_count: 0,
            leader_resync: false,
            fresh_start: None,
            last_rap: None,
            rap_warned: false,
            self_contained: false,
            done: false,
            notices: Vec::new(),
        }
    }

    /// Makes every clip decodable from its own samples on open-GOP media:
    /// the clip that ends at a keyframe also carries the keyframe (hidden by
    /// the edit list) and its leading pictures. See the module docs.
    pub fn set_self_contained(&mut self, on: bool) {
        self.self_contained = on;
    }

    pub fn add_track(&mut self, kind: TrackKind) -> usize {
        self.tracks.push(TrackState {
            kind,
            timeline: Timeline::new(),
            eos: false,
            last_push: None,
            max_pts: None,
        });
        self.tracks.len() - 1
    }

    pub fn set_interval(&mut self, interval: u64) {
        self.interval = interval;
    }

    pub fn interval(&self) -> u64 {
        self.interval
    }

    pub fn set_max_pending(&mut self, max_pending: u64) {
        self.max_pending = max_pending;
    }

    /// How long a follower may deliver nothing before cuts stop waiting for it.
    pub fn set_stall_timeout(&mut self, timeout: Duration) {
        self.stall_timeout = timeout;
    }

    /// Presentation time of the start of the first clip.
    pub fn origin(&self) -> Option<i64> {
        self.origin
    }

    /// Start of the media not yet in a clip.
    pub fn pending_start(&self) -> Option<i64> {
        self.range.map(|r| r.time)
    }

    /// The samples of `track` the next cut will start with, in order: the
    /// pending media, while no cut waits for followers (`None` then, or
    /// before the first keyframe). A recording writes them early as parts
    /// of the fragment the cut will make.
    pub fn pending_samples(&self, track: usize) -> Option<Vec<&Sample>> {
        let range = self.range.filter(|_| self.cuts.is_empty() && !self.done)?;
        let t = self.tracks.get(track)?;
        let from = if Some(track) == self.leader {
            range.leader_index
        } else if t.kind == TrackKind::Video {
            t.first_keyframe()
        } else {
            t.timeline.first_at_or_after(range.time)
        };
        Some(t.timeline.range(from, t.timeline.end()).collect())
    }

    /// Whether follower `track` has brought its media up to `time` (or
    /// ended, or stalled): what a cut at `time` waits for.
    pub fn reached(&self, track: usize, time: i64, now: Instant) -> bool {
        self.tracks
            .get(track)
            .is_none_or(|t| self.follower_ready(t, time, now))
    }

    /// The leading track, once a sample chose it.
    pub fn leader_track(&self) -> Option<usize> {
        self.leader
    }

    /// Payload bytes held in memory.
    pub fn bytes(&self) -> usize {
        self.tracks.iter().map(|t| t.timeline.bytes()).sum()
    }

    /// Whether an on-demand request is waiting for its keyframe.
    pub fn request_pending(&self) -> Option<u64> {
        self.request.map(|r| r.0)
    }

    /// The `seq` the next cut will get. An on-demand request's clip is the
    /// next cut after the request, so this names it in advance.
    pub fn next_seq(&self) -> u64 {
        self.cut_count
    }

    /// The first sample of the media not yet in a clip (the leader keyframe
    /// the next clip starts with).
    pub fn pending_first_sample(&self) -> Option<&Sample> {
        let range = self.range?;
        self.tracks[self.leader?].timeline.get(range.leader_index)
    }

    /// Asks for a clip of the media since the last clip, ending at the next
    /// keyframe of the leader. Returns false if one is already waiting.
    pub fn request_clip(&mut self, id: u64) -> bool {
        if self.request.is_some() || self.done {
            return false;
        }
        let end = self.leader.map_or(0, |l| self.tracks[l].timeline.end());
        self.request = Some((id, end));
        true
    }

    fn leader(&mut self) -> usize {
        *self.leader.get_or_insert_with(|| {
            self.tracks
                .iter()
                .position(|t| t.kind == TrackKind::Video)
                .unwrap_or(0)
        })
    }

    /// Adds a sample; returns the clips that became ready.
    pub fn push(
        &mut self,
        track: usize,
        sample: Sample,
        now: Instant,
        notices: &mut Vec<Notice>,
    ) -> Vec<Selection> {
        if track >= self.tracks.len() || self.done {
            return Vec::new();
        }
        let leader = self.leader();
        self.started.get_or_insert(now);
        let t = &mut self.tracks[track];
        t.last_push = Some(now);
        t.max_pts = Some(t.max_pts.map_or(sample.pts, |m| m.max(sample.pts)));
        if track == leader {
            self.push_leader(sample, notices);
        } else {
            // Followers may still fill cuts that wait for them.
            let open_from = self.cuts.front().map(|c| c.start).or(self.range);
            // Video followers are cut by their keyframes in decode order:
            // a sample is never too late for them.
            let video = self.tracks[track].kind == TrackKind::Video;
            match open_from {
                Some(r) if !video && sample.pts_mid() < r.time => notices.push(Notice::Dropped {
                    track,
                    samples: 1,
                    reason: "arrived after its clip was cut",
                }),
                _ => {
                    let pts = sample.pts;
                    let t = &mut self.tracks[track];
                    t.timeline.push(sample);
                    if self.leader_stalled(now) {
                        self.follower_cut(pts);
                    }
                    let t = &mut self.tracks[track];
                    if self.range.is_none() && self.max_pending > 0 {
                        // No leader keyframe yet: keep a bounded lead-in.
                        let newest = t.max_pts.unwrap_or(0);
                        let keep = t
                            .timeline
                            .first_at_or_after(newest.saturating_sub(self.max_pending as i64));
                        let dropped = (keep - t.timeline.start()) as usize;
                        if dropped > 0 {
                            t.timeline.drop_before(keep);
                            notices.push(Notice::Dropped {
                                track,
                                samples: dropped,
                                reason: "older than max pending media and before the first keyframe",
                            });
                        }
                    }
                }
            }
        }
        let clips = self.finalize(now, false);
        notices.append(&mut self.notices);
        clips
    }

    /// Whether the leader ended or delivered nothing for the stall timeout.
    fn leader_stalled(&self, now: Instant) -> bool {
        let Some(l) = self.leader else { return false };
        let t = &self.tracks[l];
        t.eos
            || t.last_push
                .or(self.started)
                .is_some_and(|last| now.saturating_duration_since(last) >= self.stall_timeout)
    }

    /// With the leader stalled, a follower's sample at `pts` may end the
    /// pending media (at least a second of it) so that the followers keep
    /// being written; the leader resumes at its next keyframe.
    fn follower_cut(&mut self, pts: i64) {
        let Some(leader) = self.leader else { return };
        let end = Boundary {
            time: pts,
            leader_index: self.tracks[leader].timeline.end(),
        };
        let Some(range) = self.range else {
            // The leader never started: the followers start the media.
            self.leader_resync = true;
            self.start_range(end);
            return;
        };
        // An ended leader's media all goes before the cut: not before its
        // last frame has ended.
        let leader_end = self.tracks[leader]
            .timeline
            .range(range.leader_index, self.tracks[leader].timeline.end())
            .map(Sample::pts_end)
            .max();
        if self.tracks[leader].eos && leader_end.is_some_and(|e| pts < e) {
            return;
        }
        if !self.cuts.is_empty() || pts <= range.time {
            return;
        }
        let interval = (self.interval as i64).max(1_000_000_000);
        let trigger = match self.request.take() {
            Some((id, _)) => Trigger::OnDemand(id),
            None if self.interval > 0 && pts - range.time >= interval - 1_000_000 => {
                Trigger::Periodic
            }
            None => return,
        };
        let cut = self.new_cut(range, end, trigger);
        self.cuts.push_back(cut);
        self.range = Some(end);
        self.leader_resync = true;
    }

    /// The next cut of the series: `[start, end)` with the next `seq`.
    fn new_cut(&mut self, start: Boundary, end: Boundary, trigger: Trigger) -> Cut {
        let seq = self.next_seq();
        self.cut_count += 1;
        Cut {
            seq,
            start,
            end,
            trigger,
        }
    }

    fn push_leader(&mut self, sample: Sample, notices: &mut Vec<Notice>) {
        let leader = self.leader();
        let keyframe = sample.keyframe;
        let pts = sample.pts;
        match self.last_rap {
            _ if keyframe => {
                self.last_rap = Some(pts);
                self.rap_warned = false;
            }
            None => self.last_rap = Some(pts),
            Some(since) if !self.rap_warned && pts - since > NO_RANDOM_ACCESS_WARNING => {
                notices.push(Notice::NoRandomAccess {
                    since,
                    span: pts - since,
                });
                self.rap_warned = true;
            }
            Some(_) => {}
        }
        if self.leader_resync {
            if !keyframe {
                notices.push(Notice::Dropped {
                    track: leader,
                    samples: 1,
                    reason: "resuming after a stall, before a keyframe",
                });
                return;
            }
            self.leader_resync = false;
            self.fresh_start = Some(pts);
        }
        if let Some(start) = self.fresh_start {
            if !keyframe && pts < start {
                notices.push(Notice::Dropped {
                    track: leader,
                    samples: 1,
                    reason: "leading picture of the first keyframe (its references were not received)",
                });
                return;
            }
            if pts > start {
                self.fresh_start = None;
            }
        }
        let Some(range) = self.range else {
            if !keyframe {
                notices.push(Notice::Dropped {
                    track: leader,
                    samples: 1,
                    reason: "before the first keyframe",
                });
                return;
            }
            let index = self.tracks[leader].timeline.push(sample);
            self.tracks[leader].timeline.drop_before(index);
            self.fresh_start = Some(pts);
            self.start_range(Boundary {
                time: pts,
                leader_index: index,
            });
            return;
        };
        let index = self.tracks[leader].timeline.push(sample);
        if !keyframe || index == range.leader_index {
            self.bound_pending(notices);
            return;
        }
        let on_demand = self.request.filter(|&(_, asked_at)| index >= asked_at);
        let periodic = self.interval > 0
            && pts.saturating_sub(range.time) >= (self.interval as i64).saturating_sub(1_000_000);
        if on_demand.is_some() || periodic {
            let trigger = match on_demand {
                Some((id, _)) => {
                    self.request = None;
                    Trigger::OnDemand(id)
                }
                None => Trigger::Periodic,
            };
            let end = Boundary {
                time: pts,
                leader_index: index,
            };
            let cut = self.new_cut(range, end, trigger);
            self.cuts.push_back(cut);
            self.range = Some(end);
        } else {
            self.bound_pending(notices);
        }
    }

    fn start_range(&mut self, b: Boundary) {
        self.range = Some(b);
        self.origin.get_or_insert(b.time);
        for (i, t) in self.tracks.iter_mut().enumerate() {
            if Some(i) != self.leader {
                let keep = t.split_at(b.time);
                t.timeline.drop_before(keep);
            }
        }
    }

    /// Drops whole GOPs from the front of the pending range when it holds
    /// more than `max_pending` and no cut is waiting on it.
    fn bound_pending(&mut self, notices: &mut Vec<Notice>) {
        let (Some(range), Some(leader)) = (self.range, self.leader) else {
            return;
        };
        if self.max_pending == 0 || !self.cuts.is_empty() {
            return;
        }
        let Some(newest) = self.tracks[leader].max_pts else {
            return;
        };
        if newest.saturating_sub(range.time) <= self.max_pending as i64 {
            return;
        }
        let target = newest.saturating_sub(self.max_pending as i64);
        let tl = &self.tracks[leader].timeline;
        let new_start = tl
            .keyframe_at_or_after(target)
            .filter(|&k| k > range.leader_index)
            .or_else(|| {
                tl.keyframe_at_or_before(newest)
                    .filter(|&k| k > range.leader_index)
            });
        let Some(k) = new_start else {
            return;
        };
        let time = tl.get(k).map_or(range.time, |s| s.pts);
        let dropped = (k - tl.start()) as usize;
        self.tracks[leader].timeline.drop_before(k);
        notices.push(Notice::Dropped {
            track: leader,
            samples: dropped,
            reason: "older than the longest clip kept in memory",
        });
        for (i, t) in self.tracks.iter_mut().enumerate() {
            if i != leader {
                let keep = t.split_at(time);
                let n = (keep - t.timeline.start()) as usize;
                t.timeline.drop_before(keep);
                if n > 0 {
                    notices.push(Notice::Dropped {
                        track: i,
                        samples: n,
                        reason: "older than the longest clip kept in memory",
                    });
                }
            }
        }
        self.range = Some(Boundary {
            time,
            leader_index: k,
        });
    }

    /// Marks a track ended. When all have ended, the remainder becomes a
    /// last clip (trigger [`Trigger::Eos`], or the waiting on-demand request).
    pub fn set_eos(&mut self, track: usize, now: Instant) -> Vec<Selection> {
        if let Some(t) = self.tracks.get_mut(track) {
            t.eos = true;
        }
        if self.tracks.iter().all(|t| t.eos) {
            self.finish()
        } else {
            self.finalize(now, false)
        }
    }

    /// Whether every track has ended and the remainder was given out.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Gives out everything: pending cuts and the remainder.
    pub fn finish(&mut self) -> Vec<Selection> {
        if self.done {
            return Vec::new();
        }
        let out = self.remainder(Trigger::Eos);
        self.done = true;
        out
    }

    /// Gives out everything held (before a codec change or a flush: the
    /// clip's `trigger`, unless an on-demand request was waiting); the next
    /// clip starts at the next leader keyframe.
    pub fn flush(&mut self, trigger: Trigger) -> Vec<Selection> {
        if self.done {
            return Vec::new();
        }
        self.remainder(trigger)
    }

    fn remainder(&mut self, default: Trigger) -> Vec<Selection> {
        let mut out = self.finalize(Instant::now(), true);
        let (Some(range), Some(leader)) = (self.range.take(), self.leader) else {
            return out;
        };
        let end = self.tracks[leader].timeline.end();
        // The remainder ends where the longest track ends (audio may
        // outlast video).
        let end_time = self
            .tracks
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                let from = if i == leader {
                    range.leader_index
                } else {
                    t.timeline.first_at_or_after(range.time)
                };
                t.timeline.range(from, t.timeline.end())
            })
            .map(Sample::pts_end)
            .max();
        let Some(end_time) = end_time else {
            return out;
        };
        let trigger = match self.request.take() {
            Some((id, _)) => Trigger::OnDemand(id),
            None => default,
        };
        let end = Boundary {
            time: end_time,
            leader_index: end,
        };
        let cut = self.new_cut(range, end, trigger);
        out.push(self.take(cut, true));
        out
    }

    fn follower_ready(&self, t: &TrackState, time: i64, now: Instant) -> bool {
        t.eos
            || t.max_pts.is_some_and(|p| p >= time)
            || t.last_push
                .or(self.started)
                .is_none_or(|last| now.saturating_duration_since(last) >= self.stall_timeout)
    }

    fn finalize(&mut self, now: Instant, force: bool) -> Vec<Selection> {
        let mut out = Vec::new();
        let Some(leader) = self.leader else {
            return out;
        };
        while let Some(&cut) = self.cuts.front() {
            let ready = force
                || (self.leading_known(leader, cut.end)
                    && self
                        .tracks
                        .iter()
                        .enumerate()
                        .filter(|&(i, _)| i != leader)
                        .all(|(_, t)| self.follower_ready(t, cut.end.time, now)));
            if !ready {
                break;
            }
            self.cuts.pop_front();
            out.push(self.take(cut, false));
        }
        out
    }

    /// Whether the leading pictures of the keyframe that ends `end` have all
    /// arrived (a later picture presented after it has), in self-contained
    /// mode; always in the other.
    fn leading_known(&self, leader: usize, end: Boundary) -> bool {
        if !self.self_contained {
            return true;
        }
        let t = &self.tracks[leader];
        t.eos
            || t.timeline.get(end.leader_index).is_none()
            || t.timeline
                .range(end.leader_index + 1, t.timeline.end())
                .any(|s| s.pts > end.time)
    }

    /// Index after the last leading picture of the keyframe at `end` (the
    /// first later picture presented after it); `end` itself when it has
    /// none.
    fn leading_end(tl: &Timeline, end: Boundary) -> u64 {
        let Some(k) = tl.get(end.leader_index) else {
            return end.leader_index;
        };
        let after = tl
            .range(end.leader_index + 1, tl.end())
            .position(|s| !s.leads(k))
            .map_or(tl.end(), |n| end.leader_index + 1 + n as u64);
        if after == end.leader_index + 1 {
            end.leader_index
        } else {
            after
        }
    }

    /// Moves the samples of `cut` out of the timelines.
    fn take(&mut self, cut: Cut, to_end: bool) -> Selection {
        let leader = self.leader.unwrap_or(0);
        let self_contained = self.self_contained;
        let mut tracks = Vec::new();
        for (i, t) in self.tracks.iter_mut().enumerate() {
            if i == leader {
                let tl = &mut t.timeline;
                // Decode order from the start keyframe, without its leading
                // pictures (the clip before presents them, or they were
                // never decodable); self-contained clips run on to the end
                // keyframe's last leading picture.
                let to = if self_contained && !to_end {
                    Self::leading_end(tl, cut.end)
                } else {
                    cut.end.leader_index
                };
                let start = cut.start.time;
                let samples: Vec<Sample> = tl
                    .range(cut.start.leader_index, to)
                    .enumerate()
                    .filter(|&(n, s)| !self_contained || n == 0 || s.pts >= start)
                    .map(|(_, s)| s.clone())
                    .collect();
                let next_dts = tl.get(to).map(|s| s.dts);
                tl.drop_before(cut.end.leader_index);
                if !samples.is_empty() {
                    tracks.push(TrackSelection {
                        track: i,
                        samples,
                        next_dts,
                    });
                }
                continue;
            }
            let from = if t.kind == TrackKind::Video {
                t.first_keyframe()
            } else {
                t.timeline.first_at_or_after(cut.start.time)
            };
            let to = if to_end {
                t.timeline.end()
            } else {
                t.split_at(cut.end.time)
            };
            if t.kind == TrackKind::Video && !to_end {
                let at = t.timeline.get(to).map(|s| s.pts);
                if at.is_none_or(|pts| (pts - cut.end.time).abs() > ALIGN_TOLERANCE) {
                    self.notices.push(Notice::Misaligned {
                        track: i,
                        at: cut.end.time,
                    });
                }
            }
            let tl = &mut t.timeline;
            let samples: Vec<Sample> = tl.range(from, to).cloned().collect();
            let next_dts = tl.get(to).map(|s| s.dts);
            tl.drop_before(to);
            if !samples.is_empty() {
                tracks.push(TrackSelection {
                    track: i,
                    samples,
                    next_dts,
                });
            }
        }
        Selection {
            seq: cut.seq,
            trigger: cut.trigger,
            start: cut.start.time,
            end: cut.end.time,
            tracks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const MS: i64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    fn sample(pts: i64, dts: i64, keyframe: bool) -> Sample {
        Sample {
            pts,
            dts,
            duration: 0,
            keyframe,
            access: crate::core::nal::Access::Unknown,
            data: Bytes::from(vec![1u8; 100]),
        }
    }

    /// Video at 25 fps with a keyframe every `gop` frames and two B-frames;
    /// audio frames of 20 ms. Returns frames in decode order per track.
    fn feed(c: &mut Cutter, seconds: i64, gop: i64, clips: &mut Vec<Selection>) {
        let v = 0;
        let a = 1;
        let now = Instant::now();
        let mut n = Vec::new();
        let frames = seconds * 25;
        // Decode order with B-frames: I P B B P B B ... within each GOP.
        let mut order = Vec::new();
        let mut g = 0;
        while g < frames {
            let end = (g + gop).min(frames);
            order.push(g);
            let mut i = g + 1;
            while i < end {
                let p = (i + 2).min(end - 1);
                order.push(p);
                for b in i..p {
                    order.push(b);
                }
                i = p + 1;
            }
            g = end;
        }
        let mut audio_t = 0;
        for (k, &f) in order.iter().enumerate() {
            let pts = f * 40 * MS;
            let dts = (k as i64 - 1) * 40 * MS;
            clips.extend(c.push(v, sample(pts, dts, f % gop == 0), now, &mut n));
            while audio_t <= dts + 40 * MS {
                clips.extend(c.push(a, sample(audio_t, audio_t, true), now, &mut n));
                audio_t += 20 * MS;
            }
        }
        clips.extend(c.set_eos(v, now));
        clips.extend(c.set_eos(a, now));
    }

    fn cutter(interval: u64) -> Cutter {
        let mut c = Cutter::new(interval, 0);
        c.add_track(TrackKind::Video);
        c.add_track(TrackKind::Audio);
        c
    }

    /// Video in decode order (I P B B ..., 25 fps) with a keyframe where
    /// `key(frame)` says: (pts, dts, keyframe) per sample.
    fn gop_order(frames: i64, key: impl Fn(i64) -> bool) -> Vec<(i64, i64, bool)> {
        let mut order = Vec::new();
        let mut g = 0;
        while g < frames {
            let mut end = g + 1;
            while end < frames && !key(end) {
                end += 1;
            }
            order.push(g);
            let mut i = g + 1;
            while i < end {
                let p = (i + 2).min(end - 1);
                order.push(p);
                order.extend(i..p);
                i = p + 1;
            }
            g = end;
        }
        order
            .iter()
            .enumerate()
            .map(|(k, &f)| (f * 40 * MS, (k as i64 - 1) * 40 * MS, key(f)))
            .collect()
    }

    #[test]
    fn renditions_are_cut_at_the_same_keyframes() {
        // Three renditions of one picture: the second keys with the leader,
        // the third also at scene cuts of its own (frames 30 and 80).
        let mut c = Cutter::new(2 * S, 0);
        for _ in 0..3 {
            c.add_track(TrackKind::Video);
        }
        let now = Instant::now();
        let mut n = Vec::new();
        let mut clips = Vec::new();
        let lead = gop_order(225, |f| f % 50 == 0);
        let extra = gop_order(225, |f| f % 50 == 0 || f == 30 || f == 80);
        // The followers run a few frames behind the leader.
        for k in 0..lead.len() + 5 {
            if let Some(&(pts, dts, key)) = lead.get(k) {
                clips.extend(c.push(0, sample(pts, dts, key), now, &mut n));
            }
            if let Some(&(pts, dts, key)) = k.checked_sub(5).and_then(|k| lead.get(k)) {
                clips.extend(c.push(1, sample(pts, dts, key), now, &mut n));
            }
            if let Some(&(pts, dts, key)) = k.checked_sub(3).and_then(|k| extra.get(k)) {
                clips.extend(c.push(2, sample(pts, dts, key), now, &mut n));
            }
        }
        for t in 0..3 {
            clips.extend(c.set_eos(t, now));
        }
        assert!(
            !n.iter().any(|n| matches!(n, Notice::Misaligned { .. })),
            "{n:?}"
        );
        let starts: Vec<i64> = clips.iter().map(|c| c.start / MS).collect();
        assert_eq!(starts, vec![0, 2000, 4000, 6000, 8000]);
        for clip in &clips {
            let pts = |t: usize| -> Vec<i64> {
                let mut v: Vec<i64> = clip.tracks[t].samples.iter().map(|s| s.pts).collect();
                v.sort();
                v
            };
            // The same frames in every rendition, each starting with its
            // keyframe at the cut.
            assert_eq!(pts(0), pts(1));
            assert_eq!(pts(0), pts(2));
            for t in 0..3 {
                let first = &clip.tracks[t].samples[0];
                assert!(first.keyframe && first.pts == clip.start);
            }
        }
        assert_eq!(clips.iter().map(|c| c.count(2)).sum::<usize>(), 225);
    }

    #[test]
    fn a_rendition_without_the_keyframe_is_cut_at_its_own_and_reported() {
        let mut c = Cutter::new(2 * S, 0);
        c.add_track(TrackKind::Video);
        c.add_track(TrackKind::Video);
        let now = Instant::now();
        let mut n = Vec::new();
        let mut clips = Vec::new();
        // The follower keys every 60 frames, the leader every 50.
        let lead = gop_order(250, |f| f % 50 == 0);
        let own = gop_order(250, |f| f % 60 == 0);
        for k in 0..lead.len() {
            let (pts, dts, key) = lead[k];
            clips.extend(c.push(0, sample(pts, dts, key), now, &mut n));
            let (pts, dts, key) = own[k];
            clips.extend(c.push(1, sample(pts, dts, key), now, &mut n));
        }
        clips.extend(c.set_eos(0, now));
        clips.extend(c.set_eos(1, now));
        let misaligned: Vec<_> = n
            .iter()
            .filter(|n| matches!(n, Notice::Misaligned { track: 1, .. }))
            .collect();
        assert_eq!(misaligned.len(), 4, "every cut off its keyframes: {n:?}");
        assert!(misaligned[0].describe().is_err(), "a warning");
        // Every follower frame exactly once, each clip of it starting at a
        // keyframe of its own, in decode order.
        let mut all = Vec::new();
        for clip in &clips {
            if let Some(t) = clip.tracks.iter().find(|t| t.track == 1) {
                assert!(t.samples[0].keyframe);
                all.extend(t.samples.iter().map(|s| s.dts));
            }
        }
        assert_eq!(all.len(), 250);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn periodic_clips_are_contiguous_and_keyframe_aligned() {
        let mut c = cutter(2 * S);
        let mut clips = Vec::new();
        feed(&mut c, 9, 25, &mut clips);
        assert!(c.is_done());
        // Cuts at 2, 4, 6, 8 s and the remainder 8..9 s.
        let starts: Vec<i64> = clips.iter().map(|c| c.start / MS).collect();
        assert_eq!(starts, vec![0, 2000, 4000, 6000, 8000]);
        let triggers: Vec<Trigger> = clips.iter().map(|c| c.trigger).collect();
        assert_eq!(&triggers[..4], &[Trigger::Periodic; 4]);
        assert_eq!(triggers[4], Trigger::Eos);
        assert_eq!(clips.iter().map(|c| c.count(0)).sum::<usize>(), 225);
        for (i, clip) in clips.iter().enumerate() {
            let v = &clip.tracks[0].samples;
            assert!(v[0].keyframe);
            assert_eq!(v[0].pts, clip.start);
            // The last clip ends at the last frame's end, here its pts
            // (the test samples have no duration).
            assert!(v.iter().all(|s| s.pts >= clip.start && s.pts <= clip.end));
            assert!(i + 1 == clips.len() || v.iter().all(|s| s.pts < clip.end));
            let a = &clip.tracks[1].samples;
            assert_eq!(a[0].pts, clip.start, "audio starts with video");
            assert!(a.iter().all(|s| s.pts >= clip.start));
            // The end-of-stream clip keeps the audio that outlasts video.
            assert!(i + 1 == clips.len() || a.iter().all(|s| s.pts < clip.end));
            if i + 1 < clips.len() {
                assert_eq!(clip.end, clips[i + 1].start);
                assert_eq!(
                    clip.tracks[0].next_dts,
                    Some(clips[i + 1].tracks[0].samples[0].dts)
                );
            }
        }
        // Every audio frame exactly once.
        let mut audio: Vec<i64> = clips
            .iter()
            .flat_map(|c| c.tracks[1].samples.iter().map(|s| s.pts))
            .collect();
        let total = audio.len();
        audio.dedup();
        assert_eq!(audio.len(), total);
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn cuts_wait_for_a_late_follower() {
        let mut c = cutter(S);
        let now = Instant::now();
        let mut n = Vec::new();
        let mut clips = Vec::new();
        for f in 0..50 {
            clips.extend(c.push(
                0,
                sample(f * 40 * MS, f * 40 * MS, f % 25 == 0),
                now,
                &mut n,
            ));
        }
        clips.extend(c.push(1, sample(0, 0, true), now, &mut n));
        assert!(clips.is_empty(), "audio has not reached the cut at 1 s");
        for t in 1..60 {
            clips.extend(c.push(1, sample(t * 20 * MS, t * 20 * MS, true), now, &mut n));
        }
        assert_eq!(clips.len(), 1);
        assert_eq!(clips[0].count(1), 50);
        // A follower that stops delivering stops holding cuts back.
        for f in 50..75 {
            clips.extend(c.push(
                0,
                sample(f * 40 * MS, f * 40 * MS, f % 25 == 0),
                now,
                &mut n,
            ));
        }
        assert_eq!(clips.len(), 1);
        clips.extend(c.push(
            0,
            sample(75 * 40 * MS, 75 * 40 * MS, false),
            now + Duration::from_secs(4),
            &mut n,
        ));
        assert_eq!(clips.len(), 2);
        assert!(n.is_empty(), "{n:?}");
    }

    #[test]
    fn on_demand_cuts_at_next_keyframe_and_keeps_series_contiguous() {
        let mut c = cutter(0);
        let now = Instant::now();
        let mut n = Vec::new();
        let mut clips = Vec::new();
        for f in 0..30 {
            clips.extend(c.push(
                0,
                sample(f * 40 * MS, f * 40 * MS, f % 10 == 0),
                now,
                &mut n,
            ));
        }
        assert!(c.request_clip(7));
        assert!(!c.request_clip(8), "one request at a time");
        assert!(clips.is_empty());
        for f in 30..45 {
            clips.extend(c.push(
                0,
                sample(f * 40 * MS, f * 40 * MS, f % 10 == 0),
                now,
                &mut n,
            ));
        }
        // Audio-less video: the cut is at frame 30's keyframe.
        let clips2 = c.set_eos(1, now);
        clips.extend(clips2);
        assert_eq!(clips.len(), 1);
        assert_eq!(clips[0].trigger, Trigger::OnDemand(7));
        assert_eq!(clips[0].count(0), 30);
        clips.extend(c.set_eos(0, now));
        assert_eq!(clips.len(), 2);
        assert_eq!(clips[1].trigger, Trigger::Eos);
        assert_eq!(clips[1].start, 30 * 40 * MS);
        assert_eq!(clips[1].count(0), 15);
    }

    #[test]
    fn drops_before_first_keyframe_and_late_samples() {
        let mut c = cutter(S);
        let now = Instant::now();
        let mut n = Vec::new();
        c.push(0, sample(0, 0, false), now, &mut n);
        assert_eq!(n.len(), 1);
        // Audio before the first keyframe is trimmed when video starts.
        for t in 0..10 {
            c.push(1, sample(t * 20 * MS, t * 20 * MS, true), now, &mut n);
        }
        c.push(0, sample(100 * MS, 100 * MS, true), now, &mut n);
        assert_eq!(c.pending_start(), Some(100 * MS));
        assert_eq!(c.origin(), Some(100 * MS));
        c.push(1, sample(40 * MS, 40 * MS, true), now, &mut n);
        assert!(matches!(n.last(), Some(Notice::Dropped { track: 1, .. })));
        let clips = c.finish();
        assert_eq!(clips.len(), 1);
        assert_eq!(clips[0].count(1), 5, "audio 100..180 ms");
    }

    #[test]
    fn pending_media_is_bounded_by_whole_gops() {
        let mut c = Cutter::new(0, 2 * S);
        c.add_track(TrackKind::Video);
        let now = Instant::now();
        let mut n = Vec::new();
        for f in 0..250 {
            c.push(
                0,
                sample(f * 40 * MS, f * 40 * MS, f % 25 == 0),
                now,
                &mut n,
            );
        }
        let start = c.pending_start().unwrap();
        assert_eq!(start % (S as i64), 0, "starts on a keyframe");
        assert!(249 * 40 * MS - start <= 2 * S as i64);
        assert!(c.bytes() <= 76 * 100);
        assert!(
            n.iter()
                .all(|x| matches!(x, Notice::Dropped { track: 0, .. }))
        );
    }

    #[test]
    fn flush_gives_out_everything_and_restarts_at_next_keyframe() {
        let mut c = cutter(10 * S);
        let now = Instant::now();
        let mut n = Vec::new();
        for f in 0..30 {
            c.push(
                0,
                sample(f * 40 * MS, f * 40 * MS, f % 10 == 0),
                now,
                &mut n,
            );
            c.push(1, sample(f * 40 * MS, f * 40 * MS, true), now, &mut n);
        }
        assert_eq!(c.next_seq(), 0);
        assert_eq!(c.pending_first_sample().map(|s| s.pts), Some(0));
        let clips = c.flush(Trigger::CapsChange);
        assert_eq!(clips.len(), 1);
        assert_eq!(clips[0].trigger, Trigger::CapsChange);
        assert_eq!((clips[0].count(0), clips[0].count(1)), (30, 30));
        assert_eq!(c.next_seq(), 1);
        assert_eq!(c.pending_start(), None);
        c.push(0, sample(30 * 40 * MS, 30 * 40 * MS, false), now, &mut n);
        assert!(matches!(n.last(), Some(Notice::Dropped { track: 0, .. })));
        c.push(0, sample(31 * 40 * MS, 31 * 40 * MS, true), now, &mut n);
        assert_eq!(c.pending_start(), Some(31 * 40 * MS));
        let clips = c.finish();
        assert_eq!(clips[0].seq, 1);
        assert!(c.is_done());
    }

    #[test]
    fn followers_keep_being_cut_when_the_leader_stalls() {
        let mut c = cutter(S);
        let t0 = Instant::now();
        let mut n = Vec::new();
        let mut clips = Vec::new();
        let at = |ms: i64| t0 + Duration::from_millis(ms.max(0) as u64);
        // Video and audio for 2 s, then audio alone for 6 s (in real time).
        for f in 0..50 {
            clips.extend(c.push(
                0,
                sample(f * 40 * MS, f * 40 * MS, f % 25 == 0),
                at(f * 40),
                &mut n,
            ));
            clips.extend(c.push(
                1,
                sample(f * 40 * MS, f * 40 * MS, true),
                at(f * 40),
                &mut n,
            ));
        }
        for k in 50..200 {
            clips.extend(c.push(
                1,
                sample(k * 40 * MS, k * 40 * MS, true),
                at(k * 40),
                &mut n,
            ));
        }
        // The 1 s cut at the keyframe, then audio-only cuts every second
        // once the video has been silent for 3 s.
        assert!(clips.len() >= 4, "{}", clips.len());
        assert_eq!(clips[0].count(0), 25);
        let video: usize = clips.iter().map(|c| c.count(0)).sum();
        assert_eq!(video, 50, "the stalled GOP is written too");
        for w in clips.windows(2) {
            assert_eq!(w[0].end, w[1].start, "contiguous");
        }
        // Video resumes: non-keyframes are dropped until a keyframe.
        n.clear();
        c.push(0, sample(8000 * MS, 8000 * MS, false), at(8000), &mut n);
        assert!(matches!(n.last(), Some(Notice::Dropped { track: 0, .. })));
        c.push(0, sample(8040 * MS, 8040 * MS, true), at(8040), &mut n);
        let rest = c.finish();
        let first_video = rest
            .iter()
            .flat_map(|c| c.tracks.iter())
            .find(|t| t.track == 0);
        assert!(first_video.is_some_and(|t| t.samples[0].keyframe));
    }

    #[test]
    fn audio_only_stream_cuts_anywhere() {
        let mut c = Cutter::new(S, 0);
        c.add_track(TrackKind::Audio);
        let now = Instant::now();
        let mut n = Vec::new();
        let mut clips = Vec::new();
        for t in 0..120 {
            clips.extend(c.push(0, sample(t * 20 * MS, t * 20 * MS, true), now, &mut n));
        }
        clips.extend(c.set_eos(0, now));
        assert_eq!(
            clips.iter().map(|c| c.count(0)).collect::<Vec<_>>(),
            vec![50, 50, 20]
        );
    }

    /// Open-GOP video at 25 fps, a keyframe every 25 frames: after each
    /// non-first I-frame come its two leading B-frames (presented before
    /// it, referring to the last P of the previous GOP). Frame numbers in
    /// decode order.
    fn open_gop_order(frames: i64) -> Vec<i64> {
        let mut order = Vec::new();
        let mut g = 0;
        while g < frames {
            order.push(g);
            if g > 0 {
                order.extend([g - 2, g - 1]);
            }
            let last = if g + 25 >= frames { frames - 1 } else { g + 22 };
            let mut p = g;
            while p + 3 <= last {
                order.extend([p + 3, p + 1, p + 2]);
                p += 3;
            }
            for f in p + 1..=last {
                order.push(f);
            }
            g += 25;
        }
        order
    }

    /// Anchors (I, P) and the pictures each frame of `open_gop_order`
    /// refers to: a P its previous anchor, a B both anchors around it.
    fn references(f: i64, order: &[i64]) -> Vec<i64> {
        let pos = |x: i64| order.iter().position(|&y| y == x).unwrap();
        if f % 25 == 0 {
            return Vec::new();
        }
        let anchors: Vec<i64> = order
            .iter()
            .copied()
            .filter(|&x| {
                let i = pos(x);
                // An anchor is decoded before every frame it precedes.
                x % 25 == 0 || order[i + 1..].iter().any(|&y| y < x)
            })
            .collect();
        let before = anchors.iter().copied().filter(|&a| a < f).max();
        let after = anchors.iter().copied().filter(|&a| a > f).min();
        let is_b = after.is_some_and(|a| pos(a) < pos(f));
        let mut refs: Vec<i64> = before.into_iter().collect();
        if is_b {
            refs.extend(after);
        }
        refs
    }

    fn push_open_gop(c: &mut Cutter, frames: i64, clips: &mut Vec<Selection>) -> Vec<i64> {
        let order = open_gop_order(frames);
        let now = Instant::now();
        let mut n = Vec::new();
        let mut audio_t = 0;
        for (k, &f) in order.iter().enumerate() {
            let pts = f * 40 * MS + 80 * MS;
            let dts = k as i64 * 40 * MS;
            clips.extend(c.push(0, sample(pts, dts, f % 25 == 0), now, &mut n));
            while audio_t <= dts {
                clips.extend(c.push(1, sample(audio_t, audio_t, true), now, &mut n));
                audio_t += 20 * MS;
            }
        }
        clips.extend(c.set_eos(0, now));
        clips.extend(c.set_eos(1, now));
        order
    }

    #[test]
    fn self_contained_clips_present_every_open_gop_frame_once_and_decode() {
        let mut c = cutter(2 * S);
        c.set_self_contained(true);
        let mut clips = Vec::new();
        let order = push_open_gop(&mut c, 200, &mut clips);
        assert_eq!(clips.len(), 4);
        let frame = |s: &Sample| (s.pts - 80 * MS) / (40 * MS);
        let mut shown = Vec::new();
        for (i, clip) in clips.iter().enumerate() {
            let v = &clip.tracks[0].samples;
            assert!(v[0].keyframe && v[0].pts == clip.start);
            let last = i + 1 == clips.len();
            let held: Vec<i64> = v.iter().map(frame).collect();
            // Presented: [start, end); the end keyframe is there only as a
            // reference of the leading pictures before it.
            shown.extend(
                v.iter()
                    .filter(|s| s.pts >= clip.start && (last || s.pts < clip.end))
                    .map(frame),
            );
            if !last {
                let k = held.iter().position(|&f| f * 40 * MS + 80 * MS == clip.end);
                assert!(k.is_some(), "clip {i} lacks its end keyframe");
                assert_eq!(held.len() - k.unwrap(), 3, "keyframe and two leading B");
            }
            for &f in &held {
                for r in references(f, &order) {
                    assert!(
                        held.contains(&r),
                        "clip {i}: frame {f} refers to {r}, not in it"
                    );
                }
            }
            // Decode order is kept.
            let pos: Vec<usize> = held
                .iter()
                .map(|&f| order.iter().position(|&y| y == f).unwrap())
                .collect();
            assert!(pos.windows(2).all(|w| w[0] < w[1]));
            // Audio covers the same presentation window.
            let a = &clip.tracks[1].samples;
            assert!(
                a.iter()
                    .all(|s| s.pts >= clip.start && (last || s.pts < clip.end))
            );
        }
        shown.sort();
        assert_eq!(shown, (0..200).collect::<Vec<_>>(), "every frame once");
    }

    #[test]
    fn contiguous_cuts_keep_decode_order_on_open_gops() {
        let mut c = cutter(1);
        let mut clips = Vec::new();
        let order = push_open_gop(&mut c, 100, &mut clips);
        let frame = |s: &Sample| (s.pts - 80 * MS) / (40 * MS);
        let all: Vec<i64> = clips
            .iter()
            .flat_map(|c| c.tracks[0].samples.iter().map(frame))
            .collect();
        assert_eq!(all, order);
        assert!(clips.iter().all(|c| c.tracks[0].samples[0].keyframe));
    }

    #[test]
    fn leading_pictures_of_the_first_keyframe_are_dropped() {
        let mut c = cutter(2 * S);
        c.set_self_contained(true);
        let now = Instant::now();
        let mut n = Vec::new();
        let mut clips = Vec::new();
        // Joined mid-stream: the I at 25 first, then its leading B's.
        for (k, f) in [25i64, 23, 24, 28, 26, 27].into_iter().enumerate() {
            let key = f == 25;
            clips.extend(c.push(0, sample(f * 40 * MS, k as i64 * 40 * MS, key), now, &mut n));
        }
        clips.extend(c.set_eos(0, now));
        clips.extend(c.set_eos(1, now));
        let v: Vec<i64> = clips[0].tracks[0]
            .samples
            .iter()
            .map(|s| s.pts / (40 * MS))
            .collect();
        assert_eq!(v, vec![25, 28, 26, 27]);
        assert!(n.iter().any(|x| matches!(x, Notice::Dropped { samples: 1, reason, .. } if reason.starts_with("leading"))));
    }

    #[test]
    fn a_leader_without_random_access_is_reported_once_per_stretch() {
        let mut c = cutter(1);
        let mut notices = Vec::new();
        let now = Instant::now();
        const F: i64 = 1_000_000_000 / 25;
        let push = |c: &mut Cutter, i: i64, key: bool, notices: &mut Vec<Notice>| {
            c.push(0, sample(i * F, i * F, key), now, notices);
        };
        // A keyframe, then 20 s of inter pictures (intra refresh), then a
        // keyframe and another 20 s.
        push(&mut c, 0, true, &mut notices);
        for i in 1..500 {
            push(&mut c, i, false, &mut notices);
        }
        let reported: Vec<_> = notices
            .iter()
            .filter_map(|n| match n {
                Notice::NoRandomAccess { since, span } => Some((*since, *span)),
                _ => None,
            })
            .collect();
        assert_eq!(reported, vec![(0, 376 * F)]);
        notices.clear();
        push(&mut c, 500, true, &mut notices);
        for i in 501..1000 {
            push(&mut c, i, false, &mut notices);
        }
        let again = notices
            .iter()
            .filter(|n| matches!(n, Notice::NoRandomAccess { since, .. } if *since == 500 * F))
            .count();
        assert_eq!(again, 1);
    }
}
