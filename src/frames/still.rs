// SPDX-License-Identifier: MPL-2.0
//! Stills of recorded moments (hlsclipsink's `/{id}/thumbnails/…` route and
//! `get-thumbnail` signal): the samples `hls::still` selects from the
//! stored fragments are decoded and encoded by a private pipeline of
//! GStreamer's own elements, on the caller's thread (tokio's blocking pool
//! for HTTP, the application's thread for the signal), under the stream's
//! clip permits.
//!
//! ```text
//! appsrc (the track's caps) ! [parser] ! decoder ! (only the frame at the time) !
//!   videoconvert ! I420 ! deinterlace ! [videocrop] ! videoscale ! WxH,PAR 1/1 !
//!   [videobox] ! videoconvert ! jpegenc|pngenc|webpenc ! appsink
//! ```
//!
//! The samples from the keyframe to the frame are pushed in decode order,
//! then EOS drains the decoder; a probe behind the decoder lets only the
//! frame whose timestamp is the wanted one through, so one picture is
//! scaled and encoded.

use std::time::Duration;

use bytes::Bytes;
use gst::prelude::*;

use super::pipeline::{PrivatePipeline, appsink, appsrc};
use crate::core::thumbs::{Fit, Geometry};
use crate::hls::clip::ClipError;
use crate::hls::service::ClipService;
use crate::hls::still::{StillFormat, StillFrames, StillKey, StillRequest};
use crate::thumbnailer::ImageFormat;
use crate::thumbnailer::render::{decode_chain, encoder, scale_chain};

/// JPEG and WebP quality of stills.
pub const QUALITY: u32 = 85;

/// Longest a still may take to decode and encode.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A still, encoded.
#[derive(Debug, Clone)]
pub struct Still {
    pub image: Bytes,
    pub format: StillFormat,
    pub media_id: String,
    /// The requested recording time, ns.
    pub requested: u64,
    /// Recording time at which the pictured frame is presented, ns.
    pub frame: u64,
    pub utc: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether the session is still being recorded.
    pub live: bool,
    pub width: u32,
    pub height: u32,
    /// Answered from the stream's cache.
    pub cached: bool,
}

fn image_format(f: StillFormat) -> ImageFormat {
    match f {
        StillFormat::Jpeg => ImageFormat::Jpeg,
        StillFormat::Png => ImageFormat::Png,
        StillFormat::Webp => ImageFormat::Webp,
    }
}

/// The geometry of `req` for a track of `caps`.
fn geometry(caps: &gst::Caps, req: &StillRequest) -> Result<Geometry, String> {
    geometry_for(caps, req.width, req.height, req.fit)
}

/// The output geometry for a track of `caps` asked at `width`x`height`
/// (0: from the display aspect ratio) with `fit`.
pub(crate) fn geometry_for(
    caps: &gst::Caps,
    width: u32,
    height: u32,
    fit: Fit,
) -> Result<Geometry, String> {
    let s = caps.structure(0).ok_or("empty caps")?;
    let w = s.get::<i32>("width").map_err(|e| e.to_string())?;
    let h = s.get::<i32>("height").map_err(|e| e.to_string())?;
    let par = s
        .get::<gst::Fraction>("pixel-aspect-ratio")
        .unwrap_or(gst::Fraction::new(1, 1));
    Ok(Geometry::compute(
        (w.max(1) as u32, h.max(1) as u32),
        (par.numer().max(0) as u32, par.denom().max(0) as u32),
        width,
        height,
        fit,
    ))
}

/// Decodes `frames` and encodes the frame presented at the requested time
/// as `req` asks.
pub fn render(frames: &StillFrames, req: &StillRequest, caps: &gst::Caps) -> Result<Bytes, String> {
    let g = geometry(caps, req)?;
    let decode = decode_chain(caps)?;
    let decoder = decode.last().cloned().ok_or("no decoder")?;
    if decoder.has_property("max-threads") {
        // One still at a time per permit: threads shorten the decode.
        decoder.set_property_from_str("max-threads", "0");
    }
    if decoder.has_property("output-corrupt") {
        // Every reference of the pictures pushed is there. But libav's
        // H.264 decoder, started at an open-GOP I picture, counts the
        // pictures after it as recovered only once that picture has left
        // its reorder queue before the end of the stream, so a frame a few
        // pictures after it would otherwise not come out at the drain.
        decoder.set_property("output-corrupt", true);
    }
    let mut chain = decode;
    chain.extend(scale_chain(&g)?);
    chain.push(encoder(image_format(req.format), QUALITY)?);
    let pipeline = PrivatePipeline::new(
        "hlsclipsink-still",
        appsrc(caps, 0),
        chain,
        appsink(),
        "still renderer",
    )?;
    // Timestamps from 0 at the earliest decode time.
    let base = frames
        .samples
        .iter()
        .map(|s| s.dts.min(s.pts))
        .min()
        .unwrap_or(0);
    let ts = |t: i64| gst::ClockTime::from_nseconds((t - base).max(0) as u64);
    let wanted = ts(frames.frame_sample().pts);
    let pad = decoder
        .static_pad("src")
        .ok_or("decoder without a src pad")?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        match info.buffer().and_then(|b| b.pts()) {
            Some(pts) if pts == wanted => gst::PadProbeReturn::Ok,
            _ => gst::PadProbeReturn::Drop,
        }
    });
    pipeline.play("the still renderer")?;
    for s in &frames.samples {
        let buffer = gst::Buffer::from_slice(s.data.clone());
        pipeline
            .push(buffer, ts(s.pts), Some(ts(s.dts)))
            .map_err(|e| format!("push: {e:?}"))?;
    }
    pipeline
        .drain(TIMEOUT)
        .map_err(|e| e.unwrap_or_else(|| format!("no image within {TIMEOUT:?}")))?;
    let sample = pipeline
        .pull()
        .ok_or("the frame did not decode (no picture)")?;
    let buffer = sample.buffer().ok_or("empty sample")?;
    let map = buffer.map_readable().map_err(|e| e.to_string())?;
    Ok(Bytes::copy_from_slice(&map))
}

/// The still `req` asks for of session `media_id` (`None`: the stream's
/// live or newest session): the samples are found without a permit (like
/// a clip manifest), a cached picture of the same frame and parameters is
/// answered at once, and decoding takes one of the stream's clip permits
/// (shared with MP4 clips; `Busy` when too many wait).
pub fn thumbnail(
    service: &ClipService,
    media_id: Option<&str>,
    req: &StillRequest,
) -> Result<Still, ClipError> {
    let frames = service.still_frames(media_id, &req.clip)?;
    let caps = frames.config.video_caps().ok_or_else(|| {
        ClipError::Storage(format!(
            "session {} has no H.264/H.265 video",
            frames.media_id
        ))
    })?;
    let g = geometry(&caps, req).map_err(ClipError::Storage)?;
    let key = StillKey::of(&frames, req);
    let cached = service.stills().get(&key);
    let hit = cached.is_some();
    let image = match cached {
        Some(image) => image,
        None => {
            let image = service.with_permit(|| {
                render(&frames, req, &caps).map_err(|e| {
                    ClipError::Storage(format!(
                        "the frame at {:.3} s of session {} could not be made into an image: {e}",
                        frames.frame as f64 / 1e9,
                        frames.media_id
                    ))
                })
            })?;
            service.stills().put(key, image.clone());
            image
        }
    };
    Ok(Still {
        image,
        format: req.format,
        media_id: frames.media_id.clone(),
        requested: frames.requested,
        frame: frames.frame,
        utc: frames.utc,
        live: frames.live,
        width: g.out.0,
        height: g.out.1,
        cached: hit,
    })
}
