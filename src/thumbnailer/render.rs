// SPDX-License-Identifier: MPL-2.0
//! The private pipelines of the worker thread: one frame in, one image out.
//!
//! ```text
//! appsrc (input caps) ! [decoder] ! videoconvert ! deinterlace ! [videocrop] !
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
use gst_video::prelude::*;

use crate::core::thumbs::Geometry;

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

/// A scaled frame in RGBx, rows packed (stride = 4 × width).
#[derive(Debug, Clone)]
pub struct Rgbx {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

pub struct Rendered {
    pub image: gst::Buffer,
    pub tile: Option<Rgbx>,
}

pub struct Renderer {
    spec: Spec,
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    image: gst_app::AppSink,
    tile: Option<gst_app::AppSink>,
}

pub(crate) fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("element {factory} is missing (install its GStreamer plugin)"))
}

pub(crate) fn appsink() -> gst_app::AppSink {
    gst_app::AppSink::builder()
        .sync(false)
        .async_(false)
        .enable_last_sample(false)
        // EOS must reach the sink (and the bus) with the image still queued.
        .wait_on_eos(false)
        .build()
}

/// The highest-ranked decoder that takes `caps` and can be created.
fn decoder_for(caps: &gst::Caps) -> Result<gst::Element, String> {
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

impl Renderer {
    pub fn new(spec: Spec) -> Result<Self, String> {
        let pipeline = gst::Pipeline::with_name("thumbnailer-render");
        let src = gst_app::AppSrc::builder()
            .caps(&spec.caps)
            .format(gst::Format::Time)
            .max_bytes(0)
            .build();
        let mut chain: Vec<gst::Element> = vec![src.clone().upcast()];
        if spec.encoded {
            match decoder_for(&spec.caps) {
                Ok(decoder) => chain.push(decoder),
                Err(e) => {
                    // No decoder takes this stream format as it is (avdec_h264
                    // has no avc3): a parser converts it to byte-stream.
                    let name = spec.caps.structure(0).map(|s| s.name().to_string());
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
                    chain.push(make(parser)?);
                    chain.push(decoder);
                }
            }
        }
        chain.push(make("videoconvert")?);
        // One planar format every element below handles (decoders mostly
        // give it already); left open, the converter may pick a format
        // videocrop does not take.
        let i420 = make("capsfilter")?;
        i420.set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .build(),
        );
        chain.push(i420);
        let deint = make("deinterlace")?;
        // One output frame per input frame, from one field's lines when the
        // input is interlaced; progressive input passes through.
        deint.set_property_from_str("fields", "top");
        deint.set_property_from_str("method", "linear");
        chain.push(deint);
        let g = spec.geometry;
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
        let filter = make("capsfilter")?;
        filter.set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("width", g.scaled.0 as i32)
                .field("height", g.scaled.1 as i32)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build(),
        );
        chain.push(filter);
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
        let encoder = match spec.format {
            ImageFormat::Jpeg => {
                let e = make("jpegenc")?;
                e.set_property("quality", spec.quality.min(100) as i32);
                e
            }
            ImageFormat::Png => make("pngenc")?,
            ImageFormat::Webp => {
                let e = make("webpenc")?;
                e.set_property("quality", spec.quality.min(100) as f32);
                e
            }
        };
        let image = appsink();
        pipeline
            .add_many(&chain)
            .and_then(|_| pipeline.add_many([&encoder, image.upcast_ref()]))
            .map_err(|e| e.to_string())?;
        gst::Element::link_many(&chain).map_err(|e| format!("cannot build the scaler: {e}"))?;
        let last = chain.last().unwrap().clone();
        let tile = if spec.tiles {
            let tee = make("tee")?;
            let conv = make("videoconvert")?;
            let rgbx = make("capsfilter")?;
            rgbx.set_property(
                "caps",
                gst::Caps::builder("video/x-raw")
                    .field("format", "RGBx")
                    .build(),
            );
            let sink = appsink();
            pipeline
                .add_many([&tee, &conv, &rgbx, sink.upcast_ref()])
                .map_err(|e| e.to_string())?;
            gst::Element::link_many([&last, &tee, &encoder, image.upcast_ref()])
                .and_then(|_| gst::Element::link_many([&tee, &conv, &rgbx, sink.upcast_ref()]))
                .map_err(|e| format!("cannot build the tile branch: {e}"))?;
            Some(sink)
        } else {
            gst::Element::link_many([&last, &encoder, image.upcast_ref()])
                .map_err(|e| format!("cannot link the encoder: {e}"))?;
            None
        };
        Ok(Self {
            spec,
            pipeline,
            src,
            image,
            tile,
        })
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Turns one frame (a raw frame, or a keyframe with what decoding it
    /// needs) into an image.
    pub fn render(
        &mut self,
        mut buffer: gst::Buffer,
        timeout: Duration,
    ) -> Result<Rendered, String> {
        let result = self.run(&mut buffer, timeout);
        let _ = self.pipeline.set_state(gst::State::Ready);
        result
    }

    fn run(&mut self, buffer: &mut gst::Buffer, timeout: Duration) -> Result<Rendered, String> {
        let bus = self.pipeline.bus().ok_or("pipeline without a bus")?;
        // Messages of an earlier run are stale.
        while bus.pop().is_some() {}
        {
            let b = buffer.make_mut();
            b.set_pts(gst::ClockTime::ZERO);
            b.set_dts(gst::ClockTime::ZERO);
            b.set_duration(gst::ClockTime::NONE);
            b.unset_flags(gst::BufferFlags::DISCONT);
        }
        if self.pipeline.set_state(gst::State::Playing).is_err() {
            return Err(bus_error(&bus).unwrap_or_else(|| "cannot start".into()));
        }
        self.src
            .push_buffer(buffer.clone())
            .map_err(|e| format!("push: {e:?}"))?;
        self.src
            .end_of_stream()
            .map_err(|e| format!("eos: {e:?}"))?;
        wait_eos(&bus, timeout)
            .map_err(|e| e.unwrap_or_else(|| format!("no image within {timeout:?}")))?;
        let sample = self
            .image
            .try_pull_sample(gst::ClockTime::ZERO)
            .ok_or("the frame did not decode (no picture)")?;
        let image = sample.buffer_owned().ok_or("empty sample")?;
        let tile = match &self.tile {
            Some(sink) => sink
                .try_pull_sample(gst::ClockTime::ZERO)
                .and_then(|s| rgbx_of(&s)),
            None => None,
        };
        Ok(Rendered { image, tile })
    }
}

impl Drop for Renderer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Waits for EOS on `bus`: an error message is `Err(Some(text))`, the
/// timeout `Err(None)`.
pub(crate) fn wait_eos(bus: &gst::Bus, timeout: Duration) -> Result<(), Option<String>> {
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(e)) => Err(Some(format!(
            "{} ({})",
            e.error(),
            e.debug().map(|d| d.to_string()).unwrap_or_default()
        ))),
        _ => Err(None),
    }
}

pub(crate) fn bus_error(bus: &gst::Bus) -> Option<String> {
    let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(e.error().to_string()),
        _ => None,
    }
}

pub(crate) fn rgbx_of(sample: &gst::Sample) -> Option<Rgbx> {
    let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
    let buffer = sample.buffer()?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).ok()?;
    let (w, h) = (info.width(), info.height());
    let stride = frame.plane_stride()[0] as usize;
    let src = frame.plane_data(0).ok()?;
    let row = w as usize * 4;
    let mut data = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        data.extend_from_slice(src.get(y * stride..y * stride + row)?);
    }
    Some(Rgbx {
        width: w,
        height: h,
        data,
    })
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
    let pipeline = gst::Pipeline::with_name("thumbnailer-sprite");
    let src = gst_app::AppSrc::builder()
        .caps(&caps)
        .format(gst::Format::Time)
        .max_bytes(0)
        .build();
    let conv = make("videoconvert")?;
    let enc = make("jpegenc")?;
    enc.set_property("quality", quality.min(100) as i32);
    let sink = appsink();
    pipeline
        .add_many([src.upcast_ref(), &conv, &enc, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([src.upcast_ref(), &conv, &enc, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    let result = (|| {
        let bus = pipeline.bus().ok_or("pipeline without a bus")?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| bus_error(&bus).unwrap_or_else(|| "cannot start jpegenc".into()))?;
        let mut buffer = gst::Buffer::from_slice(picture.data.clone());
        buffer.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
        src.push_buffer(buffer).map_err(|e| format!("{e:?}"))?;
        src.end_of_stream().map_err(|e| format!("{e:?}"))?;
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        if let Some(gst::MessageView::Error(e)) = msg.as_ref().map(|m| m.view()) {
            return Err(e.error().to_string());
        }
        let sample = sink
            .try_pull_sample(gst::ClockTime::ZERO)
            .ok_or("jpegenc gave no image")?;
        let buffer = sample.buffer().ok_or("empty sample")?;
        let map = buffer.map_readable().map_err(|e| e.to_string())?;
        Ok(map.to_vec())
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}
