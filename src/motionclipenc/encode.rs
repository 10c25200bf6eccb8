// SPDX-License-Identifier: MPL-2.0
//! The private pipeline of one clip (on [`crate::frames::pipeline`]), and
//! the clip file made from what it gives.
//!
//! ```text
//! MP4: appsrc ! videoconvert ! videoscale ! video/x-raw,WxH,PAR 1/1 !
//!      x264enc (or openh264enc) ! h264parse ! video/x-h264,avc,au ! appsink
//!      -> mp4::progressive (faststart)
//! GIF: appsrc ! videoconvert ! videoscale ! video/x-raw,RGBA,WxH,PAR 1/1 ! appsink
//!      -> gif crate (NeuQuant palette per frame, looping)
//! ```
//!
//! A pipeline lives for one capture window: it starts when the window
//! opens, is fed the window's frames as they come (so encoding overlaps
//! capture), and is drained with EOS when the window ends.

use std::sync::Arc;
use std::time::Duration;

use gst::prelude::*;

use crate::core::TrackKind;
use crate::core::motion::gif_delays;
use crate::frames::pipeline::{PrivatePipeline, Rgbx, appsink, appsrc, capsfilter, make};
use crate::media::sample_from_buffer;
use crate::mp4::codec::CodecConfig;
use crate::mp4::progressive::{ClipTrack, Mp4Clip};

use super::ClipFormat;

/// Everything that shapes one clip's pipeline.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The input caps (raw video).
    pub caps: gst::Caps,
    /// Output size in square pixels.
    pub size: (u32, u32),
    pub framerate: u32,
    pub format: ClipFormat,
    /// kbit/s (MP4).
    pub bitrate: u32,
    /// H.264 encoder factory (MP4).
    pub encoder: String,
    /// Output frames in a whole window (one keyframe for all of them).
    pub frames: u32,
}

/// The H.264 encoder to use: `name`, or the best available.
pub fn pick_encoder(name: Option<&str>) -> Option<String> {
    match name.filter(|n| !n.is_empty()) {
        Some(n) => gst::ElementFactory::find(n).map(|_| n.to_string()),
        None => ["x264enc", "openh264enc"]
            .into_iter()
            .find(|n| gst::ElementFactory::find(n).is_some())
            .map(str::to_string),
    }
}

fn h264_encoder(spec: &Spec) -> Result<gst::Element, String> {
    let e = make(&spec.encoder)?;
    let frames = spec.frames.max(1);
    let has = |p: &str| e.has_property(p);
    if spec.encoder == "x264enc" {
        // No lookahead, no B-frames: frames come out as they go in.
        e.set_property_from_str("tune", "zerolatency");
        e.set_property_from_str("speed-preset", "veryfast");
        e.set_property("key-int-max", frames);
        e.set_property("bitrate", spec.bitrate);
    } else {
        if has("gop-size") {
            e.set_property("gop-size", frames);
        }
        if has("key-int-max") {
            e.set_property_from_str("key-int-max", &frames.to_string());
        }
        if spec.encoder == "openh264enc" && has("bitrate") {
            e.set_property("bitrate", spec.bitrate.saturating_mul(1000));
        }
    }
    Ok(e)
}

pub struct ClipPipeline {
    pipeline: PrivatePipeline,
    spec: Spec,
}

impl ClipPipeline {
    /// Builds the pipeline and starts it.
    pub fn start(spec: Spec) -> Result<Self, String> {
        // The frames leave at the output rate: say so, so that the encoder's
        // timing information and the MP4 timescale match.
        let mut caps = spec.caps.clone();
        if let Some(s) = caps.make_mut().structure_mut(0) {
            s.set(
                "framerate",
                gst::Fraction::new(spec.framerate.max(1) as i32, 1),
            );
        }
        let frame_bytes = gst_video::VideoInfo::from_caps(&caps)
            .map(|i| i.size() as u64)
            .unwrap_or(8 << 20);
        // A few frames ahead of the encoder at most; the worker waits.
        let src = appsrc(&caps, frame_bytes * 4);
        src.set_block(true);
        let sink = appsink();
        sink.set_max_buffers(0);
        let (w, h) = spec.size;
        let mut scaled = gst::Caps::builder("video/x-raw")
            .field("width", w as i32)
            .field("height", h as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1));
        if spec.format == ClipFormat::Gif {
            scaled = scaled.field("format", "RGBA");
        }
        let scale = make("videoscale")?;
        scale.set_property("add-borders", false);
        let mut chain = vec![make("videoconvert")?, scale, capsfilter(scaled.build())?];
        if spec.format == ClipFormat::Mp4 {
            chain.push(make("videoconvert")?);
            chain.push(h264_encoder(&spec)?);
            chain.push(make("h264parse")?);
            chain.push(capsfilter(
                gst::Caps::builder("video/x-h264")
                    .field("stream-format", "avc")
                    .field("alignment", "au")
                    .build(),
            )?);
        }
        let pipeline = PrivatePipeline::new("motionclipenc-clip", src, chain, sink, "encoder")?;
        pipeline.play("the encoder")?;
        Ok(Self { pipeline, spec })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Feeds one output frame, `offset` ns from the clip start.
    pub fn push(&self, buffer: gst::Buffer, offset: u64) -> Result<(), String> {
        self.pipeline
            .push(buffer, gst::ClockTime::from_nseconds(offset), None)
            .map_err(|e| format!("the encoder refused a frame: {e:?}"))
    }

    /// Drains the pipeline; returns what came out, in order.
    pub fn finish(self, timeout: Duration) -> Result<Vec<gst::Sample>, String> {
        self.pipeline.drain(timeout).map_err(|e| {
            e.unwrap_or_else(|| format!("the encoder did not finish within {timeout:?}"))
        })?;
        Ok(std::iter::from_fn(|| self.pipeline.pull()).collect())
    }

    /// Whether the pipeline posted an error (checked between frames).
    pub fn error(&self) -> Option<String> {
        self.pipeline.error()
    }
}

/// A made clip: the file and what it holds.
pub struct Clip {
    pub bytes: Vec<u8>,
    pub frames: u32,
    pub width: u32,
    pub height: u32,
}

/// The MP4 (faststart) of the encoder's output; `end` = the clip duration
/// in ns, `utc` its wall-clock start.
pub fn mp4(
    samples: &[gst::Sample],
    end: u64,
    utc: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Clip, String> {
    let first = samples.first().ok_or("no frame was encoded")?;
    let caps = first.caps().ok_or("encoder output without caps")?;
    let config = CodecConfig::from_caps(caps).map_err(|e| e.to_string())?;
    let (width, height) = (config.width, config.height);
    let mut frames = Vec::with_capacity(samples.len());
    for s in samples {
        let segment = s
            .segment()
            .and_then(|seg| seg.clone().downcast::<gst::ClockTime>().ok())
            .unwrap_or_default();
        let Some(buffer) = s.buffer_owned() else {
            continue;
        };
        match sample_from_buffer(&segment, TrackKind::Video, config.nal_format(), buffer) {
            Ok(sample) => frames.push(sample),
            Err(e) => return Err(format!("encoder output unusable: {e:?}")),
        }
    }
    let end = end as i64;
    let clip = Mp4Clip {
        tracks: vec![ClipTrack {
            config: Arc::new(config),
            next_dts: frames.last().map(|f| end.max(f.dts + 1)),
            samples: frames,
        }],
        start: 0,
        end: Some(end),
        creation_time: utc,
        exact: None,
    };
    let layout = clip.layout().map_err(|e| e.to_string())?;
    let mut bytes = Vec::with_capacity(layout.size() as usize);
    let stats = layout.write_to(&mut bytes).map_err(|e| e.to_string())?;
    Ok(Clip {
        bytes,
        frames: stats.samples.first().copied().unwrap_or(0) as u32,
        width,
        height,
    })
}

/// A looping GIF of RGBA frames; `end` = the clip duration in ns.
pub fn gif(samples: &[gst::Sample], end: u64) -> Result<Clip, String> {
    let mut pictures = Vec::with_capacity(samples.len());
    let mut offsets = Vec::with_capacity(samples.len());
    for s in samples {
        let pts = s.buffer().and_then(|b| b.pts()).map_or(0, |t| t.nseconds());
        if let Some(p) = Rgbx::of(s) {
            offsets.push(pts);
            pictures.push(p);
        }
    }
    let first = pictures.first().ok_or("no frame was converted")?;
    let (w, h) = (first.width, first.height);
    let (gw, gh) = (
        u16::try_from(w).map_err(|_| "a GIF is at most 65535 pixels wide")?,
        u16::try_from(h).map_err(|_| "a GIF is at most 65535 pixels high")?,
    );
    let delays = gif_delays(&offsets, end);
    let mut bytes = Vec::new();
    let mut frames = 0;
    {
        let mut encoder = gif::Encoder::new(&mut bytes, gw, gh, &[]).map_err(|e| e.to_string())?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .map_err(|e| e.to_string())?;
        for (picture, delay) in pictures.iter_mut().zip(delays) {
            // from_rgba_speed wants exactly w x h pixels.
            if (picture.width, picture.height) != (w, h)
                || picture.data.len() != w as usize * h as usize * 4
            {
                continue;
            }
            // NeuQuant: a 256-colour palette per frame, chosen from the
            // frame itself (speed 10 of 1-30: good colours, fast enough
            // for preview sizes).
            let mut frame = gif::Frame::from_rgba_speed(gw, gh, &mut picture.data, 10);
            frame.delay = delay;
            encoder.write_frame(&frame).map_err(|e| e.to_string())?;
            frames += 1;
        }
    }
    Ok(Clip {
        bytes,
        frames,
        width: w,
        height: h,
    })
}
