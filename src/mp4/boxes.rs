// SPDX-License-Identifier: MPL-2.0
//! Boxes shared by the progressive and the fragmented writer.

use mp4_atom::FourCC;

use super::CodecConfig;
use crate::core::TrackKind;

/// Seconds between 1904-01-01 (MP4 epoch) and 1970-01-01.
pub const MP4_EPOCH_OFFSET: u64 = 2_082_844_800;

/// MP4 time (seconds since 1904) of a wall-clock instant; 0 when unknown.
pub fn mp4_time(t: Option<chrono::DateTime<chrono::Utc>>) -> u64 {
    t.map_or(0, |t| (t.timestamp().max(0) as u64) + MP4_EPOCH_OFFSET)
}

/// Durations and edits of a track header.
pub struct TrackTiming {
    /// `tkhd` duration, movie timescale.
    pub duration: u64,
    /// `mdhd` duration, media timescale.
    pub media_duration: u64,
    /// Edit list: (segment duration in movie ticks, media time or None for
    /// an empty edit); no `edts` when empty.
    pub edits: Vec<(u64, Option<u64>)>,
    pub created: u64,
}

/// A `trak` for `config` around `stbl`.
pub fn trak(
    config: &CodecConfig,
    track_id: u32,
    timing: &TrackTiming,
    stbl: mp4_atom::Stbl,
) -> mp4_atom::Trak {
    let video = config.kind == TrackKind::Video;
    let created = timing.created;
    let edts = (!timing.edits.is_empty()).then(|| mp4_atom::Edts {
        elst: Some(mp4_atom::Elst {
            entries: timing
                .edits
                .iter()
                .map(|&(segment_duration, media_time)| mp4_atom::ElstEntry {
                    segment_duration,
                    media_time,
                    media_rate: 1i16.into(),
                })
                .collect(),
        }),
    });
    mp4_atom::Trak {
        tkhd: mp4_atom::Tkhd {
            creation_time: created,
            modification_time: created,
            track_id,
            duration: timing.duration,
            enabled: true,
            in_movie: true,
            alternate_group: 0,
            volume: if video { 0u8.into() } else { 1u8.into() },
            width: (config.width.min(u32::from(u16::MAX)) as u16).into(),
            height: (config.height.min(u32::from(u16::MAX)) as u16).into(),
            ..Default::default()
        },
        edts,
        mdia: mp4_atom::Mdia {
            mdhd: mp4_atom::Mdhd {
                creation_time: created,
                modification_time: created,
                timescale: config.timescale,
                duration: timing.media_duration,
                language: "und".into(),
            },
            hdlr: mp4_atom::Hdlr {
                handler: FourCC::new(if video { b"vide" } else { b"soun" }),
                name: if video {
                    "VideoHandler".into()
                } else {
                    "SoundHandler".into()
                },
            },
            minf: mp4_atom::Minf {
                vmhd: video.then(mp4_atom::Vmhd::default),
                smhd: (!video).then(mp4_atom::Smhd::default),
                dinf: mp4_atom::Dinf {
                    dref: mp4_atom::Dref {
                        entries: vec![mp4_atom::DrefEntry::Url(mp4_atom::Url::default())],
                    },
                },
                stbl,
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

/// The movie header.
pub fn mvhd(timescale: u32, duration: u64, tracks: usize, created: u64) -> mp4_atom::Mvhd {
    mp4_atom::Mvhd {
        creation_time: created,
        modification_time: created,
        timescale,
        duration,
        rate: 1u16.into(),
        volume: 1u8.into(),
        next_track_id: tracks as u32 + 1,
        ..Default::default()
    }
}

/// `ftyp`/`styp` brands for a set of tracks.
pub fn brands(configs: &[&CodecConfig], cmaf: bool) -> Vec<FourCC> {
    let mut brands = vec![FourCC::new(b"isom"), FourCC::new(b"iso2")];
    if cmaf {
        brands = vec![
            FourCC::new(b"iso6"),
            FourCC::new(b"cmfc"),
            FourCC::new(b"isom"),
        ];
    }
    if configs.iter().any(|c| c.name == "h264") {
        brands.push(FourCC::new(b"avc1"));
    }
    brands.push(FourCC::new(b"mp41"));
    brands
}
