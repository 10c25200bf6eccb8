// SPDX-License-Identifier: MPL-2.0
//! Low-latency HLS (RFC 8216bis): the live playlist of a session recorded
//! with parts, rendered from the live index for every request, and the
//! blocking reload rule (`_HLS_msn`, `_HLS_part`).
//!
//! Parts are byte ranges of the segment files (`EXT-X-PART` with
//! `BYTERANGE`), so nothing is written for them but the media itself: the
//! stored `live.m3u8` and `replay.m3u8`, and recovery, are as without
//! parts. m3u8-rs has no model of these tags, so the playlist is written
//! here line by line.

use std::fmt::Write;

use super::index::{PartInfo, SegmentInfo, SessionIndex};

/// The latest part (or segment) a rendition has, for EXT-X-RENDITION-REPORT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    pub uri: String,
    pub last_msn: u64,
    pub last_part: Option<u64>,
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The newest media sequence number and its newest part index (`None`
/// when it has no parts listed) of a live index.
pub fn last_part(index: &SessionIndex) -> Option<(u64, Option<u64>)> {
    if let Some(open) = index.open.as_ref().filter(|o| !o.parts.is_empty()) {
        return Some((open.segment.sequence, Some(open.parts.len() as u64 - 1)));
    }
    let last = index.segments.last()?;
    let part = last.parts.len().checked_sub(1).map(|p| p as u64);
    Some((last.segment.sequence, part))
}

/// Whether the playlist of `index` holds segment `msn` (complete), or with
/// `part` that part of it (a part past a complete segment's last is the
/// next segment's first).
pub fn has(index: &SessionIndex, msn: u64, part: Option<u64>) -> bool {
    let closed = index.segments.last().map(|s| s.segment.sequence);
    let Some(part) = part else {
        return closed.is_some_and(|c| c >= msn);
    };
    if closed.is_some_and(|c| c > msn) {
        return true;
    }
    let parts_of = |seq: u64| -> Option<usize> {
        if let Some(o) = index.open.as_ref().filter(|o| o.segment.sequence == seq) {
            return Some(o.parts.len());
        }
        index
            .segments
            .iter()
            .rev()
            .find(|s| s.segment.sequence == seq)
            .map(|s| s.parts.len())
    };
    match parts_of(msn) {
        Some(n) if (part as usize) < n => true,
        // Past the last part of a complete segment: the next segment's
        // first part.
        Some(_) if closed == Some(msn) => parts_of(msn + 1).is_some_and(|n| n > 0),
        Some(_) => false,
        // Older than the playlist.
        None => index
            .segments
            .first()
            .is_some_and(|s| msn < s.segment.sequence),
    }
}

/// Renders the low-latency live playlist of `index`: the last `window`
/// complete segments (all when 0), the parts of those that still have
/// them, the open segment's parts, a preload hint of the next part, and
/// `reports` of the other renditions. URIs are the stored file names.
pub fn render(
    index: &SessionIndex,
    window: usize,
    pdt: bool,
    reports: &[RenditionReport],
) -> String {
    let part_target = index.part_target.max(1);
    let all = &index.segments;
    let shown = if window > 0 && all.len() > window {
        &all[all.len() - window..]
    } else {
        &all[..]
    };
    let hidden = &all[..all.len() - shown.len()];
    let discontinuity_sequence = index.removed_discontinuities
        + hidden.iter().filter(|s| s.segment.discontinuity).count() as u64;
    let max_extinf = shown
        .iter()
        .map(|s| (s.segment.duration as f64 / 1e9).round() as u64)
        .max()
        .unwrap_or(0);
    let target = u64::from(index.target_duration).max(max_extinf).max(1);
    let mut out = String::with_capacity(4096);
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:9");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(
        out,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}",
        3.0 * secs(part_target)
    );
    let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={:.3}", secs(part_target));
    let first_sequence = shown
        .first()
        .or(index.open.as_ref())
        .map_or(0, |s| s.segment.sequence);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_sequence}");
    if discontinuity_sequence > 0 {
        let _ = writeln!(
            out,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}"
        );
    }
    let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
    let mut last_map: Option<String> = None;
    let mut head = |out: &mut String, s: &SegmentInfo| {
        let seg = &s.segment;
        if seg.discontinuity && last_map.is_some() {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
        }
        if last_map.as_deref() != Some(seg.map.as_str()) {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", seg.map);
            last_map = Some(seg.map.clone());
        }
        if let Some(t) = seg.pdt.filter(|_| pdt) {
            let _ = writeln!(
                out,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
        }
    };
    let parts = |out: &mut String, uri: &str, parts: &[PartInfo]| {
        for p in parts {
            let _ = write!(
                out,
                "#EXT-X-PART:DURATION={:.5},URI=\"{uri}\",BYTERANGE=\"{}@{}\"",
                secs(p.duration),
                p.size,
                p.offset
            );
            if p.independent {
                let _ = write!(out, ",INDEPENDENT=YES");
            }
            out.push('\n');
        }
    };
    // Markers before the segment of their start (the open one's included).
    let listed: Vec<&SegmentInfo> = shown.iter().chain(index.open.iter()).collect();
    let spans: Vec<(u64, u64)> = listed
        .iter()
        .map(|s| (s.segment.start, s.segment.end()))
        .collect();
    let mut tags =
        super::markers::daterange_tags(&index.markers, &spans, true, |t| index.utc_at(t))
            .into_iter();
    let mut daterange = |out: &mut String| {
        for t in tags.next().unwrap_or_default() {
            let _ = writeln!(out, "{t}");
        }
    };
    for s in shown {
        head(&mut out, s);
        daterange(&mut out);
        parts(&mut out, &s.segment.uri, &s.parts);
        let _ = writeln!(out, "#EXTINF:{:.5},", secs(s.segment.duration));
        let _ = writeln!(out, "{}", s.segment.uri);
    }
    // The segment being written: its parts, then the next part to come.
    let (next_uri, next_start) = match &index.open {
        Some(open) => {
            head(&mut out, open);
            daterange(&mut out);
            parts(&mut out, &open.segment.uri, &open.parts);
            let start = open.parts.last().map_or(0, |p| p.offset + p.size);
            (open.segment.uri.clone(), start)
        }
        None => {
            let next = all.last().map_or(0, |s| s.segment.sequence + 1);
            (format!("segment-{next:05}.m4s"), 0)
        }
    };
    if index.live {
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{next_uri}\",BYTERANGE-START={next_start}"
        );
    } else {
        let _ = writeln!(out, "#EXT-X-ENDLIST");
    }
    out.push_str(&report_lines(reports));
    out
}

/// The EXT-X-RENDITION-REPORT lines of `reports` (added apart by a caller
/// whose URIs for them differ from the playlist's files).
pub fn report_lines(reports: &[RenditionReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let _ = write!(
            out,
            "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={}",
            r.uri, r.last_msn
        );
        if let Some(p) = r.last_part {
            let _ = write!(out, ",LAST-PART={p}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::playlist::Segment;

    const MS: u64 = 1_000_000;

    /// Segments of 2 s in parts of 500 ms (the first independent), the
    /// last `open_parts` parts of a third one being written.
    pub(crate) fn index(open_parts: usize) -> SessionIndex {
        let parts = |n: usize| -> Vec<PartInfo> {
            (0..n)
                .map(|i| PartInfo {
                    offset: i as u64 * 1000,
                    size: 1000,
                    duration: 500 * MS,
                    independent: i == 0,
                })
                .collect()
        };
        let seg = |i: u64, n: usize| SegmentInfo {
            segment: Segment {
                sequence: i,
                uri: format!("segment-{i:05}.m4s"),
                start: i * 2000 * MS,
                duration: n as u64 * 500 * MS,
                discontinuity: false,
                map: "init.mp4".into(),
                pdt: chrono::DateTime::from_timestamp(1_800_000_000 + 2 * i as i64, 0),
                bytes: n as u64 * 1000,
            },
            fragments: None,
            parts: parts(n),
        };
        SessionIndex {
            media_id: "m".into(),
            segments: vec![seg(0, 4), seg(1, 4)],
            open: (open_parts > 0).then(|| seg(2, open_parts)),
            live: true,
            target_duration: 2,
            part_target: 500 * MS,
            ..Default::default()
        }
    }

    #[test]
    fn lists_parts_and_hints_the_next() {
        let text = render(
            &index(3),
            0,
            true,
            &[RenditionReport {
                uri: "video.m3u8?rendition=360p".into(),
                last_msn: 2,
                last_part: Some(2),
            }],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.contains(&"#EXT-X-PART-INF:PART-TARGET=0.500"),
            "{text}"
        );
        assert!(
            lines.contains(&"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500"),
            "{text}"
        );
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("#EXT-X-PART:"))
                .count(),
            11
        );
        assert!(lines.contains(
            &"#EXT-X-PART:DURATION=0.50000,URI=\"segment-00002.m4s\",BYTERANGE=\"1000@2000\""
        ));
        assert_eq!(
            lines[lines.len() - 2],
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"segment-00002.m4s\",BYTERANGE-START=3000"
        );
        assert_eq!(
            lines[lines.len() - 1],
            "#EXT-X-RENDITION-REPORT:URI=\"video.m3u8?rendition=360p\",LAST-MSN=2,LAST-PART=2"
        );
        // What m3u8-rs knows of it still parses.
        let p = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.version, Some(9));
    }

    #[test]
    fn blocking_reload_waits_for_the_part_asked() {
        let i = index(2);
        assert!(has(&i, 1, None));
        assert!(!has(&i, 2, None), "segment 2 is not complete");
        assert!(has(&i, 2, Some(1)));
        assert!(!has(&i, 2, Some(2)));
        assert!(has(&i, 1, Some(4)), "past segment 1's last part: 2.0");
        assert!(!has(&index(0), 1, Some(4)), "segment 2 has no part yet");
        assert!(!has(&i, 3, Some(0)));
        assert_eq!(last_part(&i), Some((2, Some(1))));
        assert_eq!(last_part(&index(0)), Some((1, Some(3))));
        // Between segments the hint names the next segment's start.
        let text = render(&index(0), 0, false, &[]);
        assert!(
            text.ends_with(
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"segment-00002.m4s\",BYTERANGE-START=0\n"
            ),
            "{text}"
        );
        assert!(!text.contains("PROGRAM-DATE-TIME"));
    }

    #[test]
    fn markers_precede_the_segment_or_part_of_their_start() {
        use crate::hls::markers::{Marker, Source};
        let mut i = index(2);
        i.markers = std::sync::Arc::new(vec![Marker {
            id: "now".into(),
            class: None,
            start: 4200 * MS,
            duration: None,
            planned_duration: None,
            start_utc: None,
            attributes: Default::default(),
            source: Source::Signal,
            scte35: None,
        }]);
        let text = render(&i, 0, true, &[]);
        let tag = text
            .lines()
            .position(|l| l.starts_with("#EXT-X-DATERANGE:ID=\"now\""))
            .expect(&text);
        let open_pdt = text
            .lines()
            .position(|l| l == "#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:04.000Z")
            .expect(&text);
        assert_eq!(tag, open_pdt + 1, "{text}");
        assert!(
            text.contains("START-DATE=\"2027-01-15T08:00:04.200Z\""),
            "{text}"
        );
    }
}
