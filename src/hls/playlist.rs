// SPDX-License-Identifier: MPL-2.0
//! Media playlists (through m3u8-rs): the live sliding window and the replay
//! playlist (EVENT while live, VOD with ENDLIST once ended).

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
    let Options {
        target_duration,
        removed_discontinuities,
        complete,
        trimmed,
        pdt,
    } = *o;
    let shown = match kind {
        Kind::Live { window } if window > 0 && segments.len() > window => {
            &segments[segments.len() - window..]
        }
        _ => segments,
    };
    let hidden = &segments[..segments.len() - shown.len()];
    let discontinuity_sequence =
        removed_discontinuities + hidden.iter().filter(|s| s.discontinuity).count() as u64;
    let max_extinf = shown
        .iter()
        .map(|s| (s.duration as f64 / 1e9).round() as u64)
        .max()
        .unwrap_or(0);
    let spans: Vec<(u64, u64)> = shown.iter().map(|s| (s.start, s.end())).collect();
    let mut tags = daterange_tags(markers, &spans, true, |t| utc_at(segments, t)).into_iter();
    let pdt = pdt
        || markers
            .iter()
            .any(|m| m.end() >= spans.first().map_or(0, |s| s.0));
    let mut last_map: Option<&str> = None;
    let mut out_segments = Vec::with_capacity(shown.len());
    for s in shown {
        let map = (last_map != Some(s.map.as_str())).then(|| m3u8_rs::Map {
            uri: s.map.clone(),
            ..Default::default()
        });
        last_map = Some(&s.map);
        out_segments.push(MediaSegment {
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
    let playlist_type = match kind {
        Kind::Replay if complete => Some(MediaPlaylistType::Vod),
        Kind::Replay if !trimmed => Some(MediaPlaylistType::Event),
        _ => None,
    };
    let playlist = MediaPlaylist {
        version: Some(7),
        target_duration: u64::from(target_duration).max(max_extinf).max(1),
        media_sequence: shown.first().map_or(0, |s| s.sequence),
        segments: out_segments,
        discontinuity_sequence,
        end_list: complete,
        playlist_type,
        independent_segments: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    playlist
        .write_to(&mut out)
        .expect("writing to a Vec does not fail");
    String::from_utf8(out).expect("m3u8-rs writes UTF-8")
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
        use crate::hls::markers::{Marker, Source};
        let s = segs(5);
        let marker = |id: &str, start: u64, duration: Option<u64>| Marker {
            id: id.into(),
            class: Some("com.example.goal".into()),
            start,
            duration,
            planned_duration: None,
            start_utc: None,
            attributes: Default::default(),
            source: Source::Api,
            scte35: None,
        };
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
