// SPDX-License-Identifier: MPL-2.0
//! MP4 clips cut from a stored session: read straight from the CMAF
//! fragments (no demux/remux pipeline), starting at the keyframe at or
//! before the requested start, with an edit list that begins presentation
//! at the requested instant (or at that keyframe).

use std::path::Path;

use bytes::Bytes;

use super::recorder::REPLAY;
use crate::core::TrackKind;
use crate::mp4::{ClipTrack, CodecConfig, Mp4Clip};

/// Where presentation of a clip begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accuracy {
    /// At the requested instant (the pre-roll from the keyframe is hidden).
    #[default]
    Frame,
    /// At the keyframe at or before the requested instant.
    Keyframe,
}

/// Why a clip can't be made.
#[derive(Debug)]
pub enum ClipError {
    /// No such session (or its playlist is unreadable).
    NotFound(String),
    /// The range starts at or after the end of what is recorded.
    OutOfRange { start: u64, recorded: u64 },
    /// The range crosses a codec change (two init segments).
    CrossesCodecChange,
    /// A stored file could not be read or parsed.
    Storage(String),
}

impl std::fmt::Display for ClipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClipError::NotFound(s) => write!(f, "no recording at {s}"),
            ClipError::OutOfRange { start, recorded } => write!(
                f,
                "the clip starts at {:.3} s but {:.3} s are recorded",
                *start as f64 / 1e9,
                *recorded as f64 / 1e9
            ),
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

/// Builds the clip `[start, start + duration)` (recording time, ns) of the
/// session in `dir`; a range past the end of the recording is cut there.
pub fn clip_from_session(
    dir: &Path,
    start: u64,
    duration: u64,
    accuracy: Accuracy,
) -> Result<Mp4Clip, ClipError> {
    let text = std::fs::read(dir.join(REPLAY))
        .map_err(|_| ClipError::NotFound(dir.display().to_string()))?;
    let playlist = m3u8_rs::parse_media_playlist_res(&text)
        .map_err(|_| ClipError::NotFound(dir.display().to_string()))?;
    // Segment starts in recording time, and the init each one needs.
    let mut t = 0u64;
    let mut map = String::from("init.mp4");
    let mut segments = Vec::new();
    for s in &playlist.segments {
        if let Some(m) = &s.map {
            map = m.uri.clone();
        }
        let d = (f64::from(s.duration) * 1e9).round() as u64;
        segments.push((t, t + d, s.uri.clone(), map.clone(), s.program_date_time));
        t += d;
    }
    let recorded = t;
    if start >= recorded {
        return Err(ClipError::OutOfRange { start, recorded });
    }
    let end = start.saturating_add(duration).min(recorded);
    let chosen: Vec<_> = segments
        .iter()
        .filter(|(s, e, ..)| *e > start && *s < end)
        .collect();
    let Some(first) = chosen.first() else {
        return Err(ClipError::OutOfRange { start, recorded });
    };
    if chosen.iter().any(|c| c.3 != first.3) {
        return Err(ClipError::CrossesCodecChange);
    }
    let init = std::fs::read(dir.join(&first.3)).map_err(storage)?;
    let moov = read_moov(&init).ok_or_else(|| storage(format!("{} has no moov", first.3)))?;
    let configs: Vec<std::sync::Arc<CodecConfig>> = moov
        .trak
        .iter()
        .map(|t| CodecConfig::from_trak(t).map(std::sync::Arc::new))
        .collect::<Result<_, _>>()
        .map_err(storage)?;
    let timescales: Vec<u32> = configs.iter().map(|c| c.timescale).collect();
    let mut per_track: Vec<Vec<crate::core::Sample>> = vec![Vec::new(); configs.len()];
    for (.., uri, _, _) in &chosen {
        let data = Bytes::from(std::fs::read(dir.join(uri)).map_err(storage)?);
        for (k, samples) in crate::mp4::scan::fragment_samples(&data, &timescales)
            .into_iter()
            .enumerate()
        {
            per_track[k].extend(samples);
        }
    }
    let (start_ns, end_ns) = (start as i64, end as i64);
    let mut presentation_start = start_ns;
    let mut tracks = Vec::new();
    for (config, samples) in configs.iter().zip(per_track) {
        let kept: Vec<_> = if config.kind == TrackKind::Video {
            // From the keyframe at or before the start, in decode order, to
            // the last sample presented before the end.
            let key = samples
                .iter()
                .rposition(|s| s.keyframe && s.pts <= start_ns)
                .or_else(|| samples.iter().position(|s| s.keyframe));
            let Some(key) = key else { continue };
            if accuracy == Accuracy::Keyframe {
                presentation_start = presentation_start.min(samples[key].pts);
            }
            let last = samples.iter().rposition(|s| s.pts < end_ns).unwrap_or(key);
            samples[key..=last.max(key)].to_vec()
        } else {
            samples
                .into_iter()
                .filter(|s| s.pts_end() > start_ns && s.pts < end_ns)
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
    let creation_time = first
        .4
        .map(|p| p.to_utc() + chrono::Duration::nanoseconds(start as i64 - first.0 as i64));
    Ok(Mp4Clip {
        tracks,
        start: presentation_start,
        end: Some(end_ns),
        creation_time,
    })
}

fn read_moov(init: &[u8]) -> Option<mp4_atom::Moov> {
    use mp4_atom::{Atom, Decode};
    let mut buf = init;
    while buf.len() >= 8 {
        let header = mp4_atom::Header::decode(&mut buf).ok()?;
        let size = header.size?;
        if size > buf.len() {
            return None;
        }
        if header.kind == mp4_atom::Moov::KIND {
            return mp4_atom::Moov::decode_body(&mut &buf[..size]).ok();
        }
        buf = &buf[size..];
    }
    None
}
