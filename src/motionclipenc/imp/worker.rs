// SPDX-License-Identifier: MPL-2.0
//! motionclipenc's worker thread: feeds each window's frames to the clip's
//! private pipeline ([`crate::motionclipenc::encode`]), makes the clip,
//! writes its files, announces it and pushes it.

use std::time::{Duration, Instant};

use gst::subclass::prelude::*;

use super::{CAT, ClipStart, MotionClipEnc};
use crate::frames::{self, Outputs, utc_text};
use crate::motionclipenc::ClipFormat;
use crate::motionclipenc::encode::{self, ClipPipeline, Spec};

/// How long draining one clip's encoder may take.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// The clip being captured by the worker.
pub(super) struct Capture {
    start: Box<ClipStart>,
    /// `None` when the pipeline could not be built or failed: the window's
    /// frames are dropped and no clip is made.
    pipeline: Option<ClipPipeline>,
    fed: u32,
}

/// What the worker thread keeps: the clip being captured. It encodes,
/// writes and pushes in command order.
#[derive(Default)]
pub struct Encoder {
    pub(super) capture: Option<Capture>,
    /// An encoder that could not be built was warned about once.
    warned: bool,
}

impl Encoder {
    pub(super) fn open(&mut self, imp: &MotionClipEnc, start: Box<ClipStart>) {
        let s = &start.settings;
        let spec = Spec {
            caps: start.caps.clone(),
            size: start.size,
            framerate: s.framerate,
            format: s.format,
            bitrate: s.bitrate,
            encoder: encode::pick_encoder(s.encoder.as_deref()).unwrap_or_default(),
            frames: start.frames,
        };
        let pipeline = match ClipPipeline::start(spec) {
            Ok(p) => {
                self.warned = false;
                Some(p)
            }
            Err(e) => {
                if !std::mem::replace(&mut self.warned, true) {
                    gst::element_imp_warning!(
                        imp,
                        gst::CoreError::MissingPlugin,
                        ("Cannot make motion clips: {}", e)
                    );
                }
                None
            }
        };
        self.capture = Some(Capture {
            start,
            pipeline,
            fed: 0,
        });
    }

    pub(super) fn feed(&mut self, imp: &MotionClipEnc, buffer: gst::Buffer, offset: u64) {
        let Some(capture) = self.capture.as_mut() else {
            return;
        };
        let Some(pipeline) = capture.pipeline.as_ref() else {
            return;
        };
        if let Err(e) = pipeline.push(buffer, offset) {
            let e = pipeline.error().unwrap_or(e);
            capture.pipeline = None;
            gst::element_imp_warning!(
                imp,
                gst::StreamError::Encode,
                (
                    "Skipped the clip at {}: {}",
                    frames::clock_time(capture.start.running_time),
                    e
                )
            );
            return;
        }
        capture.fed += 1;
    }

    pub(super) fn finish(
        &mut self,
        imp: &MotionClipEnc,
        out: &mut Outputs,
        capture: Capture,
        duration: u64,
        generation: u64,
    ) {
        let Capture {
            start,
            pipeline,
            fed,
        } = capture;
        let Some(pipeline) = pipeline.filter(|_| fed > 0 && duration > 0) else {
            return;
        };
        let at = frames::clock_time(start.running_time);
        let started = Instant::now();
        let format = pipeline.spec().format;
        let made = pipeline
            .finish(FINISH_TIMEOUT)
            .and_then(|samples| match format {
                ClipFormat::Mp4 => encode::mp4(&samples, duration, start.utc),
                ClipFormat::Gif => encode::gif(&samples, duration),
            });
        let clip = match made {
            Ok(c) => c,
            Err(e) => {
                gst::element_imp_warning!(
                    imp,
                    gst::StreamError::Encode,
                    ("Skipped the clip at {}: {}", at, e)
                );
                return;
            }
        };
        gst::debug!(
            CAT,
            imp = imp,
            "clip at {at}: {} frames, {} bytes, finished in {:?}",
            clip.frames,
            clip.bytes.len(),
            started.elapsed()
        );
        let settings = imp.settings.lock().unwrap().clone();
        let fallback = format!("motion-%05d.{}", format.nick());
        let Some(written) = out.write(imp, &settings.files, &fallback, &clip.bytes) else {
            return;
        };
        let s = written
            .message("motionclipenc-clip", start.trigger.as_str())
            .field("format", format.nick())
            .field("running-time", at)
            .field("utc", utc_text(start.utc))
            .field("duration", gst::ClockTime::from_nseconds(duration))
            .field("frames", clip.frames)
            .field("width", clip.width as i32)
            .field("height", clip.height as i32)
            .field("bytes", clip.bytes.len() as u64)
            .build();
        let mut buffer = gst::Buffer::from_mut_slice(clip.bytes);
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(start.pts);
            b.set_duration(gst::ClockTime::from_nseconds(duration));
            b.set_offset(written.index);
        }
        out.publish(imp, s, buffer, generation);
    }
}
