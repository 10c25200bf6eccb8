// SPDX-License-Identifier: MPL-2.0
//! Progressive, faststart MP4: `ftyp`, `moov`, then one `mdat`.
//!
//! The whole layout is computed before the first byte is written, so the file
//! size is known up front and the output can be streamed (HTTP) as well as
//! written to a file. Sample tables carry `stss` for sync samples, `ctts` for
//! reordered (B-)frames, `co64` when offsets pass 4 GiB, and an edit list that
//! makes presentation start at the clip's start even when decoding has to
//! begin earlier (a keyframe before the start, B-frame delay, audio priming).

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use mp4_atom::{Encode, FourCC};

use super::time::{rescale, ticks};
use super::{CodecConfig, boxes};
use crate::core::atomic::write_atomic_with;
use crate::core::{Sample, TrackKind};

/// Interleave chunks of at most this much media, so that a player reading
/// front to back holds little of one track while waiting for the other.
const CHUNK_NS: i64 = 500_000_000;

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
    /// Written without edit lists (an exact cut): every track's first
    /// sample is presented at time 0, video through composition offsets
    /// (negative where B-frames need it, `ctts` version 1).
    pub exact: Option<ExactCut>,
}

/// How an exact cut is laid out: no edit list, and runs of re-encoded
/// samples with sample entries of their own.
#[derive(Debug, Clone, Default)]
pub struct ExactCut {
    pub reencoded: Vec<Reencoded>,
}

/// Samples `samples` of track `track` were re-encoded (the head of a smart
/// cut, or its tail): they use the sample entry of `config`, every other
/// sample the track's own. `stsd` lists the entries in the order their
/// samples come (the same entry once); chunks break where entries change.
#[derive(Debug, Clone)]
pub struct Reencoded {
    pub track: usize,
    pub samples: std::ops::Range<usize>,
    pub config: Arc<CodecConfig>,
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

pub(super) fn enc_err(e: mp4_atom::Error) -> WriteError {
    WriteError::Encode(e.to_string())
}

/// Squeezes a hidden pre-roll into one tick per sample.
///
/// A clip that starts after its keyframe carries the samples in between only
/// for the decoder; its edit list hides them. Left at their own pace they
/// put the presented media a whole pre-roll (up to a GOP) into the media
/// timeline, and GStreamer 1.22's qtdemux, which compares the media
/// position with the movie's duration after each keyframe, then ends the
/// track early: a short clip with a long pre-roll showed nothing at all.
/// With the pre-roll squeezed, media time and presentation time differ by a
/// few ticks, and every reader presents the same frames.
///
/// `durations` (decode order) and `ct` (composition times, ticks) are
/// rewritten in place; the samples before `j0`, the first in decode order
/// composed at or after `start`, get one tick each and composition times
/// in their original order just below the presented part. Returns how far
/// the presented part moved back (subtract it from `start`); 0 when there
/// is no pre-roll, or no room to keep composition offsets non-negative.
fn squeeze_preroll(durations: &mut [u32], ct: &mut [i64], dts0: i64, start: i64) -> i64 {
    let Some(j0) = ct.iter().position(|&c| c >= start) else {
        return 0;
    };
    if j0 == 0 {
        return 0;
    }
    let dts_j0 = dts0 + durations[..j0].iter().map(|&d| i64::from(d)).sum::<i64>();
    // Rank of each hidden sample's composition time among the hidden ones.
    let mut order: Vec<usize> = (0..j0).collect();
    order.sort_by_key(|&i| (ct[i], i));
    let mut rank = vec![0i64; j0];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r as i64;
    }
    // Composition times dts0 + base + rank: never before the sample's own
    // decode time (dts0 + i), all before the presented part begins.
    let base = (0..j0)
        .map(|i| i as i64 - rank[i])
        .max()
        .unwrap_or(0)
        .max(0);
    let shift = dts_j0 - (dts0 + j0 as i64);
    let gap = start - dts_j0;
    if shift <= 0 || base > gap {
        return 0;
    }
    for i in 0..j0 {
        durations[i] = 1;
        ct[i] = dts0 + base + rank[i];
    }
    for c in &mut ct[j0..] {
        *c -= shift;
    }
    shift
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
    /// Presented duration, movie ticks.
    presented: u64,
    /// Sample entries (more than one in an exact cut with re-encoded
    /// runs), and where each run of samples of one entry starts: (first
    /// sample, 1-based entry index), ascending.
    codecs: Vec<mp4_atom::Codec>,
    entry_runs: Vec<(usize, u32)>,
}

impl TrackTables {
    /// The 1-based sample entry index of sample `n`.
    fn entry_of(&self, n: usize) -> u32 {
        self.entry_runs
            .iter()
            .take_while(|&&(first, _)| first <= n)
            .last()
            .map_or(1, |&(_, e)| e)
    }

    /// The first sample after `n` whose entry differs from `n`'s.
    fn next_switch(&self, n: usize) -> Option<usize> {
        self.entry_runs
            .iter()
            .map(|&(first, _)| first)
            .find(|&first| first > n)
    }
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
        // Vectored writes straight from the samples' buffers: a large batch
        // bypasses any BufWriter, so the media is copied once, by the kernel.
        let mut slices: Vec<io::IoSlice> = Vec::with_capacity(WRITE_BATCH);
        slices.push(io::IoSlice::new(&self.header));
        for &(t, first, count) in &self.order {
            for s in &self.clip.tracks[t].samples[first..first + count] {
                if slices.len() == WRITE_BATCH {
                    write_all_vectored(w, &mut slices)?;
                }
                slices.push(io::IoSlice::new(&s.data));
            }
        }
        write_all_vectored(w, &mut slices)?;
        Ok(self.stats.clone())
    }
}

/// Slices handed to one `writev`.
const WRITE_BATCH: usize = 1024;

/// Writes every slice (as `Write::write_all_vectored`, which is unstable)
/// and empties the list.
fn write_all_vectored<W: Write>(w: &mut W, slices: &mut Vec<io::IoSlice<'_>>) -> io::Result<()> {
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match w.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    slices.clear();
    Ok(())
}

impl Mp4Clip {
    /// The file as a list of buffers (the header, then each sample's data:
    /// references, not copies) and its size: for streaming it, e.g. as an
    /// HTTP body with a Content-Length.
    pub fn chunks(&self) -> Result<(u64, Vec<bytes::Bytes>), WriteError> {
        let layout = self.layout()?;
        let mut out =
            Vec::with_capacity(1 + self.tracks.iter().map(|t| t.samples.len()).sum::<usize>());
        out.push(bytes::Bytes::from(layout.header.clone()));
        for &(t, first, count) in &layout.order {
            out.extend(
                self.tracks[t].samples[first..first + count]
                    .iter()
                    .map(|s| s.data.clone()),
            );
        }
        Ok((layout.size(), out))
    }

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

        let configs: Vec<&CodecConfig> = tables
            .iter()
            .map(|t| &*self.tracks[t.index].config)
            .collect();
        let brands = boxes::brands(&configs, false);
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

        let duration = tables.iter().map(|t| t.presented).max().unwrap_or(0);
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
        let mut stats = None;
        write_atomic_with(path, sync, |w| {
            stats = Some(layout.write_to(w)?);
            Ok(())
        })?;
        Ok(stats.unwrap_or_default())
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
        // Edit list: an empty edit when the track starts after the clip,
        // then the presented part of the media (its pre-roll squeezed).
        let mut ct: Vec<i64> = samples.iter().map(|s| ticks(s.pts, ts)).collect();
        let start = ticks(self.start, ts);
        if let Some(exact) = &self.exact {
            return Some(self.exact_tables(index, track, exact, durations, ct, &dts, movie_ts));
        }
        // Video only: an audio frame that the start cuts through is still
        // half presented.
        let start = if track.config.kind == TrackKind::Video {
            start - squeeze_preroll(&mut durations, &mut ct, dts[0], start)
        } else {
            start
        };
        let mut decode = dts[0];
        let mut offsets = Vec::with_capacity(n);
        let mut first_ct = i64::MAX;
        let mut end_ct = i64::MIN;
        for (i, &c) in ct.iter().enumerate() {
            offsets.push(c - decode);
            first_ct = first_ct.min(c);
            end_ct = end_ct.max(c + i64::from(durations[i]));
            decode += i64::from(durations[i]);
        }
        let media_duration = (decode - dts[0]) as u64;
        let shift = ticks(self.start, ts) - start;
        let pres_start = start.max(first_ct);
        let pres_end = self
            .end
            .map_or(end_ct, |e| (ticks(e, ts) - shift).min(end_ct));
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

        let presented = edits.iter().map(|e| e.0).sum();
        Some(TrackTables {
            index,
            durations,
            offsets,
            sizes: samples.iter().map(|s| s.data.len() as u32).collect(),
            sync: sync_table(samples),
            media_duration,
            edits,
            chunks: Vec::new(),
            presented,
            codecs: vec![track.config.entry.clone()],
            entry_runs: Vec::new(),
        })
    }

    /// The tables of an exact cut: no edit list; the first sample decodes
    /// at media time 0 and video is composed so that the first presented
    /// frame is at 0 too (offsets below zero where reordered frames decode
    /// before it). Audio starts at its first sample.
    #[allow(clippy::too_many_arguments)]
    fn exact_tables(
        &self,
        index: usize,
        track: &ClipTrack,
        exact: &ExactCut,
        durations: Vec<u32>,
        ct: Vec<i64>,
        dts: &[i64],
        movie_ts: u32,
    ) -> TrackTables {
        let samples = &track.samples;
        let ts = track.config.timescale;
        let video = track.config.kind == TrackKind::Video;
        let first_ct = if video {
            ct.iter().copied().min().unwrap_or(0)
        } else {
            dts[0]
        };
        let mut decode = 0i64;
        let mut offsets = Vec::with_capacity(samples.len());
        let mut end = 0i64;
        for (i, &c) in ct.iter().enumerate() {
            let o = if video { c - first_ct - decode } else { 0 };
            offsets.push(o);
            end = end.max(decode + o + i64::from(durations[i]));
            decode += i64::from(durations[i]);
        }
        let media_duration = decode.max(0) as u64;
        // Runs of samples by sample entry, each entry listed once, in the
        // order its samples first come.
        let mut runs: Vec<(usize, &mp4_atom::Codec)> = Vec::new();
        let mut n = 0;
        let mut reencoded: Vec<&Reencoded> = exact
            .reencoded
            .iter()
            .filter(|r| r.track == index && r.samples.start < r.samples.end)
            .collect();
        reencoded.sort_by_key(|r| r.samples.start);
        for r in reencoded {
            if r.samples.start > n {
                runs.push((n, &track.config.entry));
            }
            runs.push((r.samples.start, &r.config.entry));
            n = r.samples.end;
        }
        if n < samples.len() {
            runs.push((n, &track.config.entry));
        }
        let mut codecs: Vec<mp4_atom::Codec> = Vec::new();
        let mut entry_runs: Vec<(usize, u32)> = Vec::new();
        for (first, codec) in runs.into_iter().filter(|&(first, _)| first < samples.len()) {
            let entry = match codecs.iter().position(|c| c == codec) {
                Some(i) => i + 1,
                None => {
                    codecs.push(codec.clone());
                    codecs.len()
                }
            } as u32;
            if entry_runs.last().is_none_or(|&(_, e)| e != entry) {
                entry_runs.push((first, entry));
            }
        }
        if codecs.is_empty() {
            codecs.push(track.config.entry.clone());
        }
        TrackTables {
            index,
            durations,
            offsets,
            sizes: samples.iter().map(|s| s.data.len() as u32).collect(),
            sync: sync_table(samples),
            media_duration,
            edits: Vec::new(),
            chunks: Vec::new(),
            presented: rescale(end.max(0), u64::from(ts), u64::from(movie_ts)) as u64,
            codecs,
            entry_runs,
        }
    }

    fn moov(
        &self,
        tables: &[TrackTables],
        offsets: &[Vec<u64>],
        co64: bool,
        movie_ts: u32,
    ) -> Result<Vec<u8>, WriteError> {
        let created = boxes::mp4_time(self.creation_time);
        let mut traks = Vec::new();
        let mut movie_duration = 0;
        for (k, tb) in tables.iter().enumerate() {
            let config = &self.tracks[tb.index].config;
            let track_duration = tb.presented;
            movie_duration = movie_duration.max(track_duration);
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
            let mut last = (0, 0);
            for (c, &(first, count)) in tb.chunks.iter().enumerate() {
                let entry = tb.entry_of(first);
                if (count, entry) != last {
                    stsc.push(mp4_atom::StscEntry {
                        first_chunk: c as u32 + 1,
                        samples_per_chunk: count as u32,
                        sample_description_index: entry,
                    });
                    last = (count, entry);
                }
            }
            let codecs = tb.codecs.clone();
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
                stsd: mp4_atom::Stsd { codecs },
                stts,
                ctts,
                stss: tb.sync.clone().map(|entries| mp4_atom::Stss { entries }),
                stsc: mp4_atom::Stsc { entries: stsc },
                stsz: mp4_atom::Stsz { samples: sizes },
                stco,
                co64: co64_box,
                ..Default::default()
            };
            traks.push(boxes::trak(
                config,
                k as u32 + 1,
                &boxes::TrackTiming {
                    duration: track_duration,
                    media_duration: tb.media_duration,
                    edits: tb.edits.clone(),
                    created,
                },
                stbl,
            ));
        }
        let moov = mp4_atom::Moov {
            mvhd: boxes::mvhd(movie_ts, movie_duration, tables.len(), created),
            trak: traks,
            ..Default::default()
        };
        let mut out = Vec::new();
        moov.encode(&mut out).map_err(enc_err)?;
        Ok(out)
    }
}

/// `stss` entries (1-based), `None` when every sample is a sync sample.
fn sync_table(samples: &[Sample]) -> Option<Vec<u32>> {
    if samples.iter().all(|s| s.keyframe) {
        return None;
    }
    Some(
        samples
            .iter()
            .enumerate()
            .filter(|(_, s)| s.keyframe)
            .map(|(i, _)| i as u32 + 1)
            .collect(),
    )
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
        // A chunk holds samples of one sample entry.
        let switch = tables[k].next_switch(first);
        while end < samples.len() && samples[end].dts < limit && Some(end) != switch {
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

pub use crate::core::atomic::temp_path;

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mp4_atom::{Atom, Decode};

    /// Movie (= video) timescale for 30 fps.
    const TS: u64 = 15_360;
    /// One 30 fps frame in video ticks.
    const FRAME_TICKS: u32 = 512;
    const MS: i64 = 1_000_000;

    fn video_config() -> Arc<CodecConfig> {
        let c = crate::mp4::testing::h264();
        assert_eq!(u64::from(c.timescale), TS);
        Arc::new(c)
    }

    fn aac_config() -> Arc<CodecConfig> {
        Arc::new(crate::mp4::testing::aac())
    }

    /// Time of 30 fps frame `n`, ns.
    fn frame(n: i64) -> i64 {
        n * 1_000_000_000 / 30
    }

    fn sample(pts: i64, dts: i64, keyframe: bool, data: impl Into<Bytes>) -> Sample {
        Sample {
            pts,
            dts,
            duration: 0,
            keyframe,
            access: crate::core::nal::Access::Unknown,
            data: data.into(),
        }
    }

    fn track(config: Arc<CodecConfig>, samples: Vec<Sample>) -> ClipTrack {
        ClipTrack {
            config,
            samples,
            next_dts: None,
        }
    }

    fn clip(tracks: Vec<ClipTrack>) -> Mp4Clip {
        Mp4Clip {
            tracks,
            start: 0,
            end: None,
            creation_time: None,
            exact: None,
        }
    }

    /// `count` frames of a stream without reordering, every `key`-th a
    /// keyframe, data naming the frame.
    fn video_frames(count: i64, key: i64) -> Vec<Sample> {
        (0..count)
            .map(|n| sample(frame(n), frame(n), n % key == 0, format!("frame {n}")))
            .collect()
    }

    /// A top-level box: kind, offset of its body, size of its body.
    struct TopBox {
        kind: FourCC,
        body: usize,
        size: usize,
    }

    /// Top-level boxes of `data`; the last one may extend past its end (a
    /// layout header ends with the mdat header only).
    fn top_boxes(data: &[u8]) -> Vec<TopBox> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let mut buf = &data[pos..];
            let header = mp4_atom::Header::decode(&mut buf).unwrap();
            let body = data.len() - buf.len();
            let size = header.size.expect("box without size");
            out.push(TopBox {
                kind: header.kind,
                body,
                size,
            });
            pos = body + size;
        }
        out
    }

    fn kinds(boxes: &[TopBox]) -> Vec<FourCC> {
        boxes.iter().map(|b| b.kind).collect()
    }

    fn moov_of(data: &[u8]) -> mp4_atom::Moov {
        let boxes = top_boxes(data);
        let b = boxes
            .iter()
            .find(|b| b.kind == FourCC::new(b"moov"))
            .unwrap();
        let mut body = &data[b.body..b.body + b.size];
        let moov = mp4_atom::Moov::decode_body(&mut body).unwrap();
        assert!(body.is_empty(), "moov not fully decoded");
        moov
    }

    fn write(clip: &Mp4Clip) -> Vec<u8> {
        let mut out = Vec::new();
        let stats = clip.write_to(&mut out).unwrap();
        assert_eq!(stats.bytes, out.len() as u64);
        out
    }

    fn elst(trak: &mp4_atom::Trak) -> Vec<(u64, Option<u64>)> {
        trak.edts
            .as_ref()
            .and_then(|e| e.elst.as_ref())
            .expect("no edit list")
            .entries
            .iter()
            .map(|e| (e.segment_duration, e.media_time))
            .collect()
    }

    fn stts(trak: &mp4_atom::Trak) -> Vec<(u32, u32)> {
        trak.mdia
            .minf
            .stbl
            .stts
            .entries
            .iter()
            .map(|e| (e.sample_count, e.sample_delta))
            .collect()
    }

    fn ctts(trak: &mp4_atom::Trak) -> Option<Vec<(u32, i64)>> {
        trak.mdia.minf.stbl.ctts.as_ref().map(|c| {
            c.entries
                .iter()
                .map(|e| (e.sample_count, e.sample_offset))
                .collect()
        })
    }

    /// Movie ticks of a duration in ns.
    fn movie_ticks(ns: i64) -> u64 {
        ticks(ns, TS as u32) as u64
    }

    #[test]
    fn layout_orders_boxes_and_interleaves_chunks() {
        // Video at 0/250/500/750 ms and audio at 100/350/600/850 ms: chunks
        // of at most 500 ms hold two samples each, ordered by decode time.
        let v: Vec<Sample> = (0..4)
            .map(|i| {
                let t = i * 250 * MS;
                sample(
                    t,
                    t,
                    i % 2 == 0,
                    format!("video sample {i};").repeat(i as usize + 1),
                )
            })
            .collect();
        let a: Vec<Sample> = (0..4)
            .map(|i| {
                let t = 100 * MS + i * 250 * MS;
                sample(t, t, true, format!("audio {i}|").repeat(2 * i as usize + 1))
            })
            .collect();
        let c = clip(vec![
            track(video_config(), v.clone()),
            track(aac_config(), a.clone()),
        ]);
        let layout = c.layout().unwrap();
        let mut out = Vec::new();
        let stats = layout.write_to(&mut out).unwrap();
        assert_eq!(layout.size(), out.len() as u64);
        assert_eq!(stats.bytes, out.len() as u64);
        assert_eq!(stats.samples, vec![4, 4]);
        assert!(!stats.co64);
        // Video: 1 s; audio: 100 ms empty + 1 s from 100 ms.
        assert_eq!(stats.duration, 1_100_000_000);

        let boxes = top_boxes(&out);
        assert_eq!(
            kinds(&boxes),
            [b"ftyp", b"moov", b"mdat"].map(FourCC::new).to_vec()
        );
        let mdat = &boxes[2];
        assert_eq!(mdat.body + mdat.size, out.len());

        let ftyp =
            mp4_atom::Ftyp::decode_body(&mut &out[boxes[0].body..boxes[0].body + boxes[0].size])
                .unwrap();
        assert_eq!(ftyp.major_brand, FourCC::new(b"isom"));
        assert!(ftyp.compatible_brands.contains(&FourCC::new(b"avc1")));

        // Data: v0 v1 | a0 a1 | v2 v3 | a2 a3.
        let order = [&v[0], &v[1], &a[0], &a[1], &v[2], &v[3], &a[2], &a[3]];
        let expected: Vec<u8> = order.iter().flat_map(|s| s.data.iter().copied()).collect();
        assert_eq!(&out[mdat.body..], &expected[..]);

        let moov = moov_of(&out);
        assert_eq!(moov.mvhd.timescale, TS as u32);
        assert_eq!(moov.mvhd.duration, movie_ticks(1_100 * MS));
        assert_eq!(moov.mvhd.next_track_id, 3);
        assert_eq!(moov.trak.len(), 2);
        for (trak, samples, handler) in [(&moov.trak[0], &v, b"vide"), (&moov.trak[1], &a, b"soun")]
        {
            assert_eq!(trak.mdia.hdlr.handler, FourCC::new(handler));
            let stbl = &trak.mdia.minf.stbl;
            assert!(stbl.co64.is_none());
            let offsets = &stbl.stco.as_ref().expect("no stco").entries;
            assert_eq!(offsets.len(), 2);
            assert_eq!(
                stbl.stsc.entries,
                vec![mp4_atom::StscEntry {
                    first_chunk: 1,
                    samples_per_chunk: 2,
                    sample_description_index: 1,
                }]
            );
            assert_eq!(
                stbl.stsz.samples,
                mp4_atom::StszSamples::Different {
                    sizes: samples.iter().map(|s| s.data.len() as u32).collect()
                }
            );
            // Each chunk's offset points at its samples, back to back.
            for (chunk, &off) in offsets.iter().enumerate() {
                let mut pos = off as usize;
                for s in &samples[2 * chunk..2 * chunk + 2] {
                    assert_eq!(&out[pos..pos + s.data.len()], &s.data[..]);
                    pos += s.data.len();
                }
            }
        }
        let video = &moov.trak[0];
        assert_eq!(video.mdia.mdhd.timescale, TS as u32);
        assert_eq!(stts(video), vec![(4, 3840)]);
        assert_eq!(ctts(video), None);
        let stss = video.mdia.minf.stbl.stss.as_ref().unwrap();
        assert_eq!(stss.entries, vec![1, 3]);
        assert_eq!(elst(video), vec![(TS, Some(0))]);
        assert_eq!(video.tkhd.track_id, 1);
        assert_eq!(video.tkhd.duration, TS);
        // The first chunk starts right after the mdat header.
        let first = video.mdia.minf.stbl.stco.as_ref().unwrap().entries[0];
        assert_eq!(first as usize, mdat.body);

        let audio = &moov.trak[1];
        assert_eq!(audio.mdia.mdhd.timescale, 48_000);
        assert_eq!(stts(audio), vec![(4, 12_000)]);
        assert_eq!(audio.mdia.mdhd.duration, 48_000);
        assert!(audio.mdia.minf.stbl.stss.is_none());
        assert_eq!(audio.tkhd.track_id, 2);
        assert_eq!(
            elst(audio),
            vec![(movie_ticks(100 * MS), None), (TS, Some(0))]
        );
    }

    #[test]
    fn b_frames_get_ctts_and_edit_list_offset() {
        // Decode order I P B B: pts 0 3 1 2, dts -1 0 1 2 (frames).
        let frames = [(0, -1, true), (3, 0, false), (1, 1, false), (2, 2, false)];
        let samples: Vec<Sample> = frames
            .iter()
            .map(|&(p, d, k)| sample(frame(p), frame(d), k, format!("{p}/{d}")))
            .collect();
        let out = write(&clip(vec![track(video_config(), samples)]));
        let moov = moov_of(&out);
        let trak = &moov.trak[0];
        assert_eq!(stts(trak), vec![(4, FRAME_TICKS)]);
        let f = i64::from(FRAME_TICKS);
        assert_eq!(
            ctts(trak),
            Some(vec![(1, f), (1, 3 * f), (2, 0)]),
            "pts - dts per sample"
        );
        assert_eq!(trak.mdia.minf.stbl.stss.as_ref().unwrap().entries, vec![1]);
        // Media time: the first frame's composition offset; 4 frames shown.
        assert_eq!(
            elst(trak),
            vec![(4 * u64::from(FRAME_TICKS), Some(f as u64))]
        );
        assert_eq!(trak.mdia.mdhd.duration, 4 * u64::from(FRAME_TICKS));
        assert_eq!(moov.mvhd.duration, 4 * u64::from(FRAME_TICKS));
    }

    #[test]
    fn preroll_squeezes_to_a_tick_a_sample_in_presentation_order() {
        // I P B B P B B in decode order, pts 0 3 1 2 6 4 5 (frames of 512
        // ticks), dts from -1; presentation starts at frame 4.
        let f = 512i64;
        let pts = [0, 3, 1, 2, 6, 4, 5];
        let mut ct: Vec<i64> = pts.iter().map(|p| p * f).collect();
        let mut durations = vec![512u32; 7];
        let shift = squeeze_preroll(&mut durations, &mut ct, -f, 4 * f);
        // The first four (pts 0 3 1 2) are hidden: a tick each, composed in
        // their own order (0 < 1 < 2 < 3) from the first decode time on.
        assert_eq!(durations, vec![1, 1, 1, 1, 512, 512, 512]);
        assert_eq!(&ct[..4], &[-f + 1, -f + 4, -f + 2, -f + 3]);
        // The presented part keeps its pace, moved back by `shift`.
        assert_eq!(shift, 4 * f - 4);
        assert_eq!(&ct[4..], &[6 * f - shift, 4 * f - shift, 5 * f - shift]);
        // Composition never before decode, hidden frames all before the
        // start.
        let mut decode = -f;
        for (c, d) in ct.iter().zip(&durations) {
            assert!(*c >= decode);
            decode += i64::from(*d);
        }
        assert!(ct[..4].iter().all(|&c| c < 4 * f - shift));

        // Nothing hidden: nothing moves.
        let mut ct2: Vec<i64> = pts.iter().map(|p| p * f).collect();
        let mut d2 = vec![512u32; 7];
        assert_eq!(squeeze_preroll(&mut d2, &mut ct2, -f, 0), 0);
        assert_eq!(d2, vec![512u32; 7]);
    }

    #[test]
    fn edit_list_starts_at_clip_start() {
        let f = u64::from(FRAME_TICKS);
        // Presentation starts at the third frame of a 10-frame GOP.
        let mut c = clip(vec![track(video_config(), video_frames(10, 10))]);
        c.start = frame(2);
        let moov = moov_of(&write(&c));
        // All frames are still stored; the two hidden ones take a tick each,
        // so the edit starts two ticks into the media.
        assert_eq!(elst(&moov.trak[0]), vec![(8 * f, Some(2))]);
        assert_eq!(stts(&moov.trak[0]), vec![(2, 1), (8, FRAME_TICKS)]);

        // The same with B-frames: the third frame in decode order has pts 1.
        let frames = [(0, -1, true), (3, 0, false), (1, 1, false), (2, 2, false)];
        let samples: Vec<Sample> = frames
            .iter()
            .map(|&(p, d, k)| sample(frame(p), frame(d), k, "x"))
            .collect();
        let mut c = clip(vec![track(video_config(), samples)]);
        c.start = frame(1);
        let moov = moov_of(&write(&c));
        // Composition time of pts 1 on a media timeline starting at dts -1,
        // the hidden keyframe squeezed to a tick: one frame's B-frame delay
        // and that tick.
        assert_eq!(elst(&moov.trak[0]), vec![(3 * f, Some(f + 1))]);

        // Audio that starts 10 ms after the clip start: an empty edit first.
        let audio_start = frame(2) + 10 * MS;
        let audio: Vec<Sample> = (0..20)
            .map(|i| {
                // 1024-sample AAC frames at 48 kHz.
                let t = audio_start + i * 1024 * 1_000_000_000 / 48_000;
                sample(t, t, true, vec![i as u8; 8])
            })
            .collect();
        let mut c = clip(vec![
            track(video_config(), video_frames(30, 30)),
            track(aac_config(), audio),
        ]);
        c.start = frame(2);
        let moov = moov_of(&write(&c));
        assert_eq!(elst(&moov.trak[0]), vec![(28 * f, Some(2))]);
        let edits = elst(&moov.trak[1]);
        assert_eq!(edits.len(), 2, "{edits:?}");
        // 10 ms in the movie (video) timescale: 153.6 ticks, rounded.
        assert_eq!(edits[0], (154, None));
        assert_eq!(edits[0].0, movie_ticks(10 * MS));
        // 20 frames of 1024 samples (6553.6 movie ticks, rounded), from the
        // audio's first sample.
        assert_eq!(edits[1], ((20 * 1024 * TS + 24_000) / 48_000, Some(0)));
    }

    #[test]
    fn end_cuts_the_edit() {
        let mut c = clip(vec![track(video_config(), video_frames(30, 15))]);
        c.end = Some(500 * MS);
        let layout = c.layout().unwrap();
        assert_eq!(layout.stats().duration, 500_000_000);
        let mut out = Vec::new();
        layout.write_to(&mut out).unwrap();
        let moov = moov_of(&out);
        let trak = &moov.trak[0];
        assert_eq!(elst(trak), vec![(movie_ticks(500 * MS), Some(0))]);
        assert_eq!(elst(trak)[0].0, 7680);
        assert_eq!(trak.tkhd.duration, 7680);
        assert_eq!(moov.mvhd.duration, 7680);
        // The media itself keeps all 30 frames.
        assert_eq!(trak.mdia.mdhd.duration, 30 * u64::from(FRAME_TICKS));

        // Combined with a later start.
        c.start = frame(3);
        let moov = moov_of(&write(&c));
        assert_eq!(
            elst(&moov.trak[0]),
            vec![(7680 - 3 * u64::from(FRAME_TICKS), Some(3))]
        );

        // An end past the media leaves the full length.
        c.start = 0;
        c.end = Some(10_000 * MS);
        let moov = moov_of(&write(&c));
        assert_eq!(
            elst(&moov.trak[0]),
            vec![(30 * u64::from(FRAME_TICKS), Some(0))]
        );
    }

    #[test]
    fn large_clips_use_co64() {
        const MIB: usize = 1 << 20;
        const COUNT: usize = 5000;
        let data = Bytes::from(vec![0x5au8; MIB]);
        let samples: Vec<Sample> = (0..COUNT as i64)
            .map(|n| sample(frame(n), frame(n), n % 30 == 0, data.clone()))
            .collect();
        let c = clip(vec![track(video_config(), samples)]);
        let layout = c.layout().unwrap();
        assert!(layout.stats().co64);
        let data_len = (COUNT * MIB) as u64;
        assert!(layout.size() > 4 << 30);
        assert_eq!(layout.size(), layout.header.len() as u64 + data_len);

        let boxes = top_boxes(&layout.header);
        assert_eq!(
            kinds(&boxes),
            [b"ftyp", b"moov", b"mdat"].map(FourCC::new).to_vec()
        );
        // A 64-bit mdat header, ending the header bytes.
        assert_eq!(boxes[2].size as u64, data_len);
        assert_eq!(boxes[2].body, layout.header.len());
        assert_eq!(
            &layout.header[boxes[2].body - 16..boxes[2].body - 8],
            &[0, 0, 0, 1, b'm', b'd', b'a', b't']
        );

        let moov = moov_of(&layout.header);
        let stbl = &moov.trak[0].mdia.minf.stbl;
        assert!(stbl.stco.is_none());
        let offsets = &stbl.co64.as_ref().expect("no co64").entries;
        // 15 frames (500 ms) per chunk.
        assert_eq!(offsets.len(), COUNT.div_ceil(15));
        assert_eq!(offsets[0], layout.header.len() as u64);
        for w in offsets.windows(2) {
            assert_eq!(w[1] - w[0], 15 * MIB as u64);
        }
        let last = *offsets.last().unwrap();
        assert!(last > u64::from(u32::MAX));
        assert_eq!(last + ((COUNT % 15) * MIB) as u64, layout.size());
        assert_eq!(
            stbl.stsz.samples,
            mp4_atom::StszSamples::Identical {
                count: COUNT as u32,
                size: MIB as u32
            }
        );

        // A small clip keeps 32-bit offsets.
        let small = clip(vec![track(video_config(), video_frames(30, 30))]);
        let layout = small.layout().unwrap();
        assert!(!layout.stats().co64);
        let moov = moov_of(&layout.header);
        let stbl = &moov.trak[0].mdia.minf.stbl;
        assert!(stbl.co64.is_none());
        assert_eq!(stbl.stco.as_ref().unwrap().entries.len(), 2);
    }

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn write_file_renames_a_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        assert_eq!(temp_path(&path), dir.path().join(".clip.mp4.partial"));
        let c = clip(vec![track(video_config(), video_frames(10, 5))]);
        let mut expected = Vec::new();
        let expected_stats = c.write_to(&mut expected).unwrap();

        for sync in [false, true] {
            let stats = c.write_file(&path, sync).unwrap();
            assert_eq!(stats, expected_stats);
            assert_eq!(std::fs::read(&path).unwrap(), expected);
            assert_eq!(dir_entries(dir.path()), vec!["clip.mp4".to_string()]);
        }

        // A directory that does not exist: an I/O error and no file.
        let missing = dir.path().join("missing").join("clip.mp4");
        let err = c.write_file(&missing, false).unwrap_err();
        assert!(matches!(err, WriteError::Io(_)), "{err:?}");
        assert!(!temp_path(&missing).exists());
        assert_eq!(dir_entries(dir.path()), vec!["clip.mp4".to_string()]);

        // The rename fails (the target is a non-empty directory): the
        // partial file is removed.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        let err = c.write_file(&blocked, false).unwrap_err();
        assert!(matches!(err, WriteError::Io(_)), "{err:?}");
        assert_eq!(
            dir_entries(dir.path()),
            vec!["blocked".to_string(), "clip.mp4".to_string()]
        );
    }

    #[test]
    fn empty_clips_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        let cases = [
            clip(Vec::new()),
            clip(vec![track(video_config(), Vec::new())]),
            clip(vec![
                track(video_config(), Vec::new()),
                track(aac_config(), Vec::new()),
            ]),
        ];
        for c in &cases {
            assert!(matches!(c.layout(), Err(WriteError::Empty)));
            assert!(matches!(
                c.write_to(&mut Vec::new()),
                Err(WriteError::Empty)
            ));
            assert!(matches!(c.write_file(&path, false), Err(WriteError::Empty)));
        }
        // Media entirely before the presentation window.
        let mut c = clip(vec![track(video_config(), video_frames(10, 10))]);
        c.start = frame(20);
        assert!(matches!(c.layout(), Err(WriteError::Empty)));
        assert!(dir_entries(dir.path()).is_empty());
    }

    #[test]
    fn last_sample_duration() {
        let f = FRAME_TICKS;
        let base = || track(video_config(), video_frames(3, 3));

        // From the next decode time (two frames later), even with a duration.
        let mut t = base();
        t.next_dts = Some(frame(4));
        t.samples[2].duration = 1_000_000;
        let moov = moov_of(&write(&clip(vec![t])));
        assert_eq!(stts(&moov.trak[0]), vec![(2, f), (1, 2 * f)]);
        assert_eq!(moov.trak[0].mdia.mdhd.duration, u64::from(4 * f));

        // From the sample's duration.
        let mut t = base();
        t.samples[2].duration = (frame(3) - frame(0)) as u64;
        let moov = moov_of(&write(&clip(vec![t])));
        assert_eq!(stts(&moov.trak[0]), vec![(2, f), (1, 3 * f)]);
        assert_eq!(elst(&moov.trak[0]), vec![(u64::from(5 * f), Some(0))]);

        // Otherwise the previous delta is repeated.
        let moov = moov_of(&write(&clip(vec![base()])));
        assert_eq!(stts(&moov.trak[0]), vec![(3, f)]);
        assert_eq!(elst(&moov.trak[0]), vec![(u64::from(3 * f), Some(0))]);

        // A lone sample without duration still gets a non-zero one.
        let t = track(video_config(), video_frames(1, 1));
        let moov = moov_of(&write(&clip(vec![t])));
        assert_eq!(stts(&moov.trak[0]), vec![(1, 1)]);
    }

    /// A re-encoded head of 3 frames (no reordering, parameter sets of its
    /// own) at frames 7..10, then a copied GOP from frame 10 with B-frames:
    /// I10 P13 B11 B12, its decode times moved to start at 10. The samples
    /// and the head's configuration.
    fn head_and_copy() -> (Vec<Sample>, CodecConfig) {
        let mut head_config = crate::mp4::testing::h264();
        if let mp4_atom::Codec::Avc1(a) = &mut head_config.entry {
            a.avcc.sequence_parameter_sets[0].push(0);
        }
        let mut samples: Vec<Sample> = (7..10)
            .map(|n| sample(frame(n), frame(n), n == 7, format!("head {n}")))
            .collect();
        for (k, (p, d)) in [(10, 10), (13, 11), (11, 12), (12, 13)]
            .into_iter()
            .enumerate()
        {
            samples.push(sample(frame(p), frame(d), k == 0, format!("copy {p}")));
        }
        (samples, head_config)
    }

    #[test]
    fn exact_cut_has_no_edit_list_and_two_sample_entries() {
        let (samples, head_config) = head_and_copy();
        let mut c = clip(vec![track(video_config(), samples)]);
        c.start = frame(7);
        c.exact = Some(ExactCut {
            reencoded: vec![Reencoded {
                track: 0,
                samples: 0..3,
                config: Arc::new(head_config.clone()),
            }],
        });
        let moov = moov_of(&write(&c));
        let trak = &moov.trak[0];
        assert!(trak.edts.is_none(), "no edit list");
        let stbl = &trak.mdia.minf.stbl;
        assert_eq!(
            stbl.stsd.codecs,
            vec![head_config.entry, video_config().entry.clone()]
        );
        // The head's chunk uses entry 1, the copy's entry 2.
        let stsc: Vec<(u32, u32, u32)> = stbl
            .stsc
            .entries
            .iter()
            .map(|e| {
                (
                    e.first_chunk,
                    e.samples_per_chunk,
                    e.sample_description_index,
                )
            })
            .collect();
        assert_eq!(stsc, vec![(1, 3, 1), (2, 4, 2)]);
        // Decode 0, 1, 2, ...; presented at 0, 1, 2, 3, 6, 4, 5 frames (the
        // head and I10 at their decode time, P13 two frames later): the
        // B-frames compose before they decode.
        let f = i64::from(FRAME_TICKS);
        assert_eq!(ctts(trak), Some(vec![(4, 0), (1, 2 * f), (2, -f)]));
        assert_eq!(stbl.stss.as_ref().unwrap().entries, vec![1, 4]);
    }

    /// A smart cut re-encoded at both ends: head, copied GOP, tail.
    fn head_copy_tail(tail_config: &CodecConfig) -> (Mp4Clip, CodecConfig) {
        let (mut samples, head_config) = head_and_copy();
        samples.extend((14..16).map(|n| sample(frame(n), frame(n), n == 14, format!("tail {n}"))));
        let mut c = clip(vec![track(video_config(), samples)]);
        c.start = frame(7);
        c.exact = Some(ExactCut {
            reencoded: vec![
                // Listed out of order: the writer sorts them.
                Reencoded {
                    track: 0,
                    samples: 7..9,
                    config: Arc::new(tail_config.clone()),
                },
                Reencoded {
                    track: 0,
                    samples: 0..3,
                    config: Arc::new(head_config.clone()),
                },
            ],
        });
        (c, head_config)
    }

    fn stsc_of(trak: &mp4_atom::Trak) -> Vec<(u32, u32, u32)> {
        trak.mdia
            .minf
            .stbl
            .stsc
            .entries
            .iter()
            .map(|e| {
                (
                    e.first_chunk,
                    e.samples_per_chunk,
                    e.sample_description_index,
                )
            })
            .collect()
    }

    #[test]
    fn exact_cut_tail_shares_the_heads_sample_entry_when_it_is_the_same() {
        let mut head = crate::mp4::testing::h264();
        if let mp4_atom::Codec::Avc1(a) = &mut head.entry {
            a.avcc.sequence_parameter_sets[0].push(0);
        }
        let (c, head_config) = head_copy_tail(&head);
        let moov = moov_of(&write(&c));
        let trak = &moov.trak[0];
        assert!(trak.edts.is_none());
        assert_eq!(
            trak.mdia.minf.stbl.stsd.codecs,
            vec![head_config.entry, video_config().entry.clone()]
        );
        // Head (entry 1), copy (entry 2), tail (entry 1 again): three
        // chunks, broken where the entry changes.
        assert_eq!(stsc_of(trak), vec![(1, 3, 1), (2, 4, 2), (3, 2, 1)]);
        assert_eq!(
            trak.mdia.minf.stbl.stss.as_ref().unwrap().entries,
            vec![1, 4, 8]
        );
    }

    #[test]
    fn exact_cut_tail_with_other_parameter_sets_gets_a_third_sample_entry() {
        let mut tail = crate::mp4::testing::h264();
        if let mp4_atom::Codec::Avc1(a) = &mut tail.entry {
            a.avcc.picture_parameter_sets[0].push(1);
        }
        let (c, head_config) = head_copy_tail(&tail);
        let moov = moov_of(&write(&c));
        let trak = &moov.trak[0];
        assert_eq!(
            trak.mdia.minf.stbl.stsd.codecs,
            vec![head_config.entry, video_config().entry.clone(), tail.entry]
        );
        assert_eq!(stsc_of(trak), vec![(1, 3, 1), (2, 4, 2), (3, 2, 3)]);
        // Decode 0..9, presented 0, 1, 2, 3, 6, 4, 5, 7, 8 frames.
        let f = i64::from(FRAME_TICKS);
        assert_eq!(ctts(trak), Some(vec![(4, 0), (1, 2 * f), (2, -f), (2, 0)]));
    }
}
