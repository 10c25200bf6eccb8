// SPDX-License-Identifier: MPL-2.0
//! The thumbnailer's settings and the properties that set them.

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;

use super::Thumbnailer;
use crate::frames::{FileSettings, path_value};
use crate::thumbnailer::{FitMode, ImageFormat};

pub(super) const DEFAULT_INTERVAL: u32 = 10;
const DEFAULT_QUALITY: u32 = 85;
const DEFAULT_COLUMNS: u32 = 5;
const MAX_SIDE: u32 = 16_384;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) interval: u32,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) fit_mode: FitMode,
    pub(super) format: ImageFormat,
    pub(super) quality: u32,
    pub(super) files: FileSettings,
    pub(super) storyboard_location: Option<String>,
    pub(super) storyboard_vtt: Option<String>,
    pub(super) storyboard_columns: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            width: 0,
            height: 0,
            fit_mode: FitMode::default(),
            format: ImageFormat::default(),
            quality: DEFAULT_QUALITY,
            files: FileSettings::default(),
            storyboard_location: None,
            storyboard_vtt: None,
            storyboard_columns: DEFAULT_COLUMNS,
        }
    }
}

impl Settings {
    pub(super) fn storyboard(&self) -> bool {
        self.storyboard_location.is_some() || self.storyboard_vtt.is_some()
    }
}

/// The property table.
pub(super) fn properties() -> &'static [glib::ParamSpec] {
    static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
        let mut props = vec![
            glib::ParamSpecUInt::builder("interval")
                .nick("Interval")
                .blurb("Seconds of media running time between thumbnails (0 = only on demand, with the snapshot signal)")
                .maximum(7 * 24 * 3600)
                .default_value(DEFAULT_INTERVAL)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("width")
                .nick("Width")
                .blurb("Thumbnail width in pixels (0 = from height keeping the aspect ratio; both 0 = source size)")
                .maximum(MAX_SIDE)
                .default_value(0)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("height")
                .nick("Height")
                .blurb("Thumbnail height in pixels (0 = from width keeping the aspect ratio; both 0 = source size)")
                .maximum(MAX_SIDE)
                .default_value(0)
                .mutable_playing()
                .build(),
            glib::ParamSpecEnum::builder::<FitMode>("fit-mode")
                .nick("Fit mode")
                .blurb("How the frame fits width x height when both are set")
                .default_value(FitMode::Preserve)
                .mutable_playing()
                .build(),
            glib::ParamSpecEnum::builder::<ImageFormat>("format")
                .nick("Format")
                .blurb("Image format of the thumbnails")
                .default_value(ImageFormat::Jpeg)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("quality")
                .nick("Quality")
                .blurb("JPEG and WebP quality (1-100; PNG is lossless and ignores it)")
                .minimum(1)
                .maximum(100)
                .default_value(DEFAULT_QUALITY)
                .mutable_playing()
                .build(),
        ];
        props.extend(FileSettings::properties(
            "thumbnail",
            "thumb-%05d.jpg",
            "Path replaced atomically (temporary file, fsync, rename) by every new thumbnail; unset = none",
        ));
        props.extend([
            glib::ParamSpecString::builder("storyboard-location")
                .nick("Storyboard sprite location")
                .blurb("JPEG sprite sheet of all thumbnails as tiles (tile size = width x height), replaced atomically as tiles are added; unset = none")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("storyboard-vtt")
                .nick("Storyboard WebVTT location")
                .blurb("WebVTT file with one #xywh= cue per storyboard tile, replaced atomically as tiles are added; unset = none")
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("storyboard-columns")
                .nick("Storyboard columns")
                .blurb("Tiles per row of the storyboard sprite")
                .minimum(1)
                .maximum(100)
                .default_value(DEFAULT_COLUMNS)
                .mutable_ready()
                .build(),
        ]);
        props
    });
    PROPS.as_ref()
}

impl Settings {
    /// Sets property `name`.
    pub(super) fn set(&mut self, imp: &Thumbnailer, name: &str, value: &glib::Value) {
        if self.files.set(imp, name, value) {
            return;
        }
        match name {
            "interval" => self.interval = value.get().unwrap(),
            "width" => self.width = value.get().unwrap(),
            "height" => self.height = value.get().unwrap(),
            "fit-mode" => self.fit_mode = value.get().unwrap(),
            "format" => self.format = value.get().unwrap(),
            "quality" => self.quality = value.get().unwrap(),
            "storyboard-location" => self.storyboard_location = path_value(value),
            "storyboard-vtt" => self.storyboard_vtt = path_value(value),
            "storyboard-columns" => self.storyboard_columns = value.get().unwrap(),
            _ => unimplemented!(),
        }
    }

    /// The value of property `name`.
    pub(super) fn get(&self, name: &str) -> glib::Value {
        self.files.get(name).unwrap_or_else(|| match name {
            "interval" => self.interval.to_value(),
            "width" => self.width.to_value(),
            "height" => self.height.to_value(),
            "fit-mode" => self.fit_mode.to_value(),
            "format" => self.format.to_value(),
            "quality" => self.quality.to_value(),
            "storyboard-location" => self.storyboard_location.to_value(),
            "storyboard-vtt" => self.storyboard_vtt.to_value(),
            "storyboard-columns" => self.storyboard_columns.to_value(),
            _ => unimplemented!(),
        })
    }
}
