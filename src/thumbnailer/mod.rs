// SPDX-License-Identifier: MPL-2.0
//! `thumbnailer`: still images at intervals (and on demand) from raw or
//! encoded (H.264/H.265) video, with an always-current latest image and an
//! optional trick-play storyboard.
//!
//! ```text
//! gst-launch-1.0 -e videotestsrc is-live=true ! x264enc tune=zerolatency ! h264parse ! \
//!     thumbnailer interval=10 width=320 latest-location=latest.jpg ! \
//!     multifilesink location=thumb-%05d.jpg
//! ```

use gst::glib;
use gst::prelude::*;

mod imp;
pub(crate) mod render;

glib::wrapper! {
    pub struct Thumbnailer(ObjectSubclass<imp::Thumbnailer>) @extends gst::Element, gst::Object;
}

/// How a frame is fitted into `width` × `height` when both are set.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstThumbnailerFitMode")]
pub enum FitMode {
    #[default]
    #[enum_value(
        name = "Preserve: fit inside the box keeping the aspect ratio (one side may be smaller)",
        nick = "preserve"
    )]
    Preserve = 0,
    #[enum_value(
        name = "Crop: cover the box keeping the aspect ratio, cutting the overflow",
        nick = "crop"
    )]
    Crop = 1,
    #[enum_value(
        name = "Pad: fit inside the box keeping the aspect ratio, black bars fill the rest",
        nick = "pad"
    )]
    Pad = 2,
    #[enum_value(
        name = "Stretch: scale to the box, ignoring the aspect ratio",
        nick = "stretch"
    )]
    Stretch = 3,
}

impl From<FitMode> for crate::core::thumbs::Fit {
    fn from(m: FitMode) -> Self {
        use crate::core::thumbs::Fit;
        match m {
            FitMode::Preserve => Fit::Preserve,
            FitMode::Crop => Fit::Crop,
            FitMode::Pad => Fit::Pad,
            FitMode::Stretch => Fit::Stretch,
        }
    }
}

/// The image format of the thumbnails.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstThumbnailerFormat")]
pub enum ImageFormat {
    #[default]
    #[enum_value(name = "JPEG (jpegenc)", nick = "jpeg")]
    Jpeg = 0,
    #[enum_value(name = "PNG (pngenc)", nick = "png")]
    Png = 1,
    #[enum_value(name = "WebP (webpenc)", nick = "webp")]
    Webp = 2,
}

impl ImageFormat {
    /// Every format's media type: the src pad template.
    pub fn template_caps() -> gst::Caps {
        [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp]
            .into_iter()
            .fold(gst::Caps::builder_full(), |caps, f| {
                caps.structure(gst::Structure::new_empty(f.media_type()))
            })
            .build()
    }

    /// The media type of the src pad.
    pub fn media_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
        }
    }

    pub fn nick(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    #[cfg(feature = "doc")]
    {
        FitMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
        ImageFormat::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    }
    gst::Element::register(
        Some(plugin),
        "thumbnailer",
        gst::Rank::NONE,
        Thumbnailer::static_type(),
    )
}
