// SPDX-License-Identifier: MPL-2.0
//! Reads fragments back from CMAF segment files: what they hold, and where
//! the last complete one ends (restart recovery cuts a torn tail off).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use mp4_atom::{Atom, FourCC, ReadFrom};

use super::time::to_ns;

/// One track's run in a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedRun {
    pub track_id: u32,
    /// `tfdt`, in the track's timescale.
    pub base_decode_time: u64,
    /// Sum of the sample durations, track timescale.
    pub duration: u64,
    pub samples: u32,
    /// Whether the first sample is a sync sample.
    pub starts_with_sync: bool,
    /// Whether every sample is flagged a leading picture (`is_leading`).
    pub leading: bool,
}

/// A complete `moof` + `mdat` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedFragment {
    pub offset: u64,
    pub size: u64,
    pub sequence: u32,
    pub runs: Vec<ScannedRun>,
}

/// What a segment file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScannedSegment {
    pub fragments: Vec<ScannedFragment>,
    /// Bytes up to the end of the last complete fragment.
    pub valid_len: u64,
    /// File size; larger than `valid_len` when the tail is torn.
    pub file_len: u64,
}

/// The `moov` of an init segment.
pub fn read_moov(init: &[u8]) -> Option<mp4_atom::Moov> {
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

/// Scans a segment file. Never fails on damaged content: it stops at the
/// first box that is incomplete or not what a segment holds.
pub fn scan_segment(path: &Path) -> std::io::Result<ScannedSegment> {
    let mut f = std::fs::File::open(path)?;
    let file_len = f.metadata()?.len();
    let mut out = ScannedSegment {
        file_len,
        ..Default::default()
    };
    let mut pos = 0u64;
    let mut pending_moof: Option<(u64, mp4_atom::Moof)> = None;
    while pos < file_len {
        f.seek(SeekFrom::Start(pos))?;
        let Ok(header) = mp4_atom::Header::read_from(&mut f) else {
            break;
        };
        let Some(body) = header.size.map(|s| s as u64) else {
            break;
        };
        let header_len = f.stream_position()? - pos;
        let end = pos + header_len + body;
        if end > file_len {
            break;
        }
        if header.kind == mp4_atom::Moof::KIND {
            if body > 16 << 20 {
                break;
            }
            let mut buf = vec![0u8; body as usize];
            f.read_exact(&mut buf)?;
            match mp4_atom::Moof::decode_body(&mut buf.as_slice()) {
                Ok(moof) => pending_moof = Some((pos, moof)),
                Err(_) => break,
            }
        } else if header.kind == FourCC::new(b"mdat") {
            let Some((start, moof)) = pending_moof.take() else {
                break;
            };
            out.fragments.push(ScannedFragment {
                offset: start,
                size: end - start,
                sequence: moof.mfhd.sequence_number,
                runs: moof.traf.iter().map(run).collect(),
            });
            out.valid_len = end;
        } else if header.kind == FourCC::new(b"styp") && out.fragments.is_empty() {
            out.valid_len = end;
        } else if pending_moof.is_some() {
            break;
        }
        pos = end;
    }
    Ok(out)
}

fn run(traf: &mp4_atom::Traf) -> ScannedRun {
    let mut duration = 0u64;
    let mut samples = 0u32;
    let mut first_flags = None;
    let mut leading = true;
    for trun in &traf.trun {
        if let mp4_atom::TrunSamples::Explicit(entries) = &trun.samples {
            for e in entries {
                duration += u64::from(
                    e.duration
                        .or(traf.tfhd.default_sample_duration)
                        .unwrap_or(0),
                );
                samples += 1;
                let flags = e.flags.or(traf.tfhd.default_sample_flags);
                if first_flags.is_none() {
                    first_flags = flags;
                }
                leading &= flags.is_some_and(|f| (f >> 26) & 3 != 0);
            }
        }
    }
    ScannedRun {
        track_id: traf.tfhd.track_id,
        base_decode_time: traf.tfdt.as_ref().map_or(0, |t| t.base_media_decode_time),
        duration,
        samples,
        starts_with_sync: first_flags.is_some_and(|f| f & 0x0001_0000 == 0),
        leading: leading && samples > 0,
    }
}

/// How a stored track's media times become presentation times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredTrack {
    pub timescale: u32,
    /// The media time its edit list starts presentation at (the initial
    /// composition delay), in `timescale` ticks; 0 without an edit list.
    pub edit: u64,
}

impl StoredTrack {
    /// A track of an init segment: its timescale, and the first non-empty
    /// edit of its edit list (the edits a fragmented recording writes).
    pub fn of(trak: &mp4_atom::Trak) -> Self {
        let edit = trak
            .edts
            .as_ref()
            .and_then(|e| e.elst.as_ref())
            .and_then(|l| l.entries.iter().find_map(|e| e.media_time))
            .unwrap_or(0);
        Self {
            timescale: trak.mdia.mdhd.timescale,
            edit,
        }
    }
}

/// The samples of every complete fragment in `data` (a CMAF segment in
/// memory), per track (`tracks[i]` for track id `i + 1`), times in ns of the
/// track's presentation timeline (media time less its edit); the payloads
/// are slices of `data` (no copy).
pub fn fragment_samples(
    data: &bytes::Bytes,
    tracks: &[StoredTrack],
) -> Vec<Vec<crate::core::Sample>> {
    let mut out: Vec<Vec<crate::core::Sample>> = vec![Vec::new(); tracks.len()];
    let mut pos = 0usize;
    let mut moof: Option<(usize, mp4_atom::Moof)> = None;
    while pos + 8 <= data.len() {
        let mut buf = &data[pos..];
        let Ok(header) = <mp4_atom::Header as mp4_atom::Decode>::decode(&mut buf) else {
            break;
        };
        let header_len = data.len() - pos - buf.len();
        let Some(size) = header.size else { break };
        let end = pos + header_len + size;
        if end > data.len() {
            break;
        }
        if header.kind == mp4_atom::Moof::KIND {
            let mut body = &data[pos + header_len..end];
            moof = mp4_atom::Moof::decode_body(&mut body)
                .ok()
                .map(|m| (pos, m));
        } else if header.kind == FourCC::new(b"mdat") {
            let Some((moof_pos, m)) = moof.take() else {
                break;
            };
            for traf in &m.traf {
                let k = traf.tfhd.track_id as usize;
                let Some(&track) = k.checked_sub(1).and_then(|i| tracks.get(i)) else {
                    continue;
                };
                let ts = track.timescale;
                let mut decode =
                    i128::from(traf.tfdt.as_ref().map_or(0, |t| t.base_media_decode_time))
                        - i128::from(track.edit);
                for trun in &traf.trun {
                    let mut offset = moof_pos as i64 + i64::from(trun.data_offset.unwrap_or(0));
                    let mp4_atom::TrunSamples::Explicit(entries) = &trun.samples else {
                        continue;
                    };
                    for e in entries {
                        let size = e.size.or(traf.tfhd.default_sample_size).unwrap_or(0) as usize;
                        let dur = i128::from(
                            e.duration
                                .or(traf.tfhd.default_sample_duration)
                                .unwrap_or(0),
                        );
                        let flags = e.flags.or(traf.tfhd.default_sample_flags).unwrap_or(0);
                        let cts = i128::from(e.cts.unwrap_or(0));
                        let start = offset.max(0) as usize;
                        if start + size > data.len() {
                            break;
                        }
                        out[k - 1].push(crate::core::Sample {
                            pts: to_ns(decode + cts, ts),
                            dts: to_ns(decode, ts),
                            duration: to_ns(dur, ts).max(0) as u64,
                            keyframe: flags & 0x0001_0000 == 0,
                            access: crate::mp4::fragmented::access_of_flags(flags),
                            data: data.slice(start..start + size),
                        });
                        offset += size as i64;
                        decode += dur;
                    }
                }
            }
        }
        pos = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Sample, TrackKind};
    use crate::mp4::fragmented::{FragTrack, fragment};
    use crate::mp4::testing::aac as audio;
    use bytes::Bytes;

    #[test]
    fn scans_complete_fragments_and_stops_at_a_torn_tail() {
        let a = audio();
        assert_eq!(a.kind, TrackKind::Audio);
        let mut file = crate::mp4::fragmented::styp(&[&a]);
        let styp_len = file.len() as u64;
        let mut ends = Vec::new();
        for k in 0..3i64 {
            let samples: Vec<Sample> = (0..10)
                .map(|i| {
                    let t = (k * 10 + i) * 21_333_333;
                    Sample {
                        pts: t,
                        dts: t,
                        duration: 21_333_333,
                        keyframe: true,
                        access: crate::core::nal::Access::Unknown,
                        data: Bytes::from(vec![k as u8; 100]),
                    }
                })
                .collect();
            let f = fragment(
                k as u32 + 1,
                &[FragTrack {
                    track_id: 1,
                    config: &a,
                    samples: &samples,
                    next_dts: Some((k * 10 + 10) * 21_333_333),
                    offset: 0,
                    delay: 0,
                    rap: None,
                }],
            )
            .unwrap();
            file.extend_from_slice(&f.header);
            for p in f.payload {
                file.extend_from_slice(&p);
            }
            ends.push(file.len() as u64);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.m4s");
        std::fs::write(&path, &file).unwrap();
        let scan = scan_segment(&path).unwrap();
        assert_eq!(scan.fragments.len(), 3);
        assert_eq!(scan.valid_len, file.len() as u64);
        assert_eq!(scan.fragments[0].offset, styp_len);
        assert_eq!(scan.fragments[1].sequence, 2);
        let r = &scan.fragments[2].runs[0];
        assert_eq!((r.track_id, r.samples), (1, 10));
        assert_eq!(r.base_decode_time, 20 * 1024);
        assert_eq!(r.duration, 10 * 1024);
        assert!(r.starts_with_sync);

        // Torn in the last mdat, and in the last moof.
        for cut in [file.len() - 7, ends[1] as usize + 20] {
            std::fs::write(&path, &file[..cut]).unwrap();
            let scan = scan_segment(&path).unwrap();
            assert_eq!(scan.fragments.len(), 2, "cut at {cut}");
            assert_eq!(scan.valid_len, ends[1]);
            assert_eq!(scan.file_len, cut as u64);
        }
        // Garbage is not a fragment.
        std::fs::write(&path, b"garbage that is not an mp4 box at all").unwrap();
        let scan = scan_segment(&path).unwrap();
        assert!(scan.fragments.is_empty());
        assert_eq!(scan.valid_len, 0);
    }

    #[test]
    fn fragment_samples_round_trip() {
        let a = audio();
        let samples: Vec<Sample> = (0..5)
            .map(|i| Sample {
                pts: i * 21_333_333,
                dts: i * 21_333_333,
                duration: 21_333_333,
                keyframe: true,
                access: crate::core::nal::Access::Unknown,
                data: Bytes::from(vec![i as u8; 10 + i as usize]),
            })
            .collect();
        let f = fragment(
            1,
            &[FragTrack {
                track_id: 1,
                config: &a,
                samples: &samples,
                next_dts: Some(5 * 21_333_333),
                offset: 0,
                delay: 0,
                rap: None,
            }],
        )
        .unwrap();
        let mut data = f.header.clone();
        for p in &f.payload {
            data.extend_from_slice(p);
        }
        let audio = StoredTrack {
            timescale: 48_000,
            edit: 0,
        };
        let back = fragment_samples(&Bytes::from(data), &[audio]);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].len(), 5);
        for (x, y) in back[0].iter().zip(&samples) {
            assert_eq!(x.data, y.data);
            assert!((x.pts - y.pts).abs() < 30_000, "{} vs {}", x.pts, y.pts);
            assert!(x.keyframe);
        }
        // A torn copy yields only what is complete.
        let torn = Bytes::from(f.header[..f.header.len() - 3].to_vec());
        assert!(fragment_samples(&torn, &[audio])[0].is_empty());
    }

    /// A B-frame fragment written with its composition delay reads back at
    /// the times it was written with, once the init segment's edit is
    /// taken off.
    #[test]
    fn video_reads_back_at_recording_time_through_the_edit_list() {
        let v = crate::mp4::testing::h264();
        const F: i64 = 1_000_000_000 / 30;
        // I P B B in decode order: pts 0 3 1 2, dts -1 0 1 2 (frames).
        let times = [(0, -F), (3 * F, 0), (F, F), (2 * F, 2 * F)];
        let samples: Vec<Sample> = times
            .iter()
            .enumerate()
            .map(|(i, &(pts, dts))| Sample {
                pts: pts + 10 * F,
                dts: dts + 10 * F,
                duration: F as u64,
                keyframe: i == 0,
                access: crate::core::nal::Access::Unknown,
                data: Bytes::from(vec![i as u8; 5]),
            })
            .collect();
        let f = fragment(
            1,
            &[FragTrack {
                track_id: 1,
                config: &v,
                samples: &samples,
                next_dts: Some(13 * F),
                offset: 10 * F,
                delay: F,
                rap: None,
            }],
        )
        .unwrap();
        let mut data = f.header.clone();
        for p in &f.payload {
            data.extend_from_slice(p);
        }
        let init = crate::mp4::fragmented::init_segment(&[&v], &[F], None).unwrap();
        let moov = read_moov(&init).unwrap();
        let track = StoredTrack::of(&moov.trak[0]);
        assert_eq!(track.edit, 512);
        let back = fragment_samples(&Bytes::from(data), &[track]);
        let got: Vec<(i64, i64)> = back[0]
            .iter()
            .map(|s| ((s.pts + F / 2) / F, (s.dts + F / 2).div_euclid(F)))
            .collect();
        assert_eq!(got, vec![(0, -1), (3, 0), (1, 1), (2, 2)]);
    }
}
