// SPDX-License-Identifier: MPL-2.0
//! Media playlists (through m3u8-rs): the live sliding window and the replay
//! playlist (EVENT while live, VOD with ENDLIST once ended).

use std::collections::VecDeque;

use m3u8_rs::{MediaPlaylist, MediaPlaylistType, MediaSegment};

use super::markers::{Marker, daterange_tags};

/// A session's replay playlist (EVENT while live, VOD once ended).
pub const REPLAY: &str = "replay.m3u8";
/// A session's live playlist (a sliding window).
pub const LIVE: &str = "live.m3u8";

/// One complete segment of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Media sequence number (the n of `segment-n.m4s`).
    pub sequence: u64,
    pub uri: String,
    /// Recording time of its start and its duration, ns.
    pub start: u64,
    pub duration: u64,
    /// An EXT-X-DISCONTINUITY precedes it.
    pub discontinuity: bool,
    /// The init segment it needs (EXT-X-MAP).
    pub map: String,
    /// Wall clock of its start (EXT-X-PROGRAM-DATE-TIME).
    pub pdt: Option<chrono::DateTime<chrono::Utc>>,
    pub bytes: u64,
}

impl Segment {
    pub fn end(&self) -> u64 {
        self.start + self.duration
    }
}

/// Which playlist to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The last `window` segments (all when 0).
    Live { window: usize },
    /// Every segment still stored.
    Replay,
}

/// How a playlist is rendered, besides its segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub target_duration: u32,
    /// The discontinuities of segments that were deleted before the first
    /// one (EXT-X-DISCONTINUITY-SEQUENCE).
    pub removed_discontinuities: u64,
    /// No more segments will be added.
    pub complete: bool,
    /// The replay lost segments at its front (then it can't be an EVENT
    /// playlist).
    pub trimmed: bool,
    /// EXT-X-PROGRAM-DATE-TIME on every segment (also written, whatever
    /// this says, when markers need them: EXT-X-DATERANGE dates are on
    /// their axis).
    pub pdt: bool,
}

/// Renders a playlist of `segments` (ascending sequence) with the
/// EXT-X-DATERANGE tags of the `markers` it shows.
pub fn render(segments: &[Segment], kind: Kind, o: &Options, markers: &[Marker]) -> String {
    let shown = match kind {
        Kind::Live { window } if window > 0 && segments.len() > window => {
            &segments[segments.len() - window..]
        }
        _ => segments,
    };
    let hidden = &segments[..segments.len() - shown.len()];
    let spans: Vec<(u64, u64)> = shown.iter().map(|s| (s.start, s.end())).collect();
    let tags = daterange_tags(markers, &spans, true, |t| utc_at(segments, t));
    let pdt = shows_pdt(o, markers, shown);
    let mut playlist = header(shown, hidden, kind, o);
    playlist.segments = media_segments(shown, tags, pdt, None);
    playlist.end_list = o.complete;
    write(&playlist)
}

/// Whether the segments carry EXT-X-PROGRAM-DATE-TIME: when asked, and
/// whenever a marker shown needs them (EXT-X-DATERANGE dates are on their
/// axis).
fn shows_pdt(o: &Options, markers: &[Marker], shown: &[Segment]) -> bool {
    o.pdt
        || markers
            .iter()
            .any(|m| m.end() >= shown.first().map_or(0, |s| s.start))
}

/// The playlist's tags before its segments (no segments, no ENDLIST).
fn header(shown: &[Segment], hidden: &[Segment], kind: Kind, o: &Options) -> MediaPlaylist {
    let discontinuity_sequence =
        o.removed_discontinuities + hidden.iter().filter(|s| s.discontinuity).count() as u64;
    let max_extinf = shown
        .iter()
        .map(|s| (s.duration as f64 / 1e9).round() as u64)
        .max()
        .unwrap_or(0);
    let playlist_type = match kind {
        Kind::Replay if o.complete => Some(MediaPlaylistType::Vod),
        Kind::Replay if !o.trimmed => Some(MediaPlaylistType::Event),
        _ => None,
    };
    MediaPlaylist {
        version: Some(7),
        target_duration: u64::from(o.target_duration).max(max_extinf).max(1),
        media_sequence: shown.first().map_or(0, |s| s.sequence),
        discontinuity_sequence,
        playlist_type,
        independent_segments: true,
        ..Default::default()
    }
}

/// The m3u8-rs entries of `shown` with their `tags`; `last_map` is the
/// init segment of the entry before them (none: the first one names its
/// own).
fn media_segments<'a>(
    shown: &'a [Segment],
    tags: Vec<Vec<m3u8_rs::ExtTag>>,
    pdt: bool,
    mut last_map: Option<&'a str>,
) -> Vec<MediaSegment> {
    let mut tags = tags.into_iter();
    let mut out = Vec::with_capacity(shown.len());
    for s in shown {
        let map = (last_map != Some(s.map.as_str())).then(|| m3u8_rs::Map {
            uri: s.map.clone(),
            ..Default::default()
        });
        last_map = Some(&s.map);
        out.push(MediaSegment {
            uri: s.uri.clone(),
            duration: (s.duration as f64 / 1e9) as f32,
            discontinuity: s.discontinuity,
            map,
            program_date_time: if pdt {
                s.pdt.map(|t| t.fixed_offset())
            } else {
                None
            },
            unknown_tags: tags.next().unwrap_or_default(),
            ..Default::default()
        });
    }
    out
}

fn write(playlist: &MediaPlaylist) -> String {
    let mut out = Vec::new();
    playlist
        .write_to(&mut out)
        .expect("writing to a Vec does not fail");
    String::from_utf8(out).expect("m3u8-rs writes UTF-8")
}

/// The replay playlist of a session being recorded, rendered again at
/// every segment: the lines of the segments rendered before are kept, so
/// that a new segment costs the rendering of its own lines, not of the
/// whole playlist, which grows with the session (a day of 6 s segments
/// is 14,400 entries, about 1.1 MB). The text is exactly what [`render`]
/// gives for [`Kind::Replay`]. What would change lines already rendered
/// renders everything again: a marker added or ended, a marker shown that
/// starts at or past a new segment, segments trimmed from the front while
/// a marker is shown, another PDT choice.
#[derive(Debug, Default)]
pub struct ReplayText {
    /// The first segment's sequence number and lines (the first entry
    /// always names its init segment, so it is rendered again when the
    /// front is trimmed).
    first: Option<(u64, String)>,
    /// The lines of the segments after it; the kept ones start at `from`.
    rest: String,
    from: usize,
    /// Those segments' sequence numbers and where their lines end in
    /// `rest`.
    entries: VecDeque<(u64, usize)>,
    /// What the lines were rendered with.
    pdt: bool,
    markers: Vec<Marker>,
    /// A segment rendered has a program date time (the anchor of every
    /// marker's date).
    has_pdt: bool,
}

impl ReplayText {
    /// The replay playlist of `segments` (what `render(segments,
    /// Kind::Replay, o, markers)` gives).
    pub fn render(&mut self, segments: &[Segment], o: &Options, markers: &[Marker]) -> String {
        self.update(segments, o, markers).to_string()
    }

    /// Brings the kept lines up to `segments` and gives the playlist in
    /// pieces, to be written without copying the kept lines.
    pub fn update(
        &mut self,
        segments: &[Segment],
        o: &Options,
        markers: &[Marker],
    ) -> ReplayLines<'_> {
        let pdt = shows_pdt(o, markers, segments);
        if !self.keeps(segments, pdt, markers) {
            *self = ReplayText {
                pdt,
                markers: markers.to_vec(),
                ..Default::default()
            };
        }
        let head = header(segments, &[], Kind::Replay, o);
        let Some(s0) = segments.first() else {
            return ReplayLines {
                head: write(&head),
                first: "",
                rest: "",
                complete: o.complete,
            };
        };
        // Segments that retention deleted: their lines go, and the new
        // first one is rendered again (it names its init segment).
        if self.first.as_ref().is_some_and(|(q, _)| *q != s0.sequence) {
            self.first = None;
            while self.entries.front().is_some_and(|e| e.0 <= s0.sequence) {
                self.from = self.entries.pop_front().expect("checked").1;
            }
        }
        // Lines are rendered after a header of their own, cut off again.
        let empty = write(&header(&[], &[], Kind::Replay, o));
        let lines = |shown: &[Segment], tags, last_map| {
            let mut p = header(&[], &[], Kind::Replay, o);
            p.segments = media_segments(shown, tags, pdt, last_map);
            let mut text = write(&p);
            text.drain(..empty.len());
            text
        };
        if self.first.is_none() {
            if self.entries.is_empty() {
                // Everything, with every marker shown.
                let spans: Vec<(u64, u64)> = segments.iter().map(|s| (s.start, s.end())).collect();
                let tags = daterange_tags(markers, &spans, true, |t| utc_at(segments, t));
                let text = lines(segments, tags, None);
                let mut ends = entry_ends(&text).into_iter();
                let cut = ends.next().unwrap_or(text.len());
                self.first = Some((s0.sequence, text[..cut].to_string()));
                self.rest = text[cut..].to_string();
                self.from = 0;
                self.entries = segments[1..]
                    .iter()
                    .map(|s| s.sequence)
                    .zip(ends.map(|e| e - cut))
                    .collect();
                self.has_pdt = segments.iter().any(|s| s.pdt.is_some());
            } else {
                // `keeps` saw no marker shown: no tags.
                let text = lines(std::slice::from_ref(s0), Vec::new(), None);
                self.first = Some((s0.sequence, text));
            }
        }
        // Segments added since: after the last one kept.
        let kept = 1 + self.entries.len();
        if segments.len() > kept {
            let new = &segments[kept..];
            let text = lines(new, Vec::new(), Some(segments[kept - 1].map.as_str()));
            let base = self.rest.len();
            self.entries.extend(
                new.iter()
                    .map(|s| s.sequence)
                    .zip(entry_ends(&text).into_iter().map(|e| e + base)),
            );
            self.rest.push_str(&text);
            self.has_pdt |= new.iter().any(|s| s.pdt.is_some());
        }
        // The lines of trimmed segments are dropped now and then, not at
        // every segment.
        if self.from > self.rest.len() / 2 {
            self.rest.drain(..self.from);
            for e in &mut self.entries {
                e.1 -= self.from;
            }
            self.from = 0;
        }
        ReplayLines {
            head: write(&head),
            first: self.first.as_ref().map_or("", |(_, l)| l.as_str()),
            rest: &self.rest[self.from..],
            complete: o.complete,
        }
    }

    /// Whether the lines kept are still right for `segments`: the same
    /// choices and markers; the segments kept are `segments`' front (after
    /// any that were trimmed); and with markers shown, nothing trimmed
    /// (markers that began earlier move to the new first entry), every
    /// marker dated by a segment kept and placed before the first new one.
    fn keeps(&self, segments: &[Segment], pdt: bool, markers: &[Marker]) -> bool {
        let (Some((first, _)), Some(s0)) = (&self.first, segments.first()) else {
            return false;
        };
        if self.pdt != pdt || self.markers != markers || *first > s0.sequence {
            return false;
        }
        let kept: Vec<u64> = self
            .entries
            .iter()
            .map(|e| e.0)
            .skip_while(|&q| q <= s0.sequence)
            .collect();
        if segments.len() < 1 + kept.len()
            || kept
                .iter()
                .zip(&segments[1..])
                .any(|(&q, s)| q != s.sequence)
        {
            return false;
        }
        let mut shown = markers.iter().filter(|m| m.end() >= s0.start).peekable();
        if shown.peek().is_none() {
            return true;
        }
        *first == s0.sequence
            && self.has_pdt
            && segments
                .get(1 + kept.len())
                .is_none_or(|next| shown.all(|m| m.start < next.start))
    }
}

/// A replay playlist's text in pieces: its header, the entries' lines,
/// and EXT-X-ENDLIST when complete (as m3u8-rs writes a whole playlist).
pub struct ReplayLines<'a> {
    head: String,
    first: &'a str,
    rest: &'a str,
    complete: bool,
}

impl ReplayLines<'_> {
    pub fn write_to(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        w.write_all(self.head.as_bytes())?;
        w.write_all(self.first.as_bytes())?;
        w.write_all(self.rest.as_bytes())?;
        if self.complete {
            w.write_all(b"#EXT-X-ENDLIST\n")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for ReplayLines<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.head)?;
        f.write_str(self.first)?;
        f.write_str(self.rest)?;
        if self.complete {
            f.write_str("#EXT-X-ENDLIST\n")?;
        }
        Ok(())
    }
}

/// Where each entry of rendered playlist lines ends: after its URI line
/// (each entry is tag lines starting with `#`, then the URI).
fn entry_ends(lines: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    for line in lines.split_inclusive('\n') {
        at += line.len();
        if !line.starts_with('#') {
            ends.push(at);
        }
    }
    ends
}

/// Wall clock at recording time `t`, from the nearest program date time
/// at or before it (else the first one).
pub fn utc_at(segments: &[Segment], t: u64) -> Option<chrono::DateTime<chrono::Utc>> {
    let anchor = segments
        .iter()
        .rev()
        .find(|s| s.pdt.is_some() && s.start <= t)
        .or_else(|| segments.iter().find(|s| s.pdt.is_some()))?;
    let delta = t as i64 - anchor.start as i64;
    Some(anchor.pdt? + chrono::Duration::nanoseconds(delta))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(n: u64) -> Vec<Segment> {
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .to_utc();
        (0..n)
            .map(|i| Segment {
                sequence: i,
                uri: format!("segment-{i:05}.m4s"),
                start: i * 6_000_000_000,
                duration: if i == 2 { 6_400_000_000 } else { 6_000_000_000 },
                discontinuity: i == 3,
                map: if i >= 3 {
                    "init-1.mp4".into()
                } else {
                    "init.mp4".into()
                },
                pdt: Some(t0 + chrono::Duration::seconds(6 * i as i64)),
                bytes: 1000,
            })
            .collect()
    }

    fn opts(td: u32, rd: u64, complete: bool, trimmed: bool, pdt: bool) -> Options {
        Options {
            target_duration: td,
            removed_discontinuities: rd,
            complete,
            trimmed,
            pdt,
        }
    }

    fn parse(text: &str) -> MediaPlaylist {
        m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses")
    }

    #[test]
    fn replay_text_is_the_whole_render_at_every_step() {
        use crate::hls::markers::{Marker, Source};
        // Init changes, discontinuities, a segment without a PDT, a long
        // one.
        let mut all = segs(700);
        for (i, s) in all.iter_mut().enumerate() {
            s.map = format!("init-{}.mp4", i / 90);
            s.discontinuity = i % 90 == 0 && i > 0;
            if i % 61 == 5 {
                s.pdt = None;
            }
            if i == 300 {
                s.duration = 9_100_000_000;
            }
        }
        let marker = |id: String, start: u64, duration: Option<u64>| Marker {
            id,
            class: None,
            start,
            duration,
            planned_duration: None,
            start_utc: None,
            attributes: Default::default(),
            source: Source::Api,
            scte35: None,
        };
        let mut x = 0x2545_f491_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for pdt in [true, false] {
            let mut text = ReplayText::default();
            let mut markers: Vec<Marker> = Vec::new();
            let (mut from, mut to) = (0usize, 0usize);
            let mut removed = 0u64;
            for step in 0..900 {
                let r = next();
                if step == 600 {
                    // Retention without markers: trims keep the lines.
                    markers.clear();
                }
                match r % 20 {
                    0..=11 => to = (to + 1).min(all.len()),
                    12 => to = (to + 1 + (r >> 8) as usize % 4).min(all.len()),
                    13 | 14 if to > from + 2 => {
                        let n = 1 + (r >> 8) as usize % 2;
                        removed += all[from..from + n]
                            .iter()
                            .filter(|s| s.discontinuity)
                            .count() as u64;
                        from += n;
                    }
                    15 if step % 3 == 0 && step < 600 => {
                        // A marker anywhere from before the front to past
                        // the newest segment.
                        let span = (to as u64 + 3) * 6_000_000_000;
                        let start = (r >> 8) % span;
                        let duration = ((r >> 40) % 3 == 0).then_some((r >> 20) % 30_000_000_000);
                        markers.push(marker(format!("m{step}"), start, duration));
                        markers.sort_by_key(|m| m.start);
                    }
                    16 if !markers.is_empty() && step % 5 == 0 => {
                        markers.remove((r >> 8) as usize % markers.len());
                    }
                    _ => {}
                }
                let o = opts(6, removed, step == 899, from > 0, pdt);
                let shown = &all[from..to];
                assert_eq!(
                    text.render(shown, &o, &markers),
                    render(shown, Kind::Replay, &o, &markers),
                    "step {step} (segments {from}..{to}, {} markers, pdt {pdt})",
                    markers.len()
                );
            }
            assert!(to > 500 && from > 20, "{from}..{to}");
        }
    }

    #[test]
    fn replay_event_then_vod() {
        let s = segs(5);
        let text = render(&s, Kind::Replay, &opts(6, 0, false, false, true), &[]);
        assert!(text.contains("#EXT-X-INDEPENDENT-SEGMENTS"), "{text}");
        let p = parse(&text);
        assert_eq!(p.version, Some(7));
        assert_eq!(p.playlist_type, Some(MediaPlaylistType::Event));
        assert!(!p.end_list);
        assert_eq!(p.segments.len(), 5);
        assert_eq!(p.segments[0].map.as_ref().unwrap().uri, "init.mp4");
        assert!(p.segments[1].map.is_none());
        assert!(p.segments[3].discontinuity);
        assert_eq!(p.segments[3].map.as_ref().unwrap().uri, "init-1.mp4");
        assert!(p.segments[0].program_date_time.is_some());
        let vod = parse(&render(
            &s,
            Kind::Replay,
            &opts(6, 0, true, false, true),
            &[],
        ));
        assert_eq!(vod.playlist_type, Some(MediaPlaylistType::Vod));
        assert!(vod.end_list);
        let no_pdt = render(&s, Kind::Replay, &opts(6, 0, true, false, false), &[]);
        assert!(!no_pdt.contains("PROGRAM-DATE-TIME"));
    }

    #[test]
    fn live_window_carries_sequence_map_and_discontinuity_sequence() {
        let s = segs(7);
        let p = parse(&render(
            &s,
            Kind::Live { window: 3 },
            &opts(6, 0, false, false, true),
            &[],
        ));
        assert_eq!(p.playlist_type, None);
        assert_eq!(p.segments.len(), 3);
        assert_eq!(p.media_sequence, 4);
        assert_eq!(
            p.discontinuity_sequence, 1,
            "segment 3's discontinuity left the window"
        );
        assert_eq!(p.segments[0].uri, "segment-00004.m4s");
        assert_eq!(p.segments[0].map.as_ref().unwrap().uri, "init-1.mp4");
    }

    #[test]
    fn target_duration_covers_every_rounded_extinf() {
        let mut s = segs(3);
        s[1].duration = 7_600_000_000;
        let p = parse(&render(
            &s,
            Kind::Replay,
            &opts(6, 0, false, false, true),
            &[],
        ));
        assert_eq!(p.target_duration, 8);
        let p = parse(&render(
            &segs(3),
            Kind::Replay,
            &opts(6, 0, false, false, true),
            &[],
        ));
        assert_eq!(p.target_duration, 6, "6.4 rounds to 6");
        let trimmed = parse(&render(
            &s[1..],
            Kind::Replay,
            &opts(6, 0, false, true, true),
            &[],
        ));
        assert_eq!(trimmed.playlist_type, None);
        assert_eq!(trimmed.media_sequence, 1);
    }

    #[test]
    fn markers_become_dateranges_on_the_pdt_axis_even_without_pdt() {
        let s = segs(5);
        let marker = crate::hls::markers::Marker::test;
        let ms = [
            marker("early", 1_000_000_000, None),
            marker("goal", 13_500_000_000, Some(4_000_000_000)),
        ];
        // PDT off: the playlist still gets them (DATERANGE needs them).
        let text = render(&s, Kind::Replay, &opts(6, 0, false, false, false), &ms);
        let p = parse(&text);
        assert!(p.segments[0].program_date_time.is_some(), "{text}");
        let early = p.segments[0]
            .daterange
            .as_ref()
            .expect("early on segment 0");
        assert_eq!(early.id, "early");
        assert_eq!(
            early.start_date.to_utc(),
            "2026-11-23T12:00:01Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
        );
        let goal = p.segments[2].daterange.as_ref().expect("goal on segment 2");
        assert_eq!(goal.id, "goal");
        assert_eq!(goal.duration, Some(4.0));
        assert_eq!(
            goal.start_date.to_utc(),
            "2026-11-23T12:00:13.500Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
        );
        // A live window that starts after "early" ended shows only "goal",
        // on its first segment.
        let live = parse(&render(
            &s,
            Kind::Live { window: 2 },
            &opts(6, 0, false, false, false),
            &ms,
        ));
        assert!(live.segments.iter().all(|x| x.daterange.is_none()));
        let live = parse(&render(
            &s,
            Kind::Live { window: 3 },
            &opts(6, 0, false, false, false),
            &ms,
        ));
        assert_eq!(live.segments[0].daterange.as_ref().unwrap().id, "goal");
        // No markers, no PDT asked: none written.
        let plain = render(&s, Kind::Replay, &opts(6, 0, false, false, false), &[]);
        assert!(!plain.contains("PROGRAM-DATE-TIME") && !plain.contains("DATERANGE"));
    }
}
