// SPDX-License-Identifier: MPL-2.0
//! The thumbnailer's private pipelines (on [`crate::frames::pipeline`]):
//! one frame in, one image out; and the storyboard sprite's JPEG.
//!
//! ```text
//! appsrc (input caps) ! [decoder] ! videoconvert ! I420 ! deinterlace ! [videocrop] !
//!   videoscale ! video/x-raw,width=W,height=H,pixel-aspect-ratio=1/1 ! [videobox] !
//!   videoconvert ! [tee ! videoconvert ! RGBx ! appsink (storyboard tile)]
//!   encoder ! appsink (image)
//! ```
//!
//! Every frame is one run: the pipeline goes to PLAYING, gets the buffer and
//! EOS (which drains the decoder, so one keyframe alone is enough), and goes
//! back to READY. The pipeline is built again when the input caps or the
//! output settings change.

use std::time::Duration;

use gst::prelude::*;

use crate::core::thumbs::Geometry;
use crate::frames::pipeline::{PrivatePipeline, Rgbx, appsink, appsrc, capsfilter, make};

use super::ImageFormat;

/// Everything that shapes the private pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub caps: gst::Caps,
    pub encoded: bool,
    pub geometry: Geometry,
    pub format: ImageFormat,
    pub quality: u32,
    /// Also deliver the scaled frame as RGBx (storyboard tiles).
    pub tiles: bool,
}

pub struct Rendered {
    pub image: gst::Buffer,
    pub tile: Option<Rgbx>,
}

pub struct Renderer {
    spec: Spec,
    pipeline: PrivatePipeline,
    /// The storyboard tile's appsink.
    tile: Option<gst_app::AppSink>,
}

/// The highest-ranked decoder that takes `caps` and can be created.
pub(crate) fn decoder_for(caps: &gst::Caps) -> Result<gst::Element, String> {
    let mut factories: Vec<gst::ElementFactory> = gst::ElementFactory::factories_with_type(
        gst::ElementFactoryType::DECODER | gst::ElementFactoryType::MEDIA_VIDEO,
        gst::Rank::MARGINAL,
    )
    .into_iter()
    .filter(|f| f.can_sink_all_caps(caps))
    .collect();
    factories.sort_by_key(|f| std::cmp::Reverse(f.rank()));
    for f in &factories {
        if let Ok(e) = f.create().build() {
            // One frame at a time: threads would only add start-up cost.
            if e.has_property("max-threads") {
                e.set_property_from_str("max-threads", "1");
            }
            // A keyframe that does not decode cleanly is skipped rather
            // than shown half grey.
            if e.has_property("output-corrupt") {
                e.set_property("output-corrupt", false);
            }
            return Ok(e);
        }
    }
    Err(format!("no decoder for {caps}"))
}

/// A decoder for `caps`, behind a parser that converts the stream format
/// when no decoder takes it as it is (`avdec_h264` has no `avc3`).
pub(crate) fn decode_chain(caps: &gst::Caps) -> Result<Vec<gst::Element>, String> {
    match decoder_for(caps) {
        Ok(decoder) => Ok(vec![decoder]),
        Err(e) => {
            let name = caps.structure(0).map(|s| s.name().to_string());
            let parser = match name.as_deref() {
                Some("video/x-h264") => "h264parse",
                Some("video/x-h265") => "h265parse",
                _ => return Err(e),
            };
            let converted = gst::Caps::builder(name.as_deref().unwrap_or_default())
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build();
            let decoder = decoder_for(&converted).map_err(|_| e)?;
            Ok(vec![make(parser)?, decoder])
        }
    }
}

/// Raw video to a picture of `g`: I420, one field of interlaced input,
/// crop, scale to square pixels, pad, and back to what an encoder takes.
pub(crate) fn scale_chain(g: &Geometry) -> Result<Vec<gst::Element>, String> {
    let mut chain = vec![make("videoconvert")?];
    // One planar format every element below handles (decoders mostly
    // give it already); left open, the converter may pick a format
    // videocrop does not take.
    chain.push(capsfilter(
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .build(),
    )?);
    let deint = make("deinterlace")?;
    // One output frame per input frame, from one field's lines when the
    // input is interlaced; progressive input passes through.
    deint.set_property_from_str("fields", "top");
    deint.set_property_from_str("method", "linear");
    chain.push(deint);
    if !g.crop.is_zero() {
        let crop = make("videocrop")?;
        crop.set_property("left", g.crop.left as i32);
        crop.set_property("right", g.crop.right as i32);
        crop.set_property("top", g.crop.top as i32);
        crop.set_property("bottom", g.crop.bottom as i32);
        chain.push(crop);
    }
    let scale = make("videoscale")?;
    scale.set_property("add-borders", false);
    scale.set_property_from_str("method", "bilinear2");
    chain.push(scale);
    chain.push(capsfilter(
        gst::Caps::builder("video/x-raw")
            .field("width", g.scaled.0 as i32)
            .field("height", g.scaled.1 as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    )?);
    if !g.pad.is_zero() {
        let bx = make("videobox")?;
        bx.set_property("left", -(g.pad.left as i32));
        bx.set_property("right", -(g.pad.right as i32));
        bx.set_property("top", -(g.pad.top as i32));
        bx.set_property("bottom", -(g.pad.bottom as i32));
        bx.set_property_from_str("fill", "black");
        chain.push(bx);
    }
    chain.push(make("videoconvert")?);
    Ok(chain)
}

/// The image encoder of `format` at `quality` (JPEG, WebP; 0-100).
pub(crate) fn encoder(format: ImageFormat, quality: u32) -> Result<gst::Element, String> {
    Ok(match format {
        ImageFormat::Jpeg => {
            let e = make("jpegenc")?;
            e.set_property("quality", quality.min(100) as i32);
            e
        }
        ImageFormat::Png => make("pngenc")?,
        ImageFormat::Webp => {
            let e = make("webpenc")?;
            e.set_property("quality", quality.min(100) as f32);
            e
        }
    })
}

impl Renderer {
    pub fn new(spec: Spec) -> Result<Self, String> {
        let mut chain: Vec<gst::Element> = Vec::new();
        if spec.encoded {
            chain.extend(decode_chain(&spec.caps)?);
        }
        chain.extend(scale_chain(&spec.geometry)?);
        // The storyboard tile branches off before the encoder.
        let tee = if spec.tiles {
            let tee = make("tee")?;
            chain.push(tee.clone());
            Some(tee)
        } else {
            None
        };
        chain.push(encoder(spec.format, spec.quality)?);
        let pipeline = PrivatePipeline::new(
            "thumbnailer-render",
            appsrc(&spec.caps, 0),
            chain,
            appsink(),
            "scaler",
        )?;
        let tile = match tee {
            Some(tee) => {
                let sink = appsink();
                let rgbx = gst::Caps::builder("video/x-raw")
                    .field("format", "RGBx")
                    .build();
                pipeline.add_branch(
                    &tee,
                    &[
                        make("videoconvert")?,
                        capsfilter(rgbx)?,
                        sink.clone().upcast(),
                    ],
                )?;
                Some(sink)
            }
            None => None,
        };
        Ok(Self {
            spec,
            pipeline,
            tile,
        })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Turns one frame (a raw frame, or a keyframe with what decoding it
    /// needs) into an image.
    pub fn render(&mut self, buffer: gst::Buffer, timeout: Duration) -> Result<Rendered, String> {
        let result = self.run(buffer, timeout);
        self.pipeline.rest();
        result
    }

    fn run(&mut self, buffer: gst::Buffer, timeout: Duration) -> Result<Rendered, String> {
        // Messages of an earlier run are stale.
        self.pipeline.clear_bus();
        self.pipeline.play("the renderer")?;
        self.pipeline
            .push(buffer, gst::ClockTime::ZERO, Some(gst::ClockTime::ZERO))
            .map_err(|e| format!("push: {e:?}"))?;
        self.pipeline
            .drain(timeout)
            .map_err(|e| e.unwrap_or_else(|| format!("no image within {timeout:?}")))?;
        let sample = self
            .pipeline
            .pull()
            .ok_or("the frame did not decode (no picture)")?;
        let image = sample.buffer_owned().ok_or("empty sample")?;
        let tile = self
            .tile
            .as_ref()
            .and_then(|sink| sink.try_pull_sample(gst::ClockTime::ZERO))
            .and_then(|s| Rgbx::of(&s));
        Ok(Rendered { image, tile })
    }
}

/// Encodes an RGBx picture (the storyboard sprite) as JPEG with jpegenc.
pub fn encode_jpeg(picture: &Rgbx, quality: u32, timeout: Duration) -> Result<Vec<u8>, String> {
    let caps =
        gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgbx, picture.width, picture.height)
            .fps(gst::Fraction::new(0, 1))
            .build()
            .map_err(|e| e.to_string())?
            .to_caps()
            .map_err(|e| e.to_string())?;
    let enc = make("jpegenc")?;
    enc.set_property("quality", quality.min(100) as i32);
    let pipeline = PrivatePipeline::new(
        "thumbnailer-sprite",
        appsrc(&caps, 0),
        vec![make("videoconvert")?, enc],
        appsink(),
        "sprite encoder",
    )?;
    pipeline.play("jpegenc")?;
    let buffer = gst::Buffer::from_slice(picture.data.clone());
    pipeline
        .push(buffer, gst::ClockTime::ZERO, None)
        .map_err(|e| format!("{e:?}"))?;
    pipeline
        .drain(timeout)
        .map_err(|e| e.unwrap_or_else(|| format!("jpegenc gave no image within {timeout:?}")))?;
    let sample = pipeline.pull().ok_or("jpegenc gave no image")?;
    let buffer = sample.buffer().ok_or("empty sample")?;
    let map = buffer.map_readable().map_err(|e| e.to_string())?;
    Ok(map.to_vec())
}
