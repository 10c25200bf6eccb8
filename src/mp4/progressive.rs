// SPDX-License-Identifier: MPL-2.0
//! Progressive, faststart MP4: `ftyp`, `moov`, then one `mdat`.
//!
//! The whole layout is computed before the first byte is written, so the file
//! size is known up front and the output can be streamed (HTTP) as well as
//! written to a file. Sample tables carry `stss` for sync samples, `ctts` for
//! reordered (B-)frames, `co64` when offsets pass 4 GiB, and an edit list that
//! makes presentation start at the clip's start even when decoding has to
//! begin earlier (a keyframe before the start, B-frame delay, audio priming).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mp4_atom::{Encode, FourCC};

use super::CodecConfig;
use crate::core::{Sample, TrackKind};

/// Interleave chunks of at most this much media, so that a player reading
/// front to back holds little of one track while waiting for the other.
const CHUNK_NS: i64 = 500_000_000;
/// Seconds between 1904-01-01 (MP4 epoch) and 1970-01-01.
const MP4_EPOCH_OFFSET: u64 = 2_082_844_800;

/// One track of a clip: its samples in decode order.
#[derive(Debug, Clone)]
pub struct ClipTrack {
    pub config: Arc<CodecConfig>,
    pub samples: Vec<Sample>,
    /// Decode time of the sample that follows the last one in the stream, if
    /// known: it gives the last sample its exact duration.
    pub next_dts: Option<i64>,
}

/// A clip to write: tracks plus the presentation window.
#[derive(Debug, Clone)]
pub struct Mp4Clip {
    pub tracks: Vec<ClipTrack>,
    /// Presentation starts here (ns, the clock of the samples). Samples that
    /// decode earlier are kept but hidden by the edit list.
    pub start: i64,
    /// Presentation ends here; `None` for the end of the media.
    pub end: Option<i64>,
    /// Wall-clock time of `start`, for `mvhd` creation time.
    pub creation_time: Option<chrono::DateTime<chrono::Utc>>,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// File size.
    pub bytes: u64,
    /// Presentation duration of the movie, ns.
    pub duration: u64,
    /// Samples per written track, in track order.
    pub samples: Vec<usize>,
    /// Whether 64-bit chunk offsets (`co64`) were needed.
    pub co64: bool,
}

/// Errors while laying out or writing a clip.
#[derive(Debug)]
pub enum WriteError {
    /// Nothing to write (no track has a sample to present).
    Empty,
    /// A box could not be encoded (a codec configuration mp4-atom rejects).
    Encode(String),
    Io(io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Empty => f.write_str("the clip holds no media"),
            WriteError::Encode(e) => write!(f, "cannot encode MP4 boxes: {e}"),
            WriteError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for WriteError {}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

fn enc_err(e: mp4_atom::Error) -> WriteError {
    WriteError::Encode(e.to_string())
}

/// `value * to / from`, rounded to nearest.
fn rescale(value: i64, from: u64, to: u64) -> i64 {
    let v = value as i128 * to as i128;
    let f = from as i128;
    let r = if v >= 0 {
        (v + f / 2) / f
    } else {
        (v - f / 2) / f
    };
    r.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

fn ticks(ns: i64, timescale: u32) -> i64 {
    rescale(ns, 1_000_000_000, u64::from(timescale))
}

/// Sample tables of one track, in the track's timescale.
struct TrackTables {
    index: usize,
    durations: Vec<u32>,
    /// Composition offsets (pts - dts), may be negative before normalising.
    offsets: Vec<i64>,
    sizes: Vec<u32>,
    sync: Option<Vec<u32>>,
    media_duration: u64,
    /// Edit list: (segment duration in movie ticks, media time or None).
    edits: Vec<(u64, Option<u64>)>,
    /// Chunks: (first sample, sample count) in this track.
    chunks: Vec<(usize, usize)>,
}

/// The computed layout of a clip: everything before the sample data, and the
/// order of the sample data.
pub struct Layout<'a> {
    clip: &'a Mp4Clip,
    header: Vec<u8>,
    /// (track, first sample, count), in file order.
    order: Vec<(usize, usize, usize)>,
    stats: WriteStats,
}

impl Layout<'_> {
    /// Size of the whole file.
    pub fn size(&self) -> u64 {
        self.stats.bytes
    }

    pub fn stats(&self) -> &WriteStats {
        &self.stats
    }

    /// Writes the file; returns what was written.
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<WriteStats> {
        w.write_all(&self.header)?;
        for &(t, first, count) in &self.order {
            for s in &self.clip.tracks[t].samples[first..first + count] {
                w.write_all(&s.data)?;
            }
        }
        Ok(self.stats.clone())
    }
}

impl Mp4Clip {
    /// Computes the layout (boxes and data order) without writing.
    pub fn layout(&self) -> Result<Layout<'_>, WriteError> {
        let movie_ts = self
            .tracks
            .iter()
            .find(|t| t.config.kind == TrackKind::Video && !t.samples.is_empty())
            .or_else(|| self.tracks.iter().find(|t| !t.samples.is_empty()))
            .map(|t| t.config.timescale)
            .ok_or(WriteError::Empty)?;

        let mut tables: Vec<TrackTables> = self
            .tracks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| self.tables(i, t, movie_ts))
            .collect();
        if tables.is_empty() {
            return Err(WriteError::Empty);
        }
        let order = interleave(&self.tracks, &mut tables);
        let data_len: u64 = tables
            .iter()
            .map(|tb| tb.sizes.iter().map(|&s| u64::from(s)).sum::<u64>())
            .sum();

        let mut brands = vec![FourCC::new(b"isom"), FourCC::new(b"iso2")];
        if tables
            .iter()
            .any(|t| self.tracks[t.index].config.name == "h264")
        {
            brands.push(FourCC::new(b"avc1"));
        }
        brands.push(FourCC::new(b"mp41"));
        let ftyp = mp4_atom::Ftyp {
            major_brand: FourCC::new(b"isom"),
            minor_version: 512,
            compatible_brands: brands,
        };
        let mut head = Vec::new();
        ftyp.encode(&mut head).map_err(enc_err)?;

        // First pass with zero offsets gives the moov size; offsets don't
        // change it as long as the offset width stays the same.
        let zero: Vec<Vec<u64>> = tables.iter().map(|t| vec![0; t.chunks.len()]).collect();
        let mdat_header_len = |len: u64| if len + 8 > u64::from(u32::MAX) { 16 } else { 8 };
        let mut co64 = false;
        let mut moov = self.moov(&tables, &zero, co64, movie_ts)?;
        let mut data_start = head.len() as u64 + moov.len() as u64 + mdat_header_len(data_len);
        if data_start + data_len > u64::from(u32::MAX) {
            co64 = true;
            moov = self.moov(&tables, &zero, co64, movie_ts)?;
            data_start = head.len() as u64 + moov.len() as u64 + mdat_header_len(data_len);
        }

        // Chunk offsets from the data order.
        let mut offsets: Vec<Vec<u64>> = tables
            .iter()
            .map(|t| Vec::with_capacity(t.chunks.len()))
            .collect();
        let mut pos = data_start;
        for &(t, first, count) in &order {
            let k = tables.iter().position(|tb| tb.index == t).unwrap_or(0);
            offsets[k].push(pos);
            let tb = &tables[k];
            // `first` is a sample index of the track; sizes are per sample.
            pos += tb.sizes[first..first + count]
                .iter()
                .map(|&s| u64::from(s))
                .sum::<u64>();
        }
        let final_moov = self.moov(&tables, &offsets, co64, movie_ts)?;
        debug_assert_eq!(final_moov.len(), moov.len());
        head.extend_from_slice(&final_moov);
        mp4_atom::Header {
            kind: FourCC::new(b"mdat"),
            size: Some(data_len as usize),
        }
        .encode(&mut head)
        .map_err(enc_err)?;

        let duration = tables
            .iter()
            .map(|t| t.edits.iter().map(|e| e.0).sum::<u64>())
            .max()
            .unwrap_or(0);
        let stats = WriteStats {
            bytes: head.len() as u64 + data_len,
            duration: rescale(duration as i64, u64::from(movie_ts), 1_000_000_000) as u64,
            samples: tables.iter().map(|t| t.sizes.len()).collect(),
            co64,
        };
        Ok(Layout {
            clip: self,
            header: head,
            order,
            stats,
        })
    }

    /// Writes the clip to `w`.
    pub fn write_to<W: Write>(&self, w: &mut W) -> Result<WriteStats, WriteError> {
        let layout = self.layout()?;
        Ok(layout.write_to(w)?)
    }

    /// Writes the clip to `path` through a temporary file in the same
    /// directory that is renamed into place, so that no reader ever sees a
    /// partial file. With `sync`, data reaches the disk before the rename.
    pub fn write_file(&self, path: &Path, sync: bool) -> Result<WriteStats, WriteError> {
        let layout = self.layout()?;
        let tmp = temp_path(path);
        let result = (|| -> io::Result<WriteStats> {
            let file = File::create(&tmp)?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            let stats = layout.write_to(&mut w)?;
            let file = w.into_inner().map_err(|e| e.into_error())?;
            if sync {
                file.sync_all()?;
            }
            drop(file);
            std::fs::rename(&tmp, path)?;
            Ok(stats)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(result?)
    }

    fn tables(&self, index: usize, track: &ClipTrack, movie_ts: u32) -> Option<TrackTables> {
        let samples = &track.samples;
        let n = samples.len();
        if n == 0 {
            return None;
        }
        let ts = track.config.timescale;
        let dts: Vec<i64> = samples.iter().map(|s| ticks(s.dts, ts)).collect();
        let mut durations = Vec::with_capacity(n);
        for i in 0..n {
            let d = if i + 1 < n {
                dts[i + 1] - dts[i]
            } else if let Some(next) = track.next_dts {
                ticks(next, ts) - dts[i]
            } else if samples[i].duration > 0 {
                ticks(
                    samples[i].dts.saturating_add(samples[i].duration as i64),
                    ts,
                ) - dts[i]
            } else {
                durations.last().map_or(0, |&d: &u32| i64::from(d))
            };
            // Decode times must not go backwards; a broken stream gets
            // zero-length samples rather than a corrupt table.
            durations.push(d.clamp(0, i64::from(u32::MAX)) as u32);
        }
        if durations[n - 1] == 0 {
            durations[n - 1] = 1;
        }
        let mut decode = dts[0];
        let mut offsets = Vec::with_capacity(n);
        let mut first_ct = i64::MAX;
        let mut end_ct = i64::MIN;
        for (i, s) in samples.iter().enumerate() {
            let ct = ticks(s.pts, ts);
            offsets.push(ct - decode);
            first_ct = first_ct.min(ct);
            end_ct = end_ct.max(ct + i64::from(durations[i]));
            decode += i64::from(durations[i]);
        }
        let media_duration = (decode - dts[0]) as u64;

        // Edit list: an empty edit when the track starts after the clip,
        // then the presented part of the media.
        let start = ticks(self.start, ts);
        let pres_start = start.max(first_ct);
        let pres_end = self.end.map_or(end_ct, |e| ticks(e, ts).min(end_ct));
        if pres_end <= pres_start {
            return None;
        }
        let mut edits = Vec::new();
        if pres_start > start {
            edits.push((
                rescale(pres_start - start, u64::from(ts), u64::from(movie_ts)) as u64,
                None,
            ));
        }
        edits.push((
            rescale(pres_end - pres_start, u64::from(ts), u64::from(movie_ts)) as u64,
            Some((pres_start - dts[0]) as u64),
        ));

        let sync = if samples.iter().all(|s| s.keyframe) {
            None
        } else {
            Some(
                samples
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.keyframe)
                    .map(|(i, _)| i as u32 + 1)
                    .collect(),
            )
        };
        Some(TrackTables {
            index,
            durations,
            offsets,
            sizes: samples.iter().map(|s| s.data.len() as u32).collect(),
            sync,
            media_duration,
            edits,
            chunks: Vec::new(),
        })
    }

    fn moov(
        &self,
        tables: &[TrackTables],
        offsets: &[Vec<u64>],
        co64: bool,
        movie_ts: u32,
    ) -> Result<Vec<u8>, WriteError> {
        let created = self
            .creation_time
            .map_or(0, |t| (t.timestamp().max(0) as u64) + MP4_EPOCH_OFFSET);
        let mut traks = Vec::new();
        let mut movie_duration = 0;
        for (k, tb) in tables.iter().enumerate() {
            let config = &self.tracks[tb.index].config;
            let track_duration: u64 = tb.edits.iter().map(|e| e.0).sum();
            movie_duration = movie_duration.max(track_duration);
            let video = config.kind == TrackKind::Video;
            let stts = mp4_atom::Stts {
                entries: run_lengths(tb.durations.iter().copied())
                    .map(|(count, delta)| mp4_atom::SttsEntry {
                        sample_count: count,
                        sample_delta: delta,
                    })
                    .collect(),
            };
            let ctts = tb.offsets.iter().any(|&o| o != 0).then(|| mp4_atom::Ctts {
                entries: run_lengths(tb.offsets.iter().copied())
                    .map(|(count, offset)| mp4_atom::CttsEntry {
                        sample_count: count,
                        sample_offset: offset,
                    })
                    .collect(),
            });
            let mut stsc = Vec::new();
            let mut last_count = 0;
            for (c, &(_, count)) in tb.chunks.iter().enumerate() {
                if count != last_count {
                    stsc.push(mp4_atom::StscEntry {
                        first_chunk: c as u32 + 1,
                        samples_per_chunk: count as u32,
                        sample_description_index: 1,
                    });
                    last_count = count;
                }
            }
            let sizes = if tb.sizes.iter().all(|&s| s == tb.sizes[0]) {
                mp4_atom::StszSamples::Identical {
                    count: tb.sizes.len() as u32,
                    size: tb.sizes[0],
                }
            } else {
                mp4_atom::StszSamples::Different {
                    sizes: tb.sizes.clone(),
                }
            };
            let (stco, co64_box) = if co64 {
                (
                    None,
                    Some(mp4_atom::Co64 {
                        entries: offsets[k].clone(),
                    }),
                )
            } else {
                (
                    Some(mp4_atom::Stco {
                        entries: offsets[k].iter().map(|&o| o as u32).collect(),
                    }),
                    None,
                )
            };
            let stbl = mp4_atom::Stbl {
                stsd: mp4_atom::Stsd {
                    codecs: vec![config.entry.clone()],
                },
                stts,
                ctts,
                stss: tb.sync.clone().map(|entries| mp4_atom::Stss { entries }),
                stsc: mp4_atom::Stsc { entries: stsc },
                stsz: mp4_atom::Stsz { samples: sizes },
                stco,
                co64: co64_box,
                ..Default::default()
            };
            let minf = mp4_atom::Minf {
                vmhd: video.then(mp4_atom::Vmhd::default),
                smhd: (!video).then(mp4_atom::Smhd::default),
                dinf: mp4_atom::Dinf {
                    dref: mp4_atom::Dref {
                        entries: vec![mp4_atom::DrefEntry::Url(mp4_atom::Url::default())],
                    },
                },
                stbl,
                ..Default::default()
            };
            let elst = mp4_atom::Elst {
                entries: tb
                    .edits
                    .iter()
                    .map(|&(segment_duration, media_time)| mp4_atom::ElstEntry {
                        segment_duration,
                        media_time,
                        media_rate: 1i16.into(),
                    })
                    .collect(),
            };
            traks.push(mp4_atom::Trak {
                tkhd: mp4_atom::Tkhd {
                    creation_time: created,
                    modification_time: created,
                    track_id: k as u32 + 1,
                    duration: track_duration,
                    enabled: true,
                    in_movie: true,
                    alternate_group: 0,
                    volume: if video { 0u8.into() } else { 1u8.into() },
                    width: (config.width.min(u32::from(u16::MAX)) as u16).into(),
                    height: (config.height.min(u32::from(u16::MAX)) as u16).into(),
                    ..Default::default()
                },
                edts: Some(mp4_atom::Edts { elst: Some(elst) }),
                mdia: mp4_atom::Mdia {
                    mdhd: mp4_atom::Mdhd {
                        creation_time: created,
                        modification_time: created,
                        timescale: config.timescale,
                        duration: tb.media_duration,
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
                    minf,
                },
                ..Default::default()
            });
        }
        let moov = mp4_atom::Moov {
            mvhd: mp4_atom::Mvhd {
                creation_time: created,
                modification_time: created,
                timescale: movie_ts,
                duration: movie_duration,
                rate: 1u16.into(),
                volume: 1u8.into(),
                next_track_id: tables.len() as u32 + 1,
                ..Default::default()
            },
            trak: traks,
            ..Default::default()
        };
        let mut out = Vec::new();
        moov.encode(&mut out).map_err(enc_err)?;
        Ok(out)
    }
}

/// Orders the data in chunks of at most [`CHUNK_NS`] per track, by decode
/// time across tracks; fills each table's chunk list.
fn interleave(tracks: &[ClipTrack], tables: &mut [TrackTables]) -> Vec<(usize, usize, usize)> {
    let mut cursor = vec![0usize; tables.len()];
    let mut order = Vec::new();
    loop {
        let next = (0..tables.len())
            .filter(|&k| cursor[k] < tracks[tables[k].index].samples.len())
            .min_by_key(|&k| tracks[tables[k].index].samples[cursor[k]].dts);
        let Some(k) = next else { break };
        let samples = &tracks[tables[k].index].samples;
        let first = cursor[k];
        let limit = samples[first].dts.saturating_add(CHUNK_NS);
        let mut end = first + 1;
        while end < samples.len() && samples[end].dts < limit {
            end += 1;
        }
        cursor[k] = end;
        tables[k].chunks.push((first, end - first));
        order.push((tables[k].index, first, end - first));
    }
    // `order` names tracks by clip index; callers map back to tables.
    order
}

fn run_lengths<T: PartialEq + Copy>(
    values: impl Iterator<Item = T>,
) -> impl Iterator<Item = (u32, T)> {
    let mut runs: Vec<(u32, T)> = Vec::new();
    for v in values {
        match runs.last_mut() {
            Some((count, last)) if *last == v && *count < u32::MAX => *count += 1,
            _ => runs.push((1, v)),
        }
    }
    runs.into_iter()
}

/// The temporary name a file is written under before it is renamed:
/// hidden, in the same directory (so the rename is atomic).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}
