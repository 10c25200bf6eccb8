// SPDX-License-Identifier: MPL-2.0
//! The private pipelines of the worker threads: `appsrc ! … ! appsink` of
//! GStreamer's own elements, run by the worker and never in the stream
//! (the thumbnailer's renderer runs one per image, motionclipenc one per
//! clip).

use std::time::Duration;

use gst::prelude::*;
use gst_video::prelude::*;

/// An element of `factory`; the error names what to install.
pub fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("element {factory} is missing (install its GStreamer plugin)"))
}

/// A capsfilter for `caps`.
pub fn capsfilter(caps: gst::Caps) -> Result<gst::Element, String> {
    let filter = make("capsfilter")?;
    filter.set_property("caps", caps);
    Ok(filter)
}

/// An appsrc of `caps` in TIME, holding at most `max_bytes` (0 = no limit).
pub fn appsrc(caps: &gst::Caps, max_bytes: u64) -> gst_app::AppSrc {
    gst_app::AppSrc::builder()
        .caps(caps)
        .format(gst::Format::Time)
        .max_bytes(max_bytes)
        .build()
}

/// An appsink that keeps what it gets until it is pulled.
pub fn appsink() -> gst_app::AppSink {
    gst_app::AppSink::builder()
        .sync(false)
        .async_(false)
        .enable_last_sample(false)
        // EOS must reach the sink (and the bus) with the output still queued.
        .wait_on_eos(false)
        .build()
}

/// A private pipeline: an appsrc, a chain of elements, an appsink, linked
/// in that order. It is set to NULL when dropped.
pub struct PrivatePipeline {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
}

impl PrivatePipeline {
    /// Builds pipeline `name`: `src ! chain ! sink`; a link error says it
    /// could not build `what`.
    pub fn new(
        name: &str,
        src: gst_app::AppSrc,
        chain: Vec<gst::Element>,
        sink: gst_app::AppSink,
        what: &str,
    ) -> Result<Self, String> {
        let pipeline = gst::Pipeline::with_name(name);
        let mut all: Vec<gst::Element> = vec![src.clone().upcast()];
        all.extend(chain);
        all.push(sink.clone().upcast());
        pipeline.add_many(&all).map_err(|e| e.to_string())?;
        gst::Element::link_many(&all).map_err(|e| format!("cannot build the {what}: {e}"))?;
        Ok(Self {
            pipeline,
            src,
            sink,
        })
    }

    /// Adds `branch` behind `from` (a tee of the chain), linked in order.
    pub fn add_branch(&self, from: &gst::Element, branch: &[gst::Element]) -> Result<(), String> {
        self.pipeline.add_many(branch).map_err(|e| e.to_string())?;
        let mut all = vec![from.clone()];
        all.extend_from_slice(branch);
        gst::Element::link_many(&all).map_err(|e| format!("cannot build a branch: {e}"))
    }

    fn bus(&self) -> Result<gst::Bus, String> {
        self.pipeline
            .bus()
            .ok_or_else(|| "pipeline without a bus".to_string())
    }

    /// Forgets the messages of an earlier run.
    pub fn clear_bus(&self) {
        if let Ok(bus) = self.bus() {
            while bus.pop().is_some() {}
        }
    }

    /// Sets the pipeline to PLAYING; an error says what the bus says, else
    /// that `what` did not start.
    pub fn play(&self, what: &str) -> Result<(), String> {
        let bus = self.bus()?;
        match self.pipeline.set_state(gst::State::Playing) {
            Ok(_) => Ok(()),
            Err(_) => Err(bus_error(&bus).unwrap_or_else(|| format!("cannot start {what}"))),
        }
    }

    /// Goes back to READY (the elements keep their configuration).
    pub fn rest(&self) {
        let _ = self.pipeline.set_state(gst::State::Ready);
    }

    /// Feeds one buffer, retimed to `pts` and `dts`, without DISCONT.
    pub fn push(
        &self,
        mut buffer: gst::Buffer,
        pts: gst::ClockTime,
        dts: Option<gst::ClockTime>,
    ) -> Result<(), gst::FlowError> {
        {
            let b = buffer.make_mut();
            b.set_pts(pts);
            b.set_dts(dts);
            b.set_duration(gst::ClockTime::NONE);
            b.unset_flags(gst::BufferFlags::DISCONT);
        }
        self.src.push_buffer(buffer).map(|_| ())
    }

    /// Ends the input and waits up to `timeout` until everything came out
    /// (EOS): an error message is `Err(Some(text))`, the timeout
    /// `Err(None)`.
    pub fn drain(&self, timeout: Duration) -> Result<(), Option<String>> {
        let bus = self.bus().map_err(Some)?;
        self.src
            .end_of_stream()
            .map_err(|e| Some(format!("eos: {e:?}")))?;
        wait_eos(&bus, timeout)
    }

    /// The next output at the appsink, if there is one.
    pub fn pull(&self) -> Option<gst::Sample> {
        self.sink.try_pull_sample(gst::ClockTime::ZERO)
    }

    /// Whether the pipeline posted an error (and which).
    pub fn error(&self) -> Option<String> {
        self.bus().ok().as_ref().and_then(bus_error)
    }
}

impl Drop for PrivatePipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Waits for EOS on `bus`: an error message is `Err(Some(text))`, the
/// timeout `Err(None)`.
fn wait_eos(bus: &gst::Bus, timeout: Duration) -> Result<(), Option<String>> {
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

fn bus_error(bus: &gst::Bus) -> Option<String> {
    let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(e.error().to_string()),
        _ => None,
    }
}

/// A picture of four bytes a pixel (RGBx, RGBA), rows packed (stride =
/// 4 × width).
#[derive(Debug, Clone, Default)]
pub struct Rgbx {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Rgbx {
    /// The picture of a sample of a four-byte packed format.
    pub fn of(sample: &gst::Sample) -> Option<Rgbx> {
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
}

/// Copies `tile` into the cell at (x, y): a tile of another size (after a
/// resolution change) is clipped to the cell, the rest of the cell black.
pub(crate) fn blit(canvas: &mut Rgbx, tile: &Rgbx, x: u32, y: u32, cell: (u32, u32)) {
    let row = canvas.width as usize * 4;
    let w = cell.0.min(tile.width) as usize;
    for cy in 0..cell.1 as usize {
        let dst_y = y as usize + cy;
        if dst_y >= canvas.height as usize {
            break;
        }
        let start = dst_y * row + x as usize * 4;
        let end = (start + cell.0 as usize * 4).min((dst_y + 1) * row);
        let dst = &mut canvas.data[start..end];
        dst.fill(0);
        if cy < tile.height as usize {
            let src = &tile.data[cy * tile.width as usize * 4..][..w * 4];
            let n = src.len().min(dst.len());
            dst[..n].copy_from_slice(&src[..n]);
        }
    }
}
