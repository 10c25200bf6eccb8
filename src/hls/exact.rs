// SPDX-License-Identifier: MPL-2.0
//! Exact cuts (`accuracy=exact`): a smart cut of the stored video.
//!
//! The frames presented from the requested start up to the next keyframe
//! (a partial GOP, with the leading pictures of that keyframe in an open
//! GOP) are decoded with GStreamer's own decoder and encoded again by an
//! encoder of the same codec and profile at the same size; every sample
//! from that keyframe on is copied untouched. The re-encoded head has its
//! own parameter sets: the MP4 writer gives it a sample entry of its own.
//! The file needs no edit list: its first sample is the requested frame.
//! A mid-GOP end that copying would carry past the end (B-frames) is cut
//! the same way at the other side: the copy stops at the last point (in
//! decode order) where it has presented every frame before some time and
//! none after it (a mini-GOP boundary), and the few frames from there to
//! the end are re-encoded as a GOP of their own.
//!
//! ```text
//! appsrc (stored caps + framerate) ! [parser] ! decoder ! videoconvert ! I420 !
//!   (drop frames outside the head) encoder ! [parser] ! avc|hvc1, au ! appsink
//! ```
//!
//! The work is one GOP at most, whatever the clip's length; it runs where
//! MP4 clips are cut (the clip pool, under the clip permits).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gst::prelude::*;
use mp4_atom::Codec;

use super::clip::ClipError;
use crate::core::Sample;
use crate::frames::pipeline::{PrivatePipeline, appsink, appsrc, capsfilter, make};
use crate::mp4::CodecConfig;

/// How long one re-encode may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// x264 quantizer (x265 rate factor) of the re-encoded runs: close to
/// transparent (well above 40 dB PSNR against the decoded recording), and
/// only a partial GOP at each end is encoded at it.
const QUANTIZER: u32 = 14;

/// The video of an exact cut.
#[derive(Debug)]
pub struct Cut {
    /// The samples to write, in decode order: the re-encoded head, the
    /// copied samples, the re-encoded tail.
    pub samples: Vec<Sample>,
    /// The re-encoded runs (the head, the tail): which samples, and their
    /// configuration.
    pub reencoded: Vec<(std::ops::Range<usize>, Arc<CodecConfig>)>,
    /// Where presentation ends, ns: the requested end on a frame boundary
    /// (`end`), or, when the end is copied (`exact_end` false), later when
    /// a copied frame presented after it is needed to decode one before it
    /// (B-frames).
    pub end: i64,
}

/// What an exact cut does with the samples `s` (decode order, from a
/// keyframe, without its leading pictures).
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    /// Re-encode the frames presented in `from..until`, decoding from
    /// `s[0]`.
    head: Option<(i64, i64)>,
    /// Copy `s[range]` (without the first one's leading pictures).
    copy: Option<std::ops::Range<usize>>,
    /// Re-encode the frames presented from `t` to the end, decoding from
    /// `s[d0]` (`(d0, t)`).
    tail: Option<(usize, i64)>,
    /// Where presentation ends.
    end: i64,
}

/// Plans the exact cut of `s` from `start` (a frame's time) to `end` (a
/// frame boundary); see [`cut`].
fn plan(s: &[Sample], start: i64, end: i64, exact_end: bool) -> Plan {
    // The next random-access point in decode order.
    let k2 = s
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, x)| x.keyframe)
        .map(|(i, _)| i);
    let mut copy_from = if s[0].pts >= start {
        Some(0)
    } else {
        k2.filter(|&i| s[i].pts < end)
    };
    // The copy runs from `copy_from` to `copy_until` (decode order).
    let mut copy_until = s.len();
    let mut tail = None;
    let mut end_out = end;
    if let Some(k) = copy_from {
        // Every frame presented before the end, and everything decoded
        // before the last of them: a reference frame presented at or after
        // the end that an earlier frame needs (B-frames) stays, and so
        // presentation ends after it, with every frame before it.
        let mut last;
        loop {
            last = s.iter().rposition(|x| x.pts < end_out).unwrap_or(k).max(k);
            let max = s[k..=last].iter().map(|x| x.pts).max().unwrap_or(s[k].pts);
            if max < end_out {
                break;
            }
            end_out = s
                .iter()
                .map(|x| x.pts)
                .filter(|&p| p > max)
                .min()
                .unwrap_or_else(|| s[k..=last].iter().map(|x| x.pts_end()).max().unwrap_or(max));
        }
        copy_until = last + 1;
        if exact_end && end_out > end {
            // The copy stops early, after a run of samples (in decode
            // order) that presents every frame before some time `t` and
            // none after it; the frames from `t` to the end are re-encoded
            // as a GOP of their own (a new IDR picture: nothing later in
            // the copied GOP is needed). The latest such stop: with
            // B-frames that is the last mini-GOP boundary before the end,
            // a frame or a few to re-encode rather than the GOP.
            let mut earliest = vec![i64::MAX; s.len() + 1];
            for i in (0..s.len()).rev() {
                earliest[i] = earliest[i + 1].min(s[i].pts);
            }
            let mut latest = vec![i64::MIN; s.len() + 1];
            for i in k..s.len() {
                latest[i + 1] = latest[i].max(s[i].pts);
            }
            let stop = (k + 1..s.len())
                .rev()
                .filter(|&c| earliest[c] <= end && latest[c] < earliest[c])
                .map(|c| (c, earliest[c]))
                .next();
            // Decoded from the last keyframe copied (or from the stop when
            // it is a keyframe presented at `t`): an open GOP's leading
            // pictures refer to the keyframe before.
            let decode_from = |c: usize, t: i64| {
                if s[c].keyframe && s[c].pts <= t {
                    c
                } else {
                    (k..c).rev().find(|&i| s[i].keyframe).unwrap_or(k)
                }
            };
            match stop.map(|(c, t)| (c, t, decode_from(c, t))) {
                // A tail decoded from the keyframe the copy starts with,
                // after a head, that would copy no more frames than it
                // re-encodes: one re-encode from the head's keyframe to the
                // end is less work than two.
                Some((c, t, d0))
                    if d0 == k
                        && k != 0
                        && s[k..c].iter().filter(|x| !x.leads(&s[k])).count()
                            <= s.iter().filter(|x| x.pts >= t && x.pts < end).count() =>
                {
                    copy_from = None
                }
                Some((c, t, d0)) => {
                    copy_until = c;
                    tail = (t < end).then_some((d0, t));
                }
                // Nothing to copy: the head (from the first keyframe when
                // the start is on it) runs to the end.
                None => copy_from = None,
            }
            end_out = end;
        }
    }
    let head = (copy_from != Some(0)).then(|| {
        let until = copy_from.map_or(end, |i| s[i].pts.min(end));
        (start.max(s[0].pts), until)
    });
    Plan {
        head,
        copy: copy_from.map(|k| k..copy_until),
        tail,
        end: end_out,
    }
}

/// Cuts the video `from_key` (the stored samples in decode order, from the
/// keyframe at or before `start`) to present exactly the frames from
/// `start` (a frame's time) to `end` (a frame boundary). With `exact_end`,
/// a mid-GOP end that copying would carry past `end` (a reference frame
/// presented after it that an earlier B-frame needs) is re-encoded from
/// the last mini-GOP boundary before it.
pub fn cut(
    config: &CodecConfig,
    from_key: &[Sample],
    start: i64,
    end: i64,
    exact_end: bool,
) -> Result<Cut, ClipError> {
    let Some(k1) = from_key.first() else {
        return Err(ClipError::Storage("no video to cut".into()));
    };
    // The keyframe's own leading pictures are never presented here (they
    // come before the start) and may refer to pictures before it.
    let s = without_leading(from_key, k1);
    let plan = plan(&s, start, end, exact_end);
    let mut out = Vec::new();
    let mut reencoded = Vec::new();
    let mut run = |out: &mut Vec<Sample>, (entry, samples): (Codec, Vec<Sample>)| {
        let mut run_config = config.clone();
        run_config.entry = entry;
        reencoded.push((out.len()..out.len() + samples.len(), Arc::new(run_config)));
        out.extend(samples);
    };
    // The head and the tail are independent decodes and encodes: the tail
    // runs on a thread of its own while the head runs here (their wall
    // time is the longer one's, not the sum).
    let (head, tail) = std::thread::scope(|scope| {
        let s = &s;
        let tail = plan.tail.map(|(d0, t)| {
            std::thread::Builder::new()
                .name("liveclip-exact-tail".into())
                .spawn_scoped(scope, move || {
                    let decode = without_leading(&s[d0..], &s[d0]);
                    reencode(config, &decode, t, plan.end)
                })
        });
        // Every sample up to the last one presented in the head decodes it
        // (in an open GOP that includes the next keyframe, which its
        // leading pictures refer to).
        let head = plan
            .head
            .map(|(from, until)| reencode(config, s, from, until))
            .transpose();
        let tail = tail
            .map(|spawned| {
                spawned
                    .map_err(|e| ClipError::Storage(format!("exact cut: no thread: {e}")))?
                    .join()
                    .unwrap_or_else(|_| {
                        Err(ClipError::Storage(
                            "exact cut: the tail's re-encode failed".into(),
                        ))
                    })
            })
            .transpose();
        (head, tail)
    });
    if let Some(head) = head? {
        run(&mut out, head);
    }
    if let Some(copy) = plan.copy {
        let key = &s[copy.start];
        // Decode times move so that the keyframe decodes when it is
        // presented, after the head (which has no reordering); frames that
        // are reordered before their decode time get negative composition
        // offsets.
        let shift = if plan.head.is_some() {
            key.pts - key.dts
        } else {
            0
        };
        out.extend(decode_times(
            without_leading(&s[copy], key),
            shift,
            frame_step(&s),
        ));
    }
    if let Some((entry, mut samples)) = tail? {
        // The tail (decode time = presentation time as encoded) decodes
        // after the copy, a frame apart: the copy's decode times may still
        // run ahead of its presentation by the stream's own reordering
        // delay (its gaps are closed in `decode_times`). The tail is then
        // composed before it decodes (negative composition offsets, as
        // copied B-frames have).
        let step = frame_step(&s);
        let mut previous = out.last().map(|x| x.dts);
        for x in &mut samples {
            if let Some(p) = previous {
                x.dts = x.dts.max(p + step);
            }
            previous = Some(x.dts);
        }
        run(&mut out, (entry, samples));
    }
    Ok(Cut {
        samples: out,
        reencoded,
        end: plan.end,
    })
}

/// The copied samples with their decode times moved by `shift`, and the
/// gaps that leading pictures left out (the copy's keyframe's, the first
/// keyframe's) leave in them closed to one frame (`step`): decoding then
/// runs no further ahead of presentation than the stream's own reordering
/// (a demuxer stops at the movie's duration by decode time too).
fn decode_times(copied: Vec<Sample>, shift: i64, step: i64) -> Vec<Sample> {
    let mut previous: Option<(i64, i64)> = None;
    copied
        .into_iter()
        .map(|mut x| {
            let stored = x.dts;
            x.dts = match previous {
                Some((was, now)) if stored - was > step => now + step,
                Some((was, now)) => now + (stored - was),
                None => stored + shift,
            };
            previous = Some((stored, x.dts));
            x
        })
        .collect()
}

/// `samples` without the leading pictures of `rap` (their first, a
/// random-access point) that come after it.
fn without_leading(samples: &[Sample], rap: &Sample) -> Vec<Sample> {
    samples
        .iter()
        .enumerate()
        .filter(|&(n, x)| n == 0 || !x.leads(rap))
        .map(|(_, x)| x.clone())
        .collect()
}

/// The encoder for the stored configuration: its name, the profile of its
/// output caps and the encoder option that sets the stream's level, or
/// what is not supported.
fn encoder_for(config: &CodecConfig) -> Result<(&'static str, &'static str, String), ClipError> {
    let unsupported = |what: String| {
        ClipError::Unsupported(format!(
            "accuracy=exact can't re-encode {what}: ask for accuracy=frame (or, with a start on a \
             keyframe, accuracy=exact-start)"
        ))
    };
    let avcc = match &config.entry {
        Codec::Avc1(a) => Some(&a.avcc),
        Codec::Avc3(a) => Some(&a.avcc),
        _ => None,
    };
    let hvcc = match &config.entry {
        Codec::Hvc1(h) => Some(&h.hvcc),
        Codec::Hev1(h) => Some(&h.hvcc),
        _ => None,
    };
    match (avcc, hvcc) {
        (Some(avcc), _) => {
            let deep = avcc
                .ext
                .as_ref()
                .is_some_and(|e| e.chroma_format != 1 || e.bit_depth_luma != 8);
            let profile = match avcc.avc_profile_indication {
                66 => "constrained-baseline",
                77 => "main",
                100 if !deep => "high",
                other => return Err(unsupported(format!("H.264 profile_idc {other}"))),
            };
            // level_idc is ten times the level (x264 takes it as is).
            Ok((
                "x264enc",
                profile,
                format!("level={}", avcc.avc_level_indication),
            ))
        }
        (None, Some(hvcc)) => match hvcc.general_profile_idc {
            // general_level_idc is thirty times the level.
            1 => Ok((
                "x265enc",
                "main",
                format!("level-idc={:.1}", f64::from(hvcc.general_level_idc) / 30.0),
            )),
            other => Err(unsupported(format!(
                "H.265 general_profile_idc {other} (only Main)"
            ))),
        },
        (None, None) => Err(unsupported(format!("{} video", config.name))),
    }
}

/// The frame rate of samples (their shortest presentation step), as a
/// fraction: integer rates and NTSC rates (n × 1000/1001) are exact.
/// One frame's duration, ns: the smallest step between presentation
/// times (else a sample's duration, else 1/30 s).
fn frame_step(samples: &[Sample]) -> i64 {
    let mut pts: Vec<i64> = samples.iter().map(|s| s.pts).collect();
    pts.sort_unstable();
    pts.windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&d| d > 0)
        .min()
        .or_else(|| samples.iter().map(|s| s.duration as i64).find(|&d| d > 0))
        .unwrap_or(1_000_000_000 / 30)
}

fn framerate(samples: &[Sample]) -> gst::Fraction {
    let step = frame_step(samples);
    let fps = 1e9 / step as f64;
    if (fps - fps.round()).abs() < 0.01 {
        gst::Fraction::new(fps.round().max(1.0) as i32, 1)
    } else {
        gst::Fraction::new((fps * 1001.0 / 1000.0).round() as i32 * 1000, 1001)
    }
}

/// Decodes `samples` (decode order, from a keyframe) up to the last one
/// presented in `from..until`, and encodes the frames presented there: the
/// run's sample entry and its samples (no reordering: decode time =
/// presentation time).
fn reencode(
    config: &CodecConfig,
    samples: &[Sample],
    from: i64,
    until: i64,
) -> Result<(Codec, Vec<Sample>), ClipError> {
    let inside = |x: &Sample| x.pts >= from && x.pts < until;
    let last = samples
        .iter()
        .rposition(inside)
        .ok_or_else(|| ClipError::Storage("no frame to re-encode".into()))?;
    let decode = &samples[..=last];
    let mut presented: Vec<i64> = decode.iter().filter(|x| inside(x)).map(|x| x.pts).collect();
    presented.sort_unstable();
    let presented = &presented[..];
    let (encoder_name, profile, level) = encoder_for(config)?;
    let fail = |e: String| ClipError::Storage(format!("exact cut: {e}"));
    let caps = config
        .video_caps()
        .ok_or_else(|| fail("stored video has no decoder caps".into()))?;
    let mut caps = caps;
    caps.make_mut().set("framerate", framerate(decode));
    let hevc = encoder_name == "x265enc";

    let mut chain = vec![make(if hevc { "h265parse" } else { "h264parse" }).map_err(fail)?];
    chain.extend(crate::thumbnailer::render::decode_chain(&caps).map_err(fail)?);
    for e in &chain {
        // Decoding starts at a random-access point whose leading pictures
        // were left out: every frame is whole, including those after an
        // open-GOP I-frame that a decoder would hold back as unrecovered.
        if e.has_property("output-corrupt") {
            e.set_property("output-corrupt", true);
        }
        // avdec_h264 of GStreamer 1.22 with one thread decodes the frames
        // after an open-GOP I-frame with grey areas (missing references)
        // where its frame-threaded decode (the default) is whole.
        if e.has_property("max-threads") {
            e.set_property("max-threads", 0i32);
        }
    }
    chain.push(make("videoconvert").map_err(fail)?);
    chain.push(
        capsfilter(
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .build(),
        )
        .map_err(fail)?,
    );
    let encoder = make(encoder_name).map_err(|e| ClipError::Unsupported(e.to_string()))?;
    if hevc {
        // Constant rate factor rather than a constant quantizer: x265
        // refuses a level (which brings the level's VBV) with constant QP.
        encoder.set_property("key-int-max", i32::MAX);
        encoder.set_property_from_str("speed-preset", "faster");
        encoder.set_property(
            "option-string",
            format!("crf={QUANTIZER}:bframes=0:scenecut=0:{level}"),
        );
    } else {
        encoder.set_property_from_str("pass", "quant");
        encoder.set_property("quantizer", QUANTIZER);
        encoder.set_property("bframes", 0u32);
        encoder.set_property("key-int-max", i32::MAX as u32);
        encoder.set_property_from_str("speed-preset", "faster");
        encoder.set_property("option-string", format!("scenecut=0:{level}"));
    }
    // Only the head's frames reach the encoder.
    let (first, last) = (
        presented.first().copied().unwrap_or(0),
        presented.last().copied().unwrap_or(0),
    );
    if let Some(pad) = encoder.static_pad("sink") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let keep = info
                .buffer()
                .and_then(|b| b.pts())
                .map(|p| p.nseconds() as i64)
                .is_some_and(|p| p >= first && p <= last);
            if keep {
                gst::PadProbeReturn::Ok
            } else {
                // Consumed here (a dropped buffer would be released twice
                // over: GStreamer 1.22 warns of a NULL unref).
                drop(info.take_buffer());
                gst::PadProbeReturn::Handled
            }
        });
    }
    chain.push(encoder);
    let name = if hevc { "video/x-h265" } else { "video/x-h264" };
    chain.push(
        capsfilter(gst::Caps::builder(name).field("profile", profile).build()).map_err(fail)?,
    );
    chain.push(make(if hevc { "h265parse" } else { "h264parse" }).map_err(fail)?);
    chain.push(
        capsfilter(
            gst::Caps::builder(name)
                .field("stream-format", if hevc { "hvc1" } else { "avc" })
                .field("alignment", "au")
                .build(),
        )
        .map_err(fail)?,
    );
    let pipeline = PrivatePipeline::new(
        "liveclip-exact-cut",
        appsrc(&caps, 0),
        chain,
        appsink(),
        "exact cut's re-encode",
    )
    .map_err(fail)?;
    pipeline.play("the exact cut's re-encode").map_err(fail)?;
    for s in decode {
        let mut buffer = gst::Buffer::from_slice(s.data.clone());
        if !s.keyframe {
            buffer.make_mut().set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        let pts = gst::ClockTime::from_nseconds(s.pts.max(0) as u64);
        let dts = gst::ClockTime::from_nseconds(s.dts.max(0) as u64);
        pipeline
            .push(buffer, pts, Some(dts))
            .map_err(|e| fail(format!("feeding the decoder: {e:?}")))?;
    }
    match pipeline.drain(TIMEOUT) {
        Ok(()) => {}
        Err(Some(e)) => return Err(fail(e)),
        Err(None) => return Err(fail("the re-encode timed out".into())),
    }
    let mut out = Vec::new();
    let mut out_caps = None;
    while let Some(sample) = pipeline.pull() {
        let Some(buffer) = sample.buffer() else {
            continue;
        };
        if out_caps.is_none() {
            out_caps = sample.caps().map(|c| c.to_owned());
        }
        let map = buffer
            .map_readable()
            .map_err(|_| fail("unreadable encoder output".into()))?;
        let pts = buffer.pts().map(|p| p.nseconds() as i64);
        out.push((
            pts,
            !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            Bytes::copy_from_slice(map.as_slice()),
        ));
    }
    let out_caps = out_caps.ok_or_else(|| fail("the encoder gave nothing".into()))?;
    let encoded = CodecConfig::from_caps(&out_caps).map_err(|e| fail(e.to_string()))?;
    // One frame out for each frame in, in presentation order (encoders
    // may move the timeline: x264enc starts it at 1000 h).
    let got: Vec<i64> = out.iter().map(|o| o.0.unwrap_or(-1)).collect();
    let want = presented;
    let same_steps = got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| ((g - got[0]) - (w - want[0])).abs() < 1_000_000);
    if !same_steps || !out.first().is_some_and(|o| o.1) {
        return Err(fail(format!(
            "the encoder gave frames at {got:?} for {want:?} (or no keyframe first)"
        )));
    }
    let samples = out
        .into_iter()
        .zip(presented)
        .map(|((_, keyframe, data), &pts)| {
            let mut s = Sample {
                pts,
                dts: pts,
                duration: 0,
                keyframe,
                access: crate::core::nal::Access::Unknown,
                data,
            };
            if let Some((codec, framing)) = encoded.nal_format() {
                s.classify(codec, framing);
            }
            s
        })
        .collect();
    Ok((encoded.entry, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One frame, ns (30 fps).
    const F: i64 = 1_000_000_000 / 30;

    /// Samples from `(pts frame, keyframe)` in decode order, decode times
    /// one frame apart starting two frames before the first pts.
    fn gop(frames: &[(i64, bool)]) -> Vec<Sample> {
        frames
            .iter()
            .enumerate()
            .map(|(i, &(p, key))| Sample {
                pts: p * F,
                dts: (frames[0].0 - 2 + i as i64) * F,
                duration: F as u64,
                keyframe: key,
                access: crate::core::nal::Access::Unknown,
                data: Bytes::new(),
            })
            .collect()
    }

    /// Closed GOPs of 9 frames, B-frames: I0 P3 B1 B2 P6 B4 B5 P8 B7 | I9
    /// P12 B10 B11 P15 B13 B14 P17 B16 | I18 ...
    fn closed() -> Vec<Sample> {
        let mut v = Vec::new();
        for g in 0..3 {
            let o = g * 9;
            v.extend([
                (o, true),
                (o + 3, false),
                (o + 1, false),
                (o + 2, false),
                (o + 6, false),
                (o + 4, false),
                (o + 5, false),
                (o + 8, false),
                (o + 7, false),
            ]);
        }
        gop(&v)
    }

    #[test]
    fn a_mid_gop_end_with_b_frames_re_encodes_from_the_last_mini_gop_boundary() {
        let s = closed();
        // Frames 4..20: head 4..9, copy the GOP at 9 and I18, tail 19..20
        // (copying on would need P21 for B19/B20: past the end). The tail
        // decodes I18 P21 B19 and encodes B19 alone.
        let p = plan(&s, 4 * F, 20 * F, true);
        assert_eq!(p.head, Some((4 * F, 9 * F)));
        assert_eq!(p.copy, Some(9..19));
        assert_eq!(p.tail, Some((18, 19 * F)));
        assert_eq!(p.end, 20 * F);
        // Frames 4..17: the copy stops after P15 B13 B14 (frames 9..15),
        // B16 is re-encoded from I9.
        let p = plan(&s, 4 * F, 17 * F, true);
        assert_eq!((p.copy, p.tail), (Some(9..16), Some((9, 16 * F))));
        // Copied instead, the end runs over to P21's frame boundary.
        let p = plan(&s, 4 * F, 20 * F, false);
        assert_eq!((p.copy, p.tail, p.end), (Some(9..22), None, 22 * F));
    }

    #[test]
    fn a_b_pyramid_tail_starts_after_the_mini_gop() {
        // x265's defaults: four B-frames in a pyramid, I0 P4 B2 b1 b3 P8
        // B6 b5 b7 | I9 ...
        let s = gop(&[
            (0, true),
            (4, false),
            (2, false),
            (1, false),
            (3, false),
            (8, false),
            (6, false),
            (5, false),
            (7, false),
            (9, true),
        ]);
        // Frames 0..7: copy I0 P4 B2 b1 b3 (0..5), re-encode 5 and 6.
        let p = plan(&s, 0, 7 * F, true);
        assert_eq!(p.head, None);
        assert_eq!(
            (p.copy, p.tail, p.end),
            (Some(0..5), Some((0, 5 * F)), 7 * F)
        );
    }

    #[test]
    fn an_end_the_copy_presents_exactly_re_encodes_nothing_there() {
        let s = closed();
        // Frames 4..18: the copy of the GOP at 9 ends on the keyframe.
        let p = plan(&s, 4 * F, 18 * F, true);
        assert_eq!((p.copy, p.tail, p.end), (Some(9..18), None, 18 * F));
        // Frames 9..16: P15's B-frames come before it; P17 is not needed.
        let p = plan(&s[9..], 9 * F, 16 * F, true);
        assert_eq!(p.head, None);
        assert_eq!((p.copy, p.tail, p.end), (Some(0..7), None, 16 * F));
    }

    #[test]
    fn an_end_in_the_first_copied_gop_after_a_head_makes_it_all_head() {
        let s = closed();
        // Frames 4..11: copying from I9 would run over (P12 for B10, B11).
        let p = plan(&s, 4 * F, 11 * F, true);
        assert_eq!(
            (p.head, p.copy, p.tail),
            (Some((4 * F, 11 * F)), None, None)
        );
        // From a keyframe: the keyframe is copied, B10 re-encoded.
        let p = plan(&s[9..], 9 * F, 11 * F, true);
        assert_eq!(
            (p.head, p.copy, p.tail),
            (None, Some(0..1), Some((0, 10 * F)))
        );
        assert_eq!(p.end, 11 * F);
        // An end right after the keyframe: nothing to copy but it.
        let p = plan(&s[9..], 9 * F, 10 * F, true);
        assert_eq!((p.head, p.copy, p.tail), (None, Some(0..1), None));
    }

    #[test]
    fn leading_pictures_left_out_leave_no_gap_in_decode_times() {
        // Open GOP: I9 B7 B8 P12 B10 B11, decode times 7..12 (frames).
        let s = gop(&[
            (9, true),
            (7, false),
            (8, false),
            (12, false),
            (10, false),
            (11, false),
        ]);
        let copied = without_leading(&s, &s[0]);
        // After a head: I9 decodes when it is presented (shift 2 frames),
        // P12 one frame later (not three: B7, B8 are gone).
        let d: Vec<i64> = decode_times(copied.clone(), 2 * F, F)
            .iter()
            .map(|x| x.dts / F)
            .collect();
        assert_eq!(d, vec![9, 10, 11, 12]);
        // Without a head: the stored times, the gap closed the same way.
        let d: Vec<i64> = decode_times(copied, 0, F)
            .iter()
            .map(|x| x.dts / F)
            .collect();
        assert_eq!(d, vec![7, 8, 9, 10]);
    }

    #[test]
    fn an_open_gop_tail_starts_at_the_leading_pictures() {
        // Open GOPs: I0 P3 B1 B2 P6 B4 B5 | I9 B7 B8 P12 B10 B11 | I15 B13
        // B14 P18 B16 B17 | I21 B19 B20.
        let s = gop(&[
            (0, true),
            (3, false),
            (1, false),
            (2, false),
            (6, false),
            (4, false),
            (5, false),
            (9, true),
            (7, false),
            (8, false),
            (12, false),
            (10, false),
            (11, false),
            (15, true),
            (13, false),
            (14, false),
            (18, false),
            (16, false),
            (17, false),
            (21, true),
            (19, false),
            (20, false),
        ]);
        // Frames 1..17: the head runs to I9 with its leading B7, B8; the
        // copy is I9's GOP (without B7, B8) and I15 with its leading B13,
        // B14; the tail is B16, decoded from I15.
        let p = plan(&s, F, 17 * F, true);
        assert_eq!(p.head, Some((F, 9 * F)));
        assert_eq!(p.copy, Some(7..16));
        assert_eq!(p.tail, Some((13, 16 * F)));
        assert_eq!(p.end, 17 * F);
        // An end on I15: its leading pictures B13, B14 come before it and
        // need it; only they are re-encoded (decoded from I9).
        let p = plan(&s, F, 15 * F, true);
        assert_eq!(
            (p.copy, p.tail, p.end),
            (Some(7..13), Some((7, 13 * F)), 15 * F)
        );
        // Copied instead, the clip runs on to I15's frame boundary.
        let p = plan(&s, F, 15 * F, false);
        assert_eq!((p.tail, p.end), (None, 16 * F));
        // What the copy presents: I9 P12 B10 B11 = frames 9..13.
        let copied = without_leading(&s[7..13], &s[7]);
        let mut pts: Vec<i64> = copied.iter().map(|x| x.pts / F).collect();
        pts.sort_unstable();
        assert_eq!(pts, vec![9, 10, 11, 12]);
    }
}
