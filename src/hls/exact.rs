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

/// x264/x265 quantizer of the re-encoded head: close to transparent
/// (well above 40 dB PSNR against the decoded recording), and only a
/// partial GOP is encoded at it.
const QUANTIZER: u32 = 14;

/// The video of an exact cut.
#[derive(Debug)]
pub struct Cut {
    /// The samples to write, in decode order: the re-encoded head, then the
    /// copied samples.
    pub samples: Vec<Sample>,
    /// The re-encoded head: its sample count and its configuration.
    pub head: Option<(usize, Arc<CodecConfig>)>,
    /// Where presentation ends, ns: the requested end on a frame boundary
    /// (`end`), or later when a copied frame presented after it is needed
    /// to decode one before it (B-frames).
    pub end: i64,
}

/// Cuts the video `from_key` (the stored samples in decode order, from the
/// keyframe at or before `start`) to present exactly the frames from
/// `start` (a frame's time) to `end` (a frame boundary).
pub fn cut(
    config: &CodecConfig,
    from_key: &[Sample],
    start: i64,
    end: i64,
) -> Result<Cut, ClipError> {
    let Some(k1) = from_key.first() else {
        return Err(ClipError::Storage("no video to cut".into()));
    };
    // The keyframe's own leading pictures are never presented here (they
    // come before the start) and may refer to pictures before it.
    let s: Vec<Sample> = from_key
        .iter()
        .enumerate()
        .filter(|&(n, x)| n == 0 || !x.leads(k1))
        .map(|(_, x)| x.clone())
        .collect();
    // The next random-access point in decode order.
    let k2 = s
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, x)| x.keyframe)
        .map(|(i, _)| i);
    let copy_from = if s[0].pts >= start {
        Some(0)
    } else {
        k2.filter(|&i| s[i].pts < end)
    };
    let head_until = copy_from.map_or(end, |i| s[i].pts.min(end));

    let mut out = Vec::new();
    let mut head = None;
    if s[0].pts < start {
        // Every sample up to the last one presented in the head decodes it
        // (in an open GOP that includes the next keyframe, which its
        // leading pictures refer to).
        let mut presented: Vec<i64> = s
            .iter()
            .filter(|x| x.pts >= start && x.pts < head_until)
            .map(|x| x.pts)
            .collect();
        presented.sort_unstable();
        let last = s
            .iter()
            .rposition(|x| x.pts >= start && x.pts < head_until)
            .ok_or_else(|| ClipError::Storage("no frame to re-encode".into()))?;
        let (entry, samples) = reencode(config, &s[..=last], &presented)?;
        let mut head_config = config.clone();
        head_config.entry = entry;
        head = Some((samples.len(), Arc::new(head_config)));
        out.extend(samples);
    }
    let mut end_out = end;
    if let Some(k) = copy_from {
        let key = &s[k];
        // Every frame presented before the end, and everything decoded
        // before the last of them: a reference frame presented at or after
        // the end that an earlier frame needs (B-frames) stays, and so
        // presentation ends after it, with every frame before it.
        let mut last;
        loop {
            last = s.iter().rposition(|x| x.pts < end_out).unwrap_or(k).max(k);
            let max = s[k..=last].iter().map(|x| x.pts).max().unwrap_or(key.pts);
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
        // Decode times move so that the keyframe decodes when it is
        // presented, after the head (which has no reordering); frames that
        // are reordered before their decode time get negative composition
        // offsets.
        let shift = if head.is_some() { key.pts - key.dts } else { 0 };
        let copied: Vec<Sample> = s[k..=last]
            .iter()
            .enumerate()
            .filter(|&(n, x)| n == 0 || !x.leads(key))
            .map(|(_, x)| {
                let mut x = x.clone();
                x.dts += shift;
                x
            })
            .collect();
        out.extend(copied);
    }
    Ok(Cut {
        samples: out,
        head,
        end: end_out,
    })
}

/// The encoder's name and profile for the stored configuration, or what is
/// not supported.
fn encoder_for(config: &CodecConfig) -> Result<(&'static str, &'static str), ClipError> {
    let unsupported = |what: String| {
        ClipError::Unsupported(format!(
            "accuracy=exact can't re-encode {what}: ask for accuracy=frame"
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
            Ok(("x264enc", profile))
        }
        (None, Some(hvcc)) => match hvcc.general_profile_idc {
            1 => Ok(("x265enc", "main")),
            other => Err(unsupported(format!(
                "H.265 general_profile_idc {other} (only Main)"
            ))),
        },
        (None, None) => Err(unsupported(format!("{} video", config.name))),
    }
}

/// The frame rate of samples (their shortest presentation step), as a
/// fraction: integer rates and NTSC rates (n × 1000/1001) are exact.
fn framerate(samples: &[Sample]) -> gst::Fraction {
    let mut pts: Vec<i64> = samples.iter().map(|s| s.pts).collect();
    pts.sort_unstable();
    let step = pts
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&d| d > 0)
        .min()
        .or_else(|| samples.iter().map(|s| s.duration as i64).find(|&d| d > 0))
        .unwrap_or(1_000_000_000 / 30);
    let fps = 1e9 / step as f64;
    if (fps - fps.round()).abs() < 0.01 {
        gst::Fraction::new(fps.round().max(1.0) as i32, 1)
    } else {
        gst::Fraction::new((fps * 1001.0 / 1000.0).round() as i32 * 1000, 1001)
    }
}

/// Decodes `decode` (decode order, from a keyframe) and encodes the frames
/// presented at `presented` (ascending): the head's sample entry and its
/// samples (no reordering: decode time = presentation time).
fn reencode(
    config: &CodecConfig,
    decode: &[Sample],
    presented: &[i64],
) -> Result<(Codec, Vec<Sample>), ClipError> {
    let (encoder_name, profile) = encoder_for(config)?;
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
        encoder.set_property("qp", QUANTIZER as i32);
        encoder.set_property("key-int-max", i32::MAX);
        encoder.set_property_from_str("speed-preset", "faster");
        encoder.set_property("option-string", "bframes=0:scenecut=0");
    } else {
        encoder.set_property_from_str("pass", "quant");
        encoder.set_property("quantizer", QUANTIZER);
        encoder.set_property("bframes", 0u32);
        encoder.set_property("key-int-max", i32::MAX as u32);
        encoder.set_property_from_str("speed-preset", "faster");
        encoder.set_property("option-string", "scenecut=0");
    }
    // Only the head's frames reach the encoder.
    let (from, until) = (
        presented.first().copied().unwrap_or(0),
        presented.last().copied().unwrap_or(0),
    );
    if let Some(pad) = encoder.static_pad("sink") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let keep = info
                .buffer()
                .and_then(|b| b.pts())
                .map(|p| p.nseconds() as i64)
                .is_some_and(|p| p >= from && p <= until);
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
