// SPDX-License-Identifier: MPL-2.0
//! Still images of a recorded moment (`/{id}/thumbnails/thumbnail.jpg`, the
//! `get-thumbnail` signal): the request model and the choice of samples,
//! pure over a [`SessionIndex`] and the stored fragments. Decoding and
//! encoding are GStreamer's (`frames::still`).
//!
//! A still at recording time `t` is the frame presented at `t`: the frame
//! with the latest presentation time at or before `t`. It is decoded from
//! the random-access point at or before `t`, so the samples handed to the
//! decoder are, in decode order, that keyframe and everything after it up
//! to the frame itself, without the keyframe's own leading pictures (they
//! may refer to pictures before it, and are presented before `t` anyway).
//! The next keyframe's leading pictures (open GOPs: presented before that
//! keyframe, stored after it in its fragment) may be the frame at `t`; so
//! the fragment after the one holding `t` is read too, and the one before
//! when `t` falls among the leading pictures of the fragment holding it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::clip::{ClipError, ClipRequest, read_samples};
use super::index::{FragmentInfo, SegmentInfo, SessionIndex};
use crate::core::thumbs::Fit;
use crate::core::{Sample, TrackKind};
use crate::mp4::CodecConfig;

/// Largest width or height of a still, pixels.
pub const MAX_SIDE: u32 = 4096;

/// The image format of a still.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StillFormat {
    #[default]
    Jpeg,
    Png,
    Webp,
}

impl StillFormat {
    /// The format a file name's extension names (`thumbnail.jpg`).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "jpg" | "jpeg" => Some(Self::Jpeg),
            "png" => Some(Self::Png),
            "webp" => Some(Self::Webp),
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }
}

/// A still request: when, how large, and in which format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StillRequest {
    /// The instant as a clip request of 1 ns from it (no `time`: the last
    /// nanosecond recorded, the live edge), so that it is placed, waited
    /// for and refused exactly as clips are.
    pub clip: ClipRequest,
    /// 0 = from the other side (both 0: the source's size).
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
    pub format: StillFormat,
}

/// `width`, `height` (1 to `max`) or `fit_mode` of a picture request
/// (stills, animations).
pub(crate) fn picture_param(
    name: &str,
    value: &str,
    max: u32,
    width: &mut u32,
    height: &mut u32,
    fit: &mut Fit,
) -> Result<(), ClipError> {
    let bad =
        |what: &str| ClipError::BadRequest(format!("parameter {name}: {value:?} is not {what}"));
    if name == "fit_mode" {
        *fit = fit_of(value).ok_or_else(|| bad("preserve, crop, pad or stretch"))?;
        return Ok(());
    }
    let v: u32 = value
        .parse()
        .ok()
        .filter(|v| (1..=max).contains(v))
        .ok_or_else(|| bad(&format!("a whole number from 1 to {max}")))?;
    if name == "width" {
        *width = v;
    } else {
        *height = v;
    }
    Ok(())
}

fn fit_of(value: &str) -> Option<Fit> {
    match value {
        "preserve" => Some(Fit::Preserve),
        "crop" => Some(Fit::Crop),
        "pad" => Some(Fit::Pad),
        "stretch" => Some(Fit::Stretch),
        _ => None,
    }
}

impl StillRequest {
    /// Parses URL query parameters: `time` (or `start`, any time value a
    /// clip request takes; absent: the live edge), `width`, `height`,
    /// `fit_mode` (`preserve`, `crop`, `pad`, `stretch`), and `format`
    /// (`jpeg`, `png`, `webp`) unless `format` is given (an HTTP route's
    /// file extension); `token` is ignored.
    /// The parameters a still request takes (with `format` unless the
    /// route's file extension gives it).
    pub fn params(format_given: bool) -> &'static [&'static str] {
        if format_given {
            &["time", "start", "width", "height", "fit_mode", "token"]
        } else {
            &[
                "time", "start", "width", "height", "fit_mode", "format", "token",
            ]
        }
    }

    pub fn parse_query(query: &str, format: Option<StillFormat>) -> Result<Self, ClipError> {
        let mut req = StillRequest {
            clip: ClipRequest::default(),
            width: 0,
            height: 0,
            fit: Fit::default(),
            format: format.unwrap_or_default(),
        };
        let pairs = crate::core::query::known_pairs(query, Self::params(format.is_some()))
            .map_err(ClipError::BadRequest)?;
        // The time goes through the clip request parser (a clip of 1 ns):
        // the same forms, limits and messages.
        let mut clip = form_urlencoded::Serializer::new(String::new());
        clip.append_pair("duration", "0.000000001");
        for (name, value) in pairs {
            let bad = |what: &str| {
                ClipError::BadRequest(format!("parameter {name}: {value:?} is not {what}"))
            };
            match name.as_str() {
                "time" | "start" | "token" => {
                    clip.append_pair(&name, &value);
                }
                "width" | "height" | "fit_mode" => {
                    picture_param(
                        &name,
                        &value,
                        MAX_SIDE,
                        &mut req.width,
                        &mut req.height,
                        &mut req.fit,
                    )?;
                }
                // `format`; other names were refused above.
                _ => {
                    req.format = match value.as_str() {
                        "jpeg" | "jpg" => StillFormat::Jpeg,
                        "png" => StillFormat::Png,
                        "webp" => StillFormat::Webp,
                        _ => return Err(bad("jpeg, png or webp")),
                    };
                }
            }
        }
        req.clip = ClipRequest::parse_query(&clip.finish())?;
        Ok(req)
    }
}

/// What a still decodes: the samples to push, in decode order, and which of
/// them is presented at the requested time.
#[derive(Debug, Clone)]
pub struct StillFrames {
    pub media_id: String,
    pub config: Arc<CodecConfig>,
    /// From the random-access point to the frame, in decode order.
    pub samples: Vec<Sample>,
    /// Index in `samples` of the frame presented at the requested time.
    pub target: usize,
    /// The requested recording time, ns.
    pub requested: u64,
    /// Recording time at which the frame is presented, ns.
    pub frame: u64,
    /// Wall clock of the frame.
    pub utc: Option<DateTime<Utc>>,
    /// Whether the session is still being recorded.
    pub live: bool,
}

impl StillFrames {
    /// The frame presented at the requested time.
    pub fn frame_sample(&self) -> &Sample {
        &self.samples[self.target]
    }
}

/// The samples (decode order, classified) that decode the frame presented
/// at `at` (ns), and its index among them. `None` without a keyframe.
pub fn pick(samples: &[Sample], at: i64) -> Option<(Vec<Sample>, usize)> {
    let key = samples
        .iter()
        .rposition(|s| s.keyframe && s.pts <= at)
        .or_else(|| samples.iter().position(|s| s.keyframe))?;
    let k = &samples[key];
    let chain: Vec<&Sample> = samples[key..]
        .iter()
        .enumerate()
        .filter(|&(n, s)| n == 0 || !s.leads(k))
        .map(|(_, s)| s)
        .collect();
    // The latest presented at or before `at`; before the keyframe (the
    // first frame of a recording is at 0), the keyframe.
    let target = chain
        .iter()
        .enumerate()
        .filter(|(_, s)| s.pts <= at)
        .max_by_key(|(_, s)| s.pts)
        .map_or(0, |(i, _)| i);
    Some((
        chain[..=target].iter().map(|s| (*s).clone()).collect(),
        target,
    ))
}

/// Leaves out of `samples` (from [`pick`], the frame at `target`) the
/// pictures nothing pushed after them refers to: non-reference pictures of
/// the highest temporal sub-layer pushed (`refs` says whether a sample may
/// be referred to, and its sub-layer). The keyframe and the frame itself
/// stay. Decoding them would cost time and change nothing.
pub fn prune(
    samples: Vec<Sample>,
    target: usize,
    refs: impl Fn(&Sample) -> (bool, u8),
) -> (Vec<Sample>, usize) {
    let info: Vec<(bool, u8)> = samples.iter().map(&refs).collect();
    let top = info.iter().map(|(_, tid)| *tid).max().unwrap_or(0);
    let keep = |i: usize| i == 0 || i == target || info[i].0 || info[i].1 < top;
    let new_target = (0..target).filter(|&i| keep(i)).count();
    let kept = samples
        .into_iter()
        .enumerate()
        .filter(|&(i, _)| keep(i))
        .map(|(_, s)| s)
        .collect();
    (kept, new_target)
}

/// H.264 decoded from an open-GOP I picture (not an IDR): its
/// `frame_num` is not 0, and GStreamer 1.22's libav decoder fills the gap
/// from nothing to it with made-up reference pictures (which, for a lone
/// keyframe, the thumbnailer found it cannot allocate). Every sample is
/// given a copy whose slices count `frame_num` from that picture
/// (`nal::h264_with_frame_num_from`), so there is no gap; the pictures
/// decode the same. Anything else is returned as it is.
fn renumbered(samples: Vec<Sample>, config: &CodecConfig) -> Vec<Sample> {
    use crate::core::nal::{self, Access, Codec};
    let avcc = match &config.entry {
        mp4_atom::Codec::Avc1(a) => &a.avcc,
        mp4_atom::Codec::Avc3(a) => &a.avcc,
        _ => return samples,
    };
    let sps: Vec<&[u8]> = avcc
        .sequence_parameter_sets
        .iter()
        .map(Vec::as_slice)
        .collect();
    let Some((Codec::H264, framing)) = config.nal_format() else {
        return samples;
    };
    let Some(first) = samples.first().filter(|s| s.access == Access::Open) else {
        return samples;
    };
    let Some(base) = nal::h264_frame_num(&first.data, framing, &sps).filter(|&n| n != 0) else {
        return samples;
    };
    let rewritten: Option<Vec<Sample>> = samples
        .iter()
        .map(|s| {
            let data = nal::h264_with_frame_num_from(&s.data, framing, &sps, base)?;
            Some(Sample {
                data: Bytes::from(data),
                ..s.clone()
            })
        })
        .collect();
    rewritten.unwrap_or(samples)
}

/// The fragments from the one holding `from` to the one holding `at`, and
/// the next one of the same configuration (its keyframe's leading pictures
/// may be presented at `at`).
fn fragments(
    index: &SessionIndex,
    from: u64,
    at: u64,
) -> Result<Vec<(&SegmentInfo, FragmentInfo)>, ClipError> {
    let storage = |e: std::io::Error| ClipError::Storage(e.to_string());
    let list = index
        .fragments_for(from, at.saturating_add(1))
        .map_err(storage)?;
    let Some((seg, last)) = list.last() else {
        return Err(ClipError::OutOfRange(format!(
            "nothing of session {} is recorded at {:.3} s",
            index.media_id,
            at as f64 / 1e9
        )));
    };
    let map = seg.segment.map.clone();
    let n = list.len();
    let mut more = index
        .fragments_for(from, last.end.max(at).saturating_add(1))
        .map_err(storage)?;
    more.truncate(n + 1);
    if more.len() == n + 1 && more[n].0.segment.map != map {
        more.truncate(n);
    }
    Ok(more)
}

/// The samples that decode the frame presented at recording time `at` of
/// `index`. They come from the fragment holding `at` and the next one; a
/// fragment's start is the earliest time it presents, which may be a
/// leading picture of its keyframe, so when `at` falls among those the
/// fragment before is read too.
pub fn select(index: &SessionIndex, at: u64) -> Result<StillFrames, ClipError> {
    let mut from = at;
    loop {
        let frags = fragments(index, from, at)?;
        let first_start = frags.first().map_or(0, |(_, f)| f.start);
        let (configs, mut per_track) = read_samples(index, &frags)?;
        let Some(video) = configs.iter().position(|c| c.kind == TrackKind::Video) else {
            return Err(ClipError::NotFound(format!(
                "session {} has no video",
                index.media_id
            )));
        };
        let config = configs[video].clone();
        let mut samples = std::mem::take(&mut per_track[video]);
        if let Some((codec, framing)) = config.nal_format() {
            for s in &mut samples {
                s.classify(codec, framing);
            }
        }
        let at_ns = at as i64;
        if from == at
            && first_start > index.begin()
            && !samples.iter().any(|s| s.keyframe && s.pts <= at_ns)
        {
            from = first_start - 1;
            continue;
        }
        let (samples, target) = pick(&samples, at_ns).ok_or_else(|| {
            ClipError::Storage(format!(
                "no keyframe found at {:.3} s of session {}",
                at as f64 / 1e9,
                index.media_id
            ))
        })?;
        let (samples, target) = match config.nal_format() {
            Some((codec, framing)) => prune(samples, target, |s| {
                crate::core::nal::reference(&s.data, codec, framing)
            }),
            None => (samples, target),
        };
        let samples = renumbered(samples, &config);
        let frame = samples[target].pts.max(0) as u64;
        return Ok(StillFrames {
            media_id: index.media_id.clone(),
            config,
            samples,
            target,
            requested: at,
            frame,
            utc: index.utc_at(frame),
            live: index.live,
        });
    }
}

/// What a cached still answers: the session, the frame (its presentation
/// time, ns) and the picture's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StillKey {
    pub media_id: String,
    pub frame: u64,
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
    pub format: StillFormat,
}

impl StillKey {
    pub fn of(frames: &StillFrames, req: &StillRequest) -> Self {
        Self {
            media_id: frames.media_id.clone(),
            frame: frames.frame,
            width: req.width,
            height: req.height,
            fit: req.fit,
            format: req.format,
        }
    }
}

/// A small cache of encoded stills, least recently used out first, bounded
/// in entries and bytes. A frame's picture never changes once recorded.
pub struct StillCache {
    entries: usize,
    bytes: usize,
    inner: Mutex<VecDeque<(StillKey, Bytes)>>,
}

impl StillCache {
    pub fn new(entries: usize, bytes: usize) -> Self {
        Self {
            entries,
            bytes,
            inner: Mutex::new(VecDeque::new()),
        }
    }

    pub fn get(&self, key: &StillKey) -> Option<Bytes> {
        let mut q = self.inner.lock().unwrap();
        let i = q.iter().position(|(k, _)| k == key)?;
        let hit = q.remove(i)?;
        let image = hit.1.clone();
        q.push_front(hit);
        Some(image)
    }

    pub fn put(&self, key: StillKey, image: Bytes) {
        if image.len() > self.bytes {
            return;
        }
        let mut q = self.inner.lock().unwrap();
        q.retain(|(k, _)| *k != key);
        q.push_front((key, image));
        while q.len() > self.entries || q.iter().map(|(_, b)| b.len()).sum::<usize>() > self.bytes {
            q.pop_back();
        }
    }
}

impl Default for StillCache {
    /// 64 stills, 16 MiB.
    fn default() -> Self {
        Self::new(64, 16 << 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::timespec::TimePoint;
    use std::time::Duration;

    const MS: i64 = 1_000_000;

    fn s(pts: i64, dts: i64, keyframe: bool) -> Sample {
        Sample {
            pts: pts * MS,
            dts: dts * MS,
            duration: 40 * MS as u64,
            keyframe,
            access: Default::default(),
            data: Bytes::new(),
        }
    }

    fn pts(v: &[Sample]) -> Vec<i64> {
        v.iter().map(|s| s.pts / MS).collect()
    }

    #[test]
    fn parses_time_size_fit_and_format() {
        let r = StillRequest::parse_query(
            "time=1m2.5s&width=320&height=180&fit_mode=crop&token=x",
            Some(StillFormat::Png),
        )
        .unwrap();
        assert_eq!(
            r.clip.start,
            Some(TimePoint::Recording(Duration::from_millis(62_500)))
        );
        assert_eq!(r.clip.duration, Some(1));
        assert_eq!((r.width, r.height, r.fit), (320, 180, Fit::Crop));
        assert_eq!(r.format, StillFormat::Png);
        let r = StillRequest::parse_query("format=webp&time=2026-11-23T12:00:01Z", None).unwrap();
        assert!(matches!(r.clip.start, Some(TimePoint::Utc(_))));
        assert_eq!(r.format, StillFormat::Webp);
        let live = StillRequest::parse_query("", None).unwrap();
        assert_eq!(live.clip.start, None, "no time: the live edge");
        assert_eq!(live.format, StillFormat::Jpeg);
        for bad in [
            "time=abc",
            "time=-1s",
            "time=1&time=2",
            "width=0",
            "width=4097",
            "width=12.5",
            "height=x",
            "width=10&width=20",
            "fit_mode=cover",
            "duration=5s",
            "accuracy=keyframe",
            "colour=red",
            "format=gif",
        ] {
            assert!(
                matches!(
                    StillRequest::parse_query(bad, None),
                    Err(ClipError::BadRequest(_))
                ),
                "{bad}"
            );
        }
        // The route's extension decides the format.
        assert!(StillRequest::parse_query("format=png", Some(StillFormat::Jpeg)).is_err());
    }

    /// A B-frame GOP in decode order (I0 P3 B1 B2 P6 B4 B5 | I9 ...), each
    /// frame 1 ms: the frame at a time is the latest at or before it, and
    /// only what decodes it is pushed.
    #[test]
    fn picks_the_frame_presented_at_the_time() {
        let gop = vec![
            s(0, -2, true),
            s(3, -1, false),
            s(1, 0, false),
            s(2, 1, false),
            s(6, 2, false),
            s(4, 3, false),
            s(5, 4, false),
            s(9, 5, true),
            s(12, 6, false),
            s(10, 7, false),
            s(11, 8, false),
        ];
        let (v, t) = pick(&gop, 2 * MS).unwrap();
        assert_eq!((pts(&v), t), (vec![0, 3, 1, 2], 3));
        let (v, t) = pick(&gop, 2 * MS + MS / 2).unwrap();
        assert_eq!(pts(&v)[t], 2, "between frames: the one shown");
        let (v, t) = pick(&gop, 3 * MS).unwrap();
        assert_eq!((pts(&v), t), (vec![0, 3], 1));
        let (v, t) = pick(&gop, 0).unwrap();
        assert_eq!((pts(&v), t), (vec![0], 0));
        let (v, t) = pick(&gop, 10 * MS).unwrap();
        assert_eq!((pts(&v), t), (vec![9, 12, 10], 2), "from the next keyframe");
    }

    /// Open GOPs: the next keyframe's leading pictures are the frames
    /// presented just before it (decoded from the keyframe before); the
    /// keyframe's own leading pictures are never pushed.
    #[test]
    fn open_gop_leading_pictures() {
        let samples = vec![
            s(2, 0, true), // K0, with leading pictures 0 and 1
            s(0, 1, false),
            s(1, 2, false),
            s(4, 3, false),
            s(3, 4, false),
            s(7, 5, true), // K1, leading pictures 5 and 6
            s(5, 6, false),
            s(6, 7, false),
            s(9, 8, false),
        ];
        let (v, t) = pick(&samples, 3 * MS).unwrap();
        assert_eq!((pts(&v), t), (vec![2, 4, 3], 2));
        let (v, t) = pick(&samples, 6 * MS).unwrap();
        assert_eq!(
            (pts(&v), t),
            (vec![2, 4, 3, 7, 5, 6], 5),
            "a leading picture of K1, decoded from K0"
        );
        let (v, t) = pick(&samples, 2 * MS).unwrap();
        assert_eq!((pts(&v), t), (vec![2], 0));
        // Before the first keyframe: the keyframe.
        let (v, t) = pick(&samples, 0).unwrap();
        assert_eq!((pts(&v), t), (vec![2], 0));
        assert!(pick(&[s(0, 0, false)], 0).is_none());
    }

    /// Non-reference pictures are not decoded unless they are the frame;
    /// a sub-layer non-reference picture below the highest sub-layer may be
    /// referred to and stays.
    #[test]
    fn pruning_leaves_out_what_nothing_refers_to() {
        // I0 P3 b1 b2 P6 b4 (b = non-reference) in decode order.
        let v = vec![
            s(0, -2, true),
            s(3, -1, false),
            s(1, 0, false),
            s(2, 1, false),
            s(6, 2, false),
            s(4, 3, false),
        ];
        let refs = |s: &Sample| (!matches!(s.pts / MS, 1 | 2 | 4), 0u8);
        let (kept, t) = prune(v.clone(), 5, refs);
        assert_eq!((pts(&kept), t), (vec![0, 3, 6, 4], 3));
        let (kept, t) = prune(v[..4].to_vec(), 3, refs);
        assert_eq!((pts(&kept), t), (vec![0, 3, 2], 2));
        // Sub-layers: b1 (non-reference, sub-layer 0) may be referred to
        // by b2 (sub-layer 1).
        let layered = |s: &Sample| match s.pts / MS {
            1 => (false, 0u8),
            2 => (false, 1),
            _ => (true, 0),
        };
        let (kept, t) = prune(v[..4].to_vec(), 3, layered);
        assert_eq!((pts(&kept), t), (vec![0, 3, 1, 2], 3));
    }

    #[test]
    fn cache_is_bounded_and_least_recently_used_goes_first() {
        let key = |frame| StillKey {
            media_id: "m".into(),
            frame,
            width: 0,
            height: 0,
            fit: Fit::Preserve,
            format: StillFormat::Jpeg,
        };
        let cache = StillCache::new(2, 10);
        cache.put(key(1), Bytes::from_static(b"aaaa"));
        cache.put(key(2), Bytes::from_static(b"bbbb"));
        assert!(cache.get(&key(1)).is_some());
        cache.put(key(3), Bytes::from_static(b"cc"));
        assert!(cache.get(&key(2)).is_none(), "least recently used");
        assert!(cache.get(&key(1)).is_some());
        cache.put(key(4), Bytes::from_static(b"dddddddd"));
        assert_eq!(cache.get(&key(4)).unwrap().len(), 8);
        assert!(cache.get(&key(1)).is_none(), "over the byte bound");
        cache.put(key(5), Bytes::from(vec![0u8; 11]));
        assert!(cache.get(&key(5)).is_none(), "larger than the cache");
    }
}
