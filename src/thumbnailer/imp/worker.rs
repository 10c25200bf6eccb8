// SPDX-License-Identifier: MPL-2.0
//! The thumbnailer's worker thread: renders each picked frame with the
//! private pipeline ([`crate::thumbnailer::render`]), writes the files and
//! the storyboard, announces the image and pushes it.

use std::path::Path;
use std::time::{Duration, Instant};

use gst::subclass::prelude::*;

use super::input::h264_alone;
use super::settings::Settings;
use super::{CAT, Job, Thumbnailer};
use crate::core::NS;
use crate::core::thumbs::{Geometry, Storyboard};
use crate::frames::pipeline::{Rgbx, blit};
use crate::frames::{self, Outputs, utc_text};
use crate::thumbnailer::ImageFormat;
use crate::thumbnailer::render::{self, Renderer};

/// How long one image may take before it is given up.
const RENDER_TIMEOUT: Duration = Duration::from_secs(20);

/// What the worker thread keeps: the renderer and the storyboard. It
/// renders, writes and pushes in command order.
#[derive(Default)]
pub struct Worker {
    renderer: Option<Renderer>,
    storyboard: Option<(Storyboard, Rgbx)>,
    storyboard_full: bool,
    /// Settings for which no private pipeline could be built.
    unusable: Option<render::Spec>,
}

impl Worker {
    pub(super) fn thumbnail(
        &mut self,
        imp: &Thumbnailer,
        out: &mut Outputs,
        mut job: Job,
        generation: u64,
    ) {
        let settings = imp.settings.lock().unwrap().clone();
        let Some(size) = job.input.size else { return };
        let geometry = Geometry::compute(
            size,
            job.input.par,
            settings.width,
            settings.height,
            settings.fit_mode.into(),
        );
        let spec = render::Spec {
            caps: job.input.caps.clone(),
            encoded: job.input.encoded,
            geometry,
            format: settings.format,
            quality: settings.quality,
            tiles: settings.storyboard(),
        };
        let at = frames::clock_time(job.running_time);
        if self.renderer.as_ref().is_none_or(|r| *r.spec() != spec) {
            self.renderer = None;
            if self.unusable.as_ref() == Some(&spec) {
                gst::debug!(CAT, imp = imp, "no pipeline for these caps, skipping {at}");
                return;
            }
            match Renderer::new(spec.clone()) {
                Ok(r) => {
                    self.renderer = Some(r);
                    self.unusable = None;
                }
                Err(e) => {
                    // Warned once per input and settings, not per frame.
                    self.unusable = Some(spec);
                    gst::element_imp_warning!(
                        imp,
                        gst::CoreError::MissingPlugin,
                        ("Cannot make thumbnails: {}", e)
                    );
                    return;
                }
            }
        }
        let started = Instant::now();
        let renderer = self.renderer.as_mut().unwrap();
        let mut buffer = std::mem::take(&mut job.buffer);
        if let Some((framing, sps)) = &job.input.h264 {
            buffer = h264_alone(buffer, *framing, sps);
        }
        let rendered = match renderer.render(buffer, RENDER_TIMEOUT) {
            Ok(r) => r,
            Err(e) => {
                // A fresh pipeline for the next frame; this one is skipped.
                self.renderer = None;
                gst::element_imp_warning!(
                    imp,
                    gst::StreamError::Decode,
                    ("Skipped the thumbnail of the frame at {}: {}", at, e)
                );
                return;
            }
        };
        if settings.format == ImageFormat::Webp {
            // webpenc of GStreamer 1.22 releases its input state twice when
            // it is stopped and started again: a fresh pipeline per image.
            self.renderer = None;
        }
        let (width, height) = geometry.out;
        gst::debug!(
            CAT,
            imp = imp,
            "thumbnail of {} ({}x{}) in {:?}",
            at,
            width,
            height,
            started.elapsed()
        );
        let bytes = match rendered.image.map_readable() {
            Ok(m) => m.to_vec(),
            Err(_) => return,
        };
        let fallback = format!("thumb-%05d.{}", settings.format.nick());
        let Some(written) = out.write(imp, &settings.files, &fallback, &bytes) else {
            return;
        };
        if let Some(tile) = rendered.tile
            && !self.add_tile(imp, &settings, &job, tile)
        {
            return;
        }

        let s = written
            .message("thumbnailer-thumbnail", job.trigger.as_str())
            .field("pts", job.pts)
            .field("running-time", at)
            .field("recording-time", frames::clock_time(job.recording_time))
            .field("utc", utc_text(job.utc))
            .field("width", width as i32)
            .field("height", height as i32)
            .field("format", settings.format.nick())
            .field("bytes", bytes.len() as u64)
            .build();
        let mut image = rendered.image;
        {
            let b = image.make_mut();
            b.set_pts(job.pts);
            b.set_dts(gst::ClockTime::NONE);
            b.set_duration(gst::ClockTime::NONE);
            b.set_offset(written.index);
        }
        out.publish(imp, s, image, generation);
    }

    /// Adds a tile to the sprite and rewrites the sprite, then the VTT.
    fn add_tile(&mut self, imp: &Thumbnailer, settings: &Settings, job: &Job, tile: Rgbx) -> bool {
        if self.storyboard_full {
            return true;
        }
        let (board, canvas) = self.storyboard.get_or_insert_with(|| {
            (
                Storyboard::new(settings.storyboard_columns, (tile.width, tile.height)),
                Rgbx {
                    width: 0,
                    height: 0,
                    data: Vec::new(),
                },
            )
        });
        let Some(pos) = board.add(job.recording_time) else {
            self.storyboard_full = true;
            gst::element_imp_warning!(
                imp,
                gst::ResourceError::NoSpaceLeft,
                ("The storyboard sprite is full (a JPEG is at most 65535 pixels high); no more tiles")
            );
            return true;
        };
        grow(canvas, board.sprite_size());
        blit(canvas, &tile, pos.x, pos.y, board.cell);
        if let Some(sprite) = &settings.storyboard_location {
            let jpeg = match render::encode_jpeg(canvas, settings.quality, RENDER_TIMEOUT) {
                Ok(j) => j,
                Err(e) => {
                    gst::element_imp_warning!(
                        imp,
                        gst::StreamError::Encode,
                        ("Could not encode the storyboard sprite: {}", e)
                    );
                    return true;
                }
            };
            if !frames::write(imp, Path::new(sprite), &jpeg, true) {
                return false;
            }
        }
        if let Some(vtt) = &settings.storyboard_vtt {
            let reference = sprite_reference(settings.storyboard_location.as_deref(), vtt);
            let last = if settings.interval > 0 {
                i64::from(settings.interval) * NS as i64
            } else {
                NS as i64
            };
            let (board, _) = self.storyboard.as_ref().unwrap();
            let text = board.vtt(&reference, last);
            if !frames::write(imp, Path::new(vtt), text.as_bytes(), true) {
                return false;
            }
        }
        true
    }
}

/// How the VTT names the sprite: by file name when both are in one
/// directory (so the pair can be served from anywhere), else as configured.
fn sprite_reference(sprite: Option<&str>, vtt: &str) -> String {
    let Some(sprite) = sprite else {
        return "storyboard.jpg".into();
    };
    let (s, v) = (Path::new(sprite), Path::new(vtt));
    let dir = |p: &Path| p.parent().map(Path::to_path_buf).unwrap_or_default();
    match s.file_name() {
        Some(name) if dir(s) == dir(v) => name.to_string_lossy().into_owned(),
        _ => sprite.to_string(),
    }
}

/// Grows `canvas` to `size`, keeping its pixels where they are.
fn grow(canvas: &mut Rgbx, size: (u32, u32)) {
    if (canvas.width, canvas.height) == size {
        return;
    }
    let (w, h) = (size.0.max(canvas.width), size.1.max(canvas.height));
    let mut data = vec![0u8; w as usize * h as usize * 4];
    let (old_row, new_row) = (canvas.width as usize * 4, w as usize * 4);
    for y in 0..canvas.height as usize {
        data[y * new_row..y * new_row + old_row]
            .copy_from_slice(&canvas.data[y * old_row..(y + 1) * old_row]);
    }
    *canvas = Rgbx {
        width: w,
        height: h,
        data,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, v: u8) -> Rgbx {
        Rgbx {
            width: w,
            height: h,
            data: vec![v; (w * h * 4) as usize],
        }
    }

    #[test]
    fn canvas_grows_and_tiles_land_in_their_cells() {
        let mut canvas = solid(0, 0, 0);
        grow(&mut canvas, (4, 2));
        blit(&mut canvas, &solid(2, 2, 7), 0, 0, (2, 2));
        grow(&mut canvas, (4, 4));
        // A smaller tile (resolution change): the rest of its cell is black.
        blit(&mut canvas, &solid(1, 1, 9), 2, 2, (2, 2));
        let px = |c: &Rgbx, x: usize, y: usize| c.data[(y * 4 + x) * 4];
        assert_eq!(
            (px(&canvas, 0, 0), px(&canvas, 1, 1), px(&canvas, 2, 0)),
            (7, 7, 0)
        );
        assert_eq!(
            (px(&canvas, 2, 2), px(&canvas, 3, 2), px(&canvas, 2, 3)),
            (9, 0, 0)
        );
        // A bigger tile is clipped to its cell.
        blit(&mut canvas, &solid(3, 3, 5), 0, 2, (2, 2));
        assert_eq!((px(&canvas, 1, 3), px(&canvas, 2, 3)), (5, 0));
    }

    #[test]
    fn vtt_names_the_sprite_relative_when_it_can() {
        assert_eq!(sprite_reference(Some("/a/s.jpg"), "/a/s.vtt"), "s.jpg");
        assert_eq!(sprite_reference(Some("s.jpg"), "s.vtt"), "s.jpg");
        assert_eq!(sprite_reference(Some("/b/s.jpg"), "/a/s.vtt"), "/b/s.jpg");
    }
}
