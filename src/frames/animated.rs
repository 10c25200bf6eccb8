// SPDX-License-Identifier: MPL-2.0
//! Muted motion clips of a recorded range (hlsclipsink's
//! `/{id}/animated.gif|mp4` route): the range is cut like an MP4 clip
//! (`ClipService::make_clip`, so it is placed, waited for and refused as
//! clips are), its video decoded from the keyframe before it, the frames
//! presented in the range resampled to the asked rate, scaled as stills
//! are, and encoded as motionclipenc encodes its clips:
//!
//! ```text
//! appsrc (the track's caps) ! [parser] ! decoder ! (frames in the range, from 0) !
//!   videoconvert ! … videoscale ! WxH,PAR 1/1 ! videorate ! fps !
//!   GIF: videoconvert ! RGBA ! appsink      -> gif crate
//!   MP4: videoconvert ! x264enc ! h264parse ! appsink -> mp4::progressive
//! ```
//!
//! It runs on the caller's thread (tokio's blocking pool for HTTP) under
//! one of the stream's clip permits.

use std::time::Duration;

use bytes::Bytes;
use gst::prelude::*;

use super::pipeline::{PrivatePipeline, appsink, appsrc, capsfilter, make};
use crate::core::TrackKind;
use crate::core::thumbs::Fit;
use crate::hls::clip::{ClipError, ClipRequest};
use crate::hls::service::ClipService;
use crate::motionclipenc::ClipFormat;
use crate::thumbnailer::render::{decode_chain, scale_chain};

/// Longest an animation may take to make.
const TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_WIDTH: u32 = 320;
const DEFAULT_FPS: u32 = 15;
const MAX_FPS: u32 = 30;
/// Largest side of an animation, pixels.
const MAX_SIDE: u32 = 1920;

/// An animation request: the range (a clip request), the size and rate,
/// and the format (the route's extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnimatedRequest {
    pub clip: ClipRequest,
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
    pub fps: u32,
    pub format: ClipFormat,
}

impl AnimatedRequest {
    /// The parameters it takes.
    pub const PARAMS: &[&str] = &[
        "start", "time", "end", "duration", "width", "height", "fit_mode", "fps", "token",
    ];

    /// Parses `start` (or `time`), `end` or `duration` (as clip requests
    /// take them), `width` (default 320; 0 with a `height`), `height`,
    /// `fit_mode`, `fps` (1-30, default 15).
    pub fn parse_query(query: &str, format: ClipFormat) -> Result<Self, ClipError> {
        let pairs =
            crate::core::query::known_pairs(query, Self::PARAMS).map_err(ClipError::BadRequest)?;
        let mut req = AnimatedRequest {
            clip: ClipRequest::default(),
            width: 0,
            height: 0,
            fit: Fit::default(),
            fps: DEFAULT_FPS,
            format,
        };
        let mut clip = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            let bad = |what: &str| {
                ClipError::BadRequest(format!("parameter {name}: {value:?} is not {what}"))
            };
            match name.as_str() {
                "width" | "height" | "fit_mode" => {
                    crate::hls::still::picture_param(
                        &name,
                        &value,
                        MAX_SIDE,
                        &mut req.width,
                        &mut req.height,
                        &mut req.fit,
                    )?;
                }
                "fps" => {
                    req.fps = value
                        .parse()
                        .ok()
                        .filter(|v| (1..=MAX_FPS).contains(v))
                        .ok_or_else(|| bad(&format!("a whole number from 1 to {MAX_FPS}")))?;
                }
                _ => {
                    clip.append_pair(&name, &value);
                }
            }
        }
        if req.width == 0 && req.height == 0 {
            req.width = DEFAULT_WIDTH;
        }
        req.clip = ClipRequest::parse_query(&clip.finish())?;
        Ok(req)
    }
}

/// A made animation.
#[derive(Debug, Clone)]
pub struct Animation {
    pub bytes: Bytes,
    pub format: ClipFormat,
    pub media_id: String,
    /// Recording time of its first frame and its length, ns.
    pub start: u64,
    pub duration: u64,
    pub frames: u32,
    pub width: u32,
    pub height: u32,
}

/// Makes the animation `req` asks for of session `media_id`, refusing
/// ranges longer than `max` ns.
pub fn animation(
    service: &ClipService,
    media_id: Option<&str>,
    req: &AnimatedRequest,
    max: u64,
) -> Result<Animation, ClipError> {
    let length = req.clip.duration.unwrap_or(0);
    if length > max {
        return Err(ClipError::BadRequest(format!(
            "an animation of {:.3} s was asked; at most {:.3} s are allowed (max-animated-duration)",
            length as f64 / 1e9,
            max as f64 / 1e9
        )));
    }
    service.with_permit(|| {
        let (clip, info) = service.make_clip(media_id, &req.clip)?;
        if info.duration() > max {
            return Err(ClipError::BadRequest(format!(
                "an animation of {:.3} s was asked; at most {:.3} s are allowed (max-animated-duration)",
                info.duration() as f64 / 1e9,
                max as f64 / 1e9
            )));
        }
        let video = clip
            .tracks
            .iter()
            .find(|t| t.config.kind == TrackKind::Video)
            .ok_or_else(|| ClipError::NotFound(format!("session {} has no video", info.media_id)))?;
        let caps = video.config.video_caps().ok_or_else(|| {
            ClipError::Storage(format!("session {} has no H.264/H.265 video", info.media_id))
        })?;
        let made = render(
            &video.samples,
            &caps,
            info.start as i64,
            info.end as i64,
            req,
        )
        .map_err(|e| {
            ClipError::Storage(format!(
                "the range {:.3}-{:.3} s of session {} could not be animated: {e}",
                info.start as f64 / 1e9,
                info.end as f64 / 1e9,
                info.media_id
            ))
        })?;
        Ok(Animation {
            bytes: Bytes::from(made.bytes),
            format: req.format,
            media_id: info.media_id.clone(),
            start: info.start,
            duration: info.duration(),
            frames: made.frames,
            width: made.width,
            height: made.height,
        })
    })
}

/// Decodes `samples` (decode order, from a keyframe) and encodes the
/// frames presented in `[start, end)` (ns, the samples' axis).
fn render(
    samples: &[crate::core::Sample],
    caps: &gst::Caps,
    start: i64,
    end: i64,
    req: &AnimatedRequest,
) -> Result<crate::motionclipenc::encode::Clip, String> {
    let g = super::still::geometry_for(caps, req.width, req.height, req.fit)?;
    let decode = decode_chain(caps)?;
    let decoder = decode.last().cloned().ok_or("no decoder")?;
    if decoder.has_property("output-corrupt") {
        // See `frames::still::render`: open-GOP starts.
        decoder.set_property("output-corrupt", true);
    }
    let mut chain = decode;
    chain.extend(scale_chain(&g)?);
    chain.push(make("videorate")?);
    let rate = gst::Caps::builder("video/x-raw")
        .field("framerate", gst::Fraction::new(req.fps as i32, 1))
        .build();
    chain.push(capsfilter(rate)?);
    chain.push(make("videoconvert")?);
    match req.format {
        ClipFormat::Gif => chain.push(capsfilter(
            gst::Caps::builder("video/x-raw")
                .field("format", "RGBA")
                .build(),
        )?),
        ClipFormat::Mp4 => {
            let name = crate::motionclipenc::encode::pick_encoder(None)
                .ok_or("no H.264 encoder (x264enc or openh264enc)")?;
            let encoder = make(&name)?;
            if encoder.has_property("speed-preset") {
                encoder.set_property_from_str("speed-preset", "veryfast");
            }
            if encoder.has_property("key-int-max") {
                encoder.set_property("key-int-max", 10_000u32);
            }
            chain.push(encoder);
            chain.push(make("h264parse")?);
            chain.push(capsfilter(
                gst::Caps::builder("video/x-h264")
                    .field("stream-format", "avc")
                    .field("alignment", "au")
                    .build(),
            )?);
        }
    }
    let pipeline = PrivatePipeline::new(
        "hlsclipsink-animated",
        appsrc(caps, 0),
        chain,
        appsink(),
        "animator",
    )?;
    // Timestamps from 0 at the earliest decode time; behind the decoder,
    // only the range's frames go on, moved to start at 0.
    let base = samples.iter().map(|s| s.dts.min(s.pts)).min().unwrap_or(0);
    let ts = |t: i64| gst::ClockTime::from_nseconds((t - base).max(0) as u64);
    let (from, to) = (ts(start), ts(end));
    let pad = decoder
        .static_pad("src")
        .ok_or("decoder without a src pad")?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(buffer) = info.buffer_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        match buffer.pts() {
            Some(pts) if pts >= from && pts < to => {
                buffer.make_mut().set_pts(pts - from);
                gst::PadProbeReturn::Ok
            }
            _ => gst::PadProbeReturn::Drop,
        }
    });
    pipeline.play("the animator")?;
    for s in samples {
        pipeline
            .push(
                gst::Buffer::from_slice(s.data.clone()),
                ts(s.pts),
                Some(ts(s.dts)),
            )
            .map_err(|e| format!("push: {e:?}"))?;
    }
    pipeline
        .drain(TIMEOUT)
        .map_err(|e| e.unwrap_or_else(|| format!("no animation within {TIMEOUT:?}")))?;
    let length = (end - start).max(0) as u64;
    // videorate may repeat the last frame at the range's end at EOS.
    // (An encoder's output is timed in its own segment: by running time.)
    let out: Vec<gst::Sample> = std::iter::from_fn(|| pipeline.pull())
        .filter(|s| {
            let segment = s
                .segment()
                .and_then(|seg| seg.clone().downcast::<gst::ClockTime>().ok());
            let running = s
                .buffer()
                .and_then(|b| b.pts())
                .and_then(|pts| segment.map_or(Some(pts), |seg| seg.to_running_time(pts)));
            running.is_none_or(|t| t.nseconds() < length)
        })
        .collect();
    match req.format {
        ClipFormat::Gif => crate::motionclipenc::encode::gif(&out, length),
        ClipFormat::Mp4 => crate::motionclipenc::encode::mp4(&out, length, None),
    }
}
