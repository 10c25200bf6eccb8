// SPDX-License-Identifier: MPL-2.0
//! CMAF: an init segment (`ftyp` + `moov` with `mvex`) and fragments
//! (`moof` + `mdat`), one per GOP.
//!
//! Media times are recording times plus the track's initial composition
//! delay (so the first decode time is not negative and composition offsets
//! are never negative), and the init segment's edit list (`elst` with one
//! edit whose `media_time` is that delay) takes the delay off again: every
//! reader presents the first frame at recording time 0. This is what
//! ffmpeg's and GStreamer's fragmented muxers write; negative composition
//! offsets without an edit list are presented late by ffmpeg (by the
//! largest negative offset).

use bytes::Bytes;
use mp4_atom::{Encode, FourCC};

use super::progressive::{WriteError, enc_err};
use super::time::ticks;
use super::{CodecConfig, boxes};
use crate::core::nal::Access;
use crate::core::{Sample, TrackKind};

/// Sample flags (ISO/IEC 14496-12 8.8.3.1): `is_leading` (bits 26-27),
/// `sample_depends_on` (24-25), `sample_is_non_sync_sample` (16).
const FLAGS_SYNC: u32 = 0x0200_0000;
const FLAGS_NON_SYNC: u32 = 0x0101_0000;
/// `is_leading` = 1: a leading picture that refers to pictures before its
/// random-access point (not decodable when decoding starts there).
const LEADING_UNDECODABLE: u32 = 1 << 26;
/// `is_leading` = 3: a leading picture decodable from its random-access point.
const LEADING_DECODABLE: u32 = 3 << 26;

/// The sample flags of `s`; `rap`: the random-access point of the
/// fragment that precedes it in decode order, if any.
fn sample_flags(s: &Sample, rap: Option<&Sample>) -> u32 {
    if s.keyframe {
        return FLAGS_SYNC;
    }
    let leading = match s.access {
        Access::SkippedLeading => LEADING_UNDECODABLE,
        Access::DecodableLeading => LEADING_DECODABLE,
        _ => match rap {
            Some(k) if s.leads(k) && k.access == Access::Closed => LEADING_DECODABLE,
            Some(k) if s.leads(k) => LEADING_UNDECODABLE,
            _ => 0,
        },
    };
    FLAGS_NON_SYNC | leading
}

/// What stored sample flags say about a sample's random access (the
/// reverse of what [`fragment`] writes).
pub fn access_of_flags(flags: u32) -> Access {
    match (flags >> 26) & 3 {
        1 => return Access::SkippedLeading,
        3 => return Access::DecodableLeading,
        _ => {}
    }
    if flags & 0x0001_0000 == 0 {
        // Sync: whether leading pictures may refer past it is not stored.
        Access::Open
    } else if (flags >> 24) & 3 == 1 {
        Access::Inter
    } else {
        Access::Unknown
    }
}

/// The init segment for tracks `configs` (track ids 1, 2, ... in order);
/// `delays[i]`: track `i`'s initial composition delay (ns), the media time
/// its edit list starts presentation at (no edit list where it is 0).
pub fn init_segment(
    configs: &[&CodecConfig],
    delays: &[i64],
    created: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Vec<u8>, WriteError> {
    if configs.is_empty() {
        return Err(WriteError::Empty);
    }
    let created = boxes::mp4_time(created);
    let movie_ts = configs
        .iter()
        .find(|c| c.kind == TrackKind::Video)
        .unwrap_or(&configs[0])
        .timescale;
    let mut out = Vec::new();
    mp4_atom::Ftyp {
        major_brand: FourCC::new(b"iso6"),
        minor_version: 0,
        compatible_brands: boxes::brands(configs, true),
    }
    .encode(&mut out)
    .map_err(enc_err)?;
    let traks = configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let stbl = mp4_atom::Stbl {
                stsd: mp4_atom::Stsd {
                    codecs: vec![c.entry.clone()],
                },
                stco: Some(mp4_atom::Stco::default()),
                ..Default::default()
            };
            boxes::trak(
                c,
                i as u32 + 1,
                &boxes::TrackTiming {
                    duration: 0,
                    media_duration: 0,
                    // Duration 0: the edit runs to the end of the media
                    // (fragments included).
                    edits: match delays.get(i).map(|&d| ticks(d, c.timescale)) {
                        Some(t) if t > 0 => vec![(0, Some(t as u64))],
                        _ => Vec::new(),
                    },
                    created,
                },
                stbl,
            )
        })
        .collect();
    mp4_atom::Moov {
        mvhd: boxes::mvhd(movie_ts, 0, configs.len(), created),
        mvex: Some(mp4_atom::Mvex {
            mehd: None,
            trex: (0..configs.len())
                .map(|i| mp4_atom::Trex {
                    track_id: i as u32 + 1,
                    default_sample_description_index: 1,
                    ..Default::default()
                })
                .collect(),
        }),
        trak: traks,
        ..Default::default()
    }
    .encode(&mut out)
    .map_err(enc_err)?;
    Ok(out)
}

/// The `styp` that starts a media segment.
pub fn styp(configs: &[&CodecConfig]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = mp4_atom::Styp {
        major_brand: FourCC::new(b"msdh"),
        minor_version: 0,
        compatible_brands: {
            let mut b = vec![FourCC::new(b"msdh"), FourCC::new(b"msix")];
            b.extend(boxes::brands(configs, true));
            b
        },
    }
    .encode(&mut out);
    out
}

/// One track's part of a fragment.
pub struct FragTrack<'a> {
    /// Track id in the init segment (1-based).
    pub track_id: u32,
    pub config: &'a CodecConfig,
    /// Samples in decode order.
    pub samples: &'a [Sample],
    /// Decode time of the sample after the last one (its duration).
    pub next_dts: Option<i64>,
    /// Subtracted from sample times (ns) to get recording time.
    pub offset: i64,
    /// Initial composition delay (ns) added to decode and presentation
    /// times (the init segment's edit list takes it off).
    pub delay: i64,
    /// The random-access point that the samples follow when it is in an
    /// earlier fragment (its leading pictures are flagged as such).
    pub rap: Option<&'a Sample>,
}

/// A fragment ready to be appended to a segment file.
pub struct Fragment {
    /// `moof` and the `mdat` header.
    pub header: Vec<u8>,
    /// The sample data, in `mdat` order.
    pub payload: Vec<Bytes>,
    /// Total size in bytes.
    pub size: u64,
    /// Recording time (ns) of the first presented frame of the first track
    /// and of the end of that track's media.
    pub start: i64,
    pub end: i64,
}

/// Builds fragment `sequence` (1-based, increasing) from the tracks.
pub fn fragment(sequence: u32, tracks: &[FragTrack<'_>]) -> Result<Fragment, WriteError> {
    let tracks: Vec<&FragTrack> = tracks.iter().filter(|t| !t.samples.is_empty()).collect();
    if tracks.is_empty() {
        return Err(WriteError::Empty);
    }
    let mut trafs = Vec::new();
    let mut data_sizes = Vec::new();
    let mut start = i64::MAX;
    let mut end = i64::MIN;
    for (k, t) in tracks.iter().enumerate() {
        let ts = t.config.timescale;
        let n = t.samples.len();
        let dts: Vec<i64> = t
            .samples
            .iter()
            .map(|s| ticks(s.dts - t.offset + t.delay, ts))
            .collect();
        let mut entries = Vec::with_capacity(n);
        let mut bytes = 0u64;
        let mut rap: Option<&Sample> = t.rap;
        // Where the first track's presentation starts: its first
        // random-access point (pictures before it lead it or belong to the
        // fragment before), else its earliest picture.
        let first_rap = t.samples.iter().find(|s| s.keyframe).map(|s| s.pts);
        for (i, s) in t.samples.iter().enumerate() {
            let d = if i + 1 < n {
                dts[i + 1] - dts[i]
            } else if let Some(next) = t.next_dts {
                ticks(next - t.offset + t.delay, ts) - dts[i]
            } else if s.duration > 0 {
                ticks(s.dts + s.duration as i64 - t.offset + t.delay, ts) - dts[i]
            } else if i > 0 {
                dts[i] - dts[i - 1]
            } else {
                1
            };
            let d = d.clamp(0, i64::from(u32::MAX)) as u32;
            let ct = ticks(s.pts - t.offset + t.delay, ts);
            if k == 0 {
                start = start.min(first_rap.unwrap_or(s.pts) - t.offset);
                end = end.max(s.pts - t.offset + (i64::from(d) * 1_000_000_000 / i64::from(ts)));
            }
            entries.push(mp4_atom::TrunEntry {
                duration: Some(d),
                size: Some(s.data.len() as u32),
                flags: Some(sample_flags(s, rap)),
                cts: (t.config.kind == TrackKind::Video).then_some(ct - dts[i]),
            });
            bytes += s.data.len() as u64;
            if s.keyframe {
                rap = Some(s);
            }
        }
        data_sizes.push(bytes);
        trafs.push(mp4_atom::Traf {
            tfhd: mp4_atom::Tfhd {
                track_id: t.track_id,
                default_base_is_moof: true,
                ..Default::default()
            },
            tfdt: Some(mp4_atom::Tfdt {
                base_media_decode_time: dts[0].max(0) as u64,
            }),
            trun: vec![mp4_atom::Trun {
                data_offset: Some(0),
                samples: mp4_atom::TrunSamples::Explicit(entries),
            }],
            ..Default::default()
        });
    }
    let mut moof = mp4_atom::Moof {
        mfhd: mp4_atom::Mfhd {
            sequence_number: sequence,
        },
        traf: trafs,
    };
    // Sizes don't depend on the offsets' values: encode once to measure.
    let mut probe = Vec::new();
    moof.encode(&mut probe).map_err(enc_err)?;
    let data_len: u64 = data_sizes.iter().sum();
    let mdat_header_len = if data_len + 8 > u64::from(u32::MAX) {
        16
    } else {
        8
    };
    let mut offset = probe.len() as u64 + mdat_header_len;
    for (traf, size) in moof.traf.iter_mut().zip(&data_sizes) {
        traf.trun[0].data_offset = Some(
            i32::try_from(offset)
                .map_err(|_| WriteError::Encode("fragment larger than 2 GiB".into()))?,
        );
        offset += size;
    }
    let mut header = Vec::with_capacity(probe.len() + 16);
    moof.encode(&mut header).map_err(enc_err)?;
    mp4_atom::Header {
        kind: FourCC::new(b"mdat"),
        size: Some(data_len as usize),
    }
    .encode(&mut header)
    .map_err(enc_err)?;
    let payload: Vec<Bytes> = tracks
        .iter()
        .flat_map(|t| t.samples.iter().map(|s| s.data.clone()))
        .collect();
    Ok(Fragment {
        size: header.len() as u64 + data_len,
        header,
        payload,
        start,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::testing::{aac as audio, h264 as video};

    fn s(pts: i64, dts: i64, key: bool, fill: u8) -> Sample {
        Sample {
            pts,
            dts,
            duration: 0,
            keyframe: key,
            access: crate::core::nal::Access::Unknown,
            data: Bytes::from(vec![fill; 10 + fill as usize]),
        }
    }

    fn decode<T: mp4_atom::Atom>(buf: &mut &[u8]) -> T {
        use mp4_atom::DecodeMaybe;
        T::decode_maybe(buf).unwrap().unwrap()
    }

    #[test]
    fn init_segment_has_mvex_and_sample_entries() {
        let (v, a) = (video(), audio());
        const F: i64 = 1_000_000_000 / 30;
        let init = init_segment(&[&v, &a], &[2 * F, 0], None).unwrap();
        let mut buf = init.as_slice();
        let ftyp: mp4_atom::Ftyp = decode(&mut buf);
        assert_eq!(ftyp.major_brand, FourCC::new(b"iso6"));
        assert!(ftyp.compatible_brands.contains(&FourCC::new(b"cmfc")));
        let moov: mp4_atom::Moov = decode(&mut buf);
        assert!(buf.is_empty());
        let mvex = moov.mvex.unwrap();
        assert_eq!(mvex.trex.len(), 2);
        assert_eq!(moov.trak.len(), 2);
        assert_eq!(moov.trak[0].mdia.mdhd.timescale, 15_360);
        assert_eq!(moov.trak[1].mdia.mdhd.timescale, 48_000);
        assert!(matches!(
            moov.trak[0].mdia.minf.stbl.stsd.codecs[0],
            mp4_atom::Codec::Avc1(_)
        ));
        // The video's composition delay is taken off by its edit list (two
        // frames of 512 ticks; duration 0: to the end of the fragments);
        // audio has none.
        let elst = moov.trak[0].edts.as_ref().unwrap().elst.as_ref().unwrap();
        assert_eq!(elst.entries.len(), 1);
        assert_eq!(elst.entries[0].segment_duration, 0);
        assert_eq!(elst.entries[0].media_time, Some(1024));
        assert!(moov.trak[1].edts.is_none());
    }

    #[test]
    fn fragment_with_b_frames_gets_delayed_media_times_and_correct_data_offsets() {
        let (v, a) = (video(), audio());
        const F: i64 = 1_000_000_000 / 30;
        // I P B B in decode order; pts 0 3 1 2, dts -1 0 1 2 (frames).
        let vs = vec![
            s(0, -F, true, 1),
            s(3 * F, 0, false, 2),
            s(F, F, false, 3),
            s(2 * F, 2 * F, false, 4),
        ];
        let aus: Vec<Sample> = (0..6)
            .map(|i| s(i * 21_333_333, i * 21_333_333, true, 20 + i as u8))
            .collect();
        let frag = fragment(
            7,
            &[
                FragTrack {
                    track_id: 1,
                    config: &v,
                    samples: &vs,
                    next_dts: Some(3 * F),
                    offset: 0,
                    delay: F,
                    rap: None,
                },
                FragTrack {
                    track_id: 2,
                    config: &a,
                    samples: &aus,
                    next_dts: None,
                    offset: 0,
                    delay: 0,
                    rap: None,
                },
            ],
        )
        .unwrap();
        let mut bytes = frag.header.clone();
        for p in &frag.payload {
            bytes.extend_from_slice(p);
        }
        assert_eq!(bytes.len() as u64, frag.size);
        let mut buf = bytes.as_slice();
        let moof: mp4_atom::Moof = decode(&mut buf);
        assert_eq!(moof.mfhd.sequence_number, 7);
        let vt = &moof.traf[0];
        // Media times are recording times plus the delay (one frame): the
        // first decode time is 0, composition offsets are never negative.
        assert_eq!(vt.tfdt.as_ref().unwrap().base_media_decode_time, 0);
        let mp4_atom::TrunSamples::Explicit(e) = &vt.trun[0].samples else {
            panic!("explicit trun")
        };
        let cts: Vec<i64> = e.iter().map(|e| e.cts.unwrap()).collect();
        assert_eq!(cts, vec![512, 1536, 0, 0]);
        assert!(e.iter().all(|e| e.duration == Some(512)));
        assert_eq!(e[0].flags, Some(FLAGS_SYNC));
        assert_eq!(e[1].flags, Some(FLAGS_NON_SYNC));
        // Data offsets point at each track's first sample in the mdat.
        let moof_len = bytes.len() - buf.len();
        let off_v = vt.trun[0].data_offset.unwrap() as usize;
        assert_eq!(off_v, moof_len + 8);
        assert_eq!(bytes[off_v], 1);
        let off_a = moof.traf[1].trun[0].data_offset.unwrap() as usize;
        assert_eq!(bytes[off_a], 20);
        assert_eq!(off_a - off_v, (11 + 12 + 13 + 14) as usize);
        assert_eq!(frag.start, 0);
        assert_eq!(frag.end, 4 * F);
    }

    #[test]
    fn recording_offset_shifts_decode_times() {
        let a = audio();
        let aus: Vec<Sample> = (0..3)
            .map(|i| {
                s(
                    10_000_000_000 + i * 21_333_333,
                    10_000_000_000 + i * 21_333_333,
                    true,
                    1,
                )
            })
            .collect();
        let frag = fragment(
            1,
            &[FragTrack {
                track_id: 1,
                config: &a,
                samples: &aus,
                next_dts: None,
                offset: 4_000_000_000,
                delay: 0,
                rap: None,
            }],
        )
        .unwrap();
        let mut buf = frag.header.as_slice();
        let moof: mp4_atom::Moof = decode(&mut buf);
        assert_eq!(
            moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time,
            6 * 48_000
        );
        assert_eq!(frag.start, 6_000_000_000);
        assert!(matches!(fragment(1, &[]), Err(WriteError::Empty)));
    }
}
