// SPDX-License-Identifier: MPL-2.0
//! motionclipenc's settings, the properties that set them, and the clip
//! size they give.

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;

use super::MotionClipEnc;
use crate::core::NS;
use crate::core::motion::Windows;
use crate::core::thumbs::{Fit, Geometry};
use crate::frames::{FileSettings, path_value};
use crate::motionclipenc::ClipFormat;

const DEFAULT_INTERVAL: u32 = 60;
const DEFAULT_DURATION: u32 = 3;
const DEFAULT_WIDTH: u32 = 320;
const DEFAULT_FRAMERATE: u32 = 10;
const DEFAULT_BITRATE: u32 = 400;
const MAX_SIDE: u32 = 7680;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) interval: u32,
    pub(super) duration: u32,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) framerate: u32,
    pub(super) format: ClipFormat,
    pub(super) bitrate: u32,
    pub(super) encoder: Option<String>,
    pub(super) files: FileSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            duration: DEFAULT_DURATION,
            width: DEFAULT_WIDTH,
            height: 0,
            framerate: DEFAULT_FRAMERATE,
            format: ClipFormat::default(),
            bitrate: DEFAULT_BITRATE,
            encoder: None,
            files: FileSettings::default(),
        }
    }
}

impl Settings {
    pub(super) fn windows(&self) -> Windows {
        Windows::new(
            u64::from(self.interval) * NS,
            u64::from(self.duration) * NS,
            self.framerate,
        )
    }
}

/// The property table.
pub(super) fn properties() -> &'static [glib::ParamSpec] {
    static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
        let mut props = vec![
            glib::ParamSpecUInt::builder("interval")
                .nick("Interval")
                .blurb("Seconds of media running time between clip starts (0 = only on demand, with the capture-now signal)")
                .maximum(7 * 24 * 3600)
                .default_value(DEFAULT_INTERVAL)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("duration")
                .nick("Duration")
                .blurb("Seconds of media in each clip")
                .minimum(1)
                .maximum(600)
                .default_value(DEFAULT_DURATION)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("width")
                .nick("Width")
                .blurb("Clip width in pixels (0 = from height keeping the aspect ratio; both 0 = source size)")
                .maximum(MAX_SIDE)
                .default_value(DEFAULT_WIDTH)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("height")
                .nick("Height")
                .blurb("Clip height in pixels (0 = from width keeping the aspect ratio)")
                .maximum(MAX_SIDE)
                .default_value(0)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("framerate")
                .nick("Frame rate")
                .blurb("Frames per second of the clips (frames are picked evenly in time)")
                .minimum(1)
                .maximum(60)
                .default_value(DEFAULT_FRAMERATE)
                .mutable_playing()
                .build(),
            glib::ParamSpecEnum::builder::<ClipFormat>("format")
                .nick("Format")
                .blurb("File format of the clips")
                .default_value(ClipFormat::Mp4)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("bitrate")
                .nick("Bitrate")
                .blurb("H.264 bitrate in kbit/s (MP4)")
                .minimum(16)
                .maximum(100_000)
                .default_value(DEFAULT_BITRATE)
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("encoder")
                .nick("Encoder")
                .blurb("H.264 encoder element factory for MP4 (unset = the best available: x264enc, else openh264enc)")
                .mutable_ready()
                .build(),
        ];
        props.extend(FileSettings::properties(
            "clip",
            "clip-%05d.mp4",
            "Path replaced atomically by every clip (unset = none)",
        ));
        props
    });
    PROPS.as_ref()
}

impl Settings {
    /// Sets property `name`.
    pub(super) fn set(&mut self, imp: &MotionClipEnc, name: &str, value: &glib::Value) {
        if self.files.set(imp, name, value) {
            return;
        }
        match name {
            "interval" => self.interval = value.get().unwrap(),
            "duration" => self.duration = value.get().unwrap(),
            "width" => self.width = value.get().unwrap(),
            "height" => self.height = value.get().unwrap(),
            "framerate" => self.framerate = value.get().unwrap(),
            "format" => self.format = value.get().unwrap(),
            "bitrate" => self.bitrate = value.get().unwrap(),
            "encoder" => self.encoder = path_value(value),
            _ => unimplemented!(),
        }
    }

    /// The value of property `name`.
    pub(super) fn get(&self, name: &str) -> glib::Value {
        self.files.get(name).unwrap_or_else(|| match name {
            "interval" => self.interval.to_value(),
            "duration" => self.duration.to_value(),
            "width" => self.width.to_value(),
            "height" => self.height.to_value(),
            "framerate" => self.framerate.to_value(),
            "format" => self.format.to_value(),
            "bitrate" => self.bitrate.to_value(),
            "encoder" => self.encoder.to_value(),
            _ => unimplemented!(),
        })
    }
}

/// Output size for input `caps`: `width`/`height` (0 = keep the display
/// aspect ratio), the pixel aspect ratio honoured, square pixels out; even
/// for H.264 (4:2:0).
pub(super) fn clip_size(caps: &gst::Caps, settings: &Settings) -> Option<(u32, u32)> {
    let info = gst_video::VideoInfo::from_caps(caps).ok()?;
    if info.width() == 0 || info.height() == 0 {
        return None;
    }
    let par = info.par();
    let g = Geometry::compute(
        (info.width(), info.height()),
        (par.numer().max(0) as u32, par.denom().max(0) as u32),
        settings.width,
        settings.height,
        Fit::Preserve,
    );
    let (w, h) = g.out;
    Some(match settings.format {
        ClipFormat::Mp4 => (even(w), even(h)),
        ClipFormat::Gif => (w.min(65_535), h.min(65_535)),
    })
}

/// The nearest even size, at least 2.
fn even(v: u32) -> u32 {
    (v.saturating_add(1) & !1).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_the_aspect_and_are_even_for_h264() {
        gst::init().unwrap();
        let caps = |w: i32, h: i32, par: (i32, i32)| {
            gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, w as u32, h as u32)
                .par(gst::Fraction::new(par.0, par.1))
                .build()
                .unwrap()
                .to_caps()
                .unwrap()
        };
        let mut s = Settings::default();
        assert_eq!(clip_size(&caps(1920, 1080, (1, 1)), &s), Some((320, 180)));
        // 720x576 at 16:15 shows as 768x576: 320x240.
        assert_eq!(clip_size(&caps(720, 576, (16, 15)), &s), Some((320, 240)));
        s.width = 0;
        s.height = 101;
        assert_eq!(clip_size(&caps(1280, 720, (1, 1)), &s), Some((180, 102)));
        s.format = ClipFormat::Gif;
        assert_eq!(clip_size(&caps(1280, 720, (1, 1)), &s), Some((180, 101)));
        assert_eq!(even(1), 2);
        assert_eq!(even(0), 2);
        assert_eq!(even(179), 180);
    }
}
